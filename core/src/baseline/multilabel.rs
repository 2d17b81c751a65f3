//! The multi-label bag-of-words baseline: the same TF-IDF, then scikit-learn's
//! `OneVsRestClassifier(LogisticRegression(C))` — one binary logistic regression per label (a
//! label on every training row, or on none, is that constant, as sklearn's warning says) — with C
//! chosen on val by micro-F1 at 0.5, then each label's threshold on val by its F1
//! ([`crate::train::thresholds`], the rule `savant train` uses).

use super::lbfgs::Lbfgs;
use super::logistic::Softmax;
use super::tfidf::TfIdf;
use super::BaselineOptions;
use crate::metrics::multilabel::{column, precision_recall_f1};
use crate::train::thresholds::{self, ThresholdChoice, ThresholdWord};
use crate::train::{LabelSet, LabelledRows};
use crate::{Error, Result};

/// One label's model.
#[derive(Debug, Clone)]
enum LabelModel {
    Fitted(Softmax),
    /// Every training row has the label (`true`) or none has.
    Constant(bool),
}

/// A fitted one-vs-rest baseline.
#[derive(Debug, Clone)]
pub struct LabelSetBaseline {
    tfidf: TfIdf,
    models: Vec<LabelModel>,
    pub labels: Vec<String>,
    /// Each label's threshold, chosen on val.
    pub thresholds: Vec<f64>,
}

/// What [`LabelSetBaseline::fit`] found.
#[derive(Debug, Clone)]
pub struct LabelSetFit {
    pub baseline: LabelSetBaseline,
    pub c: f64,
    /// `(C, val micro-F1 at 0.5)` for every C tried, ascending.
    pub table: Vec<(f64, f64)>,
    /// Val micro-F1 at the chosen thresholds.
    pub val_f1_micro: f64,
    /// `[val rows, labels]` probabilities of the chosen C.
    pub val_probabilities: Vec<f64>,
}

impl LabelSetBaseline {
    /// Fits on `train` texts and `[rows, labels]` 0/1 targets, picks C and the thresholds on `val`.
    pub fn fit(
        train: (&[&str], &[bool]),
        val: (&[&str], &[bool]),
        labels: &[String],
        options: &BaselineOptions,
        source: &str,
    ) -> Result<LabelSetFit> {
        let k = labels.len();
        if train.0.is_empty()
            || val.0.is_empty()
            || train.1.len() != train.0.len() * k
            || val.1.len() != val.0.len() * k
        {
            return Err(Error::invalid(
                source,
                None,
                "the baseline needs training and validation rows with a label set each",
            ));
        }
        let (tfidf, x) = TfIdf::fit(train.0, source)?;
        let val_x = tfidf.transform(val.0);
        let solver = Lbfgs { max_iter: options.max_iter, gtol: options.tol, ..Lbfgs::default() };
        let column = |t: &[bool], j: usize| -> Vec<usize> { column(t, k, j).into_iter().map(usize::from).collect() };
        let mut cs = options.cs.clone();
        cs.sort_by(f64::total_cmp);
        cs.dedup();
        let mut table: Vec<(f64, f64)> = Vec::new();
        // (C, val micro-F1, the models, their val probabilities) of the best C so far.
        let mut best: Option<(f64, f64, Vec<LabelModel>, Vec<f64>)> = None;
        let mut previous: Vec<Option<Softmax>> = vec![None; k];
        for &c in &cs {
            let mut models = Vec::with_capacity(k);
            for (j, prev) in previous.iter_mut().enumerate() {
                let y = column(train.1, j);
                models.push(match y.iter().all(|&v| v == y[0]) {
                    true => LabelModel::Constant(y[0] == 1),
                    false => {
                        let (model, _) = Softmax::fit(&x, &y, 2, c, &solver, prev.as_ref())?;
                        *prev = Some(model.clone());
                        LabelModel::Fitted(model)
                    }
                });
            }
            let p = probabilities(&models, &val_x, val.0.len());
            let pred: Vec<bool> = p.iter().map(|&v| v >= 0.5).collect();
            let f1 = precision_recall_f1(val.1, &pred, k).micro.f1;
            table.push((c, f1));
            if best.as_ref().is_none_or(|b| f1 > b.1) {
                best = Some((c, f1, models, p));
            }
        }
        let Some((c, _, models, val_probabilities)) = best else {
            return Err(Error::Option("the baseline needs at least one C".into()));
        };
        let per_label = ThresholdChoice::Named(ThresholdWord::PerLabel);
        let thresholds = thresholds::tune(val.1, &val_probabilities, k, per_label, "f1_micro");
        let pred: Vec<bool> = val_probabilities.iter().enumerate().map(|(i, &p)| p >= thresholds[i % k]).collect();
        let val_f1_micro = precision_recall_f1(val.1, &pred, k).micro.f1;
        let baseline = LabelSetBaseline { tfidf, models, labels: labels.to_vec(), thresholds };
        Ok(LabelSetFit { baseline, c, table, val_f1_micro, val_probabilities })
    }

