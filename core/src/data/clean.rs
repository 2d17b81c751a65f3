//! The cleaning pipeline: one row at a time through the rules, into the dedup index, out.
//!
//! Order per row: malformed? → missing text/label → text rules → redaction → length limits →
//! label normalisation → duplicate / leakage check → written. Label conflicts inside duplicate
//! groups are only known at the end, so [`Cleaner::finish`] returns [`Fixups`] (drop or relabel
//! rows already written) that [`apply_fixups`] applies in a second pass over the output.

use super::dedup::{DedupIndex, DedupMode, GroupId};
use super::format::{Format, RowResult, RowSource, TableReader, TableWriter};
use super::redact::{PiiType, Redactor};
use super::report::Report;
use super::text::{clean_text, Changes, TextRules};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Drop every row of a duplicate group whose labels disagree.
    Drop,
    /// Keep the representative with the group's most frequent label (ties: the first seen).
    Majority,
    /// Label sets ([`CleanOptions::label_sep`]): keep the representative with the union of the
    /// group's sets.
    Union,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CleanOptions {
    pub text_column: String,
    /// `None` for unlabelled data.
    pub label_column: Option<String>,
    pub text_rules: TextRules,
    /// Values (after trimming) that mean "missing", compared exactly.
    pub na_values: Vec<String>,
    /// Length limits in characters, after cleaning and redaction.
    pub min_chars: usize,
    pub max_chars: Option<usize>,
    pub dedup: DedupMode,
    pub near_threshold: f64,
    pub conflicts: ConflictPolicy,
    /// Trim labels (on by default).
    pub label_trim: bool,
    /// Lower-case labels (off by default: labels are shown to users as they wrote them).
    pub label_case_fold: bool,
    /// Applied after trim/fold; labels not in the map are kept as they are.
    pub label_map: BTreeMap<String, String>,
    /// Multi-label rows: the label cell holds a set of labels joined by this (or a JSON array);
    /// the label rules apply to each label, and the set is written back sorted, each label once,
    /// joined by it. Duplicates with different sets are conflicts.
    #[serde(default)]
    pub label_sep: Option<String>,
    /// Multi-label rows: keep a row whose label set is empty (no label applies, as
    /// scikit-learn's multi-label targets allow) instead of leaving it out as missing_label.
    #[serde(default)]
    pub allow_empty_labels: bool,
    /// Types to redact; empty = no redaction.
    pub redact: Vec<PiiType>,
    /// CSV/TSV output: cells a spreadsheet would run as formulas are written as text (`'=...`).
    pub spreadsheet_safe: bool,
}

pub const DEFAULT_NA_VALUES: [&str; 6] = ["", "NA", "N/A", "null", "NaN", "None"];

impl Default for CleanOptions {
    fn default() -> Self {
        CleanOptions {
            text_column: "text".into(),
            label_column: Some("label".into()),
            text_rules: TextRules::default(),
            na_values: DEFAULT_NA_VALUES.iter().map(|s| s.to_string()).collect(),
            min_chars: 1,
            max_chars: None,
            dedup: DedupMode::Exact,
            near_threshold: 0.8,
            conflicts: ConflictPolicy::Majority,
            label_trim: true,
            label_case_fold: false,
            label_map: BTreeMap::new(),
            label_sep: None,
            allow_empty_labels: false,
            redact: Vec::new(),
            spreadsheet_safe: false,
        }
    }
}

impl CleanOptions {
    pub fn validate(&self) -> Result<()> {
        if !(self.near_threshold > 0.0 && self.near_threshold <= 1.0) {
            return Err(Error::Option(format!("near_threshold must be in (0, 1], got {}", self.near_threshold)));
        }
        if self.label_sep.as_deref() == Some("") {
            return Err(Error::Option("label_sep must not be empty".into()));
        }
        if self.conflicts == ConflictPolicy::Union && self.label_sep.is_none() {
            return Err(Error::Option("conflicts union merges label sets: it needs label_sep".into()));
        }
        if let Some(max) = self.max_chars {
            if max < self.min_chars {
                return Err(Error::Option(format!("max_chars ({max}) is below min_chars ({})", self.min_chars)));
            }
        }
        Ok(())
    }
}

