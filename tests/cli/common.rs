//! Helpers every command's tests share.

pub use serde_json::{json, Value};
pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output};
pub use std::time::Duration;

pub fn savant(args: &[&str], cwd: &Path) -> Output {
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

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bad-input")
}

pub fn assert_no_panic(o: &Output, what: &str) {
    let err = stderr(o);
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{what} panicked:\n{err}");
    assert!(o.status.code().is_some(), "{what} was killed by a signal");
}

pub fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file left behind: {name}");
    }
}

pub fn read_report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn invariant(r: &Value) {
    let dropped: u64 = r["dropped"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(r["rows_in"].as_u64().unwrap(), r["rows_out"].as_u64().unwrap() + dropped, "{r}");
}

/// `expected.txt` of a corpus folder: `case | text` lines (`#` comments), text = a part of the
/// error the CLI must print, or `ok` for a case that must work.
pub fn expectations(dir: &Path) -> Vec<(String, String)> {
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
pub fn expect_outcome(o: &Output, case: &str, want: &str, out: &Path) {
    assert_no_panic(o, case);
    if want == "ok" {
        assert!(o.status.success(), "{case}: expected success: {}", stderr(o));
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{case}: expected an error, got {:?}: {}", o.status, stderr(o));
    assert!(stderr(o).contains(want), "{case}: stderr lacks '{want}':\n{}", stderr(o));
    assert!(!out.exists(), "{case}: a failed run left {}", out.display());
}

pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

// ---- predict / embed (tiny HF models from tests/fixtures/model) ----

pub fn model_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model").join(name)
}

/// A copy of a fixture model folder that a test may damage.
pub fn copy_model(name: &str, to: &Path) -> PathBuf {
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

/// A tiny labelled task for the tiny fixture model: the class is in the words.
pub fn tiny_task(dir: &Path) {
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

/// A small corpus in two shards (gzip JSONL and CSV) of the fixture vocabulary's words, with one
/// long document and one empty text.
pub fn pretrain_corpus(dir: &Path) {
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

/// Copies `src` (a fixture folder) into `dst`, recursively.
pub fn copy_tree(src: &Path, dst: &Path) {
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
