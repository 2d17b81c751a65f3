//! `savant clean`.

use crate::io::{open, write_json, AtomicFile};
use crate::progress;
use anyhow::{bail, Context, Result};
use savant_core::data::redact::PiiType;
use savant_core::data::{
    apply_fixups, clean_stream, CleanOptions, Cleaner, ConflictPolicy, DedupMode, Report, TableReader,
};
use std::io::{BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Input file (.csv, .tsv or .jsonl).
    pub input: PathBuf,
    /// Output file (.csv, .tsv or .jsonl), written atomically.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Column holding the text.
    #[arg(long, default_value = "text")]
    pub text: String,
    /// Column holding the label.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// The data has no label column.
    #[arg(long, conflicts_with = "label")]
    pub no_label: bool,
    /// Input format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
    /// Write the JSON report here (it is always summarised on stderr).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// CSV/TSV output for spreadsheets: cells starting with = + - @ (which a spreadsheet would
    /// run as formulas: CSV injection) are written as text, with a ' in front.
    #[arg(long)]
    pub spreadsheet_safe: bool,
    /// Redact PII/PHI with typed placeholders ([EMAIL], [PHONE], ...).
    #[arg(long)]
    pub redact: bool,
    /// Which types to redact (comma-separated; default all): email, phone, ssn, date, mrn, url, ip, card, iban, zip, account.
    #[arg(long, value_delimiter = ',')]
    pub redact_types: Vec<String>,
    /// Duplicate detection: exact, normalized (case, punctuation, whitespace ignored), near (MinHash-LSH) or none.
    #[arg(long, default_value = "exact")]
    pub dedup: String,
    /// Jaccard threshold on word 5-shingles for --dedup near.
    #[arg(long, default_value_t = 0.8)]
    pub near_threshold: f64,
    /// Duplicates with different labels: drop the group, keep the majority label, or (label sets)
    /// keep the union of the group's sets.
    #[arg(long, default_value = "majority")]
    pub conflicts: String,
    /// Multi-label rows: the label column holds each row's labels joined by this (or a JSON
    /// array); the label rules apply to each label and the set is written back sorted, joined by it.
    #[arg(long)]
    pub label_sep: Option<String>,
    /// With --label-sep: keep rows whose label set is empty (no label applies, as in
    /// scikit-learn) instead of dropping them as missing_label.
    #[arg(long)]
    pub allow_empty_labels: bool,
    /// Values that mean "missing" (repeatable; replaces the default "", NA, N/A, null, NaN, None).
    #[arg(long = "na")]
    pub na: Vec<String>,
    /// Drop texts shorter than this many characters (after cleaning).
    #[arg(long, default_value_t = 1)]
    pub min_chars: usize,
    /// Drop texts longer than this many characters (after cleaning).
    #[arg(long)]
    pub max_chars: Option<usize>,
    /// Keep HTML entities (&amp;, &#039;) as they are.
    #[arg(long)]
    pub no_html: bool,
    /// Skip Unicode NFKC normalisation.
    #[arg(long)]
    pub no_nfkc: bool,
    /// Keep whitespace as it is (no trim, no collapse).
    #[arg(long)]
    pub no_whitespace: bool,
    /// Lower-case labels.
    #[arg(long)]
    pub label_fold: bool,
    /// Keep leading/trailing spaces in labels.
    #[arg(long)]
    pub no_label_trim: bool,
    /// Map labels: a CSV (two columns: from,to; a header line) or a JSON object.
    #[arg(long)]
    pub label_map: Option<PathBuf>,
    /// Drop rows that duplicate rows of this file (train/test leakage); repeatable.
    #[arg(long)]
    pub against: Vec<PathBuf>,
    /// Text column of the --against files (default: --text).
    #[arg(long)]
    pub against_text: Option<String>,
    /// Longest field accepted, in bytes; a longer one makes the row malformed.
    #[arg(long, default_value_t = savant_core::data::format::DEFAULT_MAX_FIELD_BYTES)]
    pub max_field_bytes: usize,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Args {
    /// Defaults for the given files, as if typed with no options.
    pub fn new(input: PathBuf, output: PathBuf) -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            args: Args,
        }
        let mut w = Wrap::parse_from(["clean", "in.csv", "-o", "out.csv"]);
        w.args.input = input;
        w.args.output = output;
        w.args
    }

    fn options(&self) -> Result<CleanOptions> {
        let mut o = CleanOptions {
            text_column: self.text.clone(),
            spreadsheet_safe: self.spreadsheet_safe,
            ..Default::default()
        };
        o.label_column = (!self.no_label).then(|| self.label.clone());
        o.dedup = DedupMode::parse(&self.dedup)
            .with_context(|| format!("--dedup must be exact, normalized, near or none, got '{}'", self.dedup))?;
        o.near_threshold = self.near_threshold;
        o.conflicts = match self.conflicts.as_str() {
            "drop" => ConflictPolicy::Drop,
            "majority" => ConflictPolicy::Majority,
            "union" => ConflictPolicy::Union,
            other => bail!("--conflicts must be drop, majority or union, got '{other}'"),
        };
        o.label_sep = self.label_sep.clone();
        o.allow_empty_labels = self.allow_empty_labels;
        if !self.na.is_empty() {
            o.na_values = self.na.clone();
        }
        o.min_chars = self.min_chars;
        o.max_chars = self.max_chars;
        o.text_rules.html_entities = !self.no_html;
        o.text_rules.unicode_nfkc = !self.no_nfkc;
        o.text_rules.whitespace = !self.no_whitespace;
        o.label_case_fold = self.label_fold;
        o.label_trim = !self.no_label_trim;
        if let Some(path) = &self.label_map {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read label map {}", path.display()))?;
            let json = path.extension().is_some_and(|e| e == "json");
            o.label_map = savant_core::data::clean::parse_label_map(&bytes, json, &path.display().to_string())?;
        }
        if self.redact || !self.redact_types.is_empty() {
            o.redact = PiiType::parse_list(&self.redact_types)
                .map_err(|e| crate::flags::as_flags(e, &["redact"], &[("redact", "--redact-types")]))?;
        }
        Ok(o)
    }
}