/// A label map: a JSON object of label → label, or (`json` false) a CSV of two columns
/// `from,to` after a header line; `source` names it in messages.
pub fn parse_label_map(bytes: &[u8], json: bool, source: &str) -> Result<BTreeMap<String, String>> {
    if json {
        return serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(source, None, format!("expected a JSON object of label → label: {e}")));
    }
    let mut map = BTreeMap::new();
    let mut reader = csv::Reader::from_reader(bytes);
    for (i, rec) in reader.records().enumerate() {
        let line = Some(i as u64 + 2);
        let rec = rec.map_err(|e| Error::invalid(source, line, e.to_string()))?;
        if rec.len() != 2 {
            return Err(Error::invalid(source, line, format!("expected two columns (from,to), found {}", rec.len())));
        }
        map.insert(rec[0].trim().to_string(), rec[1].trim().to_string());
    }
    Ok(map)
}

/// Whether a (trimmed) value is one of the "missing" tokens.
fn is_na(na_values: &[String], value: &str) -> bool {
    na_values.iter().any(|na| na == value)
}

/// The text rules, then redaction; borrowed when neither changed anything.
fn prepare_text<'a>(
    raw: &'a str,
    rules: &TextRules,
    redactor: Option<&Redactor>,
    changes: &mut Changes,
    redactions: &mut BTreeMap<PiiType, u64>,
) -> Cow<'a, str> {
    let cleaned = clean_text(raw, rules, changes);
    let Some(redactor) = redactor else { return cleaned };
    match redactor.redact(&cleaned, redactions) {
        Cow::Borrowed(_) => cleaned,
        Cow::Owned(redacted) => Cow::Owned(redacted),
    }
}

/// Changes to rows already written, found once all duplicates were seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fixups {
    /// Output row index (0-based, data rows) → `None` to drop it, `Some(label)` to relabel it.
    pub rows: BTreeMap<u64, Option<String>>,
}

impl Fixups {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Per duplicate group: where its representative went and the labels of all its members.
struct Group {
    out_index: u64,
    /// Input line of the representative, for the warning.
    line: u64,
    rep_label: u32,
    votes: BTreeMap<u32, u64>,
}

pub struct Cleaner {
    opts: CleanOptions,
    /// The input's columns, which the output keeps.
    header: Vec<String>,
    text_col: usize,
    label_col: Option<usize>,
    redactor: Option<Redactor>,
    index: DedupIndex,
    /// Texts of `--against` files: a row matching one of them is leakage.
    against: Option<DedupIndex>,
    /// Label interning keeps the per-group votes small.
    labels: Vec<String>,
    label_ids: HashMap<String, u32>,
    /// Groups with a kept representative; votes are only filled when a duplicate arrives.
    groups: HashMap<GroupId, Group>,
    redaction_counts: BTreeMap<PiiType, u64>,
    /// This row's redactions, merged into `redaction_counts` only if the row is written.
    row_redactions: BTreeMap<PiiType, u64>,
    report: Report,
}

impl Cleaner {
    /// Columns are looked up in `reader`'s header (without consuming rows).
    pub fn new<R: Read>(opts: CleanOptions, reader: &TableReader<R>) -> Result<Self> {
        opts.validate()?;
        let source = reader.source_name();
        let text_col = reader.column(&opts.text_column)?;
        let label_col = match &opts.label_column {
            Some(name) => Some(reader.column(name)?),
            None => None,
        };
        if label_col == Some(text_col) {
            return Err(Error::Option("the text and label columns must differ".into()));
        }
        let redactor = (!opts.redact.is_empty()).then(|| Redactor::new(&opts.redact));
        let index = DedupIndex::new(opts.dedup, opts.near_threshold);
        Ok(Cleaner {
            opts,
            header: reader.header().to_vec(),
            text_col,
            label_col,
            redactor,
            index,
            against: None,
            labels: Vec::new(),
            label_ids: HashMap::new(),
            groups: HashMap::new(),
            redaction_counts: BTreeMap::new(),
            row_redactions: BTreeMap::new(),
            report: Report::new(source),
        })
    }

