//! The latency probe: UDP datagrams carrying their CLOCK_MONOTONIC send time, from the client
//! namespace to the server namespace; the receiver takes the difference on arrival. The
//! monotonic clock is the same in every network namespace, so the difference is the one-way
//! delay through whatever sits between (plus the receiver's wake-up, the same for all).
//!
//! Both ends are this xtask binary (`xtask live-probe send|recv`) started with
//! `ip netns exec`, so no `setns` is needed here.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};

/// The datagram: sequence number, send time in ns, padding to a small frame.
const LEN: usize = 32;
const END: u64 = u64::MAX;

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(subcommand)]
    side: Side,
}

#[derive(Debug, Subcommand)]
enum Side {
    /// Send `rate` datagrams per second for `secs` seconds to `to`, then three end markers.
    Send {
        #[arg(long)]
        to: String,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        secs: f64,
    },
    /// Receive on `bind`; print "ready" once bound, then one JSON line with the delays (µs,
    /// sorted) when the end marker arrives or `timeout` seconds have passed.
    Recv {
        #[arg(long)]
        bind: String,
        #[arg(long)]
        timeout: f64,
    },
}

pub fn run(a: ProbeArgs) -> anyhow::Result<()> {
    match a.side {
        Side::Send { to, rate, secs } => {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect(&to).with_context(|| format!("connecting to {to}"))?;
            let rate = f64::from(rate.max(1));
            let n = (rate * secs) as u64;
            let t0 = Instant::now();
            let mut buf = [0u8; LEN];
            let mut sent = 0u64;
            for seq in 0..n {
                let due = t0 + Duration::from_secs_f64(seq as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                buf[..8].copy_from_slice(&seq.to_le_bytes());
                buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
                if s.send(&buf).is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            for _ in 0..3 {
                buf[..8].copy_from_slice(&END.to_le_bytes());
                let _ = s.send(&buf);
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("{}", serde_json::json!({"sent": sent}));
        }
        Side::Recv { bind, timeout } => {
            let s = UdpSocket::bind(&bind).with_context(|| format!("binding {bind}"))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
            println!("ready");
            let deadline = Instant::now() + Duration::from_secs_f64(timeout);
            let mut delays: Vec<f64> = Vec::new();
            let mut buf = [0u8; 64];
            while Instant::now() < deadline {
                let Ok(n) = s.recv(&mut buf) else { continue };
                let t = now_ns();
                if n < 16 {
                    continue;
                }
                let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
                if seq == END {
                    break;
                }
                let sent = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
                delays.push(t.saturating_sub(sent) as f64 / 1000.0);
            }
            delays.sort_by(f64::total_cmp);
            println!("{}", serde_json::json!({"delays_us": delays}));
        }
    }
    Ok(())
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
