//! Reading on a second thread: CSV parsing and UTF-8 checks overlap with cleaning, which makes
//! `savant clean` use two cores while core stays single-threaded and platform-free.

use savant_core::data::{RowResult, RowSource, TableReader};
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

const BATCH: usize = 1024;
/// Batches in flight: enough to ride out jitter, few enough to keep memory small.
const IN_FLIGHT: usize = 4;

enum Message {
    Rows(Vec<RowResult>, u64),
    End(Vec<String>),
    Failed(savant_core::Error),
}

pub struct Prefetch {
    rx: Receiver<Message>,
    batch: std::vec::IntoIter<RowResult>,
    bytes: u64,
    notes: Vec<String>,
    done: bool,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    pub fn spawn<R: Read + Send + 'static>(mut reader: TableReader<R>) -> Self {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let thread = std::thread::spawn(move || loop {
            let mut rows = Vec::with_capacity(BATCH);
            while rows.len() < BATCH {
                match reader.next_row() {
                    Ok(Some(row)) => rows.push(row),
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Message::Failed(e));
                        return;
                    }
                }
            }
            let last = rows.len() < BATCH;
            // A closed channel means the consumer stopped (an error there): just stop reading.
            if !rows.is_empty() && tx.send(Message::Rows(rows, reader.bytes_read())).is_err() {
                return;
            }
            if last {
                let _ = tx.send(Message::End(std::mem::take(&mut reader.notes)));
                return;
            }
        });
        Prefetch { rx, batch: Vec::new().into_iter(), bytes: 0, notes: Vec::new(), done: false, thread: Some(thread) }
    }
}

impl RowSource for Prefetch {
    fn next_row(&mut self) -> savant_core::Result<Option<RowResult>> {
        loop {
            if let Some(row) = self.batch.next() {
                return Ok(Some(row));
            }
            if self.done {
                return Ok(None);
            }
            match self.rx.recv() {
                Ok(Message::Rows(rows, bytes)) => {
                    self.batch = rows.into_iter();
                    self.bytes = bytes;
                }
                Ok(Message::End(notes)) => {
                    self.notes = notes;
                    self.done = true;
                }
                Ok(Message::Failed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    // The reader thread ended without saying why: it panicked.
                    self.done = true;
                    let panicked = self.thread.take().map(|t| t.join().is_err()).unwrap_or(false);
                    let why = if panicked { "the reading thread panicked" } else { "the reading thread stopped" };
                    return Err(savant_core::Error::Io(std::io::Error::other(why)));
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}
