//! How much memory a device has for a training run: the CPU's `MemAvailable` (/proc/meminfo)
//! or an NVIDIA GPU's total memory (nvidia-smi). Unknown for other GPUs: a run there finds out,
//! and an out-of-memory failure mid-run is reported by [`guard_step`].

use std::process::Command;

/// Bytes available to a run on the device `name` (as [`crate::model_dir::Placement`] names it).
pub fn available(name: &str) -> Option<u64> {
    if let Some(index) = name.strip_prefix("cuda") {
        let index = index.trim_start_matches(':');
        let index = if index.is_empty() { "0" } else { index };
        let out = Command::new("nvidia-smi")
            .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", index])
            .output()
            .ok()?;
        let mib: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        return Some(mib << 20);
    }
    if name.starts_with("cpu") {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        return Some(kib << 10);
    }
    None
}

/// Runs one training step; a panic inside it (burn's way of reporting a device's errors) ends
/// the run with [`step_failure`]'s message, pointing at the newest checkpoint in `checkpoints`.
pub fn guard_step<T>(
    device: &str,
    batch_size: usize,
    accum: Option<usize>,
    checkpoints: &std::path::Path,
    step: impl FnOnce() -> T,
) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).map_err(|panic| {
        let last = crate::checkpoints::step_dirs(checkpoints).ok().and_then(|mut d| d.pop()).map(|(_, p)| p);
        step_failure(panic.as_ref(), device, batch_size, accum, last.as_deref())
    })
}

/// The message for a training step that panicked (burn reports a device's errors, out of
/// memory among them, by panicking): the device, the batch, what to lower when it was memory,
/// and the checkpoint `--resume` would continue from.
fn step_failure(
    panic: &(dyn std::any::Any + Send),
    device: &str,
    batch_size: usize,
    accum: Option<usize>,
    checkpoint: Option<&std::path::Path>,
) -> anyhow::Error {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let first_line = text.lines().next().unwrap_or(text);
    let lower = text.to_ascii_lowercase();
    let memory = ["out of memory", "outofmemory", "out of device memory", "buffertoobig", "memory allocation"]
        .iter()
        .any(|m| lower.contains(m));
    let advice = if memory {
        format!(
            "{device} ran out of memory at batch size {batch_size}: lower --batch-size to {}{} or --max-len",
            (batch_size / 2).max(1),
            crate::flags::message_as_flags(
                &savant_core::train::limits::keep_effective_batch(accum, batch_size, (batch_size / 2).max(1)),
                MEMORY_FIELDS,
                &[]
            )
        )
    } else {
        format!("the training step failed on {device} at batch size {batch_size}")
    };
    let resume = match checkpoint {
        Some(path) => format!("; --resume continues from {}", path.display()),
        None => String::new(),
    };
    anyhow::anyhow!("{advice}: {first_line}{resume}")
}

/// Refuses a run whose step would not fit the device's memory (estimated; see
/// [`savant_core::train::StepMemory`]), naming the device and the batch size to lower to. With
/// `--devices`, each device holds a copy of the model and its share of the rows.
/// The options core's memory advice names.
const MEMORY_FIELDS: &[&str] = &["batch_size", "grad_accum", "max_len"];

pub fn check_memory(
    step: &savant_core::train::StepMemory,
    config: &savant_core::model::BertConfig,
    device_name: &str,
    devices: usize,
    grad_accum: Option<usize>,
) -> anyhow::Result<()> {
    let per_device = savant_core::train::StepMemory { rows: step.rows.div_ceil(devices.max(1)), ..*step };
    for name in device_name.split(',') {
        if let Some(available) = available(name) {
            per_device
                .check(config, name, available, grad_accum)
                .map_err(|e| crate::flags::as_flags(e, MEMORY_FIELDS, &[]))?;
        }
    }
    Ok(())
}

/// The process's peak resident set (VmHWM), where the OS tells it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
