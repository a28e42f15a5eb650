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
    /// the daemon) and every established TCP connection to local port 22 in `/proc/net/tcp*`
    /// (sessions open when a service manager started it). Returns the addresses added.
    pub fn add_ssh_sessions(&mut self, ssh_connection: Option<&str>) -> Vec<IpAddr> {
        let mut found = Vec::new();
        if let Some(ip) = ssh_connection.and_then(|s| s.split_whitespace().next()).and_then(|a| a.parse::<IpAddr>().ok()) {
            found.push(canonical(ip));
        }
        for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            if let Ok(text) = std::fs::read_to_string(path) {
                found.extend(ssh_peers(&text, v6));
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

/// Peers of established connections to local port 22 in a `/proc/net/tcp` table.
fn ssh_peers(text: &str, v6: bool) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[3] != "01" {
            continue; // not ESTABLISHED
        }
        let (Some((_, lport)), Some((raddr, _))) = (f[1].split_once(':'), f[2].split_once(':')) else { continue };
        if u16::from_str_radix(lport, 16) != Ok(22) {
            continue;
        }
        if let Some(ip) = proc_addr(raddr, v6) {
            out.push(canonical(ip));
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
        let t = "  sl  local_address rem_address   st\n\
                 0: 0500000A:0016 0702C0C0:C822 01 0\n\
                 1: 00000000:0016 00000000:0000 0A 0\n\
                 2: 0500000A:0050 0802C0C0:C823 01 0\n";
        // 0702C0C0 little-endian word = 192.192.2.7
        assert_eq!(ssh_peers(t, false), vec!["192.192.2.7".parse::<IpAddr>().unwrap()]);
        let t6 = "h\n 0: 00000000000000000000000001000000:0016 0000000000000000FFFF00000700000A:C822 01 0\n";
        assert_eq!(ssh_peers(t6, true), vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
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