    /// [`fit`](LabelSetBaseline::fit) on rows read with a separator ([`LabelledRows::sets`]): the
    /// labels are the training sets' labels, sorted; a validation label outside them is an error.
    pub fn fit_rows(train: &LabelledRows, val: &LabelledRows, options: &BaselineOptions) -> Result<LabelSetFit> {
        let labels = LabelSet::from_labels(train.sets.iter().flatten().map(String::as_str), &train.source)?;
        let targets = |rows: &LabelledRows| -> Result<Vec<bool>> {
            let mut t = vec![false; rows.sets.len() * labels.len()];
            for (i, set) in rows.sets.iter().enumerate() {
                for j in labels.ids(set.iter().map(String::as_str), &rows.source)? {
                    t[i * labels.len() + j] = true;
                }
            }
            Ok(t)
        };
        let (train_y, val_y) = (targets(train)?, targets(val)?);
        let train_x: Vec<&str> = train.texts.iter().map(String::as_str).collect();
        let val_x: Vec<&str> = val.texts.iter().map(String::as_str).collect();
        LabelSetBaseline::fit((&train_x, &train_y), (&val_x, &val_y), &labels.names, options, &train.source)
    }

    /// Each label's probability for each text, `[texts, labels]`.
    pub fn probabilities(&self, texts: &[&str]) -> Vec<f64> {
        probabilities(&self.models, &self.tfidf.transform(texts), texts.len())
    }

    pub fn vocabulary_size(&self) -> usize {
        self.tfidf.terms().len()
    }
}

fn probabilities(models: &[LabelModel], x: &super::tfidf::SparseRows, rows: usize) -> Vec<f64> {
    let k = models.len();
    let mut out = vec![0.0; rows * k];
    for (j, m) in models.iter().enumerate() {
        match m {
            LabelModel::Constant(on) => (0..rows).for_each(|i| out[i * k + j] = *on as u8 as f64),
            LabelModel::Fitted(model) => {
                for (i, p) in model.probabilities(x).chunks_exact(2).enumerate() {
                    out[i * k + j] = p[1];
                }
            }
        }
    }
    out
}

/// A one-vs-rest baseline as saved inside [`LabelSetEnsemble::to_json`].
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedLabelSetBaseline {
    labels: Vec<String>,
    terms: Vec<String>,
    idf: Vec<f64>,
    /// Each label's binary logistic regression (`[terms, 2]` row-major, then the two
    /// intercepts), or `None` for a label constant in training (`constant`).
    params: Vec<Option<Vec<f64>>>,
    constant: Vec<bool>,
    /// The baseline's own thresholds (chosen on val for it alone).
    thresholds: Vec<f64>,
}

impl LabelSetBaseline {
    fn saved(&self) -> SavedLabelSetBaseline {
        let params = self
            .models
            .iter()
            .map(|m| match m {
                LabelModel::Fitted(s) => Some(s.params().to_vec()),
                LabelModel::Constant(_) => None,
            })
            .collect();
        let constant = self.models.iter().map(|m| matches!(m, LabelModel::Constant(true))).collect();
        SavedLabelSetBaseline {
            labels: self.labels.clone(),
            terms: self.tfidf.terms().to_vec(),
            idf: self.tfidf.idf().to_vec(),
            params,
            constant,
            thresholds: self.thresholds.clone(),
        }
    }

