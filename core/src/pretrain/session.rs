//! Masked-LM pretraining as a [`Task`] of the run loop ([`Session`]): the caller streams each
//! step's windows in (the CLI from its shards, the page from a picked table), the task masks
//! them; the run is one round of `steps` optimiser steps validated by the held-out perplexity
//! (measured before the first step too). The loop gives the log points, the NaN stop and the
//! checkpoints that resume to the same weights; the shell owns the clock, the threads and the
//! files.

use std::ops::Range;

use burn::tensor::Device;
use serde_json::{json, Value};

use super::corpus::{mask_in_batches, Corpus, DocumentSource};
use super::masking::{MaskedBatch, Masking};
use super::mlm::{load_masked_lm, perplexity, BertForMaskedLm};
use crate::data::rng::SplitMix64;
use crate::model::{BertConfig, LoadNotes, ModelFiles, ModelFolder};
use crate::tokenize::Encoded;
use crate::train::{
    batch_training_flops, LinearSchedule, OptimConfig, RunConfig, Session, SessionCheckpoint, Task, Throughput,
    TrainEvent, Trainer,
};
use crate::{Error, Result};

/// Every setting of a pretraining run, with `savant pretrain`'s defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct PretrainOptions {
    /// Optimiser steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().steps))]
    pub steps: usize,
    /// Windows per micro-batch (per step without grad_accum).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().batch_size))]
    pub batch_size: usize,
    /// Micro-batches per optimiser step (gradient accumulation): a step trains on
    /// batch_size × grad_accum windows while memory holds one micro-batch's activations.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().grad_accum))]
    pub grad_accum: usize,
    /// Tokens per window, [CLS] and [SEP] included; longer documents become several windows
    /// (default: 128, or the model's positions when fewer, as fine-tuning).
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_len: Option<usize>,
    /// Peak learning rate.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().lr))]
    pub lr: f64,
    /// Warm-up: a fraction of the steps (< 1) or a number of steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().warmup))]
    pub warmup: f64,
    /// AdamW's decoupled weight decay (not on biases and LayerNorms).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().weight_decay))]
    pub weight_decay: f64,
    /// Share of tokens to predict (HF `mlm_probability`).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().mlm_prob))]
    pub mlm_prob: f64,
    /// Mask whole words (a token and its ## pieces) rather than single tokens.
    #[cfg_attr(feature = "cli", arg(long))]
    pub whole_word: bool,
    /// Windows held in the shuffle buffer (memory stays bounded by it).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().shuffle_buffer))]
    pub shuffle_buffer: usize,
    /// The first this many documents of the corpus are held out (never trained on) to measure
    /// perplexity before and after.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().eval_docs))]
    pub eval_docs: usize,
    /// Seeds the shuffle, the masking and dropout.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().seed))]
    pub seed: u64,
    /// A log line every this many steps.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = PretrainOptions::default().log_every))]
    pub log_every: usize,
}

impl Default for PretrainOptions {
    fn default() -> Self {
        PretrainOptions {
            steps: 1000,
            batch_size: 32,
            grad_accum: 1,
            max_len: None,
            lr: 5e-5,
            warmup: 0.06,
            weight_decay: 0.01,
            mlm_prob: 0.15,
            whole_word: false,
            shuffle_buffer: 10_000,
            eval_docs: 200,
            seed: 42,
            log_every: 50,
        }
    }
}

impl PretrainOptions {
    /// The settings that cannot work, named by field.
    pub fn check(&self) -> Result<()> {
        if self.steps == 0 || self.batch_size == 0 || self.grad_accum == 0 || self.log_every == 0 {
            return Err(Error::Option("steps, batch_size, grad_accum and log_every must be at least 1".into()));
        }
        if let Some(n) = self.max_len.filter(|&n| n < 3) {
            return Err(Error::Option(format!("max_len {n} leaves no room for a token between [CLS] and [SEP]")));
        }
        if self.lr.is_nan() || self.lr < 0.0 || self.warmup.is_nan() || self.warmup < 0.0 {
            return Err(Error::Option("lr and warmup must be 0 or more".into()));
        }
        Ok(())
    }

    /// Sets `max_len` to the window length in force for `folder`'s model and returns it: the
    /// length asked for, else 128 or the folder's own when fewer (as fine-tuning); more than the
    /// model's positions is refused.
    pub fn resolve_max_len(&mut self, folder: &ModelFolder) -> Result<usize> {
        let max_len = *self.max_len.get_or_insert(folder.default_max_len().min(128));
        let positions = folder.config.max_position_embeddings;
        if max_len > positions {
            return Err(Error::Option(format!("max_len {max_len} is more than the model's {positions} positions")));
        }
        Ok(max_len)
    }

