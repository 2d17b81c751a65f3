//! Duplicate detection: exact, normalised, and near-duplicates by MinHash-LSH.
//!
//! The index groups texts as they stream past: the first text of a group is its representative,
//! later texts join the group of the first representative they match. Memory is the index
//! (a 16-byte hash per group, plus a 128-value signature per group in near mode), never the rows.

use super::rng::SplitMix64;
use super::text::normalized_key;
use std::collections::HashMap;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64, xxh3_64_with_seed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DedupMode {
    /// Every row on its own.
    None,
    /// The same text after the cleaning rules.
    Exact,
    /// The same text ignoring case, punctuation and whitespace.
    #[cfg_attr(feature = "cli", value(alias = "normalised"))]
    Normalized,
    /// Estimated Jaccard similarity of word 5-shingles at or above the threshold.
    Near,
}

impl DedupMode {
    pub fn parse(s: &str) -> Option<DedupMode> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(DedupMode::None),
            "exact" => Some(DedupMode::Exact),
            "normalized" | "normalised" => Some(DedupMode::Normalized),
            "near" => Some(DedupMode::Near),
            _ => None,
        }
    }

    /// The drop reason recorded for a duplicate found in this mode.
    pub fn reason(self) -> &'static str {
        match self {
            DedupMode::None => "duplicate",
            DedupMode::Exact => "duplicate_exact",
            DedupMode::Normalized => "duplicate_normalized",
            DedupMode::Near => "duplicate_near",
        }
    }
}

pub type GroupId = u32;

/// Number of MinHash permutations; 128 gives a standard error of about 0.035 on the Jaccard
/// estimate, enough to separate 0.8 from unrelated texts.
pub const NUM_PERM: usize = 128;
/// Words per shingle.
pub const SHINGLE_WORDS: usize = 5;

pub struct DedupIndex {
    mode: DedupMode,
    keys: HashMap<u128, GroupId>,
    near: Option<MinHashLsh>,
    groups: GroupId,
    scratch: Vec<u8>,
}

impl DedupIndex {
    pub fn new(mode: DedupMode, near_threshold: f64) -> Self {
        let near = (mode == DedupMode::Near).then(|| MinHashLsh::new(near_threshold));
        DedupIndex { mode, keys: HashMap::new(), near, groups: 0, scratch: Vec::new() }
    }

    pub fn mode(&self) -> DedupMode {
        self.mode
    }

    /// Number of groups (distinct texts) seen so far.
    pub fn groups(&self) -> GroupId {
        self.groups
    }

    /// The group of `text`: an existing one (`(id, true)`) when it duplicates an earlier text,
    /// otherwise a new one (`(id, false)`). In mode `None` every text is its own group.
    pub fn observe(&mut self, text: &str) -> (GroupId, bool) {
        let Some(key) = self.key(text) else { return (self.new_group(), false) };
        if let Some(&g) = self.keys.get(&key) {
            return (g, true);
        }
        if let Some(near) = &mut self.near {
            let signature = near.signature(&self.scratch);
            if let Some(g) = near.query(&signature) {
                self.keys.insert(key, g);
                return (g, true);
            }
            let g = self.groups;
            near.insert(signature, g);
            self.keys.insert(key, g);
            self.groups += 1;
            return (g, false);
        }
        let g = self.new_group();
        self.keys.insert(key, g);
        (g, false)
    }

    /// Whether `text` duplicates a text already observed (nothing is inserted). Always false in
    /// mode `None`.
    pub fn contains(&mut self, text: &str) -> bool {
        let Some(key) = self.key(text) else { return false };
        if self.keys.contains_key(&key) {
            return true;
        }
        match &self.near {
            Some(near) => near.query(&near.signature(&self.scratch)).is_some(),
            None => false,
        }
    }

    /// The hashed key of `text` in this mode (`None` in mode `None`); for normalised and near
    /// modes the normalised text is left in `scratch`, where the signature is taken from.
    fn key(&mut self, text: &str) -> Option<u128> {
        match self.mode {
            DedupMode::None => None,
            DedupMode::Exact => Some(xxh3_128(text.as_bytes())),
            DedupMode::Normalized | DedupMode::Near => {
                normalized_key(text, &mut self.scratch);
                Some(xxh3_128(&self.scratch))
            }
        }
    }

    fn new_group(&mut self) -> GroupId {
        self.groups += 1;
        self.groups - 1
    }
}

