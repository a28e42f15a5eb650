//! The models as the kernels of `kernels/cuda/` read them, converted at load time from the same
//! ONNX files the CPU backends use (so there is no second model format to keep in step):
//! - `DeviceForest`: the `TreeEnsemble` as flat arrays of `x <= threshold` nodes (the CPU
//!   evaluator's branchless layout, plus the NaN direction of each node), per-tree roots and
//!   depths, leaf (class, weight) ranges, base values and the post-transform;
//! - `DeviceMlp`: the autoencoder graph as a straight-line program of `MlpOp`s (elementwise ops,
//!   dense layers with their bias and activation fused, the weighted squared error) over a
//!   per-row scratch vector, with every weight in one parameter array.
//!
//! The `#[repr(C)]` structs here mirror the kernels' structs field for field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tract_onnx::pb::{tensor_proto::DataType, NodeProto, TensorProto};
use tract_onnx::prelude::Framework;

use super::GpuError;
use crate::tree::{next_down, Cmp, Post, TreeEnsemble, LEAF};

/// `FOREST_MAX_CLASSES` in forest.cu: the per-thread vote array.
pub const FOREST_MAX_CLASSES: usize = 64;
/// `MLP_SCRATCH` in mlp.cu: floats of per-row scratch.
pub const MLP_SCRATCH: usize = 1024;

const NAN_RIGHT: u32 = 1 << 31;

/// `struct ForestNode` of forest.cu.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C)]
pub struct ForestNode {
    pub threshold: f32,
    /// The column read; the top bit sends NaN to the right child.
    pub feature: u32,
    /// [when x <= threshold, otherwise]; a leaf points to itself.
    pub child: [u32; 2],
}

/// `struct ForestShape` of forest.cu: the scalars of one launch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ForestShape {
    pub n_rows: u32,
    pub width: u32,
    pub n_trees: u32,
    pub n_classes: u32,
    pub post: u32,
    pub binary_layout: u32,
}

/// The forest in the kernel's layout.
#[derive(Debug, Clone, Default)]
pub struct DeviceForest {
    pub nodes: Vec<ForestNode>,
    pub tree_root: Vec<u32>,
    pub tree_depth: Vec<u32>,
    /// Per node: its leaf's index (meaningful for leaves only).
    pub leaf_of: Vec<u32>,
    /// Leaf `i` owns entries `leaf_start[i]..leaf_start[i + 1]` of `leaf_class`/`leaf_weight`.
    pub leaf_start: Vec<u32>,
    pub leaf_class: Vec<u32>,
    pub leaf_weight: Vec<f32>,
    pub base: Vec<f32>,
    pub n_classes: u32,
    pub post: u32,
    pub binary_layout: bool,
    /// One more than the largest column a node reads.
    pub n_features: usize,
}

impl DeviceForest {
    /// The device layout of a loaded ensemble. Refused when a node tests equality (`BRANCH_EQ`,
    /// `BRANCH_NEQ`: no `<=` form) or the model has more classes than the kernel's vote array.
    pub fn from_ensemble(t: &TreeEnsemble, path: &Path) -> Result<DeviceForest, GpuError> {
        let unsupported = |message: String| GpuError::Unsupported { path: path.to_owned(), message };
        if t.n_classes() > FOREST_MAX_CLASSES {
            return Err(unsupported(format!("{} classes; the forest kernel handles at most {FOREST_MAX_CLASSES}", t.n_classes())));
        }
        let mut f = DeviceForest {
            leaf_start: t.leaf_start.clone(),
            leaf_class: t.leaf_class.clone(),
            leaf_weight: t.leaf_weight.clone(),
            base: t.base.clone(),
            n_classes: t.n_classes() as u32,
            post: match t.post {
                Post::None => 0,
                Post::Softmax => 1,
                Post::Logistic => 2,
            },
            binary_layout: t.binary_layout,
            n_features: t.n_features_used(),
            ..DeviceForest::default()
        };
        for &root in &t.roots {
            f.tree_root.push(f.nodes.len() as u32);
            let depth = f.add(root, t).map_err(unsupported)?;
            f.tree_depth.push(depth);
        }
        Ok(f)
    }

