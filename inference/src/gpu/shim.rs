//! The kernels of `kernels/cuda/` run on the CPU: the same `.cu` sources compiled as C++
//! against `shim_cpu.h` (by `build.rs`, feature `cpu-shim`), the grid run as loops. The tests
//! compare what they compute with the CPU scorer, which is how CI checks the kernels'
//! arithmetic without a GPU. Safe wrappers check every length the kernels will index by; the
//! FFI calls are the only unsafe code.
#![allow(unsafe_code)]

use super::layout::{DeviceForest, DeviceMlp, ForestNode, ForestShape, MlpOp, MlpShape};

/// Threads per block the shim's grid is cut into, as a launch would be; the result does not
/// depend on it.
const BLOCK: u32 = 256;

mod ffi {
    use super::{ForestNode, ForestShape, MlpOp, MlpShape};

    extern "C" {
        pub fn portcullis_shim_forest_predict(
            block: u32,
            shape: ForestShape,
            rows: *const f32,
            nodes: *const ForestNode,
            tree_root: *const u32,
            tree_depth: *const u32,
            leaf_of: *const u32,
            leaf_start: *const u32,
            leaf_class: *const u32,
            leaf_weight: *const f32,
            base: *const f32,
            out: *mut f32,
        );
        pub fn portcullis_shim_mlp_score(block: u32, shape: MlpShape, rows: *const f32, ops: *const MlpOp, params: *const f32, out: *mut f32);
    }
}

/// Class probabilities of `rows` (`width` floats each) into `out` (`n_classes` per row), by
/// forest.cu. Panics when a length does not fit: that is a bug in the caller or the layout.
pub fn forest_predict(forest: &DeviceForest, rows: &[f32], width: usize, out: &mut [f32]) {
    let n = rows.len() / width;
    let c = forest.n_classes as usize;
    assert!(width >= forest.n_features && rows.len() == n * width, "rows of {width} for a forest reading {}", forest.n_features);
    assert_eq!(out.len(), n * c, "output length");
    assert!(n <= u32::MAX as usize, "too many rows for one launch");
    // What the kernel indexes: node children, tree roots and leaves within their arrays.
    assert!(forest.in_bounds(), "the forest layout indexes outside its arrays");
    assert!(forest.base.len() == c);
    let shape = forest.shape(n, width);
    // SAFETY: every array the kernel reads was checked above to hold every index it can
    // compute (children, roots, leaves, classes; columns below `width` by `n_features`);
    // `rows` holds `n * width` floats and `out` `n * c`. The shim only reads the inputs and
    // writes `out`, and keeps no pointer after returning.
    unsafe {
        ffi::portcullis_shim_forest_predict(
            BLOCK,
            shape,
            rows.as_ptr(),
            forest.nodes.as_ptr(),
            forest.tree_root.as_ptr(),
            forest.tree_depth.as_ptr(),
            forest.leaf_of.as_ptr(),
            forest.leaf_start.as_ptr(),
            forest.leaf_class.as_ptr(),
            forest.leaf_weight.as_ptr(),
            forest.base.as_ptr(),
            out.as_mut_ptr(),
        )
    }
}

/// The anomaly score of every row of `rows` into `out` (one per row), by mlp.cu.
pub fn mlp_score(mlp: &DeviceMlp, rows: &[f32], out: &mut [f32]) {
    let w = mlp.width;
    let n = rows.len() / w;
    assert_eq!(rows.len(), n * w, "rows of {w}");
    assert_eq!(out.len(), n, "output length");
    assert!(mlp.in_bounds(), "an op of the program reads or writes outside its arrays");
    let shape = mlp.shape(n);
    // SAFETY: every op was checked above to read and write within the scratch, the input row
    // and the parameter array (`DeviceMlp::in_bounds`), the result lies in the scratch, `rows` holds
    // `n * width` floats and `out` `n`. The shim keeps no pointer after returning.
    unsafe { ffi::portcullis_shim_mlp_score(BLOCK, shape, rows.as_ptr(), mlp.ops.as_ptr(), mlp.params.as_ptr(), out.as_mut_ptr()) }
}
