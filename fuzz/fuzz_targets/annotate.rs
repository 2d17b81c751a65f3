//! The annotator's table: any bytes load as rows to label (or an error), and the export of the
//! loaded labels reads back to the same rows and labels.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::annotate(data));
