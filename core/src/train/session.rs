//! THE run loop, for every objective: rounds (epochs) of [`Trainer::step`], the loss read back
//! at logging points (with the NaN stop), validation after each round with the best round's
//! weights kept, early stopping, and checkpoints that resume bit-identically. What differs
//! between objectives — where a step's batches come from, what they cost, how a model is
//! validated, what else a checkpoint holds — is a [`Task`]: [`super::classify::Classify`]
//! (sequence classification: one label, label sets, windows) and
//! [`crate::pretrain::MaskedLm`] (masked-LM pretraining). The caller drives the run one call at
//! a time (the CLI from a loop, the page from a worker) and renders the events; nothing here
//! blocks on the device or reads a clock.

use std::ops::Range;

use burn::tensor::Device;
use serde_json::Value;

use super::events::{PendingLoss, TrainEvent};
use super::step::{Objective, Parts, Trainer};
use crate::{Error, Result};

/// The settings of the loop itself (the optimiser's are the [`Trainer`]'s).
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Rounds, each ended by a validation (epochs; one for pretraining).
    pub epochs: usize,
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    pub seed: u64,
    /// Stop after this many rounds without improvement of `metric` (`None`: never).
    pub patience: Option<usize>,
    /// A key of the validation report (`f1_macro`, `accuracy`, `log_loss`, `perplexity`, ...).
    pub metric: String,
    /// Read the loss back every this many steps (a logging point).
    pub log_every: usize,
    /// Each micro-batch is cut into this many parts, whose gradients may be computed in
    /// parallel; the result depends on this number, not on the threads.
    pub parts: usize,
}

/// Whether a larger value of `metric` is better.
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(metric, "log_loss" | "brier" | "ece" | "perplexity")
}

/// Where a run stands; everything needed to continue it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub epoch: usize,
    /// Next batch of this epoch.
    pub batch: usize,
    pub best_metric: Option<f64>,
    pub best_epoch: Option<usize>,
    pub epochs_without_improvement: usize,
    pub stopped_early: bool,
    /// The work before the first step ([`Task::before`]) is still to be done.
    #[serde(default)]
    pub probe_pending: bool,
    /// The validation metric of the model [`Task::before`] set up, before any step (epoch 0);
    /// the best model is that one when `best_epoch` is `None` and this is set.
    #[serde(default)]
    pub probe_metric: Option<f64>,
    /// The probe's regularisation (sklearn's C), chosen on the validation rows.
    #[serde(default)]
    pub probe_c: Option<f64>,
}

/// What [`Task::before`] did with one call.
pub enum Before {
    /// A share of the work (an event to show); call again.
    Working(TrainEvent),
    /// Done: the trainer holds the model to validate as epoch 0, `total` rows were embedded and
    /// `c` was chosen on the validation rows.
    Fitted { report: Value, total: usize, c: Option<f64> },
}

/// The objective-specific half of a run; [`Session`] is the loop around it.
#[allow(async_fn_in_trait)] // Driven by one caller at a time, in the browser too: no Send needed.
pub trait Task {
    type Model: Objective;
    /// A streamed step's rows, handed in by the caller ([`Session::advance`]).
    type Rows;
    /// Whether the caller hands each step's rows in (else the task holds them).
    fn streamed(&self) -> bool;
    /// Micro-batches per round.
    fn batches_per_round(&self) -> usize;
    /// `round`'s batches are about to be drawn (at the start, after a round, after a restore).
    fn plan_round(&mut self, round: usize, config: &RunConfig);
    /// The parts of the optimiser step numbered `step`: micro-batches `batches` of `round`'s
    /// plan, or the caller's `rows` for a streamed task, each cut into `config.parts` parts.
    fn step_parts(
        &mut self,
        round: usize,
        batches: Range<usize>,
        step: usize,
        rows: Option<Self::Rows>,
        config: &RunConfig,
    ) -> Result<Vec<<Self::Model as Objective>::Batch>>;
    /// The tokens, rows and model FLOPs of one part.
    fn count(&self, part: &<Self::Model as Objective>::Batch) -> (usize, usize, f64);
    /// A share of the work before the first step (the probe-initialised head), run while
    /// [`Progress::probe_pending`].
    async fn before(&mut self, _trainer: &mut Trainer<Self::Model>, _config: &RunConfig) -> Result<Before> {
        Err(Error::invalid("training", None, "this run has nothing to do before its first step"))
    }
    /// The validation report of `model` (off autodiff), a JSON object holding `config.metric`.
    async fn validate(&self, model: &Self::Model, config: &RunConfig) -> Result<Value>;
    /// What identifies the data and the task's settings for resuming (a JSON object).
    fn identity(&self) -> Value;
    /// The task's own state for a checkpoint (`Null`: none).
    fn save(&self) -> Value {
        Value::Null
    }
    /// Continues from [`Task::save`]'s value; `source` names the checkpoint in errors.
    fn restore(&mut self, _saved: Value, _source: &str) -> Result<()> {
        Ok(())
    }
}

