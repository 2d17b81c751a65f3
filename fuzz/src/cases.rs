//! What each fuzz target does with its input, as plain functions: the libFuzzer targets
//! (fuzz_targets/) call them, and `core/tests/fuzz_regressions.rs` includes this file to replay
//! every input under fuzz/regressions/TARGET/ in the ordinary test run. Each must return (an
//! error is fine) and never panic.
#![allow(clippy::all)]

use burn::tensor::Device;
use savant_core::annotate::AnnotationTable;
use savant_core::data::ingest::{html_to_text, Ingest, IngestOptions, LabelFrom};
use savant_core::data::redact::{PiiType, Redactor};
use savant_core::data::{clean_bytes, CleanOptions, DedupMode, Format, TableReader};
use savant_core::finetune::peft::{read_adapter, read_adapter_config};
use savant_core::metrics::input::read_predictions;
use savant_core::metrics::report::{evaluate, EvalOptions};
use savant_core::model::{load_classifier, BertClassifier, BertConfig, Checkpoint, Pooling};
use savant_core::tokenize::TextTokenizer;
use savant_core::train::checkpoint::params_from_safetensors;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::OnceLock;

/// Runs target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "table" => table(data),
        "redact" => redact(data),
        "config" => config(data),
        "safetensors" => safetensors(data),
        "tokenizer" => tokenizer(data),
        "adapter" => adapter(data),
        "checkpoint" => checkpoint(data),
        "eval_input" => eval_input(data),
        "ingest" => ingest(data),
        "annotate" => annotate(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// The tests' tiny classifier (tests/fixtures/model/tiny-cls), loaded once.
fn tiny() -> &'static (BertConfig, BertClassifier) {
    static TINY: OnceLock<(BertConfig, BertClassifier)> = OnceLock::new();
    TINY.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model/tiny-cls");
        let config = BertConfig::from_json(&std::fs::read(dir.join("config.json")).unwrap(), "config.json").unwrap();
        let file = std::fs::File::open(dir.join("model.safetensors")).unwrap();
        let mut checkpoint = Checkpoint::open(std::io::BufReader::new(file), "model.safetensors").unwrap();
        let (model, _) = load_classifier(&config, &mut checkpoint, &Device::flex()).unwrap();
        (config, model)
    })
}

/// CSV/TSV/JSONL reading and the whole cleaning pipeline (rules, redaction, near-dedup, label
/// conflicts): any bytes give rows and a report, or an error — never a panic. The first byte
/// picks the format.
pub fn table(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else { return };
    let format = [Format::Csv, Format::Tsv, Format::Jsonl][pick as usize % 3];
    let opts = CleanOptions {
        dedup: if pick & 4 != 0 { DedupMode::Near } else { DedupMode::Exact },
        redact: if pick & 8 != 0 { PiiType::ALL.to_vec() } else { Vec::new() },
        label_column: if pick & 16 != 0 { None } else { Some("label".into()) },
        spreadsheet_safe: pick & 32 != 0,
        ..CleanOptions::default()
    };
    if let Ok((out, report)) = clean_bytes(input, format, format, opts, "fuzz") {
        assert!(report.accounts_for_every_row(), "{report:?}");
        let _ = out;
    }
}

/// PII redaction on any text: placeholders only replace, never panic on odd Unicode.
pub fn redact(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    let r = REDACTOR.get_or_init(|| Redactor::new(&PiiType::ALL));
    let mut counts = BTreeMap::new();
    let out = r.redact(text, &mut counts);
    if counts.is_empty() {
        assert_eq!(out, text);
    }
}

/// HF `config.json` (and sentence-transformers' pooling config): checked sizes or an error.
pub fn config(data: &[u8]) {
    if let Ok(c) = BertConfig::from_json(data, "config.json") {
        assert!(c.hidden_size > 0 && c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0);
        let _ = c.min_weights();
    }
    let _ = Pooling::from_json(data, "1_Pooling/config.json");
}

