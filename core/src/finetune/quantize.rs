//! `savant quantize` and the page's "save int8": a model folder whose encoder projections are
//! int8 ([`crate::model::int8`]), written beside — never over — the f32 folder it came from.
//! It loads like any folder (`predict`, `embed`, the page) and runs the int8 kernel on the CPU;
//! `config.json` says so in `quantization_config` (`quant_method: "savant-int8"`).

use crate::model::{encoder_to_safetensors, BertClassifier, BertConfig, BertModel, ModelFiles, SENTENCE_CONFIG};
use crate::train::setup::{result_files, TOKENIZER_FILES};
use crate::{Error, Result};

use super::Strategy;

/// What is quantised: a fine-tuned classifier (with its head, kept f32) or a sentence encoder.
pub enum Model {
    Classifier(BertClassifier),
    Encoder(BertModel),
}

/// sentence-transformers' files an encoder folder carries besides the weights and config.
const ENCODER_FILES: &[&str] = &["modules.json", "1_Pooling/config.json", "config_sentence_transformers.json"];

/// The int8 folder of `model` (loaded from `base`, whose `config` it has: a fine-tune's labels
/// included), as `(relative name, bytes)`. `max_len`: the length it was trained at, when known.
/// Refuses a model that is already int8; needs the model on the CPU backend.
pub async fn int8_folder<F: ModelFiles>(
    model: Model,
    config: &BertConfig,
    base: &F,
    max_len: Option<usize>,
) -> Result<Vec<(String, Vec<u8>)>> {
    if config.int8 {
        return Err(Error::invalid(
            &format!("{}/config.json", base.name()),
            None,
            "the model is already int8 (its quantization_config says savant-int8): quantise the f32 model it came from",
        ));
    }
    let int8_config = config.clone().with_int8(true);
    let cpu_only = |e: String| Error::Option(format!("quantise: {e}"));
    match model {
        Model::Classifier(m) => {
            let q = m.quantized().map_err(cpu_only)?;
            let files = result_files(&q, &Strategy::Full, &int8_config, base, max_len).await?;
            Ok(files.into_iter().map(|(n, b)| (n.strip_prefix("model/").unwrap_or(&n).to_string(), b)).collect())
        }
        Model::Encoder(m) => {
            let q = m.quantized().map_err(cpu_only)?;
            let mut files = vec![
                ("model.safetensors".to_string(), encoder_to_safetensors(&q).await?),
                ("config.json".to_string(), int8_config.to_json("BertModel")),
            ];
            for name in TOKENIZER_FILES.iter().chain(ENCODER_FILES) {
                if let Some(bytes) = base.read(name)? {
                    files.push((name.to_string(), bytes));
                }
            }
            match max_len {
                Some(n) => files.push((SENTENCE_CONFIG.to_string(), crate::model::sentence_config_json(n))),
                None => {
                    if let Some(bytes) = base.read(SENTENCE_CONFIG)? {
                        files.push((SENTENCE_CONFIG.to_string(), bytes));
                    }
                }
            }
            Ok(files)
        }
    }
}
