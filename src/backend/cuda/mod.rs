//! The CUDA backend: PTX compiled from `kernels/*.cu` by `build.rs`, loaded through cudarc with
//! dynamic loading, so a binary built without CUDA still runs (on the CPU) everywhere.
//!
//! A [`CudaBackend`] holds one `worker::Worker` per entry of `--devices` (a device ordinal may
//! repeat: two workers then share that GPU on two streams). Chunk kernels split the chunk's rows
//! into one contiguous shard per worker and run the shards concurrently; row results are stitched
//! and column results (moments, gram) reduced in f64 on the host. Gram accumulation stays in
//! device memory across chunks ([`Backend::gram_accumulator`]) and comes back once.

mod gram;
mod points;
mod rows;
mod sparse;
mod tall;
pub(crate) mod worker;

use std::ops::Range;

use super::kernels::{CudaKnn, KernelChoice};
use super::{
    check_columns, Backend, EdgeList, GeneSubset, GeneSums, Gram, GramAccumulator, LayoutParams,
    Points, Projection, SparseOperator, SparseRows, TallMatrix, ValueMap,
};
use crate::error::{Error, Result};
use crate::io::CsrChunk;
use worker::Worker;

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

/// One CUDA device as `scoop devices` lists it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// CUDA ordinal (as `--devices` takes it; follows `CUDA_VISIBLE_DEVICES`).
    pub ordinal: usize,
    /// Device name.
    pub name: String,
    /// `GPU-…` UUID (how CUDA ordinals are matched to NVML, which numbers in PCI order).
    pub uuid: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Total and free memory in bytes.
    pub memory: (usize, usize),
    /// What NVML adds (PCI bus id, utilization, temperature), or why it could not.
    pub nvml: std::result::Result<String, String>,
}

/// Lists the visible CUDA devices, with NVML details where NVML loads.
pub fn devices() -> std::result::Result<Vec<DeviceInfo>, String> {
    let probe = probe_driver()?;
    let nvml = nvml_wrapper::Nvml::init().map_err(|e| format!("NVML unavailable: {e}"));
    let mut out = Vec::new();
    for ordinal in 0..probe.device_count {
        let ctx = cudarc::driver::CudaContext::new(ordinal)
            .map_err(|e| format!("device {ordinal}: {e:?}"))?;
        let name = ctx.name().unwrap_or_else(|e| format!("? ({e:?})"));
        let uuid = ctx.uuid().map(format_uuid).unwrap_or_default();
        let compute_capability = ctx.compute_capability().unwrap_or((0, 0));
        let (free, total) = ctx.mem_get_info().unwrap_or((0, 0));
        let nvml_line = match &nvml {
            Ok(n) => n
                .device_by_uuid(uuid.as_str())
                .map_err(|e| format!("NVML has no device {uuid}: {e}"))
                .map(|d| {
                    let pci = d.pci_info().map(|p| p.bus_id).unwrap_or_default();
                    let util = d
                        .utilization_rates()
                        .map(|u| format!("{}% busy", u.gpu))
                        .unwrap_or_default();
                    let temp = d
                        .temperature(nvml_wrapper::enum_wrappers::device::TemperatureSensor::Gpu)
                        .map(|t| format!("{t} C"))
                        .unwrap_or_default();
                    format!("PCI {pci}, {util}, {temp}")
                }),
            Err(e) => Err(e.clone()),
        };
        out.push(DeviceInfo {
            ordinal,
            name,
            uuid,
            compute_capability,
            memory: (total, free),
            nvml: nvml_line,
        });
    }
    Ok(out)
}

/// NVML's spelling of a CUDA UUID: `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn format_uuid(u: cudarc::driver::sys::CUuuid) -> String {
    let b: Vec<u8> = u.bytes.iter().map(|&c| c as u8).collect();
    let hex = |r: Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// Share of a device's free memory its workers may use, split evenly among them.
const MEMORY_SHARE: f64 = 0.8;

/// The CUDA implementation of [`Backend`] over one or more workers.
pub struct CudaBackend {
    workers: Vec<Worker>,
    kernels: KernelChoice,
}

