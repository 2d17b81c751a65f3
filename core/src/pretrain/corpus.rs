//! Pieces of reading an unlabelled corpus as a stream (the CLI owns the files): a seeded
//! shuffle buffer, and long documents cut into windows that fit the model.

use crate::data::rng::SplitMix64;
use crate::tokenize::Encoded;

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
