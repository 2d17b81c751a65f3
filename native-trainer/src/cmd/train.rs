//! `savant train`: fine-tune a BERT folder on a labelled train split, validating each epoch.
//! Writes `OUT/model/` (full, partial: an HF folder) or `OUT/adapter/` (lora: PEFT's format;
//! adapter: Savant's), `OUT/metrics.json` (savant eval's keys on val, best epoch) and
//! `OUT/train_log.jsonl`.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use savant_core::data::TableReader;
use savant_core::train::stream::LabelledStream;
use savant_core::train::{
    FineTune, LabelledRows, LabelledTexts, StreamPlan, Throughput, TrainEvent, TrainOptions, TrainTiming,
};
use serde_json::json;

use crate::io::{open, write_atomic, write_json};
use crate::model_dir::DirFiles;
use crate::peak::Peak;
use crate::stream::ShardRows;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Hugging Face model folder to start from (an encoder such as MiniLM, or a classifier).
    #[arg(long)]
    pub model: PathBuf,
    /// Training split (.csv, .tsv or .jsonl); with --stream, a glob of shards (gzip or not).
    #[arg(long)]
    pub train: PathBuf,
    /// Stream --train instead of loading it: the shards its glob matches (CSV/TSV/JSONL, each
    /// optionally .gz) are read lazily, tokenised on reader threads and shuffled through a
    /// seeded buffer, for --steps steps (another pass when they run out); memory does not grow
    /// with the data.
    #[arg(long, requires = "steps")]
    pub stream: bool,
    /// --stream: optimiser steps (in place of --epochs).
    #[arg(long, requires = "stream")]
    pub steps: Option<usize>,
    /// --stream: validate and checkpoint every this many steps (default: once, at the end).
    #[arg(long, requires = "stream")]
    pub eval_every: Option<usize>,
    /// --stream: the classes, comma-separated (default: every label in the shards, from a first
    /// pass that reads only the text and label columns).
    #[arg(long, requires = "stream")]
    pub labels: Option<String>,
    /// --stream: rows held in the shuffle buffer.
    #[arg(long, default_value_t = 10_000, requires = "stream")]
    pub shuffle_buffer: usize,
    /// Validation split, evaluated after every epoch.
    #[arg(long)]
    pub val: PathBuf,
    #[arg(long, default_value = "text")]
    pub text: String,
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Input format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
    /// Everything that shapes the model (core's options, the page's too).
    #[command(flatten)]
    pub options: TrainOptions,
    #[command(flatten)]
    pub place: crate::model_dir::PlacementArgs,
    /// Also checkpoint every this many optimiser steps (one is always written after each epoch).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Continue the run in --output from its latest checkpoint (same data and settings).
    #[arg(long)]
    pub resume: bool,
    /// Replace a finished or interrupted run already in --output.
    #[arg(long)]
    pub overwrite: bool,
    /// Run folder.
    #[arg(short, long)]
    pub output: PathBuf,
}

impl Args {
    /// The run's options in core's terms (the page sends the same ones), cut into `parts`.
    fn options(&self, parts: usize) -> TrainOptions {
        let targets = self.options.lora_targets.iter().map(|t| t.trim()).filter(|t| !t.is_empty());
        TrainOptions { parts, lora_targets: targets.map(String::from).collect(), ..self.options.clone() }
    }
}

/// One split's usable rows; the others are counted with their line and reason.
fn read_labelled(path: &Path, args: &Args) -> Result<LabelledRows> {
    let format = crate::io::format_for(path, args.format.as_deref())?;
    let reader = TableReader::new(BufReader::new(open(path)?), format, &path.display().to_string())?;
    LabelledRows::read_with(
        reader,
        &args.text,
        &args.label,
        args.options.label_sep.as_deref(),
        args.options.allow_empty_labels,
    )
    .map_err(as_flags)
}

pub fn run(args: Args) -> Result<()> {
    train(args).map(|_| ())
}

/// What a finished run hands a caller besides its files (the demo scores them on its test rows).
pub struct Trained {
    /// The linear probe the head started from (epoch 0), when it was probe-initialised.
    pub probe: Option<savant_core::probe::ChosenProbe>,
}

