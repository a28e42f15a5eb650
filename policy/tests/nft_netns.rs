//! The nftables enforcer against the kernel, in network namespaces the tests create (root
//! only; each test says so and passes when it cannot run). The enforcer's socket is opened by
//! a thread inside the namespace, so its table lives there; `nft` (run in the namespace) is
//! only used to look at the result.
//!
//! Covered: install builds the documented ruleset; apply adds elements with their timeouts,
//! they expire by themselves, remove works (also of an absent element), a re-add restarts the
//! timeout on both refresh paths; a refused install or apply changes nothing and names what was
//! refused; re-install replaces; flush removes only our table; status; EPERM names
//! CAP_NET_ADMIN. Functional: across a veth pair, a blocked source's UDP is dropped (and
//! counted), a rate-limited source gets about rate × 1 s + burst through.

#[path = "../../dataplane/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use netns::{can_run, veth, Netns};
use portcullis_policy::nft::{Net, Nft, NftConfig, Op, RateLimit, RateUnit, SetKind, TimeoutRefresh};

/// Root, iproute2, and the enforcer compiled in.
fn runnable(test: &str) -> bool {
    if !cfg!(feature = "nftables") {
        eprintln!("skipping {test}: built without the `nftables` feature");
        return false;
    }
    can_run(test)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config() -> NftConfig {
    NftConfig {
        priority: -10,
        rate_limits: vec![
            RateLimit { name: "flood".into(), unit: RateUnit::Packets, per_second: 10, burst: 5 },
            RateLimit { name: "bulk".into(), unit: RateUnit::Bytes, per_second: 125_000, burst: 0 },
        ],
    }
}

fn allowlist() -> Vec<Net> {
    vec![
        Net { addr: ip("10.0.0.0"), prefix: 8 },
        Net { addr: ip("192.168.1.5"), prefix: 32 },
        Net { addr: ip("fd00::"), prefix: 8 },
    ]
}

/// Runs `f` on a thread inside `ns` and returns its result (re-raising its panic).
fn in_ns<R: Send + 'static>(ns: &Netns, f: impl FnOnce() -> R + Send + 'static) -> R {
    ns.spawn(f).join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// An enforcer whose socket (and so whose table) is in `ns`.
fn open_in(ns: &Netns) -> Nft {
    in_ns(ns, Nft::open).expect("open the nftables socket")
}

/// `nft ARGS...` in `ns`, its standard output.
fn nft(ns: &Netns, args: &[&str]) -> String {
    let mut cmd = vec!["nft"];
    cmd.extend_from_slice(args);
    String::from_utf8(ns.exec(&cmd).expect("nft").stdout).unwrap()
}

/// The lines of `text`, trimmed, without blank ones.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn set_listing(ns: &Netns, set: &str) -> String {
    nft(ns, &["list", "set", "inet", "portcullis", set])
}

