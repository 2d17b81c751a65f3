//! Terminal progress over core's (rows, bytes) callbacks.

use indicatif::{ProgressBar, ProgressStyle};
use savant_core::train::Throughput;

/// A byte-based bar for reading a file of `total` bytes (a spinner when unknown).
pub fn bytes_bar(label: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.set_prefix(label.to_string());
    // Bars disappear when their work is done (or dropped): the summary lines follow.
    bar.with_finish(indicatif::ProgressFinish::AndClear)
}

/// The callback core calls every few thousand rows.
pub fn rows_callback(bar: &ProgressBar) -> impl FnMut(u64, u64) + '_ {
    move |rows, bytes| {
        bar.set_position(bytes);
        bar.set_message(format!("{rows} rows"));
    }
}

/// "1234 tokens/s · 0.012 TFLOP/s · MFU 7.5%".
pub fn rate_text(rate: &Throughput) -> String {
    let mut text = format!("{:.0} tokens/s · {:.3} TFLOP/s", rate.tokens_per_second, rate.model_tflops_per_second);
    if let Some(mfu) = rate.mfu {
        text += &format!(" · MFU {:.1}%", mfu * 100.0);
    }
    text
}

/// A bar over a run's optimiser steps (`train`, `pretrain`).
pub fn steps_bar(label: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] step {pos}/{len} {msg} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar.with_finish(indicatif::ProgressFinish::AndClear)
}
