//! `savant eval`'s report: every metric under its stable JSON key, `null` (with a warning) where
//! the data leave it undefined, never NaN.

use super::bootstrap::bootstrap_cis;
use super::classification as cls;
use super::input::Predictions;
use super::ranking as rank;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bins of the expected calibration error (equal width over [0, 1]).
pub const ECE_BINS: usize = 15;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub support: u64,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    pub n: usize,
    pub classes: Vec<String>,
    pub accuracy: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    /// `top_2`, `top_3`, … up to 5 (only for three classes or more).
    pub top_k_accuracy: BTreeMap<String, Option<f64>>,
    pub precision_micro: Option<f64>,
    pub precision_macro: Option<f64>,
    pub precision_weighted: Option<f64>,
    pub recall_micro: Option<f64>,
    pub recall_macro: Option<f64>,
    pub recall_weighted: Option<f64>,
    pub f1_micro: Option<f64>,
    pub f1_macro: Option<f64>,
    pub f1_weighted: Option<f64>,
    pub mcc: Option<f64>,
    pub log_loss: Option<f64>,
    pub brier: Option<f64>,
    pub ece: Option<f64>,
    pub roc_auc_ovr_macro: Option<f64>,
    pub roc_auc_ovr_weighted: Option<f64>,
    pub roc_auc_ovo_macro: Option<f64>,
    pub roc_auc_ovo_weighted: Option<f64>,
    pub average_precision_macro: Option<f64>,
    /// Rows = true class, columns = predicted, in `classes` order.
    pub confusion_matrix: Vec<Vec<u64>>,
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// Binary only: the positive class and its metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_precision: Option<Option<f64>>,
    /// `--curves`: per class, the one-vs-rest ROC and precision–recall curves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curves: Option<BTreeMap<String, ClassCurves>>,
    /// `--bootstrap N`: 95% percentile intervals, keyed like the metrics (`per_class.<c>.f1`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub confidence_intervals: BTreeMap<String, [f64; 2]>,
    pub warnings: Vec<String>,
}

/// sklearn's curve points; an infinite threshold (the ROC curve's first) is `null` in JSON.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurvePoints {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub thresholds: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassCurves {
    /// x = false positive rate, y = true positive rate (`roc_curve`, drop_intermediate).
    pub roc: Option<CurvePoints>,
    /// x = recall, y = precision (`precision_recall_curve`).
    pub pr: Option<CurvePoints>,
}

/// One-vs-rest curves of every class.
pub fn class_curves(p: &Predictions) -> BTreeMap<String, ClassCurves> {
    let (n, k) = (p.n(), p.k());
    let points = |c: rank::Curve| CurvePoints {
        x: c.x,
        y: c.y,
        thresholds: c.thresholds.into_iter().map(|t| t.is_finite().then_some(t)).collect(),
    };
    (0..k)
        .map(|c| {
            let positive: Vec<bool> = p.y_true.iter().map(|&y| y == c).collect();
            let score: Vec<f64> = (0..n).map(|i| p.scores[i * k + c]).collect();
            let curves = ClassCurves {
                roc: rank::roc_curve(&positive, &score).map(points),
                pr: rank::precision_recall_curve(&positive, &score).map(points),
            };
            (p.classes[c].clone(), curves)
        })
        .collect()
}

/// Options of an evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvalOptions {
    /// Binary: the positive class (default: the second class in sorted order, as sklearn).
    #[cfg_attr(feature = "cli", arg(long))]
    pub pos_label: Option<String>,
    /// Bootstrap resamples for 95% confidence intervals (0 = none).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Include each class's ROC and precision–recall curve points in the report.
    #[cfg_attr(feature = "cli", arg(long))]
    pub curves: bool,
}

/// Keeps NaN and infinities out of the report.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// The binary positive class: `pos_label`, else the second class name in sorted order.
pub fn positive_class(classes: &[String], pos_label: Option<&str>) -> Result<usize, String> {
    match pos_label {
        Some(name) => classes
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("pos_label '{name}' is not a class (classes: {})", classes.join(", "))),
        None => {
            let mut sorted: Vec<&String> = classes.iter().collect();
            sorted.sort();
            let second = sorted.get(1).ok_or("binary metrics need two classes")?;
            Ok(classes.iter().position(|c| c == *second).unwrap_or(1))
        }
    }
}

