//! `savant probe`: which candidate encoder fits the user's domain, measured on their own texts —
//! how each candidate's tokenizer cuts them (`core::probe::TokenizerFit`): words in 3+ pieces,
//! `[UNK]`s, pieces per word, texts over the max length. Ranks the candidates, fewest cut words
//! and unknowns first, and says why.

use std::path::PathBuf;

use anyhow::{bail, Result};
use savant_core::model::ModelFolder;
use savant_core::probe::TokenizerFit;
use serde_json::json;

use crate::io::write_json;
use crate::model_dir::DirFiles;

#[derive(clap::Args)]
pub struct Args {
    /// The candidate model folders (two or more).
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
    /// Write the measurements and the ranking as JSON here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if args.models.len() < 2 {
        bail!("--models: name two candidate model folders or more to compare");
    }
    if args.sample == 0 || args.max_len < 3 {
        bail!("--sample must be at least 1 and --max-len at least 3");
    }
    let mut rows = super::text_input::TextRows::open(&args.data, args.format.as_deref(), &args.text)?;
    let mut texts = Vec::new();
    let mut report = super::text_input::RunReport::default();
    while texts.len() < args.sample {
        let Some(chunk) = rows.next_chunk(1024, &mut report)? else { break };
        let column = rows.text_column;
        texts.extend(chunk.into_iter().map(|r| r.fields[column].trim().to_string()).filter(|t| !t.is_empty()));
    }
    texts.truncate(args.sample);
    if texts.is_empty() {
        bail!("{}: no non-empty text in column '{}'", args.data.display(), args.text);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut fits = Vec::new();
    for dir in &args.models {
        let folder = ModelFolder::open(&DirFiles::new(dir)?)
            .map_err(|e| anyhow::anyhow!("{}: not a model folder: {e}", dir.display()))?;
        fits.push((dir.display().to_string(), TokenizerFit::measure(&folder.tokenizer, &refs, args.max_len)?));
    }
    // Fewest words the model cannot see whole (cut in 3+ pieces, or unknown) first.
    let cost = |f: &TokenizerFit| (f.fragmented_share + f.unk_share, f.mean_pieces_per_word);
    fits.sort_by(|a, b| cost(&a.1).partial_cmp(&cost(&b.1)).expect("shares are finite"));
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    eprintln!(
        "{:<40} {:>10} {:>8} {:>12} {:>10}",
        "model",
        "3+ pieces",
        "[UNK]",
        "pieces/word",
        format!("> {} tok", args.max_len)
    );
    for (name, f) in &fits {
        eprintln!(
            "{:<40} {:>10} {:>8} {:>12.3} {:>10}",
            name,
            pct(f.fragmented_share),
            pct(f.unk_share),
            f.mean_pieces_per_word,
            pct(f.truncated_share)
        );
    }
    let (best, best_fit) = &fits[0];
    let (next, next_fit) = &fits[1];
    let reason = format!(
        "{best} fits best on {} texts ({} words): {} of its words are cut into 3+ pieces and {} of its tokens are [UNK], against {} and {} for {next}",
        best_fit.texts,
        best_fit.words,
        pct(best_fit.fragmented_share),
        pct(best_fit.unk_share),
        pct(next_fit.fragmented_share),
        pct(next_fit.unk_share)
    );
    eprintln!("{reason}");
    if !best_fit.most_fragmented.is_empty() {
        let words: Vec<String> = best_fit.most_fragmented.iter().map(|(w, p, n)| format!("{w} ({p}×{n})")).collect();
        eprintln!("its most fragmented frequent words (pieces×occurrences): {}", words.join(", "));
    }
    if let Some(path) = &args.output {
        let candidates: Vec<_> = fits.iter().map(|(name, fit)| json!({"model": name, "tokenizer_fit": fit})).collect();
        write_json(path, &json!({"ranking": candidates, "recommendation": best, "reason": reason}))?;
    }
    Ok(())
}
