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

/// A multi-label fixture split: `labels` holds each row's set joined by `|`.
fn read_sets(name: &str) -> LabelledRows {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    let reader = TableReader::new(&bytes[..], Format::Csv, name).unwrap();
    LabelledRows::read_with(reader, "text", "labels", Some("|"), false).unwrap()
}

// The multi-label baseline (one-vs-rest) against scikit-learn's OneVsRestClassifier on the
// committed fixture (`tests/fixtures/baseline/make_multilabel.py`): every C's val micro-F1
// within 0.5 points, the same C and per-label thresholds, test probabilities within 1e-4.
#[test]
fn one_vs_rest_equals_sklearn() {
    use savant_core::baseline::multilabel::LabelSetBaseline;
    let (train, val, test) = (read_sets("train_multi.csv"), read_sets("val_multi.csv"), read_sets("test_multi.csv"));
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

// The multi-label average with the one-vs-rest baseline: the saved file reads back to the same
// probabilities and thresholds; the weight chosen on val is never worse than the baseline alone
// and keeps a perfect specialist whole.
#[test]
fn label_set_ensemble_round_trips_and_chooses_on_val() {
    use savant_core::baseline::multilabel::{LabelSetBaseline, LabelSetEnsemble};
    use savant_core::train::thresholds::{ThresholdChoice, ThresholdWord, Thresholds};
    let (train, val) = (read_sets("train_multi.csv"), read_sets("val_multi.csv"));
    let fit = LabelSetBaseline::fit_rows(&train, &val, &BaselineOptions::default()).unwrap();
    let labels = fit.baseline.labels.clone();
    let k = labels.len();
    let rows = val.texts.len();
    let mut y = vec![false; rows * k];
    for (i, set) in val.sets.iter().enumerate() {
        for l in set {
            y[i * k + labels.iter().position(|x| x == l).unwrap()] = true;
        }
    }
    let per_label = ThresholdChoice::Named(ThresholdWord::PerLabel);
    let noise = vec![0.5; rows * k];
    let (w, chosen, score) = LabelSetEnsemble::choose(&noise, &fit.val_probabilities, &y, k, per_label, "f1_micro");
    // Weight 0 (the baseline alone, at its own thresholds) is one of the candidates: the chosen
    // average is never worse on val.
    assert!(w <= 0.5 && score >= fit.val_f1_micro - 1e-12, "weight {w}: {score} vs {}", fit.val_f1_micro);
    if w == 0.0 {
        assert_eq!(chosen, fit.baseline.thresholds, "weight 0: the baseline's own thresholds");
    }
    let truth: Vec<f64> = y.iter().map(|&b| b as u8 as f64).collect();
    let (w, _, score) = LabelSetEnsemble::choose(&truth, &fit.val_probabilities, &y, k, per_label, "f1_micro");
    assert_eq!((w, score), (1.0, 1.0), "a perfect specialist keeps weight 1");

    let thresholds =
        Thresholds { labels: labels.clone(), thresholds: chosen, label_sep: "|".into(), chosen: "per-label".into() };
    let e = LabelSetEnsemble { weight: 0.3, baseline: fit.baseline.clone(), thresholds };
    let back = LabelSetEnsemble::from_json(&e.to_json(), &labels, "savant_ensemble.json").unwrap();
    assert_eq!((back.weight, &back.thresholds), (e.weight, &e.thresholds));
    assert_eq!(back.baseline.thresholds, fit.baseline.thresholds);
    let texts: Vec<&str> = val.texts.iter().map(String::as_str).collect();
    let specialist = vec![0.25f32; rows * k];
    assert_eq!(back.mix(&specialist, &texts), e.mix(&specialist, &texts));
    // Another model's labels, or a one-label ensemble file, are refused by name.
    let other: Vec<String> = labels.iter().map(|l| format!("{l}x")).collect();
    let err = LabelSetEnsemble::from_json(&e.to_json(), &other, "e.json").unwrap_err().to_string();
    assert!(err.contains("e.json") && err.contains("labels"), "{err}");
    let err = LabelSetEnsemble::from_json(b"{\"weight\": 0.5}", &labels, "e.json").unwrap_err().to_string();
    assert!(err.contains("e.json") && err.contains("savant-label-set-ensemble/1"), "{err}");
}
