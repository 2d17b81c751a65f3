//! CSV/TSV/JSONL reading and the whole cleaning pipeline (rules, redaction, near-dedup, label
//! conflicts): any bytes give rows and a report, or an error — never a panic. The first byte
//! picks the format.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::table(data));
