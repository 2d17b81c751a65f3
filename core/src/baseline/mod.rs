//! The bag-of-words baseline a fine-tuned specialist must beat: scikit-learn's
//! `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)` and
//! `LogisticRegression(C=c)`, with C picked on the validation split by macro-F1 (ties: the
//! smaller C). `tests/fixtures/baseline/make.py` proves the numbers against sklearn.
//!
//! Labels are class ids of the sorted label names, as in the rest of core
//! ([`Baseline::fit_rows`] maps them).

pub mod comparison;
pub mod lbfgs;
pub mod logistic;
pub mod multilabel;
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

/// A baseline as saved ([`Baseline::to_json`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedBaseline {
    format: String,
    classes: Vec<String>,
    terms: Vec<String>,
    idf: Vec<f64>,
    /// The logistic regression's weights, `[terms, classes]` row-major, then the intercepts.
    params: Vec<f64>,
}

const BASELINE_FORMAT: &str = "savant-tfidf-logistic-regression/1";

impl Baseline {
    fn saved(&self) -> SavedBaseline {
        SavedBaseline {
            format: BASELINE_FORMAT.into(),
            classes: self.classes.clone(),
            terms: self.tfidf.terms().to_vec(),
            idf: self.tfidf.idf().to_vec(),
            params: self.model.params().to_vec(),
        }
    }

    fn from_saved(s: SavedBaseline, source: &str) -> Result<Baseline> {
        if s.format != BASELINE_FORMAT {
            return Err(Error::invalid(source, None, format!("format '{}', expected '{BASELINE_FORMAT}'", s.format)));
        }
        let features = s.terms.len();
        let tfidf = TfIdf::from_terms(s.terms, s.idf, source)?;
        let model = Softmax::from_params(features, s.classes.len(), s.params).ok_or_else(|| {
            Error::invalid(
                source,
                None,
                format!("the weights do not fit {features} terms × {} classes", s.classes.len()),
            )
        })?;
        Ok(Baseline { tfidf, model, classes: s.classes })
    }
}

/// A fine-tuned model's class probabilities averaged with the TF-IDF baseline's:
/// `weight · specialist + (1 − weight) · baseline`, the weight chosen on the validation split.
/// Bag-of-words reads every word of a text, the encoder the order of its first tokens: where
/// they err apart, the average is right more often than either.
#[derive(Debug, Clone)]
pub struct Ensemble {
    pub weight: f64,
    pub baseline: Baseline,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEnsemble {
    weight: f64,
    baseline: SavedBaseline,
}

impl Ensemble {
    /// Its file in a run's output folder.
    pub const FILE: &'static str = "savant_ensemble.json";

    /// The weight in 0, 0.1, … 1 whose average of `specialist` and `baseline` (`[rows, classes]`
    /// probabilities) scores the best macro-F1 on classes `y` (ties: the larger weight), and
    /// that macro-F1.
    pub fn choose(specialist: &[f64], baseline: &[f64], y: &[usize], classes: usize) -> (f64, f64) {
        let mut best = (1.0, f64::NEG_INFINITY);
        for step in (0..=10).rev() {
            let w = step as f64 / 10.0;
            let mixed: Vec<f64> = specialist.iter().zip(baseline).map(|(s, b)| w * s + (1.0 - w) * b).collect();
            let f1 = macro_f1(y, &argmax(&mixed, classes), classes);
            if f1 > best.1 {
                best = (w, f1);
            }
        }
        best
    }

    /// The averaged probabilities of `texts`, given the specialist's (`[texts, classes]`, in
    /// the baseline's class order).
    pub fn mix(&self, specialist: &[f32], texts: &[&str]) -> Vec<f32> {
        let w = self.weight;
        let baseline = self.baseline.probabilities_f64(texts);
        specialist.iter().zip(&baseline).map(|(&s, &b)| (w * s as f64 + (1.0 - w) * b) as f32).collect()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&SavedEnsemble { weight: self.weight, baseline: self.baseline.saved() })
            .expect("an ensemble serialises")
    }

    /// Reads [`Ensemble::to_json`]'s bytes; `source` names them in errors.
    pub fn from_json(bytes: &[u8], source: &str) -> Result<Ensemble> {
        let s: SavedEnsemble = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(source, None, format!("not an ensemble file: {e}")))?;
        if !(0.0..=1.0).contains(&s.weight) {
            return Err(Error::invalid(source, None, format!("weight {} is not in [0, 1]", s.weight)));
        }
        Ok(Ensemble { weight: s.weight, baseline: Baseline::from_saved(s.baseline, source)? })
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
            ..LabelledRows::default()
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

    // An ensemble file reads back to the same probabilities (unigrams and bigrams alike), and a
    // damaged one is refused by name.
    #[test]
    fn an_ensemble_file_reads_back_to_the_same_probabilities() {
        let fit = Baseline::fit_rows(
            &rows("train.csv", TRAIN),
            &rows("val.csv", &[("card fee", "card"), ("loan payment", "loan")]),
            &BaselineOptions::default(),
        )
        .unwrap();
        assert!(fit.baseline.tfidf().terms().iter().any(|t| t.contains(' ')), "bigrams in the vocabulary");
        let e = Ensemble { weight: 0.3, baseline: fit.baseline.clone() };
        let back = Ensemble::from_json(&e.to_json(), "e.json").unwrap();
        let texts = ["card fee charged", "my loan payment was late", "nothing known", "fee"];
        assert_eq!(back.baseline.probabilities_f64(&texts), fit.baseline.probabilities_f64(&texts));
        assert_eq!(back.weight, 0.3);
        let specialist = [0.9f32, 0.1, 0.2, 0.8, 0.5, 0.5, 0.6, 0.4];
        let b = fit.baseline.probabilities_f64(&texts);
        let mixed = back.mix(&specialist, &texts);
        for (i, m) in mixed.iter().enumerate() {
            assert!((*m as f64 - (0.3 * specialist[i] as f64 + 0.7 * b[i])).abs() < 1e-6);
        }
        assert!(Ensemble::from_json(b"{}", "e.json").unwrap_err().to_string().contains("e.json"));
        let bad = String::from_utf8(e.to_json()).unwrap().replace("\"weight\":0.3", "\"weight\":1.5");
        assert!(Ensemble::from_json(bad.as_bytes(), "e.json").unwrap_err().to_string().contains("weight 1.5"));
    }

    // The weight maximises val macro-F1; ties go to the specialist (the larger weight).
    #[test]
    fn the_weight_is_chosen_on_val_macro_f1() {
        // Row 0: the specialist is right (class 0), the baseline wrong; row 1: the reverse,
        // with the specialist barely wrong. Weights in (1/3, 8/9) get both right: 0.4 to 0.8 on
        // the grid, and the tie goes to 0.8.
        let s = [0.6, 0.4, 0.55, 0.45];
        let b = [0.45, 0.55, 0.1, 0.9];
        let (w, f1) = Ensemble::choose(&s, &b, &[0, 1], 2);
        assert_eq!((w, f1), (0.8, 1.0));
        let right = [0.6, 0.4, 0.3, 0.7];
        let (w, f1) = Ensemble::choose(&right, &right, &[0, 1], 2);
        assert_eq!((w, f1), (1.0, 1.0), "a tie keeps the specialist alone");
    }
}
