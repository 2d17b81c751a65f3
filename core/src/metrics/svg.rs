//! Plots as self-contained SVG strings: the HTML report embeds them and the page can insert the
//! same markup. No fonts, scripts or external references; deterministic output.

use std::fmt::Write;

/// One named polyline.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const W: f64 = 420.0;
const H: f64 = 340.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 44.0;
/// Colour-blind-friendly palette (Okabe–Ito), repeated for more series.
const COLOURS: [&str; 8] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn header(out: &mut String, title: &str, width: f64, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{t}" font-family="sans-serif" font-size="11"><title>{t}</title><text x="{x}" y="18" text-anchor="middle" font-size="13">{t}</text>"#,
        t = escape(title),
        x = width / 2.0
    );
}

/// Curves on the unit square (ROC, precision–recall, reliability), with axes, ticks and a legend.
/// `diagonal` draws the chance/perfect-calibration line.
pub fn unit_square_plot(title: &str, x_label: &str, y_label: &str, series: &[Series], diagonal: bool) -> String {
    plot(title, x_label, y_label, series, (0.0, 1.0), (0.0, 1.0), diagonal)
}

/// Curves over the range their points span (training loss per step, a metric per epoch), with
/// axes, ticks and a legend.
pub fn line_plot(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let span = |pick: fn(&(f64, f64)) -> f64| {
        let values = series.iter().flat_map(|s| s.points.iter().map(pick)).filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        match (lo.is_finite(), hi > lo) {
            (true, true) => (lo, hi),
            (true, false) => (lo - 0.5, lo + 0.5),
            _ => (0.0, 1.0),
        }
    };
    let (y0, y1) = span(|p| p.1);
    // Some air above and below, and a floor at 0 when the values are near it (a loss).
    let pad = (y1 - y0) * 0.05;
    let y0 = if y0 >= 0.0 && y0 - pad < 0.0 { 0.0 } else { y0 - pad };
    plot(title, x_label, y_label, series, span(|p| p.0), (y0, y1 + pad), false)
}

fn plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    diagonal: bool,
) -> String {
    let mut s = String::new();
    header(&mut s, title, W, H);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + ((x - x0) / (x1 - x0)).clamp(0.0, 1.0) * pw;
    let py = |y: f64| TOP + (1.0 - ((y - y0) / (y1 - y0)).clamp(0.0, 1.0)) * ph;
    // Enough decimals to tell the 5 tick steps apart (1 on the unit square, 0 for step counts).
    let tick = |v: f64, span: f64| {
        let decimals = if span > 0.0 { (-(span / 5.0).log10()).ceil().clamp(0.0, 6.0) as usize } else { 2 };
        format!("{v:.decimals$}")
    };
    let _ = write!(s, r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##);
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let (xv, yv) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="{ya}" x2="{x}" y2="{yb}" stroke="#eee"/><text x="{x}" y="{ty}" text-anchor="middle">{xt}</text><line x1="{LEFT}" y1="{y}" x2="{x2}" y2="{y}" stroke="#eee"/><text x="{tx}" y="{yt}" text-anchor="end">{ytick}</text>"##,
            x = px(xv),
            ya = TOP,
            yb = TOP + ph,
            ty = TOP + ph + 14.0,
            xt = tick(xv, x1 - x0),
            y = py(yv),
            x2 = LEFT + pw,
            tx = LEFT - 4.0,
            yt = py(yv) + 4.0,
            ytick = tick(yv, y1 - y0),
        );
    }
    let _ = write!(
        s,
        r#"<text x="{cx}" y="{by}" text-anchor="middle">{xl}</text><text x="14" y="{cy}" text-anchor="middle" transform="rotate(-90 14 {cy})">{yl}</text>"#,
        cx = LEFT + pw / 2.0,
        by = H - 8.0,
        xl = escape(x_label),
        cy = TOP + ph / 2.0,
        yl = escape(y_label)
    );
    if diagonal {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#aaa" stroke-dasharray="4 3"/>"##,
            px(x0),
            py(y0),
            px(x1),
            py(y1)
        );
    }
    for (i, ser) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = ser
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.2},{:.2}", px(x), py(y)))
            .collect();
        let _ = write!(s, r#"<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{}"/>"#, pts.join(" "));
        if pts.len() == 1 {
            // A single point draws no line: mark it.
            let (x, y) = pts[0].split_once(',').expect("x,y");
            let _ = write!(s, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>"#);
        }
        let ly = TOP + 10.0 + 15.0 * i as f64;
        let lx = LEFT + pw + 10.0;
        let _ = write!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 14.0,
            lx + 18.0,
            ly + 4.0,
            escape(&truncate(&ser.name, 18))
        );
    }
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Confusion-matrix heat map (rows = true, columns = predicted), cells shaded by row share.
pub fn confusion_heatmap(title: &str, classes: &[String], matrix: &[Vec<u64>]) -> String {
    let k = classes.len().max(1);
    let cell = (360.0 / k as f64).clamp(14.0, 48.0);
    let left = 120.0;
    let top = 40.0;
    let width = left + cell * k as f64 + 20.0;
    let height = top + cell * k as f64 + 110.0;
    let mut s = String::new();
    header(&mut s, title, width, height);
    for (r, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 4.0,
            top + cell * (r as f64 + 0.5) + 4.0,
            escape(&truncate(&classes[r], 18))
        );
        for (c, &v) in row.iter().enumerate() {
            let share = if total > 0 { v as f64 / total as f64 } else { 0.0 };
            let shade = (255.0 - share * 200.0).round() as u8;
            let text = if share > 0.6 { "#fff" } else { "#000" };
            let (x, y) = (left + cell * c as f64, top + cell * r as f64);
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({shade},{shade},255)" stroke="#fff"><title>true {t}, predicted {p}: {v}</title></rect>"##,
                t = escape(&classes[r]),
                p = escape(&classes[c])
            );
            if cell >= 24.0 {
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="middle" fill="{text}">{v}</text>"#,
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0
                );
            }
        }
    }
    for (c, name) in classes.iter().enumerate() {
        let x = left + cell * (c as f64 + 0.5);
        let y = top + cell * k as f64 + 8.0;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{y}" text-anchor="end" transform="rotate(-45 {x} {y})">{}</text>"#,
            escape(&truncate(name, 18))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">predicted</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">true</text></svg>"#,
        left + cell * k as f64 / 2.0,
        height - 6.0,
        top + cell * k as f64 / 2.0,
        top + cell * k as f64 / 2.0
    );
    s
}