/// Opens the CUDA backend on `devices` (default: device 0) with the kernel variants `kernels`
/// names, or says why it cannot.
pub fn open_with(devices: &[usize], kernels: KernelChoice) -> Result<Box<dyn Backend>> {
    Ok(Box::new(CudaBackend::open_with(devices, kernels)?))
}

impl CudaBackend {
    /// One worker per entry of `devices` (device 0 when empty), default kernels.
    pub fn open(devices: &[usize]) -> Result<Self> {
        Self::open_with(devices, KernelChoice::default())
    }

    /// One worker per entry of `devices` (device 0 when empty), running the kernel variants
    /// `kernels` names.
    pub fn open_with(devices: &[usize], kernels: KernelChoice) -> Result<Self> {
        kernels.validate()?;
        if ptx_modules().is_empty() {
            return Err(Error::Backend(format!(
                "CUDA unavailable: {}",
                ptx_provenance()
            )));
        }
        let probe = probe_driver().map_err(|e| Error::Backend(format!("CUDA unavailable: {e}")))?;
        let devices = if devices.is_empty() {
            &[0][..]
        } else {
            devices
        };
        if let Some(d) = devices.iter().find(|&&d| d >= probe.device_count) {
            return Err(Error::Backend(format!(
                "device {d} requested, {} visible",
                probe.device_count
            )));
        }
        let workers = devices
            .iter()
            .map(|&d| {
                let on_device = devices.iter().filter(|&&x| x == d).count();
                Worker::open(d, MEMORY_SHARE / on_device as f64)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CudaBackend { workers, kernels })
    }

    /// Number of workers.
    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    /// One contiguous range of `0..n` per worker (empty ones when `n` is small: a shard is at
    /// least [`MIN_SHARD_ROWS`] rows).
    fn shards(&self, n: usize) -> Vec<Range<usize>> {
        let parts = self.workers.len().min(n.div_ceil(MIN_SHARD_ROWS)).max(1);
        let step = n.div_ceil(parts);
        (0..self.workers.len())
            .map(|p| (p * step).min(n)..((p + 1) * step).min(n))
            .collect()
    }

    /// Runs `f` on every worker's non-empty shard of `0..n` concurrently (one thread per worker)
    /// and returns the shards with their results, in order.
    fn on_shards<T: Send>(
        &self,
        n: usize,
        f: impl Fn(&Worker, Range<usize>) -> Result<T> + Sync,
    ) -> Result<Vec<(Range<usize>, T)>> {
        let mut none = vec![(); self.workers.len()];
        self.on_shards_with(&mut none, n, |w, _, r| f(w, r))
    }

    /// [`CudaBackend::on_shards`] with a state per worker (`states[i]` is worker i's), which `f`
    /// may update: the device-resident accumulators.
    fn on_shards_with<S: Send, T: Send>(
        &self,
        states: &mut [S],
        n: usize,
        f: impl Fn(&Worker, &mut S, Range<usize>) -> Result<T> + Sync,
    ) -> Result<Vec<(Range<usize>, T)>> {
        assert_eq!(states.len(), self.workers.len(), "one state per worker");
        let jobs: Vec<_> = self
            .workers
            .iter()
            .zip(states.iter_mut())
            .zip(self.shards(n))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        if jobs.len() <= 1 {
            return jobs
                .into_iter()
                .map(|((w, st), r)| f(w, st, r.clone()).map(|t| (r, t)))
                .collect();
        }
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|((w, st), r)| s.spawn(move || f(w, st, r.clone()).map(|t| (r, t))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("CUDA worker thread panicked"))
                .collect()
        })
    }

    /// `diag(scale) · a` uploaded once to the first worker's device, applied to many narrow
    /// dense blocks: the product the spectral initialization's [`TallMatrix::apply`] runs, on its
    /// own for the parity suite and the benchmarks (the same bits as
    /// [`CpuBackend::sparse_operator`](crate::backend::CpuBackend::sparse_operator)).
    pub fn sparse_operator<'a>(
        &'a self,
        a: SparseRows<'a>,
        scale: &'a [f64],
    ) -> Result<Box<dyn SparseOperator + 'a>> {
        Ok(Box::new(sparse::CudaSparseOperator::new(
            &self.workers[0],
            a,
            scale,
        )?))
    }

    /// y = A·x for a CSR chunk A, f64 accumulation (the SpMV kernel).
    pub fn spmv(&self, chunk: &CsrChunk, x: &[f64], y: &mut [f64]) -> Result<()> {
        if x.len() != chunk.n_cols || y.len() != chunk.n_rows() {
            return Err(Error::InvalidArgument(format!(
                "spmv: a {} x {} matrix with x of {} and y of {}",
                chunk.n_rows(),
                chunk.n_cols,
                x.len(),
                y.len()
            )));
        }
        check_columns(chunk, "spmv")?;
        for (r, part) in self.on_shards(chunk.n_rows(), |w, r| {
            let mut part = vec![0.0; r.len()];
            rows::spmv(w, chunk, r, x, &mut part)?;
            Ok(part)
        })? {
            y[r].copy_from_slice(&part);
        }
        Ok(())
    }
}

