//! The annotator's and the folder picker's calls: thin wrappers over `savant_core::annotate` and
//! `savant_core::data::ingest`. The page keeps the labelling state; these decide what it means.

use savant_core::annotate::{self, AnnotationTable, Mark};
use savant_core::data::ingest::{Ingest, IngestOptions, LabelFrom, RowWriter};
use savant_core::data::redact::PiiType;
use savant_core::data::Format;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{as_uint8array, to_js};

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[derive(Deserialize)]
struct LoadRequest {
    format: Format,
    #[serde(default)]
    source: Option<String>,
    text_column: String,
    #[serde(default = "crate::default_label")]
    label_column: String,
    /// Identifier types to redact in the shown (and exported) text; empty: none.
    #[serde(default)]
    redact: Vec<PiiType>,
}

/// A table to label: `request`: `{ format, source?, text_column, label_column? ("label"),
/// redact?: ["EMAIL", ...] }`. Returns the `AnnotationTable` (`columns`, `rows`, `marks`,
/// `labels_found`, `malformed`, `redactions`, ...), which `annotateExport` takes back.
#[wasm_bindgen(js_name = annotateLoad)]
pub fn annotate_load(input: &[u8], request: JsValue) -> Result<JsValue, JsError> {
    let req: LoadRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| err(format!("annotate options: {e}")))?;
    let source = req.source.unwrap_or_else(|| "input".into());
    let table = AnnotationTable::load(input, req.format, &source, &req.text_column, &req.label_column, &req.redact)
        .map_err(err)?;
    to_js(&table)
}

#[derive(Deserialize)]
struct ExportRequest {
    format: Format,
    /// Only the labelled rows (to train on), or every row (to continue elsewhere).
    #[serde(default = "yes")]
    labelled_only: bool,
    /// CSV cells a spreadsheet would run as formulas are written as text (on unless turned off).
    #[serde(default = "yes")]
    spreadsheet_safe: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize)]
struct Exported {
    #[serde(with = "as_uint8array")]
    output: Vec<u8>,
}

/// The labelled file: `table` as `annotateLoad` gave it, `marks` one per row (`{ label, by, at }`
/// or null), `request`: `{ format, labelled_only? (true), spreadsheet_safe? (true) }`. Returns
/// `{ output: Uint8Array }`.
#[wasm_bindgen(js_name = annotateExport)]
pub fn annotate_export(table: JsValue, marks: JsValue, request: JsValue) -> Result<JsValue, JsError> {
    let table: AnnotationTable = serde_wasm_bindgen::from_value(table).map_err(|e| err(format!("the table: {e}")))?;
    let marks: Vec<Option<Mark>> =
        serde_wasm_bindgen::from_value(marks).map_err(|e| err(format!("the labels: {e}")))?;
    let req: ExportRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| err(format!("export options: {e}")))?;
    let output = table.export(&marks, req.format, req.labelled_only, req.spreadsheet_safe).map_err(err)?;
    to_js(&Exported { output })
}

/// The label set the user typed, checked (trimmed, none empty or twice, two or more).
#[wasm_bindgen(js_name = labelSet)]
pub fn label_set(names: Vec<String>) -> Result<Vec<String>, JsError> {
    annotate::label_set(&names).map_err(err)
}

/// Active learning's order: `embeddings` (one `dim`-wide vector per table row), `labelled`
/// (`[[row, class], ...]`), `classes`, and the `unlabelled` rows to order. Returns `[{ row,
/// entropy, predicted }]`, most uncertain first.
#[wasm_bindgen(js_name = uncertainFirst)]
pub fn uncertain_first(
    embeddings: &[f32],
    dim: usize,
    labelled: JsValue,
    classes: usize,
    unlabelled: Vec<u32>,
) -> Result<JsValue, JsError> {
    let labelled: Vec<(usize, usize)> =
        serde_wasm_bindgen::from_value(labelled).map_err(|e| err(format!("labelled rows: {e}")))?;
    let unlabelled: Vec<usize> = unlabelled.into_iter().map(|r| r as usize).collect();
    let order = annotate::most_uncertain_first(embeddings, dim, &labelled, classes, &unlabelled).map_err(err)?;
    to_js(&order)
}

