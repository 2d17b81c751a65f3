//! Percentile bootstrap confidence intervals, seeded and reproducible on every platform.

use crate::data::rng::SplitMix64;
use std::collections::BTreeMap;

/// 95% percentile-bootstrap intervals for several metrics at once, over `n` rows.
///
/// Draws `resamples` index vectors of length `n` with replacement (`SplitMix64::new(seed)`,
/// `below(n)`, one index after another, resample after resample) and calls `metrics` on each;
/// it returns the values it could compute, by name. A metric's interval is the 2.5th and 97.5th
/// percentiles of its values, with numpy's default `'linear'` percentile (see
/// [`percentile_linear`]); a metric missing from more than half the resamples gets none.
pub fn bootstrap_cis(
    n: usize,
    resamples: usize,
    seed: u64,
    mut metrics: impl FnMut(&[usize]) -> BTreeMap<String, f64>,
) -> BTreeMap<String, (f64, f64)> {
    let mut out = BTreeMap::new();
    if n == 0 || resamples == 0 {
        return out;
    }
    let mut rng = SplitMix64::new(seed);
    let mut idx = vec![0usize; n];
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..resamples {
        for slot in idx.iter_mut() {
            *slot = rng.below(n as u64) as usize;
        }
        for (name, v) in metrics(&idx) {
            samples.entry(name).or_default().push(v);
        }
    }
    for (name, mut values) in samples {
        if values.len() * 2 < resamples {
            continue;
        }
        values.sort_unstable_by(f64::total_cmp);
        out.insert(name, (percentile_linear(&values, 2.5), percentile_linear(&values, 97.5)));
    }
    out
}

/// [`bootstrap_cis`] for one metric. `None` when `n` or `resamples` is 0, when the metric is
/// `None` in more than half the resamples, or when it is ever NaN.
pub fn bootstrap_ci(
    n: usize,
    resamples: usize,
    seed: u64,
    mut metric: impl FnMut(&[usize]) -> Option<f64>,
) -> Option<(f64, f64)> {
    let mut saw_nan = false;
    let cis = bootstrap_cis(n, resamples, seed, |idx| match metric(idx) {
        Some(v) if v.is_nan() => {
            saw_nan = true;
            BTreeMap::new()
        }
        Some(v) => BTreeMap::from([(String::new(), v)]),
        None => BTreeMap::new(),
    });
    if saw_nan {
        return None;
    }
    cis.get("").copied()
}

/// `numpy.percentile(values, q)` with the default `method='linear'`, for `sorted` ascending and
/// non-empty: virtual index `h = (m − 1) · (q / 100)`, `lo = ⌊h⌋`, `hi = min(lo + 1, m − 1)`,
/// `γ = h − lo`, and numpy's `_lerp`: `a + (b − a)·γ` when `γ < 0.5`, else `b − (b − a)·(1 − γ)`.
pub fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    let m = sorted.len();
    assert!(m > 0, "percentile of an empty slice");
    let h = (m - 1) as f64 * (q / 100.0);
    let lo_f = h.floor();
    let lo = (lo_f.max(0.0) as usize).min(m - 1);
    let hi = (lo + 1).min(m - 1);
    let gamma = h - lo_f;
    let (a, b) = (sorted[lo], sorted[hi]);
    let d = b - a;
    if gamma >= 0.5 {
        b - d * (1.0 - gamma)
    } else {
        a + d * gamma
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accuracy(correct: &[bool]) -> impl FnMut(&[usize]) -> Option<f64> + '_ {
        move |idx: &[usize]| Some(idx.iter().filter(|&&i| correct[i]).count() as f64 / idx.len() as f64)
    }

    #[test]
    fn seeded_and_reproducible() {
        let correct: Vec<bool> = (0..200).map(|i| i % 3 != 0).collect();
        let a = bootstrap_ci(200, 500, 42, accuracy(&correct)).unwrap();
        let b = bootstrap_ci(200, 500, 42, accuracy(&correct)).unwrap();
        assert_eq!(a, b);
        let c = bootstrap_ci(200, 500, 43, accuracy(&correct)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn ci_contains_point_estimate() {
        let correct: Vec<bool> = (0..300).map(|i| i % 4 != 0).collect(); // accuracy 0.75
        let (lo, hi) = bootstrap_ci(300, 1000, 7, accuracy(&correct)).unwrap();
        assert!(lo < 0.75 && 0.75 < hi, "({lo}, {hi})");
        assert!(hi - lo < 0.2);
    }

    #[test]
    fn none_when_mostly_undefined() {
        let mut calls = 0;
        let r = bootstrap_ci(10, 10, 1, |_| {
            calls += 1;
            if calls <= 6 {
                None
            } else {
                Some(1.0)
            }
        });
        assert_eq!(r, None);
        let mut calls = 0;
        let r = bootstrap_ci(10, 10, 1, |_| {
            calls += 1;
            if calls <= 5 {
                None
            } else {
                Some(1.0)
            }
        });
        assert_eq!(r, Some((1.0, 1.0)));
        assert_eq!(bootstrap_ci(0, 10, 1, |_| Some(1.0)), None);
    }

    #[test]
    fn percentile_matches_numpy() {
        // numpy 2.4.6: v = [0.3, -1.25, 7.0, 2.5, 0.1, 0.1, 3.3333333333333335, 9.75, -4.0, 1.0, 0.6]
        // [repr(np.percentile(v, q)) for q in (2.5, 97.5, 50, 0, 100, 33.3)]
        let mut v = vec![0.3, -1.25, 7.0, 2.5, 0.1, 0.1, 3.3333333333333335, 9.75, -4.0, 1.0, 0.6];
        v.sort_unstable_by(f64::total_cmp);
        let expect = NUMPY_EXPECTED;
        for (q, e) in [2.5, 97.5, 50.0, 0.0, 100.0, 33.3].iter().zip(expect) {
            assert_eq!(percentile_linear(&v, *q), e, "q = {q}");
        }
    }

    const NUMPY_EXPECTED: [f64; 6] = [-3.3125, 9.0625, 0.6, -4.0, 9.75, 0.16599999999999993];
}