    fn from_saved(s: SavedLabelSetBaseline, source: &str) -> Result<LabelSetBaseline> {
        let features = s.terms.len();
        let k = s.labels.len();
        if s.params.len() != k || s.constant.len() != k || s.thresholds.len() != k {
            return Err(Error::invalid(source, None, format!("{} labels but {} label models", k, s.params.len())));
        }
        let tfidf = TfIdf::from_terms(s.terms, s.idf, source)?;
        let models = s
            .params
            .into_iter()
            .zip(s.constant)
            .zip(&s.labels)
            .map(|((params, on), label)| match params {
                None => Ok(LabelModel::Constant(on)),
                Some(p) => Softmax::from_params(features, 2, p).map(LabelModel::Fitted).ok_or_else(|| {
                    Error::invalid(
                        source,
                        None,
                        format!("label '{label}': the weights do not fit {features} terms × 2"),
                    )
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LabelSetBaseline { tfidf, models, labels: s.labels, thresholds: s.thresholds })
    }
}

/// A multi-label model's label probabilities averaged with the one-vs-rest baseline's:
/// `weight · specialist + (1 − weight) · baseline`, then cut at thresholds tuned on the averaged
/// validation probabilities (the weight and thresholds chosen together on val, as
/// [`crate::baseline::Ensemble`] does for one label per row).
#[derive(Debug, Clone)]
pub struct LabelSetEnsemble {
    pub weight: f64,
    pub baseline: LabelSetBaseline,
    /// The averaged probabilities' thresholds (not the specialist's own).
    pub thresholds: thresholds::Thresholds,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedLabelSetEnsemble {
    format: String,
    weight: f64,
    thresholds: thresholds::Thresholds,
    baseline: SavedLabelSetBaseline,
}

const LABEL_SET_ENSEMBLE_FORMAT: &str = "savant-label-set-ensemble/1";

impl LabelSetEnsemble {
    /// The weight in 0, 0.1, … 1 and the thresholds (`choice`, as `savant train --thresholds`)
    /// whose averaged `[rows, labels]` probabilities score the best `metric` on `y_true` (ties:
    /// the larger weight), with that score. `specialist` and `baseline` are in the same label
    /// order.
    pub fn choose(
        specialist: &[f64],
        baseline: &[f64],
        y_true: &[bool],
        k: usize,
        choice: ThresholdChoice,
        metric: &str,
    ) -> (f64, Vec<f64>, f64) {
        let mut best = (1.0, vec![0.5; k], f64::NEG_INFINITY);
        for step in (0..=10).rev() {
            let w = step as f64 / 10.0;
            let mixed = LabelSetEnsemble::average(w, specialist, baseline);
            let chosen = thresholds::tune(y_true, &mixed, k, choice, metric);
            let score = thresholds::score(y_true, &mixed, &chosen, k, metric);
            if score > best.2 {
                best = (w, chosen, score);
            }
        }
        best
    }

    /// `weight · specialist + (1 − weight) · baseline`, element by element.
    pub fn average(weight: f64, specialist: &[f64], baseline: &[f64]) -> Vec<f64> {
        specialist.iter().zip(baseline).map(|(s, b)| weight * s + (1.0 - weight) * b).collect()
    }

    /// The averaged probabilities of `texts`, given the specialist's (`[texts, labels]`, in the
    /// baseline's label order).
    pub fn mix(&self, specialist: &[f32], texts: &[&str]) -> Vec<f32> {
        let w = self.weight;
        let baseline = self.baseline.probabilities(texts);
        specialist.iter().zip(&baseline).map(|(&s, &b)| (w * s as f64 + (1.0 - w) * b) as f32).collect()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&SavedLabelSetEnsemble {
            format: LABEL_SET_ENSEMBLE_FORMAT.into(),
            weight: self.weight,
            thresholds: self.thresholds.clone(),
            baseline: self.baseline.saved(),
        })
        .expect("an ensemble serialises")
    }

    /// Reads [`LabelSetEnsemble::to_json`]'s bytes, checked against the model's `labels`;
    /// `source` names them in errors.
    pub fn from_json(bytes: &[u8], labels: &[String], source: &str) -> Result<LabelSetEnsemble> {
        let s: SavedLabelSetEnsemble = serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(source, None, format!("not a multi-label ensemble file ({LABEL_SET_ENSEMBLE_FORMAT}): {e}"))
        })?;
        if s.format != LABEL_SET_ENSEMBLE_FORMAT {
            return Err(Error::invalid(
                source,
                None,
                format!("format '{}', expected '{LABEL_SET_ENSEMBLE_FORMAT}'", s.format),
            ));
        }
        if !(0.0..=1.0).contains(&s.weight) {
            return Err(Error::invalid(source, None, format!("weight {} is not in [0, 1]", s.weight)));
        }
        if s.baseline.labels != labels || s.thresholds.labels != labels || s.thresholds.thresholds.len() != labels.len()
        {
            return Err(Error::invalid(
                source,
                None,
                format!("its labels {:?} are not the model's {:?}", s.baseline.labels, labels),
            ));
        }
        let baseline = LabelSetBaseline::from_saved(s.baseline, source)?;
        Ok(LabelSetEnsemble { weight: s.weight, baseline, thresholds: s.thresholds })
    }
}
