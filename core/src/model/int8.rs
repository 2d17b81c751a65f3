//! int8 linear layers for inference: weights quantised symmetrically per output channel
//! (scale = max|w| / 127), activations per row when they arrive (scale = max|x| / 127), the
//! products summed exactly in i32 and scaled back:
//! `y[r][o] = sx[r] · sw[o] · Σ_k qx[r][k] · qw[o][k] + b[o]`.
//! ONNX Runtime's dynamic quantisation does the same with per-tensor weights and asymmetric u8
//! activations. Values stay in [-127, 127] (never -128), so a sign-trick u8×i8 kernel can add
//! pairs of products in i16 without saturating.
//!
//! The row kernel is plain Rust written for the auto-vectoriser (i8 → i16 multiply-add), compiled
//! once more with AVX2 where the CPU has it; wasm builds with simd128 (the page) run a
//! register-tiled kernel on `i32x4.dot_i16x8_s` (`forward_simd128`), the same exact sums. Where
//! the CPU has AVX-512 VNNI, a register-tiled kernel runs instead: `vpdpbusd` multiplies u8 by
//! i8 and adds four products into each i32 lane (64 per instruction, 4× an f32 FMA's 16), on
//! weights packed for it once and activations shifted by 128 into u8 (`Σ (q+128)·w − 128·Σ w`
//! is the same exact sum, so both kernels give the same bits).

/// A linear layer with int8 weights, `[d_out, d_in]` row-major (each output's weights
/// contiguous, as the dot products read them).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLinear {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<i8>,
    /// One scale per output channel.
    pub scale: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    /// The weights packed for the AVX-512 VNNI kernel, when this CPU has it.
    packed: Option<Packed>,
    /// wasm SIMD (the page): the weights widened to i16 once, each output's row padded with
    /// zeros to a multiple of 8 inputs ([`QuantLinear::forward_simd128`]).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wide: Vec<i16>,
}

/// Inputs rounded up to whole i16x8 vectors.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn padded8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// `weight` `[d_out, d_in]` as i16, each row padded with zeros to [`padded8`] inputs.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn widen(weight: &[i8], d_in: usize, d_out: usize) -> Vec<i16> {
    let n8 = padded8(d_in);
    let mut wide = vec![0i16; d_out * n8];
    for o in 0..d_out {
        for (w, &v) in wide[o * n8..o * n8 + d_in].iter_mut().zip(&weight[o * d_in..(o + 1) * d_in]) {
            *w = v as i16;
        }
    }
    wide
}

/// Weights for `vpdpbusd`: blocks of 16 outputs; in each, for every 4 inputs, the 16 outputs'
/// 4 weights side by side (64 bytes: one i32 lane per output). Inputs are padded to a multiple
/// of 4 and outputs to a multiple of 64 with zero weights.
#[derive(Debug, Clone, PartialEq)]
struct Packed {
    weight: Vec<i8>,
    /// 128 · Σ_k w[o][k], for the +128 shift of the activations; then each output's scale and
    /// bias (0 without one), all padded with zeros to blocks · 16.
    sums128: Vec<i32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    /// Groups of 4 inputs.
    groups: usize,
    /// Blocks of 16 outputs (a multiple of 4).
    blocks: usize,
}

impl Packed {
    fn new(weight: &[i8], scale: &[f32], bias: Option<&[f32]>, d_in: usize, d_out: usize) -> Packed {
        let groups = d_in.div_ceil(4);
        let blocks = d_out.div_ceil(64) * 4;
        let mut packed = vec![0i8; blocks * groups * 64];
        for o in 0..d_out {
            let (b, lane) = (o / 16, o % 16);
            for k in 0..d_in {
                packed[(b * groups + k / 4) * 64 + lane * 4 + k % 4] = weight[o * d_in + k];
            }
        }
        let padded = blocks * 16;
        let mut sums128: Vec<i32> =
            (0..d_out).map(|o| 128 * weight[o * d_in..(o + 1) * d_in].iter().map(|&w| w as i32).sum::<i32>()).collect();
        sums128.resize(padded, 0);
        let mut scale = scale.to_vec();
        scale.resize(padded, 0.0);
        let mut bias = bias.map_or_else(|| vec![0.0; d_out], <[f32]>::to_vec);
        bias.resize(padded, 0.0);
        Packed { weight: packed, sums128, scale, bias, groups, blocks }
    }
}

