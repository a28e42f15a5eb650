//! Request and response heads: the start line and the header fields, parsed by `httparse`
//! when it accepts them, else by a lenient parser in libhtp's manner (bare LF line ends,
//! HTTP/0.9 request lines, folded header lines, odd whitespace), so that what servers accept
//! is still inspected.

use super::normalise::trim;
use crate::AppStats;

/// Repeated headers beyond this many are dropped, as libhtp caps repetitions.
const MAX_REPETITIONS: usize = 64;

/// One parsed head.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Head {
    /// The start line without its line end.
    pub line: Vec<u8>,
    /// Request: method, target, protocol. Response: protocol, status code, reason phrase.
    pub parts: [Vec<u8>; 3],
    /// A request line without a protocol (HTTP/0.9: no headers, no status line back).
    pub http09: bool,
    /// The header block as on the wire, from after the start line through the empty line.
    pub raw_headers: Vec<u8>,
    /// Header fields in first-seen order, repeated names merged with ", " (except
    /// Content-Length, whose first value stays), values trimmed, folded lines joined.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Head {
    pub(super) fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }

    fn add(&mut self, name: &[u8], value: &[u8], repeats: &mut usize, stats: &mut AppStats) {
        let value = trim(value);
        match self.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(_) if *repeats >= MAX_REPETITIONS => stats.anomaly("http.too_many_header_repetitions"),
            Some((n, v)) => {
                *repeats += 1;
                if n.eq_ignore_ascii_case(b"content-length") {
                    if trim(v) != value {
                        stats.anomaly("http.duplicate_content_length");
                    }
                } else {
                    v.extend_from_slice(b", ");
                    v.extend_from_slice(value);
                }
            }
            None => self.headers.push((name.to_vec(), value.to_vec())),
        }
    }
}

/// The start line of a head (bytes before the first LF, without CR).
fn first_line(head: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match head.iter().position(|&b| b == b'\n') {
        Some(i) => (&head[..i], &head[i + 1..]),
        None => (head, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

/// Splits on the first run of spaces or tabs.
fn split_ws(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&s[..i], trim(&s[i..])),
        None => (s, &[][..]),
    }
}

/// Whether a request line names a protocol; one that does not is HTTP/0.9 and its head
/// ends with it. Must agree with [`parse_request`].
pub(super) fn request_line_has_protocol(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (_, after) = split_ws(trim(line));
    after.iter().any(|&b| b == b' ' || b == b'\t')
}

/// Whether `rest` (what follows a request line without a protocol) starts with a header
/// line: a name of token characters and a colon before the line ends.
pub(super) fn header_line_follows(rest: &[u8]) -> bool {
    let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
    match line.iter().position(|&b| b == b':') {
        Some(i) if i > 0 => line[..i].iter().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)),
        _ => false,
    }
}

/// A whole request head (through its empty line, or just the request line for HTTP/0.9).
pub(super) fn parse_request(head: &[u8], stats: &mut AppStats) -> Head {
    let (line, rest) = first_line(head);
    let mut h = Head { line: line.to_vec(), raw_headers: rest.to_vec(), ..Head::default() };
    let mut storage = vec![httparse::EMPTY_HEADER; count_lines(rest)];
    let mut req = httparse::Request::new(&mut storage);
    let strict = req.parse(head);
    if let (Ok(httparse::Status::Complete(_)), Some(m), Some(p), Some(v)) = (strict, req.method, req.path, req.version)
    {
        h.parts = [m.as_bytes().to_vec(), p.as_bytes().to_vec(), format!("HTTP/1.{v}").into_bytes()];
        let mut repeats = 0;
        for f in req.headers.iter() {
            h.add(f.name.as_bytes(), f.value, &mut repeats, stats);
        }
        return h;
    }
    // Lenient request line: method, then the target, then the protocol when present.
    let (method, after) = split_ws(trim(line));
    let (target, protocol) = match after.iter().rposition(|&b| b == b' ' || b == b'\t') {
        Some(i)
            if trim(&after[i..]).len() >= 4
                && after[i + 1..].get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"HTTP")) =>
        {
            (trim(&after[..i]), trim(&after[i..]))
        }
        _ => split_ws(after),
    };
    h.parts = [method.to_vec(), target.to_vec(), protocol.to_vec()];
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if method.is_empty()
        || !method.iter().all(token)
        || target.is_empty()
        || (!protocol.is_empty() && !looks_like_protocol(protocol))
    {
        stats.anomaly("http.invalid_request_line");
    }
    if protocol.is_empty() {
        if header_line_follows(rest) {
            // Headers after a request line without a protocol: libhtp parses them and
            // counts the missing protocol.
            stats.anomaly("http.missing_protocol");
            lenient_headers(&mut h, rest, stats);
            return h;
        }
        h.http09 = true;
        h.raw_headers.clear();
        return h;
    }
    lenient_headers(&mut h, rest, stats);
    h
}

