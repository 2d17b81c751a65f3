//! Multi-label metrics with scikit-learn's definitions (each row may carry any set of the `k`
//! labels), proven against `tests/fixtures/metrics/multilabel_fixtures.py`.
//!
//! Conventions: `y_true`, `y_pred` are `n × k` row-major indicator matrices (`[i * k + j]`: row
//! `i` has label `j`); `scores` likewise. A 0/0 is 0, as scikit-learn's default `zero_division`
//! gives it; a metric that is undefined for the data returns `None`.

use super::ranking::{average_precision, roc_auc_binary};

/// Per label `[[tn, fp], [fn, tp]]` (sklearn `multilabel_confusion_matrix`).
pub fn multilabel_confusion_matrix(y_true: &[bool], y_pred: &[bool], k: usize) -> Vec<[[u64; 2]; 2]> {
    let mut out = vec![[[0u64; 2]; 2]; k];
    for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        out[i % k][t as usize][p as usize] += 1;
    }
    out
}

fn div(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Precision, recall and F1 of counts (`tp`, `fp`, `fn`), F1 as sklearn computes it
/// (`2 tp / (2 tp + fp + fn)`).
fn prf(tp: f64, fp: f64, fn_: f64) -> [f64; 3] {
    [div(tp, tp + fp), div(tp, tp + fn_), div(2.0 * tp, 2.0 * tp + fp + fn_)]
}

/// Precision, recall and F1 with one of sklearn's averages.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    fn of(v: [f64; 3]) -> Prf {
        Prf { precision: v[0], recall: v[1], f1: v[2] }
    }
}

/// sklearn `precision_recall_fscore_support` on indicator matrices: per label, and averaged
/// `micro`, `macro`, `weighted` (by each label's true count) and `samples` (per row).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MultilabelPrf {
    pub per_label: Vec<Prf>,
    /// Rows carrying each label.
    pub support: Vec<u64>,
    pub micro: Prf,
    pub macro_avg: Prf,
    pub weighted: Prf,
    pub samples: Prf,
}

pub fn precision_recall_f1(y_true: &[bool], y_pred: &[bool], k: usize) -> MultilabelPrf {
    let cm = multilabel_confusion_matrix(y_true, y_pred, k);
    let counts = |c: &[[u64; 2]; 2]| (c[1][1] as f64, c[0][1] as f64, c[1][0] as f64);
    let per: Vec<[f64; 3]> = cm.iter().map(counts).map(|(tp, fp, fn_)| prf(tp, fp, fn_)).collect();
    let support: Vec<u64> = cm.iter().map(|c| c[1][0] + c[1][1]).collect();
    let (tp, fp, fn_) = cm.iter().map(counts).fold((0.0, 0.0, 0.0), |(a, b, c), (x, y, z)| (a + x, b + y, c + z));
    let mean = |f: &dyn Fn(&[f64; 3]) -> f64, weights: Option<&[u64]>| -> f64 {
        match weights {
            None => div(per.iter().map(f).sum::<f64>(), per.len() as f64),
            Some(w) => {
                let total: u64 = w.iter().sum();
                div(per.iter().zip(w).map(|(v, &w)| f(v) * w as f64).sum::<f64>(), total as f64)
            }
        }
    };
    let avg = |weights: Option<&[u64]>| Prf {
        precision: mean(&|v| v[0], weights),
        recall: mean(&|v| v[1], weights),
        f1: mean(&|v| v[2], weights),
    };
    let n = y_true.len().checked_div(k).unwrap_or(0);
    let mut samples = [0.0f64; 3];
    for i in 0..n {
        let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
        for j in 0..k {
            match (y_true[i * k + j], y_pred[i * k + j]) {
                (true, true) => tp += 1.0,
                (false, true) => fp += 1.0,
                (true, false) => fn_ += 1.0,
                (false, false) => {}
            }
        }
        let v = prf(tp, fp, fn_);
        for m in 0..3 {
            samples[m] += v[m];
        }
    }
    MultilabelPrf {
        per_label: per.iter().map(|&v| Prf::of(v)).collect(),
        micro: Prf::of(prf(tp, fp, fn_)),
        macro_avg: avg(None),
        weighted: avg(Some(&support)),
        samples: Prf::of(samples.map(|s| div(s, n as f64))),
        support,
    }
}

