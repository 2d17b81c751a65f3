//! PII redaction on any text: placeholders only replace, never panic on odd Unicode.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::redact(data));
