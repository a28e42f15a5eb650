//! Reassembly on literal segments, one case per behaviour the detection engine relies on.

use crate::{Delivered, OverlapPolicy, Reassembler, Source, StreamConfig, StreamStats, TcpFlags};

const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
const RST: TcpFlags = TcpFlags(TcpFlags::RST);

/// One direction under test, recording what each call delivered.
struct Dir {
    r: Reassembler,
    cfg: StreamConfig,
    stats: StreamStats,
    out: Vec<u8>,
}

impl Dir {
    fn new(cfg: StreamConfig) -> Self {
        Dir {
            r: Reassembler::new(),
            cfg,
            stats: StreamStats::default(),
            out: Vec::new(),
        }
    }

    /// Starts the stream with a SYN whose ISN is `isn`, so offset 0 is at `isn + 1`.
    fn syn(cfg: StreamConfig, isn: u32) -> Self {
        let mut d = Dir::new(cfg);
        let got = d.seg(isn, SYN, b"");
        assert!(got.0.is_empty());
        d
    }

    /// Feeds one segment; returns what it delivered and the bytes.
    fn seg(&mut self, seq: u32, flags: TcpFlags, payload: &[u8]) -> (Delivered, Vec<u8>) {
        let d = self.r.segment(
            &self.cfg,
            seq,
            flags,
            payload,
            &mut self.out,
            &mut self.stats,
        );
        let bytes = d.bytes(payload, &self.out).to_vec();
        self.check_gauge();
        (d, bytes)
    }

    fn ack(&mut self, ack: u32) -> (Delivered, Vec<u8>) {
        let d = self.r.ack(&self.cfg, ack, &mut self.out, &mut self.stats);
        let bytes = d.bytes(&[], &self.out).to_vec();
        self.check_gauge();
        (d, bytes)
    }

    /// With one reassembler per stats value, the gauge is exactly this one's buffer.
    fn check_gauge(&self) {
        assert_eq!(self.stats.reassembly_memuse, self.r.buffered_bytes() as u64);
    }
}

/// Asserts a delivery's offset and bytes.
fn delivered(got: (Delivered, Vec<u8>), offset: u64, bytes: &[u8]) -> Delivered {
    assert_eq!(
        (got.0.offset, String::from_utf8_lossy(&got.1)),
        (offset, String::from_utf8_lossy(bytes)),
        "{:?}",
        got.0
    );
    got.0
}

#[test]
fn in_order_is_handed_over_in_place() {
    let mut d = Dir::syn(StreamConfig::default(), 1000);
    let got = d.seg(1001, ACK, b"GET / ");
    assert_eq!(got.0.source, Source::Payload { start: 0 });
    delivered(got, 0, b"GET / ");
    let got = d.seg(1007, ACK, b"HTTP/1.1");
    assert_eq!(got.0.source, Source::Payload { start: 0 });
    assert!(!got.0.gap && !got.0.depth_reached);
    delivered(got, 6, b"HTTP/1.1");
    assert_eq!(
        d.out.capacity(),
        0,
        "the in-order path never touched the scratch buffer"
    );
    assert_eq!(d.r.base_seq(), Some(1001));
    assert_eq!(d.stats, StreamStats::default());
}

#[test]
fn retransmission_is_not_delivered_again() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    delivered(d.seg(1, ACK, b"abcd"), 0, b"abcd");
    let got = d.seg(1, ACK, b"abcd");
    assert!(got.0.is_empty());
    assert_eq!(got.0.offset, 4);
    assert_eq!(d.stats.overlap, 1);
    // A retransmission carrying more than before delivers only the new tail, in place.
    let got = d.seg(3, ACK, b"cdef");
    assert_eq!(got.0.source, Source::Payload { start: 2 });
    delivered(got, 4, b"ef");
    assert_eq!(d.stats.overlap, 2);
}

