//! A fine-tuning run: epochs of [`Trainer::step`] over length-bucketed batches, the validation
//! split evaluated after each epoch with `savant eval`'s metrics, early stopping on a chosen
//! metric with the best epoch's weights restored. The caller drives it one step at a time (the
//! CLI from a loop, the page from a worker) and renders the events; nothing here blocks on the
//! device or reads a clock.

use burn::tensor::{Device, Tensor};

use super::augment::Augment;
use super::batches::{document_batches, epoch_batches};
use super::events::PendingLoss;
use super::flops::batch_training_flops;
use super::step::{LabelledBatch, Parts, Trainer};
use crate::data::rng::SplitMix64;
use crate::infer::{argmax_rows, classify, head_features, softmax_rows};
use crate::long::{aggregate, Aggregate};
use crate::metrics::input::Predictions;
use crate::metrics::multilabel::LabelSets;
use crate::metrics::report::{evaluate, EvalOptions, EvalReport};
use crate::model::{BertClassifier, BertConfig};
use crate::probe::{macro_f1, ChosenProbe, LinearProbe};
use crate::tokenize::{Encoded, TokenBatch};
use crate::{Error, Result};

/// Texts already tokenised, with their class ids: one row per text, or per window of a long
/// text ([`crate::long::LongMode::Windows`]), each window labelled with its document's class.
#[derive(Debug, Clone, Default)]
pub struct LabelledTexts {
    pub encoded: Vec<Encoded>,
    pub labels: Vec<usize>,
    /// The document of each row when rows are windows (empty: each row is a document).
    /// Validation scores documents: their windows' logits aggregated ([`RunConfig::aggregate`]).
    pub doc: Vec<usize>,
    /// Multi-label rows: `[rows, classes]` 0/1 targets (`labels` then holds zeros); empty for
    /// one class per row.
    pub targets: Vec<f32>,
    /// The classes of a multi-label row's targets (0 when single-label).
    pub classes: usize,
}

impl LabelledTexts {
    /// Rows (windows, when windowed).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Documents: rows, or the documents the windows come from.
    pub fn documents(&self) -> usize {
        self.doc.last().map_or(self.len(), |&d| d + 1)
    }

