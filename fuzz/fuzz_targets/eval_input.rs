//! `savant eval`'s input (a label column and prob_<class> columns) and the metrics report on it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::data::{Format, TableReader};
use savant_core::metrics::input::read_predictions;
use savant_core::metrics::report::{evaluate, EvalOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let format = if pick & 1 == 0 { Format::Csv } else { Format::Jsonl };
    let Ok(reader) = TableReader::new(input, format, "predictions") else { return };
    let Ok(preds) = read_predictions(reader, "label") else { return };
    let opts = EvalOptions { pos_label: None, bootstrap: (pick as usize >> 1) % 4, seed: 1, curves: pick & 2 != 0 };
    let _ = evaluate(&preds, &opts);
});
