//! A native evaluator of ONNX-ML `TreeEnsembleClassifier`, read from the node arrays of the
//! graph and laid out flat: one 16-byte record per branch, leaves as ranges into one array of
//! (class, weight). Rows are scored in blocks, tree by tree, so a tree's nodes stay in cache
//! while a block of rows walks it. Semantics follow tract's implementation of the operator
//! (the reference the tests compare against): sums in tree order, then `base_values`, then
//! `post_transform`, then the binary-layout rule for two-class models whose leaves only
//! score class 0.

use std::collections::HashMap;
use std::path::Path;

use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use tract_onnx::prelude::Framework;

use crate::InferenceError;

mod ablation;
pub use ablation::Ablation;

/// A reference to a child: a branch index, or a leaf index with the top bit set.
pub(crate) const LEAF: u32 = 1 << 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Cmp {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct Branch {
    pub(crate) threshold: f32,
    pub(crate) feature: u16,
    pub(crate) cmp: Cmp,
    pub(crate) nan_true: bool,
    pub(crate) on_true: u32,
    pub(crate) on_false: u32,
}

impl Branch {
    #[inline(always)]
    fn next(&self, x: f32) -> u32 {
        let go_true = if x.is_nan() {
            self.nan_true
        } else {
            match self.cmp {
                Cmp::Leq => x <= self.threshold,
                Cmp::Lt => x < self.threshold,
                Cmp::Gte => x >= self.threshold,
                Cmp::Gt => x > self.threshold,
                Cmp::Eq => x == self.threshold,
                Cmp::Neq => x != self.threshold,
            }
        };
        if go_true {
            self.on_true
        } else {
            self.on_false
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Post {
    None,
    Softmax,
    Logistic,
}

/// Class labels as the graph declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassLabels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

/// A tree ensemble classifier in flat arrays.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    // The GPU layout (`gpu/layout.rs`) is built from these.
    pub(crate) roots: Vec<u32>,
    pub(crate) branches: Vec<Branch>,
    /// Leaf `i` owns `weights[leaf_start[i]..leaf_start[i + 1]]`.
    pub(crate) leaf_start: Vec<u32>,
    pub(crate) leaf_class: Vec<u32>,
    pub(crate) leaf_weight: Vec<f32>,
    pub(crate) base: Vec<f32>,
    pub(crate) post: Post,
    pub(crate) binary_layout: bool,
    n_classes: usize,
    n_features: usize,
    labels: ClassLabels,
    /// The branchless layout, when every branch is an ordering comparison.
    fast: Option<Lockstep>,
}

/// Every tree as one array of `x <= threshold` nodes (LT, GT and GTE rewritten to LEQ by
/// moving the threshold to the neighbouring float and swapping children), leaves pointing
/// to themselves. A row then walks a tree in exactly `depth` steps with no branch to
/// mispredict, and several rows walk in lockstep so their loads overlap.
#[derive(Debug, Clone)]
struct Lockstep {
    nodes: Vec<FastNode>,
    /// Per tree: (root node index, depth).
    trees: Vec<(u32, u32)>,
    /// Per node: its leaf index (meaningful for leaves only).
    leaf_of: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct FastNode {
    threshold: f32,
    feature: u32,
    /// [when x <= threshold, otherwise].
    child: [u32; 2],
}

/// Rows walked in lockstep.
const LANES: usize = 8;

/// Rows scored together per tree walk.
const BLOCK: usize = 64;

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

impl TreeEnsemble {
    /// Reads the first `TreeEnsembleClassifier` node of an ONNX file.
    pub fn load(path: &Path) -> Result<TreeEnsemble, InferenceError> {
        let err = |message: String| InferenceError::Onnx { path: path.to_owned(), message };
        let proto = tract_onnx::onnx().proto_model_for_path(path).map_err(|e| err(format!("{e:#}")))?;
        let graph = proto.graph.as_ref().ok_or_else(|| err("no graph".into()))?;
        let node = graph
            .node
            .iter()
            .find(|n| n.op_type == "TreeEnsembleClassifier")
            .ok_or_else(|| err("no TreeEnsembleClassifier node".into()))?;
        TreeEnsemble::from_node(node).map_err(err)
    }

    /// Builds the flat layout from the operator's attributes.
    pub fn from_node(node: &NodeProto) -> Result<TreeEnsemble, String> {
        let ints = |name: &str| -> Result<&[i64], String> {
            attr(node, name).map(|a| a.ints.as_slice()).ok_or_else(|| format!("missing attribute {name}"))
        };
        let floats = |name: &str| -> Result<&[f32], String> {
            attr(node, name).map(|a| a.floats.as_slice()).ok_or_else(|| format!("missing attribute {name}"))
        };
        let strings = |name: &str| -> Option<Vec<String>> {
            attr(node, name).filter(|a| !a.strings.is_empty() || a.r#type == AttributeType::Strings as i32).map(|a| {
                a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()
            })
        };
        let labels = match (attr(node, "classlabels_int64s"), strings("classlabels_strings")) {
            (Some(a), None) => ClassLabels::Ints(a.ints.clone()),
            (None, Some(s)) => ClassLabels::Strings(s),
            _ => return Err("exactly one of classlabels_int64s and classlabels_strings is needed".into()),
        };
        let n_classes = match &labels {
            ClassLabels::Ints(v) => v.len(),
            ClassLabels::Strings(v) => v.len(),
        };
        let tree_ids = ints("nodes_treeids")?;
        let node_ids = ints("nodes_nodeids")?;
        let feature_ids = ints("nodes_featureids")?;
        let values = floats("nodes_values")?;
        let true_ids = ints("nodes_truenodeids")?;
        let false_ids = ints("nodes_falsenodeids")?;
        let modes = strings("nodes_modes").ok_or("missing attribute nodes_modes")?;
        let n = tree_ids.len();
        let nan_true: Vec<bool> = match attr(node, "nodes_missing_value_tracks_true") {
            Some(a) if !a.ints.is_empty() => a.ints.iter().map(|&v| v != 0).collect(),
            _ => vec![false; n],
        };
        for (name, len) in [
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", feature_ids.len()),
            ("nodes_values", values.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_modes", modes.len()),
            ("nodes_missing_value_tracks_true", nan_true.len()),
        ] {
            if len != n {
                return Err(format!("{name} has {len} entries, nodes_treeids {n}"));
            }
        }
        let c_tree = ints("class_treeids")?;
        let c_node = ints("class_nodeids")?;
        let c_id = ints("class_ids")?;
        let c_w = floats("class_weights")?;
        if c_node.len() != c_tree.len() || c_id.len() != c_tree.len() || c_w.len() != c_tree.len() {
            return Err("class_* arrays differ in length".into());
        }
        let base = match attr(node, "base_values") {
            Some(a) if !a.floats.is_empty() => {
                if a.floats.len() != n_classes {
                    return Err(format!("base_values has {} entries for {n_classes} classes", a.floats.len()));
                }
                a.floats.clone()
            }
            _ => vec![0.0; n_classes],
        };
        let post = match attr(node, "post_transform").map(|a| String::from_utf8_lossy(&a.s).into_owned()).as_deref() {
            None | Some("NONE") | Some("") => Post::None,
            Some("SOFTMAX") => Post::Softmax,
            Some("LOGISTIC") => Post::Logistic,
            Some(other) => return Err(format!("post_transform {other} is not supported")),
        };
        if c_id.iter().any(|&c| c < 0 || c as usize >= n_classes) {
            return Err("a class_ids entry is out of range".into());
        }
        if n_classes < 2 {
            return Err("a classifier needs at least two classes".into());
        }
        let binary_layout = n_classes == 2 && c_id.iter().all(|&c| c == 0);

        // Order nodes and leaf entries by (tree, node id), stable, as tract does, so that
        // sums are accumulated in the same order and agree to the last bit where possible.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (tree_ids[i], node_ids[i]));
        let mut leaf_order: Vec<usize> = (0..c_tree.len()).collect();
        leaf_order.sort_by_key(|&i| (c_tree[i], c_node[i]));

        // First pass: give every (tree, node) its reference (branch or leaf index).
        let mut refs: HashMap<(i64, i64), u32> = HashMap::with_capacity(n);
        let (mut n_branch, mut n_leaf) = (0u32, 0u32);
        for &i in &order {
            let r = if modes[i] == "LEAF" {
                n_leaf += 1;
                LEAF | (n_leaf - 1)
            } else {
                n_branch += 1;
                n_branch - 1
            };
            if refs.insert((tree_ids[i], node_ids[i]), r).is_some() {
                return Err(format!("tree {} has node {} twice", tree_ids[i], node_ids[i]));
            }
        }
        let mut roots = Vec::new();
        let mut branches = Vec::with_capacity(n_branch as usize);
        let mut leaf_start = Vec::with_capacity(n_leaf as usize + 1);
        let (mut leaf_class, mut leaf_weight) = (Vec::new(), Vec::new());
        let mut li = 0;
        let mut last_tree = None;
        let mut n_features = 0usize;
        for &i in &order {
            let t = tree_ids[i];
            if last_tree != Some(t) {
                last_tree = Some(t);
                roots.push(refs[&(t, node_ids[i])]);
            }
            if modes[i] == "LEAF" {
                leaf_start.push(leaf_class.len() as u32);
                // Leaf entries that name nodes before this one belong to no leaf; skip them as
                // tract does.
                while li < leaf_order.len() && (c_tree[leaf_order[li]], c_node[leaf_order[li]]) < (t, node_ids[i]) {
                    li += 1;
                }
                while li < leaf_order.len() && (c_tree[leaf_order[li]], c_node[leaf_order[li]]) == (t, node_ids[i]) {
                    leaf_class.push(c_id[leaf_order[li]] as u32);
                    leaf_weight.push(c_w[leaf_order[li]]);
                    li += 1;
                }
                continue;
            }
            let cmp = match modes[i].as_str() {
                "BRANCH_LEQ" => Cmp::Leq,
                "BRANCH_LT" => Cmp::Lt,
                "BRANCH_GTE" => Cmp::Gte,
                "BRANCH_GT" => Cmp::Gt,
                "BRANCH_EQ" => Cmp::Eq,
                "BRANCH_NEQ" => Cmp::Neq,
                other => return Err(format!("node mode {other} is not supported")),
            };
            let child = |id: i64| {
                refs.get(&(t, id)).copied().ok_or_else(|| format!("tree {t} node {} points to missing node {id}", node_ids[i]))
            };
            let feature = u16::try_from(feature_ids[i]).map_err(|_| format!("feature id {} out of range", feature_ids[i]))?;
            n_features = n_features.max(feature as usize + 1);
            branches.push(Branch {
                threshold: values[i],
                feature,
                cmp,
                nan_true: nan_true[i],
                on_true: child(true_ids[i])?,
                on_false: child(false_ids[i])?,
            });
        }
        leaf_start.push(leaf_class.len() as u32);
        let fast = Lockstep::build(&roots, &branches);
        Ok(TreeEnsemble {
            roots,
            branches,
            leaf_start,
            leaf_class,
            leaf_weight,
            base,
            post,
            binary_layout,
            n_classes,
            n_features,
            labels,
            fast,
        })
    }

    /// Number of classes in the output.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// One more than the largest feature index a branch reads.
    pub fn n_features_used(&self) -> usize {
        self.n_features
    }

    /// The class labels the graph declares.
    pub fn labels(&self) -> &ClassLabels {
        &self.labels
    }

    /// Number of trees and of branch nodes.
    pub fn size(&self) -> (usize, usize) {
        (self.roots.len(), self.branches.len())
    }

    #[inline(always)]
    fn leaf_of(&self, root: u32, row: &[f32]) -> usize {
        let mut r = root;
        while r & LEAF == 0 {
            let b = &self.branches[r as usize];
            r = b.next(row[b.feature as usize]);
        }
        (r & !LEAF) as usize
    }

    /// Class probabilities for `rows` (row-major, `width` values each, `width` at least
    /// `n_features_used`) into `out` (`n_classes` per row). Rows with NaN take the slower
    /// walk that follows `nodes_missing_value_tracks_true`; the scorer never passes NaN.
    pub fn predict(&self, rows: &[f32], width: usize, out: &mut [f32]) {
        let c = self.n_classes;
        let n = rows.len() / width;
        assert!(width >= self.n_features && out.len() >= n * c, "rows or output too small");
        out[..n * c].fill(0.0);
        if let Some(fast) = self.fast.as_ref().filter(|_| !rows.iter().any(|v| v.is_nan())) {
            self.predict_lockstep(fast, rows, width, n, out);
        } else {
            self.predict_walk(rows, width, n, out);
        }
        for r in 0..n {
            self.finish(&mut out[r * c..(r + 1) * c]);
        }
    }

    #[inline(always)]
    fn add_leaf(&self, leaf: usize, acc: &mut [f32]) {
        let (a, b) = (self.leaf_start[leaf] as usize, self.leaf_start[leaf + 1] as usize);
        for k in a..b {
            acc[self.leaf_class[k] as usize] += self.leaf_weight[k];
        }
    }

    fn predict_lockstep(&self, fast: &Lockstep, rows: &[f32], width: usize, n: usize, out: &mut [f32]) {
        let c = self.n_classes;
        let nodes = &fast.nodes[..];
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            for &(root, depth) in &fast.trees {
                let mut r = start;
                while r + LANES <= end {
                    let base: [&[f32]; LANES] = std::array::from_fn(|k| &rows[(r + k) * width..(r + k + 1) * width]);
                    let mut idx = [root as usize; LANES];
                    for _ in 0..depth {
                        for k in 0..LANES {
                            let nd = &nodes[idx[k]];
                            let x = base[k][nd.feature as usize];
                            idx[k] = nd.child[(x > nd.threshold) as usize] as usize;
                        }
                    }
                    for k in 0..LANES {
                        let leaf = fast.leaf_of[idx[k]] as usize;
                        self.add_leaf(leaf, &mut out[(r + k) * c..(r + k + 1) * c]);
                    }
                    r += LANES;
                }
                for r in r..end {
                    let row = &rows[r * width..(r + 1) * width];
                    let mut i = root as usize;
                    for _ in 0..depth {
                        let nd = &nodes[i];
                        let x = row[nd.feature as usize];
                        i = nd.child[(x > nd.threshold) as usize] as usize;
                    }
                    self.add_leaf(fast.leaf_of[i] as usize, &mut out[r * c..(r + 1) * c]);
                }
            }
        }
    }

    fn predict_walk(&self, rows: &[f32], width: usize, n: usize, out: &mut [f32]) {
        let c = self.n_classes;
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            for &root in &self.roots {
                for r in start..end {
                    let leaf = self.leaf_of(root, &rows[r * width..(r + 1) * width]);
                    self.add_leaf(leaf, &mut out[r * c..(r + 1) * c]);
                }
            }
        }
    }

    /// Class probabilities of one row.
    pub fn predict_one(&self, row: &[f32], out: &mut [f32]) {
        self.predict(row, row.len(), out)
    }

    /// Distinct features read along the decision paths of one row, in first-seen order.
    pub fn path_features(&self, row: &[f32], out: &mut Vec<usize>) {
        out.clear();
        for &root in &self.roots {
            let mut r = root;
            while r & LEAF == 0 {
                let b = &self.branches[r as usize];
                if !out.contains(&(b.feature as usize)) {
                    out.push(b.feature as usize);
                }
                r = b.next(row[b.feature as usize]);
            }
        }
    }

    fn finish(&self, acc: &mut [f32]) {
        for (a, b) in acc.iter_mut().zip(&self.base) {
            *a += b;
        }
        match self.post {
            Post::None => {}
            Post::Logistic => {
                for a in acc.iter_mut() {
                    *a = 1.0 / (1.0 + (-*a).exp());
                }
            }
            Post::Softmax => {
                let max = acc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for a in acc.iter_mut() {
                    *a = (*a - max).exp();
                    sum += *a;
                }
                for a in acc.iter_mut() {
                    *a /= sum;
                }
            }
        }
        if self.binary_layout {
            let s = acc[0];
            acc[0] = 1.0 - s;
            acc[1] = s;
        }
    }
}

impl Lockstep {
    /// The branchless layout of the forest, or `None` when a branch tests equality.
    fn build(roots: &[u32], branches: &[Branch]) -> Option<Lockstep> {
        let mut l = Lockstep { nodes: Vec::new(), trees: Vec::with_capacity(roots.len()), leaf_of: Vec::new() };
        for &root in roots {
            let start = l.nodes.len() as u32;
            let depth = l.add(root, branches)?;
            l.trees.push((start, depth));
        }
        Some(l)
    }

    /// Appends the subtree at `r` in depth-first order; returns its depth.
    fn add(&mut self, r: u32, branches: &[Branch]) -> Option<u32> {
        let me = self.nodes.len();
        if r & LEAF != 0 {
            self.nodes.push(FastNode { threshold: 0.0, feature: 0, child: [me as u32; 2] });
            self.leaf_of.push(r & !LEAF);
            return Some(0);
        }
        let b = &branches[r as usize];
        // Rewrite to `x <= t`, true side first. Rows with NaN never take this path.
        let (threshold, swap) = match b.cmp {
            Cmp::Leq => (b.threshold, false),
            Cmp::Lt => (next_down(b.threshold), false),
            Cmp::Gt => (b.threshold, true),
            Cmp::Gte => (next_down(b.threshold), true),
            Cmp::Eq | Cmp::Neq => return None,
        };
        self.nodes.push(FastNode { threshold, feature: b.feature as u32, child: [0, 0] });
        self.leaf_of.push(0);
        let (t, f) = if swap { (b.on_false, b.on_true) } else { (b.on_true, b.on_false) };
        let ti = self.nodes.len() as u32;
        let dt = self.add(t, branches)?;
        let fi = self.nodes.len() as u32;
        let df = self.add(f, branches)?;
        self.nodes[me].child = [ti, fi];
        Some(1 + dt.max(df))
    }
}

/// The largest float below `t`: `x < t` is `x <= next_down(t)` for every non-NaN `x`.
pub(crate) fn next_down(t: f32) -> f32 {
    if t.is_nan() || t == f32::NEG_INFINITY {
        t
    } else if t == 0.0 {
        -f32::from_bits(1)
    } else if t > 0.0 {
        f32::from_bits(t.to_bits() - 1)
    } else {
        f32::from_bits(t.to_bits() + 1)
    }
}
