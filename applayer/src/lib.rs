//! App-layer inspection. This crate owns protocol detection by content (not by port alone)
//! and the HTTP/1.x, DNS and TLS parsers (plus the SSH banner). Its input is what the
//! stream engine and the decoder already produced: the in-order bytes of one direction of a
//! TCP connection (`portcullis-stream`'s output, as the replay hands it to detection) or one
//! UDP datagram's payload. Its output is a per-flow list of transactions ([`Tx`]) carrying
//! Suricata's sticky buffers by name ([`Buf`]), the numbers a few keywords test ([`Num`]) and
//! what EVE logs with an alert ([`TxLog`]). It does no I/O and knows nothing of rules:
//! `portcullis-detect` reads the transactions.
//!
//! Every parser caps what it buffers ([`AppConfig`]) and turns malformed input into a named,
//! counted anomaly ([`AppStats`]); a parser that gives up on a flow stops parsing it, and the
//! flow's other inspection goes on.
//!
//! Layout per protocol, as Suricata's `rust/src/<proto>/`: `<proto>.rs` holds the state
//! machine over bytes (`parse`/`close`), filling transactions through [`Txs`].

mod detect;
pub mod dns;
pub mod http;
mod ssh;
pub mod tls;
mod tx;

use std::collections::BTreeMap;

use portcullis_common::Direction;

pub use detect::Probe;
pub use tx::{AppProto, Buf, DnsLog, DnsQueryLog, HttpLog, Ja3, Num, SshLog, SshSide, TlsLog, Tx, TxLog};

/// Caps and switches, Suricata's defaults where it has one.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// HTTP request body bytes kept for `http.request_body`/`file.data` (libhtp's
    /// `request-body-limit`, 100 KiB).
    pub http_request_body_limit: usize,
    /// HTTP response body bytes kept, after decompression (`response-body-limit`, 100 KiB).
    pub http_response_body_limit: usize,
    /// Bytes a gzip/deflate body may inflate to before decompression stops (counted).
    pub http_decompress_limit: usize,
    /// Request or response line plus headers: longer is an anomaly and the tx is cut.
    pub http_max_header_bytes: usize,
    /// Bytes of one TLS handshake message (which may span records and segments) buffered.
    pub tls_max_handshake: usize,
    /// Bytes of one DNS-over-TCP message buffered.
    pub dns_max_tcp_message: usize,
    /// Transactions kept per flow; beyond it the oldest are dropped (counted).
    pub max_txs: usize,
    /// Unrecognised bytes per direction after which protocol detection gives up.
    pub detect_bytes: usize,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            http_request_body_limit: 100 * 1024,
            http_response_body_limit: 100 * 1024,
            http_decompress_limit: 1024 * 1024,
            http_max_header_bytes: 64 * 1024,
            tls_max_handshake: 64 * 1024,
            dns_max_tcp_message: 64 * 1024,
            max_txs: 512,
            detect_bytes: 2048,
        }
    }
}

/// Counters of one worker's app-layer parsing: flows by detected protocol and parser errors
/// by protocol, under Suricata's `stats.app_layer` names (`http`, `tls`, `dns_udp`,
/// `dns_tcp`, `ssh`, `failed_tcp`, `failed_udp`), and anomalies by name
/// (`http.invalid_request_line`, `tls.record_too_long`, ...). Allocates only the first time
/// a name is counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppStats {
    pub flows: BTreeMap<&'static str, u64>,
    /// Anomalies per protocol (Suricata's `app_layer.error.<proto>.parser`).
    pub errors: BTreeMap<&'static str, u64>,
    pub anomalies: BTreeMap<&'static str, u64>,
    anomaly_total: u64,
}

impl AppStats {
    pub fn anomaly(&mut self, name: &'static str) {
        *self.anomalies.entry(name).or_default() += 1;
        self.anomaly_total += 1;
    }

