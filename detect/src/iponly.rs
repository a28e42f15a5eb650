//! The IP-only rule index. ET Open loads about 1,200 IP-only rules, most of them long lists
//! of addresses on one side; checking each on the first packet of every flow direction
//! would cost more than the rest of detection. As Suricata keeps radix trees, this keeps,
//! per address family and side, the address line cut into segments, each with the rules
//! whose set covers it: a lookup is one binary search.

use portcullis_common::{FlowKey, IpFamily};
use portcullis_rules::{IpSet, Rule};

/// Disjoint segments of the address line and the rules covering each.
#[derive(Debug)]
struct RangeIndex<T> {
    /// Segment starts, ascending; segment `i` runs to the next start (or the end).
    starts: Vec<T>,
    /// Per segment, a slice of `ids`.
    spans: Vec<(u32, u32)>,
    ids: Vec<u32>,
}

impl<T: Ord + Copy> RangeIndex<T> {
    fn build(ranges: &[(T, T, u32)], next: impl Fn(T) -> Option<T>) -> Self {
        // +1 opens a rule at its start, -1 closes it after its end.
        let mut events: Vec<(T, bool, u32)> = Vec::with_capacity(ranges.len() * 2);
        for &(s, e, id) in ranges {
            events.push((s, true, id));
            if let Some(n) = next(e) {
                events.push((n, false, id));
            }
        }
        events.sort_by_key(|e| e.0);
        let mut idx = RangeIndex { starts: Vec::new(), spans: Vec::new(), ids: Vec::new() };
        let mut active: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < events.len() {
            let at = events[i].0;
            while i < events.len() && events[i].0 == at {
                let (_, open, id) = events[i];
                if open {
                    active.push(id);
                } else if let Some(p) = active.iter().position(|&x| x == id) {
                    active.swap_remove(p);
                }
                i += 1;
            }
            let mut list = active.clone();
            list.sort_unstable();
            list.dedup();
            idx.starts.push(at);
            idx.spans.push((idx.ids.len() as u32, list.len() as u32));
            idx.ids.extend_from_slice(&list);
        }
        idx
    }

    fn lookup(&self, x: T) -> &[u32] {
        let i = self.starts.partition_point(|s| *s <= x);
        if i == 0 {
            return &[];
        }
        let (s, n) = self.spans[i - 1];
        &self.ids[s as usize..(s + n) as usize]
    }
}

/// How many addresses a set holds, IPv4 first (a v6 count only breaks ties).
fn span(set: &IpSet) -> (u64, u128) {
    let v4 = set.v4.iter().map(|&(s, e)| u64::from(e - s) + 1).sum();
    let v6 = set.v6.iter().fold(0u128, |a, &(s, e)| a.saturating_add(e - s).saturating_add(1));
    (v4, v6)
}

/// Candidates for the IP-only rules of a packet.
#[derive(Debug)]
pub(crate) struct IpOnlyIndex {
    src_v4: RangeIndex<u32>,
    src_v6: RangeIndex<u128>,
    dst_v4: RangeIndex<u32>,
    dst_v6: RangeIndex<u128>,
    /// Rules indexed by neither side (both sides `any`, or bidirectional).
    always: Vec<u32>,
}

impl IpOnlyIndex {
    /// `rules`: engine ids of the IP-only rules with their rules.
    pub(crate) fn build<'a>(rules: impl Iterator<Item = (u32, &'a Rule)>) -> Self {
        let (mut sv4, mut sv6, mut dv4, mut dv6, mut always) = (vec![], vec![], vec![], vec![], vec![]);
        let push = |set: &IpSet, id: u32, v4: &mut Vec<(u32, u32, u32)>, v6: &mut Vec<(u128, u128, u32)>| {
            v4.extend(set.v4.iter().map(|&(s, e)| (s, e, id)));
            v6.extend(set.v6.iter().map(|&(s, e)| (s, e, id)));
        };
        for (id, r) in rules {
            // Index the more selective side: `$HOME_NET -> [list]` is found by the list.
            if r.bidirectional || (r.src.is_any() && r.dst.is_any()) {
                always.push(id);
            } else if span(&r.src) <= span(&r.dst) {
                push(&r.src, id, &mut sv4, &mut sv6);
            } else {
                push(&r.dst, id, &mut dv4, &mut dv6);
            }
        }
        IpOnlyIndex {
            src_v4: RangeIndex::build(&sv4, |e: u32| e.checked_add(1)),
            src_v6: RangeIndex::build(&sv6, |e: u128| e.checked_add(1)),
            dst_v4: RangeIndex::build(&dv4, |e: u32| e.checked_add(1)),
            dst_v6: RangeIndex::build(&dv6, |e: u128| e.checked_add(1)),
            always,
        }
    }

    /// Appends the rules that may match `key` (a superset; the caller checks each).
    pub(crate) fn candidates(&self, key: &FlowKey, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        match key.family {
            IpFamily::V4 => {
                let a = |b: &[u8; 16]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                out.extend_from_slice(self.src_v4.lookup(a(&key.src)));
                out.extend_from_slice(self.dst_v4.lookup(a(&key.dst)));
            }
            IpFamily::V6 => {
                out.extend_from_slice(self.src_v6.lookup(u128::from_be_bytes(key.src)));
                out.extend_from_slice(self.dst_v6.lookup(u128::from_be_bytes(key.dst)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_overlaps() {
        let idx = RangeIndex::build(&[(10u32, 20, 1), (15, 30, 2), (40, 40, 3), (0, u32::MAX, 4)], |e: u32| e.checked_add(1));
        let table: [(u32, &[u32]); 7] =
            [(5, &[4]), (10, &[1, 4]), (15, &[1, 2, 4]), (21, &[2, 4]), (31, &[4]), (40, &[3, 4]), (u32::MAX, &[4])];
        for (x, want) in table {
            assert_eq!(idx.lookup(x), want, "at {x}");
        }
    }
}
