//! Multi-label rows end to end: `train --label-sep` (sigmoid + BCE, thresholds tuned on val),
//! `predict` (label sets over the saved thresholds), `eval --multi-label`, `merge`.

use super::common::*;

/// Rows whose labels are the topics their words name: one, two or three of billing, fraud, fees.
fn label_set_task(dir: &std::path::Path) {
    let topics = [("billing charge", "billing"), ("fraud stolen", "fraud"), ("fee", "fees")];
    let (mut train, mut val) = (String::from("text,topics\n"), String::from("text,topics\n"));
    for i in 0..40 {
        let on: Vec<usize> = (0..3).filter(|j| (i % 7 + 1) & (1 << j) != 0).collect();
        let words: Vec<&str> = on.iter().map(|&j| topics[j].0).collect();
        let set: Vec<&str> = on.iter().map(|&j| topics[j].1).collect();
        let row = format!("{} {},{}\n", words.join(" "), ["the", "a", "my", "this"][i % 4], set.join("|"));
        if i < 30 {
            train.push_str(&row)
        } else {
            val.push_str(&row)
        }
    }
    train.push_str("a text without topics,\n");
    write(dir, "train.csv", &train);
    write(dir, "val.csv", &val);
}

#[test]
fn multi_label_train_predict_eval_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    label_set_task(dir.path());
    let model = model_fixture("tiny-cls");
    let m = model.to_str().unwrap();
    let train = |mode: &str, out: &str, extra: &[&str]| {
        let args = ["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--label", "topics"];
        let more = ["--label-sep", "|", "--mode", mode, "--epochs", "4", "--lr", "2e-2", "--batch-size", "6"];
        let rest = ["--max-len", "16", "--device", "cpu", "--metric", "f1_micro", "-o", out];
        savant(&[&args[..], &more[..], &rest[..], extra].concat(), dir.path())
    };
    let o_train = train("lora", "runs/ml", &["--thresholds", "per-label"]);
    let o = &o_train;
    assert_no_panic(o, "train");
    assert!(o.status.success(), "{}", stderr(o));
    let run = dir.path().join("runs/ml");
    let metrics = read_report(&run.join("metrics.json"));
    // The head starts from one logistic regression per label on the frozen model (epoch 0).
    assert_eq!(metrics["head_init"], "probe", "{metrics}");
    assert!(metrics["probe_val_f1_micro"].is_number(), "{metrics}");
    // sklearn's multi-label keys, the separator, one tuned threshold per label, the val report at them.
    for key in ["f1_micro", "f1_samples", "subset_accuracy", "hamming_loss", "label_ranking_loss"] {
        assert!(metrics.get(key).is_some(), "{key}: {metrics}");
    }
    assert_eq!(metrics["label_sep"], "|");
    // The one-vs-rest TF-IDF baseline on the same splits, compared at the end.
    assert!(metrics["baseline_val_f1_micro"].is_number(), "{metrics}");
    assert!(stderr(o).contains("val micro-F1 at the tuned thresholds: the fine-tuned specialist"), "{}", stderr(o));
    assert_eq!(metrics["rows_skipped"], 1, "the row without topics is counted: {metrics}");
    let thresholds: Vec<f64> = serde_json::from_value(metrics["thresholds"].clone()).unwrap();
    assert_eq!(thresholds.len(), 3);
    assert!(thresholds.iter().all(|t| *t > 0.0 && *t < 1.0));
    let tuned = metrics["val_at_thresholds"]["f1_micro"].as_f64().unwrap();
    let config: Value = serde_json::from_slice(&std::fs::read(run.join("adapter/config.json")).unwrap()).unwrap();
    assert_eq!(config["problem_type"], "multi_label_classification");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(run.join("adapter/savant_thresholds.json")).unwrap()).unwrap();
    assert_eq!(saved["labels"], serde_json::json!(["billing", "fees", "fraud"]));
    assert_eq!(saved["thresholds"], metrics["thresholds"]);

    // predict writes each row's set over the saved thresholds; eval --multi-label reads it back
    // to the val report at the tuned thresholds.
    let predict = |extra: &[&str], out: &str| {
        let args = ["predict", "--model", m, "val.csv", "--text", "text", "--device", "cpu", "-o", out];
        savant(&[&args[..], extra].concat(), dir.path())
    };
    let o = predict(&["--adapter", "runs/ml/adapter"], "preds.csv");
    assert!(o.status.success(), "{}", stderr(&o));
    let preds = std::fs::read_to_string(dir.path().join("preds.csv")).unwrap();
    let header = preds.lines().next().unwrap();
    assert_eq!(header, "text,topics,pred,prob_billing,prob_fees,prob_fraud");
    let o =
        savant(&["eval", "preds.csv", "--label", "topics", "--multi-label", "--json", "--html", "r.html"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // The HTML report: self-contained, a row and a heatmap cell per label, the micro-averaged curve.
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains("F1 per label") && html.contains("micro-average") && !html.contains("<script"));
    for label in ["billing", "fees", "fraud"] {
        assert!(html.contains(&format!("<tr><td>{label}</td>")), "{label} in the per-label table");
    }
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["predicted_by"], "pred column");
    let f1 = report["f1_micro"].as_f64().unwrap();
    assert!((f1 - tuned).abs() < 1e-9, "predict + eval give the val micro-F1 at the tuned thresholds: {f1} vs {tuned}");
    // Probabilities are sigmoids, not a softmax: a row's need not sum to 1.
    let sums: Vec<f64> =
        preds.lines().skip(1).map(|l| l.rsplitn(4, ',').take(3).map(|p| p.parse::<f64>().unwrap()).sum()).collect();
    assert!(sums.iter().any(|s| (s - 1.0).abs() > 0.05), "{sums:?}");

    // Averaged with the one-vs-rest baseline (weight and thresholds chosen together on val):
    // predict --ensemble + eval give the average's val report.
    let averaged = &metrics["ensemble_val_at_thresholds"];
    assert!(metrics["ensemble_weight"].is_number() && averaged["f1_micro"].is_number(), "{metrics}");
    assert_eq!(metrics["ensemble_val_f1_micro"], averaged["f1_micro"]);
    assert!(stderr(&o_train).contains("averaged with the one-vs-rest baseline"), "{}", stderr(&o_train));
    let o = predict(&["--adapter", "runs/ml/adapter", "--ensemble", "runs/ml"], "ens.csv");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = savant(&["eval", "ens.csv", "--label", "topics", "--multi-label", "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["f1_micro", "f1_macro", "subset_accuracy", "hamming_loss"] {
        let (got, want) = (report[key].as_f64().unwrap(), averaged[key].as_f64().unwrap());
        assert!((got - want).abs() < 1e-9, "{key}: predict --ensemble + eval {got} vs the val report {want}");
    }

    // Merged, the model keeps its head type and thresholds: the same sets.
    let o = savant(&["merge", "--model", m, "--adapter", "runs/ml/adapter", "-o", "merged"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("merged/savant_thresholds.json").is_file());
    let o = savant(
        &["predict", "--model", "merged", "val.csv", "--text", "text", "--device", "cpu", "-o", "m.csv"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let sets = |f: &str| -> Vec<String> {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        text.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().to_string()).collect()
    };
    assert_eq!(sets("preds.csv"), sets("m.csv"));

    // Full fine-tuning (with each label's pos_weight) writes the model folder with both; a folder without the thresholds file
    // predicts at 0.5, and says so.
    let o = train("full", "runs/full", &["--thresholds", "0.4", "--class-weights", "balanced"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let full = dir.path().join("runs/full/model");
    let saved: Value = serde_json::from_slice(&std::fs::read(full.join("savant_thresholds.json")).unwrap()).unwrap();
    assert_eq!(saved["thresholds"], serde_json::json!([0.4, 0.4, 0.4]));
    std::fs::remove_file(full.join("savant_thresholds.json")).unwrap();
    let o = savant(&["predict", "--model", "runs/full/model", "val.csv", "--device", "cpu", "-o", "f.csv"], dir.path());
    assert!(o.status.success() && stderr(&o).contains("from probability 0.5"), "{}", stderr(&o));

    // Resuming needs the same label sets: the targets are part of the run's identity.
    let original = std::fs::read_to_string(dir.path().join("train.csv")).unwrap();
    write(dir.path(), "train.csv", &original.replace("billing|fees", "billing"));
    let o = train("lora", "runs/ml", &["--thresholds", "per-label", "--resume"]);
    assert!(!o.status.success() && stderr(&o).contains("train_targets_checksum"), "{}", stderr(&o));
    write(dir.path(), "train.csv", &original);

    // The one-vs-rest baseline alone (`savant baseline --label-sep`): its thresholds, the test
    // predictions as label sets, eval --multi-label's reports.
    let args = ["baseline", "--train", "train.csv", "--val", "val.csv", "--test", "val.csv", "--label", "topics"];
    let o = savant(&[&args[..], &["--label-sep", "|", "-o", "base"]].concat(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let b = read_report(&dir.path().join("base/baseline.json"));
    assert_eq!(b["labels"], serde_json::json!(["billing", "fees", "fraud"]));
    assert_eq!(b["thresholds"].as_array().unwrap().len(), 3);
    let t = read_report(&dir.path().join("base/test_metrics.json"));
    assert_eq!(t["f1_micro"], b["test"]["f1_micro"]);
    assert!(dir.path().join("base/test_report.html").is_file());
    let preds = std::fs::read_to_string(dir.path().join("base/test_predictions.csv")).unwrap();
    assert_eq!(preds.lines().next().unwrap(), "text,topics,pred,prob_billing,prob_fees,prob_fraud");

    // Bad input: a separator that joins nothing is said; a JSON array's label holding the
    // separator is refused with its row.
    let base =
        ["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--label", "topics", "--epochs", "1"];
    let o = savant(
        &[&base[..], &["--label-sep", ";", "--max-len", "16", "--no-baseline", "-o", "runs/semi"]].concat(),
        dir.path(),
    );
    assert!(o.status.success() && stderr(&o).contains("never joins two"), "{}", stderr(&o));
    write(dir.path(), "arr.jsonl", "{\"text\": \"fee fraud\", \"topics\": [\"fees|fraud\"]}\n");
    let o = savant(
        &[
            "train",
            "--model",
            m,
            "--train",
            "arr.jsonl",
            "--val",
            "arr.jsonl",
            "--label",
            "topics",
            "--label-sep",
            "|",
            "-o",
            "runs/arr",
        ],
        dir.path(),
    );
    assert!(
        !o.status.success() && stderr(&o).contains("label 'fees|fraud' contains the separator '|' (--label-sep)"),
        "{}",
        stderr(&o)
    );
    // --allow-empty-labels keeps the row without topics: all its targets negative.
    let o = savant(
        &[
            &base[..],
            &["--label-sep", "|", "--max-len", "16", "--no-baseline", "--allow-empty-labels", "-o", "runs/empty"],
        ]
        .concat(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = read_report(&dir.path().join("runs/empty/metrics.json"));
    assert_eq!((e["rows_skipped"].as_u64(), e["train_rows"].as_u64()), (Some(0), Some(31)), "{e}");
}

/// Label sets read in windows: a window carries its text's set, validation scores texts from
/// their windows' aggregated logits, so `predict --long windows` + `eval --multi-label` give the
/// run's val report (the model's and its average with the baseline), with each aggregation.
#[test]
fn multi_label_windows_validate_texts_as_predict_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    label_set_task(dir.path());
    // The topics after eight filler words: past the first window of 6 text tokens.
    for file in ["train.csv", "val.csv"] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let mut lines = text.lines();
        let mut long = format!("{}\n", lines.next().unwrap());
        for line in lines {
            long.push_str(&format!("the a my this the a my this {line}\n"));
        }
        write(dir.path(), file, &long);
    }
    let model = model_fixture("tiny-cls");
    let m = model.to_str().unwrap();
    for (aggregate, reads_as) in [("max-logits", "max-logits"), ("mean-pool", "mean-logits")] {
        let out = format!("runs/{aggregate}");
        let args = ["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--label", "topics"];
        let more = ["--label-sep", "|", "--mode", "lora", "--epochs", "2", "--lr", "2e-2", "--batch-size", "6"];
        let long = ["--long", "windows", "--max-len", "8", "--stride", "2", "--aggregate", aggregate];
        let rest = ["--thresholds", "per-label", "--device", "cpu", "--metric", "f1_micro", "-o", &out];
        let o = savant(&[&args[..], &more[..], &long[..], &rest[..]].concat(), dir.path());
        assert_no_panic(&o, "train");
        assert!(o.status.success(), "{aggregate}: {}", stderr(&o));
        assert!(stderr(&o).contains("each window trains with its text's label set"), "{}", stderr(&o));
        let metrics = read_report(&dir.path().join(&out).join("metrics.json"));
        assert_eq!(metrics["long"], "windows", "{metrics}");
        assert!(metrics["windows_per_text"].as_f64().unwrap() > 2.0, "{metrics}");
        // Every report counts texts, not windows.
        assert_eq!(metrics["val_at_thresholds"]["n"], 10, "{metrics}");
        assert!(metrics["probe_val_f1_micro"].is_number(), "{metrics}");
        let adapter = format!("{out}/adapter");
        for (extra, report, file) in [
            (vec![], &metrics["val_at_thresholds"], "p.csv"),
            (vec!["--ensemble", out.as_str()], &metrics["ensemble_val_at_thresholds"], "e.csv"),
        ] {
            let args = ["predict", "--model", m, "--adapter", &adapter, "val.csv", "--text", "text", "--device", "cpu"];
            let long = ["--long", "windows", "--stride", "2", "--aggregate", reads_as, "-o", file];
            let o = savant(&[&args[..], &long[..], &extra[..]].concat(), dir.path());
            assert!(o.status.success(), "{aggregate} {extra:?}: {}", stderr(&o));
            let o = savant(&["eval", file, "--label", "topics", "--multi-label", "--json"], dir.path());
            assert!(o.status.success(), "{}", stderr(&o));
            let got: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(got["n"], 10);
            for key in ["f1_micro", "f1_macro", "subset_accuracy", "hamming_loss"] {
                let (g, w) = (got[key].as_f64().unwrap(), report[key].as_f64().unwrap());
                assert!((g - w).abs() < 1e-9, "{aggregate} {extra:?} {key}: predict + eval {g} vs the val report {w}");
            }
        }
    }
}
