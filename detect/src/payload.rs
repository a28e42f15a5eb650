//! Payload inspection: the compiled form of a rule's payload keywords and the recursive
//! matcher that walks them over one buffer with Suricata 7's content inspection semantics
//! (`DetectEngineContentInspection`): a relative keyword that fails makes the engine retry
//! the preceding `content` (when the failing keyword depends on it through `within`) or
//! `pcre` at its next occurrence, bounded by a recursion limit, and some failures
//! "discontinue" the whole search.

use memchr::memmem;
use portcullis_rules::{ByteExtract, ByteJump, ByteTest, Cmp, IsDataAt, Value};

use crate::bytes;

/// Most `byte_extract` variables a rule may declare (Suricata allows far fewer in practice).
pub(crate) const MAX_VARS: usize = 16;

/// One compiled `content`.
#[derive(Debug)]
pub(crate) struct ContentOp {
    /// The pattern, lowercased when `nocase` so it can be searched in the lowered buffer.
    pub pat: Vec<u8>,
    pub finder: memmem::Finder<'static>,
    pub nocase: bool,
    pub negated: bool,
    pub offset: Option<Value<u32>>,
    pub depth: Option<Value<u32>>,
    pub distance: Option<Value<i32>>,
    pub within: Option<Value<i32>>,
    pub endswith: bool,
    /// The next content or pcre of this buffer uses `within` relative to this one: only then
    /// does a later failure retry this content at its next occurrence.
    pub within_next: bool,
    /// Some later keyword of this buffer is relative to this one (`DETECT_CONTENT_IS_SINGLE`
    /// is its negation together with [`ContentOp::is_relative`]).
    pub relative_next: bool,
}

impl ContentOp {
    fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// One compiled `pcre`.
#[derive(Debug)]
pub(crate) struct PcreOp {
    pub re: pcre2::bytes::Regex,
    pub negated: bool,
    pub relative: bool,
    /// A later keyword of this buffer is relative to this pcre: retry on failure.
    pub relative_next: bool,
}

#[derive(Debug)]
pub(crate) enum Op {
    Content(Box<ContentOp>),
    Pcre(Box<PcreOp>),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    ByteExtract(ByteExtract),
    IsDataAt(IsDataAt),
    Bsize(Cmp<u64>),
}

impl Op {
    pub(crate) fn uses_nocase(&self) -> bool {
        matches!(self, Op::Content(c) if c.nocase)
    }
}

/// What one inspection of a buffer needs besides the keywords: the buffer, its lowercased
/// copy (for `nocase` contents), where it sits in the stream, and the per-inspection
/// registers Suricata keeps in its thread context.
pub(crate) struct Inspect<'a> {
    pub buf: &'a [u8],
    pub lower: &'a [u8],
    /// Stream offset of `buf[0]` when `buf` is a window of the reassembled stream, else 0.
    pub stream_start: u64,
    pub vars: [u64; MAX_VARS],
    pub buffer_offset: u32,
    pub pcre_start: u32,
    pub recursion: u32,
    pub limit: u32,
    /// End of the furthest byte a successful match consumed: lets the stream path require
    /// that a match involves data not inspected before.
    pub match_end: u32,
}

impl<'a> Inspect<'a> {
    pub(crate) fn new(buf: &'a [u8], lower: &'a [u8], stream_start: u64, limit: u32) -> Self {
        Inspect {
            buf,
            lower,
            stream_start,
            vars: [0; MAX_VARS],
            buffer_offset: 0,
            pcre_start: 0,
            recursion: 0,
            limit,
            match_end: 0,
        }
    }

    /// Runs the whole program; true on a match.
    pub(crate) fn run(&mut self, ops: &[Op]) -> bool {
        self.buffer_offset = 0;
        self.pcre_start = 0;
        self.recursion = 0;
        self.match_end = 0;
        if ops.is_empty() {
            return true;
        }
        self.step(ops, 0, 0) == 1
    }

    fn var(&self, v: &Value<u32>) -> u64 {
        match v {
            Value::Lit(x) => u64::from(*x),
            Value::Var(i) => self.vars[usize::from(*i) % MAX_VARS],
        }
    }

    fn var_i(&self, v: &Value<i32>) -> i32 {
        match v {
            Value::Lit(x) => *x,
            // Suricata casts the extracted 64-bit value to 32 bits here.
            Value::Var(i) => self.vars[usize::from(*i) % MAX_VARS] as u32 as i32,
        }
    }