    /// Appends the subtree at `r` depth first (as the CPU's lockstep layout does); returns its
    /// depth.
    fn add(&mut self, r: u32, t: &TreeEnsemble) -> Result<u32, String> {
        let me = self.nodes.len() as u32;
        if r & LEAF != 0 {
            self.nodes.push(ForestNode { threshold: 0.0, feature: 0, child: [me; 2] });
            self.leaf_of.push(r & !LEAF);
            return Ok(0);
        }
        let b = &t.branches[r as usize];
        // Rewritten to `x <= threshold` with the true side first, as the CPU evaluator does;
        // `swap` when the original test's true side is the right child.
        let (threshold, swap) = match b.cmp {
            Cmp::Leq => (b.threshold, false),
            Cmp::Lt => (next_down(b.threshold), false),
            Cmp::Gt => (b.threshold, true),
            Cmp::Gte => (next_down(b.threshold), true),
            Cmp::Eq | Cmp::Neq => return Err(format!("branch mode {:?} has no x <= t form; the forest kernel needs one", b.cmp)),
        };
        // NaN follows the original test's true side when `nodes_missing_value_tracks_true`.
        let nan_right = if swap { b.nan_true } else { !b.nan_true };
        let feature = u32::from(b.feature) | if nan_right { NAN_RIGHT } else { 0 };
        self.nodes.push(ForestNode { threshold, feature, child: [0, 0] });
        self.leaf_of.push(0);
        let (left, right) = if swap { (b.on_false, b.on_true) } else { (b.on_true, b.on_false) };
        let li = self.nodes.len() as u32;
        let dl = self.add(left, t)?;
        let ri = self.nodes.len() as u32;
        let dr = self.add(right, t)?;
        self.nodes[me as usize].child = [li, ri];
        Ok(1 + dl.max(dr))
    }

    /// True when every index the kernel can compute lies inside its array: children and roots
    /// among the nodes, leaves among the leaf ranges, classes below `n_classes`. The unsafe
    /// launchers check it before handing the arrays to a kernel.
    pub fn in_bounds(&self) -> bool {
        let nodes = self.nodes.len() as u32;
        let leaves = self.leaf_start.len().saturating_sub(1) as u32;
        let c = self.n_classes as usize;
        self.nodes.iter().all(|nd| nd.child.iter().all(|&ch| ch < nodes))
            && self.tree_root.len() == self.tree_depth.len()
            && self.tree_root.iter().all(|&r| r < nodes)
            && self.leaf_of.len() == self.nodes.len()
            && self.leaf_of.iter().all(|&l| l < leaves)
            && self.leaf_start.windows(2).all(|w| w[0] <= w[1])
            && self.leaf_start.last().is_some_and(|&e| e as usize == self.leaf_class.len())
            && self.leaf_class.len() == self.leaf_weight.len()
            && self.leaf_class.iter().all(|&k| (k as usize) < c)
            && self.base.len() == c
            && (1..=FOREST_MAX_CLASSES).contains(&c)
            && self.nodes.iter().all(|nd| ((nd.feature & !NAN_RIGHT) as usize) < self.n_features.max(1))
    }

    /// The launch scalars for `n_rows` rows `width` floats wide.
    pub fn shape(&self, n_rows: usize, width: usize) -> ForestShape {
        ForestShape {
            n_rows: n_rows as u32,
            width: width as u32,
            n_trees: self.tree_root.len() as u32,
            n_classes: self.n_classes,
            post: self.post,
            binary_layout: u32::from(self.binary_layout),
        }
    }
}

/// `struct MlpOp` of mlp.cu: one step of the autoencoder program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MlpOp {
    pub code: u32,
    /// Output width.
    pub n: u32,
    /// Input width (dense, squared error).
    pub k: u32,
    /// Scratch offset of the output.
    pub dst: u32,
    pub a: u32,
    pub b: u32,
    pub c: u32,
    /// The unary or binary function, or a dense layer's activation.
    pub f: u32,
}

/// `struct MlpShape` of mlp.cu.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MlpShape {
    pub n_rows: u32,
    pub width: u32,
    pub n_ops: u32,
    /// Scratch offset of the row's score.
    pub result: u32,
}

