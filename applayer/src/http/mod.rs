//! HTTP/1.x over one TCP connection, with libhtp's semantics as Suricata 7 uses it.
//!
//! Each direction is a state machine over its in-order bytes, which may arrive in any
//! chunking: a head (start line and headers, buffered up to
//! [`AppConfig::http_max_header_bytes`]), then a body framed by Content-Length, chunked
//! transfer coding or, for responses, the end of the connection. One transaction per
//! request; a response answers the oldest request still without one (pipelining), and a
//! response nobody asked for gets its own transaction. Buffers are pushed once final: a
//! head's when the head is complete, a body's when the body is complete or its cap is
//! reached (the rest of the body is then skipped, still framed, so the next message parses).
//!
//! Not HTTP any more: a CONNECT answered 2xx or a 101 Switching Protocols ends parsing of
//! both directions (`http.tunnel`). Request bytes that follow a CONNECT or `Upgrade:`
//! request are held until its response says whether they are HTTP.
//!
//! Layout: [`parser`] parses heads, [`body`] frames and inflates bodies, [`normalise`]
//! turns targets into `http.uri` and `http.host`.

mod body;
mod normalise;
mod parser;

use std::collections::VecDeque;

use portcullis_common::Direction;

use self::body::{BodySink, Coding, Framed, Framing};
use self::normalise::{host_port, normalise_host, normalise_uri, split_target, trim};
use self::parser::Head;
use crate::{AppConfig, AppProto, AppStats, Buf, HttpLog, Tx, TxLog, Txs};

/// What the response to a request needs to know about it.
#[derive(Debug, Clone, Copy, Default)]
struct Request {
    id: u64,
    head: bool,
    connect: bool,
    http09: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a start line and headers.
    #[default]
    Head,
    Body,
    /// Request side only: a CONNECT or Upgrade request waits for its response.
    Hold,
    /// Closed, tunnelled, or given up on: further bytes are ignored.
    Done,
}

/// A head being accumulated.
#[derive(Debug)]
enum HeadStep {
    More,
    TooLong,
    /// The head ended after this many bytes of the input.
    Complete(usize),
    /// Response side: the first bytes are not a status line; this many input bytes were
    /// taken into the head buffer.
    NotStatusLine(usize),
}

#[derive(Debug)]
struct BodyState {
    framing: Framing,
    sink: BodySink,
}

/// One direction.
#[derive(Debug, Default)]
struct Side {
    phase: Phase,
    head: Vec<u8>,
    /// Where the line being read starts in `head`.
    line_start: usize,
    /// The transaction whose message is being read (a response after a 1xx keeps it).
    tx: Option<u64>,
    /// Response side: the request the current response answers.
    answers: Request,
    body: Option<BodyState>,
}

impl Side {
    /// Takes head bytes from `data` up to the end of the head.
    fn take_head(&mut self, data: &[u8], cap: usize, request: bool) -> HeadStep {
        let mut pos = 0;
        if self.head.is_empty() {
            // Line ends between messages are ignored, as libhtp does.
            pos = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(data.len());
        }
        while pos < data.len() {
            let rest = &data[pos..];
            let (n, eol) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            let room = (cap + 1).saturating_sub(self.head.len());
            self.head.extend_from_slice(&rest[..n.min(room)]);
            pos += n;
            if self.head.len() > cap {
                return HeadStep::TooLong;
            }
            if !request && self.line_start == 0 {
                let p = &self.head[..self.head.len().min(5)];
                if !p.eq_ignore_ascii_case(&b"HTTP/"[..p.len()]) {
                    return HeadStep::NotStatusLine(pos);
                }
            }
            if !eol {
                return HeadStep::More;
            }
            let line = &self.head[self.line_start..];
            let first = self.line_start == 0;
            self.line_start = self.head.len();
            if first {
                // A request line without a protocol is HTTP/0.9 and ends the head, unless
                // header lines follow in what has arrived (libhtp then takes it as a
                // request missing its protocol, and parses the headers).
                if request && !parser::request_line_has_protocol(line) && !parser::header_line_follows(&data[pos..]) {
                    return HeadStep::Complete(pos);
                }
            } else if line == b"\n" || line == b"\r\n" {
                return HeadStep::Complete(pos);
            }
        }
        HeadStep::More
    }

