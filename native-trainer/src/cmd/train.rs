//! `savant train`: fine-tune a BERT folder on a labelled train split, validating each epoch.
//! Writes `OUT/model/` (full, partial: an HF folder) or `OUT/adapter/` (lora: PEFT's format;
//! adapter: Savant's), `OUT/metrics.json` (savant eval's keys on val, best epoch) and
//! `OUT/train_log.jsonl`.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use savant_core::data::TableReader;
use savant_core::finetune::peft::write_adapter;
use savant_core::finetune::{new_classifier, prepare, LoraConfig, LoraTarget, ParamCount, Strategy};
use savant_core::model::{classifier_to_safetensors, load_classifier, load_encoder, BertClassifier, ModelFolder};
use savant_core::train::{
    Augment, Job, LabelSet, LabelledTexts, LinearSchedule, OptimConfig, PartResult, RunConfig, Runner, Session,
    TrainEvent, Trainer,
};
use serde_json::json;
use std::sync::Mutex;

use crate::io::{open, write_atomic, write_json};
use crate::model_dir::{device, DirFiles};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Full,
    Partial,
    Adapter,
    Lora,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum ClassWeights {
    /// Every class weighs 1.
    None,
    /// n_rows / (n_classes · n_rows_of_class), sklearn's `compute_class_weight("balanced")`.
    Balanced,
}

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Hugging Face model folder to start from (an encoder such as MiniLM, or a classifier).
    #[arg(long)]
    pub model: PathBuf,
    /// Training split (.csv, .tsv or .jsonl).
    #[arg(long)]
    pub train: PathBuf,
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
    /// What trains: every weight, the top layers, Houlsby adapters, or LoRA updates.
    #[arg(long, value_enum, default_value = "full")]
    pub mode: Mode,
    /// partial: embeddings and this many bottom layers are frozen; `all` trains the classifier only.
    #[arg(long, default_value = "all")]
    pub freeze_layers: String,
    /// adapter: bottleneck width.
    #[arg(long, default_value_t = 64)]
    pub adapter_dim: usize,
    /// lora: rank.
    #[arg(long, default_value_t = 8)]
    pub lora_r: usize,
    /// lora: scaling numerator (the update is scaled by alpha / r).
    #[arg(long, default_value_t = 16.0)]
    pub lora_alpha: f64,
    #[arg(long, default_value_t = 0.1)]
    pub lora_dropout: f64,
    /// lora: comma-separated linears: query, key, value, attention.output.dense,
    /// intermediate.dense, output.dense.
    #[arg(long, default_value = "query,value")]
    pub lora_targets: String,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Peak learning rate (default: 5e-5 for full and partial, 5e-4 for adapter and lora).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated and counted
    /// (default: 128, or the model's max positions when fewer).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Warmup: a fraction of all steps (< 1) or a number of steps.
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    /// AdamW's decoupled weight decay (not on biases and LayerNorms).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, value_enum, default_value = "none")]
    pub class_weights: ClassWeights,
    /// Augmentation: probability of deleting each word piece of a training text (each epoch anew).
    #[arg(long, default_value_t = 0.0)]
    pub augment_delete: f64,
    /// Augmentation: probability of swapping each word piece with the next.
    #[arg(long, default_value_t = 0.0)]
    pub augment_swap: f64,
    /// Augmentation: probability of replacing each word piece with [MASK].
    #[arg(long, default_value_t = 0.0)]
    pub augment_mask: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop after this many epochs without improvement of --metric.
    #[arg(long)]
    pub patience: Option<usize>,
    /// The validation metric that picks the best epoch: a key of savant eval's report.
    #[arg(long, default_value = "f1_macro")]
    pub metric: String,
    /// Read the loss back and log every this many steps.
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    /// auto, cpu, wgpu, cuda or cuda:N.
    #[arg(long, visible_alias = "backend", default_value = "auto")]
    pub device: String,
    /// CPU: each batch is cut into this many parts trained in parallel (default: one per core,
    /// at most one per 4 rows). A resumed run must use the same number.
    #[arg(long)]
    pub threads: Option<usize>,
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
    fn strategy(&self, layers: usize) -> Result<Strategy> {
        Ok(match self.mode {
            Mode::Full => Strategy::Full,
            Mode::Partial => Strategy::Partial {
                frozen_layers: match self.freeze_layers.as_str() {
                    "all" => None,
                    n => {
                        let k: usize =
                            n.parse().map_err(|_| anyhow!("--freeze-layers must be a number or 'all', got '{n}'"))?;
                        if k > layers {
                            bail!("--freeze-layers {k}: the model has {layers} layers");
                        }
                        Some(k)
                    }
                },
            },
            Mode::Adapter => Strategy::Adapter { dim: self.adapter_dim },
            Mode::Lora => {
                let targets = self
                    .lora_targets
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        LoraTarget::parse(s).ok_or_else(|| {
                            anyhow!("--lora-targets: '{s}' is not one of query, key, value, attention.output.dense, intermediate.dense, output.dense")
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if self.lora_r == 0 {
                    bail!("--lora-r must be at least 1");
                }
                if !(0.0..1.0).contains(&self.lora_dropout) {
                    bail!("--lora-dropout must be in [0, 1)");
                }
                Strategy::Lora(LoraConfig {
                    r: self.lora_r,
                    alpha: self.lora_alpha,
                    dropout: self.lora_dropout,
                    targets,
                })
            }
        })
    }
}

/// `(text, label)` of every usable row; rows without text or label are skipped and counted.
fn read_labelled(path: &Path, args: &Args) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let format = super::format_for(path, args.format.as_deref())?;
    let name = path.display().to_string();
    let mut reader = TableReader::new(BufReader::new(open(path)?), format, &name)?;
    let (t, l) = (reader.column(&args.text)?, reader.column(&args.label)?);
    let (mut texts, mut labels, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(row) = reader.next_row()? {
        match row {
            Ok(row) => {
                let label = row.fields[l].trim();
                if label.is_empty() {
                    skipped.push(format!("{name} line {}: empty label", row.line));
                } else if row.fields[t].trim().is_empty() {
                    skipped.push(format!("{name} line {}: empty text", row.line));
                } else {
                    labels.push(label.to_string());
                    texts.push(row.fields[t].clone());
                }
            }
            Err(m) => skipped.push(format!("{name} line {}: {}: {}", m.line, m.kind, m.message)),
        }
    }
    Ok((texts, labels, skipped))
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let existing = ["metrics.json", "checkpoints", "model", "adapter"].iter().any(|f| args.output.join(f).exists());
    if existing && !args.resume && !args.overwrite {
        bail!(
            "{} already holds a run; pass --resume to continue it, --overwrite to replace it, or another -o",
            args.output.display()
        );
    }
    if args.overwrite && !args.resume {
        for f in ["checkpoints", "model", "adapter"] {
            let p = args.output.join(f);
            if p.exists() {
                std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    if args.batch_size == 0 || args.grad_accum == 0 || args.epochs == 0 {
        bail!("--batch-size, --grad-accum and --epochs must be at least 1");
    }
    let files = DirFiles::new(&args.model)?;
    let mut folder = ModelFolder::open(&files)?;
    let positions = folder.config.max_position_embeddings;
    let max_len = args.max_len.unwrap_or(folder.default_max_len().min(128));
    if max_len > positions {
        bail!("--max-len {max_len} is more than the model's {positions} positions (max_position_embeddings)");
    }
    if max_len < 2 {
        bail!("--max-len must leave room for [CLS] and [SEP] (at least 2)");
    }
    folder.tokenizer.set_max_len(Some(max_len))?;
    let strategy = args.strategy(folder.config.num_hidden_layers)?;
    for (flag, p) in [
        ("--augment-delete", args.augment_delete),
        ("--augment-swap", args.augment_swap),
        ("--augment-mask", args.augment_mask),
    ] {
        if !(0.0..1.0).contains(&p) {
            bail!("{flag} must be a probability in [0, 1), got {p}");
        }
    }
    let mask_id = if args.augment_mask > 0.0 {
        folder
            .tokenizer
            .token_id("[MASK]")
            .ok_or_else(|| anyhow!("--augment-mask: the tokenizer has no [MASK] token"))?
    } else {
        0
    };
    let augment = Augment { delete: args.augment_delete, swap: args.augment_swap, mask: args.augment_mask, mask_id };

    let (train_texts, train_labels, mut skipped) = read_labelled(&args.train, &args)?;
    let (val_texts, val_labels, val_skipped) = read_labelled(&args.val, &args)?;
    skipped.extend(val_skipped);
    let labels = LabelSet::from_labels(train_labels.iter().map(String::as_str), &args.train.display().to_string())?;
    // A --metric that is not a key of the report fails now, not after the first epoch.
    savant_core::train::metric_value(&dummy_report(&labels.names), &args.metric)?;
    if val_texts.is_empty() {
        bail!("{}: the validation split has no usable rows", args.val.display());
    }
    let train_ids = labels.ids(train_labels.iter().map(String::as_str), &args.train.display().to_string())?;
    let val_ids = labels.ids(val_labels.iter().map(String::as_str), &args.val.display().to_string())?;
    let encode = |texts: &[String]| -> Result<Vec<savant_core::tokenize::Encoded>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(folder.tokenizer.encode_each(&refs)?)
    };
    let train = LabelledTexts { encoded: encode(&train_texts)?, labels: train_ids };
    let val = LabelledTexts { encoded: encode(&val_texts)?, labels: val_ids };
    let truncated = train.encoded.iter().chain(&val.encoded).filter(|e| e.truncated).count();

    let (base_device, device_name) = device(&args.device)?;
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None if device_name.starts_with("cpu") => {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min((args.batch_size / 4).max(1))
        }
        None => 1,
    };
    let train_device = base_device.clone().autodiff();
    let config = folder.config.clone().with_labels(labels.names.clone());
    let model = base_classifier(&files, &folder, &config, args.seed, &train_device)?;
    let model = prepare(model, &strategy, args.seed, &train_device)?;
    let count = ParamCount::of(&model);
    eprintln!(
        "{} on {device_name} ({threads} thread{}): {}",
        strategy.name(),
        if threads == 1 { "" } else { "s" },
        count.summary()
    );

    let class_weights = match args.class_weights {
        ClassWeights::None => None,
        ClassWeights::Balanced => {
            let mut counts = vec![0usize; labels.len()];
            for &l in &train.labels {
                counts[l] += 1;
            }
            let n = train.len() as f32;
            Some(counts.iter().map(|&c| n / (labels.len() as f32 * c.max(1) as f32)).collect())
        }
    };
    let lr = args.lr.unwrap_or(match args.mode {
        Mode::Full | Mode::Partial => 5e-5,
        Mode::Adapter | Mode::Lora => 5e-4,
    });
    let optim = OptimConfig {
        lr,
        weight_decay: args.weight_decay,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        ..OptimConfig::default()
    };
    let run_config = RunConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        seed: args.seed,
        patience: args.patience,
        metric: args.metric.clone(),
        log_every: args.log_every,
        parts: threads,
        augment,
    };
    // The schedule needs the step count, which the session knows once it has batched the data.
    let steps_per_epoch = train.len().div_ceil(args.batch_size).div_ceil(args.grad_accum);
    let schedule = LinearSchedule::new(lr, args.warmup, steps_per_epoch * args.epochs);
    let trainer = Trainer::new(model, optim, schedule, class_weights, &train_device);
    let pad_id = folder.tokenizer.pad_id();
    let mut session = Session::new(trainer, run_config, train, val, config.clone(), pad_id, &train_device)?;

    let checkpoints = args.output.join("checkpoints");
    if args.resume {
        let (path, checkpoint) = latest_checkpoint(&checkpoints)?
            .ok_or_else(|| anyhow!("--resume: {} holds no checkpoint", checkpoints.display()))?;
        session.restore(checkpoint, &path.display().to_string())?;
        eprintln!("resumed from {} (step {})", path.display(), session.trainer.step);
    }
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
        writeln!(log, "{}", json!({"event": "resume", "step": session.trainer.step}))?;
    }
    let bar = ProgressBar::new(session.total_steps() as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] step {pos}/{len} {msg} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("train");
    let runner = Threads(threads);
    let train_started = Instant::now();
    let mut tokens = 0usize;
    // Seconds in optimiser steps, validation passes excluded (for tokens/s).
    let mut step_seconds = 0.0;
    let mut seconds_at_log = 0.0;
    while !session.finished() {
        let call = Instant::now();
        let events = pollster::block_on(session.advance_with(&runner))?;
        let epoch_ended = events.iter().any(|e| matches!(e, TrainEvent::Epoch { .. }));
        if !epoch_ended {
            step_seconds += call.elapsed().as_secs_f64();
        }
        bar.set_position(session.trainer.step as u64);
        let every = args.checkpoint_every.is_some_and(|n| n > 0 && session.trainer.step % n == 0);
        if epoch_ended || every {
            write_checkpoint(&mut session, &checkpoints)?;
        }
        for event in events {
            let line = match &event {
                TrainEvent::Step { epoch, step, total_steps, loss, lr, tokens: n } => {
                    tokens += n;
                    let secs = step_seconds - seconds_at_log;
                    seconds_at_log = step_seconds;
                    let tps = *n as f64 / secs.max(1e-9);
                    bar.set_message(format!("epoch {} loss {loss:.4} lr {lr:.2e} {tps:.0} tokens/s", epoch + 1));
                    json!({"event": "step", "epoch": epoch + 1, "step": step, "total_steps": total_steps,
                           "loss": loss, "lr": lr, "tokens": n, "tokens_per_second": tps,
                           "seconds": train_started.elapsed().as_secs_f64()})
                }
                TrainEvent::Epoch { epoch, step, train_loss, val_metric, improved } => {
                    bar.println(format!(
                        "epoch {}: train loss {train_loss:.4}, val {} {}{}",
                        epoch + 1,
                        args.metric,
                        val_metric.map_or("undefined".to_string(), |v| format!("{v:.4}")),
                        if *improved { " (best so far)" } else { "" }
                    ));
                    json!({"event": "epoch", "epoch": epoch + 1, "step": step, "train_loss": train_loss,
                           "val_metric": val_metric, "metric": args.metric, "improved": improved,
                           "seconds": train_started.elapsed().as_secs_f64()})
                }
            };
            writeln!(log, "{line}")?;
        }
        log.flush()?;
    }
    bar.finish_and_clear();
    let train_seconds = train_started.elapsed().as_secs_f64();

    let best = session.best_model();
    let base_name = args.model.display().to_string();
    save_result(&best, &strategy, &config, &files, &args.output, &base_name)?;
    let report = session.best_report.clone().ok_or_else(|| anyhow!("no epoch finished"))?;
    let mut metrics = serde_json::to_value(&report)?;
    let obj = metrics.as_object_mut().expect("an object");
    obj.insert("best_epoch".into(), json!(session.progress.best_epoch.map(|e| e + 1)));
    obj.insert("selection_metric".into(), json!(args.metric));
    obj.insert("mode".into(), json!(strategy.name()));
    obj.insert("trainable_params".into(), json!(count.trainable));
    obj.insert("total_params".into(), json!(count.total));
    obj.insert("train_rows".into(), json!(train_texts.len()));
    obj.insert("val_rows".into(), json!(val_texts.len()));
    obj.insert("rows_skipped".into(), json!(skipped.len()));
    obj.insert("skipped".into(), json!(skipped.iter().take(100).collect::<Vec<_>>()));
    obj.insert("truncated".into(), json!(truncated));
    obj.insert("stopped_early".into(), json!(session.progress.stopped_early));
    obj.insert("train_seconds".into(), json!(train_seconds));
    obj.insert("train_step_seconds".into(), json!(step_seconds));
    obj.insert("train_tokens".into(), json!(tokens));
    obj.insert("train_tokens_per_second".into(), json!(tokens as f64 / step_seconds.max(1e-9)));
    obj.insert("peak_rss_mib".into(), json!(super::text_input::peak_rss_mib()));
    write_json(&args.output.join("metrics.json"), &metrics)?;

    let best_metric = session.progress.best_metric;
    eprintln!(
        "{}: best epoch {} with val {} {}; {} train / {} val rows ({} skipped, {} truncated to {} tokens) in {:.0} s",
        args.output.display(),
        session.progress.best_epoch.map_or(0, |e| e + 1),
        args.metric,
        best_metric.map_or("undefined".into(), |v| format!("{v:.4}")),
        train_texts.len(),
        val_texts.len(),
        skipped.len(),
        truncated,
        max_len,
        started.elapsed().as_secs_f64()
    );
    for s in skipped.iter().take(10) {
        eprintln!("  skipped {s}");
    }
    Ok(())
}

