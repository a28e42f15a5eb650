//! One direction's reassembly: sequence numbers to stream offsets, in-order delivery, the
//! out-of-order store, gaps, depth.

use portcullis_common::TcpFlags;

use crate::buffer::OooBuffer;
use crate::config::StreamConfig;
use crate::stats::StreamStats;

/// Where the bytes a call delivered are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// In the segment's own payload, from this index: the in-order case, nothing was copied.
    Payload { start: usize },
    /// At the front of the caller's scratch buffer (`out`).
    #[default]
    Scratch,
}

/// What one call delivered: `len` bytes that newly became in order, starting at stream offset
/// `offset` (0 is the first byte after the ISN, or the first byte seen when picked up
/// midstream). `bytes` finds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub offset: u64,
    pub len: usize,
    pub source: Source,
    /// Bytes before `offset` were never seen: a hole was skipped since the previous delivery
    /// (so `offset` is past where that delivery ended). Set on the first delivery after a
    /// skip, which may come in a later call than the skip itself.
    pub gap: bool,
    /// The direction has reached `StreamConfig::depth`; nothing more will be delivered. Set on
    /// the call that reached it and on every later call.
    pub depth_reached: bool,
}

impl Delivered {
    /// The delivered bytes, given the payload and the scratch buffer passed to the call.
    pub fn bytes<'a>(&self, payload: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self.source {
            Source::Payload { start } => &payload[start..start + self.len],
            Source::Scratch => &scratch[..self.len],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stream offset just past the delivered bytes.
    pub fn end(&self) -> u64 {
        self.offset + self.len as u64
    }
}

const STARTED: u8 = 1 << 0;
const FIN_SEEN: u8 = 1 << 1;
const GAP_PENDING: u8 = 1 << 2;
const DEPTH_REACHED: u8 = 1 << 3;
const CLOSED: u8 = 1 << 4;

