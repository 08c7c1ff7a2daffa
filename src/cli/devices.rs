use crate::backend::cuda;

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
        Err(e) => println!("driver: {e}"),
    }
    Ok(())
}
