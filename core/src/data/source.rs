//! Rows read as a stream, pass after pass, wherever they come from (the CLI's shards, a file the
//! page holds in memory), and the seeded shuffle buffer that streams go through.

use crate::data::rng::SplitMix64;

/// One row of a source: the fields it was asked for, in that order.
pub enum SourceRow {
    Fields(Vec<String>),
    /// A row that could not be read (counted as `malformed` on the first pass).
    Malformed,
    /// The end of the pass.
    End,
}

/// Where a stream's rows come from (a pretraining corpus, a streamed training split), in the
/// same order every pass.
pub trait DocumentSource {
    /// The source's errors; core's own (an unusable corpus) convert into them.
    type Error: From<crate::Error>;
    fn next_row(&mut self) -> Result<SourceRow, Self::Error>;
    /// Starts the next pass at the first row.
    fn rewind(&mut self) -> Result<(), Self::Error>;
}

/// A table in memory (CSV/TSV/JSONL bytes: a file the page's user picked) as a source: its
/// `columns`, row by row, pass after pass.
pub struct TableRows {
    bytes: std::sync::Arc<[u8]>,
    format: crate::data::Format,
    name: String,
    columns: Vec<String>,
    /// The reader of the current pass and the columns' indices.
    reader: Option<(InMemory, Vec<usize>)>,
}

type InMemory = crate::data::TableReader<std::io::Cursor<std::sync::Arc<[u8]>>>;

impl TableRows {
    /// Checks that the table has the `columns`; `name` names it in messages.
    pub fn new(bytes: Vec<u8>, format: crate::data::Format, name: &str, columns: &[&str]) -> crate::Result<TableRows> {
        let columns = columns.iter().map(|c| c.to_string()).collect();
        let mut rows = TableRows { bytes: bytes.into(), format, name: name.to_string(), columns, reader: None };
        rows.open()?;
        Ok(rows)
    }

    fn open(&mut self) -> crate::Result<()> {
        let reader = crate::data::TableReader::new(std::io::Cursor::new(self.bytes.clone()), self.format, &self.name)?;
        let columns = self.columns.iter().map(|c| reader.column(c)).collect::<crate::Result<_>>()?;
        self.reader = Some((reader, columns));
        Ok(())
    }
}

impl DocumentSource for TableRows {
    type Error = crate::Error;

    fn next_row(&mut self) -> crate::Result<SourceRow> {
        let Some((reader, columns)) = self.reader.as_mut() else { return Ok(SourceRow::End) };
        Ok(match reader.next_row()? {
            None => {
                self.reader = None;
                SourceRow::End
            }
            Some(Err(_)) => SourceRow::Malformed,
            Some(Ok(mut row)) => {
                SourceRow::Fields(columns.iter().map(|&c| std::mem::take(&mut row.fields[c])).collect())
            }
        })
    }

    fn rewind(&mut self) -> crate::Result<()> {
        self.open()
    }
}

/// A bounded shuffle (tf.data's `shuffle(buffer_size)`): items come out in a random order drawn
/// from a seed while at most `capacity` are held, so a corpus larger than memory is shuffled
/// locally. The order depends only on the seed and the input order.
#[derive(Debug, Clone)]
pub struct ShuffleBuffer<T> {
    items: Vec<T>,
    capacity: usize,
    rng: SplitMix64,
}

impl<T> ShuffleBuffer<T> {
    pub fn new(capacity: usize, seed: u64) -> ShuffleBuffer<T> {
        ShuffleBuffer {
            items: Vec::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
            rng: SplitMix64::new(seed),
        }
    }

    /// Items held at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds `item`; once the buffer is full, returns a random one of the held items (or `item`).
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.items.len() < self.capacity {
            self.items.push(item);
            return None;
        }
        let i = self.rng.below(self.capacity as u64 + 1) as usize;
        if i == self.capacity {
            Some(item)
        } else {
            Some(std::mem::replace(&mut self.items[i], item))
        }
    }

    /// The next held item at the end of the input, in random order.
    pub fn pop(&mut self) -> Option<T> {
        if self.items.is_empty() {
            return None;
        }
        let i = self.rng.below(self.items.len() as u64) as usize;
        Some(self.items.swap_remove(i))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
