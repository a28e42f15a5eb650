//! Batched scoring on an NVIDIA GPU: the forest and autoencoder kernels of `kernels/cuda/`, the
//! conversion of the ONNX models into their layout (`layout`, safe code, always built), the CPU
//! run of the same kernel sources that the tests compare with the CPU scorer (`shim`, feature
//! `cpu-shim`), and the CUDA backend (`cuda`, feature `cuda`: cudarc, loading libcuda and
//! libnvrtc at run time). `probe` says whether this process can score on a GPU and, when it
//! cannot, why in one line; without the `cuda` feature it always answers
//! [`GpuError::NotCompiled`].

pub mod layout;

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cpu-shim")]
pub mod shim;

#[cfg(feature = "cuda")]
pub use cuda::{compile_ptx, CudaScorer, CHUNK_ROWS};

use std::path::PathBuf;

/// Why the GPU backend cannot load a model or run here.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The autoencoder graph uses an op the converter has no kernel step for; the CPU
    /// backends still score it.
    #[error("{path}: op {op} (node {node:?}) has no GPU kernel; score this model on the CPU (--backend cpu)")]
    UnsupportedOp { path: PathBuf, op: String, node: String },
    /// The model is outside what the kernels handle (shape, size, a node kind).
    #[error("{path}: cannot be scored on the GPU: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error("built without the `cuda` feature")]
    NotCompiled,
    /// The driver, a library or a device is missing: the probe's one-line reason.
    #[error("{0}")]
    Unavailable(String),
    #[error("CUDA driver: {0}")]
    Driver(String),
    #[error("NVRTC could not compile kernels/cuda/{kernel}.cu: {log}")]
    Compile { kernel: &'static str, log: String },
}

/// The device the CUDA backend would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// (major, minor).
    pub compute_capability: (i32, i32),
    /// True when the kernels were compiled to PTX at build time (nvcc); false: NVRTC compiles
    /// them at load.
    pub prebuilt_ptx: bool,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ma, mi) = self.compute_capability;
        let how = if self.prebuilt_ptx { "PTX built with nvcc" } else { "kernels compiled by NVRTC" };
        write!(f, "CUDA device {} ({}, sm_{ma}{mi}; {how})", self.ordinal, self.name)
    }
}

/// Whether this process can score on a GPU: the CUDA libraries load, the driver starts and a
/// device exists. Checks the libraries before cudarc touches them (cudarc panics when one is
/// missing). Cheap enough to call once at start; the backend is chosen once.
pub fn probe() -> Result<DeviceInfo, GpuError> {
    #[cfg(feature = "cuda")]
    return cuda::probe();
    #[cfg(not(feature = "cuda"))]
    Err(GpuError::NotCompiled)
}

/// The kernel sources, for NVRTC and for the record.
pub const FOREST_CU: &str = include_str!("../../../kernels/cuda/forest.cu");
pub const MLP_CU: &str = include_str!("../../../kernels/cuda/mlp.cu");
