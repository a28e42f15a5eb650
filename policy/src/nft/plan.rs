//! The pure half of building the table: keys, timeouts, allowlist intervals and the names of
//! operations in errors. No system calls; only the netlink half (`imp`) uses it, so without
//! the `nftables` feature it is compiled for its tests alone.
#![cfg_attr(not(feature = "nftables"), allow(dead_code))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{canonical, Net, NftError, Op};

/// The key bytes of `addr` in its set (network order, 4 or 16 bytes).
pub(super) fn key_bytes(addr: IpAddr) -> Vec<u8> {
    match canonical(addr) {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A duration as the kernel's milliseconds, rounded up; zero is refused (a zero timeout would
/// make the element permanent).
pub(super) fn timeout_ms(d: Duration) -> Result<u64, NftError> {
    if d.is_zero() {
        return Err(NftError::Invalid("an element timeout must be above 0".into()));
    }
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).map_err(|_| NftError::Invalid(format!("timeout {d:?} is too long")))
}

/// The allowlist as merged, disjoint, non-adjacent inclusive ranges per family (what an
/// interval set must be given: the kernel refuses overlaps). IPv4-mapped networks (`::ffff:
/// a.b.c.d/96+`) count as IPv4.
pub(super) fn allow_ranges(allow: &[Net]) -> Result<(Ranges<u32>, Ranges<u128>), NftError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for n in allow {
        match n.addr {
            IpAddr::V4(a) if n.prefix <= 32 => v4.push(range32(u32::from(a), n.prefix)),
            IpAddr::V6(a) if n.prefix <= 128 => match a.to_ipv4_mapped() {
                Some(m) if n.prefix >= 96 => v4.push(range32(u32::from(m), n.prefix - 96)),
                _ => v6.push(range128(u128::from(a), n.prefix)),
            },
            _ => return Err(NftError::Invalid(format!("allowlist network {}/{}: prefix too long", n.addr, n.prefix))),
        }
    }
    Ok((merge(v4), merge(v6)))
}

/// Inclusive address ranges.
pub(super) type Ranges<T> = Vec<(T, T)>;

fn range32(a: u32, prefix: u8) -> (u32, u32) {
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (a & !host, a | host)
}

fn range128(a: u128, prefix: u8) -> (u128, u128) {
    let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (a & !host, a | host)
}

fn merge<T: Copy + Ord + num::Step>(mut r: Vec<(T, T)>) -> Vec<(T, T)> {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            // Overlapping or adjacent (the previous end + 1 is this start): one range.
            Some(last) if T::next(last.1).is_none_or(|n| lo <= n) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `+ 1` without overflow, for the two address widths.
pub(super) mod num {
    pub trait Step: Sized {
        fn next(self) -> Option<Self>;
    }
    impl Step for u32 {
        fn next(self) -> Option<u32> {
            self.checked_add(1)
        }
    }
    impl Step for u128 {
        fn next(self) -> Option<u128> {
            self.checked_add(1)
        }
    }
}

/// The allowlist's interval-set elements: (key, is the end of an interval). A range is its
/// first address and, unless it runs to the top of the address space, an end element at the
/// address after its last; a leading end element at 0 marks "nothing below the first range",
/// as `nft` sends it.
pub(super) fn interval_elems<T: Copy + Ord + Default + num::Step>(
    ranges: &[(T, T)],
    bytes: impl Fn(T) -> Vec<u8>,
) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::with_capacity(ranges.len() * 2 + 1);
    if ranges.first().is_some_and(|r| r.0 != T::default()) {
        out.push((bytes(T::default()), true));
    }
    for &(lo, hi) in ranges {
        out.push((bytes(lo), false));
        if let Some(end) = hi.next() {
            out.push((bytes(end), true));
        }
    }
    out
}

pub(super) fn v4_bytes(a: u32) -> Vec<u8> {
    Ipv4Addr::from(a).octets().to_vec()
}

pub(super) fn v6_bytes(a: u128) -> Vec<u8> {
    Ipv6Addr::from(a).octets().to_vec()
}

/// What an op does, for error messages: `add 10.0.0.1 to block4 (timeout 60s)`.
pub(super) fn describe(op: &Op, set: &str) -> String {
    match *op {
        Op::Add { addr, timeout, .. } => format!("add {addr} to {set} (timeout {timeout:?})"),
        Op::Remove { addr, .. } => format!("remove {addr} from {set}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_canonical() {
        assert_eq!(key_bytes("::ffff:192.0.2.1".parse().unwrap()), vec![192, 0, 2, 1]);
        assert_eq!(key_bytes("2001:db8::1".parse().unwrap()).len(), 16);
    }

    #[test]
    fn timeouts_round_up_and_refuse_zero() {
        assert_eq!(timeout_ms(Duration::from_secs(60)).unwrap(), 60_000);
        assert_eq!(timeout_ms(Duration::from_micros(1)).unwrap(), 1);
        assert_eq!(timeout_ms(Duration::from_micros(1500)).unwrap(), 2);
        assert!(timeout_ms(Duration::ZERO).is_err());
    }

    #[test]
    fn allowlist_ranges_merge() {
        let net = |s: &str, p| Net { addr: s.parse().unwrap(), prefix: p };
        let (v4, v6) = allow_ranges(&[
            net("10.1.2.3", 8),
            net("10.200.0.0", 16),
            net("11.0.0.0", 8),
            net("192.168.1.5", 32),
            net("::ffff:192.168.1.6", 128),
            net("fd00::", 8),
        ])
        .unwrap();
        assert_eq!(
            v4,
            vec![(0x0a00_0000, 0x0bff_ffff), (0xc0a8_0105, 0xc0a8_0106)],
            "10/8 and 11/8 are adjacent; the mapped .6 joins .5"
        );
        assert_eq!(v6, vec![(0xfd << 120, (0xfe << 120) - 1)]);
        assert_eq!(
            interval_elems(&v4, v4_bytes),
            vec![
                (vec![0, 0, 0, 0], true),
                (vec![10, 0, 0, 0], false),
                (vec![12, 0, 0, 0], true),
                (vec![192, 168, 1, 5], false),
                (vec![192, 168, 1, 7], true),
            ]
        );
        let (all, _) = allow_ranges(&[net("0.0.0.0", 0)]).unwrap();
        assert_eq!(interval_elems(&all, v4_bytes), vec![(vec![0, 0, 0, 0], false)], "no end past the top");
        assert!(allow_ranges(&[net("10.0.0.0", 33)]).is_err());
        assert!(allow_ranges(&[net("fd00::", 129)]).is_err());
    }
}
