//! IPv4 and IPv6 fragment reassembly, bounded.
//!
//! etherparse's [`IpDefragBuf`] does the byte work (ordering, holes, completion); this module
//! adds what an appliance facing hostile traffic needs and the crate's own pool lacks: a cap on
//! concurrent reassemblies (`max_trackers`), a per-datagram size cap (the IP maximum, 65,535),
//! and a timeout in packet time after which a half-reassembled datagram is dropped and counted.

use etherparse::defrag::IpDefragBuf;
use etherparse::{IpNumber, Ipv6ExtensionSlice, NetSlice, SlicedPacket};
use hashbrown::HashMap;
use portcullis_common::{Anomaly, Timestamp};

use crate::capture::Frame;
use crate::decode::DecodeStats;

/// Limits of the defragmenter (the config's `defrag` section).
#[derive(Clone, Copy, Debug)]
pub struct DefragConfig {
    /// Datagrams under reassembly at once; further first fragments are dropped and counted.
    pub max_trackers: usize,
    /// Seconds (packet time) an incomplete datagram is kept.
    pub timeout_secs: u32,
}

impl Default for DefragConfig {
    fn default() -> Self {
        // Suricata's defaults: defrag.trackers 65535, defrag.timeout 60.
        DefragConfig { max_trackers: 65_535, timeout_secs: 60 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragId {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    v6: bool,
    vlan: [u16; 2],
}

#[derive(Debug)]
struct Tracker {
    buf: IpDefragBuf,
    last: Timestamp,
    /// Bytes before the IP payload in the first fragment's frame (link + IP header), which
    /// the reassembled packet is counted with.
    header_len: usize,
    /// The first fragment's IP header (with IPv6 extension headers): the reassembled
    /// datagram starts with it.
    ip_header: Vec<u8>,
}

pub(crate) enum FragOutcome {
    Held,
    Invalid(Anomaly),
    /// The whole datagram: the first fragment's IP header, patched to describe the
    /// reassembled packet, then the payload.
    Complete { datagram: Vec<u8>, ip_header_len: usize, link_len: usize },
}

#[derive(Debug)]
pub(crate) struct Defrag {
    cfg: DefragConfig,
    active: HashMap<FragId, Tracker>,
    spare: Vec<Vec<u8>>,
    next_expiry_check: Timestamp,
}

impl Defrag {
    pub(crate) fn new(cfg: DefragConfig) -> Self {
        Defrag { cfg, active: HashMap::new(), spare: Vec::new(), next_expiry_check: Timestamp(i64::MIN) }
    }

    /// Drops reassemblies idle for longer than the timeout. Cheap when called per packet: it
    /// scans at most once a second of packet time.
    pub(crate) fn expire(&mut self, now: Timestamp, stats: &mut DecodeStats) {
        if now < self.next_expiry_check || self.active.is_empty() {
            return;
        }
        self.next_expiry_check = now.add_secs(1);
        let timeout = self.cfg.timeout_secs;
        let before = self.active.len();
        let spare = &mut self.spare;
        self.active.retain(|_, t| {
            let keep = t.last.add_secs(timeout) >= now;
            if !keep {
                spare.push(std::mem::replace(&mut t.buf, IpDefragBuf::new(IpNumber(0), Vec::new(), Vec::new())).take_bufs().0);
            }
            keep
        });
        stats.defrag_timeouts += (before - self.active.len()) as u64;
    }

    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 64 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    pub(crate) fn add(&mut self, s: &SlicedPacket<'_>, frame: &Frame<'_>, stats: &mut DecodeStats) -> FragOutcome {
        let vlan = {
            let ids = s.vlan_ids();
            [ids.first().map_or(0, |v| v.value()), ids.get(1).map_or(0, |v| v.value())]
        };
        let base = frame.data.as_ptr() as usize;
        let (id, offset, more, payload, proto, ip_start) = match &s.net {
            Some(NetSlice::Ipv4(ip)) => {
                stats.defrag_ipv4_fragments += 1;
                let h = ip.header();
                let id = FragId {
                    src: pad(&h.source()),
                    dst: pad(&h.destination()),
                    id: u32::from(h.identification()),
                    proto: ip.payload().ip_number.0,
                    v6: false,
                    vlan,
                };
                let start = h.slice().as_ptr() as usize - base;
                (id, h.fragments_offset(), h.more_fragments(), ip.payload().payload, ip.payload().ip_number, start)
            }
            Some(NetSlice::Ipv6(ip)) => {
                stats.defrag_ipv6_fragments += 1;
                let Some(frag) = ip.extensions().clone().into_iter().find_map(|e| match e {
                    Ipv6ExtensionSlice::Fragment(f) => Some(f.to_header()),
                    _ => None,
                }) else {
                    return FragOutcome::Invalid(Anomaly::Ipv6FragIgnored);
                };
                let h = ip.header();
                let id = FragId {
                    src: h.source(),
                    dst: h.destination(),
                    id: frag.identification,
                    proto: ip.payload().ip_number.0,
                    v6: true,
                    vlan,
                };
                let start = h.slice().as_ptr() as usize - base;
                (id, frag.fragment_offset, frag.more_fragments, ip.payload().payload, ip.payload().ip_number, start)
            }
            _ => return FragOutcome::Held,
        };
        let (too_large, ignored) = if id.v6 {
            (Anomaly::Ipv6FragPktTooLarge, Anomaly::Ipv6FragIgnored)
        } else {
            (Anomaly::Ipv4FragPktTooLarge, Anomaly::Ipv4FragIgnored)
        };
        let header_len = payload.as_ptr() as usize - base;
        if !self.active.contains_key(&id) && self.active.len() >= self.cfg.max_trackers {
            stats.defrag_max_trackers_reached += 1;
            return FragOutcome::Invalid(ignored);
        }
        let spare = self.spare.pop().unwrap_or_default();
        let t = self.active.entry(id).or_insert_with(|| Tracker {
            buf: IpDefragBuf::new(proto, spare, Vec::new()),
            last: frame.ts,
            header_len,
            ip_header: Vec::new(),
        });
        t.last = frame.ts;
        if offset.value() == 0 {
            t.header_len = header_len;
            t.ip_header.clear();
            t.ip_header.extend_from_slice(&frame.data[ip_start..header_len]);
        }
        if t.buf.add(offset, more, payload).is_err() {
            if let Some(t) = self.active.remove(&id) {
                self.recycle(t.buf.take_bufs().0);
            }
            return FragOutcome::Invalid(too_large);
        }
        if !t.buf.is_complete() {
            return FragOutcome::Held;
        }
        let Some(t) = self.active.remove(&id) else { return FragOutcome::Held };
        if id.v6 {
            stats.defrag_ipv6_reassembled += 1;
        } else {
            stats.defrag_ipv4_reassembled += 1;
        }
        let payload = t.buf.take_bufs().0;
        let mut datagram = self.spare.pop().unwrap_or_default();
        datagram.clear();
        datagram.extend_from_slice(&t.ip_header);
        let ip_header_len = datagram.len();
        datagram.extend_from_slice(&payload);
        self.recycle(payload);
        patch_header(&mut datagram, id.v6);
        FragOutcome::Complete { datagram, ip_header_len, link_len: t.header_len - ip_header_len }
    }
}

/// Makes the first fragment's header describe the whole datagram, as Suricata's rebuilt
/// packet does: the length covers it all and, for IPv4, the fragment offset and
/// more-fragments flag are cleared (the checksum is left as it was). An IPv6 datagram keeps
/// its fragment extension header.
fn patch_header(d: &mut [u8], v6: bool) {
    if v6 {
        if d.len() >= 40 {
            let plen = u16::try_from(d.len() - 40).unwrap_or(u16::MAX);
            d[4..6].copy_from_slice(&plen.to_be_bytes());
        }
    } else if d.len() >= 20 {
        let total = u16::try_from(d.len()).unwrap_or(u16::MAX);
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d[6] &= 0x40;
        d[7] = 0;
    }
}

fn pad(a: &[u8; 4]) -> [u8; 16] {
    let mut b = [0; 16];
    b[..4].copy_from_slice(a);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::decode::{Decoded, Decoder};

    /// An Ethernet + IPv4 fragment carrying `data` at byte `offset` of a UDP datagram.
    fn fragment(id: u16, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + data.len() as u16;
        let flags_off = (offset / 8) | if more { 0x2000 } else { 0 };
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6..8].copy_from_slice(&flags_off.to_be_bytes());
        v.extend_from_slice(&ip);
        v.extend_from_slice(data);
        v
    }

    fn frame(data: &[u8], secs: i64) -> Frame<'_> {
        Frame { ts: Timestamp::from_secs_micros(secs, 0), orig_len: data.len() as u32, link: LinkType::Ethernet, data, offset: 0 }
    }

    #[test]
    fn reassembles_out_of_order_udp() {
        let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 24, 0, 0];
        udp.extend_from_slice(b"0123456789abcdef");
        let second = fragment(7, 16, false, &udp[16..]);
        let first = fragment(7, 0, true, &udp[..16]);
        let mut d = Decoder::default();
        assert_eq!(d.decode(&frame(&second, 1), 1), Decoded::NoFlow);
        let Decoded::Packet(m) = d.decode(&frame(&first, 1), 2) else { panic!("not reassembled") };
        assert_eq!((m.key.sport, m.key.dport), (12345, 53));
        assert!(m.reassembled);
        assert_eq!(m.len, 14 + 20 + 24);
        assert_eq!(m.ip_id, 7);
        // The datagram's bytes: the first fragment's header, now whole, then the UDP datagram.
        let l3 = &d.packet_bytes(&m, &first)[m.l3_range()];
        assert_eq!(l3.len(), 20 + 24);
        assert_eq!(u16::from_be_bytes([l3[2], l3[3]]), 44);
        assert_eq!(&l3[6..8], &[0, 0], "no more fragments, offset 0");
        assert_eq!(m.l4_in_l3(l3), &udp[..]);
        assert_eq!(m.payload_in_l3(l3), b"0123456789abcdef");
        assert_eq!(d.stats.defrag_ipv4_reassembled, 1);
    }

    #[test]
    fn incomplete_datagrams_time_out() {
        let mut d = Decoder::default();
        let f = fragment(9, 0, true, &[0; 16]);
        assert_eq!(d.decode(&frame(&f, 1), 1), Decoded::NoFlow);
        let other = fragment(10, 0, true, &[0; 16]);
        d.decode(&frame(&other, 100), 2);
        assert_eq!(d.stats.defrag_timeouts, 1);
    }
}
