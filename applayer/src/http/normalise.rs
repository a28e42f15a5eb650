//! URI and host normalisation as Suricata 7 configures libhtp by default (`personality: IDS`,
//! `uri-include-all: no`, `double-decode-path/query: no`).
//!
//! `http.uri` is the normalised path, then `?` and the percent-decoded query, then `#` and
//! the percent-decoded fragment (suricata-verify's `detect-xor`, which Suricata 7.0.10
//! passes, needs the query decoded). Scheme, user info, host and port of an absolute-form target
//! are left out (they feed `http.host`). The path goes through, in this order:
//!
//! 1. percent-decoding of every valid `%XX` (not only unreserved characters), `%2f` included
//!    (the IDS personality decodes separators); an invalid escape (`%zz`, a `%` at the end)
//!    is kept as is (libhtp's default `preserve-percent`); `%00` becomes a NUL byte;
//! 2. `%uXXXX` (IIS) decoding: `%u00XX` gives the byte `XX`, full-width ASCII `%uFF01`..
//!    `%uFF5E` the ASCII character, anything else `?`;
//! 3. backslash (raw or decoded from `%5c`) becomes `/`;
//! 4. runs of `/` are compressed to one;
//! 5. UTF-8 sequences (overlong ones included, so `%c0%ae` is a dot) become one byte: code
//!    points below 0x100 that byte, others `?`. libhtp maps some code points above 0xFF to
//!    an ASCII look-alike through a Windows best-fit table; that table is not reproduced
//!    here, so those become `?` too. Invalid UTF-8 is left as is;
//! 6. dot segments are removed as RFC 3986 §5.2.4 says (`/a/./b/../c` → `/a/c`, `/../x` →
//!    `/x`).
//!
//! Not done, as in Suricata's defaults: lower-casing (Suricata turns the IDS personality's
//! lower-casing off so that content matches keep their case), `+` to space (kept as `+`),
//! path normalisation of the query string.

/// The parts of a request target (RFC 7230 §5.3), as raw slices.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Target<'a> {
    /// Host of an absolute-form or authority-form target, without user info and port.
    pub host: Option<&'a [u8]>,
    pub port: Option<&'a [u8]>,
    pub path: &'a [u8],
    pub query: Option<&'a [u8]>,
    pub fragment: Option<&'a [u8]>,
}

/// Splits a request target. `connect`: the method is CONNECT, whose target is `host:port`.
pub(super) fn split_target(raw: &[u8], connect: bool) -> Target<'_> {
    if connect {
        let (host, port) = split_host_port(raw);
        return Target { host: Some(host), port, ..Target::default() };
    }
    let mut rest = raw;
    let mut t = Target::default();
    if let Some(after_scheme) = strip_scheme(raw) {
        let end = after_scheme.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(after_scheme.len());
        let authority = &after_scheme[..end];
        // User info ends at the last '@'.
        let hostport = match authority.iter().rposition(|&b| b == b'@') {
            Some(i) => &authority[i + 1..],
            None => authority,
        };
        let (host, port) = split_host_port(hostport);
        t.host = Some(host);
        t.port = port;
        rest = &after_scheme[end..];
    }
    let (before_frag, frag) = match rest.iter().position(|&b| b == b'#') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (path, query) = match before_frag.iter().position(|&b| b == b'?') {
        Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..])),
        None => (before_frag, None),
    };
    t.path = path;
    t.query = query;
    t.fragment = frag;
    t
}