    /// The corpus of a run over `source`: `folder`'s tokenizer (not truncating: documents are cut
    /// into windows), the masking and the shuffle these options ask for.
    pub fn corpus<S: DocumentSource>(&mut self, folder: &ModelFolder, source: S) -> Result<Corpus<S>> {
        let max_len = self.resolve_max_len(folder)?;
        let mut tokenizer = folder.tokenizer.clone();
        tokenizer.set_max_len(None)?;
        let masking = Masking::new(&tokenizer, self.mlm_prob, self.whole_word)?;
        Ok(Corpus::new(source, tokenizer, max_len, masking, self.shuffle_buffer, self.seed))
    }

    /// Windows per optimiser step.
    pub fn windows_per_step(&self) -> usize {
        self.batch_size * self.grad_accum
    }
}

/// What a checkpoint holds besides the loop's state.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// Windows of the stream the steps so far trained on.
    windows: u64,
    /// The masking generator.
    rng: u64,
    tokens: u64,
    predicted: u64,
    flops: f64,
    seconds: f64,
    data_wait_seconds: f64,
    perplexity_before: f64,
    log: Vec<Value>,
}

/// Masked-LM pretraining; see the module's comment.
pub struct MaskedLm {
    pub options: PretrainOptions,
    config: BertConfig,
    masking: Masking,
    rng: SplitMix64,
    /// The held-out windows, masked once.
    eval: Vec<MaskedBatch>,
    /// What identifies the data for resuming besides the loop's settings.
    identity: Value,
    /// Where the perplexity is measured: the run's device off autodiff.
    device: Device,
    /// Windows of the stream trained on.
    pub windows: u64,
    pub tokens: u64,
    /// Tokens predicted (the masked ones).
    pub predicted: u64,
    pub flops: f64,
    pub perplexity_before: f64,
    /// The log lines so far (`pretrain_log.jsonl`).
    pub log: Vec<Value>,
    /// Seconds and data wait of the processes before a resumption.
    pub prior_seconds: f64,
    pub prior_wait: f64,
    /// The shell's clock when it asks for a checkpoint ([`Session::checkpoint_at`]).
    clock: (f64, f64),
    /// The folder had no MLM head: a fresh one trains.
    pub fresh_head: bool,
}

/// A pretraining run.
pub type PretrainSession = Session<MaskedLm>;

impl Task for MaskedLm {
    type Model = BertForMaskedLm;
    /// The step's windows, unmasked.
    type Rows = Vec<Encoded>;

    fn streamed(&self) -> bool {
        true
    }

    fn batches_per_round(&self) -> usize {
        self.options.steps * self.options.grad_accum
    }

    fn plan_round(&mut self, _round: usize, _config: &RunConfig) {}

    /// The step's windows masked into parts of `batch_size / parts` windows (`parts` per
    /// micro-batch), counted.
    fn step_parts(
        &mut self,
        _round: usize,
        _batches: Range<usize>,
        _step: usize,
        rows: Option<Vec<Encoded>>,
        config: &RunConfig,
    ) -> Result<Vec<MaskedBatch>> {
        let windows = rows.unwrap_or_default();
        if windows.is_empty() {
            return Err(Error::invalid("training", None, "a pretraining step got no windows"));
        }
        self.windows += windows.len() as u64;
        let refs: Vec<&Encoded> = windows.iter().collect();
        let size = self.options.batch_size.div_ceil(config.parts.max(1));
        let parts: Vec<MaskedBatch> = refs.chunks(size).map(|part| self.masking.mask(part, &mut self.rng)).collect();
        for part in &parts {
            let (tokens, _, flops) = self.count(part);
            self.tokens += tokens as u64;
            self.predicted += part.targets.len() as u64;
            self.flops += flops;
        }
        Ok(parts)
    }

    fn count(&self, part: &MaskedBatch) -> (usize, usize, f64) {
        let lengths = &part.tokens.lengths;
        (lengths.iter().sum(), lengths.len(), batch_training_flops(&self.config, lengths, part.targets.len(), true))
    }

    async fn validate(&self, model: &BertForMaskedLm, _config: &RunConfig) -> Result<Value> {
        Ok(json!({ "perplexity": perplexity(model, &self.eval, &self.device).await? }))
    }

    fn identity(&self) -> Value {
        self.identity.clone()
    }