/// Whether this CPU runs the VNNI kernel.
fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Quantises `values` symmetrically into `out` (the same length): `q = round(v / s)` (ties to
/// even, as ONNX Runtime rounds) with `s = max|v| / 127`, returning `s` (0 for an all-zero or
/// empty slice, every `q` then 0). Inlined so each kernel compiles it with its own features.
#[inline(always)]
pub fn quantize_symmetric(values: &[f32], out: &mut [i8]) -> f32 {
    // In vector lanes (max is exact in any order).
    let max = super::cpu_fast::lanes(values, 0.0, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        out.iter_mut().for_each(|q| *q = 0);
        return if max.is_finite() { 0.0 } else { f32::NAN };
    }
    let scale = max / 127.0;
    let inv = 1.0 / scale;
    for (q, v) in out.iter_mut().zip(values) {
        *q = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
    }
    scale
}

impl QuantLinear {
    /// From burn's `Linear` layout: `weight` `[d_in, d_out]` row-major, `bias` `[d_out]`.
    pub fn from_f32(weight: &[f32], d_in: usize, d_out: usize, bias: Option<&[f32]>) -> QuantLinear {
        assert_eq!(weight.len(), d_in * d_out, "weight is [d_in, d_out]");
        let mut column = vec![0f32; d_in];
        let mut q = vec![0i8; d_in * d_out];
        let mut scale = vec![0f32; d_out];
        for o in 0..d_out {
            for (k, c) in column.iter_mut().enumerate() {
                *c = weight[k * d_out + o];
            }
            scale[o] = quantize_symmetric(&column, &mut q[o * d_in..(o + 1) * d_in]);
        }
        let packed = has_vnni().then(|| Packed::new(&q, &scale, bias, d_in, d_out));
        QuantLinear {
            d_in,
            d_out,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            wide: widen(&q, d_in, d_out),
            weight: q,
            scale,
            bias: bias.map(<[f32]>::to_vec),
            packed,
        }
    }

    /// From a saved layer (`savant quantize`): `weight` `[d_out, d_in]` in [-127, 127], one
    /// scale per output (finite, ≥ 0). `Err` says what is wrong.
    pub fn from_parts(
        d_in: usize,
        d_out: usize,
        weight: Vec<i8>,
        scale: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<QuantLinear, String> {
        if weight.len() != d_in * d_out || scale.len() != d_out || bias.as_ref().is_some_and(|b| b.len() != d_out) {
            return Err(format!("expected {d_out}×{d_in} weights and {d_out} scales and biases"));
        }
        if weight.contains(&-128) {
            return Err("holds -128: int8 weights are in [-127, 127]".into());
        }
        if let Some(s) = scale.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(format!("has a scale of {s}: scales are finite and not negative"));
        }
        let packed = has_vnni().then(|| Packed::new(&weight, &scale, bias.as_deref(), d_in, d_out));
        Ok(QuantLinear {
            d_in,
            d_out,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            wide: widen(&weight, d_in, d_out),
            weight,
            scale,
            bias,
            packed,
        })
    }

    /// The weights as the f32 values they stand for, `[d_in, d_out]` (burn's layout).
    pub fn dequantized(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.d_in * self.d_out];
        for o in 0..self.d_out {
            for k in 0..self.d_in {
                w[k * self.d_out + o] = self.weight[o * self.d_in + k] as f32 * self.scale[o];
            }
        }
        w
    }

    /// `x` `[rows, d_in]` → `[rows, d_out]`.
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.d_in, "x is [rows, d_in]");
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.packed {
            // SAFETY: `packed` is only built where the CPU has the kernel's features.
            return unsafe { self.forward_vnni(packed, x, rows) };
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return self.forward_simd128(x, rows);
        #[allow(unreachable_code)]
        self.forward_rows(x, rows)
    }

    /// One row at a time through [`dot_rows`].
    fn forward_rows(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows * self.d_out];
        let mut qx = vec![0i8; self.d_in];
        for (r, y) in out.chunks_exact_mut(self.d_out).enumerate() {
            let sx = quantize_symmetric(&x[r * self.d_in..(r + 1) * self.d_in], &mut qx);
            let mut sums = vec![0i32; self.d_out];
            dot_rows(&qx, &self.weight, &mut sums);
            for (o, (y, &s)) in y.iter_mut().zip(&sums).enumerate() {
                *y = self.output(s, sx, o);
            }
        }
        out
    }

    /// Output `o` from its exact sum and its row's activation scale, in one order of operations
    /// for every kernel that ends in scalar code (so they give the same bits).
    #[inline(always)]
    fn output(&self, sum: i32, sx: f32, o: usize) -> f32 {
        sum as f32 * sx * self.scale[o] + self.bias.as_ref().map_or(0.0, |b| b[o])
    }
}

