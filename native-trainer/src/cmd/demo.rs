//! `savant demo`: the main job on real data: fetch, clean (redact, near-dedup, leakage check
//! against the held-out file) and split each domain's dataset, then put the real MiniLM encoder
//! to work on it — sentence vectors for a stratified sample of train, one centroid per class,
//! test texts scored by cosine similarity and evaluated like any predictions — and LoRA-fine-tune
//! MiniLM on the CFPB complaints: train, predict the held-out test split with the adapter, and
//! evaluate it (JSON + HTML report).

use super::{clean, split};
use crate::fetch::{fetch_dataset, fetch_model, Dataset};
use crate::io::{open, savant_home, write_json};
use crate::model_dir::{device, DirFiles};
use anyhow::{anyhow, Result};
use burn::tensor::Device;
use savant_core::data::{Format, TableReader, TableWriter};
use savant_core::infer::TextModel;
use savant_core::metrics::input::Predictions;
use savant_core::metrics::report::{evaluate, EvalOptions};
use savant_core::model::{load_encoder, BertModel, ModelFolder};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// cfpb (finance), drugs (medicine), licenses or license-rules (law), or all.
    #[arg(long, default_value = "all")]
    pub dataset: String,
    /// Where results go (default $SAVANT_HOME/demo).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Skip the model step (data preparation only).
    #[arg(long)]
    pub no_model: bool,
    /// Train texts per class for the centroids, and test texts scored, in the model step.
    #[arg(long, default_value_t = 16)]
    pub per_class: usize,
    #[arg(long, default_value_t = 64)]
    pub test_texts: usize,
    /// Skip the LoRA fine-tuning of MiniLM on the CFPB complaints.
    #[arg(long)]
    pub no_train: bool,
    /// Fine-tuning: training rows (the first of the train split) and validation rows.
    #[arg(long, default_value_t = 1500)]
    pub train_rows: usize,
    #[arg(long, default_value_t = 300)]
    pub val_rows: usize,
    /// Fine-tuning: held-out test rows predicted and evaluated (0: all).
    #[arg(long, default_value_t = 0)]
    pub test_rows: usize,
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Fine-tuning: LoRA's peak learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
}

pub fn run(args: Args) -> Result<()> {
    let home = savant_home();
    let out = args.output.clone().unwrap_or_else(|| home.join("demo"));
    let sets: Vec<Dataset> = if args.dataset == "all" { Dataset::ALL.to_vec() } else { vec![args.dataset.parse()?] };
    let encoder = if args.no_model { None } else { Some(Encoder::load(&fetch_model("minilm", &home)?)?) };
    for ds in sets {
        let t0 = Instant::now();
        let got = fetch_dataset(ds, &home)?;
        let dir = out.join(ds.name());
        let Some((primary, held_out)) = got.files.split_first() else { continue };
        eprintln!("\n== {} ({})", ds.name(), primary.display());

        let mut c = clean::Args::new(primary.clone(), dir.join("clean.csv"));
        c.text = got.text.clone();
        c.label = got.label.clone();
        c.redact = true;
        c.dedup = "near".into();
        c.against = held_out.to_vec();
        c.report = Some(dir.join("clean_report.json"));
        c.quiet = true;
        let report = clean::run(c)?;
        eprint!("{}", clean::summary(&report));

        let s = split::Args {
            input: dir.join("clean.csv"),
            output: dir.join("splits"),
            label: got.label.clone(),
            text: Some(got.text.clone()),
            val: 0.1,
            test: 0.1,
            seed: args.seed,
            group_by: "near".into(),
            near_threshold: 0.8,
            format: None,
            quiet: true,
        };
        let sr = split::run(s)?;
        eprint!("{}", split::summary(&sr));
        if let Some(encoder) = &encoder {
            centroid_probe(encoder, &dir, &args)?;
        }
        if ds.name() == "cfpb" && !args.no_model && !args.no_train {
            fine_tune(&home, &dir, &args)?;
        }
        eprintln!("  {:.1}s; results in {}", t0.elapsed().as_secs_f64(), dir.display());
    }
    Ok(())
}

/// all-MiniLM-L6-v2, loaded once for every dataset.
struct Encoder {
    folder: ModelFolder,
    model: BertModel,
    device: Device,
}

impl Encoder {
    fn load(dir: &Path) -> Result<Encoder> {
        let files = DirFiles::new(dir)?;
        let mut folder = ModelFolder::open(&files)?;
        folder.tokenizer.set_max_len(Some(128))?;
        let (device, _) = device("cpu")?;
        let (model, _) = load_encoder(&folder.config, &mut ModelFolder::checkpoint(&files)?, &device)?;
        Ok(Encoder { folder, model, device })
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let f = &self.folder;
        let encoder = TextModel::Encoder { model: &self.model, pooling: f.pooling, normalize: true };
        let out = super::text_input::in_parallel(encoder, f, &self.device, texts, 2, 16)?;
        Ok(out.values)
    }
}