#[test]
fn install_builds_the_documented_ruleset() {
    if !runnable("install_builds_the_documented_ruleset") {
        return;
    }
    let ns = Netns::new("nfti").unwrap();
    let mut nft_ = open_in(&ns);
    nft_.install(&config(), &allowlist(), &[]).unwrap();
    let listing = nft(&ns, &["list", "table", "inet", "portcullis"]);
    let got = lines(&listing);

    // Counters, in the order the kernel lists them (creation order).
    let counters: Vec<&str> =
        got.iter().filter_map(|l| l.strip_prefix("counter ").and_then(|l| l.strip_suffix(" {"))).collect();
    assert_eq!(
        counters,
        ["block4", "block6", "quarantine4", "quarantine6", "rl4_bulk", "rl4_flood", "rl6_bulk", "rl6_flood"],
        "{listing}"
    );

    // Each set: the lines between `set NAME {` and its `}`.
    let set_body = |name: &str| -> Vec<String> {
        let start = got
            .iter()
            .position(|l| *l == format!("set {name} {{"))
            .unwrap_or_else(|| panic!("no set {name}:\n{listing}"));
        got[start + 1..].iter().take_while(|l| *l != "}").cloned().collect()
    };
    assert_eq!(set_body("allow4"), ["type ipv4_addr", "flags interval", "elements = { 10.0.0.0/8, 192.168.1.5 }"]);
    assert_eq!(set_body("allow6"), ["type ipv6_addr", "flags interval", "elements = { fd00::/8 }"]);
    for fam in ["4", "6"] {
        let ty = if fam == "4" { "type ipv4_addr" } else { "type ipv6_addr" };
        for s in ["block", "quarantine", "rl_flood", "rl_bulk"] {
            let name = if let Some(p) = s.strip_prefix("rl_") { format!("rl{fam}_{p}") } else { format!("{s}{fam}") };
            assert_eq!(set_body(&name), [ty, "flags timeout"], "set {name}");
        }
        for p in ["flood", "bulk"] {
            assert_eq!(set_body(&format!("m{fam}_{p}")), [ty, "size 65535", "flags dynamic,timeout", "timeout 1m"]);
        }
    }

    // Both chains: header and rules, in order.
    let rules = |fam: &str, ip: &str| -> Vec<String> {
        vec![
            format!("{ip} saddr @allow{fam} accept"),
            format!("{ip} saddr @quarantine{fam} {ip} daddr @allow{fam} accept"),
            format!("{ip} saddr @quarantine{fam} counter name \"quarantine{fam}\" drop"),
            format!("{ip} daddr @quarantine{fam} counter name \"quarantine{fam}\" drop"),
            format!("{ip} saddr @block{fam} counter name \"block{fam}\" drop"),
            // nft prints the packet default burst (5) only when it differs.
            format!(
                "{ip} saddr @rl{fam}_flood update @m{fam}_flood {{ {ip} saddr limit rate over 10/second }} counter name \"rl{fam}_flood\" drop"
            ),
            format!(
                "{ip} saddr @rl{fam}_bulk update @m{fam}_bulk {{ {ip} saddr limit rate over 125000 bytes/second }} counter name \"rl{fam}_bulk\" drop"
            ),
        ]
    };
    for (chain, hook) in [("input", "input"), ("forward", "forward")] {
        let start =
            got.iter().position(|l| *l == format!("chain {chain} {{")).unwrap_or_else(|| panic!("no chain {chain}"));
        let body: Vec<String> = got[start + 1..].iter().take_while(|l| *l != "}").cloned().collect();
        let mut want = vec![format!("type filter hook {hook} priority filter - 10; policy accept;")];
        want.extend(rules("4", "ip"));
        want.extend(rules("6", "ip6"));
        assert_eq!(body, want, "chain {chain}:\n{listing}");
    }
    // Nothing else: 8 counters, 14 sets, 2 chains.
    assert_eq!(got.iter().filter(|l| l.starts_with("set ")).count(), 14, "{listing}");
    assert_eq!(got.iter().filter(|l| l.starts_with("chain ")).count(), 2, "{listing}");
    // The timeout check's set is gone, and it found how this kernel refreshes timeouts.
    assert!(!listing.contains("refresh_probe"));
    eprintln!("timeout refresh on this kernel: {:?}", nft_.timeout_refresh());
    assert!(nft_.timeout_refresh().is_some());
}

