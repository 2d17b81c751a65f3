//! The self-contained HTML report: inline CSS and SVG only, no scripts, nothing fetched.

use super::classification as cls;
use super::input::Predictions;
use super::multilabel::{column, LabelSets, MultilabelReport};
use super::ranking::precision_recall_curve;
use super::report::{class_curves, EvalReport, ECE_BINS};
use super::svg::{confusion_heatmap, escape, label_heatmap, unit_square_plot, Series};
use std::fmt::Write;

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.4}"))
}

fn with_ci(r: &EvalReport, key: &str, v: Option<f64>) -> String {
    match r.confidence_intervals.get(key) {
        Some([lo, hi]) => format!("{} <small>[{lo:.4}, {hi:.4}]</small>", num(v)),
        None => num(v),
    }
}

/// One-vs-rest curves for each class (at most 12, so the legend stays readable).
fn curves(p: &Predictions, pr: bool) -> Vec<Series> {
    class_curves(p)
        .into_iter()
        .filter_map(|(name, c)| {
            let curve = if pr { c.pr } else { c.roc }?;
            Some(Series { name, points: curve.x.into_iter().zip(curve.y).collect() })
        })
        .take(12)
        .collect()
}

/// The report's warnings as a list (nothing when there are none).
fn warnings(list: &[String]) -> String {
    let mut h = String::new();
    if !list.is_empty() {
        h.push_str("<h2>Warnings</h2><ul>");
        for w in list {
            let _ = write!(h, "<li>{}</li>", escape(w));
        }
        h.push_str("</ul>");
    }
    h
}

/// The document around a report body: inline CSS, no scripts.
fn page(title: &str, body: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
         .plots{{display:flex;flex-wrap:wrap;gap:1em}}small{{color:#666}}pre{{background:#f6f6f6;padding:1em}}</style></head><body>\
         <h1>{t}</h1>",
        t = escape(title),
    );
    h.push_str(body);
    h.push_str("</body></html>\n");
    h
}

pub fn html_report(r: &EvalReport, p: &Predictions, title: &str) -> String {
    page(title, &report_body(r, p))
}

/// `savant eval --multi-label --html`: the summary, the per-label table with each label's
/// confusion counts, a heatmap of per-label F1, and the micro-averaged and per-label
/// precision–recall curves.
pub fn multilabel_html(r: &MultilabelReport, sets: &LabelSets, title: &str) -> String {
    page(title, &multilabel_body(r, sets))
}

/// [`multilabel_html`] without the document around it (for the page, as [`report_body`]).
pub fn multilabel_body(r: &MultilabelReport, sets: &LabelSets) -> String {
    let mut h = String::new();
    let k = r.labels.len();
    let _ = write!(h, "<p>{} rows, {k} labels; predicted sets from the {}.</p>", r.n, escape(r.predicted_by));
    h.push_str("<h2>Summary</h2><table><tr><th>metric</th><th>value</th></tr>");
    let some = |v: f64| Some(v);
    let rows: [(&str, Option<f64>); 23] = [
        ("f1_micro", some(r.f1_micro)),
        ("f1_macro", some(r.f1_macro)),
        ("f1_weighted", some(r.f1_weighted)),
        ("f1_samples", some(r.f1_samples)),
        ("precision_micro", some(r.precision_micro)),
        ("precision_macro", some(r.precision_macro)),
        ("precision_weighted", some(r.precision_weighted)),
        ("precision_samples", some(r.precision_samples)),
        ("recall_micro", some(r.recall_micro)),
        ("recall_macro", some(r.recall_macro)),
        ("recall_weighted", some(r.recall_weighted)),
        ("recall_samples", some(r.recall_samples)),
        ("subset_accuracy", r.subset_accuracy),
        ("hamming_loss", r.hamming_loss),
        ("jaccard_samples", some(r.jaccard_samples)),
        ("jaccard_macro", some(r.jaccard_macro)),
        ("roc_auc_micro", r.roc_auc_micro),
        ("roc_auc_macro", r.roc_auc_macro),
        ("average_precision_micro", r.average_precision_micro),
        ("average_precision_macro", r.average_precision_macro),
        ("label_ranking_average_precision", r.label_ranking_average_precision),
        ("coverage_error", r.coverage_error),
        ("label_ranking_loss", r.label_ranking_loss),
    ];
    for (key, v) in rows {
        let _ = write!(h, "<tr><td>{key}</td><td>{}</td></tr>", num(v));
    }
    h.push_str("</table><h2>Per label</h2><table><tr><th>label</th><th>precision</th><th>recall</th><th>f1</th><th>support</th><th>ROC AUC</th><th>average precision</th><th>tn</th><th>fp</th><th>fn</th><th>tp</th></tr>");
    for (l, cm) in r.per_label.iter().zip(&r.multilabel_confusion_matrix) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.label),
            num(Some(l.precision)),
            num(Some(l.recall)),
            num(Some(l.f1)),
            l.support,
            num(l.roc_auc),
            num(l.average_precision),
            cm[0][0],
            cm[0][1],
            cm[1][0],
            cm[1][1]
        );
    }
    h.push_str("</table><h2>Plots</h2><div class=\"plots\">");
    let f1: Vec<f64> = r.per_label.iter().map(|l| l.f1).collect();
    h.push_str(&label_heatmap("F1 per label", &r.labels, &f1));
    let column = |j: usize| (column(&sets.y_true, k, j), column(&sets.scores, k, j));
    let mut series = Vec::new();
    if let Some(c) = precision_recall_curve(&sets.y_true, &sets.scores) {
        series.push(Series { name: "micro-average".into(), points: c.x.into_iter().zip(c.y).collect() });
    }
    for j in 0..k.min(11) {
        let (t, s) = column(j);
        if let Some(c) = precision_recall_curve(&t, &s) {
            series.push(Series { name: r.labels[j].clone(), points: c.x.into_iter().zip(c.y).collect() });
        }
    }
    h.push_str(&unit_square_plot("Precision–recall", "recall", "precision", &series, false));
    h.push_str("</div>");
    h.push_str(&warnings(&r.warnings));
    h
}

