//! Which pretrained encoder fits a domain: how each candidate's tokenizer cuts the user's own
//! texts. Words split into many pieces, `[UNK]`s and truncated texts are what a domain's
//! vocabulary costs a model; the candidate with the fewest fits best.

use std::collections::HashMap;

use crate::tokenize::TextTokenizer;
use crate::Result;

/// The texts a probe measures: the first `n` rows with a non-empty text (and, with a label
/// column, a non-empty label), in file order.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub texts: Vec<String>,
    /// One per text; empty strings without a label column.
    pub labels: Vec<String>,
    /// Rows passed over: malformed, or without text or label.
    pub passed_over: usize,
}

impl Sample {
    pub fn read<R: std::io::Read>(
        mut reader: crate::data::TableReader<R>,
        text_column: &str,
        label_column: Option<&str>,
        n: usize,
    ) -> Result<Sample> {
        let text_at = reader.column(text_column)?;
        let label_at = label_column.map(|l| reader.column(l)).transpose()?;
        let mut sample = Sample::default();
        while sample.texts.len() < n {
            let Some(row) = reader.next_row()? else { break };
            let Ok(row) = row else {
                sample.passed_over += 1;
                continue;
            };
            let text = row.fields[text_at].trim();
            let label = label_at.map_or("", |c| row.fields[c].trim());
            if text.is_empty() || (label_at.is_some() && label.is_empty()) {
                sample.passed_over += 1;
                continue;
            }
            sample.texts.push(text.to_string());
            sample.labels.push(label.to_string());
        }
        if sample.texts.is_empty() {
            return Err(crate::Error::invalid(
                reader.source_name(),
                None,
                format!("no non-empty text in column '{text_column}'"),
            ));
        }
        Ok(sample)
    }
}

/// How a tokenizer cuts a sample of texts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenizerFit {
    pub texts: usize,
    pub words: usize,
    /// Share of words cut into 3 pieces or more.
    pub fragmented_share: f64,
    /// Share of tokens that are `[UNK]`.
    pub unk_share: f64,
    pub mean_pieces_per_word: f64,
    /// Share of texts longer than `max_len` tokens, `[CLS]` and `[SEP]` counted.
    pub truncated_share: f64,
    pub max_len: usize,
    /// The most fragmented of the frequent words (seen twice or more; most pieces first, then
    /// most frequent), at most 20: word, pieces, occurrences.
    pub most_fragmented: Vec<(String, usize, usize)>,
}

impl TokenizerFit {
    /// `tokenizer` on `texts` (its truncation is turned off here).
    pub fn measure(tokenizer: &TextTokenizer, texts: &[&str], max_len: usize) -> Result<TokenizerFit> {
        let mut tokenizer = tokenizer.clone();
        tokenizer.set_max_len(None)?;
        let unk = tokenizer.token_id("[UNK]");
        let (mut words, mut pieces, mut fragmented, mut tokens, mut unks, mut truncated) = (0usize, 0, 0, 0, 0, 0);
        let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
        for text in texts {
            let cut = tokenizer.word_pieces(text)?;
            let count: usize = cut.iter().map(|(_, ids)| ids.len()).sum();
            if count + 2 > max_len {
                truncated += 1;
            }
            for (word, ids) in cut {
                words += 1;
                pieces += ids.len();
                tokens += ids.len();
                unks += ids.iter().filter(|&&id| Some(id) == unk).count();
                if ids.len() >= 3 {
                    fragmented += 1;
                }
                let entry = seen.entry(word.to_lowercase()).or_insert((ids.len(), 0));
                entry.1 += 1;
            }
        }
        let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let mut frequent: Vec<(String, usize, usize)> =
            seen.into_iter().filter(|(_, (p, n))| *n >= 2 && *p >= 2).map(|(w, (p, n))| (w, p, n)).collect();
        frequent.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        frequent.truncate(20);
        Ok(TokenizerFit {
            texts: texts.len(),
            words,
            fragmented_share: share(fragmented, words),
            unk_share: share(unks, tokens),
            mean_pieces_per_word: share(pieces, words),
            truncated_share: share(truncated, texts.len()),
            max_len,
            most_fragmented: frequent,
        })
    }
}

