//! Multi-label decisions: a label applies when its probability (sigmoid) reaches its threshold.
//! The thresholds are chosen on the validation split once training ends — one for every label
//! or one per label, each maximising the F1 the run selects on — and saved beside the model
//! (`savant_thresholds.json`), where `predict` reads them.

use serde::{Deserialize, Serialize};

use crate::metrics::multilabel::{column, precision_recall_f1};
use crate::{Error, Result};

/// How the thresholds are set (`global`, `per-label`, or a number).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ThresholdChoice {
    Named(ThresholdWord),
    Fixed(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdWord {
    /// One threshold for every label.
    Global,
    /// Each label its own.
    PerLabel,
}

impl Default for ThresholdChoice {
    fn default() -> Self {
        ThresholdChoice::Named(ThresholdWord::Global)
    }
}

impl std::fmt::Display for ThresholdChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ThresholdChoice::Named(ThresholdWord::Global) => f.write_str("global"),
            ThresholdChoice::Named(ThresholdWord::PerLabel) => f.write_str("per-label"),
            ThresholdChoice::Fixed(t) => write!(f, "{t}"),
        }
    }
}

impl std::str::FromStr for ThresholdChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "global" => Ok(ThresholdChoice::Named(ThresholdWord::Global)),
            "per-label" => Ok(ThresholdChoice::Named(ThresholdWord::PerLabel)),
            t => match t.parse::<f64>() {
                Ok(v) if v > 0.0 && v < 1.0 => Ok(ThresholdChoice::Fixed(v)),
                _ => Err(format!("global, per-label or a probability in (0, 1), got '{t}'")),
            },
        }
    }
}

/// The thresholds tried: 0.05, 0.10, …, 0.95.
fn candidates() -> impl Iterator<Item = f64> {
    (1..20).map(|i| i as f64 / 20.0)
}

/// The thresholds `choice` asks for, chosen on `[rows, k]` label sets and probabilities to
/// maximise `metric`'s F1 (`f1_micro`, `f1_macro` or `f1_samples`; `f1_micro` for any other
/// metric): per label, each label's own F1 (ties: the threshold nearest 0.5).
pub fn tune(y_true: &[bool], scores: &[f64], k: usize, choice: ThresholdChoice, metric: &str) -> Vec<f64> {
    let nearest_half = |a: &(f64, f64), b: &(f64, f64)| {
        a.1.total_cmp(&b.1).then_with(|| (b.0 - 0.5).abs().total_cmp(&(a.0 - 0.5).abs()))
    };
    match choice {
        ThresholdChoice::Fixed(t) => vec![t; k],
        ThresholdChoice::Named(ThresholdWord::Global) => {
            let f1 = |t: f64| score(y_true, scores, &[t], k, metric);
            let best = candidates().map(|t| (t, f1(t))).max_by(nearest_half).map_or(0.5, |(t, _)| t);
            vec![best; k]
        }
        ThresholdChoice::Named(ThresholdWord::PerLabel) => (0..k)
            .map(|j| {
                let (truth, label_scores) = (column(y_true, k, j), column(scores, k, j));
                let f1 = |t: f64| {
                    let pred: Vec<bool> = label_scores.iter().map(|&s| s >= t).collect();
                    precision_recall_f1(&truth, &pred, 1).micro.f1
                };
                candidates().map(|t| (t, f1(t))).max_by(nearest_half).map_or(0.5, |(t, _)| t)
            })
            .collect(),
    }
}

/// `metric`'s F1 (`f1_macro`, `f1_samples`, else `f1_micro`) of the sets `scores` give at
/// `thresholds` (one per label; one value: every label's).
pub fn score(y_true: &[bool], scores: &[f64], thresholds: &[f64], k: usize, metric: &str) -> f64 {
    let at = |j: usize| thresholds[(j % k) % thresholds.len()];
    let y_pred: Vec<bool> = scores.iter().enumerate().map(|(j, &s)| s >= at(j)).collect();
    let prf = precision_recall_f1(y_true, &y_pred, k);
    match metric {
        "f1_macro" => prf.macro_avg.f1,
        "f1_samples" => prf.samples.f1,
        _ => prf.micro.f1,
    }
}