/// The report without the document around it: summary, per-class table, plots (inline SVG),
/// sklearn's text report and warnings. No styles or scripts, so a page under a strict
/// Content-Security-Policy can insert it.
pub fn report_body(r: &EvalReport, p: &Predictions) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<p>{n} rows, {k} classes{ci}.</p>",
        n = r.n,
        k = r.classes.len(),
        ci = if r.confidence_intervals.is_empty() {
            String::new()
        } else {
            ", 95% bootstrap intervals in brackets".into()
        }
    );
    h.push_str("<h2>Summary</h2><table><tr><th>metric</th><th>value</th></tr>");
    let rows: [(&str, Option<f64>); 16] = [
        ("accuracy", r.accuracy),
        ("balanced_accuracy", r.balanced_accuracy),
        ("f1_macro", r.f1_macro),
        ("f1_weighted", r.f1_weighted),
        ("precision_macro", r.precision_macro),
        ("recall_macro", r.recall_macro),
        ("mcc", r.mcc),
        ("log_loss", r.log_loss),
        ("brier", r.brier),
        ("ece", r.ece),
        ("roc_auc_ovr_macro", r.roc_auc_ovr_macro),
        ("roc_auc_ovr_weighted", r.roc_auc_ovr_weighted),
        ("roc_auc_ovo_macro", r.roc_auc_ovo_macro),
        ("roc_auc_ovo_weighted", r.roc_auc_ovo_weighted),
        ("average_precision_macro", r.average_precision_macro),
        ("roc_auc", r.roc_auc.flatten()),
    ];
    for (key, v) in rows {
        if key == "roc_auc" && r.roc_auc.is_none() {
            continue;
        }
        let _ = write!(h, "<tr><td>{key}</td><td>{}</td></tr>", with_ci(r, key, v));
    }
    h.push_str("</table><h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>f1</th><th>support</th><th>ROC AUC</th><th>average precision</th></tr>");
    for (name, m) in &r.per_class {
        let key = |metric: &str| format!("per_class.{name}.{metric}");
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            with_ci(r, &key("precision"), m.precision),
            with_ci(r, &key("recall"), m.recall),
            with_ci(r, &key("f1"), m.f1),
            m.support,
            with_ci(r, &key("roc_auc"), m.roc_auc),
            with_ci(r, &key("average_precision"), m.average_precision),
        );
    }
    h.push_str("</table><h2>Plots</h2><div class=\"plots\">");
    h.push_str(&unit_square_plot(
        "ROC (one vs rest)",
        "false positive rate",
        "true positive rate",
        &curves(p, false),
        true,
    ));
    h.push_str(&unit_square_plot("Precision–recall", "recall", "precision", &curves(p, true), false));
    h.push_str(&confusion_heatmap("Confusion matrix", &r.classes, &r.confusion_matrix));
    let bins = cls::calibration_bins(&p.y_true, &p.scores, p.k(), ECE_BINS);
    let reliability = Series {
        name: "model".into(),
        points: bins.iter().filter_map(|b| Some((b.mean_confidence?, b.accuracy?))).collect(),
    };
    h.push_str(&unit_square_plot("Calibration (15 bins)", "mean confidence", "accuracy", &[reliability], true));
    h.push_str("</div><h2>Classification report</h2><pre>");
    h.push_str(&escape(&cls::classification_report(&r.classes, &r.confusion_matrix, 4)));
    h.push_str("</pre>");
    h.push_str(&warnings(&r.warnings));
    h
}
