//! The CUDA backend: the kernels of `kernels/cuda/` on device 0 through cudarc's driver API,
//! which, like NVRTC, is loaded at run time, so a build needs no CUDA install. The model
//! arrays are copied to the device once at load. A batch is cut into chunks of
//! [`CHUNK_ROWS`] that alternate between two slots, each with its own stream, pinned host
//! buffers and device buffers: while one slot's chunk is copied in, scored and copied back
//! asynchronously, the CPU fills the other slot's pinned input (double buffering).
//!
//! The unsafe code is here: probing for the libraries before cudarc touches them (it panics
//! when one is missing), the device-layout impls of the kernel structs, pinned allocation,
//! asynchronous copies between raw pointers and the kernel launches.
#![allow(unsafe_code)]

use std::ops::Range;
use std::sync::Arc;

use cudarc::driver::{result, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PinnedHostSlice, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, Ptx};

use super::layout::{DeviceForest, DeviceMlp, ForestNode, ForestShape, MlpOp, MlpShape};
use super::{DeviceInfo, GpuError, FOREST_CU, MLP_CU};

// SAFETY: `#[repr(C)]` structs of `u32`/`f32` fields with no padding and no pointers, laid out
// exactly as the kernels' `struct ForestNode`, `ForestShape`, `MlpOp` and `MlpShape`; any bit
// pattern is a valid value on both sides.
unsafe impl DeviceRepr for ForestNode {}
// SAFETY: as above.
unsafe impl DeviceRepr for ForestShape {}
// SAFETY: as above.
unsafe impl DeviceRepr for MlpOp {}
// SAFETY: as above.
unsafe impl DeviceRepr for MlpShape {}

/// Rows per chunk: a slot's buffers hold this many, and a batch larger than this is scored in
/// chunks that alternate between the two slots.
pub const CHUNK_ROWS: usize = 16_384;

/// Threads per block.
const BLOCK: u32 = 128;

const PREBUILT: bool = cfg!(portcullis_prebuilt_ptx);

fn driver(e: result::DriverError) -> GpuError {
    GpuError::Driver(e.to_string())
}

fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen cudarc's candidate names for libnvrtc and drops each handle;
    // loading NVIDIA's library runs no initialiser that touches this process's state.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

pub(super) fn probe() -> Result<DeviceInfo, GpuError> {
    // SAFETY: as `nvrtc_present`, for libcuda.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(GpuError::Unavailable("libcuda.so.1 not found (no NVIDIA driver)".into()));
    }
    result::init().map_err(|e| GpuError::Unavailable(format!("the CUDA driver did not start: {e}")))?;
    let count = CudaContext::device_count().map_err(|e| GpuError::Unavailable(format!("cannot count CUDA devices: {e}")))?;
    if count < 1 {
        return Err(GpuError::Unavailable("no CUDA device".into()));
    }
    if !PREBUILT && !nvrtc_present() {
        return Err(GpuError::Unavailable(
            "libnvrtc.so not found, and the kernels were not compiled at build time (no nvcc)".into(),
        ));
    }
    let ctx = CudaContext::new(0).map_err(|e| GpuError::Unavailable(format!("cannot open CUDA device 0: {e}")))?;
    Ok(DeviceInfo {
        ordinal: 0,
        name: ctx.name().map_err(driver)?,
        compute_capability: ctx.compute_capability().map_err(driver)?,
        prebuilt_ptx: PREBUILT,
    })
}

