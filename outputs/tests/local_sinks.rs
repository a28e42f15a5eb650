//! The sinks that need no server: the file (logrotate's rename, then reopen), unix datagram
//! and stream sockets, and syslog's framing on a listener bound where /dev/log would be.

use std::io::{BufRead, BufReader};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::time::Duration;

use portcullis_outputs::{Facility, Level, Outputs, OutputsConfig, SinkConfig};

fn outputs(sink: SinkConfig) -> Outputs {
    Outputs::open(&OutputsConfig { eve: vec![sink], webhook: None }).unwrap()
}

fn event(i: usize) -> Vec<u8> {
    format!("{{\"event_type\":\"flow\",\"flow_id\":{i}}}").into_bytes()
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect()
}

fn ids(v: &[String]) -> Vec<usize> {
    v.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["flow_id"].as_u64().unwrap() as usize).collect()
}

#[test]
fn file_reopen_after_logrotate_rename_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    let rotated = dir.path().join("eve.json.1");
    let mut o = outputs(SinkConfig::File { path: path.clone() });
    for i in 0..100 {
        o.write(&event(i)).unwrap();
    }
    // logrotate renames the file; until SIGHUP the open file (now eve.json.1) gets events.
    std::fs::rename(&path, &rotated).unwrap();
    for i in 100..150 {
        o.write(&event(i)).unwrap();
    }
    o.reopen().unwrap();
    assert!(path.exists(), "reopen creates a new file at the configured path");
    for i in 150..250 {
        o.write(&event(i)).unwrap();
    }
    o.flush().unwrap();
    assert_eq!(ids(&lines(&rotated)), (0..150).collect::<Vec<_>>());
    assert_eq!(ids(&lines(&path)), (150..250).collect::<Vec<_>>());
    let s = &o.stats().sinks[0];
    assert_eq!((s.kind, s.written, s.sent, s.lost, s.reconnects), ("regular", 250, 250, 0, 1));
}

#[test]
fn file_reopen_that_fails_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    let path = dir.path().join("log/eve.json");
    let mut o = outputs(SinkConfig::File { path: path.clone() });
    o.write(&event(0)).unwrap();
    // The directory vanishes from under the path: the new file cannot be created.
    std::fs::rename(dir.path().join("log"), dir.path().join("moved")).unwrap();
    let e = o.reopen().unwrap_err().to_string();
    assert!(e.contains("eve.json"), "{e}");
    o.write(&event(1)).unwrap();
    o.flush().unwrap();
    assert_eq!(ids(&lines(&dir.path().join("moved/eve.json"))), vec![0, 1]);
    let s = &o.stats().sinks[0];
    assert_eq!((s.written, s.sent, s.errors), (2, 2, 1));
}

#[test]
fn unix_dgram_receives_counts_overflow_and_finds_a_restarted_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut o = outputs(SinkConfig::UnixDgram { path: path.clone() });
    assert!(o.notes().is_empty(), "{:?}", o.notes());
    let mut buf = vec![0u8; 4096];
    for i in 0..3 {
        o.write(&event(i)).unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &event(i)[..], "one datagram per event, no newline");
    }
    // A listener that does not read: its queue fills and the sink drops without waiting.
    let t = std::time::Instant::now();
    for i in 0..5000 {
        o.write(&event(i)).unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(2), "writes never wait on the listener");
    let s = o.stats().sinks[0].clone();
    assert!(s.overflow > 0, "{s:?}");
    assert_eq!(s.written, s.sent + s.overflow + s.lost);
    // The listener restarts at the same path.
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    o.write(&event(9)).unwrap();
    let lost = o.stats().sinks[0].lost;
    assert!(lost > s.lost, "an event sent while no one listens is lost, and counted");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    o.write(&event(10)).unwrap();
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &event(10)[..]);
    let s = o.stats().sinks[0].clone();
    assert_eq!(s.reconnects, 1);
    assert_eq!(s.written, s.sent + s.overflow + s.lost);
}

#[test]
fn unix_stream_delivers_lines_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut o = outputs(SinkConfig::UnixStream { path: path.clone(), buffer: 1000 });
    let (conn, _) = listener.accept().unwrap();
    for i in 0..100 {
        o.write(&event(i)).unwrap();
    }
    assert!(o.drain(Duration::from_secs(5)));
    let mut r = BufReader::new(conn);
    let mut got = Vec::new();
    for _ in 0..100 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        got.push(l.trim_end().to_string());
    }
    assert_eq!(ids(&got), (0..100).collect::<Vec<_>>());
    // The reader goes away and comes back; the sink reconnects and later events arrive.
    drop(r);
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    let listener = UnixListener::bind(&path).unwrap();
    let reader = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        for l in BufReader::new(conn).lines() {
            got.push(l.unwrap());
        }
        got
    });
    let mut i = 100;
    while o.stats().sinks[0].reconnects == 0 {
        assert!(i < 100_000, "no reconnect: {:?}", o.stats());
        o.write(&event(i)).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    for j in 0..10 {
        o.write(&event(1_000_000 + j)).unwrap();
    }
    let stats = o.close(Duration::from_secs(5)).unwrap();
    let s = &stats.sinks[0];
    assert_eq!(s.written, s.sent + s.overflow + s.lost, "{s:?}");
    assert_eq!(s.queued, 0);
    let got = ids(&reader.join().unwrap());
    assert_eq!(&got[got.len() - 10..], &(1_000_000..1_000_010).collect::<Vec<_>>()[..]);
}

#[test]
fn syslog_frames_each_event_as_rfc3164() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut o = outputs(SinkConfig::Syslog { socket: path.clone(), identity: "portcullis-test".into(), facility: Facility::parse("local5").unwrap(), level: Level::parse("Info").unwrap() });
    o.write(&event(7)).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = listener.recv(&mut buf).unwrap();
    let msg = std::str::from_utf8(&buf[..n]).unwrap();
    // local5 (21) * 8 + info (6) = 174.
    let rest = msg.strip_prefix("<174>").unwrap_or_else(|| panic!("PRI: {msg}"));
    let (stamp, rest) = rest.split_at(15);
    let b = stamp.as_bytes();
    assert!(b[0].is_ascii_uppercase() && b[1].is_ascii_lowercase() && b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':', "TIMESTAMP `Mmm dd hh:mm:ss`: {stamp}");
    assert!(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].contains(&&stamp[..3]), "{stamp}");
    assert_eq!(rest, format!(" portcullis-test[{}]: {}", std::process::id(), String::from_utf8(event(7)).unwrap()));
    let s = &o.stats().sinks[0];
    assert_eq!((s.kind, s.sent), ("syslog", 1));
}

#[test]
fn syslog_without_a_socket_says_so_once_and_counts_losses() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = outputs(SinkConfig::Syslog { socket: dir.path().join("no-such-log"), identity: "p".into(), facility: Facility::LOCAL5, level: Level::INFO });
    assert_eq!(o.notes().len(), 1);
    assert!(o.notes()[0].contains("no-such-log") && o.notes()[0].contains("dropped and counted"), "{}", o.notes()[0]);
    for i in 0..10 {
        o.write(&event(i)).unwrap();
    }
    let s = &o.stats().sinks[0];
    assert_eq!((s.written, s.sent, s.lost), (10, 0, 10));
}