#[test]
fn delivered_bytes_win_over_a_different_retransmission() {
    // Delivered bytes were inspected; a retransmission cannot change them, and without the
    // bytes kept their difference cannot be seen, so only the overlap is counted.
    let mut d = Dir::syn(StreamConfig::default(), 0);
    delivered(d.seg(1, ACK, b"abcd"), 0, b"abcd");
    delivered(d.seg(1, ACK, b"XXXXef"), 4, b"ef");
    assert_eq!((d.stats.overlap, d.stats.overlap_diff_data), (1, 0));
}

#[test]
fn out_of_order_waits_for_the_hole() {
    let mut d = Dir::syn(StreamConfig::default(), 99);
    assert!(d.seg(105, ACK, b"fgh").0.is_empty());
    assert!(d.seg(110, ACK, b"kl").0.is_empty());
    assert_eq!(d.r.buffered_bytes(), 5);
    // Fills the first hole: delivers through the first buffered piece, stops at the second hole.
    let got = d.seg(100, ACK, b"abcde");
    assert_eq!(got.0.source, Source::Scratch);
    delivered(got, 0, b"abcdefgh");
    delivered(d.seg(108, ACK, b"ij"), 8, b"ijkl");
    assert_eq!(d.r.buffered_bytes(), 0);
    assert!(d.r.ooo.is_none(), "an emptied store is freed");
    assert_eq!(d.stats.overlap, 0);
    assert_eq!(d.stats.reassembly_gap, 0);
}

#[test]
fn in_order_segment_before_buffered_data_is_still_zero_copy() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    d.seg(11, ACK, b"xyz");
    let got = d.seg(1, ACK, b"abc");
    assert_eq!(got.0.source, Source::Payload { start: 0 });
    delivered(got, 0, b"abc");
    assert_eq!(d.r.buffered_bytes(), 3);
}

/// Overlaps of a new segment with a buffered one (old: "0123456789" at offsets 10..20 of a
/// stream that has delivered 0..5), for the default `bsd` policy: the new copy wins only where
/// it starts before the old one.
#[test]
fn overlaps_with_buffered_data_follow_the_bsd_policy() {
    struct Case {
        name: &'static str,
        start: u64,
        data: &'static [u8],
        /// The stream once the hole 5..10 and anything else missing is filled with '.'.
        want: &'static [u8],
        different: bool,
    }
    let cases = [
        Case {
            name: "same data inside",
            start: 12,
            data: b"234",
            want: b"0123456789",
            different: false,
        },
        Case {
            name: "different inside: old wins",
            start: 12,
            data: b"xyz",
            want: b"0123456789",
            different: true,
        },
        Case {
            name: "different, same start: old wins",
            start: 10,
            data: b"abc",
            want: b"0123456789",
            different: true,
        },
        Case {
            name: "different, left: new wins",
            start: 8,
            data: b"abcd",
            want: b"abcd23456789",
            different: true,
        },
        Case {
            name: "different, right: old wins, tail added",
            start: 18,
            data: b"abcd",
            want: b"0123456789cd",
            different: true,
        },
        Case {
            name: "different, covers: new wins",
            start: 9,
            data: b"ABCDEFGHIJKL",
            want: b"ABCDEFGHIJKL",
            different: true,
        },
        Case {
            name: "same data, covers",
            start: 10,
            data: b"0123456789ab",
            want: b"0123456789ab",
            different: false,
        },
    ];
    for c in &cases {
        let mut d = Dir::syn(StreamConfig::default(), 0);
        delivered(d.seg(1, ACK, b"hello"), 0, b"hello");
        d.seg(11, ACK, b"0123456789");
        let got = d.seg(1 + c.start as u32, ACK, c.data);
        assert!(got.0.is_empty(), "{}", c.name);
        assert_eq!(d.stats.overlap, 1, "{}", c.name);
        assert_eq!(
            d.stats.overlap_diff_data,
            u64::from(c.different),
            "{}",
            c.name
        );
        assert_eq!(
            d.stats.reassembly_overlap_different_data,
            u64::from(c.different),
            "{}",
            c.name
        );
        // Fill exactly the hole left before the held bytes, so the fill overlaps nothing.
        let held_from = c.start.min(10);
        let fill = vec![b'.'; (held_from - 5) as usize];
        let got = d.seg(6, ACK, &fill);
        let mut want = fill.clone();
        want.extend_from_slice(c.want);
        assert_eq!(
            String::from_utf8_lossy(&got.1),
            String::from_utf8_lossy(&want),
            "{}",
            c.name
        );
        assert_eq!(d.stats.overlap, 1, "{}: the fill overlapped", c.name);
    }
}