/// MinHash signatures with banded locality-sensitive hashing (as in `datasketch`'s MinHashLSH).
pub struct MinHashLsh {
    threshold: f64,
    bands: usize,
    rows: usize,
    /// Multiply-shift permutation parameters.
    perms: Vec<(u64, u64)>,
    tables: Vec<HashMap<u64, Vec<u32>>>,
    /// Signatures of the representatives, `NUM_PERM` values each.
    signatures: Vec<u32>,
    owners: Vec<GroupId>,
}

impl MinHashLsh {
    pub fn new(threshold: f64) -> Self {
        let (bands, rows) = optimal_bands(threshold, NUM_PERM);
        let mut rng = SplitMix64::new(0x5A7A_4E7D_EDB0_0001);
        let perms = (0..NUM_PERM).map(|_| (rng.next_u64() | 1, rng.next_u64())).collect();
        MinHashLsh {
            threshold,
            bands,
            rows,
            perms,
            tables: (0..bands).map(|_| HashMap::new()).collect(),
            signatures: Vec::new(),
            owners: Vec::new(),
        }
    }

    pub fn bands_rows(&self) -> (usize, usize) {
        (self.bands, self.rows)
    }

    /// The signature of a normalised key (words separated by single spaces).
    pub fn signature(&self, key: &[u8]) -> Vec<u32> {
        let mut sig = vec![u32::MAX; NUM_PERM];
        for_each_shingle(key, |shingle| {
            let h = xxh3_64(shingle);
            for (slot, &(a, b)) in sig.iter_mut().zip(&self.perms) {
                let v = (a.wrapping_mul(h).wrapping_add(b) >> 32) as u32;
                if v < *slot {
                    *slot = v;
                }
            }
        });
        sig
    }

    /// The group of the first stored signature whose estimated Jaccard similarity reaches the
    /// threshold, among those sharing at least one band.
    pub fn query(&self, sig: &[u32]) -> Option<GroupId> {
        let mut best: Option<u32> = None;
        for (band, table) in self.tables.iter().enumerate() {
            let Some(candidates) = table.get(&self.band_hash(sig, band)) else { continue };
            for &c in candidates {
                if best.is_some_and(|b| b <= c) {
                    continue;
                }
                if jaccard_estimate(sig, self.stored(c)) >= self.threshold {
                    best = Some(c);
                }
            }
        }
        best.map(|c| self.owners[c as usize])
    }

    pub fn insert(&mut self, sig: Vec<u32>, group: GroupId) {
        let id = self.owners.len() as u32;
        for band in 0..self.bands {
            let h = self.band_hash(&sig, band);
            self.tables[band].entry(h).or_default().push(id);
        }
        self.signatures.extend_from_slice(&sig);
        self.owners.push(group);
    }

    fn stored(&self, id: u32) -> &[u32] {
        let start = id as usize * NUM_PERM;
        &self.signatures[start..start + NUM_PERM]
    }

    fn band_hash(&self, sig: &[u32], band: usize) -> u64 {
        let values = &sig[band * self.rows..(band + 1) * self.rows];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        xxh3_64_with_seed(&bytes, band as u64)
    }
}

/// Calls `f` with each run of `SHINGLE_WORDS` consecutive words of `key` (a text shorter than
/// that is one shingle), as a slice of `key`.
fn for_each_shingle(key: &[u8], mut f: impl FnMut(&[u8])) {
    // Word boundaries: a normalised key has single spaces and no leading or trailing one.
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut in_word = false;
    for (i, &b) in key.iter().enumerate() {
        if b == b' ' {
            if in_word {
                ends.push(i);
            }
            in_word = false;
        } else if !in_word {
            starts.push(i);
            in_word = true;
        }
    }
    if in_word {
        ends.push(key.len());
    }
    if starts.is_empty() {
        return;
    }
    if starts.len() <= SHINGLE_WORDS {
        f(&key[starts[0]..ends[ends.len() - 1]]);
        return;
    }
    for i in 0..=starts.len() - SHINGLE_WORDS {
        f(&key[starts[i]..ends[i + SHINGLE_WORDS - 1]]);
    }
}

pub fn jaccard_estimate(a: &[u32], b: &[u32]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len() as f64
}

