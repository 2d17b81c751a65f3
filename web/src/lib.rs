//! savant-web: the JavaScript API over savant-core. Thin on purpose: options come in as plain
//! objects (the same field names as savant-core's option structs), bytes come in as
//! `Uint8Array`, and reports go out as the same JSON the CLI writes.
//!
//! ```js
//! import init, { clean, split } from "./savant_web.js";
//! await init();
//! const { output, report } = clean(new Uint8Array(await file.arrayBuffer()), {
//!   format: "csv", output_format: "csv",
//!   options: { text_column: "note", label_column: "dept", dedup: "near", redact: ["EMAIL", "PHONE"] },
//! });
//! ```

// A trainer's (and a part helper's) call holds its state across awaits on purpose: a call that
// overlaps it gets a "busy" error (try_borrow) instead of interleaving with it.
#![allow(clippy::await_holding_refcell_ref)]

mod annotate;
mod device;
mod encoder;
mod predictor;
mod pretrainer;
mod trainer;

pub use annotate::{annotate_export, annotate_load, ingest_files, label_set, uncertain_first};
pub use encoder::{create_encoder, probe_ranking, probe_sample, probe_score, Encoder};
pub use pretrainer::{create_pretrainer, Pretrainer};
pub use trainer::{create_part_helper, create_trainer, PartHelper, Trainer};

use std::cell::RefCell;

use savant_core::data::split::{split_bytes, SplitOptions};
use savant_core::data::{clean_bytes, CleanOptions, Format};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

#[derive(Deserialize)]
struct CleanRequest {
    format: Format,
    #[serde(default)]
    output_format: Option<Format>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    options: CleanOptions,
}

#[derive(Serialize)]
struct CleanResponse {
    #[serde(with = "as_uint8array")]
    output: Vec<u8>,
    report: savant_core::data::Report,
}

#[derive(Deserialize)]
struct SplitRequest {
    format: Format,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    options: SplitOptions,
}

#[derive(Serialize)]
struct SplitResponse {
    #[serde(with = "as_uint8array")]
    train: Vec<u8>,
    #[serde(with = "as_uint8array")]
    val: Vec<u8>,
    #[serde(with = "as_uint8array")]
    test: Vec<u8>,
    report: savant_core::data::split::SplitReport,
}

/// Byte buffers cross into JavaScript as `Uint8Array`, not as arrays of numbers.
pub(crate) mod as_uint8array {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    // Maps as plain objects, so `report.dropped.duplicate_near` works in JavaScript.
    let ser = serde_wasm_bindgen::Serializer::json_compatible().serialize_bytes_as_arrays(false);
    value.serialize(&ser).map_err(|e| JsError::new(&e.to_string()))
}

/// Cleans a table held in memory. `request`: `{ format, output_format?, source?, options? }`.
/// Returns `{ output: Uint8Array, report }`.
#[wasm_bindgen]
pub fn clean(input: &[u8], request: JsValue) -> Result<JsValue, JsError> {
    let req: CleanRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| JsError::new(&format!("clean options: {e}")))?;
    let source = req.source.unwrap_or_else(|| "input".into());
    let (output, report) =
        clean_bytes(input, req.format, req.output_format.unwrap_or(req.format), req.options, &source)
            .map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&CleanResponse { output, report })
}

/// Splits a table held in memory. `request`: `{ format, source?, options? }`.
/// Returns `{ train, val, test: Uint8Array, report }`.
#[wasm_bindgen]
pub fn split(input: &[u8], request: JsValue) -> Result<JsValue, JsError> {
    let req: SplitRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| JsError::new(&format!("split options: {e}")))?;
    let source = req.source.unwrap_or_else(|| "input".into());
    let ([train, val, test], report) =
        split_bytes(input, req.format, &req.options, &source).map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&SplitResponse { train, val, test, report })
}

#[derive(Deserialize)]
struct EvalRequest {
    format: Format,
    #[serde(default)]
    source: Option<String>,
    #[serde(default = "default_label")]
    label_column: String,
    #[serde(default)]
    pos_label: Option<String>,
    #[serde(default)]
    bootstrap: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    curves: bool,
}

