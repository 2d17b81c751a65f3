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
//! - [`attention`] for inference: straight from the projections (no head-split copies) and
//!   over the unpadded keys only (no padded score is computed); burn's CPU attention was ~20%
//!   of int8 inference.
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
/// degree-6 polynomial, 2^n through the exponent bits); within 3e-7 relative of e^x. n is
/// rounded by adding 1.5·2²³ (it then sits in the mantissa's low bits), not by `round` and an
/// `as i32` cast, which have no vector instructions: a loop of these vectorises whole.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let mut p = 1.0 / 720.0_f32;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // t's bits less SHIFT's are n (|n| ≤ 127), two's complement.
    let bits = (t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127)) << 23;
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

/// Which keys of each text are real (attention mask 1), for [`attention`]: read once per
/// batch when the mask is on the flex device and no gradient is wanted, else `None`.
pub(crate) fn real_keys(attention_mask: &Tensor<2>) -> Option<Vec<Vec<usize>>> {
    let device = attention_mask.device();
    if !on_flex(&device) || device.is_autodiff() || attention_mask.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    let [batch, seq] = attention_mask.dims();
    let mask = attention_mask.clone().into_data().try_into_vec::<f32>().ok()?;
    Some((0..batch).map(|b| (0..seq).filter(|&j| mask[b * seq + j] != 0.0).collect()).collect())
}

/// `softmax(q·kᵀ/√d + mask)·v` per head for inference: `q` `[batch, rows, hidden]`, `k` and `v`
/// `[batch, seq, hidden]` (the projections; head h is columns h·d..(h+1)·d), `keys[b]` the real
/// keys of text b → `[batch, rows, hidden]`. A padded key's weight is exactly 0 in the masked
/// softmax too (its score is the f32 minimum), so skipping it changes nothing but the work.
pub(crate) fn attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, keys: &[Vec<usize>], heads: usize) -> Tensor<3> {
    let device = q.device();
    let [batch, rows, hidden] = q.dims();
    let seq = k.dims()[1];
    let read = |t: Tensor<3>| t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 after convert");
    let (q, k, v) = (read(q), read(k), read(v));
    let mut out = vec![0f32; batch * rows * hidden];
    let shape = Shape { batch, rows, seq, hidden, heads };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { attention_avx2(&q, &k, &v, keys, shape, &mut out) };
        return Tensor::from_data(TensorData::new(out, [batch, rows, hidden]), &device);
    }
    attention_portable(&q, &k, &v, keys, shape, &mut out);
    Tensor::from_data(TensorData::new(out, [batch, rows, hidden]), &device)
}

