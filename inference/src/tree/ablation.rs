//! Feature ablation for one row, re-walking only the trees it can change.
//!
//! Setting feature `f` to a reference value can only move a row to another leaf in the
//! trees whose decision path for that row reads `f`; every other tree keeps its leaf. So
//! instead of one whole-ensemble evaluation per feature, the row is walked once, each
//! tree's path features and leaf are kept, and for each feature only its trees are walked
//! again, their old leaves taken out of the raw class sums and the new ones put in. With
//! trees of depth `d` that is at most `d` tree walks per tree in all, a few ensemble
//! evaluations' worth, where the plain method costs one per feature (dozens).

use super::{TreeEnsemble, LEAF};

/// Working space for [`TreeEnsemble::ablate`], reused across calls.
#[derive(Debug, Default)]
pub struct Ablation {
    /// Per tree: the leaf the row reaches.
    leaves: Vec<u32>,
    /// (feature, tree) for every distinct feature on every tree's path, sorted by feature.
    uses: Vec<(u16, u32)>,
    /// The row's raw class sums (before `base_values` and the post transform).
    raw: Vec<f32>,
    moved: Vec<f32>,
}

impl TreeEnsemble {
    /// For every feature read on `row`'s decision paths, the probability of `class` with
    /// that feature (alone) set to `reference`'s value, as `(feature, probability)` in
    /// ascending feature order. `row` must hold no NaN.
    pub fn ablate(&self, row: &[f32], reference: &[f32], class: usize, work: &mut Ablation, out: &mut Vec<(usize, f32)>) {
        out.clear();
        let c = self.n_classes;
        work.leaves.clear();
        work.uses.clear();
        work.raw.clear();
        work.raw.resize(c, 0.0);
        for (t, &root) in self.roots.iter().enumerate() {
            let first = work.uses.len();
            let mut r = root;
            while r & LEAF == 0 {
                let b = &self.branches[r as usize];
                if !work.uses[first..].iter().any(|&(f, _)| f == b.feature) {
                    work.uses.push((b.feature, t as u32));
                }
                r = b.next(row[b.feature as usize]);
            }
            let leaf = r & !LEAF;
            work.leaves.push(leaf);
            self.add_leaf(leaf as usize, &mut work.raw);
        }
        work.uses.sort_unstable();
        let mut x = row.to_vec();
        let mut i = 0;
        while i < work.uses.len() {
            let f = work.uses[i].0;
            let saved = x[f as usize];
            x[f as usize] = reference[f as usize];
            work.moved.clone_from(&work.raw);
            while i < work.uses.len() && work.uses[i].0 == f {
                let t = work.uses[i].1 as usize;
                let new = self.leaf_of(self.roots[t], &x);
                let old = work.leaves[t] as usize;
                if new != old {
                    self.sub_leaf(old, &mut work.moved);
                    self.add_leaf(new, &mut work.moved);
                }
                i += 1;
            }
            x[f as usize] = saved;
            self.finish(&mut work.moved);
            out.push((f as usize, work.moved[class]));
        }
    }

    #[inline(always)]
    fn sub_leaf(&self, leaf: usize, acc: &mut [f32]) {
        let (a, b) = (self.leaf_start[leaf] as usize, self.leaf_start[leaf + 1] as usize);
        for k in a..b {
            acc[self.leaf_class[k] as usize] -= self.leaf_weight[k];
        }
    }
}
