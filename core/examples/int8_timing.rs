//! The int8 linear kernel against burn's f32 matmul on the CPU (flex), on MiniLM's shapes:
//! `cargo run --release -p savant-core --features flex --example int8_timing` (one thread each:
//! RAYON_NUM_THREADS=1). Prints milliseconds per call and GMAC/s, medians of 7.

use burn::tensor::{Device, Tensor, TensorData};
use savant_core::model::int8::QuantLinear;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let device = Device::flex();
    let rows = 32 * 96; // a batch of 32 texts of 96 tokens
    for (d_in, d_out, what) in [(384, 384, "attention projection"), (384, 1536, "FFN up"), (1536, 384, "FFN down")] {
        let w: Vec<f32> = (0..d_in * d_out).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.05).collect();
        let x: Vec<f32> = (0..rows * d_in).map(|i| (i * 104729 % 1000) as f32 / 500.0 - 1.0).collect();
        let q = QuantLinear::from_f32(&w, d_in, d_out, None);
        let wt = Tensor::<2>::from_data(TensorData::new(w.clone(), [d_in, d_out]), &device);
        let mut f32_ms = Vec::new();
        let mut i8_ms = Vec::new();
        for _ in 0..7 {
            let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, d_in]), &device);
            let t = Instant::now();
            let y = xt.matmul(wt.clone()).into_data();
            f32_ms.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(y);
            let t = Instant::now();
            let y = q.forward(&x, rows);
            i8_ms.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(y);
        }
        let macs = (rows * d_in * d_out) as f64;
        let (f, i) = (median(f32_ms), median(i8_ms));
        println!(
            "{what} [{rows}, {d_in}] x [{d_in}, {d_out}]: f32 {f:.2} ms ({:.1} GMAC/s), int8 {i:.2} ms ({:.1} GMAC/s), int8/f32 speed {:.2}x",
            macs / f / 1e6,
            macs / i / 1e6,
            f / i
        );
    }
}
