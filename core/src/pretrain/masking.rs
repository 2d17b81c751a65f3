//! Which tokens an MLM step predicts, as transformers' collators choose them:
//! - token level (`DataCollatorForLanguageModeling`): every non-special token with probability
//!   `mlm_prob`;
//! - whole word (`DataCollatorForWholeWordMask`): whole words (a token and its `##` pieces) in
//!   random order until `round(len · mlm_prob)` tokens of the text are chosen.
//!
//! Then BERT's 80/10/10: a chosen token becomes `[MASK]` (80%), a random vocabulary id (10%) or
//! stays (10%); the loss is taken at the chosen tokens only. Draws come from a seeded
//! [`SplitMix64`], so a seed gives the same masks everywhere.

use crate::data::rng::SplitMix64;
use crate::tokenize::{Encoded, TextTokenizer, TokenBatch};
use crate::{Error, Result};

/// HF's `max_predictions` for whole-word masking.
const MAX_PREDICTIONS: usize = 512;

/// A batch with some tokens replaced, and what the model must predict there.
#[derive(Debug, Clone)]
pub struct MaskedBatch {
    /// The inputs the model sees (chosen tokens replaced).
    pub tokens: TokenBatch,
    /// Flat indices (`row · seq_len + column`) of the chosen tokens, in row-major order.
    pub positions: Vec<usize>,
    /// The original token id at each position.
    pub targets: Vec<usize>,
}

/// The masking rule for one tokenizer.
#[derive(Debug, Clone)]
pub struct Masking {
    /// Share of tokens to predict (HF `mlm_probability`, 0.15).
    pub mlm_prob: f64,
    /// Choose whole words instead of single tokens.
    pub whole_word: bool,
    mask_id: u32,
    pad_id: u32,
    /// Ids a random replacement is drawn below (`len(tokenizer)`).
    vocab_size: u64,
    /// By id: never chosen ([CLS], [SEP], [PAD], ...: HF's `special_tokens_mask`).
    special: Vec<bool>,
    /// By id: a piece that continues a word (`##ing`).
    continuation: Vec<bool>,
}

impl Masking {
    pub fn new(tokenizer: &TextTokenizer, mlm_prob: f64, whole_word: bool) -> Result<Masking> {
        if !(mlm_prob > 0.0 && mlm_prob < 1.0) {
            return Err(Error::invalid("mlm_prob", None, format!("{mlm_prob} is not a probability in (0, 1)")));
        }
        let Some(mask_id) = tokenizer.token_id("[MASK]") else {
            return Err(Error::invalid(
                "tokenizer.json",
                None,
                "the vocabulary has no [MASK] token, which masked-language-model training needs",
            ));
        };
        let vocab_size = tokenizer.vocab_size();
        let mut special = vec![false; vocab_size];
        // Added special tokens, and BERT's by name for vocab.txt-built tokenizers.
        let named = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().filter_map(|t| tokenizer.token_id(t));
        for id in tokenizer.special_ids().into_iter().chain(named) {
            if let Some(s) = special.get_mut(id as usize) {
                *s = true;
            }
        }
        let continuation =
            (0..vocab_size as u32).map(|id| tokenizer.id_to_token(id).is_some_and(|t| t.starts_with("##"))).collect();
        Ok(Masking {
            mlm_prob,
            whole_word,
            mask_id,
            pad_id: tokenizer.pad_id(),
            vocab_size: vocab_size as u64,
            special,
            continuation,
        })
    }

    fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false) || id == self.pad_id
    }

    /// Whether `ids` has a token this masking may choose (one that is not special: a window of
    /// only [CLS], [SEP] and [UNK] has nothing to predict).
    pub fn maskable(&self, ids: &[u32]) -> bool {
        ids.iter().any(|&id| !self.is_special(id))
    }

    /// Pads `texts` into one batch and masks it. At least one token of the batch is chosen (HF
    /// would return a NaN loss for a batch with none), unless no text has a non-special token.
    pub fn mask(&self, texts: &[&Encoded], rng: &mut SplitMix64) -> MaskedBatch {
        let mut tokens = TokenBatch::from_encoded(texts, self.pad_id);
        let seq = tokens.seq_len;
        let mut chosen: Vec<usize> = Vec::new();
        for (row, text) in texts.iter().enumerate() {
            let picked =
                if self.whole_word { self.whole_words(&text.ids, rng) } else { self.single_tokens(&text.ids, rng) };
            chosen.extend(picked.into_iter().map(|column| row * seq + column));
        }
        if chosen.is_empty() {
            let eligible: Vec<usize> = texts
                .iter()
                .enumerate()
                .flat_map(|(row, t)| {
                    t.ids.iter().enumerate().filter(|(_, &id)| !self.is_special(id)).map(move |(c, _)| row * seq + c)
                })
                .collect();
            if !eligible.is_empty() {
                chosen.push(eligible[rng.below(eligible.len() as u64) as usize]);
            }
        }
        chosen.sort_unstable();
        let mut targets = Vec::with_capacity(chosen.len());
        for &p in &chosen {
            let original = tokens.input_ids[p];
            targets.push(original as usize);
            if uniform(rng) < 0.8 {
                tokens.input_ids[p] = self.mask_id as i64;
            } else if uniform(rng) < 0.5 {
                tokens.input_ids[p] = rng.below(self.vocab_size) as i64;
            }
        }
        MaskedBatch { tokens, positions: chosen, targets }
    }

    fn single_tokens(&self, ids: &[u32], rng: &mut SplitMix64) -> Vec<usize> {
        // One draw per token, specials included, so the stream does not depend on which are special.
        ids.iter()
            .enumerate()
            .filter(|(_, &id)| uniform(rng) < self.mlm_prob && !self.is_special(id))
            .map(|(c, _)| c)
            .collect()
    }

    fn whole_words(&self, ids: &[u32], rng: &mut SplitMix64) -> Vec<usize> {
        let mut words: Vec<Vec<usize>> = Vec::new();
        for (c, &id) in ids.iter().enumerate() {
            if self.is_special(id) {
                continue;
            }
            let continues = self.continuation.get(id as usize).copied().unwrap_or(false);
            match words.last_mut() {
                Some(word) if continues && word.last() == Some(&(c - 1)) => word.push(c),
                _ => words.push(vec![c]),
            }
        }
        rng.shuffle(&mut words);
        // Python's round() rounds halves to even.
        let wanted = ((ids.len() as f64 * self.mlm_prob).round_ties_even() as usize).clamp(1, MAX_PREDICTIONS);
        let mut picked = Vec::new();
        for word in words {
            if picked.len() >= wanted {
                break;
            }
            if picked.len() + word.len() > wanted {
                continue;
            }
            picked.extend(word);
        }
        picked.sort_unstable();
        picked
    }
}

/// Uniform in [0, 1).
fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
