//! AF_PACKET and libpcap live capture in network namespaces the tests create (root only; each
//! test says so and passes when it cannot run). Traffic never leaves the test's namespaces.
//!
//! Tap: frames sent across a veth arrive through `poll` intact and counted; with two fanout
//! members both directions of every flow reach the same member. Inline: client — veth — middle
//! (the port bridges its two veths) — veth — server; UDP and a TCP connection pass unmodified
//! both ways, and a verdict that rejects one UDP port drops exactly those datagrams.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use portcullis_dataplane::live::{self, AfPacketConfig, CaptureKind, LiveConfig, Port, PortStats, Topology};
use support::netns::{can_run, veth, Netns};

const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0a:02";

fn config(kind: CaptureKind, threads: u32) -> LiveConfig {
    LiveConfig {
        capture: Some(kind),
        afpacket: AfPacketConfig {
            threads: Some(threads),
            block_size: 1 << 16,
            block_count: 16,
            block_timeout_ms: 2,
            cluster_id: None,
        },
        ..Default::default()
    }
}

/// Protocol and the two (address, port) ends in order: both directions of a flow alike.
type FlowKey = (u8, ([u8; 4], u16), ([u8; 4], u16));

/// The parts of an IPv4 UDP/TCP frame the tests look at.
#[derive(Debug)]
struct Pkt {
    /// The 802.1Q VLAN id, when the frame carries a tag.
    vlan: Option<u16>,
    proto: u8,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    payload: Vec<u8>,
}

impl Pkt {
    /// Both directions of a flow give the same key.
    fn flow(&self) -> FlowKey {
        (self.proto, self.src.min(self.dst), self.src.max(self.dst))
    }
}

/// IPv4 UDP or TCP in Ethernet (one optional 802.1Q tag); `None` for anything else, IP
/// fragments included.
fn parse(f: &[u8]) -> Option<Pkt> {
    let (vlan, ip) = match f.get(12..14)? {
        [0x81, 0x00] if f.get(16..18)? == [0x08, 0x00] => (Some(u16::from_be_bytes([f[14], f[15]]) & 0x0fff), &f[18..]),
        [0x08, 0x00] => (None, &f[14..]),
        _ => return None,
    };
    if ip.len() < 20 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let proto = ip[9];
    if ip.len() < total || total < ihl + 8 || !(proto == 6 || proto == 17) {
        return None;
    }
    let l4 = &ip[ihl..total];
    let port = |o: usize| u16::from_be_bytes([l4[o], l4[o + 1]]);
    let hl = if proto == 17 { 8 } else { usize::from(*l4.get(12)? >> 4) * 4 };
    Some(Pkt {
        vlan,
        proto,
        src: (ip[12..16].try_into().ok()?, port(0)),
        dst: (ip[16..20].try_into().ok()?, port(2)),
        payload: l4.get(hl..)?.to_vec(),
    })
}

