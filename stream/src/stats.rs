//! Counters of what reassembly met, named as Suricata names them where it has the counter.

/// Reassembly counters for one worker (every reassembler it owns adds to the same value);
/// `merge` sums workers. All are event counts except `reassembly_memuse`, a gauge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// `tcp.reassembly_gap`: holes skipped, because the out-of-order cap or the memcap was hit
    /// or because the other side acknowledged bytes this side never showed us.
    pub reassembly_gap: u64,
    /// `tcp.overlap`: segments that carried bytes already delivered or buffered (counted once
    /// per segment, retransmissions included, as Suricata does while they are unacked).
    pub overlap: u64,
    /// `tcp.overlap_diff_data`: segments whose overlap with buffered bytes differed in content.
    pub overlap_diff_data: u64,
    /// `stream.reassembly_overlap_different_data`: the stream event Suricata raises for the
    /// same segments as `overlap_diff_data`, kept apart because rules and EVE name the event.
    pub reassembly_overlap_different_data: u64,
    /// `tcp.stream_depth_reached`: directions that reached `StreamConfig::depth`, once each.
    pub stream_depth_reached: u64,
    /// `tcp.segment_memcap_drop`: out-of-order segments refused by `StreamConfig::memcap`.
    pub segment_memcap_drop: u64,
    /// `stream.ooo_buffer_full` (Portcullis): out-of-order segments refused by the per-stream
    /// caps `max_ooo_bytes` / `max_ooo_segments`.
    pub ooo_buffer_full: u64,
    /// `stream.out_of_window` (Portcullis): segments or ACKs pointing further ahead than
    /// `StreamConfig::window`, ignored.
    pub out_of_window: u64,
    /// `tcp.reassembly_memuse`: out-of-order bytes held now (a gauge, not a count).
    pub reassembly_memuse: u64,
}

impl StreamStats {
    /// Adds another worker's counters (and its gauge) to these.
    pub fn merge(&mut self, other: &StreamStats) {
        self.reassembly_gap += other.reassembly_gap;
        self.overlap += other.overlap;
        self.overlap_diff_data += other.overlap_diff_data;
        self.reassembly_overlap_different_data += other.reassembly_overlap_different_data;
        self.stream_depth_reached += other.stream_depth_reached;
        self.segment_memcap_drop += other.segment_memcap_drop;
        self.ooo_buffer_full += other.ooo_buffer_full;
        self.out_of_window += other.out_of_window;
        // Wrapping, so that interval snapshots (whose gauge may have gone "negative" when a
        // buffer filled in one interval is freed in the next) still sum to the truth.
        self.reassembly_memuse = self.reassembly_memuse.wrapping_add(other.reassembly_memuse);
    }

    /// Every counter with its dotted stats name, for the `stats` event.
    pub fn counters(&self) -> [(&'static str, u64); 9] {
        [
            ("tcp.reassembly_gap", self.reassembly_gap),
            ("tcp.overlap", self.overlap),
            ("tcp.overlap_diff_data", self.overlap_diff_data),
            (
                "stream.reassembly_overlap_different_data",
                self.reassembly_overlap_different_data,
            ),
            ("tcp.stream_depth_reached", self.stream_depth_reached),
            ("tcp.segment_memcap_drop", self.segment_memcap_drop),
            ("stream.ooo_buffer_full", self.ooo_buffer_full),
            ("stream.out_of_window", self.out_of_window),
            ("tcp.reassembly_memuse", self.reassembly_memuse),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::StreamStats;

    #[test]
    fn merge_sums_every_counter() {
        let mut a = StreamStats::default();
        // Every field of `b` distinct, so a field that `merge` forgets shows up as a zero
        // next to its name.
        let b = StreamStats {
            reassembly_gap: 1,
            overlap: 2,
            overlap_diff_data: 3,
            reassembly_overlap_different_data: 4,
            stream_depth_reached: 5,
            segment_memcap_drop: 6,
            ooo_buffer_full: 7,
            out_of_window: 8,
            reassembly_memuse: 9,
        };
        a.merge(&b);
        a.merge(&b);
        for ((name, got), (_, one)) in a.counters().into_iter().zip(b.counters()) {
            assert_eq!(got, 2 * one, "{name}");
        }
    }
}