    /// Each document's first row (every row when each row is one).
    fn document_starts(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.doc.is_empty() || i == 0 || self.doc[i] != self.doc[i - 1])
    }

    /// Each document's class (its first window's).
    pub fn document_labels(&self) -> Vec<usize> {
        self.document_starts().map(|i| self.labels[i]).collect()
    }

    /// Multi-label rows: each document's `[documents, classes]` targets (its first window's).
    fn document_targets(&self) -> Vec<f32> {
        self.document_starts().flat_map(|i| self.targets_of(&[i])).collect()
    }

    /// One row of `[rows, width]` values per document (the rows' values when each row is one).
    fn per_document(&self, values: Vec<f32>, width: usize, how: Aggregate) -> Vec<f32> {
        if self.doc.is_empty() {
            values
        } else {
            aggregate(&values, width, &self.doc, self.documents(), how)
        }
    }

    fn batch(&self, rows: &[usize], pad_id: u32) -> LabelledBatch {
        let items: Vec<&Encoded> = rows.iter().map(|&i| &self.encoded[i]).collect();
        LabelledBatch {
            tokens: TokenBatch::from_encoded(&items, pad_id),
            labels: rows.iter().map(|&i| self.labels[i]).collect(),
            doc: Vec::new(),
            targets: self.targets_of(rows),
        }
    }

    /// The multi-label targets of `rows` (empty when single-label).
    fn targets_of(&self, rows: &[usize]) -> Vec<f32> {
        let k = self.classes;
        rows.iter().flat_map(|&i| self.targets.get(i * k..(i + 1) * k).unwrap_or_default()).copied().collect()
    }

    /// `rows` (whole documents' windows) as one batch that classifies their documents: each
    /// row's document numbered within the batch, and one label per document.
    fn by_document(&self, mut batch: LabelledBatch, rows: &[usize]) -> LabelledBatch {
        let docs = self.documents_of(rows);
        batch.labels = docs.iter().map(|d| self.labels[d[0]]).collect();
        batch.targets = docs.iter().flat_map(|d| self.targets_of(&d[..1])).collect();
        batch.doc = docs.iter().enumerate().flat_map(|(i, d)| std::iter::repeat_n(i, d.len())).collect();
        batch
    }

    /// `rows` cut where their document changes: each document's rows.
    fn documents_of<'a>(&self, rows: &'a [usize]) -> Vec<&'a [usize]> {
        rows.chunk_by(|&a, &b| self.doc[a] == self.doc[b]).collect()
    }

    /// Rows `rows` (a part of a step) in `parts` parts: of about equal rows, or, with
    /// `by_document`, of about equal documents, each whole.
    fn parts(&self, rows: &[usize], parts: usize, by_document: bool) -> Vec<Vec<usize>> {
        if !by_document {
            return rows.chunks(rows.len().div_ceil(parts).max(1)).map(<[usize]>::to_vec).collect();
        }
        let docs = self.documents_of(rows);
        docs.chunks(docs.len().div_ceil(parts).max(1)).map(|c| c.concat()).collect()
    }

    /// A training batch with `augment` applied to each text, drawn from (`seed`, `epoch`, row);
    /// with `by_document`, it classifies the documents of `rows` ([`Aggregate::MeanPool`]).
    fn augmented_batch(
        &self,
        rows: &[usize],
        pad_id: u32,
        augment: &Augment,
        seed: u64,
        epoch: usize,
        by_document: bool,
    ) -> LabelledBatch {
        let batch = self.augmented_rows(rows, pad_id, augment, seed, epoch);
        match by_document {
            true => self.by_document(batch, rows),
            false => batch,
        }
    }

    fn augmented_rows(&self, rows: &[usize], pad_id: u32, augment: &Augment, seed: u64, epoch: usize) -> LabelledBatch {
        if augment.is_off() {
            return self.batch(rows, pad_id);
        }
        let items: Vec<Encoded> = rows
            .iter()
            .map(|&i| {
                let stream = seed ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((i as u64) << 20);
                augment.apply(&self.encoded[i], &mut SplitMix64::new(stream))
            })
            .collect();
        let refs: Vec<&Encoded> = items.iter().collect();
        LabelledBatch {
            tokens: TokenBatch::from_encoded(&refs, pad_id),
            labels: rows.iter().map(|&i| self.labels[i]).collect(),
            doc: Vec::new(),
            targets: self.targets_of(rows),
        }
    }

    /// The batches of `epoch` (row indices): length-bucketed rows, or, with `by_document`,
    /// whole documents within `batch_size` rows.
    fn epoch_plan(&self, batch_size: usize, seed: u64, epoch: usize, by_document: bool) -> Vec<Vec<usize>> {
        match by_document {
            true => document_batches(&self.doc, batch_size, seed, epoch),
            false => {
                let lengths: Vec<usize> = self.encoded.iter().map(|e| e.ids.len()).collect();
                epoch_batches(&lengths, batch_size, seed, epoch)
            }
        }
    }
}

/// Run settings besides the optimiser's.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    pub seed: u64,
    /// Stop after this many epochs without improvement of `metric` (`None`: never).
    pub patience: Option<usize>,
    /// A key of `savant eval`'s report (`f1_macro`, `accuracy`, `log_loss`, ...).
    pub metric: String,
    /// Read the loss back every this many steps (a logging point).
    pub log_every: usize,
    /// Each batch is cut into this many parts (rows of similar length), whose gradients may be
    /// computed in parallel; the result depends on this number, not on the threads.
    pub parts: usize,
    /// Noise on the training texts (off by default).
    pub augment: Augment,
    /// Before the first step, fit a logistic regression on the frozen model's head features of
    /// the training rows and start the head from it (LP-FT); its validation is epoch 0.
    pub probe_head: bool,
    /// How the logits of a windowed document's windows become its own ([`Aggregate::MeanPool`]:
    /// training classifies documents from their windows' mean features).
    pub aggregate: Aggregate,
}

/// Whether a larger value of `metric` is better.
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(metric, "log_loss" | "brier" | "ece")
}

