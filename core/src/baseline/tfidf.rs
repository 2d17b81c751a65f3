//! scikit-learn's `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)` with its
//! other defaults: lowercase, the token pattern `(?u)\b\w\w+\b`, word uni- and bigrams, the
//! surviving terms sorted, smooth idf, `1 + ln(tf)`, rows scaled to unit l2 norm.

use std::sync::OnceLock;

use ahash::AHashMap;
use regex::Regex;

use crate::{Error, Result};

/// Terms kept: those in at least this many training texts (sklearn's `min_df=2`).
pub const MIN_DF: u32 = 2;

/// Python's `\w` in a `str` pattern is `str.isalnum() or "_"`: the letter and number general
/// categories plus the underscore (combining marks are not word characters, unlike Rust's `\w`).
/// Tokens are the maximal runs of two or more, which is what `\b\w\w+\b` matches.
fn token_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| Regex::new(r"[\p{L}\p{N}_]{2,}").expect("a valid pattern"))
}

/// The tokens of `text` as sklearn's default word analyzer cuts them (after lowercasing).
pub fn tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    token_pattern().find_iter(&lower).map(|m| m.as_str().to_string()).collect()
}

/// Unigrams, then bigrams joined by one space, as sklearn's `_word_ngrams` with `(1, 2)`.
pub fn ngrams(tokens: &[String]) -> Vec<String> {
    let mut out = tokens.to_vec();
    out.extend(tokens.windows(2).map(|w| format!("{} {}", w[0], w[1])));
    out
}

/// Sparse rows, CSR-like: row `i` holds `indices[offsets[i]..offsets[i + 1]]` (ascending
/// feature indices) with `values` alongside.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRows {
    pub offsets: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f64>,
    pub columns: usize,
}

impl SparseRows {
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Row `i` as (feature indices, values).
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.offsets[i], self.offsets[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }
}

/// A fitted vectorizer: the sorted vocabulary and its idf.
#[derive(Debug, Clone)]
pub struct TfIdf {
    terms: Vec<String>,
    idf: Vec<f64>,
    /// A kept unigram's feature index.
    unigrams: AHashMap<String, u32>,
    /// A kept bigram's feature index, keyed by its two words' feature indices (both words of a
    /// kept bigram are kept unigrams: they occur in every text the bigram occurs in).
    bigrams: AHashMap<u64, u32>,
}

/// A vocabulary term by the interned ids of its words.
enum Term {
    Word(u32),
    Pair(u32, u32),
}

fn pair(a: u32, b: u32) -> u64 {
    (a as u64) << 32 | b as u64
}

impl TfIdf {
    /// Learns the vocabulary and idf of `texts` and returns their rows. `source` names the
    /// training split in errors.
    pub fn fit(texts: &[&str], source: &str) -> Result<(TfIdf, SparseRows)> {
        // Words interned once; each text kept as its word ids for the transform below.
        let mut ids: AHashMap<String, u32> = AHashMap::new();
        let mut word_df: Vec<u32> = Vec::new();
        let mut pair_df: AHashMap<u64, u32> = AHashMap::new();
        let mut docs: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        let mut seen: Vec<u32> = Vec::new();
        let mut seen_pairs: Vec<u64> = Vec::new();
        for text in texts {
            let lower = text.to_lowercase();
            let doc: Vec<u32> = token_pattern()
                .find_iter(&lower)
                .map(|m| {
                    if let Some(&id) = ids.get(m.as_str()) {
                        return id;
                    }
                    let id = word_df.len() as u32;
                    ids.insert(m.as_str().to_string(), id);
                    word_df.push(0);
                    id
                })
                .collect();
            seen.clear();
            seen.extend_from_slice(&doc);
            seen.sort_unstable();
            seen.dedup();
            for &w in &seen {
                word_df[w as usize] += 1;
            }
            seen_pairs.clear();
            seen_pairs.extend(doc.windows(2).map(|w| pair(w[0], w[1])));
            seen_pairs.sort_unstable();
            seen_pairs.dedup();
            for &p in &seen_pairs {
                *pair_df.entry(p).or_insert(0) += 1;
            }
            docs.push(doc);
        }
        if ids.is_empty() {
            return Err(Error::invalid(
                source,
                None,
                "no training text holds a word of two or more letters, digits or underscores (sklearn's token pattern), so the TF-IDF vocabulary is empty",
            ));
        }

        let mut words: Vec<&str> = vec![""; word_df.len()];
        for (w, &id) in &ids {
            words[id as usize] = w;
        }
        // Every term min_df keeps, with its df and words, sorted like sklearn's vocabulary.
        let mut kept: Vec<(String, u32, Term)> = Vec::new();
        for (id, &df) in word_df.iter().enumerate() {
            if df >= MIN_DF {
                kept.push((words[id].to_string(), df, Term::Word(id as u32)));
            }
        }
        for (&p, &df) in &pair_df {
            if df >= MIN_DF {
                let (a, b) = ((p >> 32) as u32, p as u32);
                kept.push((format!("{} {}", words[a as usize], words[b as usize]), df, Term::Pair(a, b)));
            }
        }
        if kept.is_empty() {
            return Err(Error::invalid(
                source,
                None,
                format!(
                    "no term appears in {MIN_DF} or more training texts (min_df {MIN_DF}), so the TF-IDF vocabulary is empty; the baseline needs training texts that share words"
                ),
            ));
        }
        // Rust's `str` order is code-point order, as Python's.
        kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        let mut feature_of_word: Vec<Option<u32>> = vec![None; word_df.len()];
        for (f, (_, _, term)) in kept.iter().enumerate() {
            if let Term::Word(id) = term {
                feature_of_word[*id as usize] = Some(f as u32);
            }
        }
        let n = texts.len() as f64;
        let mut tfidf = TfIdf {
            terms: Vec::with_capacity(kept.len()),
            idf: Vec::with_capacity(kept.len()),
            unigrams: AHashMap::new(),
            bigrams: AHashMap::new(),
        };
        for (f, (text, df, term)) in kept.into_iter().enumerate() {
            // numpy: log((n + 1) / (df + 1)) + 1.
            tfidf.idf.push(((n + 1.0) / (df as f64 + 1.0)).ln() + 1.0);
            match term {
                Term::Word(_) => {
                    tfidf.unigrams.insert(text.clone(), f as u32);
                }
                // Both words of a kept bigram are kept: each occurs in every text the bigram does.
                Term::Pair(a, b) => {
                    if let (Some(fa), Some(fb)) = (feature_of_word[a as usize], feature_of_word[b as usize]) {
                        tfidf.bigrams.insert(pair(fa, fb), f as u32);
                    }
                }
            }
            tfidf.terms.push(text);
        }
        let mut rows = RowBuilder::new(tfidf.terms.len(), texts.len());
        for doc in &docs {
            let features: Vec<Option<u32>> = doc.iter().map(|&w| feature_of_word[w as usize]).collect();
            rows.push(&tfidf, &features);
        }
        Ok((tfidf, rows.finish()))
    }

