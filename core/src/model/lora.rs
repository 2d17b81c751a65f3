//! LoRA (Hu et al. 2021) as PEFT computes it: `y = W·x + b + (α / r) · B·A·dropout(x)`, with
//! `A` drawn like PEFT's default (kaiming-uniform, a = √5: U(±1/√in)) and `B` zero, so training
//! starts from the pretrained function. The update is applied as two thin matmuls, x·A then ·B:
//! `W + A·B` is never formed while training.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::precision;
use super::Dropout;
use crate::data::rng::SplitMix64;

/// The low-rank update of one linear layer. `a` is `[in, r]` and `b` `[r, out]` (burn's
/// `[in, out]` orientation; PEFT stores the transposes as `lora_A.weight` / `lora_B.weight`).
#[derive(Module, Debug)]
pub struct Lora {
    pub a: Param<Tensor<2>>,
    pub b: Param<Tensor<2>>,
    pub dropout: Dropout,
    /// α / r.
    pub scaling: f64,
}

impl Lora {
    /// A fresh update for a `d_in → d_out` layer: A random, B zero.
    pub fn init(
        d_in: usize,
        d_out: usize,
        r: usize,
        alpha: f64,
        dropout: f64,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Lora {
        let bound = 1.0 / (d_in as f64).sqrt();
        let a: Vec<f32> = (0..d_in * r).map(|_| uniform(rng, bound)).collect();
        Lora::from_values(&a, &vec![0.0; r * d_out], d_in, d_out, r, alpha, dropout, device)
    }

    /// An update from values in burn's orientation (`a`: `[in, r]`, `b`: `[r, out]`).
    #[allow(clippy::too_many_arguments)]
    pub fn from_values(
        a: &[f32],
        b: &[f32],
        d_in: usize,
        d_out: usize,
        r: usize,
        alpha: f64,
        dropout: f64,
        device: &Device,
    ) -> Lora {
        Lora {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(a.to_vec(), [d_in, r]), device)),
            b: Param::from_tensor(Tensor::from_data(TensorData::new(b.to_vec(), [r, d_out]), device)),
            dropout: Dropout::new(dropout),
            scaling: alpha / r as f64,
        }
    }

    pub fn rank(&self) -> usize {
        self.a.dims()[1]
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = self.dropout.forward(x);
        let down = precision::matmul(x, self.a.val().unsqueeze());
        precision::matmul(down, self.b.val().unsqueeze()) * self.scaling
    }
}

/// Uniform on (-bound, bound) from 53 random bits.
pub(crate) fn uniform(rng: &mut SplitMix64, bound: f64) -> f32 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ((2.0 * u - 1.0) * bound) as f32
}