/// The classifier to fine-tune: the folder's own head when it is a classifier for exactly these
/// labels, else its encoder with a fresh head (HF's `ignore_mismatched_sizes`).
fn base_classifier(
    files: &DirFiles,
    folder: &ModelFolder,
    config: &savant_core::model::BertConfig,
    seed: u64,
    device: &burn::tensor::Device,
) -> Result<BertClassifier> {
    let mut checkpoint = ModelFolder::checkpoint(files)?;
    if checkpoint.has("classifier.weight") && folder.config.labels == config.labels {
        return Ok(load_classifier(config, &mut checkpoint, device)?.0);
    }
    let (bert, notes) = load_encoder(&folder.config, &mut checkpoint, device)?;
    if !notes.ignored.is_empty() {
        eprintln!("a new classification head is trained; left aside from the checkpoint: {}", notes.ignored.join(", "));
    }
    Ok(new_classifier(bert, config, config.labels.len(), seed, device))
}

/// Tokenizer files copied into a saved model folder, when the base has them.
const TOKENIZER_FILES: &[&str] = &["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"];

fn save_result(
    model: &BertClassifier,
    strategy: &Strategy,
    config: &savant_core::model::BertConfig,
    files: &DirFiles,
    out: &Path,
    base_name: &str,
) -> Result<()> {
    match strategy {
        Strategy::Full | Strategy::Partial { .. } => save_model_folder(model, config, files, &out.join("model")),
        Strategy::Adapter { .. } | Strategy::Lora(_) => {
            let dir = out.join("adapter");
            std::fs::create_dir_all(&dir)?;
            let adapter = pollster::block_on(write_adapter(model, strategy, base_name))?;
            write_atomic(&dir.join("adapter_model.safetensors"), |w| Ok(w.write_all(&adapter.safetensors)?))?;
            write_atomic(&dir.join("adapter_config.json"), |w| Ok(w.write_all(adapter.config_json.as_bytes())?))?;
            // The fine-tuned labels: PEFT's base config knows none of them.
            let config_json = config.to_json("BertForSequenceClassification");
            write_atomic(&dir.join("config.json"), |w| Ok(w.write_all(&config_json)?))?;
            Ok(())
        }
    }
}