    /// The rows of `texts` over the learnt vocabulary (terms outside it are ignored; a text
    /// with none of them is a zero row).
    pub fn transform(&self, texts: &[&str]) -> SparseRows {
        let mut rows = RowBuilder::new(self.terms.len(), texts.len());
        for text in texts {
            let lower = text.to_lowercase();
            let features: Vec<Option<u32>> =
                token_pattern().find_iter(&lower).map(|m| self.unigrams.get(m.as_str()).copied()).collect();
            rows.push(self, &features);
        }
        rows.finish()
    }

    /// A vectorizer from its vocabulary ([`TfIdf::terms`]: sorted; a bigram is its two words
    /// with a space) and idf, as [`super::Baseline::to_json`] saves them; `source` names them in
    /// errors.
    pub fn from_terms(terms: Vec<String>, idf: Vec<f64>, source: &str) -> Result<TfIdf> {
        let bad = |m: String| Err(Error::invalid(source, None, m));
        if terms.len() != idf.len() || terms.is_empty() {
            return bad(format!("{} terms but {} idf values", terms.len(), idf.len()));
        }
        if terms.windows(2).any(|w| w[0] >= w[1]) {
            return bad("the vocabulary is not sorted and unique".into());
        }
        let mut unigrams = AHashMap::new();
        for (f, t) in terms.iter().enumerate().filter(|(_, t)| !t.contains(' ')) {
            unigrams.insert(t.clone(), f as u32);
        }
        let mut bigrams = AHashMap::new();
        for (f, t) in terms.iter().enumerate() {
            if let Some((a, b)) = t.split_once(' ') {
                match (unigrams.get(a), unigrams.get(b)) {
                    (Some(&fa), Some(&fb)) => {
                        bigrams.insert(pair(fa, fb), f as u32);
                    }
                    _ => return bad(format!("bigram '{t}' without both its words in the vocabulary")),
                }
            }
        }
        Ok(TfIdf { terms, idf, unigrams, bigrams })
    }

    /// The vocabulary in feature order (sorted).
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The idf of each feature.
    pub fn idf(&self) -> &[f64] {
        &self.idf
    }

    /// A term's idf, if it is in the vocabulary.
    pub fn idf_of(&self, term: &str) -> Option<f64> {
        self.terms.binary_search_by(|t| t.as_str().cmp(term)).ok().map(|i| self.idf[i])
    }
}

/// Builds CSR rows from each text's word features.
struct RowBuilder {
    rows: SparseRows,
    terms: Vec<u32>,
}

impl RowBuilder {
    fn new(columns: usize, rows: usize) -> RowBuilder {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        RowBuilder { rows: SparseRows { offsets, columns, ..SparseRows::default() }, terms: Vec::new() }
    }

