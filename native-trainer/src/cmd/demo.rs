//! `savant demo`: the main job on real data: fetch, clean (redact, near-dedup, leakage check
//! against the held-out file) and split each domain's dataset, then compare, on the same
//! held-out test rows, what a user could do with it: the majority class, TF-IDF + logistic
//! regression, the pretrained MiniLM untrained (nearest class centroid; linear probe), and MiniLM
//! LoRA-fine-tuned with `savant train`'s defaults (finance and medical) — predictions, `savant
//! eval`'s JSON (+ HTML for the specialist) and comparison.json.

use super::{clean, split};
use crate::fetch::{fetch_dataset, fetch_model, Dataset};
use crate::io::{open, savant_home, write_json};
use crate::model_dir::{device, DirFiles};
use anyhow::{anyhow, Context, Result};
use burn::tensor::Device;
use savant_core::baseline::comparison::Comparison as Rows;
use savant_core::baseline::{Baseline, Ensemble};
use savant_core::data::{Format, TableReader, TableWriter};
use savant_core::infer::{TextBatches, TextModel};
use savant_core::metrics::input::Predictions;
use savant_core::metrics::report::{evaluate, EvalOptions};
use savant_core::model::{load_encoder, BertModel, ModelFolder};
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
    /// Training texts per class for the nearest-centroid classifier.
    #[arg(long, default_value_t = 16)]
    pub per_class: usize,
    /// Skip the LoRA fine-tuning (and the linear probe): the other methods only.
    #[arg(long)]
    pub no_train: bool,
    /// Training rows (the first of the train split) and validation rows, for every method.
    #[arg(long, default_value_t = 1500)]
    pub train_rows: usize,
    #[arg(long, default_value_t = 300)]
    pub val_rows: usize,
    /// Held-out test rows every method predicts (0: all).
    #[arg(long, default_value_t = 0)]
    pub test_rows: usize,
    /// Fine-tuning epochs (1: on the demo's 300 val rows a second epoch lowered CFPB's and the
    /// drug reviews' macro-F1; the full-split benchmark runs 3).
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Fine-tuning: LoRA's peak learning rate (default: savant train's).
    #[arg(long)]
    pub lr: Option<f64>,
}

