//! A model folder on disk, and the device to run it on.

use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::{Device, DeviceKind};
use savant_core::model::{BertClassifier, ModelFiles, Precision};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Files of a Hugging Face model folder, read from disk.
pub struct DirFiles {
    dir: PathBuf,
}

impl DirFiles {
    pub fn new(dir: &Path) -> Result<DirFiles> {
        if !dir.is_dir() {
            bail!(
                "{}: not a folder; --model wants a Hugging Face model folder (config.json, model.safetensors, tokenizer.json), e.g. from `savant fetch model minilm`",
                dir.display()
            );
        }
        Ok(DirFiles { dir: dir.to_path_buf() })
    }
}

/// Small files (configs, tokenizers) above this size are refused rather than read.
const MAX_SMALL_FILE: u64 = 256 << 20;

impl ModelFiles for DirFiles {
    type Weights = File;

    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn read(&self, relative: &str) -> savant_core::Result<Option<Vec<u8>>> {
        let path = self.dir.join(relative);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(savant_core::Error::invalid(&path.display().to_string(), None, e.to_string())),
            Ok(m) if m.len() > MAX_SMALL_FILE => {
                return Err(savant_core::Error::invalid(
                    &path.display().to_string(),
                    None,
                    format!("{} bytes is too large for this file (limit {MAX_SMALL_FILE})", m.len()),
                ))
            }
            Ok(_) => {}
        }
        std::fs::read(&path)
            .map(Some)
            .map_err(|e| savant_core::Error::invalid(&path.display().to_string(), None, e.to_string()))
    }

    fn weights(&self, relative: &str) -> savant_core::Result<Option<File>> {
        let path = self.dir.join(relative);
        match File::open(&path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(savant_core::Error::invalid(&path.display().to_string(), None, e.to_string())),
        }
    }
}

