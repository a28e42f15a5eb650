//! Protocol detection by content, as Suricata's pattern-based detection does for the
//! protocols Portcullis parses: an HTTP request line or status line, a TLS (or SSLv2)
//! handshake record, an SSH banner, whatever the ports; DNS (which has no magic bytes) by
//! port 53 and a well-formed header. Bytes seen before the decision are held (up to
//! [`AppConfig::detect_bytes`] per direction) and handed to the parser once it is chosen.

use portcullis_common::Direction;

use crate::{AppConfig, AppProto};

/// HTTP/1.x request methods Suricata's HTTP detection knows, each followed by a space.
const METHODS: &[&[u8]] = &[
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE", b"PATCH", b"PROPFIND",
    b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH", b"CHECKOUT", b"REPORT",
    b"SUBSCRIBE", b"NOTIFY", b"M-SEARCH", b"MERGE", b"BCOPY", b"BDELETE", b"BMOVE", b"BPROPFIND",
    b"BPROPPATCH", b"POLL", b"VERSION-CONTROL",
];

/// What one direction's first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Is(AppProto),
    /// Could still become a match with more bytes.
    NeedMore,
    No,
}

fn classify(dir: Direction, b: &[u8]) -> Verdict {
    let mut need_more = false;
    let mut check = |pat: &[u8], proto: AppProto| -> Option<AppProto> {
        let n = pat.len().min(b.len());
        if b[..n] == pat[..n] {
            if b.len() >= pat.len() {
                return Some(proto);
            }
            need_more = true;
        }
        None
    };
    if let Some(p) = check(b"SSH-", AppProto::Ssh) {
        return Verdict::Is(p);
    }
    match dir {
        Direction::ToServer => {
            for m in METHODS {
                let mut pat = m.to_vec();
                pat.push(b' ');
                if let Some(p) = check(&pat, AppProto::Http) {
                    return Verdict::Is(p);
                }
            }
        }
        Direction::ToClient => {
            if let Some(p) = check(b"HTTP/", AppProto::Http) {
                return Verdict::Is(p);
            }
        }
    }
    match tls_record(b) {
        Verdict::No => {}
        v => return v,
    }
    if need_more {
        Verdict::NeedMore
    } else {
        Verdict::No
    }
}

/// A TLS handshake record (content type 22, version 3.0-3.4) or an SSLv2 ClientHello.
fn tls_record(b: &[u8]) -> Verdict {
    match b {
        [] => Verdict::NeedMore,
        [0x16] | [0x16, 0x03] => Verdict::NeedMore,
        [0x16, 0x03, v, ..] if *v <= 4 => Verdict::Is(AppProto::Tls),
        // SSLv2 record header (2-byte length, high bit set), message type 1, version 2 or 3.
        [h, _, 1, 0, 2, ..] | [h, _, 1, 3, _, ..] if h & 0x80 != 0 => Verdict::Is(AppProto::Tls),
        [h, ..] if h & 0x80 != 0 && b.len() < 5 => Verdict::NeedMore,
        _ => Verdict::No,
    }
}

/// A DNS header: 12 bytes, opcode 0-5, at most a few hundred records per section. A header
/// with no records at all counts (nmap's first DNS probe is one; Suricata takes it too).
fn dns_header(b: &[u8]) -> bool {
    if b.len() < 12 {
        return false;
    }
    let opcode = (b[2] >> 3) & 0x0f;
    let count = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    opcode <= 5 && count(4) <= 256 && count(6) <= 1024 && count(8) <= 1024 && count(10) <= 1024
}

/// Detection state of one flow.
#[derive(Debug)]
pub struct Probe {
    proto: AppProto,
    tcp: bool,
    dns_port: bool,
    held: [Vec<u8>; 2],
    /// Order in which directions first sent data, so held bytes are replayed as they came.
    first: Option<Direction>,
    no: [bool; 2],
}

impl Probe {
    pub fn new(tcp: bool, client_port: u16, server_port: u16) -> Self {
        Probe {
            proto: AppProto::Unknown,
            tcp,
            dns_port: client_port == 53 || server_port == 53,
            held: Default::default(),
            first: None,
            no: [false; 2],
        }
    }

    pub fn proto(&self) -> AppProto {
        self.proto
    }