/// The nearest-class-centroid classifier on sentence vectors: each class's centroid is the
/// normalised mean of its training vectors' unit vectors; a vector's class probabilities are the
/// softmax of its cosine similarities to the centroids over a temperature (0.05, as contrastive
/// training scales them).
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    /// `[classes, dim]` unit rows.
    unit: Vec<f64>,
    dim: usize,
}

impl Centroids {
    pub const TEMPERATURE: f64 = 0.05;

    /// The centroids of `x` (`[n, dim]` row-major) by class `y` (< `classes`); a class without
    /// rows gets a zero centroid (similarity 0 to everything).
    pub fn fit(x: &[f32], dim: usize, y: &[usize], classes: usize) -> Centroids {
        let mut unit = vec![0f64; classes * dim];
        for (v, &c) in x.chunks_exact(dim).zip(y) {
            let v = unit_vector(v);
            unit[c * dim..(c + 1) * dim].iter_mut().zip(v).for_each(|(a, b)| *a += b);
        }
        for row in unit.chunks_exact_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= norm);
        }
        Centroids { unit, dim }
    }

    /// Class probabilities of each row of `x`, `[n, classes]` row-major.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f64> {
        let mut out = Vec::with_capacity(x.len() / self.dim * (self.unit.len() / self.dim));
        for v in x.chunks_exact(self.dim) {
            let v = unit_vector(v);
            let sims: Vec<f64> = self
                .unit
                .chunks_exact(self.dim)
                .map(|c| c.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() / Self::TEMPERATURE)
                .collect();
            let max = sims.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = sims.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            out.extend(exps.iter().map(|e| e / sum));
        }
        out
    }
}

fn unit_vector(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|&x| x as f64 / norm).collect()
}

/// A multinomial logistic-regression head on fixed features (a linear probe): features
/// standardised, then mean softmax cross-entropy plus `‖W‖² / (2·C·n)` — the objective of
/// scikit-learn's `LogisticRegression(C=c)` divided by `C·n`, the intercept not penalised —
/// minimised by full-batch Adam. A ranking device for encoders, not a replica of sklearn's
/// coefficients.
#[derive(Debug, Clone)]
pub struct LinearProbe {
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `[classes, dim]`, row-major.
    weights: Vec<f64>,
    bias: Vec<f64>,
    classes: usize,
}