    /// Loads the texts of another file (e.g. the test set) so that rows duplicating them are
    /// dropped as `leak_against`. Call before the first [`push`](Self::push). Returns how many
    /// texts were indexed. Uses the dedup mode, or `normalized` when dedup is off (which then
    /// still applies to the rows themselves).
    pub fn add_against<R: Read>(&mut self, mut other: TableReader<R>, text_column: &str) -> Result<u64> {
        if self.report.rows_in > 0 {
            return Err(Error::Option("add_against must come before the first row".into()));
        }
        let mode = if self.opts.dedup == DedupMode::None { DedupMode::Normalized } else { self.opts.dedup };
        let threshold = self.opts.near_threshold;
        let index = self.against.get_or_insert_with(|| DedupIndex::new(mode, threshold));
        let col = other.column(text_column)?;
        let mut n = 0;
        let mut scratch = BTreeMap::new();
        while let Some(row) = other.next_row()? {
            let Ok(row) = row else { continue };
            let raw = row.fields[col].trim();
            if is_na(&self.opts.na_values, raw) {
                continue;
            }
            let text =
                prepare_text(raw, &self.opts.text_rules, self.redactor.as_ref(), &mut Changes::default(), &mut scratch);
            index.observe(&text);
            n += 1;
        }
        Ok(n)
    }

    fn is_na(&self, value: &str) -> bool {
        is_na(&self.opts.na_values, value)
    }

    /// Takes one row; returns the fields to write, or `None` when the row is dropped (and
    /// counted in the report).
    pub fn push(&mut self, row: RowResult) -> Option<Vec<String>> {
        self.report.rows_in += 1;
        let mut row = match row {
            Ok(row) => row,
            Err(bad) => {
                self.report.drop_row("malformed");
                self.report.warn(Some(bad.line), format!("malformed row ({}): {}", bad.kind, bad.message));
                return None;
            }
        };
        let line = row.line;
        if self.is_na(row.fields[self.text_col].trim()) {
            self.report.drop_row("missing_text");
            return None;
        }
        let (label, label_normalized, label_mapped) = match self.label_col {
            Some(c) => {
                // Label sets may be empty when asked: no label applies.
                let empty_ok = self.opts.allow_empty_labels && self.opts.label_sep.is_some();
                if self.is_na(row.fields[c].trim()) && !empty_ok {
                    self.report.drop_row("missing_label");
                    return None;
                }
                let (label, normalized, mapped) = match self.is_na(row.fields[c].trim()) {
                    true => (String::new(), false, false),
                    false => self.normalize_label(&row.fields[c]),
                };
                if label.is_empty() && !empty_ok {
                    // A label set of separators only.
                    self.report.drop_row("missing_label");
                    return None;
                }
                (Some(label), normalized, mapped)
            }
            None => (None, false, false),
        };

        let mut changes = Changes::default();
        self.row_redactions.clear();
        let text = prepare_text(
            &row.fields[self.text_col],
            &self.opts.text_rules,
            self.redactor.as_ref(),
            &mut changes,
            &mut self.row_redactions,
        );
        let chars = if text.is_ascii() { text.len() } else { text.chars().count() };
        if chars < self.opts.min_chars {
            self.report.drop_row("too_short");
            return None;
        }
        if self.opts.max_chars.is_some_and(|max| chars > max) {
            self.report.drop_row("too_long");
            return None;
        }

        if self.against.as_mut().is_some_and(|a| a.contains(&text)) {
            self.report.drop_row("leak_against");
            return None;
        }
        let (group, duplicate) = self.index.observe(&text);
        let label_id = label.as_ref().map(|l| self.intern(l));
        if duplicate {
            self.report.drop_row(self.index.mode().reason());
            if let (Some(id), Some(g)) = (label_id, self.groups.get_mut(&group)) {
                if g.votes.is_empty() {
                    g.votes.insert(g.rep_label, 1);
                }
                *g.votes.entry(id).or_insert(0) += 1;
            }
            return None;
        }

        // Kept: count rule changes and redactions only now, so they describe written rows.
        for (t, n) in &self.row_redactions {
            *self.redaction_counts.entry(*t).or_insert(0) += n;
        }
        for (hit, rule) in [
            (changes.html_entities, "html_entities"),
            (changes.unicode_nfkc, "unicode_nfkc"),
            (changes.whitespace, "whitespace"),
            (label_normalized, "label_normalized"),
            (label_mapped, "label_mapped"),
        ] {
            if hit {
                self.report.modified(rule);
            }
        }
        let out_index = self.report.rows_out;
        self.report.rows_out += 1;
        if let (Some(label), Some(id)) = (&label, label_id) {
            *self.report.label_counts.entry(label.clone()).or_insert(0) += 1;
            // Without deduplication no row can have duplicates, so there is nothing to vote on.
            if self.index.mode() != DedupMode::None {
                self.groups.insert(group, Group { out_index, line, rep_label: id, votes: BTreeMap::new() });
            }
        }
        // Only a text some rule changed is copied; duplicates (most dropped rows) never are.
        if let Cow::Owned(text) = text {
            row.fields[self.text_col] = text;
        }
        if let (Some(c), Some(label)) = (self.label_col, label) {
            if row.fields[c] != label {
                row.fields[c] = label;
            }
        }
        Some(row.fields)
    }