#[test]
fn elements_get_their_timeouts_expire_and_can_be_removed() {
    if !runnable("elements_get_their_timeouts_expire_and_can_be_removed") {
        return;
    }
    let ns = Netns::new("nfte").unwrap();
    let mut nft_ = open_in(&ns);
    nft_.install(&config(), &[], &[(SetKind::Block, ip("10.1.1.9"), Duration::from_secs(300))]).unwrap();
    assert!(set_listing(&ns, "block4").contains("10.1.1.9 timeout 5m expires"), "{}", set_listing(&ns, "block4"));

    let add = |set, a: &str, secs| Op::Add { set, addr: ip(a), timeout: Duration::from_secs(secs) };
    nft_.apply(&[
        add(SetKind::Block, "10.1.1.1", 2),
        add(SetKind::Block, "2001:db8::1", 2),
        add(SetKind::Quarantine, "::ffff:10.2.2.2", 60),
        add(SetKind::RateLimit(0), "10.3.3.3", 60),
        add(SetKind::RateLimit(1), "2001:db8::3", 60),
    ])
    .unwrap();
    let b4 = set_listing(&ns, "block4");
    assert!(b4.contains("10.1.1.1 timeout 2s expires"), "{b4}");
    assert!(set_listing(&ns, "block6").contains("2001:db8::1 timeout 2s expires"));
    // The mapped address went to the IPv4 set.
    assert!(set_listing(&ns, "quarantine4").contains("10.2.2.2 timeout 1m expires"));
    assert!(!set_listing(&ns, "quarantine6").contains("10.2.2.2"));
    assert!(set_listing(&ns, "rl4_flood").contains("10.3.3.3 timeout 1m expires"));
    assert!(set_listing(&ns, "rl6_bulk").contains("2001:db8::3 timeout 1m expires"));

    // Remove, and remove of an absent element in the same call as an add.
    nft_.apply(&[
        Op::Remove { set: SetKind::Block, addr: ip("10.1.1.9") },
        Op::Remove { set: SetKind::Block, addr: ip("10.99.99.99") },
        Op::Remove { set: SetKind::Quarantine, addr: ip("2001:db8::77") },
        add(SetKind::Block, "10.1.1.2", 60),
    ])
    .unwrap();
    let b4 = set_listing(&ns, "block4");
    assert!(!b4.contains("10.1.1.9") && b4.contains("10.1.1.2 timeout 1m"), "{b4}");
    // Removing what was never there changes nothing.
    nft_.apply(&[Op::Remove { set: SetKind::Block, addr: ip("10.99.99.98") }]).unwrap();

    // The kernel deletes the 2 s elements by itself.
    std::thread::sleep(Duration::from_millis(3000));
    let b4 = set_listing(&ns, "block4");
    assert!(!b4.contains("10.1.1.1 ") && b4.contains("10.1.1.2"), "{b4}");
    assert!(!set_listing(&ns, "block6").contains("2001:db8::1"));
    assert!(set_listing(&ns, "quarantine4").contains("10.2.2.2"));
}

#[test]
fn readd_restarts_the_timeout_on_both_paths() {
    if !runnable("readd_restarts_the_timeout_on_both_paths") {
        return;
    }
    let ns = Netns::new("nftr").unwrap();
    let mut nft_ = open_in(&ns);
    nft_.install(&config(), &[], &[]).unwrap();
    let detected = nft_.timeout_refresh().unwrap();
    for refresh in [TimeoutRefresh::InPlace, TimeoutRefresh::Recreate] {
        if refresh == TimeoutRefresh::InPlace && detected == TimeoutRefresh::Recreate {
            eprintln!("this kernel keeps an element's old timeout on re-add: not testing InPlace");
            continue;
        }
        nft_.set_timeout_refresh(refresh);
        let a = ip("10.5.5.5");
        let add = |secs| Op::Add { set: SetKind::Block, addr: a, timeout: Duration::from_secs(secs) };
        let timeout_of = |nft_: &mut Nft| {
            let st = nft_.status().unwrap();
            let e = st.elements.iter().find(|e| e.addr == a && e.set == "block4");
            e.map(|e| (e.timeout, e.expires))
        };
        // Longer to shorter.
        nft_.apply(&[add(3600)]).unwrap();
        nft_.apply(&[add(2)]).unwrap();
        let (timeout, expires) = timeout_of(&mut nft_).expect("element present");
        assert_eq!(timeout, Some(Duration::from_secs(2)), "{refresh:?}");
        assert!(expires.unwrap() <= Duration::from_secs(2), "{refresh:?}: {expires:?}");
        // Shorter to longer: still there after the first timeout would have ended.
        nft_.apply(&[add(60)]).unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        let (timeout, expires) = timeout_of(&mut nft_).expect("element kept by its new timeout");
        assert_eq!(timeout, Some(Duration::from_secs(60)), "{refresh:?}");
        assert!(expires.unwrap() > Duration::from_secs(50), "{refresh:?}: {expires:?}");
        nft_.apply(&[Op::Remove { set: SetKind::Block, addr: a }]).unwrap();
        assert_eq!(timeout_of(&mut nft_), None);

        // The same element twice in one call: the ops apply in order.
        nft_.apply(&[add(3600), add(30)]).unwrap();
        assert_eq!(timeout_of(&mut nft_).unwrap().0, Some(Duration::from_secs(30)), "{refresh:?}: last add wins");
        nft_.apply(&[add(3600), Op::Remove { set: SetKind::Block, addr: a }]).unwrap();
        assert_eq!(timeout_of(&mut nft_), None, "{refresh:?}: add then remove");
        nft_.apply(&[Op::Remove { set: SetKind::Block, addr: a }, add(40)]).unwrap();
        assert_eq!(timeout_of(&mut nft_).unwrap().0, Some(Duration::from_secs(40)), "{refresh:?}: remove then add");
        nft_.apply(&[Op::Remove { set: SetKind::Block, addr: a }]).unwrap();
    }
}