impl QuantLinear {
    /// Four rows by 64 outputs at a time: sixteen accumulators held in registers across the
    /// whole input; each packed weight vector is loaded once for four rows, each group of four
    /// activations broadcast once for four blocks.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn forward_vnni(&self, p: &Packed, x: &[f32], rows: usize) -> Vec<f32> {
        use std::arch::x86_64::*;
        let (d_in, d_out) = (self.d_in, self.d_out);
        let width = p.groups * 4;
        let block = p.groups * 64;
        let mut out = vec![0f32; rows * d_out];
        let mut qa = vec![128u8; 4 * width];
        let mut q = vec![0i8; d_in];
        for r0 in (0..rows).step_by(4) {
            let n = (rows - r0).min(4);
            let mut sx = [0f32; 4];
            for i in 0..n {
                sx[i] = quantize_symmetric(&x[(r0 + i) * d_in..(r0 + i + 1) * d_in], &mut q);
                for (a, &v) in qa[i * width..i * width + d_in].iter_mut().zip(&q) {
                    *a = (v as i16 + 128) as u8;
                }
            }
            for b in (0..p.blocks).step_by(4) {
                let w = p.weight[b * block..(b + 4) * block].as_ptr();
                let a = qa.as_ptr();
                let mut acc = [[_mm512_setzero_si512(); 4]; 4];
                for g in 0..p.groups {
                    // SAFETY: four blocks of `block` bytes lie in the slice `w` points into, and
                    // four rows of `width` bytes in `qa`; g·64 + 64 <= block, g·4 + 4 <= width.
                    unsafe {
                        let v = [0, 1, 2, 3].map(|h| _mm512_loadu_si512(w.add(h * block + g * 64) as *const _));
                        for (i, acc) in acc.iter_mut().enumerate() {
                            let bcast = _mm512_set1_epi32((a.add(i * width + g * 4) as *const i32).read_unaligned());
                            for h in 0..4 {
                                acc[h] = _mm512_dpbusd_epi32(acc[h], bcast, v[h]);
                            }
                        }
                    }
                }
                // y = (Σ (q+128)·w − 128·Σ w) · sx · sw + b, sixteen outputs at a time, in the
                // row kernel's order of operations (so the same bits).
                for (i, acc) in acc.iter().enumerate().take(n) {
                    let y = out[(r0 + i) * d_out..(r0 + i + 1) * d_out].as_mut_ptr();
                    for (h, v) in acc.iter().enumerate() {
                        let first = (b + h) * 16;
                        let valid = d_out.saturating_sub(first).min(16);
                        if valid == 0 {
                            continue;
                        }
                        let mask: __mmask16 = if valid == 16 { !0 } else { (1u16 << valid) - 1 };
                        // SAFETY: the padded vectors hold blocks·16 values; the masked store
                        // writes only outputs below d_out.
                        unsafe {
                            let shift = _mm512_loadu_si512(p.sums128.as_ptr().add(first) as *const _);
                            let s = _mm512_cvtepi32_ps(_mm512_sub_epi32(*v, shift));
                            let scaled = _mm512_mul_ps(
                                _mm512_mul_ps(s, _mm512_set1_ps(sx[i])),
                                _mm512_loadu_ps(p.scale.as_ptr().add(first)),
                            );
                            let y16 = _mm512_add_ps(scaled, _mm512_loadu_ps(p.bias.as_ptr().add(first)));
                            _mm512_mask_storeu_ps(y.add(first), mask, y16);
                        }
                    }
                }
            }
        }
        out
    }
}

