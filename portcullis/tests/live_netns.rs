//! The daemon (`portcullis run`) in network namespaces the tests create:
//! client ns —veth— bridge ns (Portcullis inline between two veths) —veth— server ns, or a
//! tap on the server's veth. Real TCP (an HTTP server and client on std sockets) and UDP
//! cross it; the namespaces, and so every link, are deleted when a test ends, also when it
//! fails. Each test says plainly when it cannot run (not root, no AF_XDP).

#[path = "../../dataplane/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
#[allow(dead_code)]
mod support;
use support::daemon;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use daemon::Daemon;
use netns::{can_run, veth, Netns};
use serde_json::Value;

const CLIENT: &str = "10.99.0.1";
const SERVER: &str = "10.99.0.2";
const CLIENT_MAC: &str = "02:00:00:63:00:01";
const SERVER_MAC: &str = "02:00:00:63:00:02";

/// client —c0/b0— bridge —b1/s0— server; hosts' offloads off (veth would hand the bridge
/// frames with unfinished checksums).
struct Lab {
    client: Netns,
    bridge: Netns,
    server: Netns,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let client = Netns::new(&format!("{tag}c")).unwrap();
        let bridge = Netns::new(&format!("{tag}b")).unwrap();
        let server = Netns::new(&format!("{tag}s")).unwrap();
        veth(&client, "c0", &bridge, "b0").unwrap();
        veth(&bridge, "b1", &server, "s0").unwrap();
        client.link_up("c0", CLIENT_MAC, Some(&format!("{CLIENT}/24"))).unwrap();
        server.link_up("s0", SERVER_MAC, Some(&format!("{SERVER}/24"))).unwrap();
        bridge.link_up("b0", "02:00:00:63:00:10", None).unwrap();
        bridge.link_up("b1", "02:00:00:63:00:11", None).unwrap();
        client.neigh(SERVER, SERVER_MAC, "c0").unwrap();
        server.neigh(CLIENT, CLIENT_MAC, "s0").unwrap();
        client.offloads_off("c0");
        server.offloads_off("s0");
        Lab { client, bridge, server, dir: tempfile::tempdir().unwrap() }
    }

    /// client —c0/s0— server, for a daemon tapping s0 in the server's namespace (the
    /// bridge namespace stays empty).
    fn tap(tag: &str) -> Lab {
        let client = Netns::new(&format!("{tag}c")).unwrap();
        let server = Netns::new(&format!("{tag}s")).unwrap();
        veth(&client, "c0", &server, "s0").unwrap();
        client.link_up("c0", CLIENT_MAC, Some(&format!("{CLIENT}/24"))).unwrap();
        server.link_up("s0", SERVER_MAC, Some(&format!("{SERVER}/24"))).unwrap();
        Lab { client, bridge: Netns::new(&format!("{tag}x")).unwrap(), server, dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The deterministic body the server sends for `/big`.
fn big_body() -> Vec<u8> {
    (0..1_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// A small HTTP/1.1 server in the server namespace: one thread per connection, `Connection:
/// close`; every request line it reads is logged.
fn http_server(lab: &Lab) -> (Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (l, s) = (log.clone(), stop.clone());
    let (tx, rx) = mpsc::channel();
    lab.server.spawn(move || {
        let listener = TcpListener::bind((SERVER, 8080)).unwrap();
        listener.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !s.load(Ordering::Relaxed) {
            let Ok((mut c, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let l = l.clone();
            std::thread::spawn(move || {
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or("").to_string();
                l.lock().unwrap().push(line.clone());
                let path = line.split(' ').nth(1).unwrap_or("/");
                let body = if path == "/big" { big_body() } else { format!("hello {path}\n").into_bytes() };
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    (log, stop)
}

/// GET `path` from the client namespace; the body, or an error when no complete response came
/// within 3 s.
fn get(lab: &Lab, path: &str) -> Result<Vec<u8>, String> {
    let path = path.to_string();
    lab.client
        .spawn(move || {
            let mut c = TcpStream::connect_timeout(&format!("{SERVER}:8080").parse().unwrap(), Duration::from_secs(3)).map_err(|e| e.to_string())?;
            c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            c.write_all(format!("GET {path} HTTP/1.1\r\nHost: server\r\nUser-Agent: live-test\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
            let mut resp = Vec::new();
            c.read_to_end(&mut resp).map_err(|e| format!("{e} after {} bytes", resp.len()))?;
            let split = resp.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no response head")?;
            Ok(resp[split + 4..].to_vec())
        })
        .join()
        .unwrap()
}

/// Sends `n` UDP datagrams client → server:`port` and returns how many arrived.
fn udp_burst(lab: &Lab, port: u16, n: usize, gap: Duration) -> usize {
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let (tx, rx) = mpsc::channel();
    let server = lab.server.spawn(move || {
        let s = UdpSocket::bind((SERVER, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        while s.recv(&mut buf).is_ok() {
            g.fetch_add(1, Ordering::Relaxed);
        }
    });
    rx.recv().unwrap();
    lab.client
        .spawn(move || {
            let s = UdpSocket::bind((CLIENT, 0)).unwrap();
            for i in 0..n {
                let _ = s.send_to(format!("datagram {i:06} to port {port}").as_bytes(), (SERVER, port));
                if !gap.is_zero() {
                    std::thread::sleep(gap);
                }
            }
        })
        .join()
        .unwrap();
    server.join().unwrap();
    got.load(Ordering::Relaxed) as usize
}

fn config(extra: &str) -> String {
    format!("stats:\n  interval: 1\noutputs:\n  eve-log:\n    types: [alert, drop, flow, stats]\n{extra}")
}

fn xdp_attached(ns: &Netns, dev: &str) -> bool {
    let out = ns.exec(&["ip", "link", "show", "dev", dev]).unwrap();
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

fn write_rules(lab: &Lab) -> PathBuf {
    let rules = lab.path("test.rules");
    std::fs::write(
        &rules,
        "drop tcp any any -> any 8080 (msg:\"forbidden path\"; flow:to_server,established; content:\"GET /forbidden\"; sid:1; rev:1;)\n\
         alert http any any -> any any (msg:\"big download\"; http.uri; content:\"/big\"; sid:2; rev:1;)\n",
    )
    .unwrap();
    rules
}

#[test]
fn inline_afxdp_forwards_tcp_unmodified_and_a_drop_rule_blocks_only_its_flow() {
    if can_run("inline_afxdp_forwards_tcp_unmodified_and_a_drop_rule_blocks_only_its_flow") {
        inline_bridge("afxdp", "af-xdp");
    }
}

#[test]
fn inline_afpacket_fallback_does_the_same() {
    if can_run("inline_afpacket_fallback_does_the_same") {
        inline_bridge("afpacket", "af-packet");
    }
}

fn inline_bridge(capture: &str, kind: &str) {
    let lab = Lab::new(if capture == "afxdp" { "lvi" } else { "lvp" });
    let rules = write_rules(&lab);
    let Some(mut d) = Daemon::start(&lab.bridge, lab.dir.path(), &config(""), &["--inline", "b0,b1", "--capture", capture, "--rules", rules.to_str().unwrap()]) else {
        return;
    };
    // The XDP program is attached for the block map whatever the backend.
    assert!(xdp_attached(&lab.bridge, "b0") && xdp_attached(&lab.bridge, "b1"));
    let (log, stop_server) = http_server(&lab);
    assert_eq!(get(&lab, "/ok1").unwrap(), b"hello /ok1\n");
    assert_eq!(get(&lab, "/big").unwrap(), big_body(), "1 MB crosses the bridge unmodified");
    let blocked = get(&lab, "/forbidden");
    assert!(blocked.is_err(), "the request a drop rule matched got a response: {blocked:?}");
    assert_eq!(get(&lab, "/ok2").unwrap(), b"hello /ok2\n", "only the matching flow is blocked");
    stop_server.store(true, Ordering::Relaxed);
    let seen = log.lock().unwrap().clone();
    assert!(seen.iter().all(|l| !l.contains("/forbidden")), "the server saw the dropped request: {seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");

    let s = d.summary();
    assert_eq!(s["capture"]["kind"], kind);
    assert!(s["capture"]["forwarded"].as_u64().unwrap() > 700, "{s}");
    assert!(s["capture"]["dropped"].as_u64().unwrap() >= 1, "{s}");
    let ev = d.events();
    let alerts: Vec<&Value> = ev.iter().filter(|e| e["event_type"] == "alert").collect();
    let forbidden: Vec<&&Value> = alerts.iter().filter(|e| e["alert"]["signature_id"] == 1).collect();
    assert!(!forbidden.is_empty() && forbidden.iter().all(|a| a["alert"]["action"] == "blocked"), "{alerts:?}");
    assert!(alerts.iter().any(|e| e["alert"]["signature_id"] == 2 && e["app_proto"] == "http"), "app-layer rules run live: {alerts:?}");
    assert!(ev.iter().any(|e| e["event_type"] == "drop"), "a drop event is written");
    // Every flow was flushed at shutdown.
    let flows: Vec<&Value> = ev.iter().filter(|e| e["event_type"] == "flow" && e["dest_port"] == 8080).collect();
    assert_eq!(flows.len(), 4, "one flow event per connection: {flows:#?}");
    let stats = ev.iter().rev().find(|e| e["event_type"] == "stats").expect("a stats event");
    if kind == "af-xdp" {
        assert!(stats["stats"]["capture"]["afxdp"]["rx_ring_full"].is_u64(), "{stats}");
        assert_eq!(stats["stats"]["capture"]["afxdp"]["copy_ports"], 1, "veth binds in copy mode: {stats}");
    }
    assert!(stats["stats"]["ips"]["blocked"].as_u64().unwrap() >= 1, "{stats}");
    assert!(!xdp_attached(&lab.bridge, "b0") && !xdp_attached(&lab.bridge, "b1"), "the XDP program is detached at exit");
    assert!(!d.socket.exists(), "the control socket is removed at exit");
}

#[test]
fn blocked_source_is_dropped_in_the_kernel_and_userspace_never_sees_it() {
    if !can_run("blocked_source_is_dropped_in_the_kernel_and_userspace_never_sees_it") {
        return;
    }
    let lab = Lab::new("lvb");
    let cfg = config(&format!("capture:\n  allowlist: [\"{SERVER}/32\"]\n"));
    let Some(mut d) = Daemon::start(&lab.bridge, lab.dir.path(), &cfg, &["--inline", "b0,b1", "--capture", "afxdp"]) else {
        return;
    };
    let gap = Duration::from_millis(2);
    assert_eq!(udp_burst(&lab, 9000, 20, gap), 20);
    let out = d.ctl(&["block", CLIENT, "--for", "10m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(udp_burst(&lab, 9001, 20, gap), 0, "a blocked source's datagrams do not arrive");
    let out = d.ctl(&["blocked"]);
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    let line = list.lines().find(|l| l.starts_with(CLIENT)).unwrap_or_else(|| panic!("not listed: {list}"));
    let hits: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(hits >= 20, "the entry's hit counter rose: {line}");
    let refused = d.ctl(&["block", SERVER]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("allowlist"), "the allowlist is never blocked");
    let out = d.ctl(&["unblock", CLIENT]);
    assert!(out.status.success());
    assert_eq!(udp_burst(&lab, 9002, 20, gap), 20, "unblocked, traffic passes again");

    let s = d.summary();
    assert!(s["capture"]["xdp"]["blocked"].as_u64().unwrap() >= 20, "{s}");
    let ev = d.events();
    let ports: Vec<u64> = ev.iter().filter(|e| e["event_type"] == "flow").filter_map(|e| e["dest_port"].as_u64()).collect();
    assert!(ports.contains(&9000) && ports.contains(&9002), "{ports:?}");
    assert!(!ports.contains(&9001), "userspace saw the blocked traffic: {ports:?}");
}

/// Under overload (a backlog limit of 0 makes any queued frame count) the configured policy
/// applies: fail-open forwards uninspected, fail-closed drops, both counted.
#[test]
fn overload_policy_fail_open_forwards_and_fail_closed_drops() {
    if !can_run("overload_policy_fail_open_forwards_and_fail_closed_drops") {
        return;
    }
    for (mode, port) in [("open", 9100u16), ("closed", 9101)] {
        let lab = Lab::new(if mode == "open" { "lvo" } else { "lvx" });
        let cfg = config(&format!("capture:\n  fail-mode: {mode}\n  backlog-limit: 0\n"));
        let Some(mut d) = Daemon::start(&lab.bridge, lab.dir.path(), &cfg, &["--inline", "b0,b1", "--capture", "afxdp"]) else {
            return;
        };
        let sent = 20_000;
        let got = udp_burst(&lab, port, sent, Duration::ZERO);
        let s = d.summary();
        let c = &s["capture"];
        let (fwd, dropped) = (c["overload_forwarded"].as_u64().unwrap(), c["overload_dropped"].as_u64().unwrap());
        eprintln!("fail-{mode}: {got} of {sent} arrived; overload forwarded {fwd}, dropped {dropped}; {c}");
        let (packets, forwarded, port_dropped) = (c["packets"].as_u64().unwrap(), c["forwarded"].as_u64().unwrap(), c["dropped"].as_u64().unwrap());
        assert_eq!(forwarded + port_dropped, packets, "every frame was forwarded or dropped: {c}");
        if mode == "open" {
            assert!(fwd > 0 && dropped == 0, "{c}");
            assert_eq!(forwarded, packets, "fail-open forwards everything: {c}");
            assert!(got > 0);
        } else {
            assert!(dropped > 0 && fwd == 0, "{c}");
            assert!(port_dropped >= dropped, "{c}");
            assert!((got as u64) + dropped <= sent as u64, "{got} + {dropped}");
        }
    }
}

#[test]
fn rules_reload_with_a_broken_rule_while_traffic_flows() {
    if !can_run("rules_reload_with_a_broken_rule_while_traffic_flows") {
        return;
    }
    let lab = Lab::new("lvr");
    let rules = lab.path("reload.rules");
    std::fs::write(&rules, "alert udp any any -> any 9301 (msg:\"old rule\"; sid:10; rev:1;)\n").unwrap();
    let Some(mut d) = Daemon::start(&lab.bridge, lab.dir.path(), &config(""), &["--inline", "b0,b1", "--capture", "afpacket", "--rules", rules.to_str().unwrap()]) else {
        return;
    };
    let n = 600;
    let (arrived, reply, reloaded_at) = std::thread::scope(|s| {
        let traffic = s.spawn(|| udp_burst(&lab, 9301, n, Duration::from_millis(5)));
        std::thread::sleep(Duration::from_millis(1200));
        // The new file: the old rule gone, a new one, and one that cannot load.
        std::fs::write(
            &rules,
            "alert udp any any -> any 9301 (msg:\"new rule\"; sid:11; rev:1;)\n\
             alert udp any any -> any 9301 (msg:\"broken\"; content:\"unterminated; sid:12; rev:1;)\n",
        )
        .unwrap();
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let out = d.ctl(&["reload"]);
        (traffic.join().unwrap(), out, at)
    });
    let text = String::from_utf8_lossy(&reply.stdout).to_string() + &String::from_utf8_lossy(&reply.stderr);
    assert!(reply.status.success(), "{text}");
    assert!(text.contains("1 loaded") && text.contains("1 failed") && text.contains("reload.rules:2"), "the broken rule is reported with its file and line: {text}");
    assert_eq!(arrived, n, "no datagram was lost across the reload");
    // A reload that cannot load anything leaves the rules in force.
    std::fs::write(&rules, "this is not a rule\n").unwrap();
    let refused = d.ctl(&["reload"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("rules in force stay"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert_eq!(udp_burst(&lab, 9301, 20, Duration::from_millis(2)), 20);
    d.stop();
    let ev = d.events();
    let secs = |e: &Value| {
        let t = e["timestamp"].as_str().unwrap();
        eve_secs(t)
    };
    let by_sid = |sid: u64| ev.iter().filter(move |e| e["event_type"] == "alert" && e["alert"]["signature_id"] == sid);
    let old: Vec<f64> = by_sid(10).map(secs).collect();
    let new: Vec<f64> = by_sid(11).map(secs).collect();
    assert!(!old.is_empty() && !new.is_empty(), "both rules alerted: old {} new {}", old.len(), new.len());
    assert!(old.iter().all(|&t| t <= reloaded_at + 1.0), "the old rule stopped with the reload");
    assert!(new.iter().all(|&t| t >= reloaded_at - 1.0), "the new rule started with the reload");
    assert_eq!(old.len() + new.len(), n + 20, "every datagram was inspected by exactly one of the two engines");
    assert_eq!(by_sid(12).count(), 0);
}

/// Seconds since the epoch of an EVE timestamp (`2026-12-07T00:40:01.123456+0000`).
fn eve_secs(t: &str) -> f64 {
    let d = chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").unwrap_or_else(|e| panic!("{t}: {e}"));
    d.timestamp_micros() as f64 / 1e6
}

#[test]
fn models_swap_in_shadow_promote_and_roll_back_while_the_daemon_runs() {
    if !can_run("models_swap_in_shadow_promote_and_roll_back_while_the_daemon_runs") {
        return;
    }
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017");
    let (v3, v2) = (models.join("v3"), models.join("v2"));
    let lab = Lab::tap("lvm");
    // Closed connections end (and are scored) at once rather than after Suricata's 60 s.
    let cfg = config("flow-timeouts:\n  tcp:\n    new: 60\n    established: 600\n    closed: 0\n");
    let Some(d) = Daemon::start(&lab.server, lab.dir.path(), &cfg, &["--iface", "s0", "--capture", "afpacket", "--model", v3.to_str().unwrap()]) else {
        return;
    };
    let ok = |o: std::process::Output| {
        let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{text}");
        text
    };
    let scoring = |d: &Daemon| d.request(r#"{"cmd":"snapshot"}"#)["snapshot"]["scoring"].clone();
    let refused = d.ctl(&["model", "rollback"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("no previous model"));
    let text = ok(d.ctl(&["model", "swap", "--shadow", v2.to_str().unwrap()]));
    assert!(text.contains("in shadow"), "{text}");
    // Connections that close end their flows, which are then scored by both models.
    let (_, stop_server) = http_server(&lab);
    let t0 = std::time::Instant::now();
    loop {
        for i in 0..5 {
            let _ = get(&lab, &format!("/shadow{i}"));
        }
        let s = scoring(&d);
        if s["shadow"]["flows"].as_u64().unwrap_or(0) >= 5 {
            assert!(s["shadow"]["model"].as_str().unwrap().contains("v2"), "{s}");
            assert!(s["shadow"]["agree"].as_u64().unwrap() <= s["shadow"]["flows"].as_u64().unwrap());
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the shadow model never scored: {s}");
        std::thread::sleep(Duration::from_millis(500));
    }
    ok(d.ctl(&["model", "promote"]));
    let s = scoring(&d);
    assert!(s["model"].as_str().unwrap().ends_with("v2") && s["previous_model"].as_str().unwrap().contains("v3"), "{s}");
    assert!(s["shadow"].is_null(), "{s}");
    ok(d.ctl(&["model", "rollback"]));
    assert!(scoring(&d)["model"].as_str().unwrap().ends_with("v3"));
    let bad = d.ctl(&["model", "swap", lab.dir.path().to_str().unwrap()]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("the model in force stays"));
    assert_eq!(get(&lab, "/after").unwrap(), b"hello /after\n", "traffic flows throughout");
    stop_server.store(true, Ordering::Relaxed);
}

#[test]
fn sighup_reopens_the_eve_file_for_logrotate_and_reloads_the_rules() {
    if !can_run("sighup_reopens_the_eve_file_for_logrotate_and_reloads_the_rules") {
        return;
    }
    let lab = Lab::tap("lvh");
    let rules = lab.path("hup.rules");
    std::fs::write(&rules, "alert udp any any -> any 9401 (msg:\"before\"; sid:21; rev:1;)\n").unwrap();
    let Some(mut d) = Daemon::start(&lab.server, lab.dir.path(), &config(""), &["--iface", "s0", "--capture", "afpacket", "--rules", rules.to_str().unwrap()]) else {
        return;
    };
    let pid = d.child.as_ref().unwrap().id().to_string();
    assert_eq!(udp_burst(&lab, 9401, 20, Duration::from_millis(2)), 20);
    let wait_for = |what: &str| {
        let t0 = std::time::Instant::now();
        while !d.stderr.lock().unwrap().iter().any(|l| l.contains(what)) {
            assert!(t0.elapsed() < Duration::from_secs(10), "no `{what}` on stderr");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Let the writer write the first alerts, then rotate as logrotate does: rename, SIGHUP.
    std::thread::sleep(Duration::from_millis(1500));
    let rotated = lab.path("eve.json.1");
    std::fs::rename(&d.eve, &rotated).unwrap();
    std::fs::write(&rules, "alert udp any any -> any 9401 (msg:\"after\"; sid:22; rev:1;)\n").unwrap();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for("EVE outputs reopened");
    wait_for("rules reloaded (generation 1)");
    assert_eq!(udp_burst(&lab, 9401, 20, Duration::from_millis(2)), 20);
    d.stop();
    let read = |p: &Path| -> Vec<Value> { std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect() };
    let (old, new) = (read(&rotated), read(&d.eve));
    let sids = |ev: &[Value]| ev.iter().filter(|e| e["event_type"] == "alert").map(|e| e["alert"]["signature_id"].as_u64().unwrap()).collect::<std::collections::BTreeSet<u64>>();
    assert!(sids(&old).contains(&21) && !sids(&old).contains(&22), "the rotated file holds the first rules' alerts");
    assert!(sids(&new).contains(&22) && !sids(&new).contains(&21), "the new file, opened at SIGHUP, holds the reloaded rules' alerts");
    assert!(new.iter().any(|e| e["event_type"] == "stats"), "the final stats event goes to the new file");
}

#[test]
fn tap_with_af_packet_sees_both_directions_and_leaves_traffic_alone() {
    if !can_run("tap_with_af_packet_sees_both_directions_and_leaves_traffic_alone") {
        return;
    }
    // client —c0/s0— server, the daemon tapping s0 in the server's namespace.
    let lab = Lab::tap("lvt");
    let Some(mut d) = Daemon::start(&lab.server, lab.dir.path(), &config(""), &["--iface", "s0", "--capture", "afpacket"]) else {
        return;
    };
    let (_, stop_server) = http_server(&lab);
    assert_eq!(get(&lab, "/tapped").unwrap(), b"hello /tapped\n");
    assert_eq!(udp_burst(&lab, 9200, 10, Duration::from_millis(1)), 10);
    stop_server.store(true, Ordering::Relaxed);
    let s = d.summary();
    assert_eq!(s["capture"]["kind"], "af-packet");
    let ev = d.events();
    let flow = ev.iter().find(|e| e["event_type"] == "flow" && e["dest_port"] == 8080).expect("the HTTP flow");
    assert!(flow["flow"]["pkts_toserver"].as_u64().unwrap() >= 3 && flow["flow"]["pkts_toclient"].as_u64().unwrap() >= 3, "{flow}");
    assert_eq!(flow["flow"]["state"], "closed", "{flow}");
    assert!(ev.iter().any(|e| e["event_type"] == "flow" && e["dest_port"] == 9200));
}
