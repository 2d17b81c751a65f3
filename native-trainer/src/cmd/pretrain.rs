//! `savant pretrain`: domain-adaptive continued pretraining (BERT's masked-language-model
//! objective) on an unlabelled corpus read as a stream: shards matched by globs, CSV/TSV/JSONL,
//! gzip or not, a seeded shuffle buffer, long documents cut into windows. Writes `OUT/model/`
//! (an HF `BertForMaskedLM` folder that transformers and `savant train` load), `OUT/metrics.json`
//! (held-out perplexity before and after, counts) and `OUT/pretrain_log.jsonl`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::{Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use savant_core::data::rng::SplitMix64;
use savant_core::model::{BertConfig, ModelFiles, ModelFolder, Precision};
use savant_core::pretrain::corpus::{mask_in_batches, Corpus, DocumentSource, SourceRow};
use savant_core::pretrain::{
    load_masked_lm, masked_lm_to_safetensors, perplexity, BertForMaskedLm, MaskedBatch, Masking,
};
use savant_core::tokenize::{Encoded, TextTokenizer};
use savant_core::train::checkpoint::{params_from_safetensors, params_to_safetensors};
use savant_core::train::{batch_training_flops, read_scalar, LinearSchedule, OptimConfig, Throughput, Trainer};
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

/// What a checkpoint holds besides the weights and the optimiser.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// What must not change between the run and its resumption.
    identity: serde_json::Value,
    step: usize,
    /// Windows of the stream the steps so far trained on.
    windows: u64,
    /// The masking generator.
    rng: u64,
    /// Losses of the steps since the last log line.
    pending_losses: Vec<f32>,
    tokens: u64,
    predicted: u64,
    flops: f64,
    seconds: f64,
    data_wait_seconds: f64,
    perplexity_before: f64,
    log: Vec<serde_json::Value>,
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

/// A checkpoint read back: its folder, state, weights and optimiser bytes.
type Found = (PathBuf, Saved, Vec<u8>, Vec<u8>);

/// The newest checkpoint under `dir`.
fn latest(dir: &Path) -> Result<Option<Found>> {
    let Some((_, path)) = crate::checkpoints::step_dirs(dir)?.pop() else { return Ok(None) };
    let read = |f: &str| std::fs::read(path.join(f)).with_context(|| format!("reading {}", path.join(f).display()));
    let saved: Saved = serde_json::from_slice(&read("state.json")?)
        .with_context(|| format!("{}: unreadable state", path.join("state.json").display()))?;
    Ok(Some((path.clone(), saved, read("model.safetensors")?, read("optimizer.bpk")?)))
}

/// Writes `dir/step-N/` for `trainer` and `saved`.
fn write_checkpoint(dir: &Path, trainer: &Trainer<BertForMaskedLm>, saved: &Saved) -> Result<()> {
    let model = pollster::block_on(params_to_safetensors(trainer.model()))?;
    let optimizer =
        trainer.optimizer().into_bytes().map_err(|e| anyhow!("saving the optimiser state: {e:?}"))?.to_vec();
    let state = serde_json::to_vec_pretty(saved)?;
    crate::checkpoints::write_files(
        dir,
        saved.step,
        &[("model.safetensors", &model), ("optimizer.bpk", &optimizer), ("state.json", &state)],
    )
}