    /// The label after trim / case-fold / map, and which of those changed it; a label set's
    /// labels each, the set then sorted, each label once.
    fn normalize_label(&self, raw: &str) -> (String, bool, bool) {
        let Some(sep) = &self.opts.label_sep else { return self.normalize_one(raw) };
        let (mut normalized, mut mapped) = (false, false);
        let mut set: Vec<String> = super::labels::label_set(raw, sep)
            .iter()
            .map(|l| {
                let (l, n, m) = self.normalize_one(l);
                (normalized, mapped) = (normalized | n, mapped | m);
                l
            })
            .filter(|l| !l.is_empty())
            .collect();
        set.sort();
        set.dedup();
        let label = set.join(sep);
        normalized |= !mapped && label != raw.trim();
        (label, normalized, mapped)
    }

    fn normalize_one(&self, raw: &str) -> (String, bool, bool) {
        let mut label = if self.opts.label_trim { raw.trim().to_string() } else { raw.to_string() };
        if self.opts.label_case_fold {
            label = label.to_lowercase();
        }
        let normalized = label != raw;
        let mut mapped = false;
        if let Some(to) = self.opts.label_map.get(&label) {
            if *to != label {
                mapped = true;
                label = to.clone();
            }
        }
        (label, normalized, mapped)
    }

    fn intern(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.label_ids.get(label) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.labels.push(label.to_string());
        self.label_ids.insert(label.to_string(), id);
        id
    }

