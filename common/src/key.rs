use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a [`FlowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum IpFamily {
    V4 = 4,
    V6 = 6,
}

/// A flow's identity: addresses, ports, IP protocol and up to two VLAN ids.
///
/// IPv4 addresses occupy the first four bytes of `src`/`dst` and the rest is zero. For
/// protocols without ports both ports are zero. A key as decoded is *oriented* (src is the
/// sender of that packet); [`FlowKey::canonical`] gives the direction-free form the flow
/// table and the dispatcher hash on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub vlan: [u16; 2],
    pub proto: u8,
    pub family: IpFamily,
}

impl FlowKey {
    pub fn new(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> Self {
        let (family, src, dst) = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (IpFamily::V4, v4_bytes(s), v4_bytes(d)),
            (s, d) => (IpFamily::V6, v6_bytes(s), v6_bytes(d)),
        };
        FlowKey { src, dst, sport, dport, vlan: [0; 2], proto, family }
    }

    pub fn src_ip(&self) -> IpAddr {
        addr(self.family, &self.src)
    }

    pub fn dst_ip(&self) -> IpAddr {
        addr(self.family, &self.dst)
    }

    /// The key seen from the other end.
    pub fn reversed(&self) -> Self {
        FlowKey { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport, ..*self }
    }

    /// The direction-free form of the key and whether `self` had to be reversed to get it.
    pub fn canonical(&self) -> (Self, bool) {
        if (self.src, self.sport) <= (self.dst, self.dport) {
            (*self, false)
        } else {
            (self.reversed(), true)
        }
    }

    /// A stable 64-bit hash of the canonical key: the same on every run, every machine and for
    /// both directions, so the dispatcher's choice of worker never depends on thread count or
    /// process.
    pub fn stable_hash(&self) -> u64 {
        let (c, _) = self.canonical();
        let mut buf = [0u8; 42];
        buf[..16].copy_from_slice(&c.src);
        buf[16..32].copy_from_slice(&c.dst);
        buf[32..34].copy_from_slice(&c.sport.to_le_bytes());
        buf[34..36].copy_from_slice(&c.dport.to_le_bytes());
        buf[36..38].copy_from_slice(&c.vlan[0].to_le_bytes());
        buf[38..40].copy_from_slice(&c.vlan[1].to_le_bytes());
        buf[40] = c.proto;
        buf[41] = c.family as u8;
        xxhash_rust::xxh3::xxh3_64(&buf)
    }
}

fn v4_bytes(a: Ipv4Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a.octets());
    b
}

fn v6_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn addr(family: IpFamily, b: &[u8; 16]) -> IpAddr {
    match family {
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::from(*b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str, b: &str, sp: u16, dp: u16) -> FlowKey {
        FlowKey::new(a.parse().unwrap(), b.parse().unwrap(), sp, dp, 6)
    }

    #[test]
    fn both_directions_share_canonical_form_and_hash() {
        let k = key("10.0.0.2", "10.0.0.1", 40000, 80);
        let r = k.reversed();
        assert_eq!(k.canonical().0, r.canonical().0);
        assert_ne!(k.canonical().1, r.canonical().1);
        assert_eq!(k.stable_hash(), r.stable_hash());
    }

    #[test]
    fn vlan_is_part_of_identity() {
        let k = key("10.0.0.2", "10.0.0.1", 40000, 80);
        let mut v = k;
        v.vlan[0] = 7;
        assert_ne!(k.stable_hash(), v.stable_hash());
        assert_eq!(v.src_ip().to_string(), "10.0.0.2");
    }
}
