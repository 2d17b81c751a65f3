//! Setting up a fine-tuning run from a model folder, two labelled tables and options, and
//! turning its result into files: what `savant train` and the page's trainer share, so the two
//! cannot drift. The options carry the CLI's defaults; the page sends the same fields as JSON.

use std::io::Read;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::thresholds::{self, ThresholdChoice, Thresholds};
use super::{
    Augment, Classify, ClassifyConfig, LabelSet, LabelledTexts, LinearSchedule, OptimConfig, RunConfig, Session,
    TrainData, Trainer,
};
use crate::data::TableReader;
use crate::finetune::peft::write_adapter;
use crate::finetune::{new_classifier, prepare, LoraConfig, LoraTarget, ParamCount, Strategy};
use crate::infer::{softmax_rows, TextBatches, TextModel, WindowOutputs};
use crate::long::{Aggregate, DocWindows, LongMode, LongText};
use crate::metrics::multilabel::column;
use crate::model::{
    classifier_to_safetensors, load_classifier, load_encoder, BertClassifier, BertConfig, Head, ModelFiles,
    ModelFolder, Pooling,
};
use crate::model::{sentence_config_json, SENTENCE_CONFIG};
use crate::tokenize::TextTokenizer;
use crate::{Error, Result};

/// What trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Partial,
    Adapter,
    Lora,
}

/// Per-class loss weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ClassWeights {
    /// Every class weighs 1.
    None,
    /// n_rows / (n_classes · n_rows_of_class), sklearn's `compute_class_weight("balanced")`.
    Balanced,
}

/// What the classification head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum HeadChoice {
    /// The folder's own sentence pooling when it declares one (`1_Pooling/config.json`, as
    /// sentence-transformers checkpoints do), else BERT's pooler.
    Auto,
    /// tanh(dense([CLS])), HF's `BertForSequenceClassification`.
    Pooler,
    /// The mean of the token vectors (padding left out).
    Mean,
    /// The first token's vector.
    Cls,
    /// The element-wise maximum over the tokens.
    Max,
}

/// Where the head starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum HeadInit {
    /// A logistic regression fitted on the frozen model's features of the training split
    /// (LP-FT: Kumar et al., ICLR 2022), validated as epoch 0.
    Probe,
    /// HF's fresh head: N(0, initializer_range) weights, zero bias.
    Random,
}

/// Every setting of a run, with `savant train`'s defaults (the flags of the same names).
/// Errors name an option by its field name; the CLI, whose flags are these fields (feature
/// `cli`), shows them as flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// What trains: every weight, the top layers, Houlsby adapters, or LoRA updates.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = TrainOptions::default().mode))]
    pub mode: Mode,
    /// partial: the embeddings and this many bottom layers are frozen: a number, `half` (the
    /// bottom half, rounded down) or `all` (the classifier alone trains).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().freeze_layers))]
    pub freeze_layers: FreezeLayers,
    /// adapter: bottleneck width.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().adapter_dim))]
    pub adapter_dim: usize,
    /// lora: rank.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().lora_r))]
    pub lora_r: usize,
    /// lora: scaling numerator (the update is scaled by alpha / r).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().lora_alpha))]
    pub lora_alpha: f64,
    /// lora: dropout on the update's input.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().lora_dropout))]
    pub lora_dropout: f64,
    /// lora: the linears it wraps, comma-separated: query, key, value, attention.output.dense,
    /// intermediate.dense, output.dense.
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ',', default_values_t = TrainOptions::default().lora_targets))]
    pub lora_targets: Vec<String>,
    /// Passes over the training split.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().epochs))]
    pub epochs: usize,
    /// Peak learning rate (default: 5e-5 for full and partial, 5e-4 for adapter, 1e-3 for lora).
    #[cfg_attr(feature = "cli", arg(long))]
    pub lr: Option<f64>,
    /// Texts (windows, with long = windows) per micro-batch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().batch_size))]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().grad_accum))]
    pub grad_accum: usize,
    /// Tokens per text, [CLS] and [SEP] included; longer texts are read as `long` says and
    /// counted (default: 128, or the model's max positions when fewer).
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_len: Option<usize>,
    /// Warm-up: a fraction of all steps (< 1) or a number of steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().warmup))]
    pub warmup: f64,
    /// AdamW's decoupled weight decay (not on biases and LayerNorms).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().weight_decay))]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().max_grad_norm))]
    pub max_grad_norm: f64,
    /// Per-class loss weights.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = TrainOptions::default().class_weights))]
    pub class_weights: ClassWeights,
    /// Augmentation: probability of deleting each word piece of a training text (each epoch anew).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().augment_delete))]
    pub augment_delete: f64,
    /// Augmentation: probability of swapping each word piece with the next.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().augment_swap))]
    pub augment_swap: f64,
    /// Augmentation: probability of replacing each word piece with [MASK].
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().augment_mask))]
    pub augment_mask: f64,
    /// Seeds the head, dropout, shuffling and augmentation.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().seed))]
    pub seed: u64,
    /// Stop after this many epochs without improvement of `metric`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub patience: Option<usize>,
    /// The validation metric that picks the best epoch: a key of savant eval's report.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().metric))]
    pub metric: String,
    /// Read the loss back and log every this many steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().log_every))]
    pub log_every: usize,
    /// Each batch is cut into this many parts (threads natively; a resumed run needs the same).
    #[cfg_attr(feature = "cli", arg(skip = TrainOptions::default().parts))]
    pub parts: usize,
    /// What the classification head reads.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = TrainOptions::default().head))]
    pub head: HeadChoice,
    /// Where a new head starts.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = TrainOptions::default().head_init))]
    pub head_init: HeadInit,
    /// The head's peak learning rate, on the same schedule (default: `lr`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub head_lr: Option<f64>,
    /// Fit the TF-IDF + logistic-regression baseline on the same splits first (seconds), to
    /// report beside the specialist.
    #[cfg_attr(feature = "cli", arg(long = "no-baseline", action = clap::ArgAction::SetFalse, help = "Skip the TF-IDF + logistic-regression baseline fitted on the same splits for comparison"))]
    pub baseline: bool,
    /// A text longer than `max_len`: cut it (`truncate`), keep its first quarter and last three
    /// quarters of the budget (`head-tail`), or read every token in windows of `max_len`
    /// overlapping by `stride` (`windows`), whose outputs are aggregated into the text's.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = TrainOptions::default().long))]
    pub long: LongMode,
    /// windows: tokens shared by neighbouring windows (default: a quarter of a window's text tokens).
    #[cfg_attr(feature = "cli", arg(long))]
    pub stride: Option<usize>,
    /// windows: the first this many windows of each text (the texts cut are counted).
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_windows: Option<usize>,
    /// windows: a text's logits from its windows' (their mean or element-wise maximum);
    /// `mean-pool` classifies a text from the mean of its windows' features, trained end to end
    /// on whole texts (`batch_size` windows a batch); in prediction it equals mean-logits.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = TrainOptions::default().aggregate))]
    pub aggregate: Aggregate,
    /// Multi-label rows: the label column holds each row's labels joined by this (or a JSON
    /// array); the head trains with sigmoid + binary cross-entropy (HF's
    /// `multi_label_classification`) and a label applies when its probability reaches its
    /// threshold.
    #[cfg_attr(feature = "cli", arg(long))]
    pub label_sep: Option<String>,
    /// Multi-label rows: keep a row whose label set is empty (no label applies, as
    /// scikit-learn's multi-label targets allow) instead of leaving it out as missing_label.
    #[cfg_attr(feature = "cli", arg(long))]
    pub allow_empty_labels: bool,
    /// Multi-label: the thresholds, chosen on val to maximise the F1 of `metric` — `global` (one
    /// for every label) or `per-label` — or a probability for every label.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().thresholds))]
    pub thresholds: ThresholdChoice,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            mode: Mode::Full,
            freeze_layers: FreezeLayers::default(),
            adapter_dim: 64,
            lora_r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.1,
            lora_targets: vec!["query".into(), "value".into()],
            epochs: 3,
            lr: None,
            batch_size: 16,
            grad_accum: 1,
            max_len: None,
            warmup: 0.1,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            class_weights: ClassWeights::None,
            augment_delete: 0.0,
            augment_swap: 0.0,
            augment_mask: 0.0,
            seed: 42,
            patience: None,
            metric: "f1_macro".into(),
            log_every: 10,
            parts: 1,
            head: HeadChoice::Auto,
            head_init: HeadInit::Probe,
            head_lr: None,
            baseline: true,
            long: LongMode::Truncate,
            stride: None,
            max_windows: None,
            aggregate: Aggregate::MeanLogits,
            label_sep: None,
            allow_empty_labels: false,
            thresholds: ThresholdChoice::default(),
        }
    }
}

