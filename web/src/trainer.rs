//! Fine-tuning from JavaScript: a [`Trainer`] built from model files and two labelled tables,
//! driven one step at a time (the page's worker loops over `step()` and checks for Stop between
//! calls), then evaluated, used for predictions and exported — all through core's `FineTune`,
//! the same run `savant train` drives.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Cursor;
use std::rc::Rc;

use savant_core::data::{Format, TableReader};
use savant_core::model::{ModelFiles, ModelFolder};
use savant_core::train::{
    fit_to_limits, FineTune, LabelledBatch, LabelledRows, OwnedPartRequest, PartFuture, PartHelpers, PartReply,
    PartRequest, PartSpec, Parts, TrainEvent, TrainOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{device, to_js};

/// A model folder held in memory: relative path → bytes (what the page fetched or the user picked).
#[derive(Clone)]
pub struct MemFiles {
    name: String,
    files: HashMap<String, Rc<[u8]>>,
}

impl MemFiles {
    /// `files`: a JS object `{ "config.json": Uint8Array, "1_Pooling/config.json": ..., ... }`,
    /// names relative to the model folder.
    pub fn from_js(name: &str, files: &js_sys::Object) -> Result<MemFiles, String> {
        let mut map = HashMap::new();
        for entry in js_sys::Object::entries(files).iter() {
            let pair: js_sys::Array = entry.into();
            let key = pair.get(0).as_string().ok_or("model file names must be strings")?;
            let value = pair.get(1);
            if !value.is_instance_of::<js_sys::Uint8Array>() {
                return Err(format!("model file '{key}' must be a Uint8Array"));
            }
            let bytes = js_sys::Uint8Array::from(value).to_vec();
            map.insert(key, Rc::from(bytes));
        }
        Ok(MemFiles { name: name.to_string(), files: map })
    }
}

impl ModelFiles for MemFiles {
    type Weights = Cursor<Rc<[u8]>>;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn read(&self, relative: &str) -> savant_core::Result<Option<Vec<u8>>> {
        Ok(self.files.get(relative).map(|b| b.to_vec()))
    }

    fn weights(&self, relative: &str) -> savant_core::Result<Option<Self::Weights>> {
        Ok(self.files.get(relative).map(|b| Cursor::new(b.clone())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// The model's name in messages and in the adapter's `base_model_name_or_path`.
    #[serde(default = "crate::default_model_name")]
    model_name: String,
    format: Format,
    #[serde(default = "crate::default_text")]
    text_column: String,
    #[serde(default = "default_label")]
    label_column: String,
    /// "webgpu", "cpu" or "auto".
    #[serde(default = "crate::default_backend")]
    backend: String,
    #[serde(default)]
    options: TrainOptions,
}

fn default_label() -> String {
    "label".into()
}

#[derive(Serialize)]
struct Info {
    backend: &'static str,
    fallback: Option<String>,
    adapter: Option<String>,
    limits: Option<savant_core::train::BufferLimits>,
    /// Set when the batch or length was lowered to fit the GPU.
    fitted: Option<String>,
    mode: &'static str,
    params: String,
    trainable_params: usize,
    total_params: usize,
    labels: Vec<String>,
    train_rows: usize,
    val_rows: usize,
    skipped: Vec<String>,
    truncated: usize,
    /// Token windows of both splits' texts (the texts' count unless read in windows).
    windows: usize,
    windows_per_text: f64,
    max_len: usize,
    batch_size: usize,
    /// Parts per batch (one per worker when helpers share the steps).
    parts: usize,
    steps_per_epoch: usize,
    total_steps: usize,
    notes: Vec<String>,
}

struct State {
    run: FineTune,
    files: MemFiles,
    info: Info,
    /// The step at which the average with the baseline was last chosen (it follows the best model).
    ensemble_step: Option<usize>,
}

/// A fine-tuning run in the browser. Create with [`create_trainer`]; every method returns a
/// Promise and the calls must not overlap (await each one).
#[wasm_bindgen]
pub struct Trainer {
    state: Rc<RefCell<State>>,
    /// Set by `stop()`; outside `state`, which a running `run()` holds.
    stop: Rc<Cell<bool>>,
}

/// Calls overlapped: each must be awaited before the next.
fn busy() -> JsValue {
    js_error("the trainer is busy: await the previous call")
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// Builds a run. `files`: `{ "config.json": Uint8Array, "model.safetensors": ..., "tokenizer.json"
/// | "vocab.txt": ... }`; `train`, `val`: the two splits' bytes; `request`: `{ format,
/// text_column?, label_column?, backend?: "webgpu" | "cpu" | "auto", model_name?, options? }`
/// where `options` has `savant train`'s settings under their snake_case names (`mode`,
/// `lora_r`, `epochs`, `lr`, `batch_size`, `max_len`, ...). Resolves to a `Trainer`.
#[wasm_bindgen(js_name = createTrainer)]
pub async fn create_trainer(
    files: js_sys::Object,
    train: Vec<u8>,
    val: Vec<u8>,
    request: JsValue,
) -> Result<Trainer, JsValue> {
    let (run, files, info) = build_run(files, train, val, request, None).await?;
    Ok(Trainer {
        state: Rc::new(RefCell::new(State { run, files, info, ensemble_step: None })),
        stop: Rc::new(Cell::new(false)),
    })
}

/// The run `createTrainer` builds; `backend` overrides the request's.
async fn build_run(
    files: js_sys::Object,
    train: Vec<u8>,
    val: Vec<u8>,
    request: JsValue,
    backend: Option<&str>,
) -> Result<(FineTune, MemFiles, Info), JsValue> {
    crate::install_panic_hook();
    let req: CreateRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| js_error(format!("trainer options: {e}")))?;
    let files = MemFiles::from_js(&req.model_name, &files).map_err(js_error)?;
    let chosen = device::choose(backend.unwrap_or(&req.backend)).await.map_err(js_error)?;
    let mut options = req.options;
    let mut fitted = None;
    if let Some(limits) = chosen.limits {
        let folder = ModelFolder::open(&files).map_err(js_error)?;
        let max_len = options.max_len.unwrap_or(folder.default_max_len().min(128));
        let fit = fit_to_limits(&folder.config, options.batch_size, max_len, limits).map_err(js_error)?;
        options.batch_size = fit.batch_size;
        options.max_len = Some(fit.max_len);
        fitted = fit.note;
    }
    let (sep, allow_empty) = (options.label_sep.clone(), options.allow_empty_labels);
    let read = |bytes: &[u8], name: &str| -> Result<LabelledRows, JsValue> {
        let reader = TableReader::new(bytes, req.format, name).map_err(js_error)?;
        LabelledRows::read_with(reader, &req.text_column, &req.label_column, sep.as_deref(), allow_empty)
            .map_err(js_error)
    };
    let train = read(&train, "train")?;
    let val = read(&val, "val")?;
    let run = FineTune::new(&files, options, train, val, &chosen.device.clone().autodiff()).map_err(js_error)?;
    let info = Info {
        backend: chosen.backend,
        fallback: chosen.fallback,
        adapter: chosen.adapter,
        limits: chosen.limits,
        fitted,
        mode: run.strategy.name(),
        params: run.params.summary(),
        trainable_params: run.params.trainable,
        total_params: run.params.total,
        labels: run.config.labels.clone(),
        train_rows: run.train_rows,
        val_rows: run.val_rows,
        skipped: run.skipped.clone(),
        truncated: run.truncated,
        windows: run.windows.windows,
        windows_per_text: run.windows.mean(),
        max_len: run.max_len,
        batch_size: run.options.batch_size,
        parts: run.options.parts,
        steps_per_epoch: run.session.steps_per_epoch(),
        total_steps: run.session.total_steps(),
        notes: run.notes.clone(),
    };
    Ok((run, files, info))
}

/// Helper workers as JavaScript gives them: `{ count, send(index, { params: Float32Array,
/// request: string }) → Promise<{ gradients: Float32Array, present: Uint8Array, loss }> }`, where
/// `send` posts to helper `index`, whose `PartHelper.gradients` answers.
struct JsHelpers {
    count: usize,
    send: js_sys::Function,
}

impl JsHelpers {
    /// `undefined` / `null`: none.
    fn from_js(value: &JsValue) -> Result<Option<JsHelpers>, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let count = js_sys::Reflect::get(value, &"count".into())?
            .as_f64()
            .ok_or_else(|| js_error("helpers.count must be a number"))? as usize;
        let send = js_sys::Reflect::get(value, &"send".into())?;
        if !send.is_function() {
            return Err(js_error("helpers.send must be a function"));
        }
        Ok(Some(JsHelpers { count, send: send.into() }))
    }
}

impl PartHelpers<LabelledBatch> for JsHelpers {
    fn count(&self) -> usize {
        self.count
    }

    fn send(&self, index: usize, params: &[f32], request: &PartRequest<'_, LabelledBatch>) -> PartFuture {
        // JSON keeps the 64-bit dropout seed exact (a JS number would not).
        let message = (|| -> Result<js_sys::Promise, JsValue> {
            let json = serde_json::to_string(request).map_err(js_error)?;
            let message = js_sys::Object::new();
            js_sys::Reflect::set(&message, &"params".into(), &js_sys::Float32Array::from(params))?;
            js_sys::Reflect::set(&message, &"request".into(), &json.into())?;
            let promise = self.send.call2(&JsValue::NULL, &(index as u32).into(), &message)?;
            Ok(promise.into())
        })();
        Box::pin(async move {
            let from_js = |e: JsValue| savant_core::Error::invalid("worker", None, js_message(&e));
            let reply = wasm_bindgen_futures::JsFuture::from(message.map_err(from_js)?).await.map_err(from_js)?;
            let field = |name: &str| js_sys::Reflect::get(&reply, &name.into()).map_err(from_js);
            let gradients = js_sys::Float32Array::from(field("gradients")?).to_vec();
            let present = js_sys::Uint8Array::from(field("present")?).to_vec().into_iter().map(|b| b != 0).collect();
            let loss = field("loss")?.as_f64().unwrap_or(f64::NAN) as f32;
            Ok(PartReply { gradients, present, loss })
        })
    }
}

/// A thrown JS value as text (an `Error`'s message).
fn js_message(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// A helper worker's part of a run: the trainer's model built from the same files (on the CPU)
/// and its [`Trainer::part_spec`], no split read; it computes the parts of steps the trainer
/// sends it.
#[wasm_bindgen]
pub struct PartHelper {
    trainer: Rc<RefCell<savant_core::train::Trainer>>,
}

/// Builds a helper from the model files and the trainer's `partSpec()`.
#[wasm_bindgen(js_name = createPartHelper)]
pub async fn create_part_helper(files: js_sys::Object, spec: String) -> Result<PartHelper, JsValue> {
    crate::install_panic_hook();
    let (name, spec): (String, PartSpec) =
        serde_json::from_str(&spec).map_err(|e| js_error(format!("part spec: {e}")))?;
    let files = MemFiles::from_js(&name, &files).map_err(js_error)?;
    let chosen = device::choose("cpu").await.map_err(js_error)?;
    let trainer = FineTune::part_trainer(&files, &spec, &chosen.device.autodiff()).map_err(js_error)?;
    Ok(PartHelper { trainer: Rc::new(RefCell::new(trainer)) })
}

#[wasm_bindgen]
impl PartHelper {
    /// The gradients of one part: `params` and `request` as the trainer's `send` gave them.
    /// Resolves to `{ gradients: Float32Array, present: Uint8Array, loss }`.
    pub fn gradients(&self, params: Vec<f32>, request: String) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        future_to_promise(async move {
            let request: OwnedPartRequest<LabelledBatch> =
                serde_json::from_str(&request).map_err(|e| js_error(format!("part request: {e}")))?;
            let mut trainer = trainer.try_borrow_mut().map_err(|_| busy())?;
            let reply = trainer.part_reply(&params, &request.as_request()).await.map_err(js_error)?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"gradients".into(), &js_sys::Float32Array::from(reply.gradients.as_slice()))?;
            let present: Vec<u8> = reply.present.iter().map(|&p| p as u8).collect();
            js_sys::Reflect::set(&out, &"present".into(), &js_sys::Uint8Array::from(present.as_slice()))?;
            js_sys::Reflect::set(&out, &"loss".into(), &(reply.loss as f64).into())?;
            Ok(out.into())
        })
    }
}

fn event_json(e: &TrainEvent, metric: &str) -> serde_json::Value {
    serde_json::to_value(e.line(metric)).expect("log lines serialise")
}

/// One `Session::advance`, as the JSON `step()` resolves to.
async fn advance(s: &mut State, helpers: Option<&JsHelpers>) -> Result<JsValue, JsValue> {
    let metric = s.run.options.metric.clone();
    let events = match helpers {
        Some(h) => s.run.session.advance(None, Parts::Helpers(h)).await,
        None => s.run.session.advance(None, Parts::Here).await,
    }
    .map_err(js_error)?;
    let session = &s.run.session;
    let out = json!({
        "events": events.iter().map(|e| event_json(e, &metric)).collect::<Vec<_>>(),
        "step": session.trainer.step,
        "total_steps": session.total_steps(),
        "epoch": session.progress.epoch,
        "finished": session.finished(),
    });
    to_js(&out).map_err(Into::into)
}

/// Resolves on the next macrotask (`setTimeout(0)`), letting messages such as Stop in.
async fn yield_to_event_loop() -> Result<(), JsValue> {
    let global = js_sys::global();
    let set_timeout: js_sys::Function = js_sys::Reflect::get(&global, &"setTimeout".into())?.into();
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.map(|_| ())
}

#[wasm_bindgen]
impl Trainer {
    /// What a helper worker needs to build its part of this run (`createPartHelper`): the model
    /// folder's name and core's part spec, as JSON.
    #[wasm_bindgen(js_name = partSpec)]
    pub fn part_spec(&self) -> Result<String, JsValue> {
        let s = self.state.try_borrow().map_err(|_| busy())?;
        serde_json::to_string(&(&s.files.name, s.run.part_spec())).map_err(js_error)
    }

    /// What the run is: backend (and why not WebGPU), parameter counts, rows, steps.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        to_js(&self.state.borrow().info).map_err(Into::into)
    }

    /// Trains to the end, or until `stop()`: calls `on_progress` with each step's result (see
    /// `step()`) and lets the event loop run between steps, so a Stop button works mid-epoch.
    /// `helpers` (optional): workers that compute parts of each step, `{ count, send }` (see
    /// `setParts` and `createPartHelper`). Resolves to `{ finished, stopped, step, total_steps }`.
    pub fn run(&self, on_progress: js_sys::Function, helpers: JsValue) -> js_sys::Promise {
        let state = self.state.clone();
        let stop = self.stop.clone();
        stop.set(false);
        future_to_promise(async move {
            let helpers = JsHelpers::from_js(&helpers)?;
            loop {
                yield_to_event_loop().await?;
                let out = {
                    let mut s = state.try_borrow_mut().map_err(|_| busy())?;
                    if stop.get() || s.run.session.finished() {
                        let session = &s.run.session;
                        let out = json!({
                            "finished": session.finished(), "stopped": !session.finished(),
                            "step": session.trainer.step, "total_steps": session.total_steps(),
                        });
                        return to_js(&out).map_err(Into::into);
                    }
                    advance(&mut s, helpers.as_ref()).await?
                };
                on_progress.call1(&JsValue::NULL, &out)?;
            }
        })
    }

    /// Asks a running `run()` to stop after its current step.
    pub fn stop(&self) {
        self.stop.set(true);
    }

    /// One optimiser step, or the validation pass after an epoch's last step. Resolves to
    /// `{ events: [...], step, total_steps, epoch, finished }`; `events` holds the logging points
    /// (`{event: "step", loss, lr, tokens, ...}`) and epoch summaries (`{event: "epoch",
    /// val_metric, improved, ...}`) — the lines `savant train` writes to train_log.jsonl.
    pub fn step(&self, helpers: JsValue) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let helpers = JsHelpers::from_js(&helpers)?;
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            advance(&mut s, helpers.as_ref()).await
        })
    }

    /// Cuts each batch into `parts` (before the first step): with `n` helpers, `n + 1` parts
    /// give every worker one. The run then equals `savant train --parts` with the same number.
    #[wasm_bindgen(js_name = setParts)]
    pub fn set_parts(&self, parts: usize) -> Result<(), JsValue> {
        let mut s = self.state.try_borrow_mut().map_err(|_| busy())?;
        if s.run.session.trainer.step > 0 {
            return Err(js_error("parts can only be set before the first step"));
        }
        let parts = parts.max(1);
        s.run.session.config.parts = parts;
        s.run.options.parts = parts;
        s.info.parts = parts;
        Ok(())
    }

    /// The best epoch's weights on the validation split: `{ report, html, metrics }`: savant
    /// eval's report, its HTML body (summary, per-class table, ROC / PR / calibration plots,
    /// confusion matrix; no styles or scripts) and the `metrics.json` savant train writes —
    /// with the average with the TF-IDF baseline chosen on val, as `savant train` ends.
    pub fn evaluate(&self) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            let step = s.run.session.trainer.step;
            if s.ensemble_step != Some(step) && s.run.session.best_report.is_some() {
                s.run.choose_on_val().await.map_err(js_error)?;
                s.ensemble_step = Some(step);
            }
            let model = s.run.session.best_model();
            let metrics =
                if s.run.session.best_report.is_some() { Some(s.run.metrics_json().map_err(js_error)?) } else { None };
            if s.run.options.label_sep.is_some() {
                // Label sets: eval --multi-label's report at the thresholds chosen on val.
                let thresholds = s.run.thresholds.as_ref().map(|(t, _)| t.thresholds.clone()).unwrap_or_default();
                let sets = s.run.session.val_label_sets(&model, &thresholds).await.map_err(js_error)?;
                let report = savant_core::metrics::multilabel::evaluate(&sets);
                let html = savant_core::metrics::html::multilabel_body(&report, &sets);
                return to_js(&json!({ "report": report, "html": html, "metrics": metrics })).map_err(Into::into);
            }
            let predictions = s.run.session.val_predictions(&model).await.map_err(js_error)?;
            let report = savant_core::metrics::report::evaluate(&predictions, &Default::default()).map_err(js_error)?;
            let html = savant_core::metrics::html::report_body(&report, &predictions);
            to_js(&json!({ "report": report, "html": html, "metrics": metrics })).map_err(Into::into)
        })
    }

    /// Class probabilities for `texts` (an array of strings) under the best weights: `{ labels,
    /// probs: [[p, ...], ...], windows }`, rows in input order, columns in `labels` order;
    /// `windows` (texts read in windows, else null): `[{ text, start, end, probs }]`, each
    /// window's text (its row), character span and probabilities. `ensemble`: `probs` are the
    /// model's averaged with the TF-IDF baseline's (`savant predict --ensemble`; after
    /// `evaluate`), the windows' stay the model's.
    pub fn predict(&self, texts: Vec<String>, ensemble: bool) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let s = state.try_borrow().map_err(|_| busy())?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let k = s.run.config.labels.len();
            let (probs, windows) =
                s.run.predict_windows(&refs, s.run.options.batch_size, ensemble).await.map_err(js_error)?;
            let rows: Vec<&[f32]> = probs.chunks(k).collect();
            let windows = windows.map(|w| {
                let rows = w.doc.iter().zip(&w.spans).zip(w.values.chunks(k));
                rows.map(|((d, (start, end)), p)| json!({ "text": d, "start": start, "end": end, "probs": p }))
                    .collect::<Vec<_>>()
            });
            // A multi-label model: each text's labels over their thresholds (0.5 before they are chosen).
            let sets = s.run.label_sets(&probs, ensemble);
            to_js(&json!({ "labels": s.run.config.labels, "probs": rows, "windows": windows, "sets": sets }))
                .map_err(Into::into)
        })
    }

    /// The result as `savant train` writes it: `{ files: { "adapter/adapter_model.safetensors":
    /// Uint8Array, "adapter/adapter_config.json": ..., "adapter/config.json": ..., "metrics.json":
    /// ... } }` (LoRA: PEFT's format; full / partial: `model/…`, an HF folder).
    #[wasm_bindgen(js_name = exportFiles)]
    pub fn export_files(&self) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let s = state.try_borrow().map_err(|_| busy())?;
            let mut files = s.run.result_files(&s.files).await.map_err(js_error)?;
            if s.run.session.best_report.is_some() {
                let metrics = s.run.metrics_json().map_err(js_error)?;
                files.push(("metrics.json".into(), serde_json::to_vec_pretty(&metrics).expect("JSON")));
            }
            crate::files_object(files)
        })
    }
}