    fn take_head_bytes(&mut self) -> Vec<u8> {
        self.line_start = 0;
        std::mem::take(&mut self.head)
    }
}

/// One HTTP connection's parser state.
#[derive(Debug, Default)]
pub struct HttpState {
    req: Side,
    res: Side,
    /// Requests whose response has not started, oldest first.
    waiting: VecDeque<Request>,
    /// The CONNECT/Upgrade request the request side holds for, and the bytes held.
    hold_for: Option<u64>,
    held: Vec<u8>,
}

fn dir_index(dir: Direction) -> usize {
    usize::from(dir == Direction::ToClient)
}

fn log_mut(tx: &mut Tx) -> &mut HttpLog {
    if !matches!(tx.log, TxLog::Http(_)) {
        tx.log = TxLog::Http(Box::default());
    }
    match &mut tx.log {
        TxLog::Http(l) => l,
        _ => unreachable!("set just above"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn set_complete(txs: &mut Txs, id: u64, dir: Direction) {
    if let Some(tx) = txs.get_mut(id) {
        tx.complete[dir_index(dir)] = true;
        tx.updated = true;
    }
}

fn is_chunked(h: &Head) -> bool {
    h.get("transfer-encoding")
        .is_some_and(|v| v.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(b"chunked")))
}

/// A Content-Length value: digits with optional surrounding whitespace.
fn content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Buffers both heads have: `http.start`, the header buffers, and the fields of both.
fn push_head_common(tx: &mut Tx, d: Direction, h: &Head, cookie: &str) {
    let mut start = h.line.clone();
    start.extend_from_slice(b"\r\n");
    let mut header = Vec::new();
    let mut names = b"\r\n".to_vec();
    for (n, v) in &h.headers {
        let mut field = n.clone();
        field.extend_from_slice(b": ");
        field.extend_from_slice(v);
        field.extend_from_slice(b"\r\n");
        start.extend_from_slice(&field);
        // Cookies have their own buffer and are not part of http.header.
        if !n.eq_ignore_ascii_case(cookie.as_bytes()) {
            header.extend_from_slice(&field);
        }
        names.extend_from_slice(n);
        names.extend_from_slice(b"\r\n");
    }
    if !h.headers.is_empty() {
        start.extend_from_slice(b"\r\n");
        names.extend_from_slice(b"\r\n");
    }
    tx.push(Buf::HttpStart, d, &start);
    if !header.is_empty() {
        tx.push(Buf::HttpHeader, d, &header);
    }
    if !h.headers.is_empty() {
        tx.push(Buf::HttpHeaderNames, d, &names);
    }
    if h.raw_headers.iter().any(|&b| b != b'\r' && b != b'\n') {
        tx.push(Buf::HttpHeaderRaw, d, &h.raw_headers);
    }
    for (buf, name) in [
        (Buf::HttpCookie, cookie),
        (Buf::HttpContentType, "content-type"),
        (Buf::HttpContentLen, "content-length"),
        (Buf::HttpConnection, "connection"),
    ] {
        if let Some(v) = h.get(name) {
            tx.push(buf, d, v);
        }
    }
}

fn push_request_head(tx: &mut Tx, h: &Head, connect: bool) {
    let d = Direction::ToServer;
    let [method, target, protocol] = &h.parts;
    if !method.is_empty() {
        tx.push(Buf::HttpMethod, d, method);
    }
    if !target.is_empty() {
        tx.push(Buf::HttpUriRaw, d, target);
        let uri = normalise_uri(target, connect);
        if !uri.is_empty() {
            tx.push(Buf::HttpUri, d, &uri);
        }
    }
    tx.push(Buf::HttpRequestLine, d, &h.line);
    if !protocol.is_empty() {
        tx.push(Buf::HttpProtocol, d, protocol);
    }
    push_head_common(tx, d, h, "cookie");
    for (buf, name) in [
        (Buf::HttpUserAgent, "user-agent"),
        (Buf::HttpAccept, "accept"),
        (Buf::HttpAcceptEnc, "accept-encoding"),
        (Buf::HttpAcceptLang, "accept-language"),
        (Buf::HttpReferer, "referer"),
    ] {
        if let Some(v) = h.get(name) {
            tx.push(buf, d, v);
        }
    }
    // The host of an absolute-form target wins over the Host header (Suricata's docs).
    let t = split_target(target, connect);
    let (raw_host, port) = match t.host.filter(|h| !h.is_empty()) {
        Some(host) => (Some(host), t.port.and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())),
        None => (h.get("host"), h.get("host").and_then(host_port)),
    };
    let host = raw_host.map(normalise_host);
    if let Some(raw) = raw_host {
        tx.push(Buf::HttpHostRaw, d, raw);
    }
    if let Some(host) = &host {
        tx.push(Buf::HttpHost, d, host);
    }
    let log = log_mut(tx);
    log.hostname = host.filter(|h| !h.is_empty()).map(|h| text(&h));
    log.port = port;
    log.url = Some(text(target)).filter(|u| !u.is_empty());
    log.http_method = Some(text(method)).filter(|m| !m.is_empty());
    log.protocol = Some(text(protocol)).filter(|p| !p.is_empty());
    log.http_user_agent = h.get("user-agent").map(text);
    log.http_refer = h.get("referer").map(text);
}

fn status_number(code: &[u8]) -> Option<u16> {
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn push_response_head(tx: &mut Tx, h: &Head) {
    let d = Direction::ToClient;
    let [protocol, code, reason] = &h.parts;
    for (buf, v) in [(Buf::HttpStatCode, code), (Buf::HttpStatMsg, reason), (Buf::HttpProtocol, protocol)] {
        if !v.is_empty() {
            tx.push(buf, d, v);
        }
    }
    tx.push(Buf::HttpResponseLine, d, &h.line);
    push_head_common(tx, d, h, "set-cookie");
    for (buf, name) in [(Buf::HttpServer, "server"), (Buf::HttpLocation, "location")] {
        if let Some(v) = h.get(name) {
            tx.push(buf, d, v);
        }
    }
    let log = log_mut(tx);
    log.status = status_number(code);
    log.redirect = h.get("location").map(text);
    // EVE's http_content_type stops at the parameters.
    log.http_content_type = h.get("content-type").map(|v| text(trim(v.split(|&b| b == b';').next().unwrap_or(v))));
}

fn push_body(txs: &mut Txs, id: Option<u64>, dir: Direction, bytes: &[u8]) {
    let Some(tx) = id.and_then(|id| txs.get_mut(id)) else { return };
    let buf = if dir == Direction::ToServer { Buf::HttpRequestBody } else { Buf::HttpResponseBody };
    tx.push(buf, dir, bytes);
    tx.push(Buf::FileData, dir, bytes);
}

impl HttpState {
    pub fn parse(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        match dir {
            Direction::ToServer => self.parse_requests(cfg, data, txs, stats),
            Direction::ToClient => {
                self.parse_responses(cfg, data, txs, stats);
                // A CONNECT/Upgrade request answered without a tunnel: what the request
                // side held is HTTP after all.
                if self.req.phase == Phase::Head && !self.held.is_empty() {
                    let held = std::mem::take(&mut self.held);
                    self.parse_requests(cfg, &held, txs, stats);
                }
            }
        }
    }

    pub fn close(&mut self, cfg: &AppConfig, dir: Direction, txs: &mut Txs, stats: &mut AppStats) {
        let _ = cfg;
        let side = if dir == Direction::ToServer { &mut self.req } else { &mut self.res };
        match side.phase {
            Phase::Head => {
                if !side.head.is_empty() {
                    stats.anomaly("http.truncated");
                }
                if let Some(id) = side.tx {
                    // A response that stopped after a 1xx.
                    set_complete(txs, id, dir);
                }
            }
            Phase::Body => {
                if let Some(mut b) = side.body.take() {
                    if b.framing != Framing::UntilClose {
                        stats.anomaly("http.truncated");
                    }
                    if let Some(out) = b.sink.finish(stats) {
                        push_body(txs, side.tx, dir, &out);
                    }
                    if let Some(tx) = side.tx.and_then(|id| txs.get_mut(id)) {
                        if dir == Direction::ToClient {
                            log_mut(tx).length = b.sink.seen;
                        }
                    }
                }
                if let Some(id) = side.tx {
                    set_complete(txs, id, dir);
                }
            }
            Phase::Hold | Phase::Done => {}
        }
        side.phase = Phase::Done;
        side.tx = None;
        side.head = Vec::new();
        if dir == Direction::ToServer {
            self.held = Vec::new();
        } else {
            // No response will come for the requests still waiting.
            for r in std::mem::take(&mut self.waiting) {
                set_complete(txs, r.id, Direction::ToClient);
            }
        }
    }

    fn parse_requests(&mut self, cfg: &AppConfig, mut data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        while !data.is_empty() {
            match self.req.phase {
                Phase::Done => return,
                Phase::Hold => {
                    if self.held.len() + data.len() > cfg.http_max_header_bytes {
                        stats.anomaly("http.hold_overflow");
                        self.held = Vec::new();
                        self.req.phase = Phase::Done;
                    } else {
                        self.held.extend_from_slice(data);
                    }
                    return;
                }
                Phase::Head => match self.req.take_head(data, cfg.http_max_header_bytes, true) {
                    HeadStep::More => return,
                    HeadStep::TooLong | HeadStep::NotStatusLine(_) => {
                        stats.anomaly("http.request_header_too_long");
                        self.req.phase = Phase::Done;
                        self.req.head = Vec::new();
                        return;
                    }
                    HeadStep::Complete(n) => {
                        data = &data[n..];
                        let head = self.req.take_head_bytes();
                        self.request_head(cfg, &head, txs, stats);
                    }
                },
                Phase::Body => {
                    let n = self.body(Direction::ToServer, data, txs, stats);
                    data = &data[n..];
                }
            }
        }
    }

    fn request_head(&mut self, cfg: &AppConfig, head: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        let h = parser::parse_request(head, stats);
        let method = &h.parts[0];
        let connect = method.eq_ignore_ascii_case(b"CONNECT");
        let tx = txs.open(AppProto::Http, cfg.max_txs, stats);
        let id = tx.id;
        push_request_head(tx, &h, connect);
        let framing = if h.http09 {
            None
        } else if is_chunked(&h) {
            if h.get("content-length").is_some() {
                stats.anomaly("http.content_length_and_chunked");
            }
            Some(Framing::chunked())
        } else {
            match h.get("content-length").map(content_length) {
                Some(Some(0)) | None => None,
                Some(Some(n)) => Some(Framing::Length(n)),
                Some(None) => {
                    stats.anomaly("http.invalid_content_length");
                    None
                }
            }
        };
        if self.waiting.len() >= cfg.max_txs.max(1) {
            self.waiting.pop_front();
        }
        self.waiting.push_back(Request { id, head: method.eq_ignore_ascii_case(b"HEAD"), connect, http09: h.http09 });
        let hold = connect || h.get("upgrade").is_some();
        match framing {
            Some(framing) => {
                let sink = BodySink::new(cfg.http_request_body_limit, usize::MAX, None);
                self.req.body = Some(BodyState { framing, sink });
                self.req.tx = Some(id);
                self.req.phase = Phase::Body;
                self.hold_for = hold.then_some(id);
            }
            None => {
                tx.complete[0] = true;
                self.req.tx = None;
                self.req.phase = Phase::Head;
                if hold {
                    self.hold_for = Some(id);
                    self.req.phase = Phase::Hold;
                }
            }
        }
    }

    /// Feeds body bytes of the current message; returns the bytes used.
    fn body(&mut self, dir: Direction, data: &[u8], txs: &mut Txs, stats: &mut AppStats) -> usize {
        let side = if dir == Direction::ToServer { &mut self.req } else { &mut self.res };
        let Some(BodyState { framing, sink }) = &mut side.body else {
            side.phase = Phase::Head;
            return 0;
        };
        let id = side.tx;
        let r = framing.feed(data, |b| {
            if let Some(out) = sink.feed(b, stats) {
                push_body(txs, id, dir, &out);
            }
        });
        // EVE's `http.length` is the response body seen so far, as an alert in the middle of
        // a download logs it.
        if dir == Direction::ToClient {
            if let Some(tx) = id.and_then(|id| txs.get_mut(id)) {
                log_mut(tx).length = sink.seen;
            }
        }
        let used = match r {
            Framed::More => return data.len(),
            Framed::Done(n) => n,
            Framed::Broken(name) => {
                stats.anomaly(name);
                data.len()
            }
        };
        if let Some(out) = sink.finish(stats) {
            push_body(txs, id, dir, &out);
        }
        let seen = sink.seen;
        side.body = None;
        side.tx = None;
        side.phase = if matches!(r, Framed::Broken(_)) { Phase::Done } else { Phase::Head };
        if let Some(tx) = id.and_then(|id| txs.get_mut(id)) {
            tx.complete[dir_index(dir)] = true;
            tx.updated = true;
            if dir == Direction::ToClient {
                log_mut(tx).length = seen;
            }
        }
        if dir == Direction::ToServer && side.phase == Phase::Head {
            // An Upgrade request with a body whose response has not started: hold.
            if let Some(h) = self.hold_for {
                if self.waiting.iter().any(|r| r.id == h) {
                    self.req.phase = Phase::Hold;
                } else {
                    self.hold_for = None;
                }
            }
        }
        used
    }

    fn parse_responses(&mut self, cfg: &AppConfig, mut data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        while !data.is_empty() {
            match self.res.phase {
                Phase::Done | Phase::Hold => return,
                Phase::Head => {
                    // An HTTP/0.9 request gets a bare body back, delimited by the close.
                    if self.res.tx.is_none()
                        && self.res.head.is_empty()
                        && self.waiting.front().is_some_and(|r| r.http09)
                    {
                        let r = self.waiting.pop_front().expect("checked");
                        self.start_eof_body(cfg, r);
                        continue;
                    }
                    match self.res.take_head(data, cfg.http_max_header_bytes, false) {
                        HeadStep::More => return,
                        HeadStep::TooLong => {
                            stats.anomaly("http.response_header_too_long");
                            self.res.phase = Phase::Done;
                            self.res.head = Vec::new();
                            return;
                        }
                        HeadStep::NotStatusLine(n) => {
                            stats.anomaly("http.invalid_response_line");
                            let first = self.res.take_head_bytes();
                            data = &data[n..];
                            let Some(r) = self
                                .res
                                .tx
                                .map(|id| Request { id, ..self.res.answers })
                                .or_else(|| self.waiting.pop_front())
                            else {
                                // Not HTTP, and no request to blame: give up on responses.
                                self.res.phase = Phase::Done;
                                return;
                            };
                            self.start_eof_body(cfg, r);
                            self.body(Direction::ToClient, &first, txs, stats);
                        }
                        HeadStep::Complete(n) => {
                            data = &data[n..];
                            let head = self.res.take_head_bytes();
                            self.response_head(cfg, &head, txs, stats);
                        }
                    }
                }
                Phase::Body => {
                    let n = self.body(Direction::ToClient, data, txs, stats);
                    data = &data[n..];
                }
            }
        }
    }

    fn start_eof_body(&mut self, cfg: &AppConfig, r: Request) {
        let sink = BodySink::new(cfg.http_response_body_limit, cfg.http_decompress_limit, None);
        self.res.body = Some(BodyState { framing: Framing::UntilClose, sink });
        self.res.tx = Some(r.id);
        self.res.answers = r;
        self.res.phase = Phase::Body;
    }

    fn response_head(&mut self, cfg: &AppConfig, head: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        let h = parser::parse_response(head, stats);
        let r = match self.res.tx {
            Some(id) => Request { id, ..self.res.answers },
            None => match self.waiting.pop_front() {
                Some(r) => r,
                None => {
                    stats.anomaly("http.unmatched_response");
                    let tx = txs.open(AppProto::Http, cfg.max_txs, stats);
                    tx.complete[0] = true;
                    Request { id: tx.id, ..Request::default() }
                }
            },
        };
        let code = status_number(&h.parts[1]);
        if matches!(code, Some(100..=199)) && code != Some(101) {
            // Interim (100 Continue, 102, 103): the final response follows for the same
            // request and is the one inspected, as libhtp does.
            self.res.tx = Some(r.id);
            self.res.answers = r;
            return;
        }
        let Some(tx) = txs.get_mut(r.id) else {
            // Dropped (too many transactions): skip its body, framed as usual.
            self.res.tx = None;
            return self.start_response_body(cfg, &h, r, code, None, stats);
        };
        push_response_head(tx, &h);
        let tunnel = code == Some(101) || (r.connect && matches!(code, Some(200..=299)));
        if tunnel {
            stats.anomaly("http.tunnel");
            tx.complete = [true, true];
            tx.updated = true;
            for w in std::mem::take(&mut self.waiting) {
                set_complete(txs, w.id, Direction::ToClient);
            }
            self.req.phase = Phase::Done;
            self.res.phase = Phase::Done;
            self.held = Vec::new();
            return;
        }
        if self.hold_for == Some(r.id) {
            self.hold_for = None;
            if self.req.phase == Phase::Hold {
                self.req.phase = Phase::Head;
            }
        }
        self.start_response_body(cfg, &h, r, code, Some(r.id), stats);
        if self.res.phase == Phase::Head {
            set_complete(txs, r.id, Direction::ToClient);
        }
    }

    fn start_response_body(
        &mut self,
        cfg: &AppConfig,
        h: &Head,
        r: Request,
        code: Option<u16>,
        id: Option<u64>,
        stats: &mut AppStats,
    ) {
        self.res.tx = None;
        self.res.phase = Phase::Head;
        let framing = if r.head || matches!(code, Some(204 | 304)) {
            None
        } else if is_chunked(h) {
            Some(Framing::chunked())
        } else {
            match h.get("content-length").map(content_length) {
                Some(Some(0)) => None,
                Some(Some(n)) => Some(Framing::Length(n)),
                Some(None) => {
                    stats.anomaly("http.invalid_content_length");
                    Some(Framing::UntilClose)
                }
                // Absent: the body runs to the close.
                None => Some(Framing::UntilClose),
            }
        };
        if let Some(framing) = framing {
            let coding = h.get("content-encoding").and_then(Coding::from_header);
            let sink = BodySink::new(cfg.http_response_body_limit, cfg.http_decompress_limit, coding);
            self.res.body = Some(BodyState { framing, sink });
            self.res.tx = id;
            self.res.answers = r;
            self.res.phase = Phase::Body;
        }
    }
}

#[cfg(test)]
mod tests;
