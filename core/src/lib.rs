//! savant-core: everything Savant does that is not moving bytes in and out.
//!
//! Nothing here touches the file system, the clock, threads or the network: functions take
//! readers, bytes and options and return values, so the CLI and the browser share one code path.

pub mod annotate;
pub mod baseline;
pub mod data;
mod error;
pub mod finetune;
pub mod infer;
pub mod long;
pub mod metrics;
pub mod model;
pub mod pretrain;
pub mod probe;
pub mod tokenize;
pub mod train;

pub use error::{Error, Result};