impl QuantLinear {
    /// wasm SIMD (the page), register-tiled: four activation rows by two outputs at a time, eight
    /// i32x4 accumulators across the whole input, on weights and activations widened to i16 once
    /// (`i32x4.dot_i16x8_s`: eight exact products into four lanes). Each weight vector is loaded
    /// once for four rows and each activation vector once for two outputs, and the rows go in
    /// blocks of 32 so that a pair of outputs' weights stays in cache while the block passes:
    /// one row at a time re-read the whole matrix per row. The sums are exact, so the outputs
    /// are [`QuantLinear::forward_rows`]'s bits.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn forward_simd128(&self, x: &[f32], rows: usize) -> Vec<f32> {
        use core::arch::wasm32::*;
        let (d_in, d_out) = (self.d_in, self.d_out);
        let n8 = padded8(d_in);
        let mut qx = vec![0i16; rows * n8];
        let mut sx = vec![0f32; rows];
        let mut q = vec![0i8; d_in];
        for r in 0..rows {
            sx[r] = quantize_symmetric(&x[r * d_in..(r + 1) * d_in], &mut q);
            for (a, &v) in qx[r * n8..r * n8 + d_in].iter_mut().zip(&q) {
                *a = v as i16;
            }
        }
        let hsum = |v: v128| -> i32 {
            i32x4_extract_lane::<0>(v)
                + i32x4_extract_lane::<1>(v)
                + i32x4_extract_lane::<2>(v)
                + i32x4_extract_lane::<3>(v)
        };
        // SAFETY (both loads): callers pass k + 8 <= n8 within a row of n8 values.
        let load = |s: &[i16], k: usize| -> v128 { unsafe { v128_load(s.as_ptr().add(k) as *const v128) } };
        let mut sums = vec![0i32; rows * d_out];
        const ROW_BLOCK: usize = 32;
        for rb in (0..rows).step_by(ROW_BLOCK) {
            let re = (rb + ROW_BLOCK).min(rows);
            let mut o = 0;
            while o < d_out {
                let pair = (d_out - o).min(2);
                let w0 = &self.wide[o * n8..(o + 1) * n8];
                let w1 = &self.wide[(o + pair - 1) * n8..(o + pair) * n8];
                let mut r = rb;
                while r < re {
                    let quad = (re - r).min(4);
                    let x_row = |i: usize| &qx[(r + i.min(quad - 1)) * n8..][..n8];
                    let (x0, x1, x2, x3) = (x_row(0), x_row(1), x_row(2), x_row(3));
                    let mut acc = [i32x4_splat(0); 8];
                    let mut k = 0;
                    while k < n8 {
                        let (a, b) = (load(w0, k), load(w1, k));
                        for (i, xr) in [x0, x1, x2, x3].into_iter().enumerate() {
                            let v = load(xr, k);
                            acc[2 * i] = i32x4_add(acc[2 * i], i32x4_dot_i16x8(v, a));
                            acc[2 * i + 1] = i32x4_add(acc[2 * i + 1], i32x4_dot_i16x8(v, b));
                        }
                        k += 8;
                    }
                    for i in 0..quad {
                        for j in 0..pair {
                            sums[(r + i) * d_out + o + j] = hsum(acc[2 * i + j]);
                        }
                    }
                    r += quad;
                }
                o += pair;
            }
        }
        let mut out = vec![0f32; rows * d_out];
        for (r, y) in out.chunks_exact_mut(d_out).enumerate() {
            for (o, y) in y.iter_mut().enumerate() {
                *y = self.output(sums[r * d_out + o], sx[r], o);
            }
        }
        out
    }
}

