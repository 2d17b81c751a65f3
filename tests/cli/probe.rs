//! `savant probe`: the model whose vocabulary covers the domain ranks first.

use super::common::*;

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
