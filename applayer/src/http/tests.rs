//! The HTTP state machine on literal conversations.

use std::io::Write;

use portcullis_common::Direction::{self, ToClient, ToServer};

use super::HttpState;
use crate::{AppConfig, AppStats, Buf, HttpLog, Tx, TxLog, Txs};

struct Conn {
    s: HttpState,
    txs: Txs,
    st: AppStats,
    cfg: AppConfig,
}

impl Conn {
    fn new() -> Self {
        Conn::with(AppConfig::default())
    }

    fn with(cfg: AppConfig) -> Self {
        Conn { s: HttpState::default(), txs: Txs::default(), st: AppStats::default(), cfg }
    }

    fn feed(&mut self, dir: Direction, data: &[u8]) -> &mut Self {
        self.s.parse(&self.cfg, dir, data, &mut self.txs, &mut self.st);
        self
    }

    fn close(&mut self, dir: Direction) -> &mut Self {
        self.s.close(&self.cfg, dir, &mut self.txs, &mut self.st);
        self
    }

    fn tx(&self, i: usize) -> &Tx {
        &self.txs.as_slice()[i]
    }

    fn anomaly(&self, name: &str) -> u64 {
        self.st.anomalies.get(name).copied().unwrap_or(0)
    }
}

/// The one instance of a buffer.
fn one(tx: &Tx, buf: Buf, dir: Direction) -> Vec<u8> {
    let all: Vec<&[u8]> = tx.get(buf, dir).collect();
    assert_eq!(
        all.len(),
        1,
        "{} {dir:?}: {:?}",
        buf.name(),
        all.iter().map(|b| String::from_utf8_lossy(b)).collect::<Vec<_>>()
    );
    all[0].to_vec()
}

