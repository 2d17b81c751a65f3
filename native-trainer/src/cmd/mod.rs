//! One module per subcommand.

pub mod baseline;
pub mod clean;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod fetch;
pub mod ingest;
pub mod merge;
pub mod predict;
pub mod pretrain;
pub mod probe;
pub mod split;
pub mod text_input;
pub mod train;

use anyhow::{bail, Result};
use savant_core::data::Format;
use std::path::Path;

/// The format to use for `path`: `--format` if given, else the extension.
pub fn format_for(path: &Path, flag: Option<&str>) -> Result<Format> {
    if let Some(f) = flag {
        return Format::parse(f).ok_or_else(|| anyhow::anyhow!("--format must be csv, tsv or jsonl, got '{f}'"));
    }
    let name = path.to_string_lossy();
    match Format::from_name(&name) {
        Some(f) => Ok(f),
        None => bail!(
            "{}: cannot tell the format from the extension; use .csv, .tsv or .jsonl, or pass --format",
            path.display()
        ),
    }
}