/// A run; see the module's comment.
pub struct Session<T: Task> {
    pub trainer: Trainer<T::Model>,
    pub config: RunConfig,
    pub progress: Progress,
    /// The objective's data and state.
    pub task: T,
    device: Device,
    /// The best round's weights (eval copy), restored at the end.
    best: Option<T::Model>,
    /// The validation report of the best round.
    pub best_report: Option<Value>,
    pending: PendingLoss,
    epoch_loss: Vec<f64>,
    tokens_since_log: usize,
    samples_since_log: usize,
    flops_since_log: f64,
}

impl<T: Task> Session<T> {
    /// A run of `task` by `trainer` on the autodiff `device`; `probe_pending`: [`Task::before`]
    /// has work to do before the first step.
    pub fn start(
        trainer: Trainer<T::Model>,
        config: RunConfig,
        mut task: T,
        probe_pending: bool,
        device: &Device,
    ) -> Self {
        let mut trainer = trainer;
        trainer.set_dropout_seed(config.seed);
        task.plan_round(0, &config);
        Session {
            trainer,
            config,
            progress: Progress {
                epoch: 0,
                batch: 0,
                best_metric: None,
                best_epoch: None,
                epochs_without_improvement: 0,
                stopped_early: false,
                probe_pending,
                probe_metric: None,
                probe_c: None,
            },
            task,
            device: device.clone(),
            best: None,
            best_report: None,
            pending: PendingLoss::default(),
            epoch_loss: Vec::new(),
            tokens_since_log: 0,
            samples_since_log: 0,
            flops_since_log: 0.0,
        }
    }

