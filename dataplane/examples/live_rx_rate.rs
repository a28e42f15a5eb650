//! Frames per second one live port receives: `live_rx_rate IFACE afpacket|pcap SECONDS [drain]`.
//! Tapping, one AF_PACKET fanout member (or one libpcap handle); the callback only counts.
//! Run it where the interface is (e.g. `ip netns exec NS ...`) while a sender loads it.
//!
//! With `drain`, it does not read for SECONDS while the sender fills the kernel's buffer
//! (send fewer frames than it holds), then times reading them all: the rate the port itself
//! can take frames out, whatever the sender manages.
//!
//! `live_rx_rate A,B afpacket|pcap SECONDS bridge [BLOCK_TIMEOUT_MS]` bridges A and B inline
//! (one port, forwarding everything) for SECONDS, to measure what the bridge adds to a ping.

use std::time::{Duration, Instant};

use portcullis_dataplane::live::{self, AfPacketConfig, CaptureKind, LiveConfig, Topology};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 5 && args[4] == "bridge" {
        let (a, b) = args[1].split_once(',').expect("A,B");
        let cfg = LiveConfig {
            capture: Some(CaptureKind::parse(&args[2]).expect("capture kind")),
            afpacket: AfPacketConfig {
                threads: Some(1),
                block_timeout_ms: args.get(5).map_or(10, |t| t.parse().expect("ms")),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut cap = live::open(&cfg, &Topology::Inline(a.into(), b.into())).expect("open");
        let end = Instant::now() + Duration::from_secs(args[3].parse().expect("seconds"));
        while Instant::now() < end {
            cap.ports[0].poll(64, Duration::from_millis(50), |_, _| {}).expect("poll");
        }
        println!("{}: {:?}", cap.ports[0].describe(), cap.ports[0].stats());
        return;
    }
    if args.len() != 4 && !(args.len() == 5 && args[4] == "drain") {
        eprintln!("usage: live_rx_rate IFACE afpacket|pcap SECONDS [drain]");
        std::process::exit(2);
    }
    let kind = CaptureKind::parse(&args[2]).expect("capture kind");
    let secs: u64 = args[3].parse().expect("seconds");
    let cfg = LiveConfig {
        capture: Some(kind),
        afpacket: AfPacketConfig { threads: Some(1), ..Default::default() },
        ..Default::default()
    };
    let mut cap = live::open(&cfg, &Topology::Tap(vec![args[1].clone()])).expect("open");
    let port = &mut cap.ports[0];
    // Skip what queued up before the measurement window starts.
    while port.poll(4096, Duration::ZERO, |_, _| {}).unwrap_or(0) > 0 {}
    if args.len() == 5 {
        std::thread::sleep(Duration::from_secs(secs));
        let (mut frames, mut sum) = (0u64, 0u64);
        let start = Instant::now();
        let mut last = start;
        while port
            .poll(256, Duration::from_millis(100), |fs, _| {
                frames += fs.len() as u64;
                for f in fs {
                    sum = sum.wrapping_add(u64::from(f.data[f.data.len() - 1]));
                }
            })
            .expect("poll")
            > 0
        {
            last = Instant::now();
        }
        let el = (last - start).as_secs_f64();
        println!(
            "{} drain: {} frames in {:.3} s = {:.0} frames/s, kernel drops {} (checksum {})",
            port.describe(),
            frames,
            el,
            frames as f64 / el,
            port.stats().rx_dropped,
            sum % 1000
        );
        return;
    }
    let before = port.stats();
    let (mut frames, mut sum) = (0u64, 0u64);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    while Instant::now() < end {
        port.poll(256, Duration::from_millis(10), |fs, _| {
            frames += fs.len() as u64;
            for f in fs {
                sum = sum.wrapping_add(u64::from(f.data[f.data.len() - 1]));
            }
        })
        .expect("poll");
    }
    let el = start.elapsed().as_secs_f64();
    let st = port.stats();
    println!(
        "{}: {} frames in {:.2} s = {:.0} frames/s, kernel drops {} (checksum {})",
        port.describe(),
        frames,
        el,
        frames as f64 / el,
        st.rx_dropped - before.rx_dropped,
        sum % 1000
    );
}
