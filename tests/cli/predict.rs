//! `savant predict` and `savant embed`: what eval reads, every row counted, bad inputs.

use super::common::*;

#[test]
fn predict_writes_what_eval_reads_and_counts_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let long = "the bank charged my account a late fee twice ".repeat(10);
    let input = write(
        dir.path(),
        "in.csv",
        &format!(
            "id,text,label\n1,my card was charged twice,fraud\n2,,other\n3,{long},billing\n4,\"unterminated,other\n"
        ),
    );
    let model = model_fixture("tiny-cls");
    let o = savant(
        &["predict", "--model", model.to_str().unwrap(), input.to_str().unwrap(), "--text", "text"]
            .into_iter()
            .chain(["-o", "preds.csv", "--logits", "--batch-size", "2", "--report", "r.json", "--device", "cpu"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert_no_panic(&o, "predict");
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_report(&dir.path().join("r.json"));
    assert_eq!(r["rows_read"], 4, "{r}");
    assert_eq!(r["rows_written"], 3, "{r}");
    assert_eq!(r["rows_skipped"], 1, "{r}");
    assert_eq!(r["skipped"][0]["line"], 5, "{r}");
    assert_eq!(r["truncated"], 1, "{r}");
    assert_eq!(r["empty_text"], 1, "{r}");
    assert_eq!(r["max_len"], 24, "the model's max_position_embeddings: {r}");
    let out = std::fs::read_to_string(dir.path().join("preds.csv")).unwrap();
    let header = out.lines().next().unwrap();
    assert_eq!(header, "id,text,label,pred,prob_billing,prob_fraud,prob_other,logit_billing,logit_fraud,logit_other");
    for line in out.lines().skip(1) {
        let f: Vec<&str> = line.rsplitn(7, ',').collect();
        let probs: f64 = f[3..6].iter().map(|p| p.parse::<f64>().unwrap()).sum();
        assert!((probs - 1.0).abs() < 1e-5, "{line}");
    }
    no_temp_files(dir.path());
    let o = savant(&["eval", "preds.csv", "--label", "label", "--json"], dir.path());
    assert!(o.status.success(), "eval reads predict's output: {}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["n"], 3);
}

#[test]
fn embed_writes_jsonl_and_npy() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.jsonl", "{\"text\":\"the patient took a daily dose\"}\n{\"text\":\"refund\"}\n");
    let model = model_fixture("tiny-base");
    for out in ["v.jsonl", "v.npy"] {
        let o = savant(&["embed", "--model", model.to_str().unwrap(), "in.jsonl", "-o", out], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("mean pooling, not normalised, 24 dimensions"), "{}", stderr(&o));
    }
    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("v.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["text"], "refund");
    assert_eq!(lines[1]["embedding"].as_array().unwrap().len(), 24);
    let npy = std::fs::read(dir.path().join("v.npy")).unwrap();
    assert_eq!(npy.len(), 128 + 2 * 24 * 4);
    assert!(String::from_utf8_lossy(&npy[..128]).contains("'shape': (2, 24)"));
    let first = f32::from_le_bytes(npy[128 + 24 * 4..128 + 24 * 4 + 4].try_into().unwrap());
    assert!((first as f64 - lines[1]["embedding"][0].as_f64().unwrap()).abs() < 1e-6);
    // --normalize gives unit vectors
    let o =
        savant(&["embed", "--model", model.to_str().unwrap(), "in.jsonl", "-o", "n.jsonl", "--normalize"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value =
        serde_json::from_str(std::fs::read_to_string(dir.path().join("n.jsonl")).unwrap().lines().next().unwrap())
            .unwrap();
    let norm: f64 = v["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
}

#[test]
fn predict_and_embed_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "in.csv", "text,pred\nhello,x\n");
    write(d, "ok.csv", "text\nhello\n");
    let cls = model_fixture("tiny-cls");
    let base = model_fixture("tiny-base");
    let truncated = copy_model("tiny-cls", &d.join("truncated"));
    let w = std::fs::read(truncated.join("model.safetensors")).unwrap();
    std::fs::write(truncated.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    let no_weights = copy_model("tiny-cls", &d.join("noweights"));
    std::fs::remove_file(no_weights.join("model.safetensors")).unwrap();
    let huge_header = copy_model("tiny-cls", &d.join("huge"));
    let mut w2 = w.clone();
    w2[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(huge_header.join("model.safetensors"), &w2).unwrap();

    let p = |m: &Path| m.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["predict".into(), "--model".into(), "nowhere".into(), "ok.csv".into(), "-o".into(), "o.csv".into()],
            "nowhere: not a folder",
        ),
        (
            vec!["predict".into(), "--model".into(), p(&cls), "in.csv".into(), "-o".into(), "o.csv".into()],
            "already has a column 'pred'",
        ),
        (
            vec![
                "predict".into(),
                "--model".into(),
                p(&cls),
                "ok.csv".into(),
                "--text".into(),
                "body".into(),
                "-o".into(),
                "o.csv".into(),
            ],
            "no column named 'body'",
        ),
        (
            vec![
                "predict".into(),
                "--model".into(),
                p(&cls),
                "ok.csv".into(),
                "--max-len".into(),
                "100".into(),
                "-o".into(),
                "o.csv".into(),
            ],
            "--max-len 100 is more than the model's 24 positions",
        ),
        (
            vec!["predict".into(), "--model".into(), p(&base), "ok.csv".into(), "-o".into(), "o.csv".into()],
            "no classification head",
        ),
        (
            vec!["predict".into(), "--model".into(), p(&truncated), "ok.csv".into(), "-o".into(), "o.csv".into()],
            "truncated",
        ),
        (
            vec!["predict".into(), "--model".into(), p(&no_weights), "ok.csv".into(), "-o".into(), "o.csv".into()],
            "no model.safetensors",
        ),
        (
            vec!["predict".into(), "--model".into(), p(&huge_header), "ok.csv".into(), "-o".into(), "o.csv".into()],
            "header length field says 18446744073709551615 bytes",
        ),
        (
            vec![
                "predict".into(),
                "--model".into(),
                p(&cls),
                "ok.csv".into(),
                "--device".into(),
                "cuda".into(),
                "-o".into(),
                "o.csv".into(),
            ],
            "built without the 'cuda' feature",
        ),
        (
            vec!["embed".into(), "--model".into(), p(&base), "ok.csv".into(), "-o".into(), "v.csv".into()],
            "embed writes .jsonl or .npy",
        ),
    ];
    for (args, want) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = savant(&refs, d);
        assert_no_panic(&o, &args.join(" "));
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(want), "{args:?}: expected '{want}' in:\n{}", stderr(&o));
        assert!(!d.join("o.csv").exists(), "{args:?}: no output on error");
    }
    no_temp_files(d);
}

// A fine-tune saved by `savant train` records the length it was trained at
// (sentence-transformers' max_seq_length); predict, and a merged folder, read texts at that
// length by default, not at the model's 32 positions.
#[test]
fn predict_reads_texts_at_the_trained_length_by_default() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-base");
    let m = model.to_str().unwrap();
    for (mode, out) in [("lora", "runs/lora"), ("full", "runs/full")] {
        let o = savant(
            &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", mode, "--epochs", "1"]
                .into_iter()
                .chain(["--batch-size", "8", "--max-len", "5", "--device", "cpu", "-o", out])
                .collect::<Vec<_>>(),
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let saved = |f: &str| -> Value { serde_json::from_slice(&std::fs::read(dir.path().join(f)).unwrap()).unwrap() };
    assert_eq!(saved("runs/lora/adapter/sentence_bert_config.json")["max_seq_length"], 5);
    assert_eq!(saved("runs/full/model/sentence_bert_config.json")["max_seq_length"], 5);
    let o = savant(&["merge", "--model", m, "--adapter", "runs/lora/adapter", "-o", "merged"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(saved("merged/sentence_bert_config.json")["max_seq_length"], 5);

    let predict = |model: &[&str], extra: &[&str], report: &str| -> (Value, String) {
        let args: Vec<&str> = ["predict"]
            .iter()
            .chain(model)
            .chain(&["val.csv", "-o", "p.csv", "--device", "cpu", "--report", report])
            .chain(extra)
            .copied()
            .collect();
        let o = savant(&args, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        (saved(report), std::fs::read_to_string(dir.path().join("p.csv")).unwrap())
    };
    for model in
        [&["--model", m, "--adapter", "runs/lora/adapter"][..], &["--model", "runs/full/model"], &["--model", "merged"]]
    {
        let (default, default_rows) = predict(model, &[], "r1.json");
        let (at_5, rows_5) = predict(model, &["--max-len", "5"], "r2.json");
        let (at_32, rows_32) = predict(model, &["--max-len", "32"], "r3.json");
        assert_eq!(default["max_len"], 5, "{model:?}: {default}");
        assert!(default["truncated"].as_u64().unwrap() > 0, "the val texts pass 5 tokens: {default}");
        assert_eq!((default["truncated"].clone(), &default_rows), (at_5["truncated"].clone(), &rows_5), "{model:?}");
        assert_eq!(at_32["truncated"], 0);
        assert_ne!(default_rows, rows_32, "{model:?}: reading whole texts gives other probabilities");
    }
}

// `predict --int8`: the same rows and labels as f32, probabilities within 0.02 (the encoder's
// projections in int8, per output channel), said on stderr and in the report; a device without
// the kernel is refused by name and no output is written.
#[test]
fn predict_int8_keeps_the_labels_and_stays_near_f32() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = ["my card was charged twice", "late fee on my bill", "someone used my account", "hello there"]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{i},{t}\n"))
        .collect();
    let input = write(dir.path(), "in.csv", &format!("id,text\n{rows}"));
    let model = model_fixture("tiny-cls");
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["predict", "--model", model.to_str().unwrap(), input.to_str().unwrap(), "-o", out];
        args.extend_from_slice(extra);
        savant(&args, dir.path())
    };
    let o = run("f32.csv", &["--device", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("int8.csv", &["--device", "cpu", "--int8", "--report", "r.json"]);
    assert_no_panic(&o, "predict --int8");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("int8: 12 projections (2 layers × 6)"), "{}", stderr(&o));
    assert_eq!(read_report(&dir.path().join("r.json"))["int8"], true);
    let table = |name: &str| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        text.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
    };
    let (f32_rows, int8_rows) = (table("f32.csv"), table("int8.csv"));
    assert_eq!(f32_rows.len(), 4);
    let mut worst = 0f64;
    for (a, b) in f32_rows.iter().zip(&int8_rows) {
        assert_eq!(a[..3], b[..3], "id, text and pred");
        for (p, q) in a[3..].iter().zip(&b[3..]) {
            worst = worst.max((p.parse::<f64>().unwrap() - q.parse::<f64>().unwrap()).abs());
        }
    }
    assert!(worst > 0.0 && worst < 0.02, "int8 probabilities differ from f32's by {worst}");
    let o = run("gpu.csv", &["--device", "wgpu", "--int8"]);
    assert_no_panic(&o, "predict --int8 on wgpu");
    assert!(!o.status.success());
    let err = stderr(&o);
    // Refused by the int8 path, or before it where this build has no wgpu device.
    assert!(err.contains("--int8: int8 inference runs on the CPU backend only") || err.contains("wgpu"), "{err}");
    assert!(!dir.path().join("gpu.csv").exists());
}
