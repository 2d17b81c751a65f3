//! A Hugging Face model folder, wherever its files come from (disk natively, files the user
//! picked in the browser): `config.json`, `model.safetensors`, `tokenizer.json` or `vocab.txt`,
//! and sentence-transformers' `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`.

use std::io::{Read, Seek};

use serde_json::Value;

use super::config::{BertConfig, Pooling};
use super::hf::Checkpoint;
use crate::tokenize::TextTokenizer;
use crate::{Error, Result};

/// Access to the files of one model folder.
pub trait ModelFiles {
    type Weights: Read + Seek;
    /// What to call the folder in messages (its path).
    fn name(&self) -> String;
    /// A small file's bytes, `None` when the folder has no such file.
    fn read(&self, relative: &str) -> Result<Option<Vec<u8>>>;
    /// The weights file, opened for reading.
    fn weights(&self, relative: &str) -> Result<Option<Self::Weights>>;
}

/// sentence-transformers' `max_seq_length` (`sentence_bert_config.json`) of a folder: the length
/// a saved fine-tune was trained at, which `predict` and `embed` then read texts at.
pub fn max_seq_length<F: ModelFiles>(files: &F) -> Result<Option<usize>> {
    Ok(files
        .read(SENTENCE_CONFIG)?
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("max_seq_length").and_then(Value::as_u64))
        .map(|n| n as usize))
}

/// The file holding `max_seq_length`.
pub const SENTENCE_CONFIG: &str = "sentence_bert_config.json";

/// `sentence_bert_config.json` for a model read at `max_len` tokens (the keys
/// sentence-transformers' `Transformer` takes, nothing more: it passes them to its constructor).
pub fn sentence_config_json(max_len: usize) -> Vec<u8> {
    format!("{{\n  \"max_seq_length\": {max_len},\n  \"do_lower_case\": false\n}}\n").into_bytes()
}

/// Everything of a folder but the weights: what the model needs to run on text.
pub struct ModelFolder {
    pub config: BertConfig,
    pub tokenizer: TextTokenizer,
    /// sentence-transformers' pooling, or mean pooling when the folder does not say.
    pub pooling: Pooling,
    /// Whether the folder says how it pools (`1_Pooling/config.json`): a sentence encoder.
    pub pooling_declared: bool,
    /// Whether sentence-transformers would L2-normalise (a `Normalize` module in modules.json).
    pub normalize: bool,
    /// sentence-transformers' `max_seq_length`, when given.
    pub max_seq_length: Option<usize>,
}

impl ModelFolder {
    pub fn open<F: ModelFiles>(files: &F) -> Result<ModelFolder> {
        let dir = files.name();
        let path = |f: &str| format!("{dir}/{f}");
        let config_bytes = files.read("config.json")?.ok_or_else(|| {
            Error::invalid(&dir, None, "no config.json: expected a Hugging Face model folder (config.json, model.safetensors, tokenizer.json or vocab.txt)")
        })?;
        let config = BertConfig::from_json(&config_bytes, &path("config.json"))?;

        let tokenizer = if let Some(bytes) = files.read("tokenizer.json")? {
            TextTokenizer::from_tokenizer_json(&bytes, &path("tokenizer.json"), config.pad_token_id)?
        } else if let Some(bytes) = files.read("vocab.txt")? {
            let lowercase = match files.read("tokenizer_config.json")? {
                Some(b) => serde_json::from_slice::<Value>(&b)
                    .ok()
                    .and_then(|v| v.get("do_lower_case").and_then(Value::as_bool))
                    .unwrap_or(true),
                None => true,
            };
            TextTokenizer::from_vocab_txt(&bytes, &path("vocab.txt"), lowercase)?
        } else {
            return Err(Error::invalid(&dir, None, "no tokenizer.json or vocab.txt: the folder has no tokenizer"));
        };
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::invalid(
                &dir,
                None,
                format!(
                    "the tokenizer has {} tokens but config.json's vocab_size is {}: they belong to different models",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            ));
        }

        let modules: Vec<String> = match files.read("modules.json")? {
            Some(b) => serde_json::from_slice::<Value>(&b)
                .map_err(|e| Error::invalid(&path("modules.json"), None, format!("not valid JSON: {e}")))?
                .as_array()
                .map(|mods| {
                    mods.iter().filter_map(|m| m.get("type").and_then(Value::as_str).map(String::from)).collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let normalize = modules.iter().any(|t| t.ends_with(".Normalize"));
        let (pooling, pooling_declared) = match files.read("1_Pooling/config.json")? {
            Some(b) => (Pooling::from_json(&b, &path("1_Pooling/config.json"))?, true),
            None => (Pooling::Mean, false),
        };
        let max_seq_length = max_seq_length(files)?;
        Ok(ModelFolder { config, tokenizer, pooling, pooling_declared, normalize, max_seq_length })
    }

    /// The longest input the model takes: `max_position_embeddings`, or sentence-transformers'
    /// `max_seq_length` when lower.
    pub fn default_max_len(&self) -> usize {
        let positions = self.config.max_position_embeddings;
        self.max_seq_length.map_or(positions, |m| m.min(positions))
    }

    /// Opens `model.safetensors`.
    pub fn checkpoint<F: ModelFiles>(files: &F) -> Result<Checkpoint<F::Weights>> {
        let dir = files.name();
        let Some(reader) = files.weights("model.safetensors")? else {
            let hint = if files.weights("pytorch_model.bin")?.is_some() {
                " (the folder has pytorch_model.bin: convert it with `transformers` save_pretrained(..., safe_serialization=True))"
            } else {
                ""
            };
            return Err(Error::invalid(&dir, None, format!("no model.safetensors{hint}")));
        };
        Checkpoint::open(reader, &format!("{dir}/model.safetensors"))
    }
}