#[test]
fn refused_changes_change_nothing_and_reinstall_replaces() {
    if !runnable("refused_changes_change_nothing_and_reinstall_replaces") {
        return;
    }
    let ns = Netns::new("nfta").unwrap();
    let mut nft_ = open_in(&ns);
    let cfg_a = NftConfig {
        priority: -10,
        rate_limits: vec![RateLimit { name: "a".into(), unit: RateUnit::Packets, per_second: 100, burst: 0 }],
    };
    let hour = Duration::from_secs(3600);
    // Beyond what the kernel accepts as a timeout (2^64 ns).
    let absurd = Duration::from_secs(100_000_000_000);
    nft_.install(
        &cfg_a,
        &allowlist(),
        &[(SetKind::Block, ip("10.0.5.1"), hour), (SetKind::RateLimit(0), ip("10.0.5.2"), hour)],
    )
    .unwrap();

    // A refused apply: the error names the op; the op before it did not happen.
    let err = nft_
        .apply(&[
            Op::Add { set: SetKind::Block, addr: ip("10.0.5.3"), timeout: hour },
            Op::Add { set: SetKind::Block, addr: ip("10.0.5.4"), timeout: absurd },
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("add 10.0.5.4 to block4") && err.contains("op 2 of 2"), "{err}");
    assert!(!set_listing(&ns, "block4").contains("10.0.5.3"));

    // A refused install: the old table stays whole.
    let cfg_b = NftConfig {
        priority: 5,
        rate_limits: vec![RateLimit { name: "b".into(), unit: RateUnit::Bytes, per_second: 1000, burst: 100 }],
    };
    let err = nft_.install(&cfg_b, &[], &[(SetKind::Block, ip("10.0.6.1"), absurd)]).unwrap_err().to_string();
    assert!(err.contains("set block4"), "{err}");
    let listing = nft(&ns, &["list", "table", "inet", "portcullis"]);
    assert!(listing.contains("set rl4_a") && !listing.contains("rl4_b"), "{listing}");
    assert!(
        listing.contains("10.0.5.1") && listing.contains("10.0.5.2") && listing.contains("10.0.0.0/8"),
        "{listing}"
    );
    assert!(listing.contains("priority filter - 10;"));
    assert_eq!(nft_.config(), Some(&cfg_a));

    // Re-install replaces everything.
    nft_.install(&cfg_b, &[Net { addr: ip("172.16.0.0"), prefix: 12 }], &[(SetKind::Quarantine, ip("10.0.6.2"), hour)])
        .unwrap();
    let listing = nft(&ns, &["list", "table", "inet", "portcullis"]);
    assert!(!listing.contains("rl4_a") && listing.contains("set rl4_b") && listing.contains("set m6_b"), "{listing}");
    assert!(!listing.contains("10.0.5.1") && !listing.contains("10.0.0.0/8"), "{listing}");
    assert!(listing.contains("172.16.0.0/12") && listing.contains("10.0.6.2"), "{listing}");
    assert!(listing.contains("priority filter + 5;"), "{listing}");
    assert_eq!(nft_.config(), Some(&cfg_b));
    // Still exactly one table of ours.
    assert_eq!(nft(&ns, &["list", "tables"]).matches("table inet portcullis").count(), 1);
}

#[test]
fn flush_removes_only_our_table() {
    if !runnable("flush_removes_only_our_table") {
        return;
    }
    let ns = Netns::new("nftf").unwrap();
    ns.exec(&["nft", "add", "table", "inet", "other"]).unwrap();
    ns.exec(&["nft", "add", "set", "inet", "other", "block4", "{ type ipv4_addr; }"]).unwrap();
    let mut nft_ = open_in(&ns);
    assert!(!nft_.flush().unwrap(), "no table yet");
    nft_.install(&config(), &allowlist(), &[]).unwrap();
    assert_eq!(lines(&nft(&ns, &["list", "tables"])), ["table inet other", "table inet portcullis"]);
    assert!(nft_.flush().unwrap());
    assert_eq!(lines(&nft(&ns, &["list", "tables"])), ["table inet other"]);
    assert!(nft(&ns, &["list", "table", "inet", "other"]).contains("set block4"));
    assert!(!nft_.flush().unwrap());
}

#[test]
fn status_reads_the_table_back() {
    if !runnable("status_reads_the_table_back") {
        return;
    }
    let ns = Netns::new("nfts").unwrap();
    let mut nft_ = open_in(&ns);
    let st = nft_.status().unwrap();
    assert!(!st.present && st.elements.is_empty() && st.counters.is_empty());

    nft_.install(&config(), &allowlist(), &[(SetKind::Quarantine, ip("2001:db8::5"), Duration::from_secs(600))])
        .unwrap();
    nft_.apply(&[
        Op::Add { set: SetKind::Block, addr: ip("10.7.0.1"), timeout: Duration::from_secs(30) },
        Op::Add { set: SetKind::RateLimit(1), addr: ip("10.7.0.2"), timeout: Duration::from_secs(90) },
    ])
    .unwrap();
    let st = nft_.status().unwrap();
    assert!(st.present);
    let got: Vec<(&str, Option<SetKind>, IpAddr, Option<Duration>)> =
        st.elements.iter().map(|e| (e.set.as_str(), e.kind, e.addr, e.timeout)).collect();
    assert_eq!(
        got,
        [
            ("block4", Some(SetKind::Block), ip("10.7.0.1"), Some(Duration::from_secs(30))),
            ("quarantine6", Some(SetKind::Quarantine), ip("2001:db8::5"), Some(Duration::from_secs(600))),
            ("rl4_bulk", Some(SetKind::RateLimit(1)), ip("10.7.0.2"), Some(Duration::from_secs(90))),
        ]
    );
    for e in &st.elements {
        let (t, left) = (e.timeout.unwrap(), e.expires.unwrap());
        assert!(left <= t && left + Duration::from_secs(5) > t, "{e:?}");
    }
    let names: Vec<&str> = st.counters.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        ["block4", "block6", "quarantine4", "quarantine6", "rl4_bulk", "rl4_flood", "rl6_bulk", "rl6_flood"]
    );
    assert!(st.counters.iter().all(|c| c.1 == 0 && c.2 == 0));
    nft_.flush().unwrap();
    assert!(!nft_.status().unwrap().present);
}

