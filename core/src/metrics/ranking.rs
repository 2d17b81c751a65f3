//! Ranking metrics with scikit-learn 1.9's definitions: ROC curve and AUC (binary, one-vs-rest,
//! one-vs-one), precision–recall curve and average precision.
//!
//! Every metric sorts the scores once (descending; a radix sort on the order-preserving bits of
//! the `f64` for large inputs) and then makes one linear pass over the groups of tied scores.
//! Tied scores form a single threshold, as in sklearn. Areas are computed from exact integer
//! counts (the trapezoid under a ROC curve is the Mann–Whitney U with ties counted one half), so
//! the result is the correctly rounded value of what sklearn computes in floating point; the two
//! agree to a few ulps.
//!
//! Undefined results are `None`, never NaN: empty input, mismatched lengths, a non-finite score
//! (sklearn raises on NaN and ±inf), or a ROC quantity with only one class present.
//!
//! Differences from sklearn that are deliberate:
//! * sklearn's multiclass `roc_auc_score` raises unless every row of scores sums to 1
//!   (`np.allclose`); the functions here compute the same formula on any scores (one-vs-rest
//!   is sklearn's multilabel computation on the one-hot truth, one-vs-one its
//!   `_average_multiclass_ovo_score`), which is what sklearn returns when the rows do sum to 1.
//! * For k = 2, sklearn's `roc_auc_score(multi_class=…)` does not do one-vs-rest or one-vs-one
//!   (it treats the target as binary); here k = 2 uses the same formulas as any other k.

/// A curve as sklearn returns it. For ROC: `x` = false-positive rate, `y` = true-positive rate,
/// `thresholds` decreasing with the first one `f64::INFINITY`, all three the same length.
/// For precision–recall: `x` = recall (decreasing, last 0), `y` = precision (last 1),
/// `thresholds` increasing, one shorter than `x` and `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub thresholds: Vec<f64>,
}

// ---------------------------------------------------------------------------------------------
// Sorting

/// Maps a finite f64 to a u64 whose ascending order is the descending order of the scores.
/// `-0.0` and `0.0` map to the same key (numpy's `diff` treats them as a tie).
#[inline]
fn desc_key(x: f64) -> u64 {
    let b = (x + 0.0).to_bits(); // -0.0 + 0.0 == +0.0
    let asc = if b >> 63 == 1 { !b } else { b | (1 << 63) };
    !asc
}

#[inline]
fn key_value(k: u64) -> f64 {
    let asc = !k;
    let b = if asc >> 63 == 1 { asc & !(1 << 63) } else { !asc };
    f64::from_bits(b)
}

/// Reusable buffers for sorting (key, payload) pairs by key ascending.
#[derive(Default)]
struct Sorter {
    keys: Vec<u64>,
    vals: Vec<u32>,
    tmp_keys: Vec<u64>,
    tmp_vals: Vec<u32>,
    pairs: Vec<(u64, u32)>,
}

const RADIX_MIN: usize = 2048;

impl Sorter {
    /// Sorts `self.keys`/`self.vals` (already filled, same length) by key.
    fn sort(&mut self) {
        let n = self.keys.len();
        if n < RADIX_MIN {
            self.pairs.clear();
            self.pairs.extend(self.keys.iter().copied().zip(self.vals.iter().copied()));
            self.pairs.sort_unstable_by_key(|p| p.0);
            for (i, &(k, v)) in self.pairs.iter().enumerate() {
                self.keys[i] = k;
                self.vals[i] = v;
            }
            return;
        }
        // 11-bit digits, 6 passes (16-bit digits measured no faster at 10M rows).
        let bits: u32 = 11;
        let radix = 1usize << bits;
        let passes = 64usize.div_ceil(bits as usize);
        let mask = radix - 1;
        let mut hist = vec![0usize; passes * radix];
        for &k in &self.keys {
            for p in 0..passes {
                hist[p * radix + ((k >> (p as u32 * bits)) as usize & mask)] += 1;
            }
        }
        self.tmp_keys.resize(n, 0);
        self.tmp_vals.resize(n, 0);
        for (p, h) in hist.chunks_exact_mut(radix).enumerate() {
            // A pass where every key has the same digit changes nothing.
            if h.contains(&n) {
                continue;
            }
            let mut sum = 0;
            for c in h.iter_mut() {
                let t = *c;
                *c = sum;
                sum += t;
            }
            let shift = p as u32 * bits;
            for i in 0..n {
                let k = self.keys[i];
                let d = ((k >> shift) as usize) & mask;
                let dst = h[d];
                h[d] += 1;
                self.tmp_keys[dst] = k;
                self.tmp_vals[dst] = self.vals[i];
            }
            std::mem::swap(&mut self.keys, &mut self.tmp_keys);
            std::mem::swap(&mut self.vals, &mut self.tmp_vals);
        }
    }