fn input_name(path: &Path) -> String {
    path.display().to_string()
}

/// Runs the whole command; returns the report.
pub fn run(args: Args) -> Result<Report> {
    let opts = args.options()?;
    let in_format = crate::io::format_for(&args.input, args.format.as_deref())?;
    let out_format = crate::io::format_for(&args.output, None)?;
    let name = input_name(&args.input);
    let file = open(&args.input)?;
    let size = file.metadata().ok().map(|m| m.len());
    let reader =
        TableReader::with_max_field(BufReader::with_capacity(1 << 20, file), in_format, &name, args.max_field_bytes)?;
    let label = opts.label_column.clone();
    let fields = ["near_threshold", "max_chars", "min_chars", "label_sep", "conflicts"];
    let mut cleaner = Cleaner::new(opts, &reader).map_err(|e| crate::flags::as_flags(e, &fields, &[]))?;
    let against_text = args.against_text.clone().unwrap_or_else(|| args.text.clone());
    for other in &args.against {
        let fmt = crate::io::format_for(other, None)?;
        let r = TableReader::new(BufReader::new(open(other)?), fmt, &input_name(other))?;
        let n = cleaner.add_against(r, &against_text)?;
        if !args.quiet {
            eprintln!("clean: indexed {n} texts of {} for the leakage check", other.display());
        }
    }

    let bar = progress::bytes_bar("clean", size);
    if args.quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let first = AtomicFile::create(&args.output)?;
    let mut w = BufWriter::with_capacity(1 << 20, first.file());
    let rows = crate::prefetch::Prefetch::spawn(reader);
    clean_stream(rows, &mut cleaner, &mut w, out_format, &mut progress::rows_callback(&bar))?;
    w.flush().with_context(|| format!("writing {}", args.output.display()))?;
    drop(w);
    bar.finish_and_clear();
    let (report, fixups) = cleaner.finish();
    match (&label, fixups.is_empty()) {
        (Some(label), false) => {
            // Label conflicts: rewrite the cleaned rows once more, then replace the output.
            let mut cleaned = first.file();
            cleaned.rewind()?;
            let second = AtomicFile::create(&args.output)?;
            let mut w = BufWriter::with_capacity(1 << 20, second.file());
            apply_fixups(BufReader::new(cleaned), out_format, label, &mut w, &fixups, args.spreadsheet_safe)?;
            w.flush()?;
            drop(w);
            second.commit()?;
        }
        _ => first.commit()?,
    }
    if let Some(path) = &args.report {
        write_json(path, &report)?;
    }
    if !args.quiet {
        eprint!("{}", report.summary());
        eprintln!("wrote {}", args.output.display());
    }
    Ok(report)
}