pub(crate) fn default_label() -> String {
    "label".into()
}

#[derive(Serialize)]
struct EvalResponse {
    report: savant_core::metrics::report::EvalReport,
    /// The self-contained HTML report, as `savant eval --html` writes it.
    html: String,
}

fn eval_request(input: &[u8], req: EvalRequest) -> Result<EvalResponse, String> {
    use savant_core::metrics::{html::html_report, input::read_predictions, report};
    let source = req.source.unwrap_or_else(|| "input".into());
    let reader = savant_core::data::TableReader::new(input, req.format, &source).map_err(|e| e.to_string())?;
    let preds = read_predictions(reader, &req.label_column).map_err(|e| e.to_string())?;
    let opts =
        report::EvalOptions { pos_label: req.pos_label, bootstrap: req.bootstrap, seed: req.seed, curves: req.curves };
    let report = report::evaluate(&preds, &opts)?;
    let html = html_report(&report, &preds, &format!("Savant evaluation — {source}"));
    Ok(EvalResponse { report, html })
}

/// Evaluates predictions held in memory (the `savant eval` input: a label column and one
/// `prob_<class>` column per class). `request`: `{ format, source?, label_column?, pos_label?,
/// bootstrap?, seed?, curves? }`. Returns `{ report, html }`.
#[wasm_bindgen]
pub fn evaluate(input: &[u8], request: JsValue) -> Result<JsValue, JsError> {
    let req: EvalRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| JsError::new(&format!("eval options: {e}")))?;
    let response = eval_request(input, req).map_err(|e| JsError::new(&e))?;
    to_js(&response)
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps the message of a Rust panic (a bug, a lost GPU device, an allocation the tab cannot
/// make) so the page can show it: the call itself only surfaces as `RuntimeError: unreachable`.
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.to_string();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
        }));
    });
}

/// The message of the last Rust panic in this module instance, if any. After a panic the
/// instance should be dropped (the page restarts its worker).
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow().clone())
}

#[derive(Deserialize)]
struct PreviewRequest {
    format: Format,
    #[serde(default)]
    source: Option<String>,
    #[serde(default = "default_rows")]
    rows: usize,
}

/// `{ files: { name: Uint8Array } }`: a folder's files as the page offers them for download
/// (`exportFiles`, `quantizeFolder`).
pub(crate) fn files_object(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Result<JsValue, JsValue> {
    let out = js_sys::Object::new();
    for (name, bytes) in files {
        js_sys::Reflect::set(&out, &name.into(), &js_sys::Uint8Array::from(bytes.as_slice()))?;
    }
    let wrapper = js_sys::Object::new();
    js_sys::Reflect::set(&wrapper, &"files".into(), &out)?;
    Ok(wrapper.into())
}

/// The defaults the requests of the trainer and the pretrainer share.
pub(crate) fn default_model_name() -> String {
    "model".into()
}
fn default_text() -> String {
    "text".into()
}
fn default_backend() -> String {
    "auto".into()
}

fn default_rows() -> usize {
    20
}

#[derive(Serialize)]
struct Preview {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Rows in the input (well-formed and malformed).
    total: usize,
    malformed: usize,
}

fn preview_request(input: &[u8], req: PreviewRequest) -> savant_core::Result<Preview> {
    let source = req.source.unwrap_or_else(|| "input".into());
    let mut reader = savant_core::data::TableReader::new(input, req.format, &source)?;
    let columns = reader.header().to_vec();
    let (mut rows, mut total, mut malformed) = (Vec::new(), 0, 0);
    while let Some(row) = reader.next_row()? {
        total += 1;
        match row {
            Ok(r) if rows.len() < req.rows => rows.push(r.fields),
            Ok(_) => {}
            Err(_) => malformed += 1,
        }
    }
    Ok(Preview { columns, rows, total, malformed })
}

/// The columns and first rows of a table: `request`: `{ format, source?, rows? (20) }`.
/// Returns `{ columns, rows: [[field, ...]], total, malformed }`. Errors name the source and
/// line (not text, an empty file, a JSONL line that is not an object...).
#[wasm_bindgen]
pub fn preview(input: &[u8], request: JsValue) -> Result<JsValue, JsError> {
    let req: PreviewRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| JsError::new(&format!("preview options: {e}")))?;
    let p = preview_request(input, req).map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&p)
}

