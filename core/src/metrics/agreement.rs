//! What a change of the same model costs in quality (`savant quantize --eval`): two sets of
//! class probabilities for the same labelled rows, scored with scikit-learn's accuracy and
//! macro-F1 ([`super::classification`]), and how far apart they are.

use serde::Serialize;

use super::classification::{accuracy, confusion_matrix, precision_recall_f1};

/// The reference model (`before`) against its changed form (`after`) on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub rows: usize,
    pub accuracy_before: f64,
    pub accuracy_after: f64,
    pub macro_f1_before: f64,
    pub macro_f1_after: f64,
    /// Share of rows where the two pick the same class.
    pub same_label: f64,
    /// Largest |p_before − p_after| over every row and class.
    pub max_prob_diff: f64,
}

/// `before` and `after`: `[rows, k]` probabilities; `y_true`: class indices. `None` without rows.
pub fn agreement(y_true: &[usize], before: &[f32], after: &[f32], k: usize) -> Option<Agreement> {
    let rows = y_true.len();
    if rows == 0 || before.len() != rows * k || after.len() != rows * k {
        return None;
    }
    let pred_before = crate::infer::argmax_rows(before, k);
    let pred_after = crate::infer::argmax_rows(after, k);
    let score = |pred: &[usize]| {
        let cm = confusion_matrix(y_true, pred, k);
        (accuracy(&cm).unwrap_or(0.0), precision_recall_f1(&cm, 0.0).1.macro_f1)
    };
    let (accuracy_before, macro_f1_before) = score(&pred_before);
    let (accuracy_after, macro_f1_after) = score(&pred_after);
    let same = pred_before.iter().zip(&pred_after).filter(|(a, b)| a == b).count();
    let max_prob_diff = before.iter().zip(after).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    Some(Agreement {
        rows,
        accuracy_before,
        accuracy_after,
        macro_f1_before,
        macro_f1_after,
        same_label: same as f64 / rows as f64,
        max_prob_diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_both_and_measures_the_gap() {
        // Three rows, two classes: `after` flips the last row's label.
        let y = [0, 1, 1];
        let before = [0.9, 0.1, 0.2, 0.8, 0.4, 0.6];
        let after = [0.8, 0.2, 0.3, 0.7, 0.6, 0.4];
        let a = agreement(&y, &before, &after, 2).unwrap();
        assert_eq!((a.accuracy_before, a.accuracy_after), (1.0, 2.0 / 3.0));
        // sklearn: f1_score([0,1,1], [0,1,0], average='macro') = (2/3 + 2/3) / 2
        assert!((a.macro_f1_after - 2.0 / 3.0).abs() < 1e-12, "{a:?}");
        assert_eq!(a.macro_f1_before, 1.0);
        assert!((a.same_label - 2.0 / 3.0).abs() < 1e-12);
        assert!((a.max_prob_diff - 0.2).abs() < 1e-6);
        assert!(agreement(&[], &[], &[], 2).is_none());
    }
}
