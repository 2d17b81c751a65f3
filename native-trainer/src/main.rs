//! The `savant` command line: glue between files and savant-core.

mod fetch;
mod io;

fn main() {}
