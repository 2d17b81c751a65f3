//! Labels and the order rows are seen in.

use std::collections::BTreeMap;

use crate::data::rng::SplitMix64;
use crate::{Error, Result};

/// The classes of a training set, sorted (as scikit-learn's `LabelEncoder` and `np.unique`
/// order them): class `i` is output `i` of the classifier and `id2label[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    pub names: Vec<String>,
    index: BTreeMap<String, usize>,
}

impl LabelSet {
    /// The classes of `labels`; `source` names the split in errors.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a str>, source: &str) -> Result<LabelSet> {
        let mut names: Vec<String> = labels.into_iter().map(str::to_string).collect();
        names.sort();
        names.dedup();
        match names.len() {
            0 => Err(Error::invalid(source, None, "the training split has no rows")),
            1 => Err(Error::invalid(
                source,
                None,
                format!("the training split has one class only ('{}'): a classifier needs at least two", names[0]),
            )),
            _ => Ok(LabelSet::from_names(names)),
        }
    }

    /// Classes in the given order (a saved model's `id2label`).
    pub fn from_names(names: Vec<String>) -> LabelSet {
        let index = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        LabelSet { names, index }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn id(&self, label: &str) -> Option<usize> {
        self.index.get(label).copied()
    }

    /// Class ids of `labels`; a label the set lacks is an error naming its row (1-based, data
    /// rows) in `source`.
    pub fn ids<'a>(&self, labels: impl IntoIterator<Item = &'a str>, source: &str) -> Result<Vec<usize>> {
        labels
            .into_iter()
            .enumerate()
            .map(|(row, label)| {
                self.id(label).ok_or_else(|| {
                    Error::invalid(
                        source,
                        Some(row as u64 + 1),
                        format!(
                            "label '{label}' does not occur in the training split (its classes: {})",
                            self.names.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

/// The batches of one epoch, as row indices: rows shuffled (seeded by `seed` and `epoch`), then
/// within windows of 50 batches sorted by token length and cut into batches (little padding),
/// and the batches shuffled again so that lengths do not come in order.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng = SplitMix64::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (epoch as u64 + 1));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::with_capacity(lengths.len().div_ceil(batch_size));
    for window in order.chunks_mut(batch_size * 50) {
        window.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// The batches of one epoch when documents are classified from all their windows
/// ([`crate::long::Aggregate::MeanPool`]), as row indices: whole documents (`doc`: each row's
/// document, a document's rows together and in order), as many as `budget` rows hold (a
/// document with more rows than that is a batch alone). Documents are shuffled (seeded by `seed`
/// and `epoch`), packed first-fit longest first within groups of about 50 batches' rows, and the
/// batches shuffled again.
pub fn document_batches(doc: &[usize], budget: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let budget = budget.max(1);
    let docs = doc.last().map_or(0, |&d| d + 1);
    // Rows of document d: start[d]..start[d + 1].
    let mut start = vec![0usize; docs + 1];
    for &d in doc {
        start[d + 1] += 1;
    }
    for d in 0..docs {
        start[d + 1] += start[d];
    }
    let rows = |d: usize| start[d]..start[d + 1];
    let mut rng = SplitMix64::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (epoch as u64 + 1));
    let mut order: Vec<usize> = (0..docs).collect();
    rng.shuffle(&mut order);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut group: Vec<usize> = Vec::new();
    let mut group_rows = 0;
    // First fit, longest documents first: batches near the budget, documents of like length together.
    let mut pack = |group: &mut Vec<usize>| {
        group.sort_by_key(|&d| std::cmp::Reverse(rows(d).len()));
        let mut open: Vec<Vec<usize>> = Vec::new();
        for &d in group.iter() {
            let n = rows(d).len();
            match open.iter_mut().find(|b| b.len() + n <= budget) {
                Some(b) => b.extend(rows(d)),
                None => open.push(rows(d).collect()),
            }
        }
        batches.append(&mut open);
        group.clear();
    };
    for d in order {
        group.push(d);
        group_rows += rows(d).len();
        if group_rows >= budget * 50 {
            pack(&mut group);
            group_rows = 0;
        }
    }
    pack(&mut group);
    rng.shuffle(&mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_unknown_ones_are_named() {
        let set = LabelSet::from_labels(["b", "a", "c", "a"], "train.csv").unwrap();
        assert_eq!(set.names, ["a", "b", "c"]);
        assert_eq!(set.ids(["c", "a"], "val.csv").unwrap(), [2, 0]);
        let err = set.ids(["a", "z"], "val.csv").unwrap_err().to_string();
        assert!(err.contains("val.csv") && err.contains("'z'") && err.contains('2'), "{err}");
        let one = LabelSet::from_labels(["x", "x"], "train.csv").unwrap_err().to_string();
        assert!(one.contains("one class"), "{one}");
        assert!(LabelSet::from_labels([], "train.csv").unwrap_err().to_string().contains("no rows"));
    }

    #[test]
    fn every_row_once_per_epoch_in_a_seeded_order() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 120 + 3).collect();
        let a = epoch_batches(&lengths, 16, 7, 0);
        let mut seen: Vec<usize> = a.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_batches(&lengths, 16, 7, 0), "same seed and epoch, same order");
        assert_ne!(a, epoch_batches(&lengths, 16, 7, 1), "each epoch reshuffles");
        // Length bucketing: far less padding than file order.
        let padded = |bs: &[Vec<usize>]| -> usize {
            bs.iter().map(|b| b.iter().map(|&i| lengths[i]).max().unwrap() * b.len()).sum()
        };
        let file_order: Vec<Vec<usize>> = (0..1000).collect::<Vec<_>>().chunks(16).map(<[usize]>::to_vec).collect();
        assert!(padded(&a) * 10 < padded(&file_order) * 8, "{} vs {}", padded(&a), padded(&file_order));
    }

    #[test]
    fn document_batches_hold_whole_documents_within_the_row_budget() {
        // 300 documents of 1 to 7 windows, their rows together and in order.
        let doc: Vec<usize> = (0..300).flat_map(|d| std::iter::repeat_n(d, 1 + (d * 13) % 7)).collect();
        let a = document_batches(&doc, 6, 3, 0);
        let mut seen: Vec<usize> = a.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..doc.len()).collect::<Vec<_>>(), "every row once");
        for batch in &a {
            let n = batch.len();
            assert!(n <= 6 || batch.iter().all(|&r| doc[r] == doc[batch[0]]), "over the budget: {batch:?}");
            for &r in batch {
                let whole = doc.iter().filter(|&&d| d == doc[r]).count();
                assert_eq!(batch.iter().filter(|&&x| doc[x] == doc[r]).count(), whole, "document {} split", doc[r]);
            }
        }
        // A document of 7 rows is a batch alone under a budget of 6.
        assert!(a.iter().any(|b| b.len() == 7));
        assert_eq!(a, document_batches(&doc, 6, 3, 0), "same seed and epoch, same order");
        assert_ne!(a, document_batches(&doc, 6, 3, 1), "each epoch reshuffles");
        // Packed first fit: most batches full.
        let short = a.iter().filter(|b| b.len() < 6).count();
        assert!(short * 4 <= a.len(), "{short} of {} batches under the budget", a.len());
    }
}
