//! Transactions: what a parser produces and detection inspects. A transaction holds the
//! sticky buffers its parser filled (by [`Buf`] and direction, several instances allowed,
//! e.g. one `dns.query` per question), the numbers non-buffer keywords test ([`Num`]), and
//! what EVE logs with an alert ([`TxLog`]). A buffer is pushed once it is final (an HTTP
//! body when it is complete or reached its cap): detection never sees a buffer change.

use std::ops::Range;

use portcullis_common::Direction;

/// The app-layer protocols Portcullis detects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AppProto {
    /// Not decided yet (no data, or not enough).
    #[default]
    Unknown,
    Http,
    Tls,
    Dns,
    Ssh,
    /// Detection ran and recognised nothing (Suricata's `failed`).
    Failed,
}

impl AppProto {
    /// The name EVE writes in `app_proto` and rules write in the header; `None` while unknown.
    pub fn name(self) -> Option<&'static str> {
        match self {
            AppProto::Unknown => None,
            AppProto::Http => Some("http"),
            AppProto::Tls => Some("tls"),
            AppProto::Dns => Some("dns"),
            AppProto::Ssh => Some("ssh"),
            AppProto::Failed => Some("failed"),
        }
    }

    /// The protocol a rule header names (`http`, `tls`/`ssl`, `dns`, `ssh`); `http1` is
    /// Suricata 7's name for HTTP/1 only.
    pub fn from_rule_name(s: &str) -> Option<AppProto> {
        Some(match s {
            "http" | "http1" => AppProto::Http,
            "tls" | "ssl" => AppProto::Tls,
            "dns" => AppProto::Dns,
            "ssh" => AppProto::Ssh,
            _ => return None,
        })
    }
}

/// Sticky buffers, by Suricata 7's canonical names ([`Buf::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buf {
    // HTTP/1.x.
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpRequestLine,
    HttpRequestBody,
    HttpResponseLine,
    HttpResponseBody,
    HttpHeader,
    HttpHeaderRaw,
    HttpHeaderNames,
    HttpCookie,
    HttpUserAgent,
    HttpHost,
    HttpHostRaw,
    HttpAccept,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpConnection,
    HttpContentType,
    HttpContentLen,
    HttpReferer,
    HttpStart,
    HttpProtocol,
    HttpStatCode,
    HttpStatMsg,
    HttpServer,
    HttpLocation,
    FileData,
    // DNS.
    DnsQuery,
    // TLS.
    TlsSni,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    TlsCertFingerprint,
    TlsCerts,
    TlsSubjectAltName,
    TlsRandom,
    Ja3Hash,
    Ja3String,
    Ja3sHash,
    Ja3sString,
    // SSH.
    SshProto,
    SshSoftware,
}

