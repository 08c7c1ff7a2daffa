//! Which kernel variant a backend runs where it has several: typed options set once when the
//! backend is built, never read from the environment here. The defaults are the measured best;
//! the others exist to be measured (docs/gpu.md says what each is for and what would settle it).

use std::str::FromStr;

use crate::error::{Error, Result};

/// Kernel variants of both backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelChoice {
    /// The CPU layout's lane arithmetic; `None` takes the widest this CPU has.
    pub cpu_layout: Option<CpuLayoutLanes>,
    /// The CUDA exact kNN's arithmetic and tiling.
    pub cuda_knn: CudaKnn,
    /// Pairs a CUDA kNN query queues before merging them into its list (0 to 32; 0 merges every
    /// tile at once, the measured default; more runs the deferred, warp-parallel merge).
    pub cuda_knn_flush: u32,
    /// Most queries per CUDA kNN launch (`None`: sized by memory); small values test batching.
    pub cuda_knn_batch: Option<usize>,
    /// The CUDA layout kernel.
    pub cuda_layout: CudaLayout,
}

impl KernelChoice {
    /// The defaults, usable in constants.
    pub const DEFAULT: KernelChoice = KernelChoice {
        cpu_layout: None,
        cuda_knn: CudaKnn::Auto,
        cuda_knn_flush: 0,
        cuda_knn_batch: None,
        cuda_layout: CudaLayout::Auto,
    };

    /// Checks the values a parser cannot: the flush count's range and a positive batch.
    pub fn validate(&self) -> Result<()> {
        if self.cuda_knn_flush > 32 {
            return Err(Error::InvalidArgument(format!(
                "kNN flush count {}: expected 0 (merge every tile) to 32",
                self.cuda_knn_flush
            )));
        }
        if self.cuda_knn_batch == Some(0) {
            return Err(Error::InvalidArgument(
                "kNN batch: expected a positive number of queries".into(),
            ));
        }
        Ok(())
    }
}

/// Lane arithmetic of the CPU layout (the portable lanes where the CPU lacks the kind asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuLayoutLanes {
    /// Plain Rust, any CPU.
    Portable,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

/// The CUDA exact kNN's distance estimates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CudaKnn {
    /// TF32 tensor cores with shared-memory-resident queries where every device has them
    /// (sm_80 and newer), else f32.
    #[default]
    Auto,
    /// f32 FMAs on the CUDA cores, queries streamed.
    F32,
    /// TF32 tensor cores, queries resident (an error without sm_80 on every device).
    Tf32,
    /// TF32 tensor cores, queries and points streamed through shared memory.
    Tf32Stream,
}

/// The CUDA layout kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CudaLayout {
    /// The 2-D kernel with coordinates in registers for 2-D layouts, else the generic one.
    #[default]
    Auto,
    /// The any-dimension kernel.
    Generic,
    /// The 2-D kernel that loads eight negative samples' points at once (2-D layouts only).
    Batched,
}

fn bad(what: &str, v: &str, expected: &str) -> Error {
    Error::InvalidArgument(format!("{what} {v:?}: expected {expected}"))
}

impl FromStr for CpuLayoutLanes {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "portable" => Ok(Self::Portable),
            "avx2" => Ok(Self::Avx2),
            "avx512" => Ok(Self::Avx512),
            v => Err(bad("CPU layout lanes", v, "portable, avx2 or avx512")),
        }
    }
}

impl FromStr for CudaKnn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" | "" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "tf32" => Ok(Self::Tf32),
            "tf32-stream" => Ok(Self::Tf32Stream),
            v => Err(bad("CUDA kNN kernel", v, "auto, f32, tf32 or tf32-stream")),
        }
    }
}

impl FromStr for CudaLayout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" | "" => Ok(Self::Auto),
            "generic" => Ok(Self::Generic),
            "batched" => Ok(Self::Batched),
            v => Err(bad("CUDA layout kernel", v, "auto, generic or batched")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_is_the_default_and_names_parse() {
        assert_eq!(KernelChoice::DEFAULT, KernelChoice::default());
        assert_eq!(
            "tf32-stream".parse::<CudaKnn>().unwrap(),
            CudaKnn::Tf32Stream
        );
        assert_eq!(
            "batched".parse::<CudaLayout>().unwrap(),
            CudaLayout::Batched
        );
        assert_eq!(
            "avx2".parse::<CpuLayoutLanes>().unwrap(),
            CpuLayoutLanes::Avx2
        );
        assert!("tf64".parse::<CudaKnn>().is_err());
        let flush = KernelChoice {
            cuda_knn_flush: 33,
            ..KernelChoice::DEFAULT
        };
        assert!(flush.validate().is_err());
    }
}
