//! The Prometheus endpoint: `GET /metrics` on the address of `metrics.listen` (or
//! `--metrics`), in the OpenMetrics text format written by the `prometheus-client` crate.
//! Every scrape is rendered from the daemon's telemetry and last `stats` event, so a scrape
//! costs the daemon one snapshot and never touches the workers. Names follow Prometheus
//! conventions: a `portcullis_` prefix, base units (seconds, bytes), `_total` on counters.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::live::Control;

/// Counters with labels, as this endpoint writes them.
type Labelled = Family<Vec<(String, String)>, Counter>;

/// How long a scraper may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A listening metrics endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves scrapes on a thread of its own, one at a time.
    pub fn start(addr: SocketAddr, control: Control) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = thread::Builder::new().name("metrics".into()).spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(e) = answer(stream, &control) {
                            eprintln!("warning: metrics: {e}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(50)),
                    Err(e) => {
                        eprintln!("warning: metrics: {e}");
                        thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })?;
        Ok(MetricsServer { addr, stop, handle: Some(handle) })
    }

    /// The address it listens on (the port the kernel chose, for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn answer(stream: TcpStream, control: &Control) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut r = BufReader::new(std::io::Read::take(stream.try_clone()?, 16 * 1024));
    let mut request_line = String::new();
    r.read_line(&mut request_line)?;
    // The headers are read and ignored: nothing in them changes the answer.
    let mut header = String::new();
    while r.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut w = stream;
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", render(control)),
        ("GET", _) => ("404 Not Found", "text/plain; charset=utf-8", "Portcullis serves /metrics only\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET only\n".to_string()),
    };
    write!(w, "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    w.flush()
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn gauge_f(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

/// The metrics text of one scrape.
pub fn render(control: &Control) -> String {
    let snap = control.telemetry.figures(control.policy.as_ref());
    let stats = control.last_stats.lock().ok().and_then(|s| s.clone()).unwrap_or(Value::Null);
    let st = stats.get("stats").cloned().unwrap_or(Value::Null);
    let mut reg = Registry::with_prefix("portcullis");
    gauge_f(&mut reg, "uptime_seconds", "Seconds since the daemon started", snap.uptime_secs as f64);
    counter(&mut reg, "packets", "Frames captured, all ports", snap.traffic.packets_total);
    counter(&mut reg, "bytes", "Bytes of the frames captured, all ports", snap.traffic.bytes_total);
    let drops = Family::<Vec<(String, String)>, Counter>::default();
    for (reason, n) in &snap.traffic.drops_by_reason {
        drops.get_or_create(&vec![("reason".into(), reason.clone())]).inc_by(*n);
    }
    reg.register("dropped_packets", "Frames not passed on or not seen, by reason", drops);
    let port_packets = Family::<Vec<(String, String)>, Counter>::default();
    let port_ring = Family::<Vec<(String, String)>, Counter>::default();
    let port_backlog = Family::<Vec<(String, String)>, Gauge>::default();
    for p in &snap.capture.ports {
        let l = vec![("port".into(), p.name.clone())];
        port_packets.get_or_create(&l).inc_by(p.packets);
        port_ring.get_or_create(&l).inc_by(p.ring_drops);
        port_backlog.get_or_create(&l).set(i64::try_from(p.backlog).unwrap_or(i64::MAX));
    }
    reg.register("port_packets", "Frames captured per port (queue)", port_packets);
    reg.register("port_ring_full_drops", "Frames the kernel dropped because the port's ring was full", port_ring);
    reg.register("port_backlog_frames", "Frames waiting in the port's ring", port_backlog);
    counter(&mut reg, "events_lost", "Worker outputs thrown away because the EVE writer was behind", snap.capture.events_lost);
    counter(&mut reg, "stream_lines_dropped", "EVE lines subscribers of the control socket could not take in time", control.telemetry.stream_dropped());
    gauge_f(&mut reg, "flows_active", "Flows in the flow table", snap.flows_active as f64);
    counter(&mut reg, "flows_ended", "Flows that ended (logged as EVE flow events)", u(&st, "/flow/end/new") + u(&st, "/flow/end/established") + u(&st, "/flow/end/closed"));
    counter(&mut reg, "flow_memcap_evictions", "Flows ended early because the flow memcap was reached", u(&st, "/flow/memcap"));
    counter(&mut reg, "decoder_invalid", "Frames the decoder found malformed", u(&st, "/decoder/invalid"));
    counter(&mut reg, "alerts", "Alerts raised (rules and model), after thresholds", snap.alerts_total);
    counter(&mut reg, "alerts_suppressed", "Alerts held back by thresholds and ml.alert-limit", u(&st, "/detect/alerts_suppressed"));
    let active = Family::<Vec<(String, String)>, Gauge>::default();
    for a in &snap.enforcement.active {
        active.get_or_create(&vec![("action".into(), a.action.clone()), ("dry_run".into(), a.dry_run.to_string())]).inc();
    }
    reg.register("enforced_addresses", "Addresses under an action now", active);
    gauge_f(&mut reg, "pending_decisions", "Decisions waiting for an operator's approval", snap.enforcement.pending.len() as f64);
    if let Some(p) = st.get("policy") {
        counter(&mut reg, "decisions", "Decisions the policy made", u(p, "/decisions"));
        counter(&mut reg, "decisions_failed", "Decisions the enforcer could not apply", u(p, "/failed"));
    }
    if let Some(sinks) = st.pointer("/outputs/sinks").and_then(Value::as_array) {
        let fams: Vec<(&str, &str, Labelled)> = vec![
            ("output_events_sent", "EVE events an output delivered", Family::default()),
            ("output_events_overflow", "EVE events an output dropped because its buffer was full", Family::default()),
            ("output_events_lost", "EVE events an output could not deliver (peer absent or failing)", Family::default()),
        ];
        for sink in sinks {
            let l = vec![("kind".into(), sink["kind"].as_str().unwrap_or("").to_string()), ("target".into(), sink["target"].as_str().unwrap_or("").to_string())];
            for (f, key) in fams.iter().zip(["sent", "overflow", "lost"]) {
                f.2.get_or_create(&l).inc_by(sink[key].as_u64().unwrap_or(0));
            }
        }
        for (name, help, f) in fams {
            reg.register(name, help, f);
        }
    }
    if let Some(s) = &snap.scoring {
        counter(&mut reg, "scored_flows", "Flow feature rows the model scored", s.flows_scored);
        counter(&mut reg, "scoring_batches", "Scoring calls (batches)", s.batches);
        let q = Family::<Vec<(String, String)>, Gauge<f64, AtomicU64>>::default();
        q.get_or_create(&vec![("quantile".into(), "0.5".into())]).set(s.latency_p50_ms / 1000.0);
        q.get_or_create(&vec![("quantile".into(), "0.99".into())]).set(s.latency_p99_ms / 1000.0);
        reg.register("scoring_latency_seconds", "Latency of a scoring call over the recent calls", q);
    }
    if let Some(d) = &snap.drift {
        let psi = Family::<Vec<(String, String)>, Gauge<f64, AtomicU64>>::default();
        for (feature, v) in &d.features {
            psi.get_or_create(&vec![("feature".into(), feature.clone())]).set(*v);
        }
        reg.register("drift_psi", "Population stability index of each feature over the last window of scored flows, against the model's training distribution", psi);
        gauge_f(&mut reg, "drift_window_flows", "Flows in the last drift window", d.flows as f64);
        gauge_f(&mut reg, "drift_threshold", "PSI at which a feature raises a drift alert", d.threshold);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{PortSample, Telemetry};
    use portcullis_dataplane::live::PortStats;
    use std::io::Read;
    use std::sync::Mutex;
    use std::time::Instant;

    #[test]
    fn a_scrape_parses_as_prometheus_text() {
        let t = Telemetry::new("run", "af-packet", false, None);
        let now = Instant::now();
        let port = |packets| PortSample { name: "g0 fanout 0".into(), stats: PortStats { packets, bytes: packets * 100, rx_ring_full: 3, ..PortStats::default() }, backlog: 2 };
        t.record_ports(now, &[port(10)], vec![("ring-full".into(), 3)], 0);
        t.record_ports(now + Duration::from_secs(1), &[port(25)], vec![("ring-full".into(), 3)], 0);
        t.publish("alert", br#"{"timestamp":"t","event_type":"alert","alert":{"gid":1,"signature_id":5,"signature":"x","severity":2}}"#);
        t.set_drift(Some(portcullis_api::Drift { flows: 900, features: vec![("Flow Duration".into(), 0.31)], threshold: 0.25, unavailable: None }));
        let control = Control {
            blocklist: None,
            blocklist_missing: None,
            allowlist: Vec::new(),
            last_stats: Arc::new(Mutex::new(Some(serde_json::json!({"stats": {
                "flow": {"memcap": 4, "end": {"new": 1, "established": 2, "closed": 3}},
                "outputs": {"sinks": [{"kind": "redis", "target": "127.0.0.1:6379 lpush portcullis", "sent": 9, "overflow": 2, "lost": 0}]},
            }})))),
            policy: None,
            telemetry: t,
            reload: None,
            models: None,
        };
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), control).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        };
        let text = get("/metrics");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200") && head.contains("application/openmetrics-text"), "{head}");
        let lines = body.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let value = |name: &str, label: Option<(&str, &str)>| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
                .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
        };
        assert_eq!(value("portcullis_packets_total", None), 25.0);
        assert_eq!(value("portcullis_bytes_total", None), 2500.0);
        assert_eq!(value("portcullis_dropped_packets_total", Some(("reason", "ring-full"))), 3.0);
        assert_eq!(value("portcullis_port_backlog_frames", Some(("port", "g0 fanout 0"))), 2.0);
        assert_eq!(value("portcullis_alerts_total", None), 1.0);
        assert_eq!(value("portcullis_flows_ended_total", None), 6.0);
        assert_eq!(value("portcullis_flow_memcap_evictions_total", None), 4.0);
        assert_eq!(value("portcullis_output_events_overflow_total", Some(("kind", "redis"))), 2.0);
        assert_eq!(value("portcullis_drift_psi", Some(("feature", "Flow Duration"))), 0.31);
        assert!(body.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF");
        assert!(get("/other").starts_with("HTTP/1.1 404"));
    }
}
