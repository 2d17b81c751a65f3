//! `savant eval`'s input (a label column and prob_<class> columns) and the metrics report on it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| savant_fuzz::eval_input(data));
