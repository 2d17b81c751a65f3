//! `savant clean`: redaction, near-dedup, JSONL, label maps, bad options.

use super::common::*;

/// Clinical-style notes with PII, duplicates and near-duplicates, in the issue's own command.
#[test]
fn clean_notes_with_redaction_and_near_dedup_then_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,note,dept\n");
    let depts = ["cardio", "neuro", "onco"];
    for i in 0..120 {
        let dept = depts[i % 3];
        csv += &format!(
            "{i},\"Patient seen on 03/{:02}/2021 for follow up number {i}; reports {} symptoms, call 555-201-{:04} or mail p{i}@clinic.org. MRN: {}\",{dept}\n",
            i % 28 + 1,
            ["mild", "severe", "recurring", "new"][i % 4],
            1000 + i,
            4_000_000 + i
        );
    }
    // exact and near duplicates of row 0 (one changed word), and a row with no label
    csv += "200,\"Patient seen on 03/01/2021 for follow up number 0; reports mild symptoms, call 555-201-1000 or mail p0@clinic.org. MRN: 4000000\",cardio\n";
    csv += "201,\"patient seen on 03/01/2021 for follow up number 0 - reports mild symptoms, call 555-201-1000 or mail p0@clinic.org. MRN: 4000000!!\",cardio\n";
    csv += "202,some note,\n";
    write(dir.path(), "notes.csv", &csv);
    let o = savant(
        &[
            "clean",
            "notes.csv",
            "--text",
            "note",
            "--label",
            "dept",
            "--redact",
            "--dedup",
            "near",
            "-o",
            "clean.csv",
            "--report",
            "report.json",
            "-q",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_report(&dir.path().join("report.json"));
    invariant(&r);
    assert_eq!(r["rows_in"], 123);
    assert_eq!(r["rows_out"], 120);
    assert_eq!(r["dropped"]["duplicate_near"], 2);
    assert_eq!(r["dropped"]["missing_label"], 1);
    for t in ["EMAIL", "PHONE", "DATE", "MRN"] {
        assert_eq!(r["redactions"][t], 120, "{t}: {}", r["redactions"]);
    }
    assert_eq!(r["label_counts"]["cardio"], 40);
    let cleaned = std::fs::read_to_string(dir.path().join("clean.csv")).unwrap();
    assert!(!cleaned.contains("@clinic.org") && !cleaned.contains("555-201"), "PII left in output");
    assert!(cleaned.contains("[EMAIL]") && cleaned.contains("MRN: [MRN]"));
    no_temp_files(dir.path());

    let o = savant(
        &[
            "split",
            "clean.csv",
            "--label",
            "dept",
            "--val",
            "0.1",
            "--test",
            "0.1",
            "--seed",
            "7",
            "-o",
            "splits",
            "-q",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let sr = read_report(&dir.path().join("splits/split_report.json"));
    assert_eq!(sr["text_column"], "note");
    for dept in depts {
        assert_eq!(sr["splits"]["test"]["label_counts"][dept], 4, "{sr}");
        assert_eq!(sr["splits"]["val"]["label_counts"][dept], 4);
        assert_eq!(sr["splits"]["train"]["label_counts"][dept], 32);
    }
    let first = std::fs::read(dir.path().join("splits/train.csv")).unwrap();
    let o = savant(&["split", "clean.csv", "--label", "dept", "--seed", "7", "-o", "again", "-q"], dir.path());
    assert!(o.status.success());
    assert_eq!(first, std::fs::read(dir.path().join("again/train.csv")).unwrap(), "same seed, same split");
    no_temp_files(&dir.path().join("splits"));
}

#[test]
fn jsonl_in_and_out_and_label_map() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.jsonl", "{\"text\": \"Great &amp; fast\", \"label\": \"POS\", \"n\": 1}\n{\"text\": \"awful\", \"label\": \"neg\", \"n\": 2}\n");
    write(dir.path(), "map.csv", "from,to\npos,positive\nneg,negative\n");
    let o =
        savant(&["clean", "in.jsonl", "--label-fold", "--label-map", "map.csv", "-o", "out.jsonl", "-q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(out, "{\"text\":\"Great & fast\",\"label\":\"positive\",\"n\":\"1\"}\n{\"text\":\"awful\",\"label\":\"negative\",\"n\":\"2\"}\n");
}

#[test]
fn bad_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "d.csv", "text,label\na,b\n");
    for (args, text) in [
        (vec!["clean", "d.csv", "-o", "o.csv", "--dedup", "fuzzy"], "--dedup must be exact, normalized, near or none"),
        (vec!["clean", "d.csv", "-o", "o.csv", "--redact-types", "names"], "unknown type 'names'"),
        (vec!["clean", "d.csv", "-o", "o.csv", "--near-threshold", "1.5"], "--near-threshold must be in (0, 1]"),
        (vec!["clean", "missing.csv", "-o", "o.csv"], "cannot open missing.csv"),
        (vec!["split", "d.csv", "-o", "s", "--val", "0.6", "--test", "0.5"], "sum to less than 1"),
        (vec!["fetch", "dataset", "nope"], "unknown dataset"),
    ] {
        let o = savant(&args, dir.path());
        assert_no_panic(&o, &format!("{args:?}"));
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(text), "{args:?}: {}", stderr(&o));
    }
}

// Label sets (`--label-sep`): the label rules apply to each label, the set is written sorted and
// each label once; duplicates with different sets keep their union (`--conflicts union`); the
// report counts each label and the rows by labels per row.
#[test]
fn clean_label_sets_normalises_each_label_and_unions_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "text,topics\n\
        \"the fee was charged twice\",Fees | Billing\n\
        \"the fee was charged twice\",fraud\n\
        \"someone stole my card\",FRAUD|fraud\n\
        \"a question about my statement\",billing\n\
        \"only separators here\",|\n\
        \"a question\",\n";
    write(dir.path(), "d.csv", csv);
    let args = ["clean", "d.csv", "--label", "topics", "--label-sep", "|", "--label-fold", "--conflicts", "union"];
    let o = savant(&[&args[..], &["--dedup", "exact", "-o", "c.csv", "--report", "r.json", "-q"]].concat(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("c.csv")).unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "text,topics",
            "the fee was charged twice,billing|fees|fraud",
            "someone stole my card,fraud",
            "a question about my statement,billing"
        ]
    );
    let r = read_report(&dir.path().join("r.json"));
    invariant(&r);
    assert_eq!(r["dropped"]["missing_label"], 2, "{r}");
    assert_eq!(r["conflicts"]["relabelled"], 1, "{r}");
    assert_eq!(r["label_sets"]["labels"], serde_json::json!({"billing": 2, "fees": 1, "fraud": 2}), "{r}");
    assert_eq!(r["label_sets"]["labels_per_row"], serde_json::json!({"1": 2, "3": 1}), "{r}");
    // --allow-empty-labels: rows whose set is empty are kept (no label applies), counted as 0 labels.
    let o = savant(
        &[&args[..], &["--dedup", "exact", "--allow-empty-labels", "-o", "e.csv", "--report", "e.json", "-q"]].concat(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("e.csv")).unwrap();
    assert!(out.contains("\nonly separators here,\n") && out.ends_with("\na question,\n"), "{out}");
    let r = read_report(&dir.path().join("e.json"));
    invariant(&r);
    assert!(r["dropped"].get("missing_label").is_none(), "{r}");
    assert_eq!(r["label_sets"]["labels_per_row"], serde_json::json!({"0": 2, "1": 2, "3": 1}), "{r}");
    // Union merges sets: without --label-sep it is refused by name.
    let o = savant(&["clean", "d.csv", "--label", "topics", "--conflicts", "union", "-o", "x.csv"], dir.path());
    assert!(
        !o.status.success() && stderr(&o).contains("--conflicts union merges label sets: it needs --label-sep"),
        "{}",
        stderr(&o)
    );
}
