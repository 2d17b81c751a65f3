//! `savant baseline`: the bag-of-words baseline a specialist must beat — TF-IDF (word 1–2-grams,
//! sublinear tf, min_df 2) + multinomial logistic regression with C picked on val, as
//! scikit-learn computes them (core's `baseline`). Writes `baseline.json` and `val_metrics.json`
//! and, with `--test`, the test predictions with `savant eval`'s JSON and HTML reports.

use crate::io::{open, write_atomic, write_json};
use anyhow::{anyhow, bail, Result};
use savant_core::baseline::{Baseline, BaselineFit, BaselineOptions};
use savant_core::data::{Format, TableReader, TableWriter};
use savant_core::metrics::input::{Predictions, PROB_PREFIX};
use savant_core::metrics::report::{evaluate, EvalOptions};
use savant_core::train::{LabelSet, LabelledRows};
use serde_json::json;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Training split (.csv, .tsv or .jsonl).
    #[arg(long)]
    pub train: PathBuf,
    /// Validation split: picks C.
    #[arg(long)]
    pub val: PathBuf,
    /// Test split: predicted and evaluated as `savant eval` does.
    #[arg(long)]
    pub test: Option<PathBuf>,
    #[arg(long, default_value = "text")]
    pub text: String,
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Input format, when the extensions do not say.
    #[arg(long)]
    pub format: Option<String>,
    /// Output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The C values tried (inverse L2 strength, as sklearn's LogisticRegression).
    #[arg(long = "c", value_delimiter = ',', default_values_t = vec![0.1, 1.0, 10.0, 100.0])]
    pub cs: Vec<f64>,
    /// L-BFGS iterations per C.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    /// Convergence: the largest gradient component of the mean objective.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Multi-label rows: the label column holds each row's labels joined by this (or a JSON
    /// array). The baseline is then one-vs-rest (scikit-learn's OneVsRestClassifier), C chosen by
    /// val micro-F1, each label's threshold by its val F1; the test report is `eval --multi-label`'s.
    #[arg(long)]
    pub label_sep: Option<String>,
    /// With --label-sep: keep rows whose label set is empty (no label applies) instead of
    /// leaving them out.
    #[arg(long)]
    pub allow_empty_labels: bool,
}

fn read(path: &Path, args: &Args) -> Result<LabelledRows> {
    let format = crate::io::format_for(path, args.format.as_deref())?;
    let reader = TableReader::new(BufReader::new(open(path)?), format, &path.display().to_string())?;
    Ok(LabelledRows::read_with(reader, &args.text, &args.label, args.label_sep.as_deref(), args.allow_empty_labels)?)
}

