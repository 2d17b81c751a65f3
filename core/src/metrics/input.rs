//! Reading predictions: a `label` column and one `prob_<class>` column per class, from any table
//! [`TableReader`] reads. Every value is checked; a bad one is an error naming its line and column
//! (an evaluation that silently skipped rows would report numbers for data nobody chose).

use crate::data::TableReader;
use crate::error::{Error, Location, Result};
use std::io::Read;

/// Predictions ready for the metrics: classes in `prob_` column order, true classes as indices,
/// scores row-major `n × k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub classes: Vec<String>,
    pub y_true: Vec<usize>,
    pub scores: Vec<f64>,
}

impl Predictions {
    pub fn n(&self) -> usize {
        self.y_true.len()
    }

    pub fn k(&self) -> usize {
        self.classes.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.scores[i * self.k()..(i + 1) * self.k()]
    }
}

pub const PROB_PREFIX: &str = "prob_";

/// Reads every row. `label_column` names the true class (values must match a `prob_` suffix).
pub fn read_predictions<R: Read>(mut reader: TableReader<R>, label_column: &str) -> Result<Predictions> {
    let source = reader.source_name().to_string();
    let at = |line| Location { source: source.clone(), line };
    let label_col = reader.column(label_column)?;
    let prob_cols: Vec<(usize, String)> = reader
        .header()
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix(PROB_PREFIX).map(|c| (i, c.to_string())))
        .collect();
    if prob_cols.is_empty() {
        return Err(Error::Invalid {
            at: at(Some(1)),
            message: format!(
                "no `{PROB_PREFIX}<class>` columns; expected one probability column per class besides '{label_column}' (the columns are: {})",
                reader.header().join(", ")
            ),
        });
    }
    let classes: Vec<String> = prob_cols.iter().map(|(_, c)| c.clone()).collect();
    let mut y_true = Vec::new();
    let mut scores = Vec::new();
    while let Some(row) = reader.next_row()? {
        let row = row.map_err(|m| Error::Invalid {
            at: at(Some(m.line)),
            message: format!("malformed row ({}): {}", m.kind, m.message),
        })?;
        let label = row.fields[label_col].trim();
        let Some(class) = classes.iter().position(|c| c == label) else {
            return Err(Error::Invalid {
                at: at(Some(row.line)),
                message: format!(
                    "label '{label}' has no `{PROB_PREFIX}{label}` column (classes: {})",
                    classes.join(", ")
                ),
            });
        };
        y_true.push(class);
        for (col, class) in &prob_cols {
            let raw = row.fields[*col].trim();
            let value: f64 = raw.parse().map_err(|_| Error::Invalid {
                at: at(Some(row.line)),
                message: format!("column '{PROB_PREFIX}{class}': '{raw}' is not a number"),
            })?;
            if !value.is_finite() || value < 0.0 {
                return Err(Error::Invalid {
                    at: at(Some(row.line)),
                    message: format!("column '{PROB_PREFIX}{class}': {raw} is not a finite, non-negative probability"),
                });
            }
            scores.push(value);
        }
    }
    match y_true.len() {
        0 => Err(Error::NoRows(at(None))),
        1 => Err(Error::Invalid { at: at(None), message: "only one row: metrics need at least two".into() }),
        _ => Ok(Predictions { classes, y_true, scores }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Format;

    fn read(s: &str) -> Result<Predictions> {
        read_predictions(TableReader::new(s.as_bytes(), Format::Csv, "p.csv")?, "label")
    }

    #[test]
    fn reads_classes_in_column_order() {
        let p = read("id,label,prob_b,prob_a\n1,a,0.2,0.8\n2,b,0.6,0.4\n").unwrap();
        assert_eq!(p.classes, ["b", "a"]);
        assert_eq!(p.y_true, [1, 0]);
        assert_eq!(p.row(1), [0.6, 0.4]);
    }

    #[test]
    fn bad_values_name_line_and_column() {
        for (csv, want) in [
            ("label,prob_a,prob_b\na,NaN,1\nb,0,1\n", "p.csv:2: column 'prob_a': NaN is not a finite"),
            ("label,prob_a,prob_b\na,0.5,0.5\nb,inf,1\n", "p.csv:3: column 'prob_a': inf is not a finite"),
            ("label,prob_a,prob_b\na,0.5,-0.1\nb,0,1\n", "p.csv:2: column 'prob_b': -0.1 is not a finite"),
            ("label,prob_a,prob_b\na,x,1\nb,0,1\n", "p.csv:2: column 'prob_a': 'x' is not a number"),
            ("label,prob_a,prob_b\nc,0.5,0.5\nb,0,1\n", "p.csv:2: label 'c' has no `prob_c` column"),
            ("label,score\na,0.5\n", "no `prob_<class>` columns"),
            ("label,prob_a\na,1\n", "only one row"),
            ("label,prob_a\n", "no data rows"),
            ("text,prob_a\nx,1\n", "no column named 'label'"),
        ] {
            let e = read(csv).unwrap_err().to_string();
            assert!(e.contains(want), "{csv:?}: {e}");
        }
    }
}
