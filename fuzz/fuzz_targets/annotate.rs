//! The annotator's table: any bytes load as rows to label (or an error), and the export of the
//! loaded labels reads back to the same rows and labels.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::annotate::AnnotationTable;
use savant_core::data::Format;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let format = [Format::Csv, Format::Tsv, Format::Jsonl][pick as usize % 3];
    let Ok(table) = AnnotationTable::load(input, format, "fuzz", "text", "label", &[]) else { return };
    let Ok(out) = table.export(&table.marks, format, false, false) else { return };
    let back = AnnotationTable::load(&out, format, "export", "text", "label", &[]).expect("our own export reads back");
    assert_eq!(back.marks.len(), table.marks.len());
});