    /// One text, as the feature of each of its words (`None`: not a kept unigram, so no kept
    /// bigram holds it either).
    fn push(&mut self, tfidf: &TfIdf, words: &[Option<u32>]) {
        self.terms.clear();
        self.terms.extend(words.iter().flatten());
        for w in words.windows(2) {
            if let (Some(a), Some(b)) = (w[0], w[1]) {
                if let Some(&f) = tfidf.bigrams.get(&pair(a, b)) {
                    self.terms.push(f);
                }
            }
        }
        self.terms.sort_unstable();
        let start = self.rows.indices.len();
        let mut i = 0;
        while i < self.terms.len() {
            let f = self.terms[i];
            let run = self.terms[i..].iter().take_while(|&&t| t == f).count();
            // Sublinear tf (sklearn: log(tf) + 1), times idf.
            self.rows.indices.push(f);
            self.rows.values.push(((run as f64).ln() + 1.0) * tfidf.idf[f as usize]);
            i += run;
        }
        let values = &mut self.rows.values[start..];
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            values.iter_mut().for_each(|v| *v /= norm);
        }
        self.rows.offsets.push(self.rows.indices.len());
    }

    fn finish(self) -> SparseRows {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokens(s)
    }

    #[test]
    fn tokens_follow_pythons_word_pattern() {
        // Single characters dropped; underscores and digits are word characters; lowercased.
        assert_eq!(toks("I am a Big_Cat, 42 x 7!"), ["am", "big_cat", "42"]);
        // Unicode letters; punctuation and spaces split.
        assert_eq!(toks("Café naïve—Straße 東京 ok"), ["café", "naïve", "straße", "東京", "ok"]);
        // A combining mark is no word character in Python: "e\u{301}" splits after the e.
        assert_eq!(toks("cafe\u{301}s xy"), ["cafe", "xy"]);
        // Numbers other than digits count (Python's isnumeric): ² and ½.
        assert_eq!(toks("x² ½½"), ["x²", "½½"]);
        // Lowercasing first: İ becomes i + a combining dot, which splits the word.
        assert_eq!(toks("İstanbul"), ["stanbul"]);
        assert!(toks("a b c ! ?").is_empty());
        assert!(toks("").is_empty());
    }

    #[test]
    fn ngrams_are_unigrams_then_bigrams() {
        let t = toks("the cat sat");
        assert_eq!(ngrams(&t), ["the", "cat", "sat", "the cat", "cat sat"]);
        assert_eq!(ngrams(&toks("one")), ["one"]);
        assert!(ngrams(&[]).is_empty());
    }

    #[test]
    fn vocabulary_sorted_min_df_and_idf() {
        let texts = ["the cat sat", "the cat ran", "a dog ran", "dog dog"];
        let (v, x) = TfIdf::fit(&texts, "t").unwrap();
        // df ≥ 2: cat 2, dog 2, ran 2, the 2, "the cat" 2; sat, "cat sat", ... once.
        assert_eq!(v.terms(), ["cat", "dog", "ran", "the", "the cat"]);
        let idf = ((5.0f64) / 3.0).ln() + 1.0;
        assert!(v.idf().iter().all(|&i| (i - idf).abs() < 1e-15));
        assert_eq!(v.idf_of("the cat"), Some(v.idf()[4]));
        assert_eq!(v.idf_of("sat"), None);
        // "dog dog": tf 2 → 1 + ln 2, one term, so unit norm leaves 1.
        assert_eq!(x.row(3), (&[1u32][..], &[1.0][..]));
        // "the cat sat": cat, the, "the cat" with equal weight.
        let (i, vals) = x.row(0);
        assert_eq!(i, [0, 3, 4]);
        assert!(vals.iter().all(|&w| (w - 1.0 / 3f64.sqrt()).abs() < 1e-15));
        let y = v.transform(&["unknown words", "cat cat the"]);
        assert_eq!(y.row(0).0.len(), 0);
        // "cat cat the": cat tf 2, the tf 1, no "the cat".
        let (i, vals) = y.row(1);
        assert_eq!(i, [0, 3]);
        let (a, b) = (1.0 + 2f64.ln(), 1.0);
        let n = (a * a + b * b).sqrt();
        assert!((vals[0] - a / n).abs() < 1e-15 && (vals[1] - b / n).abs() < 1e-15);
    }

    #[test]
    fn empty_vocabularies_are_errors() {
        let e = TfIdf::fit(&["alpha beta", "gamma delta"], "train.csv").unwrap_err().to_string();
        assert!(e.contains("train.csv") && e.contains("2 or more training texts (min_df 2)"), "{e}");
        let e = TfIdf::fit(&["a b c", "! ?"], "train.csv").unwrap_err().to_string();
        assert!(e.contains("token pattern"), "{e}");
        assert!(TfIdf::fit(&[], "train.csv").is_err());
    }
}
