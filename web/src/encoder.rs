//! A frozen encoder in the page: sentence vectors for the annotator's active learning and for
//! the probe panel, which also measures each candidate's tokenizer and ranks the candidates
//! (`savant probe`'s core: `savant_core::probe`).

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use savant_core::infer::TextModel;
use savant_core::model::{load_encoder, BertModel, ModelFolder, Pooling};
use savant_core::probe::{Candidate, HeldOut, Ranking, Sample, TokenizerFit};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::trainer::MemFiles;
use crate::{device, to_js};

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

#[derive(Deserialize)]
struct EncoderRequest {
    #[serde(default = "device::auto")]
    backend: String,
    #[serde(default = "crate::default_model_name")]
    model_name: String,
    /// Texts are cut to this many tokens (and the model's limit).
    #[serde(default = "max_len")]
    max_len: usize,
    #[serde(default = "batch_size")]
    batch_size: usize,
    /// `savant embed --int8`: the projections in int8 (CPU only).
    #[serde(default)]
    int8: bool,
}

fn max_len() -> usize {
    128
}
fn batch_size() -> usize {
    16
}

struct State {
    folder: ModelFolder,
    model: BertModel,
    device: Device,
    batch_size: usize,
}

/// A loaded encoder (`createEncoder`).
#[wasm_bindgen]
pub struct Encoder {
    state: Rc<RefCell<State>>,
    info: JsValue,
}

#[derive(Serialize)]
struct Info<'a> {
    model: &'a str,
    backend: &'static str,
    fallback: Option<String>,
    hidden: usize,
    max_len: usize,
}

/// Loads the model in `files` (as `createTrainer` takes them) as a frozen encoder: `request`:
/// `{ backend? ("auto"), model_name?, max_len? (128), batch_size? (16), int8? }` (`int8`: on
/// the CPU, as `savant embed --int8`).
#[wasm_bindgen(js_name = createEncoder)]
pub async fn create_encoder(files: js_sys::Object, request: JsValue) -> Result<Encoder, JsValue> {
    crate::install_panic_hook();
    let req: EncoderRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| js_error(format!("encoder options: {e}")))?;
    let files = MemFiles::from_js(&req.model_name, &files).map_err(js_error)?;
    let mut folder = ModelFolder::open(&files).map_err(js_error)?;
    let max_len = req.max_len.clamp(3, folder.config.max_position_embeddings);
    folder.tokenizer.set_max_len(Some(max_len)).map_err(js_error)?;
    // An int8 folder (savant quantize) runs where its kernel is, as `--int8` does.
    let chosen = device::choose_for_inference(&req.backend, req.int8 || folder.config.int8).await.map_err(js_error)?;
    let mut checkpoint = ModelFolder::checkpoint(&files).map_err(js_error)?;
    let (model, _) = load_encoder(&folder.config, &mut checkpoint, &chosen.device).map_err(js_error)?;
    let model = match req.int8 {
        true => model.quantized().map_err(|e| js_error(format!("int8: {e}")))?,
        false => model,
    };
    let info = to_js(&Info {
        model: &req.model_name,
        backend: chosen.backend,
        fallback: chosen.fallback,
        hidden: folder.config.hidden_size,
        max_len,
    })?;
    let state = State { folder, model, device: chosen.device, batch_size: req.batch_size.max(1) };
    Ok(Encoder { state: Rc::new(RefCell::new(state)), info })
}

#[wasm_bindgen]
impl Encoder {
    /// `{ model, backend, fallback, hidden, max_len }`.
    pub fn info(&self) -> JsValue {
        self.info.clone()
    }

    /// Mean-pooled sentence vectors of `texts`, `[texts, hidden]` row-major.
    pub fn embed(&self, texts: Vec<String>) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let s = state.try_borrow().map_err(|_| js_error("the encoder is busy: await the previous call"))?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encoder = TextModel::Encoder { model: &s.model, pooling: Pooling::Mean, normalize: false };
            let out = encoder
                .run_texts(&s.folder.config, &s.folder.tokenizer, &refs, s.batch_size, &s.device)
                .await
                .map_err(js_error)?;
            Ok(js_sys::Float32Array::from(out.values.as_slice()).into())
        })
    }

    /// How this model's tokenizer cuts `texts` (`savant probe`'s tokenizer fit), the truncation
    /// rate at `max_len`.
    #[wasm_bindgen(js_name = tokenizerFit)]
    pub fn tokenizer_fit(&self, texts: Vec<String>, max_len: usize) -> Result<JsValue, JsValue> {
        let s = self.state.try_borrow().map_err(|_| js_error("the encoder is busy"))?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let fit = TokenizerFit::measure(&s.folder.tokenizer, &refs, max_len).map_err(js_error)?;
        to_js(&fit).map_err(Into::into)
    }
}

/// The linear probe's score of one candidate: `embeddings` of the labelled texts (`dim` wide,
/// one per label), their `labels`, the held-out split's `seed`, and the seconds the embedding
/// took (the page's clock). Returns `{ macro_f1, train_rows, test_rows, embed_seconds,
/// fit_seconds }` (fit_seconds 0: the page times the call).
#[wasm_bindgen(js_name = probeScore)]
pub fn probe_score(
    embeddings: &[f32],
    dim: usize,
    labels: Vec<String>,
    seed: u32,
    embed_seconds: f64,
) -> Result<JsValue, JsError> {
    if dim == 0 || embeddings.len() != labels.len() * dim {
        return Err(JsError::new(&format!("{} values are not {} vectors of {dim}", embeddings.len(), labels.len())));
    }
    let held = HeldOut::new(&labels, seed as u64).map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&held.score(embeddings, dim, embed_seconds))
}

#[derive(Deserialize)]
struct SampleRequest {
    format: savant_core::data::Format,
    #[serde(default)]
    source: Option<String>,
    text_column: String,
    #[serde(default)]
    label_column: Option<String>,
    sample: usize,
}

/// The texts (and labels) a probe measures, as `savant probe` picks them: `request`: `{ format,
/// source?, text_column, label_column?, sample }`. Returns `{ texts, labels, passed_over }`.
#[wasm_bindgen(js_name = probeSample)]
pub fn probe_sample(input: &[u8], request: JsValue) -> Result<JsValue, JsError> {
    let req: SampleRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| JsError::new(&format!("probe options: {e}")))?;
    let source = req.source.unwrap_or_else(|| "input".into());
    let reader =
        savant_core::data::TableReader::new(input, req.format, &source).map_err(|e| JsError::new(&e.to_string()))?;
    let s = Sample::read(reader, &req.text_column, req.label_column.as_deref(), req.sample)
        .map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&serde_json::json!({ "texts": s.texts, "labels": s.labels, "passed_over": s.passed_over }))
}

#[derive(Serialize)]
struct Ranked {
    ranking: Ranking,
    /// `savant probe -o probe.html`'s page.
    html: String,
}

/// Ranks `candidates` (`[{ model, tokenizer_fit, linear_probe }]`) as `savant probe` does:
/// `{ ranking: { ranking, recommendation, reason }, html }`.
#[wasm_bindgen(js_name = probeRanking)]
pub fn probe_ranking(candidates: JsValue) -> Result<JsValue, JsError> {
    let candidates: Vec<Candidate> =
        serde_wasm_bindgen::from_value(candidates).map_err(|e| JsError::new(&format!("probe candidates: {e}")))?;
    if candidates.is_empty() {
        return Err(JsError::new("no candidate model to rank"));
    }
    let ranking = Ranking::new(candidates);
    let html = ranking.html();
    to_js(&Ranked { ranking, html })
}
