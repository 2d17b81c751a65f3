//! Sequence classification as a [`Task`] of the run loop ([`Session`]): length-bucketed batches
//! of labelled texts (one class, or a label set, per text; a long text's windows each carry its
//! labels), reshuffled each epoch or streamed in by the caller; the validation split scored per
//! text with `savant eval`'s metrics; the probe-initialised head fitted before the first step.

use std::ops::Range;

use burn::tensor::Device;
use serde_json::Value;

use super::augment::Augment;
use super::batches::{document_batches, epoch_batches};
use super::events::TrainEvent;
use super::flops::batch_training_flops;
use super::session::{Before, RunConfig, Session, Task};
use super::step::{LabelledBatch, Trainer};
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
    /// Validation scores documents: their windows' logits aggregated ([`ClassifyConfig::aggregate`]).
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

/// What a classification run trains on besides the loop's settings.
#[derive(Debug, Clone)]
pub struct ClassifyConfig {
    /// Noise on the training texts (off by default).
    pub augment: Augment,
    /// Before the first step, fit a logistic regression on the frozen model's head features of
    /// the training rows and start the head from it (LP-FT); its validation is epoch 0.
    pub probe_head: bool,
    /// How the logits of a windowed document's windows become its own ([`Aggregate::MeanPool`]:
    /// training classifies documents from their windows' mean features).
    pub aggregate: Aggregate,
}

/// Where a run's training rows come from.
pub enum TrainData {
    /// Held in memory: batched by length, reshuffled each epoch.
    Rows(LabelledTexts),
    /// Streamed in by the caller, a step's rows at a time ([`Session::advance`]):
    /// `steps_per_epoch` optimiser steps between validations; `identity` (the shards and how
    /// they are read) must match on resume.
    Stream { steps_per_epoch: usize, identity: Value },
}

/// Sequence classification; see the module's comment.
pub struct Classify {
    pub settings: ClassifyConfig,
    train: LabelledTexts,
    val: LabelledTexts,
    /// The model's config with the fine-tuned labels.
    model_config: BertConfig,
    pad_id: u32,
    /// Inference (validation, the probe's embedding) runs here: the run's device off autodiff.
    device: Device,
    epoch_batches: Vec<Vec<usize>>,
    /// Every parameter trains (full fine-tuning): the backward pass computes weight gradients too.
    full: bool,
    /// Training classifies whole documents from their windows ([`Aggregate::MeanPool`]).
    by_document: bool,
    /// A streamed run: micro-batches per epoch (an evaluation round), and what identifies the
    /// stream. The caller reads the rows and hands each step's to [`Session::advance`].
    stream: Option<(usize, Value)>,
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

impl Session<Classify> {
    /// A fine-tuning run of `trainer`'s classifier (`model_config`: its config with the
    /// fine-tuned labels) on `data`, validated on `val`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        trainer: Trainer,
        config: RunConfig,
        settings: ClassifyConfig,
        data: TrainData,
        val: LabelledTexts,
        model_config: BertConfig,
        pad_id: u32,
        device: &Device,
    ) -> Result<Session<Classify>> {
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
        if settings.probe_head && stream.is_some() {
            return Err(Error::invalid(
                "train",
                None,
                "a probe-initialised head needs the training rows in memory: not with a streamed split",
            ));
        }
        if settings.probe_head && train.encoded.iter().all(|e| e.ids.len() <= 2) {
            return Err(Error::invalid(
                "train",
                None,
                "every training text is empty after tokenising (only [CLS] and [SEP] are left): a probe-initialised head has nothing to fit; check the text column, or use a random head",
            ));
        }
        let by_document = settings.aggregate == Aggregate::MeanPool && !train.doc.is_empty();
        let probe_pending = settings.probe_head;
        let task = Classify {
            settings,
            train,
            val,
            model_config,
            pad_id,
            device: device.clone().without_autodiff(),
            epoch_batches: Vec::new(),
            full: super::remote::all_trainable(trainer.model()),
            by_document,
            stream,
            probe: ProbeFeatures::default(),
            probe_fit: None,
        };
        Ok(Session::start(trainer, config, task, probe_pending, device))
    }

