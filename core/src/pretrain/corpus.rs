//! An unlabelled corpus as an endless, shuffled stream of training windows, wherever its rows
//! come from (the CLI reads shards; a [`DocumentSource`] hands over their texts): documents
//! held out for perplexity, long documents cut into windows that fit the model, windows without
//! a token to predict left out, a seeded shuffle buffer, pass after pass — every row counted.

use std::collections::{BTreeMap, VecDeque};

use super::masking::{MaskedBatch, Masking};
use crate::data::rng::SplitMix64;
pub use crate::data::source::{DocumentSource, ShuffleBuffer, SourceRow, TableRows};
use crate::tokenize::{Encoded, TextTokenizer};

/// What the rows and windows of the first pass were: what was trained on and what was not.
pub type Skipped = BTreeMap<&'static str, u64>;

/// Documents tokenised at once (the tokenizer spreads a batch over every core).
const CHUNK: usize = 256;

/// The corpus as an endless stream of windows: the source's rows, documents tokenised in chunks,
/// windows through the shuffle buffer; at the end of a pass, another.
pub struct Corpus<S> {
    source: S,
    tokenizer: TextTokenizer,
    max_len: usize,
    masking: Masking,
    buffer: ShuffleBuffer<Encoded>,
    ready: VecDeque<Encoded>,
    /// Documents held out at the start of the corpus, skipped in every pass.
    held_out: usize,
    skip: usize,
    trained_this_pass: u64,
    /// Windows that reached the shuffle buffer this pass.
    windows_this_pass: u64,
    pub passes: usize,
    /// First pass: documents trained on, windows they gave, documents longer than a window.
    pub documents: u64,
    pub windows: u64,
    pub split_documents: u64,
    /// First pass: rows and windows left out, by reason (`malformed`, `empty_text`,
    /// `windows_without_a_token_to_predict`).
    pub skipped: Skipped,
}

impl<S: DocumentSource> Corpus<S> {
    /// `tokenizer` must not truncate (a document's windows are cut from all its tokens);
    /// `shuffle_buffer` windows are held at most.
    pub fn new(
        source: S,
        tokenizer: TextTokenizer,
        max_len: usize,
        masking: Masking,
        shuffle_buffer: usize,
        seed: u64,
    ) -> Corpus<S> {
        Corpus {
            source,
            tokenizer,
            max_len,
            masking,
            buffer: ShuffleBuffer::new(shuffle_buffer, seed),
            ready: VecDeque::new(),
            held_out: 0,
            skip: 0,
            trained_this_pass: 0,
            windows_this_pass: 0,
            passes: 1,
            documents: 0,
            windows: 0,
            split_documents: 0,
            skipped: Skipped::new(),
        }
    }

    /// How the windows are masked.
    pub fn masking(&self) -> &Masking {
        &self.masking
    }

