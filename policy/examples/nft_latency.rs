//! How long `Nft::apply` of one op takes until the kernel's acknowledgement, in a network
//! namespace the example creates (and deletes). Root only.
//!
//! ```text
//! cargo run --release -p portcullis-policy --example nft_latency [OPS]
//! ```
//!
//! For OPS (default 1000) distinct addresses: a new element (`Add`), a re-add of an existing
//! one (timeout refresh) on both refresh paths, and a `Remove`; then an install carrying
//! 10 000 elements, and a `status` reading them back. Percentiles are over single calls.

#[path = "../../dataplane/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use portcullis_policy::nft::{Nft, NftConfig, Op, RateLimit, RateUnit, SetKind, TimeoutRefresh};

fn addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// p50, p99 and max of `f(i)` over `0..n`, each call timed alone.
fn measure(label: &str, n: u32, mut f: impl FnMut(u32)) {
    let mut t: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            f(i);
            start.elapsed()
        })
        .collect();
    t.sort();
    let at = |q: f64| t[((t.len() as f64 * q).ceil() as usize).clamp(1, t.len()) - 1];
    println!(
        "{label:<34} n={n:<6} p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>8.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        t[t.len() - 1].as_secs_f64() * 1e6
    );
}

fn main() {
    if !netns::can_run("nft_latency") {
        std::process::exit(1);
    }
    let ops: u32 = std::env::args().nth(1).map(|a| a.parse().expect("OPS is a number")).unwrap_or(1000);
    let ns = netns::Netns::new("nftlat").expect("create a network namespace");
    let cfg = NftConfig {
        priority: -10,
        rate_limits: vec![RateLimit { name: "flood".into(), unit: RateUnit::Packets, per_second: 100, burst: 10 }],
    };
    // Everything on one thread in the namespace, as the daemon's enforcer thread does.
    let run = ns.spawn(move || {
        let mut nft = Nft::open().expect("open");
        nft.install(&cfg, &[], &[]).expect("install");
        println!("kernel refreshes timeouts: {:?}", nft.timeout_refresh().expect("checked by install"));
        let timeout = Duration::from_secs(600);
        let add = |i| [Op::Add { set: SetKind::Block, addr: addr(i), timeout }];
        let remove = |i| [Op::Remove { set: SetKind::Block, addr: addr(i) }];
        for refresh in [TimeoutRefresh::InPlace, TimeoutRefresh::Recreate] {
            nft.set_timeout_refresh(refresh);
            measure(&format!("apply Add, new ({refresh:?})"), ops, |i| nft.apply(&add(i)).expect("add"));
            measure(&format!("apply Add, existing ({refresh:?})"), ops, |i| nft.apply(&add(i)).expect("re-add"));
            measure("apply Remove", ops, |i| nft.apply(&remove(i)).expect("remove"));
        }
        let batch: Vec<Op> = (0..ops).map(|i| add(i)[0]).collect();
        measure(&format!("apply {ops} Adds in one call"), 5, |_| nft.apply(&batch).expect("batch"));

        let elements: Vec<(SetKind, IpAddr, Duration)> =
            (0..10_000).map(|i| (SetKind::Block, addr(i), timeout)).collect();
        measure("install with 10000 elements", 5, |_| nft.install(&cfg, &[], &elements).expect("install"));
        measure("status of 10000 elements", 5, |_| {
            let st = nft.status().expect("status");
            assert_eq!(st.elements.len(), 10_000);
        });
        assert!(nft.flush().expect("flush"));
    });
    if let Err(e) = run.join() {
        drop(ns);
        std::panic::resume_unwind(e);
    }
}