/// `scheme://` at the start: what follows it.
fn strip_scheme(raw: &[u8]) -> Option<&[u8]> {
    let colon = raw.iter().position(|&b| b == b':')?;
    let scheme = &raw[..colon];
    let valid = !scheme.is_empty()
        && scheme[0].is_ascii_alphabetic()
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if valid {
        raw[colon + 1..].strip_prefix(b"//")
    } else {
        None
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(hp: &[u8]) -> (&[u8], Option<&[u8]>) {
    if hp.first() == Some(&b'[') {
        if let Some(close) = hp.iter().position(|&b| b == b']') {
            let rest = &hp[close + 1..];
            return (&hp[..=close], rest.strip_prefix(b":"));
        }
        return (hp, None);
    }
    // Only one colon: a bare IPv6 address has several and no port.
    match hp.iter().position(|&b| b == b':') {
        Some(i) if !hp[i + 1..].contains(&b':') => (&hp[..i], Some(&hp[i + 1..])),
        _ => (hp, None),
    }
}

/// `http.uri`: see the module documentation.
pub(super) fn normalise_uri(raw: &[u8], connect: bool) -> Vec<u8> {
    let t = split_target(raw, connect);
    let mut out = normalise_path(t.path);
    if let Some(q) = t.query {
        out.push(b'?');
        out.extend_from_slice(&url_decode(q));
    }
    if let Some(f) = t.fragment {
        out.push(b'#');
        out.extend_from_slice(&url_decode(f));
    }
    out
}

/// Steps 1-6 of the module documentation.
pub(super) fn normalise_path(path: &[u8]) -> Vec<u8> {
    remove_dot_segments(&utf8_single_bytes(&decode_path(path)))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: u8, b: u8) -> Option<u8> {
    Some(hex(a)? << 4 | hex(b)?)
}

/// Steps 1-4: percent and %u decoding, backslashes, separator compression.
fn decode_path(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        let mut c = p[i];
        i += 1;
        if c == b'%' {
            if let Some(d) = p.get(i..i + 2).and_then(|h| hex2(h[0], h[1])) {
                c = d;
                i += 2;
            } else if let Some((hi, lo)) = p
                .get(i..i + 5)
                .filter(|u| u[0] == b'u' || u[0] == b'U')
                .and_then(|u| Some((hex2(u[1], u[2])?, hex2(u[3], u[4])?)))
            {
                c = match (hi, lo) {
                    (0, lo) => lo,
                    (0xff, lo @ 0x01..=0x5e) => lo + 0x20,
                    _ => b'?',
                };
                i += 5;
            }
        }
        if c == b'\\' {
            c = b'/';
        }
        if c == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Step 5: valid UTF-8 sequences, overlong forms included, become one byte.
fn utf8_single_bytes(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        let b = p[i];
        let (n, init) = match b {
            0xc0..=0xdf => (2, u32::from(b & 0x1f)),
            0xe0..=0xef => (3, u32::from(b & 0x0f)),
            0xf0..=0xf7 => (4, u32::from(b & 0x07)),
            _ => (1, u32::from(b)),
        };
        let seq = p.get(i..i + n).filter(|s| s[1..].iter().all(|&c| c & 0xc0 == 0x80));
        match seq {
            Some(s) if n > 1 => {
                let cp = s[1..].iter().fold(init, |acc, &c| acc << 6 | u32::from(c & 0x3f));
                out.push(u8::try_from(cp).unwrap_or(b'?'));
                i += n;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Step 6: RFC 3986 §5.2.4.
pub(super) fn remove_dot_segments(p: &[u8]) -> Vec<u8> {
    fn pop_segment(out: &mut Vec<u8>) {
        let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
        out.truncate(cut);
    }
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        let rest = &p[i..];
        if rest.starts_with(b"../") {
            i += 3;
        } else if rest.starts_with(b"./") || rest.starts_with(b"/./") {
            // "./" is dropped; "/./" becomes "/" (the slash stays in the input).
            i += 2;
        } else if rest == b"/." {
            out.push(b'/');
            break;
        } else if rest.starts_with(b"/../") {
            i += 3;
            pop_segment(&mut out);
        } else if rest == b"/.." {
            pop_segment(&mut out);
            out.push(b'/');
            break;
        } else if rest == b"." || rest == b".." {
            break;
        } else {
            let start = usize::from(rest[0] == b'/');
            let end = rest[start..].iter().position(|&b| b == b'/').map_or(rest.len(), |e| e + start);
            out.extend_from_slice(&rest[..end]);
            i += end;
        }
    }
    out
}

/// `%XX` decoding only (query and fragment); invalid escapes kept, `+` kept.
pub(super) fn url_decode(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        match p.get(i + 1..i + 3).and_then(|h| hex2(h[0], h[1])) {
            Some(d) if p[i] == b'%' => {
                out.push(d);
                i += 3;
            }
            _ => {
                out.push(p[i]);
                i += 1;
            }
        }
    }
    out
}

/// `http.host`: lower case, port and trailing dots removed (libhtp's hostname
/// normalisation). Several Host headers were joined with ", " and are kept that way.
pub(super) fn normalise_host(h: &[u8]) -> Vec<u8> {
    let h = trim(h);
    let (host, port) = split_host_port(h);
    let host = match port {
        Some(p) if p.iter().all(u8::is_ascii_digit) => host,
        _ => h,
    };
    let mut out = host.to_ascii_lowercase();
    while out.last() == Some(&b'.') {
        out.pop();
    }
    out
}

/// The port of a `host:port` value, when it is a number.
pub(super) fn host_port(h: &[u8]) -> Option<u16> {
    let (_, port) = split_host_port(trim(h));
    std::str::from_utf8(port?).ok()?.parse().ok()
}

/// Leading and trailing spaces and tabs removed.
pub(super) fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |e| e + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_normalisation_follows_suricata_defaults() {
        // (raw target, http.uri)
        let cases: &[(&[u8], &[u8])] = &[
            (b"/a/./b/../c%41", b"/a/cA"),
            (b"/index.html", b"/index.html"),
            // Every valid escape is decoded, reserved characters too.
            (b"/a%20b%3F", b"/a b?"),
            // %2f is a separator once decoded (IDS personality) and compressed.
            (b"/a%2fb/%2F/c", b"/a/b/c"),
            // Backslashes, raw or encoded, are separators.
            (b"/a\\b%5cc", b"/a/b/c"),
            (b"//a///b", b"/a/b"),
            // '+' stays; the query is percent-decoded but its dot segments stay.
            (b"/a+b?q=%41+c&x=/../", b"/a+b?q=A+c&x=/../"),
            // Encoded dot segments are removed after decoding.
            (b"/x/%2e%2e/y", b"/y"),
            (b"/../../etc/passwd", b"/etc/passwd"),
            (b"/a/b/..", b"/a/"),
            (b"/a/.", b"/a/"),
            // Invalid escapes are preserved.
            (b"/a%zz%4", b"/a%zz%4"),
            (b"/%u0041%uFF0E%u1234", b"/A.?"),
            // Overlong UTF-8 dot and slash; a 2-byte Latin-1 letter; a 3-byte code point.
            (b"/a/%c0%ae%c0%ae/b", b"/b"),
            ("/caf\u{e9}/\u{4e2d}".as_bytes(), b"/caf\xe9/?"),
            // Absolute form: scheme and authority go to http.host, not http.uri.
            (b"http://user:pw@Example.COM:8080/p/./q?x#fr%41g", b"/p/q?x#frAg"),
            (b"*", b"*"),
            (b"/p%00q", b"/p\0q"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise_uri(raw, false), *want, "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(normalise_uri(b"example.com:443", true), b"");
    }

    #[test]
    fn targets_and_hosts_split() {
        let t = split_target(b"http://a@Host.Example.:81/p?q#f", false);
        assert_eq!(
            t,
            Target {
                host: Some(b"Host.Example."),
                port: Some(b"81"),
                path: b"/p",
                query: Some(b"q"),
                fragment: Some(b"f")
            }
        );
        assert_eq!(split_target(b"[::1]:443", true).host, Some(&b"[::1]"[..]));
        assert_eq!(normalise_host(b" WWW.Example.com.:8080 "), b"www.example.com");
        assert_eq!(normalise_host(b"ABC.com, efg.net"), b"abc.com, efg.net");
        assert_eq!(normalise_host(b"[2001:DB8::1]:80"), b"[2001:db8::1]");
        assert_eq!(host_port(b"a.b:8080"), Some(8080));
        assert_eq!(host_port(b"a.b"), None);
        assert_eq!(remove_dot_segments(b"mid/content=5/../6"), b"mid/6");
    }
}
