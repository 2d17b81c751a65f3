//! scikit-learn's `LogisticRegression(C=c)` (lbfgs, L2) on sparse rows: minimises
//! `mean(logloss) + ‖W‖² / (2·C·n)` — sklearn's `C·Σ logloss + ½‖W‖²` divided by `C·n`, the
//! same minimiser, and the scale its `tol` applies to — with the intercept fitted and not
//! penalised. Three classes or more: the multinomial softmax. Two: sklearn fits one sigmoid
//! weight vector, which is the two-class softmax with half the C (the softmax optimum splits the
//! sigmoid's weights as ±w/2, so its penalty is a quarter of ‖w‖², not a half).

use super::lbfgs::Lbfgs;
use super::tfidf::SparseRows;
use crate::{Error, Result};

/// Weights of a fitted multinomial model.
#[derive(Debug, Clone)]
pub struct Softmax {
    features: usize,
    classes: usize,
    /// `[features, classes]` row-major (a sparse row touches contiguous weights), then the
    /// `classes` intercepts.
    params: Vec<f64>,
}

/// How the solver ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverEnd {
    pub iterations: usize,
    pub converged: bool,
}

impl Softmax {
    /// Fits rows `x` to classes `y` (each < `classes`), starting from `start` when given (a fit
    /// of the same shape, e.g. another C: the optimum is unique, so only the path changes).
    pub fn fit(
        x: &SparseRows,
        y: &[usize],
        classes: usize,
        c: f64,
        solver: &Lbfgs,
        start: Option<&Softmax>,
    ) -> Result<(Softmax, SolverEnd)> {
        if x.rows() != y.len() || y.is_empty() {
            return Err(Error::Option(format!("logistic regression: {} rows but {} labels", x.rows(), y.len())));
        }
        if classes < 2 || y.iter().any(|&l| l >= classes) {
            return Err(Error::Option(format!("logistic regression: labels must be class ids below {classes} (≥ 2)")));
        }
        if !(c.is_finite() && c > 0.0) {
            return Err(Error::Option(format!("C must be a positive number, got {c}")));
        }
        let size = x.columns * classes + classes;
        let x0 = match start {
            Some(s) if s.params.len() == size && s.classes == classes => s.params.clone(),
            _ => vec![0.0; size],
        };
        let c = if classes == 2 { c / 2.0 } else { c };
        let objective = Objective { x, y, classes, l2: 1.0 / (c * y.len() as f64) };
        let end = solver.minimize(|w, g| objective.value_gradient(w, g), x0);
        let model = Softmax { features: x.columns, classes, params: end.x };
        Ok((model, SolverEnd { iterations: end.iterations, converged: end.converged }))
    }

    /// Class probabilities of each row, `[rows, classes]` row-major.
    pub fn probabilities(&self, x: &SparseRows) -> Vec<f64> {
        let k = self.classes;
        let mut out = vec![0.0; x.rows() * k];
        for (i, p) in out.chunks_exact_mut(k).enumerate() {
            let (idx, vals) = x.row(i);
            self.logits_into(idx, vals, p);
            softmax_in_place(p);
        }
        out
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The weights, `[features, classes]` row-major, then the intercepts.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// A model from [`Softmax::params`]; `None` when their number is not `features × classes +
    /// classes`.
    pub fn from_params(features: usize, classes: usize, params: Vec<f64>) -> Option<Softmax> {
        (classes >= 2 && params.len() == features * classes + classes).then_some(Softmax { features, classes, params })
    }

    fn logits_into(&self, idx: &[u32], vals: &[f64], z: &mut [f64]) {
        logits(&self.params, self.features, self.classes, idx, vals, z)
    }
}

/// `z = b + Σ v·W[j]` over one sparse row. Features beyond `features` (none from the
/// vectorizer that made the weights) are ignored.
fn logits(params: &[f64], features: usize, k: usize, idx: &[u32], vals: &[f64], z: &mut [f64]) {
    z.copy_from_slice(&params[features * k..]);
    for (&j, &v) in idx.iter().zip(vals) {
        let j = j as usize;
        if j < features {
            z.iter_mut().zip(&params[j * k..(j + 1) * k]).for_each(|(zc, w)| *zc += v * w);
        }
    }
}

/// Softmax in place; returns log Σ exp(z).
fn softmax_in_place(z: &mut [f64]) -> f64 {
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
    max + sum.ln()
}

struct Objective<'a> {
    x: &'a SparseRows,
    y: &'a [usize],
    classes: usize,
    /// 1 / (C·n).
    l2: f64,
}

