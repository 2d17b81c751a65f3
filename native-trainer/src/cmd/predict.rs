//! `savant predict`: a sequence classifier over a text column → the input columns plus `pred`,
//! `prob_<label>` (softmax; a multi-label head's sigmoid, `pred` then the labels over their
//! thresholds joined by the separator) and, with `--logits`, `logit_<label>`, in `id2label`
//! order — the file `savant eval` (`--multi-label`) reads.

use crate::io::write_atomic;
use crate::model_dir::{read_ensemble, DirFiles, Ensemble};
use crate::progress::bytes_bar;
use crate::text_input::{
    chunk_rows, in_parallel, int8_encoder, setup, workers_for, LongArgs, ModelArgs, RunReport, TextRows,
};
use anyhow::{bail, Result};
use savant_core::data::TableWriter;
use savant_core::finetune::peft::load_fine_tuned;
use savant_core::infer::{argmax_rows, sigmoid, softmax_rows, TextBatches, TextModel};
use savant_core::long::LongMode;
use savant_core::model::BertClassifier;
use savant_core::train::thresholds::Thresholds;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Input table (.csv, .tsv or .jsonl).
    pub input: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output table; its extension sets the format.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write one `logit_<label>` column per label.
    #[arg(long)]
    pub logits: bool,
    /// An adapter folder from `savant train --mode lora|adapter` (or a PEFT LoRA export of a
    /// BertForSequenceClassification) to put on --model, the base it was trained from.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    #[command(flatten)]
    pub long: LongArgs,
    /// --long windows: also write each window's row to this table (`row`: the output row's
    /// number from 1, `window`, `char_start`/`char_end` in its text, `pred`, `prob_<label>`), to
    /// see which part of a long text drove its label.
    #[arg(long)]
    pub per_window: Option<PathBuf>,
    /// The model's probabilities averaged with the TF-IDF baseline's: `savant train`'s
    /// `savant_ensemble.json` (or its run folder), which holds the baseline and the weight chosen
    /// on val (a multi-label run's: the one-vs-rest baseline, and the thresholds chosen for the
    /// average). `pred` and `prob_*` are then the average's (`--logits` and `--per-window` stay
    /// the model's own).
    #[arg(long)]
    pub ensemble: Option<PathBuf>,
    /// Run the encoder's projections in int8: weights quantised per output channel when the
    /// model loads, activations per row as they arrive (ONNX Runtime's dynamic quantisation).
    /// CPU only; the model folder is not changed.
    #[arg(long)]
    pub int8: bool,
}