impl LinearProbe {
    /// Fits `x` (`[n, dim]` row-major) to classes `y` (< `classes`).
    pub fn fit(x: &[f32], dim: usize, y: &[usize], classes: usize, c: f64, iterations: usize) -> LinearProbe {
        let n = y.len();
        let mut mean = vec![0.0f64; dim];
        let mut scale = vec![0.0f64; dim];
        for row in x.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64 / n as f64;
            }
        }
        for row in x.chunks_exact(dim) {
            for ((s, &v), m) in scale.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2) / n as f64;
            }
        }
        let scale: Vec<f64> = scale.iter().map(|v| if *v > 1e-12 { 1.0 / v.sqrt() } else { 1.0 }).collect();
        let z: Vec<f64> = x
            .chunks_exact(dim)
            .flat_map(|row| row.iter().zip(&mean).zip(&scale).map(|((&v, m), s)| (v as f64 - m) * s))
            .collect();
        let mut probe =
            LinearProbe { mean, scale, weights: vec![0.0; classes * dim], bias: vec![0.0; classes], classes };
        let params = classes * dim + classes;
        let (mut m1, mut m2) = (vec![0.0f64; params], vec![0.0f64; params]);
        let (lr, b1, b2, eps) = (0.05f64, 0.9f64, 0.999f64, 1e-8f64);
        let l2 = 1.0 / (c * n as f64);
        for t in 1..=iterations {
            let mut grad = vec![0.0f64; params];
            for (row, &label) in z.chunks_exact(dim).zip(y) {
                let probs = probe.probabilities_standardised(row);
                for k in 0..classes {
                    let g = (probs[k] - if k == label { 1.0 } else { 0.0 }) / n as f64;
                    for (gw, v) in grad[k * dim..(k + 1) * dim].iter_mut().zip(row) {
                        *gw += g * v;
                    }
                    grad[classes * dim + k] += g;
                }
            }
            for (g, w) in grad.iter_mut().zip(&probe.weights) {
                *g += l2 * w;
            }
            let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            for (i, g) in grad.iter().enumerate() {
                m1[i] = b1 * m1[i] + (1.0 - b1) * g;
                m2[i] = b2 * m2[i] + (1.0 - b2) * g * g;
                let step = lr * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps);
                if i < classes * dim {
                    probe.weights[i] -= step;
                } else {
                    probe.bias[i - classes * dim] -= step;
                }
            }
        }
        probe
    }

    fn probabilities_standardised(&self, z: &[f64]) -> Vec<f64> {
        let dim = z.len();
        let logits: Vec<f64> = (0..self.classes)
            .map(|k| self.bias[k] + self.weights[k * dim..(k + 1) * dim].iter().zip(z).map(|(w, v)| w * v).sum::<f64>())
            .collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        exp.iter().map(|e| e / sum).collect()
    }

    fn row_probabilities(&self, row: &[f32]) -> Vec<f64> {
        let z: Vec<f64> = row.iter().zip(&self.mean).zip(&self.scale).map(|((&v, m), s)| (v as f64 - m) * s).collect();
        self.probabilities_standardised(&z)
    }

    /// The probe as one linear layer on the raw features (the standardisation folded in):
    /// weights `[classes, dim]` row-major (PyTorch's layout) and biases, whose logits equal
    /// [`LinearProbe::logits`].
    pub fn folded(&self) -> (Vec<f32>, Vec<f32>) {
        let dim = self.mean.len();
        let mut weights = Vec::with_capacity(self.classes * dim);
        let mut bias = Vec::with_capacity(self.classes);
        for k in 0..self.classes {
            let row = &self.weights[k * dim..(k + 1) * dim];
            weights.extend(row.iter().zip(&self.scale).map(|(w, s)| (w * s) as f32));
            let shift: f64 = row.iter().zip(&self.scale).zip(&self.mean).map(|((w, s), m)| w * s * m).sum();
            bias.push((self.bias[k] - shift) as f32);
        }
        (weights, bias)
    }

    /// The logits of each row of `x`, `[n, classes]` row-major.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        x.chunks_exact(dim)
            .flat_map(|row| {
                let z: Vec<f64> =
                    row.iter().zip(&self.mean).zip(&self.scale).map(|((&v, m), s)| (v as f64 - m) * s).collect();
                (0..self.classes).map(move |k| {
                    (self.bias[k]
                        + self.weights[k * dim..(k + 1) * dim].iter().zip(&z).map(|(w, v)| w * v).sum::<f64>())
                        as f32
                })
            })
            .collect()
    }

    /// The most probable class of each row of `x`.
    pub fn predict(&self, x: &[f32]) -> Vec<usize> {
        x.chunks_exact(self.mean.len())
            .map(|row| {
                let p = self.row_probabilities(row);
                (0..self.classes).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0)
            })
            .collect()
    }

    /// Fits one probe per [`PROBE_CS`] on `x`/`y` and keeps the one with the best macro-F1 on
    /// `val_x`/`val_y` (the first, i.e. the most regularised, on a tie) — as `savant baseline`
    /// picks its C ([`choose_c`]). With no validation rows, C 1 (sklearn's default).
    pub fn fit_choosing_c(
        x: &[f32],
        dim: usize,
        y: &[usize],
        val_x: &[f32],
        val_y: &[usize],
        classes: usize,
        iterations: usize,
    ) -> ChosenProbe {
        if val_y.is_empty() {
            return ChosenProbe {
                probe: LinearProbe::fit(x, dim, y, classes, 1.0, iterations),
                c: 1.0,
                tried: Vec::new(),
            };
        }
        LinearProbe::fit_choosing_c_by(x, dim, y, classes, iterations, |probe| {
            macro_f1(val_y, &probe.predict(val_x), classes)
        })
    }

    /// [`LinearProbe::fit_choosing_c`] with each probe's validation macro-F1 computed by
    /// `val_f1` (e.g. over documents whose windows are the rows).
    pub fn fit_choosing_c_by(
        x: &[f32],
        dim: usize,
        y: &[usize],
        classes: usize,
        iterations: usize,
        mut val_f1: impl FnMut(&LinearProbe) -> f64,
    ) -> ChosenProbe {
        let mut tried = Vec::new();
        let best = choose_c(&PROBE_CS, |c| {
            let probe = LinearProbe::fit(x, dim, y, classes, c, iterations);
            let f1 = val_f1(&probe);
            tried.push((c, f1));
            Ok::<_, std::convert::Infallible>((probe, f1))
        });
        let Ok(Some((c, _, probe))) = best else { unreachable!("PROBE_CS is not empty and fitting cannot fail") };
        ChosenProbe { probe, c, tried }
    }

    /// Class probabilities of each row of `x`, `[n, classes]` row-major.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        x.chunks_exact(self.mean.len())
            .flat_map(|row| self.row_probabilities(row).into_iter().map(|p| p as f32))
            .collect()
    }
}