    /// Fills the buffers with column `col` of the row-major `scores` (`k` columns) for the rows
    /// `rows` (all rows when `None`), payload `y_true[row]`, and sorts. False on a non-finite score.
    fn load_column(&mut self, y_true: &[usize], scores: &[f64], k: usize, col: usize) -> bool {
        self.keys.clear();
        self.vals.clear();
        let mut finite = true;
        for (i, &y) in y_true.iter().enumerate() {
            let s = scores[i * k + col];
            finite &= s.is_finite();
            self.keys.push(desc_key(s));
            self.vals.push(y as u32);
        }
        self.sort();
        finite
    }
}

/// Calls `f(key, start, end)` for each run of equal keys in the sorted `keys`.
#[inline]
fn for_each_group(keys: &[u64], mut f: impl FnMut(u64, usize, usize)) {
    let n = keys.len();
    let mut start = 0;
    while start < n {
        let key = keys[start];
        let mut end = start + 1;
        while end < n && keys[end] == key {
            end += 1;
        }
        f(key, start, end);
        start = end;
    }
}

/// Binary input sorted descending: for each distinct score, (threshold, cumulative fps, cumulative tps).
fn binary_counts(positive: &[bool], score: &[f64]) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    if positive.is_empty() || positive.len() != score.len() || score.len() > u32::MAX as usize {
        return None;
    }
    let mut s = Sorter::default();
    s.keys.reserve(score.len());
    s.vals.reserve(score.len());
    for (&p, &x) in positive.iter().zip(score) {
        if !x.is_finite() {
            return None;
        }
        s.keys.push(desc_key(x));
        s.vals.push(p as u32);
    }
    s.sort();
    let (mut th, mut fps, mut tps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0u64, 0u64);
    for_each_group(&s.keys, |key, a, b| {
        let pos: u64 = s.vals[a..b].iter().map(|&v| v as u64).sum();
        tp += pos;
        fp += (b - a) as u64 - pos;
        th.push(key_value(key));
        fps.push(fp as f64);
        tps.push(tp as f64);
    });
    Some((th, fps, tps))
}

// ---------------------------------------------------------------------------------------------
// Binary

/// sklearn `roc_curve(y, s, drop_intermediate=True)`. `None` when empty, lengths differ, a score
/// is not finite, or only one class is present (sklearn then returns NaN rates).
pub fn roc_curve(positive: &[bool], score: &[f64]) -> Option<Curve> {
    let (th, fps, tps) = binary_counts(positive, score)?;
    let (n_fp, n_tp) = (*fps.last()?, *tps.last()?);
    if n_fp <= 0.0 || n_tp <= 0.0 {
        return None;
    }
    let m = th.len();
    let keep = |i: usize| -> bool {
        if m <= 2 || i == 0 || i == m - 1 {
            return true;
        }
        // np.diff(x, 2)[i-1] = x[i+1] - 2 x[i] + x[i-1] (exact: integers below 2^53)
        fps[i + 1] - 2.0 * fps[i] + fps[i - 1] != 0.0 || tps[i + 1] - 2.0 * tps[i] + tps[i - 1] != 0.0
    };
    let mut curve = Curve { x: vec![0.0], y: vec![0.0], thresholds: vec![f64::INFINITY] };
    for i in 0..m {
        if keep(i) {
            curve.x.push(fps[i] / n_fp);
            curve.y.push(tps[i] / n_tp);
            curve.thresholds.push(th[i]);
        }
    }
    Some(curve)
}