impl TrainOptions {
    /// How texts longer than `max_len` are read.
    pub fn long_text(&self) -> LongText {
        LongText { mode: self.long, stride: self.stride, max_windows: self.max_windows }
    }

    /// The peak learning rate, defaulted by mode.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.mode {
            Mode::Full | Mode::Partial => 5e-5,
            Mode::Adapter => 5e-4,
            // Chosen on CFPB's val rows (bench/lr_sweep.py, bench/results/lr_sweep.json):
            // 0.699 at 5e-4, 0.714 at 1e-3, 0.701 at 2e-3 (probe 0.677).
            Mode::Lora => 1e-3,
        })
    }

    /// The strategy for a model of `layers` layers; errors name the option at fault.
    pub fn strategy(&self, layers: usize) -> Result<Strategy> {
        Ok(match self.mode {
            Mode::Full => Strategy::Full,
            Mode::Partial => {
                let frozen_layers = match self.freeze_layers {
                    FreezeLayers::Count(k) if k > layers => {
                        return Err(Error::Option(format!("freeze_layers {k}: the model has {layers} layers")));
                    }
                    FreezeLayers::Count(k) => Some(k),
                    FreezeLayers::Named(FreezeWord::Half) => Some(layers / 2),
                    FreezeLayers::Named(FreezeWord::All) => None,
                };
                Strategy::Partial { frozen_layers }
            }
            Mode::Adapter => {
                if self.adapter_dim == 0 {
                    return Err(Error::Option("adapter_dim must be at least 1".into()));
                }
                Strategy::Adapter { dim: self.adapter_dim }
            }
            Mode::Lora => {
                let targets = self
                    .lora_targets
                    .iter()
                    .map(|s| {
                        LoraTarget::parse(s.trim()).ok_or_else(|| {
                            Error::Option(format!("lora_targets: '{s}' is not one of query, key, value, attention.output.dense, intermediate.dense, output.dense"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if targets.is_empty() {
                    return Err(Error::Option("lora_targets names no layer".into()));
                }
                if self.lora_r == 0 {
                    return Err(Error::Option("lora_r must be at least 1".into()));
                }
                if !(0.0..1.0).contains(&self.lora_dropout) {
                    return Err(Error::Option(format!("lora_dropout must be in [0, 1), got {}", self.lora_dropout)));
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

    /// Checks what does not depend on the model or data.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == 0 || self.grad_accum == 0 || self.epochs == 0 || self.parts == 0 {
            return Err(Error::Option("batch_size, grad_accum, epochs and parts must be at least 1".into()));
        }
        for (name, p) in [
            ("augment_delete", self.augment_delete),
            ("augment_swap", self.augment_swap),
            ("augment_mask", self.augment_mask),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Option(format!("{name} must be a probability in [0, 1), got {p}")));
            }
        }
        let lr = self.lr();
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::Option(format!("lr must be a number ≥ 0, got {lr}")));
        }
        if let Some(h) = self.head_lr.filter(|h| !(h.is_finite() && *h >= 0.0)) {
            return Err(Error::Option(format!("head_lr must be a number ≥ 0, got {h}")));
        }
        if !(self.warmup >= 0.0 && self.weight_decay >= 0.0 && self.max_grad_norm >= 0.0) {
            return Err(Error::Option("warmup, weight_decay and max_grad_norm must not be negative".into()));
        }
        if self.label_sep.as_deref() == Some("") {
            return Err(Error::Option("label_sep must not be empty".into()));
        }
        Ok(())
    }
}

/// `(text, label)` of every usable row of one split, and why the others were left out.
#[derive(Debug, Clone, Default)]
pub struct LabelledRows {
    /// The split's name in messages (a file name).
    pub source: String,
    pub texts: Vec<String>,
    /// Each row's label (multi-label rows: its set joined by the separator).
    pub labels: Vec<String>,
    /// Multi-label rows: each row's label set (empty when read one label per row).
    pub sets: Vec<Vec<String>>,
    /// One line per row left out: where and why.
    pub skipped: Vec<String>,
}

impl LabelledRows {
    /// Reads the `text` and `label` columns; rows with an empty text or label, and malformed
    /// rows, are left out and counted.
    pub fn read<R: Read>(reader: TableReader<R>, text: &str, label: &str) -> Result<LabelledRows> {
        LabelledRows::read_with(reader, text, label, None, false)
    }

    /// [`LabelledRows::read`]; with `sep`, each label cell is a set of labels
    /// ([`crate::data::labels::label_set`]) and a row whose set is empty is left out (kept, with
    /// no label, when `allow_empty`).
    pub fn read_with<R: Read>(
        mut reader: TableReader<R>,
        text: &str,
        label: &str,
        sep: Option<&str>,
        allow_empty: bool,
    ) -> Result<LabelledRows> {
        let name = reader.source_name().to_string();
        let (t, l) = (reader.column(text)?, reader.column(label)?);
        let mut rows = LabelledRows { source: name.clone(), ..LabelledRows::default() };
        while let Some(row) = reader.next_row()? {
            match row {
                Ok(row) => {
                    let set = sep.map(|sep| crate::data::labels::label_set(&row.fields[l], sep));
                    // A JSON array's label may hold the separator: joined, it would read as two.
                    if let (Some(set), Some(sep)) = (&set, sep) {
                        if let Some(bad) = set.iter().find(|label| label.contains(sep)) {
                            let message = format!(
                                "label '{bad}' contains the separator '{sep}' (label_sep): choose another separator"
                            );
                            return Err(Error::invalid(&name, Some(row.line), message));
                        }
                    }
                    let label = match (&set, sep) {
                        (Some(set), Some(sep)) => set.join(sep),
                        _ => row.fields[l].trim().to_string(),
                    };
                    if label.is_empty() && !(allow_empty && sep.is_some()) {
                        let what = if sep.is_some() { "empty label set" } else { "empty label" };
                        rows.skipped.push(format!("{name} line {}: {what}", row.line));
                    } else if row.fields[t].trim().is_empty() {
                        rows.skipped.push(format!("{name} line {}: empty text", row.line));
                    } else {
                        rows.labels.push(label);
                        rows.sets.extend(set);
                        rows.texts.push(row.fields[t].clone());
                    }
                }
                Err(m) => rows.skipped.push(format!("{name} line {}: {}: {}", m.line, m.kind, m.message)),
            }
        }
        Ok(rows)
    }
}

/// Texts and the windows they became ([`TrainOptions::long`]), over both splits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowCounts {
    pub texts: usize,
    pub windows: usize,
    /// Texts cut (past `max_len`, or past `max_windows`).
    pub truncated: usize,
}

impl WindowCounts {
    fn add(&mut self, docs: &DocWindows) {
        self.texts += docs.docs;
        self.windows += docs.windows.len();
        self.truncated += docs.truncated;
    }

    /// Windows per text.
    pub fn mean(&self) -> f64 {
        self.windows as f64 / self.texts.max(1) as f64
    }
}

/// How many of the encoder's layers `partial` freezes (with the embeddings): a number, `"half"`
/// (rounded down; the default: the top half and the head train) or `"all"` (the head alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FreezeLayers {
    Count(usize),
    Named(FreezeWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezeWord {
    Half,
    All,
}

impl Default for FreezeLayers {
    fn default() -> Self {
        FreezeLayers::Named(FreezeWord::Half)
    }
}

impl std::fmt::Display for FreezeLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            FreezeLayers::Count(n) => write!(f, "{n}"),
            FreezeLayers::Named(FreezeWord::Half) => f.write_str("half"),
            FreezeLayers::Named(FreezeWord::All) => f.write_str("all"),
        }
    }
}

impl std::str::FromStr for FreezeLayers {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "half" => Ok(FreezeLayers::Named(FreezeWord::Half)),
            "all" => Ok(FreezeLayers::Named(FreezeWord::All)),
            n => n
                .parse()
                .map(FreezeLayers::Count)
                .map_err(|_| format!("a number of layers, 'half' or 'all', got '{n}'")),
        }
    }
}

