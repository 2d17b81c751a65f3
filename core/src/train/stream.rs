//! A training split read as a stream (`savant train --stream`): labelled rows from any
//! [`DocumentSource`] asked for the text and label fields, tokenised in chunks (cut at the
//! tokenizer's max length), through a seeded shuffle buffer, endlessly (another pass at the end
//! of the source); every row is used or counted with its reason.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::data::source::{DocumentSource, ShuffleBuffer, SourceRow};
use crate::tokenize::{Encoded, TextTokenizer};

/// Why rows were not used, with counts (first pass).
pub type Skipped = BTreeMap<&'static str, u64>;

/// Rows tokenised at once (the tokenizer spreads a batch over every core).
const CHUNK: usize = 256;

pub struct LabelledStream<S> {
    source: S,
    tokenizer: TextTokenizer,
    labels: HashMap<String, usize>,
    buffer: ShuffleBuffer<(Encoded, usize)>,
    ready: VecDeque<(Encoded, usize)>,
    rows_this_pass: u64,
    pub passes: usize,
    /// First pass: rows read into training, texts cut at the max length, rows left out.
    pub rows: u64,
    pub truncated: u64,
    pub skipped: Skipped,
}

impl<S: DocumentSource> LabelledStream<S> {
    /// `source` gives `[text, label]` rows; `labels` are the classes (a row of another label is
    /// counted and left out); at most `shuffle_buffer` rows are held.
    pub fn new(
        source: S,
        tokenizer: TextTokenizer,
        labels: &[String],
        shuffle_buffer: usize,
        seed: u64,
    ) -> LabelledStream<S> {
        LabelledStream {
            source,
            tokenizer,
            labels: labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect(),
            buffer: ShuffleBuffer::new(shuffle_buffer, seed),
            ready: VecDeque::new(),
            rows_this_pass: 0,
            passes: 1,
            rows: 0,
            truncated: 0,
            skipped: Skipped::new(),
        }
    }

    /// Every label of a usable row of `source` (text and label both present), sorted: one pass,
    /// after which the source is rewound.
    pub fn scan_labels(source: &mut S) -> Result<Vec<String>, S::Error> {
        let mut seen = BTreeSet::new();
        loop {
            match source.next_row()? {
                SourceRow::End => break,
                SourceRow::Malformed => {}
                SourceRow::Fields(f) => {
                    if let [text, label, ..] = f.as_slice() {
                        if !label.trim().is_empty() && !text.trim().is_empty() {
                            seen.insert(label.trim().to_string());
                        }
                    }
                }
            }
        }
        source.rewind()?;
        Ok(seen.into_iter().collect())
    }

    fn skip(&mut self, reason: &'static str) {
        if self.passes == 1 {
            *self.skipped.entry(reason).or_default() += 1;
        }
    }

    /// Up to [`CHUNK`] rows from this pass, `None` at its end.
    fn next_rows(&mut self) -> Result<Option<Vec<(String, usize)>>, S::Error> {
        let mut rows = Vec::with_capacity(CHUNK);
        while rows.len() < CHUNK {
            let fields = match self.source.next_row()? {
                SourceRow::End => break,
                SourceRow::Malformed => {
                    self.skip("malformed");
                    continue;
                }
                SourceRow::Fields(f) => f,
            };
            let (t, l) = (fields[0].trim(), fields.get(1).map_or("", |l| l.trim()));
            if t.is_empty() {
                self.skip("empty_text");
            } else if l.is_empty() {
                self.skip("missing_label");
            } else if let Some(&id) = self.labels.get(l) {
                rows.push((t.to_string(), id));
            } else {
                self.skip("label_not_in_the_label_set");
            }
        }
        Ok((!rows.is_empty()).then_some(rows))
    }

    /// The next training row and its class, in shuffle order.
    pub fn next_row(&mut self) -> Result<(Encoded, usize), S::Error> {
        loop {
            if let Some(row) = self.ready.pop_front() {
                return Ok(row);
            }
            if let Some(rows) = self.next_rows()? {
                let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
                let encoded = self.tokenizer.encode_each(&texts)?;
                self.rows_this_pass += rows.len() as u64;
                for (e, (_, label)) in encoded.into_iter().zip(rows) {
                    if self.passes == 1 {
                        self.rows += 1;
                        self.truncated += e.truncated as u64;
                    }
                    if let Some(out) = self.buffer.push((e, label)) {
                        self.ready.push_back(out);
                    }
                }
            } else if let Some(row) = self.buffer.pop() {
                return Ok(row);
            } else {
                if self.rows_this_pass == 0 {
                    let skipped: Vec<String> = self.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    let message = format!("no usable row (skipped: {})", skipped.join(", "));
                    return Err(crate::Error::invalid("the training split", None, message).into());
                }
                self.rows_this_pass = 0;
                self.passes += 1;
                self.source.rewind()?;
            }
        }
    }
}
