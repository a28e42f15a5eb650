//! The multi-pattern prefilter: one fast pattern per rule, one Aho-Corasick automaton per
//! protocol class, as Suricata's MPM per signature group. The automaton is built
//! case-insensitively over lowercased patterns; a case-sensitive pattern is confirmed on
//! the exact bytes at each hit. A scan yields the rules whose pattern occurs in the buffer;
//! rules without a usable pattern are always inspected.
//!
//! With the `vectorscan` feature the same variants can be compiled into one Vectorscan
//! block database per class instead (case-sensitive variants exact, nocase ones
//! `CASELESS`). Not `SINGLEMATCH`: Debian's Vectorscan 5.4.9 misses some single-byte
//! literals near the end of a buffer with that flag (found comparing it with Aho-Corasick
//! on the shared TLS captures), so repeats are dropped here as for Aho-Corasick.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::engine::PrefilterKind;

/// The compiled matcher of one class.
enum Matcher {
    None,
    Ac(AhoCorasick),
    #[cfg(feature = "vectorscan")]
    Hs(hyperscan::BlockDatabase),
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::None => f.write_str("None"),
            Matcher::Ac(_) => f.write_str("AhoCorasick"),
            #[cfg(feature = "vectorscan")]
            Matcher::Hs(_) => f.write_str("Vectorscan"),
        }
    }
}

/// Per-thread matcher scratch (Vectorscan needs one per database).
#[derive(Default)]
pub(crate) struct MatchScratch {
    #[cfg(feature = "vectorscan")]
    hs: Option<hyperscan::Scratch>,
}

impl std::fmt::Debug for MatchScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MatchScratch")
    }
}

/// One rule pattern behind an automaton pattern: exact bytes to confirm when the pattern is
/// case-sensitive, and the rules it stands for.
#[derive(Debug)]
struct Variant {
    exact: Option<Box<[u8]>>,
    rules: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Prefilter {
    matcher: Matcher,
    /// Per automaton pattern, the indices into `variants`.
    by_pattern: Vec<Vec<u32>>,
    variants: Vec<Variant>,
    /// Rules of this class without a usable fast pattern, in engine order.
    pub always: Vec<u32>,
}

impl Prefilter {
    /// `patterns`: (bytes, nocase, rule id) in engine order.
    pub(crate) fn build(patterns: &[(Vec<u8>, bool, u32)], always: Vec<u32>, kind: PrefilterKind) -> Self {
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
        let matcher = if lowers.is_empty() {
            Matcher::None
        } else {
            match kind {
                #[cfg(feature = "vectorscan")]
                PrefilterKind::Vectorscan => Matcher::Hs(hs_build(&variants, &lowers, &by_pattern)),
                _ => Matcher::Ac(
                    AhoCorasickBuilder::new()
                        .ascii_case_insensitive(true)
                        .match_kind(MatchKind::Standard)
                        // The crate's own choice (a contiguous NFA here): on ET Open's
                        // patterns a full DFA scanned no faster in overlapping mode and took
                        // 18 MB and 0.17 s more to build.
                        .build(&lowers)
                        .expect("fast patterns are non-empty byte strings"),
                ),
            }
        };
        Prefilter { matcher, by_pattern, variants, always }
    }

    pub(crate) fn new_scratch(&self) -> MatchScratch {
        match &self.matcher {
            #[cfg(feature = "vectorscan")]
            Matcher::Hs(db) => MatchScratch { hs: Some(db.alloc_scratch().expect("vectorscan scratch allocation")) },
            _ => MatchScratch::default(),
        }
    }

    pub(crate) fn variant_count(&self) -> usize {
        self.variants.len()
    }

    /// Appends to `out` the rules whose pattern occurs in `hay`. `seen` must be all false on
    /// entry and is left so; `touched` is scratch.
    pub(crate) fn scan(
        &self,
        hay: &[u8],
        out: &mut Vec<u32>,
        seen: &mut Vec<bool>,
        touched: &mut Vec<u32>,
        ms: &mut MatchScratch,
    ) {
        let ac = match &self.matcher {
            Matcher::None => return,
            Matcher::Ac(ac) => ac,
            #[cfg(feature = "vectorscan")]
            Matcher::Hs(db) => {
                let scratch = ms.hs.as_ref().expect("scratch made for this engine");
                let variants = &self.variants;
                if seen.len() < variants.len() {
                    seen.resize(variants.len(), false);
                }
                touched.clear();
                // A scan error (none is expected for block mode) leaves fewer candidates.
                let _ = db.scan(hay, scratch, |id: u32, _from: u64, _to: u64, _flags: u32| {
                    if !seen[id as usize] {
                        seen[id as usize] = true;
                        touched.push(id);
                        out.extend_from_slice(&variants[id as usize].rules);
                    }
                    hyperscan::Matching::Continue
                });
                for &vid in touched.iter() {
                    seen[vid as usize] = false;
                }
                return;
            }
        };
        let _ = ms;
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
                    if hay[m.start()..m.end()] != exact[..] {
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

/// One Vectorscan pattern per variant (its id is the variant index), as an escaped literal.
#[cfg(feature = "vectorscan")]
fn hs_build(variants: &[Variant], lowers: &[Vec<u8>], by_pattern: &[Vec<u32>]) -> hyperscan::BlockDatabase {
    use hyperscan::prelude::*;
    let mut lower_of = vec![0usize; variants.len()];
    for (pid, vids) in by_pattern.iter().enumerate() {
        for &v in vids {
            lower_of[v as usize] = pid;
        }
    }
    let patterns: Patterns = variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (bytes, flags) = match &v.exact {
                Some(e) => (&e[..], CompileFlags::empty()),
                None => (&lowers[lower_of[i]][..], CompileFlags::CASELESS),
            };
            let expression: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
            Pattern { expression, flags, id: Some(i), ext: Default::default(), som: None }
        })
        .collect();
    patterns.build().expect("escaped literals always compile")
}