/// One value in [0, 1] per label as a column of shaded cells with the value written in: a
/// heatmap of per-label scores (multi-label F1).
pub fn label_heatmap(title: &str, labels: &[String], values: &[f64]) -> String {
    let (left, top, cell_w, cell_h) = (150.0, 34.0, 90.0, 18.0);
    let height = top + cell_h * labels.len() as f64 + 12.0;
    let width = left + cell_w + 20.0;
    let mut s = String::new();
    header(&mut s, title, width, height);
    for (i, (name, &v)) in labels.iter().zip(values).enumerate() {
        let y = top + cell_h * i as f64;
        let shade = (255.0 - v.clamp(0.0, 1.0) * 200.0).round() as u8;
        let text = if v > 0.6 { "#fff" } else { "#000" };
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{cell_w}" height="{cell_h}" fill="rgb({shade},{shade},255)" stroke="#fff"><title>{}: {v:.4}</title></rect><text x="{}" y="{}" text-anchor="middle" fill="{text}">{v:.3}</text>"##,
            left - 4.0,
            y + cell_h / 2.0 + 4.0,
            escape(&truncate(name, 22)),
            escape(name),
            left + cell_w / 2.0,
            y + cell_h / 2.0 + 4.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_well_formed_and_escaped() {
        let series = vec![Series { name: "a<b>".into(), points: vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)] }];
        let svg = unit_square_plot("ROC & friends", "FPR", "TPR", &series, true);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("ROC &amp; friends") && svg.contains("a&lt;b&gt;"));
        assert!(!svg.contains("http://") || svg.matches("http://").count() == 1, "only the SVG namespace");
        let loss = line_plot(
            "Loss",
            "step",
            "loss",
            &[Series { name: "train".into(), points: vec![(1.0, 1.121), (2.0, 1.128)] }],
        );
        assert!(loss.contains(">1.121<") || loss.contains(">1.1205<"), "ticks tell small steps apart: {loss}");
        assert!(loss.contains(">2<") || loss.contains(">2.0<"));
        let heat = confusion_heatmap("Confusion", &["x".into(), "y".into()], &[vec![3, 1], vec![0, 4]]);
        assert!(heat.contains("true x, predicted y: 1"));
        assert_eq!(heat.matches("<rect").count(), 4);
    }
}
