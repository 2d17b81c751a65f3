//! A fine-tuned classifier in the page without training it here: `savant predict` over a model
//! folder with its head (savant train's full or partial output, `savant merge`'s, any HF
//! `BertForSequenceClassification`), or a base folder with an adapter folder on it — optionally
//! with the encoder's projections in int8 (`savant predict --int8`), quantised as it loads.

use std::rc::Rc;

use burn::tensor::Device;
use savant_core::finetune::peft::load_fine_tuned;
use savant_core::infer::{sigmoid, softmax_rows, TextModel};
use savant_core::model::{BertClassifier, BertConfig, ModelFiles, ModelFolder};
use savant_core::tokenize::TextTokenizer;
use savant_core::train::thresholds::Thresholds;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::trainer::MemFiles;
use crate::{device, to_js};

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictorRequest {
    #[serde(default = "device::auto")]
    backend: String,
    #[serde(default = "crate::default_model_name")]
    model_name: String,
    /// `savant predict --adapter`: the adapter folder's files, on the base in `files`.
    #[serde(default)]
    adapter_name: Option<String>,
    /// Texts are cut to this many tokens; by default the length the model was saved with
    /// (sentence-transformers' `max_seq_length`), else its positions — as `savant predict`.
    #[serde(default)]
    max_len: Option<usize>,
    #[serde(default = "batch_size")]
    batch_size: usize,
    /// `savant predict --int8` (CPU only).
    #[serde(default)]
    int8: bool,
}

fn batch_size() -> usize {
    32
}

struct State {
    config: BertConfig,
    tokenizer: TextTokenizer,
    model: BertClassifier,
    device: Device,
    batch_size: usize,
    /// Label sets: the thresholds saved with the model (0.5 each when it has none).
    thresholds: Option<Thresholds>,
}

/// A model folder's files and, when given, an adapter folder's (named `adapter` by default).
fn model_and_adapter(
    files: &js_sys::Object,
    adapter: Option<js_sys::Object>,
    model_name: &str,
    adapter_name: Option<&str>,
) -> Result<(MemFiles, Option<MemFiles>), JsValue> {
    let files = MemFiles::from_js(model_name, files).map_err(js_error)?;
    let name = adapter_name.unwrap_or("adapter");
    let adapter = adapter.map(|a| MemFiles::from_js(name, &a)).transpose().map_err(js_error)?;
    Ok((files, adapter))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantizeRequest {
    #[serde(default = "crate::default_model_name")]
    model_name: String,
    #[serde(default)]
    adapter_name: Option<String>,
}

/// `savant quantize --model <files> [--adapter <adapter>]` in the page: the int8 folder of a
/// fine-tuned classifier (a base with its adapter merged first) or of a sentence encoder, as
/// `{ files: { name: Uint8Array } }` — the same bytes the CLI writes (its `savant_quantize.json`
/// aside). `request`: `{ model_name?, adapter_name? }`.
#[wasm_bindgen(js_name = quantizeFolder)]
pub async fn quantize_folder(
    files: js_sys::Object,
    adapter: Option<js_sys::Object>,
    request: JsValue,
) -> Result<JsValue, JsValue> {
    use savant_core::finetune::quantize;
    crate::install_panic_hook();
    let req: QuantizeRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| js_error(format!("quantize options: {e}")))?;
    let (files, adapter) = model_and_adapter(&files, adapter, &req.model_name, req.adapter_name.as_deref())?;
    let folder = ModelFolder::open(&files).map_err(js_error)?;
    let source = quantize::load(&files, &folder, adapter.as_ref(), &Device::flex()).map_err(js_error)?;
    let out = quantize::int8_folder(source, &files, adapter.as_ref()).await.map_err(js_error)?;
    crate::files_object(out)
}

/// A loaded classifier (`createPredictor`).
#[wasm_bindgen]
pub struct Predictor {
    state: Rc<State>,
    info: JsValue,
}

#[derive(Serialize)]
struct Info<'a> {
    model: &'a str,
    backend: &'static str,
    fallback: Option<String>,
    labels: &'a [String],
    multi_label: bool,
    max_len: usize,
    int8: bool,
    /// What the load left aside (unused tensors), as `savant predict`'s report.
    ignored: &'a [String],
}

