//! The multi-pattern prefilter: one fast pattern per rule, one Aho-Corasick automaton per
//! protocol class, as Suricata's MPM per signature group. The automaton is built
//! case-insensitively over lowercased patterns; a case-sensitive pattern is confirmed on
//! the exact bytes at each hit. A scan yields the rules whose pattern occurs in the buffer;
//! rules without a usable pattern are always inspected.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// One rule pattern behind an automaton pattern: exact bytes to confirm when the pattern is
/// case-sensitive, and the rules it stands for.
#[derive(Debug)]
struct Variant {
    exact: Option<Box<[u8]>>,
    rules: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Prefilter {
    ac: Option<AhoCorasick>,
    /// Per automaton pattern, the indices into `variants`.
    by_pattern: Vec<Vec<u32>>,
    variants: Vec<Variant>,
    /// Rules of this class without a usable fast pattern, in engine order.
    pub always: Vec<u32>,
}

impl Prefilter {
    /// `patterns`: (bytes, nocase, rule id) in engine order.
    pub(crate) fn build(patterns: &[(Vec<u8>, bool, u32)], always: Vec<u32>) -> Self {
        use std::collections::HashMap;
        let mut lower_ids: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut lowers: Vec<Vec<u8>> = Vec::new();
        let mut by_pattern: Vec<Vec<u32>> = Vec::new();
        let mut variant_ids: HashMap<(Vec<u8>, bool), u32> = HashMap::new();
        let mut variants: Vec<Variant> = Vec::new();
        for (bytes, nocase, rule) in patterns {
            let low = bytes.to_ascii_lowercase();
            let key = (if *nocase { low.clone() } else { bytes.clone() }, *nocase);
            if let Some(&v) = variant_ids.get(&key) {
                variants[v as usize].rules.push(*rule);
                continue;
            }
            let pid = *lower_ids.entry(low.clone()).or_insert_with(|| {
                lowers.push(low.clone());
                by_pattern.push(Vec::new());
                (lowers.len() - 1) as u32
            });
            let vid = variants.len() as u32;
            variants.push(Variant {
                exact: if *nocase { None } else { Some(bytes.clone().into_boxed_slice()) },
                rules: vec![*rule],
            });
            variant_ids.insert(key, vid);
            by_pattern[pid as usize].push(vid);
        }
        let ac = if lowers.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&lowers)
                    .expect("fast patterns are non-empty byte strings"),
            )
        };
        Prefilter { ac, by_pattern, variants, always }
    }

    pub(crate) fn variant_count(&self) -> usize {
        self.variants.len()
    }

    /// Appends to `out` the rules whose pattern occurs in `hay`. `seen` must be all false on
    /// entry and is left so; `touched` is scratch.
    pub(crate) fn scan(&self, hay: &[u8], out: &mut Vec<u32>, seen: &mut Vec<bool>, touched: &mut Vec<u32>) {
        let Some(ac) = &self.ac else { return };
        if seen.len() < self.variants.len() {
            seen.resize(self.variants.len(), false);
        }
        touched.clear();
        for m in ac.find_overlapping_iter(hay) {
            for &vid in &self.by_pattern[m.pattern().as_usize()] {
                if seen[vid as usize] {
                    continue;
                }
                let v = &self.variants[vid as usize];
                if let Some(exact) = &v.exact {
                    if &hay[m.start()..m.end()] != &exact[..] {
                        continue;
                    }
                }
                seen[vid as usize] = true;
                touched.push(vid);
                out.extend_from_slice(&v.rules);
            }
        }
        for &vid in touched.iter() {
            seen[vid as usize] = false;
        }
    }
}
