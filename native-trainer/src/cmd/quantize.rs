//! `savant quantize`: an int8 model folder (core's `finetune::quantize`) beside the f32 one —
//! a fine-tuned classifier (or a base with its adapter, merged first) or a sentence encoder —
//! and, with `--eval`, what it costs: both models on the same labelled rows, scored alike.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use savant_core::finetune::quantize::{self, Model};
use savant_core::infer::{softmax_rows, TextBatches, TextModel};
use savant_core::long::{Aggregate, LongText};
use savant_core::metrics::agreement::{agreement, Agreement};
use savant_core::model::BertClassifier;
use serde::Serialize;

use crate::model_dir::DirFiles;
use crate::text_input::{chunk_rows, in_parallel, setup, workers_for, ModelArgs, RunReport, Setup, TextRows};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The f32 model folder: a fine-tuned classifier, a sentence encoder, or (with --adapter)
    /// the base an adapter was trained on.
    #[arg(long)]
    pub model: PathBuf,
    /// An adapter folder (`savant train --mode lora|adapter`, or a PEFT LoRA export): merged
    /// into --model, then quantised.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// The int8 folder to write: a new or empty folder, never the model's own.
    #[arg(short, long)]
    pub output: PathBuf,
    /// A labelled table (.csv, .tsv, .jsonl; a val split) to measure the cost on: the f32 and
    /// the int8 model predict its rows, and both are scored (a one-label classifier).
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// --eval's text column.
    #[arg(long, default_value = "text")]
    pub text: String,
    /// --eval's label column.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// --eval: texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// --eval: tokens per text (default: the length the model was trained at).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// --eval: batches run at once (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `savant_quantize.json`, written into the int8 folder.
#[derive(Serialize)]
struct Report {
    model: String,
    adapter: Option<String>,
    kind: &'static str,
    f32_weights_bytes: u64,
    int8_weights_bytes: u64,
    eval: Option<EvalCost>,
}

#[derive(Serialize)]
struct EvalCost {
    file: String,
    rows_read: u64,
    rows_skipped: u64,
    /// The first skipped rows, with why.
    skipped: Vec<crate::text_input::Skipped>,
    #[serde(flatten)]
    agreement: Agreement,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    refuse_overwrite(&args.output, &args.model)?;
    let model_args = ModelArgs {
        model: args.model.clone(),
        text: args.text.clone(),
        batch_size: args.batch_size,
        max_len: args.max_len,
        device: "cpu".into(),
        format: None,
        report: None,
        threads: args.threads,
    };
    let mut s = setup(&model_args, args.adapter.as_deref())?;
    let adapter = args.adapter.as_deref().map(DirFiles::new).transpose()?;
    let source = quantize::load(&s.files, &s.folder, adapter.as_ref(), &s.device)?;
    s.folder.config = source.config.clone();
    let config = &source.config;
    let classifier = matches!(source.model, Model::Classifier(_));
    let eval = match (&args.eval, &source.model) {
        (None, _) => None,
        (Some(_), Model::Encoder(_)) => bail!(
            "--eval scores a classifier, and {} is a sentence encoder (no classification head); compare `savant embed --int8` vectors instead",
            args.model.display()
        ),
        (Some(_), Model::Classifier(_)) if config.multi_label() => bail!(
            "--eval scores one-label classifiers; for label sets run `savant predict` with both folders and `savant eval --multi-label`"
        ),
        (Some(path), Model::Classifier(m)) => Some(measure(path, m, &args, &model_args, &s)?),
    };