pub fn train(args: Args) -> Result<Trained> {
    let started = Instant::now();
    let resumed = crate::checkpoints::start_run(
        &args.output,
        &["metrics.json", "model", "adapter"],
        args.resume,
        args.overwrite,
    )?;
    if args.options.batch_size == 0 || args.options.grad_accum == 0 || args.options.epochs == 0 {
        bail!("--batch-size, --grad-accum and --epochs must be at least 1");
    }
    let files = DirFiles::new(&args.model)?;
    let val = read_labelled(&args.val, &args)?;
    let crate::model_dir::Placement { device: base_device, name: device_name, parallel, threads, peak, precision } =
        args.place.place(args.options.batch_size)?;
    let train_device = base_device.clone().autodiff();
    let (mut run, stream) = if args.stream {
        let (run, stream) = streamed_run(&args, &files, val, threads, &train_device)?;
        (run, Some(stream))
    } else {
        let train = read_labelled(&args.train, &args)?;
        (FineTune::new(&files, args.options(threads), train, val, &train_device).map_err(as_flags)?, None)
    };
    for note in &run.notes {
        eprintln!("{note}");
    }
    if run.windows.windows != run.windows.texts {
        eprintln!(
            "long texts in windows of {} tokens: {} windows for {} texts ({:.2} a text; {} texts cut at --max-windows); each window trains with its text's {}, val scores texts",
            run.max_len,
            run.windows.windows,
            run.windows.texts,
            run.windows.mean(),
            run.windows.truncated,
            if run.options.label_sep.is_some() { "label set" } else { "label" }
        );
    }
    if let Some(b) = &run.baseline {
        eprintln!(
            "baseline: TF-IDF (1-2-grams, {} terms) + logistic regression, C {} chosen on val: val macro-F1 {:.4}",
            b.baseline.vocabulary_size(),
            b.c,
            b.val_macro_f1
        );
    }
    if let Some(b) = &run.label_baseline {
        eprintln!(
            "baseline: TF-IDF (1-2-grams, {} terms) + one-vs-rest logistic regression, C {} and per-label thresholds chosen on val: val micro-F1 {:.4}",
            b.baseline.vocabulary_size(),
            b.c,
            b.val_f1_micro
        );
    }
    eprintln!(
        "{} with a {} head ({}) on {device_name} ({}): {}",
        run.strategy.name(),
        run.session.trainer.model().head().name(),
        match run.head_init {
            "probe" => "starting from a linear probe of the frozen model",
            "kept" => "the folder's own",
            _ => "starting at random",
        },
        crate::workers::threads_text(threads, precision),
        run.params.summary()
    );
    crate::memory::check_memory(
        &run.step_memory(),
        &run.config,
        &device_name,
        parallel.len(),
        Some(args.options.grad_accum),
    )?;
    let mut flops = 0.0;
    let session = &mut run.session;
    session.trainer.set_precision(precision);

    let checkpoints = args.output.join("checkpoints");
    // Training rows read from the stream so far (a resumed run skips those).
    let mut consumed = 0u64;
    if let Some((path, checkpoint)) = resumed {
        session.restore(checkpoint, &path.display().to_string())?;
        if stream.is_some() {
            let position = path.join("stream.json");
            let saved: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&position).with_context(|| format!("reading {}", position.display()))?,
            )
            .with_context(|| format!("{}: unreadable", position.display()))?;
            consumed = saved["rows"].as_u64().ok_or_else(|| anyhow!("{}: no 'rows'", position.display()))?;
        }
        eprintln!("resumed from {} (step {})", path.display(), session.trainer.step);
    }
    let rows_per_step = args.options.batch_size * args.options.grad_accum;
    let mut feeder = stream.map(|s| crate::stream::Feeder::spawn(s, 4 * rows_per_step, consumed));
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let log_path = args.output.join("train_log.jsonl");
    let mut log = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(args.resume)
            .write(true)
            .truncate(!args.resume)
            .open(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?,
    );
    if args.resume {
        writeln!(log, "{}", savant_core::train::LogLine::Resume { step: session.trainer.step }.json())?;
    }
    let bar = crate::progress::steps_bar("train", session.total_steps() as u64);
    let runner = crate::workers::Threads(threads);
    let train_started = Instant::now();
    let mut tokens = 0usize;
    // Seconds in optimiser steps, validation passes excluded (for tokens/s).
    let mut step_seconds = 0.0;
    let mut seconds_at_log = 0.0;
    while !session.finished() {
        let call = Instant::now();
        let mut rows = LabelledTexts::default();
        if let Some(feeder) = feeder.as_mut().filter(|_| session.needs_rows()) {
            for _ in 0..rows_per_step {
                let (encoded, label) = feeder.next()?;
                rows.encoded.push(encoded);
                rows.labels.push(label);
            }
            consumed += rows_per_step as u64;
        }
        let events = crate::memory::guard_step(
            &device_name,
            args.options.batch_size,
            Some(args.options.grad_accum),
            &checkpoints,
            || pollster::block_on(session.advance(feeder.is_some().then_some(rows), runner.parts(&parallel))),
        )??;
        let epoch_ended =
            events.iter().any(|e| matches!(e, TrainEvent::Epoch { .. } | TrainEvent::Probe { fitted: true, .. }));
        let probing = events.iter().any(|e| matches!(e, TrainEvent::Probe { .. }));
        if !epoch_ended && !probing {
            step_seconds += call.elapsed().as_secs_f64();
        }
        bar.set_position(session.trainer.step as u64);
        let every = !probing && args.checkpoint_every.is_some_and(|n| n > 0 && session.trainer.step % n == 0);
        if epoch_ended || every {
            let position = json!({"rows": consumed}).to_string();
            crate::checkpoints::write_session(session, &checkpoints, feeder.as_ref().map(|_| position.as_bytes()))?;
        }
        for event in events {
            let line = match &event {
                TrainEvent::Step { epoch, loss, lr, tokens: n, samples, flops: flops_since, .. } => {
                    tokens += n;
                    flops += flops_since;
                    let secs = step_seconds - seconds_at_log;
                    seconds_at_log = step_seconds;
                    let rate =
                        Throughput::new(*n as u64, *samples as u64, *flops_since, secs, peak.as_ref().map(Peak::flops));
                    bar.set_message(format!(
                        "epoch {} loss {loss:.4} lr {lr:.2e} {}",
                        epoch + 1,
                        crate::progress::rate_text(&rate)
                    ));
                    event.line(&args.options.metric).timed(train_started.elapsed().as_secs_f64(), Some(&rate))
                }
                TrainEvent::Probe { embedded, total, fitted: false, .. } => {
                    bar.set_message(format!("linear probe: {embedded}/{total} training and validation rows embedded"));
                    continue;
                }
                TrainEvent::Probe { fitted: true, val_metric, c, .. } => {
                    bar.println(format!(
                        "epoch 0 (linear probe on the frozen model, C {} chosen on val, no step yet): val {} {}",
                        c.map_or("1".to_string(), |c| c.to_string()),
                        args.options.metric,
                        val_metric.map_or("undefined".to_string(), |v| format!("{v:.4}")),
                    ));
                    event.line(&args.options.metric).timed(train_started.elapsed().as_secs_f64(), None)
                }
                TrainEvent::Epoch { epoch, train_loss, val_metric, improved, .. } => {
                    bar.println(format!(
                        "epoch {}: train loss {train_loss:.4}, val {} {}{}",
                        epoch + 1,
                        args.options.metric,
                        val_metric.map_or("undefined".to_string(), |v| format!("{v:.4}")),
                        if *improved { " (best so far)" } else { "" }
                    ));
                    event.line(&args.options.metric).timed(train_started.elapsed().as_secs_f64(), None)
                }
            };
            writeln!(log, "{}", line.json())?;
        }
        log.flush()?;
    }
    bar.finish_and_clear();
    let train_seconds = train_started.elapsed().as_secs_f64();
    if feeder.is_some() {
        run.train_rows = consumed as usize;
    }

    // Chosen on val: multi-label thresholds, the average with the TF-IDF baseline (for predict).
    pollster::block_on(run.choose_on_val())?;
    for (name, bytes) in pollster::block_on(run.result_files(&files))? {
        let path = args.output.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomic(&path, |w| Ok(w.write_all(&bytes)?))?;
    }
    let peak_flops = peak.as_ref().map(Peak::flops);
    let timing = TrainTiming { seconds: train_seconds, step_seconds, tokens, flops, peak_flops };
    let mut metrics = run.metrics_json_timed(Some(&timing))?;
    let obj = metrics.as_object_mut().expect("an object");
    obj.insert("peak".into(), json!(peak));
    obj.insert("peak_rss_mib".into(), json!(crate::memory::peak_rss_mib()));
    if let Some(feeder) = feeder {
        obj.insert("data_wait_seconds".into(), json!(feeder.waited.as_secs_f64()));
        let stream = feeder.finish()?;
        obj.insert("rows_trained".into(), json!(consumed));
        obj.insert(
            "stream".into(),
            // The reader runs ahead of training: it may have started a pass that trained no row.
            json!({"rows_first_pass": stream.rows, "truncated_first_pass": stream.truncated,
                   "passes_trained": consumed as f64 / stream.rows.max(1) as f64,
                   "passes_started": stream.passes, "skipped_first_pass": stream.skipped}),
        );
    }
    write_json(&args.output.join("metrics.json"), &metrics)?;

    let best_metric = run.session.progress.best_metric;
    if run.session.progress.best_epoch.is_none() && run.session.progress.probe_metric.is_some() {
        eprintln!(
            "no epoch of fine-tuning beat the linear probe's val {}: the model kept is epoch 0, the probe-initialised head on the unchanged encoder",
            args.options.metric
        );
    }
    eprintln!(
        "{}: best epoch {} with val {} {}; {} train / {} val rows ({} skipped, {} truncated to {} tokens) in {:.0} s",
        args.output.display(),
        run.session.progress.best_epoch.map_or(0, |e| e + 1),
        args.options.metric,
        best_metric.map_or("undefined".into(), |v| format!("{v:.4}")),
        run.train_rows,
        run.val_rows,
        run.skipped.len(),
        run.truncated,
        run.max_len,
        started.elapsed().as_secs_f64()
    );
    for s in run.skipped.iter().take(10) {
        eprintln!("  skipped {s}");
    }
    if let Some(line) = run.comparison() {
        eprintln!("{line}");
    }
    if let Some((e, f1)) = &run.ensemble {
        eprintln!(
            "averaged with the TF-IDF baseline (weight {:.1} on the specialist, chosen on val): val macro-F1 {f1:.4}; predict with --ensemble {}",
            e.weight,
            args.output.join(savant_core::baseline::Ensemble::FILE).display()
        );
    }
    if let Some((e, report)) = &run.label_ensemble {
        eprintln!(
            "averaged with the one-vs-rest baseline (weight {:.1} on the specialist, thresholds chosen with it on val): val micro-F1 {:.4}; predict with --ensemble {}",
            e.weight,
            report.get("f1_micro").and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN),
            args.output.join(savant_core::baseline::Ensemble::FILE).display()
        );
    }
    Ok(Trained { probe: run.session.take_probe_fit() })
}