/// A run as its helpers see it ([`FineTune::part_spec`]): the options, the classes in order
/// and the loss's class weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartSpec {
    pub options: TrainOptions,
    pub labels: Vec<String>,
    pub class_weights: Option<Vec<f32>>,
}
/// What `metrics.json` says of a run besides its best validation report ([`FineTune::metrics_json`]).
#[derive(Serialize)]
struct RunSummary<'a> {
    best_epoch: Option<usize>,
    selection_metric: &'a str,
    mode: &'a str,
    trainable_params: usize,
    total_params: usize,
    train_rows: usize,
    val_rows: usize,
    rows_skipped: usize,
    skipped: Vec<&'a String>,
    truncated: usize,
    long: LongMode,
    aggregate: Aggregate,
    windows: usize,
    windows_per_text: f64,
    stopped_early: bool,
    head: &'a str,
    head_init: &'a str,
    /// `probe_val_<metric>`: the probe-initialised head's validation (epoch 0).
    #[serde(flatten)]
    probe_val: std::collections::BTreeMap<String, Option<f64>>,
    probe_c: Option<f64>,
    baseline_val_f1_macro: Option<f64>,
    baseline_c: Option<f64>,
    baseline_vocabulary: Option<usize>,
    ensemble_weight: Option<f64>,
    ensemble_val_f1_macro: Option<f64>,
    label_sep: Option<&'a str>,
    baseline_val_f1_micro: Option<f64>,
    baseline_label_c: Option<f64>,
    thresholds: Option<&'a [f64]>,
    val_at_thresholds: Option<&'a serde_json::Value>,
    ensemble_val_f1_micro: Option<&'a serde_json::Value>,
    ensemble_thresholds: Option<&'a [f64]>,
    ensemble_val_at_thresholds: Option<&'a serde_json::Value>,
}

/// What a shell timed of a run (core has no clock): the run's seconds, the seconds in optimiser
/// steps (validation passes left out), and the tokens and model FLOPs those steps trained on.
#[derive(Debug, Clone)]
pub struct TrainTiming {
    pub seconds: f64,
    pub step_seconds: f64,
    pub tokens: usize,
    pub flops: f64,
    /// The device's peak FLOP/s, for the MFU.
    pub peak_flops: Option<f64>,
}

/// [`TrainTiming`] as `metrics.json` reports it, speeds and MFU over the step seconds.
#[derive(Serialize)]
struct TimingFields {
    train_seconds: f64,
    train_step_seconds: f64,
    train_tokens: usize,
    train_tokens_per_second: f64,
    train_model_tflops_per_second: f64,
    train_mfu: Option<f64>,
}

impl From<&TrainTiming> for TimingFields {
    fn from(t: &TrainTiming) -> TimingFields {
        let per_second = |x: f64| x / t.step_seconds.max(1e-9);
        TimingFields {
            train_seconds: t.seconds,
            train_step_seconds: t.step_seconds,
            train_tokens: t.tokens,
            train_tokens_per_second: per_second(t.tokens as f64),
            train_model_tflops_per_second: per_second(t.flops) / 1e12,
            train_mfu: t.peak_flops.map(|p| per_second(t.flops) / p),
        }
    }
}

/// A run ready to go: the session to drive, and what it was built from.
pub struct FineTune {
    pub session: Session<Classify>,
    pub options: TrainOptions,
    pub strategy: Strategy,
    /// The model's config with the fine-tuned labels.
    pub config: BertConfig,
    /// The tokenizer, truncating at `max_len`.
    pub tokenizer: TextTokenizer,
    pub params: ParamCount,
    pub max_len: usize,
    pub train_rows: usize,
    pub val_rows: usize,
    /// Texts cut at `max_len`, or past `max_windows` (train and val).
    pub truncated: usize,
    /// The windows the texts of both splits became, and the texts (equal but for `--long windows`).
    pub windows: WindowCounts,
    /// Rows left out of either split, with where and why.
    pub skipped: Vec<String>,
    /// Things worth telling the user (checkpoint tensors left aside for a fresh head).
    pub notes: Vec<String>,
    /// Set for a run whose training rows are streamed in.
    pub streamed: Option<StreamPlan>,
    /// How the head started: `probe` (a logistic regression on the frozen features), `random`,
    /// or `kept` (the folder's own head for these labels).
    pub head_init: &'static str,
    /// The TF-IDF + logistic-regression baseline on the same train and val rows
    /// ([`TrainOptions::baseline`]; not for a streamed split).
    pub baseline: Option<crate::baseline::BaselineFit>,
    /// Label sets: TF-IDF + one-vs-rest logistic regression on the same splits.
    pub label_baseline: Option<crate::baseline::multilabel::LabelSetFit>,
    /// The best model averaged with the baseline, and that average's val macro-F1, once
    /// [`FineTune::choose_ensemble`] has run.
    pub ensemble: Option<(crate::baseline::Ensemble, f64)>,
    /// Multi-label: the thresholds chosen on val ([`FineTune::choose_on_val`]) and the val report
    /// at them.
    pub thresholds: Option<(Thresholds, serde_json::Value)>,
    /// Multi-label: the best model averaged with the one-vs-rest baseline (weight and thresholds
    /// chosen on val together) and the val report of that average, once
    /// [`FineTune::choose_on_val`] has run.
    pub label_ensemble: Option<(crate::baseline::multilabel::LabelSetEnsemble, serde_json::Value)>,
}

