//! Labelling by hand (the page's annotator): the table a user labels, the label set, the file
//! exported for `savant clean` (and read back to continue), and the order in which a model asks
//! for labels — the rows it is least sure of first.
//!
//! The page keeps the work (in IndexedDB) and draws it; everything it decides is here, so the
//! export a user trains on is the same whichever shell made it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::redact::{PiiType, Redactor};
use crate::data::{Format, TableReader, TableWriter};
use crate::probe::LinearProbe;
use crate::{Error, Result};

/// Who labelled a row, in the export.
pub const LABELLED_BY: &str = "labelled_by";
/// When (ISO 8601, as the page's clock gives it), in the export.
pub const LABELLED_AT: &str = "labelled_at";

/// One row's label and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub label: String,
    pub by: String,
    pub at: String,
}

/// A table loaded for labelling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnnotationTable {
    /// The file's columns without the label metadata; the label column last when the file had none.
    pub columns: Vec<String>,
    pub text_column: String,
    pub label_column: String,
    /// Fields aligned with `columns`, the label's left empty; the text is redacted when asked,
    /// so what the user sees is what is exported.
    pub rows: Vec<Vec<String>>,
    /// Each row's label from the file (a partly labelled file continues where it stopped).
    pub marks: Vec<Option<Mark>>,
    /// Distinct labels already in the file, sorted.
    pub labels_found: Vec<String>,
    /// Records that could not be read as rows, with their line and why: counted, not loaded.
    pub malformed: Vec<(u64, String)>,
    /// Identifiers replaced in the text column, by type.
    pub redactions: BTreeMap<String, u64>,
}

impl AnnotationTable {
    /// Reads `input` for labelling. The label column may be missing (added, empty), partly filled
    /// (those rows count as labelled) or one of ours, with `labelled_by` / `labelled_at`.
    pub fn load(
        input: &[u8],
        format: Format,
        source: &str,
        text_column: &str,
        label_column: &str,
        redact: &[PiiType],
    ) -> Result<AnnotationTable> {
        if text_column == label_column {
            return Err(Error::invalid(source, None, format!("the text and label columns are both '{text_column}'")));
        }
        let mut reader = TableReader::new(input, format, source)?;
        let header = reader.header().to_vec();
        let text_at = reader.column(text_column)?;
        let find = |name: &str| header.iter().position(|c| c == name);
        let (label_at, by_at, at_at) = (find(label_column), find(LABELLED_BY), find(LABELLED_AT));
        let kept: Vec<usize> = (0..header.len()).filter(|&i| Some(i) != by_at && Some(i) != at_at).collect();
        let mut columns: Vec<String> = kept.iter().map(|&i| header[i].clone()).collect();
        if label_at.is_none() {
            columns.push(label_column.to_string());
        }
        let redactor = (!redact.is_empty()).then(|| Redactor::new(redact));
        let mut counts = BTreeMap::new();
        let (mut rows, mut marks, mut malformed) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(row) = reader.next_row()? {
            let row = match row {
                Ok(row) => row,
                Err(m) => {
                    malformed.push((m.line, m.kind.to_string()));
                    continue;
                }
            };
            let mut fields: Vec<String> = kept.iter().map(|&i| row.fields[i].clone()).collect();
            if let Some(r) = &redactor {
                let at = kept.iter().position(|&i| i == text_at).expect("the text column is kept");
                fields[at] = r.redact(&fields[at], &mut counts).into_owned();
            }
            let label = label_at.map_or("", |i| row.fields[i].trim());
            marks.push((!label.is_empty()).then(|| Mark {
                label: label.to_string(),
                by: by_at.map_or("", |i| row.fields[i].trim()).to_string(),
                at: at_at.map_or("", |i| row.fields[i].trim()).to_string(),
            }));
            // The label lives in `marks`; the field is filled from them on export.
            match label_at.and_then(|i| kept.iter().position(|&k| k == i)) {
                Some(at) => fields[at].clear(),
                None => fields.push(String::new()),
            }
            rows.push(fields);
        }
        if rows.is_empty() {
            return Err(Error::invalid(source, None, "no rows to label"));
        }
        let mut labels_found: Vec<String> = marks.iter().flatten().map(|m| m.label.clone()).collect();
        labels_found.sort();
        labels_found.dedup();
        Ok(AnnotationTable {
            columns,
            text_column: text_column.to_string(),
            label_column: label_column.to_string(),
            rows,
            marks,
            labels_found,
            malformed,
            redactions: counts.into_iter().map(|(t, n)| (t.name().to_string(), n)).collect(),
        })
    }

