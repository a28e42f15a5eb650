//! The daemon's control socket: a Unix stream socket, one JSON request per line and one JSON
//! reply per line, so `portcullis block`, `portcullis console` and scripts (`socat`, `nc -U`)
//! speak the same protocol, version 1 (`portcullis_api`: requests may carry `"v":1`; a
//! version this daemon does not speak is refused). Each connection has its own thread (at
//! most [`MAX_CONNECTIONS`] at once), so a console's stream never holds up a `block`.
//!
//! Only the daemon's user (root) may use it: the socket is created mode 0600 (under a umask
//! that leaves no window between bind and chmod) in a directory of mode 0700 when the daemon
//! creates it, and every connection's peer credentials (`SO_PEERCRED`) are checked, so a
//! socket path in a directory others can reach is no weaker.
//!
//! Requests: `{"cmd":"block","addr":"192.0.2.7","for_secs":600}` (no `for_secs`: the
//! escalation ladder's first step; `"action":"quarantine"` quarantines instead),
//! `{"cmd":"unblock","addr":"192.0.2.7"}`, `{"cmd":"blocked"}`, `{"cmd":"pending"}`,
//! `{"cmd":"approve","id":12}`, `{"cmd":"deny","id":12}`, `{"cmd":"nft-status"}`,
//! `{"cmd":"stats"}`, `{"cmd":"hello"}` (name, protocol version, commands),
//! `{"cmd":"snapshot"}` (the console's view, `portcullis_api::Snapshot`), and
//! `{"cmd":"subscribe","events":["alert","decision"]}`, after which the connection carries
//! EVE lines until the client closes it; `"by"` names the operator in the decision log. Replies:
//! `{"ok":true,...}` or `{"ok":false,"error":"..."}`. Blocks go through the policy (nftables
//! and the XDP map, logged as decisions); without one, to the XDP map alone.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{json, Value};

use crate::live::Control;
use crate::policy::PolicyHandle;
use portcullis_api::{COMMANDS, PROTOCOL_VERSION};
use portcullis_policy::Action;

/// Longest request line accepted; anything longer is refused and the connection closed.
const MAX_REQUEST: u64 = 4096;
/// How long one connection may take to send a request or read a reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are refused with a reply saying so.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a `subscribe` connection may stay silent before a keep-alive `{}` line tells
/// whether its reader is still there.
const STREAM_IDLE: Duration = Duration::from_secs(2);

