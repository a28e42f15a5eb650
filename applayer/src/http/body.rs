//! Message bodies: framing (Content-Length, chunked with extensions and trailers, until the
//! connection closes) and what is kept of them (capped, and for responses inflated per
//! Content-Encoding).

use std::io::Write;

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

use super::normalise::trim;
use crate::AppStats;

/// Bytes of a chunk-size line, CRLF after chunk data, or one trailer line, buffered.
const MAX_CHUNK_LINE: usize = 1024;
/// Compressed bytes handed to the inflater at a time, so that one call can produce at most
/// about 1 KiB × this much output before the caps are checked (deflate's ratio is ≤ 1032).
const INFLATE_STEP: usize = 64;

/// How the end of a body is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

/// Where in a chunked body the parser is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Reading the chunk-size line (hex size, optional `;extensions`).
    Size(Vec<u8>),
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd(Vec<u8>),
    /// After the last (zero) chunk: trailer lines up to an empty one.
    Trailer {
        line: Vec<u8>,
        total: usize,
    },
}

/// What feeding bytes to the framing gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Framed {
    /// All input consumed, body not finished.
    More,
    /// The body ended after `n` bytes of the input.
    Done(usize),
    /// Unparseable framing (named anomaly): the body is over and so is the direction.
    Broken(&'static str),
}

impl Framing {
    pub(super) fn chunked() -> Self {
        Framing::Chunked(Chunk::Size(Vec::new()))
    }

    /// Consumes framing and body bytes from `data`, handing body bytes to `sink`.
    pub(super) fn feed(&mut self, data: &[u8], mut sink: impl FnMut(&[u8])) -> Framed {
        match self {
            Framing::UntilClose => {
                sink(data);
                Framed::More
            }
            Framing::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                sink(&data[..n]);
                *left -= n as u64;
                if *left == 0 {
                    Framed::Done(n)
                } else {
                    Framed::More
                }
            }
            Framing::Chunked(c) => feed_chunked(c, data, sink),
        }
    }
}

/// Appends `data` up to the first LF to `line`; returns the bytes used and whether the line
/// is complete, or `None` when it grew past [`MAX_CHUNK_LINE`].
fn take_line(line: &mut Vec<u8>, data: &[u8]) -> Option<(usize, bool)> {
    let (n, done) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (i + 1, true),
        None => (data.len(), false),
    };
    line.extend_from_slice(&data[..n]);
    if line.len() > MAX_CHUNK_LINE {
        return None;
    }
    Some((n, done))
}

fn strip_eol(l: &[u8]) -> &[u8] {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// The chunk size at the start of a size line; extensions after `;` are ignored.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let l = trim(strip_eol(line));
    let end = l.iter().position(|&b| b == b';' || b == b' ' || b == b'\t').unwrap_or(l.len());
    let digits = &l[..end];
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

fn feed_chunked(c: &mut Chunk, data: &[u8], mut sink: impl FnMut(&[u8])) -> Framed {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        match c {
            Chunk::Size(line) => {
                let Some((n, done)) = take_line(line, rest) else { return Framed::Broken("http.invalid_chunk_size") };
                pos += n;
                if done {
                    // Blank lines before a size line are tolerated, as libhtp does.
                    if strip_eol(line).is_empty() {
                        line.clear();
                        continue;
                    }
                    match chunk_size(line) {
                        Some(0) => *c = Chunk::Trailer { line: Vec::new(), total: 0 },
                        Some(size) => *c = Chunk::Data(size),
                        None => return Framed::Broken("http.invalid_chunk_size"),
                    }
                }
            }
            Chunk::Data(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(rest.len());
                sink(&rest[..n]);
                *left -= n as u64;
                pos += n;
                if *left == 0 {
                    *c = Chunk::DataEnd(Vec::new());
                }
            }
            Chunk::DataEnd(line) => {
                let Some((n, done)) = take_line(line, rest) else { return Framed::Broken("http.invalid_chunk") };
                pos += n;
                if done {
                    if !strip_eol(line).is_empty() {
                        return Framed::Broken("http.invalid_chunk");
                    }
                    *c = Chunk::Size(Vec::new());
                }
            }
            Chunk::Trailer { line, total } => {
                let Some((n, done)) = take_line(line, rest) else {
                    return Framed::Broken("http.invalid_chunk_trailer");
                };
                pos += n;
                *total += n;
                if *total > 64 * 1024 {
                    return Framed::Broken("http.invalid_chunk_trailer");
                }
                if done {
                    if strip_eol(line).is_empty() {
                        return Framed::Done(pos);
                    }
                    line.clear();
                }
            }
        }
    }
    Framed::More
}

