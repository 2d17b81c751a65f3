//! The bad-input corpus (tests/bad-input) and bad model and adapter folders: every case gives its expected outcome, never a panic.

use super::common::*;

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
