//! One CUDA worker: a device context, its stream, the kernels loaded from the embedded PTX, and the
//! launches of each kernel on a shard of rows. Workers on the same device share its (primary)
//! context and own a stream each, so `--devices 0,0` runs two workers concurrently on one GPU.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, DriverError, LaunchConfig,
    ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;

use super::ptx_modules;
use crate::error::{Error, Result};
use crate::io::CsrChunk;

const _: () = assert!(
    std::mem::size_of::<usize>() == 8,
    "row offsets go to the device as u64"
);

/// Threads per block of the row kernels (8 warps, one row per warp).
const ROW_BLOCK: u32 = 256;

/// A driver error as scoop's, naming what was being done.
pub(super) fn cuda_err(what: impl std::fmt::Display) -> impl FnOnce(DriverError) -> Error {
    move |e| Error::Backend(format!("CUDA {what}: {e:?}"))
}

/// One exact kNN kernel of kernels/knn_tile.cuh in its two instances (same parameters).
pub(super) struct KnnKernel {
    /// Merges each tile's passing pairs into the lists at once.
    pub merge: CudaFunction,
    /// Queues them and merges when a query's queue fills (`<name>_deferred`).
    pub deferred: CudaFunction,
}

/// The kernels of `kernels/*.cu`, loaded into one context.
pub(super) struct Kernels {
    pub row_totals: CudaFunction,
    pub gene_moments: CudaFunction,
    pub count_kept: CudaFunction,
    pub normalize_log1p: CudaFunction,
    pub densify: CudaFunction,
    pub panel_colsum: CudaFunction,
    pub syrk_upper: CudaFunction,
    pub project: CudaFunction,
    pub spmv: CudaFunction,
    pub knn_exact: KnnKernel,
    /// The TF32 tensor-core kNN (kernels/knn_tc.cu, built for compute_80): None on GPUs older
    /// than sm_80, where its PTX does not load.
    pub knn_exact_tc: Option<KnnKernel>,
    /// Its twin with the queries resident in shared memory and whole point tiles copied
    /// asynchronously (same module, same condition).
    pub knn_exact_tc_resident: Option<KnnKernel>,
    pub layout_epoch: CudaFunction,
    /// Its instance for 2-D layouts (coordinates in registers).
    pub layout_epoch_2d: CudaFunction,
    /// Its twin that loads eight negative samples' points at once.
    pub layout_epoch_2d_batched: CudaFunction,
    pub sparse_apply: CudaFunction,
    pub tall_dot_parts: CudaFunction,
    pub tall_sub_mul: CudaFunction,
    pub tall_sub_diag: CudaFunction,
    pub tall_mul: CudaFunction,
    pub tall_div_col: CudaFunction,
    pub tall_copy_col: CudaFunction,
    pub tall_pack: CudaFunction,
    pub tall_unpack: CudaFunction,
}

/// Kernel families whose PTX targets a newer architecture than the rest, with the compute
/// capability (major) they need: an older GPU runs without them; on a newer one they must load.
const OPTIONAL_FAMILIES: &[(&str, i32)] = &[("knn_tc", 8)];

