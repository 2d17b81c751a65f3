//! `savant eval`: metrics identical to scikit-learn's, as JSON and/or a self-contained HTML report.

use crate::evaluation::{evaluate_file, EvalFile};
use anyhow::Result;
use savant_core::metrics::report::EvalOptions;
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
    #[command(flatten)]
    pub options: EvalOptions,
    /// Input format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
    /// Label sets: the label column holds each row's labels joined by --label-sep (an empty
    /// cell: no label); predicted sets from a `pred` column, else probability ≥ 0.5. Writes
    /// scikit-learn's multi-label metrics (f1_micro, f1_samples, subset_accuracy, hamming_loss, ...).
    #[arg(long, conflicts_with_all = ["bootstrap", "curves", "pos_label"])]
    pub multi_label: bool,
    /// --multi-label: what joins the labels of a row.
    #[arg(long, default_value = "|", requires = "multi_label")]
    pub label_sep: String,
}

pub fn run(args: Args) -> Result<()> {
    if args.multi_label {
        return crate::evaluation::evaluate_label_sets(
            &args.input,
            args.format.as_deref(),
            &args.label,
            &args.label_sep,
            args.json,
            args.output.as_deref(),
            args.html.as_deref(),
        );
    }
    let options = args.options;
    evaluate_file(&EvalFile {
        input: args.input,
        label: args.label,
        json: args.json,
        output: args.output,
        html: args.html,
        options,
        format: args.format,
    })
}