pub fn run(args: Args) -> Result<RunReport> {
    let started = Instant::now();
    let (long, aggregate) = args.long.long_text();
    let windowed = long.mode == LongMode::Windows;
    if args.per_window.is_some() && !windowed {
        bail!("--per-window writes the windows of --long windows; add --long windows");
    }
    let mut s = setup(&args.model, args.adapter.as_deref())?;
    let adapter = args.adapter.as_deref().map(DirFiles::new).transpose()?;
    let (model, config, notes) = load_fine_tuned(&s.files, &s.folder.config, adapter.as_ref(), &s.device)?;
    s.folder.config = config;
    let model = match args.int8 {
        true => BertClassifier { bert: int8_encoder(model.bert, &s)?, ..model },
        false => model,
    };
    let labels = s.folder.config.labels.clone();
    let multi = s.folder.config.multi_label();
    let ensemble = args.ensemble.as_deref().map(|path| read_ensemble(path, &labels, multi)).transpose()?;
    // A multi-label head: sigmoid probabilities, `pred` the set over its thresholds (the
    // average's own when averaged with the baseline).
    let thresholds = match (multi, &ensemble) {
        (false, _) => None,
        (true, Some(Ensemble::LabelSets(e))) => Some(e.thresholds.clone()),
        (true, _) => Some(read_thresholds(args.adapter.as_deref().unwrap_or(&args.model.model), &labels)?),
    };
    let probabilities = |logits: &[f32]| match thresholds {
        Some(_) => sigmoid(logits),
        None => softmax_rows(logits, labels.len()),
    };
    let pred = |probs: &[f32], argmax: usize| match &thresholds {
        Some(t) => t.label_set(probs),
        None => labels[argmax].clone(),
    };

    let mut rows = TextRows::open(&args.input, args.model.format.as_deref(), &args.model.text)?;
    let mut header: Vec<String> = rows.header().to_vec();
    let mut added = vec!["pred".to_string()];
    added.extend(labels.iter().map(|l| format!("prob_{l}")));
    if args.logits {
        added.extend(labels.iter().map(|l| format!("logit_{l}")));
    }
    if windowed {
        added.push("windows".to_string());
    }
    for name in &added {
        if header.contains(name) {
            bail!(
                "{}: the input already has a column '{name}', which predict writes; rename that column first",
                args.input.display()
            );
        }
    }
    header.extend(added);
    let out_format = crate::io::format_for(&args.output, None)?;

    let mut report = RunReport::start(&args.input, &args.output, &args.model, &s, notes);
    report.int8 = model.bert.runs_int8();
    let bar = bytes_bar("predict", Some(rows.total_bytes));
    let n_labels = labels.len();
    let workers = workers_for(&s.device_name, args.model.threads);
    let infer_started = Instant::now();
    // The window rows, kept until the documents' file is written (both are written whole or not at all).
    let mut window_rows: Vec<Vec<String>> = Vec::new();
    let mut texts_done = 0usize;
    write_atomic(&args.output, |w| {
        let mut writer = TableWriter::new(w, out_format, &header)?;
        while let Some(chunk) = rows.next_chunk(chunk_rows(args.model.batch_size), &mut report)? {
            let texts: Vec<&str> = chunk.iter().map(|r| r.fields[rows.text_column].as_str()).collect();
            let batches = TextBatches::long(&s.folder.tokenizer, &texts, &long, aggregate, args.model.batch_size)?;
            let out = in_parallel(TextModel::Classifier(&model), &s.folder, &s.device, &batches, workers)?;
            report.truncated += out.truncated as u64;
            report.empty_text += out.empty as u64;
            let (probs, preds) = match &ensemble {
                None => (probabilities(&out.values), argmax_rows(&out.values, n_labels)),
                Some(Ensemble::Classes(e)) => {
                    let mixed = e.mix(&softmax_rows(&out.values, n_labels), &texts);
                    let preds = argmax_rows(&mixed, n_labels);
                    (mixed, preds)
                }
                Some(Ensemble::LabelSets(e)) => {
                    let mixed = e.mix(&sigmoid(&out.values), &texts);
                    let preds = argmax_rows(&mixed, n_labels);
                    (mixed, preds)
                }
            };
            let counts = out.windows.as_ref().map(|w| w.counts(texts.len()));
            for (i, row) in chunk.iter().enumerate() {
                let mut fields = row.fields.clone();
                let row_probs = &probs[i * n_labels..(i + 1) * n_labels];
                fields.push(pred(row_probs, preds[i]));
                fields.extend(row_probs.iter().map(|p| p.to_string()));
                if args.logits {
                    fields.extend(out.values[i * n_labels..(i + 1) * n_labels].iter().map(|v| v.to_string()));
                }
                if let Some(counts) = &counts {
                    fields.push(counts[i].to_string());
                }
                writer.write(&fields)?;
                report.rows_written += 1;
            }
            if let Some(w) = out.windows.as_ref().filter(|_| args.per_window.is_some()) {
                let probs = probabilities(&w.values);
                let preds = argmax_rows(&w.values, n_labels);
                let mut nth = vec![0usize; texts.len()];
                for (j, (&d, &(start, end))) in w.doc.iter().zip(&w.spans).enumerate() {
                    nth[d] += 1;
                    let mut fields =
                        vec![(texts_done + d + 1).to_string(), nth[d].to_string(), start.to_string(), end.to_string()];
                    let window_probs = &probs[j * n_labels..(j + 1) * n_labels];
                    fields.push(pred(window_probs, preds[j]));
                    fields.extend(window_probs.iter().map(|p| p.to_string()));
                    window_rows.push(fields);
                }
            }
            report.windows += out.windows.as_ref().map_or(texts.len(), |w| w.doc.len()) as u64;
            texts_done += texts.len();
            bar.set_position(rows.reader.bytes_read());
            bar.set_message(format!("{} rows", report.rows_written));
        }
        writer.finish()?;
        Ok(())
    })?;
    if let Some(path) = &args.per_window {
        let mut header: Vec<String> = ["row", "window", "char_start", "char_end", "pred"].map(String::from).to_vec();
        header.extend(labels.iter().map(|l| format!("prob_{l}")));
        let format = crate::io::format_for(path, None)?;
        write_atomic(path, |w| {
            let mut writer = TableWriter::new(w, format, &header)?;
            for fields in &window_rows {
                writer.write(fields)?;
            }
            writer.finish()?;
            Ok(())
        })?;
    }
    bar.finish_and_clear();
    let infer_secs = infer_started.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    report.texts_per_second = report.rows_written as f64 / infer_secs.max(1e-9);
    report.finish(args.model.report.as_deref())?;
    Ok(report)
}

/// A multi-label model's `savant_thresholds.json` in `dir` (its adapter's or its own folder);
/// without one, 0.5 for every label, said.
fn read_thresholds(dir: &std::path::Path, labels: &[String]) -> Result<Thresholds> {
    let path = dir.join(Thresholds::FILE);
    if !path.is_file() {
        eprintln!("note: {} has no {}: every label applies from probability 0.5", dir.display(), Thresholds::FILE);
        return Ok(Thresholds::half(labels));
    }
    let bytes = std::fs::read(&path)?;
    Ok(Thresholds::from_json(&bytes, labels, &path.display().to_string())?)
}
