//! Fast paths for burn's CPU backend (flex), where it computes element by element with scalar
//! libm calls: GELU's erf was ~15% of MiniLM inference and, with its gradient, ~12% of
//! training; dropout's per-element ChaCha20 Bernoulli draws ~14% of training. Same values, a
//! fraction of the time:
//! - [`gelu`]: `0.5 · x · (1 + erf(x / √2))` through a branch-free rational erf the compiler
//!   vectorises (within 4e-7 of erf; GELU within 2e-6 of its definition). In training the value
//!   and the exact derivative `Φ(x) + x·φ(x)` are computed together and joined to the graph as
//!   `value + (x − stop_grad(x)) · derivative`, which is the value forward and the derivative
//!   backward.
//! - dropout's keep masks ([`super::Dropout`]) are drawn by SplitMix64 from a seed that burn's
//!   generator supplies, so `Device::seed` still governs every draw.
//!
//! Other backends (and dtypes other than f32) take burn's own ops.

use burn::tensor::{activation, Device, Tensor, TensorData};

/// Whether `device` is the flex CPU device (with or without autodiff).
pub(crate) fn on_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        device.clone().inner() == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

/// Exact (erf) GELU of `x`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if x.dtype() != burn::tensor::DType::F32 || !on_flex(&device) {
        return activation::gelu(x);
    }
    if !device.is_autodiff() {
        // In place: flex hands over an unshared buffer without copying, and takes it back.
        let mut data = x.into_data();
        let done = match data.as_mut_slice::<f32>() {
            Ok(values) => {
                gelu_in_place(values);
                true
            }
            Err(_) => false,
        };
        let x = Tensor::from_data(data, &device);
        return if done { x } else { activation::gelu(x) };
    }
    let shape = x.shape();
    let constant = x.clone().detach();
    let Ok(values) = constant.clone().into_data().try_into_vec::<f32>() else {
        return activation::gelu(x);
    };
    let mut value = values.clone();
    let mut slope = values;
    gelu_and_slope(&mut value, &mut slope);
    let value = Tensor::<D>::from_data(TensorData::new(value, shape.clone()), &device);
    let slope = Tensor::<D>::from_data(TensorData::new(slope, shape), &device);
    value + (x - constant) * slope
}

/// GELU of every value, in place.
pub fn gelu_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { gelu_avx2(values) };
        return;
    }
    gelu_portable(values)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(values: &mut [f32]) {
    gelu_portable(values)
}

#[inline(always)]
fn gelu_portable(values: &mut [f32]) {
    for v in values {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// GELU of every value into `value`, its derivative `Φ(x) + x·φ(x)` into `slope` (both start
/// as x).
pub fn gelu_and_slope(value: &mut [f32], slope: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { gelu_and_slope_avx2(value, slope) };
        return;
    }
    gelu_and_slope_portable(value, slope)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_and_slope_avx2(value: &mut [f32], slope: &mut [f32]) {
    gelu_and_slope_portable(value, slope)
}

#[inline(always)]
fn gelu_and_slope_portable(value: &mut [f32], slope: &mut [f32]) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for (v, s) in value.iter_mut().zip(slope.iter_mut()) {
        let x = *v;
        let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        *v = x * cdf;
        *s = cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    }
}

/// e^x on [−87, 88], inputs clamped to it (Cody–Waite reduction to r ∈ [−ln2/2, ln2/2], a
/// degree-6 polynomial, 2^n through the exponent bits); within 3e-7 relative of e^x.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let mut p = 1.0 / 720.0_f32;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// erf as a rational function of x (odd numerator and even denominator polynomials in x², the
/// approximation Eigen and XLA use for f32), clamped to ±4 where erf is 1 to f32 precision.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.9546e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    // The ratio can pass ±1 by an ulp or two near the clamp; erf never does.
    (x * p / q).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series in f64 (exact to ~1e-15 for |x| ≤ 3), and 1 beyond ±4.
    fn erf_reference(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_4e_7_of_the_series() {
        let mut worst = 0.0f64;
        for i in -30_000..=30_000 {
            let x = i as f64 * 1e-4;
            worst = worst.max((erf(x as f32) as f64 - erf_reference(x)).abs());
        }
        assert!(worst < 4e-7, "worst |erf error| on [-3, 3]: {worst:e}");
        for x in [4.0f32, 5.0, 10.0, 1e6, f32::INFINITY] {
            assert!((erf(x) - 1.0).abs() < 4e-7 && (erf(-x) + 1.0).abs() < 4e-7, "erf(±{x}) = {}", erf(x));
        }
        assert_eq!(erf(0.0), 0.0);
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        let (mut worst, mut worst_x) = (0.0f64, 0.0f32);
        for i in -86_900..=87_900 {
            let x = i as f32 * 1e-3;
            let want = (x as f64).exp();
            let e = ((exp(x) as f64 - want) / want).abs();
            if e > worst {
                (worst, worst_x) = (e, x);
            }
        }
        assert!(worst < 3e-7, "worst relative error {worst:e} at {worst_x}");
        assert!(exp(-200.0) < 1e-37);
    }

    #[test]
    fn the_slope_is_the_derivative_of_gelu() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 1e-3).collect();
        let (mut v, mut s) = (xs.clone(), xs.clone());
        gelu_and_slope(&mut v, &mut s);
        for ((&x, &g), &d) in xs.iter().zip(&v).zip(&s) {
            let x64 = x as f64;
            let cdf = 0.5 * (1.0 + erf_reference(x64 / 2f64.sqrt()));
            let want_d = cdf + x64 * (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!((g as f64 - x64 * cdf).abs() < 2e-6, "gelu({x})");
            assert!((d as f64 - want_d).abs() < 2e-6, "gelu'({x}) = {d}, want {want_d}");
        }
    }

    #[test]
    fn gelu_matches_the_definition() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 1e-3).collect();
        let mut got = xs.clone();
        gelu_in_place(&mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let want = 0.5 * x as f64 * (1.0 + erf_reference(x as f64 / 2f64.sqrt()));
            assert!((g as f64 - want).abs() < 2e-6, "gelu({x}) = {g}, want {want}");
        }
        let mut nan = [f32::NAN];
        gelu_in_place(&mut nan);
        assert!(nan[0].is_nan(), "NaN stays NaN");
    }
}
