//! `savant baseline` end to end on the committed sklearn fixture (tests/fixtures/baseline): the
//! chosen C and vocabulary equal sklearn's, every test row is predicted, the reports are
//! `savant eval`'s, and bad inputs fail with a message that names the problem, writing nothing.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/baseline").join(name)
}

fn savant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_savant")).args(args).output().expect("savant runs")
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fail(args: &[&str]) -> String {
    let o = savant(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail:\n{err}");
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    err
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn csv_rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path).unwrap().records().map(|r| r.unwrap()).collect()
}

#[test]
fn baseline_matches_sklearn_and_writes_evals_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let (train, val, test) = (fixture("train.csv"), fixture("val.csv"), fixture("test.csv"));
    let o = savant(&["baseline", "--train", s(&train), "--val", s(&val), "--test", s(&test), "-o", s(&out)]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let want = json(&fixture("expected.json"));
    let got = json(&out.join("baseline.json"));
    assert_eq!(got["c"], want["c"], "chosen C");
    assert_eq!(got["vocabulary_size"], want["vocabulary_size"]);
    assert!(stdout.contains(&format!("vocabulary {} terms", want["vocabulary_size"])), "{stdout}");
    for (g, w) in got["c_table"].as_array().unwrap().iter().zip(want["c_table"].as_array().unwrap()) {
        let (g, w) = (g["val_macro_f1"].as_f64().unwrap(), w["val_macro_f1"].as_f64().unwrap());
        assert!((g - w).abs() < 0.005, "val macro-F1 {g} vs sklearn {w}");
    }
    let val_metrics = json(&out.join("val_metrics.json"));
    assert!((val_metrics["f1_macro"].as_f64().unwrap() - want["val_macro_f1"].as_f64().unwrap()).abs() < 0.005);
    assert_eq!(val_metrics["n"].as_u64().unwrap() as usize, csv_rows(&val).len());

    // Every test row, in order, with its text and label.
    let (rows, preds) = (csv_rows(&test), csv_rows(&out.join("test_predictions.csv")));
    assert_eq!(preds.len(), rows.len());
    for (r, p) in rows.iter().zip(&preds) {
        assert_eq!((&r[0], r[1].trim()), (&p[0], &p[1]));
    }
    let metrics = json(&out.join("test_metrics.json"));
    assert!((metrics["f1_macro"].as_f64().unwrap() - want["test_macro_f1"].as_f64().unwrap()).abs() < 0.005);
    assert_eq!(got["test"]["f1_macro"], metrics["f1_macro"]);

    // `savant eval` on the predictions file says exactly what the baseline wrote.
    let again = tmp.path().join("eval.json");
    let o = savant(&["eval", s(&out.join("test_predictions.csv")), "-o", s(&again)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&again), metrics);
    let html = std::fs::read_to_string(out.join("test_report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("test_predictions.csv"));
    for e in std::fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file left behind: {name}");
    }
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (train, val) = (fixture("train.csv"), fixture("val.csv"));
    let out = d.join("run");
    let run = |train: &Path, val: &Path, extra: &[&str]| {
        let mut args = vec!["baseline", "--train", s(train), "--val", s(val), "-o", s(&out)];
        args.extend_from_slice(extra);
        fail(&args)
    };

    let e = run(&train, &val, &["--text", "body"]);
    assert!(e.contains("train.csv") && e.contains("no column named 'body'"), "{e}");

    let one = write(d, "one.csv", "text,label\nlate fee charged,billing\nfee charged twice,billing\n");
    let e = run(&one, &val, &[]);
    assert!(e.contains("one.csv") && e.contains("one class only ('billing')"), "{e}");

    let unseen = write(d, "unseen.csv", "text,label\nmy card fee,billing\na mortgage question,mortgage\n");
    let e = run(&train, &unseen, &[]);
    assert!(e.contains("unseen.csv:2") && e.contains("label 'mortgage' does not occur in the training split"), "{e}");
    let e = run(&train, &val, &["--test", s(&unseen)]);
    assert!(e.contains("unseen.csv:2") && e.contains("'mortgage'"), "{e}");

    let disjoint = write(d, "disjoint.csv", "text,label\nalpha beta,a\ngamma delta,b\nepsilon zeta,a\n");
    let dval = write(d, "dval.csv", "text,label\nalpha,a\nzeta,b\n");
    let e = run(&disjoint, &dval, &[]);
    assert!(e.contains("disjoint.csv") && e.contains("no term appears in 2 or more training texts (min_df 2)"), "{e}");

    let e = run(&train, &val, &["--c", "0"]);
    assert!(e.contains("positive"), "{e}");
    assert!(!out.exists(), "a failed run wrote {}", out.display());

    // A failed run leaves an earlier run's results as they were.
    let o = savant(&["baseline", "--train", s(&train), "--val", s(&val), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = std::fs::read(out.join("baseline.json")).unwrap();
    run(&train, &unseen, &[]);
    assert_eq!(std::fs::read(out.join("baseline.json")).unwrap(), before);
}
