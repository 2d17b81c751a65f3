//! Reading training data as a stream, for `savant pretrain` and `savant train --stream`: shards
//! matched by globs, CSV/TSV/JSONL, gzip or not, read and tokenised (HF tokenizers' batch
//! encoding spreads each chunk over every core) by a feeder thread that keeps a few batches
//! ready, so memory does not grow with the corpus.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use savant_core::data::TableReader;
use savant_core::pretrain::corpus::{Corpus, DocumentSource, ShuffleBuffer, SourceRow};
use savant_core::tokenize::{Encoded, TextTokenizer};

use crate::io::open;

/// The files `patterns` match, each pattern's in name order; `flag` names the option in errors.
pub fn expand(patterns: &[String], flag: &str) -> Result<Vec<PathBuf>> {
    let mut shards = Vec::new();
    for pattern in patterns {
        let mut matched: Vec<PathBuf> = glob::glob(pattern)
            .map_err(|e| anyhow!("{flag} '{pattern}': not a valid pattern: {e}"))?
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("{flag} '{pattern}'"))?;
        matched.retain(|p| p.is_file());
        if matched.is_empty() {
            bail!("{flag} '{pattern}' matches no file");
        }
        matched.sort();
        shards.extend(matched);
    }
    Ok(shards)
}

/// A shard read as a table.
pub type Shard = TableReader<Box<dyn Read + Send>>;

/// A shard as a table (`.gz` decompressed, its magic bytes checked), and the indices of
/// `columns` in it.
pub fn open_shard(path: &Path, format: Option<&str>, columns: &[&str]) -> Result<(Shard, Vec<usize>)> {
    let name = path.to_string_lossy();
    let inner = PathBuf::from(name.strip_suffix(".gz").unwrap_or(&name));
    let format = crate::io::format_for(&inner, format)?;
    let mut file = BufReader::with_capacity(1 << 20, open(path)?);
    let input: Box<dyn Read + Send> = if name.ends_with(".gz") {
        let magic = file.fill_buf().with_context(|| format!("reading {}", path.display()))?;
        if !magic.starts_with(&[0x1f, 0x8b]) {
            bail!("{}: not a gzip file (it does not start with gzip's magic bytes 1f 8b)", path.display());
        }
        Box::new(GzipErrors { inner: flate2::bufread::MultiGzDecoder::new(file), path: path.display().to_string() })
    } else {
        Box::new(file)
    };
    let reader = TableReader::new(input, format, &path.display().to_string())?;
    let columns = columns.iter().map(|c| reader.column(c)).collect::<savant_core::Result<Vec<_>>>()?;
    Ok((reader, columns))
}

/// A gzip stream's errors (a corrupt or truncated shard) with the shard's name.
struct GzipErrors<R> {
    inner: R,
    path: String,
}

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: corrupt gzip data: {e}", self.path)))
    }
}

/// One text column of shards in name order, a row at a time, as core's corpus reads documents;
/// each pass starts again at the first shard.
pub struct ShardRows {
    paths: Vec<PathBuf>,
    text: String,
    format: Option<String>,
    reader: Option<(Shard, usize)>,
    next: usize,
}

impl ShardRows {
    pub fn new(paths: Vec<PathBuf>, text: &str, format: Option<&str>) -> ShardRows {
        ShardRows { paths, text: text.into(), format: format.map(Into::into), reader: None, next: 0 }
    }
}

impl DocumentSource for ShardRows {
    type Error = anyhow::Error;

    fn next_row(&mut self) -> Result<SourceRow> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.paths.get(self.next).cloned() else { return Ok(SourceRow::End) };
                self.next += 1;
                let (reader, columns) = open_shard(&path, self.format.as_deref(), &[&self.text])?;
                self.reader = Some((reader, columns[0]));
            }
            let (reader, column) = self.reader.as_mut().expect("opened above");
            return Ok(match reader.next_row()? {
                None => {
                    self.reader = None;
                    continue;
                }
                Some(Err(_)) => SourceRow::Malformed,
                Some(Ok(mut row)) => SourceRow::Text(std::mem::take(&mut row.fields[*column])),
            });
        }
    }

    fn rewind(&mut self) -> Result<()> {
        (self.reader, self.next) = (None, 0);
        Ok(())
    }
}

/// A pretraining corpus read on the feeder thread.
impl Source for Corpus<ShardRows> {
    type Item = Encoded;

    fn next_item(&mut self) -> Result<Encoded> {
        self.next_window()
    }
}

/// What a feeder thread reads from.
pub trait Source: Send + 'static {
    type Item: Send + 'static;
    fn next_item(&mut self) -> Result<Self::Item>;
}

/// Items made on a second thread, ahead of the model: reading, decompressing and tokenising
/// overlap with training steps. `waited` is the time training spent waiting for them.
pub struct Feeder<S: Source> {
    items: Option<Receiver<Result<S::Item>>>,
    thread: JoinHandle<S>,
    pub waited: Duration,
}