/// `MLP_OP_*` of mlp.cu.
pub mod op {
    pub const UNARY: u32 = 0;
    pub const BINARY: u32 = 1;
    pub const CLIP: u32 = 2;
    pub const DENSE: u32 = 3;
    pub const SQERR: u32 = 4;
}

/// `MLP_F_*` of mlp.cu, unary functions and activations.
pub mod unary {
    pub const IDENTITY: u32 = 0;
    pub const RELU: u32 = 1;
    pub const SIGMOID: u32 = 2;
    pub const TANH: u32 = 3;
    pub const ABS: u32 = 4;
    pub const NEG: u32 = 5;
    pub const SIGN: u32 = 6;
    pub const LOG: u32 = 7;
    pub const EXP: u32 = 8;
    pub const SQRT: u32 = 9;
}

/// `MLP_F_*` of mlp.cu, binary functions.
pub mod binary {
    pub const ADD: u32 = 0;
    pub const SUB: u32 = 1;
    pub const MUL: u32 = 2;
    pub const DIV: u32 = 3;
    pub const MAX: u32 = 4;
    pub const MIN: u32 = 5;
}

/// `MLP_NONE`: no operand.
pub const NONE: u32 = u32::MAX;
const SCRATCH: u32 = 0;
const INPUT: u32 = 1 << 30;
const PARAM: u32 = 2 << 30;
const PARAM_SCALAR: u32 = 3 << 30;

/// The autoencoder in the kernel's layout.
#[derive(Debug, Clone, Default)]
pub struct DeviceMlp {
    pub ops: Vec<MlpOp>,
    pub params: Vec<f32>,
    /// Scratch offset of the score.
    pub result: u32,
    /// Floats of scratch the program uses per row.
    pub scratch: usize,
    /// Input row width.
    pub width: usize,
}

impl DeviceMlp {
    /// Converts the anomaly graph at `path`, whose input rows are `width` wide. The graph must
    /// output one score per row, or a reconstruction of the row (then the score is its mean
    /// squared error, as the CPU scorer computes it).
    pub fn load(path: &Path, width: usize) -> Result<DeviceMlp, GpuError> {
        let onnx_err = |message: String| GpuError::Unsupported { path: path.to_owned(), message };
        let proto = tract_onnx::onnx().proto_model_for_path(path).map_err(|e| onnx_err(format!("{e:#}")))?;
        let graph = proto.graph.as_ref().ok_or_else(|| onnx_err("no graph".into()))?;
        let mut b = Builder { path: path.to_owned(), width, ..Builder::default() };
        for t in &graph.initializer {
            let c = constant(t).map_err(onnx_err)?;
            b.syms.insert(t.name.clone(), Sym::Const(c));
        }
        let input = graph
            .input
            .iter()
            .find(|i| !b.syms.contains_key(&i.name))
            .ok_or_else(|| onnx_err("no graph input".into()))?;
        b.syms.insert(input.name.clone(), Sym::Row(Opnd::Input, width));
        for node in &graph.node {
            b.node(node)?;
        }
        let out = graph.output.first().ok_or_else(|| onnx_err("no graph output".into()))?;
        let (score, w) = match b.syms.get(&out.name) {
            Some(Sym::Row(o, w)) => (*o, *w),
            _ => return Err(onnx_err(format!("output {} is not computed from the input row", out.name))),
        };
        let score = if w == 1 {
            score
        } else if w == width {
            // A reconstruction: mean squared error against the input, as `Scorer` computes it.
            let inv = b.scalar(1.0 / width as f32);
            b.push(op::SQERR, 1, width, score, Opnd::Input, inv, 0)
        } else {
            return Err(onnx_err(format!("output {} is {w} wide: neither a score nor a reconstruction of {width}", out.name)));
        };
        let Opnd::Val(result) = score else {
            return Err(onnx_err("the graph's output is its input".into()));
        };
        b.fuse(result);
        b.emit(result)
    }

    /// True when every element each op reads or writes lies inside its array (the scratch,
    /// the input row, the parameters), as mlp.cu indexes them, and the result is in the
    /// scratch. The unsafe launchers check it before handing the program to a kernel.
    pub fn in_bounds(&self) -> bool {
        self.scratch <= MLP_SCRATCH && (self.result as usize) < self.scratch && self.ops.iter().all(|o| self.op_in_bounds(o))
    }