impl Objective<'_> {
    fn value_gradient(&self, w: &[f64], g: &mut [f64]) -> f64 {
        let (k, d) = (self.classes, self.x.columns);
        let n = self.y.len() as f64;
        g.fill(0.0);
        let mut z = vec![0.0; k];
        let mut loss = 0.0;
        for (i, &label) in self.y.iter().enumerate() {
            let (idx, vals) = self.x.row(i);
            logits(w, d, k, idx, vals, &mut z);
            let picked = z[label];
            let lse = softmax_in_place(&mut z);
            loss += lse - picked;
            // z is now p; the gradient of the mean loss by the logits is (p - onehot) / n.
            z[label] -= 1.0;
            z.iter_mut().for_each(|r| *r /= n);
            for (&j, &v) in idx.iter().zip(vals) {
                let j = j as usize;
                g[j * k..(j + 1) * k].iter_mut().zip(&z).for_each(|(gc, r)| *gc += v * r);
            }
            g[d * k..].iter_mut().zip(&z).for_each(|(gb, r)| *gb += r);
        }
        let mut penalty = 0.0;
        for (gi, wi) in g[..d * k].iter_mut().zip(&w[..d * k]) {
            penalty += wi * wi;
            *gi += self.l2 * wi;
        }
        loss / n + 0.5 * self.l2 * penalty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(dense: &[&[f64]]) -> SparseRows {
        let mut x = SparseRows { offsets: vec![0], columns: dense[0].len(), ..SparseRows::default() };
        for r in dense {
            for (j, &v) in r.iter().enumerate() {
                if v != 0.0 {
                    x.indices.push(j as u32);
                    x.values.push(v);
                }
            }
            x.offsets.push(x.indices.len());
        }
        x
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = rows(&[&[1.0, 0.0, 0.5], &[0.0, 2.0, 0.0], &[0.3, 0.3, 0.3], &[0.0, 0.0, 1.0]]);
        let y = [0, 1, 2, 1];
        let o = Objective { x: &x, y: &y, classes: 3, l2: 0.7 };
        let w: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut g = vec![0.0; 12];
        o.value_gradient(&w, &mut g);
        let mut scratch = vec![0.0; 12];
        for i in 0..12 {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let fd = (o.value_gradient(&a, &mut scratch) - o.value_gradient(&b, &mut scratch)) / 2e-6;
            assert!((fd - g[i]).abs() < 1e-8, "parameter {i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn the_optimum_has_a_zero_gradient_and_probabilities_sum_to_one() {
        let x = rows(&[&[1.0, 0.0], &[0.9, 0.1], &[0.0, 1.0], &[0.2, 0.8], &[0.5, 0.5], &[0.6, 0.4]]);
        let y = [0, 0, 1, 1, 2, 2];
        let solver = Lbfgs { gtol: 1e-12, ..Lbfgs::default() };
        let (m, end) = Softmax::fit(&x, &y, 3, 10.0, &solver, None).unwrap();
        assert!(end.converged);
        let p = m.probabilities(&x);
        assert!(p.chunks(3).all(|r| (r.iter().sum::<f64>() - 1.0).abs() < 1e-12));
        assert!(p[0] > p[1] && p[7] > p[6]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = rows(&[&[1.0], &[0.5]]);
        let s = Lbfgs::default();
        assert!(Softmax::fit(&x, &[0], 2, 1.0, &s, None).is_err());
        assert!(Softmax::fit(&x, &[0, 2], 2, 1.0, &s, None).is_err());
        assert!(Softmax::fit(&x, &[0, 1], 2, 0.0, &s, None).is_err());
        assert!(Softmax::fit(&x, &[0, 1], 2, f64::NAN, &s, None).is_err());
    }
}