#[derive(Deserialize)]
struct IngestRequest {
    #[serde(default = "folder")]
    label_from: String,
    #[serde(default)]
    label_regex: Option<String>,
    #[serde(default = "text")]
    text_field: String,
    /// The output table: "jsonl" or "csv".
    #[serde(default = "jsonl")]
    format: Format,
    #[serde(default = "max_file_mib")]
    max_file_mib: u64,
    #[serde(default)]
    source: Option<String>,
}

fn folder() -> String {
    "folder".into()
}
fn text() -> String {
    "text".into()
}
fn jsonl() -> Format {
    Format::Jsonl
}
fn max_file_mib() -> u64 {
    64
}

#[derive(Serialize)]
struct Ingested {
    #[serde(with = "as_uint8array")]
    output: Vec<u8>,
    rows: usize,
    report: savant_core::data::Report,
}

/// `savant ingest` over a picked folder: `files` are the `File`s of an `<input webkitdirectory>`
/// (their `webkitRelativePath` starts with the folder's name, which is dropped), `request`:
/// `{ label_from? ("folder" | "regex" | "none"), label_regex?, text_field? ("text"), format?
/// ("jsonl" | "csv"), max_file_mib? (64), source? }`. Files are read in path order, one at a
/// time, and one over the size limit is counted without being read. Resolves to `{ output:
/// Uint8Array, rows, report }` — the bytes `savant ingest` writes for the same folder.
#[wasm_bindgen(js_name = ingestFiles)]
pub async fn ingest_files(files: js_sys::Array, request: JsValue) -> Result<JsValue, JsError> {
    let req: IngestRequest =
        serde_wasm_bindgen::from_value(request).map_err(|e| err(format!("ingest options: {e}")))?;
    let options = IngestOptions {
        label_from: LabelFrom::parse(&req.label_from, req.label_regex.as_deref()).map_err(err)?,
        text_field: req.text_field,
        chunk_tokens: None,
        overlap: 0,
    };
    let mut picked = Vec::new();
    for file in files.iter() {
        let get = |key: &str| js_sys::Reflect::get(&file, &key.into()).unwrap_or(JsValue::UNDEFINED);
        let full = get("webkitRelativePath").as_string().filter(|p| !p.is_empty()).or_else(|| get("name").as_string());
        let full = full.ok_or_else(|| err("a picked entry is not a File"))?;
        // "picked-folder/billing/a.txt" → "billing/a.txt", as the CLI names it inside DIR.
        let relative = full.split_once('/').map_or(full.clone(), |(_, rest)| rest.to_string());
        let size = get("size").as_f64().unwrap_or(0.0) as u64;
        picked.push((relative, size, file));
    }
    if picked.is_empty() {
        return Err(err("the folder holds no file"));
    }
    // Component by component, as the CLI walks a folder (sorted entries, depth first).
    picked.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
    let source = req.source.unwrap_or_else(|| "folder".into());
    let mut ingest = Ingest::new(options, None, &source).map_err(err)?;
    let mut writer = RowWriter::new(Vec::new(), req.format, ingest.labelled(), false).map_err(err)?;
    let mut rows = 0;
    for (relative, size, file) in picked {
        if !ingest.admits(&relative, size, req.max_file_mib) {
            continue;
        }
        let bytes = match read_file(&file).await {
            Ok(b) => b,
            Err(e) => {
                ingest.skip(&relative, "unreadable", &e);
                continue;
            }
        };
        for row in ingest.file(&relative, &bytes).map_err(err)? {
            rows += 1;
            writer.write(&row).map_err(err)?;
        }
    }
    let output = writer.finish().map_err(err)?;
    to_js(&Ingested { output, rows, report: ingest.report })
}

/// A `File`'s bytes (`await file.arrayBuffer()`).
async fn read_file(file: &JsValue) -> Result<Vec<u8>, String> {
    let message = |e: JsValue| e.as_string().unwrap_or_else(|| format!("{e:?}"));
    let method: js_sys::Function = js_sys::Reflect::get(file, &"arrayBuffer".into())
        .map_err(message)?
        .dyn_into()
        .map_err(|_| "not a File".to_string())?;
    let promise: js_sys::Promise = method.call0(file).map_err(message)?.dyn_into().map_err(message)?;
    let buffer = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(message)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