    /// Whether the next call trains a step (a streamed run then needs that step's rows) rather
    /// than validating at the end of an epoch, or nothing (finished).
    pub fn needs_rows(&self) -> bool {
        !self.finished() && !self.progress.probe_pending && self.progress.batch < self.task.batches_per_round()
    }

    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.task.batches_per_round().div_ceil(self.config.grad_accum.max(1))
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.epochs
    }

    pub fn finished(&self) -> bool {
        self.progress.stopped_early || self.progress.epoch >= self.config.epochs
    }

    /// The device the run trains on (an autodiff device).
    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// The model to keep: the best epoch's weights (without autodiff), or the current ones if
    /// no epoch finished.
    pub fn best_model(&self) -> T::Model {
        self.best.clone().unwrap_or_else(|| self.trainer.eval_model())
    }

    /// One optimiser step, its parts computed as `by` says, or (the call after an epoch's last
    /// step) the validation pass (on the session's device), or a share of the work before the
    /// first step. Returns the events of this call: a logging point, or the epoch summary.
    /// `rows`: a streamed task's rows for this step ([`Task::streamed`]; ignored when
    /// [`Session::needs_rows`] is false); `None` for a task that holds its own.
    pub async fn advance(
        &mut self,
        rows: Option<T::Rows>,
        by: Parts<'_, <T::Model as Objective>::Batch>,
    ) -> Result<Vec<TrainEvent>> {
        if rows.is_some() && !self.task.streamed() {
            return Err(Error::invalid("training", None, "rows were handed to a run that holds its own"));
        }
        self.advance_on(by, rows).await
    }

    async fn advance_on(
        &mut self,
        by: Parts<'_, <T::Model as Objective>::Batch>,
        rows: Option<T::Rows>,
    ) -> Result<Vec<TrainEvent>> {
        let mut events = Vec::new();
        if self.finished() {
            return Ok(events);
        }
        if self.progress.probe_pending {
            events.push(self.before().await?);
            return Ok(events);
        }
        let per_round = self.task.batches_per_round();
        if self.progress.batch >= per_round {
            events.push(self.end_epoch().await?);
            return Ok(events);
        }
        let end = (self.progress.batch + self.config.grad_accum.max(1)).min(per_round);
        let parts = self.task.step_parts(
            self.progress.epoch,
            self.progress.batch..end,
            self.trainer.step,
            rows,
            &self.config,
        )?;
        for part in &parts {
            let (tokens, samples, flops) = self.task.count(part);
            self.tokens_since_log += tokens;
            self.samples_since_log += samples;
            self.flops_since_log += flops;
        }
        // Dropout draws from the backend's generator: seeding it per step makes a run resumed
        // at any step draw what the uninterrupted run drew.
        self.device.seed(self.config.seed.wrapping_mul(1_000_003).wrapping_add(self.trainer.step as u64));
        let lr = self.trainer.schedule.lr(self.trainer.step);
        let loss = self.trainer.step(&parts, by).await?;
        self.pending.add(loss);
        self.progress.batch = end;
        let epoch_done = self.progress.batch >= per_round;
        if self.pending.steps >= self.config.log_every.max(1) || epoch_done {
            let mean = self.pending.take_mean(self.trainer.step, lr).await?;
            self.epoch_loss.push(mean);
            events.push(TrainEvent::Step {
                epoch: self.progress.epoch,
                step: self.trainer.step,
                total_steps: self.total_steps(),
                loss: mean,
                lr,
                tokens: std::mem::take(&mut self.tokens_since_log),
                samples: std::mem::take(&mut self.samples_since_log),
                flops: std::mem::take(&mut self.flops_since_log),
            });
        }
        Ok(events)
    }

    /// A share of [`Task::before`]; once it is done, its model validated as epoch 0.
    async fn before(&mut self) -> Result<TrainEvent> {
        match self.task.before(&mut self.trainer, &self.config).await? {
            Before::Working(event) => Ok(event),
            Before::Fitted { report, total, c } => {
                let (value, _) = self.record(self.trainer.eval_model(), &report, None)?;
                self.progress.probe_pending = false;
                self.progress.probe_metric = value;
                self.progress.probe_c = c;
                Ok(TrainEvent::Probe { embedded: total, total, fitted: true, val_metric: value, c })
            }
        }
    }

    async fn end_epoch(&mut self) -> Result<TrainEvent> {
        let model = self.trainer.eval_model();
        let report = self.task.validate(&model, &self.config).await?;
        let epoch = self.progress.epoch;
        let (value, improved) = self.record(model, &report, Some(epoch))?;
        if !improved && self.config.patience.is_some_and(|p| self.progress.epochs_without_improvement >= p) {
            self.progress.stopped_early = true;
        }
        let train_loss = self.epoch_loss.iter().sum::<f64>() / self.epoch_loss.len().max(1) as f64;
        self.epoch_loss.clear();
        self.progress.epoch += 1;
        self.progress.batch = 0;
        self.task.plan_round(self.progress.epoch, &self.config);
        Ok(TrainEvent::Epoch { epoch, step: self.trainer.step, train_loss, val_metric: value, improved })
    }

    /// Keeps `model` as the best so far when its validation `report` improves on the best
    /// (`epoch`: the trained epoch, `None` for the model before any step).
    fn record(&mut self, model: T::Model, report: &Value, epoch: Option<usize>) -> Result<(Option<f64>, bool)> {
        let value = metric_value(report, &self.config.metric)?;
        let better = |new: f64, old: f64| if higher_is_better(&self.config.metric) { new > old } else { new < old };
        let improved = match (value, self.progress.best_metric) {
            (Some(v), Some(best)) => better(v, best),
            (Some(_), None) => true,
            (None, _) => self.best.is_none(),
        };
        if improved {
            self.progress.best_metric = value;
            self.progress.best_epoch = epoch;
            self.progress.epochs_without_improvement = 0;
            self.best = Some(model);
            self.best_report = Some(report.clone());
        } else {
            self.progress.epochs_without_improvement += 1;
        }
        Ok((value, improved))
    }
}

/// The value of `metric` in `report` (`None` when the data leave it undefined).
pub fn metric_value(report: &Value, metric: &str) -> Result<Option<f64>> {
    match report.get(metric) {
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::Null) => Ok(None),
        _ => Err(Error::invalid(
            "metric",
            None,
            format!("'{metric}' is not a scalar key of savant eval's report (e.g. f1_macro, accuracy, balanced_accuracy, mcc, log_loss)"),
        )),
    }
}