/// `sums[o] = Σ_k a[k] · w[o·n + k]` for every row `o` of `w` (`n = a.len()`), exactly.
pub fn dot_rows(a: &[i8], w: &[i8], sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature the function is compiled for.
        unsafe { dot_rows_avx2(a, w, sums) };
        return;
    }
    dot_rows_portable(a, w, sums)
}

/// The sign trick: `maddubs(|a|, w · sign(a))` multiplies u8 by i8 and adds neighbouring
/// products in i16 — at most 2 · 127 · 127 = 32,258, so never saturating — then `madd` by ones
/// widens the pairs into i32: 32 products per three instructions, four rows of `w` per load of
/// `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_rows_avx2(a: &[i8], w: &[i8], sums: &mut [i32]) {
    use std::arch::x86_64::*;
    let n = a.len();
    let body = n / 32 * 32;
    let load = |s: &[i8], k: usize| -> __m256i {
        // SAFETY: k + 32 <= body <= s.len(); unaligned loads.
        unsafe { _mm256_loadu_si256(s.as_ptr().add(k) as *const __m256i) }
    };
    let hsum = |v: __m256i| -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: 32 bytes into an 8 × i32 array.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v) };
        lanes.iter().sum()
    };
    let ones = _mm256_set1_epi16(1);
    let tail = |wo: &[i8]| -> i32 { a[body..].iter().zip(&wo[body..]).map(|(&x, &y)| x as i32 * y as i32).sum() };
    let mut o = 0;
    while o + 4 <= sums.len() {
        let rows = [&w[o * n..][..n], &w[(o + 1) * n..][..n], &w[(o + 2) * n..][..n], &w[(o + 3) * n..][..n]];
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut k = 0;
        while k < body {
            let av = load(a, k);
            let magnitude = _mm256_sign_epi8(av, av);
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let signed = _mm256_sign_epi8(load(row, k), av);
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, signed), ones));
            }
            k += 32;
        }
        for j in 0..4 {
            sums[o + j] = hsum(acc[j]) + tail(rows[j]);
        }
        o += 4;
    }
    for (j, s) in sums.iter_mut().enumerate().skip(o) {
        let wo = &w[j * n..(j + 1) * n];
        let mut acc = _mm256_setzero_si256();
        let mut k = 0;
        while k < body {
            let av = load(a, k);
            let p = _mm256_maddubs_epi16(_mm256_sign_epi8(av, av), _mm256_sign_epi8(load(wo, k), av));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
            k += 32;
        }
        *s = hsum(acc) + tail(wo);
    }
}

