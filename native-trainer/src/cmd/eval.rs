//! `savant eval`: metrics identical to scikit-learn's, as JSON and/or a self-contained HTML report.

use crate::io::{open, write_atomic, write_json};
use anyhow::{anyhow, Result};
use savant_core::data::TableReader;
use savant_core::metrics::classification::classification_report;
use savant_core::metrics::html::html_report;
use savant_core::metrics::input::read_predictions;
use savant_core::metrics::report::{evaluate, EvalOptions};
use std::io::BufReader;
use std::path::PathBuf;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Predictions (.csv, .tsv or .jsonl): a label column and one `prob_<class>` column per class.
    pub input: PathBuf,
    /// Column with the true class.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Print the JSON report to stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the JSON report to this file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Write a self-contained HTML report (plots inline) to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Bootstrap resamples for 95% confidence intervals (0 = none).
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Include each class's ROC and precision–recall curve points in the JSON.
    #[arg(long)]
    pub curves: bool,
    /// Binary: the positive class (default: the second class in sorted order).
    #[arg(long)]
    pub pos_label: Option<String>,
    /// Input format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let format = super::format_for(&args.input, args.format.as_deref())?;
    let name = args.input.display().to_string();
    let reader = TableReader::new(BufReader::with_capacity(1 << 20, open(&args.input)?), format, &name)?;
    let preds = read_predictions(reader, &args.label)?;
    let opts = EvalOptions {
        pos_label: args.pos_label.clone(),
        bootstrap: args.bootstrap,
        seed: args.seed,
        curves: args.curves,
    };
    let report = evaluate(&preds, &opts).map_err(|e| anyhow!("{name}: {e}"))?;
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
            eprintln!("  warning: {w}");
        }
    }
    Ok(())
}