/// What the run tells its renderer.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// A logging point: the mean loss of the steps since the last one, and the tokens, rows and
    /// model FLOPs ([`super::flops`]) those steps trained on.
    Step {
        epoch: usize,
        step: usize,
        total_steps: usize,
        loss: f64,
        lr: f64,
        tokens: usize,
        samples: usize,
        flops: f64,
    },
    /// Validation after an epoch.
    Epoch { epoch: usize, step: usize, train_loss: f64, val_metric: Option<f64>, improved: bool },
    /// The probe-initialised head ([`RunConfig::probe_head`]): `embedded` of `total` training
    /// and validation rows embedded so far; once the head is fitted, its validation (epoch 0)
    /// in `val_metric` and the C chosen for it on the validation rows in `c`.
    Probe { embedded: usize, total: usize, fitted: bool, val_metric: Option<f64>, c: Option<f64> },
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
    /// The probe-initialised head is still to be fitted.
    #[serde(default)]
    pub probe_pending: bool,
    /// The validation metric of the probe-initialised head before any step (epoch 0); the best
    /// model is that head when `best_epoch` is `None` and this is set.
    #[serde(default)]
    pub probe_metric: Option<f64>,
    /// The probe's regularisation (sklearn's C), chosen on the validation rows.
    #[serde(default)]
    pub probe_c: Option<f64>,
}

pub struct Session {
    pub trainer: Trainer,
    pub config: RunConfig,
    pub progress: Progress,
    train: LabelledTexts,
    val: LabelledTexts,
    /// The model's config with the fine-tuned labels.
    model_config: BertConfig,
    pad_id: u32,
    device: Device,
    /// The best epoch's weights (eval copy), restored at the end.
    best: Option<BertClassifier>,
    /// `savant eval`'s report (JSON) of the best epoch.
    pub best_report: Option<serde_json::Value>,
    epoch_batches: Vec<Vec<usize>>,
    pending: PendingLoss,
    epoch_loss: Vec<f64>,
    tokens_since_log: usize,
    samples_since_log: usize,
    flops_since_log: f64,
    /// Every parameter trains (full fine-tuning): the backward pass computes weight gradients too.
    full: bool,
    /// Training classifies whole documents from their windows ([`Aggregate::MeanPool`]).
    by_document: bool,
    /// A streamed run: micro-batches per epoch (an evaluation round), and what identifies the
    /// stream. The caller reads the rows and hands each step's to [`Session::advance_streamed`].
    stream: Option<(usize, serde_json::Value)>,
    /// The training rows' head features so far, while the probe-initialised head is fitted.
    probe: ProbeFeatures,
    /// The fitted probe (epoch 0's head), for a caller that scores it on other rows too.
    pub probe_fit: Option<ChosenProbe>,
}

/// Head features of the training rows, embedded a chunk per call ([`TrainEvent::Probe`]).
#[derive(Default)]
struct ProbeFeatures {
    /// The training rows, then the validation rows (numbered from the training rows' count),
    /// each longest first (each chunk pads little), and how many are done.
    order: Vec<usize>,
    done: usize,
    /// `[train + val rows, hidden]` in row order.
    values: Vec<f32>,
    /// The frozen model they come from (off autodiff).
    model: Option<BertClassifier>,
}

/// Where a run's training rows come from.
pub enum TrainData {
    /// Held in memory: batched by length, reshuffled each epoch.
    Rows(LabelledTexts),
    /// Streamed in by the caller, a step's rows at a time ([`Session::advance_streamed`]):
    /// `steps_per_epoch` optimiser steps between validations; `identity` (the shards and how
    /// they are read) must match on resume.
    Stream { steps_per_epoch: usize, identity: serde_json::Value },
}

impl Session {
    pub fn new(
        trainer: Trainer,
        config: RunConfig,
        data: TrainData,
        val: LabelledTexts,
        model_config: BertConfig,
        pad_id: u32,
        device: &Device,
    ) -> Result<Session> {
        let (train, stream) = match data {
            TrainData::Rows(train) if train.is_empty() => {
                return Err(Error::invalid("train", None, "the training split has no rows"));
            }
            TrainData::Rows(train) => (train, None),
            TrainData::Stream { steps_per_epoch, identity } => {
                let batches = steps_per_epoch.max(1) * config.grad_accum.max(1);
                (LabelledTexts::default(), Some((batches, identity)))
            }
        };
        if val.is_empty() {
            return Err(Error::invalid("val", None, "the validation split has no rows"));
        }
        if config.probe_head && stream.is_some() {
            return Err(Error::invalid(
                "train",
                None,
                "a probe-initialised head needs the training rows in memory: not with a streamed split",
            ));
        }
        if config.probe_head && train.encoded.iter().all(|e| e.ids.len() <= 2) {
            return Err(Error::invalid(
                "train",
                None,
                "every training text is empty after tokenising (only [CLS] and [SEP] are left): a probe-initialised head has nothing to fit; check the text column, or use a random head",
            ));
        }
        let probe_pending = config.probe_head;
        let by_document = config.aggregate == Aggregate::MeanPool && !train.doc.is_empty();
        let batches = train.epoch_plan(config.batch_size, config.seed, 0, by_document);
        let full = super::remote::all_trainable(trainer.model());
        let mut trainer = trainer;
        trainer.set_dropout_seed(config.seed);
        Ok(Session {
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
            train,
            val,
            model_config,
            pad_id,
            device: device.clone(),
            best: None,
            best_report: None,
            epoch_batches: batches,
            pending: PendingLoss::default(),
            epoch_loss: Vec::new(),
            tokens_since_log: 0,
            samples_since_log: 0,
            flops_since_log: 0.0,
            full,
            by_document,
            stream,
            probe: ProbeFeatures::default(),
            probe_fit: None,
        })
    }