    pub fn merge(&mut self, o: &AppStats) {
        for (k, v) in &o.flows {
            *self.flows.entry(k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in &o.anomalies {
            *self.anomalies.entry(k).or_default() += v;
        }
        self.anomaly_total += o.anomaly_total;
    }
}

/// Deterministic pseudo-random bytes (xorshift32) for the parsers' never-panic tests: the
/// next `len` bytes of the stream `state` is at.
#[cfg(test)]
pub(crate) fn garbage(state: &mut u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 17;
            *state ^= *state << 5;
            *state as u8
        })
        .collect()
}

/// Suricata's `stats.app_layer` name of a protocol on a transport.
fn stat_name(proto: AppProto, tcp: bool) -> Option<&'static str> {
    Some(match (proto, tcp) {
        (AppProto::Http, _) => "http",
        (AppProto::Tls, _) => "tls",
        (AppProto::Ssh, _) => "ssh",
        (AppProto::Dns, true) => "dns_tcp",
        (AppProto::Dns, false) => "dns_udp",
        (AppProto::Failed, true) => "failed_tcp",
        (AppProto::Failed, false) => "failed_udp",
        (AppProto::Unknown, _) => return None,
    })
}

/// The transactions of one flow, in creation order, and the next id.
#[derive(Clone, Debug, Default)]
pub struct Txs {
    list: Vec<Tx>,
    next_id: u64,
    /// Set when a transaction was dropped because the list was full.
    pub(crate) overflowed: bool,
}