    /// Training rows in memory (windows, when texts are read in windows).
    pub fn train_len(&self) -> usize {
        self.task.train.len()
    }

    /// Tokens in the longest training text (the widest a padded batch gets).
    pub fn longest_train_text(&self) -> usize {
        self.task.train.encoded.iter().map(|e| e.ids.len()).max().unwrap_or(0)
    }

    /// The fitted probe (epoch 0's head), taken.
    pub fn take_probe_fit(&mut self) -> Option<ChosenProbe> {
        self.task.probe_fit.take()
    }

    /// The report the run selects on: `savant eval`'s of `model` on the validation split, or
    /// for multi-label rows `savant eval --multi-label`'s at thresholds of 0.5.
    pub async fn validate(&self, model: &BertClassifier) -> Result<Value> {
        self.task.validate(model, &self.config).await
    }

    /// Multi-label rows: `model`'s probabilities (sigmoid) for the validation rows with their
    /// label sets, predicted at `thresholds` (one per class; empty: 0.5 each).
    pub async fn val_label_sets(&self, model: &BertClassifier, thresholds: &[f64]) -> Result<LabelSets> {
        self.task.val_label_sets(model, thresholds, self.config.batch_size).await
    }

    /// `savant eval`'s report of `model` on the validation split.
    pub async fn evaluate(&self, model: &BertClassifier) -> Result<EvalReport> {
        self.task.evaluate(model, self.config.batch_size).await
    }

    /// `model`'s class probabilities for the validation documents, as `savant eval` reads them
    /// (a windowed document's from its windows' aggregated logits).
    pub async fn val_predictions(&self, model: &BertClassifier) -> Result<Predictions> {
        self.task.val_predictions(model, self.config.batch_size).await
    }
}

impl Task for Classify {
    type Model = BertClassifier;
    type Rows = LabelledTexts;

    fn streamed(&self) -> bool {
        self.stream.is_some()
    }

    fn batches_per_round(&self) -> usize {
        match &self.stream {
            Some((batches, _)) => *batches,
            None => self.epoch_batches.len(),
        }
    }

    fn plan_round(&mut self, round: usize, config: &RunConfig) {
        if self.stream.is_none() {
            self.epoch_batches = self.train.epoch_plan(config.batch_size, config.seed, round, self.by_document);
        }
    }

    fn step_parts(
        &mut self,
        round: usize,
        batches: Range<usize>,
        step: usize,
        rows: Option<LabelledTexts>,
        config: &RunConfig,
    ) -> Result<Vec<LabelledBatch>> {
        let parts = config.parts.max(1);
        let (augment, seed, pad_id, by_document) = (&self.settings.augment, config.seed, self.pad_id, self.by_document);
        let cut = |texts: &LabelledTexts, rows: &[usize], round: usize| -> Vec<LabelledBatch> {
            texts
                .parts(rows, parts, by_document)
                .iter()
                .map(|part| texts.augmented_batch(part, pad_id, augment, seed, round, by_document))
                .collect()
        };
        Ok(match (&self.stream, rows) {
            (None, _) => self.epoch_batches[batches].iter().flat_map(|rows| cut(&self.train, rows, round)).collect(),
            (Some(_), None) => return Err(Error::invalid("training", None, "a streamed step got no rows")),
            (Some(_), Some(texts)) => {
                if texts.is_empty() {
                    return Err(Error::invalid("training", None, "a streamed step got no rows"));
                }
                // Longest first, so each micro-batch pads little; the step number varies the
                // augmentation from step to step.
                let mut order: Vec<usize> = (0..texts.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(texts.encoded[i].ids.len()));
                order.chunks(config.batch_size.max(1)).flat_map(|rows| cut(&texts, rows, step)).collect()
            }
        })
    }