    /// Micro-batches per epoch.
    fn batches_per_epoch(&self) -> usize {
        match &self.stream {
            Some((batches, _)) => *batches,
            None => self.epoch_batches.len(),
        }
    }

    /// Whether the next call trains a step (a streamed run then needs that step's rows) rather
    /// than validating at the end of an epoch, or nothing (finished).
    pub fn needs_rows(&self) -> bool {
        !self.finished() && self.progress.batch < self.batches_per_epoch()
    }

    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.batches_per_epoch().div_ceil(self.config.grad_accum.max(1))
    }

    /// Training rows in memory (windows, when texts are read in windows).
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// Tokens in the longest training text (the widest a padded batch gets).
    pub fn longest_train_text(&self) -> usize {
        self.train.encoded.iter().map(|e| e.ids.len()).max().unwrap_or(0)
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.epochs
    }

    pub fn finished(&self) -> bool {
        self.progress.stopped_early || self.progress.epoch >= self.config.epochs
    }

    /// One optimiser step, its parts computed as `by` says, or (the call after an epoch's last
    /// step) the validation pass (on the session's device). Returns the events of this call: a
    /// logging point, or the epoch summary.
    pub async fn advance(&mut self, by: Parts<'_, LabelledBatch>) -> Result<Vec<TrainEvent>> {
        if self.stream.is_some() {
            return Err(Error::invalid("training", None, "a streamed session advances with advance_streamed"));
        }
        self.advance_on(by, None).await
    }

    /// [`Session::advance`] for a streamed run ([`TrainData::Stream`]): `rows` are this
    /// step's (up to `batch_size × grad_accum`; ignored when [`Session::needs_rows`] is false),
    /// cut into micro-batches of similar length, each into parts computed as `by` says.
    pub async fn advance_streamed(
        &mut self,
        rows: LabelledTexts,
        by: Parts<'_, LabelledBatch>,
    ) -> Result<Vec<TrainEvent>> {
        if self.stream.is_none() {
            return Err(Error::invalid("training", None, "advance_streamed needs a streamed session"));
        }
        self.advance_on(by, Some(rows)).await
    }

    async fn advance_on(
        &mut self,
        by: Parts<'_, LabelledBatch>,
        streamed: Option<LabelledTexts>,
    ) -> Result<Vec<TrainEvent>> {
        let mut events = Vec::new();
        if self.finished() {
            return Ok(events);
        }
        if self.progress.probe_pending {
            events.push(self.probe_advance().await?);
            return Ok(events);
        }
        if self.progress.batch >= self.batches_per_epoch() {
            events.push(self.end_epoch().await?);
            return Ok(events);
        }
        let accum = self.config.grad_accum.max(1);
        let end = (self.progress.batch + accum).min(self.batches_per_epoch());
        let parts = self.config.parts.max(1);
        let (augment, seed, pad_id) = (&self.config.augment, self.config.seed, self.pad_id);
        let by_document = self.by_document;
        let cut = |texts: &LabelledTexts, rows: &[usize], round: usize| -> Vec<LabelledBatch> {
            texts
                .parts(rows, parts, by_document)
                .iter()
                .map(|part| texts.augmented_batch(part, pad_id, augment, seed, round, by_document))
                .collect()
        };
        let micro: Vec<LabelledBatch> = match &streamed {
            None => self.epoch_batches[self.progress.batch..end]
                .iter()
                .flat_map(|rows| cut(&self.train, rows, self.progress.epoch))
                .collect(),
            Some(texts) => {
                if texts.is_empty() {
                    return Err(Error::invalid("training", None, "a streamed step got no rows"));
                }
                // Longest first, so each micro-batch pads little; the step number varies the
                // augmentation from step to step.
                let mut order: Vec<usize> = (0..texts.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(texts.encoded[i].ids.len()));
                order
                    .chunks(self.config.batch_size.max(1))
                    .flat_map(|rows| cut(texts, rows, self.trainer.step))
                    .collect()
            }
        };
        for b in &micro {
            self.tokens_since_log += b.tokens.lengths.iter().sum::<usize>();
            self.samples_since_log += b.tokens.lengths.len();
            self.flops_since_log += batch_training_flops(&self.model_config, &b.tokens.lengths, 0, self.full);
        }
        // Dropout draws from the backend's generator: seeding it per step makes a run resumed
        // at any step draw what the uninterrupted run drew.
        self.device.seed(self.config.seed.wrapping_mul(1_000_003).wrapping_add(self.trainer.step as u64));
        let lr = self.trainer.schedule.lr(self.trainer.step);
        let loss = self.trainer.step(&micro, by).await?;
        self.pending.add(loss);
        self.progress.batch = end;
        let epoch_done = self.progress.batch >= self.batches_per_epoch();
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

    async fn end_epoch(&mut self) -> Result<TrainEvent> {
        let model = self.trainer.eval_model();
        let report = self.validate(&model).await?;
        let epoch = self.progress.epoch;
        let (value, improved) = self.record(model, &report, Some(epoch))?;
        if !improved && self.config.patience.is_some_and(|p| self.progress.epochs_without_improvement >= p) {
            self.progress.stopped_early = true;
        }
        let train_loss = self.epoch_loss.iter().sum::<f64>() / self.epoch_loss.len().max(1) as f64;
        self.epoch_loss.clear();
        self.progress.epoch += 1;
        self.progress.batch = 0;
        if self.stream.is_none() {
            let c = &self.config;
            self.epoch_batches = self.train.epoch_plan(c.batch_size, c.seed, self.progress.epoch, self.by_document);
        }
        Ok(TrainEvent::Epoch { epoch, step: self.trainer.step, train_loss, val_metric: value, improved })
    }

    /// Keeps `model` as the best so far when its validation `report` improves on the best
    /// (`epoch`: the trained epoch, `None` for the probe-initialised head before any step).
    fn record(
        &mut self,
        model: BertClassifier,
        report: &serde_json::Value,
        epoch: Option<usize>,
    ) -> Result<(Option<f64>, bool)> {
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

    /// One call of the probe-initialised head's fitting: embeds the next chunk of training or
    /// validation rows with the frozen model, or, once all are embedded, fits core's logistic
    /// regression on the training rows with its C chosen on the validation rows, copies it into
    /// the head and validates it (epoch 0).
    async fn probe_advance(&mut self) -> Result<TrainEvent> {
        let n_train = self.train.len();
        let total = n_train + self.val.len();
        if self.probe.model.is_none() {
            let longest_first = |split: &LabelledTexts, offset: usize| {
                let mut order: Vec<usize> = (0..split.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(split.encoded[i].ids.len()));
                order.into_iter().map(move |i| i + offset)
            };
            let order = longest_first(&self.train, 0).chain(longest_first(&self.val, n_train)).collect();
            self.probe = ProbeFeatures { order, done: 0, values: Vec::new(), model: Some(self.trainer.eval_model()) };
        }
        let hidden = self.model_config.hidden_size;
        let device = self.device.clone().without_autodiff();
        if self.probe.done < total {
            // Inference batches: wider than training's, as validation's are; one split per chunk.
            let done = self.probe.done;
            let boundary = if done < n_train { n_train } else { total };
            let end = (done + (self.config.batch_size * 2).max(32)).min(boundary);
            let rows = self.probe.order[done..end].to_vec();
            let batch = if done < n_train {
                self.train.batch(&rows, self.pad_id)
            } else {
                self.val.batch(&rows.iter().map(|r| r - n_train).collect::<Vec<_>>(), self.pad_id)
            };
            let model = self.probe.model.as_ref().expect("set above");
            let features = head_features(model, &self.model_config, &batch.tokens, &device).await?;
            if self.probe.values.is_empty() {
                self.probe.values = vec![0.0; total * hidden];
            }
            for (j, &row) in rows.iter().enumerate() {
                self.probe.values[row * hidden..(row + 1) * hidden]
                    .copy_from_slice(&features[j * hidden..(j + 1) * hidden]);
            }
            self.probe.done = end;
            return Ok(TrainEvent::Probe { embedded: end, total, fitted: false, val_metric: None, c: None });
        }
        if self.train.classes > 0 {
            return self.fit_label_probes(n_train, total).await;
        }
        let classes = self.model_config.labels.len();
        let (train_x, val_x) = self.probe.values.split_at(n_train * hidden);
        // Scored per document, as every validation is: windows' logits aggregated.
        let (val, how) = (&self.val, self.config.aggregate);
        let val_y = val.document_labels();
        let val_probabilities = |probe: &LinearProbe| match val.doc.is_empty() {
            true => probe.probabilities(val_x),
            false => softmax_rows(&val.per_document(probe.logits(val_x), classes, how), classes),
        };
        let train_x = self.probe_rows(train_x);
        let train_y = match self.by_document {
            true => self.train.document_labels(),
            false => self.train.labels.clone(),
        };
        let chosen = LinearProbe::fit_choosing_c_by(&train_x, hidden, &train_y, classes, 300, |probe| {
            let predicted = match val.doc.is_empty() {
                true => probe.predict(val_x),
                false => argmax_rows(&val_probabilities(probe), classes),
            };
            macro_f1(&val_y, &predicted, classes)
        });
        // The head is the probe on the same features: its val probabilities are the probe's
        // (to float rounding), so epoch 0 is scored from the features, without another pass.
        let scores = val_probabilities(&chosen.probe).into_iter().map(f64::from).collect();
        self.probe = ProbeFeatures::default();
        let (weights, bias) = chosen.probe.folded();
        let model = crate::finetune::with_head(self.trainer.model().clone(), &weights, &bias);
        self.trainer.set_model(model);
        let predictions = Predictions { classes: self.model_config.labels.clone(), y_true: val_y, scores };
        let report = evaluate(&predictions, &EvalOptions::default()).map_err(|m| Error::invalid("val", None, m))?;
        let report = serde_json::to_value(&report).expect("reports serialise");
        let (value, _) = self.record(self.trainer.eval_model(), &report, None)?;
        self.progress.probe_pending = false;
        self.progress.probe_metric = value;
        self.progress.probe_c = Some(chosen.c);
        let c = chosen.c;
        self.probe_fit = Some(chosen);
        Ok(TrainEvent::Probe { embedded: total, total, fitted: true, val_metric: value, c: Some(c) })
    }

    /// The probe's training features: each row's, or with mean-pooled documents (the head reads
    /// a document's mean features) one row per document.
    fn probe_rows<'a>(&self, train_x: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        match self.by_document {
            true => {
                self.train.per_document(train_x.to_vec(), self.model_config.hidden_size, Aggregate::MeanPool).into()
            }
            false => train_x.into(),
        }
    }

    /// Multi-label rows: one logistic regression per label on the frozen features (one-vs-rest,
    /// each label's C chosen on the validation rows by that label's F1), put into the head — a
    /// two-class softmax is the sigmoid of its logits' difference — and validated (epoch 0).
    async fn fit_label_probes(&mut self, n_train: usize, total: usize) -> Result<TrainEvent> {
        let (k, hidden) = (self.model_config.labels.len(), self.model_config.hidden_size);
        let (train_x, val_x) = self.probe.values.split_at(n_train * hidden);
        let column = |targets: &[f32], j: usize| -> Vec<usize> {
            targets.chunks(k).map(|row| (row[j] > 0.5) as usize).collect()
        };
        let train_x = self.probe_rows(train_x);
        let train_targets = match self.by_document {
            true => self.train.document_targets(),
            false => self.train.targets.clone(),
        };
        // Validation scores documents: a label applies where its windows' aggregated logit is > 0.
        let (val, how, val_targets) = (&self.val, self.config.aggregate, self.val.document_targets());
        let (mut weights, mut bias, mut cs) = (Vec::with_capacity(k * hidden), Vec::with_capacity(k), Vec::new());
        for j in 0..k {
            let (y, val_y) = (column(&train_targets, j), column(&val_targets, j));
            if y.iter().all(|&v| v == y[0]) {
                // A label on every training row, or none: the head says so whatever the text.
                weights.extend(std::iter::repeat_n(0.0, hidden));
                bias.push(if y[0] == 1 { 4.0 } else { -4.0 });
                continue;
            }
            let chosen = LinearProbe::fit_choosing_c_by(&train_x, hidden, &y, 2, 300, |probe| {
                let margins: Vec<f32> = probe.logits(val_x).chunks(2).map(|l| l[1] - l[0]).collect();
                let predicted: Vec<usize> =
                    val.per_document(margins, 1, how).iter().map(|&m| (m > 0.0) as usize).collect();
                let tp = predicted.iter().zip(&val_y).filter(|(p, t)| **p == 1 && **t == 1).count() as f64;
                let (pp, tt) = (predicted.iter().sum::<usize>() as f64, val_y.iter().sum::<usize>() as f64);
                if pp + tt == 0.0 {
                    1.0
                } else {
                    2.0 * tp / (pp + tt)
                }
            });
            let (w, b) = chosen.probe.folded();
            weights.extend(w[hidden..].iter().zip(&w[..hidden]).map(|(one, zero)| one - zero));
            bias.push(b[1] - b[0]);
            cs.push(chosen.c);
        }
        self.probe = ProbeFeatures::default();
        let model = crate::finetune::with_head(self.trainer.model().clone(), &weights, &bias);
        self.trainer.set_model(model);
        let report = self.validate(&self.trainer.eval_model()).await?;
        let (value, _) = self.record(self.trainer.eval_model(), &report, None)?;
        self.progress.probe_pending = false;
        self.progress.probe_metric = value;
        // The labels' Cs differ; their median stands for them.
        cs.sort_by(f64::total_cmp);
        self.progress.probe_c = cs.get(cs.len() / 2).copied();
        let c = self.progress.probe_c;
        Ok(TrainEvent::Probe { embedded: total, total, fitted: true, val_metric: value, c })
    }

    /// The report the run selects on: `savant eval`'s of `model` on the validation split, or
    /// for multi-label rows `savant eval --multi-label`'s at thresholds of 0.5.
    pub async fn validate(&self, model: &BertClassifier) -> Result<serde_json::Value> {
        let report = match self.val.targets.is_empty() {
            true => serde_json::to_value(self.evaluate(model).await?),
            false => {
                serde_json::to_value(crate::metrics::multilabel::evaluate(&self.val_label_sets(model, &[]).await?))
            }
        };
        Ok(report.expect("reports serialise"))
    }

    /// Multi-label rows: `model`'s probabilities (sigmoid) for the validation rows with their
    /// label sets, predicted at `thresholds` (one per class; empty: 0.5 each).
    pub async fn val_label_sets(&self, model: &BertClassifier, thresholds: &[f64]) -> Result<LabelSets> {
        let k = self.model_config.labels.len();
        let device = self.device.clone().without_autodiff();
        let mut logits = Vec::with_capacity(self.val.len() * k);
        let order: Vec<usize> = (0..self.val.len()).collect();
        for rows in order.chunks((self.config.batch_size * 2).max(32)) {
            let batch = self.val.batch(rows, self.pad_id);
            logits.extend(classify(model, &self.model_config, &batch.tokens, &device).await?);
        }
        // A windowed document's logits are its windows' aggregated, as `savant predict` does.
        let logits = self.val.per_document(logits, k, self.config.aggregate);
        let scores = logits.iter().map(|&x| 1.0 / (1.0 + (-(x as f64)).exp())).collect();
        let y_true = self.val.document_targets().iter().map(|&t| t > 0.5).collect();
        let labels = self.model_config.labels.clone();
        let mut sets = LabelSets { labels, y_true, scores, y_pred: Vec::new(), predicted_by: "", warnings: Vec::new() };
        sets.predict_at(thresholds);
        Ok(sets)
    }

    /// `savant eval`'s report of `model` on the validation split.
    pub async fn evaluate(&self, model: &BertClassifier) -> Result<EvalReport> {
        let predictions = self.val_predictions(model).await?;
        evaluate(&predictions, &EvalOptions::default()).map_err(|m| Error::invalid("val", None, m))
    }

    /// `model`'s class probabilities for the validation documents, as `savant eval` reads them
    /// (a windowed document's from its windows' aggregated logits).
    pub async fn val_predictions(&self, model: &BertClassifier) -> Result<Predictions> {
        let k = self.model_config.labels.len();
        let mut logits = vec![0.0f32; self.val.len() * k];
        let lengths: Vec<usize> = self.val.encoded.iter().map(|e| e.ids.len()).collect();
        let mut order: Vec<usize> = (0..self.val.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        // Inference off the autodiff device: no graph, and dropout (active on autodiff) stays off.
        let device = self.device.clone().without_autodiff();
        for rows in order.chunks(self.config.batch_size.max(1) * 2) {
            let batch = self.val.batch(rows, self.pad_id);
            let out = classify(model, &self.model_config, &batch.tokens, &device).await?;
            for (j, &row) in rows.iter().enumerate() {
                logits[row * k..(row + 1) * k].copy_from_slice(&out[j * k..(j + 1) * k]);
            }
        }
        let probs = softmax_rows(&self.val.per_document(logits, k, self.config.aggregate), k);
        let scores = probs.into_iter().map(f64::from).collect();
        Ok(Predictions { classes: self.model_config.labels.clone(), y_true: self.val.document_labels(), scores })
    }

    /// The device the run trains on (an autodiff device).
    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// The model to keep: the best epoch's weights (without autodiff), or the current ones if
    /// no epoch finished.
    pub fn best_model(&self) -> BertClassifier {
        self.best.clone().unwrap_or_else(|| self.trainer.eval_model())
    }
}

