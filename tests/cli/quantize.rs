//! `savant quantize`: the int8 folder predicts and embeds exactly as `--int8` does on the f32
//! folder, says what it cost on a labelled split, never touches the f32 folder, and refuses what
//! an int8 folder cannot do (quantising again, training, an adapter on it, other quantisations).

use super::common::*;

fn files_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn tiny_rows(dir: &std::path::Path) -> std::path::PathBuf {
    let rows = ["my card was charged twice", "late fee on my bill", "someone used my account", "hello there"];
    let body: String = rows.iter().enumerate().map(|(i, t)| format!("{i},{t}\n")).collect();
    write(dir, "in.csv", &format!("id,text\n{body}"))
}

// The int8 classifier folder: predict with it = `predict --int8` with the f32 folder, byte for
// byte; its config says savant-int8; the cost on a labelled file is printed and saved, a row
// with a label the model lacks counted; the f32 folder is unchanged.
#[test]
fn an_int8_folder_predicts_as_predict_int8_and_reports_its_cost() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_model("tiny-cls", dir.path());
    let before = files_of(&model);
    let input = tiny_rows(dir.path());
    write(
        dir.path(),
        "val.csv",
        "text,label\nmy card was charged twice,billing\nsomeone used my account,fraud\nhello there,other\nwhat,unknown\n",
    );
    let m = model.to_str().unwrap();
    let o = savant(&["quantize", "--model", m, "-o", "q", "--eval", "val.csv"], dir.path());
    assert_no_panic(&o, "quantize");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("int8 classifier") && err.contains("accuracy cost on val.csv (3 rows): macro-F1"), "{err}");
    assert!(err.contains("1 rows skipped"), "{err}");
    assert_eq!(files_of(&model), before, "the f32 folder is untouched");
    let q = dir.path().join("q");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(q.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["quantization_config"]["quant_method"], "savant-int8");
    assert_eq!(config["id2label"]["0"], "billing");
    let report = read_report(&q.join("savant_quantize.json"));
    assert_eq!(report["eval"]["rows"], 3);
    assert_eq!(report["eval"]["rows_skipped"], 1);
    assert!(report["eval"]["skipped"][0]["reason"].as_str().unwrap().contains("label 'unknown'"), "{report}");
    assert!(report["int8_weights_bytes"].as_u64().unwrap() < report["f32_weights_bytes"].as_u64().unwrap());

    let predict = |model: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["predict", "--model", model, input.to_str().unwrap(), "-o", out, "--device", "cpu"];
        args.extend_from_slice(extra);
        let o = savant(&args, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(dir.path().join(out)).unwrap()
    };
    let from_flag = predict(m, "flag.csv", &["--int8"]);
    let from_folder = predict("q", "folder.csv", &["--report", "r.json"]);
    assert_eq!(from_folder, from_flag, "the int8 folder predicts what --int8 predicts");
    assert_ne!(from_folder, predict(m, "f32.csv", &[]), "and that is not the f32 model's output");
    assert_eq!(read_report(&dir.path().join("r.json"))["int8"], true);
    no_temp_files(dir.path());
}

// A sentence encoder quantises too: `embed` with the int8 folder = `embed --int8` with the f32.
#[test]
fn an_int8_encoder_folder_embeds_as_embed_int8() {
    let dir = tempfile::tempdir().unwrap();
    let input = tiny_rows(dir.path());
    let base = model_fixture("tiny-base");
    let o = savant(&["quantize", "--model", base.to_str().unwrap(), "-o", "q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("int8 encoder"), "{}", stderr(&o));
    let embed = |model: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["embed", "--model", model, input.to_str().unwrap(), "-o", out, "--device", "cpu"];
        args.extend_from_slice(extra);
        let o = savant(&args, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(dir.path().join(out)).unwrap()
    };
    assert_eq!(embed("q", "folder.jsonl", &[]), embed(base.to_str().unwrap(), "flag.jsonl", &["--int8"]));
}

// What cannot be done, each refused with what to do instead and nothing written: quantising an
// int8 folder; -o the f32 folder or a folder that holds files; training from an int8 folder;
// an adapter on an int8 base; --eval on an encoder; a folder of another quantisation (GPTQ's
// header) in predict.
#[test]
fn quantize_refuses_what_an_int8_folder_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    tiny_task(dir.path());
    let input = tiny_rows(dir.path());
    let model = copy_model("tiny-cls", dir.path());
    let m = model.to_str().unwrap();
    let o = savant(&["quantize", "--model", m, "-o", "q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("accuracy cost not measured: add --eval"), "{}", stderr(&o));
    let refused = |args: &[&str], want: &str| {
        let o = savant(args, dir.path());
        assert_no_panic(&o, &args.join(" "));
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    };
    refused(&["quantize", "--model", "q", "-o", "qq"], "already int8");
    assert!(!dir.path().join("qq").exists());
    refused(&["quantize", "--model", m, "-o", m], "never overwritten");
    refused(&["quantize", "--model", m, "-o", "q"], "already exists and is not an empty folder");
    let train = ["train", "--model", "q", "--train", "train.csv", "--val", "val.csv", "--device", "cpu", "-o", "run"];
    refused(&train, "cannot be trained");
    assert!(!dir.path().join("run/model").exists());
    // An adapter trained on the f32 model, put on the int8 one.
    let o = savant(
        &["train", "--model", m, "--train", "train.csv", "--val", "val.csv", "--mode", "lora", "--lora-r", "2"]
            .into_iter()
            .chain(["--epochs", "1", "--batch-size", "8", "--max-len", "16", "--device", "cpu", "-o", "lora"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let i = input.to_str().unwrap();
    refused(
        &["predict", "--model", "q", "--adapter", "lora/adapter", i, "-o", "p.csv"],
        "an adapter goes on f32 weights",
    );
    assert!(!dir.path().join("p.csv").exists());
    // The adapter merged into an int8 folder predicts as `predict --adapter --int8`.
    let o = savant(&["quantize", "--model", m, "--adapter", "lora/adapter", "-o", "q-lora"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |args: &[&str], out: &str| {
        let o = savant(&[args, &[i, "-o", out, "--device", "cpu"]].concat(), dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(dir.path().join(out)).unwrap()
    };
    assert_eq!(
        read(&["predict", "--model", "q-lora"], "a.csv"),
        read(&["predict", "--model", m, "--adapter", "lora/adapter", "--int8"], "b.csv")
    );
    let base = model_fixture("tiny-base");
    refused(&["quantize", "--model", base.to_str().unwrap(), "-o", "qe", "--eval", "val.csv"], "is a sentence encoder");
    // Another tool's quantisation header.
    let gptq = copy_model("tiny-cls", &dir.path().join("gptq"));
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(gptq.join("config.json")).unwrap()).unwrap();
    config["quantization_config"] = serde_json::json!({"quant_method": "gptq", "bits": 4});
    std::fs::write(gptq.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    refused(&["predict", "--model", gptq.to_str().unwrap(), i, "-o", "g.csv"], "quant_method is \"gptq\"");
    no_temp_files(dir.path());
}
