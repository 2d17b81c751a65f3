//! safetensors files: the header checked against the real size before anything is allocated,
//! every tensor read back as f32 or refused.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::safetensors(data));