#[test]
fn eperm_says_cap_net_admin() {
    if !runnable("eperm_says_cap_net_admin") {
        return;
    }
    let ns = Netns::new("nftp").unwrap();
    let err = in_ns(&ns, || {
        // Only this thread: the raw system call (unlike libc's wrapper) changes the calling
        // thread's ids, and with uid 0 gone so are its capabilities.
        // SAFETY: setresuid has no memory arguments; the thread ends with this closure.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
        let mut nft_ = Nft::open().expect("opening needs no privilege");
        nft_.install(&config(), &[], &[]).unwrap_err()
    });
    let msg = err.to_string();
    assert!(msg.contains("CAP_NET_ADMIN") && !msg.contains('\n'), "{msg}");
    eprintln!("as nobody: {msg}");
}

const MAC_S: &str = "02:00:00:00:0b:01";
const MAC_R: &str = "02:00:00:00:0b:02";
const SENDER: &str = "10.77.0.1";
const RECEIVER: &str = "10.77.0.2";

/// A sender namespace and a receiver namespace joined by a veth pair.
struct Pair {
    snd: Netns,
    rcv: Netns,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let snd = Netns::new(&format!("{tag}s")).unwrap();
        let rcv = Netns::new(&format!("{tag}r")).unwrap();
        veth(&snd, "v0", &rcv, "v1").unwrap();
        snd.link_up("v0", MAC_S, Some(&format!("{SENDER}/24"))).unwrap();
        rcv.link_up("v1", MAC_R, Some(&format!("{RECEIVER}/24"))).unwrap();
        snd.neigh(RECEIVER, MAC_R, "v0").unwrap();
        rcv.neigh(SENDER, MAC_S, "v1").unwrap();
        Pair { snd, rcv }
    }

    /// Sends `count` UDP datagrams from the sender to the receiver evenly over `over`; returns
    /// how many arrived.
    fn send(&self, count: u32, over: Duration) -> u32 {
        let (bound_tx, bound_rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let done_r = done.clone();
        let receiver = self.rcv.spawn(move || {
            let sock = UdpSocket::bind((RECEIVER, 9000)).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            bound_tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            let mut n = 0;
            let mut idle_since_done: Option<Instant> = None;
            loop {
                match sock.recv(&mut buf) {
                    Ok(_) => n += 1,
                    Err(_) if done_r.load(Ordering::SeqCst) => {
                        // Stop 300 ms after the sender finished.
                        let t = *idle_since_done.get_or_insert_with(Instant::now);
                        if t.elapsed() > Duration::from_millis(300) {
                            return n;
                        }
                    }
                    Err(_) => {}
                }
            }
        });
        bound_rx.recv().unwrap();
        in_ns(&self.snd, move || {
            let sock = UdpSocket::bind((SENDER, 0)).unwrap();
            let start = Instant::now();
            for i in 0..count {
                let due = over * i / count;
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                sock.send_to(&[0x5a; 64], (RECEIVER, 9000)).unwrap();
            }
        });
        done.store(true, Ordering::SeqCst);
        receiver.join().unwrap()
    }
}

