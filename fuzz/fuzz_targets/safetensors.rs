//! safetensors files: the header checked against the real size before anything is allocated,
//! every tensor read back as f32 or refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::model::Checkpoint;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(mut c) = Checkpoint::open(Cursor::new(data), "model.safetensors") else { return };
    for name in c.names() {
        let _ = c.read_f32(&name);
    }
});