    /// Resolves label conflicts and returns the report with the fixups to apply to the output.
    pub fn finish(mut self) -> (Report, Fixups) {
        let mut fixups = Fixups::default();
        let mut conflicted: Vec<&Group> = self.groups.values().filter(|g| g.votes.len() > 1).collect();
        conflicted.sort_by_key(|g| g.out_index);
        for g in conflicted {
            let c = &mut self.report.conflicts;
            c.groups += 1;
            c.rows += g.votes.values().sum::<u64>();
            let rep = &self.labels[g.rep_label as usize];
            let votes: Vec<String> = g.votes.iter().map(|(l, n)| format!("{}×{n}", self.labels[*l as usize])).collect();
            let rep_count = self.report.label_counts.get_mut(rep);
            match self.opts.conflicts {
                ConflictPolicy::Drop => {
                    c.dropped += 1;
                    if let Some(n) = rep_count {
                        *n -= 1;
                    }
                    fixups.rows.insert(g.out_index, None);
                    self.report.rows_out -= 1;
                    *self.report.dropped.entry("label_conflict".into()).or_insert(0) += 1;
                    self.report.warn(
                        Some(g.line),
                        format!(
                            "this row and its duplicates disagree on the label ({}); all dropped",
                            votes.join(", ")
                        ),
                    );
                }
                ConflictPolicy::Majority => {
                    // Highest count wins; on a tie the representative's own label stays.
                    let rep_votes = g.votes[&g.rep_label];
                    let (winner, n) =
                        g.votes.iter().max_by_key(|(_, n)| **n).map(|(l, n)| (*l, *n)).unwrap_or((g.rep_label, 0));
                    let kept = if winner != g.rep_label && n > rep_votes {
                        c.relabelled += 1;
                        if let Some(n) = rep_count {
                            *n -= 1;
                        }
                        let new = self.labels[winner as usize].clone();
                        *self.report.label_counts.entry(new.clone()).or_insert(0) += 1;
                        fixups.rows.insert(g.out_index, Some(new.clone()));
                        format!("relabelled '{new}'")
                    } else {
                        format!("kept '{rep}'")
                    };
                    self.report.warn(
                        Some(g.line),
                        format!("this row and its duplicates disagree on the label ({}); {kept}", votes.join(", ")),
                    );
                }
                ConflictPolicy::Union => {
                    let sep = self.opts.label_sep.as_deref().unwrap_or("|");
                    let mut union: Vec<&str> = g
                        .votes
                        .keys()
                        .flat_map(|l| self.labels[*l as usize].split(sep))
                        .filter(|l| !l.is_empty())
                        .collect();
                    union.sort();
                    union.dedup();
                    let new = union.join(sep);
                    if new != *rep {
                        c.relabelled += 1;
                        if let Some(n) = rep_count {
                            *n -= 1;
                        }
                        *self.report.label_counts.entry(new.clone()).or_insert(0) += 1;
                        fixups.rows.insert(g.out_index, Some(new.clone()));
                    }
                    self.report.warn(
                        Some(g.line),
                        format!(
                            "this row and its duplicates disagree on the label set ({}); kept '{new}'",
                            votes.join(", ")
                        ),
                    );
                }
            }
        }
        self.report.label_counts.retain(|_, n| *n > 0);
        if let Some(sep) = &self.opts.label_sep {
            self.report.label_sets = Some(super::report::LabelSetCounts::of(&self.report.label_counts, sep));
        }
        for (t, n) in &self.redaction_counts {
            self.report.redactions.insert(t.name().to_string(), *n);
        }
        (self.report, fixups)
    }

    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Records a note (e.g. from the reader) as a warning.
    pub fn warn(&mut self, line: Option<u64>, message: impl Into<String>) {
        self.report.warn(line, message);
    }
}

/// Progress callback: (rows read, bytes read).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Streams `rows` through a [`Cleaner`] into `out` (format `out_format`) and returns the writer;
/// [`Cleaner::finish`] then gives the report and the fixups still to apply (see [`apply_fixups`]).
pub fn clean_stream<S: RowSource, W: Write>(
    mut rows: S,
    cleaner: &mut Cleaner,
    out: W,
    out_format: Format,
    progress: Progress,
) -> Result<W> {
    let mut writer =
        TableWriter::new(out, out_format, &cleaner.header)?.spreadsheet_safe(cleaner.opts.spreadsheet_safe);
    while let Some(row) = rows.next_row()? {
        if let Some(fields) = cleaner.push(row) {
            writer.write(&fields)?;
        }
        let n = cleaner.report().rows_in;
        if n.is_multiple_of(4096) {
            progress(n, rows.bytes_read());
        }
    }
    progress(cleaner.report().rows_in, rows.bytes_read());
    for note in rows.take_notes() {
        cleaner.warn(None, note);
    }
    if cleaner.report().rows_in == 0 {
        return Err(Error::NoRows(crate::error::Location { source: cleaner.report.source.clone(), line: None }));
    }
    writer.finish()
}

/// Second pass over a cleaned file (as written by [`clean_stream`]): drops or relabels the rows
/// named in `fixups`.
pub fn apply_fixups<R: Read, W: Write>(
    cleaned: R,
    format: Format,
    label_column: &str,
    out: W,
    fixups: &Fixups,
    spreadsheet_safe: bool,
) -> Result<W> {
    let mut reader = TableReader::with_max_field(cleaned, format, "cleaned output", usize::MAX)?;
    let label_col = reader.column(label_column)?;
    let mut writer = TableWriter::new(out, format, reader.header())?.spreadsheet_safe(spreadsheet_safe);
    let mut index = 0u64;
    while let Some(row) = reader.next_row()? {
        let mut row = row.map_err(|m| Error::invalid("cleaned output", Some(m.line), m.message))?;
        match fixups.rows.get(&index) {
            Some(None) => {}
            Some(Some(label)) => {
                row.fields[label_col] = label.clone();
                writer.write(&row.fields)?;
            }
            None => writer.write(&row.fields)?,
        }
        index += 1;
    }
    writer.finish()
}

/// Everything in memory (the browser's path, and tests): bytes in, cleaned bytes and report out.
pub fn clean_bytes(
    input: &[u8],
    in_format: Format,
    out_format: Format,
    opts: CleanOptions,
    source: &str,
) -> Result<(Vec<u8>, Report)> {
    let reader = TableReader::new(input, in_format, source)?;
    let label = opts.label_column.clone();
    let safe = opts.spreadsheet_safe;
    let mut cleaner = Cleaner::new(opts, &reader)?;
    let out = clean_stream(reader, &mut cleaner, Vec::new(), out_format, &mut |_, _| {})?;
    let (report, fixups) = cleaner.finish();
    let out = match (&label, fixups.is_empty()) {
        (Some(label), false) => apply_fixups(out.as_slice(), out_format, label, Vec::new(), &fixups, safe)?,
        _ => out,
    };
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(csv: &str, opts: CleanOptions) -> (String, Report) {
        let (out, report) = clean_bytes(csv.as_bytes(), Format::Csv, Format::Csv, opts, "t.csv").unwrap();
        assert!(report.accounts_for_every_row(), "{report:?}");
        (String::from_utf8(out).unwrap(), report)
    }

    #[test]
    fn every_rule_is_counted() {
        let csv = "id,text,label\n\
                   1,I&#039;ve  had it,pos\n\
                   2,NA,pos\n\
                   3,fine,N/A\n\
                   4,\"i've had it\",pos\n\
                   5,x,neg\n\
                   6,   ,neg\n\
                   7,ok then, Neg \n";
        let opts = CleanOptions { min_chars: 2, dedup: DedupMode::Exact, ..Default::default() };
        let (out, r) = run(csv, opts);
        assert_eq!(out, "id,text,label\n1,I've had it,pos\n4,i've had it,pos\n7,ok then,Neg\n");
        assert_eq!(r.rows_in, 7);
        assert_eq!(r.rows_out, 3);
        let dropped: Vec<(&str, u64)> = r.dropped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(dropped, [("missing_label", 1), ("missing_text", 2), ("too_short", 1)]);
        assert_eq!(r.modified["html_entities"], 1);
        assert_eq!(r.modified["whitespace"], 1);
        assert_eq!(r.modified["label_normalized"], 1);
        assert_eq!(r.label_counts["pos"], 2);
    }

    #[test]
    fn normalized_dedup_keeps_the_first() {
        let csv = "text,label\nHello World!,a\nhello   world,a\n\"HELLO, WORLD\",a\nother,b\n";
        let (out, r) = run(csv, CleanOptions { dedup: DedupMode::Normalized, ..Default::default() });
        assert_eq!(out, "text,label\nHello World!,a\nother,b\n");
        assert_eq!(r.dropped["duplicate_normalized"], 2);
    }

    #[test]
    fn conflicting_duplicates_majority_and_drop() {
        let csv = "text,label\nsame text,a\nsame text,b\nsame text,b\nalone,c\ntie,x\ntie,y\n";
        let (out, r) = run(csv, CleanOptions { conflicts: ConflictPolicy::Majority, ..Default::default() });
        assert_eq!(out, "text,label\nsame text,b\nalone,c\ntie,x\n");
        assert_eq!(r.conflicts, crate::data::report::ConflictReport { groups: 2, rows: 5, relabelled: 1, dropped: 0 });
        assert_eq!(r.label_counts.get("a"), None);
        assert_eq!(r.label_counts["b"], 1);
        let w: Vec<(Option<u64>, &str)> = r.warnings.iter().map(|w| (w.line, w.message.as_str())).collect();
        assert_eq!(
            w,
            [
                (Some(2), "this row and its duplicates disagree on the label (a×1, b×2); relabelled 'b'"),
                (Some(6), "this row and its duplicates disagree on the label (x×1, y×1); kept 'x'"),
            ]
        );

        let (out, r) = run(csv, CleanOptions { conflicts: ConflictPolicy::Drop, ..Default::default() });
        assert_eq!(out, "text,label\nalone,c\n");
        assert_eq!(r.dropped["label_conflict"], 2);
        assert_eq!(r.dropped["duplicate_exact"], 3);
        assert_eq!(r.rows_out, 1);
        assert_eq!(r.label_counts.len(), 1);
    }

    #[test]
    fn against_drops_leaked_rows() {
        let test_file = "text,label\nThe Test Row,a\n";
        let reader = TableReader::new(test_file.as_bytes(), Format::Csv, "test.csv").unwrap();
        let train = "text,label\nthe test row!,a\nfresh row,b\n";
        let r = TableReader::new(train.as_bytes(), Format::Csv, "train.csv").unwrap();
        let mut c = Cleaner::new(CleanOptions { dedup: DedupMode::None, ..Default::default() }, &r).unwrap();
        assert_eq!(c.add_against(reader, "text").unwrap(), 1);
        let out = clean_stream(r, &mut c, Vec::new(), Format::Csv, &mut |_, _| {}).unwrap();
        let (report, _) = c.finish();
        assert_eq!(String::from_utf8(out).unwrap(), "text,label\nfresh row,b\n");
        assert_eq!(report.dropped["leak_against"], 1);
    }

    #[test]
    fn label_map_case_fold_and_unlabelled() {
        let csv = "text,label\na,POS\nb,neg\nc,Neutral\n";
        let opts = CleanOptions {
            label_case_fold: true,
            label_map: [("pos".to_string(), "positive".to_string())].into(),
            ..Default::default()
        };
        let (out, r) = run(csv, opts);
        assert_eq!(out, "text,label\na,positive\nb,neg\nc,neutral\n");
        assert_eq!(r.modified["label_mapped"], 1);
        let (out, _) = run("text\nx\n", CleanOptions { label_column: None, ..Default::default() });
        assert_eq!(out, "text\nx\n");
    }

    #[test]
    fn malformed_rows_are_counted_with_lines() {
        let (out, r) = run("text,label\na,b\nragged\n", CleanOptions::default());
        assert_eq!(out, "text,label\na,b\n");
        assert_eq!(r.dropped["malformed"], 1);
        assert_eq!(r.warnings[0].line, Some(3));
    }

    #[test]
    fn redaction_is_counted() {
        let csv = "text,label\nmail me at jo@example.com or 555-123-4567,a\n";
        let (out, r) =
            run(csv, CleanOptions { redact: crate::data::redact::PiiType::ALL.to_vec(), ..Default::default() });
        assert_eq!(out, "text,label\nmail me at [EMAIL] or [PHONE],a\n");
        assert_eq!(r.redactions["EMAIL"], 1);
        assert_eq!(r.redactions["PHONE"], 1);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = clean_bytes(b"", Format::Csv, Format::Csv, CleanOptions::default(), "x.csv").unwrap_err().to_string();
        assert!(e.contains("x.csv") && e.contains("empty"), "{e}");
        let e = clean_bytes(b"text,label\n", Format::Csv, Format::Csv, CleanOptions::default(), "x.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no data rows"), "{e}");
        let opts = CleanOptions { text_column: "note".into(), ..Default::default() };
        let e = clean_bytes(b"text,label\na,b\n", Format::Csv, Format::Csv, opts, "x.csv").unwrap_err().to_string();
        assert!(e.contains("no column named 'note'") && e.contains("text, label"), "{e}");
    }
}