/// Rows below which a chunk is not split further among workers.
const MIN_SHARD_ROWS: usize = 1024;

impl Backend for CudaBackend {
    fn is_device(&self) -> bool {
        true
    }

    fn name(&self) -> String {
        let ids: Vec<String> = self.workers.iter().map(|w| w.ordinal.to_string()).collect();
        format!("cuda:{}", ids.join(","))
    }

    fn row_totals_kernel(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        out: &mut [f64],
    ) -> Result<()> {
        for (r, part) in self.on_shards(chunk.n_rows(), |w, r| {
            let mut part = vec![0.0; r.len()];
            rows::row_totals(w, chunk, r, mask, &mut part)?;
            Ok(part)
        })? {
            out[r].copy_from_slice(&part);
        }
        Ok(())
    }

    fn gene_moments_kernel(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        map: ValueMap<'_>,
        acc: &mut GeneSums,
    ) -> Result<()> {
        check_columns(chunk, "gene_moments")?;
        for (_, part) in self.on_shards(chunk.n_rows(), |w, r| {
            rows::gene_moments(w, chunk, r, mask, map)
        })? {
            acc.merge(&part);
        }
        acc.n_rows += match mask {
            Some(m) => m.iter().filter(|&&b| b).count() as u64,
            None => chunk.n_rows() as u64,
        };
        Ok(())
    }

    fn normalize_log1p_kernel(
        &self,
        chunk: &CsrChunk,
        divisors: &[f32],
        genes: &GeneSubset,
    ) -> Result<CsrChunk> {
        check_columns(chunk, "normalize_log1p")?;
        let parts = self.on_shards(chunk.n_rows(), |w, r| {
            rows::normalize_log1p(w, chunk, r, divisors, genes)
        })?;
        let nnz = parts.iter().map(|(_, p)| p.1.len()).sum();
        let mut out = CsrChunk {
            rows: chunk.rows.clone(),
            n_cols: genes.n_new(),
            indptr: Vec::with_capacity(chunk.n_rows() + 1),
            indices: Vec::with_capacity(nnz),
            data: Vec::with_capacity(nnz),
        };
        out.indptr.push(0);
        for (_, (lens, idx, val)) in parts {
            for l in lens {
                out.indptr.push(out.indptr[out.indptr.len() - 1] + l);
            }
            out.indices.extend_from_slice(&idx);
            out.data.extend_from_slice(&val);
        }
        // A chunk with no rows still has its one offset.
        debug_assert_eq!(out.indptr.len(), chunk.n_rows() + 1);
        Ok(out)
    }

    fn gram(&self, chunk: &CsrChunk, acc: &mut Gram) -> Result<()> {
        let mut one = self.gram_accumulator(acc.dim())?;
        one.add(chunk)?;
        acc.merge(&one.finish()?)
    }

