//! Receive rate of AF_XDP tapping on one interface: opens the capture, polls every port on one
//! thread for SECONDS, prints frames/s and the ports' counters. For measurements by hand, e.g.
//! `ip netns exec NS target/release/examples/afxdp_rx veth1 10` with a sender on the peer.

use std::time::{Duration, Instant};

use portcullis_dataplane::live::{self, AfXdpConfig, CaptureKind, LiveConfig, PortStats, Topology};

fn main() {
    let mut args = std::env::args().skip(1);
    let iface = args.next().expect("usage: afxdp_rx IFACE [SECONDS]");
    let secs: u64 = args.next().map_or(10, |s| s.parse().expect("SECONDS"));
    let cfg = LiveConfig { capture: Some(CaptureKind::AfXdp), afxdp: AfXdpConfig::default(), ..LiveConfig::default() };
    let mut cap = live::open(&cfg, &Topology::Tap(vec![iface])).unwrap_or_else(|e| panic!("{e}"));
    for n in &cap.notes {
        eprintln!("note: {n}");
    }
    // Counted from the first frame, so the sender's start-up is not measured.
    let mut first: Option<Instant> = None;
    let mut frames = 0u64;
    let mut checksum = 0u64;
    let mut end = Instant::now() + Duration::from_secs(secs + 30);
    while Instant::now() < end {
        for p in &mut cap.ports {
            let n = p
                .poll(256, Duration::from_millis(10), |batch, _| {
                    for f in batch {
                        checksum = checksum.wrapping_add(u64::from(f.data[f.data.len() - 1]));
                    }
                })
                .unwrap_or_else(|e| panic!("{e}"));
            if n > 0 && first.is_none() {
                first = Some(Instant::now());
                end = Instant::now() + Duration::from_secs(secs);
            }
            frames += n as u64;
        }
    }
    let elapsed = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let mut total = PortStats::default();
    for p in &cap.ports {
        eprintln!("{}", p.describe());
        total.merge(&p.stats());
    }
    println!("{frames} frames in {elapsed:.2} s: {:.0} frames/s (checksum {checksum})", frames as f64 / elapsed.max(1e-9));
    println!("{total:?}");
}
