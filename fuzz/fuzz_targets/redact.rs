//! PII redaction on any text: placeholders only replace, never panic on odd Unicode.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::data::redact::{PiiType, Redactor};
use std::collections::BTreeMap;
use std::sync::OnceLock;

static REDACTOR: OnceLock<Redactor> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = REDACTOR.get_or_init(|| Redactor::new(&PiiType::ALL));
    let mut counts = BTreeMap::new();
    let out = r.redact(text, &mut counts);
    if counts.is_empty() {
        assert_eq!(out, text);
    }
});
