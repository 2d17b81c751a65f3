//! Checks `savant_core::metrics::classification` against scikit-learn's results in
//! `tests/fixtures/metrics/classification.json` (made by `classification_fixtures.py` there).

use savant_core::metrics::classification::*;
use serde_json::Value;

const TOL: f64 = 1e-12;

fn close(a: f64, b: f64) -> bool {
    let scale = a.abs().max(b.abs());
    if scale < 1e-3 {
        (a - b).abs() <= TOL
    } else {
        (a - b).abs() <= TOL * scale
    }
}

struct Checker {
    failures: Vec<String>,
}

impl Checker {
    fn opt(&mut self, case: &str, what: &str, got: Option<f64>, want: &Value) {
        let ok = match (got, want.as_f64()) {
            (None, None) => want.is_null(),
            (Some(g), Some(w)) => close(g, w),
            _ => false,
        };
        if !ok {
            self.failures.push(format!("{case}: {what}: got {got:?}, want {want}"));
        }
    }

    fn val(&mut self, case: &str, what: &str, got: f64, want: &Value) {
        self.opt(case, what, Some(got), want);
    }

    fn vec(&mut self, case: &str, what: &str, got: &[f64], want: &Value) {
        let want = want.as_array().unwrap();
        if got.len() != want.len() {
            self.failures.push(format!("{case}: {what}: length {} vs {}", got.len(), want.len()));
            return;
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            self.val(case, &format!("{what}[{i}]"), *g, w);
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, case: &str, what: &str, got: T, want: T) {
        if got != want {
            self.failures.push(format!("{case}: {what}:\n got {got:?}\nwant {want:?}"));
        }
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

#[test]
fn matches_sklearn_fixtures() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/metrics/classification.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() > 100);
    let mut ck = Checker { failures: Vec::new() };
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let e = &c["expected"];
        let k = c["k"].as_u64().unwrap() as usize;
        let y_true = usizes(&c["y_true"]);
        let y_pred = usizes(&c["y_pred"]);
        let scores = floats(&c["scores"]);
        let probs = floats(&c["probs"]);
        let names = strings(&c["names"]);
        let digits = c["digits"].as_u64().unwrap() as usize;
        let bins = c["bins"].as_u64().unwrap() as usize;

        ck.eq(name, "argmax", argmax_predictions(&scores, k), usizes(&e["argmax"]));
        let cm = confusion_matrix(&y_true, &y_pred, k);
        let want_cm: Vec<Vec<u64>> = e["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect())
            .collect();
        ck.eq(name, "confusion", &cm, &want_cm);
        ck.opt(name, "accuracy", accuracy(&cm), &e["accuracy"]);
        ck.opt(name, "balanced_accuracy", balanced_accuracy(&cm), &e["balanced_accuracy"]);
        for (t, want) in e["top_k"].as_object().unwrap() {
            let top: usize = t.parse().unwrap();
            ck.opt(name, &format!("top_{top}"), top_k_accuracy(&y_true, &scores, k, top), want);
        }
        for (zd, key) in [(0.0, "prf0"), (1.0, "prf1")] {
            let (s, a) = precision_recall_f1(&cm, zd);
            let w = &e[key];
            ck.vec(name, &format!("{key}.precision"), &s.precision, &w["precision"]);
            ck.vec(name, &format!("{key}.recall"), &s.recall, &w["recall"]);
            ck.vec(name, &format!("{key}.f1"), &s.f1, &w["f1"]);
            let sup: Vec<u64> = w["support"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            ck.eq(name, &format!("{key}.support"), &s.support, &sup);
            ck.eq(name, &format!("{key}.warnings"), &s.zero_division_warnings, &strings(&w["warnings"]));
            ck.vec(name, &format!("{key}.micro"), &[a.micro_precision, a.micro_recall, a.micro_f1], &w["micro"]);
            ck.vec(name, &format!("{key}.macro"), &[a.macro_precision, a.macro_recall, a.macro_f1], &w["macro"]);
            ck.vec(
                name,
                &format!("{key}.weighted"),
                &[a.weighted_precision, a.weighted_recall, a.weighted_f1],
                &w["weighted"],
            );
        }
        if k == 2 {
            for (zd, key) in [(0.0, "binary0"), (1.0, "binary1")] {
                let b = binary_precision_recall_f1(&cm, 1, zd).unwrap();
                let w = &e[key];
                ck.val(name, &format!("{key}.precision"), b.precision, &w["precision"]);
                ck.val(name, &format!("{key}.recall"), b.recall, &w["recall"]);
                ck.val(name, &format!("{key}.f1"), b.f1, &w["f1"]);
                ck.eq(name, &format!("{key}.warnings"), &b.zero_division_warnings, &strings(&w["warnings"]));
            }
        }
        ck.opt(name, "mcc", matthews_corrcoef(&cm), &e["mcc"]);
        ck.opt(name, "log_loss", log_loss(&y_true, &probs, k), &e["log_loss"]);
        ck.opt(name, "brier", brier(&y_true, &probs, k), &e["brier"]);
        ck.opt(name, "ece", expected_calibration_error(&y_true, &probs, k, bins), &e["ece"]);
        let table = calibration_bins(&y_true, &probs, k, bins);
        let want_table = e["calibration_bins"].as_array().unwrap();
        if table.len() != want_table.len() {
            ck.failures.push(format!("{name}: calibration_bins: {} vs {} bins", table.len(), want_table.len()));
        } else {
            for (i, (b, w)) in table.iter().zip(want_table).enumerate() {
                ck.val(name, &format!("bin{i}.lower"), b.lower, &w[0]);
                ck.val(name, &format!("bin{i}.upper"), b.upper, &w[1]);
                ck.eq(name, &format!("bin{i}.count"), b.count, w[2].as_u64().unwrap());
                ck.opt(name, &format!("bin{i}.mean_confidence"), b.mean_confidence, &w[3]);
                ck.opt(name, &format!("bin{i}.accuracy"), b.accuracy, &w[4]);
            }
        }
        ck.eq(name, "report", classification_report(&names, &cm, digits), e["report"].as_str().unwrap().to_string());
    }
    if !ck.failures.is_empty() {
        let shown: Vec<&String> = ck.failures.iter().take(40).collect();
        panic!("{} mismatches; first ones:\n{:#?}", ck.failures.len(), shown);
    }
}