/// A streamed run's length: `steps` optimiser steps, validated every `eval_every` of them (the
/// run's epochs; `steps` a multiple of it), and what identifies the stream for resuming.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub steps: usize,
    pub eval_every: usize,
    pub identity: serde_json::Value,
}

impl FineTune {
    /// What one optimiser step of this run holds in memory (estimated): a micro-batch of
    /// `batch_size` rows (at most the training rows) as wide as the longest training text.
    pub fn step_memory(&self) -> super::StepMemory {
        let streamed = self.streamed.is_some();
        super::StepMemory {
            params: self.params.total as u64,
            trained: self.params.trainable as u64,
            rows: if streamed {
                self.session.config.batch_size
            } else {
                // Rows of a batch are windows when texts are read in windows.
                self.session.config.batch_size.min(self.session.train_len())
            },
            seq: if streamed { self.max_len } else { self.session.longest_train_text() },
            predicted: 0,
        }
    }

    /// A run whose training rows the caller streams in ([`Session::advance`]): `labels`
    /// is the class set (in this order), `stream` how many steps and how often to validate.
    pub fn new_streamed<F: ModelFiles>(
        files: &F,
        options: TrainOptions,
        labels: Vec<String>,
        stream: StreamPlan,
        val: LabelledRows,
        device: &Device,
    ) -> Result<FineTune> {
        let mut names = labels.clone();
        names.sort();
        names.dedup();
        if names.len() != labels.len() || labels.len() < 2 {
            return Err(Error::Option(format!("the label set must name two classes or more, each once: {labels:?}")));
        }
        if options.label_sep.is_some() {
            return Err(Error::Option("label_sep (multi-label) is not supported with a streamed split yet".into()));
        }
        if options.long != LongMode::Truncate {
            return Err(Error::Option(format!(
                "long {}: a streamed split's texts are cut at max_len (windows and head-tail need the training rows in memory)",
                serde_json::to_value(options.long).expect("an enum").as_str().unwrap_or_default()
            )));
        }
        if matches!(options.class_weights, ClassWeights::Balanced) {
            return Err(Error::Option(
                "class_weights balanced needs every training label counted before training: not with a streamed split"
                    .into(),
            ));
        }
        if stream.steps == 0 || stream.eval_every == 0 || !stream.steps.is_multiple_of(stream.eval_every) {
            return Err(Error::Option(format!(
                "a streamed run validates every eval_every steps: steps ({}) must be a multiple of eval_every ({}), both at least 1",
                stream.steps, stream.eval_every
            )));
        }
        FineTune::build(files, options, LabelSet::from_names(labels), None, Some(stream), val, device)
    }

    /// Builds the run: tokenises both splits, loads the model (its own head when it already
    /// classifies these labels, else a fresh one), applies the strategy on `device` (an
    /// autodiff device) and sets up the optimiser and schedule.
    pub fn new<F: ModelFiles>(
        files: &F,
        options: TrainOptions,
        train: LabelledRows,
        val: LabelledRows,
        device: &Device,
    ) -> Result<FineTune> {
        if options.label_sep.is_some() == train.sets.is_empty() || train.sets.is_empty() != val.sets.is_empty() {
            return Err(Error::Option(
                "label_sep (multi-label) and how the splits were read disagree: read both with the separator".into(),
            ));
        }
        let labels = match train.sets.is_empty() {
            true => LabelSet::from_labels(train.labels.iter().map(String::as_str), &train.source)?,
            false => LabelSet::from_labels(train.sets.iter().flatten().map(String::as_str), &train.source)?,
        };
        FineTune::build(files, options, labels, Some(train), None, val, device)
    }

