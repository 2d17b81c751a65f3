//! What the core integration tests share: the device they run on.

use burn::tensor::Device;

/// flex (CPU) by default; `SAVANT_TEST_DEVICE=wgpu` runs the same tests on burn's wgpu backend
/// (Mesa lavapipe on a machine without a GPU) when built with `--features wgpu`.
pub fn device() -> Device {
    match std::env::var("SAVANT_TEST_DEVICE").as_deref() {
        Ok("wgpu") => wgpu_device(),
        Ok("cpu") | Ok("flex") | Err(_) => Device::flex(),
        Ok(other) => panic!("SAVANT_TEST_DEVICE={other}: expected cpu or wgpu"),
    }
}

/// A second device of the same backend, for data-parallel tests: on wgpu a second device
/// (`DeviceKind::Cpu` beside the default one: lavapipe twice, separate queues and memory); flex
/// has a single device, so there it is the same one.
#[allow(dead_code)]
pub fn second_device() -> Device {
    match std::env::var("SAVANT_TEST_DEVICE").as_deref() {
        Ok("wgpu") => second_wgpu_device(),
        _ => Device::flex(),
    }
}

#[cfg(feature = "wgpu")]
fn second_wgpu_device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE.get_or_init(|| Device::wgpu(burn::tensor::DeviceKind::Cpu)).clone()
}

#[cfg(not(feature = "wgpu"))]
fn second_wgpu_device() -> Device {
    panic!("SAVANT_TEST_DEVICE=wgpu needs `--features wgpu`")
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE.get_or_init(|| Device::wgpu(Default::default())).clone()
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Device {
    panic!("SAVANT_TEST_DEVICE=wgpu needs `--features wgpu`")
}