/// sklearn `accuracy_score` on indicator matrices: the share of rows whose predicted set is
/// exactly the true set. `None` without rows.
pub fn subset_accuracy(y_true: &[bool], y_pred: &[bool], k: usize) -> Option<f64> {
    if k == 0 || y_true.is_empty() {
        return None;
    }
    let rows = y_true.chunks(k).zip(y_pred.chunks(k));
    let exact = rows.filter(|(t, p)| t == p).count();
    Some(exact as f64 / (y_true.len() / k) as f64)
}

/// sklearn `hamming_loss`: the share of (row, label) cells predicted wrong.
pub fn hamming_loss(y_true: &[bool], y_pred: &[bool]) -> Option<f64> {
    if y_true.is_empty() {
        return None;
    }
    Some(y_true.iter().zip(y_pred).filter(|(t, p)| t != p).count() as f64 / y_true.len() as f64)
}

/// sklearn `jaccard_score`: `samples` (each row's |T ∩ P| / |T ∪ P|, averaged) and `macro`
/// (each label's tp / (tp + fp + fn), averaged).
pub fn jaccard(y_true: &[bool], y_pred: &[bool], k: usize) -> (f64, f64) {
    let n = y_true.len().checked_div(k).unwrap_or(0);
    let mut samples = 0.0;
    for i in 0..n {
        let (t, p) = (&y_true[i * k..(i + 1) * k], &y_pred[i * k..(i + 1) * k]);
        let both = t.iter().zip(p).filter(|(a, b)| **a && **b).count() as f64;
        let either = t.iter().zip(p).filter(|(a, b)| **a || **b).count() as f64;
        samples += div(both, either);
    }
    let cm = multilabel_confusion_matrix(y_true, y_pred, k);
    let labels: f64 = cm.iter().map(|c| div(c[1][1] as f64, (c[1][1] + c[0][1] + c[1][0]) as f64)).sum();
    (div(samples, n as f64), div(labels, k as f64))
}

/// Column `j` of a `[rows, k]` row-major matrix: one label's values over the rows.
pub fn column<T: Copy>(m: &[T], k: usize, j: usize) -> Vec<T> {
    m.iter().skip(j).step_by(k).copied().collect()
}

/// sklearn `roc_auc_score` on indicator matrices: per label (`None` where a label's column has
/// one class only), their mean (`None` if any is), and `micro` (every cell as one binary task).
pub fn roc_auc(y_true: &[bool], scores: &[f64], k: usize) -> (Vec<Option<f64>>, Option<f64>, Option<f64>) {
    let per: Vec<Option<f64>> = (0..k).map(|j| roc_auc_binary(&column(y_true, k, j), &column(scores, k, j))).collect();
    let macro_avg = per.iter().copied().collect::<Option<Vec<f64>>>().map(|v| div(v.iter().sum(), v.len() as f64));
    (per, macro_avg, roc_auc_binary(y_true, scores))
}

/// sklearn `average_precision_score` on indicator matrices: per label (0 for a label no row
/// has, as sklearn gives it), their mean, and `micro`.
pub fn average_precisions(y_true: &[bool], scores: &[f64], k: usize) -> (Vec<Option<f64>>, Option<f64>, Option<f64>) {
    let per: Vec<Option<f64>> =
        (0..k).map(|j| average_precision(&column(y_true, k, j), &column(scores, k, j))).collect();
    let macro_avg = per.iter().copied().collect::<Option<Vec<f64>>>().map(|v| div(v.iter().sum(), v.len() as f64));
    (per, macro_avg, average_precision(y_true, scores))
}