/// `savant_thresholds.json`: a multi-label model's labels, their thresholds and the separator
/// its predicted sets are written with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub labels: Vec<String>,
    pub thresholds: Vec<f64>,
    pub label_sep: String,
    /// How they were set (`global`, `per-label` or the number given).
    pub chosen: String,
}

impl Thresholds {
    pub const FILE: &'static str = "savant_thresholds.json";

    /// 0.5 for every label, joined by `|`: what a multi-label model without the file gets.
    pub fn half(labels: &[String]) -> Thresholds {
        Thresholds {
            labels: labels.to_vec(),
            thresholds: vec![0.5; labels.len()],
            label_sep: "|".into(),
            chosen: "0.5".into(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("thresholds serialise")
    }

    /// Reads the file, checking it against the model's `labels`; `source` names it.
    pub fn from_json(bytes: &[u8], labels: &[String], source: &str) -> Result<Thresholds> {
        let t: Thresholds = serde_json::from_slice(bytes).map_err(|e| Error::invalid(source, None, e.to_string()))?;
        if t.labels != labels || t.thresholds.len() != labels.len() {
            return Err(Error::invalid(
                source,
                None,
                format!("its labels {:?} are not the model's {:?}", t.labels, labels),
            ));
        }
        Ok(t)
    }

    /// The set of `probs` (one per label) at these thresholds, joined by the separator.
    pub fn label_set(&self, probs: &[f32]) -> String {
        let on: Vec<&str> = self
            .labels
            .iter()
            .zip(probs.iter().zip(&self.thresholds))
            .filter(|(_, (&p, &t))| p as f64 >= t)
            .map(|(l, _)| l.as_str())
            .collect();
        on.join(&self.label_sep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hand-made case: label 0's positives score 0.3–0.4 and its negatives 0.1–0.2, label 1's
    // positives 0.8–0.9 and negatives 0.6–0.7; so label 0 is separated at 0.25 or 0.30, label 1
    // at 0.75 or 0.80, and one shared threshold can separate only one of them.
    #[test]
    fn thresholds_are_the_f1_maximising_ones() {
        let rows = [
            ([true, true], [0.35, 0.85]),
            ([true, false], [0.40, 0.65]),
            ([false, true], [0.15, 0.90]),
            ([false, false], [0.10, 0.60]),
            ([true, false], [0.30, 0.70]),
            ([false, true], [0.20, 0.80]),
        ];
        let y: Vec<bool> = rows.iter().flat_map(|r| r.0).collect();
        let s: Vec<f64> = rows.iter().flat_map(|r| r.1).collect();
        let per = tune(&y, &s, 2, "per-label".parse().unwrap(), "f1_micro");
        // Label 0: 0.25 and 0.30 separate, 0.30 is nearer 0.5; label 1: 0.75 and 0.80, 0.75 is.
        assert_eq!(per, [0.30, 0.75]);
        let global = tune(&y, &s, 2, "global".parse().unwrap(), "f1_micro");
        // One threshold: the best micro-F1 of the grid, ties to the threshold nearest 0.5.
        assert_eq!(global.len(), 2);
        let f1 = |t: f64| {
            let pred: Vec<bool> = s.iter().map(|&p| p >= t).collect();
            precision_recall_f1(&y, &pred, 2).micro.f1
        };
        let best = candidates().map(f1).fold(0.0, f64::max);
        assert_eq!(f1(global[0]), best);
        assert!(candidates().filter(|&t| f1(t) == best).all(|t| (t - 0.5).abs() >= (global[0] - 0.5).abs()));
        assert_eq!(tune(&y, &s, 2, "0.4".parse().unwrap(), "f1_micro"), [0.4, 0.4]);
        assert!("1.5".parse::<ThresholdChoice>().is_err());
        let t = Thresholds {
            labels: vec!["a".into(), "b".into()],
            thresholds: per,
            label_sep: "|".into(),
            chosen: "per-label".into(),
        };
        assert_eq!(t.label_set(&[0.35, 0.85]), "a|b");
        assert_eq!(t.label_set(&[0.1, 0.2]), "");
        assert_eq!(Thresholds::from_json(&t.to_json(), &t.labels, "x").unwrap(), t);
        assert!(Thresholds::from_json(&t.to_json(), &["a".into()], "x").is_err());
    }
}
