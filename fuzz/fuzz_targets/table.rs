//! CSV/TSV/JSONL reading and the whole cleaning pipeline (rules, redaction, near-dedup, label
//! conflicts): any bytes give rows and a report, or an error — never a panic. The first byte
//! picks the format.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::data::redact::PiiType;
use savant_core::data::{clean_bytes, CleanOptions, DedupMode, Format};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let format = [Format::Csv, Format::Tsv, Format::Jsonl][pick as usize % 3];
    let opts = CleanOptions {
        dedup: if pick & 4 != 0 { DedupMode::Near } else { DedupMode::Exact },
        redact: if pick & 8 != 0 { PiiType::ALL.to_vec() } else { Vec::new() },
        label_column: if pick & 16 != 0 { None } else { Some("label".into()) },
        spreadsheet_safe: pick & 32 != 0,
        ..CleanOptions::default()
    };
    if let Ok((out, report)) = clean_bytes(input, format, format, opts, "fuzz") {
        assert!(report.accounts_for_every_row(), "{report:?}");
        let _ = out;
    }
});