/// A whole response head (through its empty line).
pub(super) fn parse_response(head: &[u8], stats: &mut AppStats) -> Head {
    let (line, rest) = first_line(head);
    let mut h = Head { line: line.to_vec(), raw_headers: rest.to_vec(), ..Head::default() };
    let mut storage = vec![httparse::EMPTY_HEADER; count_lines(rest)];
    let mut res = httparse::Response::new(&mut storage);
    let cfg = {
        let mut c = httparse::ParserConfig::default();
        c.allow_multiple_spaces_in_response_status_delimiters(true)
            .allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true);
        c
    };
    let strict = cfg.parse_response(&mut res, head);
    if let (Ok(httparse::Status::Complete(_)), Some(v), Some(code)) = (strict, res.version, res.code) {
        let reason = res.reason.unwrap_or("").as_bytes().to_vec();
        h.parts = [format!("HTTP/1.{v}").into_bytes(), format!("{code:03}").into_bytes(), reason];
        let mut repeats = 0;
        for f in res.headers.iter() {
            h.add(f.name.as_bytes(), &unfold(f.value), &mut repeats, stats);
        }
        return h;
    }
    let (protocol, after) = split_ws(trim(line));
    let (code, reason) = split_ws(after);
    if !looks_like_protocol(protocol) || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        stats.anomaly("http.invalid_response_line");
    }
    h.parts = [protocol.to_vec(), code.to_vec(), reason.to_vec()];
    lenient_headers(&mut h, rest, stats);
    h
}

fn looks_like_protocol(p: &[u8]) -> bool {
    p.len() >= 6 && p[..5].eq_ignore_ascii_case(b"HTTP/")
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count() + 1
}

/// An obsolete multi-line value: its line ends and the indentation after them become one
/// space.
fn unfold(v: &[u8]) -> Vec<u8> {
    if !v.contains(&b'\n') {
        return v.to_vec();
    }
    let mut out = Vec::with_capacity(v.len());
    for (i, part) in v.split(|&b| b == b'\n').enumerate() {
        let part = trim(part.strip_suffix(b"\r").unwrap_or(part));
        if i > 0 && !part.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(part);
    }
    out
}

/// Header lines up to the first empty one: `name: value`, continuation lines (starting
/// with a space or tab) appended to the previous value, lines without a colon skipped.
fn lenient_headers(h: &mut Head, block: &[u8], stats: &mut AppStats) {
    let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for raw in block.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match fields.last_mut() {
                Some((_, v)) => {
                    stats.anomaly("http.header_folding");
                    if !trim(v).is_empty() {
                        v.push(b' ');
                    }
                    v.extend_from_slice(trim(line));
                }
                None => stats.anomaly("http.invalid_header"),
            }
            continue;
        }
        match line.iter().position(|&b| b == b':') {
            Some(c) if !trim(&line[..c]).is_empty() => {
                let name = &line[..c];
                if trim(name).len() != name.len() {
                    stats.anomaly("http.invalid_header");
                }
                fields.push((trim(name), line[c + 1..].to_vec()));
            }
            _ => stats.anomaly("http.invalid_header"),
        }
    }
    let mut repeats = 0;
    for (n, v) in fields {
        h.add(n, &v, &mut repeats, stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_lenient_heads_give_the_same_fields() {
        let mut st = AppStats::default();
        let strict = parse_request(b"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept:  */*  \r\nhost: y\r\n\r\n", &mut st);
        let lenient = parse_request(b"GET /a?b HTTP/1.1\nHost: x\nAccept:  */*  \nhost: y\n\n", &mut st);
        for h in [&strict, &lenient] {
            assert_eq!(h.parts, [b"GET".to_vec(), b"/a?b".to_vec(), b"HTTP/1.1".to_vec()]);
            assert_eq!(h.headers, vec![(b"Host".to_vec(), b"x, y".to_vec()), (b"Accept".to_vec(), b"*/*".to_vec())]);
        }
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
    }

    #[test]
    fn odd_request_heads() {
        let mut st = AppStats::default();
        let h = parse_request(b"GET /old\r\n", &mut st);
        assert!(h.http09);
        assert_eq!(h.parts[1], b"/old");
        // A space in the target, folding, a field without a colon, HTTP/2.0 on the line.
        let h = parse_request(
            b"GET /a b HTTP/2.0\r\nX: 1\r\n  2\r\nnocolon\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\n",
            &mut st,
        );
        assert_eq!(h.parts, [b"GET".to_vec(), b"/a b".to_vec(), b"HTTP/2.0".to_vec()]);
        assert_eq!(h.get("x"), Some(&b"1 2"[..]));
        assert_eq!(h.get("Content-Length"), Some(&b"3"[..]));
        for a in ["http.header_folding", "http.invalid_header", "http.duplicate_content_length"] {
            assert_eq!(st.anomalies.get(a), Some(&1), "{a}");
        }
        let h = parse_request(b"\x16\x03\x01 garbage\r\n\r\n", &mut st);
        assert!(h.http09);
        assert_eq!(st.anomalies.get("http.invalid_request_line"), Some(&1));
        let h = parse_request(b"GET  /x  HTTP/1.0\r\n\r\n", &mut st);
        assert_eq!(h.parts[1], b"/x");
    }

    #[test]
    fn response_heads() {
        let mut st = AppStats::default();
        let h = parse_response(b"HTTP/1.1 404 Not Found\r\nServer: s\r\nX: a\r\n b\r\n\r\n", &mut st);
        assert_eq!(h.parts, [b"HTTP/1.1".to_vec(), b"404".to_vec(), b"Not Found".to_vec()]);
        assert_eq!(h.get("x"), Some(&b"a b"[..]));
        let h = parse_response(b"HTTP/1.1 200\r\n\r\n", &mut st);
        assert_eq!(h.parts[2], b"");
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
        let h = parse_response(b"HTTP/1.0 2000 Weird\r\nA: b\r\n\r\n", &mut st);
        assert_eq!(h.parts[1], b"2000");
        assert_eq!(st.anomalies.get("http.invalid_response_line"), Some(&1));
    }
}