/// Core's errors with its option fields as flags (`parts` is `--threads`).
fn as_flags(e: savant_core::Error) -> anyhow::Error {
    crate::flags::options_error::<TrainOptions>(e, &[("parts", "--threads")])
}

/// A `--stream` run: the label set (given, or read from the shards), the fine-tune set up for
/// `--steps` steps validated every `--eval-every`, and the stream of training rows.
fn streamed_run(
    args: &Args,
    files: &DirFiles,
    val: LabelledRows,
    threads: usize,
    device: &burn::tensor::Device,
) -> Result<(FineTune, LabelledStream<ShardRows>)> {
    let shards = crate::stream::expand(&[args.train.to_string_lossy().into_owned()], "--train")?;
    let mut rows = ShardRows::new(shards.clone(), &[&args.text, &args.label], args.format.as_deref());
    let labels: Vec<String> = match &args.labels {
        Some(list) => list.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
        None => {
            eprintln!("reading the labels of {} shard(s) (--labels skips this pass)", shards.len());
            LabelledStream::scan_labels(&mut rows)?
        }
    };
    let steps = args.steps.expect("clap requires --steps with --stream");
    let eval_every = args.eval_every.unwrap_or(steps);
    if steps == 0 || eval_every == 0 || !steps.is_multiple_of(eval_every) {
        bail!("--steps ({steps}) must be a multiple of --eval-every ({eval_every}), both at least 1");
    }
    if args.shuffle_buffer == 0 {
        bail!("--shuffle-buffer must be at least 1");
    }
    let identity = json!({
        "shards": shards.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "text": args.text, "label": args.label, "shuffle_buffer": args.shuffle_buffer, "steps": steps,
    });
    let plan = StreamPlan { steps, eval_every, identity };
    let run = FineTune::new_streamed(files, args.options(threads), labels, plan, val, device).map_err(as_flags)?;
    let (labels, seed) = (&run.config.labels, args.options.seed);
    let stream = LabelledStream::new(rows, run.tokenizer.clone(), labels, args.shuffle_buffer, seed);
    Ok((run, stream))
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
    // be TrainOptions::default(), or the CLI and the page train different models.
    #[test]
    fn the_flags_defaults_are_cores_defaults() {
        let cli =
            Cli::try_parse_from(["savant", "--model", "m", "--train", "t.csv", "--val", "v.csv", "-o", "out"]).unwrap();
        assert_eq!(cli.args.options(1), TrainOptions::default());
    }
}