    /// Tokens per window at most.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn count(&mut self, reason: &'static str, n: u64) {
        if self.passes == 1 {
            *self.skipped.entry(reason).or_default() += n;
        }
    }

    /// Up to [`CHUNK`] texts from the current pass, `None` at its end.
    fn next_texts(&mut self) -> Result<Option<Vec<String>>, S::Error> {
        let mut texts = Vec::with_capacity(CHUNK);
        while texts.len() < CHUNK {
            match self.source.next_row()? {
                SourceRow::End => break,
                SourceRow::Malformed => self.count("malformed", 1),
                SourceRow::Fields(f) if f.first().is_none_or(|t| t.trim().is_empty()) => self.count("empty_text", 1),
                SourceRow::Fields(f) => texts.push(f[0].trim().to_string()),
            }
        }
        Ok((!texts.is_empty()).then_some(texts))
    }

    /// Each document's windows.
    fn tokenise(&mut self, texts: &[String]) -> crate::Result<Vec<Encoded>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for doc in self.tokenizer.encode_each(&refs)? {
            let pieces = windows(&doc, self.max_len);
            if pieces.len() > 1 && self.passes == 1 {
                self.split_documents += 1;
            }
            out.extend(pieces);
        }
        Ok(out)
    }

    /// The first `n` documents of the corpus as windows (those with a token to predict); they
    /// are never trained on.
    pub fn take_held_out(&mut self, n: usize) -> Result<Vec<Encoded>, S::Error> {
        let mut docs = Vec::new();
        while docs.len() < n {
            let Some(texts) = self.next_texts()? else { break };
            docs.extend(texts);
        }
        let rest = docs.split_off(n.min(docs.len()));
        self.held_out = docs.len();
        let held = self.tokenise(&docs)?;
        let held = self.maskable_only(held);
        self.split_documents = 0;
        self.feed(rest)?;
        Ok(held)
    }

    fn feed(&mut self, mut texts: Vec<String>) -> crate::Result<()> {
        let skip = self.skip.min(texts.len());
        texts.drain(..skip);
        self.skip -= skip;
        self.trained_this_pass += texts.len() as u64;
        if self.passes == 1 {
            self.documents += texts.len() as u64;
        }
        let windows = self.tokenise(&texts)?;
        for window in self.maskable_only(windows) {
            self.windows_this_pass += 1;
            if self.passes == 1 {
                self.windows += 1;
            }
            if let Some(out) = self.buffer.push(window) {
                self.ready.push_back(out);
            }
        }
        Ok(())
    }

    /// `windows` without those that have no token to predict, which are counted (first pass).
    fn maskable_only(&mut self, windows: Vec<Encoded>) -> Vec<Encoded> {
        let before = windows.len();
        let kept: Vec<Encoded> = windows.into_iter().filter(|w| self.masking.maskable(&w.ids)).collect();
        self.count("windows_without_a_token_to_predict", (before - kept.len()) as u64);
        kept
    }

    /// The next training window, in shuffle order.
    pub fn next_window(&mut self) -> Result<Encoded, S::Error> {
        loop {
            if let Some(window) = self.ready.pop_front() {
                return Ok(window);
            }
            if let Some(texts) = self.next_texts()? {
                self.feed(texts)?;
            } else if let Some(window) = self.buffer.pop() {
                return Ok(window);
            } else {
                if self.trained_this_pass == 0 {
                    let message = format!("no document left to train on ({} held out for evaluation)", self.held_out);
                    return Err(crate::Error::invalid("the corpus", None, message).into());
                }
                if self.windows_this_pass == 0 {
                    let message = format!(
                        "no window of the corpus has a token to predict: every token is special or [UNK] ({} windows); does the tokenizer's vocabulary fit the text?",
                        self.skipped.get("windows_without_a_token_to_predict").copied().unwrap_or(0)
                    );
                    return Err(crate::Error::invalid("the corpus", None, message).into());
                }
                self.windows_this_pass = 0;
                self.passes += 1;
                self.source.rewind()?;
                self.skip = self.held_out;
                self.trained_this_pass = 0;
            }
        }
    }
}

impl<S> Corpus<S> {
    /// One line on a pass counted in `seconds`: documents, windows, tokens and their rate.
    pub fn scan_line(&self, c: &PassCounts, seconds: f64) -> String {
        format!(
            "{} documents → {} windows ({} split), {} tokens in {seconds:.1} s ({:.0} tokens/s)",
            self.documents,
            c.windows,
            self.split_documents,
            c.tokens,
            c.tokens as f64 / seconds.max(1e-9)
        )
    }

    /// `savant pretrain --scan`'s report of a pass counted in `seconds` (`held_out` windows aside).
    pub fn scan_json(&self, c: &PassCounts, held_out: usize, seconds: f64) -> serde_json::Value {
        serde_json::json!({
            "documents": self.documents,
            "windows": c.windows,
            "held_out_windows": held_out,
            "split_into_windows": self.split_documents,
            "skipped": self.skipped,
            "tokens": c.tokens,
            "predicted_tokens": c.predicted_tokens,
            "seconds": seconds,
            "tokens_per_second": c.tokens as f64 / seconds.max(1e-9),
            "windows_per_second": c.windows as f64 / seconds.max(1e-9),
            "max_len": self.max_len,
            "shuffle_buffer": self.buffer.capacity(),
        })
    }
}

