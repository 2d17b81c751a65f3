//! `savant ingest`: a folder of documents becomes rows that clean reads.

use super::common::*;

// `savant ingest` over the committed folder of hand-written documents: one row per document
// (two for the JSONL file's two documents with text), labels from the first-level folder, HTML
// reduced to its text; the binary, empty, non-UTF-8, malformed-JSON and unknown files counted;
// a link out of the folder skipped; the output read by `savant clean`; chunks of at most N
// tokens with --chunk-tokens.
#[test]
fn ingest_turns_a_folder_of_documents_into_rows_that_clean_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let docs = d.join("docs");
    copy_tree(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ingest"), &docs);
    std::os::unix::fs::symlink("/etc/hostname", docs.join("other/outside.txt")).unwrap();
    let o = savant(&["ingest", "docs", "-o", "docs.jsonl", "--report", "report.json"], d);
    assert_no_panic(&o, "ingest");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("13 files in, 7 written as 8 rows"), "{}", stderr(&o));
    let rows: Vec<Value> = std::fs::read_to_string(d.join("docs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(
        sources,
        [
            "README.txt",
            "billing/2024/late-charge.md",
            "billing/fee.txt",
            "fraud/broken.htm",
            "fraud/stolen-card.html",
            "other/one.json",
            "other/questions.jsonl#1",
            "other/questions.jsonl#3"
        ]
    );
    let labels: Vec<Option<&str>> = rows.iter().map(|r| r["label"].as_str()).collect();
    assert_eq!(labels[..4], [Some(""), Some("billing"), Some("billing"), Some("fraud")]);
    assert_eq!(rows[4]["text"], "Stolen card\nUnauthorised charges\nMy card was stolen on 12 March and used for three purchases & a cash advance.\nPurchase at A <online>\nCash advance");
    assert_eq!(
        rows[3]["text"],
        "Someone opened an account in my name without consent\nThe bureau will not remove it here"
    );
    assert_eq!(rows[2]["bytes"], std::fs::metadata(docs.join("billing/fee.txt")).unwrap().len());
    let report = read_report(&d.join("report.json"));
    assert_eq!(
        report["dropped"],
        serde_json::json!({"binary": 1, "empty_text": 1, "link_outside_the_folder": 1, "malformed_json": 1,
                           "not_utf8": 1, "unknown_type": 1})
    );
    assert_eq!((report["rows_in"].as_u64(), report["rows_out"].as_u64()), (Some(13), Some(7)));
    assert_eq!(report["label_counts"], serde_json::json!({"billing": 2, "fraud": 2, "other": 2}));
    assert!(report["warnings"].to_string().contains("other/broken.json: not valid JSON"), "{report}");

    // The output is what savant clean reads: every row in, accounted for.
    let o = savant(
        &["clean", "docs.jsonl", "--text", "text", "--label", "label", "-o", "clean.jsonl", "--report", "clean.json"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cleaned = read_report(&d.join("clean.json"));
    assert_eq!(cleaned["rows_in"], 8, "{cleaned}");
    assert_eq!(
        cleaned["rows_out"].as_u64().unwrap()
            + cleaned["dropped"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        8
    );

    // Chunks of at most 8 tokens overlapping by 2, as CSV.
    let model = model_fixture("tiny-base");
    let m = model.to_str().unwrap();
    let o = savant(&["ingest", "docs", "-o", "chunks.csv", "--chunk-tokens", "8", "--overlap", "2", "--model", m], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut reader = csv::Reader::from_path(d.join("chunks.csv")).unwrap();
    assert_eq!(reader.headers().unwrap(), vec!["text", "label", "source", "bytes", "chunk"]);
    let chunks: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let fee: Vec<&csv::StringRecord> = chunks.iter().filter(|r| &r[2] == "billing/fee.txt").collect();
    assert!(fee.len() > 2, "the fee letter is longer than 8 tokens: {fee:?}");
    assert_eq!(
        fee.iter().map(|r| r[4].parse::<usize>().unwrap()).collect::<Vec<_>>(),
        (0..fee.len()).collect::<Vec<_>>()
    );
    assert!(fee[0][0].starts_with("I was charged") && fee.last().unwrap()[0].ends_with("refund it."), "{fee:?}");

    // A file of 1 GiB (sparse: nothing on disk) is counted, not read; the rest is kept.
    std::fs::create_dir(docs.join("big")).unwrap();
    std::fs::File::create(docs.join("big/huge.txt")).unwrap().set_len(1 << 30).unwrap();
    let o = savant(&["ingest", "docs", "-o", "big.jsonl", "--report", "big.json"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = read_report(&d.join("big.json"));
    assert_eq!((report["rows_in"].as_u64(), report["rows_out"].as_u64()), (Some(14), Some(7)));
    assert_eq!(report["dropped"]["too_large"], 1, "{report}");
    assert!(
        report["warnings"].to_string().contains("big/huge.txt: 1073741824 bytes, over the limit of 64 MiB"),
        "{report}"
    );
    assert_eq!(std::fs::read(d.join("big.jsonl")).unwrap(), std::fs::read(d.join("docs.jsonl")).unwrap());
    std::fs::remove_dir_all(docs.join("big")).unwrap();

    // Bad input.
    std::fs::create_dir(d.join("empty")).unwrap();
    for (args, want) in [
        (vec!["ingest", "empty", "-o", "x.jsonl"], "the folder holds no file"),
        (vec!["ingest", "nowhere", "-o", "x.jsonl"], "nowhere: not a folder"),
        (vec!["ingest", "docs", "-o", "x.txt"], "must be .jsonl or .csv"),
        (vec!["ingest", "docs", "-o", "x.jsonl", "--label-from", "regex"], "needs a pattern"),
        (
            vec!["ingest", "docs", "-o", "x.jsonl", "--label-from", "regex", "--label-regex", "[a-z]+"],
            "no capture group",
        ),
        (
            vec!["ingest", "docs", "-o", "x.jsonl", "--chunk-tokens", "4", "--overlap", "4", "--model", m],
            "overlap (4) must be less than --chunk-tokens (4)",
        ),
    ] {
        let o = savant(&args, d);
        assert_no_panic(&o, &format!("{args:?}"));
        assert!(!o.status.success() && stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!d.join("x.jsonl").exists(), "{args:?} wrote output");
    }
}
