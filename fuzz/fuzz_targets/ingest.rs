//! `savant ingest`'s readers: HTML stripping, and a file of any name and bytes (text, HTML, JSON,
//! JSONL, binary) becoming rows or a counted skip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::data::ingest::{html_to_text, Ingest, IngestOptions, LabelFrom};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    if let Ok(html) = std::str::from_utf8(bytes) {
        let _ = html_to_text(html);
    }
    let name = ["a/doc.txt", "a/b/page.html", "x.htm", "d.json", "lines.jsonl", "notes.md", "blob.bin"][pick as usize % 7];
    let options = IngestOptions { label_from: LabelFrom::Folder, text_field: "text".into(), chunk_tokens: None, overlap: 0 };
    let mut ingest = Ingest::new(options, None, "fuzz").expect("valid options");
    let _ = ingest.file(name, bytes);
    assert_eq!(ingest.report.rows_in, 1);
});
