//! Texts longer than the max length: cut (HF's truncation), head + tail (Sun et al., "How to
//! Fine-Tune BERT for Text Classification?", 2019: the first quarter and the last three quarters
//! of the budget), or overlapping windows over the whole text (HF's `return_overflowing_tokens`
//! with `stride`), whose outputs are aggregated into one per document.

use serde::{Deserialize, Serialize};

use crate::tokenize::Encoded;
use crate::{Error, Result};

/// How a text longer than the max length is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum LongMode {
    /// The first `max_len` tokens (special tokens included), as `truncation=True` does.
    #[default]
    Truncate,
    /// The first quarter of the budget from the text's start, the rest from its end.
    HeadTail,
    /// Every token, in windows of `max_len` overlapping by `stride` tokens.
    Windows,
}

/// How the windows' outputs become one per document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// The mean of the windows' logits, then softmax.
    #[default]
    MeanLogits,
    /// The element-wise maximum of the windows' logits, then softmax.
    MaxLogits,
    /// The mean of the windows' head features is the document's, read by the head: training
    /// takes whole documents (a window budget per batch) and one loss per document, with
    /// gradients through every window. The head is linear, so at inference this equals
    /// mean-logits.
    MeanPool,
}

/// [`LongMode`] with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LongText {
    pub mode: LongMode,
    /// Tokens shared by neighbouring windows (`None`: a quarter of a window's text tokens).
    pub stride: Option<usize>,
    /// The first this many windows of each document (`None`: all).
    pub max_windows: Option<usize>,
}

impl LongText {
    pub const TRUNCATE: LongText = LongText { mode: LongMode::Truncate, stride: None, max_windows: None };

    /// The stride for windows of `max_len` tokens of which `special` are [CLS]/[SEP]; an error
    /// names the option when the windows could not advance.
    pub fn stride(&self, max_len: usize, special: usize) -> Result<usize> {
        let room = max_len.saturating_sub(special);
        let stride = self.stride.unwrap_or(room / 4);
        if stride >= room {
            return Err(Error::Option(format!(
                "stride {stride} must be less than the {room} text tokens of a window (max_len {max_len} less {special} special tokens)"
            )));
        }
        if self.max_windows == Some(0) {
            return Err(Error::Option("max_windows must be at least 1".into()));
        }
        Ok(stride)
    }
}

/// The token windows of a list of documents, documents in order and each one's windows in text
/// order (a single window per document unless [`LongMode::Windows`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocWindows {
    pub windows: Vec<Encoded>,
    /// The document of each window.
    pub doc: Vec<usize>,
    /// Character range of each window's text in its document (`[start, end)`; `(0, 0)` for an
    /// empty text).
    pub spans: Vec<(usize, usize)>,
    pub docs: usize,
    /// Documents cut: past the max length ([`LongMode::Truncate`], [`LongMode::HeadTail`]) or
    /// past `max_windows`.
    pub truncated: usize,
}

impl DocWindows {
    /// How many windows each document has.
    pub fn counts(&self) -> Vec<usize> {
        window_counts(&self.doc, self.docs)
    }
}

/// How many windows each of `docs` documents has, from the document of each window.
pub fn window_counts(doc: &[usize], docs: usize) -> Vec<usize> {
    let mut counts = vec![0; docs];
    for &d in doc {
        counts[d] += 1;
    }
    counts
}

/// The `[docs, rows]` matrix (row-major) that averages each document's rows: `1/n` where row
/// `j` belongs to document `d` of `n` rows, 0 elsewhere.
pub fn mean_matrix(doc: &[usize], docs: usize) -> Vec<f32> {
    let counts = window_counts(doc, docs);
    let mut m = vec![0.0; docs * doc.len()];
    for (j, &d) in doc.iter().enumerate() {
        m[d * doc.len() + j] = 1.0 / counts[d] as f32;
    }
    m
}

/// One output row per document from one per window (`[windows, width]` row-major, windows in
/// [`DocWindows`] order): the mean or the element-wise maximum of each document's windows
/// (the mean for [`Aggregate::MeanPool`]: of features, or of the linear head's logits alike).
pub fn aggregate(values: &[f32], width: usize, doc: &[usize], docs: usize, how: Aggregate) -> Vec<f32> {
    debug_assert_eq!(values.len(), doc.len() * width);
    let mean = how != Aggregate::MaxLogits;
    let init = if mean { 0.0 } else { f32::NEG_INFINITY };
    let mut out = vec![init; docs * width];
    let mut counts = vec![0usize; docs];
    for (row, &d) in values.chunks_exact(width).zip(doc) {
        counts[d] += 1;
        for (o, &v) in out[d * width..(d + 1) * width].iter_mut().zip(row) {
            *o = if mean { *o + v } else { o.max(v) };
        }
    }
    if mean {
        for (d, &n) in counts.iter().enumerate() {
            let n = n.max(1) as f32;
            out[d * width..(d + 1) * width].iter_mut().for_each(|o| *o /= n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_max_over_each_documents_windows() {
        // doc 0: two windows, doc 1: one.
        let values = [1.0, 4.0, 3.0, 2.0, 5.0, -1.0];
        let doc = [0, 0, 1];
        assert_eq!(aggregate(&values, 2, &doc, 2, Aggregate::MeanLogits), vec![2.0, 3.0, 5.0, -1.0]);
        assert_eq!(aggregate(&values, 2, &doc, 2, Aggregate::MaxLogits), vec![3.0, 4.0, 5.0, -1.0]);
    }

    #[test]
    fn the_mean_matrix_averages_each_documents_rows() {
        let m = mean_matrix(&[0, 0, 1, 2, 2, 2], 3);
        let third = 1.0 / 3.0;
        #[rustfmt::skip]
        let want = [
            0.5, 0.5, 0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 1.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, third, third, third,
        ];
        assert_eq!(m, want);
    }

    #[test]
    fn identical_windows_aggregate_to_one_windows_values() {
        let one = [0.25f32, -1.5, 3.0];
        let values: Vec<f32> = one.iter().copied().cycle().take(3 * 4).collect();
        for how in [Aggregate::MeanLogits, Aggregate::MaxLogits, Aggregate::MeanPool] {
            assert_eq!(aggregate(&values, 3, &[0, 0, 0, 0], 1, how), one.to_vec());
        }
    }

    #[test]
    fn a_stride_that_cannot_advance_is_an_error() {
        let w = LongText { mode: LongMode::Windows, stride: Some(6), max_windows: None };
        assert!(w.stride(8, 2).unwrap_err().to_string().contains("stride 6"));
        assert_eq!(LongText { stride: Some(5), ..w }.stride(8, 2).unwrap(), 5);
        assert_eq!(LongText { stride: None, ..w }.stride(130, 2).unwrap(), 32);
    }
}
