//! `savant probe`: which candidate encoder fits the user's domain, measured on their own texts —
//! how each candidate's tokenizer cuts them (`core::probe::TokenizerFit`: words in 3+ pieces,
//! `[UNK]`s, pieces per word, texts over the max length) and, with `--label`, a linear probe
//! (frozen mean-pooled embeddings, a logistic-regression head fitted in core, macro-F1 on a
//! held-out fifth). Ranks the candidates — by the probe when there is one, else fewest cut
//! words and unknowns first — and says why.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use savant_core::data::TableReader;
use savant_core::infer::{TextBatches, TextModel};
use savant_core::model::{load_encoder, ModelFolder, Pooling};
use savant_core::probe::{Candidate, HeldOut, ProbeScore, Ranking, Sample, TokenizerFit};

use crate::io::write_json;
use crate::model_dir::DirFiles;

#[derive(clap::Args)]
pub struct Args {
    /// The candidate model folders (one alone gets its measurements, no comparison).
    #[arg(long, num_args = 1.., required = true)]
    pub models: Vec<PathBuf>,
    /// The user's texts: a CSV/TSV/JSONL file.
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long, default_value = "text")]
    pub text: String,
    #[arg(long)]
    pub format: Option<String>,
    /// Texts measured: the first this many non-empty ones.
    #[arg(long, default_value_t = 2000)]
    pub sample: usize,
    /// The max length whose truncation rate is reported.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// The label column: adds the linear probe and ranks by its macro-F1.
    #[arg(long)]
    pub label: Option<String>,
    /// auto, cpu, wgpu or cuda: where the embeddings are computed.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seeds the held-out split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the measurements and the ranking here: JSON, or an HTML page (.html).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// How the probe's embeddings read a text longer than --max-len (windows: the mean of its
    /// windows' vectors).
    #[command(flatten)]
    pub long: crate::text_input::WindowArgs,
}

pub fn run(args: Args) -> Result<()> {
    if args.sample == 0 || args.max_len < 3 {
        bail!("--sample must be at least 1 and --max-len at least 3");
    }
    let format = crate::io::format_for(&args.data, args.format.as_deref())?;
    let file = crate::io::open(&args.data)?;
    let reader = TableReader::new(std::io::BufReader::new(file), format, &args.data.display().to_string())?;
    let Sample { texts, labels, .. } = Sample::read(reader, &args.text, args.label.as_deref(), args.sample)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let labelled = match args.label {
        Some(_) => Some(HeldOut::new(&labels, args.seed).map_err(|e| anyhow::anyhow!("--label: {e}"))?),
        None => None,
    };
    let (device, device_name) = crate::model_dir::device(&args.device)?;
    if labelled.is_some() && args.long.long != "truncate" {
        eprintln!(
            "linear probe: texts over --max-len read as {} (windows: the mean of their windows' vectors)",
            args.long.long
        );
    }
    let mut fits = Vec::new();
    for dir in &args.models {
        let files = DirFiles::new(dir)?;
        let mut folder =
            ModelFolder::open(&files).map_err(|e| anyhow::anyhow!("{}: not a model folder: {e}", dir.display()))?;
        let fit = TokenizerFit::measure(&folder.tokenizer, &refs, args.max_len)?;
        let probed = match &labelled {
            Some(l) => {
                folder.tokenizer.set_max_len(Some(args.max_len.min(folder.config.max_position_embeddings)))?;
                Some(probe(&files, &folder, (&device, &device_name), &refs, &args.long.long_text(), l)?)
            }
            None => None,
        };
        fits.push(Candidate { model: dir.display().to_string(), tokenizer_fit: fit, linear_probe: probed });
    }
    let ranking = Ranking::new(fits);
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    eprintln!(
        "{:<40} {:>10} {:>8} {:>12} {:>10} {:>9} {:>8}",
        "model",
        "3+ pieces",
        "[UNK]",
        "pieces/word",
        format!("> {} tok", args.max_len),
        "probe F1",
        "seconds"
    );
    for c in &ranking.ranking {
        let (f, p) = (&c.tokenizer_fit, &c.linear_probe);
        eprintln!(
            "{:<40} {:>10} {:>8} {:>12.3} {:>10} {:>9} {:>8}",
            c.model,
            pct(f.fragmented_share),
            pct(f.unk_share),
            f.mean_pieces_per_word,
            pct(f.truncated_share),
            p.as_ref().map_or("-".into(), |p| format!("{:.4}", p.macro_f1)),
            p.as_ref().map_or("-".into(), |p| format!("{:.1}", p.embed_seconds + p.fit_seconds))
        );
    }
    eprintln!("{}", ranking.reason);
    let best = &ranking.ranking[0].tokenizer_fit;
    if !best.most_fragmented.is_empty() {
        let words: Vec<String> = best.most_fragmented.iter().map(|(w, p, n)| format!("{w} ({p}×{n})")).collect();
        eprintln!("its most fragmented frequent words (pieces×occurrences): {}", words.join(", "));
    }
    if let Some(path) = &args.output {
        if path.extension().is_some_and(|e| e == "html") {
            let page = ranking.html();
            crate::io::write_atomic(path, |w| Ok(w.write_all(page.as_bytes())?))?;
        } else {
            write_json(path, &ranking)?;
        }
    }
    Ok(())
}

/// The linear probe of the model in `files`: mean-pooled embeddings of every text, a
/// logistic-regression head on the training rows, macro-F1 on the held-out ones.
fn probe(
    files: &DirFiles,
    folder: &ModelFolder,
    (device, device_name): (&burn::tensor::Device, &str),
    texts: &[&str],
    long: &savant_core::long::LongText,
    labelled: &HeldOut,
) -> Result<ProbeScore> {
    let mut checkpoint = ModelFolder::checkpoint(files)?;
    let (model, _) = load_encoder(&folder.config, &mut checkpoint, device)?;
    let started = Instant::now();
    let encoder = TextModel::Encoder { model: &model, pooling: Pooling::Mean, normalize: false };
    let workers = crate::text_input::workers_for(device_name, None);
    let (batches, _) = TextBatches::embeddings(&folder.tokenizer, texts, long, 32, false)?;
    let out = crate::text_input::in_parallel(encoder, folder, device, &batches, workers)?;
    let embed_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let score = labelled.score(&out.values, out.width, embed_seconds);
    Ok(ProbeScore { fit_seconds: started.elapsed().as_secs_f64(), ..score })
}
