//! `savant merge`: a LoRA adapter folded into its base, written as a plain HF
//! `BertForSequenceClassification` folder (PEFT's `merge_and_unload` + `save_pretrained`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use savant_core::finetune::merge;
use savant_core::model::ModelFolder;

use crate::model_dir::{device, DirFiles};
use savant_core::finetune::peft::load_fine_tuned;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The base model folder the adapter was trained on.
    #[arg(long)]
    pub model: PathBuf,
    /// The adapter folder (`savant train --mode lora`, or a PEFT LoRA export).
    #[arg(long)]
    pub adapter: PathBuf,
    /// The merged model folder to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if args.output.join("model.safetensors").exists() {
        bail!("{} already holds a model; choose another -o", args.output.display());
    }
    let files = DirFiles::new(&args.model)?;
    let folder = ModelFolder::open(&files)?;
    let (device, _) = device("cpu")?;
    let adapter = DirFiles::new(&args.adapter)?;
    let (model, config, _) = load_fine_tuned(&files, &folder.config, Some(&adapter), &device)?;
    let merged = merge(model)?;
    // The length the adapter was trained at (savant train writes it), else the base's.
    let max_len = savant_core::model::max_seq_length(&adapter)?.or(folder.max_seq_length);
    crate::model_dir::save_model_folder(&merged, &config, &files, max_len, &args.output)?;
    // A multi-label adapter's thresholds go with it.
    let thresholds = args.adapter.join(savant_core::train::thresholds::Thresholds::FILE);
    if thresholds.is_file() {
        let bytes = std::fs::read(&thresholds)?;
        let to = args.output.join(savant_core::train::thresholds::Thresholds::FILE);
        crate::io::write_atomic(&to, |w| Ok(w.write_all(&bytes)?))?;
    }
    eprintln!(
        "{}: {} merged into {} ({} labels); load it with --model like any model folder",
        args.output.display(),
        args.adapter.display(),
        args.model.display(),
        config.labels.len()
    );
    Ok(())
}
