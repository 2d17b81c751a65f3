//! ScanCode's licence data (PyPI `licensedcode-data`): licence texts labelled with their
//! category, and notice/text rules labelled with their licence's category (or, for the
//! multi-label table, the set of their licences' categories).

use super::{Archive, Converted, Skips, Table};
use crate::{Error, Result};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Read, Seek};

// ---- licensedcode front matter ---------------------------------------------------------------

/// The front-matter fields we use from `.LICENSE` and `.RULE` files; the rest are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct FrontMatter {
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
pub fn split_front_matter(text: &str) -> Option<(&str, &str)> {
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
pub fn parse_front_matter(text: &str) -> Result<(FrontMatter, &str), String> {
    let (yaml, body) =
        split_front_matter(text).ok_or_else(|| "no front matter (expected `---`, YAML, `---`)".to_string())?;
    if yaml.trim().is_empty() {
        return Ok((FrontMatter::default(), body));
    }
    let fm = serde_norway::from_str(yaml).map_err(|e| format!("front matter is not valid: {e}"))?;
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
    match std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}")).and_then(parse_front_matter) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            warnings.push(format!("skipping {name}: {e}"));
            skips.add(SKIP_UNPARSEABLE);
            None
        }
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

// ---- licenses --------------------------------------------------------------------------------

pub const LICENSES_DIR: &str = "licensedcode/data/licenses/";
pub const RULES_DIR: &str = "licensedcode/data/rules/";

pub const SKIP_UNPARSEABLE: &str = "unparseable front matter";
pub const SKIP_DEPRECATED: &str = "deprecated";
pub const SKIP_NO_CATEGORY: &str = "no category";
pub const SKIP_EMPTY: &str = "empty text";
pub const SKIP_NOT_NOTICE_OR_TEXT: &str = "not a notice or text rule";
pub const SKIP_FALSE_POSITIVE: &str = "false positive";
pub const SKIP_COMPOUND: &str = "not a single licence key";
pub const SKIP_UNKNOWN_LICENCE: &str = "unknown, deprecated or uncategorised licence";

/// The licence table plus key → category for every non-deprecated, categorised licence (with or
/// without text), which the rules need.
pub struct Licenses {
    pub converted: Converted,
    pub categories: HashMap<String, String>,
}

pub(super) fn licenses<R: Read + Seek>(zip: &mut Archive<R>) -> Result<Licenses> {
    let names = zip.names(LICENSES_DIR, ".LICENSE", true);
    if names.is_empty() {
        return Err(Error::Archive(format!("{} has no {LICENSES_DIR}*.LICENSE files", zip.label())));
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

/// Notice and full-text rules for one licence each, labelled with that licence's category; with
/// `multi`, also those whose expression names several licences (`mit OR gpl-2.0`,
/// `gpl-2.0 WITH classpath-exception-2.0`), each labelled with the set of its licences'
/// categories (`Copyleft|Permissive`, sorted; the operators left aside). Only `rules/` itself:
/// `inactive/rules/` holds rules ScanCode no longer uses.
pub(super) fn rules<R: Read + Seek>(zip: &mut Archive<R>, multi: bool) -> Result<Converted> {
    let lic = licenses(zip)?;
    let names = zip.names(RULES_DIR, ".RULE", true);
    if names.is_empty() {
        return Err(Error::Archive(format!("{} has no {RULES_DIR}*.RULE files", zip.label())));
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
