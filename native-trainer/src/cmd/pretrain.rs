//! `savant pretrain`: domain-adaptive continued pretraining (BERT's masked-language-model
//! objective) on an unlabelled corpus read as a stream: shards matched by globs, CSV/TSV/JSONL,
//! gzip or not, a seeded shuffle buffer, long documents cut into windows. Writes `OUT/model/`
//! (an HF `BertForMaskedLM` folder that transformers and `savant train` load), `OUT/metrics.json`
//! (held-out perplexity before and after, counts) and `OUT/pretrain_log.jsonl`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use savant_core::model::ModelFolder;
use savant_core::pretrain::corpus::Corpus;
use savant_core::pretrain::masked_lm_files;
use savant_core::pretrain::{PretrainOptions, PretrainSession};
use serde_json::json;

use crate::io::{write_atomic, write_json, write_jsonl};
use crate::model_dir::DirFiles;
use crate::peak::Peak;
use crate::stream::{Feeder, ShardRows};

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
    /// Everything that shapes the model (core's options, the page's too).
    #[command(flatten)]
    pub options: PretrainOptions,
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

pub fn run(mut args: Args) -> Result<()> {
    args.options.check().map_err(flags)?;
    if args.checkpoint_every == Some(0) {
        bail!("--checkpoint-every must be at least 1");
    }
    let shards = crate::stream::expand(&args.corpus, "--corpus")?;
    let files = DirFiles::new(&args.model)?;
    let folder = ModelFolder::open(&files)?;
    let source = ShardRows::new(shards.clone(), &[&args.text], args.format.as_deref());
    let mut corpus = args.options.corpus(&folder, source).map_err(flags)?;
    let crate::model_dir::Placement { device, name: device_name, parallel, threads, peak, precision } =
        args.place.place(args.options.batch_size)?;
    if args.scan {
        return scan(&args, corpus);
    }
    let checkpoints = args.output.join("checkpoints");
    let resumed = crate::checkpoints::start_run(&args.output, &["model"], args.resume, args.overwrite)?;
    let source = json!({
        "model": args.model.display().to_string(),
        "corpus": shards.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "text": args.text, "format": args.format, "threads": threads,
    });
    let ad = device.clone().autodiff();
    let (mut run, notes, fresh_head) =
        PretrainSession::start_pretraining(&files, &folder, args.options.clone(), &mut corpus, source, threads, &ad)
            .map_err(core_flags)?;
    for name in &notes.ignored {
        eprintln!("note: {name} is not part of a masked LM; left aside");
    }
    run.trainer.set_precision(precision);
    let memory = run.step_memory(corpus.max_len());
    crate::memory::check_memory(&memory, &folder.config, &device_name, parallel.len(), Some(run.config.grad_accum))?;
    match resumed {
        Some((path, saved)) => {
            run.restore(saved, &path.display().to_string())?;
            eprintln!(
                "resuming from {} at step {} (window {} of the stream)",
                path.display(),
                run.trainer.step,
                run.task.windows
            );
        }
        None => _ = pollster::block_on(run.measure_before())?,
    }
    eprintln!(
        "pretrain on {device_name} ({}): {} shard(s), {} held-out windows; held-out perplexity {:.3}{}",
        crate::workers::threads_text(threads, precision),
        shards.len(),
        run.held_out_windows(),
        run.task.perplexity_before,
        if fresh_head { " (a fresh MLM head: the folder had none)" } else { "" }
    );
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let (steps, first_step) = (run.total_steps(), run.trainer.step + 1);
    let bar = crate::progress::steps_bar("pretrain", steps as u64);
    bar.set_position(run.trainer.step as u64);
    let peak_flops = peak.as_ref().map(Peak::flops);
    if let Some(p) = &peak {
        eprintln!("MFU against a peak of {:.3} TFLOP/s ({})", p.tflops, p.source);
    }
    let per_step = run.windows_per_step();
    let mut feeder = Feeder::spawn(corpus, 4 * per_step, run.task.windows);
    let start = Instant::now();
    let (prior_seconds, prior_wait) = (run.task.prior_seconds, run.task.prior_wait);
    let clock = |feeder: &Feeder<Corpus<ShardRows>>| {
        (prior_seconds + start.elapsed().as_secs_f64(), prior_wait + feeder.waited.as_secs_f64())
    };
    // The run as it stands, to OUT/checkpoints (periodically, and before stopping on bad input).
    let write_checkpoint = |run: &mut PretrainSession, feeder: &Feeder<Corpus<ShardRows>>| -> Result<()> {
        let (seconds, wait) = clock(feeder);
        let c = pollster::block_on(run.checkpoint_at(seconds, wait))?;
        crate::checkpoints::write_checkpoint(&c, &checkpoints, run.trainer.step, None)
    };
    let runner = crate::workers::Threads(threads);
    // The clock after the last step: the throughput leaves the closing perplexity out.
    let mut trained_at = clock(&feeder);
    // Core's run loop: a step a call on the windows read here; the last call, the perplexity after.
    while !run.finished() {
        let (stepping, mut texts) = (run.needs_rows(), Vec::new());
        while stepping && texts.len() < per_step {
            match feeder.next() {
                Ok(window) => texts.push(window),
                Err(e) if args.checkpoint_every.is_some() && run.trainer.step >= first_step => {
                    // The steps so far are good: keep them for --resume once the shard is fixed.
                    write_checkpoint(&mut run, &feeder)?;
                    let at = checkpoints.display();
                    bail!("{e:#}\n(a checkpoint of step {} is in {at}: fix the input and --resume)", run.trainer.step);
                }
                Err(e) => return Err(e),
            }
        }
        let (batch_size, accum) = (run.config.batch_size, Some(run.config.grad_accum));
        let events = crate::memory::guard_step(&device_name, batch_size, accum, &checkpoints, || {
            pollster::block_on(run.advance(stepping.then_some(texts), runner.parts(&parallel)))
        })??;
        let (seconds, wait) = clock(&feeder);
        if let Some((mean, rate)) = events.iter().find_map(|e| run.log_line(e, seconds, wait, peak_flops)) {
            bar.set_message(format!("loss {mean:.4} · {}", crate::progress::rate_text(&rate)));
        }
        bar.set_position(run.trainer.step as u64);
        trained_at = if stepping { (seconds, wait) } else { trained_at };
        let step = run.trainer.step;
        if stepping && args.checkpoint_every.is_some_and(|n| step % n == 0) && step < steps {
            write_checkpoint(&mut run, &feeder)?;
        }
    }
    bar.finish_and_clear();
    let (seconds, waited) = trained_at;
    let rate = run.throughput(seconds, peak_flops);
    let corpus = feeder.finish()?;
    let perplexity_after = run.perplexity_after().unwrap_or(f64::NAN);

    // OUT/model/: an HF BertForMaskedLM folder.
    let out_model = args.output.join("model");
    std::fs::create_dir_all(&out_model).with_context(|| format!("creating {}", out_model.display()))?;
    for (name, bytes) in pollster::block_on(masked_lm_files(&run.best_model(), &folder.config, &files))? {
        write_atomic(&out_model.join(name), |w| Ok(w.write_all(&bytes)?))?;
    }
    write_jsonl(&args.output.join("pretrain_log.jsonl"), &run.task.log)?;
    let mut metrics = run.metrics_json(&corpus, perplexity_after, seconds, waited, peak_flops);
    (metrics["peak"], metrics["device"]) = (json!(peak), json!(device_name));
    write_json(&args.output.join("metrics.json"), &metrics)?;
    eprintln!(
        "{}: {steps} steps, {} tokens in {seconds:.0} s ({}; {waited:.1} s of it waiting for data); held-out perplexity {:.3} → {perplexity_after:.3}",
        args.output.display(),
        run.task.tokens,
        crate::progress::rate_text(&rate),
        run.task.perplexity_before,
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
    crate::flags::options_error::<PretrainOptions>(e, &[])
}

/// `--scan`: one pass of the corpus through the input pipeline, no model.
fn scan(args: &Args, mut corpus: Corpus<ShardRows>) -> Result<()> {
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let held_out = corpus.take_held_out(args.options.eval_docs)?.len();
    let bar = crate::progress::bytes_bar("scan", None);
    let start = Instant::now();
    let c = corpus.count_pass(args.options.batch_size, args.options.seed, |c| {
        let rate = c.tokens as f64 / start.elapsed().as_secs_f64();
        bar.set_message(format!("{} windows, {} tokens, {rate:.0} tokens/s", c.windows, c.tokens));
    })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let mut report = corpus.scan_json(&c, held_out, seconds);
    report["peak_rss_mib"] = json!(crate::memory::peak_rss_mib());
    write_json(&args.output.join("scan.json"), &report)?;
    let peak = report["peak_rss_mib"].as_f64().map_or("?".into(), |m| format!("{m:.0}"));
    eprintln!("{}: {}; peak memory {peak} MiB", args.output.display(), corpus.scan_line(&c, seconds));
    Ok(())
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

    // The flags are core's options (the page sends the same ones): with no flag given they must
    // be PretrainOptions::default().
    #[test]
    fn the_flags_defaults_are_cores_defaults() {
        let cli = Cli::try_parse_from(["savant", "--model", "m", "--corpus", "c.jsonl", "-o", "out"]).unwrap();
        assert_eq!(cli.args.options, PretrainOptions::default());
    }
}