    fn build<F: ModelFiles>(
        files: &F,
        options: TrainOptions,
        labels: LabelSet,
        train: Option<LabelledRows>,
        stream: Option<StreamPlan>,
        val: LabelledRows,
        device: &Device,
    ) -> Result<FineTune> {
        options.check()?;
        let mut folder = ModelFolder::open(files)?;
        let positions = folder.config.max_position_embeddings;
        let max_len = options.max_len.unwrap_or(folder.default_max_len().min(128));
        if max_len > positions {
            return Err(Error::Option(format!(
                "max_len {max_len} is more than the model's {positions} positions (max_position_embeddings)"
            )));
        }
        if max_len < 2 {
            return Err(Error::Option("max_len must leave room for [CLS] and [SEP] (at least 2)".into()));
        }
        folder.tokenizer.set_max_len(Some(max_len))?;
        let strategy = options.strategy(folder.config.num_hidden_layers)?;
        let mask_id = if options.augment_mask > 0.0 {
            folder
                .tokenizer
                .token_id("[MASK]")
                .ok_or_else(|| Error::Option("augment_mask: the tokenizer has no [MASK] token".into()))?
        } else {
            0
        };
        let augment =
            Augment { delete: options.augment_delete, swap: options.augment_swap, mask: options.augment_mask, mask_id };

        // A metric that is not a key of the report fails now, not after the first epoch.
        let multi = options.label_sep.is_some();
        super::metric_value(&every_key_report(&labels.names, multi), &options.metric)?;
        if val.texts.is_empty() {
            return Err(Error::invalid(&val.source, None, "the validation split has no usable rows"));
        }
        let k = labels.len();
        // Each row's class ids, or with label sets its `[rows, k]` 0/1 targets (ids then 0).
        let targets = |rows: &LabelledRows| -> Result<(Vec<usize>, Vec<f32>)> {
            if !multi {
                return Ok((labels.ids(rows.labels.iter().map(String::as_str), &rows.source)?, Vec::new()));
            }
            let mut targets = vec![0.0; rows.sets.len() * k];
            for (i, set) in rows.sets.iter().enumerate() {
                for j in labels.ids(set.iter().map(String::as_str), &rows.source)? {
                    targets[i * k + j] = 1.0;
                }
            }
            Ok((vec![0; rows.sets.len()], targets))
        };
        let long = options.long_text();
        let mut windows = WindowCounts::default();
        let mut encode = |texts: &[String], (ids, targets): (Vec<usize>, Vec<f32>)| -> Result<LabelledTexts> {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let docs = folder.tokenizer.encode_docs(&refs, &long)?;
            windows.add(&docs);
            let windowed = long.mode == LongMode::Windows;
            // A window carries its text's label set, as it carries its text's class.
            let targets = match multi {
                true => docs.doc.iter().flat_map(|&d| targets[d * k..(d + 1) * k].iter().copied()).collect(),
                false => targets,
            };
            Ok(LabelledTexts {
                labels: docs.doc.iter().map(|&d| ids[d]).collect(),
                doc: if windowed { docs.doc } else { Vec::new() },
                encoded: docs.windows,
                targets,
                classes: if multi { k } else { 0 },
            })
        };
        let train_texts = match &train {
            Some(train) => encode(&train.texts, targets(train)?)?,
            None => LabelledTexts::default(),
        };
        let val_texts = encode(&val.texts, targets(&val)?)?;
        let truncated = windows.truncated;

        let config = folder.config.clone().with_labels(labels.names.clone()).with_multi_label(multi);
        let mut notes = Vec::new();
        let (model, config, kept) =
            base_classifier(files, &folder, config, options.head, options.seed, device, &mut notes)?;
        let head_init = match options.head_init {
            _ if kept => "kept",
            HeadInit::Probe if stream.is_some() => {
                notes.push("a streamed split is not held in memory: the head starts at random (a probe-initialised head needs the training rows)".into());
                "random"
            }
            HeadInit::Probe => "probe",
            HeadInit::Random => "random",
        };
        let model = prepare(model, &strategy, options.seed, device)?;
        let params = ParamCount::of(&model);

        let class_weights = match options.class_weights {
            ClassWeights::None => None,
            // Multi-label: each label's pos_weight, negatives over positives (PyTorch's
            // BCEWithLogitsLoss(pos_weight=...)).
            ClassWeights::Balanced if multi => {
                let n = train_texts.len() as f32;
                let positives = (0..k).map(|j| column(&train_texts.targets, k, j).iter().sum::<f32>());
                Some(positives.map(|p| (n - p) / p.max(1.0)).collect())
            }
            ClassWeights::Balanced => {
                let mut counts = vec![0usize; labels.len()];
                for &l in &train_texts.labels {
                    counts[l] += 1;
                }
                let n = train_texts.len() as f32;
                Some(counts.iter().map(|&c| n / (labels.len() as f32 * c.max(1) as f32)).collect())
            }
        };
        let lr = options.lr();
        let optim = OptimConfig {
            lr,
            weight_decay: options.weight_decay,
            max_grad_norm: (options.max_grad_norm > 0.0).then_some(options.max_grad_norm),
            head_lr: options.head_lr,
            ..OptimConfig::default()
        };
        // A streamed run's epochs are its validation rounds.
        let (steps_per_epoch, epochs) = match &stream {
            Some(plan) => (plan.eval_every, plan.steps / plan.eval_every),
            None => (train_texts.len().div_ceil(options.batch_size).div_ceil(options.grad_accum), options.epochs),
        };
        let run_config = RunConfig {
            epochs,
            batch_size: options.batch_size,
            grad_accum: options.grad_accum,
            seed: options.seed,
            patience: options.patience,
            metric: options.metric.clone(),
            log_every: options.log_every,
            parts: options.parts,
        };
        let settings = ClassifyConfig { augment, probe_head: head_init == "probe", aggregate: options.aggregate };
        let schedule = LinearSchedule::new(lr, options.warmup, steps_per_epoch * epochs);
        let trainer = Trainer::new(model, optim, schedule, class_weights, device);
        let pad_id = folder.tokenizer.pad_id();
        let (train_rows, val_rows) = (train_texts.documents(), val_texts.documents());
        let data = match &stream {
            Some(plan) => TrainData::Stream { steps_per_epoch, identity: plan.identity.clone() },
            None => TrainData::Rows(train_texts),
        };
        let session = Session::new(trainer, run_config, settings, data, val_texts, config.clone(), pad_id, device)?;
        // A comparison, not the run: a baseline that cannot be fitted is said, not fatal.
        let baseline = match &train {
            Some(_) if multi => None,
            Some(train) if options.baseline => {
                match crate::baseline::Baseline::fit_rows(train, &val, &Default::default()) {
                    Ok(fit) => Some(fit),
                    Err(e) => {
                        notes.push(format!("no TF-IDF baseline to compare with: {e}"));
                        None
                    }
                }
            }
            _ => None,
        };
        // Label sets: the one-vs-rest baseline instead, compared the same way.
        if multi && train.as_ref().is_some_and(|t| t.sets.iter().all(|set| set.len() < 2)) {
            notes.push(format!(
                "no training row has two labels or more: the separator '{}' never joins two — is this one-label data?",
                options.label_sep.as_deref().unwrap_or_default()
            ));
        }
        let label_baseline = match &train {
            Some(train) if options.baseline && multi => {
                match crate::baseline::multilabel::LabelSetBaseline::fit_rows(train, &val, &Default::default()) {
                    Ok(fit) => Some(fit),
                    Err(e) => {
                        notes.push(format!("no TF-IDF baseline to compare with: {e}"));
                        None
                    }
                }
            }
            _ => None,
        };
        let mut skipped = train.map(|t| t.skipped).unwrap_or_default();
        skipped.extend(val.skipped);
        Ok(FineTune {
            session,
            options,
            strategy,
            config,
            tokenizer: folder.tokenizer,
            params,
            max_len,
            train_rows,
            val_rows,
            truncated,
            windows,
            skipped,
            notes,
            streamed: stream,
            head_init,
            baseline,
            label_baseline,
            ensemble: None,
            thresholds: None,
            label_ensemble: None,
        })
    }

    /// What a helper needs to compute parts of this run's steps ([`FineTune::part_trainer`]).
    pub fn part_spec(&self) -> PartSpec {
        PartSpec {
            options: self.options.clone(),
            labels: self.config.labels.clone(),
            class_weights: self.session.trainer.loss_options().clone(),
        }
    }

    /// A trainer that computes parts of the steps of the run `spec` describes (the page's helper
    /// workers): the run's model from `files`, its strategy applied on `device`, without reading,
    /// tokenising or fitting anything; the trainable values come with each part.
    pub fn part_trainer<F: ModelFiles>(files: &F, spec: &PartSpec, device: &Device) -> Result<Trainer> {
        let o = &spec.options;
        let folder = ModelFolder::open(files)?;
        let strategy = o.strategy(folder.config.num_hidden_layers)?;
        let config = folder.config.clone().with_labels(spec.labels.clone());
        let (model, _, _) = base_classifier(files, &folder, config, o.head, o.seed, device, &mut Vec::new())?;
        let model = prepare(model, &strategy, o.seed, device)?;
        let schedule = LinearSchedule::new(0.0, 0.0, 1);
        Ok(Trainer::new(model, OptimConfig::default(), schedule, spec.class_weights.clone(), device))
    }

    /// `metrics.json`: savant eval's report of the best epoch on val, and how the run went.
    pub fn metrics_json(&self) -> Result<serde_json::Value> {
        self.metrics_json_timed(None)
    }