/// An HF `BertForSequenceClassification` folder: `config.json` (with the labels),
/// `model.safetensors`, and the base's tokenizer files.
pub fn save_model_folder(
    model: &BertClassifier,
    config: &savant_core::model::BertConfig,
    base: &DirFiles,
    dir: &Path,
) -> Result<()> {
    use savant_core::model::ModelFiles;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let weights = pollster::block_on(classifier_to_safetensors(model))?;
    write_atomic(&dir.join("model.safetensors"), |w| Ok(w.write_all(&weights)?))?;
    let config_json = config.to_json("BertForSequenceClassification");
    write_atomic(&dir.join("config.json"), |w| Ok(w.write_all(&config_json)?))?;
    for name in TOKENIZER_FILES {
        if let Some(bytes) = base.read(name)? {
            write_atomic(&dir.join(name), |w| Ok(w.write_all(&bytes)?))?;
        }
    }
    Ok(())
}

/// A report with every key, to check --metric names one before training starts.
fn dummy_report(classes: &[String]) -> savant_core::metrics::report::EvalReport {
    let p = savant_core::metrics::input::Predictions {
        classes: classes.to_vec(),
        y_true: (0..classes.len()).collect(),
        scores: (0..classes.len() * classes.len())
            .map(|i| if i % (classes.len() + 1) == 0 { 1.0 } else { 0.0 })
            .collect(),
    };
    savant_core::metrics::report::evaluate(&p, &Default::default()).expect("a well-formed report")
}

