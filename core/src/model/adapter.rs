//! Houlsby bottleneck adapters (Houlsby et al. 2019): `h + up(gelu(down(h)))` on the output of
//! each attention and feed-forward block, before its residual and LayerNorm. `up` starts at
//! zero, so a fresh adapter is the identity and training starts from the pretrained function.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use super::lora::uniform;
use crate::data::rng::SplitMix64;

#[derive(Module, Debug)]
pub struct Adapter {
    /// `[hidden, dim]`
    pub down: Linear,
    /// `[dim, hidden]`
    pub up: Linear,
}

impl Adapter {
    /// `down` drawn like PyTorch's `nn.Linear` default (U(±1/√hidden)), `up` zero.
    pub fn init(hidden: usize, dim: usize, rng: &mut SplitMix64, device: &Device) -> Adapter {
        let bound = 1.0 / (hidden as f64).sqrt();
        let down_w: Vec<f32> = (0..hidden * dim).map(|_| uniform(rng, bound)).collect();
        let down_b: Vec<f32> = (0..dim).map(|_| uniform(rng, bound)).collect();
        Adapter {
            down: linear(&down_w, &down_b, hidden, dim, device),
            up: linear(&vec![0.0; dim * hidden], &vec![0.0; hidden], dim, hidden, device),
        }
    }

    pub fn dim(&self) -> usize {
        self.down.weight.dims()[1]
    }

    pub fn forward<const D: usize>(&self, h: Tensor<D>) -> Tensor<D> {
        let z = crate::model::activation::gelu(self.down.forward(h.clone()));
        h + self.up.forward(z)
    }
}

/// A linear layer from values in burn's `[in, out]` orientation.
pub(crate) fn linear(weight: &[f32], bias: &[f32], d_in: usize, d_out: usize, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight.to_vec(), [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias.to_vec(), [d_out]), device))),
    }
}
