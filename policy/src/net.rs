//! Addresses and networks, and the allowlist no verdict may override.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address or CIDR network (`10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`). Host bits below
/// the prefix are cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn host(addr: IpAddr) -> Net {
        let addr = canonical(addr);
        Net { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask32(self.prefix);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask128(self.prefix);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are IPv4 addresses.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl FromStr for Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Net, String> {
        let t = s.trim();
        let (a, len) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| format!("`{s}`: prefix length `{l}` is not a number"))?)),
            None => (t, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("`{s}` is not an address or CIDR network"))?;
        let addr = canonical(addr);
        match addr {
            IpAddr::V4(v4) => {
                let p = len.unwrap_or(32);
                if p > 32 {
                    return Err(format!("`{s}`: an IPv4 prefix is at most 32"));
                }
                Ok(Net { addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(p))), prefix: p })
            }
            IpAddr::V6(v6) => {
                let p = len.unwrap_or(128);
                if p > 128 {
                    return Err(format!("`{s}`: an IPv6 prefix is at most 128"));
                }
                Ok(Net { addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(p))), prefix: p })
            }
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Where an allowlist entry came from, said when it refuses a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowSource {
    /// `policy.allowlist` or `capture.allowlist`.
    Config,
    /// An address of one of this machine's interfaces.
    OwnAddress(String),
    /// The peer of an SSH session open at start.
    SshSession,
}

impl fmt::Display for AllowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowSource::Config => f.write_str("configured allowlist"),
            AllowSource::OwnAddress(i) => write!(f, "address of this machine ({i})"),
            AllowSource::SshSession => f.write_str("an operator's SSH session"),
        }
    }
}

/// Networks no verdict blocks, rate-limits or quarantines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<(Net, AllowSource)>,
}

impl Allowlist {
    pub fn add(&mut self, net: Net, source: AllowSource) {
        if !self.entries.iter().any(|(n, _)| *n == net) {
            self.entries.push((net, source));
        }
    }

    /// The entry that covers `ip`, if any.
    pub fn covering(&self, ip: IpAddr) -> Option<&(Net, AllowSource)> {
        self.entries.iter().find(|(n, _)| n.contains(ip))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.covering(ip).is_some()
    }

    pub fn entries(&self) -> &[(Net, AllowSource)] {
        &self.entries
    }

    pub fn nets(&self) -> Vec<Net> {
        self.entries.iter().map(|(n, _)| *n).collect()
    }

    /// Adds every address of this machine's interfaces (loopback included).
    pub fn add_own_addresses(&mut self) -> std::io::Result<usize> {
        let mut n = 0;
        for i in if_addrs::get_if_addrs()? {
            self.add(Net::host(i.ip()), AllowSource::OwnAddress(i.name.clone()));
            n += 1;
        }
        Ok(n)
    }

    /// Adds the peers of SSH sessions: the `SSH_CONNECTION` of `env` (the operator who started
    /// the daemon) and the peers of established connections to local port 22 held by an
    /// authenticated sshd session process (`sshd: user@pts/0`; sessions open when a service
    /// manager started it). A connection still authenticating (a brute-forcer's) is not one.
    /// Returns the addresses added.
    pub fn add_ssh_sessions(&mut self, ssh_connection: Option<&str>) -> Vec<IpAddr> {
        let mut found = Vec::new();
        if let Some(ip) = ssh_connection.and_then(|s| s.split_whitespace().next()).and_then(|a| a.parse::<IpAddr>().ok()) {
            found.push(canonical(ip));
        }
        let sessions = authenticated_ssh_sockets();
        for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            if let Ok(text) = std::fs::read_to_string(path) {
                found.extend(ssh_peers(&text, v6).into_iter().filter(|(_, inode)| sessions.contains(inode)).map(|(ip, _)| ip));
            }
        }
        found.sort();
        found.dedup();
        for ip in &found {
            self.add(Net::host(*ip), AllowSource::SshSession);
        }
        found
    }
}