fn counter(nft_: &mut Nft, name: &str) -> u64 {
    nft_.status().unwrap().counters.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("no counter {name}")).1
}

#[test]
fn blocked_source_is_dropped() {
    if !runnable("blocked_source_is_dropped") {
        return;
    }
    let pair = Pair::new("nftb");
    let mut nft_ = open_in(&pair.rcv);
    nft_.install(&config(), &[], &[]).unwrap();
    assert_eq!(pair.send(50, Duration::from_millis(200)), 50, "nothing is dropped before a block");

    nft_.apply(&[Op::Add { set: SetKind::Block, addr: ip(SENDER), timeout: Duration::from_secs(60) }]).unwrap();
    assert_eq!(pair.send(50, Duration::from_millis(200)), 0, "a blocked source's datagrams are dropped");
    assert_eq!(counter(&mut nft_, "block4"), 50);

    nft_.apply(&[Op::Remove { set: SetKind::Block, addr: ip(SENDER) }]).unwrap();
    assert_eq!(pair.send(50, Duration::from_millis(200)), 50, "traffic flows again after the remove");

    // An allowlisted source is never blocked.
    nft_.install(
        &config(),
        &[Net { addr: ip("10.77.0.0"), prefix: 30 }],
        &[(SetKind::Block, ip(SENDER), Duration::from_secs(60))],
    )
    .unwrap();
    assert_eq!(pair.send(20, Duration::from_millis(100)), 20, "the allowlist wins over the block");
    assert_eq!(counter(&mut nft_, "block4"), 0);
}

#[test]
fn rate_limited_source_is_limited() {
    if !runnable("rate_limited_source_is_limited") {
        return;
    }
    let pair = Pair::new("nftl");
    let mut nft_ = open_in(&pair.rcv);
    nft_.install(&config(), &[], &[]).unwrap();
    nft_.apply(&[Op::Add { set: SetKind::RateLimit(0), addr: ip(SENDER), timeout: Duration::from_secs(60) }]).unwrap();
    // 200 datagrams in 1 s against 10/s with a burst of 5: about 15 pass.
    let got = pair.send(200, Duration::from_secs(1));
    eprintln!("rate limit 10/s burst 5: {got} of 200 datagrams in 1 s arrived");
    assert!((5..60).contains(&got), "{got} of 200 arrived");
    assert_eq!(counter(&mut nft_, "rl4_flood"), u64::from(200 - got), "every datagram that did not arrive was counted");
    assert_eq!(counter(&mut nft_, "rl4_bulk"), 0);
}
