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
