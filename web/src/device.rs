//! Which device the page trains on: WebGPU when asked for (or, with `auto`, when the browser has
//! it and it starts), else the CPU (burn's flex backend compiled to wasm). The reason for a
//! fallback is kept so the page can say it.

use burn::tensor::Device;
use savant_core::train::BufferLimits;

/// A device the trainer runs on, and what the page should know about it.
pub struct Chosen {
    pub device: Device,
    /// "webgpu" or "cpu".
    pub backend: &'static str,
    /// Why `auto` (or a failed `webgpu`) ended on the CPU.
    pub fallback: Option<String>,
    /// The GPU's buffer limits (WebGPU only).
    pub limits: Option<BufferLimits>,
    /// The adapter's description (WebGPU only; empty strings on software adapters).
    pub adapter: Option<String>,
}

/// The backend a request gets when it names none.
pub fn auto() -> String {
    "auto".into()
}

/// `choose` for inference that may run with int8 projections, which only the CPU has: `auto`
/// then means the CPU, and `webgpu` is refused.
pub async fn choose_for_inference(backend: &str, int8: bool) -> Result<Chosen, String> {
    match (int8, backend) {
        (true, "webgpu") => {
            Err("int8: int8 inference runs on the CPU backend only; choose backend \"cpu\" (or \"auto\")".into())
        }
        (true, _) => choose("cpu").await,
        (false, b) => choose(b).await,
    }
}

/// `backend`: "webgpu", "cpu" or "auto".
pub async fn choose(backend: &str) -> Result<Chosen, String> {
    match backend {
        "cpu" => Ok(cpu(None)),
        "webgpu" => webgpu().await,
        "auto" => match webgpu().await {
            Ok(chosen) => Ok(chosen),
            Err(why) => Ok(cpu(Some(why))),
        },
        other => Err(format!("backend must be \"webgpu\", \"cpu\" or \"auto\", got \"{other}\"")),
    }
}

fn cpu(fallback: Option<String>) -> Chosen {
    Chosen { device: Device::flex(), backend: "cpu", fallback, limits: None, adapter: None }
}

#[cfg(feature = "webgpu")]
async fn webgpu() -> Result<Chosen, String> {
    use burn::tensor::wgpu::WgpuBackend;
    use std::cell::RefCell;
    thread_local! {
        // burn registers one wgpu runtime per page (or worker): initialise once, then reuse.
        static READY: RefCell<Option<(Device, BufferLimits, String)>> = const { RefCell::new(None) };
    }
    if let Some((device, limits, adapter)) = READY.with(|r| r.borrow().clone()) {
        return Ok(Chosen { device, backend: "webgpu", fallback: None, limits: Some(limits), adapter: Some(adapter) });
    }
    if !has_webgpu() {
        return Err("this browser has no WebGPU (navigator.gpu is missing)".into());
    }
    let (device, setup) = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_with_setup_async()
        .await
        .map_err(|e| format!("WebGPU did not start: {e}"))?;
    let l = setup.device.limits();
    let limits = BufferLimits {
        max_buffer_size: l.max_buffer_size,
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size as u64,
    };
    let info = setup.adapter.get_info();
    let adapter = format!("{} {} ({:?})", info.vendor, info.name, info.device_type).trim().to_string();
    READY.with(|r| *r.borrow_mut() = Some((device.clone(), limits, adapter.clone())));
    Ok(Chosen { device, backend: "webgpu", fallback: None, limits: Some(limits), adapter: Some(adapter) })
}

#[cfg(not(feature = "webgpu"))]
async fn webgpu() -> Result<Chosen, String> {
    Err("this build of savant-web has no WebGPU backend (built without the `webgpu` feature)".into())
}

/// `navigator.gpu` exists, in a window or a worker.
#[cfg(feature = "webgpu")]
fn has_webgpu() -> bool {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"navigator".into())
        .ok()
        .filter(|n| !n.is_undefined())
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}
