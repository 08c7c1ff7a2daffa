//! The CUDA backend: PTX compiled from `kernels/*.cu` by `build.rs`, loaded through cudarc with
//! dynamic loading, so a binary built without CUDA still runs (on the CPU) everywhere.
//!
//! This build probes the driver, the devices and the embedded PTX; the kernel launches land with
//! the CUDA issue. Until then [`open`] reports why it cannot run, and `--backend auto` falls back
//! to the CPU.

use super::Backend;
use crate::error::{Error, Result};

mod ptx {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

/// PTX modules embedded at build time: (family, PTX text).
pub fn ptx_modules() -> &'static [(&'static str, &'static str)] {
    ptx::PTX_MODULES
}

/// How the embedded PTX was produced (or why there is none).
pub fn ptx_provenance() -> &'static str {
    ptx::PTX_PROVENANCE
}

/// What a probe of the CUDA driver found.
#[derive(Clone, Debug)]
pub struct DriverProbe {
    /// Number of CUDA devices visible.
    pub device_count: usize,
    /// Driver API version (e.g. 12080 for 12.8).
    pub driver_version: i32,
}

/// Probes for libcuda and devices without ever panicking (cudarc's dynamic loading panics on a
/// missing library, so presence is checked first).
pub fn probe_driver() -> std::result::Result<DriverProbe, String> {
    // SAFETY: only tries to dlopen libcuda; no driver call is made if it is absent.
    let present = std::panic::catch_unwind(|| unsafe { cudarc::driver::sys::is_culib_present() })
        .unwrap_or(false);
    if !present {
        return Err("no CUDA driver (libcuda.so) found".into());
    }
    cudarc::driver::result::init().map_err(|e| format!("CUDA driver init failed: {e:?}"))?;
    let count = cudarc::driver::result::device::get_count()
        .map_err(|e| format!("cuDeviceGetCount failed: {e:?}"))?;
    let mut version = 0i32;
    // SAFETY: plain out-parameter call on an initialized driver.
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
    if count == 0 {
        return Err("CUDA driver found but no GPU is visible".into());
    }
    Ok(DriverProbe {
        device_count: count as usize,
        driver_version: version,
    })
}

/// Opens the CUDA backend on `devices` (default: device 0), or says why it cannot.
///
/// This build compiles and embeds the kernels and probes the driver; launching them is the CUDA
/// issue's work, so today the answer is always a reason (and `auto` falls back to the CPU).
pub fn open(devices: &[usize]) -> Result<Box<dyn Backend>> {
    if ptx_modules().is_empty() {
        return Err(Error::Backend(format!(
            "CUDA unavailable: {}",
            ptx_provenance()
        )));
    }
    let probe = probe_driver().map_err(|e| Error::Backend(format!("CUDA unavailable: {e}")))?;
    if let Some(d) = devices.iter().find(|&&d| d >= probe.device_count) {
        return Err(Error::Backend(format!(
            "device {d} requested, {} visible",
            probe.device_count
        )));
    }
    Err(Error::Backend(format!(
        "CUDA kernels are embedded ({}) and {} GPU(s) were found, but this build does not launch \
         them yet; use --backend cpu",
        ptx_provenance(),
        probe.device_count
    )))
}
