//! `savant split`.

use crate::io::{open, write_json, AtomicFile};
use crate::progress;
use anyhow::Result;
use savant_core::data::split::{plan_split, write_split, Part, SplitOptions, SplitReport};
use savant_core::data::{TableReader, TableWriter};
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Input file (.csv, .tsv or .jsonl), usually the output of `savant clean`.
    pub input: PathBuf,
    /// Output folder: train.*, val.*, test.* (the input's format) and split_report.json.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub options: SplitOptions,
    /// Input format, when the extension does not say.
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> Result<SplitReport> {
    let format = crate::io::format_for(&args.input, args.format.as_deref())?;
    let name = args.input.display().to_string();
    let opts = &args.options;
    opts.check().map_err(flags)?;
    let size = std::fs::metadata(&args.input).ok().map(|m| m.len());
    // Two passes over the file, each with a byte progress bar.
    let reader = |pass: &str| -> Result<_> {
        let bar = progress::bytes_bar(pass, size);
        if args.quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let file = bar.wrap_read(open(&args.input)?);
        Ok(TableReader::new(BufReader::with_capacity(1 << 20, file), format, &name)?)
    };
    let plan = plan_split(reader("split 1/2 (grouping)")?, opts).map_err(flags)?;

    // The second pass's reader also gives the header the outputs repeat.
    let second = reader("split 2/2 (writing)")?;
    let header = second.header().to_vec();
    let files =
        Part::ALL.map(|p| AtomicFile::create(&args.output.join(format!("{}.{}", p.name(), format.extension()))));
    let files: Vec<AtomicFile> = files.into_iter().collect::<Result<_>>()?;
    {
        let mut writers = Vec::with_capacity(3);
        for f in &files {
            writers.push(TableWriter::new(BufWriter::with_capacity(1 << 20, f.file()), format, &header)?);
        }
        let mut writers: [TableWriter<_>; 3] = writers.try_into().map_err(|_| anyhow::anyhow!("three writers"))?;
        write_split(second, &plan, &mut writers)?;
        for w in writers {
            w.finish()?.flush()?;
        }
    }
    for f in files {
        f.commit()?;
    }
    write_json(&args.output.join("split_report.json"), &plan.report)?;
    if !args.quiet {
        eprint!("{}", summary(&plan.report));
        eprintln!("wrote {}", args.output.display());
    }
    Ok(plan.report)
}

/// Core's errors with its option fields as flags.
fn flags(e: savant_core::Error) -> anyhow::Error {
    crate::flags::options_error::<SplitOptions>(e, &[])
}

pub fn summary(r: &SplitReport) -> String {
    let mut s = format!(
        "{}: {} rows in, {} out (grouped by {} on '{}'; {} groups of 2+ rows hold {} rows)\n",
        r.source, r.rows_in, r.rows_out, r.group_by, r.text_column, r.multi_row_groups, r.rows_in_multi_row_groups
    );
    for (name, p) in &r.splits {
        let labels: Vec<String> = p.label_counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s += &format!("  {name}: {} rows ({})\n", p.rows, labels.join(", "));
    }
    if !r.dropped.is_empty() {
        s += &format!("  dropped: {:?}\n", r.dropped);
    }
    s
}