pub fn run(mut args: Args) -> Result<()> {
    check(&args)?;
    let shards = crate::stream::expand(&args.corpus, "--corpus")?;
    let files = DirFiles::new(&args.model)?;
    let folder = ModelFolder::open(&files)?;
    let mut tokenizer = folder.tokenizer.clone();
    tokenizer.set_max_len(None)?;
    let config = folder.config.clone();
    // The same default and clamp as train's: 128, or the model's positions when fewer; a length
    // asked for over them is refused.
    let max_len = *args.max_len.get_or_insert(folder.default_max_len().min(128));
    if max_len > config.max_position_embeddings {
        bail!("--max-len {max_len} is more than the model's {} positions", config.max_position_embeddings);
    }
    let masking = Masking::new(&tokenizer, args.mlm_prob, args.whole_word)?;
    let crate::model_dir::Placement { device, name: device_name, parallel, threads, peak, precision } =
        args.place.place(args.batch_size)?;
    if args.scan {
        return scan(&args, corpus(&args, shards, tokenizer, max_len, &masking), &masking);
    }
    let runner = crate::workers::Threads(threads);
    let ad = device.clone().autodiff();
    let mut checkpoint = ModelFolder::checkpoint(&files)?;
    let (model, notes, fresh_head) = load_masked_lm(&config, &mut checkpoint, args.seed, &ad)?;
    for name in &notes.ignored {
        eprintln!("note: {name} is not part of a masked LM; left aside");
    }
    let out_model = args.output.join("model");
    let checkpoints = args.output.join("checkpoints");
    let resumed = if args.resume {
        let found = latest(&checkpoints)?;
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

    let mut corpus = corpus(&args, shards.clone(), tokenizer, max_len, &masking);
    let held_out = corpus.take_held_out(args.eval_docs)?;
    if held_out.is_empty() && args.eval_docs > 0 {
        if corpus.skipped.contains_key("windows_without_a_token_to_predict") {
            bail!(
                "the held-out documents (--eval-docs {}) have no token to predict: every token is special or [UNK]; does the tokenizer's vocabulary fit the text?",
                args.eval_docs
            );
        }
        bail!("the corpus has no usable document to hold out (--eval-docs {})", args.eval_docs);
    }
    let eval_batches = mask_in_batches(&masking, &held_out, args.batch_size, args.seed ^ 0xe7a1);
    let perplexity_before = match &resumed {
        Some((_, saved, _, _)) => saved.perplexity_before,
        None => pollster::block_on(perplexity(&model, &eval_batches, &device))?,
    };
    eprintln!(
        "pretrain on {device_name} ({threads} thread{}{}): {} shard(s), {} held-out windows; held-out perplexity {:.3}{}",
        if threads == 1 { "" } else { "s" },
        if precision == Precision::F32 { String::new() } else { format!(", {precision} matmuls") },
        shards.len(),
        held_out.len(),
        perplexity_before,
        if fresh_head { " (a fresh MLM head: the folder had none)" } else { "" }
    );

    let warmup = if args.warmup < 1.0 { args.warmup * args.steps as f64 } else { args.warmup };
    let optim = OptimConfig { lr: args.lr, weight_decay: args.weight_decay, ..OptimConfig::default() };
    let mut trainer = Trainer::new(model, optim, LinearSchedule::new(args.lr, warmup, args.steps), (), &ad);
    trainer.set_dropout_seed(args.seed);
    trainer.set_precision(precision);
    let params = savant_core::finetune::ParamCount::of(trainer.model());
    let step_memory = savant_core::train::StepMemory {
        params: params.total as u64,
        trained: params.trainable as u64,
        rows: args.batch_size,
        seq: max_len,
        predicted: (args.batch_size as f64 * max_len as f64 * args.mlm_prob).ceil() as usize,
    };
    crate::memory::check_memory(&step_memory, &config, &device_name, parallel.len(), Some(args.grad_accum))?;
    let mut rng = SplitMix64::new(args.seed ^ 0x3a5c);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let mut log = Vec::new();
    let (mut tokens, mut predicted, mut flops, mut window_loss) = (0u64, 0u64, 0f64, Vec::new());
    let (mut consumed, mut prior_seconds, mut prior_wait) = (0u64, 0f64, 0f64);
    if let Some((path, saved, weights, optimizer)) = resumed {
        let source = path.display().to_string();
        if saved.identity != identity {
            bail!("{source}: the checkpoint belongs to another run: {}", differences(&saved.identity, &identity));
        }
        let model = params_from_safetensors(trainer.model().clone(), &weights, &source)?;
        trainer.set_model(model);
        let optim = trainer.optimizer().clone();
        *trainer.optimizer_mut() = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(optimizer))
            .map_err(|e| anyhow!("{source}: unreadable optimiser state: {e:?}"))?;
        trainer.step = saved.step;
        rng = SplitMix64::new(saved.rng);
        window_loss =
            saved.pending_losses.iter().map(|&l| Tensor::from_data(TensorData::new(vec![l], [1]), &ad)).collect();
        (tokens, predicted, flops, log) = (saved.tokens, saved.predicted, saved.flops, saved.log);
        (consumed, prior_seconds, prior_wait) = (saved.windows, saved.seconds, saved.data_wait_seconds);
        eprintln!("resuming from {source} at step {} (window {consumed} of the stream)", saved.step);
    }
    let first_step = trainer.step + 1;
    let bar = step_bar(args.steps as u64);
    bar.set_position(trainer.step as u64);
    if let Some(p) = &peak {
        eprintln!("MFU against a peak of {:.3} TFLOP/s ({})", p.tflops, p.source);
    }
    let mut feeder = Feeder::spawn(Stream(corpus), 4 * args.batch_size * args.grad_accum, consumed);
    let start = Instant::now();
    let seconds_now = |start: &Instant| prior_seconds + start.elapsed().as_secs_f64();
    // The run as it stands after `$step`, to OUT/checkpoints (periodically, and before stopping
    // on bad input).
    macro_rules! checkpoint_at {
        ($step:expr) => {
            write_checkpoint(
                &checkpoints,
                &trainer,
                &Saved {
                    identity: identity.clone(),
                    step: $step,
                    windows: consumed,
                    rng: rng.state(),
                    pending_losses: read_all(&window_loss)?,
                    tokens,
                    predicted,
                    flops,
                    seconds: seconds_now(&start),
                    data_wait_seconds: prior_wait + feeder.waited.as_secs_f64(),
                    perplexity_before,
                    log: log.clone(),
                },
            )?
        };
    }
    for step in first_step..=args.steps {
        let mut texts = Vec::with_capacity(args.batch_size * args.grad_accum);
        while texts.len() < args.batch_size * args.grad_accum {
            match feeder.next() {
                Ok(window) => texts.push(window),
                Err(e) if args.checkpoint_every.is_some() && step > first_step => {
                    // The steps so far are good: keep them for --resume once the shard is fixed.
                    checkpoint_at!(step - 1);
                    bail!(
                        "{e:#}\n(a checkpoint of step {} is in {}: fix the input and --resume)",
                        step - 1,
                        checkpoints.display()
                    );
                }
                Err(e) => return Err(e),
            }
        }
        consumed += texts.len() as u64;
        let refs: Vec<&Encoded> = texts.iter().collect();
        let parts: Vec<MaskedBatch> =
            refs.chunks(args.batch_size.div_ceil(threads)).map(|part| masking.mask(part, &mut rng)).collect();
        for part in &parts {
            tokens += part.tokens.lengths.iter().sum::<usize>() as u64;
            predicted += part.targets.len() as u64;
            flops += batch_training_flops(&config, &part.tokens.lengths, part.targets.len(), true);
        }
        let lr = trainer.schedule.lr(trainer.step);
        let loss =
            crate::memory::guard_step(&device_name, args.batch_size, Some(args.grad_accum), &checkpoints, || {
                if parallel.len() > 1 {
                    trainer.step_on_devices(&parts, &parallel, &runner)
                } else {
                    trainer.step_with(&parts, &runner)
                }
            })?;
        window_loss.push(loss);
        if step % args.log_every == 0 || step == args.steps {
            let mean = mean_loss(std::mem::take(&mut window_loss))?;
            if !mean.is_finite() {
                bail!("the loss became {mean} at step {step} (learning rate {lr:.3e}); lower --lr");
            }
            let seconds = seconds_now(&start);
            let rate = Throughput::new(
                tokens,
                (step * args.batch_size * args.grad_accum) as u64,
                flops,
                seconds,
                peak.as_ref().map(Peak::flops),
            );
            let line = json!({
                "step": step, "loss": mean, "lr": lr, "tokens": tokens, "predicted_tokens": predicted,
                "tokens_per_second": rate.tokens_per_second, "samples_per_second": rate.samples_per_second,
                "model_tflops_per_second": rate.model_tflops_per_second, "mfu": rate.mfu,
                "seconds": seconds, "data_wait_seconds": prior_wait + feeder.waited.as_secs_f64(),
            });
            bar.set_message(format!("loss {mean:.4} · {}", crate::progress::rate_text(&rate)));
            log.push(line);
        }
        bar.inc(1);
        if args.checkpoint_every.is_some_and(|n| step % n == 0) && step < args.steps {
            checkpoint_at!(step);
        }
    }
    bar.finish_and_clear();
    let seconds = seconds_now(&start);
    let rate = Throughput::new(
        tokens,
        (args.steps * args.batch_size * args.grad_accum) as u64,
        flops,
        seconds,
        peak.as_ref().map(Peak::flops),
    );
    let waited = prior_wait + feeder.waited.as_secs_f64();
    let Stream(corpus) = feeder.finish()?;
    let model = trainer.eval_model();
    let perplexity_after = pollster::block_on(perplexity(&model, &eval_batches, &device))?;

    save(&model, &config, &files, &out_model)?;
    write_atomic(&args.output.join("pretrain_log.jsonl"), |w| {
        for line in &log {
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let metrics = json!({
        "perplexity_before": perplexity_before,
        "perplexity_after": perplexity_after,
        "held_out_windows": held_out.len(),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "windows_trained": consumed,
        "max_len": args.max_len,
        "mlm_prob": args.mlm_prob,
        "whole_word": args.whole_word,
        "tokens": tokens,
        "predicted_tokens": predicted,
        "tokens_per_second": rate.tokens_per_second,
        "samples_per_second": rate.samples_per_second,
        "model_tflops_per_second": rate.model_tflops_per_second,
        "mfu": rate.mfu,
        "peak": peak,
        "seconds": seconds,
        "data_wait_seconds": waited,
        "device": device_name,
        "documents": corpus.documents,
        "windows": corpus.windows,
        "split_into_windows": corpus.split_documents,
        "passes": corpus.passes,
        "skipped": corpus.skipped,
        "fresh_head": fresh_head,
    });
    write_json(&args.output.join("metrics.json"), &metrics)?;
    eprintln!(
        "{}: {} steps, {} tokens in {:.0} s ({}; {:.1} s of it waiting for data); held-out perplexity {:.3} → {:.3}",
        args.output.display(),
        args.steps,
        tokens,
        seconds,
        crate::progress::rate_text(&rate),
        waited,
        perplexity_before,
        perplexity_after
    );
    println!("{}", out_model.display());
    Ok(())
}

fn corpus(
    args: &Args,
    shards: Vec<PathBuf>,
    tokenizer: TextTokenizer,
    max_len: usize,
    masking: &Masking,
) -> Corpus<Shards> {
    Corpus::new(Shards::new(args, shards), tokenizer, max_len, masking.clone(), args.shuffle_buffer, args.seed)
}

/// `--scan`: one pass of the corpus through the input pipeline, no model.
fn scan(args: &Args, mut corpus: Corpus<Shards>, masking: &Masking) -> Result<()> {
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let held_out = corpus.take_held_out(args.eval_docs)?.len();
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{prefix} {spinner} {msg} ({elapsed})").expect("valid template"));
    bar.set_prefix("scan");
    let start = Instant::now();
    let mut rng = SplitMix64::new(args.seed ^ 0x3a5c);
    let (mut windows, mut tokens, mut predicted) = (0u64, 0u64, 0u64);
    let mut batch: Vec<Encoded> = Vec::with_capacity(args.batch_size);
    let mut mask = |batch: &mut Vec<Encoded>, predicted: &mut u64| {
        if !batch.is_empty() {
            let refs: Vec<&Encoded> = batch.iter().collect();
            *predicted += masking.mask(&refs, &mut rng).targets.len() as u64;
            batch.clear();
        }
    };
    loop {
        let window = corpus.next_window()?;
        if corpus.passes > 1 {
            break; // the window begins a second pass
        }
        windows += 1;
        tokens += window.ids.len() as u64;
        batch.push(window);
        if batch.len() == args.batch_size {
            mask(&mut batch, &mut predicted);
        }
        if windows % 10_000 == 0 {
            let s = start.elapsed().as_secs_f64();
            bar.set_message(format!("{windows} windows, {tokens} tokens, {:.0} tokens/s", tokens as f64 / s));
        }
    }
    mask(&mut batch, &mut predicted);
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let report = json!({
        "documents": corpus.documents,
        "windows": windows,
        "held_out_windows": held_out,
        "split_into_windows": corpus.split_documents,
        "skipped": corpus.skipped,
        "tokens": tokens,
        "predicted_tokens": predicted,
        "seconds": seconds,
        "tokens_per_second": tokens as f64 / seconds.max(1e-9),
        "windows_per_second": windows as f64 / seconds.max(1e-9),
        "max_len": args.max_len,
        "shuffle_buffer": args.shuffle_buffer,
        "peak_rss_mib": crate::memory::peak_rss_mib(),
    });
    write_json(&args.output.join("scan.json"), &report)?;
    eprintln!(
        "{}: {} documents → {windows} windows ({} split), {tokens} tokens in {seconds:.1} s ({:.0} tokens/s); peak memory {} MiB",
        args.output.display(),
        corpus.documents,
        corpus.split_documents,
        tokens as f64 / seconds.max(1e-9),
        crate::memory::peak_rss_mib().map_or("?".into(), |m| format!("{m:.0}"))
    );
    Ok(())
}

/// The pending losses' values.
fn read_all(losses: &[Tensor<1>]) -> Result<Vec<f32>> {
    losses.iter().map(|l| Ok(pollster::block_on(read_scalar(l.clone()))? as f32)).collect()
}

/// "key: checkpoint A vs now B" for every key that differs.
fn differences(saved: &serde_json::Value, now: &serde_json::Value) -> String {
    now.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| saved.get(k.as_str()) != Some(v))
        .map(|(k, v)| {
            format!("{k}: checkpoint {} vs now {v}", saved.get(k.as_str()).unwrap_or(&serde_json::Value::Null))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn check(args: &Args) -> Result<()> {
    if args.steps == 0 || args.batch_size == 0 || args.grad_accum == 0 || args.log_every == 0 {
        bail!("--steps, --batch-size, --grad-accum and --log-every must be at least 1");
    }
    if let Some(n) = args.max_len.filter(|&n| n < 3) {
        bail!("--max-len {n} leaves no room for a token between [CLS] and [SEP]");
    }
    if args.lr.is_nan() || args.lr < 0.0 || args.warmup.is_nan() || args.warmup < 0.0 {
        bail!("--lr and --warmup must be 0 or more");
    }
    if args.checkpoint_every == Some(0) {
        bail!("--checkpoint-every must be at least 1");
    }
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

    fn rewind(&mut self) {
        (self.reader, self.next) = (None, 0);
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

/// Reads a loss back from the device.
fn read(t: Tensor<1>) -> Result<f64> {
    Ok(pollster::block_on(read_scalar(t))?)
}

fn mean_loss(losses: Vec<Tensor<1>>) -> Result<f64> {
    let n = losses.len();
    let sum = losses.into_iter().reduce(|a, b| a + b).ok_or_else(|| anyhow!("no step to log"))?;
    Ok(read(sum)? / n as f64)
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

/// `OUT/model/`: config.json (`BertForMaskedLM`), model.safetensors (HF keys) and the tokenizer
/// files of the base folder.
fn save(model: &BertForMaskedLm, config: &BertConfig, base: &DirFiles, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let weights = pollster::block_on(masked_lm_to_safetensors(model))?;
    write_atomic(&dir.join("model.safetensors"), |w| Ok(w.write_all(&weights)?))?;
    let config_json = config.to_json("BertForMaskedLM");
    write_atomic(&dir.join("config.json"), |w| Ok(w.write_all(&config_json)?))?;
    for name in savant_core::train::setup::TOKENIZER_FILES {
        if let Some(bytes) = base.read(name)? {
            write_atomic(&dir.join(name), |w| Ok(w.write_all(&bytes)?))?;
        }
    }
    Ok(())
}
