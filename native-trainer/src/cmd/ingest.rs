//! `savant ingest DIR -o dataset.jsonl`: a folder of documents (`.txt`, `.md`, `.html`, `.json`,
//! `.jsonl`) as the table `savant clean` reads — text, label (the first-level folder by
//! default), source path, bytes — one row per document or per chunk of tokens
//! (`core::data::ingest`). Files are visited in path order; links are followed only when they
//! stay inside DIR; every file is written or counted in the report.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use savant_core::data::ingest::{Ingest, IngestOptions, LabelFrom, RowWriter};
use savant_core::data::{Format, Report};

use crate::io::{write_atomic, write_json};

#[derive(clap::Args)]
pub struct Args {
    /// The folder to read.
    pub dir: PathBuf,
    /// Output: .jsonl, or .csv (columns text, label, source, bytes[, chunk]).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Where each row's label comes from: the first-level subfolder, a regex over the relative
    /// path (--label-regex, its first group), or nowhere.
    #[arg(long, default_value = "folder")]
    pub label_from: String,
    #[arg(long)]
    pub label_regex: Option<String>,
    /// The text field of .json / .jsonl documents.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Cut documents into rows of at most this many tokens of --model's tokenizer.
    #[arg(long, requires = "model")]
    pub chunk_tokens: Option<usize>,
    /// Tokens shared by consecutive chunks.
    #[arg(long, default_value_t = 0, requires = "chunk_tokens")]
    pub overlap: usize,
    /// The model folder whose tokenizer counts --chunk-tokens.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Files larger than this many MiB are skipped and counted (too_large).
    #[arg(long, default_value_t = 64)]
    pub max_file_mib: u64,
    /// Write the JSON report here (it is always summarised on stderr).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Report> {
    if !args.dir.is_dir() {
        bail!("{}: not a folder", args.dir.display());
    }
    let csv = match args.output.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => false,
        Some("csv") => true,
        _ => bail!("{}: the output must be .jsonl or .csv", args.output.display()),
    };
    let tokenizer = match &args.model {
        Some(dir) if args.chunk_tokens.is_some() => {
            let files = crate::model_dir::DirFiles::new(dir)?;
            Some(savant_core::model::ModelFolder::open(&files)?.tokenizer)
        }
        _ => None,
    };
    let options = IngestOptions {
        label_from: LabelFrom::parse(&args.label_from, args.label_regex.as_deref())?,
        text_field: args.text_field.clone(),
        chunk_tokens: args.chunk_tokens,
        overlap: args.overlap,
    };
    let root = args.dir.canonicalize().with_context(|| format!("reading {}", args.dir.display()))?;
    let mut ingest = Ingest::new(options, tokenizer, &args.dir.display().to_string())
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("chunk_tokens", "--chunk-tokens")))?;
    let mut files = Vec::new();
    walk(&root, &root, &mut files, &mut ingest)?;
    if files.is_empty() && ingest.report.rows_in == 0 {
        bail!("{}: the folder holds no file", args.dir.display());
    }
    let format = if csv { Format::Csv } else { Format::Jsonl };
    let mut rows = 0u64;
    write_atomic(&args.output, |out| {
        let mut sink = RowWriter::new(out, format, ingest.labelled(), args.chunk_tokens.is_some())?;
        for (relative, path) in &files {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if !ingest.admits(relative, size, args.max_file_mib) {
                continue;
            }
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    ingest.skip(relative, "unreadable", &e.to_string());
                    continue;
                }
            };
            for row in ingest.file(relative, &bytes)? {
                rows += 1;
                sink.write(&row)?;
            }
        }
        sink.finish()?;
        Ok(())
    })?;
    let report = ingest.report;
    if report.rows_out == 0 {
        std::fs::remove_file(&args.output).ok();
        bail!("{}: no document gave any text\n{}", args.dir.display(), report.summary());
    }
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    // The report counts files (rows_in, rows_out); a file may give several rows.
    eprint!(
        "{}",
        report.summary().replacen(" rows in, ", " files in, ", 1).replacen(
            " out\n",
            &format!(" written as {rows} rows\n"),
            1
        )
    );
    Ok(report)
}

/// Every file under `dir`, as (path relative to `root` with `/`, path), in path order. Links
/// that lead outside `root`, or nowhere, are counted and skipped.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>, ingest: &mut Ingest) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort();
    for path in entries {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let target = match path.canonicalize() {
            Ok(t) => t,
            Err(e) => {
                ingest.skip(&relative, "unreadable", &format!("cannot resolve: {e}"));
                continue;
            }
        };
        if !target.starts_with(root) {
            ingest.skip(&relative, "link_outside_the_folder", &format!("a link to {}", target.display()));
            continue;
        }
        if target.is_dir() {
            // A link to a folder inside DIR would visit it twice: only real folders are walked.
            if path.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                ingest.skip(&relative, "link_to_a_folder", "a link to a folder inside it (visited once, as itself)");
                continue;
            }
            walk(root, &path, files, ingest)?;
        } else {
            files.push((relative, path));
        }
    }
    Ok(())
}