/// sklearn `roc_auc_score(y, s)` for binary `y`: `None` when only one class is present.
pub fn roc_auc_binary(positive: &[bool], score: &[f64]) -> Option<f64> {
    let (_, fps, tps) = binary_counts(positive, score)?;
    // Twice the Mann–Whitney U (ties ½): Σ over tie groups of negatives × (2 × positives above
    // + positives in the group), i.e. twice the trapezoid under the curve, in exact integers.
    let mut u2: u128 = 0;
    let (mut prev_fp, mut prev_tp) = (0.0f64, 0.0f64);
    for (&fp, &tp) in fps.iter().zip(&tps) {
        let dn = (fp - prev_fp) as u128;
        u2 += dn * ((prev_tp + tp) as u128);
        prev_fp = fp;
        prev_tp = tp;
    }
    auc_from_u2(u2, prev_tp as u64, prev_fp as u64)
}

fn auc_from_u2(u2: u128, n_pos: u64, n_neg: u64) -> Option<f64> {
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    // u2 / (2 P N): both below 2^53 for any realistic n, so each conversion is exact and the
    // quotient correctly rounded; otherwise still within an ulp or two.
    Some(u2 as f64 / (2.0 * n_pos as f64 * n_neg as f64))
}

/// sklearn `precision_recall_curve(y, s)` (default `drop_intermediate=False`): `x` = recall,
/// `y` = precision, thresholds increasing; the last point is (recall 0, precision 1) and has no
/// threshold. With no positive sample sklearn sets recall to 1 at every threshold; so does this.
/// `None` when empty, lengths differ, or a score is not finite.
pub fn precision_recall_curve(positive: &[bool], score: &[f64]) -> Option<Curve> {
    let (th, fps, tps) = binary_counts(positive, score)?;
    let n_tp = *tps.last()?;
    let m = th.len();
    let mut curve =
        Curve { x: Vec::with_capacity(m + 1), y: Vec::with_capacity(m + 1), thresholds: Vec::with_capacity(m) };
    for i in (0..m).rev() {
        let ps = tps[i] + fps[i];
        curve.y.push(if ps != 0.0 { tps[i] / ps } else { 0.0 });
        curve.x.push(if n_tp == 0.0 { 1.0 } else { tps[i] / n_tp });
        curve.thresholds.push(th[i]);
    }
    curve.x.push(0.0);
    curve.y.push(1.0);
    Some(curve)
}

/// sklearn `average_precision_score(y, s)`: Σ (Rₙ − Rₙ₋₁) Pₙ over thresholds. With no positive
/// sample sklearn 1.9 returns 0.0 (with a warning), and so does this. `None` when empty, lengths
/// differ, or a score is not finite.
pub fn average_precision(positive: &[bool], score: &[f64]) -> Option<f64> {
    let (_, fps, tps) = binary_counts(positive, score)?;
    Some(ap_from_counts(&fps, &tps))
}

fn ap_from_counts(fps: &[f64], tps: &[f64]) -> f64 {
    let n_tp = match tps.last() {
        Some(&t) => t,
        None => return 0.0,
    };
    if n_tp == 0.0 {
        return 0.0;
    }
    let mut sum = Neumaier::default();
    let mut prev_tp = 0.0;
    for (&fp, &tp) in fps.iter().zip(tps) {
        if tp != prev_tp {
            sum.add((tp / n_tp - prev_tp / n_tp) * (tp / (tp + fp)));
            prev_tp = tp;
        }
    }
    sum.value().max(0.0)
}

#[derive(Default)]
struct Neumaier {
    sum: f64,
    c: f64,
}

impl Neumaier {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.c += (self.sum - t) + x;
        } else {
            self.c += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn value(&self) -> f64 {
        self.sum + self.c
    }
}

// ---------------------------------------------------------------------------------------------
// Multiclass

fn check_multiclass(y_true: &[usize], scores: &[f64], k: usize) -> bool {
    !y_true.is_empty()
        && k >= 1
        && y_true.len() <= u32::MAX as usize
        && scores.len() == y_true.len() * k
        && y_true.iter().all(|&y| y < k)
}

