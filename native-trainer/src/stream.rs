//! Reading training data as a stream, for `savant pretrain` and `savant train --stream`: shards
//! matched by globs, CSV/TSV/JSONL, gzip or not, handed as rows to core's streams (which
//! tokenise, window and shuffle them) on a feeder thread that keeps a few batches ready, so
//! memory does not grow with the corpus.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use savant_core::data::source::{DocumentSource, SourceRow};
use savant_core::data::TableReader;
use savant_core::pretrain::corpus::Corpus;
use savant_core::tokenize::Encoded;
use savant_core::train::stream::LabelledStream;

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

/// Columns of shards in name order, a row at a time, as core's streams read them (a corpus's
/// text; a training split's text and label); each pass starts again at the first shard.
pub struct ShardRows {
    paths: Vec<PathBuf>,
    columns: Vec<String>,
    format: Option<String>,
    reader: Option<(Shard, Vec<usize>)>,
    next: usize,
}

impl ShardRows {
    pub fn new(paths: Vec<PathBuf>, columns: &[&str], format: Option<&str>) -> ShardRows {
        let columns = columns.iter().map(|c| c.to_string()).collect();
        ShardRows { paths, columns, format: format.map(Into::into), reader: None, next: 0 }
    }
}

impl DocumentSource for ShardRows {
    type Error = anyhow::Error;

    fn next_row(&mut self) -> Result<SourceRow> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.paths.get(self.next).cloned() else { return Ok(SourceRow::End) };
                self.next += 1;
                let names: Vec<&str> = self.columns.iter().map(String::as_str).collect();
                self.reader = Some(open_shard(&path, self.format.as_deref(), &names)?);
            }
            let (reader, columns) = self.reader.as_mut().expect("opened above");
            return Ok(match reader.next_row()? {
                None => {
                    self.reader = None;
                    continue;
                }
                Some(Err(_)) => SourceRow::Malformed,
                Some(Ok(mut row)) => {
                    SourceRow::Fields(columns.iter().map(|&c| std::mem::take(&mut row.fields[c])).collect())
                }
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

/// A streamed training split read on the feeder thread.
impl Source for LabelledStream<ShardRows> {
    type Item = (Encoded, usize);

    fn next_item(&mut self) -> Result<(Encoded, usize)> {
        self.next_row()
    }
}
