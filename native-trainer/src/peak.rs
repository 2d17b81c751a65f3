//! The device's peak FLOP rate, the denominator of model FLOPs utilisation (MFU):
//! `--peak-tflops` when given; an NVIDIA GPU by the name nvidia-smi reports, from its data
//! sheet (dense, no sparsity); the CPU estimated as cores used × clock × FLOPs per cycle of its
//! widest f32 FMA units, from /proc/cpuinfo. Unknown devices get no MFU rather than a guess.

use std::process::Command;

/// A peak rate and where it came from (written beside every MFU figure).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Peak {
    pub tflops: f64,
    pub source: String,
}

impl Peak {
    pub fn flops(&self) -> f64 {
        self.tflops * 1e12
    }
}

/// Dense peak TFLOP/s by GPU name: (name fragment, f32 without tensor cores, bf16 tensor cores).
const NVIDIA: &[(&str, f64, f64)] = &[
    ("H200", 66.9, 989.4),
    ("H100 SXM", 66.9, 989.4),
    ("H100 NVL", 60.0, 835.0),
    ("H100 PCIe", 51.2, 756.5),
    ("H100", 66.9, 989.4),
    ("A100", 19.5, 312.0),
    ("L40S", 91.6, 362.1),
    ("L4", 30.3, 121.0),
    ("A10", 31.2, 125.0),
    ("RTX 4090", 82.6, 165.2),
];

/// The peak for `device_name` (savant's names: "cpu (flex)", "wgpu", "cuda:N") computing in
/// `precision` ("f32" or "bf16"), `threads` CPU threads.
pub fn peak(device_name: &str, precision: &str, threads: usize, given_tflops: Option<f64>) -> Option<Peak> {
    if let Some(tflops) = given_tflops {
        return Some(Peak { tflops, source: "--peak-tflops".into() });
    }
    if let Some(index) = device_name.strip_prefix("cuda:") {
        let name = nvidia_name(index)?;
        let &(_, f32_peak, bf16_peak) = NVIDIA.iter().find(|(fragment, _, _)| name.contains(fragment))?;
        let tflops = if precision == "f32" { f32_peak } else { bf16_peak };
        return Some(Peak { tflops, source: format!("{name}, {precision} data-sheet peak") });
    }
    if device_name.starts_with("cpu") {
        return cpu_peak(&std::fs::read_to_string("/proc/cpuinfo").ok()?, threads);
    }
    None
}

/// [`peak`] of every device in a comma-separated list (`--devices`): their sum, when each is known.
pub fn peak_of_all(device_names: &str, precision: &str, threads: usize, given_tflops: Option<f64>) -> Option<Peak> {
    if given_tflops.is_some() || !device_names.contains(',') {
        return peak(device_names, precision, threads, given_tflops);
    }
    let peaks: Option<Vec<Peak>> = device_names.split(',').map(|name| peak(name, precision, 1, None)).collect();
    let peaks = peaks?;
    Some(Peak {
        tflops: peaks.iter().map(|p| p.tflops).sum(),
        source: peaks.iter().map(|p| p.source.as_str()).collect::<Vec<_>>().join(" + "),
    })
}

fn nvidia_name(index: &str) -> Option<String> {
    let out =
        Command::new("nvidia-smi").args(["--query-gpu=name", "--format=csv,noheader", "-i", index]).output().ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

/// `threads` cores × the clock × f32 FLOPs per cycle: two FMA units of 8 lanes (AVX2 + FMA:
/// 32) or 16 lanes (AVX-512: 64), else two 4-lane units without FMA (8).
fn cpu_peak(cpuinfo: &str, threads: usize) -> Option<Peak> {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let mhz: f64 = field("cpu MHz")?.parse().ok()?;
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let per_cycle = if has("avx512f") {
        64.0
    } else if has("avx2") && has("fma") {
        32.0
    } else {
        8.0
    };
    let model = field("model name").unwrap_or_else(|| "CPU".into());
    let tflops = threads as f64 * mhz * 1e6 * per_cycle / 1e12;
    Some(Peak {
        tflops,
        source: format!("{model}: {threads} core(s) × {mhz:.0} MHz × {per_cycle} f32 FLOPs/cycle (estimate)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_peak_is_cores_times_clock_times_fma_width() {
        let info = "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2500.000\nflags\t\t: fpu sse avx avx2 fma\n";
        let p = cpu_peak(info, 2).unwrap();
        assert!((p.tflops - 0.16).abs() < 1e-12, "{p:?}");
        assert!(p.source.contains("2 core(s) × 2500 MHz × 32"));
        let old = cpu_peak("cpu MHz : 1000\nflags : sse2\n", 1).unwrap();
        assert!((old.tflops - 0.008).abs() < 1e-12);
        assert!(cpu_peak("flags : avx2\n", 1).is_none(), "no clock, no estimate");
    }

    #[test]
    fn given_peaks_win_and_unknown_devices_get_none() {
        assert_eq!(peak("cuda:0", "bf16", 1, Some(100.0)).unwrap().tflops, 100.0);
        assert!(peak("wgpu", "f32", 1, None).is_none());
    }
}