impl Buf {
    pub const ALL: &'static [Buf] = &[
        Buf::HttpUri,
        Buf::HttpUriRaw,
        Buf::HttpMethod,
        Buf::HttpRequestLine,
        Buf::HttpRequestBody,
        Buf::HttpResponseLine,
        Buf::HttpResponseBody,
        Buf::HttpHeader,
        Buf::HttpHeaderRaw,
        Buf::HttpHeaderNames,
        Buf::HttpCookie,
        Buf::HttpUserAgent,
        Buf::HttpHost,
        Buf::HttpHostRaw,
        Buf::HttpAccept,
        Buf::HttpAcceptEnc,
        Buf::HttpAcceptLang,
        Buf::HttpConnection,
        Buf::HttpContentType,
        Buf::HttpContentLen,
        Buf::HttpReferer,
        Buf::HttpStart,
        Buf::HttpProtocol,
        Buf::HttpStatCode,
        Buf::HttpStatMsg,
        Buf::HttpServer,
        Buf::HttpLocation,
        Buf::FileData,
        Buf::DnsQuery,
        Buf::TlsSni,
        Buf::TlsCertSubject,
        Buf::TlsCertIssuer,
        Buf::TlsCertSerial,
        Buf::TlsCertFingerprint,
        Buf::TlsCerts,
        Buf::TlsSubjectAltName,
        Buf::TlsRandom,
        Buf::Ja3Hash,
        Buf::Ja3String,
        Buf::Ja3sHash,
        Buf::Ja3sString,
        Buf::SshProto,
        Buf::SshSoftware,
    ];

    /// Suricata's canonical (dotted) name, as `portcullis-rules` keeps it.
    pub fn name(self) -> &'static str {
        match self {
            Buf::HttpUri => "http.uri",
            Buf::HttpUriRaw => "http.uri.raw",
            Buf::HttpMethod => "http.method",
            Buf::HttpRequestLine => "http.request_line",
            Buf::HttpRequestBody => "http.request_body",
            Buf::HttpResponseLine => "http.response_line",
            Buf::HttpResponseBody => "http.response_body",
            Buf::HttpHeader => "http.header",
            Buf::HttpHeaderRaw => "http.header.raw",
            Buf::HttpHeaderNames => "http.header_names",
            Buf::HttpCookie => "http.cookie",
            Buf::HttpUserAgent => "http.user_agent",
            Buf::HttpHost => "http.host",
            Buf::HttpHostRaw => "http.host.raw",
            Buf::HttpAccept => "http.accept",
            Buf::HttpAcceptEnc => "http.accept_enc",
            Buf::HttpAcceptLang => "http.accept_lang",
            Buf::HttpConnection => "http.connection",
            Buf::HttpContentType => "http.content_type",
            Buf::HttpContentLen => "http.content_len",
            Buf::HttpReferer => "http.referer",
            Buf::HttpStart => "http.start",
            Buf::HttpProtocol => "http.protocol",
            Buf::HttpStatCode => "http.stat_code",
            Buf::HttpStatMsg => "http.stat_msg",
            Buf::HttpServer => "http.server",
            Buf::HttpLocation => "http.location",
            Buf::FileData => "file.data",
            Buf::DnsQuery => "dns.query",
            Buf::TlsSni => "tls.sni",
            Buf::TlsCertSubject => "tls.cert_subject",
            Buf::TlsCertIssuer => "tls.cert_issuer",
            Buf::TlsCertSerial => "tls.cert_serial",
            Buf::TlsCertFingerprint => "tls.cert_fingerprint",
            Buf::TlsCerts => "tls.certs",
            Buf::TlsSubjectAltName => "tls.subjectaltname",
            Buf::TlsRandom => "tls.random",
            Buf::Ja3Hash => "ja3.hash",
            Buf::Ja3String => "ja3.string",
            Buf::Ja3sHash => "ja3s.hash",
            Buf::Ja3sString => "ja3s.string",
            Buf::SshProto => "ssh.proto",
            Buf::SshSoftware => "ssh.software",
        }
    }

    pub fn from_name(name: &str) -> Option<Buf> {
        Buf::ALL.iter().copied().find(|b| b.name() == name)
    }

    /// The protocol whose parser fills the buffer.
    pub fn proto(self) -> AppProto {
        use Buf::*;
        match self {
            DnsQuery => AppProto::Dns,
            TlsSni | TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCertFingerprint | TlsCerts | TlsSubjectAltName
            | TlsRandom | Ja3Hash | Ja3String | Ja3sHash | Ja3sString => AppProto::Tls,
            SshProto | SshSoftware => AppProto::Ssh,
            _ => AppProto::Http,
        }
    }

    /// The one direction whose data fills the buffer, or `None` when both do (then a rule
    /// inspects the instance of the direction it is evaluated in: `http.header` in a
    /// `to_client` rule is the response's headers).
    pub fn fixed_dir(self) -> Option<Direction> {
        use Buf::*;
        match self {
            HttpUri | HttpUriRaw | HttpMethod | HttpRequestLine | HttpRequestBody | HttpUserAgent | HttpHost
            | HttpHostRaw | HttpAccept | HttpAcceptEnc | HttpAcceptLang | HttpReferer | DnsQuery | TlsSni | Ja3Hash
            | Ja3String => Some(Direction::ToServer),
            HttpResponseLine | HttpResponseBody | HttpStatCode | HttpStatMsg | HttpServer | HttpLocation
            | TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCertFingerprint | TlsCerts | TlsSubjectAltName
            | Ja3sHash | Ja3sString => Some(Direction::ToClient),
            HttpHeader | HttpHeaderRaw | HttpHeaderNames | HttpCookie | HttpConnection | HttpContentType
            | HttpContentLen | HttpStart | HttpProtocol | FileData | TlsRandom | SshProto | SshSoftware => None,
        }
    }
}