/// A listening control socket; the file is removed when the server stops.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl ControlServer {
    /// Binds `path` (creating its directory, mode 0700, when missing) and serves requests on
    /// a thread until `stop` is called or the daemon's `stop` flag is set. A stale socket
    /// file from a daemon that died is replaced; a live one is an error (another daemon).
    pub fn start(path: &Path, control: Control, daemon_stop: Arc<AtomicBool>) -> std::io::Result<ControlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{}: exists and is not a socket; not replacing it", path.display())));
            }
            match UnixStream::connect(path) {
                Ok(_) => return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, format!("{}: another Portcullis daemon is listening here", path.display()))),
                // A socket nobody listens on: left by a daemon that died.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: cannot tell whether a daemon listens here ({e})", path.display()))),
            }
        }
        // The socket is born 0600: no other user can connect between bind and chmod.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = UnixListener::bind(path);
        rustix::process::umask(old);
        let listener = bound?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = thread::Builder::new().name("control".into()).spawn(move || {
            let open = Arc::new(AtomicUsize::new(0));
            let mut conns: Vec<JoinHandle<()>> = Vec::new();
            while !s.load(Ordering::Relaxed) && !daemon_stop.load(Ordering::Relaxed) {
                conns.retain(|h| !h.is_finished());
                match listener.accept() {
                    Ok((stream, _)) if open.load(Ordering::Acquire) >= MAX_CONNECTIONS => {
                        let mut w = stream;
                        let _ = w.set_nonblocking(false);
                        let _ = w.set_write_timeout(Some(IO_TIMEOUT));
                        let _ = writeln!(w, "{}", err(format!("too many control connections (at most {MAX_CONNECTIONS})")));
                    }
                    Ok((stream, _)) => {
                        open.fetch_add(1, Ordering::AcqRel);
                        let (control, stop, count) = (control.clone(), s.clone(), open.clone());
                        let spawned = thread::Builder::new().name("control-conn".into()).spawn(move || {
                            serve(stream, &control, &stop);
                            count.fetch_sub(1, Ordering::AcqRel);
                        });
                        match spawned {
                            Ok(h) => conns.push(h),
                            Err(e) => {
                                open.fetch_sub(1, Ordering::AcqRel);
                                eprintln!("warning: control socket: cannot start a connection thread: {e}");
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(50)),
                    Err(e) => {
                        eprintln!("warning: control socket: {e}");
                        thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            // Connections notice the stop within their read timeout.
            for h in conns {
                let _ = h.join();
            }
        })?;
        Ok(ControlServer { path: path.to_path_buf(), handle: Some(handle), stop })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers every request line of one connection from the daemon's own user; anyone else
/// gets one refusal. A connection is served until it closes, stalls for [`IO_TIMEOUT`], or
/// the server stops.
fn serve(stream: UnixStream, control: &Control, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(mut w) = stream.try_clone() else { return };
    let me = rustix::process::geteuid();
    match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(c) if c.uid == me => {}
        Ok(c) => {
            let _ = writeln!(w, "{}", err(format!("uid {} may not use this socket; only uid {} (the daemon's user)", c.uid.as_raw(), me.as_raw())));
            return;
        }
        Err(e) => {
            let _ = writeln!(w, "{}", err(format!("cannot read the peer's credentials: {e}")));
            return;
        }
    }
    let mut r = BufReader::new(std::io::Read::take(stream, MAX_REQUEST + 1));
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        r.get_mut().set_limit(MAX_REQUEST + 1);
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with('\n') {
            let _ = writeln!(w, "{}", err(format!("request longer than {MAX_REQUEST} bytes")));
            return;
        }
        let req = match serde_json::from_str::<Value>(line.trim()) {
            Ok(req) => req,
            Err(e) => {
                if writeln!(w, "{}", err(format!("not a JSON request: {e}"))).is_err() {
                    return;
                }
                continue;
            }
        };
        if req.get("cmd").and_then(Value::as_str) == Some("subscribe") && version_error(&req).is_none() {
            stream_events(&req, control, &mut w, stop);
            return;
        }
        if writeln!(w, "{}", handle(&req, control)).is_err() {
            return;
        }
    }
}

/// Why the request's protocol version is refused, if it is.
fn version_error(req: &Value) -> Option<Value> {
    match req.get("v") {
        None => None,
        Some(v) if v.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => None,
        Some(v) => Some(err(format!("protocol version {v} is not spoken here; this daemon speaks version {PROTOCOL_VERSION}"))),
    }
}

/// Serves a `subscribe`: one `{"ok":true,...}` line, then the EVE lines of the requested
/// types as they are written, until the client goes away or the daemon stops. A reader too
/// slow for the daemon loses lines (counted in the telemetry); the daemon never waits.
fn stream_events(req: &Value, control: &Control, w: &mut UnixStream, stop: &AtomicBool) {
    let known = ["alert", "decision"];
    let mut types: Vec<String> = Vec::new();
    if let Some(list) = req.get("events").and_then(Value::as_array) {
        for t in list {
            match t.as_str() {
                Some(name) if known.contains(&name) => types.push(name.to_string()),
                _ => {
                    let _ = writeln!(w, "{}", err(format!("cannot subscribe to {t}: the stream carries {}", known.join(", "))));
                    return;
                }
            }
        }
    }
    let rx = control.telemetry.subscribe(types.clone());
    let shown = if types.is_empty() { known.iter().map(|s| s.to_string()).collect() } else { types };
    if writeln!(w, "{}", json!({ "ok": true, "streaming": shown })).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(STREAM_IDLE) {
            Ok(line) => {
                if writeln!(w, "{line}").is_err() {
                    return;
                }
            }
            // A keep-alive: a reader that left is noticed here rather than at the next alert.
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if writeln!(w, "{{}}").is_err() {
                    return;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The request's `addr`, or the reply that says what is wrong with it.
fn request_addr(req: &Value) -> Result<IpAddr, Value> {
    let a = req.get("addr").and_then(Value::as_str).ok_or_else(|| err("`addr` is missing"))?;
    a.parse::<IpAddr>().map_err(|_| err(format!("`{a}` is not an IPv4 or IPv6 address")))
}

fn err(msg: impl Into<String>) -> Value {
    json!({ "ok": false, "error": msg.into() })
}

/// One request, one reply.
pub fn handle(req: &Value, control: &Control) -> Value {
    if let Some(e) = version_error(req) {
        return e;
    }
    let cmd = req.get("cmd").and_then(Value::as_str).unwrap_or("");
    match cmd {
        "hello" => {
            return json!({
                "ok": true,
                "daemon": concat!("portcullis ", env!("CARGO_PKG_VERSION")),
                "protocol": PROTOCOL_VERSION,
                "commands": COMMANDS,
            })
        }
        "snapshot" => {
            let mut snap = control.telemetry.snapshot(control.policy.as_ref());
            // Which models are in force is read now, not at the last second's sample, so a
            // swap shows at once.
            if let (Some(m), Some(sc)) = (&control.models, snap.scoring.as_mut()) {
                let (active, previous, shadow) = m.describe();
                sc.model = active;
                sc.previous_model = previous;
                match (shadow, sc.shadow.as_mut()) {
                    (None, _) => sc.shadow = None,
                    (Some(name), Some(s)) => s.model = name,
                    (Some(name), None) => sc.shadow = Some(portcullis_api::Shadow { model: name, ..Default::default() }),
                }
            }
            return json!({ "ok": true, "snapshot": snap });
        }
        "subscribe" => return err("`subscribe` turns a connection into a stream; send it on a connection of its own"),
        _ => {}
    }
    let addr = || request_addr(req);
    let blocklist = || control.blocklist.as_ref().ok_or_else(|| err(format!("no block map: {}", control.blocklist_missing.as_deref().unwrap_or("XDP is not attached"))));
    if let Some(p) = &control.policy {
        if let Some(reply) = handle_policy(req, cmd, p, control) {
            return reply;
        }
    }
    match cmd {
        "block" => {
            let ip = match addr() {
                Ok(ip) => ip,
                Err(e) => return e,
            };
            if control.allowed(ip) {
                return err(format!("{ip} is in capture.allowlist and is never blocked"));
            }
            // Absent or null: until unblocked. Anything else must be a whole number of seconds
            // above 0: a typo must not turn into a permanent block.
            let duration = match req.get("for_secs") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64().filter(|&s| s > 0) {
                    Some(s) => Some(Duration::from_secs(s)),
                    None => return err(format!("`for_secs` must be a whole number of seconds above 0, not {v}")),
                },
            };
            let b = match blocklist() {
                Ok(b) => b,
                Err(e) => return e,
            };
            match b.block(ip, duration) {
                Ok(()) => json!({ "ok": true, "addr": ip.to_string(), "for_secs": duration.map(|d| d.as_secs()) }),
                Err(e) => err(e.to_string()),
            }
        }
        "unblock" => {
            let ip = match addr() {
                Ok(ip) => ip,
                Err(e) => return e,
            };
            let b = match blocklist() {
                Ok(b) => b,
                Err(e) => return e,
            };
            match b.unblock(ip) {
                Ok(was) => json!({ "ok": true, "addr": ip.to_string(), "was_blocked": was }),
                Err(e) => err(e.to_string()),
            }
        }
        "blocked" => {
            let b = match blocklist() {
                Ok(b) => b,
                Err(e) => return e,
            };
            match b.list() {
                Ok(list) => {
                    let entries: Vec<Value> = list
                        .iter()
                        .map(|e| json!({ "addr": e.ip.to_string(), "expires_in_secs": e.expires_in.map(|d| d.as_secs()), "hits": e.hits, "bytes": e.bytes }))
                        .collect();
                    json!({ "ok": true, "blocked": entries })
                }
                Err(e) => err(e.to_string()),
            }
        }
        "stats" => match control.last_stats.lock().ok().and_then(|s| s.clone()) {
            Some(s) => json!({ "ok": true, "stats": s }),
            None => err("no stats yet (the first round is written after stats.interval)"),
        },
        "" => err("`cmd` is missing"),
        "reload-rules" => match &control.reload {
            Some(r) => (r.0)(),
            None => err("this daemon runs without rules: there is nothing to reload (start it with rules)"),
        },
        "swap-model" | "rollback-model" | "promote-shadow" => {
            let Some(models) = &control.models else {
                return err("this daemon scores no model (started with --no-ml or ml.enabled: no)");
            };
            let r = match cmd {
                "swap-model" => match req.get("dir").and_then(Value::as_str) {
                    None => return err("`dir` (the model's directory) is missing"),
                    Some(d) if req.get("shadow").and_then(Value::as_bool) == Some(true) => models.shadow(Path::new(d)),
                    Some(d) => models.swap(Path::new(d)),
                },
                "rollback-model" => models.rollback(),
                _ => models.promote(),
            };
            match r {
                Ok(msg) => json!({ "ok": true, "message": msg, "generation": models.generation() }),
                Err(e) => err(format!("{e}; the model in force stays")),
            }
        }
        other => err(format!("unknown command `{other}` ({})", COMMANDS.join(", "))),
    }
}

/// The commands the policy answers; `None` for the others.
fn handle_policy(req: &Value, cmd: &str, p: &PolicyHandle, control: &Control) -> Option<Value> {
    let by = req.get("by").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 64).unwrap_or("operator");
    let addr = || request_addr(req);
    let id = || req.get("id").and_then(Value::as_u64).ok_or_else(|| err("`id` (a decision number) is missing"));
    Some(match cmd {
        "block" => {
            let ip = match addr() {
                Ok(ip) => ip,
                Err(e) => return Some(e),
            };
            let secs = match req.get("for_secs") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64().filter(|&s| s > 0 && s <= portcullis_policy::playbook::MAX_SECS) {
                    Some(s) => Some(s),
                    None => return Some(err(format!("`for_secs` must be a whole number of seconds from 1 to {} (a year), not {v}", portcullis_policy::playbook::MAX_SECS))),
                },
            };
            let action = match req.get("action").and_then(Value::as_str).unwrap_or("block") {
                "block" => Action::Block,
                "quarantine" => Action::Quarantine,
                other => return Some(err(format!("`action` must be block or quarantine, not {other}"))),
            };
            match p.operator(action, ip, secs, by) {
                Ok(d) => json!({ "ok": true, "addr": ip.to_string(), "for_secs": d.duration_secs, "decision": d.id, "action": d.action.name(), "nft": p.nft_missing.is_none() }),
                Err(e) => err(e),
            }
        }
        "unblock" => {
            let ip = match addr() {
                Ok(ip) => ip,
                Err(e) => return Some(e),
            };
            match p.unblock(ip, by) {
                Ok(was) => {
                    // An entry put in the XDP map by hand before this daemon's policy knew it.
                    let was_xdp = control.blocklist.as_ref().and_then(|b| b.unblock(ip).ok()).unwrap_or(false);
                    json!({ "ok": true, "addr": ip.to_string(), "was_blocked": was || was_xdp })
                }
                Err(e) => err(e),
            }
        }
        "blocked" => {
            let now = portcullis_policy::wall_now();
            let xdp = control.blocklist.as_ref().and_then(|b| b.list().ok()).unwrap_or_default();
            let entries: Vec<Value> = p
                .active()
                .into_iter()
                .filter(|(_, a)| a.until > now)
                .map(|(ip, a)| {
                    let x = xdp.iter().find(|e| e.ip == ip);
                    json!({
                        "addr": ip.to_string(),
                        "action": a.action.name(),
                        "decision": a.id,
                        "dry_run": a.dry_run,
                        "expires_in_secs": ((a.until - now).max(0) / 1_000_000),
                        "hits": x.map_or(0, |e| e.hits),
                        "bytes": x.map_or(0, |e| e.bytes),
                    })
                })
                .collect();
            json!({ "ok": true, "blocked": entries })
        }
        "pending" => json!({ "ok": true, "pending": p.pending() }),
        "approve" | "deny" => {
            let id = match id() {
                Ok(i) => i,
                Err(e) => return Some(e),
            };
            let r = if cmd == "approve" { p.approve(id, by) } else { p.deny(id, by) };
            match r {
                Ok(d) => json!({ "ok": true, "decision": d }),
                Err(e) => err(e),
            }
        }
        "nft-status" => match p.nft_status() {
            Ok(Some(s)) => json!({ "ok": true, "present": s.present, "elements": s.elements.iter().map(element_json).collect::<Vec<_>>(), "counters": s.counters }),
            Ok(None) => err(format!("nftables is not enforcing: {}", p.nft_missing.as_deref().unwrap_or("unavailable"))),
            Err(e) => err(e),
        },
        _ => return None,
    })
}

/// One nftables element as `nft-status` and `portcullis nft status --json` write it.
pub fn element_json(e: &portcullis_policy::nft::ElementStatus) -> Value {
    json!({
        "set": e.set,
        "addr": e.addr.to_string(),
        "timeout_secs": e.timeout.map(|d| d.as_secs()),
        "expires_in_secs": e.expires.map(|d| d.as_secs()),
    })
}

/// Sends one request to the daemon listening on `path` and returns its reply.
pub fn request(path: &Path, req: &Value) -> std::io::Result<Value> {
    request_within(path, req, Duration::from_secs(10))
}

/// As [`request`], waiting at most `timeout` for the reply.
pub fn request_within(path: &Path, req: &Value, timeout: Duration) -> std::io::Result<Value> {
    let mut s = UnixStream::connect(path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e} (is `portcullis run` running, and are you root?)", path.display())))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    writeln!(s, "{req}")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad reply from the daemon: {e}")))
}

