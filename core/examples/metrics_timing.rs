//! Times savant's metrics on raw arrays written by `bench/eval_vs_sklearn.py` (so both sides
//! compute on the same numbers, in memory, without file parsing). Prints one JSON line.
//!
//!     cargo run --release -p savant-core --example metrics_timing -- DIR
//!
//! DIR holds `y_binary.u32`, `s_binary.f64` (n), `y_multi.u32`, `s_multi.f64` (n × 10),
//! little-endian.

use savant_core::metrics::input::Predictions;
use savant_core::metrics::ranking::{roc_auc_binary, roc_auc_ovr};
use savant_core::metrics::report::evaluate_point;
use std::time::Instant;

fn read_u32(path: &std::path::Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize).collect()
}

fn read_f64(path: &std::path::Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// Best of three, in seconds, and the value.
fn time<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..3 {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("ran"))
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: metrics_timing DIR"));
    let yb = read_u32(&dir.join("y_binary.u32"));
    let sb = read_f64(&dir.join("s_binary.f64"));
    let positive: Vec<bool> = yb.iter().map(|&y| y == 1).collect();
    let ym = read_u32(&dir.join("y_multi.u32"));
    let sm = read_f64(&dir.join("s_multi.f64"));
    let k = sm.len() / ym.len();

    let (t_bin, auc_bin) = time(|| roc_auc_binary(&positive, &sb));
    let (t_ovr, auc_ovr) = time(|| roc_auc_ovr(&ym, &sm, k, false));
    let preds = Predictions { classes: (0..k).map(|c| format!("c{c}")).collect(), y_true: ym, scores: sm };
    let (t_full, report) = time(|| evaluate_point(&preds, None));
    println!(
        "{{\"n\": {}, \"k\": {k}, \"roc_auc_binary_s\": {t_bin}, \"roc_auc_binary\": {}, \"roc_auc_ovr_s\": {t_ovr}, \"roc_auc_ovr_macro\": {}, \"full_report_s\": {t_full}, \"accuracy\": {}}}",
        positive.len(),
        auc_bin.unwrap_or(f64::NAN),
        auc_ovr.unwrap_or(f64::NAN),
        report.accuracy.unwrap_or(f64::NAN)
    );
}