/// Backends compiled into this binary, for --device.
pub fn compiled_devices() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "cpu") {
        v.push("cpu");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// `--device`: `cpu` (burn's flex backend), `wgpu`, `cuda` or `cuda:N`, or `auto` (the first
/// GPU backend compiled in, else cpu). Returns the device and its name for reports.
pub fn device(name: &str) -> Result<(Device, String)> {
    let unavailable = |what: &str, feature: &str| {
        anyhow!(
            "--device {what}: this savant was built without the '{feature}' feature (built with: {}); rebuild with `cargo build --release -p savant --features {feature}`",
            compiled_devices().join(", ")
        )
    };
    match name {
        "auto" => {
            if cfg!(feature = "cuda") {
                return device("cuda");
            }
            if cfg!(feature = "wgpu") {
                return device("wgpu");
            }
            device("cpu")
        }
        "cpu" | "flex" => {
            #[cfg(feature = "cpu")]
            return Ok((Device::flex(), "cpu (flex)".into()));
            #[allow(unreachable_code)]
            Err(unavailable("cpu", "cpu"))
        }
        other if other == "wgpu" || other.starts_with("wgpu:") => {
            // wgpu (the best adapter), wgpu:cpu (a CPU adapter such as lavapipe), wgpu:N (the
            // Nth discrete GPU), wgpu:integrated:N.
            let kind = match other.strip_prefix("wgpu:") {
                None => DeviceKind::DefaultDevice,
                Some("cpu") => DeviceKind::Cpu,
                Some(rest) => match rest.strip_prefix("integrated:").unwrap_or(rest).parse::<usize>() {
                    Ok(i) if rest.starts_with("integrated:") => DeviceKind::IntegratedGpu(i),
                    Ok(i) => DeviceKind::DiscreteGpu(i),
                    Err(_) => bail!("--device {other}: expected wgpu, wgpu:cpu, wgpu:N or wgpu:integrated:N"),
                },
            };
            #[cfg(feature = "wgpu")]
            return Ok((Device::wgpu(kind), other.to_string()));
            #[allow(unreachable_code)]
            {
                let _ = kind;
                Err(unavailable(other, "wgpu"))
            }
        }
        other if other == "cuda" || other.starts_with("cuda:") => {
            let index: usize = match other.strip_prefix("cuda:") {
                Some(i) => i.parse().map_err(|_| anyhow!("--device {other}: expected cuda:N with N a GPU index"))?,
                None => 0,
            };
            #[cfg(feature = "cuda")]
            return Ok((Device::cuda(index), format!("cuda:{index}")));
            #[allow(unreachable_code)]
            {
                let _ = index;
                Err(unavailable(other, "cuda"))
            }
        }
        other => bail!("--device {other}: expected auto, cpu, wgpu, wgpu:cpu, wgpu:N, cuda or cuda:N"),
    }
}

/// Where `savant train` and `savant pretrain` compute: their shared flags.
#[derive(clap::Args, Clone)]
pub struct PlacementArgs {
    /// auto, cpu, wgpu, wgpu:cpu, wgpu:N, cuda or cuda:N.
    #[arg(long, visible_alias = "backend", default_value = "auto")]
    pub device: String,
    /// Data parallel over several devices of one backend, comma-separated (cuda:0,cuda:1): each
    /// step's batch is cut into a part per device (or --threads parts), each device computes its
    /// parts' gradients on its own copy of the model, burn sums them, one AdamW step follows.
    #[arg(long, conflicts_with = "device")]
    pub devices: Option<String>,
    /// Each batch is cut into this many parts trained in parallel (default: one per device of
    /// --devices; on the CPU one per core, at most one per 4 rows). The same seed and number give
    /// the same weights; a resumed run must use the same number.
    #[arg(long)]
    pub threads: Option<usize>,
    /// The device's peak TFLOP/s for the MFU figure (default: an NVIDIA GPU's data-sheet f32
    /// peak, or the CPU's estimated from its clock and FMA width).
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Mixed precision: f32, bf16 or f16. The matmuls compute in that dtype, everything else
    /// and the weights and optimiser in f32 (torch.autocast's split); f16 scales the loss
    /// dynamically as PyTorch's GradScaler does. On the CPU bf16/f16 are slower than f32.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

fn parse_precision(name: &str) -> std::result::Result<Precision, String> {
    Precision::parse(name).ok_or_else(|| format!("unknown precision '{name}': expected f32, bf16 or f16"))
}

impl PlacementArgs {
    /// The devices, parts per batch and peak for a run of `batch_size` rows a step.
    pub fn place(&self, batch_size: usize) -> Result<Placement> {
        if self.peak_tflops.is_some_and(|p| p.is_nan() || p <= 0.0) {
            bail!("--peak-tflops must be more than 0");
        }
        let mut placed = placement(&self.device, self.devices.as_deref(), self.threads, batch_size)?;
        placed.peak = crate::peak::peak_of_all(&placed.name, self.precision.name(), placed.threads, self.peak_tflops);
        placed.precision = self.precision;
        if !self.precision.supported_on(&placed.device) {
            bail!(
                "--precision {}: {} does not compute in {} (WGSL has no bf16, and f16 needs the adapter's shader-f16): use f32, or a device that does",
                self.precision,
                placed.name,
                self.precision
            );
        }
        Ok(placed)
    }
}

/// Where a training run computes (`savant train`, `savant pretrain`).
pub struct Placement {
    /// The device the model lives on (the first of `--devices`).
    pub device: Device,
    /// For reports: "cpu (flex)", "cuda:0,cuda:1", ...
    pub name: String,
    /// `--devices` as autodiff devices (empty for one device).
    pub parallel: Vec<Device>,
    /// Parts per batch: `--threads`, else one per device of `--devices`, else one per core on the
    /// CPU (at most one per 4 rows) and one on a GPU.
    pub threads: usize,
    /// The peak rate MFU is measured against.
    pub peak: Option<crate::peak::Peak>,
    /// The matmuls' dtype (`--precision`).
    pub precision: Precision,
}

/// `--device`, or `--devices` when given, with `--threads`.
pub fn placement(
    device_arg: &str,
    devices_arg: Option<&str>,
    threads: Option<usize>,
    batch_size: usize,
) -> Result<Placement> {
    let (device, name, parallel) = match devices_arg {
        Some(list) => {
            let all = devices(list)?;
            let name = all.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(",");
            let parallel = all.iter().map(|(d, _)| d.clone().autodiff()).collect();
            (all[0].0.clone(), name, parallel)
        }
        None => {
            let (d, n) = device(device_arg)?;
            (d, n, Vec::new())
        }
    };
    let threads = match (threads, parallel.len()) {
        (None, n) if n > 1 => n,
        _ => crate::workers::parts(threads, &name, batch_size)?,
    };
    Ok(Placement { device, name, parallel, threads, peak: None, precision: Precision::F32 })
}

/// `--devices a,b,...`: several devices of one backend for data-parallel training, each started
/// (a tensor made and read back) so that a missing one is named here, not in a panic mid-run.
pub fn devices(list: &str) -> Result<Vec<(Device, String)>> {
    let mut out: Vec<(Device, String)> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let (device, label) = device(name).map_err(|e| anyhow!("--devices: {e}"))?;
        if out.iter().any(|(d, _)| *d == device) {
            bail!("--devices: {name} is listed twice (or names the same device as another entry)");
        }
        if let Some((_, first)) = out.first() {
            let backend = |n: &str| n.split([':', ' ']).next().unwrap_or("").to_string();
            if backend(first) != backend(&label) {
                bail!("--devices: {first} and {label} are different backends; list devices of one backend");
            }
        }
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            burn::tensor::Tensor::<1>::zeros([1], &device).into_data()
        }));
        if let Err(panic) = started {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            bail!("--devices: {name} did not start ({why}); check that it exists (nvidia-smi, vulkaninfo)");
        }
        out.push((device, label));
    }
    if out.len() < 2 {
        bail!("--devices wants two devices or more, comma-separated (e.g. cuda:0,cuda:1); for one, use --device");
    }
    Ok(out)
}

