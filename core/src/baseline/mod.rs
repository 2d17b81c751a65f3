//! The bag-of-words baseline a fine-tuned specialist must beat: scikit-learn's
//! `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)` and
//! `LogisticRegression(C=c)`, with C picked on the validation split by macro-F1 (ties: the
//! smaller C). `tests/fixtures/baseline/make.py` proves the numbers against sklearn.
//!
//! Labels are class ids of the sorted label names, as in the rest of core
//! ([`Baseline::fit_rows`] maps them).

pub mod lbfgs;
pub mod logistic;
pub mod tfidf;

use crate::probe::{choose_c, macro_f1};
use crate::train::{LabelSet, LabelledRows};
use crate::{Error, Result};
use lbfgs::Lbfgs;
use logistic::Softmax;
use tfidf::TfIdf;

/// The C values searched, and how tightly each fit converges.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineOptions {
    pub cs: Vec<f64>,
    /// L-BFGS iterations per C.
    pub max_iter: usize,
    /// Stop when no gradient component of the mean objective exceeds this (sklearn's `tol`).
    pub tol: f64,
}

impl Default for BaselineOptions {
    fn default() -> BaselineOptions {
        BaselineOptions { cs: vec![0.1, 1.0, 10.0, 100.0], max_iter: 1000, tol: 1e-6 }
    }
}

/// One split: its name in messages, its texts, and their class ids.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    pub source: &'a str,
    pub texts: &'a [&'a str],
    pub y: &'a [usize],
}

/// One C of the search.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CScore {
    pub c: f64,
    pub val_macro_f1: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// A fitted baseline: the vectorizer and the model of the chosen C.
#[derive(Debug, Clone)]
pub struct Baseline {
    tfidf: TfIdf,
    model: Softmax,
    classes: Vec<String>,
}

/// What [`Baseline::fit`] found.
#[derive(Debug, Clone)]
pub struct BaselineFit {
    pub baseline: Baseline,
    /// The chosen C.
    pub c: f64,
    /// Every C tried, in ascending order.
    pub table: Vec<CScore>,
    pub val_macro_f1: f64,
    /// The chosen model's validation probabilities, `[val rows, classes]` row-major.
    pub val_probabilities: Vec<f64>,
}

impl Baseline {
    /// Fits on `train` and picks C on `val`. `classes` names the class ids (the sorted label
    /// names); every class needs a training text, and every validation label one of them.
    pub fn fit(train: Split, val: Split, classes: &[String], options: &BaselineOptions) -> Result<BaselineFit> {
        check(train, val, classes, options)?;
        let (tfidf, x) = TfIdf::fit(train.texts, train.source)?;
        let val_x = tfidf.transform(val.texts);
        let mut cs = options.cs.clone();
        cs.sort_by(f64::total_cmp);
        cs.dedup();
        let solver = Lbfgs { max_iter: options.max_iter, gtol: options.tol, ..Lbfgs::default() };
        let k = classes.len();
        let mut table = Vec::with_capacity(cs.len());
        let mut previous: Option<Softmax> = None;
        let best = choose_c(&cs, |c| {
            // Warm-started from the last C: the optimum is unique, only the way there shortens.
            let (model, end) = Softmax::fit(&x, train.y, k, c, &solver, previous.as_ref())?;
            let p = model.probabilities(&val_x);
            let f1 = macro_f1(val.y, &argmax(&p, k), k);
            table.push(CScore { c, val_macro_f1: f1, iterations: end.iterations, converged: end.converged });
            previous = Some(model.clone());
            Ok::<_, Error>(((model, p), f1))
        })?;
        let Some((c, val_macro_f1, (model, val_probabilities))) = best else {
            return Err(Error::Option("the baseline needs at least one C".into()));
        };
        Ok(BaselineFit {
            baseline: Baseline { tfidf, model, classes: classes.to_vec() },
            c,
            table,
            val_macro_f1,
            val_probabilities,
        })
    }