/// `(text, label)` rows of a split file.
fn read_split(path: &Path) -> Result<Vec<(String, String)>> {
    let mut reader = TableReader::new(BufReader::new(open(path)?), Format::Csv, &path.display().to_string())?;
    let (t, l) = (reader.column("text")?, reader.column("label")?);
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        if let Ok(row) = row {
            rows.push((row.fields[t].clone(), row.fields[l].clone()));
        }
    }
    Ok(rows)
}

/// Nearest-centroid classification with the pretrained encoder, no training: how far the
/// general model already separates the domain's classes (the baseline fine-tuning must beat).
fn centroid_probe(encoder: &Encoder, dir: &Path, args: &Args) -> Result<()> {
    let t0 = Instant::now();
    let train = read_split(&dir.join("splits/train.csv"))?;
    let test = read_split(&dir.join("splits/test.csv"))?;
    let mut by_class: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (text, label) in &train {
        let texts = by_class.entry(label.as_str()).or_default();
        if texts.len() < args.per_class {
            texts.push(text);
        }
    }
    let classes: Vec<String> = by_class.keys().map(|c| c.to_string()).collect();
    let dim = encoder.folder.config.hidden_size;
    let mut centroids = Vec::with_capacity(classes.len() * dim);
    for texts in by_class.values() {
        let v = encoder.embed(texts)?;
        let mut c = vec![0f64; dim];
        for row in v.chunks(dim) {
            c.iter_mut().zip(row).for_each(|(a, &b)| *a += b as f64);
        }
        let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        centroids.extend(c.iter().map(|x| x / norm));
    }
    let test: Vec<&(String, String)> = test.iter().filter(|(_, l)| classes.contains(l)).take(args.test_texts).collect();
    let texts: Vec<&str> = test.iter().map(|(t, _)| t.as_str()).collect();
    let vectors = encoder.embed(&texts)?;

    // Cosine similarities → probabilities (softmax, temperature 0.05 as in contrastive training).
    let k = classes.len();
    let mut scores = Vec::with_capacity(test.len() * k);
    let mut y_true = Vec::with_capacity(test.len());
    let mut rows = Vec::with_capacity(test.len());
    for (i, (text, label)) in test.iter().enumerate() {
        let v = &vectors[i * dim..(i + 1) * dim];
        let sims: Vec<f64> =
            centroids.chunks(dim).map(|c| c.iter().zip(v).map(|(a, &b)| a * b as f64).sum::<f64>() / 0.05).collect();
        let max = sims.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = sims.iter().map(|s| (s - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        let probs: Vec<f64> = exps.iter().map(|e| e / sum).collect();
        let mut fields = vec![text.clone(), label.clone()];
        fields.extend(probs.iter().map(|p| p.to_string()));
        rows.push(fields);
        scores.extend(probs);
        y_true.push(classes.iter().position(|c| c == label).expect("filtered to known classes"));
    }
    let mut header = vec!["text".to_string(), "label".to_string()];
    header.extend(classes.iter().map(|c| format!("prob_{c}")));
    crate::io::write_atomic(&dir.join("centroid_predictions.csv"), |w| {
        let mut out = TableWriter::new(w, Format::Csv, &header)?;
        for r in &rows {
            out.write(r)?;
        }
        out.finish()?;
        Ok(())
    })?;
    let preds = Predictions { classes, y_true, scores };
    let report = evaluate(&preds, &EvalOptions::default()).map_err(|e| anyhow!("evaluating: {e}"))?;
    write_json(&dir.join("centroid_metrics.json"), &report)?;
    let show = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    eprintln!(
        "  MiniLM nearest-centroid ({} train texts per class, no training): {} test texts, accuracy {}, macro F1 {}, ROC AUC (OvR macro) {} [{:.1}s]",
        args.per_class,
        test.len(),
        show(report.accuracy),
        show(report.f1_macro),
        show(report.roc_auc_ovr_macro),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A subcommand's arguments parsed as the command line would parse them (one set of defaults).
fn parse<A: clap::Args>(name: &str, args: &[String]) -> Result<A> {
    #[derive(clap::Parser)]
    struct Command<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    let argv = std::iter::once(name.to_string()).chain(args.iter().cloned());
    Ok(<Command<A> as clap::Parser>::try_parse_from(argv).map_err(|e| anyhow!("{name}: {e}"))?.args)
}

/// Writes `rows` as a `text,label` CSV.
fn write_rows(path: &Path, rows: &[&(String, String)]) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        let mut out = TableWriter::new(w, Format::Csv, &["text".to_string(), "label".to_string()])?;
        for (t, l) in rows {
            out.write(&[t.clone(), l.clone()])?;
        }
        out.finish()?;
        Ok(())
    })
}

/// LoRA-fine-tunes MiniLM on the first `--train-rows` of the train split (validating on
/// `--val-rows` of val), predicts the held-out test split with the adapter and evaluates it.
fn fine_tune(home: &Path, dir: &Path, args: &Args) -> Result<()> {
    let t0 = Instant::now();
    let minilm = fetch_model("minilm", home)?;
    let train = read_split(&dir.join("splits/train.csv"))?;
    let val = read_split(&dir.join("splits/val.csv"))?;
    let test = read_split(&dir.join("splits/test.csv"))?;
    let train: Vec<&(String, String)> = train.iter().take(args.train_rows).collect();
    let classes: std::collections::BTreeSet<&str> = train.iter().map(|(_, l)| l.as_str()).collect();
    let known = |rows: &[(String, String)], take: usize| -> (Vec<(String, String)>, usize) {
        let rows: Vec<&(String, String)> = rows.iter().take(if take == 0 { usize::MAX } else { take }).collect();
        let kept: Vec<(String, String)> =
            rows.iter().filter(|(_, l)| classes.contains(l.as_str())).map(|r| (*r).clone()).collect();
        let dropped = rows.len() - kept.len();
        (kept, dropped)
    };
    let (val, val_dropped) = known(&val, args.val_rows);
    let (test, test_dropped) = known(&test, args.test_rows);
    let work = dir.join("lora");
    std::fs::create_dir_all(&work)?;
    write_rows(&work.join("train.csv"), &train)?;
    write_rows(&work.join("val.csv"), &val.iter().collect::<Vec<_>>())?;
    write_rows(&work.join("test.csv"), &test.iter().collect::<Vec<_>>())?;
    if val_dropped + test_dropped > 0 {
        eprintln!(
            "  fine-tuning: {val_dropped} val and {test_dropped} test rows left out: their label is not among the {} classes of the {} training rows",
            classes.len(),
            train.len()
        );
    }
    eprintln!(
        "  LoRA fine-tuning MiniLM: {} train rows, {} val, {} epochs, lr {} (r 8, alpha 16, query+value)",
        train.len(),
        val.len(),
        args.epochs,
        args.lr
    );
    let s = |p: &Path| p.display().to_string();
    let run = work.join("run");
    let train_args: super::train::Args = parse(
        "train",
        &[
            "--model".into(),
            s(&minilm),
            "--train".into(),
            s(&work.join("train.csv")),
            "--val".into(),
            s(&work.join("val.csv")),
            "--mode".into(),
            "lora".into(),
            "--epochs".into(),
            args.epochs.to_string(),
            "--lr".into(),
            args.lr.to_string(),
            "--max-len".into(),
            "128".into(),
            "--seed".into(),
            args.seed.to_string(),
            "--device".into(),
            "cpu".into(),
            "--overwrite".into(),
            "-o".into(),
            s(&run),
        ],
    )?;
    super::train::run(train_args)?;
    let preds = work.join("test_predictions.csv");
    let predict_args: super::predict::Args = parse(
        "predict",
        &[
            "--model".into(),
            s(&minilm),
            "--adapter".into(),
            s(&run.join("adapter")),
            s(&work.join("test.csv")),
            "--text".into(),
            "text".into(),
            "--max-len".into(),
            "128".into(),
            "--device".into(),
            "cpu".into(),
            "-o".into(),
            s(&preds),
        ],
    )?;
    super::predict::run(predict_args)?;
    let report_json = work.join("test_metrics.json");
    let report_html = work.join("test_report.html");
    let eval_args: super::eval::Args = parse(
        "eval",
        &[s(&preds), "--label".into(), "label".into(), "-o".into(), s(&report_json), "--html".into(), s(&report_html)],
    )?;
    super::eval::run(eval_args)?;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_json)?)?;
    let show = |k: &str| report[k].as_f64().map_or("n/a".to_string(), |x| format!("{x:.3}"));
    eprintln!(
        "  LoRA-fine-tuned MiniLM on {} held-out test complaints: macro F1 {}, accuracy {} [{:.0}s]\n  adapter (PEFT format): {}\n  predictions: {}\n  report: {} (and {})",
        test.len(),
        show("f1_macro"),
        show("accuracy"),
        t0.elapsed().as_secs_f64(),
        run.join("adapter").display(),
        preds.display(),
        report_html.display(),
        report_json.display()
    );
    Ok(())
}
