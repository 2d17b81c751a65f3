//! `savant eval`: JSON and the self-contained HTML report, bad inputs.

use super::common::*;

#[test]
fn eval_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let eval_corpus = corpus().join("eval");
    let spec = std::fs::read_to_string(eval_corpus.join("expected.txt")).unwrap();
    let mut covered = 0;
    for line in spec.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (file, want) = line.split_once('|').map(|(a, b)| (a.trim(), b.trim())).unwrap();
        let o = savant(&["eval", eval_corpus.join(file).to_str().unwrap(), "--json"], dir.path());
        assert_no_panic(&o, file);
        assert_eq!(o.status.code(), Some(1), "{file}: {o:?}");
        assert!(stderr(&o).contains(want), "{file}: stderr lacks '{want}':\n{}", stderr(&o));
        covered += 1;
    }
    assert_eq!(
        covered + 1,
        std::fs::read_dir(&eval_corpus).unwrap().count(),
        "every eval bad input has an expectation"
    );
}

#[test]
fn eval_writes_json_and_a_self_contained_html_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,label,prob_cat,prob_dog,prob_eel\n");
    for i in 0..60 {
        let y = ["cat", "dog", "eel"][i % 3];
        let mut p = [0.2, 0.2, 0.2];
        p[(i + usize::from(i % 7 == 0)) % 3] = 0.6;
        csv += &format!("{i},{y},{},{},{}\n", p[0], p[1], p[2]);
    }
    write(dir.path(), "preds.csv", &csv);
    let o = savant(
        &["eval", "preds.csv", "-o", "m.json", "--html", "r.html", "--bootstrap", "50", "--seed", "3"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("m.json")).unwrap();
    assert!(!text.contains("NaN") && !text.contains("Infinity"));
    let r: Value = serde_json::from_str(&text).unwrap();
    // 60 rows, the 9 with i % 7 == 0 predicted as the next class.
    assert_eq!(r["n"], 60);
    assert_eq!(r["accuracy"].as_f64().unwrap(), 51.0 / 60.0);
    assert_eq!(r["confusion_matrix"].as_array().unwrap().len(), 3);
    let ci = &r["confidence_intervals"]["accuracy"];
    assert!(ci[0].as_f64().unwrap() <= 0.85 && 0.85 <= ci[1].as_f64().unwrap(), "{ci}");
    assert!(r.get("roc_auc").is_none(), "binary-only keys stay out of a 3-class report");
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    assert!(html.contains("precision") && html.contains("[0."), "intervals shown");
    no_temp_files(dir.path());

    // Binary, with curve points: the ROC curve starts at (0, 0) with an infinite (null) threshold.
    write(dir.path(), "bin.csv", "label,prob_no,prob_yes\nyes,0.2,0.8\nno,0.7,0.3\nyes,0.6,0.4\nno,0.9,0.1\n");
    let o = savant(&["eval", "bin.csv", "--json", "--curves"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["pos_label"], "yes");
    assert_eq!(r["roc_auc"], 1.0);
    let roc = &r["curves"]["yes"]["roc"];
    assert_eq!(
        (roc["x"][0].as_f64(), roc["y"][0].as_f64(), roc["thresholds"][0].is_null()),
        (Some(0.0), Some(0.0), true)
    );
    assert_eq!(r["curves"]["yes"]["pr"]["y"].as_array().unwrap().last().unwrap(), 1.0);
}

// `eval --multi-label` on the fixture's label sets (tests/fixtures/metrics/multilabel_fixtures.py)
// gives scikit-learn's numbers: the sets joined by '|', one prob_<label> column per label; the
// predicted sets from probability >= 0.5, or from a `pred` column when there is one.
#[test]
fn eval_multi_label_gives_scikit_learns_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(model_fixture("../metrics/multilabel.json")).unwrap()).unwrap();
    for c in fixture["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let k = c["k"].as_u64().unwrap() as usize;
        let cells =
            |key: &str| -> Vec<u64> { c[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect() };
        let (y_true, y_pred) = (cells("y_true"), cells("y_pred"));
        let scores: Vec<f64> = c["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let set = |row: &[u64]| (0..k).filter(|&j| row[j] == 1).map(|j| format!("l{j}")).collect::<Vec<_>>().join("|");
        for with_pred in [false, true] {
            let mut csv = String::from("id,labels");
            csv.push_str(&(0..k).map(|j| format!(",prob_l{j}")).collect::<String>());
            csv.push_str(if with_pred { ",pred\n" } else { "\n" });
            for i in 0..y_true.len() / k {
                csv.push_str(&format!("{i},{}", set(&y_true[i * k..(i + 1) * k])));
                for j in 0..k {
                    csv.push_str(&format!(",{}", scores[i * k + j]));
                }
                if with_pred {
                    csv.push_str(&format!(",{}", set(&y_pred[i * k..(i + 1) * k])));
                }
                csv.push('\n');
            }
            write(dir.path(), "p.csv", &csv);
            let o = savant(&["eval", "p.csv", "--multi-label", "--label", "labels", "--json"], dir.path());
            assert!(o.status.success(), "{name}: {}", stderr(&o));
            let got: Value = serde_json::from_slice(&o.stdout).unwrap();
            let e = &c["expected"];
            let close = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                _ => a.is_null() && b.is_null(),
            };
            for (key, want) in [
                ("f1_micro", &e["micro"]["f1"]),
                ("f1_macro", &e["macro"]["f1"]),
                ("f1_weighted", &e["weighted"]["f1"]),
                ("f1_samples", &e["samples"]["f1"]),
                ("precision_samples", &e["samples"]["precision"]),
                ("recall_micro", &e["micro"]["recall"]),
                ("subset_accuracy", &e["subset_accuracy"]),
                ("hamming_loss", &e["hamming_loss"]),
                ("jaccard_samples", &e["jaccard_samples"]),
                ("roc_auc_macro", &e["roc_auc_macro"]),
                ("average_precision_micro", &e["ap_micro"]),
                ("label_ranking_loss", &e["label_ranking_loss"]),
                ("coverage_error", &e["coverage_error"]),
            ] {
                assert!(
                    close(&got[key], want),
                    "{name} (pred column: {with_pred}): {key}: {} vs sklearn {want}",
                    got[key]
                );
            }
            assert_eq!(got["predicted_by"], if with_pred { "pred column" } else { "probability >= 0.5" });
            assert_eq!(got["multilabel_confusion_matrix"], e["multilabel_confusion_matrix"], "{name}");
        }
    }
    // Bad input: a label without its column, a probability that is not one, one row; a separator
    // that never occurs is said.
    for (csv, want) in [
        ("labels,prob_a,prob_b\na|c,0.1,0.2\nb,0.3,0.4\n", "p.csv:2: label 'c' has no `prob_c` column"),
        ("labels,prob_a,prob_b\na|b,NaN,0.2\nb,0.3,0.4\n", "p.csv:2: column 'prob_a': NaN is not a finite"),
        ("labels,prob_a,prob_b\na|b,0.1,0.2\n", "fewer than two rows"),
    ] {
        write(dir.path(), "p.csv", csv);
        let o = savant(&["eval", "p.csv", "--multi-label", "--label", "labels"], dir.path());
        assert_no_panic(&o, csv);
        assert!(!o.status.success() && stderr(&o).contains(want), "{csv:?}: {}", stderr(&o));
    }
    write(dir.path(), "p.csv", "labels,prob_a,prob_b\na,0.9,0.2\nb,0.3,0.4\n");
    let o = savant(&["eval", "p.csv", "--multi-label", "--label", "labels"], dir.path());
    assert!(o.status.success() && stderr(&o).contains("is this single-label data?"), "{}", stderr(&o));
}