/// Checkpoints kept in `OUT/checkpoints` (the newest ones).
const KEEP_CHECKPOINTS: usize = 2;

/// Writes `checkpoints/step-N/` whole or not at all (a temporary folder renamed into place), then
/// drops all but the newest [`KEEP_CHECKPOINTS`].
fn write_checkpoint(session: &mut Session, dir: &Path) -> Result<()> {
    let c = pollster::block_on(session.checkpoint())?;
    std::fs::create_dir_all(dir)?;
    let step = session.trainer.step;
    let final_dir = dir.join(format!("step-{step:08}"));
    let tmp = dir.join(format!(".tmp-step-{step:08}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    write_atomic(&tmp.join("model.safetensors"), |w| Ok(w.write_all(&c.model)?))?;
    if let Some(best) = &c.best_model {
        write_atomic(&tmp.join("best.safetensors"), |w| Ok(w.write_all(best)?))?;
    }
    write_atomic(&tmp.join("optimizer.bpk"), |w| Ok(w.write_all(&c.optimizer)?))?;
    write_atomic(&tmp.join("state.json"), |w| Ok(w.write_all(c.state_json.as_bytes())?))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    std::fs::rename(&tmp, &final_dir).with_context(|| format!("renaming {} into place", tmp.display()))?;
    let mut all = checkpoint_dirs(dir)?;
    while all.len() > KEEP_CHECKPOINTS {
        let (_, old) = all.remove(0);
        std::fs::remove_dir_all(&old).ok();
    }
    Ok(())
}

/// `step-N` folders, oldest first.
fn checkpoint_dirs(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok()) {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest checkpoint, read whole.
fn latest_checkpoint(dir: &Path) -> Result<Option<(PathBuf, savant_core::train::SessionCheckpoint)>> {
    let Some((_, path)) = checkpoint_dirs(dir)?.pop() else { return Ok(None) };
    let read = |f: &str| std::fs::read(path.join(f)).with_context(|| format!("reading {}", path.join(f).display()));
    let best = path.join("best.safetensors");
    let checkpoint = savant_core::train::SessionCheckpoint {
        state_json: String::from_utf8(read("state.json")?).context("state.json is not UTF-8")?,
        model: read("model.safetensors")?,
        best_model: if best.exists() { Some(read("best.safetensors")?) } else { None },
        optimizer: read("optimizer.bpk")?,
    };
    Ok(Some((path, checkpoint)))
}

/// Runs the parts of each step on up to `.0` threads, results in part order.
struct Threads(usize);

impl Runner for Threads {
    fn run<'a>(&self, jobs: Vec<Job<'a>>) -> Vec<PartResult> {
        let jobs: Vec<Mutex<Option<Job<'a>>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
        crate::workers::parallel_map(jobs.len(), self.0, |i| {
            let job = jobs[i].lock().expect("a job slot").take().expect("each job runs once");
            job()
        })
    }
}