/// Content-Encoding layers Portcullis inflates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Gzip,
    /// `deflate`: zlib-wrapped per RFC 9110, raw deflate from many servers; decided by the
    /// first two bytes, as libhtp retries raw deflate when the zlib header is missing.
    Deflate,
}

impl Coding {
    /// The one coding of a Content-Encoding value, when it is one Portcullis inflates. Other
    /// values (identity, br, several layers) leave the body as it is.
    pub(super) fn from_header(v: &[u8]) -> Option<Coding> {
        let mut layers =
            v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"identity"));
        let first = layers.next()?;
        if layers.next().is_some() {
            return None;
        }
        if first.eq_ignore_ascii_case(b"gzip") || first.eq_ignore_ascii_case(b"x-gzip") {
            Some(Coding::Gzip)
        } else if first.eq_ignore_ascii_case(b"deflate") {
            Some(Coding::Deflate)
        } else {
            None
        }
    }
}

enum Inflater {
    /// `deflate` before its first two bytes arrived.
    Undecided(Vec<u8>),
    Gzip(GzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Inflater::Undecided(_) => "Undecided",
            Inflater::Gzip(_) => "Gzip",
            Inflater::Zlib(_) => "Zlib",
            Inflater::Raw(_) => "Raw",
        })
    }
}

impl Inflater {
    fn output(&self) -> &[u8] {
        match self {
            Inflater::Undecided(_) => &[],
            Inflater::Gzip(d) => d.get_ref(),
            Inflater::Zlib(d) => d.get_ref(),
            Inflater::Raw(d) => d.get_ref(),
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let r = match self {
            Inflater::Undecided(head) => {
                head.extend_from_slice(data);
                if head.len() < 2 {
                    return Ok(());
                }
                let head = std::mem::take(head);
                self.decide(&head);
                return self.write(&head);
            }
            // Flushed so that the output length seen after each piece is all of it.
            Inflater::Gzip(d) => d.write_all(data).and_then(|()| d.flush()),
            Inflater::Zlib(d) => d.write_all(data).and_then(|()| d.flush()),
            Inflater::Raw(d) => d.write_all(data).and_then(|()| d.flush()),
        };
        match r {
            // Bytes after the end of the compressed stream are ignored.
            Err(e) if e.kind() == std::io::ErrorKind::WriteZero => Ok(()),
            r => r,
        }
    }

    fn decide(&mut self, head: &[u8]) {
        let zlib = head.len() >= 2 && head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
        *self = if zlib {
            Inflater::Zlib(ZlibDecoder::new(Vec::new()))
        } else {
            Inflater::Raw(DeflateDecoder::new(Vec::new()))
        };
    }

    /// Flushes what the inflater holds; an error means the stream is truncated or corrupt.
    fn finish(&mut self) -> std::io::Result<()> {
        if let Inflater::Undecided(head) = self {
            let head = std::mem::take(head);
            self.decide(&head);
            self.write(&head)?;
        }
        match self {
            Inflater::Undecided(_) => Ok(()),
            Inflater::Gzip(d) => d.try_finish(),
            Inflater::Zlib(d) => d.try_finish(),
            Inflater::Raw(d) => d.try_finish(),
        }
    }
}

/// The anomaly for inflated output of `len` bytes, when it passed a cap.
fn over_cap(limit: usize, decompress_limit: usize, len: usize) -> Option<&'static str> {
    if len <= limit.min(decompress_limit) {
        None
    } else if decompress_limit < limit {
        Some("http.decompress_limit")
    } else {
        Some("http.body_truncated")
    }
}