    fn op_in_bounds(&self, o: &MlpOp) -> bool {
        let (n, k) = (o.n as usize, o.k as usize);
        // Elements read of a, b and c, and written.
        let (na, nb, nc, nd) = match o.code {
            op::UNARY => (n, 0, 0, n),
            op::BINARY => (n, n, 0, n),
            op::CLIP => (n, n, n, n),
            op::DENSE => (k, k * n, if o.c == NONE { 0 } else { n }, n),
            op::SQERR => (k, k, k, 1),
            _ => return false,
        };
        let fits = |x: u32, len: usize| -> bool {
            if len == 0 {
                return true;
            }
            if x == NONE {
                return false;
            }
            let off = (x & 0x3fff_ffff) as usize;
            match x >> 30 {
                0 => off + len <= self.scratch,
                1 => off + len <= self.width,
                2 => off + len <= self.params.len(),
                _ => off < self.params.len(),
            }
        };
        o.dst as usize + nd <= self.scratch && fits(o.a, na) && fits(o.b, nb) && fits(o.c, nc)
    }

    /// The launch scalars for `n_rows` rows.
    pub fn shape(&self, n_rows: usize) -> MlpShape {
        MlpShape { n_rows: n_rows as u32, width: self.width as u32, n_ops: self.ops.len() as u32, result: self.result }
    }
}

/// A constant tensor of the graph.
#[derive(Debug, Clone)]
struct Const {
    dims: Vec<usize>,
    data: Vec<f32>,
}

/// Where a vector comes from, before scratch is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opnd {
    None,
    Input,
    /// A value computed by the program (index into `Builder::widths`).
    Val(usize),
    /// A parameter vector at this offset.
    Param(u32),
    /// A parameter scalar at this offset, broadcast.
    Scalar(u32),
}

#[derive(Debug, Clone)]
enum Sym {
    Const(Const),
    /// A per-row vector and its width.
    Row(Opnd, usize),
}

/// An op before scratch allocation: operands and the destination are values, not offsets.
#[derive(Debug, Clone, Copy)]
struct VOp {
    code: u32,
    n: usize,
    k: usize,
    dst: usize,
    a: Opnd,
    b: Opnd,
    c: Opnd,
    f: u32,
}

#[derive(Debug, Default)]
struct Builder {
    path: PathBuf,
    width: usize,
    syms: HashMap<String, Sym>,
    ops: Vec<VOp>,
    widths: Vec<usize>,
    params: Vec<f32>,
}

fn constant(t: &TensorProto) -> Result<Const, String> {
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let data: Vec<f32> = if t.data_type == DataType::Float as i32 {
        if !t.float_data.is_empty() {
            t.float_data.clone()
        } else {
            t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
    } else if t.data_type == DataType::Int64 as i32 {
        // Axes of reductions and the like.
        if !t.int64_data.is_empty() {
            t.int64_data.iter().map(|&v| v as f32).collect()
        } else {
            t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32).collect()
        }
    } else {
        return Err(format!("constant {} has data type {}; only float and int64 are read", t.name, t.data_type));
    };
    let expected: usize = dims.iter().product();
    if data.len() != expected {
        return Err(format!("constant {} has {} values for dims {dims:?}", t.name, data.len()));
    }
    Ok(Const { dims, data })
}

impl Builder {
    fn err(&self, node: &NodeProto, message: impl Into<String>) -> GpuError {
        GpuError::Unsupported { path: self.path.clone(), message: format!("node {:?} ({}): {}", node.name, node.op_type, message.into()) }
    }

    fn scalar(&mut self, v: f32) -> Opnd {
        self.params.push(v);
        Opnd::Scalar(self.params.len() as u32 - 1)
    }

    fn vector(&mut self, v: &[f32]) -> Opnd {
        let off = self.params.len() as u32;
        self.params.extend_from_slice(v);
        Opnd::Param(off)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, code: u32, n: usize, k: usize, a: Opnd, b: Opnd, c: Opnd, f: u32) -> Opnd {
        let dst = self.widths.len();
        self.widths.push(n);
        self.ops.push(VOp { code, n, k, dst, a, b, c, f });
        Opnd::Val(dst)
    }