/// Per column, the class counts needed by one-vs-rest and one-vs-one: for column `c`, sorted by
/// score `c`, `u2[c][b]` = twice the Mann–Whitney U of class `c` over class `b` (ties ½).
/// Also returns the class counts. `None` on invalid input or a non-finite score.
struct ColumnStats {
    counts: Vec<u64>,
    /// `u2[c * k + b]`
    u2: Vec<u128>,
}

fn column_stats(y_true: &[usize], scores: &[f64], k: usize) -> Option<ColumnStats> {
    if !check_multiclass(y_true, scores, k) {
        return None;
    }
    let mut counts = vec![0u64; k];
    for &y in y_true {
        counts[y] += 1;
    }
    let mut u2 = vec![0u128; k * k];
    let mut sorter = Sorter::default();
    let mut group = vec![0u64; k];
    let mut touched: Vec<usize> = Vec::with_capacity(k);
    for c in 0..k {
        if !sorter.load_column(y_true, scores, k, c) {
            return None;
        }
        let row = &mut u2[c * k..(c + 1) * k];
        let mut above_c = 0u64; // class-c rows with a strictly higher score
        for_each_group(&sorter.keys, |_, a, b| {
            for &v in &sorter.vals[a..b] {
                let v = v as usize;
                if group[v] == 0 {
                    touched.push(v);
                }
                group[v] += 1;
            }
            let in_c = group[c];
            let weight = (2 * above_c + in_c) as u128;
            for &t in &touched {
                if t != c {
                    row[t] += group[t] as u128 * weight;
                }
                group[t] = 0;
            }
            touched.clear();
            above_c += in_c;
        });
    }
    Some(ColumnStats { counts, u2 })
}

impl ColumnStats {
    fn k(&self) -> usize {
        self.counts.len()
    }

    /// One-vs-rest AUC of class `c` using score column `c`.
    fn ovr(&self, c: usize) -> Option<f64> {
        let k = self.k();
        let n: u64 = self.counts.iter().sum();
        let u2: u128 = self.u2[c * k..(c + 1) * k].iter().sum();
        auc_from_u2(u2, self.counts[c], n - self.counts[c])
    }

    /// AUC of class `a` against class `b` using score column `a`.
    fn pair(&self, a: usize, b: usize) -> Option<f64> {
        auc_from_u2(self.u2[a * self.k() + b], self.counts[a], self.counts[b])
    }
}

/// One-vs-rest ROC AUC for each class `c` (score column `c`, positives `y_true == c`): sklearn's
/// `roc_auc_score(..., multi_class='ovr', average=None, labels=range(k))`. `None` for a class
/// that is absent from `y_true` or is every row (sklearn: NaN with a warning). Empty when the
/// input is invalid (length mismatch, a label ≥ k, empty, a non-finite score).
pub fn roc_auc_per_class(y_true: &[usize], scores: &[f64], k: usize) -> Vec<Option<f64>> {
    match column_stats(y_true, scores, k) {
        Some(st) => (0..k).map(|c| st.ovr(c)).collect(),
        None => Vec::new(),
    }
}

/// sklearn `roc_auc_score(y, scores, multi_class='ovr', average='macro' | 'weighted',
/// labels=range(k))`.
/// * macro: the unweighted mean over all k classes, so `None` as soon as any class is absent
///   from `y_true` (sklearn's mean is NaN then), or only one class is present.
/// * weighted: weights are class supports; absent classes have weight 0 and drop out (sklearn
///   zeroes their NaN), so this is defined unless only one class is present.
pub fn roc_auc_ovr(y_true: &[usize], scores: &[f64], k: usize, weighted: bool) -> Option<f64> {
    column_stats(y_true, scores, k)?.ovr_average(weighted)
}

/// sklearn's one-vs-one (Hand & Till) AUC, `roc_auc_score(y, scores, multi_class='ovo',
/// average=…, labels=range(k))` as `_average_multiclass_ovo_score` computes it: over each pair
/// (a, b) of classes *present* in `y_true` (absent classes are skipped, as sklearn does), the
/// mean of AUC(a vs b on column a) and AUC(b vs a on column b), restricted to rows of a or b;
/// then the plain mean over pairs (macro) or the mean weighted by the pair's share of rows
/// (weighted). `None` when fewer than two classes are present.
pub fn roc_auc_ovo(y_true: &[usize], scores: &[f64], k: usize, weighted: bool) -> Option<f64> {
    column_stats(y_true, scores, k)?.ovo_average(weighted)
}