    /// [`FineTune::metrics_json`] with what the shell timed (it has the clock).
    pub fn metrics_json_timed(&self, timing: Option<&TrainTiming>) -> Result<serde_json::Value> {
        let mut metrics =
            self.session.best_report.clone().ok_or_else(|| {
                Error::invalid("training", None, "no epoch finished, so there is no validation report")
            })?;
        let p = &self.session.progress;
        let label_ensemble = self.label_ensemble.as_ref();
        let summary = RunSummary {
            // 0: the probe-initialised head before any step was never beaten.
            best_epoch: p.best_epoch.map(|e| e + 1).or(p.probe_metric.map(|_| 0)),
            selection_metric: &self.options.metric,
            mode: self.strategy.name(),
            trainable_params: self.params.trainable,
            total_params: self.params.total,
            train_rows: self.train_rows,
            val_rows: self.val_rows,
            rows_skipped: self.skipped.len(),
            skipped: self.skipped.iter().take(100).collect(),
            truncated: self.truncated,
            long: self.options.long,
            aggregate: self.options.aggregate,
            windows: self.windows.windows,
            windows_per_text: self.windows.mean(),
            stopped_early: p.stopped_early,
            head: self.session.best_model().head().name(),
            head_init: self.head_init,
            probe_val: [(format!("probe_val_{}", self.options.metric), p.probe_metric)].into(),
            probe_c: p.probe_c,
            baseline_val_f1_macro: self.baseline.as_ref().map(|b| b.val_macro_f1),
            baseline_c: self.baseline.as_ref().map(|b| b.c),
            baseline_vocabulary: self.baseline.as_ref().map(|b| b.baseline.vocabulary_size()),
            ensemble_weight: self.ensemble.as_ref().map(|(e, _)| e.weight).or(label_ensemble.map(|(e, _)| e.weight)),
            ensemble_val_f1_macro: self.ensemble.as_ref().map(|(_, f1)| *f1),
            label_sep: self.options.label_sep.as_deref(),
            baseline_val_f1_micro: self.label_baseline.as_ref().map(|b| b.val_f1_micro),
            baseline_label_c: self.label_baseline.as_ref().map(|b| b.c),
            thresholds: self.thresholds.as_ref().map(|(t, _)| &t.thresholds[..]),
            val_at_thresholds: self.thresholds.as_ref().map(|(_, r)| r),
            ensemble_val_f1_micro: label_ensemble.and_then(|(_, r)| r.get("f1_micro")),
            ensemble_thresholds: label_ensemble.map(|(e, _)| &e.thresholds.thresholds[..]),
            ensemble_val_at_thresholds: label_ensemble.map(|(_, r)| r),
        };
        let obj = metrics.as_object_mut().expect("a report is an object");
        // The run's fields over the report's (the report's keys are scikit-learn's names).
        for value in [serde_json::to_value(summary), serde_json::to_value(timing.map(TimingFields::from))] {
            if let serde_json::Value::Object(fields) = value.expect("metrics serialise") {
                obj.extend(fields);
            }
        }
        Ok(metrics)
    }

    /// What is chosen on the validation split once training is over, for `metrics_json`,
    /// `result_files` and `predict` to find: the multi-label thresholds ([`FineTune::thresholds`])
    /// and the average with the TF-IDF baseline ([`FineTune::ensemble`]).
    pub async fn choose_on_val(&mut self) -> Result<()> {
        self.choose_thresholds().await?;
        self.choose_ensemble().await
    }

    /// Multi-label: the thresholds `thresholds` asks for, tuned on the best model's validation
    /// probabilities, and the val report at them; then the average with the one-vs-rest
    /// baseline, its weight and thresholds tuned on the same probabilities.
    async fn choose_thresholds(&mut self) -> Result<()> {
        self.thresholds = None;
        self.label_ensemble = None;
        let Some(sep) = self.options.label_sep.clone() else { return Ok(()) };
        let model = self.session.best_model();
        let mut sets = self.session.val_label_sets(&model, &[]).await?;
        let k = self.config.labels.len();
        let chosen = thresholds::tune(&sets.y_true, &sets.scores, k, self.options.thresholds, &self.options.metric);
        // The same probabilities, the sets re-drawn at the chosen thresholds.
        sets.predict_at(&chosen);
        let report = serde_json::to_value(crate::metrics::multilabel::evaluate(&sets)).expect("reports serialise");
        let labels = self.config.labels.clone();
        let saved = Thresholds {
            labels: labels.clone(),
            thresholds: chosen,
            label_sep: sep.clone(),
            chosen: self.options.thresholds.to_string(),
        };
        self.thresholds = Some((saved, report));
        let Some(fit) = &self.label_baseline else { return Ok(()) };
        if fit.baseline.labels != labels || fit.val_probabilities.len() != sets.scores.len() {
            return Ok(());
        }
        let (choice, metric) = (self.options.thresholds, &self.options.metric);
        let (weight, chosen, _) = crate::baseline::multilabel::LabelSetEnsemble::choose(
            &sets.scores,
            &fit.val_probabilities,
            &sets.y_true,
            k,
            choice,
            metric,
        );
        sets.scores =
            crate::baseline::multilabel::LabelSetEnsemble::average(weight, &sets.scores, &fit.val_probabilities);
        sets.predict_at(&chosen);
        let report = serde_json::to_value(crate::metrics::multilabel::evaluate(&sets)).expect("reports serialise");
        let thresholds = Thresholds { labels, thresholds: chosen, label_sep: sep, chosen: choice.to_string() };
        let ensemble =
            crate::baseline::multilabel::LabelSetEnsemble { weight, baseline: fit.baseline.clone(), thresholds };
        self.label_ensemble = Some((ensemble, report));
        Ok(())
    }

    /// Averages the best model with the TF-IDF baseline ([`crate::baseline::Ensemble`]), its
    /// weight chosen on the validation split's macro-F1, into [`FineTune::ensemble`]. Nothing
    /// without a baseline (or one whose classes or rows are not the run's).
    async fn choose_ensemble(&mut self) -> Result<()> {
        self.ensemble = None;
        let Some(fit) = &self.baseline else { return Ok(()) };
        if fit.baseline.classes() != self.config.labels.as_slice() {
            return Ok(());
        }
        let val = self.session.val_predictions(&self.session.best_model()).await?;
        if val.scores.len() != fit.val_probabilities.len() {
            return Ok(());
        }
        let k = self.config.labels.len();
        let (weight, f1) = crate::baseline::Ensemble::choose(&val.scores, &fit.val_probabilities, &val.y_true, k);
        self.ensemble = Some((crate::baseline::Ensemble { weight, baseline: fit.baseline.clone() }, f1));
        Ok(())
    }

