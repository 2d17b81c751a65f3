//! Checks `savant_core::metrics::multilabel` against scikit-learn's results in
//! `tests/fixtures/metrics/multilabel.json` (made by `multilabel_fixtures.py` there).

use savant_core::metrics::multilabel::*;
use serde_json::Value;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn check(failures: &mut Vec<String>, case: &str, what: &str, got: Option<f64>, want: &Value) {
    let ok = match (got, want.as_f64()) {
        (None, None) => true,
        (Some(g), Some(w)) => close(g, w),
        _ => false,
    };
    if !ok {
        failures.push(format!("{case}: {what}: got {got:?}, want {want}"));
    }
}

#[test]
fn multilabel_metrics_equal_scikit_learns() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/metrics/multilabel.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut failures = Vec::new();
    for c in fixture["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let k = c["k"].as_u64().unwrap() as usize;
        let bools = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() == 1).collect::<Vec<bool>>();
        let (y_true, y_pred) = (bools(&c["y_true"]), bools(&c["y_pred"]));
        let scores: Vec<f64> = c["scores"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let e = &c["expected"];
        let mut check = |what: &str, got: Option<f64>, want: &Value| check(&mut failures, name, what, got, want);

        let prf = precision_recall_f1(&y_true, &y_pred, k);
        for (j, p) in prf.per_label.iter().enumerate() {
            check(&format!("precision[{j}]"), Some(p.precision), &e["per_label"]["precision"][j]);
            check(&format!("recall[{j}]"), Some(p.recall), &e["per_label"]["recall"][j]);
            check(&format!("f1[{j}]"), Some(p.f1), &e["per_label"]["f1"][j]);
            check(&format!("support[{j}]"), Some(prf.support[j] as f64), &e["per_label"]["support"][j]);
        }
        for (avg, got) in
            [("micro", prf.micro), ("macro", prf.macro_avg), ("weighted", prf.weighted), ("samples", prf.samples)]
        {
            check(&format!("precision_{avg}"), Some(got.precision), &e[avg]["precision"]);
            check(&format!("recall_{avg}"), Some(got.recall), &e[avg]["recall"]);
            check(&format!("f1_{avg}"), Some(got.f1), &e[avg]["f1"]);
        }
        check("subset_accuracy", subset_accuracy(&y_true, &y_pred, k), &e["subset_accuracy"]);
        check("hamming_loss", hamming_loss(&y_true, &y_pred), &e["hamming_loss"]);
        let (samples, labels) = jaccard(&y_true, &y_pred, k);
        check("jaccard_samples", Some(samples), &e["jaccard_samples"]);
        check("jaccard_macro", Some(labels), &e["jaccard_macro"]);
        let (per, macro_avg, micro) = roc_auc(&y_true, &scores, k);
        for (j, v) in per.iter().enumerate() {
            check(&format!("roc_auc[{j}]"), *v, &e["roc_auc_per_label"][j]);
        }
        check("roc_auc_macro", macro_avg, &e["roc_auc_macro"]);
        check("roc_auc_micro", micro, &e["roc_auc_micro"]);
        let (per, macro_avg, micro) = average_precisions(&y_true, &scores, k);
        for (j, v) in per.iter().enumerate() {
            check(&format!("ap[{j}]"), *v, &e["ap_per_label"][j]);
        }
        check("ap_macro", macro_avg, &e["ap_macro"]);
        check("ap_micro", micro, &e["ap_micro"]);
        check("lrap", label_ranking_average_precision(&y_true, &scores, k), &e["label_ranking_average_precision"]);
        check("coverage_error", coverage_error(&y_true, &scores, k), &e["coverage_error"]);
        check("label_ranking_loss", label_ranking_loss(&y_true, &scores, k), &e["label_ranking_loss"]);
        let mcm = multilabel_confusion_matrix(&y_true, &y_pred, k);
        let want: Vec<[[u64; 2]; 2]> = serde_json::from_value(e["multilabel_confusion_matrix"].clone()).unwrap();
        if mcm != want {
            failures.push(format!("{name}: multilabel_confusion_matrix: got {mcm:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}
