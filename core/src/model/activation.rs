//! The encoder's non-linearities, with values and gradients that stay finite on every backend.
//!
//! GPU drivers are free to compute WGSL's `tanh` as `(e^{2x} − 1)/(e^{2x} + 1)`: SwiftShader
//! (Chromium's software WebGPU) does, and gives NaN from |x| ≈ 89 up, where `e^{2x}` overflows.
//! burn's GELU backward on GPU backends takes `tanh` of a cubic of the input, so one
//! pre-activation above ~12 (pretrained MiniLM has them) made every gradient NaN on the first
//! step. Here:
//! - [`tanh`] clamps its input to ±15 first: tanh(15) is 1 in f32, so value and gradient are
//!   unchanged, and no driver sees a large argument.
//! - [`gelu`] (exact, erf-based) trains on GPU backends through `0.5·x·(1 + erf(x/√2))`, whose
//!   gradient autodiff forms as the exact `Φ(x) + x·φ(x)` (PyTorch's) from `exp(−x²)`, which
//!   underflows to 0 instead of overflowing. On the CPU it takes [`super::cpu_fast::gelu`].
//! - [`gelu_tanh`] (HF `gelu_new`) is spelled out with [`tanh`].

use burn::tensor::{activation, Tensor};

use super::Activation;

/// Beyond this |x|, tanh(x) rounds to ±1 in f32 (and its gradient to 0).
const TANH_SATURATES: f64 = 15.0;

impl Activation {
    /// The configured `hidden_act` of `x` (the feed-forward blocks and the MLM head).
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => gelu_tanh(x),
            Activation::Relu => activation::relu(x),
        }
    }
}

/// `tanh(x)`, finite for any finite `x` on every backend.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::tanh(x.clamp(-TANH_SATURATES, TANH_SATURATES))
}

/// The exact GELU, `x · Φ(x)` (HF `gelu`, PyTorch `gelu(approximate='none')`).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if super::cpu_fast::on_flex(&device) || !device.is_autodiff() {
        // The CPU fast path; other backends' fused forward kernel (no gradient needed).
        return super::cpu_fast::gelu(x);
    }
    x.clone() * ((x * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5
}

/// The tanh approximation of GELU (HF `gelu_new`, PyTorch `gelu(approximate='tanh')`):
/// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SQRT_2_OVER_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;
    let cube = x.clone() * x.clone() * x.clone();
    let inner = (x.clone() + cube * 0.044715) * SQRT_2_OVER_PI;
    x * (tanh(inner) + 1.0) * 0.5
}
