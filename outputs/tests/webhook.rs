//! The webhook against a local HTTP server the test runs on a TcpListener, and against
//! endpoints that refuse, fail or never answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portcullis_outputs::{Outputs, OutputsConfig, SinkConfig, WebhookConfig};

/// One request as the server read it.
#[derive(Debug)]
struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    }
}

fn read_request(s: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(s);
    let mut head = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end().to_string();
        if l.is_empty() {
            break;
        }
        head.push(l);
    }
    let mut req = Request { head, body: Vec::new() };
    let len: usize = req.header("content-length")?.parse().ok()?;
    req.body = vec![0; len];
    r.read_exact(&mut req.body).ok()?;
    Some(req)
}

/// Hands every request to the test, then answers it with `status`.
fn server(status: &'static str) -> (String, mpsc::Receiver<Request>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/portcullis", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            while let Some(req) = read_request(&s) {
                // Handed over before the answer goes out, so that once the client has its
                // answer the test is sure to find the request.
                if tx.send(req).is_err() {
                    return;
                }
                let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            }
        }
    });
    (url, rx)
}

fn webhook(url: &str, timeout: Duration, buffer: usize) -> WebhookConfig {
    WebhookConfig { url: url.into(), actions: vec!["block".into(), "quarantine".into()], timeout, buffer }
}

fn decision(id: u64, action: &str) -> Vec<u8> {
    format!("{{\"event_type\":\"decision\",\"decision\":{{\"id\":{id},\"action\":\"{action}\",\"state\":\"applied\"}}}}").into_bytes()
}

#[test]
fn decisions_of_the_configured_actions_are_posted_and_everything_reaches_eve() {
    let (url, rx) = server("200 OK");
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let cfg = OutputsConfig { eve: vec![SinkConfig::File { path: eve.clone() }], webhook: Some(webhook(&url, Duration::from_secs(5), 100)) };
    let mut o = Outputs::open(&cfg).unwrap();
    o.write_decision("block", &decision(1, "block")).unwrap();
    o.write_decision("alert", &decision(2, "alert")).unwrap();
    o.write_decision("rate-limit", &decision(3, "rate-limit")).unwrap();
    o.write(b"{\"event_type\":\"flow\"}").unwrap();
    o.write_decision("quarantine", &decision(4, "quarantine")).unwrap();
    let stats = o.close(Duration::from_secs(5)).unwrap();

    let got: Vec<Request> = rx.try_iter().collect();
    assert_eq!(got.len(), 2, "{got:?}");
    for (req, want) in got.iter().zip([decision(1, "block"), decision(4, "quarantine")]) {
        assert_eq!(req.head[0], "POST /hooks/portcullis HTTP/1.1");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert!(req.header("host").is_some_and(|h| url.contains(h)), "{req:?}");
        assert!(req.header("user-agent").is_some_and(|h| h.starts_with("portcullis/")), "{req:?}");
        assert_eq!(req.body, want);
    }
    let w = stats.sinks.iter().find(|s| s.kind == "webhook").unwrap();
    assert_eq!((w.written, w.sent, w.lost, w.errors), (2, 2, 0, 0), "{w:?}");
    assert_eq!(std::fs::read_to_string(&eve).unwrap().lines().count(), 5, "EVE has every event");
}

#[test]
fn an_error_status_counts_the_decision_lost() {
    let (url, rx) = server("500 Internal Server Error");
    let mut o = Outputs::open(&OutputsConfig { eve: vec![], webhook: Some(webhook(&url, Duration::from_secs(5), 100)) }).unwrap();
    o.write_decision("block", &decision(1, "block")).unwrap();
    let w = o.close(Duration::from_secs(5)).unwrap().sinks[0].clone();
    assert_eq!(rx.try_iter().count(), 1);
    assert_eq!((w.written, w.sent, w.lost, w.errors), (1, 0, 1, 1), "{w:?}");
    assert!(w.last_error.as_deref().is_some_and(|e| e.contains("500")), "{w:?}");
}

#[test]
fn a_refusing_endpoint_counts_failures() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let mut o = Outputs::open(&OutputsConfig { eve: vec![], webhook: Some(webhook(&url, Duration::from_secs(5), 100)) }).unwrap();
    for i in 0..5 {
        o.write_decision("block", &decision(i, "block")).unwrap();
    }
    let w = o.close(Duration::from_secs(5)).unwrap().sinks[0].clone();
    assert_eq!((w.written, w.sent, w.lost, w.errors), (5, 0, 5, 5), "{w:?}");
}

#[test]
fn an_endpoint_that_never_answers_never_blocks_the_writer() {
    // Accepts connections (the kernel does, from the backlog) and never reads or answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let timeout = Duration::from_millis(300);
    let mut o = Outputs::open(&OutputsConfig { eve: vec![], webhook: Some(webhook(&url, timeout, 4)) }).unwrap();
    let t = Instant::now();
    for i in 0..1000 {
        o.write_decision("quarantine", &decision(i, "quarantine")).unwrap();
    }
    // Waiting on the endpoint would take 300 ms per request: minutes for these.
    assert!(t.elapsed() < Duration::from_secs(2), "the writer waited: {:?}", t.elapsed());
    let w = o.stats().sinks[0].clone();
    assert!(w.overflow >= 1000 - 4 - 256, "{w:?}");
    // Past the timeout, the first request fails and is counted (polled: on a loaded CI
    // machine the webhook thread may run late).
    let t = Instant::now();
    while o.stats().sinks[0].errors == 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(o.stats().sinks[0].errors >= 1, "{:?}", o.stats());
    let t = Instant::now();
    let w = o.close(Duration::ZERO).unwrap().sinks[0].clone();
    // The ~260 queued requests would take over a minute; the one in flight, one timeout.
    assert!(t.elapsed() < timeout * 5, "close waits at most for the request in flight: {:?}", t.elapsed());
    assert_eq!(w.written, 1000);
    assert_eq!(w.written, w.sent + w.overflow + w.lost, "{w:?}");
    assert_eq!(w.sent, 0);
    drop(l);
}