impl Kernels {
    fn load(ctx: &Arc<CudaContext>) -> Result<Self> {
        let mut modules = HashMap::new();
        let cc_major = ctx.compute_capability().map_or(0, |c| c.0);
        for &(family, ptx) in ptx_modules() {
            match ctx.load_module(Ptx::from_src(ptx)) {
                Ok(m) => {
                    modules.insert(family, m);
                }
                Err(_)
                    if OPTIONAL_FAMILIES
                        .iter()
                        .any(|&(f, major)| f == family && cc_major < major) => {}
                Err(e) => {
                    return Err(cuda_err(format!(
                        "loading kernels/{family}.cu ({}; PTX from NVRTC 12.9 needs a driver of \
                         R575 or newer, `scoop devices` shows this one's)",
                        super::ptx_provenance()
                    ))(e))
                }
            }
        }
        let f = |family: &str, name: &str| -> Result<CudaFunction> {
            let m = modules.get(family).ok_or_else(|| {
                Error::Backend(format!("no PTX for kernels/{family}.cu in this build"))
            })?;
            m.load_function(name)
                .map_err(cuda_err(format!("kernel {name} of kernels/{family}.cu")))
        };
        let knn = |family: &str, name: &str| -> Result<KnnKernel> {
            Ok(KnnKernel {
                merge: f(family, name)?,
                deferred: f(family, &format!("{name}_deferred"))?,
            })
        };
        // The TF32 kernels, where their module loaded (sm_80 and newer).
        let tensor_core = |name: &str| -> Result<Option<KnnKernel>> {
            if modules.contains_key("knn_tc") {
                knn("knn_tc", name).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(Kernels {
            row_totals: f("rowops", "row_totals")?,
            gene_moments: f("rowops", "gene_moments")?,
            count_kept: f("normalize", "count_kept")?,
            normalize_log1p: f("normalize", "normalize_log1p")?,
            densify: f("gram", "densify")?,
            panel_colsum: f("gram", "panel_colsum")?,
            syrk_upper: f("gram", "syrk_upper")?,
            project: f("project", "project")?,
            spmv: f("project", "spmv")?,
            knn_exact: knn("knn", "knn_exact")?,
            knn_exact_tc: tensor_core("knn_exact_tc")?,
            knn_exact_tc_resident: tensor_core("knn_exact_tc_resident")?,
            layout_epoch: f("layout", "layout_epoch")?,
            layout_epoch_2d: f("layout", "layout_epoch_2d")?,
            layout_epoch_2d_batched: f("layout", "layout_epoch_2d_batched")?,
            sparse_apply: f("sparse", "sparse_apply")?,
            tall_dot_parts: f("tall", "tall_dot_parts")?,
            tall_sub_mul: f("tall", "tall_sub_mul")?,
            tall_sub_diag: f("tall", "tall_sub_diag")?,
            tall_mul: f("tall", "tall_mul")?,
            tall_div_col: f("tall", "tall_div_col")?,
            tall_copy_col: f("tall", "tall_copy_col")?,
            tall_pack: f("tall", "tall_pack")?,
            tall_unpack: f("tall", "tall_unpack")?,
        })
    }
}

/// Rows of a chunk on the device. `indptr` holds the parent chunk's offsets of the shard's rows
/// (`n_rows + 1`), and value k of the shard is at `indices[k - base]` / `data[k - base]`.
pub(super) struct DeviceCsr {
    pub indptr: CudaSlice<usize>,
    pub indices: CudaSlice<u32>,
    pub data: CudaSlice<f32>,
    pub base: u64,
    pub n_rows: u64,
}

/// One worker: a device, a stream on it and its kernels.
pub(super) struct Worker {
    /// Device ordinal.
    pub ordinal: usize,
    pub stream: Arc<CudaStream>,
    pub k: Kernels,
    /// Device memory this worker may use for buffers, in bytes (a share of the free memory
    /// measured when it opened).
    pub budget: usize,
}

impl Worker {
    /// Opens a worker on device `ordinal` with `share` of its free memory.
    pub fn open(ordinal: usize, share: f64) -> Result<Self> {
        let ctx = CudaContext::new(ordinal).map_err(cuda_err(format!("device {ordinal}")))?;
        // SAFETY: every buffer of a worker is used on its one stream only (workers sharing a
        // device have their own buffers), so cudarc's cross-stream events are not needed; without
        // them each allocation and launch skips two event operations.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(cuda_err(format!("stream on device {ordinal}")))?;
        let (free, _total) = ctx
            .mem_get_info()
            .map_err(cuda_err(format!("memory of device {ordinal}")))?;
        let k = Kernels::load(&ctx)?;
        Ok(Worker {
            ordinal,
            stream,
            k,
            budget: (free as f64 * share) as usize,
        })
    }

    /// Copies `data` to a new device buffer (one zero element when empty: the driver allocates
    /// no zero-byte buffers).
    pub fn upload<T: DeviceRepr + ValidAsZeroBits>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        if data.is_empty() {
            return self.zeros(1);
        }
        self.stream
            .clone_htod(data)
            .map_err(cuda_err(format!("upload to device {}", self.ordinal)))
    }

    /// A zeroed device buffer of `len` elements (at least one).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros(len.max(1))
            .map_err(cuda_err(format!(
                "allocating {} bytes on device {}",
                len * std::mem::size_of::<T>(),
                self.ordinal
            )))
    }