/// The value of `metric` in `report` (`None` when the data leave it undefined).
pub fn metric_value(report: &serde_json::Value, metric: &str) -> Result<Option<f64>> {
    match report.get(metric) {
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
        Some(serde_json::Value::Null) => Ok(None),
        _ => Err(Error::invalid(
            "metric",
            None,
            format!("'{metric}' is not a scalar key of savant eval's report (e.g. f1_macro, accuracy, balanced_accuracy, mcc, log_loss)"),
        )),
    }
}

/// A one-element tensor (a loss) read back, asynchronously so that the browser can too.
pub async fn read_scalar(t: Tensor<1>) -> Result<f64> {
    let data =
        t.into_data_async().await.map_err(|e| Error::invalid("device", None, format!("reading the loss: {e:?}")))?;
    let data = data.convert::<f32>();
    let v =
        data.try_into_vec::<f32>().map_err(|e| Error::invalid("device", None, format!("reading the loss: {e:?}")))?;
    Ok(v.first().copied().unwrap_or(f32::NAN) as f64)
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
    identity: serde_json::Value,
    step: usize,
    progress: Progress,
    pending_loss: Option<f64>,
    loss_steps: usize,
    epoch_loss: Vec<f64>,
    tokens_since_log: usize,
    best_report: Option<serde_json::Value>,
}

