//! `savant demo`: the main job on real data. For now: fetch, clean (redact, near-dedup, leakage
//! check against the held-out file) and split each domain's dataset; later issues add training.

use super::{clean, split};
use crate::fetch::{fetch_dataset, Dataset};
use crate::io::savant_home;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// cfpb (finance), drugs (medicine), licenses or license-rules (law), or all.
    #[arg(long, default_value = "all")]
    pub dataset: String,
    /// Where results go (default $SAVANT_HOME/demo).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let home = savant_home();
    let out = args.output.clone().unwrap_or_else(|| home.join("demo"));
    let sets: Vec<Dataset> = if args.dataset == "all" { Dataset::ALL.to_vec() } else { vec![args.dataset.parse()?] };
    for ds in sets {
        let t0 = Instant::now();
        let got = fetch_dataset(ds, &home)?;
        let dir = out.join(ds.name());
        let Some((primary, held_out)) = got.files.split_first() else { continue };
        eprintln!("\n== {} ({})", ds.name(), primary.display());

        let mut c = clean::Args::new(primary.clone(), dir.join("clean.csv"));
        c.text = got.text.clone();
        c.label = got.label.clone();
        c.redact = true;
        c.dedup = "near".into();
        c.against = held_out.to_vec();
        c.report = Some(dir.join("clean_report.json"));
        c.quiet = true;
        let report = clean::run(c)?;
        eprint!("{}", clean::summary(&report));

        let s = split::Args {
            input: dir.join("clean.csv"),
            output: dir.join("splits"),
            label: got.label.clone(),
            text: Some(got.text.clone()),
            val: 0.1,
            test: 0.1,
            seed: args.seed,
            group_by: "near".into(),
            near_threshold: 0.8,
            format: None,
            quiet: true,
        };
        let sr = split::run(s)?;
        eprint!("{}", split::summary(&sr));
        eprintln!("  {:.1}s; results in {}", t0.elapsed().as_secs_f64(), dir.display());
    }
    Ok(())
}
