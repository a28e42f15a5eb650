//! AF_XDP capture in network namespaces this test creates (and deletes, even on failure):
//! tapping a veth, and the inline bridge between two veths carrying UDP and TCP, with a
//! verdict that drops one UDP port. Needs root and a kernel with AF_XDP; says so and passes
//! without running otherwise. All traffic stays inside the namespaces.

// Entering a namespace is setns(2), which std does not wrap.
#![allow(unsafe_code)]
#![cfg(feature = "afxdp")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use portcullis_dataplane::live::{self, AfXdpConfig, CaptureKind, LiveConfig, Port, PortStats, Topology, ZeroCopy};

/// Network namespaces named `pcx-afx-<pid>-<suffix>`, deleted (with the veths inside them) on
/// drop, so a failing assertion cleans up too.
struct Netns {
    names: Vec<String>,
}

impl Netns {
    fn new(suffixes: &[&str]) -> Netns {
        let mut ns = Netns { names: Vec::new() };
        for s in suffixes {
            let name = format!("pcx-afx-{}-{s}", std::process::id());
            // A leftover from a killed run of the same pid would make `add` fail.
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            sh(&["ip", "netns", "add", &name]);
            ns.names.push(name.clone());
            // No IPv6: its neighbour discovery and MLD would add frames the counts below do
            // not expect.
            for k in ["all", "default"] {
                sh(&["ip", "netns", "exec", &name, "sysctl", "-qw", &format!("net.ipv6.conf.{k}.disable_ipv6=1")]);
            }
            sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        }
        ns
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A veth pair created directly inside the two namespaces (so no link ever exists in the
/// test runner's namespace), both ends up.
fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) {
    sh(&["ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b]);
    sh(&["ip", "-n", ns_a, "link", "set", a, "up"]);
    sh(&["ip", "-n", ns_b, "link", "set", b, "up"]);
}

fn mac(ns: &str, dev: &str) -> String {
    let out = sh(&["ip", "-n", ns, "-o", "link", "show", dev]);
    let i = out.find("link/ether ").expect("ether address") + "link/ether ".len();
    out[i..i + 17].to_string()
}

/// Runs `f` on a thread that has entered network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: setns on an open namespace file descriptor changes only this thread's
        // network namespace; the descriptor stays open for the call.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// Why these tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and XDP need CAP_NET_ADMIN, CAP_BPF)".into());
    }
    // SAFETY: plain socket(2); closed right away when it succeeds.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Some(format!("no AF_XDP sockets in this kernel: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2's `ip` is not installed".into());
    }
    None
}

macro_rules! skip_unless_possible {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

fn config(frame_size: u32, frames: u32) -> LiveConfig {
    LiveConfig {
        capture: Some(CaptureKind::AfXdp),
        afxdp: AfXdpConfig {
            umem_frames: frames,
            frame_size,
            rx_ring: 512,
            tx_ring: 512,
            fill_ring: 512,
            comp_ring: 512,
            zero_copy: ZeroCopy::Auto,
            ..AfXdpConfig::default()
        },
        ..LiveConfig::default()
    }
}

#[test]
fn tap_receives_frames_sent_across_a_veth() {
    skip_unless_possible!();
    let ns = Netns::new(&["ts", "tc"]);
    let (sender, capture) = (ns.name(0).to_string(), ns.name(1).to_string());
    veth(&sender, "pcx-at0", &capture, "pcx-at1");
    sh(&["ip", "-n", &sender, "addr", "add", "10.77.0.1/24", "dev", "pcx-at0"]);
    // The XDP program hands every frame to the socket, so the capture side never answers ARP:
    // a static neighbour lets the sender's datagrams leave.
    let peer_mac = mac(&capture, "pcx-at1");
    sh(&["ip", "-n", &sender, "neigh", "add", "10.77.0.2", "lladdr", &peer_mac, "dev", "pcx-at0"]);

    const N: usize = 200;
    let ready = Arc::new(AtomicBool::new(false));
    let ready2 = ready.clone();
    let cap = in_netns(&capture, move || {
        let topo = Topology::Tap(vec!["pcx-at1".to_string()]);
        // Busy-polling here (spinning on recvfrom), so that path is covered; the inline test
        // waits in ppoll(2).
        let mut cfg = config(4096, 1024);
        cfg.afxdp.busy_poll = Some(live::BusyPoll { usecs: 50, budget: 64 });
        let mut c = live::open(&cfg, &topo).expect("open AF_XDP capture");
        assert_eq!(c.kind, CaptureKind::AfXdp);
        assert_eq!(c.ports.len(), 1, "one port per queue: {:?}", c.notes);
        let describe = c.ports[0].describe();
        ready2.store(true, Ordering::SeqCst);
        let mut seen = Vec::new();
        let mut frames = 0u64;
        let mut bytes = 0u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && seen.len() < N {
            c.ports[0]
                .poll(64, Duration::from_millis(50), |batch, verdicts| {
                    assert_eq!(batch.len(), verdicts.len());
                    for f in batch {
                        frames += 1;
                        bytes += f.data.len() as u64;
                        assert_eq!(f.orig_len as usize, f.data.len());
                        assert_eq!(f.side, 0);
                        if let Some(p) = udp_payload(f.data, 7777) {
                            seen.push(p.to_vec());
                        }
                    }
                })
                .expect("poll");
        }
        let stats = c.ports[0].stats();
        let notes = c.notes.clone();
        let link = sh(&["ip", "-d", "link", "show", "pcx-at1"]);
        assert!(link.contains("prog/xdp"), "XDP program not shown while attached: {link}");
        drop(c);
        // Dropping the capture closes the sockets and detaches the program.
        let link = sh(&["ip", "-d", "link", "show", "pcx-at1"]);
        assert!(!link.contains("prog/xdp"), "XDP program left attached: {link}");
        (seen, frames, bytes, stats, describe, notes)
    });
    while !ready.load(Ordering::SeqCst) && !cap.is_finished() {
        thread::sleep(Duration::from_millis(10));
    }
    let send = in_netns(&sender, || {
        let s = UdpSocket::bind("10.77.0.1:0").unwrap();
        for i in 0..N {
            s.send_to(&payload(i, 100 + i % 900), "10.77.0.2:7777").unwrap();
            if i % 32 == 31 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    send.join().unwrap();
    let (seen, frames, bytes, stats, describe, notes) = cap.join().unwrap();
    eprintln!("{describe}; notes: {notes:?}; {stats:?}");
    assert!(describe.starts_with("pcx-at1 queue 0: af-xdp"), "{describe}");
    assert_eq!(seen.len(), N, "datagrams received through the AF_XDP port");
    for (i, p) in seen.iter().enumerate() {
        assert_eq!(p, &payload(i, 100 + i % 900), "datagram {i} bytes");
    }
    assert_eq!(stats.packets, frames, "stats().packets counts the frames handed out");
    assert_eq!(stats.bytes, bytes);
    assert_eq!((stats.forwarded, stats.dropped, stats.tx_failed), (0, 0, 0), "tapping forwards nothing");
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|k| (k as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

/// The UDP payload of an untagged IPv4 frame to `port`.
fn udp_payload(frame: &[u8], port: u16) -> Option<&[u8]> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != port {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    udp.get(8..len)
}

fn udp_dst_port(frame: &[u8]) -> Option<u16> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
    Some(u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]))
}

/// The bridge: client ns — veth — middle ns (Portcullis inline between pcx-aa and pcx-ab) —
/// veth — server ns.
struct Bridge {
    ns: Netns,
}

impl Bridge {
    fn new() -> Bridge {
        let ns = Netns::new(&["ic", "im", "is"]);
        let (c, m, s) = (ns.name(0), ns.name(1), ns.name(2));
        veth(c, "pcx-ac", m, "pcx-aa");
        veth(m, "pcx-ab", s, "pcx-as");
        // A veth hands its peer TCP/UDP packets with checksum offload pending (CHECKSUM_PARTIAL:
        // only the pseudo-header sum is in the packet). The XDP program sees the bytes as they
        // are, and a bridged copy arrives at the far end with a wrong checksum and is dropped.
        // A real NIC never delivers such frames; on veth, the senders must compute checksums
        // themselves (as for any AF_PACKET/AF_XDP bridge of veths, e.g. Suricata's IPS mode).
        sh(&["ip", "netns", "exec", c, "ethtool", "-K", "pcx-ac", "tx", "off"]);
        sh(&["ip", "netns", "exec", s, "ethtool", "-K", "pcx-as", "tx", "off"]);
        sh(&["ip", "-n", c, "addr", "add", "10.78.0.1/24", "dev", "pcx-ac"]);
        sh(&["ip", "-n", s, "addr", "add", "10.78.0.2/24", "dev", "pcx-as"]);
        Bridge { ns }
    }
}

/// The middle: one thread polling every port of the inline capture until `stop`, forwarding
/// everything except UDP to `drop_port`.
fn run_bridge(
    middle: &str,
    drop_port: u16,
    stop: Arc<AtomicBool>,
    up: Arc<AtomicBool>,
) -> thread::JoinHandle<(PortStats, u64, Vec<String>, Vec<String>)> {
    in_netns(middle, move || {
        let topo = Topology::Inline("pcx-aa".into(), "pcx-ab".into());
        let mut c = live::open(&config(2048, 1024), &topo).expect("open inline AF_XDP capture");
        let describe: Vec<String> = c.ports.iter().map(Port::describe).collect();
        up.store(true, Ordering::SeqCst);
        let mut verdict_drops = 0u64;
        while !stop.load(Ordering::SeqCst) {
            for p in &mut c.ports {
                p.poll(64, Duration::from_millis(5), |batch, verdicts| {
                    for (f, v) in batch.iter().zip(verdicts.iter_mut()) {
                        if udp_dst_port(f.data) == Some(drop_port) {
                            *v = false;
                            verdict_drops += 1;
                        }
                    }
                })
                .expect("poll");
            }
        }
        let mut total = PortStats::default();
        for p in &c.ports {
            total.merge(&p.stats());
        }
        (total, verdict_drops, describe, c.notes.clone())
    })
}

#[test]
fn inline_bridge_forwards_udp_and_tcp_and_drops_by_verdict() {
    skip_unless_possible!();
    let br = Bridge::new();
    let (client, middle, server) = (br.ns.name(0).to_string(), br.ns.name(1).to_string(), br.ns.name(2).to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let up = Arc::new(AtomicBool::new(false));
    let bridge = run_bridge(&middle, 5999, stop.clone(), up.clone());
    while !up.load(Ordering::SeqCst) && !bridge.is_finished() {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(!bridge.is_finished(), "bridge thread ended early: {:?}", bridge.join().err());

    // Server: a UDP echo on 5000, a UDP sink on 5999, a TCP echo on 5001.
    let server_t = in_netns(&server, || {
        let echo = UdpSocket::bind("10.78.0.2:5000").unwrap();
        let sink = UdpSocket::bind("10.78.0.2:5999").unwrap();
        let tcp = TcpListener::bind("10.78.0.2:5001").unwrap();
        echo.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        sink.set_nonblocking(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let tcp_t = thread::spawn(move || {
            // Polled, so that a client that never connects fails the test instead of hanging it.
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut s = loop {
                match tcp.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                    Err(e) => panic!("no TCP connection through the bridge: {e}"),
                }
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut total = 0usize;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
                s.write_all(&buf[..n]).unwrap();
            }
            total
        });
        let mut echoed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 2048];
        while echoed.len() < 100 && Instant::now() < deadline {
            if let Ok((n, from)) = echo.recv_from(&mut buf) {
                echoed.push(buf[..n].to_vec());
                echo.send_to(&buf[..n], from).unwrap();
            }
        }
        // Anything that reached the sink was forwarded though its verdict said drop.
        thread::sleep(Duration::from_millis(200));
        let mut sunk = 0;
        while sink.recv_from(&mut buf).is_ok() {
            sunk += 1;
        }
        (echoed, sunk, tcp_t.join())
    });

    let client_t = in_netns(&client, || {
        let u = UdpSocket::bind("10.78.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let server: SocketAddr = "10.78.0.2:5000".parse().unwrap();
        let mut back = Vec::new();
        let mut buf = [0u8; 2048];
        for i in 0..100 {
            let p = payload(i, 64 + i * 13);
            u.send_to(&p, server).unwrap();
            // Ten datagrams to the dropped port, interleaved with the echoed ones.
            if i % 10 == 0 {
                u.send_to(&payload(1000 + i, 200), "10.78.0.2:5999").unwrap();
            }
            let (n, _) = u.recv_from(&mut buf).expect("UDP echo through the bridge");
            back.push(buf[..n].to_vec());
        }
        // TCP: 2 MiB through the bridge and back.
        let data: Vec<u8> = (0..2u32 << 20).map(|k| (k.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut s = TcpStream::connect_timeout(&"10.78.0.2:5001".parse().unwrap(), Duration::from_secs(5)).expect("TCP connect through the bridge");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = s.try_clone().unwrap();
        let want = data.len();
        let reader = thread::spawn(move || {
            let mut got = Vec::with_capacity(want);
            let mut buf = vec![0u8; 65536];
            while got.len() < want {
                let n = r.read(&mut buf).expect("TCP echo through the bridge");
                assert!(n > 0, "connection closed after {} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        s.write_all(&data).unwrap();
        let got = reader.join().unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        (back, got == data, data.len())
    });

    let client_r = client_t.join();
    let server_r = server_t.join();
    stop.store(true, Ordering::SeqCst);
    let (stats, verdict_drops, describe, notes) = bridge.join().expect("bridge thread");
    eprintln!("{describe:?}; notes: {notes:?}; {stats:?}");
    let (back, tcp_ok, tcp_len) = client_r.expect("client (see its panic above)");
    let (echoed, sunk, tcp_total) = server_r.expect("server");
    let tcp_total = tcp_total.expect("server's TCP echo");

    assert!(describe[0].starts_with("pcx-aa ↔ pcx-ab queue 0: af-xdp"), "{describe:?}");
    assert_eq!(echoed.len(), 100, "UDP datagrams reaching the server");
    for (i, (e, b)) in echoed.iter().zip(&back).enumerate() {
        let p = payload(i, 64 + i * 13);
        assert_eq!(e, &p, "datagram {i} as the server got it");
        assert_eq!(b, &p, "datagram {i} as the client got it back");
    }
    assert_eq!(sunk, 0, "datagrams to the dropped port reaching the server");
    assert_eq!(verdict_drops, 10);
    assert_eq!(stats.dropped, 10, "verdict drops counted");
    assert!(tcp_ok, "TCP bytes echoed unmodified");
    assert_eq!(tcp_total, tcp_len);
    assert_eq!(stats.tx_failed, 0);
    assert_eq!(stats.forwarded + stats.dropped, stats.packets, "every frame forwarded or dropped");
}
