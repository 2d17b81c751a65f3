//! A training checkpoint's weights (`checkpoints/step-N/model.safetensors`) put back onto the
//! tests' tiny classifier by parameter name and shape: every mismatch an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::checkpoint(data));