    fn save(&self) -> Value {
        let saved = Saved {
            windows: self.windows,
            rng: self.rng.state(),
            tokens: self.tokens,
            predicted: self.predicted,
            flops: self.flops,
            seconds: self.clock.0,
            data_wait_seconds: self.clock.1,
            perplexity_before: self.perplexity_before,
            log: self.log.clone(),
        };
        serde_json::to_value(saved).expect("state serialises")
    }

    fn restore(&mut self, saved: Value, source: &str) -> Result<()> {
        let saved: Saved = serde_json::from_value(saved)
            .map_err(|e| Error::invalid(source, None, format!("unreadable pretraining state: {e}")))?;
        self.rng = SplitMix64::new(saved.rng);
        (self.tokens, self.predicted, self.flops, self.log) = (saved.tokens, saved.predicted, saved.flops, saved.log);
        (self.windows, self.prior_seconds, self.prior_wait) = (saved.windows, saved.seconds, saved.data_wait_seconds);
        self.perplexity_before = saved.perplexity_before;
        Ok(())
    }
}

impl Session<MaskedLm> {
    /// Loads `files`' model as a masked LM on the autodiff `device` (a fresh MLM head when the
    /// folder has none: the `bool`), holds out the first `eval_docs` documents of `corpus` (from
    /// [`PretrainOptions::corpus`]) and sets the run up, each micro-batch cut into `parts` parts;
    /// the notes name the tensors left aside. `source`: what identifies the data for resuming
    /// besides the options (the model, the corpus), an object. Its matmuls run in f32 unless
    /// `trainer.set_precision` says otherwise.
    pub fn start_pretraining<F: ModelFiles, S: DocumentSource>(
        files: &F,
        folder: &ModelFolder,
        options: PretrainOptions,
        corpus: &mut Corpus<S>,
        source: Value,
        parts: usize,
        device: &Device,
    ) -> Result<(PretrainSession, LoadNotes, bool), S::Error> {
        let mut checkpoint = ModelFolder::checkpoint(files)?;
        let (model, notes, fresh_head) = load_masked_lm(&folder.config, &mut checkpoint, options.seed, device)?;
        drop(checkpoint);
        let held_out = corpus.take_held_out(options.eval_docs)?;
        if held_out.is_empty() && options.eval_docs > 0 {
            let n = options.eval_docs;
            let message = if corpus.skipped.contains_key("windows_without_a_token_to_predict") {
                format!("the held-out documents (eval_docs {n}) have no token to predict: every token is special or [UNK]; does the tokenizer's vocabulary fit the text?")
            } else {
                format!("the corpus has no usable document to hold out (eval_docs {n})")
            };
            return Err(Error::Option(message).into());
        }
        let masking = corpus.masking().clone();
        // Every option but the logging shapes the updates.
        let mut identity = serde_json::to_value(&options).expect("options serialise");
        let entries = identity.as_object_mut().expect("an object");
        entries.remove("log_every");
        entries.extend(source.as_object().cloned().unwrap_or_default());
        let o = &options;
        let warmup = if o.warmup < 1.0 { o.warmup * o.steps as f64 } else { o.warmup };
        let optim = OptimConfig { lr: o.lr, weight_decay: o.weight_decay, ..OptimConfig::default() };
        let trainer = Trainer::new(model, optim, LinearSchedule::new(o.lr, warmup, o.steps), (), device);
        let config = RunConfig {
            epochs: 1,
            batch_size: o.batch_size,
            grad_accum: o.grad_accum,
            seed: o.seed,
            patience: None,
            metric: "perplexity".into(),
            log_every: o.log_every,
            parts: parts.max(1),
        };
        let task = MaskedLm {
            eval: mask_in_batches(&masking, &held_out, o.batch_size, o.seed ^ 0xe7a1),
            rng: SplitMix64::new(o.seed ^ 0x3a5c),
            config: folder.config.clone(),
            masking,
            identity,
            device: device.clone().without_autodiff(),
            windows: 0,
            tokens: 0,
            predicted: 0,
            flops: 0.0,
            perplexity_before: f64::NAN,
            log: Vec::new(),
            prior_seconds: 0.0,
            prior_wait: 0.0,
            clock: (0.0, 0.0),
            fresh_head,
            options,
        };
        Ok((Session::start(trainer, config, task, false, device), notes, fresh_head))
    }

    /// The model's config.
    pub fn model_config(&self) -> &BertConfig {
        &self.task.config
    }

