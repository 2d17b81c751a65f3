//! Mixed precision, as `torch.autocast` does it: the weights (and the optimiser's state) stay
//! f32, and inside a [`with_precision`] scope the matmuls (every linear layer, LoRA, attention's
//! two products, the MLM decoder) cast their operands to bf16 or f16 and their results back to
//! f32. Everything else (embeddings, LayerNorm, softmax, GELU, the loss) runs in f32. Casts are
//! recorded by autodiff, so the gradients arrive at the f32 weights in f32.
//!
//! The scope is per thread, like autocast's: the training step opens it around each part's
//! forward and backward; evaluation and inference run outside it, in f32.

use std::cell::Cell;

use burn::nn::Linear;
use burn::tensor::{Device, FloatDType, Tensor};

/// The dtype the matmuls compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16: f32's range, 8 bits of mantissa; needs no loss scaling.
    Bf16,
    /// IEEE half: 11 bits of mantissa but a range to 65504; the step scales the loss
    /// ([`crate::train::LossScale`]) so small gradients do not flush to zero.
    F16,
}

impl Precision {
    /// `f32`, `bf16` or `f16` (also `fp32`, `bfloat16`, `fp16`), as `--precision` takes it.
    pub fn parse(name: &str) -> Option<Precision> {
        match name.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Some(Precision::F32),
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Some(Precision::F16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Whether `device` computes in this precision (bf16 needs CUDA/ROCm/Metal or the CPU;
    /// WGSL has no bf16 and f16 needs the `shader-f16` feature).
    pub fn supported_on(self, device: &Device) -> bool {
        self.dtype().is_none_or(|dtype| device.supports_dtype(dtype))
    }

    fn dtype(self) -> Option<FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(FloatDType::BF16),
            Precision::F16 => Some(FloatDType::F16),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

thread_local! {
    static COMPUTE: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's matmuls in `precision`.
pub fn with_precision<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    let previous = COMPUTE.with(|c| c.replace(precision.dtype()));
    let out = f();
    COMPUTE.with(|c| c.set(previous));
    out
}

fn compute_dtype() -> Option<FloatDType> {
    COMPUTE.with(|c| c.get())
}

/// `a · b`, in the scope's precision, returned in f32.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match compute_dtype() {
        None => a.matmul(b),
        Some(dtype) => a.cast(dtype).matmul(b.cast(dtype)).cast(FloatDType::F32),
    }
}

/// `linear(x)`, in the scope's precision (bias added in f32), returned in f32.
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let Some(dtype) = compute_dtype() else { return linear.forward(x) };
    let weight = linear.weight.val().cast(dtype);
    let y = burn::tensor::module::linear(x.cast(dtype), weight, None).cast(FloatDType::F32);
    match &linear.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    }
}