    /// [`fit`](Baseline::fit) on labelled rows: the classes are the training labels, sorted; a
    /// validation label outside them is an error naming its row.
    pub fn fit_rows(train: &LabelledRows, val: &LabelledRows, options: &BaselineOptions) -> Result<BaselineFit> {
        let labels = LabelSet::from_labels(train.labels.iter().map(String::as_str), &train.source)?;
        let train_y = labels.ids(train.labels.iter().map(String::as_str), &train.source)?;
        let val_y = labels.ids(val.labels.iter().map(String::as_str), &val.source)?;
        let train_texts: Vec<&str> = train.texts.iter().map(String::as_str).collect();
        let val_texts: Vec<&str> = val.texts.iter().map(String::as_str).collect();
        Baseline::fit(
            Split { source: &train.source, texts: &train_texts, y: &train_y },
            Split { source: &val.source, texts: &val_texts, y: &val_y },
            &labels.names,
            options,
        )
    }

    /// Class probabilities of `texts`, `[texts, classes]` row-major.
    pub fn probabilities(&self, texts: &[&str]) -> Vec<f32> {
        self.probabilities_f64(texts).into_iter().map(|p| p as f32).collect()
    }

    pub fn probabilities_f64(&self, texts: &[&str]) -> Vec<f64> {
        self.model.probabilities(&self.tfidf.transform(texts))
    }

