//! `savant pretrain`: held-out perplexity falls, resume, bad inputs.

use super::common::*;

#[test]
fn pretrain_lowers_held_out_perplexity_and_writes_a_masked_lm_folder_that_embed_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pretrain_corpus(dir);
    let model = copy_model("tiny-base", dir);
    let model = model.to_str().unwrap();
    let args = [
        "pretrain",
        "--model",
        model,
        "--corpus",
        "shard-*.jsonl.gz",
        "shard-*.csv",
        "--steps",
        "40",
        "--batch-size",
        "8",
        "--max-len",
        "16",
        "--lr",
        "3e-3",
        "--warmup",
        "0",
        "--eval-docs",
        "8",
        "--log-every",
        "10",
        "--shuffle-buffer",
        "16",
        "-o",
        "dapt",
    ];
    let o = savant(&args, dir);
    assert_no_panic(&o, "pretrain");
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = read_report(&dir.join("dapt/metrics.json"));
    let (before, after) =
        (metrics["perplexity_before"].as_f64().unwrap(), metrics["perplexity_after"].as_f64().unwrap());
    assert!(after < 0.7 * before, "held-out perplexity {before} → {after}");
    // 61 texts (41 in the gzip shard, one of them long; 20 in the CSV): 8 held out, 53 trained
    // on; the empty one counted.
    assert_eq!(metrics["documents"], 53);
    assert_eq!(metrics["skipped"]["empty_text"], 1);
    assert!(metrics["split_into_windows"].as_u64().unwrap() >= 1, "{metrics}");
    assert!(metrics["data_wait_seconds"].as_f64().unwrap() >= 0.0, "{metrics}");
    let log = std::fs::read_to_string(dir.join("dapt/pretrain_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4);
    let config = read_report(&dir.join("dapt/model/config.json"));
    assert_eq!(config["architectures"][0], "BertForMaskedLM");
    for f in ["model.safetensors", "tokenizer.json", "vocab.txt"] {
        assert!(dir.join("dapt/model").join(f).exists(), "{f}");
    }
    no_temp_files(&dir.join("dapt/model"));
    assert_eq!(metrics["windows_trained"], 40 * 8);
    // Gradient accumulation: each step trains on batch-size × grad-accum windows.
    let accum = ["--steps", "3", "--batch-size", "4", "--grad-accum", "2", "--max-len", "16", "--eval-docs", "4"];
    let o = savant(&[&args[..6], &accum[..], &["-o", "accum"]].concat(), dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let accumulated = read_report(&dir.join("accum/metrics.json"));
    assert_eq!((accumulated["grad_accum"].as_u64(), accumulated["windows_trained"].as_u64()), (Some(2), Some(24)));
    // The result is an encoder the other commands load.
    write(dir, "texts.csv", "text\nthe bank charged a fee\n");
    let o = savant(&["embed", "--model", "dapt/model", "texts.csv", "-o", "emb.jsonl"], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    // --scan: one pass through the same pipeline, no model: the same documents as the run's
    // first pass, every token counted, and the reading speed.
    let mut scan = args.to_vec();
    *scan.last_mut().unwrap() = "scan";
    scan.push("--scan");
    let o = savant(&scan, dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = read_report(&dir.join("scan/scan.json"));
    assert_eq!(report["documents"], metrics["documents"], "{report}");
    assert_eq!(report["skipped"], metrics["skipped"], "{report}");
    assert_eq!(report["split_into_windows"], metrics["split_into_windows"], "{report}");
    assert!(
        report["windows"].as_u64().unwrap() > 53 && report["tokens_per_second"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(!dir.join("scan/model").exists(), "a scan trains nothing");
    // Same seed, same weights.
    let mut again = args.to_vec();
    *again.last_mut().unwrap() = "dapt2";
    assert!(savant(&again, dir).status.success());
    assert_eq!(
        std::fs::read(dir.join("dapt/model/model.safetensors")).unwrap(),
        std::fs::read(dir.join("dapt2/model/model.safetensors")).unwrap()
    );
}

// A run stopped after a checkpoint and resumed ends with the weights, log and counts of the
// run that never stopped: the stream continues at the same window, the masking and dropout
// draws where they were. The stop is a run whose later checkpoints and results are removed, the
// state a SIGKILL after step 6's checkpoint leaves. The log reports throughput and MFU.
#[test]
fn pretrain_resumes_from_a_checkpoint_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pretrain_corpus(dir);
    let model = copy_model("tiny-base", dir);
    let model = model.to_str().unwrap();
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "pretrain",
            "--model",
            model,
            "--corpus",
            "shard-*.jsonl.gz",
            "shard-*.csv",
            "--steps",
            "10",
            "--batch-size",
            "4",
            "--max-len",
            "16",
            "--lr",
            "3e-3",
            "--eval-docs",
            "4",
            "--log-every",
            "4",
            "--shuffle-buffer",
            "8",
            "--checkpoint-every",
            "3",
            "--peak-tflops",
            "0.5",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        let o = savant(&args, dir);
        assert_no_panic(&o, out);
        o
    };
    let o = run("whole", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Checkpoints at steps 3, 6 and 9; the newest two kept.
    let kept: Vec<String> = std::fs::read_dir(dir.join("whole/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        {
            let mut k = kept.clone();
            k.sort();
            k
        },
        ["step-00000006", "step-00000009"],
        "{kept:?}"
    );
    let log = std::fs::read_to_string(dir.join("whole/pretrain_log.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    let (tflops, mfu) = (last["model_tflops_per_second"].as_f64().unwrap(), last["mfu"].as_f64().unwrap());
    assert!(tflops > 0.0 && (mfu - tflops / 0.5).abs() < 1e-9 * mfu.max(1.0), "{last}");
    assert!(last["samples_per_second"].as_f64().unwrap() > 0.0);

    // "Killed" after step 6's checkpoint.
    let o = run("stopped", &[]);
    assert!(o.status.success());
    let stopped = dir.join("stopped");
    std::fs::remove_dir_all(stopped.join("checkpoints/step-00000009")).unwrap();
    for f in ["model", "metrics.json", "pretrain_log.jsonl"] {
        let p = stopped.join(f);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap()
        } else {
            std::fs::remove_file(p).unwrap()
        }
    }
    // Not resumed by accident, and not resumed with other settings.
    let o = run("stopped", &[]);
    assert!(!o.status.success() && stderr(&o).contains("--resume continues it"), "{}", stderr(&o));
    let o = run("stopped", &["--resume", "--seed", "7"]);
    assert!(!o.status.success() && stderr(&o).contains("seed: checkpoint 42 vs now 7"), "{}", stderr(&o));
    let o = run("stopped", &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming from") && stderr(&o).contains("at step 6 (window 24"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.join("whole/model/model.safetensors")).unwrap(),
        std::fs::read(stopped.join("model/model.safetensors")).unwrap(),
        "the resumed run ends with other weights"
    );
    let losses = |out: &str| -> Vec<f64> {
        std::fs::read_to_string(dir.join(out).join("pretrain_log.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(losses("whole"), losses("stopped"));
    let (a, b) = (read_report(&dir.join("whole/metrics.json")), read_report(&stopped.join("metrics.json")));
    for key in ["perplexity_before", "perplexity_after", "tokens", "predicted_tokens"] {
        assert_eq!(a[key], b[key], "{key}");
    }
}

#[test]
fn pretrain_bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pretrain_corpus(dir);
    let model = copy_model("tiny-base", dir);
    let model = model.to_str().unwrap();
    std::fs::write(dir.join("fake.jsonl.gz"), "{\"text\": \"not compressed\"}\n").unwrap();
    let mut corrupt = std::fs::read(dir.join("shard-1.jsonl.gz")).unwrap();
    corrupt.truncate(corrupt.len() / 2);
    std::fs::write(dir.join("cut.jsonl.gz"), corrupt).unwrap();
    // Words outside the vocabulary: every token [UNK], nothing to predict.
    std::fs::write(dir.join("unknown.csv"), "text\nzzqx qqzv\nvvqz zzxq\nxqzz\n").unwrap();
    let base = ["pretrain", "--model", model, "--steps", "2", "--batch-size", "4", "-o", "out"];
    for (extra, want) in [
        (vec!["--corpus", "nothing-*.jsonl"], "matches no file"),
        (
            vec!["--corpus", "shard-2.csv", "--eval-docs", "2", "--max-len", "128"],
            "--max-len 128 is more than the model's 32 positions",
        ),
        (vec!["--corpus", "fake.jsonl.gz", "--max-len", "16"], "fake.jsonl.gz: not a gzip file"),
        (vec!["--corpus", "cut.jsonl.gz", "--max-len", "16"], "cut.jsonl.gz: corrupt gzip data"),
        (vec!["--corpus", "shard-2.csv", "--max-len", "16", "--text", "body"], "body"),
        (vec!["--corpus", "shard-2.csv", "--max-len", "16", "--mlm-prob", "0"], "--mlm-prob"),
        (vec!["--corpus", "shard-2.csv", "--max-len", "16", "--eval-docs", "1000"], "no document left to train on"),
        (vec!["--corpus", "unknown.csv", "--max-len", "16", "--eval-docs", "2"], "have no token to predict"),
        (
            vec!["--corpus", "unknown.csv", "--max-len", "16", "--eval-docs", "0"],
            "no window of the corpus has a token to predict",
        ),
        (vec!["--corpus", "shard-2.csv", "--max-len", "16", "--devices", "cpu,cpu"], "cpu is listed twice"),
        (vec!["--corpus", "shard-2.csv", "--max-len", "16", "--devices", "cpu"], "--devices wants two devices or more"),
        (vec!["--corpus", "shard-2.csv", "--max-len", "16", "--devices", "cpu,gpu7"], "--device gpu7: expected auto"),
        (
            vec!["--corpus", "shard-2.csv", "--max-len", "16", "--devices", "cpu,cpu", "--device", "cpu"],
            "cannot be used with",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let o = savant(&args, dir);
        assert_no_panic(&o, &format!("{extra:?}"));
        assert!(!o.status.success(), "{extra:?} succeeded");
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
    }
    // Without --max-len, train's default and clamp: 128, or fewer when the folder says so (this
    // one's sentence-transformers max_seq_length is 16, its positions 32), never an error.
    let fits = ["pretrain", "--model", model, "--corpus", "shard-2.csv", "--eval-docs", "2", "--steps", "2"];
    let o = savant(&[&fits[..], &["--batch-size", "4", "-o", "fits"]].concat(), dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = read_report(&dir.join("fits/metrics.json"));
    assert_eq!(m["max_len"], 16, "{m}");
    // A batch far over this machine's memory is refused before anything is allocated, naming
    // the device and the batch size that fits.
    let huge = ["pretrain", "--model", model, "--corpus", "shard-2.csv", "--max-len", "16", "--steps", "2"];
    let o = savant(&[&huge[..], &["--batch-size", "100000000", "-o", "out"]].concat(), dir);
    assert_no_panic(&o, "huge batch");
    let err = stderr(&o);
    assert!(!o.status.success(), "a huge batch succeeded");
    assert!(err.contains("cpu (flex): batch size 100000000 × 16 tokens needs an estimated"), "{err}");
    assert!(err.contains("lower --batch-size to ") && err.contains("--grad-accum"), "{err}");
}
