//! The XDP program in network namespaces the tests create: a veth pair between a sender
//! namespace (`…a`) and a receiver namespace (`…b`) where the program is attached. Traffic
//! only ever goes between those two namespaces.
//!
//! Needs root (CAP_NET_ADMIN, CAP_BPF) and `ip`; each test says why when it cannot run.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use portcullis_common::xdp::xdp_stat;
use portcullis_dataplane::live::xdp::XdpProgram;
use portcullis_dataplane::live::{LiveError, Topology, XdpMode};

const A4: &str = "10.213.77.1";
const B4: &str = "10.213.77.2";
const A6: &str = "fd00:213:77::1";
const B6: &str = "fd00:213:77::2";
/// The receiver's end of the veth (inside namespace b, so the name cannot clash).
const IF_B: &str = "pcx-xb";
const IF_A: &str = "pcx-xa";

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("running ip: {e}"))?;
    if !out.status.success() {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Two namespaces joined by a veth; deletes both (and so the veth) when dropped, also when
/// the test panics.
struct NetnsPair {
    a: String,
    b: String,
}

impl NetnsPair {
    fn new() -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = format!("pcx-xdp-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let pair = NetnsPair { a: format!("{base}a"), b: format!("{base}b") };
        ip(&["netns", "add", &pair.a])?;
        ip(&["netns", "add", &pair.b])?;
        // Created inside namespace a with its peer moved straight into b: nothing ever
        // appears in the host's namespace.
        ip(&["-n", &pair.a, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B, "netns", &pair.b])?;
        for (ns, ifc, v4, v6) in [(&pair.a, IF_A, A4, A6), (&pair.b, IF_B, B4, B6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifc])?;
            // nodad: usable at once instead of after duplicate address detection.
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", ifc, "nodad"])?;
            ip(&["-n", ns, "link", "set", ifc, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// `ip link show` of the receiver's veth end.
    fn link_b(&self) -> String {
        ip(&["-n", &self.b, "link", "show", IF_B]).unwrap_or_else(|e| e)
    }

    /// Whether `ip link` shows an XDP program on the receiver's end: `xdp`/`xdpgeneric` in
    /// the flags line, `prog/xdp id N` below it.
    fn xdp_on_b(&self) -> bool {
        self.link_b().split_whitespace().any(|w| w.starts_with("xdp") || w.starts_with("prog/xdp"))
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`. Sockets it creates stay in
/// that namespace; the XDP program it attaches is attached there.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(ns);
            f()
        })
        .join()
        .expect("thread in the namespace panicked")
    })
}

#[allow(unsafe_code)] // setns has no safe wrapper in std or libc; this is its only call.
fn enter_netns(ns: &str) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("opening the namespace");
    // SAFETY: `file` is an open namespace file that outlives the call; setns only changes
    // this (throwaway) thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

/// Why these tests cannot run here, if they cannot.
fn cannot_run() -> Option<String> {
    // Root is what `ip netns add` and BPF need.
    if !is_root() {
        return Some("not root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the ip command is missing".into());
    }
    None
}

fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective…"
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Sets up the namespaces and attaches the program in b, or says why the test is skipped.
fn setup(mode: XdpMode, redirect: bool) -> Option<(NetnsPair, XdpProgram)> {
    if let Some(why) = cannot_run() {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let pair = NetnsPair::new().expect("creating the namespaces");
    let topo = Topology::Tap(vec![IF_B.to_string()]);
    match in_netns(&pair.b, || XdpProgram::attach(&topo, mode, redirect)) {
        Ok(p) => Some((pair, p)),
        Err(e @ LiveError::NotBuilt(..)) => {
            eprintln!("SKIPPED: {e}");
            None
        }
        // Missing kernel support shows as EOPNOTSUPP/EINVAL from the attach; anything else
        // (a verifier rejection, a map that does not load) is a bug and fails the test.
        Err(e) if e.to_string().contains("not supported") => {
            eprintln!("SKIPPED: this kernel cannot attach XDP here: {e}");
            None
        }
        Err(e) => panic!("attaching: {e}"),
    }
}

struct Udp {
    tx: UdpSocket,
    rx: UdpSocket,
    dst: SocketAddr,
}

impl Udp {
    fn new(pair: &NetnsPair, src: &str, dst: &str) -> Self {
        let rx = in_netns(&pair.b, || UdpSocket::bind((dst.parse::<IpAddr>().unwrap(), 0)).unwrap());
        let tx = in_netns(&pair.a, || UdpSocket::bind((src.parse::<IpAddr>().unwrap(), 0)).unwrap());
        rx.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let dst = rx.local_addr().unwrap();
        let u = Udp { tx, rx, dst };
        // Neighbour resolution (and, for IPv6, the link settling) before counting anything.
        let start = Instant::now();
        while u.burst(1, 64) == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "traffic does not flow before anything is blocked");
        }
        assert_eq!(u.burst(3, 64), 3, "traffic does not flow before anything is blocked");
        u
    }

    /// Sends `n` datagrams of `len` bytes and returns how many arrived (within 300 ms of the
    /// last one).
    fn burst(&self, n: usize, len: usize) -> usize {
        let tag: u32 = rand_tag();
        let mut payload = vec![0u8; len];
        payload[..4].copy_from_slice(&tag.to_be_bytes());
        for _ in 0..n {
            self.tx.send_to(&payload, self.dst).unwrap();
        }
        let mut got = 0;
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline && got < n {
            match self.rx.recv_from(&mut buf) {
                Ok((k, _)) if k == len && buf[..4] == tag.to_be_bytes() => got += 1,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        got
    }
}

fn rand_tag() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    (std::process::id() << 8) ^ N.fetch_add(1, Ordering::Relaxed) ^ 0x5a5a_0000
}

/// Whether one echo request from a to `dst` is answered; `None` when ping is not installed.
fn ping(pair: &NetnsPair, dst: &str) -> Option<bool> {
    if Command::new("ping").arg("-V").output().is_err() {
        eprintln!("ping is not installed (iputils-ping): checking UDP only");
        return None;
    }
    let ok = Command::new("ip")
        .args(["netns", "exec", &pair.a, "ping", "-c", "1", "-W", "1", dst])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    Some(ok)
}

#[test]
fn attach_and_detach_leave_nothing_behind() {
    let Some((pair, prog)) = setup(XdpMode::Auto, false) else { return };
    let shown = pair.link_b();
    let mode = prog.mode(IF_B).expect("attached to pcx-xb");
    eprintln!("attached: {} ({mode:?}); ip link: {}", prog.describe(), shown.lines().next().unwrap_or(""));
    assert!(pair.xdp_on_b(), "ip link shows no program while attached: {shown}");
    assert!(prog.describe().ends_with("mode on pcx-xb"), "{}", prog.describe());
    assert_eq!(prog.mode("pcx-nope"), None);
    drop(prog);
    assert!(!pair.xdp_on_b(), "a program remains after drop: {}", pair.link_b());

    // Generic mode explicitly, which ip shows as xdpgeneric.
    let topo = Topology::Tap(vec![IF_B.to_string()]);
    let prog = in_netns(&pair.b, || XdpProgram::attach(&topo, XdpMode::Generic, true)).expect("generic attach");
    assert_eq!(prog.mode(IF_B), Some(XdpMode::Generic));
    assert!(pair.link_b().split_whitespace().any(|w| w == "xdpgeneric"), "{}", pair.link_b());
    drop(prog);
    assert!(!pair.xdp_on_b(), "a program remains after drop: {}", pair.link_b());

    // An interface that does not exist is an error naming it, not a panic.
    let topo = Topology::Tap(vec!["pcx-xmissing".to_string()]);
    let err = in_netns(&pair.b, || XdpProgram::attach(&topo, XdpMode::Auto, false)).unwrap_err();
    assert!(err.to_string().contains("pcx-xmissing"), "{err}");
}

#[test]
fn blocking_ipv4_drops_in_the_kernel_and_unblocking_restores() {
    let Some((pair, prog)) = setup(XdpMode::Auto, false) else { return };
    let udp = Udp::new(&pair, A4, B4);
    let pings = ping(&pair, B4).is_some();
    assert_ne!(ping(&pair, B4), Some(false), "ping before blocking");
    let bl = prog.blocklist();
    let a: IpAddr = A4.parse().unwrap();
    let before = prog.stats().unwrap();

    bl.block(a, None).unwrap();
    let listed = bl.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].ip, listed[0].expires_in, listed[0].hits), (a, None, 0));

    const N: usize = 20;
    const LEN: usize = 100;
    assert_eq!(udp.burst(N, LEN), 0, "datagrams from a blocked source arrived");
    let e = bl.list().unwrap()[0];
    // Only our datagrams come from this address (ARP is not IP, and is not counted).
    assert_eq!(e.hits, N as u64, "hits");
    assert_eq!(e.bytes, (N * (14 + 20 + 8 + LEN)) as u64, "bytes: whole Ethernet frames");
    let after = prog.stats().unwrap();
    assert!(after[xdp_stat::BLOCKED as usize] - before[xdp_stat::BLOCKED as usize] >= N as u64, "{after:?}");
    if pings {
        assert_eq!(ping(&pair, B4), Some(false), "ping from a blocked source got an answer");
        assert!(bl.list().unwrap()[0].hits > N as u64, "the echo request was not counted");
    }

    // Blocking again keeps the counters.
    bl.block(a, None).unwrap();
    assert!(bl.list().unwrap()[0].hits >= N as u64);

    assert!(bl.unblock(a).unwrap());
    assert!(!bl.unblock(a).unwrap(), "unblocking twice");
    assert!(bl.list().unwrap().is_empty());
    assert_eq!(udp.burst(N, LEN), N, "traffic after unblocking");
    assert_ne!(ping(&pair, B4), Some(false), "ping after unblocking");
    let end = prog.stats().unwrap();
    assert!(end[xdp_stat::PASSED as usize] > after[xdp_stat::PASSED as usize] + N as u64 - 1, "{end:?}");
    assert_eq!(end[xdp_stat::REDIRECTED as usize], 0, "redirect is off");

    // Blocking the other side's address changes nothing for this one.
    bl.block(B4.parse().unwrap(), None).unwrap();
    assert_eq!(udp.burst(N, LEN), N, "blocking another address dropped ours");
}

#[test]
fn an_expired_entry_stops_dropping_and_is_swept() {
    let Some((pair, prog)) = setup(XdpMode::Auto, false) else { return };
    let udp = Udp::new(&pair, A4, B4);
    let bl = prog.blocklist();
    let a: IpAddr = A4.parse().unwrap();
    let forever: IpAddr = "192.0.2.9".parse().unwrap();
    bl.block(a, Some(Duration::from_secs(1))).unwrap();
    bl.block(forever, None).unwrap();
    let left = bl.list().unwrap().iter().find(|b| b.ip == a).unwrap().expires_in.unwrap();
    assert!(left > Duration::from_millis(800) && left <= Duration::from_secs(1), "{left:?}");

    assert_eq!(udp.burst(10, 64), 0, "dropped while the entry is live");
    assert!(bl.sweep().unwrap().is_empty(), "swept before expiry");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(udp.burst(10, 64), 10, "an expired entry still drops");
    assert_eq!(bl.list().unwrap().iter().find(|b| b.ip == a).unwrap().expires_in, Some(Duration::ZERO));
    let swept = bl.sweep().unwrap();
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!((swept[0].ip, swept[0].hits), (a, 10));
    let rest = bl.list().unwrap();
    assert_eq!(rest.iter().map(|b| b.ip).collect::<Vec<_>>(), vec![forever], "sweep kept the permanent entry");
}

#[test]
fn blocking_ipv6_drops_too() {
    let Some((pair, prog)) = setup(XdpMode::Auto, false) else { return };
    let udp = Udp::new(&pair, A6, B6);
    let bl = prog.blocklist();
    let a: IpAddr = A6.parse().unwrap();
    // The IPv4 address of the same host does not block its IPv6 traffic.
    bl.block(A4.parse().unwrap(), None).unwrap();
    assert_eq!(udp.burst(10, 64), 10);
    bl.block(a, None).unwrap();
    assert_eq!(udp.burst(10, 64), 0, "datagrams from a blocked IPv6 source arrived");
    let e = bl.list().unwrap().into_iter().find(|b| b.ip == a).unwrap();
    // Neighbour discovery from the same address may add to our ten.
    assert!(e.hits >= 10, "{e:?}");
    assert!(prog.stats().unwrap()[xdp_stat::BLOCKED as usize] >= 10);
    assert!(bl.unblock(a).unwrap());
    assert_eq!(udp.burst(10, 64), 10, "traffic after unblocking");
}

#[test]
fn redirect_without_a_socket_passes_to_the_stack() {
    let Some((pair, prog)) = setup(XdpMode::Auto, true) else { return };
    let udp = Udp::new(&pair, A4, B4);
    let before = prog.stats().unwrap();
    assert_eq!(udp.burst(10, 64), 10, "frames for a queue without a socket were lost");
    let after = prog.stats().unwrap();
    assert!(after[xdp_stat::PASSED as usize] >= before[xdp_stat::PASSED as usize] + 10, "{after:?}");
    assert_eq!(after[xdp_stat::REDIRECTED as usize], 0);

    let mut prog = prog;
    let err = prog.register_socket("pcx-xother", 0, 0).unwrap_err();
    assert!(err.to_string().contains("pcx-xother"), "{err}");
    let err = prog.register_socket(IF_B, 64, 0).unwrap_err();
    assert!(err.to_string().contains("queue 64"), "{err}");
    // Not an AF_XDP socket: the kernel refuses it, and says so as an error.
    let not_xsk = UdpSocket::bind("127.0.0.1:0").unwrap();
    use std::os::fd::AsRawFd;
    let err = prog.register_socket(IF_B, 0, not_xsk.as_raw_fd()).unwrap_err();
    assert!(err.to_string().contains("pcx-xb queue 0"), "{err}");
    prog.unregister_socket(IF_B, 0).unwrap();
}

/// Sends `frame` as is on the sender's veth end (an AF_PACKET socket in namespace a): for
/// tagged and truncated frames, which this kernel's stack (no 802.1Q module) cannot make.
fn inject(pair: &NetnsPair, frames: &[Vec<u8>]) {
    in_netns(&pair.a, || inject_here(frames));
}

#[allow(unsafe_code)] // socket and bind on a packet socket have no safe wrapper; only here.
fn inject_here(frames: &[Vec<u8>]) {
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};
    let name = std::ffi::CString::new(IF_A).unwrap();
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert_ne!(ifindex, 0, "{IF_A} not found");
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data, for which all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        use std::os::fd::AsRawFd;
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    let mut sock = std::fs::File::from(fd);
    for f in frames {
        sock.write_all(f).expect("sending a frame");
    }
}

/// An Ethernet frame with `tags` (TPID, VLAN id) from `src` carrying UDP, or an IP header cut
/// short when `truncate`.
fn frame(tags: &[(u16, u16)], src: IpAddr, truncate: bool) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    for &(tpid, id) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    let udp = [0x30, 0x39, 0x30, 0x39, 0, 8 + 4, 0, 0, b'p', b'c', b'x', b'!'];
    match src {
        IpAddr::V4(a) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut h = vec![0x45, 0, 0, 20 + 12, 0, 0, 0, 0, 64, 17, 0, 0];
            h.extend_from_slice(&a.octets());
            h.extend_from_slice(&[10, 213, 77, 2]);
            f.extend_from_slice(if truncate { &h[..10] } else { &h });
        }
        IpAddr::V6(a) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            let mut h = vec![0x60, 0, 0, 0, 0, 12, 17, 64];
            h.extend_from_slice(&a.octets());
            h.extend_from_slice(&B6.parse::<std::net::Ipv6Addr>().unwrap().octets());
            f.extend_from_slice(if truncate { &h[..30] } else { &h });
        }
    }
    if !truncate {
        f.extend_from_slice(&udp);
    }
    f
}

#[test]
fn tagged_and_truncated_frames() {
    let Some((pair, prog)) = setup(XdpMode::Auto, false) else { return };
    let bl = prog.blocklist();
    // Addresses nobody in the namespaces uses, so every hit is one of our frames.
    let v4: IpAddr = "198.51.100.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::7".parse().unwrap();
    bl.block(v4, None).unwrap();
    bl.block(v6, None).unwrap();
    let hits = |ip: IpAddr| bl.list().unwrap().into_iter().find(|b| b.ip == ip).map_or(0, |b| b.hits);
    let stat = |i: u32| prog.stats().unwrap()[i as usize];
    let (q, ad) = (0x8100u16, 0x88a8u16);

    for (tags, what) in [(&[][..], "untagged"), (&[(q, 7)][..], "802.1Q"), (&[(ad, 100), (q, 8)][..], "QinQ")] {
        for ip in [v4, v6] {
            let (h0, b0) = (hits(ip), stat(xdp_stat::BLOCKED));
            inject(&pair, &vec![frame(tags, ip, false); 5]);
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(hits(ip) - h0, 5, "{what} frames from {ip}");
            assert_eq!(stat(xdp_stat::BLOCKED) - b0, 5, "{what} frames from {ip}");
        }
    }
    // Three tags are more than the program looks through: not IP to it, so not blocked.
    let h0 = hits(v4);
    inject(&pair, &vec![frame(&[(ad, 1), (q, 2), (q, 3)], v4, false); 5]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(hits(v4), h0, "a frame with three tags was parsed as IP");

    // Headers cut short: counted as malformed, never as a hit.
    let m0 = stat(xdp_stat::MALFORMED);
    let mut short = vec![frame(&[], v4, true), frame(&[(q, 7)], v6, true)];
    short.push(frame(&[(ad, 100)], v4, true)[..16].to_vec()); // ends inside the tag
    inject(&pair, &short);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(stat(xdp_stat::MALFORMED) - m0, 3);
    assert_eq!(hits(v4), h0);
}