fn log(tx: &Tx) -> &HttpLog {
    match &tx.log {
        TxLog::Http(l) => l,
        other => panic!("no http log: {other:?}"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const REQUEST: &[u8] = b"POST /a/./b/../c%41?x=%41+1 HTTP/1.1\r\n\
Host: WWW.Example.COM:8080\r\n\
User-Agent: Mozilla/5.0 (X)  \r\n\
Accept: text/html\r\n\
Accept-Encoding: gzip, deflate\r\n\
Accept-Language: en-US\r\n\
Connection: keep-alive\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 7\r\n\
Referer: http://ref.example/\r\n\
Cookie: sid=1\r\n\
\r\n\
a=1&b=2";

#[test]
fn every_request_buffer() {
    let mut c = Conn::new();
    c.feed(ToServer, REQUEST);
    assert_eq!(c.txs.len(), 1);
    let tx = c.tx(0);
    assert_eq!(tx.complete, [true, false]);
    let header = b"Host: WWW.Example.COM:8080\r\nUser-Agent: Mozilla/5.0 (X)\r\nAccept: text/html\r\n\
Accept-Encoding: gzip, deflate\r\nAccept-Language: en-US\r\nConnection: keep-alive\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nReferer: http://ref.example/\r\n";
    let head_end = REQUEST.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let line_end = REQUEST.windows(2).position(|w| w == b"\r\n").unwrap();
    let mut start = REQUEST[..line_end + 2].to_vec();
    start.extend_from_slice(header);
    start.extend_from_slice(b"Cookie: sid=1\r\n\r\n");
    let cases: &[(Buf, &[u8])] = &[
        (Buf::HttpMethod, b"POST"),
        (Buf::HttpUri, b"/a/cA?x=A+1"),
        (Buf::HttpUriRaw, b"/a/./b/../c%41?x=%41+1"),
        (Buf::HttpRequestLine, b"POST /a/./b/../c%41?x=%41+1 HTTP/1.1"),
        (Buf::HttpProtocol, b"HTTP/1.1"),
        (Buf::HttpStart, &start),
        (Buf::HttpHeader, header),
        (Buf::HttpHeaderRaw, &REQUEST[line_end + 2..head_end]),
        (
            Buf::HttpHeaderNames,
            b"\r\nHost\r\nUser-Agent\r\nAccept\r\nAccept-Encoding\r\nAccept-Language\r\nConnection\r\nContent-Type\r\nContent-Length\r\nReferer\r\nCookie\r\n\r\n",
        ),
        (Buf::HttpCookie, b"sid=1"),
        (Buf::HttpUserAgent, b"Mozilla/5.0 (X)"),
        (Buf::HttpHost, b"www.example.com"),
        (Buf::HttpHostRaw, b"WWW.Example.COM:8080"),
        (Buf::HttpAccept, b"text/html"),
        (Buf::HttpAcceptEnc, b"gzip, deflate"),
        (Buf::HttpAcceptLang, b"en-US"),
        (Buf::HttpConnection, b"keep-alive"),
        (Buf::HttpContentType, b"application/x-www-form-urlencoded"),
        (Buf::HttpContentLen, b"7"),
        (Buf::HttpReferer, b"http://ref.example/"),
        (Buf::HttpRequestBody, b"a=1&b=2"),
        (Buf::FileData, b"a=1&b=2"),
    ];
    for (buf, want) in cases {
        assert_eq!(one(tx, *buf, ToServer), *want, "{}", buf.name());
    }
    // Nothing else, and nothing on the response side yet.
    assert_eq!(tx.buffers().count(), cases.len());
    let l = log(tx);
    assert_eq!(l.hostname.as_deref(), Some("www.example.com"));
    assert_eq!(l.port, Some(8080));
    assert_eq!(l.url.as_deref(), Some("/a/./b/../c%41?x=%41+1"));
    assert_eq!(l.http_method.as_deref(), Some("POST"));
    assert_eq!(l.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(l.http_user_agent.as_deref(), Some("Mozilla/5.0 (X)"));
    assert_eq!(l.http_refer.as_deref(), Some("http://ref.example/"));
    assert!(c.st.anomalies.is_empty(), "{:?}", c.st.anomalies);
}

fn response_with_gzip_chunks(body: &[u8]) -> Vec<u8> {
    let z = gzip(body);
    let mut r = b"HTTP/1.1 302 Found\r\nServer: nginx/1.2\r\nLocation: /next\r\nSet-Cookie: a=b\r\n\
Content-Type: text/html; charset=utf-8\r\nConnection: close\r\nContent-Encoding: gzip\r\n\
Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    let (a, b) = z.split_at(z.len() / 2);
    for part in [a, b] {
        r.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
        r.extend_from_slice(part);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    r
}

#[test]
fn every_response_buffer_with_a_chunked_gzip_body() {
    let body = b"<html>hello hello hello</html>".repeat(10);
    let wire = response_with_gzip_chunks(&body);
    let mut c = Conn::new();
    c.feed(ToServer, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").feed(ToClient, &wire);
    let tx = c.tx(0);
    assert_eq!(tx.complete, [true, true]);
    let header = b"Server: nginx/1.2\r\nLocation: /next\r\nContent-Type: text/html; charset=utf-8\r\n\
Connection: close\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n";
    let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let cases: &[(Buf, &[u8])] = &[
        (Buf::HttpStatCode, b"302"),
        (Buf::HttpStatMsg, b"Found"),
        (Buf::HttpResponseLine, b"HTTP/1.1 302 Found"),
        (Buf::HttpProtocol, b"HTTP/1.1"),
        (Buf::HttpHeader, header),
        (Buf::HttpHeaderRaw, &wire[20..head_end]),
        (
            Buf::HttpHeaderNames,
            b"\r\nServer\r\nLocation\r\nSet-Cookie\r\nContent-Type\r\nConnection\r\nContent-Encoding\r\nTransfer-Encoding\r\n\r\n",
        ),
        (Buf::HttpCookie, b"a=b"),
        (Buf::HttpServer, b"nginx/1.2"),
        (Buf::HttpLocation, b"/next"),
        (Buf::HttpContentType, b"text/html; charset=utf-8"),
        (Buf::HttpConnection, b"close"),
        (Buf::HttpResponseBody, &body),
        (Buf::FileData, &body),
    ];
    for (buf, want) in cases {
        assert_eq!(one(tx, *buf, ToClient), *want, "{}", buf.name());
    }
    let start = one(tx, Buf::HttpStart, ToClient);
    assert!(start.starts_with(b"HTTP/1.1 302 Found\r\nServer: nginx/1.2\r\n"));
    assert!(start.ends_with(b"Set-Cookie: a=b\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"));
    assert!(!tx.has(Buf::HttpContentLen, ToClient));
    let l = log(tx);
    assert_eq!(l.status, Some(302));
    assert_eq!(l.redirect.as_deref(), Some("/next"));
    assert_eq!(l.http_content_type.as_deref(), Some("text/html"));
    assert_eq!(l.length, gzip(&body).len() as u64);
    assert!(c.st.anomalies.is_empty(), "{:?}", c.st.anomalies);
}

#[test]
fn pipelined_requests_pair_with_responses_in_order() {
    let mut c = Conn::new();
    c.feed(ToServer, b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
    assert_eq!(c.txs.len(), 3);
    c.feed(
        ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none\
HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n",
    );
    let uris: Vec<Vec<u8>> = (0..3).map(|i| one(c.tx(i), Buf::HttpUri, ToServer)).collect();
    assert_eq!(uris, [b"/1".to_vec(), b"/2".to_vec(), b"/3".to_vec()]);
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), b"one");
    // The HEAD response has a Content-Length but no body; the 204 pairs with the third.
    assert!(!c.tx(1).has(Buf::HttpResponseBody, ToClient));
    assert_eq!(one(c.tx(1), Buf::HttpContentLen, ToClient), b"1000");
    assert_eq!(one(c.tx(2), Buf::HttpStatCode, ToClient), b"204");
    assert!(c.txs.iter().all(|t| t.complete == [true, true]));
    // A response with no request waiting gets its own transaction.
    c.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.txs.len(), 4);
    assert_eq!(c.tx(3).complete, [true, true]);
    assert_eq!(c.anomaly("http.unmatched_response"), 1);
}

/// Every buffer of every transaction, with completion and log, for comparing runs.
fn snapshot(c: &Conn) -> Vec<String> {
    c.txs
        .iter()
        .map(|t| {
            let bufs: Vec<String> =
                t.buffers().map(|(b, d, v)| format!("{} {d:?} {:?}", b.name(), String::from_utf8_lossy(v))).collect();
            format!("{} {:?} {:?} {bufs:?}", t.id, t.complete, t.log)
        })
        .collect()
}

#[test]
fn any_chunking_gives_the_same_buffers() {
    let body = b"split me anywhere, please ".repeat(8);
    let mut requests = REQUEST.to_vec();
    requests.extend_from_slice(
        b"GET /two HTTP/1.0\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let mut responses = response_with_gzip_chunks(&body);
    responses.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    responses.extend_from_slice(b"HTTP/1.0 500 Oops\r\nContent-Type: a\r\n\r\nuntil the end");
    let run = |split_req: &dyn Fn(&[u8]) -> Vec<Vec<u8>>, split_res: &dyn Fn(&[u8]) -> Vec<Vec<u8>>| {
        let mut c = Conn::new();
        for p in split_req(&requests) {
            c.feed(ToServer, &p);
        }
        for p in split_res(&responses) {
            c.feed(ToClient, &p);
        }
        c.close(ToServer).close(ToClient);
        (snapshot(&c), c.st.clone())
    };
    let whole = |b: &[u8]| vec![b.to_vec()];
    let (want, want_stats) = run(&whole, &whole);
    assert_eq!(want.len(), 3);
    assert!(want[2].contains("until the end"), "{}", want[2]);
    assert!(want_stats.anomalies.is_empty(), "{:?}", want_stats.anomalies);
    let bytes = |b: &[u8]| b.iter().map(|&x| vec![x]).collect::<Vec<_>>();
    assert_eq!(run(&bytes, &bytes), (want.clone(), want_stats.clone()), "byte by byte");
    for k in 0..=requests.len().max(responses.len()) {
        let at = |b: &[u8]| {
            let k = k.min(b.len());
            vec![b[..k].to_vec(), b[k..].to_vec()]
        };
        assert_eq!(run(&at, &at), (want.clone(), want_stats.clone()), "split at {k}");
    }
}

#[test]
fn body_caps_truncate_and_the_next_message_still_parses() {
    let cfg = AppConfig { http_request_body_limit: 4, http_response_body_limit: 5, ..AppConfig::default() };
    let mut c = Conn::with(cfg);
    c.feed(ToServer, b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET /b HTTP/1.1\r\n\r\n");
    c.feed(ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(c.txs.len(), 2);
    assert_eq!(one(c.tx(0), Buf::HttpRequestBody, ToServer), b"0123");
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), b"abcde");
    assert_eq!(log(c.tx(0)).length, 8);
    assert_eq!(one(c.tx(1), Buf::HttpUri, ToServer), b"/b");
    assert_eq!(one(c.tx(1), Buf::HttpResponseBody, ToClient), b"hi");
    assert_eq!(c.anomaly("http.body_truncated"), 2);

    // Inflated output is capped separately.
    let cfg = AppConfig { http_decompress_limit: 100, ..AppConfig::default() };
    let mut c = Conn::with(cfg);
    let z = gzip(&[b'x'; 10_000]);
    let mut res =
        format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", z.len()).into_bytes();
    res.extend_from_slice(&z);
    c.feed(ToServer, b"GET / HTTP/1.1\r\n\r\n").feed(ToClient, &res);
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), vec![b'x'; 100]);
    assert_eq!(c.anomaly("http.decompress_limit"), 1);
    assert_eq!(c.tx(0).complete, [true, true]);
}

#[test]
fn corrupt_gzip_keeps_the_raw_body() {
    let mut c = Conn::new();
    c.feed(ToServer, b"GET / HTTP/1.1\r\n\r\n");
    c.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!");
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), b"not gzip!");
    assert_eq!(c.anomaly("http.gzip_decompression_failed"), 1);
}

#[test]
fn malformed_input_counts_anomalies_and_keeps_earlier_transactions() {
    // Bad chunk size: the request body ends there and the direction is given up.
    let mut c = Conn::new();
    c.feed(ToServer, b"GET /ok HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\nGET /lost HTTP/1.1\r\n\r\n");
    assert_eq!(c.txs.len(), 2);
    assert_eq!(one(c.tx(1), Buf::HttpRequestBody, ToServer), b"abc");
    assert_eq!(c.anomaly("http.invalid_chunk_size"), 1);
    c.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.tx(0).complete, [true, true]);

    // An over-long head.
    let cfg = AppConfig { http_max_header_bytes: 64, ..AppConfig::default() };
    let mut c = Conn::with(cfg);
    c.feed(ToServer, b"GET / HTTP/1.1\r\n\r\n");
    for _ in 0..10 {
        c.feed(ToServer, b"GET /xxxxxxxxxxxxxxxx HTTP/1.1\r\nX: 1\r\n");
    }
    assert_eq!(c.txs.len(), 1);
    assert_eq!(c.anomaly("http.request_header_too_long"), 1);
    c.feed(ToClient, &[b'H'; 100]);
    assert_eq!(c.anomaly("http.response_header_too_long"), 1);

    // Garbage where a status line should be: the response is an EOF-delimited body.
    let mut c = Conn::new();
    c.feed(ToServer, b"GET / HTTP/1.1\r\n\r\n").feed(ToClient, b"\x00\x01garbage").close(ToClient);
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), b"\x00\x01garbage");
    assert_eq!(c.anomaly("http.invalid_response_line"), 1);

    // Truncated messages at close: what arrived of the body is pushed.
    let mut c = Conn::new();
    c.feed(ToServer, b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial").close(ToServer);
    c.feed(ToClient, b"HTTP/1.1 200 OK\r\nConte").close(ToClient);
    assert_eq!(one(c.tx(0), Buf::HttpRequestBody, ToServer), b"partial");
    assert_eq!(c.tx(0).complete, [true, true]);
    assert_eq!(c.anomaly("http.truncated"), 2);
    // Data after the close is ignored.
    c.feed(ToServer, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.txs.len(), 1);

    // Arbitrary bytes never panic.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..300 {
        let mut c = Conn::new();
        for _ in 0..8 {
            let mut chunk = Vec::new();
            for _ in 0..(seed % 64) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly HTTP-ish bytes so that the parser gets deep.
                let alphabet = b"GET /HTTP1.0\r\n: chunked Content-Length Transfer-Encoding 0123456789abcdef%u\\.";
                chunk.push(if seed.is_multiple_of(5) { seed as u8 } else { alphabet[(seed >> 8) as usize % alphabet.len()] });
            }
            let dir = if (seed >> 3).is_multiple_of(2) { ToServer } else { ToClient };
            c.feed(dir, &chunk);
        }
        c.close(if round % 2 == 0 { ToServer } else { ToClient }).close(ToClient).close(ToServer);
    }
}