    /// The most probable class of each text (ties: the first, as sklearn's argmax).
    pub fn predict(&self, texts: &[&str]) -> Vec<usize> {
        argmax(&self.probabilities_f64(texts), self.classes.len())
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    pub fn vocabulary_size(&self) -> usize {
        self.tfidf.terms().len()
    }

    pub fn tfidf(&self) -> &TfIdf {
        &self.tfidf
    }
}

fn argmax(p: &[f64], k: usize) -> Vec<usize> {
    crate::metrics::classification::argmax_predictions(p, k)
}

/// Every input problem, before any work.
fn check(train: Split, val: Split, classes: &[String], options: &BaselineOptions) -> Result<()> {
    for split in [train, val] {
        if split.texts.len() != split.y.len() {
            return Err(Error::invalid(
                split.source,
                None,
                format!("{} texts but {} labels", split.texts.len(), split.y.len()),
            ));
        }
    }
    if train.texts.is_empty() {
        return Err(Error::invalid(train.source, None, "the training split has no rows"));
    }
    if val.texts.is_empty() {
        return Err(Error::invalid(val.source, None, "the validation split has no rows"));
    }
    if classes.len() < 2 {
        return Err(Error::invalid(
            train.source,
            None,
            format!("{} class(es) ({}): a classifier needs at least two", classes.len(), classes.join(", ")),
        ));
    }
    let mut count = vec![0usize; classes.len()];
    for (row, &y) in train.y.iter().enumerate() {
        match count.get_mut(y) {
            Some(c) => *c += 1,
            None => {
                return Err(Error::invalid(
                    train.source,
                    Some(row as u64 + 1),
                    format!("class id {y} but there are {} classes", classes.len()),
                ))
            }
        }
    }
    if let Some(missing) = count.iter().position(|&c| c == 0) {
        return Err(Error::invalid(
            train.source,
            None,
            format!("class '{}' has no training text; every class needs at least one", classes[missing]),
        ));
    }
    if let Some((row, &y)) = val.y.iter().enumerate().find(|&(_, &y)| y >= classes.len()) {
        return Err(Error::invalid(
            val.source,
            Some(row as u64 + 1),
            format!("class id {y} but the training split has {} classes", classes.len()),
        ));
    }
    if options.cs.is_empty() || options.cs.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(Error::Option(format!("the baseline's C values must be positive numbers, got {:?}", options.cs)));
    }
    if !(options.tol.is_finite() && options.tol >= 0.0) {
        return Err(Error::Option(format!("tol must be a number ≥ 0, got {}", options.tol)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(source: &str, pairs: &[(&str, &str)]) -> LabelledRows {
        LabelledRows {
            source: source.into(),
            texts: pairs.iter().map(|p| p.0.to_string()).collect(),
            labels: pairs.iter().map(|p| p.1.to_string()).collect(),
            skipped: Vec::new(),
        }
    }

    const TRAIN: &[(&str, &str)] = &[
        ("late fee on my card", "card"),
        ("card fee charged twice", "card"),
        ("the card was declined", "card"),
        ("loan payment was late", "loan"),
        ("my loan payment bounced", "loan"),
        ("loan interest too high", "loan"),
    ];

    fn err(train: &[(&str, &str)], val: &[(&str, &str)]) -> String {
        Baseline::fit_rows(&rows("train.csv", train), &rows("val.csv", val), &BaselineOptions::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn fits_and_predicts_a_separable_toy() {
        let fit = Baseline::fit_rows(
            &rows("train.csv", TRAIN),
            &rows("val.csv", &[("card fee", "card"), ("loan payment", "loan")]),
            &BaselineOptions::default(),
        )
        .unwrap();
        assert_eq!(fit.table.len(), 4);
        assert_eq!(fit.val_macro_f1, 1.0);
        assert_eq!(fit.c, 0.1, "ties go to the smallest C");
        assert_eq!(fit.baseline.classes(), ["card", "loan"]);
        assert_eq!(fit.baseline.predict(&["a card fee", "the loan"]), [0, 1]);
        let p = fit.baseline.probabilities(&["card", "nothing known"]);
        assert_eq!(p.len(), 4);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6 && p[0] > 0.5);
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let e = err(&[("alpha beta", "x"), ("gamma delta", "y")], &[("alpha", "x")]);
        assert!(e.contains("train.csv") && e.contains("no term appears in 2 or more training texts (min_df 2)"), "{e}");
        let e = err(&[("card fee", "card"), ("card fee", "card")], &[("card", "card")]);
        assert!(e.contains("one class only ('card')"), "{e}");
        let e = err(TRAIN, &[("card fee", "card"), ("a mortgage", "mortgage")]);
        assert!(e.contains("val.csv:2") && e.contains("label 'mortgage' does not occur in the training split"), "{e}");
        let e = err(&[], &[("card", "card")]);
        assert!(e.contains("train.csv") && e.contains("no rows"), "{e}");
        let e = err(TRAIN, &[]);
        assert!(e.contains("val.csv") && e.contains("no rows"), "{e}");
    }

    #[test]
    fn bad_ids_and_options_are_errors() {
        let texts = ["card fee", "card fee", "loan late", "loan late"];
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let split = |y: &'static [usize]| Split { source: "s", texts: &texts, y };
        let opts = BaselineOptions::default();
        let e = Baseline::fit(split(&[0, 0, 1, 1]), split(&[0, 0, 1, 1]), &names, &opts).unwrap_err().to_string();
        assert!(e.contains("class 'c' has no training text"), "{e}");
        let e = Baseline::fit(split(&[0, 0, 1, 3]), split(&[0, 0, 1, 1]), &names[..2], &opts).unwrap_err().to_string();
        assert!(e.contains("s:4") && e.contains("class id 3"), "{e}");
        let e = Baseline::fit(split(&[0, 0, 1, 1]), split(&[0, 0, 1, 2]), &names[..2], &opts).unwrap_err().to_string();
        assert!(e.contains("s:4") && e.contains("class id 2"), "{e}");
        let short = Split { source: "s", texts: &texts[..3], y: &[0, 0, 1, 1] };
        assert!(Baseline::fit(short, split(&[0, 0, 1, 1]), &names[..2], &opts).is_err());
        for cs in [vec![], vec![0.0], vec![-1.0], vec![f64::INFINITY]] {
            let opts = BaselineOptions { cs, ..BaselineOptions::default() };
            assert!(Baseline::fit(split(&[0, 0, 1, 1]), split(&[0, 0, 1, 1]), &names[..2], &opts).is_err());
        }
    }
}