/// The labels of one row in score order (`descending` or not).
fn by_score(s: &[f64], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| if descending { s[b].total_cmp(&s[a]) } else { s[a].total_cmp(&s[b]) });
    order
}

/// The mean over rows of `per_row(true labels, scores)`; `None` without rows.
fn mean_over_rows(y_true: &[bool], scores: &[f64], k: usize, per_row: impl Fn(&[bool], &[f64]) -> f64) -> Option<f64> {
    if k == 0 || y_true.is_empty() {
        return None;
    }
    let total: f64 = y_true.chunks(k).zip(scores.chunks(k)).map(|(t, s)| per_row(t, s)).sum();
    Some(total / (y_true.len() / k) as f64)
}

/// sklearn `label_ranking_average_precision_score`: per row, the mean over its true labels of
/// (true labels scored at least as high) / (labels scored at least as high); a row with no true
/// label, or every label true, scores 1.
pub fn label_ranking_average_precision(y_true: &[bool], scores: &[f64], k: usize) -> Option<f64> {
    mean_over_rows(y_true, scores, k, |t, s| {
        let relevant = t.iter().filter(|&&x| x).count();
        if relevant == 0 || relevant == k {
            return 1.0;
        }
        // Highest score first; within a group of tied scores every label has the group's end as
        // its rank (labels scored at least as high) and the true labels up to it.
        let order = by_score(s, true);
        let (mut sum, mut seen, mut seen_true) = (0.0, 0usize, 0usize);
        for group in order.chunk_by(|&a, &b| s[a] == s[b]) {
            let in_group = group.iter().filter(|&&j| t[j]).count();
            seen += group.len();
            seen_true += in_group;
            sum += in_group as f64 * seen_true as f64 / seen as f64;
        }
        sum / relevant as f64
    })
}

/// sklearn `coverage_error`: per row, how many labels are scored at least as high as its
/// lowest-scored true label (0 for a row without one), averaged.
pub fn coverage_error(y_true: &[bool], scores: &[f64], k: usize) -> Option<f64> {
    mean_over_rows(y_true, scores, k, |t, s| {
        let lowest = (0..k).filter(|&j| t[j]).map(|j| s[j]).fold(f64::INFINITY, f64::min);
        if lowest.is_finite() {
            s.iter().filter(|&&x| x >= lowest).count() as f64
        } else {
            0.0
        }
    })
}

/// sklearn `label_ranking_loss`: per row, the share of (true, false) label pairs whose false
/// label is scored at least as high as the true one (0 for a row with no true or no false
/// label), averaged.
pub fn label_ranking_loss(y_true: &[bool], scores: &[f64], k: usize) -> Option<f64> {
    mean_over_rows(y_true, scores, k, |t, s| {
        let positives = t.iter().filter(|&&x| x).count();
        if positives == 0 || positives == k {
            return 0.0;
        }
        // Lowest score first: each false label is out of order with every true label scored no
        // higher (ties included).
        let order = by_score(s, false);
        let (mut wrong, mut true_so_far) = (0usize, 0usize);
        for group in order.chunk_by(|&a, &b| s[a] == s[b]) {
            true_so_far += group.iter().filter(|&&j| t[j]).count();
            wrong += true_so_far * group.iter().filter(|&&j| !t[j]).count();
        }
        wrong as f64 / (positives * (k - positives)) as f64
    })
}

/// Label-set predictions read from a table: each row's true labels (`label_column`, joined by a
/// separator), one `prob_<label>` column per label, and optionally `pred` (the predicted set, as
/// `savant predict` writes it); without it a label is predicted at probability ≥ 0.5.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSets {
    pub labels: Vec<String>,
    pub y_true: Vec<bool>,
    pub scores: Vec<f64>,
    pub y_pred: Vec<bool>,
    /// Where the predicted sets came from: "pred column" or "probability >= 0.5".
    pub predicted_by: &'static str,
    /// Things worth saying (a separator that never occurs).
    pub warnings: Vec<String>,
}

