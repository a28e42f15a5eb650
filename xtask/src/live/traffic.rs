//! The two loads: a real capture replayed with `tcpreplay --topspeed`, and 64-byte UDP frames
//! from `trafgen` (netsniff-ng). Both senders are pinned to CPU 0, the same for every sensor.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use super::netns::cmd_in;

/// What is sent.
#[derive(Clone, Debug)]
pub enum Traffic {
    /// `tcpreplay --topspeed` of a capture, `loops` times.
    Replay { pcap: PathBuf, loops: u32 },
    /// `trafgen` of `count` 64-byte UDP frames (60 bytes without the FCS), source port
    /// counting up so the frames spread over many flows.
    Small { count: u64, config: PathBuf },
}

impl Traffic {
    pub fn name(&self) -> &'static str {
        match self {
            Traffic::Replay { .. } => "replay",
            Traffic::Small { .. } => "udp64",
        }
    }
}

/// What a sender reported.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// Frames the sender says it sent (tcpreplay's "Actual", trafgen's count).
    pub packets: u64,
    /// Frames the sender failed to send (tcpreplay's "Failed packets").
    pub failed: u64,
    /// Send duration: tcpreplay's own, or the wall clock around trafgen.
    pub secs: f64,
}

/// Writes the trafgen configuration: Ethernet to `dst_mac`, IPv4 10.99.0.1 -> 10.99.0.2, UDP
/// to port 9 with 18 bytes of zeros: 14 + 20 + 8 + 18 = 60 bytes on the wire plus the FCS.
pub fn write_trafgen_config(path: &Path, src_mac: &str, dst_mac: &str) -> anyhow::Result<()> {
    let text = format!(
        "{{\n  eth(da={dst_mac}, sa={src_mac}),\n  ipv4(saddr=10.99.0.1, daddr=10.99.0.2, ttl=64),\n  udp(sp=dinc(1024, 65535), dp=9),\n  fill(0x00, 18)\n}}\n"
    );
    std::fs::write(path, text)?;
    Ok(())
}

/// Sends `t` from `dev` in `ns` and waits for the sender to finish.
pub fn send(t: &Traffic, ns: &str, dev: &str) -> anyhow::Result<Sent> {
    match t {
        Traffic::Replay { pcap, loops } => {
            let mut c = cmd_in(ns, "taskset");
            c.args(["-c", "0", "tcpreplay", "--topspeed", "--preload-pcap", "-i", dev, &format!("--loop={loops}")]).arg(pcap);
            let out = c.output().context("running tcpreplay")?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                bail!("tcpreplay failed: {}", text.trim());
            }
            parse_tcpreplay(&text).with_context(|| format!("reading tcpreplay's report:\n{text}"))
        }
        Traffic::Small { count, config } => {
            let t0 = Instant::now();
            let mut c = cmd_in(ns, "trafgen");
            c.args(["-o", dev, "-n", &count.to_string(), "-P", "1", "--no-sock-mem", "-Q", "-C", "-i"]).arg(config);
            let out = c.output().context("running trafgen")?;
            let secs = t0.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!("trafgen failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(Sent { packets: *count, failed: 0, secs })
        }
    }
}

/// tcpreplay prints `Actual: N packets (B bytes) sent in S seconds` and `Failed packets: F`.
fn parse_tcpreplay(text: &str) -> Option<Sent> {
    let actual = text.lines().find(|l| l.trim_start().starts_with("Actual:"))?;
    let w: Vec<&str> = actual.split_whitespace().collect();
    let packets = w.get(1)?.parse().ok()?;
    let secs = w.iter().position(|x| *x == "in").and_then(|i| w.get(i + 1)).and_then(|s| s.parse().ok())?;
    let failed = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Failed packets:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some(Sent { packets, failed, secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpreplay_report() {
        let text = "Actual: 469455 packets (165590825 bytes) sent in 2.31 seconds\nRated: 71684341.9 Bps, 573.47 Mbps, 203227.16 pps\nStatistics for network device: snd0\n\tSuccessful packets:        469450\n\tFailed packets:            5\n";
        let s = parse_tcpreplay(text).unwrap();
        assert_eq!((s.packets, s.failed), (469455, 5));
        assert!((s.secs - 2.31).abs() < 1e-9);
    }
}
