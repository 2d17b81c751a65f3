//! Model FLOPs of training, for throughput and model-FLOPs-utilisation (MFU) reports: the
//! arithmetic the model needs, counted as in the PaLM paper's appendix B (a multiply-add is 2
//! FLOPs; the backward pass costs twice the forward's), whatever the backend actually executes.
//! MFU = model FLOPs per second / the device's peak.

use crate::model::BertConfig;

/// Forward FLOPs of the encoder for one sequence of `len` tokens: per layer and token, the
/// Q/K/V/output projections (4·h²), the feed-forward block (2·h·i) and attention's scores and
/// weighted sum (2·len·h), all multiply-adds.
pub fn encoder_forward_flops(config: &BertConfig, len: usize) -> f64 {
    let h = config.hidden_size as f64;
    let i = config.intermediate_size as f64;
    let per_token = 4.0 * h * h + 2.0 * h * i + 2.0 * len as f64 * h;
    2.0 * config.num_hidden_layers as f64 * per_token * len as f64
}

/// Forward FLOPs of BERT's MLM head at one predicted position: dense (h²) and the decoder to the
/// vocabulary (h·v).
pub fn mlm_head_forward_flops(config: &BertConfig) -> f64 {
    let h = config.hidden_size as f64;
    2.0 * (h * h + h * config.vocab_size as f64)
}

/// Training FLOPs of a batch: forward + backward. `full`: every weight trains, so the backward
/// computes input and weight gradients (2 × forward); otherwise (LoRA, adapters, frozen layers)
/// the frozen weights' gradients are skipped (1 × forward, the small trainable matrices left out).
pub fn training_flops(forward: f64, full: bool) -> f64 {
    forward * if full { 3.0 } else { 2.0 }
}

/// Training FLOPs of a batch of sequences with these lengths; `predicted`: masked positions the
/// MLM head runs at (0 for a classifier, whose head is negligible).
pub fn batch_training_flops(config: &BertConfig, lengths: &[usize], predicted: usize, full: bool) -> f64 {
    let forward: f64 = lengths.iter().map(|&len| encoder_forward_flops(config, len)).sum::<f64>()
        + predicted as f64 * mlm_head_forward_flops(config);
    training_flops(forward, full)
}

/// Throughput of a stretch of training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Throughput {
    pub tokens_per_second: f64,
    pub samples_per_second: f64,
    pub model_tflops_per_second: f64,
    /// Model FLOPs per second over the device's peak (`None`: peak unknown).
    pub mfu: Option<f64>,
}

impl Throughput {
    pub fn new(tokens: u64, samples: u64, flops: f64, seconds: f64, peak_flops: Option<f64>) -> Throughput {
        let seconds = seconds.max(1e-9);
        let rate = flops / seconds;
        Throughput {
            tokens_per_second: tokens as f64 / seconds,
            samples_per_second: samples as f64 / seconds,
            model_tflops_per_second: rate / 1e12,
            mfu: peak_flops.filter(|p| *p > 0.0).map(|p| rate / p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bert_base() -> BertConfig {
        let json = br#"{"model_type":"bert","vocab_size":30522,"hidden_size":768,"num_hidden_layers":12,
            "num_attention_heads":12,"intermediate_size":3072,"max_position_embeddings":512}"#;
        BertConfig::from_json(json, "config.json").unwrap()
    }

    // The usual estimate for transformers is 6·N FLOPs per trained token (N the non-embedding
    // parameters, ~85 M for BERT-base) plus attention's 12·layers·h·len: the same figure.
    #[test]
    fn bert_base_costs_six_n_per_token_plus_attention() {
        let config = bert_base();
        let n = 12.0 * (4.0 * 768.0 * 768.0 + 2.0 * 768.0 * 3072.0);
        for len in [128usize, 512] {
            let per_token = batch_training_flops(&config, &[len], 0, true) / len as f64;
            let expected = 6.0 * n + 12.0 * 12.0 * 768.0 * len as f64;
            assert!((per_token - expected).abs() / expected < 1e-12, "{len}: {per_token} vs {expected}");
        }
        let frozen = batch_training_flops(&config, &[128], 0, false);
        assert!((frozen / batch_training_flops(&config, &[128], 0, true) - 2.0 / 3.0).abs() < 1e-12);
        // 20 masked tokens add their head's dense and decoder, three times (forward + backward).
        let with_head =
            batch_training_flops(&config, &[128], 20, true) - batch_training_flops(&config, &[128], 0, true);
        assert!((with_head - 3.0 * 20.0 * 2.0 * (768.0 * 768.0 + 768.0 * 30522.0)).abs() < 1.0);
    }

    #[test]
    fn mfu_is_the_rate_over_the_peak() {
        let t = Throughput::new(1000, 10, 4e12, 2.0, Some(10e12));
        assert_eq!((t.tokens_per_second, t.samples_per_second, t.model_tflops_per_second), (500.0, 5.0, 2.0));
        assert!((t.mfu.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(Throughput::new(1, 1, 1.0, 1.0, None).mfu, None);
    }
}
