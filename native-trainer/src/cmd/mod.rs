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
pub mod quantize;
pub mod split;
pub mod train;