#[test]
fn in_order_segment_overwrites_buffered_data_it_starts_before() {
    // Under bsd an in-order segment starts before any buffered piece, so it wins.
    let mut d = Dir::syn(StreamConfig::default(), 0);
    d.seg(3, ACK, b"XY");
    delivered(d.seg(1, ACK, b"abcd"), 0, b"abcd");
    assert_eq!(d.stats.overlap_diff_data, 1);
    // Under first the buffered copy stands.
    let cfg = StreamConfig {
        overlap_policy: OverlapPolicy::First,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    d.seg(3, ACK, b"XY");
    delivered(d.seg(1, ACK, b"abcd"), 0, b"abXY");
}

#[test]
fn sequence_numbers_wrap_at_2_32() {
    let mut d = Dir::syn(StreamConfig::default(), u32::MAX - 2);
    delivered(d.seg(u32::MAX - 1, ACK, b"ab"), 0, b"ab");
    // The next segment starts exactly at 0 after the wrap; one more is out of order past it.
    d.seg(2, ACK, b"ef");
    delivered(d.seg(0, ACK, b"cd"), 2, b"cdef");
    delivered(d.seg(4, ACK, b"g"), 6, b"g");
    // A retransmission from before the wrap is recognised as old.
    assert!(d.seg(u32::MAX - 1, ACK, b"abcdefg").0.is_empty());
}

#[test]
fn syn_and_syn_ack_set_the_start() {
    let mut d = Dir::new(StreamConfig::default());
    d.seg(500, TcpFlags(TcpFlags::SYN | TcpFlags::ACK), b"");
    delivered(d.seg(501, ACK, b"220 ok"), 0, b"220 ok");
    // Data on the SYN itself (TCP Fast Open) starts one past the ISN.
    let mut d = Dir::new(StreamConfig::default());
    delivered(d.seg(7, SYN, b"hi"), 0, b"hi");
    delivered(d.seg(10, ACK, b"!"), 2, b"!");
}

#[test]
fn a_new_isn_before_any_data_restarts_the_stream() {
    let mut d = Dir::syn(StreamConfig::default(), 100);
    d.seg(5000, SYN, b"");
    delivered(d.seg(5001, ACK, b"x"), 0, b"x");
    // Once data flowed, a stray SYN changes nothing.
    d.seg(9000, SYN, b"");
    delivered(d.seg(5002, ACK, b"y"), 1, b"y");
}

#[test]
fn midstream_starts_at_the_first_ack_segment() {
    let mut d = Dir::new(StreamConfig::default());
    // No ACK flag: Suricata would not pick this up.
    assert!(d.seg(70, TcpFlags(TcpFlags::PSH), b"zz").0.is_empty());
    assert_eq!(d.r.base_seq(), None);
    delivered(d.seg(80, ACK, b"middle"), 0, b"middle");
    assert!(
        d.seg(70, ACK, b"earlier...").0.is_empty(),
        "bytes before the pickup are old"
    );
    let cfg = StreamConfig {
        midstream: false,
        ..StreamConfig::default()
    };
    let mut d = Dir::new(cfg);
    assert!(d.seg(80, ACK, b"middle").0.is_empty());
    assert_eq!(d.r.base_seq(), None);
}

#[test]
fn depth_cuts_the_crossing_segment_and_is_counted_once() {
    let cfg = StreamConfig {
        depth: 10,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    delivered(d.seg(1, ACK, b"01234567"), 0, b"01234567");
    d.seg(13, ACK, b"cdef"); // beyond depth: not buffered
    assert_eq!(d.r.buffered_bytes(), 0);
    let got = d.seg(9, ACK, b"89abc");
    assert!(got.0.depth_reached);
    delivered(got, 8, b"89");
    let got = d.seg(14, ACK, b"more");
    assert!(got.0.is_empty() && got.0.depth_reached);
    assert_eq!(d.stats.stream_depth_reached, 1);
    // Depth 0 is unlimited.
    let cfg = StreamConfig {
        depth: 0,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    let big = vec![7u8; 3 << 20];
    assert_eq!(d.seg(1, ACK, &big).0.len, big.len());
    assert!(!d.r.depth_reached());
}

#[test]
fn depth_reached_through_the_buffer_frees_it() {
    let cfg = StreamConfig {
        depth: 6,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    d.seg(4, ACK, b"defgh");
    assert_eq!(d.r.buffered_bytes(), 3, "cut at depth before buffering");
    let got = d.seg(1, ACK, b"abc");
    assert!(got.0.depth_reached);
    delivered(got, 0, b"abcdef");
    assert_eq!(d.stats.reassembly_memuse, 0);
}

#[test]
fn acked_but_unseen_data_is_skipped_as_a_gap() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    delivered(d.seg(1, ACK, b"abc"), 0, b"abc");
    // Offsets 3..6 were lost; 6.. arrived and waits.
    d.seg(7, ACK, b"ghi");
    // ACK 5 proves offset 3 existed: skip it, but 4 and 5 may still come.
    let got = d.ack(5);
    assert!(got.0.is_empty());
    assert_eq!((d.stats.reassembly_gap, d.r.next_offset()), (1, 4));
    // ACK 7 covers the rest of the hole: skip to the held bytes and deliver them, flagged.
    let got = d.ack(7);
    assert!(got.0.gap);
    delivered(got, 6, b"ghi");
    assert_eq!(d.stats.reassembly_gap, 2);
    // An ACK of what was delivered changes nothing.
    assert!(d.ack(10).0.is_empty());
    assert_eq!(d.stats.reassembly_gap, 2);
    // An ACK past everything seen skips; the gap is reported with the next delivery.
    assert!(d.ack(20).0.is_empty());
    assert_eq!(d.stats.reassembly_gap, 3);
    let got = d.seg(20, ACK, b"t");
    assert!(got.0.gap);
    delivered(got, 19, b"t");
    let got = d.seg(21, ACK, b"u");
    assert!(!got.0.gap);
}

#[test]
fn ack_of_the_fin_is_not_a_gap() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    delivered(d.seg(1, FIN_ACK, b"bye"), 0, b"bye");
    assert!(d.ack(5).0.is_empty());
    assert_eq!(d.stats.reassembly_gap, 0);
    // A bogus ACK far ahead is ignored, not skipped to.
    let mut d = Dir::syn(StreamConfig::default(), 0);
    d.ack(1 << 30);
    assert_eq!((d.stats.reassembly_gap, d.stats.out_of_window), (0, 1));
}

#[test]
fn full_ooo_buffer_gives_up_the_hole() {
    let cfg = StreamConfig {
        max_ooo_bytes: 5,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    delivered(d.seg(1, ACK, b"ab"), 0, b"ab");
    d.seg(5, ACK, b"ef");
    d.seg(9, ACK, b"ij");
    // Two new bytes would make 6 held: skip the hole 2..4 and deliver 4..6; the new segment
    // 6..9 then continues the stream and, starting first, wins over the held 'i' (bsd).
    let got = d.seg(7, ACK, b"ghX");
    assert!(got.0.gap);
    delivered(got, 4, b"efghXj");
    assert_eq!((d.stats.ooo_buffer_full, d.stats.reassembly_gap), (1, 1));
    assert_eq!(
        d.stats.overlap_diff_data, 1,
        "the new 'X' and the held 'i' disagree"
    );
    let cfg = StreamConfig {
        max_ooo_segments: 1,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    d.seg(3, ACK, b"c");
    let got = d.seg(5, ACK, b"e");
    delivered(got, 2, b"c");
    assert_eq!(d.r.buffered_bytes(), 1);
}

#[test]
fn memcap_is_shared_through_the_stats() {
    let cfg = StreamConfig {
        memcap: 4,
        ..StreamConfig::default()
    };
    let mut stats = StreamStats::default();
    let mut out = Vec::new();
    let (mut a, mut b) = (Reassembler::new(), Reassembler::new());
    a.segment(&cfg, 0, SYN, b"", &mut out, &mut stats);
    b.segment(&cfg, 0, SYN, b"", &mut out, &mut stats);
    a.segment(&cfg, 5, ACK, b"xyz", &mut out, &mut stats);
    assert_eq!(stats.reassembly_memuse, 3);
    // `b` cannot buffer two bytes: it skips its own hole instead and delivers them.
    let got = b.segment(&cfg, 5, ACK, b"pq", &mut out, &mut stats);
    assert_eq!(
        (got.offset, got.bytes(b"pq", &out), got.gap),
        (4, &b"pq"[..], true)
    );
    assert_eq!((stats.segment_memcap_drop, stats.reassembly_gap), (1, 1));
    a.release(&mut stats);
    b.release(&mut stats);
    assert_eq!(stats.reassembly_memuse, 0);
}

#[test]
fn segment_far_ahead_is_out_of_window() {
    // Unlimited depth, as a segment past the depth is dropped before the window is looked at.
    let mut d = Dir::syn(
        StreamConfig {
            depth: 0,
            ..StreamConfig::default()
        },
        0,
    );
    assert!(d.seg(1 + (32 << 20), ACK, b"far").0.is_empty());
    assert_eq!((d.stats.out_of_window, d.r.buffered_bytes()), (1, 0));
}

#[test]
fn rst_closes_only_at_the_next_byte() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    delivered(d.seg(1, ACK, b"ab"), 0, b"ab");
    d.seg(6, ACK, b"zz");
    assert!(d.seg(50, RST, b"").0.is_empty());
    delivered(d.seg(3, ACK, b"c"), 2, b"c");
    d.seg(4, RST, b"rstdata");
    assert_eq!(d.r.buffered_bytes(), 0, "closing frees the store");
    assert!(d.seg(4, ACK, b"d").0.is_empty());
}

#[test]
fn offsets_pass_4_gib_while_sequence_numbers_wrap() {
    let cfg = StreamConfig {
        depth: 0,
        ..StreamConfig::default()
    };
    let mut d = Dir::syn(cfg, 0);
    let chunk = vec![0u8; 1 << 20];
    let mut seq = 1u32;
    for _ in 0..4100 {
        let got = d.seg(seq, ACK, &chunk);
        assert_eq!(got.0.len, chunk.len());
        seq = seq.wrapping_add(chunk.len() as u32);
    }
    let got = d.seg(seq, ACK, b"!");
    delivered(got, 4100 << 20, b"!");
}

#[test]
fn an_ack_over_several_holes_delivers_one_run_per_call() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    d.seg(3, ACK, b"cd");
    d.seg(7, ACK, b"gh");
    let got = d.ack(20);
    assert!(got.0.gap);
    delivered(got, 2, b"cd");
    let got = d.ack(20);
    assert!(got.0.gap);
    delivered(got, 6, b"gh");
    assert!(d.ack(20).0.is_empty());
    assert_eq!((d.stats.reassembly_gap, d.r.next_offset()), (3, 19));
}

#[test]
fn an_idle_reassembler_is_small() {
    assert!(std::mem::size_of::<Reassembler>() <= 32);
}

#[test]
fn segment_far_behind_is_out_of_window_not_an_overlap() {
    let mut d = Dir::syn(StreamConfig::default(), 0);
    delivered(d.seg(1, ACK, b"ab"), 0, b"ab");
    assert!(d.seg(1u32.wrapping_sub(1 << 30), ACK, b"old").0.is_empty());
    assert_eq!((d.stats.out_of_window, d.stats.overlap), (1, 0));
}