/// What is kept of one body: the dechunked bytes up to the cap and, for an encoded
/// response, the inflated bytes up to the caps.
#[derive(Debug)]
pub(super) struct BodySink {
    raw: Vec<u8>,
    /// Dechunked body bytes seen, kept or not.
    pub seen: u64,
    limit: usize,
    decompress_limit: usize,
    inflater: Option<Inflater>,
    /// The kept bytes were handed out (cap reached): the rest of the body is skipped.
    pub emitted: bool,
}

impl BodySink {
    pub(super) fn new(limit: usize, decompress_limit: usize, coding: Option<Coding>) -> Self {
        let inflater = coding.map(|c| match c {
            Coding::Gzip => Inflater::Gzip(GzDecoder::new(Vec::new())),
            Coding::Deflate => Inflater::Undecided(Vec::new()),
        });
        BodySink { raw: Vec::new(), seen: 0, limit, decompress_limit, inflater, emitted: false }
    }

    /// Takes body bytes; returns the buffer to push when a cap was just reached.
    pub(super) fn feed(&mut self, data: &[u8], stats: &mut AppStats) -> Option<Vec<u8>> {
        self.seen += data.len() as u64;
        if self.emitted || data.is_empty() {
            return None;
        }
        let room = self.limit - self.raw.len().min(self.limit);
        let raw_overflow = data.len() > room;
        self.raw.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(inf) = &mut self.inflater {
            let mut failed = false;
            for piece in data.chunks(INFLATE_STEP) {
                if inf.write(piece).is_err() {
                    failed = true;
                    break;
                }
                if let Some(name) = over_cap(self.limit, self.decompress_limit, inf.output().len()) {
                    stats.anomaly(name);
                    self.emitted = true;
                    let mut out = inf.output().to_vec();
                    out.truncate(self.limit.min(self.decompress_limit));
                    self.inflater = None;
                    self.raw = Vec::new();
                    return Some(out);
                }
            }
            if !failed {
                return None;
            }
            stats.anomaly("http.gzip_decompression_failed");
            self.inflater = None;
        }
        if raw_overflow || (self.seen > self.limit as u64) {
            stats.anomaly("http.body_truncated");
            self.emitted = true;
            return Some(std::mem::take(&mut self.raw));
        }
        None
    }

    /// The body ended: what to push (nothing when a cap already pushed it, or it is empty).
    pub(super) fn finish(&mut self, stats: &mut AppStats) -> Option<Vec<u8>> {
        if self.emitted {
            return None;
        }
        self.emitted = true;
        if let Some(mut inf) = self.inflater.take() {
            let ok = inf.finish().is_ok();
            let out = inf.output();
            // A truncated stream still gives what it inflated; one that gave nothing is
            // corrupt (or not compressed at all) and its raw bytes are inspected instead.
            if ok || !out.is_empty() {
                let mut out = out.to_vec();
                if let Some(name) = over_cap(self.limit, self.decompress_limit, out.len()) {
                    stats.anomaly(name);
                    out.truncate(self.limit.min(self.decompress_limit));
                }
                return Some(out).filter(|o| !o.is_empty());
            }
            stats.anomaly("http.gzip_decompression_failed");
        }
        Some(std::mem::take(&mut self.raw)).filter(|r| !r.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn frame_all(mut f: Framing, input: &[u8], step: usize) -> (Vec<u8>, Framed) {
        let mut body = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + step).min(input.len());
            match f.feed(&input[pos..end], |b| body.extend_from_slice(b)) {
                Framed::More => pos = end,
                Framed::Done(n) => return (body, Framed::Done(pos + n)),
                b => return (body, b),
            }
        }
        (body, Framed::More)
    }