/// `10m`, `30s`, `2h`, `1d` or plain seconds: the policy's durations (at least 1 s, at most
/// a year), so `--for` reads as the config does.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    portcullis_policy::Secs::parse(s).map(portcullis_policy::Secs::duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn control(allow: &[(&str, u8)]) -> Control {
        Control {
            blocklist: None,
            blocklist_missing: Some("XDP fast drop unavailable: test".into()),
            allowlist: allow.iter().map(|(a, l)| (a.parse().unwrap(), *l)).collect(),
            last_stats: Arc::new(Mutex::new(None)),
            policy: None,
            telemetry: crate::telemetry::Telemetry::default(),
            reload: None,
            models: None,
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err(), "0 would mean a block that never applies, or forever");
        assert!(parse_duration("400d").is_err(), "every block ends within a year");
    }

    #[test]
    fn requests_are_checked_before_the_block_map_is_touched() {
        let c = control(&[("::ffff:10.0.0.0", 104)]);
        let r = handle(&json!({"cmd": "block", "addr": "10.1.2.3"}), &c);
        assert_eq!(r["ok"], false);
        assert!(r["error"].as_str().unwrap().contains("allowlist"), "{r}");
        let r = handle(&json!({"cmd": "block", "addr": "192.0.2.1"}), &c);
        assert!(r["error"].as_str().unwrap().contains("no block map: XDP fast drop unavailable"), "{r}");
        let r = handle(&json!({"cmd": "block", "addr": "not-an-ip"}), &c);
        assert!(r["error"].as_str().unwrap().contains("not an IPv4 or IPv6"), "{r}");
        for bad in [json!(0), json!(-5), json!(1.5), json!("600")] {
            let r = handle(&json!({"cmd": "block", "addr": "192.0.2.1", "for_secs": bad}), &c);
            assert!(r["error"].as_str().unwrap().contains("for_secs"), "{bad}: {r}");
        }
        let r = handle(&json!({"cmd": "reboot"}), &c);
        assert!(r["error"].as_str().unwrap().contains("unknown command"), "{r}");
        assert!(!c.allowed("192.0.2.1".parse().unwrap()));
        assert!(c.allowed("10.255.0.1".parse().unwrap()));
    }

    #[test]
    fn hello_snapshot_and_versions() {
        let c = control(&[]);
        let r = handle(&json!({"cmd": "hello"}), &c);
        assert_eq!((r["ok"].as_bool(), r["protocol"].as_u64()), (Some(true), Some(1)));
        assert!(r["commands"].as_array().unwrap().iter().any(|x| x == "snapshot"));
        let r = handle(&json!({"cmd": "snapshot", "v": 1}), &c);
        assert_eq!(r["snapshot"]["enforcement"]["mode"], "off", "{r}");
        let snap: portcullis_api::Snapshot = serde_json::from_value(r["snapshot"].clone()).unwrap();
        assert!(snap.alerts.is_empty());
        let r = handle(&json!({"cmd": "stats", "v": 2}), &c);
        assert!(r["error"].as_str().unwrap().contains("protocol version 2"), "{r}");
        let r = handle(&json!({"cmd": "reload-rules"}), &c);
        assert!(r["error"].as_str().unwrap().contains("without rules"), "{r}");
        let r = handle(&json!({"cmd": "swap-model", "dir": "m"}), &c);
        assert!(r["error"].as_str().unwrap().contains("scores no model"), "{r}");
    }

    #[test]
    fn subscribers_receive_alerts_while_other_connections_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let c = control(&[]);
        let stop = Arc::new(AtomicBool::new(false));
        let _server = ControlServer::start(&path, c.clone(), stop).unwrap();
        let mut sub = UnixStream::connect(&path).unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        writeln!(sub, r#"{{"cmd":"subscribe","events":["alert"],"v":1}}"#).unwrap();
        let mut lines = BufReader::new(sub.try_clone().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["streaming"], json!(["alert"]));
        // Another connection is answered while the stream is open.
        let r = request(&path, &json!({"cmd": "hello"})).unwrap();
        assert_eq!(r["ok"], true);
        c.telemetry.publish("decision", br#"{"event_type":"decision"}"#);
        c.telemetry.publish("alert", br#"{"event_type":"alert","alert":{"signature_id":1}}"#);
        let line = lines.find(|l| l.as_ref().map_or(true, |l| l != "{}")).unwrap().unwrap();
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["event_type"], "alert", "decisions were not asked for");
        let mut bad = UnixStream::connect(&path).unwrap();
        writeln!(bad, r#"{{"cmd":"subscribe","events":["flow"]}}"#).unwrap();
        let mut l = String::new();
        BufReader::new(bad).read_line(&mut l).unwrap();
        assert!(l.contains("cannot subscribe"), "{l}");
    }

    #[test]
    fn socket_round_trip_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/control.sock");
        let c = control(&[]);
        *c.last_stats.lock().unwrap() = Some(json!({"event_type": "stats"}));
        let stop = Arc::new(AtomicBool::new(false));
        let server = ControlServer::start(&path, c.clone(), stop.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let r = request(&path, &json!({"cmd": "stats"})).unwrap();
        assert_eq!(r["stats"]["event_type"], "stats");
        let long = format!("{{\"cmd\":\"stats\",\"pad\":\"{}\"}}", "x".repeat(5000));
        let r = request(&path, &serde_json::from_str(&long).unwrap()).unwrap();
        assert!(r["error"].as_str().unwrap().contains("longer than"), "{r}");
        assert!(ControlServer::start(&path, c.clone(), stop.clone()).is_err(), "a second daemon on the same socket is refused");
        drop(server);
        assert!(!path.exists(), "the socket file is removed");
        // A file that is not a socket is never replaced.
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, "keep me").unwrap();
        assert!(ControlServer::start(&file, c, stop).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }
}