impl<S: Source> Feeder<S> {
    /// Keeps up to `ready` items made, after the first `skip` (a resumed run's).
    pub fn spawn(mut source: S, ready: usize, skip: u64) -> Feeder<S> {
        let (tx, rx) = sync_channel(ready.max(1));
        let thread = std::thread::spawn(move || {
            for _ in 0..skip {
                if let Err(e) = source.next_item() {
                    let _ = tx.send(Err(e));
                    return source;
                }
            }
            loop {
                let item = source.next_item();
                let failed = item.is_err();
                // A closed channel: training ended (or failed); stop reading.
                if tx.send(item).is_err() || failed {
                    break;
                }
            }
            source
        });
        Feeder { items: Some(rx), thread, waited: Duration::ZERO }
    }

    pub fn next(&mut self) -> Result<S::Item> {
        let started = Instant::now();
        let got = self.items.as_ref().expect("open until finish").recv();
        self.waited += started.elapsed();
        got.map_err(|_| anyhow!("the reader stopped"))?
    }

    /// Stops the reader; the source, with its counts.
    pub fn finish(mut self) -> Result<S> {
        drop(self.items.take());
        self.thread.join().map_err(|_| anyhow!("the reader panicked"))
    }
}

/// Why rows or documents were not used, with counts (every one is used or counted).
pub type Skipped = BTreeMap<&'static str, u64>;

/// `savant train --stream`'s training split: labelled rows from shards, tokenised (truncated at
/// the tokenizer's max length), through a seeded shuffle buffer, endlessly (another pass at the
/// end of the last shard).
pub struct LabelledStream {
    shards: Vec<PathBuf>,
    format: Option<String>,
    columns: [String; 2],
    tokenizer: TextTokenizer,
    labels: HashMap<String, usize>,
    buffer: ShuffleBuffer<(Encoded, usize)>,
    ready: VecDeque<(Encoded, usize)>,
    /// The open shard and the text and label columns' indices.
    reader: Option<(Shard, Vec<usize>)>,
    next_shard: usize,
    rows_this_pass: u64,
    pub passes: usize,
    /// First pass: rows read into training, texts cut at the max length, rows left out.
    pub rows: u64,
    pub truncated: u64,
    pub skipped: Skipped,
}

/// Rows tokenised at once.
const CHUNK: usize = 256;

impl LabelledStream {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shards: Vec<PathBuf>,
        format: Option<String>,
        text: &str,
        label: &str,
        tokenizer: TextTokenizer,
        labels: &[String],
        shuffle_buffer: usize,
        seed: u64,
    ) -> LabelledStream {
        LabelledStream {
            shards,
            format,
            columns: [text.to_string(), label.to_string()],
            tokenizer,
            labels: labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect(),
            buffer: ShuffleBuffer::new(shuffle_buffer, seed),
            ready: VecDeque::new(),
            reader: None,
            next_shard: 0,
            rows_this_pass: 0,
            passes: 1,
            rows: 0,
            truncated: 0,
            skipped: Skipped::new(),
        }
    }

    /// Every label of the shards' `label` column, sorted: one pass reading that column only.
    pub fn scan_labels(shards: &[PathBuf], format: Option<&str>, text: &str, label: &str) -> Result<Vec<String>> {
        let mut seen = std::collections::BTreeSet::new();
        for path in shards {
            let (mut reader, columns) = open_shard(path, format, &[text, label])?;
            while let Some(row) = reader.next_row()? {
                if let Ok(row) = row {
                    let label = row.fields[columns[1]].trim();
                    if !label.is_empty() && !row.fields[columns[0]].trim().is_empty() {
                        seen.insert(label.to_string());
                    }
                }
            }
        }
        Ok(seen.into_iter().collect())
    }

    fn skip(&mut self, reason: &'static str) {
        if self.passes == 1 {
            *self.skipped.entry(reason).or_default() += 1;
        }
    }

    /// Up to [`CHUNK`] rows from this pass, `None` at the end of its last shard.
    fn next_rows(&mut self) -> Result<Option<Vec<(String, usize)>>> {
        let mut rows = Vec::with_capacity(CHUNK);
        while rows.len() < CHUNK {
            if self.reader.is_none() {
                let Some(path) = self.shards.get(self.next_shard).cloned() else { break };
                self.next_shard += 1;
                let columns = [self.columns[0].as_str(), self.columns[1].as_str()];
                self.reader = Some(open_shard(&path, self.format.as_deref(), &columns)?);
            }
            let (reader, columns) = self.reader.as_mut().expect("opened above");
            let (text, label) = (columns[0], columns[1]);
            match reader.next_row()? {
                None => self.reader = None,
                Some(Err(_)) => self.skip("malformed"),
                Some(Ok(row)) => {
                    let (t, l) = (row.fields[text].trim(), row.fields[label].trim());
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
            }
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

impl Source for LabelledStream {
    type Item = (Encoded, usize);

    /// The next training row, in shuffle order.
    fn next_item(&mut self) -> Result<(Encoded, usize)> {
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
                    bail!(
                        "the training shards have no usable row (skipped: {})",
                        self.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
                    );
                }
                self.rows_this_pass = 0;
                self.passes += 1;
                self.next_shard = 0;
            }
        }
    }
}