/// The inverse regularisation strengths [`LinearProbe::fit_choosing_c`] tries (sklearn's `C`).
/// Frozen sentence vectors want strong regularisation: on 1,500 CFPB complaints the val macro-F1
/// of MiniLM's probe was 0.634 at C 1 and 0.712 at C 0.01 (bench/probe_c.py, bench/results/probe_c_cfpb.json).
pub const PROBE_CS: [f64; 5] = [0.001, 0.01, 0.1, 1.0, 10.0];

/// A probe whose `C` was chosen on validation rows, with the validation macro-F1 of each `C` tried.
#[derive(Debug, Clone)]
pub struct ChosenProbe {
    pub probe: LinearProbe,
    pub c: f64,
    /// `(C, val macro-F1)` for each of [`PROBE_CS`], in that order.
    pub tried: Vec<(f64, f64)>,
}

/// A labelled sample for the linear probe: class ids (of the sorted names) and a seeded
/// held-out fifth, at least one row, never all.
#[derive(Debug, Clone)]
pub struct HeldOut {
    pub y: Vec<usize>,
    pub classes: Vec<String>,
    pub test: Vec<bool>,
}

impl HeldOut {
    pub fn new(labels: &[String], seed: u64) -> Result<HeldOut> {
        let mut classes: Vec<String> = labels.to_vec();
        classes.sort();
        classes.dedup();
        if classes.len() < 2 {
            return Err(crate::Error::invalid(
                "labels",
                None,
                format!("the sample has {} class(es); the linear probe needs two or more", classes.len()),
            ));
        }
        let y: Vec<usize> = labels.iter().map(|l| classes.binary_search(l).expect("a class")).collect();
        let mut order: Vec<usize> = (0..y.len()).collect();
        let mut rng = crate::data::rng::SplitMix64::new(seed);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let mut test = vec![false; y.len()];
        for &i in &order[..y.len().div_ceil(5)] {
            test[i] = true;
        }
        if test.iter().all(|&t| t) {
            return Err(crate::Error::invalid(
                "labels",
                None,
                format!("{} labelled text(s) is too few to hold some out", y.len()),
            ));
        }
        Ok(HeldOut { y, classes, test })
    }

