//! Which pretrained encoder fits a domain: how each candidate's tokenizer cuts the user's own
//! texts. Words split into many pieces, `[UNK]`s and truncated texts are what a domain's
//! vocabulary costs a model; the candidate with the fewest fits best.

use std::collections::HashMap;

use crate::tokenize::TextTokenizer;
use crate::Result;

/// How a tokenizer cuts a sample of texts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenizerFit {
    pub texts: usize,
    pub words: usize,
    /// Share of words cut into 3 pieces or more.
    pub fragmented_share: f64,
    /// Share of tokens that are `[UNK]`.
    pub unk_share: f64,
    pub mean_pieces_per_word: f64,
    /// Share of texts longer than `max_len` tokens, `[CLS]` and `[SEP]` counted.
    pub truncated_share: f64,
    pub max_len: usize,
    /// The most fragmented of the frequent words (seen twice or more; most pieces first, then
    /// most frequent), at most 20: word, pieces, occurrences.
    pub most_fragmented: Vec<(String, usize, usize)>,
}

impl TokenizerFit {
    /// `tokenizer` on `texts` (its truncation is turned off here).
    pub fn measure(tokenizer: &TextTokenizer, texts: &[&str], max_len: usize) -> Result<TokenizerFit> {
        let mut tokenizer = tokenizer.clone();
        tokenizer.set_max_len(None)?;
        let unk = tokenizer.token_id("[UNK]");
        let (mut words, mut pieces, mut fragmented, mut tokens, mut unks, mut truncated) = (0usize, 0, 0, 0, 0, 0);
        let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
        for text in texts {
            let cut = tokenizer.word_pieces(text)?;
            let count: usize = cut.iter().map(|(_, ids)| ids.len()).sum();
            if count + 2 > max_len {
                truncated += 1;
            }
            for (word, ids) in cut {
                words += 1;
                pieces += ids.len();
                tokens += ids.len();
                unks += ids.iter().filter(|&&id| Some(id) == unk).count();
                if ids.len() >= 3 {
                    fragmented += 1;
                }
                let entry = seen.entry(word.to_lowercase()).or_insert((ids.len(), 0));
                entry.1 += 1;
            }
        }
        let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let mut frequent: Vec<(String, usize, usize)> =
            seen.into_iter().filter(|(_, (p, n))| *n >= 2 && *p >= 2).map(|(w, (p, n))| (w, p, n)).collect();
        frequent.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        frequent.truncate(20);
        Ok(TokenizerFit {
            texts: texts.len(),
            words,
            fragmented_share: share(fragmented, words),
            unk_share: share(unks, tokens),
            mean_pieces_per_word: share(pieces, words),
            truncated_share: share(truncated, texts.len()),
            max_len,
            most_fragmented: frequent,
        })
    }
}