impl Session {
    /// What identifies this run: data size, labels and every setting that shapes the updates.
    fn identity(&self) -> serde_json::Value {
        let checksum = |t: &LabelledTexts| -> u64 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for (e, l) in t.encoded.iter().zip(&t.labels) {
                for v in e.ids.iter().map(|&i| i as u64).chain([u64::MAX, *l as u64]) {
                    h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
                }
            }
            h
        };
        let mut identity = serde_json::json!({
            "train_rows": self.train.len(),
            "train_checksum": checksum(&self.train).to_string(),
            "val_rows": self.val.len(),
            "labels": self.model_config.labels,
            "epochs": self.config.epochs,
            "batch_size": self.config.batch_size,
            "grad_accum": self.config.grad_accum,
            "parts": self.config.parts,
            "augment": [self.config.augment.delete, self.config.augment.swap, self.config.augment.mask],
            "seed": self.config.seed,
            "metric": self.config.metric,
            "probe_head": self.config.probe_head,
            "schedule": [self.trainer.schedule.peak, self.trainer.schedule.warmup as f64, self.trainer.schedule.total as f64],
        });
        if let Some((_, stream)) = &self.stream {
            identity["stream"] = stream.clone();
        }
        if !self.val.doc.is_empty() {
            identity["aggregate"] = serde_json::json!(self.config.aggregate);
        }
        if !self.train.targets.is_empty() {
            // Label sets: the rows' labels are their targets (`labels` holds zeros).
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &t in &self.train.targets {
                h = (h ^ t.to_bits() as u64).wrapping_mul(0x0100_0000_01b3);
            }
            identity["train_targets_checksum"] = serde_json::json!(h.to_string());
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
            best_report: self.best_report.clone(),
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
        self.best_report = state.best_report;
        let c = &self.config;
        self.epoch_batches = self.train.epoch_plan(c.batch_size, c.seed, self.progress.epoch, self.by_document);
        Ok(())
    }
}
