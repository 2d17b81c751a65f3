//! Data preparation: bytes → rows → clean rows → splits, each step a module.

pub mod redact;
