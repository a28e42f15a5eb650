//! What the reassembler is told: depth, caps and the overlap policy.

/// Which copy wins when a segment overlaps buffered, not yet delivered bytes with different
/// content. These are Suricata's `stream.reassembly` os-policies as its IDS mode applies them
/// (`DoHandleDataOverlap` in `stream-tcp-list.c`); the policies Suricata treats alike share a
/// variant. "Old" is the buffered copy, "new" the arriving segment.
///
/// Bytes already delivered are never replaced whatever the policy: they have been inspected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// The old copy always wins (Suricata's `first`).
    First,
    /// The new copy wins only where the new segment starts before the old one. Suricata's
    /// default (`bsd`), and also what it does for `windows`, `vista`, `windows2k3`, `macos`,
    /// `irix` and `hpux10`.
    #[default]
    Bsd,
    /// As `Bsd`, and also when both start together and the new one ends later (`linux`).
    Linux,
    /// As `Bsd`, and also when both start together and the new one ends no earlier
    /// (`old-linux`).
    OldLinux,
    /// The new copy wins when it starts before or together with the old one and ends no earlier,
    /// or starts after it and ends later (`solaris`, `hpux11`).
    Solaris,
    /// The new copy always wins (Suricata's `last`).
    Last,
}

impl OverlapPolicy {
    /// Whether the new segment `[new_start, new_end)` replaces the bytes it shares with the
    /// buffered piece `[old_start, old_end)`.
    pub(crate) fn new_wins(
        self,
        new_start: u64,
        new_end: u64,
        old_start: u64,
        old_end: u64,
    ) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            OverlapPolicy::First => false,
            OverlapPolicy::Last => true,
            OverlapPolicy::Bsd => new_start < old_start,
            OverlapPolicy::Linux => {
                new_start < old_start || (new_start == old_start && new_end > old_end)
            }
            OverlapPolicy::OldLinux => {
                new_start < old_start || (new_start == old_start && new_end >= old_end)
            }
            OverlapPolicy::Solaris => match new_start.cmp(&old_start) {
                Less | Equal => new_end >= old_end,
                Greater => new_end > old_end,
            },
        }
    }
}

/// Limits and choices for one direction's reassembly. One value serves every flow of a worker;
/// `Default` follows Suricata 7's `stream` defaults where Suricata has the setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Bytes per direction, counted from the first byte after the ISN, that are delivered at
    /// most (`stream.reassembly.depth`, 1 MiB). `0` means unlimited.
    pub depth: u64,
    /// Out-of-order bytes one direction may hold while it waits for a hole to fill. Suricata
    /// has no per-stream cap (only the global memcap); this one keeps a single flow from taking
    /// a worker's whole memcap. Reaching it gives up on the hole (a counted gap).
    pub max_ooo_bytes: usize,
    /// Out-of-order pieces one direction may hold, so that many tiny segments cannot cost more
    /// bookkeeping than their bytes suggest. Reaching it is handled as `max_ooo_bytes`.
    pub max_ooo_segments: usize,
    /// Out-of-order bytes all reassemblers sharing one `StreamStats` (one worker) may hold
    /// (`stream.reassembly.memcap`, 256 MiB). `0` means unlimited.
    pub memcap: u64,
    /// How far past the next expected byte a segment may start, or an ACK from the other side
    /// may point, before it is taken as bogus and ignored rather than buffered or skipped to.
    /// Suricata checks against the receiver's advertised window, which this crate does not see.
    pub window: u32,
    /// Start from the first segment seen (with ACK set, as Suricata's midstream pickup needs)
    /// when the SYN was missed. Suricata's own default is `false`; Portcullis inspects such
    /// streams, and the flow table decides separately whether the flow counts as established.
    pub midstream: bool,
    /// Which copy of overlapping buffered bytes wins (`stream.reassembly` os-policy).
    pub overlap_policy: OverlapPolicy,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            depth: 1 << 20,
            max_ooo_bytes: 256 << 10,
            max_ooo_segments: 256,
            memcap: 256 << 20,
            window: 16 << 20,
            midstream: true,
            overlap_policy: OverlapPolicy::Bsd,
        }
    }
}

impl StreamConfig {
    /// The stream offset at which delivery stops.
    pub(crate) fn limit(&self) -> u64 {
        if self.depth == 0 {
            u64::MAX
        } else {
            self.depth
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OverlapPolicy::{self, *};

    /// Suricata's IDS-mode table, one row per relation of the new segment to the old piece
    /// `[10, 20)`: (new start, new end, then whether new wins for First, Bsd, Linux, OldLinux,
    /// Solaris, Last).
    #[test]
    fn policy_table() {
        #[rustfmt::skip]
        let rows: &[(u64, u64, [bool; 6])] = &[
            // starts before, ends inside
            (5, 15, [false, true, true, true, false, true]),
            // starts before, ends together
            (5, 20, [false, true, true, true, true, true]),
            // starts before, ends after
            (5, 25, [false, true, true, true, true, true]),
            // same start, ends inside
            (10, 15, [false, false, false, false, false, true]),
            // same start, same end
            (10, 20, [false, false, false, true, true, true]),
            // same start, ends after
            (10, 25, [false, false, true, true, true, true]),
            // starts inside, ends inside
            (12, 15, [false, false, false, false, false, true]),
            // starts inside, ends together
            (12, 20, [false, false, false, false, false, true]),
            // starts inside, ends after
            (12, 25, [false, false, false, false, true, true]),
        ];
        let policies: [OverlapPolicy; 6] = [First, Bsd, Linux, OldLinux, Solaris, Last];
        for &(s, e, want) in rows {
            for (p, w) in policies.iter().zip(want) {
                assert_eq!(
                    p.new_wins(s, e, 10, 20),
                    w,
                    "{p:?} new [{s}, {e}) vs old [10, 20)"
                );
            }
        }
    }
}