    fn input<'a>(&'a self, node: &NodeProto, i: usize) -> Result<&'a Sym, GpuError> {
        let name = node.input.get(i).filter(|s| !s.is_empty()).ok_or_else(|| self.err(node, format!("missing input {i}")))?;
        self.syms.get(name).ok_or_else(|| self.err(node, format!("input {name} is not known")))
    }

    /// A constant as an operand broadcast over a row `n` wide.
    fn broadcast(&mut self, node: &NodeProto, c: &Const, n: usize) -> Result<Opnd, GpuError> {
        if c.data.len() == 1 {
            return Ok(self.scalar(c.data[0]));
        }
        let row_vector = c.dims.last() == Some(&n) && c.dims.iter().rev().skip(1).all(|&d| d == 1);
        if !row_vector {
            return Err(self.err(node, format!("constant of shape {:?} does not broadcast over a row of {n}", c.dims)));
        }
        Ok(self.vector(&c.data))
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), GpuError> {
        let out = node.output.first().cloned().unwrap_or_default();
        let unary_f = match node.op_type.as_str() {
            "Relu" => Some(unary::RELU),
            "Sigmoid" => Some(unary::SIGMOID),
            "Tanh" => Some(unary::TANH),
            "Abs" => Some(unary::ABS),
            "Neg" => Some(unary::NEG),
            "Sign" => Some(unary::SIGN),
            "Log" => Some(unary::LOG),
            "Exp" => Some(unary::EXP),
            "Sqrt" => Some(unary::SQRT),
            _ => None,
        };
        let binary_f = match node.op_type.as_str() {
            "Add" => Some(binary::ADD),
            "Sub" => Some(binary::SUB),
            "Mul" => Some(binary::MUL),
            "Div" => Some(binary::DIV),
            "Max" => Some(binary::MAX),
            "Min" => Some(binary::MIN),
            _ => None,
        };
        let sym = if node.op_type == "Identity" {
            self.input(node, 0)?.clone()
        } else if let Some(f) = unary_f {
            let Sym::Row(a, n) = self.input(node, 0)?.clone() else {
                return Err(self.err(node, "an op on constants only (fold it in the exporter)"));
            };
            Sym::Row(self.push(op::UNARY, n, n, a, Opnd::None, Opnd::None, f), n)
        } else if let Some(f) = binary_f {
            if node.input.len() != 2 {
                return Err(self.err(node, format!("{} inputs; two are supported", node.input.len())));
            }
            let (x, y) = (self.input(node, 0)?.clone(), self.input(node, 1)?.clone());
            let (a, b, n) = match (x, y) {
                (Sym::Row(a, n), Sym::Row(b, m)) if n == m => (a, b, n),
                (Sym::Row(_, n), Sym::Row(_, m)) => return Err(self.err(node, format!("rows of {n} and {m}"))),
                (Sym::Row(a, n), Sym::Const(c)) => (a, self.broadcast(node, &c, n)?, n),
                (Sym::Const(c), Sym::Row(b, n)) => (self.broadcast(node, &c, n)?, b, n),
                (Sym::Const(_), Sym::Const(_)) => return Err(self.err(node, "an op on constants only (fold it in the exporter)")),
            };
            Sym::Row(self.push(op::BINARY, n, n, a, b, Opnd::None, f), n)
        } else {
            match node.op_type.as_str() {
                "Clip" => self.clip(node)?,
                "MatMul" => self.matmul(node)?,
                "Gemm" => self.gemm(node)?,
                "ReduceMean" | "ReduceSum" => self.reduce(node)?,
                other => {
                    return Err(GpuError::UnsupportedOp { path: self.path.clone(), op: other.to_owned(), node: node.name.clone() });
                }
            }
        };
        self.syms.insert(out, sym);
        Ok(())
    }

    fn clip(&mut self, node: &NodeProto) -> Result<Sym, GpuError> {
        let Sym::Row(a, n) = self.input(node, 0)?.clone() else {
            return Err(self.err(node, "an op on constants only"));
        };
        // Opset 11+: bounds are inputs; opset 6: attributes.
        let mut bound = |i: usize, attr: &str, default: f32| -> Result<Opnd, GpuError> {
            if node.input.get(i).is_some_and(|s| !s.is_empty()) {
                match self.input(node, i)?.clone() {
                    Sym::Const(c) if c.data.len() == 1 => Ok(self.scalar(c.data[0])),
                    _ => Err(self.err(node, "bounds must be constant scalars")),
                }
            } else {
                let v = node.attribute.iter().find(|a| a.name == attr).map_or(default, |a| a.f);
                Ok(self.scalar(v))
            }
        };
        let lo = bound(1, "min", f32::NEG_INFINITY)?;
        let hi = bound(2, "max", f32::INFINITY)?;
        Ok(Sym::Row(self.push(op::CLIP, n, n, a, lo, hi, 0), n))
    }

    fn matmul(&mut self, node: &NodeProto) -> Result<Sym, GpuError> {
        let (x, w) = (self.input(node, 0)?.clone(), self.input(node, 1)?.clone());
        let (Sym::Row(a, k), Sym::Const(w)) = (x, w) else {
            return Err(self.err(node, "only a row times a constant matrix is supported"));
        };
        if w.dims.len() != 2 || w.dims[0] != k {
            return Err(self.err(node, format!("weights of shape {:?} for a row of {k}", w.dims)));
        }
        let n = w.dims[1];
        let wv = self.vector(&w.data);
        Ok(Sym::Row(self.push(op::DENSE, n, k, a, wv, Opnd::None, unary::IDENTITY), n))
    }

    fn gemm(&mut self, node: &NodeProto) -> Result<Sym, GpuError> {
        let attr_f = |name: &str, d: f32| node.attribute.iter().find(|a| a.name == name).map_or(d, |a| a.f);
        let attr_i = |name: &str| node.attribute.iter().find(|a| a.name == name).map_or(0, |a| a.i);
        let (alpha, beta, trans_a, trans_b) = (attr_f("alpha", 1.0), attr_f("beta", 1.0), attr_i("transA"), attr_i("transB"));
        let (x, w) = (self.input(node, 0)?.clone(), self.input(node, 1)?.clone());
        let (Sym::Row(a, k), Sym::Const(w), 0) = (x, w, trans_a) else {
            return Err(self.err(node, "only a row (not transposed) times a constant matrix is supported"));
        };
        let (rows, cols) = match w.dims.as_slice() {
            [r, c] => (*r, *c),
            d => return Err(self.err(node, format!("weights of shape {d:?}"))),
        };
        let (wk, n) = if trans_b != 0 { (cols, rows) } else { (rows, cols) };
        if wk != k {
            return Err(self.err(node, format!("weights of shape {:?} for a row of {k}", w.dims)));
        }
        // Row-major [k, n], alpha folded in.
        let mut data = vec![0.0; k * n];
        for i in 0..k {
            for o in 0..n {
                let v = if trans_b != 0 { w.data[o * cols + i] } else { w.data[i * cols + o] };
                data[i * n + o] = if alpha == 1.0 { v } else { alpha * v };
            }
        }
        let wv = self.vector(&data);
        let bias = if node.input.get(2).is_some_and(|s| !s.is_empty()) {
            let Sym::Const(c) = self.input(node, 2)?.clone() else {
                return Err(self.err(node, "the bias must be constant"));
            };
            let v: Vec<f32> = match c.data.len() {
                1 => vec![c.data[0]; n],
                m if m == n => c.data.clone(),
                m => return Err(self.err(node, format!("bias of {m} for {n} outputs"))),
            };
            let v: Vec<f32> = v.iter().map(|&b| if beta == 1.0 { b } else { beta * b }).collect();
            self.vector(&v)
        } else {
            Opnd::None
        };
        Ok(Sym::Row(self.push(op::DENSE, n, k, a, wv, bias, unary::IDENTITY), n))
    }

    fn reduce(&mut self, node: &NodeProto) -> Result<Sym, GpuError> {
        let Sym::Row(a, k) = self.input(node, 0)?.clone() else {
            return Err(self.err(node, "an op on constants only"));
        };
        // Axes: attribute (opset < 18) or second input; only the feature axis is supported.
        let axes: Vec<i64> = match node.attribute.iter().find(|a| a.name == "axes") {
            Some(a) => a.ints.clone(),
            None if node.input.get(1).is_some_and(|s| !s.is_empty()) => match self.input(node, 1)? {
                Sym::Const(c) => c.data.iter().map(|&v| v as i64).collect(),
                Sym::Row(..) => return Err(self.err(node, "axes must be constant")),
            },
            None => vec![],
        };
        if !(axes == [1] || axes == [-1]) {
            return Err(self.err(node, format!("axes {axes:?}; only the feature axis (1) is supported")));
        }
        let w = if node.op_type == "ReduceMean" { 1.0 / k as f32 } else { 1.0 };
        let wv = self.vector(&vec![w; k]);
        Ok(Sym::Row(self.push(op::DENSE, 1, k, a, wv, Opnd::None, unary::IDENTITY), 1))
    }

    /// How many ops read each value.
    fn uses(&self, result: Option<usize>) -> Vec<usize> {
        let mut u = vec![0; self.widths.len()];
        for o in &self.ops {
            for x in [o.a, o.b, o.c] {
                if let Opnd::Val(v) = x {
                    u[v] += 1;
                }
            }
        }
        if let Some(r) = result {
            u[r] += 1;
        }
        u
    }

    /// Fuses a dense layer with the bias add and activation that follow it, and the
    /// subtract-square-weighted-sum tail into one squared-error op. Only values read once are
    /// fused away, so nothing else sees a difference.
    fn fuse(&mut self, result: usize) {
        while let Some((at, op, remove)) = self.fusion(result) {
            self.ops[at] = op;
            for i in remove.into_iter().rev() {
                self.ops.remove(i);
            }
        }
    }

    /// The first fusion left: the op to put at `.0` (a consumer, after all its producers) and
    /// the producers to remove (ascending).
    fn fusion(&self, result: usize) -> Option<(usize, VOp, Vec<usize>)> {
        let uses = self.uses(Some(result));
        let producer: HashMap<usize, usize> = self.ops.iter().enumerate().map(|(i, o)| (o.dst, i)).collect();
        let read_once = |v: Opnd| match v {
            Opnd::Val(v) if uses[v] == 1 => producer.get(&v).copied(),
            _ => None,
        };
        let plain_dense = |d: &VOp| d.code == op::DENSE && d.f == unary::IDENTITY;
        for (j, o) in self.ops.iter().enumerate() {
            // dense + bias
            if o.code == op::BINARY && o.f == binary::ADD {
                for (x, y) in [(o.a, o.b), (o.b, o.a)] {
                    if let (Some(i), Opnd::Param(_) | Opnd::Scalar(_)) = (read_once(x), y) {
                        let d = self.ops[i];
                        if plain_dense(&d) && d.c == Opnd::None && (matches!(y, Opnd::Scalar(_)) || o.n == d.n) {
                            return Some((j, VOp { c: y, dst: o.dst, ..d }, vec![i]));
                        }
                    }
                }
            }
            // dense (+ bias) + activation
            if o.code == op::UNARY && matches!(o.f, unary::RELU | unary::SIGMOID | unary::TANH) {
                if let Some(i) = read_once(o.a).filter(|&i| plain_dense(&self.ops[i])) {
                    return Some((j, VOp { f: o.f, dst: o.dst, ..self.ops[i] }, vec![i]));
                }
            }
            // (a - b), squared, summed with constant weights
            if plain_dense(o) && o.n == 1 && o.c == Opnd::None {
                let Some(i) = read_once(o.a) else { continue };
                let sq = self.ops[i];
                let Opnd::Val(d) = sq.a else { continue };
                // The square reads the difference twice, and nothing else reads it.
                if sq.code != op::BINARY || sq.f != binary::MUL || sq.b != sq.a || uses[d] != 2 {
                    continue;
                }
                let Some(&p) = producer.get(&d) else { continue };
                let diff = self.ops[p];
                if diff.code == op::BINARY && diff.f == binary::SUB {
                    let fused = VOp { code: op::SQERR, n: 1, k: o.k, dst: o.dst, a: diff.a, b: diff.b, c: o.b, f: 0 };
                    let mut remove = vec![p, i];
                    remove.sort_unstable();
                    return Some((j, fused, remove));
                }
            }
        }
        None
    }

    /// Allocates scratch (a value's slot is freed after its last reader; an elementwise op
    /// writes over an input that dies with it) and writes the kernel's program.
    fn emit(self, result: usize) -> Result<DeviceMlp, GpuError> {
        let too_big = |need: usize| GpuError::Unsupported {
            path: self.path.clone(),
            message: format!("the graph needs {need} floats of scratch per row; the kernel has {MLP_SCRATCH}"),
        };
        let mut last = vec![0usize; self.widths.len()];
        for (i, o) in self.ops.iter().enumerate() {
            for x in [o.a, o.b, o.c] {
                if let Opnd::Val(v) = x {
                    last[v] = i;
                }
            }
        }
        last[result] = usize::MAX;
        let mut slot: Vec<Option<u32>> = vec![None; self.widths.len()];
        let mut free: Vec<(usize, usize)> = vec![(0, usize::MAX)];
        let mut high = 0usize;
        let mut ops = Vec::with_capacity(self.ops.len());
        let loc = |slot: &[Option<u32>], x: Opnd| -> u32 {
            match x {
                Opnd::None => NONE,
                Opnd::Input => INPUT,
                Opnd::Val(v) => SCRATCH | slot[v].expect("values are computed before they are read"),
                Opnd::Param(p) => PARAM | p,
                Opnd::Scalar(p) => PARAM_SCALAR | p,
            }
        };
        for (i, o) in self.ops.iter().enumerate() {
            let dying: Vec<usize> = [o.a, o.b, o.c]
                .iter()
                .filter_map(|x| match x {
                    Opnd::Val(v) if last[*v] == i => Some(*v),
                    _ => None,
                })
                .collect();
            let elementwise = matches!(o.code, op::UNARY | op::BINARY | op::CLIP);
            // An elementwise op reads element j before writing element j, so it may write
            // into an input of its own width that dies here.
            let reuse = dying.iter().copied().find(|&v| elementwise && self.widths[v] == o.n);
            let off = match reuse {
                Some(v) => slot[v].expect("computed"),
                None => {
                    let at = free.iter().position(|&(_, len)| len >= o.n).expect("the last free range is unbounded");
                    let (start, len) = free[at];
                    if len == o.n {
                        free.remove(at);
                    } else {
                        free[at] = (start + o.n, len - o.n);
                    }
                    high = high.max(start + o.n);
                    start as u32
                }
            };
            ops.push(MlpOp {
                code: o.code,
                n: o.n as u32,
                k: o.k as u32,
                dst: off,
                a: loc(&slot, o.a),
                b: loc(&slot, o.b),
                c: loc(&slot, o.c),
                f: o.f,
            });
            slot[o.dst] = Some(off);
            for v in dying {
                if Some(v) != reuse {
                    release(&mut free, slot[v].expect("computed") as usize, self.widths[v]);
                }
            }
        }
        if high > MLP_SCRATCH {
            return Err(too_big(high));
        }
        if self.params.len() >= 1 << 30 {
            return Err(GpuError::Unsupported { path: self.path.clone(), message: "more than 2^30 parameters".into() });
        }
        Ok(DeviceMlp { ops, params: self.params, result: slot[result].expect("computed"), scratch: high, width: self.width })
    }
}

/// Returns `[start, start + len)` to the sorted free list, merging neighbours.
fn release(free: &mut Vec<(usize, usize)>, start: usize, len: usize) {
    let at = free.partition_point(|&(s, _)| s < start);
    free.insert(at, (start, len));
    if at + 1 < free.len() && start + len == free[at + 1].0 {
        let next = free.remove(at + 1);
        free[at].1 = free[at].1.saturating_add(next.1);
    }
    if at > 0 && free[at - 1].0.saturating_add(free[at - 1].1) == start {
        let cur = free.remove(at);
        free[at - 1].1 = free[at - 1].1.saturating_add(cur.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_ranges_merge_with_both_neighbours() {
        let mut free = vec![(0, 4), (10, usize::MAX - 10)];
        release(&mut free, 4, 6);
        assert_eq!(free, vec![(0, usize::MAX)]);
        let mut free = vec![(20, usize::MAX - 20)];
        release(&mut free, 0, 5);
        release(&mut free, 10, 5);
        assert_eq!(free, vec![(0, 5), (10, 5), (20, usize::MAX - 20)]);
        release(&mut free, 5, 5);
        release(&mut free, 15, 5);
        assert_eq!(free, vec![(0, usize::MAX)]);
    }
}