/// Socket inodes held by sshd processes of authenticated sessions: OpenSSH titles them
/// `sshd: user@pts/0` (or `sshd-session: user@notty`); before authentication it is
/// `sshd: [accepted]`, `sshd: user [net]`, `sshd: unknown [preauth]`, never with an `@`.
fn authenticated_ssh_sockets() -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let dir = p.path();
        let Ok(cmd) = std::fs::read(dir.join("cmdline")) else { continue };
        let title = String::from_utf8_lossy(cmd.split(|&b| b == 0).next().unwrap_or(&[])).to_string();
        if !is_ssh_session_title(&title) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                let l = link.to_string_lossy();
                if let Some(inode) = l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse().ok()) {
                    out.insert(inode);
                }
            }
        }
    }
    out
}

fn is_ssh_session_title(title: &str) -> bool {
    (title.starts_with("sshd: ") || title.starts_with("sshd-session: ")) && title.split_whitespace().nth(1).is_some_and(|w| w.contains('@'))
}

/// Peers of established connections to local port 22 in a `/proc/net/tcp` table, with the
/// socket's inode.
fn ssh_peers(text: &str, v6: bool) -> Vec<(IpAddr, u64)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != "01" {
            continue; // not ESTABLISHED
        }
        let (Some((_, lport)), Some((raddr, _))) = (f[1].split_once(':'), f[2].split_once(':')) else { continue };
        if u16::from_str_radix(lport, 16) != Ok(22) {
            continue;
        }
        if let (Some(ip), Ok(inode)) = (proc_addr(raddr, v6), f[9].parse::<u64>()) {
            out.push((canonical(ip), inode));
        }
    }
    out
}

/// `/proc/net/tcp` writes addresses as host-order 32-bit words in hex.
fn proc_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    if !v6 {
        let w = u32::from_str_radix(hex, 16).ok()?;
        return Some(IpAddr::V4(Ipv4Addr::from(w.swap_bytes().to_be_bytes())));
    }
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..4 {
        let w = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_networks() {
        let n: Net = "10.1.2.3/16".parse().unwrap();
        assert_eq!(n.to_string(), "10.1.0.0/16");
        assert!(n.contains("10.1.200.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(!n.contains("2001:db8::1".parse().unwrap()));
        let v6: Net = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert_eq!("192.0.2.7".parse::<Net>().unwrap().prefix, 32);
        assert!("0.0.0.0/0".parse::<Net>().unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0", "fe80::/129", "host.example", "10.0.0.0/x"] {
            assert!(bad.parse::<Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_ssh_peers_from_proc_table() {
        // 10.0.0.5:22 <- 192.0.2.7:51234 established; a listener; a connection to port 80.
        let t = "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode\n\
                 0: 0500000A:0016 0702C0C0:C822 01 00000000:00000000 00:00000000 00000000 0 0 4242 1\n\
                 1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 17 1\n\
                 2: 0500000A:0050 0802C0C0:C823 01 00000000:00000000 00:00000000 00000000 0 0 99 1\n";
        // 0702C0C0 little-endian word = 192.192.2.7
        assert_eq!(ssh_peers(t, false), vec![("192.192.2.7".parse::<IpAddr>().unwrap(), 4242)]);
        let t6 = "h\n 0: 00000000000000000000000001000000:0016 0000000000000000FFFF00000700000A:C822 01 0:0 0:0 0 0 0 77 1\n";
        assert_eq!(ssh_peers(t6, true), vec![("10.0.0.7".parse::<IpAddr>().unwrap(), 77)]);
        // Only authenticated sessions count.
        for (title, ok) in [
            ("sshd: alice@pts/0", true),
            ("sshd-session: root@notty", true),
            ("sshd: alice [priv]", false),
            ("sshd: unknown [preauth]", false),
            ("sshd: [accepted]", false),
            ("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", false),
            ("bash", false),
        ] {
            assert_eq!(is_ssh_session_title(title), ok, "{title}");
        }
    }

    #[test]
    fn allowlist_names_the_covering_entry() {
        let mut a = Allowlist::default();
        a.add("10.0.0.0/8".parse().unwrap(), AllowSource::Config);
        a.add(Net::host("192.0.2.1".parse().unwrap()), AllowSource::SshSession);
        assert_eq!(a.covering("10.9.9.9".parse().unwrap()).unwrap().1, AllowSource::Config);
        assert_eq!(a.covering("192.0.2.1".parse().unwrap()).unwrap().1, AllowSource::SshSession);
        assert!(!a.contains("192.0.2.2".parse().unwrap()));
    }
}
