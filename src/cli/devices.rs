use crate::backend::cuda;

/// `scoop devices`: how the kernels were built, the driver, and every visible GPU.
pub fn run() -> anyhow::Result<()> {
    println!(
        "kernels: {} PTX module(s); {}",
        cuda::ptx_modules().len(),
        cuda::ptx_provenance()
    );
    match cuda::probe_driver() {
        Ok(p) => println!(
            "driver: CUDA {}.{}, {} device(s)",
            p.driver_version / 1000,
            p.driver_version % 1000 / 10,
            p.device_count
        ),
        Err(e) => {
            println!("driver: {e}");
            return Ok(());
        }
    }
    match cuda::devices() {
        Ok(list) => {
            for d in list {
                let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
                println!(
                    "  {}: {} (sm_{}{}), {:.1} GiB, {:.1} GiB free, {}; {}",
                    d.ordinal,
                    d.name,
                    d.compute_capability.0,
                    d.compute_capability.1,
                    gib(d.memory.0),
                    gib(d.memory.1),
                    d.uuid,
                    d.nvml.unwrap_or_else(|e| e)
                );
            }
        }
        Err(e) => println!("devices: {e}"),
    }
    Ok(())
}
