//! PEFT adapter folders: `adapter_config.json`, then (after a NUL byte) the adapter weights read
//! onto the tests' tiny classifier.
#![no_main]
use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use savant_core::finetune::peft::{read_adapter, read_adapter_config};
use savant_core::model::Checkpoint;
use std::io::Cursor;

mod tiny;

fuzz_target!(|data: &[u8]| {
    let (json, weights) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(strategy) = read_adapter_config(json, "adapter_config.json") else { return };
    let Ok(mut checkpoint) = Checkpoint::open(Cursor::new(weights), "adapter_model.safetensors") else { return };
    let (config, model) = tiny::tiny();
    let _ = read_adapter(model.clone(), config, &strategy, &mut checkpoint, &Device::flex());
});
