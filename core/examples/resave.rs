//! Loads a Hugging Face BERT folder and writes it back as Savant saves models (config.json with
//! id2label + model.safetensors with HF key names), so that `transformers` can be asked to load
//! the result: `tests/fixtures/model/check_saved.py OUT --expected-from tiny-cls`.
//!
//!     cargo run -p savant-core --features flex --example resave -- IN_DIR OUT_DIR

use std::fs::File;

use burn::tensor::Device;
use savant_core::model::{
    classifier_to_safetensors, encoder_to_safetensors, load_classifier, load_encoder, BertConfig, Checkpoint,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: resave IN_DIR OUT_DIR".into());
    };
    let (input, output) = (std::path::Path::new(input), std::path::Path::new(output));
    let config = BertConfig::from_json(&std::fs::read(input.join("config.json"))?, "config.json")?;
    let device = Device::flex();
    let weights = input.join("model.safetensors");
    let mut ckpt = Checkpoint::open(File::open(&weights)?, &weights.display().to_string())?;
    let is_classifier = ckpt.info("classifier.weight").is_some();
    let (bytes, architecture) = if is_classifier {
        let (m, _) = load_classifier(&config, &mut ckpt, &device)?;
        (pollster::block_on(classifier_to_safetensors(&m))?, "BertForSequenceClassification")
    } else {
        let (m, _) = load_encoder(&config, &mut ckpt, &device)?;
        (pollster::block_on(encoder_to_safetensors(&m))?, "BertModel")
    };
    std::fs::create_dir_all(output)?;
    std::fs::write(output.join("model.safetensors"), bytes)?;
    std::fs::write(output.join("config.json"), config.to_json(architecture))?;
    for f in ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"] {
        if input.join(f).exists() {
            std::fs::copy(input.join(f), output.join(f))?;
        }
    }
    println!("{} → {} ({architecture})", input.display(), output.display());
    Ok(())
}