/// Reassembly of one direction of one TCP connection (a flow holds two). 32 bytes and no heap
/// while segments arrive in order; the out-of-order store is allocated when a segment must wait
/// for a hole and freed when the hole fills.
///
/// Every call takes the worker's `StreamConfig` and `StreamStats`, so a reassembler stores
/// neither. Pass the same `StreamStats` to every call for the worker's life: its
/// `reassembly_memuse` gauge is what the memcap is checked against. Call
/// [`Reassembler::release`] when the flow ends, so that the gauge sees the buffer go.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// The sequence number at stream offset 0 (the ISN + 1).
    base_seq: u32,
    /// FIN's sequence number, once seen: an ACK of it acknowledges one number past the data.
    fin_seq: u32,
    /// Stream offset of the next byte to deliver.
    next_off: u64,
    flags: u8,
    pub(crate) ooo: Option<Box<OooBuffer>>,
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one segment of this direction, in arrival order. `out` is cleared and may receive
    /// the delivered bytes (see [`Delivered::bytes`]); the caller keeps it between calls so its
    /// capacity is reused.
    pub fn segment(
        &mut self,
        cfg: &StreamConfig,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        out: &mut Vec<u8>,
        stats: &mut StreamStats,
    ) -> Delivered {
        out.clear();
        let syn = flags.has(TcpFlags::SYN);
        // SYN takes a sequence number, so its data (rare, but TFO sends it) starts one later.
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if syn {
            // A SYN sets the stream's start. A SYN repeated before any data arrived with a new
            // ISN means the first attempt was abandoned, so the later one counts.
            let fresh = self.next_off == 0 && self.ooo.is_none() && self.flags & CLOSED == 0;
            if self.flags & STARTED == 0 || fresh {
                self.start(data_seq);
            }
        } else if self.flags & STARTED == 0 {
            // Suricata picks a session up midstream only from a packet with ACK set and
            // without RST.
            if cfg.midstream && flags.has(TcpFlags::ACK) && !flags.has(TcpFlags::RST) {
                self.start(data_seq);
            } else {
                return self.nothing();
            }
        }
        if self.flags & (DEPTH_REACHED | CLOSED) != 0 {
            return self.nothing();
        }
        if flags.has(TcpFlags::RST) {
            // Only a RST exactly at the next expected byte ends the stream (RFC 5961's rule, so
            // a forged in-window RST cannot blind inspection); its payload is not stream data.
            if data_seq == self.next_seq() {
                self.flags |= CLOSED;
                self.release(stats);
            }
            return self.nothing();
        }
        if flags.has(TcpFlags::FIN) {
            self.fin_seq = data_seq.wrapping_add(payload.len() as u32);
            self.flags |= FIN_SEEN;
        }
        if payload.is_empty() {
            return self.nothing();
        }
        let mut seen = Seen::default();
        let zero_copy = self.accept(cfg, data_seq, payload, out, stats, &mut seen, true);
        if seen.overlap {
            stats.overlap += 1;
        }
        if seen.different {
            stats.overlap_diff_data += 1;
            stats.reassembly_overlap_different_data += 1;
        }
        self.finish(cfg, zero_copy, out, stats)
    }

    /// Takes an acknowledgement number from a packet of the OTHER direction. When it
    /// acknowledges bytes this direction never showed us (lost before the sensor), waiting for
    /// them is pointless: the hole is skipped (a counted gap) and whatever was buffered behind
    /// it is delivered, into `out`, as with [`Reassembler::segment`]. An ACK of the FIN is not
    /// taken for a missing byte.
    ///
    /// One call delivers one contiguous run. When the ACK covers several holes, the call stops
    /// at the next one; call again with the same number while it returns bytes, inspecting each
    /// run, until it returns an empty `Delivered`.
    pub fn ack(
        &mut self,
        cfg: &StreamConfig,
        ack: u32,
        out: &mut Vec<u8>,
        stats: &mut StreamStats,
    ) -> Delivered {
        out.clear();
        if self.flags & STARTED == 0 || self.flags & (DEPTH_REACHED | CLOSED) != 0 {
            return self.nothing();
        }
        let mut target = ack;
        if self.flags & FIN_SEEN != 0 && ack == self.fin_seq.wrapping_add(1) {
            target = self.fin_seq;
        }
        let ahead = target.wrapping_sub(self.next_seq()) as i32;
        if ahead <= 0 {
            return self.nothing();
        }
        if ahead as u32 > cfg.window {
            stats.out_of_window += 1;
            return self.nothing();
        }
        let acked = (self.next_off + ahead as u64).min(cfg.limit());
        // Skip only to the first byte we do hold, if that comes before what was acked.
        let to = self
            .ooo
            .as_ref()
            .and_then(|b| b.first_off())
            .map_or(acked, |f| f.min(acked));
        self.skip_to(to, stats);
        self.drain(out, stats);
        self.finish(cfg, None, out, stats)
    }

    /// Frees the out-of-order store and takes its bytes off the `reassembly_memuse` gauge. Call
    /// it when the flow ends; the reassembler stays usable (it simply holds nothing).
    pub fn release(&mut self, stats: &mut StreamStats) {
        if let Some(b) = self.ooo.take() {
            stats.reassembly_memuse = stats.reassembly_memuse.wrapping_sub(b.bytes() as u64);
        }
    }

    /// The sequence number at stream offset 0, once the stream has started.
    pub fn base_seq(&self) -> Option<u32> {
        (self.flags & STARTED != 0).then_some(self.base_seq)
    }

    /// The stream offset of the next byte to be delivered.
    pub fn next_offset(&self) -> u64 {
        self.next_off
    }

    /// Out-of-order bytes held now.
    pub fn buffered_bytes(&self) -> usize {
        self.ooo.as_ref().map_or(0, |b| b.bytes())
    }

    pub fn depth_reached(&self) -> bool {
        self.flags & DEPTH_REACHED != 0
    }

    fn start(&mut self, base_seq: u32) {
        self.base_seq = base_seq;
        self.next_off = 0;
        self.flags = STARTED;
    }

    fn next_seq(&self) -> u32 {
        // Offsets grow past 2^32 on long streams; sequence numbers wrap, so truncation is the
        // mapping wanted.
        self.base_seq.wrapping_add(self.next_off as u32)
    }

    fn nothing(&self) -> Delivered {
        Delivered {
            offset: self.next_off,
            depth_reached: self.depth_reached(),
            ..Delivered::default()
        }
    }

    /// Places `payload`, which starts at `seq`, against what was delivered and buffered.
    /// Returns the payload range (start, length) to deliver when the bytes can be handed over
    /// in place (in order, nothing already in `out`, nothing buffered in the way); otherwise
    /// newly in-order bytes are appended to `out`.
    // The arguments are the public call's plus two bits of per-call state; bundling them in a
    // struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &mut self,
        cfg: &StreamConfig,
        seq: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
        stats: &mut StreamStats,
        seen: &mut Seen,
        may_skip: bool,
    ) -> Option<(usize, usize)> {
        let next = self.next_off;
        let rel = i64::from(seq.wrapping_sub(self.next_seq()) as i32);
        let (skip, start) = if rel < 0 {
            // A retransmission, whole or in part: delivered bytes stay as delivered (they were
            // inspected), so only what lies past them is new.
            let skip = rel.unsigned_abs();
            if skip > u64::from(cfg.window) + payload.len() as u64 {
                // Too far behind to be a retransmission: garbage or another connection.
                stats.out_of_window += 1;
                return None;
            }
            seen.overlap = true;
            if skip >= payload.len() as u64 {
                return None;
            }
            (skip as usize, next)
        } else {
            (0, next + rel as u64)
        };
        let limit = cfg.limit();
        if start >= limit {
            return None;
        }
        let n = ((payload.len() - skip) as u64).min(limit - start) as usize;
        let data = &payload[skip..skip + n];
        let end = start + n as u64;

        if start == next {
            let first_held = self.ooo.as_ref().and_then(|b| b.first_off());
            // A held piece starting right at `end` must follow these bytes out, so only a
            // piece strictly beyond leaves the segment free to go in place.
            if first_held.is_none_or(|f| f > end) {
                self.next_off = end;
                if out.is_empty() {
                    return Some((skip, n));
                }
                out.extend_from_slice(data);
                return None;
            }
            // In order but reaching into buffered bytes: let the policy settle the overlap in
            // the store, then deliver from it. No cap check, as the bytes leave at once.
            self.insert(cfg, start, data, stats, seen);
            self.drain(out, stats);
            return None;
        }

        if start - next > u64::from(cfg.window) {
            stats.out_of_window += 1;
            return None;
        }
        let buf = self.ooo.get_or_insert_with(Box::default);
        let plan = buf.plan(start, n);
        let over_stream = buf.bytes() + plan.bytes > cfg.max_ooo_bytes
            || buf.pieces() + plan.pieces > cfg.max_ooo_segments;
        let over_memcap = cfg.memcap != 0
            && stats.reassembly_memuse.saturating_add(plan.bytes as u64) > cfg.memcap;
        if plan.bytes == 0 || !(over_stream || over_memcap) {
            self.insert(cfg, start, data, stats, seen);
            return None;
        }
        if !may_skip {
            // Still no room after giving up one hole: drop the segment; its bytes become a
            // gap when the hole before them is skipped.
            self.free_if_empty();
            return None;
        }
        if over_stream {
            stats.ooo_buffer_full += 1;
        } else {
            stats.segment_memcap_drop += 1;
        }
        // Give up on the hole: skip to the first byte held (or this segment), deliver what
        // then is in order, and place the segment again against the new position.
        let to = buf.first_off().map_or(start, |f| f.min(start));
        self.skip_to(to, stats);
        self.drain(out, stats);
        let seq_at_start = self.base_seq.wrapping_add(start as u32);
        self.accept(cfg, seq_at_start, data, out, stats, seen, false)
            .map(|(i, len)| (skip + i, len))
    }

    fn insert(
        &mut self,
        cfg: &StreamConfig,
        start: u64,
        data: &[u8],
        stats: &mut StreamStats,
        seen: &mut Seen,
    ) {
        let buf = self.ooo.get_or_insert_with(Box::default);
        let r = buf.insert(start, data, cfg.overlap_policy);
        stats.reassembly_memuse = stats.reassembly_memuse.wrapping_add(r.added as u64);
        seen.overlap |= r.overlap;
        seen.different |= r.different;
    }

    fn drain(&mut self, out: &mut Vec<u8>, stats: &mut StreamStats) {
        if let Some(buf) = self.ooo.as_mut() {
            let released = buf.drain(&mut self.next_off, out) as u64;
            stats.reassembly_memuse = stats.reassembly_memuse.wrapping_sub(released);
        }
        self.free_if_empty();
    }

    /// Idle streams hold no heap: the store goes once it is empty.
    fn free_if_empty(&mut self) {
        if self.ooo.as_ref().is_some_and(|b| b.pieces() == 0) {
            self.ooo = None;
        }
    }

    fn skip_to(&mut self, to: u64, stats: &mut StreamStats) {
        if to > self.next_off {
            self.next_off = to;
            self.flags |= GAP_PENDING;
            stats.reassembly_gap += 1;
        }
    }

    /// Builds the call's answer from what it moved, and notes depth.
    fn finish(
        &mut self,
        cfg: &StreamConfig,
        zero_copy: Option<(usize, usize)>,
        out: &[u8],
        stats: &mut StreamStats,
    ) -> Delivered {
        let (len, source) = match zero_copy {
            Some((start, len)) => (len, Source::Payload { start }),
            None => (out.len(), Source::Scratch),
        };
        // Whatever was delivered ends exactly at the new `next_off`.
        let offset = self.next_off - len as u64;
        let gap = len > 0 && self.flags & GAP_PENDING != 0;
        if gap {
            self.flags &= !GAP_PENDING;
        }
        if self.next_off >= cfg.limit() && self.flags & DEPTH_REACHED == 0 {
            self.flags |= DEPTH_REACHED;
            stats.stream_depth_reached += 1;
            self.release(stats);
        }
        Delivered {
            offset,
            len,
            source,
            gap,
            depth_reached: self.depth_reached(),
        }
    }
}

/// What a segment met on its way in, counted once per segment.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    overlap: bool,
    different: bool,
}