/// Loads a classifier from `files` (a model folder, as `createTrainer` takes it) and, when
/// `adapter` (an object of the adapter folder's files) is given, the adapter on it. `request`:
/// `{ backend? ("auto"), model_name?, adapter_name?, max_len?, batch_size? (32), int8? }`;
/// `int8` runs on the CPU: with `backend: "auto"` it picks the CPU, with `"webgpu"` it is refused.
#[wasm_bindgen(js_name = createPredictor)]
pub async fn create_predictor(
    files: js_sys::Object,
    adapter: Option<js_sys::Object>,
    request: JsValue,
) -> Result<Predictor, JsValue> {
    crate::install_panic_hook();
    let req: PredictorRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| js_error(format!("predictor options: {e}")))?;
    let (files, adapter) = model_and_adapter(&files, adapter, &req.model_name, req.adapter_name.as_deref())?;
    let mut folder = ModelFolder::open(&files).map_err(js_error)?;
    if let Some(n) = adapter.as_ref().map(savant_core::model::max_seq_length).transpose().map_err(js_error)?.flatten() {
        folder.max_seq_length = Some(n);
    }
    let positions = folder.config.max_position_embeddings;
    let max_len = match req.max_len {
        Some(n) if n > positions => {
            return Err(js_error(format!(
                "max_len {n} is more than the model's {positions} positions (max_position_embeddings)"
            )))
        }
        Some(n) => n,
        None => folder.default_max_len(),
    };
    folder.tokenizer.set_max_len(Some(max_len)).map_err(js_error)?;
    // An int8 folder (savant quantize) runs where its kernel is, as `--int8` does.
    let int8 = req.int8 || folder.config.int8;
    let chosen = device::choose_for_inference(&req.backend, int8).await.map_err(js_error)?;
    let (model, config, notes) =
        load_fine_tuned(&files, &folder.config, adapter.as_ref(), &chosen.device).map_err(js_error)?;
    let model = match req.int8 {
        true => model.quantized().map_err(|e| js_error(format!("int8: {e}")))?,
        false => model,
    };
    let thresholds = match config.multi_label() {
        false => None,
        true => {
            let saved = adapter.as_ref().unwrap_or(&files);
            Some(match saved.read(Thresholds::FILE).map_err(js_error)? {
                Some(bytes) => {
                    Thresholds::from_json(&bytes, &config.labels, &format!("{}/{}", saved.name(), Thresholds::FILE))
                        .map_err(js_error)?
                }
                None => Thresholds::half(&config.labels),
            })
        }
    };
    let info = to_js(&Info {
        model: &req.model_name,
        backend: chosen.backend,
        fallback: chosen.fallback,
        labels: &config.labels,
        multi_label: thresholds.is_some(),
        max_len,
        int8: model.bert.runs_int8(),
        ignored: &notes.ignored,
    })?;
    let state = State {
        config,
        tokenizer: folder.tokenizer,
        model,
        device: chosen.device,
        batch_size: req.batch_size.max(1),
        thresholds,
    };
    Ok(Predictor { state: Rc::new(state), info })
}

#[wasm_bindgen]
impl Predictor {
    /// `{ model, backend, fallback, labels, multi_label, max_len, int8, ignored }`.
    pub fn info(&self) -> JsValue {
        self.info.clone()
    }

    /// `{ labels, probs: [[p, ...], ...], sets }` for `texts`, rows in input order (what `savant
    /// predict` writes as `prob_<label>`): softmax, or a multi-label head's sigmoid with `sets`
    /// its labels over their thresholds (else null).
    pub fn predict(&self, texts: Vec<String>) -> js_sys::Promise {
        let p = self.state.clone();
        future_to_promise(async move {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let out = TextModel::Classifier(&p.model)
                .run_texts(&p.config, &p.tokenizer, &refs, p.batch_size, &p.device)
                .await
                .map_err(js_error)?;
            let k = p.config.labels.len();
            let probs = match p.thresholds {
                Some(_) => sigmoid(&out.values),
                None => softmax_rows(&out.values, k),
            };
            let sets = p.thresholds.as_ref().map(|t| probs.chunks(k).map(|r| t.label_set(r)).collect::<Vec<_>>());
            let rows: Vec<&[f32]> = probs.chunks(k).collect();
            to_js(&json!({ "labels": p.config.labels, "probs": rows, "sets": sets })).map_err(Into::into)
        })
    }
}