#[derive(Clone, Copy)]
struct Shape {
    batch: usize,
    rows: usize,
    seq: usize,
    hidden: usize,
    heads: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attention_avx2(q: &[f32], k: &[f32], v: &[f32], keys: &[Vec<usize>], s: Shape, out: &mut [f32]) {
    attention_blocked::<true>(q, k, v, keys, s, out)
}

fn attention_portable(q: &[f32], k: &[f32], v: &[f32], keys: &[Vec<usize>], s: Shape, out: &mut [f32]) {
    attention_blocked::<false>(q, k, v, keys, s, out)
}

/// Queries per block: each key vector loaded for the scores serves four queries.
const QUERIES: usize = 4;
/// Keys per block of scores: four queries × 16 keys of accumulators stay in registers.
const KEYS: usize = 16;

/// `a · b + c`, fused where the caller is compiled with FMA (elsewhere `mul_add` is a libm call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn attention_blocked<const FMA: bool>(q: &[f32], k: &[f32], v: &[f32], keys: &[Vec<usize>], s: Shape, out: &mut [f32]) {
    let d = s.hidden / s.heads;
    let scale = 1.0 / (d as f32).sqrt();
    let (mut kt, mut vh, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..s.batch {
        let real = &keys[b];
        let len = real.len();
        // Keys padded to whole blocks with zeros (their scores are computed, never read).
        let width = len.div_ceil(KEYS) * KEYS;
        for h in 0..s.heads {
            // This head's real keys transposed ([d, width]: a block of scores is one row slice
            // per dimension) and its values ([len, d]), contiguous.
            kt.clear();
            kt.resize(d * width, 0.0);
            vh.clear();
            for (n, &j) in real.iter().enumerate() {
                let at = (b * s.seq + j) * s.hidden + h * d;
                for (t, &x) in k[at..at + d].iter().enumerate() {
                    kt[t * width + n] = x;
                }
                vh.extend_from_slice(&v[at..at + d]);
            }
            p.clear();
            p.resize(QUERIES * width, 0.0);
            for i0 in (0..s.rows).step_by(QUERIES) {
                // The last block repeats its last query; the repeats' rows are not written.
                let query = |r: usize| {
                    let at = (b * s.rows + (i0 + r).min(s.rows - 1)) * s.hidden + h * d;
                    &q[at..at + d]
                };
                let qs = [query(0), query(1), query(2), query(3)];
                for j0 in (0..width).step_by(KEYS) {
                    let mut acc = [[0f32; KEYS]; QUERIES];
                    for t in 0..d {
                        let kv: &[f32; KEYS] = kt[t * width + j0..][..KEYS].try_into().expect("a whole block");
                        for (acc, qr) in acc.iter_mut().zip(&qs) {
                            let x = qr[t];
                            for (a, &kj) in acc.iter_mut().zip(kv) {
                                *a = madd::<FMA>(x, kj, *a);
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        p[r * width + j0..][..KEYS].copy_from_slice(acc);
                    }
                }
                for r in 0..QUERIES.min(s.rows - i0) {
                    let pr = &mut p[r * width..r * width + len];
                    let max = lanes(pr, f32::NEG_INFINITY, f32::max) * scale;
                    // Kept apart from the sum, so the exponentials vectorise.
                    for x in pr.iter_mut() {
                        *x = exp(*x * scale - max);
                    }
                    let inv = 1.0 / lanes(pr, 0.0, |a, b| a + b);
                    let at = (b * s.rows + i0 + r) * s.hidden + h * d;
                    let ctx = &mut out[at..at + d];
                    match d {
                        32 => context::<32, FMA>(pr, &vh, inv, ctx),
                        64 => context::<64, FMA>(pr, &vh, inv, ctx),
                        _ => context_any::<FMA>(pr, &vh, inv, ctx),
                    }
                }
            }
        }
    }
}

/// `ctx = inv · Σ_j p_j · v_j` with the row of `D` sums held in registers across the keys.
#[inline(always)]
fn context<const D: usize, const FMA: bool>(p: &[f32], vh: &[f32], inv: f32, ctx: &mut [f32]) {
    let mut acc = [0f32; D];
    for (&w, vj) in p.iter().zip(vh.chunks_exact(D)) {
        for (a, &x) in acc.iter_mut().zip(vj) {
            *a = madd::<FMA>(w, x, *a);
        }
    }
    for (c, a) in ctx.iter_mut().zip(acc) {
        *c = a * inv;
    }
}

#[inline(always)]
fn context_any<const FMA: bool>(p: &[f32], vh: &[f32], inv: f32, ctx: &mut [f32]) {
    let d = ctx.len();
    for (&w, vj) in p.iter().zip(vh.chunks_exact(d)) {
        for (c, &x) in ctx.iter_mut().zip(vj) {
            *c = madd::<FMA>(w, x, *c);
        }
    }
    for c in ctx.iter_mut() {
        *c *= inv;
    }
}

/// `values` folded by `f` in eight interleaved lanes, then the lanes (a vectorisable reduction;
/// the order differs from a left fold, which for max is exact and for a sum is rounding).
#[inline(always)]
pub(crate) fn lanes(values: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = f(*a, v);
        }
    }
    tail.iter().chain(&acc).fold(init, |a, &v| f(a, v))
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

    // The CPU attention of inference equals softmax(q·kᵀ/√d + HF's mask bias)·v spelt out in
    // burn's ops, with texts padded to different lengths.
    #[cfg(feature = "flex")]
    #[test]
    fn cpu_attention_equals_the_masked_softmax() {
        // Head sizes with and without a register-held context row; key counts under, at and over
        // a block of keys; query counts with a partial last block.
        for (seq, heads, d) in [(7, 2, 4), (19, 2, 32), (33, 1, 64), (16, 3, 8)] {
            attention_case(seq, heads, d);
        }
    }

    #[cfg(feature = "flex")]
    fn attention_case(seq: usize, heads: usize, d: usize) {
        let device = Device::flex();
        let batch = 3;
        let hidden = heads * d;
        let draws = |n: usize, seed: u32| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 250.0 - 2.0)
                .collect()
        };
        let t3 = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [batch, seq, hidden]), &device);
        let (q, k, v) =
            (draws(batch * seq * hidden, 1), draws(batch * seq * hidden, 2), draws(batch * seq * hidden, 3));
        let lengths = [seq, seq.div_ceil(2), 1];
        let mask: Vec<f32> = (0..batch * seq).map(|i| f32::from(u8::from(i % seq < lengths[i / seq]))).collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [batch, seq]), &device);
        let keys = real_keys(&mask).expect("flex inference");
        assert_eq!(keys[1], (0..seq.div_ceil(2)).collect::<Vec<_>>());
        let got = attention(t3(q.clone()), t3(k.clone()), t3(v.clone()), &keys, heads);
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, d]).swap_dims(1, 2);
        let bias = (mask.reshape([batch, 1, 1, seq]).neg() + 1.0) * f32::MIN;
        let scores = split(t3(q)).matmul(split(t3(k)).swap_dims(2, 3)) * (1.0 / (d as f64).sqrt()) + bias;
        let want = activation::softmax(scores, 3).matmul(split(t3(v))).swap_dims(1, 2).reshape([batch, seq, hidden]);
        let (got, want) =
            (got.into_data().try_into_vec::<f32>().unwrap(), want.into_data().try_into_vec::<f32>().unwrap());
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "seq {seq}, {heads} heads of {d}: largest difference {worst}");
    }
}
