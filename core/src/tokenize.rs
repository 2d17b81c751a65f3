//! Text → token ids with the `tokenizers` crate, Savant in charge of padding and truncation.
//!
//! A `tokenizer.json` often has padding and truncation baked in (all-MiniLM pads every text to
//! 128): both are switched off on load, then set per call — truncation to `max_len`, counted, and
//! padding to the longest text of each batch, as `tokenizer(texts, padding=True, truncation=True,
//! max_length=...)` does in Python.

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{EncodeInput, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::long::{DocWindows, LongMode, LongText};
use crate::{Error, Result};

/// A tokenizer plus the padding id; cheap to share across batches.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pad_id: u32,
    max_len: Option<usize>,
}

/// One batch of token ids, padded to its longest text, row-major `[batch, seq_len]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenBatch {
    pub batch_size: usize,
    pub seq_len: usize,
    pub input_ids: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
    /// Real (unpadded) length of each text, special tokens included.
    pub lengths: Vec<usize>,
    /// How many texts of this batch lost tokens to `max_len`.
    pub truncated: usize,
}

/// `Tokenizer::from_bytes`, with a panic inside the tokenizers library (its components `expect`
/// well-formed parts) turned into an error where panics unwind (natively; wasm aborts).
fn load_tokenizer(bytes: &[u8]) -> std::result::Result<Tokenizer, String> {
    match std::panic::catch_unwind(|| Tokenizer::from_bytes(bytes)) {
        Ok(loaded) => loaded.map_err(|e| e.to_string()),
        Err(panic) => Err(format!(
            "the tokenizers library failed on it ({})",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or(panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic")
        )),
    }
}

impl TextTokenizer {
    /// Loads a `tokenizer.json`; `source` names it in errors. `pad_id` is the model's
    /// `pad_token_id`, used when the file names no `[PAD]` token.
    pub fn from_tokenizer_json(bytes: &[u8], source: &str, pad_id: u32) -> Result<TextTokenizer> {
        // HF tokenizers panics (an `expect`) on some malformed JSON inside a component; JSON
        // that parses never reaches it (found by fuzzing: fuzz/regressions/tokenizer/).
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| Error::invalid(source, None, format!("not a tokenizers file: not valid JSON: {e}")))?;
        let mut inner =
            load_tokenizer(bytes).map_err(|e| Error::invalid(source, None, format!("not a tokenizers file: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::invalid(source, None, format!("cannot switch truncation off: {e}")))?;
        // BERT reads [CLS] first and [SEP] last: the post-processor must add them, as tokens of
        // the vocabulary (a file whose special tokens were dropped would add ids of nothing).
        let framing =
            inner.encode("", true).map_err(|e| Error::invalid(source, None, format!("cannot encode with it: {e}")))?;
        if framing.get_ids().is_empty() {
            return Err(Error::invalid(
                source,
                None,
                "its post-processor adds no [CLS] / [SEP] tokens, which BERT needs",
            ));
        }
        if let Some(id) = framing.get_ids().iter().find(|&&id| inner.id_to_token(id).is_none()) {
            return Err(Error::invalid(
                source,
                None,
                format!("its post-processor adds token id {id}, which its vocabulary does not have (a special token such as [CLS] or [SEP] is missing)"),
            ));
        }
        let pad_id = inner.token_to_id("[PAD]").unwrap_or(pad_id);
        Ok(TextTokenizer { inner, pad_id, max_len: None })
    }

    /// Builds BERT's WordPiece tokenizer from a `vocab.txt` (one token per line, id = line
    /// number), like `BertTokenizerFast(vocab_file, do_lower_case=lowercase)`.
    pub fn from_vocab_txt(bytes: &[u8], source: &str, lowercase: bool) -> Result<TextTokenizer> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| Error::invalid(source, None, format!("not UTF-8 text: {e}")))?;
        let mut vocab = ahash::AHashMap::new();
        for (id, token) in text.lines().enumerate() {
            let token = token.trim_end_matches('\r');
            // Later duplicates lose, as in HF's load_vocab (a dict built in file order keeps the last id).
            vocab.insert(token.to_string(), id as u32);
        }
        let id = |token: &str| {
            vocab.get(token).copied().ok_or_else(|| {
                Error::invalid(source, None, format!("the vocabulary has no '{token}' token, which BERT needs"))
            })
        };
        let (cls, sep, pad) = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?);
        id("[UNK]")?;
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token("[UNK]".into())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| Error::invalid(source, None, format!("cannot build WordPiece: {e}")))?;
        let mut inner = Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
            .map_err(|e| Error::invalid(source, None, e.to_string()))?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
        inner.with_decoder(Some(WordPieceDecoder::default()));
        Ok(TextTokenizer { inner, pad_id: pad, max_len: None })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token of the vocabulary (e.g. `[MASK]`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token of an id (`##ing` for a WordPiece continuation).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Ids of the special tokens ([CLS], [SEP], [PAD], [MASK], [UNK], ...).
    pub fn special_ids(&self) -> Vec<u32> {
        self.inner.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(&id, _)| id).collect()
    }

    /// Truncates every later encoding to `max_len` tokens, special tokens included (`None`: never).
    pub fn set_max_len(&mut self, max_len: Option<usize>) -> Result<()> {
        let params = match max_len {
            Some(n) if n < 2 => {
                return Err(Error::Option(format!("max length {n} leaves no room for [CLS] and [SEP]; use 2 or more")))
            }
            Some(n) => Some(TruncationParams {
                max_length: n,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }),
            None => None,
        };
        self.inner.with_truncation(params).map_err(|e| Error::Option(format!("max length {max_len:?}: {e}")))?;
        self.max_len = max_len;
        Ok(())
    }

    pub fn max_len(&self) -> Option<usize> {
        self.max_len
    }

    /// Token ids of one text, special tokens included.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::invalid("tokenizer", None, e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The words of `text` as this tokenizer's pre-tokenizer splits them, each with its pieces'
    /// ids (special tokens left out, nothing truncated when the max length is off).
    pub fn word_pieces<'t>(&self, text: &'t str) -> Result<Vec<(&'t str, Vec<u32>)>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::invalid("tokenizer", None, e.to_string()))?;
        let mut words: Vec<(usize, usize, Vec<u32>)> = Vec::new();
        let mut last: Option<u32> = None;
        for ((&id, word), &(start, end)) in enc.get_ids().iter().zip(enc.get_word_ids()).zip(enc.get_offsets()) {
            match (word, words.last_mut()) {
                (Some(w), Some(current)) if last == Some(*w) => {
                    current.1 = current.1.max(end);
                    current.2.push(id);
                }
                _ => words.push((start, end, vec![id])),
            }
            last = *word;
        }
        Ok(words.into_iter().map(|(start, end, ids)| (&text[start..end], ids)).collect())
    }

    /// Byte ranges in `text` of its tokens, special tokens left out (nothing truncated when the
    /// max length is off).
    pub fn token_spans(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::invalid("tokenizer", None, e.to_string()))?;
        Ok(enc.get_offsets().to_vec())
    }

    /// Encodes each text on its own (truncated to the max length); [`TokenBatch::from_encoded`]
    /// then pads any grouping of them, e.g. texts of similar length together.
    pub fn encode_each(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        self.encode_inputs(texts.iter().map(|&t| EncodeInput::from(t)).collect())
    }

    /// Encodes text pairs (`[CLS] a [SEP] b [SEP]`, token types 0 then 1) as one padded batch;
    /// the max length cuts the longer text first, as HF's `longest_first`.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<TokenBatch> {
        let encoded = self.encode_inputs(pairs.iter().map(|&(a, b)| EncodeInput::from((a, b))).collect())?;
        Ok(TokenBatch::from_encoded(&encoded.iter().collect::<Vec<_>>(), self.pad_id))
    }

    fn encode_inputs(&self, inputs: Vec<EncodeInput<'_>>) -> Result<Vec<Encoded>> {
        let encodings =
            self.inner.encode_batch(inputs, true).map_err(|e| Error::invalid("tokenizer", None, e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| Encoded {
                ids: e.get_ids().to_vec(),
                type_ids: e.get_type_ids().to_vec(),
                truncated: !e.get_overflowing().is_empty(),
            })
            .collect())
    }

    /// Each text as `long` reads it within the max length ([`TextTokenizer::set_max_len`]):
    /// one window per text, cut or head + tail, or overlapping windows over the whole text cut
    /// by the tokenizer's own overflow (the windows of HF's `return_overflowing_tokens=True,
    /// stride=...`). Character spans as HF's `offset_mapping` counts them.
    pub fn encode_docs(&self, texts: &[&str], long: &LongText) -> Result<DocWindows> {
        let max_len =
            self.max_len.ok_or_else(|| Error::Option("reading long texts needs a max length (max_len)".into()))?;
        let framing = self.ids("")?;
        let room = max_len.saturating_sub(framing.len());
        let fail = |e: tokenizers::Error| Error::invalid("tokenizer", None, e.to_string());
        let inputs = || texts.iter().map(|&t| EncodeInput::from(t)).collect::<Vec<_>>();
        let mut out = DocWindows { docs: texts.len(), ..DocWindows::default() };
        let span = |offsets: &[(usize, usize)], special: &[u32]| {
            let real: Vec<&(usize, usize)> =
                offsets.iter().zip(special).filter(|(_, s)| **s == 0).map(|(o, _)| o).collect();
            match (real.first(), real.last()) {
                (Some(a), Some(b)) => (a.0, b.1),
                _ => (0, 0),
            }
        };
        match long.mode {
            LongMode::Truncate => {
                let encodings = self.inner.encode_batch_char_offsets(inputs(), true).map_err(fail)?;
                for (d, e) in encodings.into_iter().enumerate() {
                    let cut = !e.get_overflowing().is_empty();
                    out.truncated += cut as usize;
                    out.spans.push(span(e.get_offsets(), e.get_special_tokens_mask()));
                    out.windows.push(Encoded {
                        ids: e.get_ids().to_vec(),
                        type_ids: e.get_type_ids().to_vec(),
                        truncated: cut,
                    });
                    out.doc.push(d);
                }
            }
            LongMode::Windows => {
                // The whole text, then the tokenizer's own overflow: `Encoding::truncate` with the
                // stride, each part framed by the post-processor — what HF's
                // `return_overflowing_tokens` does. (Not the tokenizer's truncation setting: from
                // tokenizers 0.23 it stops tokenising at the max length, stride or not, and the
                // overflow loses the rest of the text.)
                let stride = long.stride(max_len, framing.len())?;
                let mut whole = self.inner.clone();
                whole.with_truncation(None).map_err(fail)?;
                // With max_windows, a text is tokenised only as far as its windows kept need
                // (and one token more, to know it was cut): a prefix ending at whitespace, whose
                // tokens are the whole text's first ones, widened until it holds enough. Memory
                // and time then follow the windows kept, not the text's size.
                let need = long.max_windows.map(|n| room + (n - 1) * (room - stride) + 1);
                let prefixes: Vec<&str> = texts.iter().map(|t| need.map_or(*t, |n| prefix(t, n * 16))).collect();
                let mut encodings = whole
                    .encode_batch_char_offsets(prefixes.iter().map(|&t| EncodeInput::from(t)).collect(), false)
                    .map_err(fail)?;
                if let Some(need) = need {
                    for ((e, text), mut part) in encodings.iter_mut().zip(texts).zip(prefixes) {
                        while e.len() < need && part.len() < text.len() {
                            part = prefix(text, part.len() * 4);
                            *e = whole.encode_char_offsets(part, false).map_err(fail)?;
                        }
                    }
                }
                for (d, mut e) in encodings.into_iter().enumerate() {
                    e.truncate(room, stride, TruncationDirection::Right);
                    let rest = e.take_overflowing();
                    let parts = rest.len() + 1;
                    let keep = long.max_windows.unwrap_or(usize::MAX).min(parts);
                    out.truncated += (keep < parts) as usize;
                    for part in std::iter::once(e).chain(rest).take(keep) {
                        let part = whole.post_process(part, None, true).map_err(fail)?;
                        out.spans.push(span(part.get_offsets(), part.get_special_tokens_mask()));
                        out.windows.push(Encoded {
                            ids: part.get_ids().to_vec(),
                            type_ids: part.get_type_ids().to_vec(),
                            truncated: keep < parts,
                        });
                        out.doc.push(d);
                    }
                }
            }
            LongMode::HeadTail => {
                let mut inner = self.inner.clone();
                inner.with_truncation(None).map_err(fail)?;
                let head = room / 4;
                let encodings = inner.encode_batch_char_offsets(inputs(), false).map_err(fail)?;
                for (d, e) in encodings.into_iter().enumerate() {
                    let (ids, offsets) = (e.get_ids(), e.get_offsets());
                    let cut = ids.len() > room;
                    let kept: Vec<usize> = if cut {
                        (0..head).chain(ids.len() - (room - head)..ids.len()).collect()
                    } else {
                        (0..ids.len()).collect()
                    };
                    let mut window: Vec<u32> = framing[..1].to_vec();
                    window.extend(kept.iter().map(|&i| ids[i]));
                    window.extend(&framing[1..]);
                    out.spans.push(match (kept.first(), kept.last()) {
                        (Some(&a), Some(&b)) => (offsets[a].0, offsets[b].1),
                        _ => (0, 0),
                    });
                    out.truncated += cut as usize;
                    out.windows.push(Encoded { type_ids: vec![0; window.len()], ids: window, truncated: cut });
                    out.doc.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Encodes `texts` as one batch, padded to the longest.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<TokenBatch> {
        let encoded = self.encode_each(texts)?;
        Ok(TokenBatch::from_encoded(&encoded.iter().collect::<Vec<_>>(), self.pad_id))
    }
}

/// One text's token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Tokens were cut to the max length.
    pub truncated: bool,
}

impl TokenBatch {
    /// Pads `items` to the longest of them with `pad_id`.
    pub fn from_encoded(items: &[&Encoded], pad_id: u32) -> TokenBatch {
        let seq_len = items.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let n = items.len();
        let mut batch = TokenBatch {
            batch_size: n,
            seq_len,
            input_ids: vec![pad_id as i64; n * seq_len],
            token_type_ids: vec![0; n * seq_len],
            attention_mask: vec![0; n * seq_len],
            lengths: Vec::with_capacity(n),
            truncated: 0,
        };
        for (row, enc) in items.iter().enumerate() {
            let start = row * seq_len;
            for (i, (&id, &type_id)) in enc.ids.iter().zip(&enc.type_ids).enumerate() {
                batch.input_ids[start + i] = id as i64;
                batch.token_type_ids[start + i] = type_id as i64;
                batch.attention_mask[start + i] = 1;
            }
            batch.lengths.push(enc.ids.len());
            batch.truncated += enc.truncated as usize;
        }
        batch
    }
}

/// The start of `text` up to the first whitespace at or after byte `bytes` (all of it when there
/// is none): cut between words, its tokens are the first tokens of the whole text.
fn prefix(text: &str, bytes: usize) -> &str {
    if bytes >= text.len() {
        return text;
    }
    let mut at = bytes;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    match text[at..].find(char::is_whitespace) {
        Some(i) => &text[..at + i],
        None => text,
    }
}
