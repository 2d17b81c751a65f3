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

/// A file being written: all bytes go to a temporary file beside `path`, which replaces `path`
/// only on [`commit`](AtomicFile::commit). Dropped without commit, it is deleted.
pub struct AtomicFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
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
        Ok(AtomicFile { path: path.to_path_buf(), tmp })
    }

    pub fn file(&self) -> &std::fs::File {
        self.tmp.as_file()
    }

    /// Syncs the data to disk and renames the temporary file over the target.
    pub fn commit(self) -> Result<()> {
        // tempfile creates files readable by the owner only; outputs are ordinary files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            self.tmp
                .as_file()
                .set_permissions(perms)
                .with_context(|| format!("setting permissions of {}", self.path.display()))?;
        }
        self.tmp.as_file().sync_all().with_context(|| format!("syncing {}", self.path.display()))?;
        self.tmp
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the temporary file to {}", self.path.display()))?;
        Ok(())
    }
}

/// Writes `path` atomically: everything goes to a temporary file in the same folder, which is
/// renamed over `path` only after `fill` succeeded and the data reached the disk. A crash or an
/// error leaves either the old file or none, never half a file.
pub fn write_atomic<T>(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    let file = AtomicFile::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file.file());
    let value = fill(&mut out)?;
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    drop(out);
    file.commit()?;
    Ok(value)
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")?;
        Ok(())
    })
}

/// Writes `lines` as JSON lines, atomically.
pub fn write_jsonl<T: serde::Serialize>(path: &Path, lines: &[T]) -> Result<()> {
    write_atomic(path, |w| {
        for line in lines {
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Opens an input file with its name in any error.
pub fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// The format to use for `path`: `--format` if given, else the extension.
pub fn format_for(path: &Path, flag: Option<&str>) -> anyhow::Result<savant_core::data::Format> {
    if let Some(f) = flag {
        return savant_core::data::Format::parse(f)
            .ok_or_else(|| anyhow::anyhow!("--format must be csv, tsv or jsonl, got '{f}'"));
    }
    let name = path.to_string_lossy();
    match savant_core::data::Format::from_name(&name) {
        Some(f) => Ok(f),
        None => anyhow::bail!(
            "{}: cannot tell the format from the extension; use .csv, .tsv or .jsonl, or pass --format",
            path.display()
        ),
    }
}
