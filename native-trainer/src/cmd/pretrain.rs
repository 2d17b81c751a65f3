//! `savant pretrain`: domain-adaptive continued pretraining (BERT's masked-language-model
//! objective) on an unlabelled corpus read as a stream: shards matched by globs, CSV/TSV/JSONL,
//! gzip or not, a seeded shuffle buffer, long documents cut into windows. Writes `OUT/model/`
//! (an HF `BertForMaskedLM` folder that transformers and `savant train` load), `OUT/metrics.json`
//! (held-out perplexity before and after, counts) and `OUT/pretrain_log.jsonl`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use savant_core::model::{ModelFolder, Precision};
use savant_core::pretrain::corpus::{Corpus, DocumentSource, SourceRow};
use savant_core::pretrain::masked_lm_files;
use savant_core::pretrain::{PretrainOptions, PretrainSession};
use savant_core::tokenize::Encoded;
use serde_json::json;

use crate::io::{write_atomic, write_json};
use crate::model_dir::DirFiles;
use crate::peak::Peak;
use crate::stream::Feeder;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Hugging Face model folder to continue from: an encoder (MiniLM), or a masked-LM checkpoint
    /// whose `cls.predictions` head is then trained on.
    #[arg(long)]
    pub model: PathBuf,
    /// Corpus shards: paths or glob patterns (`'corpus/*.jsonl.gz'`), .csv/.tsv/.jsonl, each
    /// optionally gzip-compressed (.gz). Read in name order, a stream at a time.
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<String>,
    /// Column (or JSON field) holding the text.
    #[arg(long, default_value = "text")]
    pub text: String,
    /// Shard format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
    /// Optimiser steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Windows per micro-batch (per step without --grad-accum).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Micro-batches per optimiser step (gradient accumulation): a step trains on
    /// batch-size × grad-accum windows while memory holds one micro-batch's activations.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Tokens per window, [CLS] and [SEP] included; longer documents become several windows
    /// (default: 128, or the model's positions when fewer — as `train`).
    #[arg(long)]
    pub max_len: Option<usize>,
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    /// Warm-up: a fraction of the steps (< 1) or a number of steps.
    #[arg(long, default_value_t = 0.06)]
    pub warmup: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Share of tokens to predict (HF `mlm_probability`).
    #[arg(long, default_value_t = 0.15)]
    pub mlm_prob: f64,
    /// Mask whole words (a token and its ## pieces) rather than single tokens.
    #[arg(long)]
    pub whole_word: bool,
    /// Windows held in the shuffle buffer (memory stays bounded by it).
    #[arg(long, default_value_t = 10_000)]
    pub shuffle_buffer: usize,
    /// The first this many documents of the corpus are held out (never trained on) to measure
    /// perplexity before and after.
    #[arg(long, default_value_t = 200)]
    pub eval_docs: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Log a line to pretrain_log.jsonl every this many steps.
    #[arg(long, default_value_t = 50)]
    pub log_every: usize,
    #[command(flatten)]
    pub place: crate::model_dir::PlacementArgs,
    /// Write a checkpoint (weights, optimiser, stream position) every this many steps to
    /// OUT/checkpoints/step-N/ (the newest two are kept); a run stopped by a bad shard writes one too.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Continue the run in --output from its newest checkpoint: same corpus and settings, and it
    /// goes on at the very window where it stopped (the stream up to there is read again).
    #[arg(long)]
    pub resume: bool,
    /// Read the corpus once through the whole input pipeline (shards, gzip, tokeniser, windows,
    /// shuffle buffer, masking) without a model, and write its counts, tokens/s and peak memory
    /// to OUT/scan.json: how much data there is, and whether reading can keep up with training.
    #[arg(long, conflicts_with = "resume")]
    pub scan: bool,
    /// Output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace an existing output folder's results.
    #[arg(long)]
    pub overwrite: bool,
}

impl Args {
    /// Core's options for these flags.
    fn options(&self) -> PretrainOptions {
        PretrainOptions {
            steps: self.steps,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            max_len: self.max_len,
            lr: self.lr,
            warmup: self.warmup,
            weight_decay: self.weight_decay,
            mlm_prob: self.mlm_prob,
            whole_word: self.whole_word,
            shuffle_buffer: self.shuffle_buffer,
            eval_docs: self.eval_docs,
            seed: self.seed,
            log_every: self.log_every,
        }
    }
}

