//! The Redis sink against a real `redis-server` (Debian's package, installed by
//! scripts/setup.sh) that the test starts on a free localhost port: list and channel modes,
//! then Redis killed mid-stream and restarted on the same port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_outputs::{Outputs, OutputsConfig, RedisConfig, RedisMode, SinkConfig, SinkStats};
use redis::Commands;

/// A redis-server child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// None (after saying why) when redis-server is not installed.
    fn start(port: Option<u16>) -> Option<Server> {
        let port = port.unwrap_or_else(|| TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipping: cannot run redis-server ({e}); scripts/setup.sh installs Debian's redis-server");
                return None;
            }
        };
        let s = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.client().get_connection_with_timeout(Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(s)
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap()
    }

    fn con(&self) -> redis::Connection {
        self.client().get_connection().unwrap()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn outputs(port: u16, mode: RedisMode, key: &str, buffer: usize) -> Outputs {
    let cfg = RedisConfig { server: "127.0.0.1".into(), port, mode, key: key.into(), buffer };
    Outputs::open(&OutputsConfig { eve: vec![SinkConfig::Redis(cfg)], webhook: None }).unwrap()
}

fn event(i: usize) -> String {
    format!("{{\"event_type\":\"alert\",\"n\":{i}}}")
}

fn stats(o: &Outputs) -> SinkStats {
    o.stats().sinks[0].clone()
}

#[test]
fn list_and_channel_modes() {
    let Some(server) = Server::start(None) else { return };
    let mut reader = server.con();
    for (mode, key) in [(RedisMode::Rpush, "eve-rpush"), (RedisMode::Lpush, "eve-lpush")] {
        let mut o = outputs(server.port, mode, key, 1000);
        for i in 0..50 {
            o.write(event(i).as_bytes()).unwrap();
        }
        assert!(o.drain(Duration::from_secs(10)), "{:?}", o.stats());
        let got: Vec<String> = reader.lrange(key, 0, -1).unwrap();
        let mut want: Vec<String> = (0..50).map(event).collect();
        if mode == RedisMode::Lpush {
            // LPUSH puts each new event at the head, as one LPUSH per event would.
            want.reverse();
        }
        assert_eq!(got, want, "{mode:?}");
        let s = stats(&o);
        assert_eq!((s.written, s.sent, s.overflow, s.lost, s.reconnects), (50, 50, 0, 0, 0), "{s:?}");
    }

    // Pub/sub: a subscriber gets every event published while it listens.
    let mut sub_con = server.con();
    sub_con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("eve-channel").unwrap();
    let mut o = outputs(server.port, RedisMode::Publish, "eve-channel", 1000);
    for i in 0..50 {
        o.write(event(i).as_bytes()).unwrap();
    }
    let got: Vec<String> = (0..50).map(|_| sub.get_message().unwrap().get_payload().unwrap()).collect();
    assert_eq!(got, (0..50).map(event).collect::<Vec<_>>());
    assert!(o.drain(Duration::from_secs(5)));
    assert_eq!(stats(&o).sent, 50);
}

#[test]
fn redis_killed_mid_stream_overflow_is_counted_and_the_sink_reconnects() {
    let Some(server) = Server::start(None) else { return };
    let port = server.port;
    let key = "eve";
    // A small buffer, so the outage fills it quickly.
    let buffer = 20;
    let mut o = outputs(port, RedisMode::Rpush, key, buffer);
    let mut n = 0;
    let mut write = |o: &mut Outputs, count: usize| {
        for _ in 0..count {
            o.write(event(n).as_bytes()).unwrap();
            n += 1;
        }
    };

    // While Redis is up, a writer that does not outrun it loses nothing.
    for _ in 0..10 {
        write(&mut o, 10);
        assert!(o.drain(Duration::from_secs(10)));
    }
    let before_kill: usize = server.con().llen(key).unwrap();
    assert_eq!(before_kill, 100);
    assert_eq!((stats(&o).sent, stats(&o).overflow), (100, 0));

    // Redis dies mid-stream (no persistence: what it held is gone with it). The writer keeps
    // writing and never waits; the buffer fills and the rest is counted as overflow.
    server.kill();
    let t = Instant::now();
    for _ in 0..30 {
        write(&mut o, 10);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(t.elapsed() < Duration::from_secs(3), "writes waited on the dead server: {:?}", t.elapsed());
    let down = stats(&o);
    assert!(down.overflow >= 300 - buffer as u64 - 256, "buffer {buffer}, one batch in hand: {down:?}");
    assert!(down.overflow > 0 && down.errors > 0, "{down:?}");
    assert!(down.last_error.is_some());
    // More writes while it is still down: overflow keeps rising.
    write(&mut o, 50);
    let still_down = stats(&o);
    assert!(still_down.overflow > down.overflow, "{still_down:?}");

    // Redis comes back on the same port, empty.
    let server = Server::start(Some(port)).expect("redis-server ran a moment ago");
    let deadline = Instant::now() + Duration::from_secs(15);
    while stats(&o).reconnects == 0 || stats(&o).queued > 0 {
        assert!(Instant::now() < deadline, "no reconnect: {:?}", stats(&o));
        std::thread::sleep(Duration::from_millis(20));
    }
    let overflow_while_down = stats(&o).overflow;
    for _ in 0..10 {
        write(&mut o, 10);
        assert!(o.drain(Duration::from_secs(10)));
    }
    let last = n - 1;
    let s = o.close(Duration::from_secs(10)).unwrap().sinks[0].clone();
    eprintln!("after the restart: {s:?}");

    // Every event is accounted for: sent, or dropped and counted.
    assert_eq!(s.written, 100 + 300 + 50 + 100);
    assert_eq!(s.queued, 0);
    assert_eq!(s.lost, 0, "nothing but overflow was dropped: {s:?}");
    assert_eq!(s.written, s.sent + s.overflow, "{s:?}");
    assert!(s.reconnects >= 1);
    assert_eq!(s.overflow, overflow_while_down, "nothing overflowed once Redis was back");
    // The new server holds exactly what was sent after the old one died, in order, ending
    // with the last event written.
    let after: Vec<String> = server.con().lrange(key, 0, -1).unwrap();
    assert_eq!(after.len() as u64, s.sent - 100, "{s:?}");
    assert_eq!(after.last(), Some(&event(last)));
    let nums: Vec<u64> = after.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].as_u64().unwrap()).collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "in order, without duplicates: {nums:?}");
    assert!(nums.iter().all(|&x| x >= 100));
}