    /// The next keyword after a match at `i`; `hi` is the match end so far.
    fn next(&mut self, ops: &[Op], i: usize, hi: u32) -> i8 {
        if i + 1 >= ops.len() {
            self.match_end = hi;
            return 1;
        }
        self.step(ops, i + 1, hi)
    }

    /// One keyword: 1 match, 0 no match, -1 no match and stop looking (Suricata's
    /// `no_match_discontinue`).
    fn step(&mut self, ops: &[Op], i: usize, hi: u32) -> i8 {
        self.recursion += 1;
        if self.recursion >= self.limit {
            return -1;
        }
        let buf_len = self.buf.len() as u32;
        match &ops[i] {
            Op::Content(cd) => self.content(ops, i, cd, hi),
            Op::Pcre(pe) => self.pcre(ops, i, pe, hi),
            Op::IsDataAt(id) => {
                let mut dataat = match &id.pos {
                    Value::Lit(x) => *x,
                    Value::Var(_) => 0,
                };
                let is_var = matches!(id.pos, Value::Var(_));
                if is_var {
                    let v = self.var(&id.pos);
                    if v >= 100_000_000 {
                        return if id.negated { self.next(ops, i, hi) } else { 0 };
                    }
                    dataat = v as u32;
                }
                if id.relative {
                    if u64::from(self.buffer_offset) + u64::from(dataat) > u64::from(buf_len) {
                        if id.negated {
                            return self.next(ops, i, hi);
                        }
                        return if is_var { 0 } else { -1 };
                    }
                    if id.negated {
                        return 0;
                    }
                    self.next(ops, i, hi)
                } else if dataat < buf_len {
                    if id.negated {
                        return if is_var { 0 } else { -1 };
                    }
                    self.next(ops, i, hi)
                } else {
                    if id.negated {
                        return self.next(ops, i, hi);
                    }
                    if is_var {
                        0
                    } else {
                        -1
                    }
                }
            }
            Op::ByteTest(bt) => {
                let offset = self.var_i(&bt.offset);
                let value = match &bt.value {
                    Value::Lit(v) => *v,
                    Value::Var(i) => self.vars[usize::from(*i) % MAX_VARS],
                };
                match bytes::byte_test(bt, self.buf, self.buffer_offset, offset, value) {
                    Some(end) => self.next(ops, i, hi.max(end)),
                    None => 0,
                }
            }
            Op::ByteJump(bj) => {
                let offset = self.var_i(&bj.offset);
                match bytes::byte_jump(bj, self.buf, self.buffer_offset, offset) {
                    Some(pos) => {
                        self.buffer_offset = pos;
                        self.next(ops, i, hi.max(pos))
                    }
                    None => 0,
                }
            }
            Op::ByteExtract(be) => match bytes::byte_extract(be, self.buf, self.buffer_offset) {
                Some((val, pos)) => {
                    self.vars[usize::from(be.var) % MAX_VARS] = val;
                    self.buffer_offset = pos;
                    self.next(ops, i, hi.max(pos))
                }
                None => 0,
            },
            Op::Bsize(cmp) => {
                let size = u64::from(buf_len) + self.stream_start;
                if cmp.matches(size) {
                    self.next(ops, i, hi)
                } else {
                    -1
                }
            }
        }
    }