/// Compiles kernel `name` (`forest` or `mlp`) to PTX for `compute_<arch>` (e.g. `80`) with
/// NVRTC, as the backend does at load when no PTX was built. A missing libnvrtc is an error,
/// not a panic.
pub fn compile_ptx(name: &'static str, arch: &str) -> Result<String, GpuError> {
    let src = match name {
        "forest" => FOREST_CU,
        "mlp" => MLP_CU,
        _ => return Err(GpuError::Compile { kernel: name, log: "no such kernel".into() }),
    };
    if !nvrtc_present() {
        return Err(GpuError::Unavailable("libnvrtc.so not found".into()));
    }
    let opts = CompileOptions {
        options: vec![format!("--gpu-architecture=compute_{arch}")],
        name: Some(format!("{name}.cu")),
        ..CompileOptions::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(src, opts)
        .map(|p| p.to_src())
        .map_err(|e| GpuError::Compile { kernel: name, log: e.to_string() })
}

fn ptx(name: &'static str, cc: (i32, i32)) -> Result<Ptx, GpuError> {
    #[cfg(portcullis_prebuilt_ptx)]
    {
        let _ = cc;
        Ok(Ptx::from_src(match name {
            "forest" => include_str!(concat!(env!("OUT_DIR"), "/forest.ptx")),
            _ => include_str!(concat!(env!("OUT_DIR"), "/mlp.ptx")),
        }))
    }
    #[cfg(not(portcullis_prebuilt_ptx))]
    compile_ptx(name, &format!("{}{}", cc.0, cc.1)).map(Ptx::from_src)
}

/// The forest's arrays on the device.
struct ForestArrays {
    nodes: CudaSlice<ForestNode>,
    tree_root: CudaSlice<u32>,
    tree_depth: CudaSlice<u32>,
    leaf_of: CudaSlice<u32>,
    leaf_start: CudaSlice<u32>,
    leaf_class: CudaSlice<u32>,
    leaf_weight: CudaSlice<f32>,
    base: CudaSlice<f32>,
}

/// The autoencoder program on the device.
struct MlpArrays {
    ops: CudaSlice<MlpOp>,
    params: CudaSlice<f32>,
}

/// One of the two buffer sets a batch's chunks alternate between.
struct Slot {
    stream: Arc<CudaStream>,
    /// Write-combined: the CPU only writes it.
    input: PinnedHostSlice<f32>,
    probs: PinnedHostSlice<f32>,
    errors: PinnedHostSlice<f32>,
    d_input: CudaSlice<f32>,
    d_probs: CudaSlice<f32>,
    d_errors: CudaSlice<f32>,
    /// Rows of the batch whose results this slot's stream is producing.
    pending: Option<Range<usize>>,
}

/// A model loaded on the GPU.
pub struct CudaScorer {
    info: DeviceInfo,
    forest: DeviceForest,
    mlp: Option<DeviceMlp>,
    width: usize,
    forest_fn: CudaFunction,
    mlp_fn: CudaFunction,
    d_forest: ForestArrays,
    d_mlp: Option<MlpArrays>,
    slots: [Slot; 2],
    // Last: dropped after everything allocated in it.
    ctx: Arc<CudaContext>,
}

impl std::fmt::Debug for CudaScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaScorer").field("device", &self.info).field("trees", &self.forest.tree_root.len()).finish()
    }
}

