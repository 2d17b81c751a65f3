//! Long texts: the windows equal HF transformers' overflowing windows (ids and character spans,
//! tests/fixtures/long/make.py), head + tail keeps the start and the end, one prediction per
//! document.

use std::path::PathBuf;

use savant_core::long::{aggregate, Aggregate, LongMode, LongText};
use savant_core::tokenize::TextTokenizer;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn tokenizer(max_len: usize) -> TextTokenizer {
    let bytes = std::fs::read(fixtures().join("model/tiny-base/tokenizer.json")).unwrap();
    let mut t = TextTokenizer::from_tokenizer_json(&bytes, "tokenizer.json", 0).unwrap();
    t.set_max_len(Some(max_len)).unwrap();
    t
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("long/expected.json")).unwrap()).unwrap()
}

fn windows(stride: usize) -> LongText {
    LongText { mode: LongMode::Windows, stride: Some(stride), max_windows: None }
}

#[test]
fn windows_equal_transformers_overflowing_windows() {
    let e = expected();
    let texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for setting in e["settings"].as_array().unwrap() {
        let (max_len, stride) =
            (setting["max_len"].as_u64().unwrap() as usize, setting["stride"].as_u64().unwrap() as usize);
        let got = tokenizer(max_len).encode_docs(&texts, &windows(stride)).unwrap();
        let want = setting["windows"].as_array().unwrap();
        assert_eq!(got.windows.len(), want.len(), "windows at max_len {max_len}, stride {stride}");
        for (i, w) in want.iter().enumerate() {
            let ids: Vec<u32> = w["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let span = (w["span"][0].as_u64().unwrap() as usize, w["span"][1].as_u64().unwrap() as usize);
            let at = format!("window {i} at max_len {max_len}, stride {stride}");
            assert_eq!(got.windows[i].ids, ids, "{at}");
            assert_eq!(got.doc[i], w["doc"].as_u64().unwrap() as usize, "{at}");
            assert_eq!(got.spans[i], span, "{at}");
            assert!(got.windows[i].type_ids.iter().all(|&t| t == 0));
        }
        assert_eq!(got.docs, texts.len());
        assert_eq!(got.truncated, 0, "no cap: nothing is cut");
    }
}

#[test]
fn max_windows_keeps_the_first_windows_and_counts_the_documents_cut() {
    let e = expected();
    let texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let t = tokenizer(16);
    let all = t.encode_docs(&texts, &windows(4)).unwrap();
    let capped = t.encode_docs(&texts, &LongText { max_windows: Some(2), ..windows(4) }).unwrap();
    let counts = all.counts();
    assert_eq!(capped.counts(), counts.iter().map(|&c| c.min(2)).collect::<Vec<_>>());
    assert_eq!(capped.truncated, counts.iter().filter(|&&c| c > 2).count());
    assert!(capped.truncated > 0);
    same_first_windows(&all, &capped, 2);
}

/// `capped` holds the first `n` windows of each of `all`'s documents: ids, spans and the cut flag.
fn same_first_windows(all: &savant_core::long::DocWindows, capped: &savant_core::long::DocWindows, n: usize) {
    let mut kept = 0;
    let counts = all.counts();
    for (i, &d) in all.doc.iter().enumerate() {
        if all.doc[..i].iter().filter(|&&x| x == d).count() < n {
            assert_eq!(capped.windows[kept].ids, all.windows[i].ids, "document {d}");
            assert_eq!(capped.spans[kept], all.spans[i], "document {d}");
            assert_eq!(capped.doc[kept], d);
            assert_eq!(capped.windows[kept].truncated, counts[d] > n, "document {d}");
            kept += 1;
        }
    }
    assert_eq!(kept, capped.windows.len());
}

// With --max-windows, only the start of a long text is tokenised (a prefix cut at whitespace,
// widened until it holds the windows kept): the windows equal the first windows of the whole
// text's, for long texts, whitespace-heavy ones (the prefix must widen), one endless word and
// accented / multi-byte text.
#[test]
fn max_windows_reads_only_the_start_of_a_text_and_keeps_its_first_windows() {
    let words = ["the", "bank", "charged", "my", "card", "twice", "fee", "refund", "loan", "interest"];
    let long: String = (0..20_000).map(|i| words[(i * 7) % words.len()]).collect::<Vec<_>>().join(" ");
    let spaced: String = (0..300).map(|i| format!("{}{}", words[i % words.len()], " ".repeat(200))).collect();
    let endless = "x".repeat(5_000);
    let accents: String =
        (0..3_000).map(|i| ["café", "naïve", "日本語", "über", "ça"][i % 5]).collect::<Vec<_>>().join(" ");
    let e = expected();
    let mut texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    texts.extend([long.as_str(), spaced.as_str(), endless.as_str(), accents.as_str(), "", "short one"]);
    let t = tokenizer(16);
    let all = t.encode_docs(&texts, &windows(4)).unwrap();
    for n in [1, 2, 3] {
        let capped = t.encode_docs(&texts, &LongText { max_windows: Some(n), ..windows(4) }).unwrap();
        same_first_windows(&all, &capped, n);
        assert_eq!(capped.truncated, all.counts().iter().filter(|&&c| c > n).count(), "max_windows {n}");
    }
}

#[test]
fn truncate_is_one_window_per_document_as_encode_each() {
    let e = expected();
    let texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let t = tokenizer(16);
    let docs = t.encode_docs(&texts, &LongText::TRUNCATE).unwrap();
    assert_eq!(docs.windows, t.encode_each(&texts).unwrap());
    assert_eq!(docs.doc, (0..texts.len()).collect::<Vec<_>>());
    assert_eq!(docs.truncated, docs.windows.iter().filter(|w| w.truncated).count());
    // The first window of the stride-0 windows is the truncated text.
    let first = t.encode_docs(&texts, &windows(0)).unwrap();
    for (d, w) in docs.windows.iter().enumerate() {
        let i = first.doc.iter().position(|&x| x == d).unwrap();
        assert_eq!(first.windows[i].ids, w.ids);
    }
}

#[test]
fn head_tail_keeps_a_quarter_from_the_start_and_the_rest_from_the_end() {
    let e = expected();
    let texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let max_len = 18; // 16 text tokens: 4 from the head, 12 from the tail
    let t = tokenizer(max_len);
    let mut whole = t.clone();
    whole.set_max_len(None).unwrap();
    let docs = t.encode_docs(&texts, &LongText { mode: LongMode::HeadTail, ..LongText::TRUNCATE }).unwrap();
    assert_eq!(docs.windows.len(), texts.len());
    let mut cut = 0;
    for (d, text) in texts.iter().enumerate() {
        let all = whole.ids(text).unwrap();
        let (cls, body, sep) = (all[0], &all[1..all.len() - 1], *all.last().unwrap());
        let w = &docs.windows[d].ids;
        if body.len() <= 16 {
            assert_eq!(w, &all, "doc {d}: short texts are whole");
        } else {
            cut += 1;
            let mut want = vec![cls];
            want.extend(&body[..4]);
            want.extend(&body[body.len() - 12..]);
            want.push(sep);
            assert_eq!(w, &want, "doc {d}");
            assert!(docs.windows[d].truncated);
            assert_eq!(docs.spans[d].0, 0, "doc {d} starts at the text's first token");
        }
    }
    assert!(cut > 0);
    assert_eq!(docs.truncated, cut);
}

#[test]
fn a_stride_as_long_as_the_window_is_refused_by_name() {
    let err = tokenizer(16).encode_docs(&["a b c"], &windows(14)).unwrap_err().to_string();
    assert!(err.contains("stride 14") && err.contains("max_len 16"), "{err}");
}

#[test]
fn a_document_of_n_windows_yields_one_row() {
    let e = expected();
    let texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let docs = tokenizer(12).encode_docs(&texts, &windows(9)).unwrap();
    assert!(docs.windows.len() > 4 * texts.len(), "long texts make many windows");
    let values: Vec<f32> = (0..docs.windows.len() * 3).map(|i| (i % 7) as f32).collect();
    for how in [Aggregate::MeanLogits, Aggregate::MaxLogits] {
        assert_eq!(aggregate(&values, 3, &docs.doc, docs.docs, how).len(), texts.len() * 3);
    }
}