    fn content(&mut self, ops: &[Op], i: usize, cd: &ContentOp, hi: u32) -> i8 {
        let buffer_len = self.buf.len() as u32;
        let mut prev_offset: u32 = 0;
        let mut prev_buffer_offset = self.buffer_offset;
        let offset_var = matches!(cd.offset, Some(Value::Var(_)));
        let depth_var = matches!(cd.depth, Some(Value::Var(_)));
        loop {
            let mut depth: u32 = buffer_len;
            let mut offset: u32 = 0;
            if cd.is_relative() {
                offset = prev_buffer_offset;
                let mut distance: i32 = 0;
                if let Some(d) = &cd.distance {
                    distance = self.var_i(d);
                    if distance < 0 && distance.unsigned_abs() > offset {
                        offset = 0;
                    } else {
                        offset = offset.wrapping_add(distance as u32);
                    }
                }
                if let Some(w) = &cd.within {
                    let within = self.var_i(w);
                    let lim = prev_buffer_offset.wrapping_add(within as u32).wrapping_add(distance as u32);
                    if (depth as i32) > (lim as i32) {
                        depth = lim;
                    }
                    if self.stream_start != 0 && prev_buffer_offset == 0 {
                        let d = u64::from(depth);
                        if d <= self.stream_start {
                            return 0;
                        } else if d < self.stream_start + u64::from(buffer_len) {
                            depth = (d - self.stream_start) as u32;
                        }
                    }
                }
                if let Some(dv) = &cd.depth {
                    // A relative depth counts from the previous match.
                    let d = self.var(dv) + u64::from(prev_buffer_offset);
                    if d < u64::from(depth) {
                        depth = d as u32;
                    }
                }
                if let Some(ov) = &cd.offset {
                    let o = self.var(ov);
                    if o > u64::from(offset) {
                        offset = o as u32;
                    }
                }
            } else {
                // Suricata keeps an absolute depth as offset + depth.
                if let Some(dv) = &cd.depth {
                    let mut d = self.var(dv);
                    if !offset_var && !depth_var {
                        if let Some(Value::Lit(o)) = cd.offset {
                            d += u64::from(o);
                        }
                    }
                    depth = d.min(u64::from(u32::MAX)) as u32;
                }
                if self.stream_start != 0 && cd.depth.is_some() {
                    let d = u64::from(depth);
                    if d <= self.stream_start {
                        return 0;
                    } else if d < self.stream_start + u64::from(buffer_len) {
                        depth = (d - self.stream_start) as u32;
                    }
                }
                if let Some(ov) = &cd.offset {
                    offset = self.var(ov).min(u64::from(u32::MAX)) as u32;
                }
                prev_buffer_offset = 0;
            }
            if offset_var || depth_var {
                depth = depth.wrapping_add(offset);
            }
            if prev_offset != 0 {
                offset = prev_offset;
            }
            if depth > buffer_len {
                depth = buffer_len;
            }
            if offset > depth || depth == 0 {
                if cd.negated {
                    return self.next(ops, i, hi);
                }
                return 0;
            }
            let sbuffer_len = depth - offset;
            // An endswith content cannot match in a window that stops short of the end.
            let found = if (cd.endswith && depth < buffer_len) || cd.pat.len() as u32 > sbuffer_len {
                None
            } else {
                let hay = if cd.nocase { self.lower } else { self.buf };
                cd.finder.find(&hay[offset as usize..depth as usize]).map(|p| p as u32 + offset)
            };
            let Some(start) = found else {
                if !cd.negated {
                    if !cd.is_relative() {
                        return -1;
                    }
                    return 0;
                }
                return self.next(ops, i, hi);
            };
            let match_offset = start + cd.pat.len() as u32;
            if cd.negated {
                if cd.endswith && sbuffer_len != match_offset {
                    return self.next(ops, i, hi);
                }
                if !cd.is_relative() && !cd.relative_next {
                    return -1;
                }
                return 0;
            }
            self.buffer_offset = match_offset;
            if !cd.endswith || match_offset == buffer_len {
                if i + 1 >= ops.len() {
                    self.match_end = hi.max(match_offset);
                    return 1;
                }
                let r = self.step(ops, i + 1, hi.max(match_offset));
                if r == 1 {
                    return 1;
                } else if r == -1 {
                    return -1;
                }
                if !cd.within_next {
                    return -1;
                }
            }
            prev_offset = match_offset - (cd.pat.len() as u32 - 1);
        }
    }

    fn pcre(&mut self, ops: &[Op], i: usize, pe: &PcreOp, hi: u32) -> i8 {
        let prev_buffer_offset = self.buffer_offset;
        self.pcre_start = 0;
        loop {
            let base = if pe.relative { self.buffer_offset.min(self.buf.len() as u32) } else { 0 };
            let subject = &self.buf[base as usize..];
            let start = if self.pcre_start != 0 { self.pcre_start.saturating_sub(base) as usize } else { 0 };
            let found = if start > subject.len() {
                None
            } else {
                // A PCRE2 runtime error (match or depth limit) counts as no match, as
                // Suricata.
                pe.re.find_at(subject, start).ok().flatten().map(|m| (m.start() as u32, m.end() as u32))
            };
            let end = match (found, pe.negated) {
                (Some(_), true) | (None, false) => return 0,
                (None, true) => {
                    // A negated pcre matches without moving the offsets.
                    hi
                }
                (Some((s, e)), false) => {
                    self.buffer_offset = base + e;
                    self.pcre_start = base + s + 1;
                    hi.max(base + e)
                }
            };
            if !pe.relative_next {
                return self.next(ops, i, end);
            }
            let prev_offset = self.pcre_start;
            let r = self.next(ops, i, end);
            if r == 1 {
                return 1;
            } else if r == -1 {
                return -1;
            }
            if prev_offset == 0 || pe.negated {
                return 0;
            }
            self.buffer_offset = prev_buffer_offset;
            self.pcre_start = prev_offset;
        }
    }
}