    let kind = if classifier { "classifier" } else { "encoder" };
    let layers = config.num_hidden_layers;
    let mut files = pollster::block_on(quantize::int8_folder(source, &s.files, adapter.as_ref()))?;
    let f32_bytes = std::fs::metadata(args.model.join("model.safetensors"))?.len()
        + args
            .adapter
            .as_ref()
            .map_or(Ok(0), |a| std::fs::metadata(a.join("adapter_model.safetensors")).map(|m| m.len()))?;
    let int8_bytes = files.iter().find(|(n, _)| n == "model.safetensors").map_or(0, |(_, b)| b.len() as u64);
    let report = Report {
        model: args.model.display().to_string(),
        adapter: args.adapter.as_ref().map(|a| a.display().to_string()),
        kind,
        f32_weights_bytes: f32_bytes,
        int8_weights_bytes: int8_bytes,
        eval,
    };
    let mut json = serde_json::to_vec_pretty(&report)?;
    json.push(b'\n');
    files.push(("savant_quantize.json".into(), json));
    write_folder(&args.output, &files)?;

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "{}: int8 {kind} ({} layers × 6 projections per output channel; embeddings, LayerNorms and heads f32): weights {:.1} MiB (f32 {:.1} MiB), {:.1} s",
        args.output.display(),
        layers,
        mib(int8_bytes),
        mib(f32_bytes),
        started.elapsed().as_secs_f64()
    );
    match &report.eval {
        Some(e) => {
            let a = &e.agreement;
            eprintln!(
                "accuracy cost on {} ({} rows): macro-F1 {:.2} → {:.2} ({:+.2} points), accuracy {:.2} → {:.2} ({:+.2}); same label on {:.1}% of rows; probabilities differ by at most {:.4}{}",
                e.file,
                a.rows,
                100.0 * a.macro_f1_before,
                100.0 * a.macro_f1_after,
                100.0 * (a.macro_f1_after - a.macro_f1_before),
                100.0 * a.accuracy_before,
                100.0 * a.accuracy_after,
                100.0 * (a.accuracy_after - a.accuracy_before),
                100.0 * a.same_label,
                a.max_prob_diff,
                match e.rows_skipped {
                    0 => String::new(),
                    n => format!(" ({n} rows skipped: see savant_quantize.json)"),
                }
            );
        }
        None if classifier => {
            eprintln!("accuracy cost not measured: add --eval val.csv (a labelled split) to score both models on it")
        }
        None => {}
    }
    eprintln!("load it with --model like any model folder; it runs int8 on the CPU");
    Ok(())
}

/// The f32 folder is never written to, nor a folder that holds anything.
fn refuse_overwrite(output: &Path, model: &Path) -> Result<()> {
    let same = match (output.canonicalize(), model.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        bail!(
            "-o {} is the model's own folder: the f32 model is never overwritten; choose a new folder",
            output.display()
        );
    }
    if output.exists() {
        let empty = output.is_dir() && std::fs::read_dir(output)?.next().is_none();
        if !empty {
            bail!("-o {} already exists and is not an empty folder; choose a new one", output.display());
        }
    }
    Ok(())
}

/// Writes every file into a sibling temporary folder, then renames it into place: the folder
/// appears whole or not at all.
fn write_folder(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let name = dir.file_name().ok_or_else(|| anyhow!("-o {}: not a folder name", dir.display()))?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<()> {
        for (rel, bytes) in files {
            let path = tmp.join(rel);
            std::fs::create_dir_all(path.parent().expect("inside tmp"))?;
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        if dir.exists() {
            std::fs::remove_dir(dir).with_context(|| format!("replacing the empty folder {}", dir.display()))?;
        }
        std::fs::rename(&tmp, dir).with_context(|| format!("moving the int8 folder into {}", dir.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Both models over the labelled rows of `path`; rows whose label the model does not know, and
/// malformed rows, are counted and listed in the report.
fn measure(path: &Path, model: &BertClassifier, args: &Args, model_args: &ModelArgs, s: &Setup) -> Result<EvalCost> {
    let config = &s.folder.config;
    let int8 = model.clone().quantized().map_err(|e| anyhow!("--eval: {e}"))?;
    let labels = &config.labels;
    let folder = &s.folder;
    let mut rows = TextRows::open(path, None, &args.text)?;
    let label_column = rows.reader.column(&args.label)?;
    let mut report = RunReport::start(path, &args.output, model_args, s, Default::default());
    let workers = workers_for(&s.device_name, args.threads);
    let (mut y, mut before, mut after) = (Vec::new(), Vec::new(), Vec::new());
    let long = LongText::TRUNCATE;
    while let Some(chunk) = rows.next_chunk(chunk_rows(args.batch_size), &mut report)? {
        let mut texts = Vec::with_capacity(chunk.len());
        for row in &chunk {
            let label = &row.fields[label_column];
            match labels.iter().position(|l| l == label) {
                Some(i) => {
                    y.push(i);
                    texts.push(row.fields[rows.text_column].as_str());
                }
                None => report.skip(
                    row.line,
                    format!("label '{label}' is not one of the model's labels ({})", labels.join(", ")),
                ),
            }
        }
        if texts.is_empty() {
            continue;
        }
        let batches = TextBatches::long(&folder.tokenizer, &texts, &long, Aggregate::MeanLogits, args.batch_size)?;
        for (m, out) in [(model, &mut before), (&int8, &mut after)] {
            let o = in_parallel(TextModel::Classifier(m), folder, &s.device, &batches, workers)?;
            out.extend(softmax_rows(&o.values, labels.len()));
        }
    }
    let agreement = agreement(&y, &before, &after, labels.len())
        .ok_or_else(|| anyhow!("--eval {}: no row with a label of the model's to score", path.display()))?;
    Ok(EvalCost {
        file: path.display().to_string(),
        rows_read: report.rows_read,
        rows_skipped: report.rows_skipped,
        skipped: report.skipped,
        agreement,
    })
}
