//! What the commands that read texts share (`predict`, `embed`, `probe`, `train`): the model
//! folder and device, reading text rows in chunks while counting every row that cannot be used,
//! running a model over batches on every core, and the long-text options.

use crate::io::open;
use crate::model_dir::{device, DirFiles};
use anyhow::{anyhow, Context, Result};
use burn::tensor::Device;
use savant_core::data::{Row, TableReader};
use savant_core::infer::{TextBatches, TextModel, TextOutputs};
use savant_core::long::{Aggregate, LongMode, LongText};
use savant_core::model::{BertModel, LoadNotes, ModelFolder};
use serde::Serialize;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Options common to the commands that run a model over a text column.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Hugging Face model folder: config.json, model.safetensors, tokenizer.json or vocab.txt.
    #[arg(long)]
    pub model: PathBuf,
    /// Column holding the text.
    #[arg(long, default_value = "text")]
    pub text: String,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated and counted
    /// (default: sentence-transformers' max_seq_length of the adapter or model folder — the
    /// length `savant train` trained it at — else the model's max positions).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// auto, cpu, wgpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Input format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
    /// Write the run's report (counts, skipped rows with reasons) as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Batches run at once (default: one per core on the CPU, one on a GPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// How texts longer than --max-len are read (`train`, `predict`, `embed`, `probe`); the names
/// are core's.
#[derive(clap::Args, Clone, Debug)]
pub struct WindowArgs {
    /// A text longer than --max-len: cut it (`truncate`), keep its first quarter and last three
    /// quarters of the budget (`head-tail`), or read every token in windows of --max-len
    /// overlapping by --stride (`windows`), whose outputs are aggregated into the text's.
    #[arg(long, default_value = "truncate", value_parser = ["truncate", "head-tail", "windows"])]
    pub long: String,
    /// --long windows: tokens shared by neighbouring windows (default: a quarter of a window's
    /// text tokens).
    #[arg(long)]
    pub stride: Option<usize>,
    /// --long windows: the first this many windows of each text (the texts cut are counted).
    #[arg(long)]
    pub max_windows: Option<usize>,
}

impl WindowArgs {
    pub fn long_text(&self) -> LongText {
        // clap has checked the name against the list above, which are core's serde names.
        let mode =
            serde_json::from_value(serde_json::Value::String(self.long.clone())).expect("a --long value clap accepted");
        LongText { mode, stride: self.stride, max_windows: self.max_windows }
    }
}

/// [`WindowArgs`] and how a classifier's windows become one prediction (`train`, `predict`).
#[derive(clap::Args, Clone, Debug)]
pub struct LongArgs {
    #[command(flatten)]
    pub windows: WindowArgs,
    /// --long windows: a text's logits from its windows' (their mean or element-wise maximum);
    /// `mean-pool` (train) classifies a text from the mean of its windows' features, trained
    /// end to end on whole texts (--batch-size windows a batch); in predict it equals mean-logits.
    #[arg(long, default_value = "mean-logits", value_parser = ["mean-logits", "max-logits", "mean-pool"])]
    pub aggregate: String,
}

impl LongArgs {
    /// Core's settings of the same names.
    pub fn settings(&self) -> (LongMode, Aggregate) {
        let aggregate = serde_json::from_value(serde_json::Value::String(self.aggregate.clone()))
            .expect("an --aggregate value clap accepted");
        (self.windows.long_text().mode, aggregate)
    }

    pub fn long_text(&self) -> (LongText, Aggregate) {
        (self.windows.long_text(), self.settings().1)
    }
}

/// A loaded folder (minus weights), its device, and the max length in force.
pub struct Setup {
    pub files: DirFiles,
    pub folder: ModelFolder,
    pub device: Device,
    pub device_name: String,
    pub max_len: usize,
}

/// `adapter`: the folder put on the model, whose trained length (if it says) is the default.
pub fn setup(args: &ModelArgs, adapter: Option<&Path>) -> Result<Setup> {
    if args.batch_size == 0 {
        return Err(anyhow!("--batch-size must be at least 1"));
    }
    let files = DirFiles::new(&args.model)?;
    let mut folder = ModelFolder::open(&files)?;
    if let Some(dir) = adapter {
        if let Some(n) = savant_core::model::max_seq_length(&DirFiles::new(dir)?)? {
            folder.max_seq_length = Some(n);
        }
    }
    let positions = folder.config.max_position_embeddings;
    let max_len = match args.max_len {
        Some(n) if n > positions => {
            return Err(anyhow!(
                "--max-len {n} is more than the model's {positions} positions (max_position_embeddings)"
            ))
        }
        Some(n) => n,
        None => folder.default_max_len(),
    };
    folder.tokenizer.set_max_len(Some(max_len))?;
    let (device, device_name) = device(&args.device)?;
    Ok(Setup { files, folder, device, device_name, max_len })
}

/// A row that was not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// `--int8` (predict, embed): the encoder's projections in int8, or why not.
pub fn int8_encoder(model: BertModel, s: &Setup) -> Result<BertModel> {
    let layers = s.folder.config.num_hidden_layers;
    if s.folder.config.int8 {
        eprintln!("int8: the folder is already int8 (savant quantize); --int8 changes nothing");
        return Ok(model);
    }
    let model = model.quantized().map_err(|e| anyhow!("--int8: {e} (--device cpu)"))?;
    eprintln!(
        "int8: {} projections ({layers} layers × 6) quantised per output channel; embeddings, LayerNorms and heads stay f32",
        layers * 6
    );
    Ok(model)
}

