//! The out-of-order store: bytes that arrived ahead of a hole, kept as sorted pieces that never
//! overlap one another, so that a byte has exactly one buffered copy and draining is a walk
//! from the front.

use crate::config::OverlapPolicy;

/// One buffered run of bytes at a stream offset.
#[derive(Debug)]
struct Piece {
    off: u64,
    data: Box<[u8]>,
}

impl Piece {
    fn end(&self) -> u64 {
        self.off + self.data.len() as u64
    }
}

/// What inserting a segment would add, so that caps are checked before anything changes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Plan {
    /// Bytes of the segment no piece covers yet.
    pub(crate) bytes: usize,
    /// New pieces those bytes would form.
    pub(crate) pieces: usize,
    /// Whether the segment shares bytes with a piece.
    pub(crate) overlaps: bool,
}

/// What an insertion met.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Inserted {
    pub(crate) added: usize,
    pub(crate) overlap: bool,
    pub(crate) different: bool,
}

#[derive(Debug, Default)]
pub(crate) struct OooBuffer {
    /// Sorted by `off`; each piece ends at or before the next one starts.
    pieces: Vec<Piece>,
    bytes: usize,
}

impl OooBuffer {
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn pieces(&self) -> usize {
        self.pieces.len()
    }

    pub(crate) fn first_off(&self) -> Option<u64> {
        self.pieces.first().map(|p| p.off)
    }

    /// Index of the first piece that ends after `off`.
    fn first_ending_after(&self, off: u64) -> usize {
        self.pieces.partition_point(|p| p.end() <= off)
    }

    pub(crate) fn plan(&self, start: u64, len: usize) -> Plan {
        let end = start + len as u64;
        let mut plan = Plan::default();
        let mut cursor = start;
        for p in &self.pieces[self.first_ending_after(start)..] {
            if p.off >= end {
                break;
            }
            if p.off > cursor {
                plan.bytes += (p.off - cursor) as usize;
                plan.pieces += 1;
            }
            plan.overlaps = true;
            cursor = cursor.max(p.end());
        }
        if cursor < end {
            plan.bytes += (end - cursor) as usize;
            plan.pieces += 1;
        }
        plan
    }

    /// Stores `data` at `start`: bytes no piece holds become new pieces; bytes a piece holds
    /// are compared, and replaced where the policy lets the new copy win.
    pub(crate) fn insert(&mut self, start: u64, data: &[u8], policy: OverlapPolicy) -> Inserted {
        let end = start + data.len() as u64;
        let mut res = Inserted::default();
        let mut cursor = start;
        let mut i = self.first_ending_after(start);
        while cursor < end {
            let next_off = self.pieces.get(i).map_or(u64::MAX, |p| p.off);
            if next_off > cursor {
                // A hole in the buffer that this segment fills, up to the next piece.
                let to = next_off.min(end);
                let bytes = &data[(cursor - start) as usize..(to - start) as usize];
                self.pieces.insert(
                    i,
                    Piece {
                        off: cursor,
                        data: bytes.into(),
                    },
                );
                res.added += bytes.len();
                i += 1;
                cursor = to;
                continue;
            }
            let p = &mut self.pieces[i];
            let (p_off, p_end) = (p.off, p.end());
            let (lo, hi) = (cursor.max(p_off), end.min(p_end));
            let new = &data[(lo - start) as usize..(hi - start) as usize];
            let old = &mut p.data[(lo - p_off) as usize..(hi - p_off) as usize];
            res.overlap = true;
            if new != old {
                res.different = true;
                if policy.new_wins(start, end, p_off, p_end) {
                    old.copy_from_slice(new);
                }
            }
            cursor = hi;
            i += 1;
        }
        self.bytes += res.added;
        res
    }

    /// Moves the pieces that continue the stream at `*next` into `out`, advancing `*next`.
    /// Returns the bytes released.
    pub(crate) fn drain(&mut self, next: &mut u64, out: &mut Vec<u8>) -> usize {
        let mut k = 0;
        let mut released = 0;
        while let Some(p) = self.pieces.get(k) {
            if p.off != *next {
                break;
            }
            out.extend_from_slice(&p.data);
            *next = p.end();
            released += p.data.len();
            k += 1;
        }
        self.pieces.drain(..k);
        self.bytes -= released;
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(b: &OooBuffer) -> Vec<(u64, Vec<u8>)> {
        b.pieces.iter().map(|p| (p.off, p.data.to_vec())).collect()
    }

    #[test]
    fn insert_fills_holes_and_keeps_pieces_disjoint() {
        let mut b = OooBuffer::default();
        b.insert(10, b"abc", OverlapPolicy::Bsd);
        b.insert(20, b"xyz", OverlapPolicy::Bsd);
        let plan = b.plan(8, 16);
        assert_eq!((plan.bytes, plan.pieces, plan.overlaps), (10, 3, true));
        let r = b.insert(8, b"..ABC.......XYZ.", OverlapPolicy::First);
        assert_eq!((r.added, r.overlap, r.different), (10, true, true));
        assert_eq!(
            contents(&b),
            vec![
                (8, b"..".to_vec()),
                (10, b"abc".to_vec()),
                (13, b".......".to_vec()),
                (20, b"xyz".to_vec()),
                (23, b".".to_vec()),
            ]
        );
        assert_eq!(b.bytes(), 16);
        let mut next = 8;
        let mut out = Vec::new();
        assert_eq!(b.drain(&mut next, &mut out), 16);
        assert_eq!((next, out.as_slice()), (24, &b"..abc.......xyz."[..]));
        assert_eq!((b.bytes(), b.pieces()), (0, 0));
    }

    #[test]
    fn drain_stops_at_a_hole() {
        let mut b = OooBuffer::default();
        b.insert(5, b"de", OverlapPolicy::Bsd);
        b.insert(0, b"abc", OverlapPolicy::Bsd);
        let (mut next, mut out) = (0, Vec::new());
        assert_eq!(b.drain(&mut next, &mut out), 3);
        assert_eq!(
            (next, out.as_slice(), b.first_off()),
            (3, &b"abc"[..], Some(5))
        );
    }
}