    /// The labelled rows (or every row, `labelled_only == false`, to continue elsewhere) in
    /// `format`: the table's columns with the label filled in, then `labelled_by` and
    /// `labelled_at`. `marks` are the current labels, one per row. `spreadsheet_safe`: CSV cells
    /// a spreadsheet would run as formulas are written as text.
    pub fn export(
        &self,
        marks: &[Option<Mark>],
        format: Format,
        labelled_only: bool,
        spreadsheet_safe: bool,
    ) -> Result<Vec<u8>> {
        if marks.len() != self.rows.len() {
            return Err(Error::invalid(
                "annotations",
                None,
                format!("{} labels for {} rows", marks.len(), self.rows.len()),
            ));
        }
        let label_at =
            self.columns.iter().position(|c| *c == self.label_column).ok_or_else(|| {
                Error::invalid("annotations", None, format!("no column named '{}'", self.label_column))
            })?;
        let mut header = self.columns.clone();
        header.extend([LABELLED_BY.to_string(), LABELLED_AT.to_string()]);
        let mut out = TableWriter::new(Vec::new(), format, &header)?.spreadsheet_safe(spreadsheet_safe);
        for (fields, mark) in self.rows.iter().zip(marks) {
            if labelled_only && mark.is_none() {
                continue;
            }
            let mut fields = fields.clone();
            let (label, by, at) = mark.as_ref().map_or(("", "", ""), |m| (&*m.label, &*m.by, &*m.at));
            fields[label_at] = label.to_string();
            fields.extend([by.to_string(), at.to_string()]);
            out.write(&fields)?;
        }
        out.finish()
    }
}

/// The labels a user labels with, in the order given (keys 1–9 pick the first nine): names
/// trimmed, none empty, none twice, and at least two — a classifier cannot learn one.
pub fn label_set(names: &[String]) -> Result<Vec<String>> {
    let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(Error::invalid("label set", None, "a label name is empty"));
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(Error::invalid("label set", None, format!("'{n}' is given twice")));
        }
    }
    match names.len() {
        0 => Err(Error::invalid("label set", None, "no labels: give two or more")),
        1 => Err(Error::invalid(
            "label set",
            None,
            format!("only one label ('{}'): a classifier needs two or more to tell apart", names[0]),
        )),
        _ => Ok(names),
    }
}

/// Shannon entropy (nats) of a probability vector: 0 when sure, ln(k) when uniform over k.
pub fn entropy(p: &[f32]) -> f64 {
    p.iter().filter(|&&x| x > 0.0).map(|&x| -(x as f64) * (x as f64).ln()).sum()
}

/// A row the model is unsure of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uncertain {
    pub row: usize,
    pub entropy: f64,
    /// The class it would pick, an index into the label set.
    pub predicted: usize,
}