pub fn run(args: Args) -> Result<()> {
    let home = savant_home();
    let out = args.output.clone().unwrap_or_else(|| home.join("demo"));
    let sets: Vec<Dataset> = if args.dataset == "all" { Dataset::DEMO.to_vec() } else { vec![args.dataset.parse()?] };
    let start = Instant::now();
    let encoder = if args.no_model { None } else { Some(Encoder::load(&fetch_model("minilm", &home)?)?) };
    let count = sets.len();
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
        eprint!("{}", report.summary());

        let mut options = savant_core::data::split::SplitOptions { seed: args.seed, ..Default::default() };
        (options.label_column, options.text_column) = (got.label.clone(), Some(got.text.clone()));
        let s = split::Args {
            input: dir.join("clean.csv"),
            output: dir.join("splits"),
            options,
            format: None,
            quiet: true,
        };
        let sr = split::run(s)?;
        eprint!("{}", split::summary(&sr));
        if let Some(encoder) = &encoder {
            // Fine-tuned: the finance and medical sets; the licences are long documents that a
            // 128-token cut does not serve (compared without training).
            let train = !args.no_train && matches!(ds.name(), "cfpb" | "drugs");
            compare(encoder, &home, &dir, &args, train)?;
        }
        eprintln!("  {:.1}s; results in {}", t0.elapsed().as_secs_f64(), dir.display());
    }
    eprintln!("\ndemo: {count} dataset{} in {:.0} s", if count == 1 { "" } else { "s" }, start.elapsed().as_secs_f64());
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

    fn embed(&self, texts: &[&str], normalize: bool) -> Result<Vec<f32>> {
        let f = &self.folder;
        let encoder = TextModel::Encoder { model: &self.model, pooling: f.pooling, normalize };
        let out =
            crate::text_input::in_parallel(encoder, f, &self.device, &TextBatches::new(&f.tokenizer, texts, 16)?, 2)?;
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

/// The rows every method of one dataset sees: the first `--train-rows` of train, and of val and
/// test (`--val-rows`, `--test-rows`) those whose label the training rows have (counted).
fn read_rows(dir: &Path, args: &Args) -> Result<Rows> {
    let first = |file: &str, n: usize| -> Result<Vec<(String, String)>> {
        Ok(read_split(&dir.join("splits").join(file))?.into_iter().take(if n == 0 { usize::MAX } else { n }).collect())
    };
    let rows = Rows::new(
        first("train.csv", args.train_rows)?,
        first("val.csv", args.val_rows)?,
        first("test.csv", args.test_rows)?,
    );
    let (val, test) = rows.dropped;
    if val + test > 0 {
        eprintln!(
            "  {val} val and {test} test rows left out: their label is not among the {} classes of the {} training rows",
            rows.classes.len(),
            rows.train.len()
        );
    }
    Ok(rows)
}

/// One method's test result, as `savant eval` reports it.
struct Scored {
    method: &'static str,
    what: String,
    report: serde_json::Value,
    seconds: f64,
}

/// Evaluates `scores` (`[test rows, classes]`) on the test rows, writes `NAME_predictions.csv`
/// (savant eval's input) and `NAME_metrics.json` in `dir`.
fn score(dir: &Path, name: &str, rows: &Rows, scores: Vec<f64>) -> Result<serde_json::Value> {
    let k = rows.classes.len();
    let mut header = vec!["text".to_string(), "label".to_string()];
    header.extend(rows.classes.iter().map(|c| format!("prob_{c}")));
    crate::io::write_atomic(&dir.join(format!("{name}_predictions.csv")), |w| {
        let mut out = TableWriter::new(w, Format::Csv, &header)?;
        for ((text, label), probs) in rows.test.iter().zip(scores.chunks(k)) {
            let mut fields = vec![text.clone(), label.clone()];
            fields.extend(probs.iter().map(|p| p.to_string()));
            out.write(&fields)?;
        }
        out.finish()?;
        Ok(())
    })?;
    let preds = Predictions { classes: rows.classes.clone(), y_true: rows.ids(&rows.test), scores };
    let report = evaluate(&preds, &EvalOptions::default()).map_err(|e| anyhow!("evaluating {name}: {e}"))?;
    write_json(&dir.join(format!("{name}_metrics.json")), &report)?;
    Ok(serde_json::to_value(&report)?)
}

/// Every method on the same held-out test rows: the majority class, the pretrained encoder's
/// nearest class centroid and its linear probe (no training), TF-IDF + logistic regression, and
/// (unless --no-train) LoRA-fine-tuned MiniLM; printed as a table and written to comparison.json.
fn compare(encoder: &Encoder, home: &Path, dir: &Path, args: &Args, train: bool) -> Result<()> {
    let rows = read_rows(dir, args)?;
    let k = rows.classes.len();
    let train_y = rows.ids(&rows.train);
    let n = rows.test.len();
    let mut results = Vec::new();

    let t = Instant::now();
    let (major, scores) = rows.majority();
    let report = score(dir, "majority", &rows, scores)?;
    results.push(Scored {
        method: "majority",
        what: format!("'{}' for every text", rows.classes[major]),
        report,
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let fit = Baseline::fit_rows(
        &Rows::labelled(&rows.train, "train"),
        &Rows::labelled(&rows.val, "val"),
        &Default::default(),
    )?;
    let scores = fit.baseline.probabilities_f64(&Rows::texts(&rows.test));
    let report = score(dir, "baseline", &rows, scores)?;
    results.push(Scored {
        method: "tfidf_lr",
        what: format!(
            "TF-IDF 1-2-grams ({} terms) + logistic regression, C {} chosen on val",
            fit.baseline.vocabulary_size(),
            fit.c
        ),
        report,
        seconds: t.elapsed().as_secs_f64(),
    });

    // The pretrained encoder, untrained: mean-pooled vectors of the test rows and of --per-class
    // training rows of each class (the centroids).
    let t = Instant::now();
    let dim = encoder.folder.config.hidden_size;
    let test_vectors = encoder.embed(&Rows::texts(&rows.test), false)?;
    let test_seconds = t.elapsed().as_secs_f64();
    let centroid_rows = rows.first_per_class(args.per_class);
    let vectors = encoder.embed(&centroid_rows.iter().map(|&i| rows.train[i].0.as_str()).collect::<Vec<_>>(), false)?;
    let embed_seconds = t.elapsed().as_secs_f64();
    let classes: Vec<usize> = centroid_rows.iter().map(|&i| train_y[i]).collect();
    let scores = savant_core::probe::Centroids::fit(&vectors, dim, &classes, k).probabilities(&test_vectors);
    let report = score(dir, "centroid", &rows, scores)?;
    results.push(Scored {
        method: "centroid",
        what: format!("MiniLM's nearest class centroid, {} training texts per class, no training", args.per_class),
        report,
        seconds: embed_seconds,
    });

    if train {
        let (tuned, probe) = fine_tune(home, dir, &rows, args)?;
        // The head the fine-tuning started from (its epoch 0, fitted on every training row's
        // frozen vector with C chosen on val), scored on the test rows' vectors embedded above.
        if let Some(chosen) = probe {
            let t = Instant::now();
            let scores = chosen.probe.probabilities(&test_vectors).into_iter().map(f64::from).collect();
            let report = score(dir, "probe", &rows, scores)?;
            results.push(Scored {
                method: "probe",
                what: format!(
                    "MiniLM frozen + logistic regression on its mean-pooled vectors, C {} chosen on val (the fine-tuning's epoch 0)",
                    chosen.c
                ),
                report,
                seconds: test_seconds + t.elapsed().as_secs_f64(),
            });
        }
        results.extend(tuned);
    }

    let show = |r: &serde_json::Value, key: &str| r[key].as_f64().map_or("n/a".to_string(), |x| format!("{x:.3}"));
    eprintln!("  on the same {n} held-out test rows ({k} classes; {} training rows):", rows.train.len());
    eprintln!("    {:<10} {:>8} {:>8} {:>7}  what", "method", "macro-F1", "accuracy", "seconds");
    for r in &results {
        eprintln!(
            "    {:<10} {:>8} {:>8} {:>7.1}  {}",
            r.method,
            show(&r.report, "f1_macro"),
            show(&r.report, "accuracy"),
            r.seconds,
            r.what
        );
    }
    let json: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({"method": r.method, "what": r.what, "n": r.report["n"], "f1_macro": r.report["f1_macro"],
                                     "accuracy": r.report["accuracy"], "seconds": r.seconds})
        })
        .collect();
    write_json(
        &dir.join("comparison.json"),
        &serde_json::json!({"test_rows": n, "train_rows": rows.train.len(), "val_rows": rows.val.len(), "classes": rows.classes, "methods": json}),
    )?;
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

/// LoRA-fine-tunes MiniLM on the training rows (validating on the val rows) with `savant
/// train`'s defaults, predicts the test rows with the adapter and evaluates them.
fn fine_tune(
    home: &Path,
    dir: &Path,
    rows: &Rows,
    args: &Args,
) -> Result<(Vec<Scored>, Option<savant_core::probe::ChosenProbe>)> {
    let t0 = Instant::now();
    let minilm = fetch_model("minilm", home)?;
    let work = dir.join("lora");
    std::fs::create_dir_all(&work)?;
    for (name, split) in [("train.csv", &rows.train), ("val.csv", &rows.val), ("test.csv", &rows.test)] {
        write_rows(&work.join(name), &split.iter().collect::<Vec<_>>())?;
    }
    let s = |p: &Path| p.display().to_string();
    let run = work.join("run");
    let mut train = vec![
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
        "--max-len".into(),
        "128".into(),
        "--seed".into(),
        args.seed.to_string(),
        "--device".into(),
        "cpu".into(),
        "--overwrite".into(),
        "-o".into(),
        s(&run),
    ];
    if let Some(lr) = args.lr {
        train.extend(["--lr".into(), lr.to_string()]);
    }
    let train_args: super::train::Args = parse("train", &train)?;
    eprintln!(
        "  LoRA fine-tuning MiniLM: {} train rows, {} val, {} epochs (r 8, alpha 16, query+value; mean-pooled head from the linear probe)",
        rows.train.len(),
        rows.val.len(),
        args.epochs,
    );
    let trained = super::train::train(train_args)?;
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
        "  LoRA-fine-tuned MiniLM on {} held-out test rows: macro F1 {}, accuracy {} [{:.0}s]\n  adapter (PEFT format): {}\n  predictions: {}\n  report: {} (and {})",
        rows.test.len(),
        show("f1_macro"),
        show("accuracy"),
        t0.elapsed().as_secs_f64(),
        run.join("adapter").display(),
        preds.display(),
        report_html.display(),
        report_json.display()
    );
    let mut scored = vec![Scored {
        method: "lora",
        what: "MiniLM LoRA-fine-tuned (savant train's defaults)".into(),
        report,
        seconds: t0.elapsed().as_secs_f64(),
    }];
    // The adapter's probabilities averaged with TF-IDF + LR's, as `predict --ensemble` does
    // with the savant_ensemble.json the run wrote (weight chosen on val).
    let file = run.join(Ensemble::FILE);
    if file.is_file() {
        let t = Instant::now();
        let crate::model_dir::Ensemble::Classes(ensemble) =
            crate::model_dir::read_ensemble(&file, &rows.classes, false)?
        else {
            unreachable!("read_ensemble reads one-label files when asked for them")
        };
        let mut reader = csv::Reader::from_path(&preds)?;
        let header = reader.headers()?.clone();
        let columns = rows
            .classes
            .iter()
            .map(|c| header.iter().position(|h| h == format!("prob_{c}")))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| anyhow!("{}: a prob_ column is missing", preds.display()))?;
        let mut probs = Vec::new();
        for record in reader.records() {
            let record = record?;
            for &c in &columns {
                probs.push(record[c].parse::<f32>().with_context(|| format!("{}: a probability", preds.display()))?);
            }
        }
        let texts = Rows::texts(&rows.test);
        let mixed = ensemble.mix(&probs, &texts).into_iter().map(f64::from).collect();
        let report = score(dir, "lora_tfidf", rows, mixed)?;
        scored.push(Scored {
            method: "lora_tfidf",
            what: format!(
                "that LoRA model × {:.1} + TF-IDF + LR × {:.1} (savant train's ensemble, weight chosen on val; predict --ensemble)",
                ensemble.weight,
                1.0 - ensemble.weight
            ),
            report,
            seconds: t0.elapsed().as_secs_f64() + t.elapsed().as_secs_f64(),
        });
    }
    Ok((scored, trained.probe))
}