pub fn run(args: Args) -> Result<()> {
    if args.text == args.label {
        bail!("--text and --label both name the column '{}'", args.text);
    }
    if args.label_sep.is_some() {
        return label_sets(&args);
    }
    let train = read(&args.train, &args)?;
    let val = read(&args.val, &args)?;
    let test = args.test.as_ref().map(|p| read(p, &args)).transpose()?;
    let labels = LabelSet::from_labels(train.labels.iter().map(String::as_str), &train.source)?;
    // Test labels are checked before the fit, so a bad test file costs nothing and writes nothing.
    if let Some(t) = &test {
        if t.texts.len() < 2 {
            bail!("{}: {} usable row(s); metrics need at least two", t.source, t.texts.len());
        }
        labels.ids(t.labels.iter().map(String::as_str), &t.source)?;
    }
    let predicted_columns: Vec<String> =
        std::iter::once("pred".to_string()).chain(labels.names.iter().map(|c| format!("{PROB_PREFIX}{c}"))).collect();
    if let Some(clash) = [&args.text, &args.label].into_iter().find(|c| predicted_columns.contains(c)) {
        bail!("the column '{clash}' has the name of a column the predictions add; rename it");
    }
    let skipped: Vec<&String> =
        [Some(&train), Some(&val), test.as_ref()].into_iter().flatten().flat_map(|r| &r.skipped).collect();
    for line in skipped.iter().take(10) {
        eprintln!("  left out: {line}");
    }
    if skipped.len() > 10 {
        eprintln!("  ... and {} more rows left out", skipped.len() - 10);
    }

    let options = BaselineOptions { cs: args.cs.clone(), max_iter: args.max_iter, tol: args.tol };
    let started = Instant::now();
    let fit = Baseline::fit_rows(&train, &val, &options)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let classes = fit.baseline.classes().to_vec();
    let val_y = labels.ids(val.labels.iter().map(String::as_str), &val.source)?;
    let val_preds = Predictions { classes: classes.clone(), y_true: val_y, scores: fit.val_probabilities.clone() };
    let val_report = evaluate(&val_preds, &EvalOptions::default()).map_err(|e| anyhow!("{}: {e}", val.source))?;

    print_summary(&fit, train.texts.len(), val.texts.len(), fit_seconds);
    write_json(&args.output.join("val_metrics.json"), &val_report)?;
    let mut test_summary = serde_json::Value::Null;
    if let Some(test) = &test {
        let preds_path = args.output.join("test_predictions.csv");
        write_predictions(&preds_path, &args, test, &fit.baseline, &predicted_columns)?;
        let (metrics, html) = (args.output.join("test_metrics.json"), args.output.join("test_report.html"));
        // `savant eval` itself, on the file just written: the reports are what it makes of it.
        crate::evaluation::evaluate_file(&crate::evaluation::EvalFile {
            input: preds_path.clone(),
            label: args.label.clone(),
            json: false,
            output: Some(metrics.clone()),
            html: Some(html),
            options: EvalOptions::default(),
            format: Some("csv".into()),
        })?;
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&metrics)?)?;
        test_summary = json!({
            "path": test.source, "rows": test.texts.len(), "skipped": test.skipped.len(),
            "f1_macro": report["f1_macro"], "accuracy": report["accuracy"],
        });
    }
    let summary = json!({
        "model": "tfidf+logistic_regression",
        "tfidf": { "ngram_range": [1, 2], "sublinear_tf": true, "min_df": savant_core::baseline::tfidf::MIN_DF },
        "classes": classes,
        "vocabulary_size": fit.baseline.vocabulary_size(),
        "c": fit.c,
        "c_table": fit.table,
        "train": { "path": train.source, "rows": train.texts.len(), "skipped": train.skipped.len() },
        "val": {
            "path": val.source, "rows": val.texts.len(), "skipped": val.skipped.len(),
            "f1_macro": val_report.f1_macro, "accuracy": val_report.accuracy,
        },
        "test": test_summary,
        "fit_seconds": fit_seconds,
        "skipped": skipped,
    });
    write_json(&args.output.join("baseline.json"), &summary)?;
    println!("  results in {}", args.output.display());
    Ok(())
}

fn print_summary(fit: &BaselineFit, train_rows: usize, val_rows: usize, seconds: f64) {
    println!(
        "TF-IDF (1–2-grams, min_df 2) + logistic regression: {} training texts, vocabulary {} terms, {} classes",
        train_rows,
        fit.baseline.vocabulary_size(),
        fit.baseline.classes().len()
    );
    for row in &fit.table {
        let note =
            if row.converged { String::new() } else { format!(" (not converged in {} iterations)", row.iterations) };
        println!("  C {:<6} val macro-F1 {:.4}{note}", row.c, row.val_macro_f1);
    }
    println!("chosen C {} : val macro-F1 {:.4} on {val_rows} texts [{seconds:.1}s]", fit.c, fit.val_macro_f1);
}

/// The test rows with `pred` and one `prob_<class>` column per class: the file `savant eval`
/// reads.
fn write_predictions(
    path: &Path,
    args: &Args,
    test: &LabelledRows,
    baseline: &Baseline,
    added: &[String],
) -> Result<()> {
    let texts: Vec<&str> = test.texts.iter().map(String::as_str).collect();
    let probs = baseline.probabilities(&texts);
    let k = baseline.classes().len();
    let predicted = savant_core::metrics::classification::argmax_predictions(
        &probs.iter().map(|&p| p as f64).collect::<Vec<_>>(),
        k,
    );
    let mut header = vec![args.text.clone(), args.label.clone()];
    header.extend(added.iter().cloned());
    write_atomic(path, |w| {
        let mut out = TableWriter::new(w, Format::Csv, &header)?;
        for (i, (text, label)) in test.texts.iter().zip(&test.labels).enumerate() {
            let mut fields = vec![text.clone(), label.clone(), baseline.classes()[predicted[i]].clone()];
            fields.extend(probs[i * k..(i + 1) * k].iter().map(|p| p.to_string()));
            out.write(&fields)?;
        }
        out.finish()?;
        Ok(())
    })
}

