//! Tokenizer files (`tokenizer.json`, or `vocab.txt` when the first byte is odd), then an
//! encoding of the tail of the input with them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::tokenizer(data));