/// Numbers that non-buffer keywords test (`dns.opcode`, `tls.version`, `ssl_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Num {
    /// The DNS header's opcode (0-15), per message.
    DnsOpcode,
    /// A question's QTYPE (`dns.rrtype` in Suricata 8; logged as `rrtype`).
    DnsRrtype,
    /// The negotiated (ServerHello, including `supported_versions`) or offered
    /// (ClientHello) protocol version: 0x0300 SSLv3 … 0x0304 TLS 1.3; 0x0002 SSLv2.
    TlsVersion,
}

/// One HTTP transaction as EVE logs it with an alert (Suricata's `http` object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpLog {
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub url: Option<String>,
    pub http_user_agent: Option<String>,
    pub http_content_type: Option<String>,
    pub http_refer: Option<String>,
    pub http_method: Option<String>,
    pub protocol: Option<String>,
    pub status: Option<u16>,
    pub redirect: Option<String>,
    /// Response body bytes seen.
    pub length: u64,
}

/// One DNS question (Suricata 7's `dns.query[]` entry in alerts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsQueryLog {
    pub id: u16,
    pub rrname: String,
    /// `A`, `AAAA`, `TXT`, ... or the number for a type without a name.
    pub rrtype: String,
    pub opcode: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsLog {
    pub queries: Vec<DnsQueryLog>,
    /// Response code name (`NOERROR`, `NXDOMAIN`, ...) once a response was seen.
    pub rcode: Option<String>,
}

/// The JA3 and JA3S fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ja3 {
    pub hash: String,
    pub string: String,
}

/// Suricata's `tls` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsLog {
    pub subject: Option<String>,
    pub issuerdn: Option<String>,
    pub serial: Option<String>,
    pub fingerprint: Option<String>,
    pub sni: Option<String>,
    /// `TLS 1.2`, `TLSv1`, `SSLv3`, ... as Suricata writes it.
    pub version: Option<String>,
    pub notbefore: Option<String>,
    pub notafter: Option<String>,
    pub ja3: Option<Ja3>,
    pub ja3s: Option<Ja3>,
}

/// One side's SSH identification (Suricata's `ssh.client` / `ssh.server`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshSide {
    pub proto_version: String,
    pub software_version: String,
}

/// Suricata's `ssh` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshLog {
    pub client: Option<SshSide>,
    pub server: Option<SshSide>,
}

/// What EVE writes about the transaction in an alert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TxLog {
    #[default]
    None,
    Http(Box<HttpLog>),
    Dns(Box<DnsLog>),
    Tls(Box<TlsLog>),
    Ssh(Box<SshLog>),
}

/// One transaction.
#[derive(Clone, Debug, Default)]
pub struct Tx {
    /// Per flow, increasing from 0 in creation order.
    pub id: u64,
    pub proto: AppProto,
    /// Per direction (to server, to client): the parser adds nothing more of this direction.
    pub complete: [bool; 2],
    /// Set by the parser whenever it changed the transaction; the flow turns it into
    /// [`Tx::inspect`] after each parse.
    pub updated: bool,
    /// Per direction (to server, to client): changed since the rules of that direction last
    /// looked at it. Suricata inspects a transaction with the rules of a direction on that
    /// direction's packets, so a request parsed when the server acknowledged it is inspected
    /// by `to_server` rules on the client's next packet.
    pub inspect: [bool; 2],
    pub log: TxLog,
    bufs: Vec<(Buf, Direction, Range<u32>)>,
    nums: Vec<(Num, Direction, u64)>,
    data: Vec<u8>,
}