impl LabelSets {
    /// The predicted sets at `thresholds` (one per label; empty: 0.5 each).
    pub fn predict_at(&mut self, thresholds: &[f64]) {
        let k = self.labels.len().max(1);
        let at = |j: usize| thresholds.get(j % k).copied().unwrap_or(0.5);
        self.y_pred = self.scores.iter().enumerate().map(|(j, &p)| p >= at(j)).collect();
        self.predicted_by = if thresholds.is_empty() { "probability >= 0.5" } else { "tuned thresholds" };
    }

    pub fn n(&self) -> usize {
        self.y_true.len().checked_div(self.labels.len()).unwrap_or(0)
    }
}

/// Reads every row of `reader`; every value is checked and a bad one named by line and column.
/// An empty label cell is a row with no label (valid, as in scikit-learn).
pub fn read_label_sets<R: std::io::Read>(
    mut reader: crate::data::TableReader<R>,
    label_column: &str,
    sep: &str,
) -> crate::Result<LabelSets> {
    use crate::error::{Error, Location};
    let source = reader.source_name().to_string();
    let bad =
        |line: Option<u64>, message: String| Error::Invalid { at: Location { source: source.clone(), line }, message };
    if sep.is_empty() {
        return Err(Error::Option("the label separator must not be empty".into()));
    }
    let label_col = reader.column(label_column)?;
    let pred_col = reader.header().iter().position(|h| h == "pred");
    let prob_cols: Vec<(usize, String)> = reader
        .header()
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix(super::input::PROB_PREFIX).map(|c| (i, c.to_string())))
        .collect();
    if prob_cols.is_empty() {
        return Err(bad(
            Some(1),
            format!("no `prob_<label>` columns; expected one probability column per label besides '{label_column}'"),
        ));
    }
    let labels: Vec<String> = prob_cols.iter().map(|(_, c)| c.clone()).collect();
    let k = labels.len();
    let (mut y_true, mut scores, mut y_pred) = (Vec::new(), Vec::new(), Vec::new());
    let mut saw_sep = false;
    let set = |cell: &str, line: u64, what: &str, into: &mut Vec<bool>| -> crate::Result<()> {
        let mut row = vec![false; k];
        for name in cell.split(sep).map(str::trim).filter(|s| !s.is_empty()) {
            let j = labels.iter().position(|l| l == name).ok_or_else(|| {
                bad(Some(line), format!("{what} '{name}' has no `prob_{name}` column (labels: {})", labels.join(", ")))
            })?;
            row[j] = true;
        }
        into.extend(row);
        Ok(())
    };
    while let Some(row) = reader.next_row()? {
        let row = row.map_err(|m| bad(Some(m.line), format!("malformed row ({}): {}", m.kind, m.message)))?;
        let cell = row.fields[label_col].trim();
        saw_sep |= cell.contains(sep);
        set(cell, row.line, "label", &mut y_true)?;
        if let Some(c) = pred_col {
            set(row.fields[c].trim(), row.line, "predicted label", &mut y_pred)?;
        }
        for (col, label) in &prob_cols {
            let raw = row.fields[*col].trim();
            let value: f64 = raw
                .parse()
                .map_err(|_| bad(Some(row.line), format!("column 'prob_{label}': '{raw}' is not a number")))?;
            if !value.is_finite() || value < 0.0 {
                return Err(bad(
                    Some(row.line),
                    format!("column 'prob_{label}': {raw} is not a finite, non-negative probability"),
                ));
            }
            scores.push(value);
        }
    }
    if y_true.len() < 2 * k {
        return Err(bad(None, "fewer than two rows: metrics need at least two".into()));
    }
    let mut warnings = Vec::new();
    if !saw_sep {
        warnings.push(format!(
            "the separator '{sep}' occurs in no '{label_column}' cell: every row has one label at most — is this single-label data?"
        ));
    }
    let predicted_by = if pred_col.is_some() { "pred column" } else { "probability >= 0.5" };
    if pred_col.is_none() {
        y_pred = scores.iter().map(|&s| s >= 0.5).collect();
    }
    Ok(LabelSets { labels, y_true, scores, y_pred, predicted_by, warnings })
}