    fn count(&self, part: &LabelledBatch) -> (usize, usize, f64) {
        let lengths = &part.tokens.lengths;
        (lengths.iter().sum(), lengths.len(), batch_training_flops(&self.model_config, lengths, 0, self.full))
    }

    /// One call of the probe-initialised head's fitting: embeds the next chunk of training or
    /// validation rows with the frozen model, or, once all are embedded, fits core's logistic
    /// regression on the training rows with its C chosen on the validation rows, copies it into
    /// the head and validates it (epoch 0).
    async fn before(&mut self, trainer: &mut Trainer, config: &RunConfig) -> Result<Before> {
        let n_train = self.train.len();
        let total = n_train + self.val.len();
        if self.probe.model.is_none() {
            let longest_first = |split: &LabelledTexts, offset: usize| {
                let mut order: Vec<usize> = (0..split.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(split.encoded[i].ids.len()));
                order.into_iter().map(move |i| i + offset)
            };
            let order = longest_first(&self.train, 0).chain(longest_first(&self.val, n_train)).collect();
            self.probe = ProbeFeatures { order, done: 0, values: Vec::new(), model: Some(trainer.eval_model()) };
        }
        let hidden = self.model_config.hidden_size;
        if self.probe.done < total {
            // Inference batches: wider than training's, as validation's are; one split per chunk.
            let done = self.probe.done;
            let boundary = if done < n_train { n_train } else { total };
            let end = (done + (config.batch_size * 2).max(32)).min(boundary);
            let rows = self.probe.order[done..end].to_vec();
            let batch = if done < n_train {
                self.train.batch(&rows, self.pad_id)
            } else {
                self.val.batch(&rows.iter().map(|r| r - n_train).collect::<Vec<_>>(), self.pad_id)
            };
            let model = self.probe.model.as_ref().expect("set above");
            let features = head_features(model, &self.model_config, &batch.tokens, &self.device).await?;
            if self.probe.values.is_empty() {
                self.probe.values = vec![0.0; total * hidden];
            }
            for (j, &row) in rows.iter().enumerate() {
                self.probe.values[row * hidden..(row + 1) * hidden]
                    .copy_from_slice(&features[j * hidden..(j + 1) * hidden]);
            }
            self.probe.done = end;
            return Ok(Before::Working(TrainEvent::Probe {
                embedded: end,
                total,
                fitted: false,
                val_metric: None,
                c: None,
            }));
        }
        if self.train.classes > 0 {
            return self.fit_label_probes(trainer, config, n_train, total).await;
        }
        let classes = self.model_config.labels.len();
        let (train_x, val_x) = self.probe.values.split_at(n_train * hidden);
        // Scored per document, as every validation is: windows' logits aggregated.
        let (val, how) = (&self.val, self.settings.aggregate);
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
        trainer.set_model(crate::finetune::with_head(trainer.model().clone(), &weights, &bias));
        let predictions = Predictions { classes: self.model_config.labels.clone(), y_true: val_y, scores };
        let report = evaluate(&predictions, &EvalOptions::default()).map_err(|m| Error::invalid("val", None, m))?;
        let c = Some(chosen.c);
        self.probe_fit = Some(chosen);
        Ok(Before::Fitted { report: serde_json::to_value(&report).expect("reports serialise"), total, c })
    }

    async fn validate(&self, model: &BertClassifier, config: &RunConfig) -> Result<Value> {
        let report = match self.val.targets.is_empty() {
            true => serde_json::to_value(self.evaluate(model, config.batch_size).await?),
            false => serde_json::to_value(crate::metrics::multilabel::evaluate(
                &self.val_label_sets(model, &[], config.batch_size).await?,
            )),
        };
        Ok(report.expect("reports serialise"))
    }