impl CudaScorer {
    /// Opens device 0, compiles or loads the kernels and copies the model to the device.
    /// Rows are `width` floats wide.
    pub fn new(forest: DeviceForest, mlp: Option<DeviceMlp>, width: usize) -> Result<CudaScorer, GpuError> {
        if !forest.in_bounds() || mlp.as_ref().is_some_and(|m| !m.in_bounds() || m.width != width) || width < forest.n_features.max(1) {
            return Err(GpuError::Driver("the model's device layout is inconsistent (a bug in the converter)".into()));
        }
        let info = probe()?;
        let ctx = CudaContext::new(info.ordinal).map_err(driver)?;
        let forest_fn = ctx.load_module(ptx("forest", info.compute_capability)?).map_err(driver)?.load_function("forest_predict").map_err(driver)?;
        let mlp_fn = ctx.load_module(ptx("mlp", info.compute_capability)?).map_err(driver)?.load_function("mlp_score").map_err(driver)?;
        let s = ctx.default_stream();
        let d_forest = ForestArrays {
            nodes: s.clone_htod(&forest.nodes).map_err(driver)?,
            tree_root: s.clone_htod(&forest.tree_root).map_err(driver)?,
            tree_depth: s.clone_htod(&forest.tree_depth).map_err(driver)?,
            leaf_of: s.clone_htod(&forest.leaf_of).map_err(driver)?,
            leaf_start: s.clone_htod(&forest.leaf_start).map_err(driver)?,
            leaf_class: s.clone_htod(&forest.leaf_class).map_err(driver)?,
            leaf_weight: s.clone_htod(&forest.leaf_weight).map_err(driver)?,
            base: s.clone_htod(&forest.base).map_err(driver)?,
        };
        let d_mlp = match &mlp {
            Some(m) => Some(MlpArrays { ops: s.clone_htod(&m.ops).map_err(driver)?, params: s.clone_htod(&m.params).map_err(driver)? }),
            None => None,
        };
        s.synchronize().map_err(driver)?;
        let c = forest.n_classes as usize;
        let slot = || -> Result<Slot, GpuError> {
            let stream = ctx.new_stream().map_err(driver)?;
            // SAFETY: pinned memory starts uninitialised; `score` writes a chunk's input rows
            // before copying them, and reads outputs only after the copy into them finished.
            let (input, probs, errors) = unsafe {
                (
                    ctx.alloc_pinned::<f32>(CHUNK_ROWS * width).map_err(driver)?,
                    ctx.alloc_pinned_with_flags::<f32>(CHUNK_ROWS * c, 0).map_err(driver)?,
                    ctx.alloc_pinned_with_flags::<f32>(CHUNK_ROWS, 0).map_err(driver)?,
                )
            };
            Ok(Slot {
                d_input: stream.alloc_zeros(CHUNK_ROWS * width).map_err(driver)?,
                d_probs: stream.alloc_zeros(CHUNK_ROWS * c).map_err(driver)?,
                d_errors: stream.alloc_zeros(CHUNK_ROWS).map_err(driver)?,
                stream,
                input,
                probs,
                errors,
                pending: None,
            })
        };
        let slots = [slot()?, slot()?];
        Ok(CudaScorer { info, forest, mlp, width, forest_fn, mlp_fn, d_forest, d_mlp, slots, ctx })
    }

    pub fn device(&self) -> &DeviceInfo {
        &self.info
    }

    /// Scores `n` rows: `fill(i, row)` writes row `i` (`width` floats) straight into pinned
    /// memory; class probabilities go to `probs` (`n_classes` per row) and, when the model has
    /// an autoencoder, scores to `errors` (one per row).
    pub fn score(&mut self, n: usize, mut fill: impl FnMut(usize, &mut [f32]), probs: &mut [f32], mut errors: Option<&mut [f32]>) -> Result<(), GpuError> {
        let (w, c) = (self.width, self.forest.n_classes as usize);
        assert!(probs.len() >= n * c && errors.as_ref().is_none_or(|e| e.len() >= n), "output buffers too small");
        // The raw copies below act on the calling thread's current context, and a scorer may
        // be used from another thread than the one that loaded it.
        self.ctx.bind_to_thread().map_err(driver)?;
        let result = (|| {
            for (chunk, start) in (0..n).step_by(CHUNK_ROWS).enumerate() {
                let s = chunk % 2;
                // The slot's previous chunk is done before its buffers are reused.
                self.collect(s, probs, errors.as_deref_mut())?;
                let m = CHUNK_ROWS.min(n - start);
                let input = self.slots[s].input.as_mut_slice().map_err(driver)?;
                for (r, row) in input[..m * w].chunks_exact_mut(w).enumerate() {
                    fill(start + r, row);
                }
                self.launch(s, m)?;
                self.slots[s].pending = Some(start..start + m);
            }
            for s in 0..2 {
                self.collect(s, probs, errors.as_deref_mut())?;
            }
            Ok(())
        })();
        if result.is_err() {
            // Nothing may still be writing into the slots' buffers when they are next reused.
            for slot in &mut self.slots {
                let _ = slot.stream.synchronize();
                slot.pending = None;
            }
        }
        result
    }