/// Frame `i` of VLAN 10: 10.78.0.1 -> 10.78.0.2 UDP 5000 -> 7003, client MAC to server MAC.
fn vlan_frame(i: usize) -> Vec<u8> {
    let payload = datagram("vlan", i);
    let mac = |s: &str| -> Vec<u8> { s.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect() };
    let mut f = mac(MAC_B);
    f.extend(mac(MAC_A));
    f.extend([0x81, 0x00, 0x00, 10, 0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, i as u8, 0x40, 0, 64, 17, 0, 0, 10, 78, 0, 1, 10, 78, 0, 2];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend(ip);
    f.extend(5000u16.to_be_bytes());
    f.extend(7003u16.to_be_bytes());
    f.extend((8 + payload.len() as u16).to_be_bytes());
    f.extend([0, 0]);
    f.extend(payload);
    f
}

/// The payload of datagram `i`: a tag, then a pattern of a length that varies with `i`.
fn datagram(tag: &str, i: usize) -> Vec<u8> {
    let mut v = format!("{tag}-{i:04}-").into_bytes();
    let extra = (i * 137) % 1400;
    v.extend((0..extra).map(|k| (k as u8).wrapping_mul(31).wrapping_add(i as u8)));
    v
}

fn open_in(ns: &Netns, cfg: LiveConfig, topo: Topology) -> Vec<Port> {
    let cap = ns.spawn(move || live::open(&cfg, &topo)).join().expect("open thread").expect("open the capture");
    cap.ports
}

/// Two namespaces joined by a veth: a (10.77.0.1, pcx-p0) and b (10.77.0.2, pcx-p1).
fn pair() -> (Netns, Netns) {
    let a = Netns::new("afp").expect("create namespace");
    let b = Netns::new("afp").expect("create namespace");
    veth(&a, "pcx-p0", &b, "pcx-p1").expect("veth");
    a.link_up("pcx-p0", MAC_A, Some("10.77.0.1/24")).expect("link a");
    b.link_up("pcx-p1", MAC_B, Some("10.77.0.2/24")).expect("link b");
    a.neigh("10.77.0.2", MAC_B, "pcx-p0").expect("neigh a");
    b.neigh("10.77.0.1", MAC_A, "pcx-p1").expect("neigh b");
    (a, b)
}

fn tap_frames_intact(kind: CaptureKind) {
    const N: usize = 300;
    let (a, b) = pair();
    let mut ports = open_in(&b, config(kind, 1), Topology::Tap(vec!["pcx-p1".into()]));
    assert_eq!(ports.len(), 1);
    // A socket in b takes the datagrams so that b's kernel sends no port-unreachable errors.
    let (ready_tx, ready_rx) = mpsc::channel();
    let sink = b.spawn(move || {
        let s = UdpSocket::bind("10.77.0.2:9999").expect("bind sink");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        (0..N).take_while(|_| s.recv(&mut buf).is_ok()).count()
    });
    ready_rx.recv().unwrap();
    let sender = a.spawn(|| {
        let s = UdpSocket::bind("10.77.0.1:0").expect("bind sender");
        for i in 0..N {
            s.send_to(&datagram("tap", i), "10.77.0.2:9999").expect("send");
        }
    });
    let mut seen = vec![0u32; N];
    let (mut frames, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.contains(&0) && Instant::now() < deadline {
        // A small batch, so that a poll often stops inside a block and the next one resumes there.
        ports[0]
            .poll(7, Duration::from_millis(20), |fs, verdicts| {
                assert!(fs.len() <= 7);
                assert_eq!(fs.len(), verdicts.len());
                for f in fs {
                    frames += 1;
                    bytes += f.data.len() as u64;
                    assert_eq!(f.side, 0);
                    assert_eq!(f.orig_len as usize, f.data.len(), "no snaplen cut expected");
                    assert!(f.ts.0 > 0, "a kernel timestamp");
                    let Some(p) = parse(f.data) else { continue };
                    if p.proto != 17 || p.dst.1 != 9999 {
                        continue;
                    }
                    let i: usize = std::str::from_utf8(&p.payload[4..8]).unwrap().parse().unwrap();
                    assert_eq!(p.payload, datagram("tap", i), "datagram {i} altered");
                    seen[i] += 1;
                }
            })
            .expect("poll");
    }
    sender.join().unwrap();
    // The sink's socket buffer may overflow under the burst; capture happens before it.
    let sunk = sink.join().unwrap();
    let missing: Vec<usize> = (0..N).filter(|&i| seen[i] == 0).collect();
    assert!(missing.is_empty(), "{kind}: datagrams never captured: {missing:?}");
    assert!(seen.iter().all(|&c| c == 1), "{kind}: a datagram captured twice");
    let st = ports[0].stats();
    assert_eq!(st.packets, frames, "{kind}: stats count the frames handed out");
    assert_eq!(st.bytes, bytes);
    assert_eq!(st.rx_dropped, 0);
    assert_eq!((st.forwarded, st.dropped), (0, 0), "tapping forwards nothing");
    eprintln!("{kind} tap: {N} datagrams intact ({sunk} reached the sink), {frames} frames, {} ({st:?})", ports[0].describe());
}

#[test]
fn afpacket_tap_frames_intact() {
    if can_run("afpacket_tap_frames_intact") {
        tap_frames_intact(CaptureKind::AfPacket);
    }
}

#[test]
fn pcap_tap_frames_intact() {
    if can_run("pcap_tap_frames_intact") {
        tap_frames_intact(CaptureKind::Pcap);
    }
}

/// 64 UDP flows (each a request and its echo) tapped with two fanout members: every flow is
/// seen whole by exactly one member, and both members get flows.
#[test]
fn afpacket_tap_fanout_keeps_flows_together() {
    if !can_run("afpacket_tap_fanout_keeps_flows_together") {
        return;
    }
    const FLOWS: usize = 64;
    let (a, b) = pair();
    let mut ports = open_in(&b, config(CaptureKind::AfPacket, 2), Topology::Tap(vec!["pcx-p1".into()]));
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[1].describe(), "pcx-p1 fanout 1/2: af-packet tpacket-v3");
    let (ready_tx, ready_rx) = mpsc::channel();
    let echo = b.spawn(move || {
        let s = UdpSocket::bind("10.77.0.2:9999").expect("bind echo");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        for _ in 0..FLOWS {
            let Ok((n, from)) = s.recv_from(&mut buf) else { return };
            s.send_to(&buf[..n], from).unwrap();
        }
    });
    ready_rx.recv().unwrap();
    let client = a.spawn(|| {
        let mut answered = 0;
        // Every socket stays open until all are done, so that no two flows share a port.
        let mut open = Vec::new();
        for i in 0..FLOWS {
            let s = UdpSocket::bind("10.77.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(&datagram("fan", i), "10.77.0.2:9999").unwrap();
            let mut buf = [0u8; 2048];
            answered += usize::from(s.recv(&mut buf).is_ok());
            open.push(s);
        }
        answered
    });
    // flow -> (member, direction) observations
    let mut seen: BTreeMap<_, Vec<(usize, bool)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut done = false;
    while !done && Instant::now() < deadline {
        for (k, port) in ports.iter_mut().enumerate() {
            port.poll(64, Duration::from_millis(10), |fs, _| {
                for p in fs.iter().filter_map(|f| parse(f.data)) {
                    if p.proto == 17 && (p.dst.1 == 9999 || p.src.1 == 9999) {
                        seen.entry(p.flow()).or_default().push((k, p.dst.1 == 9999));
                    }
                }
            })
            .unwrap();
        }
        done = seen.len() == FLOWS && seen.values().all(|v| v.len() >= 2);
    }
    assert_eq!(client.join().unwrap(), FLOWS, "every request answered");
    echo.join().unwrap();
    assert_eq!(seen.len(), FLOWS, "every flow captured");
    let mut per_member = [0usize; 2];
    for (flow, obs) in &seen {
        let members: BTreeSet<usize> = obs.iter().map(|o| o.0).collect();
        assert_eq!(members.len(), 1, "flow {flow:?} split across members: {obs:?}");
        assert_eq!(obs.iter().filter(|o| o.1).count(), 1, "{flow:?}: one request {obs:?}");
        assert_eq!(obs.iter().filter(|o| !o.1).count(), 1, "{flow:?}: one reply {obs:?}");
        per_member[obs[0].0] += 1;
    }
    // 64 flows all hashed to one of two members: probability 2^-63 if the hash spreads them.
    assert!(per_member.iter().all(|&n| n > 0), "fanout spread nothing: {per_member:?}");
    eprintln!("fanout: flows per member {per_member:?}");
}

/// What the bridge thread saw.
#[derive(Debug, Default)]
struct BridgeLog {
    stats: PortStats,
    /// Port indices that saw each flow (both directions).
    flows: BTreeMap<FlowKey, BTreeSet<usize>>,
    verdict_drops: u64,
    /// UDP frames of port 7003 (injected with a VLAN 10 tag) with the tag, and without.
    vlan_tagged: u64,
    vlan_lost: u64,
}

fn inline_forwards_and_drops(kind: CaptureKind, threads: u32) {
    const N: usize = 50;
    const TCP_BYTES: usize = 300_000;
    const BIG: usize = 4000;
    const V: usize = 20;
    let c = Netns::new("afp").expect("ns");
    let m = Netns::new("afp").expect("ns");
    let s = Netns::new("afp").expect("ns");
    veth(&c, "pcx-p0", &m, "pcx-p1").unwrap();
    veth(&m, "pcx-p2", &s, "pcx-p3").unwrap();
    c.link_up("pcx-p0", MAC_A, Some("10.78.0.1/24")).unwrap();
    s.link_up("pcx-p3", MAC_B, Some("10.78.0.2/24")).unwrap();
    m.link_up("pcx-p1", "02:00:00:00:0b:01", None).unwrap();
    m.link_up("pcx-p2", "02:00:00:00:0b:02", None).unwrap();
    c.neigh("10.78.0.2", MAC_B, "pcx-p0").unwrap();
    s.neigh("10.78.0.1", MAC_A, "pcx-p3").unwrap();
    for (ns, dev) in [(&c, "pcx-p0"), (&m, "pcx-p1"), (&m, "pcx-p2"), (&s, "pcx-p3")] {
        ns.offloads_off(dev);
    }
    let ports = open_in(&m, config(kind, threads), Topology::Inline("pcx-p1".into(), "pcx-p2".into()));
    let expect_ports = if kind == CaptureKind::Pcap { 1 } else { threads as usize };
    assert_eq!(ports.len(), expect_ports);

    let stop = Arc::new(AtomicBool::new(false));
    let bridge = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut ports = ports;
            let mut log = BridgeLog::default();
            while !stop.load(Ordering::Relaxed) {
                for (k, port) in ports.iter_mut().enumerate() {
                    port.poll(64, Duration::from_millis(2), |fs, verdicts| {
                        for (f, v) in fs.iter().zip(verdicts.iter_mut()) {
                            let Some(p) = parse(f.data) else { continue };
                            if p.proto == 17 && p.dst.1 == 7001 {
                                *v = false;
                                log.verdict_drops += 1;
                            }
                            if p.proto == 17 && (p.dst.1 == 7003 || p.src.1 == 7003) {
                                if p.vlan == Some(10) {
                                    log.vlan_tagged += 1;
                                } else {
                                    log.vlan_lost += 1;
                                }
                            }
                            log.flows.entry(p.flow()).or_default().insert(k);
                        }
                    })
                    .expect("bridge poll");
                }
            }
            for p in &ports {
                log.stats.merge(&p.stats());
            }
            log
        })
    };

    let (ready_tx, ready_rx) = mpsc::channel();
    let server = s.spawn(move || {
        let u0 = UdpSocket::bind("10.78.0.2:7000").unwrap();
        let u1 = UdpSocket::bind("10.78.0.2:7001").unwrap();
        let tl = TcpListener::bind("10.78.0.2:8080").unwrap();
        let u2 = UdpSocket::bind("10.78.0.2:7002").unwrap();
        ready_tx.send(()).unwrap();
        // Echoes a fragmented datagram.
        let extra = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            u2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            match u2.recv_from(&mut buf) {
                Ok((n, from)) => {
                    u2.send_to(&buf[..n], from).unwrap();
                    buf[..n].to_vec()
                }
                Err(_) => Vec::new(),
            }
        });
        let tcp = std::thread::spawn(move || {
            let (mut st, _) = tl.accept().unwrap();
            let mut buf = vec![0u8; 16384];
            let mut total = 0;
            loop {
                let n = st.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                st.write_all(&buf[..n]).unwrap();
                total += n;
            }
            total
        });
        u0.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got0 = Vec::new();
        let mut buf = [0u8; 2048];
        while got0.len() < N {
            let Ok((n, from)) = u0.recv_from(&mut buf) else { break };
            got0.push(buf[..n].to_vec());
            u0.send_to(&buf[..n], from).unwrap();
        }
        // Everything for 7001 was sent interleaved with 7000: wait a little longer for strays.
        u1.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut got1 = 0;
        while u1.recv(&mut buf).is_ok() {
            got1 += 1;
        }
        (got0, got1, tcp.join().unwrap(), extra.join().unwrap())
    });
    ready_rx.recv().unwrap();
    let client = c.spawn(|| {
        let u = UdpSocket::bind("10.78.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        for i in 0..N {
            u.send_to(&datagram("u7000", i), "10.78.0.2:7000").unwrap();
            u.send_to(&datagram("u7001", i), "10.78.0.2:7001").unwrap();
        }
        let mut echoes = Vec::new();
        let mut buf = [0u8; 2048];
        while echoes.len() < N {
            let Ok(n) = u.recv(&mut buf) else { break };
            echoes.push(buf[..n].to_vec());
        }
        let big: Vec<u8> = (0..BIG).map(|i| (i * 7 % 256) as u8).collect();
        u.send_to(&big, "10.78.0.2:7002").unwrap();
        let mut bigbuf = vec![0u8; 65536];
        let big_back = u.recv(&mut bigbuf).map(|n| bigbuf[..n].to_vec()).unwrap_or_default();
        let sent: Vec<u8> = (0..TCP_BYTES).map(|i| (i % 251) as u8).collect();
        let addr: SocketAddr = "10.78.0.2:8080".parse().unwrap();
        let mut st = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("TCP connect through the bridge");
        st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rd = st.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            rd.read_to_end(&mut back).map(|_| back)
        });
        st.write_all(&sent).unwrap();
        st.shutdown(std::net::Shutdown::Write).unwrap();
        let back = reader.join().unwrap().expect("read the echo");
        (echoes, sent, back, big, big_back)
    });
    let (echoes, sent, back, big, big_back) = client.join().expect("client");
    let (got0, got1, tcp_total, big_got) = server.join().expect("server");

    // 802.1Q-tagged frames (this kernel may have no VLAN devices: injected raw). veth's
    // receive path moves the tag out of the frame; the bridge must forward it tagged, and
    // the frame must reach the server's veth byte for byte.
    let mut watch = open_in(&s, config(kind, 1), Topology::Tap(vec!["pcx-p3".into()]));
    let tagged: Vec<Vec<u8>> = (0..V).map(vlan_frame).collect();
    let to_send = tagged.clone();
    c.spawn(move || support::netns::send_raw("pcx-p0", &to_send)).join().unwrap().expect("inject tagged frames");
    let mut arrived = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while arrived.len() < V && Instant::now() < deadline {
        watch[0]
            .poll(64, Duration::from_millis(10), |fs, _| {
                for f in fs {
                    if parse(f.data).is_some_and(|p| p.dst.1 == 7003) {
                        arrived.push(f.data.to_vec());
                    }
                }
            })
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let log = bridge.join().expect("bridge");

    let expected: BTreeSet<Vec<u8>> = (0..N).map(|i| datagram("u7000", i)).collect();
    assert_eq!(got0.iter().cloned().collect::<BTreeSet<_>>(), expected, "{kind}: UDP to 7000 arrives unmodified");
    assert_eq!(got0.len(), N);
    assert_eq!(echoes.iter().cloned().collect::<BTreeSet<_>>(), expected, "{kind}: UDP echoes come back unmodified");
    assert_eq!(got1, 0, "{kind}: the verdict dropped every datagram to 7001");
    assert_eq!(tcp_total, TCP_BYTES);
    assert!(back == sent, "{kind}: TCP echo differs ({} of {} bytes back)", back.len(), sent.len());
    assert!(big_got == big, "{kind}: a fragmented datagram arrives whole ({} bytes)", big_got.len());
    assert!(big_back == big, "{kind}: and comes back whole ({} bytes)", big_back.len());
    assert_eq!((log.vlan_tagged, log.vlan_lost), (V as u64, 0), "{kind}: the bridge saw every VLAN frame tagged");
    assert!(arrived == tagged, "{kind}: tagged frames forwarded byte for byte ({} of {V} arrived)", arrived.len());
    assert_eq!(log.verdict_drops, N as u64, "{kind}: each 7001 datagram seen once");
    assert_eq!(log.stats.dropped, N as u64, "{kind}: exactly the rejected frames dropped");
    assert!(log.stats.forwarded >= 2 * N as u64 + 10, "{kind}: {:?}", log.stats);
    assert_eq!(log.stats.packets, log.stats.forwarded + log.stats.dropped + log.stats.tx_failed);
    if threads > 1 {
        // Both directions of a flow on the same port, across the two interfaces' groups.
        for (flow, ks) in &log.flows {
            assert_eq!(ks.len(), 1, "{kind}: flow {flow:?} seen by ports {ks:?}");
        }
    }
    eprintln!("{kind} inline x{threads}: {:?}", log.stats);
}

#[test]
fn afpacket_inline_forwards_and_drops() {
    if can_run("afpacket_inline_forwards_and_drops") {
        inline_forwards_and_drops(CaptureKind::AfPacket, 2);
    }
}

#[test]
fn pcap_inline_forwards_and_drops() {
    if can_run("pcap_inline_forwards_and_drops") {
        inline_forwards_and_drops(CaptureKind::Pcap, 1);
    }
}