#[inline(always)]
fn dot_rows_portable(a: &[i8], w: &[i8], sums: &mut [i32]) {
    let n = a.len();
    let mut rows = w.chunks_exact(n).zip(sums.iter_mut());
    // Four rows at a time: each value of `a` is loaded once for four products.
    loop {
        let (Some((w0, s0)), Some((w1, s1)), Some((w2, s2)), Some((w3, s3))) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            break;
        };
        let (mut t0, mut t1, mut t2, mut t3) = (0i32, 0i32, 0i32, 0i32);
        for k in 0..n {
            let x = a[k] as i16;
            t0 += (x * w0[k] as i16) as i32;
            t1 += (x * w1[k] as i16) as i32;
            t2 += (x * w2[k] as i16) as i32;
            t3 += (x * w3[k] as i16) as i32;
        }
        (*s0, *s1, *s2, *s3) = (t0, t1, t2, t3);
    }
    let done = sums.len() / 4 * 4;
    for (wo, s) in w.chunks_exact(n).zip(sums.iter_mut()).skip(done) {
        *s = a.iter().zip(wo).map(|(&x, &y)| x as i32 * y as i32).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn quantised_linear_is_the_f32_linear_within_the_rounding_bound() {
        let (rows, d_in, d_out) = (5, 67, 13); // not multiples of 4 or 16: every tail runs
        let w = draws(d_in * d_out, 1);
        let b = draws(d_out, 2);
        let x: Vec<f32> = draws(rows * d_in, 3).iter().map(|v| v * 3.0).collect();
        let q = QuantLinear::from_f32(&w, d_in, d_out, Some(&b));
        let y = q.forward(&x, rows);
        for r in 0..rows {
            let xr = &x[r * d_in..(r + 1) * d_in];
            let sx = xr.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for o in 0..d_out {
                let exact: f64 = (0..d_in).map(|k| xr[k] as f64 * w[k * d_out + o] as f64).sum::<f64>() + b[o] as f64;
                // Each product is off by at most |x|·sw/2 + |w|·sx/2 + sx·sw/4.
                let sw = q.scale[o] as f64;
                let bound: f64 = (0..d_in)
                    .map(|k| {
                        (xr[k].abs() as f64 * sw + w[k * d_out + o].abs() as f64 * sx as f64 + sx as f64 * sw / 2.0)
                            / 2.0
                    })
                    .sum();
                let got = y[r * d_out + o] as f64;
                assert!((got - exact).abs() <= bound + 1e-5, "row {r} out {o}: {got} vs {exact}, bound {bound}");
            }
        }
        // The weights read back to within half a step of each channel's scale.
        for (k, (d, w)) in q.dequantized().iter().zip(&w).enumerate() {
            assert!((d - w).abs() <= q.scale[k % d_out] / 2.0 + 1e-7);
        }
    }

    #[test]
    fn the_dot_kernel_sums_exactly_and_never_saturates() {
        let n = 300;
        let a: Vec<i8> = (0..n).map(|k| if k % 3 == 0 { -127 } else { 127 }).collect();
        let w: Vec<i8> = (0..n * 6).map(|k| if k % 5 == 0 { 127 } else { -127 }).collect();
        let mut sums = vec![0i32; 6];
        dot_rows(&a, &w, &mut sums);
        for (o, s) in sums.iter().enumerate() {
            let want: i32 = (0..n).map(|k| a[k] as i32 * w[o * n + k] as i32).sum();
            assert_eq!(*s, want, "row {o}");
        }
        let mut portable = vec![0i32; 6];
        dot_rows_portable(&a, &w, &mut portable);
        assert_eq!(sums, portable);
    }

    // The VNNI kernel (where this CPU has it) gives the row kernel's bits, tails included.
    #[test]
    fn the_tiled_kernel_equals_the_row_kernel() {
        for (rows, d_in, d_out) in [(5, 67, 13), (9, 384, 64), (4, 8, 40), (1, 3, 1)] {
            let q = QuantLinear::from_f32(&draws(d_in * d_out, 4), d_in, d_out, Some(&draws(d_out, 5)));
            let x: Vec<f32> = draws(rows * d_in, 6).iter().map(|v| v * 2.0).collect();
            assert_eq!(q.packed.is_some(), has_vnni());
            assert_eq!(q.forward(&x, rows), q.forward_rows(&x, rows), "{rows}×{d_in}→{d_out}");
        }
    }

    #[test]
    fn zero_rows_quantise_to_zero_without_dividing_by_it() {
        let mut q = vec![1i8; 4];
        assert_eq!(quantize_symmetric(&[0.0; 4], &mut q), 0.0);
        assert_eq!(q, [0; 4]);
        let lin = QuantLinear::from_f32(&[0.0; 6], 3, 2, None);
        assert_eq!(lin.forward(&[1.0, 2.0, 3.0], 1), [0.0, 0.0]);
    }
}