/// One pass of a corpus counted ([`Corpus::count_pass`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PassCounts {
    pub windows: u64,
    pub tokens: u64,
    /// Tokens the masking chose to predict, batches of `batch_size` windows masked as training would.
    pub predicted_tokens: u64,
}

impl<S: DocumentSource> Corpus<S> {
    /// Reads the rest of the first pass through the whole pipeline (tokenising, windows, shuffle
    /// buffer, masking in batches of `batch_size` with the training's seed) without a model:
    /// how much data there is. `progress` hears the counts every 10,000 windows.
    pub fn count_pass(
        &mut self,
        batch_size: usize,
        seed: u64,
        mut progress: impl FnMut(&PassCounts),
    ) -> Result<PassCounts, S::Error> {
        let mut rng = SplitMix64::new(seed ^ 0x3a5c);
        let mut counts = PassCounts::default();
        let mut batch: Vec<Encoded> = Vec::with_capacity(batch_size);
        let masking = self.masking.clone();
        let mut mask = |batch: &mut Vec<Encoded>, counts: &mut PassCounts| {
            if !batch.is_empty() {
                let refs: Vec<&Encoded> = batch.iter().collect();
                counts.predicted_tokens += masking.mask(&refs, &mut rng).targets.len() as u64;
                batch.clear();
            }
        };
        loop {
            let window = self.next_window()?;
            if self.passes > 1 {
                break; // the window begins a second pass
            }
            counts.windows += 1;
            counts.tokens += window.ids.len() as u64;
            batch.push(window);
            if batch.len() == batch_size {
                mask(&mut batch, &mut counts);
            }
            if counts.windows.is_multiple_of(10_000) {
                progress(&counts);
            }
        }
        mask(&mut batch, &mut counts);
        Ok(counts)
    }
}

/// The held-out windows masked once, with a fixed seed: every evaluation predicts the same tokens.
pub fn mask_in_batches(masking: &Masking, windows: &[Encoded], batch_size: usize, seed: u64) -> Vec<MaskedBatch> {
    let mut rng = SplitMix64::new(seed);
    windows.chunks(batch_size).map(|chunk| masking.mask(&chunk.iter().collect::<Vec<_>>(), &mut rng)).collect()
}

/// A document's tokens (`[CLS] … [SEP]`, untruncated) cut into windows of at most `max_len`
/// tokens, each `[CLS] piece [SEP]`: nothing of a long document is lost. A document that fits is
/// returned as it is.
pub fn windows(doc: &Encoded, max_len: usize) -> Vec<Encoded> {
    if doc.ids.len() <= max_len || doc.ids.len() < 2 || max_len < 3 {
        return vec![doc.clone()];
    }
    let (cls, sep) = (doc.ids[0], doc.ids[doc.ids.len() - 1]);
    let body = &doc.ids[1..doc.ids.len() - 1];
    body.chunks(max_len - 2)
        .map(|piece| {
            let mut ids = Vec::with_capacity(piece.len() + 2);
            ids.push(cls);
            ids.extend_from_slice(piece);
            ids.push(sep);
            Encoded { type_ids: vec![0; ids.len()], ids, truncated: false }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shuffle_buffer_returns_every_item_once_in_a_seeded_order() {
        let run = |seed| {
            let mut buffer = ShuffleBuffer::new(10, seed);
            let mut out: Vec<u32> = (0..100).filter_map(|i| buffer.push(i)).collect();
            while let Some(i) = buffer.pop() {
                out.push(i);
            }
            out
        };
        let a = run(1);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn long_documents_become_windows_that_keep_every_token() {
        let doc =
            Encoded { ids: [vec![2], (10..25).collect(), vec![3]].concat(), type_ids: vec![0; 17], truncated: false };
        let w = windows(&doc, 8);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|e| e.ids.len() <= 8 && e.ids[0] == 2 && *e.ids.last().unwrap() == 3));
        let body: Vec<u32> = w.iter().flat_map(|e| e.ids[1..e.ids.len() - 1].to_vec()).collect();
        assert_eq!(body, (10..25).collect::<Vec<_>>());
        assert_eq!(windows(&doc, 64), vec![doc]);
    }
}