    /// Waits for slot `s`'s chunk, if any, and copies its results out.
    fn collect(&mut self, s: usize, probs: &mut [f32], errors: Option<&mut [f32]>) -> Result<(), GpuError> {
        let c = self.forest.n_classes as usize;
        let slot = &mut self.slots[s];
        let Some(rows) = slot.pending.take() else { return Ok(()) };
        slot.stream.synchronize().map_err(driver)?;
        let m = rows.len();
        probs[rows.start * c..rows.end * c].copy_from_slice(&slot.probs.as_slice().map_err(driver)?[..m * c]);
        if let (Some(e), true) = (errors, self.mlp.is_some()) {
            e[rows.clone()].copy_from_slice(&slot.errors.as_slice().map_err(driver)?[..m]);
        }
        Ok(())
    }

    /// Queues on slot `s`'s stream: the copy of its first `m` input rows to the device, the
    /// kernels, and the copies of their results back into its pinned outputs.
    fn launch(&mut self, s: usize, m: usize) -> Result<(), GpuError> {
        let (w, c) = (self.width, self.forest.n_classes as usize);
        let cfg = LaunchConfig { grid_dim: ((m as u32).div_ceil(BLOCK), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let fshape = self.forest.shape(m, w);
        let mshape = self.mlp.as_ref().map(|p| p.shape(m));
        let slot = &mut self.slots[s];
        let stream = slot.stream.clone();
        {
            let input = slot.input.as_slice().map_err(driver)?;
            let (dst, _record) = slot.d_input.device_ptr_mut(&stream);
            // SAFETY: `dst` is a device buffer of CHUNK_ROWS * w floats and the source the first
            // m * w (m <= CHUNK_ROWS) of a pinned buffer of the same size; both live in this
            // scorer, which synchronises every stream before reusing or dropping them
            // (`collect`, `score`'s error path, `Drop`).
            unsafe { result::memcpy_htod_async(dst, &input[..m * w], stream.cu_stream()) }.map_err(driver)?;
        }
        let f = &self.d_forest;
        let mut b = stream.launch_builder(&self.forest_fn);
        b.arg(&fshape)
            .arg(&slot.d_input)
            .arg(&f.nodes)
            .arg(&f.tree_root)
            .arg(&f.tree_depth)
            .arg(&f.leaf_of)
            .arg(&f.leaf_start)
            .arg(&f.leaf_class)
            .arg(&f.leaf_weight)
            .arg(&f.base)
            .arg(&mut slot.d_probs);
        // SAFETY: the arguments match forest_predict's parameters in order and type; the
        // layout was checked by `DeviceForest::in_bounds` at load, so every index the kernel
        // computes lies in its array; the input holds m rows of w >= n_features floats and
        // the output m * c floats, and the grid covers m rows (threads past m return).
        unsafe { b.launch(cfg) }.map_err(driver)?;
        if let (Some(shape), Some(p)) = (mshape, &self.d_mlp) {
            let mut b = stream.launch_builder(&self.mlp_fn);
            b.arg(&shape).arg(&slot.d_input).arg(&p.ops).arg(&p.params).arg(&mut slot.d_errors);
            // SAFETY: the arguments match mlp_score's parameters; `DeviceMlp::in_bounds`
            // checked at load that every op stays within the scratch, the row and the
            // parameters; the output holds m floats.
            unsafe { b.launch(cfg) }.map_err(driver)?;
        }
        {
            let (src, _record) = slot.d_probs.device_ptr(&stream);
            let out = slot.probs.as_mut_slice().map_err(driver)?;
            // SAFETY: m * c floats from a device buffer of CHUNK_ROWS * c into a pinned buffer
            // of the same size; nothing reads the pinned buffer before `collect` synchronises
            // this stream.
            unsafe { result::memcpy_dtoh_async(&mut out[..m * c], src, stream.cu_stream()) }.map_err(driver)?;
        }
        if self.d_mlp.is_some() {
            let (src, _record) = slot.d_errors.device_ptr(&stream);
            let out = slot.errors.as_mut_slice().map_err(driver)?;
            // SAFETY: as above, m floats.
            unsafe { result::memcpy_dtoh_async(&mut out[..m], src, stream.cu_stream()) }.map_err(driver)?;
        }
        Ok(())
    }
}

impl Drop for CudaScorer {
    fn drop(&mut self) {
        // Asynchronous copies may still target the pinned and device buffers.
        for slot in &self.slots {
            let _ = slot.stream.synchronize();
        }
    }
}