    /// One line comparing the specialist's validation macro-F1 with the TF-IDF baseline's and
    /// the untrained encoder's (the probe-initialised head before any step), naming the best.
    pub fn comparison(&self) -> Option<String> {
        if self.options.label_sep.is_some() {
            // Label sets: micro-F1, the specialist's and the baseline's each at their thresholds.
            let specialist = self.thresholds.as_ref()?.1.get("f1_micro")?.as_f64()?;
            let mut rows = vec![("the fine-tuned specialist", specialist)];
            rows.extend(
                self.label_baseline.as_ref().map(|b| ("TF-IDF + one-vs-rest logistic regression", b.val_f1_micro)),
            );
            let averaged = self.label_ensemble.as_ref().and_then(|(_, r)| r.get("f1_micro")?.as_f64());
            rows.extend(averaged.map(|v| ("the two averaged (predict --ensemble)", v)));
            let (best, _) = rows.iter().fold(rows[0], |a, b| if b.1 > a.1 { *b } else { a });
            let listed: Vec<String> = rows.iter().map(|(name, v)| format!("{name} {v:.4}")).collect();
            return Some(format!("val micro-F1 at the tuned thresholds: {}; best: {best}", listed.join(", ")));
        }
        let report = self.session.best_report.as_ref()?;
        let specialist = report.get("f1_macro").and_then(serde_json::Value::as_f64)?;
        let p = &self.session.progress;
        // The probe's macro-F1 is only known when the run selects on it.
        let probe = p.probe_metric.filter(|_| self.options.metric == "f1_macro");
        let mut rows = vec![("the fine-tuned specialist", specialist)];
        rows.extend(self.baseline.as_ref().map(|b| ("TF-IDF + logistic regression", b.val_macro_f1)));
        rows.extend(probe.map(|v| ("the untrained encoder (linear probe)", v)));
        let (best, _) = rows.iter().fold(rows[0], |a, b| if b.1 > a.1 { *b } else { a });
        let listed: Vec<String> = rows.iter().map(|(name, v)| format!("{name} {v:.4}")).collect();
        let kept_probe = p.best_epoch.is_none() && p.probe_metric.is_some();
        Some(format!(
            "val macro-F1: {}; best: {best}{}",
            listed.join(", "),
            if kept_probe { " (no epoch beat the probe: the kept model is the probe-initialised head)" } else { "" }
        ))
    }

    /// The files of the result, named relative to the run folder: `model/…` (full, partial: an
    /// HF `BertForSequenceClassification` folder with the base's tokenizer files) or `adapter/…`
    /// (lora: PEFT's format; adapter: Savant's), from the best epoch's weights; and the average
    /// with the baseline (`savant_ensemble.json`) once chosen.
    pub async fn result_files<F: ModelFiles>(&self, base: &F) -> Result<Vec<(String, Vec<u8>)>> {
        let model = self.session.best_model();
        let mut files = result_files(&model, &self.strategy, &self.config, base, Some(self.max_len)).await?;
        if let Some((e, _)) = &self.ensemble {
            files.push((crate::baseline::Ensemble::FILE.to_string(), e.to_json()));
        }
        if let Some((e, _)) = &self.label_ensemble {
            files.push((crate::baseline::Ensemble::FILE.to_string(), e.to_json()));
        }
        if let Some((t, _)) = &self.thresholds {
            // Beside the weights predict loads: the adapter's folder, or the model's.
            let dir = if files.iter().any(|(name, _)| name.starts_with("adapter/")) { "adapter" } else { "model" };
            files.push((format!("{dir}/{}", Thresholds::FILE), t.to_json()));
        }
        Ok(files)
    }

    /// A multi-label run's sets for `[texts, labels]` probabilities from
    /// [`FineTune::predict_windows`]: at the thresholds chosen on val for the model alone, or
    /// for its average with the baseline (`ensemble`); 0.5 each before they are chosen. `None`
    /// for one label per row.
    pub fn label_sets(&self, probs: &[f32], ensemble: bool) -> Option<Vec<String>> {
        let labels = &self.config.labels;
        if !self.config.multi_label() || labels.is_empty() {
            return None;
        }
        let chosen = match (&self.label_ensemble, &self.thresholds, ensemble) {
            (Some((e, _)), _, true) => e.thresholds.clone(),
            (_, Some((t, _)), _) => t.clone(),
            _ => Thresholds::half(labels),
        };
        Some(probs.chunks(labels.len()).map(|p| chosen.label_set(p)).collect())
    }

    /// Class probabilities of `texts` under the best weights so far, `[texts, labels]` row-major
    /// in the order of `config.labels` (a text read in windows: from its windows' aggregated
    /// logits).
    pub async fn predict(&self, texts: &[&str], batch_size: usize) -> Result<Vec<f32>> {
        Ok(self.predict_windows(texts, batch_size, false).await?.0)
    }

    /// [`FineTune::predict`], and for texts read in windows each window's text, span and class
    /// probabilities (`values`: `[windows, labels]`, the model's own). `ensemble`: the texts'
    /// probabilities are the model's averaged with the baseline's ([`FineTune::choose_ensemble`];
    /// an error before it has been chosen).
    pub async fn predict_windows(
        &self,
        texts: &[&str],
        batch_size: usize,
        ensemble: bool,
    ) -> Result<(Vec<f32>, Option<WindowOutputs>)> {
        let mixer = match (&self.ensemble, &self.label_ensemble, ensemble) {
            (_, _, false) => None,
            (Some((e, _)), _, true) => Some(Mixer::Classes(e)),
            (_, Some((e, _)), true) => Some(Mixer::LabelSets(e)),
            (None, None, true) => {
                return Err(Error::Option(
                    "no average with the TF-IDF baseline to predict with: it is chosen on val once training ends, and needs the baseline".into(),
                ))
            }
        };
        let model = self.session.best_model();
        // Off autodiff: inference builds no graph and dropout stays off.
        let device = self.session.device().without_autodiff();
        let batches = TextBatches::long(
            &self.tokenizer,
            texts,
            &self.options.long_text(),
            self.options.aggregate,
            batch_size.max(1),
        )?;
        let out = TextModel::Classifier(&model).run_batches(&self.config, &batches, &device).await?;
        let k = self.config.labels.len();
        let probabilities = |v: &[f32]| match self.config.multi_label() {
            true => crate::infer::sigmoid(v),
            false => softmax_rows(v, k),
        };
        let windows = out.windows.map(|w| WindowOutputs { values: probabilities(&w.values), ..w });
        let probs = probabilities(&out.values);
        Ok((
            match mixer {
                Some(Mixer::Classes(e)) => e.mix(&probs, texts),
                Some(Mixer::LabelSets(e)) => e.mix(&probs, texts),
                None => probs,
            },
            windows,
        ))
    }
}

/// What [`FineTune::predict_windows`] averages the model's probabilities with.
enum Mixer<'a> {
    Classes(&'a crate::baseline::Ensemble),
    LabelSets(&'a crate::baseline::multilabel::LabelSetEnsemble),
}

/// Tokenizer files copied into a saved model folder, when the base has them.
pub const TOKENIZER_FILES: &[&str] =
    &["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"];

/// sentence-transformers' `modules.json` for an encoder followed by its pooling.
const SENTENCE_MODULES: &str = r#"[
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
]
"#;