#[test]
fn http09_and_eof_delimited_responses() {
    let mut c = Conn::new();
    c.feed(ToServer, b"GET /old\r\n").feed(ToClient, b"<html>raw</html>");
    assert_eq!(c.tx(0).complete, [true, false]);
    assert!(!c.tx(0).has(Buf::HttpProtocol, ToServer));
    assert_eq!(one(c.tx(0), Buf::HttpRequestLine, ToServer), b"GET /old");
    c.close(ToClient);
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), b"<html>raw</html>");
    assert_eq!(c.tx(0).complete, [true, true]);
    assert!(c.st.anomalies.is_empty(), "{:?}", c.st.anomalies);
    // A 1.0 response without a length ends with the connection.
    let mut c = Conn::new();
    c.feed(ToServer, b"GET / HTTP/1.0\r\n\r\n").feed(ToClient, b"HTTP/1.0 200 OK\r\n\r\nbody ");
    c.feed(ToClient, b"more");
    assert!(!c.tx(0).has(Buf::HttpResponseBody, ToClient));
    c.close(ToClient);
    assert_eq!(one(c.tx(0), Buf::HttpResponseBody, ToClient), b"body more");
    assert_eq!(log(c.tx(0)).length, 9);
}

#[test]
fn a_request_line_missing_its_protocol_still_has_headers() {
    // suricata-verify's http-missing-protocol: libhtp parses the headers that follow.
    let mut c = Conn::new();
    c.feed(ToServer, b"GET /gen.php?x=1\r\nHost: 5.8.88.25\r\nUser-Agent:Mozilla/5.0\r\n\r\n");
    assert_eq!(one(c.tx(0), Buf::HttpUserAgent, ToServer), b"Mozilla/5.0");
    assert_eq!(one(c.tx(0), Buf::HttpHeaderNames, ToServer), b"\r\nHost\r\nUser-Agent\r\n\r\n");
    assert_eq!(c.st.anomalies.get("http.missing_protocol"), Some(&1));
}

