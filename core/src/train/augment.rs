//! Text augmentation on token ids, drawn anew for every text in every epoch (seeded): random
//! deletion, swaps of neighbours, and replacement by `[MASK]` (EDA-style noise; off by default).
//! The first and last ids (`[CLS]`, `[SEP]`) are never touched.

use crate::data::rng::SplitMix64;
use crate::tokenize::Encoded;

/// Per-token probabilities; all zero turns augmentation off.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    pub delete: f64,
    pub swap: f64,
    pub mask: f64,
    /// The `[MASK]` id (used when `mask` > 0).
    pub mask_id: u32,
}

impl Augment {
    pub fn is_off(&self) -> bool {
        self.delete <= 0.0 && self.swap <= 0.0 && self.mask <= 0.0
    }

    /// A changed copy of `text`'s ids; the same `rng` state gives the same copy.
    pub fn apply(&self, text: &Encoded, rng: &mut SplitMix64) -> Encoded {
        let n = text.ids.len();
        if self.is_off() || n <= 3 {
            return text.clone();
        }
        let coin = |rng: &mut SplitMix64, p: f64| p > 0.0 && ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p;
        let (first, last) = (0, n - 1);
        let mut inner: Vec<(u32, u32)> = (first + 1..last).map(|i| (text.ids[i], text.type_ids[i])).collect();
        if self.delete > 0.0 {
            let kept: Vec<(u32, u32)> = inner.iter().copied().filter(|_| !coin(rng, self.delete)).collect();
            // A text never loses all its words.
            if !kept.is_empty() {
                inner = kept;
            }
        }
        if self.swap > 0.0 {
            let mut i = 0;
            while i + 1 < inner.len() {
                if coin(rng, self.swap) {
                    inner.swap(i, i + 1);
                    i += 1;
                }
                i += 1;
            }
        }
        if self.mask > 0.0 {
            for t in inner.iter_mut() {
                if coin(rng, self.mask) {
                    t.0 = self.mask_id;
                }
            }
        }
        let mut ids = Vec::with_capacity(inner.len() + 2);
        let mut type_ids = Vec::with_capacity(inner.len() + 2);
        ids.push(text.ids[first]);
        type_ids.push(text.type_ids[first]);
        for (id, ty) in inner {
            ids.push(id);
            type_ids.push(ty);
        }
        ids.push(text.ids[last]);
        type_ids.push(text.type_ids[last]);
        Encoded { ids, type_ids, truncated: text.truncated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: u32) -> Encoded {
        let mut ids = vec![101];
        ids.extend(1000..1000 + n);
        ids.push(102);
        Encoded { type_ids: vec![0; ids.len()], ids, truncated: false }
    }

    #[test]
    fn off_changes_nothing_and_specials_stay() {
        let t = text(50);
        let mut rng = SplitMix64::new(1);
        assert_eq!(Augment::default().apply(&t, &mut rng), t);
        let a = Augment { delete: 0.2, swap: 0.2, mask: 0.2, mask_id: 103 };
        for seed in 0..50 {
            let out = a.apply(&t, &mut SplitMix64::new(seed));
            assert_eq!(out.ids[0], 101);
            assert_eq!(*out.ids.last().unwrap(), 102);
            assert_eq!(out.ids.len(), out.type_ids.len());
            assert!(out.ids.len() >= 3);
        }
    }

    #[test]
    fn rates_are_about_right_and_seeded() {
        let t = text(1000);
        let del = Augment { delete: 0.1, ..Default::default() }.apply(&t, &mut SplitMix64::new(3));
        let gone = 1000 - (del.ids.len() - 2);
        assert!((70..130).contains(&gone), "deleted {gone} of 1000");
        let masked = Augment { mask: 0.15, mask_id: 103, ..Default::default() }.apply(&t, &mut SplitMix64::new(3));
        let m = masked.ids.iter().filter(|&&i| i == 103).count();
        assert!((110..190).contains(&m), "masked {m} of 1000");
        let swapped = Augment { swap: 0.1, ..Default::default() }.apply(&t, &mut SplitMix64::new(3));
        let mut sorted = swapped.ids.clone();
        sorted.sort();
        let mut orig = t.ids.clone();
        orig.sort();
        assert_eq!(sorted, orig, "swaps keep every token");
        assert_ne!(swapped.ids, t.ids);
        let again = Augment { delete: 0.1, ..Default::default() }.apply(&t, &mut SplitMix64::new(3));
        assert_eq!(again, del, "the same seed, the same text");
    }
}
