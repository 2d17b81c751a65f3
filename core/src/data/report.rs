//! The cleaning report: every input row is either written or counted under a reason.

use std::collections::BTreeMap;

/// At most this many warnings are kept in the report; `warnings_total` counts them all.
pub const MAX_WARNINGS: usize = 100;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Warning {
    /// 1-based line in the input where the row starts, when the warning is about a row.
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConflictReport {
    /// Duplicate groups whose rows carry more than one label.
    pub groups: u64,
    /// Rows in those groups (kept representative plus dropped duplicates).
    pub rows: u64,
    /// Representatives whose label changed to the group's majority (`--conflicts majority`).
    pub relabelled: u64,
    /// Representatives dropped because their group disagreed (`--conflicts drop`).
    pub dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub source: String,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows not written, by reason: malformed, missing_text, missing_label, too_short, too_long,
    /// duplicate_exact|normalized|near, leak_against, label_conflict.
    pub dropped: BTreeMap<String, u64>,
    /// Rows a rule changed but kept: html_entities, unicode_nfkc, whitespace, label_normalized,
    /// label_mapped.
    pub modified: BTreeMap<String, u64>,
    /// Placeholders inserted, by type (EMAIL, PHONE, ...).
    pub redactions: BTreeMap<String, u64>,
    /// Labels of the written rows (label sets: each set, as written).
    pub label_counts: BTreeMap<String, u64>,
    /// Label sets: each label's rows and the rows by how many labels they carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_sets: Option<LabelSetCounts>,
    pub conflicts: ConflictReport,
    pub warnings: Vec<Warning>,
    pub warnings_total: u64,
}

/// What the written label sets hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelSetCounts {
    /// Rows carrying each label.
    pub labels: BTreeMap<String, u64>,
    /// Rows by the number of labels in their set (the number as a string key, as JSON and
    /// JavaScript objects have them).
    pub labels_per_row: BTreeMap<String, u64>,
    /// Distinct sets written.
    pub distinct_sets: usize,
}

impl LabelSetCounts {
    /// From the counts of each set (`label_counts`), whose labels are joined by `sep`.
    pub fn of(sets: &BTreeMap<String, u64>, sep: &str) -> LabelSetCounts {
        let mut c = LabelSetCounts { distinct_sets: sets.len(), ..Default::default() };
        for (set, &n) in sets {
            let labels: Vec<&str> = set.split(sep).filter(|l| !l.is_empty()).collect();
            *c.labels_per_row.entry(labels.len().to_string()).or_insert(0) += n;
            for l in labels {
                *c.labels.entry(l.to_string()).or_insert(0) += n;
            }
        }
        c
    }
}

impl Report {
    /// A few lines for a terminal: rows in and out, what was dropped, modified, redacted, the
    /// label conflicts and the first warning.
    pub fn summary(&self) -> String {
        let r = self;
        let mut s = format!("{}: {} rows in, {} out\n", r.source, r.rows_in, r.rows_out);
        let list = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
        if !r.dropped.is_empty() {
            s += &format!("  dropped: {}\n", list(&r.dropped));
        }
        if !r.modified.is_empty() {
            s += &format!("  modified: {}\n", list(&r.modified));
        }
        if !r.redactions.is_empty() {
            s += &format!("  redactions: {}\n", list(&r.redactions));
        }
        if let Some(sets) = &r.label_sets {
            let per_row = sets.labels_per_row.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
            s += &format!(
                "  label sets: {} distinct; rows by labels per row {per_row}; labels: {}\n",
                sets.distinct_sets,
                list(&sets.labels)
            );
        }
        if r.conflicts.groups > 0 {
            let c = &r.conflicts;
            s += &format!(
                "  label conflicts: {} groups ({} rows), {} relabelled, {} dropped\n",
                c.groups, c.rows, c.relabelled, c.dropped
            );
        }
        if r.warnings_total > 0 {
            s += &format!(
                "  warnings: {} (first: {})\n",
                r.warnings_total,
                r.warnings
                    .first()
                    .map(|w| match w.line {
                        Some(l) => format!("line {l}: {}", w.message),
                        None => w.message.clone(),
                    })
                    .unwrap_or_default()
            );
        }
        s
    }

    pub fn new(source: &str) -> Self {
        Report { source: source.to_string(), ..Default::default() }
    }

    pub fn drop_row(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_insert(0) += 1;
    }

    pub fn modified(&mut self, rule: &str) {
        *self.modified.entry(rule.to_string()).or_insert(0) += 1;
    }

    pub fn warn(&mut self, line: Option<u64>, message: impl Into<String>) {
        self.warnings_total += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning { line, message: message.into() });
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// The invariant every report keeps: each input row is written or counted as dropped.
    pub fn accounts_for_every_row(&self) -> bool {
        self.rows_in == self.rows_out + self.dropped_total()
    }
}