/// See [`FineTune::result_files`]. `max_len`: the length the model was trained at, written as
/// sentence-transformers' `max_seq_length` so `predict` reads texts as training did.
pub async fn result_files<F: ModelFiles>(
    model: &BertClassifier,
    strategy: &Strategy,
    config: &BertConfig,
    base: &F,
    max_len: Option<usize>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let config_json = config.to_json("BertForSequenceClassification");
    let length = |dir: &str| max_len.map(|n| (format!("{dir}/{SENTENCE_CONFIG}"), sentence_config_json(n)));
    match strategy {
        Strategy::Full | Strategy::Partial { .. } => {
            let mut files = vec![
                ("model/model.safetensors".to_string(), classifier_to_safetensors(model).await?),
                ("model/config.json".to_string(), config_json),
            ];
            for name in TOKENIZER_FILES {
                if let Some(bytes) = base.read(name)? {
                    files.push((format!("model/{name}"), bytes));
                }
            }
            if let Some(pooling) = config.classifier_pooling {
                // sentence-transformers' layout: SentenceTransformer(folder) gives the vectors the
                // head reads (the head itself, `classifier.*`, is left aside by it).
                files.push(("model/modules.json".into(), SENTENCE_MODULES.as_bytes().to_vec()));
                files.push(("model/1_Pooling/config.json".into(), pooling.to_json(config.hidden_size)));
            }
            files.extend(length("model"));
            Ok(files)
        }
        Strategy::Adapter { .. } | Strategy::Lora(_) => {
            let adapter = write_adapter(model, strategy, &base.name()).await?;
            let mut files = vec![
                ("adapter/adapter_model.safetensors".to_string(), adapter.safetensors),
                ("adapter/adapter_config.json".to_string(), adapter.config_json.into_bytes()),
                // The fine-tuned labels: PEFT's base config knows none of them.
                ("adapter/config.json".to_string(), config_json),
            ];
            files.extend(length("adapter"));
            Ok(files)
        }
    }
}

/// The classifier to fine-tune and its config: the folder's own head when it is a classifier
/// for exactly these labels (`true` then: kept), else its encoder with a fresh head (HF's
/// `ignore_mismatched_sizes`) reading what `choice` says.
fn base_classifier<F: ModelFiles>(
    files: &F,
    folder: &ModelFolder,
    config: BertConfig,
    choice: HeadChoice,
    seed: u64,
    device: &Device,
    notes: &mut Vec<String>,
) -> Result<(BertClassifier, BertConfig, bool)> {
    let mut checkpoint = ModelFolder::checkpoint(files)?;
    let head = match choice {
        HeadChoice::Auto if folder.pooling_declared => Head::Pooled(folder.pooling),
        HeadChoice::Auto | HeadChoice::Pooler => Head::Pooler,
        HeadChoice::Mean => Head::Pooled(Pooling::Mean),
        HeadChoice::Cls => Head::Pooled(Pooling::Cls),
        HeadChoice::Max => Head::Pooled(Pooling::Max),
    };
    let own = match folder.config.classifier_pooling {
        Some(p) => Head::Pooled(p),
        None => Head::Pooler,
    };
    if checkpoint.has("classifier.weight")
        && folder.config.labels == config.labels
        && (choice == HeadChoice::Auto || head == own)
    {
        let model = load_classifier(&config, &mut checkpoint, device)?.0;
        notes.push(format!("the folder already classifies these labels: its own head ({}) trains on", own.name()));
        return Ok((model, config, true));
    }
    if let (Head::Pooled(p), false, false) = (head, folder.pooling_declared, choice == HeadChoice::Auto) {
        notes.push(format!(
            "the folder declares no sentence pooling (no 1_Pooling/config.json): the head reads {} pooling, as asked",
            p.name()
        ));
    }
    let mut config = config;
    config.classifier_pooling = match head {
        Head::Pooler => None,
        Head::Pooled(p) => Some(p),
    };
    let (bert, loaded) = load_encoder(&folder.config, &mut checkpoint, device)?;
    if !loaded.ignored.is_empty() {
        notes.push(format!(
            "a new classification head is trained; left aside from the checkpoint: {}",
            loaded.ignored.join(", ")
        ));
    }
    if head == Head::Pooler && bert.pooler.is_none() {
        notes.push("the checkpoint has no pooler weights: the pooler head starts from a fresh, untrained pooler (a pooled head, such as head mean, reads the encoder's own vectors instead)".into());
    }
    let model = new_classifier(bert, &config, config.labels.len(), seed, device);
    Ok((model, config, false))
}

/// A report with every key, to check a metric name before training starts.
fn every_key_report(classes: &[String], multi: bool) -> serde_json::Value {
    let k = classes.len();
    if multi {
        let sets = crate::metrics::multilabel::LabelSets {
            labels: classes.to_vec(),
            y_true: (0..2 * k).map(|i| i % 2 == 0).collect(),
            scores: (0..2 * k).map(|i| (i % 2) as f64).collect(),
            y_pred: (0..2 * k).map(|i| i % 2 == 1).collect(),
            predicted_by: "",
            warnings: Vec::new(),
        };
        return serde_json::to_value(crate::metrics::multilabel::evaluate(&sets)).expect("reports serialise");
    }
    let p = crate::metrics::input::Predictions {
        classes: classes.to_vec(),
        y_true: (0..k).collect(),
        scores: (0..k * k).map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 }).collect(),
    };
    serde_json::to_value(crate::metrics::report::evaluate(&p, &Default::default()).expect("a well-formed report"))
        .expect("reports serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_json_take_the_cli_defaults() {
        let o: TrainOptions = serde_json::from_str(r#"{"mode": "lora", "lora_targets": ["query", "key"]}"#).unwrap();
        assert_eq!(o.lr(), 1e-3);
        assert_eq!(o.batch_size, 16);
        match o.strategy(6).unwrap() {
            Strategy::Lora(c) => assert_eq!(c.targets, vec![LoraTarget::Query, LoraTarget::Key]),
            s => panic!("{s:?}"),
        }
        let bad = serde_json::from_str::<TrainOptions>(r#"{"mode": "lora", "lora_rank": 4}"#).unwrap_err();
        assert!(bad.to_string().contains("lora_rank"), "{bad}");
        let o: TrainOptions = serde_json::from_str(r#"{"mode": "partial", "freeze_layers": 9}"#).unwrap();
        assert!(o.strategy(6).unwrap_err().to_string().contains("the model has 6 layers"));
        // partial freezes the bottom half by default; "all" leaves the head alone to train.
        let partial = |json: &str| serde_json::from_str::<TrainOptions>(json).unwrap().strategy(6).unwrap();
        assert_eq!(partial(r#"{"mode": "partial"}"#), Strategy::Partial { frozen_layers: Some(3) });
        assert_eq!(
            partial(r#"{"mode": "partial", "freeze_layers": "all"}"#),
            Strategy::Partial { frozen_layers: None }
        );
        assert_eq!(partial(r#"{"mode": "partial", "freeze_layers": 2}"#), Strategy::Partial { frozen_layers: Some(2) });
        assert!(serde_json::from_str::<TrainOptions>(r#"{"freeze_layers": "most"}"#).is_err());
        let o = TrainOptions { lora_targets: vec!["qury".into()], mode: Mode::Lora, ..TrainOptions::default() };
        assert!(o.strategy(6).unwrap_err().to_string().contains("'qury'"));
        let o = TrainOptions { augment_swap: 1.5, ..TrainOptions::default() };
        assert!(o.check().unwrap_err().to_string().contains("augment_swap"));
        let o: TrainOptions =
            serde_json::from_str(r#"{"long": "windows", "stride": 8, "max_windows": 3, "aggregate": "max-logits"}"#)
                .unwrap();
        assert_eq!(o.long_text(), LongText { mode: LongMode::Windows, stride: Some(8), max_windows: Some(3) });
        assert_eq!(o.aggregate, Aggregate::MaxLogits);
        assert_eq!(TrainOptions::default().long_text(), LongText::TRUNCATE);
        assert!(serde_json::from_str::<TrainOptions>(r#"{"long": "chunks"}"#).is_err());
    }
}