/// The counts every model run reports.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    pub input: String,
    pub output: String,
    pub model: String,
    pub device: String,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_skipped: u64,
    /// The first skipped rows (all are counted in `rows_skipped`).
    pub skipped: Vec<Skipped>,
    pub truncated: u64,
    /// Token windows run (one per text unless --long windows).
    pub windows: u64,
    pub empty_text: u64,
    pub max_len: usize,
    pub batch_size: usize,
    pub seconds: f64,
    pub texts_per_second: f64,
    /// Peak resident memory of the whole run (Linux), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Peak resident memory once the model was loaded, before any text (Linux), MiB.
    pub load_peak_rss_mib: Option<f64>,
    pub ignored_weights: Vec<String>,
    /// The encoder's projections ran in int8 (`predict --int8`).
    pub int8: bool,
}

const MAX_LISTED: usize = 100;

impl RunReport {
    /// The report of a run that has loaded its model and is about to read `input`.
    pub fn start(input: &Path, output: &Path, args: &ModelArgs, setup: &Setup, notes: LoadNotes) -> RunReport {
        for m in &notes.messages {
            eprintln!("note: {m}");
        }
        RunReport {
            input: input.display().to_string(),
            output: output.display().to_string(),
            model: args.model.display().to_string(),
            device: setup.device_name.clone(),
            max_len: setup.max_len,
            batch_size: args.batch_size,
            ignored_weights: notes.ignored,
            load_peak_rss_mib: crate::memory::peak_rss_mib(),
            ..Default::default()
        }
    }

    pub fn skip(&mut self, line: u64, reason: String) {
        self.rows_skipped += 1;
        if self.skipped.len() < MAX_LISTED {
            self.skipped.push(Skipped { line, reason });
        }
    }

    /// The summary on stderr, and the JSON file when asked for.
    pub fn finish(&mut self, path: Option<&Path>) -> Result<()> {
        self.peak_rss_mib = crate::memory::peak_rss_mib();
        eprintln!(
            "{}: {} rows read, {} written, {} skipped; {} truncated to {} tokens, {} empty texts; {:.1} texts/s on {}{}",
            self.input,
            self.rows_read,
            self.rows_written,
            self.rows_skipped,
            self.truncated,
            self.max_len,
            self.empty_text,
            self.texts_per_second,
            self.device,
            match (self.load_peak_rss_mib, self.peak_rss_mib) {
                (Some(l), Some(m)) => format!(", peak memory {l:.0} MiB after loading, {m:.0} MiB in all"),
                _ => String::new(),
            }
        );
        for s in self.skipped.iter().take(10) {
            eprintln!("  skipped line {}: {}", s.line, s.reason);
        }
        if let Some(path) = path {
            crate::io::write_json(path, self)?;
        }
        Ok(())
    }
}

/// Rows of a table, read `n` at a time, malformed ones counted into the report.
pub struct TextRows {
    pub reader: TableReader<BufReader<File>>,
    pub text_column: usize,
    pub total_bytes: u64,
}

impl TextRows {
    pub fn open(path: &Path, format_flag: Option<&str>, text: &str) -> Result<TextRows> {
        let format = crate::io::format_for(path, format_flag)?;
        let name = path.display().to_string();
        let file = open(path)?;
        let total_bytes = file.metadata().with_context(|| format!("reading {name}"))?.len();
        let reader = TableReader::new(BufReader::with_capacity(1 << 20, file), format, &name)?;
        let text_column = reader.column(text)?;
        Ok(TextRows { reader, text_column, total_bytes })
    }

    pub fn header(&self) -> &[String] {
        self.reader.header()
    }

    /// Up to `n` good rows; `None` at the end.
    pub fn next_chunk(&mut self, n: usize, report: &mut RunReport) -> Result<Option<Vec<Row>>> {
        let mut rows = Vec::with_capacity(n);
        while rows.len() < n {
            match self.reader.next_row()? {
                None => break,
                Some(Ok(row)) => {
                    report.rows_read += 1;
                    rows.push(row);
                }
                Some(Err(m)) => {
                    report.rows_read += 1;
                    report.skip(m.line, format!("{}: {}", m.kind, m.message));
                }
            }
        }
        Ok(if rows.is_empty() { None } else { Some(rows) })
    }
}

/// Rows per chunk: enough batches to sort by length, little enough to keep memory flat.
pub fn chunk_rows(batch_size: usize) -> usize {
    (batch_size * 64).clamp(256, 16384)
}

/// Runs `model` over `batches` (texts tokenised once and grouped by length, longest first) on
/// `workers` threads and returns the outputs in input order; each worker takes the next batch as
/// it finishes one, so the cores stay busy to the end. On the CPU backend the matrix products are
/// already parallel, but the element-wise work (GELU, softmax, LayerNorm) runs on the calling
/// thread: batches in flight on every core keep them all busy.
pub fn in_parallel(
    model: TextModel<'_>,
    folder: &ModelFolder,
    device: &Device,
    batches: &TextBatches,
    workers: usize,
) -> Result<TextOutputs> {
    let config = &folder.config;
    let run = |i: usize| pollster::block_on(model.run(config, &batches.batch(i), device));
    let outputs = crate::workers::parallel_map(batches.len(), workers, run);
    let outputs = outputs.into_iter().collect::<savant_core::Result<Vec<Vec<f32>>>>()?;
    Ok(batches.gather(model.width(config), outputs))
}

/// Threads for [`in_parallel`]: one per core on the CPU backend; a GPU runs one stream.
pub fn workers_for(device_name: &str, threads: Option<usize>) -> usize {
    match threads {
        Some(n) => n.max(1),
        None if device_name.starts_with("cpu") => std::thread::available_parallelism().map_or(1, |n| n.get()),
        None => 1,
    }
}