/// Writes `model` as an HF `BertForSequenceClassification` folder (`config.json` with the
/// labels, `model.safetensors`, the base's tokenizer files, `max_len` as sentence-transformers'
/// `max_seq_length` when known) into `dir`.
pub fn save_model_folder(
    model: &BertClassifier,
    config: &savant_core::model::BertConfig,
    base: &DirFiles,
    max_len: Option<usize>,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = pollster::block_on(savant_core::train::setup::result_files(
        model,
        &savant_core::finetune::Strategy::Full,
        config,
        base,
        max_len,
    ))?;
    for (name, bytes) in files {
        let name = name.strip_prefix("model/").unwrap_or(&name);
        crate::io::write_atomic(&dir.join(name), |w| Ok(w.write_all(&bytes)?))?;
    }
    Ok(())
}

/// `savant train`'s average with the TF-IDF baseline: one label per row
/// ([`savant_core::baseline::Ensemble`]) or label sets
/// ([`savant_core::baseline::multilabel::LabelSetEnsemble`], with its own thresholds).
pub enum Ensemble {
    Classes(savant_core::baseline::Ensemble),
    LabelSets(savant_core::baseline::multilabel::LabelSetEnsemble),
}

/// Reads [`Ensemble`]: `path` is the file or the run folder holding it; its classes must be
/// `labels`, and it must be of the model's kind (`multi`: label sets).
pub fn read_ensemble(path: &Path, labels: &[String], multi: bool) -> Result<Ensemble> {
    use savant_core::baseline::{multilabel::LabelSetEnsemble, Ensemble as Classes};
    let file = if path.is_dir() { path.join(Classes::FILE) } else { path.to_path_buf() };
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let source = file.display().to_string();
    if multi {
        return Ok(Ensemble::LabelSets(LabelSetEnsemble::from_json(&bytes, labels, &source)?));
    }
    let ensemble = Classes::from_json(&bytes, &source)?;
    if ensemble.baseline.classes() != labels {
        bail!(
            "{}: the baseline's classes ({}) are not the model's ({})",
            file.display(),
            ensemble.baseline.classes().join(", "),
            labels.join(", ")
        );
    }
    Ok(Ensemble::Classes(ensemble))
}
