//! Masked-LM pretraining from JavaScript: a [`Pretrainer`] built from model files and a table of
//! unlabelled texts, driven one step at a time — core's run loop (`PretrainSession`) over core's corpus,
//! the run `savant pretrain` drives from its shards.

use std::cell::RefCell;
use std::rc::Rc;

use savant_core::data::Format;
use savant_core::model::ModelFolder;
use savant_core::pretrain::corpus::{Corpus, TableRows};
use savant_core::pretrain::{masked_lm_files, PretrainOptions, PretrainSession};
use savant_core::train::Parts;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::trainer::MemFiles;
use crate::{device, to_js};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[serde(default = "crate::default_model_name")]
    model_name: String,
    format: Format,
    #[serde(default = "crate::default_text")]
    text_column: String,
    /// "webgpu", "cpu" or "auto".
    #[serde(default = "crate::default_backend")]
    backend: String,
    /// `savant pretrain`'s settings under their snake_case names.
    #[serde(default)]
    options: PretrainOptions,
}

#[derive(Serialize)]
struct Info {
    backend: &'static str,
    fallback: Option<String>,
    max_len: usize,
    held_out_windows: usize,
    perplexity_before: f64,
    fresh_head: bool,
    steps: usize,
    notes: Vec<String>,
}

struct State {
    run: PretrainSession,
    corpus: Corpus<TableRows>,
    files: MemFiles,
    info: Info,
    /// `Date.now()` at the first step, and the milliseconds of the steps before.
    started: Option<f64>,
}

/// A pretraining run in the browser; every method returns a Promise and the calls must not
/// overlap (await each one).
#[wasm_bindgen]
pub struct Pretrainer {
    state: Rc<RefCell<State>>,
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn busy() -> JsValue {
    js_error("the pretrainer is busy: await the previous call")
}

/// Builds a run. `files`: the model folder (`config.json`, `model.safetensors`, `tokenizer.json`
/// | `vocab.txt`); `corpus`: a table's bytes; `request`: `{ format, text_column?, backend?,
/// model_name?, options? }`, `options` holding `savant pretrain`'s settings under their
/// snake_case names (`steps`, `batch_size`, `max_len`, `lr`, `mlm_prob`, `eval_docs`, `seed`,
/// ...). The held-out perplexity is measured before it resolves.
#[wasm_bindgen(js_name = createPretrainer)]
pub async fn create_pretrainer(
    files: js_sys::Object,
    corpus: Vec<u8>,
    request: JsValue,
) -> Result<Pretrainer, JsValue> {
    crate::install_panic_hook();
    let req: CreateRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| js_error(format!("pretrainer options: {e}")))?;
    let mut options = req.options;
    options.check().map_err(js_error)?;
    let files = MemFiles::from_js(&req.model_name, &files).map_err(js_error)?;
    let folder = ModelFolder::open(&files).map_err(js_error)?;
    let chosen = device::choose(&req.backend).await.map_err(js_error)?;
    let source = TableRows::new(corpus, req.format, "corpus", &[&req.text_column]).map_err(js_error)?;
    let mut corpus = options.corpus(&folder, source).map_err(js_error)?;
    let identity = json!({ "model": req.model_name });
    let ad = chosen.device.clone().autodiff();
    let (mut run, notes, fresh_head) =
        PretrainSession::start_pretraining(&files, &folder, options, &mut corpus, identity, 1, &ad)
            .map_err(js_error)?;
    let perplexity_before = run.measure_before().await.map_err(js_error)?;
    let info = Info {
        backend: chosen.backend,
        fallback: chosen.fallback,
        max_len: corpus.max_len(),
        held_out_windows: run.held_out_windows(),
        perplexity_before,
        fresh_head,
        steps: run.total_steps(),
        notes: notes.ignored.iter().map(|n| format!("{n} is not part of a masked LM; left aside")).collect(),
    };
    Ok(Pretrainer { state: Rc::new(RefCell::new(State { run, corpus, files, info, started: None })) })
}

#[wasm_bindgen]
impl Pretrainer {
    /// `{ backend, fallback, max_len, held_out_windows, perplexity_before, fresh_head, steps, notes }`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        to_js(&self.state.borrow().info).map_err(Into::into)
    }

    /// One optimiser step on the corpus's next windows. Resolves to `{ line, step, total_steps,
    /// finished }`; `line` is `savant pretrain`'s `pretrain_log.jsonl` line at a logging point
    /// (every `log_every` steps and the last), else null.
    pub fn step(&self) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut guard = state.try_borrow_mut().map_err(|_| busy())?;
            let s = &mut *guard;
            if s.run.finished() {
                return Err(js_error("the run has made all its steps"));
            }
            let started = *s.started.get_or_insert_with(js_sys::Date::now);
            let mut windows = Vec::with_capacity(s.run.windows_per_step());
            for _ in 0..s.run.windows_per_step() {
                windows.push(s.corpus.next_window().map_err(js_error)?);
            }
            // Core's run loop: the step; after the last one, its closing validation too.
            let events = s.run.advance(Some(windows), Parts::Here).await.map_err(js_error)?;
            let seconds = (js_sys::Date::now() - started) / 1000.0;
            let line = events.iter().find_map(|e| s.run.log_line(e, seconds, 0.0, None));
            if !s.run.needs_rows() && !s.run.finished() {
                s.run.advance(None, Parts::Here).await.map_err(js_error)?;
            }
            let out = json!({
                "line": line.and(s.run.task.log.last().cloned()),
                "step": s.run.trainer.step,
                "total_steps": s.run.total_steps(),
                "finished": s.run.finished(),
            });
            to_js(&out).map_err(Into::into)
        })
    }

    /// The held-out perplexity under the current weights.
    pub fn perplexity(&self) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let s = state.try_borrow().map_err(|_| busy())?;
            Ok(JsValue::from_f64(s.run.perplexity().await.map_err(js_error)?))
        })
    }

    /// The result as `savant pretrain` writes it: `{ files: { "model/config.json": Uint8Array,
    /// "model/model.safetensors": ..., tokenizer files, "metrics.json": ... } }`, `model/` an HF
    /// `BertForMaskedLM` folder that `savant train` and transformers load.
    #[wasm_bindgen(js_name = exportFiles)]
    pub fn export_files(&self) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let s = state.try_borrow().map_err(|_| busy())?;
            let model = s.run.best_model();
            let after = match s.run.perplexity_after() {
                Some(p) => p,
                None => s.run.perplexity().await.map_err(js_error)?,
            };
            let seconds = s.started.map_or(0.0, |t| (js_sys::Date::now() - t) / 1000.0);
            let mut metrics = s.run.metrics_json(&s.corpus, after, seconds, 0.0, None);
            metrics["device"] = json!(s.info.backend);
            let folder = masked_lm_files(&model, s.run.model_config(), &s.files).await.map_err(js_error)?;
            let mut files: Vec<(String, Vec<u8>)> =
                folder.into_iter().map(|(n, b)| (format!("model/{n}"), b)).collect();
            files.push(("metrics.json".into(), serde_json::to_vec_pretty(&metrics).expect("JSON")));
            crate::files_object(files)
        })
    }
}
