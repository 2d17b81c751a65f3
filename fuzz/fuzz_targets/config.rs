//! HF `config.json` (and sentence-transformers' pooling config): checked sizes or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::model::{BertConfig, Pooling};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = BertConfig::from_json(data, "config.json") {
        assert!(c.hidden_size > 0 && c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0);
        let _ = c.min_weights();
    }
    let _ = Pooling::from_json(data, "1_Pooling/config.json");
});
