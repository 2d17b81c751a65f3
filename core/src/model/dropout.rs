//! Dropout as PyTorch's `nn.Dropout` applies it, for every backend; on the CPU (flex) the keep
//! mask is drawn by SplitMix64 (burn's per-element ChaCha20 Bernoulli draws were ~14% of a
//! training step) from a seed that burn's generator, or the training step's stream, supplies.

use burn::module::Module;
use burn::tensor::{Distribution, Tensor, TensorData};

use super::cpu_fast::on_flex;
use crate::data::rng::SplitMix64;

thread_local! {
    static DROPOUT_STREAM: std::cell::Cell<Option<SplitMix64>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's dropout masks (on the CPU backend) drawn from a stream seeded by
/// `seed`: the same seed, the same masks, whichever thread runs it.
pub fn with_dropout_seed<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    let previous = DROPOUT_STREAM.with(|s| s.replace(Some(SplitMix64::new(seed))));
    let out = f();
    DROPOUT_STREAM.with(|s| s.set(previous));
    out
}

/// Inverted dropout (PyTorch's `nn.Dropout`): while training (an autodiff device), each value is
/// zeroed with probability `prob` and the others scaled by `1 / (1 − prob)`; otherwise the
/// identity.
#[derive(Module, Debug)]
pub struct Dropout {
    pub prob: f64,
}

impl Dropout {
    pub fn new(prob: f64) -> Dropout {
        Dropout { prob }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if self.prob <= 0.0 || !device.is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        if !on_flex(&device) {
            let mask = x.random_like(Distribution::Bernoulli(keep));
            return x * mask * (1.0 / keep);
        }
        // The mask's seed comes from this thread's dropout stream when the training step set one
        // (parts of a step may run on several threads), else from one draw of burn's generator.
        let seed = DROPOUT_STREAM.with(|s| {
            s.get().map(|mut rng| {
                let seed = rng.next_u64();
                s.set(Some(rng));
                seed
            })
        });
        let seed = seed.unwrap_or_else(|| {
            let draw = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), &device.clone().inner());
            draw.into_data()
                .try_into_vec::<f32>()
                .map(|v| ((v[0].to_bits() as u64) << 32) | v[1].to_bits() as u64)
                .unwrap_or(0)
        });
        let shape = x.shape();
        let mut rng = SplitMix64::new(seed);
        let threshold = (keep * 4_294_967_296.0) as u64;
        let scale = (1.0 / keep) as f32;
        let n = shape.num_elements();
        let mut mask = Vec::with_capacity(n);
        while mask.len() < n {
            let r = rng.next_u64();
            mask.push(if (r >> 32) < threshold { scale } else { 0.0 });
            if mask.len() < n {
                mask.push(if (r & 0xffff_ffff) < threshold { scale } else { 0.0 });
            }
        }
        x * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
    }
}