    /// Fits the head on the training rows of `embeddings` (`[n, dim]`, one per label) and scores
    /// it on the held-out ones. The caller times the embedding and the fit (core has no clock).
    pub fn score(&self, embeddings: &[f32], dim: usize, embed_seconds: f64) -> ProbeScore {
        let pick = |held: bool| -> (Vec<f32>, Vec<usize>) {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for i in (0..self.y.len()).filter(|&i| self.test[i] == held) {
                x.extend_from_slice(&embeddings[i * dim..(i + 1) * dim]);
                y.push(self.y[i]);
            }
            (x, y)
        };
        let ((train_x, train_y), (test_x, test_y)) = (pick(false), pick(true));
        // C is chosen on every fifth training row (the held-out fifth stays unseen), then the
        // head is refitted on all training rows with it.
        let k = self.classes.len();
        let (mut inner_x, mut inner_y, mut val_x, mut val_y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (row, &y)) in train_x.chunks_exact(dim).zip(&train_y).enumerate() {
            let (x, ys) = if i % 5 == 4 { (&mut val_x, &mut val_y) } else { (&mut inner_x, &mut inner_y) };
            x.extend_from_slice(row);
            ys.push(y);
        }
        let c = if inner_y.is_empty() {
            1.0
        } else {
            LinearProbe::fit_choosing_c(&inner_x, dim, &inner_y, &val_x, &val_y, k, 300).c
        };
        let head = LinearProbe::fit(&train_x, dim, &train_y, k, c, 300);
        let predicted = head.predict(&test_x);
        ProbeScore {
            macro_f1: macro_f1(&test_y, &predicted, k),
            train_rows: train_y.len(),
            test_rows: test_y.len(),
            embed_seconds,
            fit_seconds: 0.0,
            c,
        }
    }
}

/// Fits one model per `C` of `cs`, in order, and keeps the one with the best validation
/// macro-F1 — the first on a tie (with `cs` ascending, the most regularised). `fit` gives a
/// model and its validation macro-F1; `None` when `cs` is empty. The linear probe and `savant
/// baseline` choose their C this one way.
pub fn choose_c<M, E>(
    cs: &[f64],
    mut fit: impl FnMut(f64) -> std::result::Result<(M, f64), E>,
) -> std::result::Result<Option<(f64, f64, M)>, E> {
    let mut best: Option<(f64, f64, M)> = None;
    for &c in cs {
        let (model, f1) = fit(c)?;
        if best.as_ref().is_none_or(|b| f1 > b.1) {
            best = Some((c, f1, model));
        }
    }
    Ok(best)
}

/// sklearn's `f1_score(y_true, y_pred, average="macro", labels=range(classes))`.
pub fn macro_f1(y_true: &[usize], y_pred: &[usize], classes: usize) -> f64 {
    let cm = crate::metrics::classification::confusion_matrix(y_true, y_pred, classes);
    crate::metrics::classification::precision_recall_f1(&cm, 0.0).1.macro_f1
}

/// A candidate's linear probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeScore {
    pub macro_f1: f64,
    /// The regularisation chosen on a fifth of the training rows ([`LinearProbe::fit_choosing_c`]).
    #[serde(default)]
    pub c: f64,
    pub train_rows: usize,
    pub test_rows: usize,
    pub embed_seconds: f64,
    pub fit_seconds: f64,
}

/// One candidate of a comparison.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub model: String,
    pub tokenizer_fit: TokenizerFit,
    pub linear_probe: Option<ProbeScore>,
}

/// Candidates ranked, with the recommendation and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ranking {
    pub ranking: Vec<Candidate>,
    pub recommendation: String,
    pub reason: String,
}

