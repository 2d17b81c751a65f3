//! A predictions file evaluated as `savant eval` does it: scikit-learn's metrics as JSON and/or
//! the HTML report, and sklearn's printed classification report. `eval` is this over its
//! arguments; `baseline` runs it on the test predictions it writes.

use crate::io::{open, write_atomic, write_json};
use anyhow::{anyhow, Result};
use savant_core::data::TableReader;
use savant_core::metrics::classification::classification_report;
use savant_core::metrics::html::html_report;
use savant_core::metrics::input::read_predictions;
use savant_core::metrics::report::{evaluate, EvalOptions};
use std::io::BufReader;
use std::path::PathBuf;

/// What to evaluate and where the reports go (`savant eval`'s options).
pub struct EvalFile {
    pub input: PathBuf,
    pub label: String,
    /// Print the JSON report to stdout (instead of the classification report).
    pub json: bool,
    pub output: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub options: EvalOptions,
    pub format: Option<String>,
}

/// `savant eval --multi-label`: scikit-learn's multi-label metrics of a label-set predictions file.
pub fn evaluate_label_sets(
    input: &std::path::Path,
    format: Option<&str>,
    label: &str,
    sep: &str,
    json: bool,
    output: Option<&std::path::Path>,
    html: Option<&std::path::Path>,
) -> Result<()> {
    use savant_core::metrics::multilabel::{evaluate, read_label_sets};
    let name = input.display().to_string();
    let format = crate::io::format_for(input, format)?;
    let reader = TableReader::new(BufReader::with_capacity(1 << 20, open(input)?), format, &name)?;
    let sets = read_label_sets(reader, label, sep)?;
    let report = evaluate(&sets);
    if let Some(path) = html {
        let file = input.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned());
        let page = savant_core::metrics::html::multilabel_html(&report, &sets, &format!("Savant evaluation — {file}"));
        write_atomic(path, |w| Ok(w.write_all(page.as_bytes())?))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if let Some(path) = output {
        write_json(path, &report)?;
    }
    let show = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.4}"));
    eprintln!(
        "{name}: n={} labels={} f1_micro={:.4} f1_macro={:.4} f1_samples={:.4} subset_accuracy={} hamming_loss={} (predicted sets: {})",
        report.n,
        report.labels.len(),
        report.f1_micro,
        report.f1_macro,
        report.f1_samples,
        show(report.subset_accuracy),
        show(report.hamming_loss),
        report.predicted_by
    );
    for w in report.warnings.iter().take(10) {
        eprintln!("  warning: {w}");
    }
    Ok(())
}

pub fn evaluate_file(args: &EvalFile) -> Result<()> {
    let format = crate::io::format_for(&args.input, args.format.as_deref())?;
    let name = args.input.display().to_string();
    let reader = TableReader::new(BufReader::with_capacity(1 << 20, open(&args.input)?), format, &name)?;
    let preds = read_predictions(reader, &args.label)?;
    let flags = |m: &str| crate::flags::message_as_flags(m, &["pos_label"], &[]);
    let report = evaluate(&preds, &args.options).map_err(|e| anyhow!("{name}: {}", flags(&e)))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if let Some(path) = &args.output {
        write_json(path, &report)?;
    }
    if let Some(path) = &args.html {
        let title = format!(
            "Savant evaluation — {}",
            args.input.file_name().map_or(name.clone(), |f| f.to_string_lossy().into_owned())
        );
        let html = html_report(&report, &preds, &title);
        write_atomic(path, |w| Ok(w.write_all(html.as_bytes())?))?;
    }
    if !args.json {
        // Like sklearn's print(classification_report(...)).
        println!("{}", classification_report(&report.classes, &report.confusion_matrix, 4));
        let show = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.4}"));
        eprintln!(
            "{name}: n={} accuracy={} f1_macro={} roc_auc_ovr_macro={} log_loss={}",
            report.n,
            show(report.accuracy),
            show(report.f1_macro),
            show(report.roc_auc_ovr_macro),
            show(report.log_loss)
        );
        for w in report.warnings.iter().take(10) {
            eprintln!("  warning: {}", flags(w));
        }
    }
    Ok(())
}
