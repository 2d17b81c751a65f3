//! `savant quantize` and the page's "save int8": a model folder whose encoder projections are
//! int8 ([`crate::model::int8`]), written beside — never over — the f32 folder it came from.
//! It loads like any folder (`predict`, `embed`, the page) and runs the int8 kernel on the CPU;
//! `config.json` says so in `quantization_config` (`quant_method: "savant-int8"`).

use burn::tensor::Device;

use crate::model::{
    encoder_to_safetensors, load_encoder, max_seq_length, BertClassifier, BertConfig, BertModel, ModelFiles,
    ModelFolder, SENTENCE_CONFIG,
};
use crate::train::setup::{result_files, TOKENIZER_FILES};
use crate::train::thresholds::Thresholds;
use crate::{Error, Result};

use super::peft::load_fine_tuned;
use super::Strategy;

/// What is quantised: a fine-tuned classifier (with its head, kept f32) or a sentence encoder.
pub enum Model {
    Classifier(BertClassifier),
    Encoder(BertModel),
}

/// sentence-transformers' files an encoder folder carries besides the weights and config.
const ENCODER_FILES: &[&str] = &["modules.json", "1_Pooling/config.json", "config_sentence_transformers.json"];

/// A model to quantise, as [`load`] reads it.
pub struct Source {
    pub model: Model,
    /// Its config (a fine-tune's labels included).
    pub config: BertConfig,
    /// The length it was trained at (the adapter's, else the folder's), when known.
    pub max_len: Option<usize>,
}

/// The f32 model of `base` (opened as `folder`) to quantise: a classifier — its own head, or the
/// base with `adapter` on it (merged when quantised) — or, without a head, a sentence encoder.
/// Refuses a folder that is already int8.
pub fn load<F: ModelFiles, A: ModelFiles>(
    base: &F,
    folder: &ModelFolder,
    adapter: Option<&A>,
    device: &Device,
) -> Result<Source> {
    if folder.config.int8 {
        return Err(Error::invalid(
            &format!("{}/config.json", base.name()),
            None,
            "the model is already int8 (its quantization_config says savant-int8): quantise the f32 model it came from",
        ));
    }
    let trained_at = adapter.map(max_seq_length).transpose()?.flatten();
    let max_len = trained_at.or(folder.max_seq_length);
    if adapter.is_some() || ModelFolder::checkpoint(base)?.has("classifier.weight") {
        let (m, config, _) = load_fine_tuned(base, &folder.config, adapter, device)?;
        return Ok(Source { model: Model::Classifier(m), config, max_len });
    }
    let (m, _) = load_encoder(&folder.config, &mut ModelFolder::checkpoint(base)?, device)?;
    Ok(Source { model: Model::Encoder(m), config: folder.config.clone(), max_len })
}

/// The int8 folder of `source` (read from `base`, with `adapter` when it had one), as
/// `(relative name, bytes)`: a multi-label model's thresholds go with it. Needs the model on the
/// CPU backend.
pub async fn int8_folder<F: ModelFiles, A: ModelFiles>(
    source: Source,
    base: &F,
    adapter: Option<&A>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let Source { model, config, max_len } = source;
    let int8_config = config.clone().with_int8(true);
    let mut files = int8_files(model, &int8_config, base, max_len).await?;
    let saved = adapter.map_or_else(|| base.read(Thresholds::FILE), |a| a.read(Thresholds::FILE))?;
    if let Some(bytes) = saved {
        files.push((Thresholds::FILE.into(), bytes));
    }
    Ok(files)
}

async fn int8_files<F: ModelFiles>(
    model: Model,
    int8_config: &BertConfig,
    base: &F,
    max_len: Option<usize>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let cpu_only = |e: String| Error::Option(format!("quantise: {e}"));
    match model {
        Model::Classifier(m) => {
            let q = m.quantized().map_err(cpu_only)?;
            let files = result_files(&q, &Strategy::Full, int8_config, base, max_len).await?;
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
