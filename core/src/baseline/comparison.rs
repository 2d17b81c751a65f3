//! The rows a comparison of methods runs on (`savant demo`): the majority class, TF-IDF + LR,
//! the untrained encoder's centroids and probe and the fine-tuned model all see the same
//! training, val and test rows, with the same class ids.

use crate::train::LabelledRows;

/// `(text, label)`.
pub type Pair = (String, String);

pub struct Comparison {
    pub train: Vec<Pair>,
    pub val: Vec<Pair>,
    pub test: Vec<Pair>,
    /// The training rows' labels, sorted: the class ids of every method.
    pub classes: Vec<String>,
    /// Val and test rows left out: their label is not among the training rows'.
    pub dropped: (usize, usize),
}

impl Comparison {
    /// Val and test rows whose label no training row has are left out (counted in `dropped`):
    /// no method could predict them.
    pub fn new(train: Vec<Pair>, val: Vec<Pair>, test: Vec<Pair>) -> Comparison {
        let classes: Vec<String> =
            train.iter().map(|(_, l)| l.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let known = |rows: Vec<Pair>| -> (Vec<Pair>, usize) {
            let n = rows.len();
            let kept: Vec<Pair> = rows.into_iter().filter(|(_, l)| classes.binary_search(l).is_ok()).collect();
            let dropped = n - kept.len();
            (kept, dropped)
        };
        let ((val, val_dropped), (test, test_dropped)) = (known(val), known(test));
        Comparison { train, val, test, classes, dropped: (val_dropped, test_dropped) }
    }

    /// The class ids of `rows` (rows of this comparison: every label is known).
    pub fn ids(&self, rows: &[Pair]) -> Vec<usize> {
        rows.iter().map(|(_, l)| self.classes.binary_search(l).expect("filtered to known classes")).collect()
    }

    pub fn texts(rows: &[Pair]) -> Vec<&str> {
        rows.iter().map(|(t, _)| t.as_str()).collect()
    }

    pub fn labelled(rows: &[Pair], source: &str) -> LabelledRows {
        LabelledRows {
            source: source.into(),
            texts: rows.iter().map(|(t, _)| t.clone()).collect(),
            labels: rows.iter().map(|(_, l)| l.clone()).collect(),
            sets: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The most frequent training class (ties: the smaller id) and its scores on the test rows
    /// (`[test rows, classes]`, one-hot).
    pub fn majority(&self) -> (usize, Vec<f64>) {
        let k = self.classes.len();
        let mut counts = vec![0usize; k];
        self.ids(&self.train).into_iter().for_each(|y| counts[y] += 1);
        let major = (0..k).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0);
        let scores = (0..self.test.len()).flat_map(|_| (0..k).map(move |c| f64::from(u8::from(c == major)))).collect();
        (major, scores)
    }

    /// The first `per_class` training rows of each class, in class order (the centroids' rows).
    pub fn first_per_class(&self, per_class: usize) -> Vec<usize> {
        let mut first: Vec<Vec<usize>> = vec![Vec::new(); self.classes.len()];
        for (i, y) in self.ids(&self.train).into_iter().enumerate() {
            if first[y].len() < per_class {
                first[y].push(i);
            }
        }
        first.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<Pair> {
        pairs.iter().map(|(t, l)| (t.to_string(), l.to_string())).collect()
    }

    #[test]
    fn unknown_labels_are_dropped_and_counted_and_ids_are_sorted_labels() {
        let c = Comparison::new(
            rows(&[("a", "y"), ("b", "x"), ("c", "y"), ("d", "x"), ("e", "y")]),
            rows(&[("v", "z"), ("w", "x")]),
            rows(&[("t", "y"), ("u", "z"), ("s", "z")]),
        );
        assert_eq!(c.classes, ["x", "y"]);
        assert_eq!(c.dropped, (1, 2));
        assert_eq!(c.ids(&c.train), [1, 0, 1, 0, 1]);
        assert_eq!(c.ids(&c.val), [0]);
        assert_eq!(c.majority(), (1, vec![0.0, 1.0]));
        assert_eq!(c.first_per_class(2), [1, 3, 0, 2]);
        assert_eq!(Comparison::labelled(&c.test, "test").labels, ["y"]);
    }

    #[test]
    fn majority_ties_go_to_the_smaller_class_id() {
        let c = Comparison::new(rows(&[("a", "b"), ("c", "a")]), vec![], rows(&[("t", "a"), ("u", "b")]));
        assert_eq!(c.majority(), (0, vec![1.0, 0.0, 1.0, 0.0]));
    }
}
