//! The checks on a packet's headers: addresses and ports of the rule header (with `<>`),
//! `flow` options, and the header keywords (`flags`, `ttl`, `itype`, `icode`, `icmp_id`,
//! `icmp_seq`, `ip_proto`, `sameip`, `ack`, `seq`, `window`, `id`, `dsize`), each as
//! Suricata's `Match` function for that keyword decides.

use portcullis_common::{Direction, FlowKey, IpFamily};
use portcullis_rules::{Cmp, FlagsModifier, HeaderMatch, IpSet, PortSet, Rule, TcpFlagsMatch};

use crate::compile::Compiled;
use crate::PacketInput;

fn ip_in(set: &IpSet, family: IpFamily, a: &[u8; 16]) -> bool {
    match family {
        IpFamily::V4 => set.contains_v4(u32::from_be_bytes([a[0], a[1], a[2], a[3]])),
        IpFamily::V6 => set.contains_v6(u128::from_be_bytes(*a)),
    }
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

fn side(set: &IpSet, any: bool, ports: &PortSet, key: &FlowKey, src: bool) -> bool {
    let (a, p) = if src { (&key.src, key.sport) } else { (&key.dst, key.dport) };
    (any || ip_in(set, key.family, a)) && (!has_ports(key.proto) || ports.is_any() || ports.contains(p))
}

/// Addresses and ports, in either orientation for a bidirectional rule.
pub(crate) fn addresses(rule: &Rule, c: &Compiled, key: &FlowKey) -> bool {
    let fwd = side(&rule.src, c.src_any, &rule.src_ports, key, true)
        && side(&rule.dst, c.dst_any, &rule.dst_ports, key, false);
    if fwd {
        return true;
    }
    rule.bidirectional && {
        let r = key.reversed();
        side(&rule.src, c.src_any, &rule.src_ports, &r, true) && side(&rule.dst, c.dst_any, &rule.dst_ports, &r, false)
    }
}

/// The protocol of the header: classes are checked by the caller's grouping; this checks
/// the exact protocol where a class has several.
pub(crate) fn proto(c: &Compiled, p: u8) -> bool {
    c.classes & (1 << crate::compile::class_of(p)) != 0 && c.ip_proto.is_none_or(|x| x == p)
}

/// `flow:` options other than the stream ones, which the payload path applies.
pub(crate) fn flow(rule: &Rule, pkt: &PacketInput<'_>) -> bool {
    let f = &rule.flow;
    if f.to_server && pkt.dir != Some(Direction::ToServer) {
        return false;
    }
    if f.to_client && pkt.dir != Some(Direction::ToClient) {
        return false;
    }
    if f.established && (pkt.dir.is_none() || !pkt.established) {
        return false;
    }
    if f.not_established && (pkt.dir.is_none() || pkt.established) {
        return false;
    }
    if f.only_frag && !pkt.meta.reassembled {
        return false;
    }
    if f.no_frag && pkt.meta.reassembled {
        return false;
    }
    true
}

fn flags(m: &TcpFlagsMatch, wire: u8) -> bool {
    let f = wire & !m.ignore;
    match m.modifier {
        FlagsModifier::Exact => f == m.flags,
        FlagsModifier::All => f & m.flags == m.flags,
        FlagsModifier::Any => f & m.flags != 0 || f == m.flags,
        FlagsModifier::Not => f & m.flags != m.flags,
    }
}

fn is_icmp_echo_like(proto: u8, t: u8) -> bool {
    match proto {
        1 => matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
        58 => matches!(t, 128 | 129),
        _ => false,
    }
}

/// Every header keyword of the rule.
pub(crate) fn keywords(c: &Compiled, pkt: &PacketInput<'_>) -> bool {
    let m = pkt.meta;
    let p = m.key.proto;
    let tcp = p == 6;
    let icmp = p == 1 || p == 58;
    c.header.iter().all(|h| match h {
        HeaderMatch::Dsize(cmp) => {
            let len = pkt.payload.len().min(usize::from(u16::MAX)) as u16;
            // Suricata's signature mask: `!N`, `>N`, `>=N` and ranges require a payload, so
            // they never match an empty packet even where the comparison would hold.
            let needs_payload = matches!(cmp, Cmp::Ne(_) | Cmp::Gt(_) | Cmp::Ge(_) | Cmp::Between(..));
            (len > 0 || !needs_payload) && cmp.matches(len)
        }
        HeaderMatch::Ttl(cmp) => cmp.matches(m.ttl),
        HeaderMatch::Itype(cmp) => icmp && cmp.matches(m.icmp_type),
        HeaderMatch::Icode(cmp) => icmp && cmp.matches(m.icmp_code),
        HeaderMatch::IcmpId(v) => icmp && is_icmp_echo_like(p, m.icmp_type) && pkt.icmp_id == *v,
        HeaderMatch::IcmpSeq(v) => icmp && is_icmp_echo_like(p, m.icmp_type) && pkt.icmp_seq == *v,
        HeaderMatch::IpProto(cmp) => cmp.matches(p),
        HeaderMatch::SameIp => m.key.src == m.key.dst,
        HeaderMatch::Flags(f) => tcp && flags(f, m.tcp_flags.0),
        HeaderMatch::Ack(v) => tcp && m.tcp_ack == *v,
        HeaderMatch::Seq(v) => tcp && m.tcp_seq == *v,
        HeaderMatch::Window { value, negated } => tcp && ((m.tcp_win == *value) != *negated),
        HeaderMatch::IpId(v) => m.key.family == IpFamily::V4 && pkt.ip_id == *v,
        // Rejected at build time.
        HeaderMatch::Other { .. } => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_modifiers() {
        let syn = 0x02;
        let synack = 0x12;
        let m = |flags, modifier| TcpFlagsMatch { flags, ignore: 0, modifier };
        let table = [
            (m(0x02, FlagsModifier::Exact), syn, true),
            (m(0x02, FlagsModifier::Exact), synack, false),
            (m(0x02, FlagsModifier::All), synack, true),
            (m(0x12, FlagsModifier::All), syn, false),
            (m(0x03, FlagsModifier::Any), syn, true),
            (m(0x05, FlagsModifier::Any), syn, false),
            (m(0x10, FlagsModifier::Not), syn, true),
            (m(0x10, FlagsModifier::Not), synack, false),
            (m(0x00, FlagsModifier::Exact), 0, true),
            (TcpFlagsMatch { flags: 0x02, ignore: 0xc0, modifier: FlagsModifier::Exact }, 0xc2, true),
        ];
        for (i, (mm, wire, want)) in table.iter().enumerate() {
            assert_eq!(flags(mm, *wire), *want, "case {i}");
        }
    }
}