    /// TCP bytes of one direction; returns the protocol once decided (not `Failed`, which
    /// needs no parser but is kept as the flow's protocol).
    pub fn feed(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8]) -> Option<AppProto> {
        let d = usize::from(dir == Direction::ToClient);
        self.first.get_or_insert(dir);
        let room = cfg.detect_bytes.saturating_sub(self.held[d].len());
        self.held[d].extend_from_slice(&data[..data.len().min(room)]);
        let b = &self.held[d];
        let mut v = classify(dir, b);
        if v == Verdict::No && self.dns_port && b.len() >= 14 {
            let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
            if len >= 12 && dns_header(&b[2..]) {
                v = Verdict::Is(AppProto::Dns);
            }
        } else if v == Verdict::No && self.dns_port && b.len() < 14 {
            v = Verdict::NeedMore;
        }
        match v {
            Verdict::Is(p) => {
                self.proto = p;
                Some(p)
            }
            Verdict::NeedMore if b.len() < cfg.detect_bytes => None,
            _ => {
                self.no[d] = true;
                // Suricata gives up on a flow when both directions failed, or one did and
                // the other never spoke within the same budget.
                if self.no[0] && self.no[1] || self.held[d].len() >= cfg.detect_bytes {
                    self.proto = AppProto::Failed;
                    self.held = Default::default();
                }
                None
            }
        }
    }

    /// A UDP datagram: DNS on port 53 with a well-formed header.
    pub fn feed_datagram(&mut self, _dir: Direction, data: &[u8]) -> Option<AppProto> {
        debug_assert!(!self.tcp);
        if self.dns_port && dns_header(data) {
            self.proto = AppProto::Dns;
            return Some(AppProto::Dns);
        }
        self.proto = AppProto::Failed;
        None
    }

    /// The bytes held while detecting, in the order the directions first spoke.
    pub fn take_held(&mut self) -> Vec<(Direction, Vec<u8>)> {
        let order = match self.first {
            Some(Direction::ToClient) => [Direction::ToClient, Direction::ToServer],
            _ => [Direction::ToServer, Direction::ToClient],
        };
        order
            .into_iter()
            .map(|d| (d, std::mem::take(&mut self.held[usize::from(d == Direction::ToClient)])))
            .filter(|(_, b)| !b.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(tcp: bool, ports: (u16, u16), chunks: &[(Direction, &[u8])]) -> AppProto {
        let cfg = AppConfig::default();
        let mut p = Probe::new(tcp, ports.0, ports.1);
        for (d, c) in chunks {
            if tcp {
                p.feed(&cfg, *d, c);
            } else {
                p.feed_datagram(*d, c);
            }
            if p.proto() != AppProto::Unknown {
                break;
            }
        }
        p.proto()
    }

    #[test]
    fn protocols_are_recognised_by_content_on_any_port() {
        use Direction::*;
        assert_eq!(detect(true, (40000, 8081), &[(ToServer, b"GET /x HTTP/1.1\r\n")]), AppProto::Http);
        // A method split over two segments.
        assert_eq!(detect(true, (40000, 8081), &[(ToServer, b"PO"), (ToServer, b"ST / HTTP/1.0\r\n")]), AppProto::Http);
        assert_eq!(detect(true, (40000, 4443), &[(ToServer, &[0x16, 0x03, 0x01, 0x00, 0x50, 0x01])]), AppProto::Tls);
        assert_eq!(detect(true, (40000, 2222), &[(ToClient, b"SSH-2.0-OpenSSH_9.2\r\n")]), AppProto::Ssh);
        assert_eq!(detect(true, (40000, 80), &[(ToClient, b"HTTP/1.1 200 OK\r\n")]), AppProto::Http);
        // Port 80 is not enough.
        assert_eq!(detect(true, (40000, 80), &[(ToServer, b"hello there, this is not http at all"), (ToClient, b"nor is this reply, at any length")]), AppProto::Failed);
        // DNS over TCP: length prefix and a header.
        let q = [0, 29, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x'];
        assert_eq!(detect(true, (40000, 53), &[(ToServer, &q)]), AppProto::Dns);
        let udp_q = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
        assert_eq!(detect(false, (40000, 53), &[(ToServer, &udp_q)]), AppProto::Dns);
        assert_eq!(detect(false, (40000, 5353), &[(ToServer, &udp_q)]), AppProto::Failed);
    }
}