    /// The data size, labels and every setting of the task that shapes the updates.
    fn identity(&self) -> Value {
        let checksum = |t: &LabelledTexts| -> u64 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for (e, l) in t.encoded.iter().zip(&t.labels) {
                for v in e.ids.iter().map(|&i| i as u64).chain([u64::MAX, *l as u64]) {
                    h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
                }
            }
            h
        };
        let a = &self.settings.augment;
        let mut identity = serde_json::json!({
            "train_rows": self.train.len(),
            "train_checksum": checksum(&self.train).to_string(),
            "val_rows": self.val.len(),
            "labels": self.model_config.labels,
            "augment": [a.delete, a.swap, a.mask],
            "probe_head": self.settings.probe_head,
        });
        if let Some((_, stream)) = &self.stream {
            identity["stream"] = stream.clone();
        }
        if !self.val.doc.is_empty() {
            identity["aggregate"] = serde_json::json!(self.settings.aggregate);
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
}

impl Classify {
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
    async fn fit_label_probes(
        &mut self,
        trainer: &mut Trainer,
        config: &RunConfig,
        n_train: usize,
        total: usize,
    ) -> Result<Before> {
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
        let (val, how, val_targets) = (&self.val, self.settings.aggregate, self.val.document_targets());
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
        trainer.set_model(crate::finetune::with_head(trainer.model().clone(), &weights, &bias));
        let report = self.validate(&trainer.eval_model(), config).await?;
        // The labels' Cs differ; their median stands for them.
        cs.sort_by(f64::total_cmp);
        Ok(Before::Fitted { report, total, c: cs.get(cs.len() / 2).copied() })
    }

    /// Multi-label rows: `model`'s probabilities (sigmoid) for the validation rows with their
    /// label sets, predicted at `thresholds` (one per class; empty: 0.5 each).
    async fn val_label_sets(&self, model: &BertClassifier, thresholds: &[f64], batch_size: usize) -> Result<LabelSets> {
        let k = self.model_config.labels.len();
        let mut logits = Vec::with_capacity(self.val.len() * k);
        let order: Vec<usize> = (0..self.val.len()).collect();
        for rows in order.chunks((batch_size * 2).max(32)) {
            let batch = self.val.batch(rows, self.pad_id);
            logits.extend(classify(model, &self.model_config, &batch.tokens, &self.device).await?);
        }
        // A windowed document's logits are its windows' aggregated, as `savant predict` does.
        let logits = self.val.per_document(logits, k, self.settings.aggregate);
        let scores = logits.iter().map(|&x| 1.0 / (1.0 + (-(x as f64)).exp())).collect();
        let y_true = self.val.document_targets().iter().map(|&t| t > 0.5).collect();
        let labels = self.model_config.labels.clone();
        let mut sets = LabelSets { labels, y_true, scores, y_pred: Vec::new(), predicted_by: "", warnings: Vec::new() };
        sets.predict_at(thresholds);
        Ok(sets)
    }

    async fn evaluate(&self, model: &BertClassifier, batch_size: usize) -> Result<EvalReport> {
        let predictions = self.val_predictions(model, batch_size).await?;
        evaluate(&predictions, &EvalOptions::default()).map_err(|m| Error::invalid("val", None, m))
    }

    async fn val_predictions(&self, model: &BertClassifier, batch_size: usize) -> Result<Predictions> {
        let k = self.model_config.labels.len();
        let mut logits = vec![0.0f32; self.val.len() * k];
        let lengths: Vec<usize> = self.val.encoded.iter().map(|e| e.ids.len()).collect();
        let mut order: Vec<usize> = (0..self.val.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        // Inference off the autodiff device: no graph, and dropout (active on autodiff) stays off.
        for rows in order.chunks(batch_size.max(1) * 2) {
            let batch = self.val.batch(rows, self.pad_id);
            let out = classify(model, &self.model_config, &batch.tokens, &self.device).await?;
            for (j, &row) in rows.iter().enumerate() {
                logits[row * k..(row + 1) * k].copy_from_slice(&out[j * k..(j + 1) * k]);
            }
        }
        let probs = softmax_rows(&self.val.per_document(logits, k, self.settings.aggregate), k);
        let scores = probs.into_iter().map(f64::from).collect();
        Ok(Predictions { classes: self.model_config.labels.clone(), y_true: self.val.document_labels(), scores })
    }
}