/// Computes every metric (no confidence intervals, no warnings about `null` metrics).
pub fn evaluate_point(p: &Predictions, pos: Option<usize>) -> EvalReport {
    let (n, k) = (p.n(), p.k());
    let mut warnings = Vec::new();
    let y_pred = cls::argmax_predictions(&p.scores, k);
    let cm = cls::confusion_matrix(&p.y_true, &y_pred, k);
    let (per, avg) = cls::precision_recall_f1(&cm, 0.0);
    warnings.extend(per.zero_division_warnings.iter().cloned());
    let mut top_k_accuracy = BTreeMap::new();
    for top in 2..k.min(6) {
        top_k_accuracy.insert(format!("top_{top}"), finite(cls::top_k_accuracy(&p.y_true, &p.scores, k, top)));
    }
    // One pass of k sorts for every AUC, one more for every average precision.
    let auc = rank::multiclass_auc(&p.y_true, &p.scores, k);
    let ap = rank::average_precision_per_class(&p.y_true, &p.scores, k);
    let mut per_class = BTreeMap::new();
    for c in 0..k {
        per_class.insert(
            p.classes[c].clone(),
            ClassMetrics {
                precision: finite(Some(per.precision[c])),
                recall: finite(Some(per.recall[c])),
                f1: finite(Some(per.f1[c])),
                support: per.support[c],
                roc_auc: finite(auc.as_ref().and_then(|a| a.per_class[c])),
                average_precision: finite(ap.as_ref().map(|ap| ap[c])),
            },
        );
    }
    let mut report = EvalReport {
        n,
        classes: p.classes.clone(),
        accuracy: finite(cls::accuracy(&cm)),
        balanced_accuracy: finite(cls::balanced_accuracy(&cm)),
        top_k_accuracy,
        precision_micro: finite(Some(avg.micro_precision)),
        precision_macro: finite(Some(avg.macro_precision)),
        precision_weighted: finite(Some(avg.weighted_precision)),
        recall_micro: finite(Some(avg.micro_recall)),
        recall_macro: finite(Some(avg.macro_recall)),
        recall_weighted: finite(Some(avg.weighted_recall)),
        f1_micro: finite(Some(avg.micro_f1)),
        f1_macro: finite(Some(avg.macro_f1)),
        f1_weighted: finite(Some(avg.weighted_f1)),
        mcc: finite(cls::matthews_corrcoef(&cm)),
        log_loss: finite(cls::log_loss(&p.y_true, &p.scores, k)),
        brier: finite(cls::brier(&p.y_true, &p.scores, k)),
        ece: finite(cls::expected_calibration_error(&p.y_true, &p.scores, k, ECE_BINS)),
        roc_auc_ovr_macro: finite(auc.as_ref().and_then(|a| a.ovr_macro)),
        roc_auc_ovr_weighted: finite(auc.as_ref().and_then(|a| a.ovr_weighted)),
        roc_auc_ovo_macro: finite(auc.as_ref().and_then(|a| a.ovo_macro)),
        roc_auc_ovo_weighted: finite(auc.as_ref().and_then(|a| a.ovo_weighted)),
        average_precision_macro: finite(ap.as_ref().map(|ap| rank::macro_mean(ap))),
        confusion_matrix: cm,
        per_class,
        pos_label: None,
        precision: None,
        recall: None,
        f1: None,
        roc_auc: None,
        average_precision: None,
        curves: None,
        confidence_intervals: BTreeMap::new(),
        warnings,
    };
    if let (2, Some(pos)) = (k, pos) {
        let name = p.classes[pos].clone();
        // The positive class's one-vs-rest numbers are exactly sklearn's binary ones
        // (`roc_auc_score(y == pos, scores[:, pos])`, and so on).
        let m = &report.per_class[&name];
        let (precision, recall, f1, ap, auc) = (m.precision, m.recall, m.f1, m.average_precision, m.roc_auc);
        report.roc_auc = Some(auc);
        report.precision = Some(precision);
        report.recall = Some(recall);
        report.f1 = Some(f1);
        report.average_precision = Some(ap);
        report.pos_label = Some(name);
    }
    report
}

/// Top-level metric keys that came out `null`.
fn undefined_keys(r: &EvalReport) -> Vec<(String, bool)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(r) else { return Vec::new() };
    map.into_iter().map(|(k, v)| (k, v.is_null())).collect()
}

/// Every number in the report that a confidence interval makes sense for, flattened to
/// `key` / `per_class.<class>.<metric>` / `top_k_accuracy.<k>`.
pub fn scalar_metrics(r: &EvalReport) -> BTreeMap<String, f64> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, f64>) {
        match v {
            serde_json::Value::Number(x) => {
                if let Some(x) = x.as_f64() {
                    out.insert(prefix.to_string(), x);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(mut map)) = serde_json::to_value(r) {
        for skip in ["n", "confusion_matrix", "confidence_intervals", "curves"] {
            map.remove(skip);
        }
        walk("", &serde_json::Value::Object(map), &mut out);
    }
    out.retain(|k, _| !k.ends_with(".support"));
    out
}

/// The full evaluation: point estimates, and with `opts.bootstrap > 0` seeded percentile
/// intervals for every scalar metric (each resample re-runs [`evaluate_point`]).
pub fn evaluate(p: &Predictions, opts: &EvalOptions) -> Result<EvalReport, String> {
    let pos = match p.k() {
        2 => Some(positive_class(&p.classes, opts.pos_label.as_deref())?),
        _ => None,
    };
    let mut report = evaluate_point(p, pos);
    // Said once here rather than in `evaluate_point`, which every bootstrap resample re-runs.
    for (key, undefined) in undefined_keys(&report) {
        if undefined {
            report.warnings.push(format!("{key} is undefined for this data (null)"));
        }
    }
    if p.k() != 2 && opts.pos_label.is_some() {
        report.warnings.push("pos_label only applies to two classes; ignored".into());
    }
    if opts.bootstrap > 0 {
        report.confidence_intervals = bootstrap_intervals(p, pos, opts.bootstrap, opts.seed);
    }
    if opts.curves {
        report.curves = Some(class_curves(p));
    }
    Ok(report)
}

fn bootstrap_intervals(p: &Predictions, pos: Option<usize>, resamples: usize, seed: u64) -> BTreeMap<String, [f64; 2]> {
    let (n, k) = (p.n(), p.k());
    let mut sub =
        Predictions { classes: p.classes.clone(), y_true: Vec::with_capacity(n), scores: Vec::with_capacity(n * k) };
    let cis = bootstrap_cis(n, resamples, seed, |idx| {
        sub.y_true.clear();
        sub.scores.clear();
        for &i in idx {
            sub.y_true.push(p.y_true[i]);
            sub.scores.extend_from_slice(p.row(i));
        }
        scalar_metrics(&evaluate_point(&sub, pos))
    });
    cis.into_iter().map(|(key, (lo, hi))| (key, [lo, hi])).collect()
}