#[test]
fn tunnels_stop_parsing_and_refused_ones_do_not() {
    // CONNECT answered 200: the TLS bytes after it are not parsed.
    let mut c = Conn::new();
    c.feed(ToServer, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x02\x00");
    c.feed(ToClient, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x10");
    c.feed(ToServer, b"GET /not-http HTTP/1.1\r\n\r\n");
    assert_eq!(c.txs.len(), 1);
    assert_eq!(c.tx(0).complete, [true, true]);
    assert_eq!(one(c.tx(0), Buf::HttpHost, ToServer), b"example.com");
    assert!(!c.tx(0).has(Buf::HttpUri, ToServer));
    assert_eq!(c.anomaly("http.tunnel"), 1);

    // CONNECT refused: the held request bytes are HTTP and parse.
    let mut c = Conn::new();
    c.feed(ToServer, b"CONNECT example.com:443 HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
    assert_eq!(c.txs.len(), 1);
    c.feed(ToClient, b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.txs.len(), 2);
    assert_eq!(one(c.tx(1), Buf::HttpUri, ToServer), b"/after");

    // WebSocket upgrade.
    let mut c = Conn::new();
    c.feed(ToServer, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85frame");
    c.feed(ToClient, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
    assert_eq!(c.txs.len(), 1);
    assert_eq!(c.anomaly("http.tunnel"), 1);
    assert_eq!(one(c.tx(0), Buf::HttpStatCode, ToClient), b"101");
}

#[test]
fn interim_responses_and_absolute_targets() {
    let mut c = Conn::new();
    c.feed(ToServer, b"POST http://Proxy.Example:3128/p/../q HTTP/1.1\r\nHost: other\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    c.feed(ToClient, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(!c.tx(0).has(Buf::HttpStatCode, ToClient));
    c.feed(ToServer, b"hi").feed(ToClient, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let tx = c.tx(0);
    assert_eq!(one(tx, Buf::HttpStatCode, ToClient), b"201");
    assert_eq!(one(tx, Buf::HttpUri, ToServer), b"/q");
    assert_eq!(one(tx, Buf::HttpHost, ToServer), b"proxy.example");
    assert_eq!(one(tx, Buf::HttpHostRaw, ToServer), b"Proxy.Example");
    assert_eq!(log(tx).port, Some(3128));
    assert_eq!(tx.complete, [true, true]);
    assert_eq!(c.txs.len(), 1);
}

#[test]
fn lenient_heads_still_fill_buffers() {
    let mut c = Conn::new();
    // Bare LF line ends, a folded header, leading blank lines.
    c.feed(ToServer, b"\r\n\r\nGET /x HTTP/1.1\nHost: a\nX-Long: one\n two\n\n");
    let tx = c.tx(0);
    assert_eq!(one(tx, Buf::HttpHeader, ToServer), b"Host: a\r\nX-Long: one two\r\n");
    assert_eq!(one(tx, Buf::HttpHeaderRaw, ToServer), b"Host: a\nX-Long: one\n two\n\n");
    assert_eq!(one(tx, Buf::HttpRequestLine, ToServer), b"GET /x HTTP/1.1");
    assert_eq!(c.anomaly("http.header_folding"), 1);
}
