//! `byte_test`, `byte_jump` and `byte_extract`: reading a number out of the buffer as
//! Suricata's `detect-bytetest.c`, `detect-bytejump.c` and `detect-byte-extract.c` do,
//! including their bounds checks, bitmask shift and the quirks that decide matches (`|` is
//! an exclusive or; a jump must land inside the buffer).

use portcullis_rules::{ByteExtract, ByteJump, ByteOp, ByteTest, Endian, NumFormat};

/// Reads `nbytes` at `pos` as a number; for strings, the number of characters the digits
/// took must be at least one. Returns the value and the bytes consumed.
fn read(buf: &[u8], pos: usize, nbytes: usize, endian: Endian, format: NumFormat) -> Option<(u64, usize)> {
    // `string` with 0 bytes reads the rest of the buffer, as Suricata 7 does for sticky
    // buffers such as `http.content_len` (`byte_test:0,<,200,0,string,dec`).
    let nbytes = match format {
        NumFormat::String(_) if nbytes == 0 => buf.len().checked_sub(pos).filter(|n| *n > 0)?,
        _ => nbytes,
    };
    let src = buf.get(pos..pos.checked_add(nbytes)?)?;
    match format {
        NumFormat::Binary => {
            if nbytes == 0 || nbytes > 8 {
                return None;
            }
            let mut v: u64 = 0;
            match endian {
                Endian::Big => {
                    for &b in src {
                        v = (v << 8) | u64::from(b);
                    }
                }
                Endian::Little => {
                    for &b in src.iter().rev() {
                        v = (v << 8) | u64::from(b);
                    }
                }
            }
            Some((v, nbytes))
        }
        NumFormat::String(base) => {
            // Like strtoull on the copied characters: leading blanks, an optional `0x` for
            // base 16, then digits until the first non-digit.
            let base = u32::from(base);
            let mut i = 0;
            while i < src.len() && (src[i] == b' ' || src[i] == b'\t') {
                i += 1;
            }
            if base == 16 && i + 1 < src.len() && src[i] == b'0' && (src[i + 1] | 0x20) == b'x' {
                i += 2;
            }
            let digits_start = i;
            let mut v: u64 = 0;
            while i < src.len() {
                let Some(d) = (src[i] as char).to_digit(base) else { break };
                v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
                i += 1;
            }
            if i == digits_start {
                return None;
            }
            Some((v, nbytes))
        }
    }
}

fn apply_mask(v: u64, mask: Option<u32>) -> u64 {
    match mask {
        Some(m) if m != 0 => (v & u64::from(m)) >> m.trailing_zeros(),
        Some(_) => 0,
        None => v,
    }
}

/// Where a keyword starts reading: absolute, or relative to the last match.
fn start(buf_len: usize, buffer_offset: u32, offset: i32, relative: bool) -> Option<usize> {
    let base: i64 = if relative { i64::from(buffer_offset) } else { 0 };
    let p = base + i64::from(offset);
    if p < 0 || p as usize > buf_len {
        return None;
    }
    Some(p as usize)
}

/// `byte_test`: Some(end of the bytes read) on a match.
pub(crate) fn byte_test(bt: &ByteTest, buf: &[u8], buffer_offset: u32, offset: i32, value: u64) -> Option<u32> {
    let pos = start(buf.len(), buffer_offset, offset, bt.relative)?;
    if pos >= buf.len() {
        return None;
    }
    let (v, n) = read(buf, pos, usize::from(bt.nbytes), bt.endian, bt.format)?;
    let v = apply_mask(v, bt.bitmask);
    let m = match bt.op {
        ByteOp::Lt => v < value,
        ByteOp::Gt => v > value,
        ByteOp::Le => v <= value,
        ByteOp::Ge => v >= value,
        ByteOp::Eq => v == value,
        ByteOp::And => v & value != 0,
        // Suricata implements `|` as an exclusive or.
        ByteOp::Or => v ^ value != 0,
    };
    if m != bt.negated {
        Some((pos + n) as u32)
    } else {
        None
    }
}

/// `byte_jump`: Some(new buffer offset) on a match.
pub(crate) fn byte_jump(bj: &ByteJump, buf: &[u8], buffer_offset: u32, offset: i32) -> Option<u32> {
    let pos = start(buf.len(), buffer_offset, offset, bj.relative)?;
    if pos >= buf.len() {
        return None;
    }
    let (v, n) = read(buf, pos, usize::from(bj.nbytes), bj.endian, bj.format)?;
    let mut v = apply_mask(v, bj.bitmask);
    v = v.wrapping_mul(u64::from(bj.multiplier.max(1)));
    if bj.align && !v.is_multiple_of(4) {
        v += 4 - v % 4;
    }
    let v = i128::from(v);
    let mut jump: i128 = if bj.from_beginning {
        v
    } else if bj.from_end {
        buf.len() as i128 + v
    } else {
        (pos + n) as i128 + v
    };
    jump += i128::from(bj.post_offset);
    if jump < 0 || jump >= buf.len() as i128 {
        return None;
    }
    Some(jump as u32)
}

/// `byte_extract`: Some((value, new buffer offset)).
pub(crate) fn byte_extract(be: &ByteExtract, buf: &[u8], buffer_offset: u32) -> Option<(u64, u32)> {
    let pos = start(buf.len(), buffer_offset, be.offset, be.relative)?;
    let (v, n) = read(buf, pos, usize::from(be.nbytes), be.endian, be.format)?;
    let mut v = apply_mask(v, be.bitmask);
    v = v.wrapping_mul(u64::from(be.multiplier.max(1)));
    if be.align > 1 {
        let a = u64::from(be.align);
        if !v.is_multiple_of(a) {
            v += a - v % a;
        }
    }
    Some((v, (pos + n) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_byte_strings_read_the_rest_of_the_buffer() {
        assert_eq!(read(b"183", 0, 0, Endian::Big, NumFormat::String(10)), Some((183, 3)));
        assert_eq!(read(b"x183", 1, 0, Endian::Big, NumFormat::String(10)), Some((183, 3)));
        assert_eq!(read(b"183", 3, 0, Endian::Big, NumFormat::String(10)), None);
        assert_eq!(read(b"183", 0, 0, Endian::Big, NumFormat::Binary), None);
    }

    #[test]
    fn string_reads_stop_at_non_digits() {
        assert_eq!(read(b"12ab", 0, 4, Endian::Big, NumFormat::String(10)), Some((12, 4)));
        assert_eq!(read(b"ab", 0, 2, Endian::Big, NumFormat::String(16)), Some((0xab, 2)));
        assert_eq!(read(b"zz", 0, 2, Endian::Big, NumFormat::String(10)), None);
        assert_eq!(read(b"\x01\x02", 0, 2, Endian::Little, NumFormat::Binary), Some((0x0201, 2)));
        assert_eq!(read(b"\x01", 0, 2, Endian::Big, NumFormat::Binary), None);
    }

    #[test]
    fn bitmask_shifts_by_trailing_zeros() {
        assert_eq!(apply_mask(0xABCD, Some(0xF0)), 0xC);
        assert_eq!(apply_mask(0xABCD, None), 0xABCD);
    }
}