/// Every multiclass AUC from one pass of k sorts (what a report needs; the functions above each
/// redo the sorts).
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassAuc {
    pub per_class: Vec<Option<f64>>,
    pub ovr_macro: Option<f64>,
    pub ovr_weighted: Option<f64>,
    pub ovo_macro: Option<f64>,
    pub ovo_weighted: Option<f64>,
}

pub fn multiclass_auc(y_true: &[usize], scores: &[f64], k: usize) -> Option<MulticlassAuc> {
    let st = column_stats(y_true, scores, k)?;
    Some(MulticlassAuc {
        per_class: (0..k).map(|c| st.ovr(c)).collect(),
        ovr_macro: st.ovr_average(false),
        ovr_weighted: st.ovr_average(true),
        ovo_macro: st.ovo_average(false),
        ovo_weighted: st.ovo_average(true),
    })
}

impl ColumnStats {
    fn ovr_average(&self, weighted: bool) -> Option<f64> {
        let k = self.k();
        let per: Vec<Option<f64>> = (0..k).map(|c| self.ovr(c)).collect();
        if weighted {
            // np.average(score, weights=support) with score[support == 0] = 0.
            let mut num = Neumaier::default();
            let mut den = 0.0;
            for (c, a) in per.iter().enumerate() {
                let w = self.counts[c] as f64;
                if w == 0.0 {
                    continue;
                }
                num.add(a.as_ref().copied()? * w);
                den += w;
            }
            Some(num.value() / den)
        } else {
            let mut sum = Neumaier::default();
            for a in &per {
                sum.add((*a)?);
            }
            Some(sum.value() / k as f64)
        }
    }

    fn ovo_average(&self, weighted: bool) -> Option<f64> {
        let k = self.k();
        let present: Vec<usize> = (0..k).filter(|&c| self.counts[c] > 0).collect();
        let n = self.counts.iter().sum::<u64>() as f64;
        let mut num = Neumaier::default();
        let mut den = Neumaier::default();
        let mut pairs = 0usize;
        for (i, &a) in present.iter().enumerate() {
            for &b in &present[i + 1..] {
                let s = (self.pair(a, b)? + self.pair(b, a)?) / 2.0;
                if weighted {
                    let w = (self.counts[a] + self.counts[b]) as f64 / n;
                    num.add(s * w);
                    den.add(w);
                } else {
                    num.add(s);
                }
                pairs += 1;
            }
        }
        if pairs == 0 {
            return None;
        }
        Some(if weighted { num.value() / den.value() } else { num.value() / pairs as f64 })
    }
}

/// sklearn `average_precision_score(one_hot(y_true, k), scores, average='macro')` (for k ≥ 3
/// the same as `label_binarize(y, classes=range(k))`): the mean over all k classes of the
/// average precision of score column c for `y_true == c`. A class with no positives scores
/// 0.0, as sklearn 1.9 does (it warns that recall is set to 1). `None` on invalid input.
pub fn average_precision_macro(y_true: &[usize], scores: &[f64], k: usize) -> Option<f64> {
    Some(macro_mean(&average_precision_per_class(y_true, scores, k)?))
}

/// The compensated mean the macro averages use (matches numpy's result to the last bits).
pub fn macro_mean(values: &[f64]) -> f64 {
    let mut total = Neumaier::default();
    for &v in values {
        total.add(v);
    }
    total.value() / values.len() as f64
}

