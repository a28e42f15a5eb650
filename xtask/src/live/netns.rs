//! Network namespaces and veth links the live benchmark creates, and always deletes.
//!
//! Every namespace is named `pcx-b-<pid>-<role>` and registered in a process-wide list as soon
//! as it exists. [`Lab`]'s `Drop` deletes its own; the Ctrl-C/SIGTERM handler
//! ([`install_interrupt_handler`]) deletes everything still listed, after killing what runs
//! inside. A namespace left by a run that was killed outright (SIGKILL) is swept by the next
//! run ([`sweep_stale`]): its pid no longer exists.

use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context};

/// Namespaces alive right now, for the interrupt handler.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

const PREFIX: &str = "pcx-b-";

/// Runs `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip netns exec NS ARGS` to completion, failing with its stderr.
pub fn exec_in(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip").args(["netns", "exec", ns]).args(args).output()?;
    if !out.status.success() {
        bail!("in {ns}: {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command that runs inside `ns` (`ip netns exec` execs it, so the child's pid is the
/// program's own and a signal sent to it reaches the program).
pub fn cmd_in(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// Deletes `ns` after killing every process still inside it (all of them were started by
/// this harness: nothing else knows the namespace).
fn delete(ns: &str) {
    if let Ok(pids) = Command::new("ip").args(["netns", "pids", ns]).stderr(Stdio::null()).output() {
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
}

/// Deletes every namespace still registered; used by the interrupt handler.
pub fn delete_all_live() {
    let names = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for n in names {
        delete(&n);
    }
}

/// Deletes namespaces of earlier runs whose process no longer exists.
pub fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("deleting namespace {name} left by an earlier run (pid {pid} is gone)");
            delete(name);
        }
    }
}

/// Ctrl-C and SIGTERM delete the namespaces (and what runs in them) before exiting.
pub fn install_interrupt_handler() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: deleting the benchmark's network namespaces");
        delete_all_live();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")
}

/// A set of namespaces, deleted on drop.
#[derive(Debug)]
pub struct Lab {
    names: Vec<String>,
}

impl Lab {
    /// Creates one namespace per role (`pcx-b-<pid>-<role>`), each with `lo` up and IPv6
    /// off (no router solicitations or DAD in the packet counts).
    pub fn new(roles: &[&str]) -> anyhow::Result<Lab> {
        let mut lab = Lab { names: Vec::new() };
        for r in roles {
            let name = format!("{PREFIX}{}-{r}", std::process::id());
            ip(&["netns", "add", &name])?;
            LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(name.clone());
            lab.names.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            for key in ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"] {
                exec_in(&name, &["sysctl", "-qw", key])?;
            }
        }
        Ok(lab)
    }

    /// The namespace of `role`.
    pub fn ns(&self, role: &str) -> &str {
        let suffix = format!("-{role}");
        self.names.iter().find(|n| n.ends_with(&suffix)).map(String::as_str).expect("a role the lab was made with")
    }

    /// A veth pair: `a` in the namespace of `role_a` with MAC `mac_a`, `b` in `role_b`'s,
    /// both up, GRO off (so every frame is counted once, as sent) and checksum offload off:
    /// a veth leaves the checksum of locally sent datagrams to "hardware" that does not
    /// exist, and a sensor that captures and retransmits such a frame (AF_PACKET IPS, AF_XDP)
    /// delivers it with a wrong checksum, which the receiving stack drops.
    pub fn veth(&self, role_a: &str, a: &str, mac_a: &str, role_b: &str, b: &str, mac_b: &str) -> anyhow::Result<()> {
        debug_assert!(a.len() <= 15 && b.len() <= 15, "interface names are at most 15 bytes");
        let (na, nb) = (self.ns(role_a).to_owned(), self.ns(role_b).to_owned());
        ip(&["link", "add", a, "netns", &na, "address", mac_a, "type", "veth", "peer", "name", b, "netns", &nb, "address", mac_b])?;
        for (ns, dev) in [(&na, a), (&nb, b)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            exec_in(ns, &["ethtool", "-K", dev, "gro", "off", "tx", "off", "tso", "off", "gso", "off"])?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        for n in &self.names {
            delete(n);
            live.retain(|x| x != n);
        }
    }
}

/// The counters of `dev` in `ns` (`ip -s -j link`): rx and tx packets and drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

impl LinkStats {
    pub fn read(ns: &str, dev: &str) -> anyhow::Result<LinkStats> {
        let text = ip(&["-n", ns, "-s", "-j", "link", "show", "dev", dev])?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let s = &v[0]["stats64"];
        let n = |a: &str, b: &str| s[a][b].as_u64().unwrap_or(0);
        Ok(LinkStats {
            rx_packets: n("rx", "packets"),
            rx_dropped: n("rx", "dropped"),
            tx_packets: n("tx", "packets"),
            tx_dropped: n("tx", "dropped"),
        })
    }

    pub fn since(self, before: LinkStats) -> LinkStats {
        LinkStats {
            rx_packets: self.rx_packets.saturating_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(before.rx_dropped),
            tx_packets: self.tx_packets.saturating_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.saturating_sub(before.tx_dropped),
        }
    }
}