#[derive(Serialize)]
struct SafeTable {
    #[serde(with = "as_uint8array")]
    output: Vec<u8>,
    changed: usize,
}

/// A CSV/TSV table for spreadsheets: every cell that starts with `=`, `+`, `-` or `@` (a formula
/// to a spreadsheet: CSV injection) gets a `'` in front. JSONL comes back as it is. Returns
/// `{ output: Uint8Array, changed }` — what `savant clean --spreadsheet-safe` writes.
#[wasm_bindgen(js_name = spreadsheetSafe)]
pub fn spreadsheet_safe(input: &[u8], format: &str, source: &str) -> Result<JsValue, JsError> {
    let format = Format::parse(format).ok_or_else(|| JsError::new(&format!("unknown format '{format}'")))?;
    let (output, changed) =
        savant_core::data::spreadsheet_safe(input, format, source).map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&SafeTable { output, changed })
}

#[derive(Deserialize)]
struct ChartSeries {
    name: String,
    points: Vec<(f64, f64)>,
}

/// An SVG line chart (the plotting code of savant eval's HTML report): `series`: `[{ name,
/// points: [[x, y], ...] }]`. Returns the SVG markup (no scripts or styles).
#[wasm_bindgen(js_name = lineChart)]
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: JsValue) -> Result<String, JsError> {
    let series: Vec<ChartSeries> =
        serde_wasm_bindgen::from_value(series).map_err(|e| JsError::new(&format!("chart series: {e}")))?;
    let series: Vec<savant_core::metrics::svg::Series> =
        series.into_iter().map(|s| savant_core::metrics::svg::Series { name: s.name, points: s.points }).collect();
    Ok(savant_core::metrics::svg::line_plot(title, x_label, y_label, &series))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The request shapes JavaScript sends, checked natively (the browser tests come with the page).
    #[test]
    fn requests_deserialize_with_defaults() {
        let req: CleanRequest = serde_json::from_str(
            r#"{"format": "csv", "options": {"text_column": "note", "label_column": "dept", "dedup": "near", "redact": ["EMAIL"]}}"#,
        )
        .unwrap();
        assert_eq!(req.options.dedup, savant_core::data::DedupMode::Near);
        assert_eq!(req.options.min_chars, 1);
        let (out, report) =
            clean_bytes(b"note,dept\nmail a@b.org,x\n", req.format, Format::Csv, req.options, "input").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "note,dept\nmail [EMAIL],x\n");
        assert_eq!(report.redactions["EMAIL"], 1);
        let req: SplitRequest = serde_json::from_str(r#"{"format": "jsonl", "options": {"seed": 3}}"#).unwrap();
        assert_eq!(req.options.seed, 3);
        assert_eq!(req.options.val, 0.1);
        let req: EvalRequest = serde_json::from_str(r#"{"format": "csv", "bootstrap": 20}"#).unwrap();
        let out = eval_request(b"label,prob_a,prob_b\na,0.9,0.1\nb,0.3,0.7\nb,0.6,0.4\n", req).unwrap();
        assert_eq!(out.report.n, 3);
        assert_eq!(out.report.pos_label.as_deref(), Some("b"));
        assert!(out.html.contains("<svg"));
        let p = preview_request(b"a,b\n1,2\n3\n4,5\n", PreviewRequest { format: Format::Csv, source: None, rows: 1 })
            .unwrap();
        assert_eq!((p.columns.len(), p.rows.len(), p.total, p.malformed), (2, 1, 3, 1));
    }
}