impl Ranking {
    /// Best first: by the probe's macro-F1 when every candidate has one, else fewest words the
    /// model cannot see whole (cut into 3+ pieces, or unknown). Needs one candidate or more.
    pub fn new(mut candidates: Vec<Candidate>) -> Ranking {
        let cost = |c: &Candidate| {
            let f = &c.tokenizer_fit;
            (
                -c.linear_probe.as_ref().map_or(0.0, |p| p.macro_f1),
                f.fragmented_share + f.unk_share,
                f.mean_pieces_per_word,
            )
        };
        candidates.sort_by(|a, b| cost(a).partial_cmp(&cost(b)).unwrap_or(std::cmp::Ordering::Equal));
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let best = &candidates[0];
        let Some(next) = candidates.get(1) else {
            let probe = best.linear_probe.as_ref().map_or(String::new(), |p| {
                format!(", linear-probe macro-F1 {:.4} on {} held-out texts", p.macro_f1, p.test_rows)
            });
            let f = &best.tokenizer_fit;
            let reason = format!(
                "one candidate, {}: {} of its words are cut into 3+ pieces, {} of its tokens are [UNK]{probe}",
                best.model,
                pct(f.fragmented_share),
                pct(f.unk_share)
            );
            return Ranking { recommendation: best.model.clone(), reason, ranking: candidates };
        };
        let reason = match (&best.linear_probe, &next.linear_probe) {
            (Some(b), Some(n)) => format!(
                "{} fits best: its linear probe reaches macro-F1 {:.4} on {} held-out texts against {:.4} for {}",
                best.model, b.macro_f1, b.test_rows, n.macro_f1, next.model
            ),
            _ => format!(
                "{} fits best on {} texts ({} words): {} of its words are cut into 3+ pieces and {} of its tokens are [UNK], against {} and {} for {}",
                best.model,
                best.tokenizer_fit.texts,
                best.tokenizer_fit.words,
                pct(best.tokenizer_fit.fragmented_share),
                pct(best.tokenizer_fit.unk_share),
                pct(next.tokenizer_fit.fragmented_share),
                pct(next.tokenizer_fit.unk_share),
                next.model
            ),
        };
        Ranking { recommendation: best.model.clone(), reason, ranking: candidates }
    }

