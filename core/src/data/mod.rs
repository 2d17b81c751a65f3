//! Data preparation: bytes → rows → clean rows → splits, each step a module.

pub mod clean;
pub mod dedup;
pub mod format;
pub mod ingest;
pub mod labels;
pub mod packages;
pub mod redact;
pub mod report;
pub mod rng;
pub mod source;
pub mod split;
pub mod text;

pub use clean::{apply_fixups, clean_bytes, clean_stream, CleanOptions, Cleaner, ConflictPolicy, Fixups};
pub use dedup::DedupMode;
pub use format::{
    spreadsheet_safe, spreadsheet_safe_cell, Format, Malformed, Row, RowResult, RowSource, TableReader, TableWriter,
};
pub use report::Report;