/// Every setting that shapes the updates, and the corpus by name.
fn identity(args: &Args, shards: &[PathBuf], threads: usize) -> serde_json::Value {
    json!({
        "model": args.model.display().to_string(),
        "corpus": shards.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "text": args.text, "format": args.format, "steps": args.steps, "batch_size": args.batch_size, "grad_accum": args.grad_accum,
        "max_len": args.max_len, "lr": args.lr, "warmup": args.warmup, "weight_decay": args.weight_decay,
        "mlm_prob": args.mlm_prob, "whole_word": args.whole_word, "shuffle_buffer": args.shuffle_buffer,
        "eval_docs": args.eval_docs, "seed": args.seed, "threads": threads,
    })
}

pub fn run(mut args: Args) -> Result<()> {
    args.options().check().map_err(flags)?;
    if args.checkpoint_every == Some(0) {
        bail!("--checkpoint-every must be at least 1");
    }
    let shards = crate::stream::expand(&args.corpus, "--corpus")?;
    let files = DirFiles::new(&args.model)?;
    let folder = ModelFolder::open(&files)?;
    let mut options = args.options();
    let mut corpus = options.corpus(&folder, Shards::new(&args, shards.clone())).map_err(flags)?;
    args.max_len = options.max_len;
    let max_len = corpus.max_len();
    let crate::model_dir::Placement { device, name: device_name, parallel, threads, peak, precision } =
        args.place.place(args.batch_size)?;
    if args.scan {
        return scan(&args, corpus);
    }
    let runner = crate::workers::Threads(threads);
    let out_model = args.output.join("model");
    let checkpoints = args.output.join("checkpoints");
    let resumed = if args.resume {
        let found = crate::checkpoints::latest_session(&checkpoints)?;
        Some(found.ok_or_else(|| anyhow!("--resume: {} holds no checkpoint", checkpoints.display()))?)
    } else {
        if out_model.join("model.safetensors").exists() && !args.overwrite {
            bail!("{} already has a model; pass --overwrite to replace it", out_model.display());
        }
        if checkpoints.exists() {
            if !args.overwrite {
                bail!(
                    "{} holds checkpoints of an earlier run: --resume continues it, --overwrite starts again",
                    checkpoints.display()
                );
            }
            std::fs::remove_dir_all(&checkpoints).with_context(|| format!("removing {}", checkpoints.display()))?;
        }
        None
    };
    let identity = identity(&args, &shards, threads);
    let ad = device.clone().autodiff();
    let (mut run, notes, fresh_head) =
        PretrainSession::start(&files, &folder, options, &mut corpus, identity, &ad).map_err(core_flags)?;
    for name in &notes.ignored {
        eprintln!("note: {name} is not part of a masked LM; left aside");
    }
    run.trainer.set_precision(precision);
    let config = folder.config.clone();
    let step_memory = run.step_memory(max_len);
    crate::memory::check_memory(&step_memory, &config, &device_name, parallel.len(), Some(args.grad_accum))?;
    match resumed {
        Some((path, saved)) => {
            run.restore(saved, &path.display().to_string())?;
            eprintln!(
                "resuming from {} at step {} (window {} of the stream)",
                path.display(),
                run.trainer.step,
                run.windows
            );
        }
        None => _ = pollster::block_on(run.measure_before())?,
    }
    eprintln!(
        "pretrain on {device_name} ({threads} thread{}{}): {} shard(s), {} held-out windows; held-out perplexity {:.3}{}",
        if threads == 1 { "" } else { "s" },
        if precision == Precision::F32 { String::new() } else { format!(", {precision} matmuls") },
        shards.len(),
        run.held_out_windows(),
        run.perplexity_before,
        if fresh_head { " (a fresh MLM head: the folder had none)" } else { "" }
    );
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let first_step = run.trainer.step + 1;
    let bar = step_bar(args.steps as u64);
    bar.set_position(run.trainer.step as u64);
    let peak_flops = peak.as_ref().map(Peak::flops);
    if let Some(p) = &peak {
        eprintln!("MFU against a peak of {:.3} TFLOP/s ({})", p.tflops, p.source);
    }
    let per_step = run.options.windows_per_step();
    let mut feeder = Feeder::spawn(Stream(corpus), 4 * per_step, run.windows);
    let start = Instant::now();
    let (prior_seconds, prior_wait) = (run.prior_seconds, run.prior_wait);
    let clock = |feeder: &Feeder<Stream>| {
        (prior_seconds + start.elapsed().as_secs_f64(), prior_wait + feeder.waited.as_secs_f64())
    };
    // The run as it stands, to OUT/checkpoints (periodically, and before stopping on bad input).
    let write_checkpoint = |run: &PretrainSession, feeder: &Feeder<Stream>| -> Result<()> {
        let (seconds, wait) = clock(feeder);
        let c = pollster::block_on(run.checkpoint(seconds, wait))?;
        crate::checkpoints::write_checkpoint(&c, &checkpoints, run.trainer.step, None)
    };
    for step in first_step..=args.steps {
        let mut texts = Vec::with_capacity(per_step);
        while texts.len() < per_step {
            match feeder.next() {
                Ok(window) => texts.push(window),
                Err(e) if args.checkpoint_every.is_some() && step > first_step => {
                    // The steps so far are good: keep them for --resume once the shard is fixed.
                    write_checkpoint(&run, &feeder)?;
                    bail!(
                        "{e:#}\n(a checkpoint of step {} is in {}: fix the input and --resume)",
                        step - 1,
                        checkpoints.display()
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let parts = run.prepare(&texts, threads);
        let trainer = &mut run.trainer;
        let loss =
            crate::memory::guard_step(&device_name, args.batch_size, Some(args.grad_accum), &checkpoints, || {
                pollster::block_on(trainer.step(&parts, runner.parts(&parallel)))
            })??;
        let (seconds, wait) = clock(&feeder);
        if let Some((mean, rate)) = pollster::block_on(run.record(loss, seconds, wait, peak_flops))? {
            bar.set_message(format!("loss {mean:.4} · {}", crate::progress::rate_text(&rate)));
        }
        bar.inc(1);
        if args.checkpoint_every.is_some_and(|n| step % n == 0) && step < args.steps {
            write_checkpoint(&run, &feeder)?;
        }
    }
    bar.finish_and_clear();
    let (seconds, waited) = clock(&feeder);
    let rate = run.throughput(seconds, peak_flops);
    let Stream(corpus) = feeder.finish()?;
    let perplexity_after = pollster::block_on(run.perplexity())?;

    // OUT/model/: an HF BertForMaskedLM folder.
    std::fs::create_dir_all(&out_model).with_context(|| format!("creating {}", out_model.display()))?;
    for (name, bytes) in pollster::block_on(masked_lm_files(&run.trainer.eval_model(), &config, &files))? {
        write_atomic(&out_model.join(name), |w| Ok(w.write_all(&bytes)?))?;
    }
    write_atomic(&args.output.join("pretrain_log.jsonl"), |w| {
        for line in &run.log {
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let mut metrics = run.metrics_json(perplexity_after, seconds, waited, peak_flops);
    let obj = metrics.as_object_mut().expect("an object");
    for (k, v) in [
        ("peak", json!(peak)),
        ("device", json!(device_name)),
        ("documents", json!(corpus.documents)),
        ("windows", json!(corpus.windows)),
        ("split_into_windows", json!(corpus.split_documents)),
        ("passes", json!(corpus.passes)),
        ("skipped", json!(corpus.skipped)),
        ("fresh_head", json!(fresh_head)),
    ] {
        obj.insert(k.into(), v);
    }
    write_json(&args.output.join("metrics.json"), &metrics)?;
    eprintln!(
        "{}: {} steps, {} tokens in {:.0} s ({}; {:.1} s of it waiting for data); held-out perplexity {:.3} → {:.3}",
        args.output.display(),
        args.steps,
        run.tokens,
        seconds,
        crate::progress::rate_text(&rate),
        waited,
        run.perplexity_before,
        perplexity_after
    );
    println!("{}", out_model.display());
    Ok(())
}

/// An error of the corpus source (the shards' reading: kept as it is) or of core (as flags).
fn core_flags(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<savant_core::Error>() {
        Ok(e) => flags(e),
        Err(e) => e,
    }
}

/// Core's errors with its option fields as flags.
fn flags(e: savant_core::Error) -> anyhow::Error {
    crate::flags::as_flags(
        e,
        &["steps", "batch_size", "grad_accum", "log_every", "max_len", "lr", "warmup", "eval_docs", "mlm_prob"],
        &[],
    )
}

/// `--scan`: one pass of the corpus through the input pipeline, no model.
fn scan(args: &Args, mut corpus: Corpus<Shards>) -> Result<()> {
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let held_out = corpus.take_held_out(args.eval_docs)?.len();
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{prefix} {spinner} {msg} ({elapsed})").expect("valid template"));
    bar.set_prefix("scan");
    let start = Instant::now();
    let c = corpus.count_pass(args.batch_size, args.seed, |c| {
        let rate = c.tokens as f64 / start.elapsed().as_secs_f64();
        bar.set_message(format!("{} windows, {} tokens, {rate:.0} tokens/s", c.windows, c.tokens));
    })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let report = json!({
        "documents": corpus.documents,
        "windows": c.windows,
        "held_out_windows": held_out,
        "split_into_windows": corpus.split_documents,
        "skipped": corpus.skipped,
        "tokens": c.tokens,
        "predicted_tokens": c.predicted_tokens,
        "seconds": seconds,
        "tokens_per_second": c.tokens as f64 / seconds.max(1e-9),
        "windows_per_second": c.windows as f64 / seconds.max(1e-9),
        "max_len": args.max_len,
        "shuffle_buffer": args.shuffle_buffer,
        "peak_rss_mib": crate::memory::peak_rss_mib(),
    });
    write_json(&args.output.join("scan.json"), &report)?;
    eprintln!(
        "{}: {} documents → {} windows ({} split), {} tokens in {seconds:.1} s ({:.0} tokens/s); peak memory {} MiB",
        args.output.display(),
        corpus.documents,
        c.windows,
        corpus.split_documents,
        c.tokens,
        c.tokens as f64 / seconds.max(1e-9),
        crate::memory::peak_rss_mib().map_or("?".into(), |m| format!("{m:.0}"))
    );
    Ok(())
}

/// The corpus shards in name order, a row at a time; each pass starts again at the first.
struct Shards {
    paths: Vec<PathBuf>,
    text: String,
    format: Option<String>,
    reader: Option<(crate::stream::Shard, usize)>,
    next: usize,
}

impl Shards {
    fn new(args: &Args, paths: Vec<PathBuf>) -> Shards {
        Shards { paths, text: args.text.clone(), format: args.format.clone(), reader: None, next: 0 }
    }
}

impl DocumentSource for Shards {
    type Error = anyhow::Error;

    fn next_row(&mut self) -> Result<SourceRow> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.paths.get(self.next).cloned() else { return Ok(SourceRow::End) };
                self.next += 1;
                let (reader, columns) = crate::stream::open_shard(&path, self.format.as_deref(), &[&self.text])?;
                self.reader = Some((reader, columns[0]));
            }
            let (reader, column) = self.reader.as_mut().expect("opened above");
            return Ok(match reader.next_row()? {
                None => {
                    self.reader = None;
                    continue;
                }
                Some(Err(_)) => SourceRow::Malformed,
                Some(Ok(mut row)) => SourceRow::Text(std::mem::take(&mut row.fields[*column])),
            });
        }
    }

    fn rewind(&mut self) -> Result<()> {
        (self.reader, self.next) = (None, 0);
        Ok(())
    }
}

/// The shell's feeder thread reads the core's corpus.
struct Stream(Corpus<Shards>);

impl crate::stream::Source for Stream {
    type Item = Encoded;

    fn next_item(&mut self) -> Result<Encoded> {
        self.0.next_window()
    }
}

fn step_bar(total: u64) -> ProgressBar {
    ProgressBar::new(total)
        .with_style(
            ProgressStyle::with_template("pretrain [{bar:30}] {pos}/{len} steps {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        )
        .with_finish(indicatif::ProgressFinish::AndClear)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    // clap's defaults here and PretrainOptions::default() in core must agree.
    #[test]
    fn the_flags_defaults_are_cores_defaults() {
        let cli = Cli::try_parse_from(["savant", "--model", "m", "--corpus", "c.jsonl", "-o", "out"]).unwrap();
        assert_eq!(cli.args.options(), PretrainOptions::default());
    }
}