/// The average precision of each score column `c` for `y_true == c` (0.0 for a class with no
/// positives, as in [`average_precision_macro`]). `None` on invalid input.
pub fn average_precision_per_class(y_true: &[usize], scores: &[f64], k: usize) -> Option<Vec<f64>> {
    if !check_multiclass(y_true, scores, k) {
        return None;
    }
    let mut sorter = Sorter::default();
    let n_pos_all = {
        let mut c = vec![0u64; k];
        for &y in y_true {
            c[y] += 1;
        }
        c
    };
    let mut out = Vec::with_capacity(k);
    for (c, &n_pos) in n_pos_all.iter().enumerate() {
        if !sorter.load_column(y_true, scores, k, c) {
            return None;
        }
        if n_pos == 0 {
            out.push(0.0);
            continue;
        }
        let mut ap = Neumaier::default();
        let (mut tp, mut seen) = (0u64, 0u64);
        let n_pos_f = n_pos as f64;
        for_each_group(&sorter.keys, |_, a, b| {
            let pos = sorter.vals[a..b].iter().filter(|&&v| v as usize == c).count() as u64;
            let prev = tp;
            tp += pos;
            seen += (b - a) as u64;
            if pos > 0 {
                let (tpf, prevf) = (tp as f64, prev as f64);
                ap.add((tpf / n_pos_f - prevf / n_pos_f) * (tpf / seen as f64));
            }
        });
        out.push(ap.value().max(0.0));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pass_functions_agree_with_the_single_ones() {
        let mut r = crate::data::rng::SplitMix64::new(11);
        let (n, k) = (400, 4);
        let y: Vec<usize> = (0..n).map(|_| r.below(k as u64) as usize).collect();
        let s: Vec<f64> = (0..n * k).map(|_| r.below(20) as f64 / 20.0).collect();
        let m = multiclass_auc(&y, &s, k).unwrap();
        assert_eq!(m.per_class, roc_auc_per_class(&y, &s, k));
        assert_eq!(m.ovr_macro, roc_auc_ovr(&y, &s, k, false));
        assert_eq!(m.ovr_weighted, roc_auc_ovr(&y, &s, k, true));
        assert_eq!(m.ovo_macro, roc_auc_ovo(&y, &s, k, false));
        assert_eq!(m.ovo_weighted, roc_auc_ovo(&y, &s, k, true));
        let per = average_precision_per_class(&y, &s, k).unwrap();
        assert_eq!(Some(macro_mean(&per)), average_precision_macro(&y, &s, k));
        for c in 0..k {
            let pos: Vec<bool> = y.iter().map(|&v| v == c).collect();
            let col: Vec<f64> = (0..n).map(|i| s[i * k + c]).collect();
            assert!((average_precision(&pos, &col).unwrap() - per[c]).abs() < 1e-12);
        }
    }

    #[test]
    fn key_roundtrip_and_order() {
        let xs = [-3.5, -1e-300, -0.0, 0.0, 1e-300, 0.25, 7.0, f64::MAX, f64::MIN];
        for &x in &xs {
            assert_eq!(key_value(desc_key(x)), x + 0.0);
        }
        for w in [-1.0f64, 0.0, 0.5, 2.0].windows(2) {
            assert!(desc_key(w[0]) > desc_key(w[1]));
        }
        assert_eq!(desc_key(-0.0), desc_key(0.0));
    }

    #[test]
    fn radix_matches_comparison_sort() {
        let mut r = crate::data::rng::SplitMix64::new(3);
        let mut s = Sorter::default();
        for i in 0..5000u32 {
            let x = (r.below(1000) as f64 - 500.0) / 7.0;
            s.keys.push(desc_key(x));
            s.vals.push(i);
        }
        let mut expect: Vec<u64> = s.keys.clone();
        expect.sort_unstable();
        s.sort();
        assert_eq!(s.keys, expect);
    }

    #[test]
    fn small_examples_from_sklearn_docs() {
        let y = [false, false, true, true];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert_eq!(roc_auc_binary(&y, &s), Some(0.75));
        let c = roc_curve(&y, &s).unwrap();
        assert_eq!(c.x, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.y, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(c.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        let pr = precision_recall_curve(&y, &s).unwrap();
        assert_eq!(pr.x, vec![1.0, 1.0, 0.5, 0.5, 0.0]);
        assert_eq!(pr.thresholds, vec![0.1, 0.35, 0.4, 0.8]);
        assert!((average_precision(&y, &s).unwrap() - 0.8333333333333333).abs() < 1e-15);
        assert_eq!(roc_auc_binary(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(roc_auc_binary(&[true], &[f64::NAN]), None);
    }
}