    #[test]
    fn chunked_framing_with_extensions_and_trailers_at_any_split() {
        let wire = b"4;name=val\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (body, r) = frame_all(Framing::chunked(), wire, step);
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(r, Framed::Done(wire.len() - 4), "step {step}");
        }
        assert_eq!(frame_all(Framing::chunked(), b"zz\r\n", 10).1, Framed::Broken("http.invalid_chunk_size"));
        assert_eq!(frame_all(Framing::chunked(), b"2\r\nabXY\r\n", 10).1, Framed::Broken("http.invalid_chunk"));
        assert_eq!(frame_all(Framing::chunked(), &[b'1'; 2000], 10).1, Framed::Broken("http.invalid_chunk_size"));
        assert_eq!(frame_all(Framing::Length(3), b"abcdef", 2), (b"abc".to_vec(), Framed::Done(3)));
    }

    #[test]
    fn inflation_caps_and_corruption() {
        let text = b"hello hello hello hello world".repeat(20);
        let mut st = AppStats::default();
        for coding in [Coding::Gzip, Coding::Deflate] {
            let wire = match coding {
                Coding::Gzip => gzip(&text),
                Coding::Deflate => {
                    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(&text).unwrap();
                    e.finish().unwrap()
                }
            };
            let mut s = BodySink::new(1 << 20, 1 << 20, Some(coding));
            for b in wire.chunks(3) {
                assert_eq!(s.feed(b, &mut st), None);
            }
            assert_eq!(s.finish(&mut st).as_deref(), Some(&text[..]));
        }
        // zlib-wrapped deflate.
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&text).unwrap();
        let mut s = BodySink::new(1 << 20, 1 << 20, Some(Coding::Deflate));
        s.feed(&e.finish().unwrap(), &mut st);
        assert_eq!(s.finish(&mut st).as_deref(), Some(&text[..]));
        assert!(st.anomalies.is_empty());

        // Inflated output is capped by the body limit and by the decompression limit.
        let big = vec![b'a'; 100_000];
        let mut s = BodySink::new(1000, 1 << 20, Some(Coding::Gzip));
        let out = s.feed(&gzip(&big), &mut st).expect("cap reached");
        assert_eq!(out.len(), 1000);
        assert_eq!(s.finish(&mut st), None);
        let mut s = BodySink::new(1 << 20, 5000, Some(Coding::Gzip));
        assert_eq!(s.feed(&gzip(&big), &mut st).map(|o| o.len()), Some(5000));
        assert_eq!(st.anomalies.get("http.body_truncated"), Some(&1));
        assert_eq!(st.anomalies.get("http.decompress_limit"), Some(&1));

        // A corrupt stream: the raw bytes are kept.
        let mut s = BodySink::new(1 << 20, 1 << 20, Some(Coding::Gzip));
        // A valid gzip header, then a deflate block of the reserved type 3.
        s.feed(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x07garbage", &mut st);
        let out = s.finish(&mut st).unwrap();
        assert!(out.starts_with(b"\x1f\x8b"));
        assert_eq!(st.anomalies.get("http.gzip_decompression_failed"), Some(&1));

        // Plain bodies are capped too.
        let mut s = BodySink::new(4, 1 << 20, None);
        assert_eq!(s.feed(b"abc", &mut st), None);
        assert_eq!(s.feed(b"de", &mut st).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(s.feed(b"fg", &mut st), None);
        assert_eq!(s.seen, 7);
        assert_eq!(Coding::from_header(b" X-GZIP "), Some(Coding::Gzip));
        assert_eq!(Coding::from_header(b"gzip, br"), None);
        assert_eq!(Coding::from_header(b"identity, deflate"), Some(Coding::Deflate));
    }
}
