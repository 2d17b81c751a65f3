//! The TF-IDF + logistic-regression baseline against scikit-learn on the committed fixture
//! (`tests/fixtures/baseline/make.py` wrote the CSVs and expected.json).

use savant_core::baseline::{Baseline, BaselineFit, BaselineOptions};
use savant_core::data::{Format, TableReader};
use savant_core::probe::macro_f1;
use savant_core::train::{LabelSet, LabelledRows};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/baseline")
}

fn split(name: &str) -> LabelledRows {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    LabelledRows::read(TableReader::new(&bytes[..], Format::Csv, name).unwrap(), "text", "label").unwrap()
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap()
}

fn only(rows: &LabelledRows, classes: &[&str]) -> LabelledRows {
    let mut out = LabelledRows { source: rows.source.clone(), ..LabelledRows::default() };
    for (t, l) in rows.texts.iter().zip(&rows.labels) {
        if classes.contains(&l.as_str()) {
            out.texts.push(t.clone());
            out.labels.push(l.clone());
        }
    }
    out
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Compares one fit with sklearn's; returns the largest probability difference.
fn compare(fit: &BaselineFit, want: &Value, train: &LabelledRows, test: &LabelledRows) -> f64 {
    let tfidf = fit.baseline.tfidf();
    let terms: Vec<&str> = want["vocabulary"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(train.texts.len() as u64, want["train_rows"].as_u64().unwrap());
    assert_eq!(fit.baseline.vocabulary_size() as u64, want["vocabulary_size"].as_u64().unwrap());
    assert_eq!(tfidf.terms(), terms, "vocabulary (sorted) differs");
    for (i, (got, want)) in tfidf.idf().iter().zip(f64s(&want["idf"])).enumerate() {
        assert!((got - want).abs() < 1e-9, "idf of '{}': {got} vs sklearn {want}", terms[i]);
    }
    let classes: Vec<&str> = want["classes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(fit.baseline.classes(), classes);
    let table = want["c_table"].as_array().unwrap();
    assert_eq!(fit.table.len(), table.len());
    for (got, want) in fit.table.iter().zip(table) {
        assert_eq!(got.c, want["c"].as_f64().unwrap());
        let w = want["val_macro_f1"].as_f64().unwrap();
        assert!((got.val_macro_f1 - w).abs() < 0.005, "C {}: val macro-F1 {} vs sklearn {w}", got.c, got.val_macro_f1);
    }
    assert_eq!(fit.c, want["c"].as_f64().unwrap(), "chosen C");
    assert!((fit.val_macro_f1 - want["val_macro_f1"].as_f64().unwrap()).abs() < 0.005);

    let texts: Vec<&str> = test.texts.iter().map(String::as_str).collect();
    let labels = LabelSet::from_names(fit.baseline.classes().to_vec());
    let y = labels.ids(test.labels.iter().map(String::as_str), &test.source).unwrap();
    let test_f1 = macro_f1(&y, &fit.baseline.predict(&texts), classes.len());
    let want_f1 = want["test_macro_f1"].as_f64().unwrap();
    assert!((test_f1 - want_f1).abs() < 0.005, "test macro-F1 {test_f1} vs sklearn {want_f1}");
    let probs = fit.baseline.probabilities_f64(&texts);
    let want_p: Vec<f64> = want["test_probabilities"].as_array().unwrap().iter().flat_map(f64s).collect();
    assert_eq!(probs.len(), want_p.len());
    probs.iter().zip(&want_p).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

#[test]
fn multiclass_equals_sklearn() {
    let (train, val, test) = (split("train.csv"), split("val.csv"), split("test.csv"));
    let tight = BaselineOptions { tol: 1e-10, max_iter: 10_000, ..BaselineOptions::default() };
    let fit = Baseline::fit_rows(&train, &val, &tight).unwrap();
    assert!(fit.table.iter().all(|r| r.converged), "{:?}", fit.table);
    let diff = compare(&fit, &expected(), &train, &test);
    assert!(diff < 1e-6, "test probabilities differ from sklearn's by up to {diff}");
    // The defaults (the CLI's) stop earlier, still within 1e-3 of the optimum.
    let fit = Baseline::fit_rows(&train, &val, &BaselineOptions::default()).unwrap();
    let diff = compare(&fit, &expected(), &train, &test);
    assert!(diff < 1e-3, "default tolerance: test probabilities differ from sklearn's by up to {diff}");
}

#[test]
fn binary_equals_sklearns_sigmoid_model() {
    let two = ["billing", "fraud"];
    let (train, val, test) =
        (only(&split("train.csv"), &two), only(&split("val.csv"), &two), only(&split("test.csv"), &two));
    let tight = BaselineOptions { tol: 1e-10, max_iter: 10_000, ..BaselineOptions::default() };
    let fit = Baseline::fit_rows(&train, &val, &tight).unwrap();
    let diff = compare(&fit, &expected()["binary"], &train, &test);
    assert!(diff < 1e-6, "binary: test probabilities differ from sklearn's by up to {diff}");
}

// The multi-label baseline (one-vs-rest) against scikit-learn's OneVsRestClassifier on the
// committed fixture (`tests/fixtures/baseline/make_multilabel.py`): every C's val micro-F1
// within 0.5 points, the same C and per-label thresholds, test probabilities within 1e-4.
#[test]
fn one_vs_rest_equals_sklearn() {
    use savant_core::baseline::multilabel::LabelSetBaseline;
    let read = |name: &str| {
        let bytes = std::fs::read(dir().join(name)).unwrap();
        let reader = TableReader::new(&bytes[..], Format::Csv, name).unwrap();
        LabelledRows::read_with(reader, "text", "labels", Some("|")).unwrap()
    };
    let (train, val, test) = (read("train_multi.csv"), read("val_multi.csv"), read("test_multi.csv"));
    let want: Value = serde_json::from_slice(&std::fs::read(dir().join("expected_multilabel.json")).unwrap()).unwrap();
    let options = BaselineOptions { tol: 1e-10, max_iter: 10_000, ..Default::default() };
    let fit = LabelSetBaseline::fit_rows(&train, &val, &options).unwrap();
    assert_eq!(serde_json::json!(fit.baseline.labels), want["labels"]);
    for ((c, f1), w) in fit.table.iter().zip(want["c_table"].as_array().unwrap()) {
        assert_eq!(Some(*c), w["c"].as_f64());
        let sk = w["val_f1_micro"].as_f64().unwrap();
        assert!((f1 - sk).abs() <= 0.005, "C {c}: val micro-F1 {f1} vs sklearn {sk}");
    }
    assert_eq!(Some(fit.c), want["c"].as_f64());
    assert_eq!(fit.baseline.thresholds, f64s(&want["thresholds"]));
    let texts: Vec<&str> = test.texts.iter().map(String::as_str).collect();
    let got = fit.baseline.probabilities(&texts);
    let sk: Vec<f64> = want["test_probabilities"].as_array().unwrap().iter().flat_map(f64s).collect();
    assert_eq!(got.len(), sk.len());
    let worst = got.iter().zip(&sk).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-4, "test probabilities differ from sklearn's by {worst}");
    assert!((fit.val_f1_micro - want["val_f1_micro"].as_f64().unwrap()).abs() <= 0.005);
}
