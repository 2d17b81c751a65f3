//! `savant ingest`'s readers: HTML stripping, and a file of any name and bytes (text, HTML, JSON,
//! JSONL, binary) becoming rows or a counted skip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::ingest(data));