/// The (bands, rows) split of `num_perm` that minimises the sum of the false-positive and
/// false-negative probability areas around `threshold` — datasketch's `_optimal_param` with equal
/// weights.
pub fn optimal_bands(threshold: f64, num_perm: usize) -> (usize, usize) {
    fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
        // Midpoint rule; the integrands are smooth and 1000 steps is far below 1e-4 error.
        let n = 1000;
        let h = (b - a) / n as f64;
        (0..n).map(|i| f(a + (i as f64 + 0.5) * h)).sum::<f64>() * h
    }
    let mut best = (1, num_perm);
    let mut best_err = f64::INFINITY;
    for b in 1..=num_perm {
        let max_r = num_perm / b;
        for r in 1..=max_r {
            let p = |s: f64| 1.0 - (1.0 - s.powi(r as i32)).powi(b as i32);
            let fp = integrate(p, 0.0, threshold);
            let fneg = integrate(|s| 1.0 - p(s), threshold, 1.0);
            let err = 0.5 * fp + 0.5 * fneg;
            if err < best_err {
                best_err = err;
                best = (b, r);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_normalized_modes() {
        let mut exact = DedupIndex::new(DedupMode::Exact, 0.8);
        assert_eq!(exact.observe("Hello, world"), (0, false));
        assert_eq!(exact.observe("hello world"), (1, false));
        assert_eq!(exact.observe("Hello, world"), (0, true));
        let mut norm = DedupIndex::new(DedupMode::Normalized, 0.8);
        assert_eq!(norm.observe("Hello, world"), (0, false));
        assert_eq!(norm.observe("hello   WORLD!"), (0, true));
        assert_eq!(norm.observe("hello there"), (1, false));
        assert!(norm.contains("HELLO there!"));
        assert!(!norm.contains("hello again"));
        assert_eq!(norm.observe("hello again"), (2, false), "contains() inserts nothing");
        let mut none = DedupIndex::new(DedupMode::None, 0.8);
        assert_eq!(none.observe("a"), (0, false));
        assert_eq!(none.observe("a"), (1, false));
    }

    #[test]
    fn lsh_parameters_match_datasketch() {
        // datasketch.MinHashLSH(threshold=0.8, num_perm=128).b, .r == 9, 13
        assert_eq!(optimal_bands(0.8, 128), (9, 13));
        assert_eq!(optimal_bands(0.5, 128), (25, 5));
        assert_eq!(optimal_bands(0.9, 128), (5, 25));
    }

    #[test]
    fn near_duplicates_join_unrelated_texts_do_not() {
        let base = "the bank closed my savings account without any notice and refused to explain why they did it to me after many years";
        let edited = "the bank closed my savings account without any notice and refused to explain why they did it to me after many many years";
        let other = "my mortgage servicer misapplied two payments and then reported me late to all three credit bureaus last spring";
        let mut idx = DedupIndex::new(DedupMode::Near, 0.8);
        assert_eq!(idx.observe(base), (0, false));
        assert_eq!(idx.observe(other), (1, false));
        assert_eq!(idx.observe(edited), (0, true));
        assert_eq!(idx.observe("The bank closed my SAVINGS account, without any notice and refused to explain why they did it to me after many years!"), (0, true));
    }

    #[test]
    fn jaccard_estimate_tracks_true_jaccard() {
        let lsh = MinHashLsh::new(0.8);
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let a = words.join(" ");
        // Replace 10 words in the middle: shingle sets share (196-50)/(196+50) ≈ 0.59.
        let mut w2 = words.clone();
        for w in w2.iter_mut().skip(100).step_by(5).take(10) {
            *w = format!("{w}x");
        }
        let b = w2.join(" ");
        let sa: std::collections::HashSet<String> = words.windows(5).map(|w| w.join(" ")).collect();
        let sb: std::collections::HashSet<String> = w2.windows(5).map(|w| w.join(" ")).collect();
        let truth = sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64;
        let est = jaccard_estimate(&lsh.signature(a.as_bytes()), &lsh.signature(b.as_bytes()));
        assert!((est - truth).abs() < 0.12, "estimate {est} vs true {truth}");
    }

    #[test]
    fn shingles() {
        let mut got = Vec::new();
        let text = |s: &[u8]| String::from_utf8(s.to_vec()).unwrap();
        for_each_shingle(b"a b c", |s| got.push(text(s)));
        assert_eq!(got, ["a b c"]);
        got.clear();
        for_each_shingle(b"a b c d e f g", |s| got.push(text(s)));
        assert_eq!(got, ["a b c d e", "b c d e f", "c d e f g"]);
        got.clear();
        for_each_shingle(b"", |s| got.push(text(s)));
        assert!(got.is_empty());
    }
}