    /// What one micro-batch of this run holds in memory (estimated): `batch_size` windows of
    /// `max_len` tokens, `mlm_prob` of them predicted.
    pub fn step_memory(&self, max_len: usize) -> crate::train::StepMemory {
        let params = crate::finetune::ParamCount::of(self.trainer.model());
        let o = &self.task.options;
        crate::train::StepMemory {
            params: params.total as u64,
            trained: params.trainable as u64,
            rows: o.batch_size,
            seq: max_len,
            predicted: (o.batch_size as f64 * max_len as f64 * o.mlm_prob).ceil() as usize,
        }
    }

    /// Windows held out to measure perplexity.
    pub fn held_out_windows(&self) -> usize {
        self.task.eval.iter().map(|b| b.tokens.lengths.len()).sum()
    }

    /// Windows per optimiser step.
    pub fn windows_per_step(&self) -> usize {
        self.task.options.windows_per_step()
    }

    /// The held-out perplexity under the current weights (dropout off).
    pub async fn perplexity(&self) -> Result<f64> {
        perplexity(&self.trainer.eval_model(), &self.task.eval, &self.task.device).await
    }

    /// Measures the perplexity before training (a resumed run has it from its checkpoint).
    pub async fn measure_before(&mut self) -> Result<f64> {
        self.task.perplexity_before = self.perplexity().await?;
        Ok(self.task.perplexity_before)
    }

    /// The held-out perplexity after the last step (the run's validation), once finished.
    pub fn perplexity_after(&self) -> Option<f64> {
        self.best_report.as_ref().and_then(|r| r["perplexity"].as_f64())
    }

    /// A logging point's `pretrain_log.jsonl` line, kept in the log: the event's loss and
    /// learning rate, the tokens so far and the speed over `seconds` (the run's time so far,
    /// `wait` of it waiting for data). Returns the loss and the speed.
    pub fn log_line(
        &mut self,
        event: &TrainEvent,
        seconds: f64,
        wait: f64,
        peak_flops: Option<f64>,
    ) -> Option<(f64, Throughput)> {
        let TrainEvent::Step { step, loss, lr, .. } = *event else { return None };
        let rate = self.throughput(seconds, peak_flops);
        let t = &self.task;
        self.task.log.push(json!({
            "step": step, "loss": loss, "lr": lr, "tokens": t.tokens, "predicted_tokens": t.predicted,
            "tokens_per_second": rate.tokens_per_second, "samples_per_second": rate.samples_per_second,
            "model_tflops_per_second": rate.model_tflops_per_second, "mfu": rate.mfu,
            "seconds": seconds, "data_wait_seconds": wait,
        }));
        Some((loss, rate))
    }

    /// Tokens, windows and model FLOPs per second of the steps so far over `seconds`.
    pub fn throughput(&self, seconds: f64, peak_flops: Option<f64>) -> Throughput {
        let samples = (self.trainer.step * self.windows_per_step()) as u64;
        Throughput::new(self.task.tokens, samples, self.task.flops, seconds, peak_flops)
    }

    /// Everything needed to continue this run at its step ([`Session::checkpoint`]) with the
    /// shell's clock: `seconds` so far, `wait` of them waiting for data.
    pub async fn checkpoint_at(&mut self, seconds: f64, wait: f64) -> Result<SessionCheckpoint> {
        self.task.clock = (seconds, wait);
        self.checkpoint().await
    }

    /// `metrics.json` (the shells add the device): the perplexities, the settings, the corpus's
    /// counts and the throughput.
    pub fn metrics_json<S>(
        &self,
        corpus: &Corpus<S>,
        perplexity_after: f64,
        seconds: f64,
        wait: f64,
        peak_flops: Option<f64>,
    ) -> Value {
        let (t, o) = (&self.task, &self.task.options);
        let rate = self.throughput(seconds, peak_flops);
        json!({
            "perplexity_before": t.perplexity_before,
            "perplexity_after": perplexity_after,
            "held_out_windows": self.held_out_windows(),
            "steps": o.steps,
            "batch_size": o.batch_size,
            "grad_accum": o.grad_accum,
            "windows_trained": t.windows,
            "max_len": o.max_len,
            "mlm_prob": o.mlm_prob,
            "whole_word": o.whole_word,
            "tokens": t.tokens,
            "predicted_tokens": t.predicted,
            "tokens_per_second": rate.tokens_per_second,
            "samples_per_second": rate.samples_per_second,
            "model_tflops_per_second": rate.model_tflops_per_second,
            "mfu": rate.mfu,
            "seconds": seconds,
            "data_wait_seconds": wait,
            "documents": corpus.documents,
            "windows": corpus.windows,
            "split_into_windows": corpus.split_documents,
            "passes": corpus.passes,
            "skipped": corpus.skipped,
            "fresh_head": t.fresh_head,
        })
    }
}