    /// A self-contained HTML page: the table, the recommendation, the most fragmented words.
    pub fn html(&self) -> String {
        use crate::metrics::svg::escape;
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let mut h = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>savant probe</title><style>\
             body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
             td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}\
             </style></head><body><h1>Which encoder fits these texts</h1>",
        );
        h.push_str(&format!("<p><strong>{}</strong></p><table><tr><th>model</th><th>words in 3+ pieces</th><th>[UNK]</th><th>pieces/word</th><th>truncated</th><th>probe macro-F1</th><th>seconds</th></tr>", escape(&self.reason)));
        for c in &self.ranking {
            let f = &c.tokenizer_fit;
            let (f1, secs) = c.linear_probe.as_ref().map_or(("—".to_string(), "—".to_string()), |p| {
                (format!("{:.4}", p.macro_f1), format!("{:.1}", p.embed_seconds + p.fit_seconds))
            });
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td>{f1}</td><td>{secs}</td></tr>",
                escape(&c.model),
                pct(f.fragmented_share),
                pct(f.unk_share),
                f.mean_pieces_per_word,
                pct(f.truncated_share)
            ));
        }
        h.push_str("</table>");
        for c in &self.ranking {
            if !c.tokenizer_fit.most_fragmented.is_empty() {
                let words: Vec<String> = c
                    .tokenizer_fit
                    .most_fragmented
                    .iter()
                    .map(|(w, p, n)| format!("{} ({p}×{n})", escape(w)))
                    .collect();
                h.push_str(&format!(
                    "<p>{}: most fragmented frequent words (pieces×occurrences): {}</p>",
                    escape(&c.model),
                    words.join(", ")
                ));
            }
        }
        h.push_str("</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn centroids_are_the_normalised_means_of_unit_vectors_and_score_by_cosine() {
        // Class 0: (2, 0) and (0, 1) → unit means (0.5, 0.5) → (1/√2, 1/√2); class 1: (0, -3).
        let x = [2.0f32, 0.0, 0.0, 1.0, 0.0, -3.0];
        let c = Centroids::fit(&x, 2, &[0, 0, 1], 2);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!(c.unit.iter().zip([h, h, 0.0, -1.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{:?}", c.unit);
        // (1, 1) is at cosine 1 from class 0 and −1/√2 from class 1: softmax over τ = 0.05.
        let p = c.probabilities(&[1.0, 1.0]);
        let want0 = 1.0 / (1.0 + ((-h - 1.0) / Centroids::TEMPERATURE).exp());
        assert!((p[0] - want0).abs() < 1e-12 && (p[0] + p[1] - 1.0).abs() < 1e-12, "{p:?}");
    }

    use super::*;
    use crate::data::rng::SplitMix64;

    #[test]
    fn the_linear_probe_separates_three_blobs_and_not_noise() {
        let mut rng = SplitMix64::new(7);
        let mut noise = || (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
        let centres = [[3.0f32, 0.0, 1.0], [-3.0, 1.0, 0.0], [0.0, -3.0, -1.0]];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..300 {
            let c = i % 3;
            x.extend(centres[c].iter().map(|v| v + noise()));
            y.push(c);
        }
        let probe = LinearProbe::fit(&x[..600], 3, &y[..200], 3, 1.0, 200);
        let predicted = probe.predict(&x[600..]);
        assert_eq!(macro_f1(&y[200..], &predicted, 3), 1.0);
        // Labels unrelated to the features: no better than chance on held-out rows.
        let shuffled: Vec<usize> = (0..300).map(|i| (i * 7 / 3) % 3).collect();
        let probe = LinearProbe::fit(&x[..600], 3, &shuffled[..200], 3, 1.0, 200);
        assert!(macro_f1(&shuffled[200..], &probe.predict(&x[600..]), 3) < 0.6);
    }

    #[test]
    fn c_is_chosen_on_the_validation_rows() {
        // Few training rows in 20 dimensions, one informative: how strongly to regularise matters.
        let mut rng = crate::data::rng::SplitMix64::new(3);
        let mut noise = || (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..120 {
            let c = i % 2;
            x.push(if c == 0 { 0.3 } else { -0.3 } + noise());
            x.extend((0..19).map(|_| 2.0 * noise()));
            y.push(c);
        }
        let (train_x, val_x) = x.split_at(40 * 20);
        let chosen = LinearProbe::fit_choosing_c(train_x, 20, &y[..40], val_x, &y[40..], 2, 200);
        let cs: Vec<f64> = chosen.tried.iter().map(|t| t.0).collect();
        assert_eq!(cs, PROBE_CS.to_vec());
        let best = chosen.tried.iter().map(|t| t.1).fold(f64::NEG_INFINITY, f64::max);
        let first_best = chosen.tried.iter().find(|t| t.1 == best).unwrap().0;
        assert_eq!(chosen.c, first_best, "{:?}", chosen.tried);
        // The kept probe is the one fitted with that C, and scores what was recorded for it.
        assert_eq!(macro_f1(&y[40..], &chosen.probe.predict(val_x), 2), best);
        let refit = LinearProbe::fit(train_x, 20, &y[..40], 2, chosen.c, 200);
        assert_eq!(refit.logits(val_x), chosen.probe.logits(val_x));
        // No validation rows: sklearn's default C 1, nothing tried.
        let none = LinearProbe::fit_choosing_c(train_x, 20, &y[..40], &[], &[], 2, 200);
        assert_eq!((none.c, none.tried.len()), (1.0, 0));
    }

    #[test]
    fn macro_f1_is_sklearns() {
        // sklearn.metrics.f1_score([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], average="macro") = 0.2666…
        assert!((macro_f1(&[0, 1, 2, 0, 1, 2], &[0, 2, 1, 0, 0, 1], 3) - 0.26666666666666666).abs() < 1e-15);
    }
}