impl Tx {
    pub fn new(id: u64, proto: AppProto) -> Self {
        Tx { id, proto, ..Tx::default() }
    }

    /// Adds one final instance of a buffer and marks the transaction updated.
    pub fn push(&mut self, buf: Buf, dir: Direction, bytes: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        self.bufs.push((buf, dir, start..self.data.len() as u32));
        self.updated = true;
        self.inspect = [true; 2];
    }

    /// Whether the rules of direction `dir` have not seen the transaction's last change.
    pub fn needs_inspection(&self, dir: Direction) -> bool {
        self.inspect[usize::from(dir == Direction::ToClient)]
    }

    pub fn push_num(&mut self, num: Num, dir: Direction, v: u64) {
        self.nums.push((num, dir, v));
        self.updated = true;
        self.inspect = [true; 2];
    }

    /// The instances of `buf` of direction `dir`, in the order they were pushed.
    pub fn get(&self, buf: Buf, dir: Direction) -> impl Iterator<Item = &[u8]> + '_ {
        self.bufs
            .iter()
            .filter(move |(b, d, _)| *b == buf && *d == dir)
            .map(|(_, _, r)| &self.data[r.start as usize..r.end as usize])
    }

    /// The instance a rule evaluated in direction `eval_dir` inspects: the buffer's own
    /// direction when it has one.
    pub fn get_for(&self, buf: Buf, eval_dir: Direction) -> impl Iterator<Item = &[u8]> + '_ {
        self.get(buf, buf.fixed_dir().unwrap_or(eval_dir))
    }

    pub fn has(&self, buf: Buf, dir: Direction) -> bool {
        self.bufs.iter().any(|(b, d, _)| *b == buf && *d == dir)
    }

    pub fn nums(&self, num: Num) -> impl Iterator<Item = (Direction, u64)> + '_ {
        self.nums.iter().filter(move |(n, _, _)| *n == num).map(|(_, d, v)| (*d, *v))
    }

    /// Every buffer instance: `(buf, dir, bytes)`.
    pub fn buffers(&self) -> impl Iterator<Item = (Buf, Direction, &[u8])> + '_ {
        self.bufs.iter().map(|(b, d, r)| (*b, *d, &self.data[r.start as usize..r.end as usize]))
    }

    /// Heap bytes held, for caps.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.bufs.capacity() * std::mem::size_of::<(Buf, Direction, Range<u32>)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_names_round_trip_and_directions_follow_suricata() {
        for &b in Buf::ALL {
            assert_eq!(Buf::from_name(b.name()), Some(b));
        }
        assert_eq!(Buf::HttpUri.fixed_dir(), Some(Direction::ToServer));
        assert_eq!(Buf::HttpStatCode.fixed_dir(), Some(Direction::ToClient));
        assert_eq!(Buf::FileData.fixed_dir(), None);
        let mut tx = Tx::new(0, AppProto::Http);
        tx.push(Buf::HttpHeader, Direction::ToServer, b"Host: a\r\n");
        tx.push(Buf::HttpHeader, Direction::ToClient, b"Server: b\r\n");
        tx.push(Buf::HttpUri, Direction::ToServer, b"/x");
        assert_eq!(tx.get_for(Buf::HttpHeader, Direction::ToClient).collect::<Vec<_>>(), vec![&b"Server: b\r\n"[..]]);
        assert_eq!(tx.get_for(Buf::HttpUri, Direction::ToClient).collect::<Vec<_>>(), vec![&b"/x"[..]]);
    }
}
