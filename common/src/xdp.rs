//! Types shared with the XDP program (`kernels/xdp/portcullis.bpf.c`). Their layout is the
//! C structs' layout: change both together.

/// A blocked source address: IPv6, or IPv4 mapped into IPv6 (`::ffff:a.b.c.d`), so one map
/// holds both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct BlockKey {
    pub addr: [u8; 16],
}

impl BlockKey {
    pub fn from_ip(ip: std::net::IpAddr) -> Self {
        let addr = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        BlockKey { addr }
    }

    pub fn ip(&self) -> std::net::IpAddr {
        let v6 = std::net::Ipv6Addr::from(self.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(v6),
        }
    }
}

/// A block entry's value: when it expires and what it has stopped so far. The XDP program
/// adds to the counters atomically; userspace sets `expires_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct BlockEntry {
    /// `CLOCK_MONOTONIC` (the XDP program's `bpf_ktime_get_ns`) nanoseconds after which the
    /// entry no longer drops; 0: never expires.
    pub expires_ns: u64,
    /// Frames dropped because of this entry.
    pub hits: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Indices of the XDP program's per-CPU counter array (`XDP_STATS`).
pub mod xdp_stat {
    /// Frames dropped by the block map.
    pub const BLOCKED: u32 = 0;
    /// Frames redirected to an AF_XDP socket.
    pub const REDIRECTED: u32 = 1;
    /// Frames passed to the kernel stack: redirect off, or no socket on their queue.
    /// Non-IP frames (ARP, neighbour discovery's link layer, LLDP) are redirected like the
    /// rest when redirect is on: inline, the bridge must forward them too.
    pub const PASSED: u32 = 2;
    /// Frames too short for the headers they announce. Delivered like the rest (redirected
    /// or passed) but counted only here, so the four counters add up to the frames seen.
    pub const MALFORMED: u32 = 3;
    pub const COUNT: u32 = 4;
}
