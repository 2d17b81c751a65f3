//! Times savant's multi-label metrics (`savant eval --multi-label`'s, without file parsing) on
//! raw arrays written by `bench/eval_multilabel_vs_sklearn.py`. Prints one JSON line.
//!
//!     cargo run --release -p savant-core --example multilabel_timing -- DIR
//!
//! DIR holds `meta.json` (`{"n": rows, "k": labels}`), `y_true.u8`, `y_pred.u8` (n × k, 0/1)
//! and `scores.f64` (n × k), little-endian.

use savant_core::metrics::multilabel::{evaluate, LabelSets};
use std::time::Instant;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: multilabel_timing DIR"));
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let meta: serde_json::Value = serde_json::from_slice(&read("meta.json")).expect("meta.json");
    let k = meta["k"].as_u64().expect("k") as usize;
    let y_true: Vec<bool> = read("y_true.u8").into_iter().map(|b| b != 0).collect();
    let y_pred: Vec<bool> = read("y_pred.u8").into_iter().map(|b| b != 0).collect();
    let scores: Vec<f64> =
        read("scores.f64").chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
    let sets = LabelSets {
        labels: (0..k).map(|j| format!("l{j}")).collect(),
        y_true,
        scores,
        y_pred,
        predicted_by: "pred column",
        warnings: Vec::new(),
    };
    let mut best = f64::INFINITY;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        report = Some(evaluate(&sets));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let r = report.expect("ran");
    let out = serde_json::json!({
        "seconds": best,
        "f1_micro": r.f1_micro, "f1_macro": r.f1_macro, "f1_samples": r.f1_samples,
        "subset_accuracy": r.subset_accuracy, "hamming_loss": r.hamming_loss, "jaccard_samples": r.jaccard_samples,
        "roc_auc_macro": r.roc_auc_macro, "roc_auc_micro": r.roc_auc_micro,
        "average_precision_macro": r.average_precision_macro, "average_precision_micro": r.average_precision_micro,
        "label_ranking_average_precision": r.label_ranking_average_precision,
        "coverage_error": r.coverage_error, "label_ranking_loss": r.label_ranking_loss,
    });
    println!("{out}");
}
