//! `savant embed`: sentence vectors for a text column, pooled as the model folder's
//! sentence-transformers config says (mean by default) and L2-normalised when its modules.json
//! has a Normalize step — what `SentenceTransformer(dir).encode(texts)` returns.
//! Output: `.jsonl` (the input columns plus `embedding`) or `.npy` (float32, `[rows, hidden]`).
//! `--long windows`: a text's vector is the mean of its windows' (normalised after averaging).

use crate::io::AtomicFile;
use crate::progress::bytes_bar;
use crate::text_input::{
    chunk_rows, in_parallel, int8_encoder, setup, workers_for, ModelArgs, RunReport, TextRows, WindowArgs,
};
use anyhow::{bail, Context, Result};
use savant_core::infer::{TextBatches, TextModel};
use savant_core::model::{load_encoder, ModelFolder};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Input table (.csv, .tsv or .jsonl).
    pub input: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output: .jsonl or .npy.
    #[arg(short, long)]
    pub output: PathBuf,
    /// L2-normalise (default: as the folder's modules.json says).
    #[arg(long, conflicts_with = "no_normalize")]
    pub normalize: bool,
    /// Do not L2-normalise.
    #[arg(long)]
    pub no_normalize: bool,
    #[command(flatten)]
    pub long: WindowArgs,
    /// Run the encoder's projections in int8 (as `predict --int8`). CPU only.
    #[arg(long)]
    pub int8: bool,
}

enum Out {
    Jsonl,
    Npy,
}

/// .npy header space reserved up front and rewritten at the end, when the row count is known.
const NPY_HEADER: usize = 128;

fn npy_header(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let len = NPY_HEADER - 10;
    h.extend_from_slice(&(len as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(NPY_HEADER - 1, b' ');
    h.push(b'\n');
    h
}

pub fn run(args: Args) -> Result<RunReport> {
    let started = Instant::now();
    let out_kind = match args.output.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => Out::Jsonl,
        Some("npy") => Out::Npy,
        _ => bail!("{}: embed writes .jsonl or .npy; pick one of those extensions", args.output.display()),
    };
    let s = setup(&args.model, None)?;
    let mut checkpoint = ModelFolder::checkpoint(&s.files)?;
    let (model, notes) = load_encoder(&s.folder.config, &mut checkpoint, &s.device)?;
    drop(checkpoint);
    let model = if args.int8 { int8_encoder(model, &s)? } else { model };
    let normalize = if args.normalize {
        true
    } else if args.no_normalize {
        false
    } else {
        s.folder.normalize
    };
    let pooling = s.folder.pooling;

    let mut rows = TextRows::open(&args.input, args.model.format.as_deref(), &args.model.text)?;
    let header = rows.header().to_vec();
    if matches!(out_kind, Out::Jsonl) && header.iter().any(|h| h == "embedding") {
        bail!(
            "{}: the input already has a column 'embedding', which embed writes; rename it first",
            args.input.display()
        );
    }
    let mut report = RunReport::start(&args.input, &args.output, &args.model, &s, notes);
    report.int8 = model.runs_int8();
    eprintln!(
        "embed: {} pooling, {}normalised, {} dimensions",
        pooling.name(),
        if normalize { "" } else { "not " },
        s.folder.config.hidden_size
    );

    let bar = bytes_bar("embed", Some(rows.total_bytes));
    let infer_started = Instant::now();
    let file = AtomicFile::create(&args.output)?;
    let mut w = BufWriter::with_capacity(1 << 20, file.file());
    if matches!(out_kind, Out::Npy) {
        w.write_all(&[0u8; NPY_HEADER])?;
    }
    let width = s.folder.config.hidden_size;
    let workers = workers_for(&s.device_name, args.model.threads);
    let long = args.long.long_text();
    while let Some(chunk) = rows.next_chunk(chunk_rows(args.model.batch_size), &mut report)? {
        let texts: Vec<&str> = chunk.iter().map(|r| r.fields[rows.text_column].as_str()).collect();
        let (batches, each) =
            TextBatches::embeddings(&s.folder.tokenizer, &texts, &long, args.model.batch_size, normalize)?;
        let encoder = TextModel::Encoder { model: &model, pooling, normalize: each };
        let out = in_parallel(encoder, &s.folder, &s.device, &batches, workers)?;
        report.truncated += out.truncated as u64;
        report.windows += out.windows.as_ref().map_or(texts.len(), |w| w.doc.len()) as u64;
        report.empty_text += out.empty as u64;
        for (i, row) in chunk.iter().enumerate() {
            let vector = &out.values[i * width..(i + 1) * width];
            match out_kind {
                Out::Npy => w.write_all(bytemuck::cast_slice(vector))?,
                Out::Jsonl => {
                    let mut obj = serde_json::Map::new();
                    for (name, value) in header.iter().zip(&row.fields) {
                        obj.insert(name.clone(), serde_json::Value::String(value.clone()));
                    }
                    obj.insert("embedding".into(), serde_json::json!(vector));
                    serde_json::to_writer(&mut w, &obj)?;
                    w.write_all(b"\n")?;
                }
            }
            report.rows_written += 1;
        }
        bar.set_position(rows.reader.bytes_read());
        bar.set_message(format!("{} rows", report.rows_written));
    }
    let mut f =
        w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", args.output.display()))?;
    if matches!(out_kind, Out::Npy) {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&npy_header(report.rows_written, width))?;
    }
    file.commit()?;
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    report.texts_per_second = report.rows_written as f64 / infer_started.elapsed().as_secs_f64().max(1e-9);
    report.finish(args.model.report.as_deref())?;
    Ok(report)
}