/// safetensors files: the header checked against the real size before anything is allocated,
/// every tensor read back as f32 or refused.
pub fn safetensors(data: &[u8]) {
    let Ok(mut c) = Checkpoint::open(Cursor::new(data), "model.safetensors") else { return };
    for name in c.names() {
        let _ = c.read_f32(&name);
    }
}

/// Tokenizer files (`tokenizer.json`, or `vocab.txt` when the first byte is odd), then an
/// encoding of the tail of the input with them.
pub fn tokenizer(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    // The file, then after a NUL byte the text to encode.
    let (file, text) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], String::from_utf8_lossy(&rest[i + 1..]).into_owned()),
        None => (rest, "the patient's card was charged twice".to_string()),
    };
    let tokenizer = if pick & 1 == 1 {
        TextTokenizer::from_vocab_txt(file, "vocab.txt", pick & 2 == 2)
    } else {
        TextTokenizer::from_tokenizer_json(file, "tokenizer.json", 0)
    };
    if let Ok(mut t) = tokenizer {
        let _ = t.ids(&text);
        let _ = t.word_pieces(&text);
        let _ = t.set_max_len(Some(8));
        let _ = t.encode_each(&[text.as_str()]);
    }
}

/// PEFT adapter folders: `adapter_config.json`, then (after a NUL byte) the adapter weights read
/// onto the tests' tiny classifier.
pub fn adapter(data: &[u8]) {
    let (json, weights) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(strategy) = read_adapter_config(json, "adapter_config.json") else { return };
    let Ok(mut checkpoint) = Checkpoint::open(Cursor::new(weights), "adapter_model.safetensors") else { return };
    let (config, model) = tiny();
    let _ = read_adapter(model.clone(), config, &strategy, &mut checkpoint, &Device::flex());
}

/// A training checkpoint's weights (`checkpoints/step-N/model.safetensors`) put back onto the
/// tests' tiny classifier by parameter name and shape: every mismatch an error.
pub fn checkpoint(data: &[u8]) {
    let (_, model) = tiny();
    let _ = params_from_safetensors(model.clone(), data, "checkpoint");
}

/// `savant eval`'s input (a label column and prob_<class> columns) and the metrics report on it.
pub fn eval_input(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else { return };
    let format = if pick & 1 == 0 { Format::Csv } else { Format::Jsonl };
    let Ok(reader) = TableReader::new(input, format, "predictions") else { return };
    let Ok(preds) = read_predictions(reader, "label") else { return };
    let opts = EvalOptions { pos_label: None, bootstrap: (pick as usize >> 1) % 4, seed: 1, curves: pick & 2 != 0 };
    let _ = evaluate(&preds, &opts);
}

/// `savant ingest`'s readers: HTML stripping, and a file of any name and bytes (text, HTML, JSON,
/// JSONL, binary) becoming rows or a counted skip.
pub fn ingest(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else { return };
    if let Ok(html) = std::str::from_utf8(bytes) {
        let _ = html_to_text(html);
    }
    let name =
        ["a/doc.txt", "a/b/page.html", "x.htm", "d.json", "lines.jsonl", "notes.md", "blob.bin"][pick as usize % 7];
    let options =
        IngestOptions { label_from: LabelFrom::Folder, text_field: "text".into(), chunk_tokens: None, overlap: 0 };
    let mut ingest = Ingest::new(options, None, "fuzz").expect("valid options");
    let _ = ingest.file(name, bytes);
    assert_eq!(ingest.report.rows_in, 1);
}

/// The annotator's table: any bytes load as rows to label (or an error), and the export of the
/// loaded labels reads back to the same rows and labels.
pub fn annotate(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else { return };
    let format = [Format::Csv, Format::Tsv, Format::Jsonl][pick as usize % 3];
    let Ok(table) = AnnotationTable::load(input, format, "fuzz", "text", "label", &[]) else { return };
    let Ok(out) = table.export(&table.marks, format, false, false) else { return };
    let back = AnnotationTable::load(&out, format, "export", "text", "label", &[]).expect("our own export reads back");
    assert_eq!(back.marks.len(), table.marks.len());
}
