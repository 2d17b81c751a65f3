//! File-system edges: atomic writes and the cache folder.

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `$SAVANT_HOME`, default `~/.cache/savant`.
pub fn savant_home() -> PathBuf {
    if let Some(h) = std::env::var_os("SAVANT_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("savant")
}

/// Writes `path` atomically: everything goes to a temporary file in the same folder, which is
/// renamed over `path` only after `fill` succeeded and the data reached the disk. A crash or an
/// error leaves either the old file or none, never half a file.
pub fn write_atomic<T>(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating folder {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".savant-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp);
    let value = fill(&mut out)?;
    let tmp = out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file().sync_all().with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("renaming the temporary file to {}", path.display()))?;
    Ok(value)
}
