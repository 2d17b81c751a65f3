//! HF `config.json` (and sentence-transformers' pooling config): checked sizes or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::config(data));