/// Active learning's order: a logistic-regression head (the linear probe's) fitted on the rows
/// labelled so far (`labelled`: row, class) over frozen sentence vectors (`embeddings`, one per
/// row of the table, `dim` wide), then `unlabelled` rows by the entropy of its probabilities,
/// most uncertain first (ties: table order). Needs labels of two classes or more.
pub fn most_uncertain_first(
    embeddings: &[f32],
    dim: usize,
    labelled: &[(usize, usize)],
    classes: usize,
    unlabelled: &[usize],
) -> Result<Vec<Uncertain>> {
    let rows = embeddings.len().checked_div(dim).unwrap_or(0);
    if dim == 0 || embeddings.len() != rows * dim {
        return Err(Error::invalid("embeddings", None, format!("{} values are not rows of {dim}", embeddings.len())));
    }
    let out_of_range = labelled.iter().map(|l| l.0).chain(unlabelled.iter().copied()).find(|&r| r >= rows);
    if let Some(r) = out_of_range {
        return Err(Error::invalid("embeddings", None, format!("row {r} of {rows}")));
    }
    if let Some(&(r, c)) = labelled.iter().find(|l| l.1 >= classes) {
        return Err(Error::invalid("annotations", None, format!("row {r} has class {c} of {classes}")));
    }
    let mut seen: Vec<usize> = labelled.iter().map(|l| l.1).collect();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() < 2 {
        return Err(Error::invalid(
            "annotations",
            None,
            format!("{} class(es) labelled so far: label rows of two classes or more first", seen.len()),
        ));
    }
    let gather = |rows: &mut dyn Iterator<Item = usize>| -> Vec<f32> {
        rows.flat_map(|r| embeddings[r * dim..(r + 1) * dim].iter().copied()).collect()
    };
    let x = gather(&mut labelled.iter().map(|l| l.0));
    let y: Vec<usize> = labelled.iter().map(|l| l.1).collect();
    let head = LinearProbe::fit(&x, dim, &y, classes, 1.0, 300);
    let probs = head.probabilities(&gather(&mut unlabelled.iter().copied()));
    let mut order: Vec<Uncertain> = unlabelled
        .iter()
        .zip(probs.chunks_exact(classes))
        .map(|(&row, p)| Uncertain {
            row,
            entropy: entropy(p),
            predicted: (0..classes).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0),
        })
        .collect();
    order.sort_by(|a, b| b.entropy.total_cmp(&a.entropy).then(a.row.cmp(&b.row)));
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(label: &str) -> Option<Mark> {
        Some(Mark { label: label.into(), by: "ann".into(), at: "2026-11-29T10:00:00Z".into() })
    }

    #[test]
    fn a_partly_labelled_file_loads_exports_and_loads_back_the_same() {
        let input = b"id,note\n1,call me at 555-123-4567\n2,fine\n3,\"bad, really\"\n4\n";
        let t = AnnotationTable::load(input, Format::Csv, "notes.csv", "note", "label", &PiiType::ALL).unwrap();
        assert_eq!(t.columns, ["id", "note", "label"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0][1], "call me at [PHONE]");
        assert_eq!(t.redactions["PHONE"], 1);
        assert_eq!(t.malformed, [(5, "ragged".to_string())]);
        assert!(t.marks.iter().all(Option::is_none));
        let marks = vec![mark("pos"), None, mark("neg")];
        let out = t.export(&marks, Format::Csv, true, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,note,label,labelled_by,labelled_at\n1,call me at [PHONE],pos,ann,2026-11-29T10:00:00Z\n3,\"bad, really\",neg,ann,2026-11-29T10:00:00Z\n"
        );
        // Every row, to continue later: read back with the same labels and metadata.
        let all = t.export(&marks, Format::Jsonl, false, false).unwrap();
        let back = AnnotationTable::load(&all, Format::Jsonl, "all.jsonl", "note", "label", &[]).unwrap();
        assert_eq!(back.columns, t.columns);
        assert_eq!(back.rows, t.rows);
        assert_eq!(back.marks, marks);
        assert_eq!(back.labels_found, ["neg", "pos"]);
        assert!(t.export(&marks[..2], Format::Csv, true, false).is_err());
        // A formula in a cell is written as text when asked.
        let evil =
            AnnotationTable::load(b"text\n=HYPERLINK(\"http://x\")\n", Format::Csv, "e.csv", "text", "label", &[])
                .unwrap();
        let out = evil.export(&[mark("pos")], Format::Csv, true, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "text,label,labelled_by,labelled_at\n\"'=HYPERLINK(\"\"http://x\"\")\",pos,ann,2026-11-29T10:00:00Z\n"
        );
    }

    #[test]
    fn bad_tables_and_label_sets_say_what_is_wrong() {
        let e = AnnotationTable::load(b"text\n", Format::Csv, "empty.csv", "text", "label", &[]).unwrap_err();
        assert!(e.to_string().contains("empty.csv") && e.to_string().contains("no rows"), "{e}");
        let e = AnnotationTable::load(b"a\nx\n", Format::Csv, "t.csv", "text", "label", &[]).unwrap_err();
        assert!(e.to_string().contains("no column named 'text'"), "{e}");
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(label_set(&names(&[" a ", "b"])).unwrap(), ["a", "b"]);
        assert!(label_set(&names(&["only"])).unwrap_err().to_string().contains("only one label ('only')"));
        assert!(label_set(&names(&["a", "a"])).unwrap_err().to_string().contains("'a' is given twice"));
        assert!(label_set(&names(&["a", " "])).is_err());
        assert!(label_set(&[]).is_err());
    }

    #[test]
    fn entropy_matches_its_definition() {
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
        assert!((entropy(&[0.5, 0.5]) - std::f64::consts::LN_2).abs() < 1e-12);
        // scipy.stats.entropy([0.2, 0.3, 0.5]) = 1.0296530140645737
        assert!((entropy(&[0.2, 0.3, 0.5]) - 1.0296530140645737).abs() < 1e-7);
    }

    #[test]
    fn rows_between_the_classes_come_first() {
        // Two classes on a line: labelled ends at -3 and +3; unlabelled rows at -2.5, 0.1, 2.5.
        let points = [-3.0f32, -2.9, 3.0, 2.9, -2.5, 0.1, 2.5];
        let embeddings: Vec<f32> = points.iter().flat_map(|&p| [p, 1.0]).collect();
        let order = most_uncertain_first(&embeddings, 2, &[(0, 0), (1, 0), (2, 1), (3, 1)], 2, &[4, 5, 6]).unwrap();
        assert_eq!(order[0].row, 5, "{order:?}");
        assert!(order[0].entropy > order[1].entropy && order[1].entropy > 0.0);
        let predicted: BTreeMap<usize, usize> = order.iter().map(|u| (u.row, u.predicted)).collect();
        assert_eq!((predicted[&4], predicted[&6]), (0, 1));
        let e = most_uncertain_first(&embeddings, 2, &[(0, 0), (1, 0)], 2, &[4]).unwrap_err();
        assert!(e.to_string().contains("1 class(es) labelled"), "{e}");
        assert!(most_uncertain_first(&embeddings, 2, &[(0, 0), (9, 1)], 2, &[4]).is_err());
        assert!(most_uncertain_first(&embeddings[..3], 2, &[(0, 0), (1, 1)], 2, &[]).is_err());
    }
}