/// A run stopped at a step boundary: with the same data and settings, [`Session::restore`]
/// continues it exactly (bit-identical on CPU).
pub struct SessionCheckpoint {
    /// Progress, counters and the run's identity, as JSON.
    pub state_json: String,
    /// Every parameter by module path (safetensors).
    pub model: Vec<u8>,
    /// The best epoch's parameters so far.
    pub best_model: Option<Vec<u8>>,
    /// AdamW's moments (burnpack bytes).
    pub optimizer: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedState {
    /// What must not change between the run and its resumption.
    identity: Value,
    step: usize,
    progress: Progress,
    pending_loss: Option<f64>,
    loss_steps: usize,
    epoch_loss: Vec<f64>,
    tokens_since_log: usize,
    #[serde(default)]
    samples_since_log: usize,
    #[serde(default)]
    flops_since_log: f64,
    best_report: Option<Value>,
    /// [`Task::save`]'s.
    #[serde(default)]
    task: Value,
}

impl<T: Task> Session<T> {
    /// What identifies this run: the task's data and settings, and every setting of the loop
    /// and the schedule that shapes the updates.
    fn identity(&self) -> Value {
        let c = &self.config;
        let s = &self.trainer.schedule;
        let mut identity = self.task.identity();
        let loop_settings = serde_json::json!({
            "epochs": c.epochs,
            "batch_size": c.batch_size,
            "grad_accum": c.grad_accum,
            "parts": c.parts,
            "seed": c.seed,
            "metric": c.metric,
            "schedule": [s.peak, s.warmup as f64, s.total as f64],
        });
        if let (Some(identity), Value::Object(settings)) = (identity.as_object_mut(), loop_settings) {
            identity.extend(settings);
        }
        identity
    }

    /// Everything needed to continue this run. Reads go through `into_data_async`.
    pub async fn checkpoint(&mut self) -> Result<SessionCheckpoint> {
        let (pending_loss, loss_steps) = self.pending.save(&self.device).await?;
        let state = SavedState {
            identity: self.identity(),
            step: self.trainer.step,
            progress: self.progress.clone(),
            pending_loss,
            loss_steps,
            epoch_loss: self.epoch_loss.clone(),
            tokens_since_log: self.tokens_since_log,
            samples_since_log: self.samples_since_log,
            flops_since_log: self.flops_since_log,
            best_report: self.best_report.clone(),
            task: self.task.save(),
        };
        let optimizer = self.trainer.optimizer_bytes()?;
        Ok(SessionCheckpoint {
            state_json: serde_json::to_string_pretty(&state).expect("state serialises"),
            model: super::checkpoint::params_to_safetensors(self.trainer.model()).await?,
            best_model: match &self.best {
                Some(m) => Some(super::checkpoint::params_to_safetensors(m).await?),
                None => None,
            },
            optimizer,
        })
    }

    /// Continues from `checkpoint`, which must come from a run with the same data and settings;
    /// `source` names it in errors.
    pub fn restore(&mut self, checkpoint: SessionCheckpoint, source: &str) -> Result<()> {
        let bad = |m: String| Error::invalid(source, None, m);
        let state: SavedState =
            serde_json::from_str(&checkpoint.state_json).map_err(|e| bad(format!("unreadable state: {e}")))?;
        super::checkpoint::check_identity(&state.identity, &self.identity(), source)?;
        let model =
            super::checkpoint::params_from_safetensors(self.trainer.model().clone(), &checkpoint.model, source)?;
        self.trainer.set_model(model);
        self.trainer.restore_optimizer(checkpoint.optimizer, source)?;
        self.best = match checkpoint.best_model {
            Some(bytes) => Some(super::checkpoint::params_from_safetensors(self.trainer.eval_model(), &bytes, source)?),
            None => None,
        };
        self.trainer.step = state.step;
        self.progress = state.progress;
        self.pending = PendingLoss::restore((state.pending_loss, state.loss_steps), &self.device);
        self.epoch_loss = state.epoch_loss;
        self.tokens_since_log = state.tokens_since_log;
        self.samples_since_log = state.samples_since_log;
        self.flops_since_log = state.flops_since_log;
        self.best_report = state.best_report;
        self.task.restore(state.task, source)?;
        self.task.plan_round(self.progress.epoch, &self.config);
        Ok(())
    }
}
