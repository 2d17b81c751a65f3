//! PEFT adapter folders: `adapter_config.json`, then (after a NUL byte) the adapter weights read
//! onto the tests' tiny classifier.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::adapter(data));