/// `--label-sep`: the one-vs-rest baseline of label sets.
fn label_sets(args: &Args) -> Result<()> {
    use savant_core::baseline::multilabel::LabelSetBaseline;
    let sep = args.label_sep.as_deref().unwrap_or("|");
    let (train, val) = (read(&args.train, args)?, read(&args.val, args)?);
    let options = BaselineOptions { cs: args.cs.clone(), max_iter: args.max_iter, tol: args.tol };
    let started = Instant::now();
    let fit = LabelSetBaseline::fit_rows(&train, &val, &options)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let b = &fit.baseline;
    println!(
        "TF-IDF (1–2-grams, min_df 2) + one-vs-rest logistic regression: {} training texts, vocabulary {} terms, {} labels",
        train.texts.len(),
        b.vocabulary_size(),
        b.labels.len()
    );
    for (c, f1) in &fit.table {
        println!("  C {c:<6} val micro-F1 {f1:.4} (thresholds 0.5)");
    }
    println!(
        "chosen C {}, per-label thresholds {:?}: val micro-F1 {:.4} [{fit_seconds:.1}s]",
        fit.c, b.thresholds, fit.val_f1_micro
    );
    let mut test_summary = serde_json::Value::Null;
    if let Some(path) = &args.test {
        let test = read(path, args)?;
        let texts: Vec<&str> = test.texts.iter().map(String::as_str).collect();
        let probs = b.probabilities(&texts);
        let k = b.labels.len();
        let thresholds = savant_core::train::thresholds::Thresholds {
            labels: b.labels.clone(),
            thresholds: b.thresholds.clone(),
            label_sep: sep.into(),
            chosen: "per-label".into(),
        };
        let mut header = vec![args.text.clone(), args.label.clone(), "pred".into()];
        header.extend(b.labels.iter().map(|l| format!("{PROB_PREFIX}{l}")));
        let preds_path = args.output.join("test_predictions.csv");
        write_atomic(&preds_path, |w| {
            let mut out = TableWriter::new(w, Format::Csv, &header)?;
            for (i, (text, label)) in test.texts.iter().zip(&test.labels).enumerate() {
                let row: Vec<f32> = probs[i * k..(i + 1) * k].iter().map(|&p| p as f32).collect();
                let mut fields = vec![text.clone(), label.clone(), thresholds.label_set(&row)];
                fields.extend(probs[i * k..(i + 1) * k].iter().map(|p| p.to_string()));
                out.write(&fields)?;
            }
            out.finish()?;
            Ok(())
        })?;
        let (metrics, html) = (args.output.join("test_metrics.json"), args.output.join("test_report.html"));
        crate::evaluation::evaluate_label_sets(
            &preds_path,
            Some("csv"),
            &args.label,
            sep,
            false,
            Some(&metrics),
            Some(&html),
        )?;
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&metrics)?)?;
        test_summary = json!({
            "path": test.source, "rows": test.texts.len(), "skipped": test.skipped.len(),
            "f1_micro": report["f1_micro"], "f1_macro": report["f1_macro"], "subset_accuracy": report["subset_accuracy"],
        });
    }
    let summary = json!({
        "model": "tfidf+one_vs_rest_logistic_regression",
        "labels": b.labels, "label_sep": sep, "vocabulary_size": b.vocabulary_size(), "c": fit.c,
        "c_table": fit.table.iter().map(|(c, f1)| json!({"c": c, "val_f1_micro": f1})).collect::<Vec<_>>(),
        "thresholds": b.thresholds, "val_f1_micro": fit.val_f1_micro,
        "train": { "path": train.source, "rows": train.texts.len(), "skipped": train.skipped.len() },
        "val": { "path": val.source, "rows": val.texts.len(), "skipped": val.skipped.len() },
        "test": test_summary, "fit_seconds": fit_seconds,
    });
    write_json(&args.output.join("baseline.json"), &summary)?;
    println!("  results in {}", args.output.display());
    Ok(())
}
