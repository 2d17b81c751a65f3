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

/// What a training step holds in memory, estimated (f32 throughout): the weights, the trained
/// parameters' gradients and AdamW's two moments, and what the backward pass keeps per layer for
/// `rows` texts of `seq` tokens (the inputs of every matmul, the attention scores and
/// probabilities, GELU's input and output, LayerNorm's, dropout's masks:
/// about `12·hidden + 2·intermediate + 3·heads·seq` values per token), plus `predicted`
/// vocabulary-sized logit rows (the MLM head's, and their gradient).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepMemory {
    pub params: u64,
    pub trained: u64,
    pub rows: usize,
    pub seq: usize,
    pub predicted: usize,
}

impl StepMemory {
    pub fn bytes(&self, config: &BertConfig) -> u64 {
        let (h, i, heads) =
            (config.hidden_size as u64, config.intermediate_size as u64, config.num_attention_heads as u64);
        let per_token = 12 * h + 2 * i + 3 * heads * self.seq as u64;
        let activations = self.rows as u64 * self.seq as u64 * config.num_hidden_layers as u64 * per_token;
        let logits = 2 * self.predicted as u64 * config.vocab_size as u64;
        4 * (self.params + 3 * self.trained + activations + logits)
    }

    /// An error naming `device` and the batch size to lower to (and, for a run that accumulates
    /// gradients, `accum` of them now, the `grad_accum` that keeps the effective batch) when
    /// the estimate is over `available` bytes.
    pub fn check(&self, config: &BertConfig, device: &str, available: u64, accum: Option<usize>) -> Result<()> {
        let needed = self.bytes(config);
        if needed <= available {
            return Ok(());
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let mut fits = *self;
        while fits.rows > 1 && fits.bytes(config) > available {
            fits.rows /= 2;
            fits.predicted /= 2;
        }
        let advice = if fits.bytes(config) <= available && fits.rows < self.rows {
            format!("lower batch_size to {}{} or max_len", fits.rows, keep_effective_batch(accum, self.rows, fits.rows))
        } else {
            "even one text does not fit: lower max_len, train fewer parameters (a LoRA mode), or use a device with more memory".to_string()
        };
        Err(Error::invalid(
            device,
            None,
            format!(
            "batch size {} × {} tokens needs an estimated {:.1} GiB (weights, gradients, AdamW state and the activations kept for the backward pass) and {:.1} GiB is available: {advice}",
            self.rows,
            self.seq,
            gib(needed),
            gib(available)
        ),
        ))
    }
}

/// " (with grad_accum N to keep the effective batch)" for a run going from `rows` to `fewer`
/// rows a micro-batch, if it accumulates gradients.
pub fn keep_effective_batch(accum: Option<usize>, rows: usize, fewer: usize) -> String {
    match accum {
        Some(accum) => {
            format!(" (with grad_accum {} to keep the effective batch)", accum * rows.div_ceil(fewer.max(1)))
        }
        None => String::new(),
    }
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

    #[test]
    fn a_step_over_the_memory_names_the_device_and_the_batch_to_lower_to() {
        let c = minilm();
        let params = 22_700_000;
        let step = StepMemory { params, trained: params, rows: 32, seq: 128, predicted: 0 };
        // Per token and layer: 12·384 + 2·1536 + 3·12·128 = 12,288 values.
        let activations = 32 * 128 * 6 * 12_288u64;
        assert_eq!(step.bytes(&c), 4 * (4 * params + activations));
        assert!(step.check(&c, "cuda:0", 8 << 30, Some(1)).is_ok());
        let err = step.check(&c, "cuda:0", 1 << 30, Some(2)).unwrap_err().to_string();
        assert!(err.starts_with("cuda:0: batch size 32 × 128 tokens needs an estimated 1.5 GiB"), "{err}");
        assert!(err.contains("lower batch_size to 16 (with grad_accum 4"), "{err}");
        let err = step.check(&c, "cpu", 100 << 20, None).unwrap_err().to_string();
        assert!(err.contains("even one text does not fit"), "{err}");
    }
}
