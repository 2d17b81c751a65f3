//! Fitting a run into a GPU's buffer limits. WebGPU refuses any single buffer above the adapter's
//! `maxBufferSize` / `maxStorageBufferBindingSize` (often 128 MiB–1 GiB in browsers), so before
//! training we estimate the largest tensor a step creates and shrink the batch (then the sequence
//! length) until it fits — or say what to change.

use crate::model::BertConfig;
use crate::{Error, Result};

/// The two limits that bound one tensor on a WebGPU device, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BufferLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
}

impl BufferLimits {
    fn bound(&self) -> u64 {
        self.max_buffer_size.min(self.max_storage_buffer_binding_size)
    }
}

/// The batch and length a run will use, and why they changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fit {
    pub batch_size: usize,
    pub max_len: usize,
    /// Bytes of the largest tensor at that size.
    pub largest_buffer: u64,
    /// Set when the batch or length was lowered.
    pub note: Option<String>,
}

/// Bytes of the largest f32 tensor of one training step of a BERT classifier: the word
/// embedding table (and its gradient), the attention scores `[batch, heads, seq, seq]`, or the
/// feed-forward activations `[batch, seq, intermediate]`.
pub fn largest_buffer(config: &BertConfig, batch: usize, seq: usize) -> u64 {
    let (b, s) = (batch as u64, seq as u64);
    let embeddings = config.vocab_size as u64 * config.hidden_size as u64;
    let scores = b * config.num_attention_heads as u64 * s * s;
    let ffn = b * s * config.intermediate_size.max(config.hidden_size) as u64;
    4 * embeddings.max(scores).max(ffn)
}

/// The largest batch (then length) not above the requested ones whose tensors fit `limits`.
pub fn fit_to_limits(config: &BertConfig, batch_size: usize, max_len: usize, limits: BufferLimits) -> Result<Fit> {
    let bound = limits.bound();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let table = 4 * config.vocab_size as u64 * config.hidden_size as u64;
    if table > bound {
        return Err(Error::Option(format!(
            "this model's word-embedding table ({:.0} MiB) is larger than this GPU's largest buffer ({:.0} MiB): use the CPU backend",
            mib(table),
            mib(bound)
        )));
    }
    let (mut batch, mut len) = (batch_size.max(1), max_len.max(2));
    while largest_buffer(config, batch, len) > bound {
        if batch > 1 {
            batch /= 2;
        } else if len > 16 {
            len = (len * 3 / 4).max(16);
        } else {
            return Err(Error::Option(format!(
                "even one text of {len} tokens needs a {:.0} MiB buffer, over this GPU's {:.0} MiB: use the CPU backend",
                mib(largest_buffer(config, 1, len)),
                mib(bound)
            )));
        }
    }
    let note = (batch != batch_size || len != max_len).then(|| {
        format!(
            "batch size {batch_size} × {max_len} tokens needs a {:.0} MiB buffer, over this GPU's {:.0} MiB limit: using batch size {batch} × {len} tokens (use gradient accumulation to keep the effective batch)",
            mib(largest_buffer(config, batch_size, max_len)),
            mib(bound)
        )
    });
    Ok(Fit { batch_size: batch, max_len: len, largest_buffer: largest_buffer(config, batch, len), note })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> BertConfig {
        BertConfig::from_json(
            br#"{"model_type": "bert", "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                 "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512}"#,
            "config.json",
        )
        .unwrap()
    }

    #[test]
    fn shrinks_the_batch_then_the_length_and_says_so() {
        let c = minilm();
        // 30522 × 384 × 4 = 44.7 MiB: the embedding table bounds everything at small sizes.
        let big = BufferLimits { max_buffer_size: 1 << 30, max_storage_buffer_binding_size: 128 << 20 };
        let fit = fit_to_limits(&c, 8, 64, big).unwrap();
        assert_eq!((fit.batch_size, fit.max_len, fit.note), (8, 64, None));
        assert_eq!(fit.largest_buffer, 4 * 30522 * 384);
        // 32 × 12 × 512² × 4 = 384 MiB of attention scores: halve to 8 (96 MiB).
        let fit = fit_to_limits(&c, 32, 512, big).unwrap();
        assert_eq!((fit.batch_size, fit.max_len), (8, 512));
        assert!(fit.note.unwrap().contains("using batch size 8 × 512 tokens"));
        let small = BufferLimits { max_buffer_size: 64 << 20, max_storage_buffer_binding_size: 64 << 20 };
        // One text of 2048 tokens: 192 MiB of scores; 1536: 108 MiB; 1152: 61 MiB.
        let fit = fit_to_limits(&c, 4, 2048, small).unwrap();
        assert_eq!((fit.batch_size, fit.max_len), (1, 1152));
        let tiny = BufferLimits { max_buffer_size: 16 << 20, max_storage_buffer_binding_size: 16 << 20 };
        assert!(fit_to_limits(&c, 8, 64, tiny).unwrap_err().to_string().contains("use the CPU backend"));
    }
}