    fn gram_accumulator(&self, dim: usize) -> Result<Box<dyn GramAccumulator + '_>> {
        Ok(Box::new(gram::CudaGramAccumulator::new(self, dim)?))
    }

    fn project_kernel(&self, chunk: &CsrChunk, proj: &Projection, out: &mut [f32]) -> Result<()> {
        let (n, k) = (chunk.n_rows(), proj.k());
        if k == 0 {
            return Ok(());
        }
        for (r, part) in self.on_shards(n, |w, r| {
            let mut part = vec![0.0f32; r.len() * k];
            rows::project(w, chunk, r, proj, &mut part)?;
            Ok(part)
        })? {
            out[r.start * k..r.end * k].copy_from_slice(&part);
        }
        Ok(())
    }

    fn knn_exact_kernel(
        &self,
        points: Points<'_>,
        queries: Range<usize>,
        k: usize,
        idx: &mut [u32],
        dist: &mut [f32],
    ) -> Result<()> {
        let q0 = queries.start;
        // TF32 estimates where every worker's GPU has tensor cores for them (sm_80 and newer),
        // from shared-memory-resident queries where they fit, unless the kernel choice names
        // another variant.
        let tc = self.workers.iter().all(|w| w.k.knn_exact_tc.is_some());
        let (arith, tiles) = match self.kernels.cuda_knn {
            CudaKnn::F32 => (points::KnnArith::F32, points::KnnTiles::Streamed),
            CudaKnn::Tf32 if tc => (points::KnnArith::Tf32, points::KnnTiles::Resident),
            CudaKnn::Tf32Stream if tc => (points::KnnArith::Tf32, points::KnnTiles::Streamed),
            CudaKnn::Auto if tc => (points::KnnArith::Tf32, points::KnnTiles::Resident),
            CudaKnn::Auto => (points::KnnArith::F32, points::KnnTiles::Streamed),
            CudaKnn::Tf32 | CudaKnn::Tf32Stream => {
                return Err(Error::Backend(
                    "the TF32 kNN kernels need sm_80 or newer on every device".into(),
                ))
            }
        };
        let padded = points::PaddedPoints::new(points, arith)?;
        for (r, (pi, pd)) in self.on_shards(queries.len(), |w, r| {
            let mut pi = vec![0u32; r.len() * k];
            let mut pd = vec![0f32; r.len() * k];
            points::knn_exact(
                w,
                &padded,
                points::KnnPlan {
                    tiles,
                    flush_at: self.kernels.cuda_knn_flush,
                    batch: self.kernels.cuda_knn_batch,
                },
                q0 + r.start..q0 + r.end,
                k,
                &mut pi,
                &mut pd,
            )?;
            Ok((pi, pd))
        })? {
            idx[r.start * k..r.end * k].copy_from_slice(&pi);
            dist[r.start * k..r.end * k].copy_from_slice(&pd);
        }
        Ok(())
    }

    fn tall_matrix<'a>(
        &'a self,
        a: SparseRows<'a>,
        scale: &'a [f64],
        ncols: usize,
    ) -> Result<Box<dyn TallMatrix + 'a>> {
        // The eigensolver's products need whole columns: one device (the first worker's). Where
        // the solve does not fit its memory share, the host runs it (the same bits).
        Ok(
            match tall::CudaTall::new(&self.workers[0], a, scale, ncols)? {
                Some(t) => Box::new(t),
                None => Box::new(crate::backend::cpu::tall::CpuTall::new(a, scale, ncols)?),
            },
        )
    }

    fn optimize_layout_kernel(
        &self,
        embedding: &mut [f32],
        dim: usize,
        edges: &EdgeList,
        params: &LayoutParams,
        on_epoch: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let n = embedding.len() / dim;
        if n == 0 || edges.head.is_empty() {
            return Ok(());
        }
        // One embedding, updated Hogwild by every edge: it lives on the first worker's device.
        points::optimize_layout(
            &self.workers[0],
            embedding,
            dim,
            edges,
            params,
            on_epoch,
            self.kernels.cuda_layout,
        )
    }
}
