// The tiny classifier of the tests (tests/fixtures/model/tiny-cls), loaded once per target.
use burn::tensor::Device;
use savant_core::model::{load_classifier, BertClassifier, BertConfig, Checkpoint};
use std::sync::OnceLock;

static TINY: OnceLock<(BertConfig, BertClassifier)> = OnceLock::new();

pub fn tiny() -> &'static (BertConfig, BertClassifier) {
    TINY.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/model/tiny-cls");
        let config = BertConfig::from_json(&std::fs::read(dir.join("config.json")).unwrap(), "config.json").unwrap();
        let file = std::fs::File::open(dir.join("model.safetensors")).unwrap();
        let mut checkpoint = Checkpoint::open(std::io::BufReader::new(file), "model.safetensors").unwrap();
        let (model, _) = load_classifier(&config, &mut checkpoint, &Device::flex()).unwrap();
        (config, model)
    })
}
