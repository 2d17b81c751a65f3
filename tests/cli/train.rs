//! `savant train`: each strategy and head, precisions, streaming, resume, divergence, early stopping, bad inputs.

use super::common::*;

#[test]
fn train_lora_writes_a_peft_adapter_that_predict_reads() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-cls");
    let m = model.to_str().unwrap();
    let o = savant(
        &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--lora-r", "4"]
            .into_iter()
            .chain(["--epochs", "3", "--lr", "1e-2", "--batch-size", "4", "--max-len", "16", "--device", "cpu"])
            .chain(["--log-every", "2", "-o", "runs/lora"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert_no_panic(&o, "train");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("trainable params:"), "PEFT-style parameter count: {}", stderr(&o));
    let run = dir.path().join("runs/lora");
    for f in [
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "adapter/config.json",
        "metrics.json",
        "train_log.jsonl",
    ] {
        assert!(run.join(f).is_file(), "{f} written");
    }
    let cfg: Value = serde_json::from_slice(&std::fs::read(run.join("adapter/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["modules_to_save"][0], "classifier");
    let metrics = read_report(&run.join("metrics.json"));
    assert_eq!(metrics["rows_skipped"], 2, "the rows without text or label are counted: {metrics}");
    assert_eq!(metrics["val_rows"], 6);
    assert!(metrics["f1_macro"].is_number() && metrics["best_epoch"].is_number(), "{metrics}");
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap();
    let epochs = log.lines().filter(|l| l.contains("\"event\":\"epoch\"")).count();
    assert_eq!(epochs, 3, "{log}");
    no_temp_files(&run.join("adapter"));

    let o = savant(
        &["predict", "--model", m, "--adapter", "runs/lora/adapter", "val.csv", "--text", "text"]
            .into_iter()
            .chain(["-o", "preds.csv", "--device", "cpu"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = savant(&["eval", "preds.csv", "--label", "label", "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f1 = report["f1_macro"].as_f64().unwrap();
    let best = metrics["f1_macro"].as_f64().unwrap();
    assert!((f1 - best).abs() < 1e-9, "predict --adapter reproduces the best epoch's val F1: {f1} vs {best}");

    // Merged into the base, the adapter gives the same probabilities as a plain model folder.
    let o = savant(&["merge", "--model", m, "--adapter", "runs/lora/adapter", "-o", "merged"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = savant(
        &["predict", "--model", "merged", "val.csv", "--text", "text", "-o", "merged.csv", "--device", "cpu"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let probs = |f: &str| -> Vec<f64> {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        text.lines()
            .skip(1)
            .flat_map(|l| l.rsplitn(4, ',').take(3).map(|p| p.parse::<f64>().unwrap()).collect::<Vec<_>>())
            .collect()
    };
    let (a, b) = (probs("preds.csv"), probs("merged.csv"));
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-5, "merged vs adapter probabilities differ by {worst}");
    let again = savant(&["merge", "--model", m, "--adapter", "runs/lora/adapter", "-o", "merged"], dir.path());
    assert!(!again.status.success() && stderr(&again).contains("already holds a model"), "{}", stderr(&again));
}

#[test]
fn train_full_writes_a_model_folder_that_predict_loads() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-base");
    let o = savant(
        &["train", "--model", model.to_str().unwrap(), "--train", "train.csv", "--val", "val.csv"]
            .into_iter()
            .chain(["--mode", "full", "--epochs", "2", "--lr", "1e-3", "--batch-size", "8", "--device", "cpu"])
            .chain(["--augment-delete", "0.1", "--augment-swap", "0.1", "--augment-mask", "0.1"])
            .chain(["--max-len", "16", "--patience", "1", "-o", "runs/full"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = dir.path().join("runs/full/model");
    let config: Value = serde_json::from_slice(&std::fs::read(saved.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["id2label"]["0"], "billing");
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    // Throughput in model FLOPs, and MFU against the CPU's estimated peak.
    let metrics = read_report(&dir.path().join("runs/full/metrics.json"));
    let rate = metrics["train_model_tflops_per_second"].as_f64().unwrap();
    assert!(rate > 0.0, "{metrics}");
    if let Some(mfu) = metrics["train_mfu"].as_f64() {
        let peak = metrics["peak"]["tflops"].as_f64().unwrap();
        assert!((mfu - rate / peak).abs() <= 1e-9 && mfu < 1.0, "{metrics}");
        assert!(metrics["peak"]["source"].as_str().unwrap().contains("f32 FLOPs/cycle"), "{metrics}");
    }
    let log = std::fs::read_to_string(dir.path().join("runs/full/train_log.jsonl")).unwrap();
    let step = log.lines().find(|l| l.contains("\"event\":\"step\"")).expect("a step line");
    let step: Value = serde_json::from_str(step).unwrap();
    assert!(step["model_tflops_per_second"].as_f64().unwrap() > 0.0 && step["samples"].as_u64().unwrap() > 0, "{step}");
    let o = savant(
        &["predict", "--model", "runs/full/model", "val.csv", "--text", "text", "-o", "p.csv", "--device", "cpu"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

// Each head from the command line: train (probe-initialised, epoch 0 logged), predict and eval
// agree on the val split; a pooled head's model folder is sentence-transformers' layout with its
// pooling in config.json, and a LoRA adapter with a pooled head reads back and merges the same.
#[test]
fn train_predict_eval_with_each_head() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-base");
    let m = model.to_str().unwrap();
    let f1_of = |preds: &str| -> f64 {
        let o = savant(&["eval", preds, "--label", "label", "--json"], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["f1_macro"].as_f64().unwrap()
    };
    for (head, mode) in [("pooler", "full"), ("mean", "full"), ("cls", "full"), ("max", "full"), ("auto", "lora")] {
        let out = format!("runs/{head}-{mode}");
        let o = savant(
            &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", mode, "--head", head]
                .into_iter()
                .chain(["--epochs", "2", "--lr", "1e-3", "--batch-size", "4", "--max-len", "16", "--device", "cpu"])
                .chain(["-o", out.as_str()])
                .collect::<Vec<_>>(),
            dir.path(),
        );
        assert_no_panic(&o, "train");
        assert!(o.status.success(), "{head}: {}", stderr(&o));
        let err = stderr(&o);
        let log = std::fs::read_to_string(dir.path().join(&out).join("train_log.jsonl")).unwrap();
        let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!(
            (&first["event"], &first["epoch"], &first["probe"]),
            (&json!("epoch"), &json!(0), &json!(true)),
            "{head}: {log}"
        );
        let metrics = read_report(&dir.path().join(&out).join("metrics.json"));
        let expected_head = if head == "auto" { "mean" } else { head };
        assert_eq!(
            (metrics["head"].as_str(), metrics["head_init"].as_str()),
            (Some(expected_head), Some("probe")),
            "{metrics}"
        );
        assert!(metrics["probe_val_f1_macro"].is_number() && metrics["baseline_val_f1_macro"].is_number(), "{metrics}");
        assert!(
            err.contains("val macro-F1: the fine-tuned specialist") && err.contains("TF-IDF + logistic regression"),
            "{err}"
        );
        let preds = format!("{head}.csv");
        let args: Vec<String> = if mode == "lora" {
            ["predict", "--model", m, "--adapter"]
                .iter()
                .map(|s| s.to_string())
                .chain([format!("{out}/adapter")])
                .collect()
        } else {
            ["predict", "--model"].iter().map(|s| s.to_string()).chain([format!("{out}/model")]).collect()
        };
        let args: Vec<String> = args
            .into_iter()
            .chain(
                ["val.csv", "--text", "text", "--max-len", "16", "-o", preds.as_str(), "--device", "cpu"]
                    .map(String::from),
            )
            .collect();
        let o = savant(&args.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
        assert!(o.status.success(), "{head}: {}", stderr(&o));
        let best = metrics["f1_macro"].as_f64().unwrap();
        assert!((f1_of(&preds) - best).abs() < 1e-9, "{head}: predict reproduces the best epoch's val F1 {best}");
        if mode == "full" {
            let saved = dir.path().join(&out).join("model");
            let config: Value = serde_json::from_slice(&std::fs::read(saved.join("config.json")).unwrap()).unwrap();
            let pooled = head != "pooler";
            assert_eq!(config.get("classifier_pooling").and_then(Value::as_str), pooled.then_some(head), "{config}");
            assert_eq!(saved.join("1_Pooling/config.json").is_file(), pooled, "{head}");
            assert_eq!(saved.join("modules.json").is_file(), pooled, "{head}");
        } else {
            let o =
                savant(&["merge", "--model", m, "--adapter", &format!("{out}/adapter"), "-o", "merged"], dir.path());
            assert!(o.status.success(), "{}", stderr(&o));
            let o = savant(
                &[
                    "predict",
                    "--model",
                    "merged",
                    "val.csv",
                    "--text",
                    "text",
                    "--max-len",
                    "16",
                    "-o",
                    "merged.csv",
                    "--device",
                    "cpu",
                ],
                dir.path(),
            );
            assert!(o.status.success(), "{}", stderr(&o));
            assert!((f1_of("merged.csv") - best).abs() < 1e-9, "merged pooled-head LoRA model");
        }
    }
    // A head the folder does not declare is used as asked, and said (tiny-cls classifies these
    // labels with its pooler: asked for another head, it gets a fresh one).
    let o = savant(
        &["train", "--model", model_fixture("tiny-cls").to_str().unwrap(), "--train", "train.csv", "--val", "val.csv"]
            .into_iter()
            .chain(["--head", "mean", "--epochs", "1", "--batch-size", "4", "--device", "cpu", "-o", "runs/undeclared"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success() && stderr(&o).contains("declares no sentence pooling"), "{}", stderr(&o));
}

// Mixed precision from the command line: bf16 and f16 matmuls train (the run says so) and the
// saved weights are f32, as in the f32 run.
#[test]
fn train_in_bf16_and_f16_writes_f32_weights() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-base");
    for precision in ["bf16", "f16"] {
        let out = format!("runs/{precision}");
        let o = savant(
            &["train", "--model", model.to_str().unwrap(), "--train", "train.csv", "--val", "val.csv"]
                .into_iter()
                .chain(["--mode", "full", "--epochs", "1", "--lr", "1e-3", "--batch-size", "8", "--device", "cpu"])
                .chain(["--max-len", "16", "--precision", precision, "-o", &out])
                .collect::<Vec<_>>(),
            dir.path(),
        );
        assert!(o.status.success(), "{precision}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{precision} matmuls")), "{}", stderr(&o));
        let weights = std::fs::read(dir.path().join(&out).join("model/model.safetensors")).unwrap();
        let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
        let header: Value = serde_json::from_slice(&weights[8..8 + header_len]).unwrap();
        let dtypes: std::collections::BTreeSet<&str> = header
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(_, v)| v["dtype"].as_str().unwrap())
            .collect();
        assert_eq!(dtypes.into_iter().collect::<Vec<_>>(), ["F32"], "{precision}");
    }
    let o = savant(
        &[
            "train",
            "--model",
            model.to_str().unwrap(),
            "--train",
            "train.csv",
            "--val",
            "val.csv",
            "--precision",
            "f8",
            "-o",
            "x",
        ],
        dir.path(),
    );
    assert!(
        !o.status.success() && stderr(&o).contains("unknown precision 'f8': expected f32, bf16 or f16"),
        "{}",
        stderr(&o)
    );
}

// `savant train --stream`: the training split read from a gzip CSV shard and a JSONL shard
// through the shuffle buffer for --steps steps (a second pass when they run out), validated
// every --eval-every, the labels read in a first pass; rows without text or label are counted.
// A run stopped after a checkpoint resumes at the same row and ends with the weights of the run
// that never stopped (the stop: the later checkpoint and the results removed, as a SIGKILL
// after step 8's checkpoint leaves it).
#[test]
fn train_streams_sharded_input_and_resumes_at_the_same_row() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_task(d);
    let words = [("billing charge fee", "billing"), ("fraud stolen card", "fraud"), ("other question", "other")];
    let row = |i: usize| (format!("{} {}", words[i % 3].0, ["the", "a", "my", "this"][i % 4]), words[i % 3].1);
    let mut csv = String::from("text,label\n");
    for i in 0..20 {
        let (t, l) = row(i);
        csv.push_str(&format!("{t},{l}\n"));
    }
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(d.join("tr-1.csv.gz")).unwrap(), Default::default());
    gz.write_all(csv.as_bytes()).unwrap();
    gz.finish().unwrap();
    let mut jsonl = String::new();
    for i in 20..32 {
        let (t, l) = row(i);
        jsonl.push_str(&format!("{}\n", serde_json::json!({"text": t, "label": l})));
    }
    jsonl.push_str("{\"text\": \"\", \"label\": \"fraud\"}\n{\"text\": \"no label here\", \"label\": \"\"}\n");
    std::fs::write(d.join("tr-2.jsonl"), jsonl).unwrap();
    let model = model_fixture("tiny-base");
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--model", model.to_str().unwrap(), "--train", "tr-*", "--val", "val.csv"];
        args.extend(["--stream", "--steps", "12", "--eval-every", "6", "--batch-size", "4", "--shuffle-buffer", "8"]);
        args.extend(["--mode", "full", "--lr", "1e-3", "--max-len", "16", "--device", "cpu", "--log-every", "3"]);
        args.extend(["--checkpoint-every", "4", "-o", out]);
        args.extend_from_slice(extra);
        let o = savant(&args, d);
        assert_no_panic(&o, out);
        o
    };
    let o = run("whole", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = read_report(&d.join("whole/metrics.json"));
    assert_eq!(metrics["rows_trained"], 48, "{metrics}");
    assert_eq!(metrics["stream"]["rows_first_pass"], 32, "{metrics}");
    assert_eq!(metrics["stream"]["passes_trained"], 1.5, "{metrics}");
    assert_eq!(metrics["stream"]["skipped_first_pass"], serde_json::json!({"empty_text": 1, "missing_label": 1}));
    let config = read_report(&d.join("whole/model/config.json"));
    assert_eq!(config["id2label"], serde_json::json!({"0": "billing", "1": "fraud", "2": "other"}));
    let log = std::fs::read_to_string(d.join("whole/train_log.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"event\":\"epoch\"")).count(), 2, "{log}");

    let o = run("stopped", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stopped = d.join("stopped");
    std::fs::remove_dir_all(stopped.join("checkpoints/step-00000012")).unwrap();
    std::fs::remove_dir_all(stopped.join("model")).unwrap();
    std::fs::remove_file(stopped.join("metrics.json")).unwrap();
    let o = run("stopped", &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(step 8)"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.join("whole/model/model.safetensors")).unwrap(),
        std::fs::read(stopped.join("model/model.safetensors")).unwrap(),
        "the resumed stream ends with other weights"
    );
    let o = run("other", &["--labels", "billing,fraud"]);
    assert!(!o.status.success() && stderr(&o).contains("'other'"), "val has 'other': {}", stderr(&o));
    let m = model.to_str().unwrap();
    let base = ["train", "--model", m, "--train", "tr-*", "--val", "val.csv", "--device", "cpu", "-o", "bad"];
    let o = savant(&[&base[..], &["--stream", "--steps", "12", "--eval-every", "5"]].concat(), d);
    assert!(!o.status.success(), "12 steps, validation every 5");
    assert!(stderr(&o).contains("--steps (12) must be a multiple of --eval-every (5)"), "{}", stderr(&o));
    let o = savant(&[&base[..], &["--stream"]].concat(), d);
    assert!(!o.status.success() && stderr(&o).contains("--steps"), "{}", stderr(&o));
    let o = savant(
        &["train", "--model", m, "--train", "none-*", "--val", "val.csv", "--stream", "--steps", "4", "-o", "bad"],
        d,
    );
    assert!(stderr(&o).contains("--train 'none-*' matches no file"), "{}", stderr(&o));
}

#[test]
fn train_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    write(dir.path(), "val_new_label.csv", "text,label\nsomething,refund\n");
    write(dir.path(), "one_class.csv", "text,label\na,x\nb,x\n");
    write(dir.path(), "empty.csv", "text,label\n");
    let model = model_fixture("tiny-cls");
    let m = model.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--train", "train.csv", "--val", "val_new_label.csv"], "'refund' does not occur in the training split"),
        (vec!["--train", "one_class.csv", "--val", "val.csv"], "one class only"),
        (vec!["--train", "empty.csv", "--val", "val.csv"], "no rows"),
        (vec!["--train", "train.csv", "--val", "empty.csv"], "no usable rows"),
        (vec!["--train", "train.csv", "--val", "val.csv", "--max-len", "512"], "24 positions"),
        (vec!["--train", "train.csv", "--val", "val.csv", "--metric", "f2"], "'f2' is not a scalar key"),
        (
            vec!["--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--lora-targets", "dense"],
            "--lora-targets",
        ),
        (
            vec!["--train", "train.csv", "--val", "val.csv", "--mode", "partial", "--freeze-layers", "9"],
            "the model has 2 layers",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["train", "--model", m, "--device", "cpu", "-o", "runs/bad"];
        args.extend(extra.iter());
        let o = savant(&args, dir.path());
        assert_no_panic(&o, &format!("train {extra:?}"));
        assert!(!o.status.success(), "train {extra:?} should fail");
        assert!(stderr(&o).contains(want), "train {extra:?}: expected '{want}' in:\n{}", stderr(&o));
        assert!(!dir.path().join("runs/bad/metrics.json").exists(), "nothing written on error");
    }
}

#[test]
fn a_killed_run_resumed_from_its_checkpoint_ends_with_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let words = [("billing charge fee", "billing"), ("fraud stolen card", "fraud"), ("other question", "other")];
    let mut train = String::from("text,label\n");
    for i in 0..3000 {
        let (w, l) = words[i % 3];
        train.push_str(&format!("{w} {} {},{l}\n", ["the", "a", "my", "this"][i % 4], ["now", "today", ""][i % 3]));
    }
    write(dir.path(), "train.csv", &train);
    write(dir.path(), "val.csv", "text,label\nbilling fee,billing\nstolen card,fraud\na question,other\n");
    let model = model_fixture("tiny-base");
    let args = |out: &'static str| -> Vec<String> {
        ["train", "--model", model.to_str().unwrap(), "--train", "train.csv", "--val", "val.csv", "--mode", "lora"]
            .into_iter()
            .chain(["--epochs", "2", "--batch-size", "4", "--max-len", "16", "--device", "cpu", "--lr", "1e-3"])
            .chain(["--checkpoint-every", "40", "--log-every", "7", "-o", out])
            .map(String::from)
            .collect()
    };
    let refs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    // The uninterrupted run.
    let a = args("runs/a");
    let o = savant(&a.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(o.status.success(), "{}: {}", refs(&a), stderr(&o));

    // The same run, killed (SIGKILL) once a mid-run checkpoint exists, then resumed.
    let b = args("runs/b");
    let mut child = Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(&b)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ckpts = dir.path().join("runs/b/checkpoints");
    let start = std::time::Instant::now();
    loop {
        let has = std::fs::read_dir(&ckpts)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("step-")))
            .unwrap_or(false);
        if has {
            child.kill().unwrap();
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed; make it longer");
        assert!(start.elapsed() < Duration::from_secs(60), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait().unwrap();
    assert!(!dir.path().join("runs/b/metrics.json").exists(), "killed mid-run");
    let again = savant(&b.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(
        !again.status.success() && stderr(&again).contains("--resume"),
        "an existing run is not overwritten silently"
    );
    let mut resume = b.clone();
    resume.push("--resume".into());
    let o = savant(&resume.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resumed from"), "{}", stderr(&o));
    let wa = std::fs::read(dir.path().join("runs/a/adapter/adapter_model.safetensors")).unwrap();
    let wb = std::fs::read(dir.path().join("runs/b/adapter/adapter_model.safetensors")).unwrap();
    assert!(wa == wb, "the resumed run's weights are bit-identical to the uninterrupted run's");
    let ma = read_report(&dir.path().join("runs/a/metrics.json"));
    let mb = read_report(&dir.path().join("runs/b/metrics.json"));
    assert_eq!(ma["f1_macro"], mb["f1_macro"]);
}

#[test]
fn a_diverging_run_stops_with_advice_and_keeps_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-cls");
    let args: Vec<&str> =
        ["train", "--model", model.to_str().unwrap(), "--train", "train.csv", "--val", "val.csv", "--mode", "full"]
            .into_iter()
            .chain(["--lr", "1e30", "--max-grad-norm", "0", "--warmup", "0", "--batch-size", "4", "--log-every", "1"])
            .chain(["--checkpoint-every", "1", "--device", "cpu", "-o", "runs/nan"])
            .collect();
    let o = savant(&args, dir.path());
    assert_no_panic(&o, "train with a huge learning rate");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("the loss became") && err.contains("lower the learning rate"), "{err}");
    let ckpts: Vec<String> = std::fs::read_dir(dir.path().join("runs/nan/checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ckpts.iter().any(|c| c.starts_with("step-")), "the last good checkpoint is kept: {ckpts:?}");
    assert!(!dir.path().join("runs/nan/metrics.json").exists());

    // A damaged checkpoint is named, not loaded.
    let newest =
        dir.path().join("runs/nan/checkpoints").join(ckpts.iter().filter(|c| c.starts_with("step-")).max().unwrap());
    std::fs::write(newest.join("model.safetensors"), b"not a checkpoint").unwrap();
    let o = savant(&[args.as_slice(), &["--resume"]].concat(), dir.path());
    assert_no_panic(&o, "resume from a damaged checkpoint");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("model.safetensors") || stderr(&o).contains("step-"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a readable checkpoint"), "{}", stderr(&o));
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let model = model_fixture("tiny-cls");
    // A learning rate of 0: the val metric never improves after the first epoch.
    let o = savant(
        &["train", "--model", model.to_str().unwrap(), "--train", "train.csv", "--val", "val.csv", "--mode", "full"]
            .into_iter()
            .chain(["--lr", "0", "--epochs", "6", "--patience", "2", "--batch-size", "4", "--device", "cpu", "-o", "r"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = read_report(&dir.path().join("r/metrics.json"));
    assert_eq!(m["stopped_early"], true, "{m}");
    assert_eq!(m["best_epoch"], 1, "{m}");
    let log = std::fs::read_to_string(dir.path().join("r/train_log.jsonl")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains("\"event\":\"epoch\"")).count(),
        3,
        "1 best + 2 without improvement: {log}"
    );
}

// The specialist averaged with the TF-IDF baseline: train writes savant_ensemble.json with the
// weight chosen on val, and `predict --ensemble` gives w · the model's probabilities + (1 − w) ·
// `savant baseline`'s on the same splits.
#[test]
fn train_writes_an_ensemble_with_the_tfidf_baseline_that_predict_averages() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    write(
        dir.path(),
        "test.csv",
        "text,label\nbilling fee the,billing\nstolen card my,fraud\nother question a,other\nfee card,billing\n",
    );
    let model = model_fixture("tiny-cls");
    let m = model.to_str().unwrap();
    let o = savant(
        &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--lora-r", "4"]
            .into_iter()
            .chain([
                "--epochs",
                "2",
                "--lr",
                "1e-2",
                "--batch-size",
                "4",
                "--max-len",
                "16",
                "--device",
                "cpu",
                "-o",
                "runs/e",
            ])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("averaged with the TF-IDF baseline"), "{}", stderr(&o));
    let metrics = read_report(&dir.path().join("runs/e/metrics.json"));
    let w = metrics["ensemble_weight"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&w) && metrics["ensemble_val_f1_macro"].is_number(), "{metrics}");
    assert!(dir.path().join("runs/e/savant_ensemble.json").is_file());

    let predict = |extra: &[&str], out: &str| {
        let args: Vec<&str> = ["predict", "--model", m, "--adapter", "runs/e/adapter", "test.csv", "--max-len", "16"]
            .into_iter()
            .chain(["--device", "cpu", "-o", out])
            .chain(extra.iter().copied())
            .collect();
        let o = savant(&args, dir.path());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    predict(&[], "plain.csv");
    predict(&["--ensemble", "runs/e"], "mixed.csv");
    let o = savant(
        &["baseline", "--train", "train.csv", "--val", "val.csv", "--test", "test.csv", "-o", "base"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = |path: &str| -> Vec<std::collections::BTreeMap<String, String>> {
        csv::Reader::from_path(dir.path().join(path)).unwrap().deserialize().map(Result::unwrap).collect()
    };
    let (plain, mixed, base) = (table("plain.csv"), table("mixed.csv"), table("base/test_predictions.csv"));
    assert_eq!((plain.len(), mixed.len(), base.len()), (4, 4, 4));
    for ((p, x), b) in plain.iter().zip(&mixed).zip(&base) {
        let mut best = ("", f64::NEG_INFINITY);
        for label in ["billing", "fraud", "other"] {
            let key = format!("prob_{label}");
            let want = w * p[&key].parse::<f64>().unwrap() + (1.0 - w) * b[&key].parse::<f64>().unwrap();
            let got: f64 = x[&key].parse().unwrap();
            assert!((got - want).abs() < 1e-5, "{key}: {got} vs {want}");
            if got > best.1 {
                best = (label, got);
            }
        }
        assert_eq!(x["pred"], best.0, "pred is the average's argmax");
    }
    let o = savant(
        &[
            "predict",
            "--model",
            m,
            "--adapter",
            "runs/e/adapter",
            "test.csv",
            "--ensemble",
            "nothing.json",
            "-o",
            "x.csv",
        ],
        dir.path(),
    );
    assert!(!o.status.success() && stderr(&o).contains("nothing.json"), "{}", stderr(&o));
}