impl Txs {
    /// Starts a transaction; when `max` are live the oldest is dropped first.
    pub fn open(&mut self, proto: AppProto, max: usize, stats: &mut AppStats) -> &mut Tx {
        if self.list.len() >= max.max(1) {
            self.list.remove(0);
            self.overflowed = true;
            stats.anomaly("applayer.too_many_transactions");
        }
        let mut tx = Tx::new(self.next_id, proto);
        tx.updated = true;
        self.next_id += 1;
        self.list.push(tx);
        self.list.last_mut().expect("just pushed")
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Tx> {
        self.list.iter_mut().find(|t| t.id == id)
    }

    pub fn last_mut(&mut self) -> Option<&mut Tx> {
        self.list.last_mut()
    }

    /// The first transaction satisfying `f`, oldest first.
    pub fn find_mut(&mut self, f: impl FnMut(&&mut Tx) -> bool) -> Option<&mut Tx> {
        self.list.iter_mut().find(f)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Tx> {
        self.list.iter()
    }

    pub fn as_slice(&self) -> &[Tx] {
        &self.list
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The parser a flow's protocol chose.
#[derive(Debug, Default)]
enum Parser {
    /// Detection still running, or none applies.
    #[default]
    None,
    Http(Box<http::HttpState>),
    Dns(Box<dns::DnsState>),
    Tls(Box<tls::TlsState>),
    Ssh(ssh::SshState),
}

/// One flow's app layer: detection, then its protocol's parser and transactions.
#[derive(Debug)]
pub struct AppFlow {
    probe: Probe,
    parser: Parser,
    txs: Txs,
    tcp: bool,
    /// The protocol's `stats.app_layer` name once decided.
    stat_name: Option<&'static str>,
}

impl AppFlow {
    /// `tcp`: the flow is TCP (else UDP); ports as the flow key has them (client, server).
    pub fn new(tcp: bool, client_port: u16, server_port: u16) -> Self {
        AppFlow { probe: Probe::new(tcp, client_port, server_port), parser: Parser::None, txs: Txs::default(), tcp, stat_name: None }
    }

    pub fn proto(&self) -> AppProto {
        self.probe.proto()
    }

    /// In-order stream bytes of one direction of a TCP flow.
    pub fn stream(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], stats: &mut AppStats) {
        if data.is_empty() {
            return;
        }
        if self.probe.proto() == AppProto::Unknown {
            let decided = self.probe.feed(cfg, dir, data);
            if let Some(proto) = decided {
                self.start(proto, stats);
                // Hand the parser what detection held, in arrival order per direction.
                for (d, bytes) in self.probe.take_held() {
                    self.parse(cfg, d, &bytes, stats);
                }
            } else if self.probe.proto() == AppProto::Failed {
                self.start(AppProto::Failed, stats);
            }
            return;
        }
        self.parse(cfg, dir, data, stats);
    }

    /// One UDP datagram's payload.
    pub fn datagram(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], stats: &mut AppStats) {
        if data.is_empty() {
            return;
        }
        if self.probe.proto() == AppProto::Unknown {
            let decided = self.probe.feed_datagram(dir, data);
            self.start(decided.unwrap_or(AppProto::Failed), stats);
        }
        if let Parser::Dns(s) = &mut self.parser {
            let before = stats.anomaly_total;
            s.datagram(cfg, dir, data, &mut self.txs, stats);
            self.count_errors(before, stats);
            self.mark_updated();
        }
    }

    /// The direction ended (FIN, RST, or the flow's end): bodies delimited by the close end.
    pub fn close(&mut self, cfg: &AppConfig, dir: Direction, stats: &mut AppStats) {
        let before = stats.anomaly_total;
        match &mut self.parser {
            Parser::Http(s) => s.close(cfg, dir, &mut self.txs, stats),
            Parser::Dns(s) => s.close(cfg, dir, &mut self.txs, stats),
            Parser::Tls(s) => s.close(cfg, dir, &mut self.txs, stats),
            Parser::Ssh(_) | Parser::None => {}
        }
        self.count_errors(before, stats);
        self.mark_updated();
    }

    pub fn txs(&self) -> &[Tx] {
        self.txs.as_slice()
    }

    /// After the rules of direction `dir` looked at this packet's transactions: clears their
    /// `inspect` flag for `dir` and frees transactions complete both ways that the rules of
    /// both directions have seen since their last change.
    pub fn detection_done(&mut self, dir: Direction) {
        let d = usize::from(dir == Direction::ToClient);
        for t in &mut self.txs.list {
            t.inspect[d] = false;
        }
        self.txs.list.retain(|t| !(t.complete[0] && t.complete[1] && t.inspect == [false, false]));
    }

    /// Turns the parsers' `updated` marks into pending inspection for both directions.
    fn mark_updated(&mut self) {
        for t in &mut self.txs.list {
            if std::mem::take(&mut t.updated) {
                t.inspect = [true; 2];
            }
        }
    }

    fn start(&mut self, proto: AppProto, stats: &mut AppStats) {
        self.stat_name = stat_name(proto, self.tcp);
        if let Some(n) = self.stat_name {
            *stats.flows.entry(n).or_default() += 1;
        }
        self.parser = match proto {
            AppProto::Http => Parser::Http(Box::default()),
            AppProto::Dns => Parser::Dns(Box::new(dns::DnsState::new(self.tcp))),
            AppProto::Tls => Parser::Tls(Box::default()),
            AppProto::Ssh => Parser::Ssh(ssh::SshState::default()),
            AppProto::Unknown | AppProto::Failed => Parser::None,
        };
    }

    fn count_errors(&self, before: u64, stats: &mut AppStats) {
        let n = stats.anomaly_total - before;
        if let (Some(name), true) = (self.stat_name, n > 0) {
            *stats.errors.entry(name).or_default() += n;
        }
    }

    fn parse(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], stats: &mut AppStats) {
        let before = stats.anomaly_total;
        self.parse_inner(cfg, dir, data, stats);
        self.count_errors(before, stats);
        self.mark_updated();
    }

    fn parse_inner(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], stats: &mut AppStats) {
        match &mut self.parser {
            Parser::Http(s) => s.parse(cfg, dir, data, &mut self.txs, stats),
            Parser::Dns(s) => s.parse(cfg, dir, data, &mut self.txs, stats),
            Parser::Tls(s) => s.parse(cfg, dir, data, &mut self.txs, stats),
            Parser::Ssh(s) => s.parse(cfg, dir, data, &mut self.txs, stats),
            Parser::None => {}
        }
    }
}
