//! `savant train` and `savant predict` with `--long windows|head-tail` on a tiny model: long texts
//! train as windows labelled with their text's class, validation and predictions are one per
//! text, `--per-window` shows each window's span and probabilities, and bad settings are clear
//! errors.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn savant(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(args)
        .current_dir(cwd)
        .env("SAVANT_HOME", cwd.join("home"))
        .output()
        .expect("savant runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model/tiny-base")
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Texts of 20-60 words whose class word sits anywhere, often past the first window.
fn long_task(dir: &Path) {
    let filler = ["the", "a", "my", "this", "that", "it", "was", "is", "and", "to", "of"];
    let classes = [("fraud", "fraud"), ("refund", "billing"), ("doctor", "medical")];
    let mut files = [String::from("text,label\n"), String::from("text,label\n")];
    for i in 0..30 {
        let (word, label) = classes[i % 3];
        let n = 20 + (i * 7) % 40;
        let at = (i * 13) % n;
        let words: Vec<&str> = (0..n).map(|k| if k == at { word } else { filler[(i + k) % filler.len()] }).collect();
        files[(i >= 21) as usize].push_str(&format!("\"{}\",{label}\n", words.join(" ")));
    }
    std::fs::write(dir.join("train.csv"), &files[0]).unwrap();
    std::fs::write(dir.join("val.csv"), &files[1]).unwrap();
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn windows_train_on_every_token_and_predict_one_row_per_text() {
    let dir = tempfile::tempdir().unwrap();
    long_task(dir.path());
    let m = model();
    let m = m.to_str().unwrap();
    let common = ["--max-len", "16", "--device", "cpu"];
    let o = savant(
        &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "full", "--epochs", "2"]
            .into_iter()
            .chain(["--lr", "1e-3", "--batch-size", "8", "--long", "windows", "--stride", "4", "-o", "run"])
            .chain(common)
            .collect::<Vec<_>>(),
        dir.path(),
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let metrics = json(&dir.path().join("run/metrics.json"));
    // Validation is per text: 9 val texts, however many windows they make.
    assert_eq!(
        (metrics["train_rows"].as_u64(), metrics["val_rows"].as_u64(), metrics["n"].as_u64()),
        (Some(21), Some(9), Some(9)),
        "{metrics}"
    );
    let windows = metrics["windows"].as_u64().unwrap();
    assert!(windows > 2 * 30, "texts of 20-60 words make several 16-token windows each: {metrics}");
    assert_eq!(metrics["long"], "windows");
    assert!(err.contains("long texts in windows of 16 tokens"), "{err}");

    // predict: one row per text, its window count, the run's val F1 again; the window rows.
    let o = savant(
        &["predict", "--model", "run/model", "val.csv", "-o", "preds.csv", "--long", "windows", "--stride", "4"]
            .into_iter()
            .chain(["--per-window", "windows.csv", "--report", "report.json"])
            .chain(common)
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let preds = csv_rows(&dir.path().join("preds.csv"));
    assert_eq!(preds.len(), 1 + 9, "a row per text");
    let col = |name: &str| preds[0].iter().position(|h| h == name).unwrap();
    let counts: Vec<usize> = preds[1..].iter().map(|r| r[col("windows")].parse().unwrap()).collect();
    assert!(counts.iter().all(|&c| c >= 2), "{counts:?}");
    let per_window = csv_rows(&dir.path().join("windows.csv"));
    assert_eq!(per_window[0][..5], ["row", "window", "char_start", "char_end", "pred"].map(String::from));
    assert_eq!(per_window.len() - 1, counts.iter().sum::<usize>(), "a row per window");
    for (i, &n) in counts.iter().enumerate() {
        let rows: Vec<&Vec<String>> = per_window[1..].iter().filter(|r| r[0] == (i + 1).to_string()).collect();
        assert_eq!(rows.len(), n);
        let spans: Vec<(usize, usize)> = rows.iter().map(|r| (r[2].parse().unwrap(), r[3].parse().unwrap())).collect();
        assert_eq!(spans[0].0, 0, "the first window starts at the text's start");
        assert!(spans.windows(2).all(|w| w[1].0 < w[0].1 && w[1].1 > w[0].1), "windows overlap and move on: {spans:?}");
    }
    let report = json(&dir.path().join("report.json"));
    assert_eq!(report["windows"].as_u64().unwrap() as usize, counts.iter().sum::<usize>(), "{report}");
    let o = savant(&["eval", "preds.csv", "--label", "label", "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let f1 = serde_json::from_slice::<Value>(&o.stdout).unwrap()["f1_macro"].as_f64().unwrap();
    assert!((f1 - metrics["f1_macro"].as_f64().unwrap()).abs() < 1e-9, "predict reproduces the run's val F1 per text");

    // head-tail trains too, one row per text.
    let o = savant(
        &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--epochs", "1"]
            .into_iter()
            .chain(["--batch-size", "8", "--long", "head-tail", "-o", "ht"])
            .chain(common)
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = json(&dir.path().join("ht/metrics.json"));
    assert_eq!((metrics["n"].as_u64(), metrics["windows"].as_u64()), (Some(9), Some(30)), "{metrics}");
}

#[test]
fn bad_long_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    long_task(dir.path());
    let m = model();
    let m = m.to_str().unwrap();
    let train = |extra: &[&str]| {
        let args: Vec<&str> = ["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--max-len", "16"]
            .into_iter()
            .chain(extra.iter().copied())
            .chain(["--device", "cpu", "--epochs", "1", "-o", "bad"])
            .collect();
        savant(&args, dir.path())
    };
    let o = train(&["--long", "windows", "--stride", "14"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--stride 14 must be less than the 14 text tokens"),
        "{}",
        stderr(&o)
    );
    let o = train(&["--long", "windows", "--max-windows", "0"]);
    assert!(!o.status.success() && stderr(&o).contains("--max-windows must be at least 1"), "{}", stderr(&o));
    let o = train(&["--long", "paragraphs"]);
    assert!(
        !o.status.success() && stderr(&o).contains("possible values: truncate, head-tail, windows"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("bad/metrics.json").exists(), "nothing written");
    let o = savant(&["predict", "--model", m, "val.csv", "-o", "p.csv", "--per-window", "w.csv"], dir.path());
    assert!(!o.status.success() && stderr(&o).contains("add --long windows"), "{}", stderr(&o));
    assert!(!dir.path().join("p.csv").exists());
}

/// A windowed run (each aggregation) resumed from a mid-run checkpoint ends with the
/// uninterrupted run's weights, bit for bit; a checkpoint of one aggregation does not resume
/// another.
#[test]
fn a_windowed_run_resumed_from_a_checkpoint_ends_with_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    long_task(dir.path());
    let m = model();
    let m = m.to_str().unwrap();
    for aggregate in ["mean-logits", "mean-pool"] {
        let args = |out: &str| -> Vec<String> {
            ["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--epochs", "2"]
                .into_iter()
                .chain(["--max-len", "16", "--device", "cpu", "--batch-size", "4", "--lr", "1e-3"])
                .chain(["--long", "windows", "--aggregate", aggregate, "--checkpoint-every", "7", "-o", out])
                .map(String::from)
                .collect()
        };
        let run = |a: &[String]| savant(&a.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
        let (a, b) = (format!("runs/{aggregate}-a"), format!("runs/{aggregate}-b"));
        let o = run(&args(&a));
        assert!(o.status.success(), "{aggregate}: {}", stderr(&o));
        // The older of the two checkpoints kept, copied into a fresh run folder: a run stopped there.
        let kept: Vec<PathBuf> = {
            let mut k: Vec<PathBuf> = std::fs::read_dir(dir.path().join(&a).join("checkpoints"))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("step-"))
                .collect();
            k.sort();
            k
        };
        assert_eq!(kept.len(), 2, "{kept:?}");
        let from = dir.path().join(&b).join("checkpoints").join(kept[0].file_name().unwrap());
        std::fs::create_dir_all(&from).unwrap();
        for f in std::fs::read_dir(&kept[0]).unwrap().flatten() {
            std::fs::copy(f.path(), from.join(f.file_name())).unwrap();
        }
        let mut resume = args(&b);
        resume.push("--resume".into());
        let o = run(&resume);
        assert!(o.status.success(), "{aggregate}: {}", stderr(&o));
        let step = |p: &Path| -> usize { p.file_name().unwrap().to_string_lossy()[5..].parse().unwrap() };
        assert!(stderr(&o).contains(&format!("(step {})", step(&kept[0]))), "{}", stderr(&o));
        assert!(step(&kept[0]) < step(&kept[1]), "resumed mid-run");
        let weights =
            |run: &str| std::fs::read(dir.path().join(run).join("adapter/adapter_model.safetensors")).unwrap();
        assert!(weights(&a) == weights(&b), "{aggregate}: the resumed run's weights are the uninterrupted run's");
        assert_eq!(
            json(&dir.path().join(&a).join("metrics.json"))["f1_macro"],
            json(&dir.path().join(&b).join("metrics.json"))["f1_macro"]
        );
    }
    // mean-pool's checkpoint does not continue a mean-logits run.
    let c = dir.path().join("runs/mixed/checkpoints");
    std::fs::create_dir_all(c.parent().unwrap()).unwrap();
    let src = dir.path().join("runs/mean-pool-b/checkpoints");
    let newest = std::fs::read_dir(&src).unwrap().flatten().map(|e| e.path()).max().unwrap();
    std::fs::create_dir_all(c.join(newest.file_name().unwrap())).unwrap();
    for f in std::fs::read_dir(&newest).unwrap().flatten() {
        std::fs::copy(f.path(), c.join(newest.file_name().unwrap()).join(f.file_name())).unwrap();
    }
    let o = savant(
        &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--epochs", "2"]
            .into_iter()
            .chain(["--max-len", "16", "--device", "cpu", "--batch-size", "4", "--lr", "1e-3"])
            .chain(["--long", "windows", "--checkpoint-every", "7", "-o", "runs/mixed", "--resume"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("aggregate"), "{}", stderr(&o));
}

/// `savant embed --long windows`: a text's vector is the mean of its windows' vectors (each
/// window embedded alone gives the same), L2-normalised after averaging when asked; `probe`
/// reads texts the same way.
#[test]
fn embed_and_probe_read_long_texts_in_windows() {
    let dir = tempfile::tempdir().unwrap();
    // Words that are single tokens of the tiny vocabulary: a window of 16 is 14 words, and with a
    // stride of 4 the windows start every 10 words.
    let vocab = ["the", "a", "my", "this", "that", "it", "was", "is", "and", "to", "of", "bank", "loan", "card"];
    let text = |i: usize, n: usize| -> Vec<&str> { (0..n).map(|k| vocab[(i * 5 + k * k) % vocab.len()]).collect() };
    let docs: Vec<Vec<&str>> = (0..4).map(|i| text(i, [9, 14, 31, 47][i])).collect();
    let mut table = String::from("text,label\n");
    let mut windows = String::from("text\n");
    let mut of_doc = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        table.push_str(&format!("{},{}\n", d.join(" "), ["x", "y"][i % 2]));
        let mut start = 0;
        loop {
            let end = (start + 14).min(d.len());
            windows.push_str(&format!("{}\n", d[start..end].join(" ")));
            of_doc.push(i);
            if end == d.len() {
                break;
            }
            start += 10;
        }
    }
    std::fs::write(dir.path().join("docs.csv"), &table).unwrap();
    std::fs::write(dir.path().join("windows.csv"), &windows).unwrap();
    let m = model();
    let m = m.to_str().unwrap();
    let embed = |input: &str, out: &str, extra: &[&str]| {
        let args: Vec<&str> = ["embed", input, "--model", m, "--max-len", "16", "--device", "cpu", "-o", out]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let o = savant(&args, dir.path());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        std::fs::read_to_string(dir.path().join(out))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>()
            })
            .collect::<Vec<_>>()
    };
    let long = ["--long", "windows", "--stride", "4"];
    let per_window = embed("windows.csv", "w.jsonl", &["--no-normalize"]);
    let raw = embed("docs.csv", "raw.jsonl", &[&long[..], &["--no-normalize"]].concat());
    let unit = embed("docs.csv", "unit.jsonl", &[&long[..], &["--normalize"]].concat());
    assert_eq!((raw.len(), unit.len()), (4, 4), "one vector per text");
    assert!(of_doc.iter().filter(|&&d| d == 3).count() >= 4, "the longest text has several windows: {of_doc:?}");
    for d in 0..4 {
        let own: Vec<&Vec<f64>> = per_window.iter().zip(&of_doc).filter(|(_, &o)| o == d).map(|(v, _)| v).collect();
        let mean: Vec<f64> =
            (0..raw[d].len()).map(|j| own.iter().map(|v| v[j]).sum::<f64>() / own.len() as f64).collect();
        let diff = mean.iter().zip(&raw[d]).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-5, "text {d}: the mean of its {} windows differs by {diff}", own.len());
        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        let diff = mean.iter().zip(&unit[d]).map(|(a, b)| (a / norm - b).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-5, "text {d}: normalised after averaging, off by {diff}");
    }

    let o = savant(
        &["probe", "--models", m, "--data", "docs.csv", "--label", "label", "--max-len", "16", "--device", "cpu"]
            .into_iter()
            .chain(long)
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("read as windows"), "{}", stderr(&o));
}