    /// Copies a device buffer back into `out` (its first `out.len()` elements) and waits.
    pub fn download<T: DeviceRepr>(&self, src: &CudaSlice<T>, out: &mut [T]) -> Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let view = src.slice(..out.len());
        self.stream
            .memcpy_dtoh(&view, out)
            .map_err(cuda_err(format!("download from device {}", self.ordinal)))?;
        self.sync()
    }

    /// Waits for the stream; reports errors of earlier launches.
    pub fn sync(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(cuda_err(format!("kernel on device {}", self.ordinal)))
    }

    /// Uploads rows `rows` of `chunk`.
    pub fn upload_rows(&self, chunk: &CsrChunk, rows: Range<usize>) -> Result<DeviceCsr> {
        let (a, b) = (chunk.indptr[rows.start], chunk.indptr[rows.end]);
        Ok(DeviceCsr {
            indptr: self.upload(&chunk.indptr[rows.start..=rows.end])?,
            indices: self.upload(&chunk.indices[a..b])?,
            data: self.upload(&chunk.data[a..b])?,
            base: a as u64,
            n_rows: rows.len() as u64,
        })
    }

    /// Launch shape of the one-warp-per-row kernels for `n_rows` rows.
    pub fn row_launch(n_rows: u64) -> LaunchConfig {
        let warps_per_block = (ROW_BLOCK / 32) as u64;
        LaunchConfig {
            grid_dim: (
                n_rows.div_ceil(warps_per_block).clamp(1, 1 << 20) as u32,
                1,
                1,
            ),
            block_dim: (ROW_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    /// Launch shape of a grid-stride kernel over `n` items, 256 threads a block.
    pub fn flat_launch(n: u64) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (n.div_ceil(256).clamp(1, 1 << 20) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}

/// A null device pointer for optional kernel arguments.
pub(super) const NULL: u64 = 0;

/// Launches kernel `$kernel` of worker `$w` with the arguments in order (each a reference to a
/// device buffer or a scalar), naming the kernel and device in errors.
macro_rules! launch {
    ($w:expr, $kernel:ident, $cfg:expr, $($arg:expr),* $(,)?) => {{
        let w: &$crate::backend::cuda::worker::Worker = $w;
        launch!(fn w, &w.k.$kernel, stringify!($kernel), $cfg, $($arg),*)
    }};
    // A kernel chosen at run time: `$f` (a `&CudaFunction` of `$w`'s kernels) named `$name`.
    (fn $w:expr, $f:expr, $name:expr, $cfg:expr, $($arg:expr),* $(,)?) => {{
        use cudarc::driver::PushKernelArg as _;
        let w: &$crate::backend::cuda::worker::Worker = $w;
        let mut b = w.stream.launch_builder($f);
        $( b.arg($arg); )*
        // SAFETY: the arguments follow the kernel's signature in kernels/*.cu (the parity tests
        // run every launch), and the buffers are sized for the launch by the caller.
        unsafe { b.launch($cfg) }.map(|_| ()).map_err($crate::backend::cuda::worker::cuda_err(
            format!("launching {} on device {}", $name, w.ordinal),
        ))
    }};
}
pub(super) use launch;
