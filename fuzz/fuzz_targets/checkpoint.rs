//! A training checkpoint's weights (`checkpoints/step-N/model.safetensors`) put back onto the
//! tests' tiny classifier by parameter name and shape: every mismatch an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::train::checkpoint::params_from_safetensors;

mod tiny;

fuzz_target!(|data: &[u8]| {
    let (_, model) = tiny::tiny();
    let _ = params_from_safetensors(model.clone(), data, "checkpoint");
});
