//! End-to-end tests of the `savant` binary on real files: the bad-input corpus, clean, split,
//! leakage checks and atomic output. (Compiled with the native-trainer package so that
//! `CARGO_BIN_EXE_savant` is the freshly built binary.)
//! One module per command (as ripgrep splits its tests), helpers in `common`.

mod common;

mod bad_input;
mod clean;
mod eval;
mod fetch;
mod ingest;
mod multilabel;
mod predict;
mod pretrain;
mod probe;
mod quantize;
mod split;
mod train;