/// One label's scores in a [`MultilabelReport`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelScores {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
}

/// `savant eval --multi-label`'s JSON: keys are scikit-learn's function and average names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MultilabelReport {
    pub n: usize,
    pub labels: Vec<String>,
    pub predicted_by: &'static str,
    pub f1_micro: f64,
    pub f1_macro: f64,
    pub f1_weighted: f64,
    pub f1_samples: f64,
    pub precision_micro: f64,
    pub precision_macro: f64,
    pub precision_weighted: f64,
    pub precision_samples: f64,
    pub recall_micro: f64,
    pub recall_macro: f64,
    pub recall_weighted: f64,
    pub recall_samples: f64,
    pub subset_accuracy: Option<f64>,
    pub hamming_loss: Option<f64>,
    pub jaccard_samples: f64,
    pub jaccard_macro: f64,
    pub roc_auc_micro: Option<f64>,
    pub roc_auc_macro: Option<f64>,
    pub average_precision_micro: Option<f64>,
    pub average_precision_macro: Option<f64>,
    pub label_ranking_average_precision: Option<f64>,
    pub coverage_error: Option<f64>,
    pub label_ranking_loss: Option<f64>,
    pub per_label: Vec<LabelScores>,
    /// Per label `[[tn, fp], [fn, tp]]`.
    pub multilabel_confusion_matrix: Vec<[[u64; 2]; 2]>,
    pub warnings: Vec<String>,
}

pub fn evaluate(sets: &LabelSets) -> MultilabelReport {
    let (t, p, s, k) = (&sets.y_true, &sets.y_pred, &sets.scores, sets.labels.len());
    let prf = precision_recall_f1(t, p, k);
    let (jaccard_samples, jaccard_macro) = jaccard(t, p, k);
    let (auc, roc_auc_macro, roc_auc_micro) = roc_auc(t, s, k);
    let (ap, average_precision_macro, average_precision_micro) = average_precisions(t, s, k);
    let mut warnings = sets.warnings.clone();
    for (j, a) in auc.iter().enumerate() {
        if a.is_none() {
            warnings.push(format!(
                "label '{}': every row has it or none does; its ROC AUC (and the macro mean) is undefined",
                sets.labels[j]
            ));
        }
    }
    MultilabelReport {
        n: sets.n(),
        labels: sets.labels.clone(),
        predicted_by: sets.predicted_by,
        f1_micro: prf.micro.f1,
        f1_macro: prf.macro_avg.f1,
        f1_weighted: prf.weighted.f1,
        f1_samples: prf.samples.f1,
        precision_micro: prf.micro.precision,
        precision_macro: prf.macro_avg.precision,
        precision_weighted: prf.weighted.precision,
        precision_samples: prf.samples.precision,
        recall_micro: prf.micro.recall,
        recall_macro: prf.macro_avg.recall,
        recall_weighted: prf.weighted.recall,
        recall_samples: prf.samples.recall,
        subset_accuracy: subset_accuracy(t, p, k),
        hamming_loss: hamming_loss(t, p),
        jaccard_samples,
        jaccard_macro,
        roc_auc_micro,
        roc_auc_macro,
        average_precision_micro,
        average_precision_macro,
        label_ranking_average_precision: label_ranking_average_precision(t, s, k),
        coverage_error: coverage_error(t, s, k),
        label_ranking_loss: label_ranking_loss(t, s, k),
        per_label: (0..k)
            .map(|j| LabelScores {
                label: sets.labels[j].clone(),
                precision: prf.per_label[j].precision,
                recall: prf.per_label[j].recall,
                f1: prf.per_label[j].f1,
                support: prf.support[j],
                roc_auc: auc[j],
                average_precision: ap[j],
            })
            .collect(),
        multilabel_confusion_matrix: multilabel_confusion_matrix(t, p, k),
        warnings,
    }
}
