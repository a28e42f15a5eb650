//! Frame decoding: one captured frame to one [`PacketMeta`].
//!
//! etherparse gives the checked, borrowed view of the frame (Ethernet, up to three VLAN tags,
//! IPv4 with options, IPv6 with extension headers, TCP, UDP, ICMP, ICMPv6); this module turns
//! it into the small `Copy` summary later stages use and maps every decoding failure onto the
//! [`Anomaly`] Suricata would count for it. Like Suricata, a packet whose IP header claims more
//! bytes than were captured is invalid and does not reach the flow table.

use etherparse::err::packet::SliceError;
use etherparse::err::Layer;
use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use portcullis_common::{ipproto, Anomaly, FlowKey, IpFamily, PacketMeta, TcpFlags, Timestamp};

use crate::capture::{Frame, LinkType};
use crate::defrag::{Defrag, DefragConfig, FragOutcome};

/// Decoder settings (the config's `defrag` section).
#[derive(Clone, Copy, Debug, Default)]
pub struct DecoderConfig {
    pub defrag: DefragConfig,
}

/// What one frame decoded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An IP packet that belongs to a flow.
    Packet(PacketMeta),
    /// Valid, but not a flow packet: ARP and other non-IP ethertypes, or an IP fragment held
    /// for reassembly.
    NoFlow,
    /// Malformed at the named place; counted, not tracked.
    Invalid(Anomaly),
    /// A link type the decoder does not handle.
    Unsupported,
    /// A tunnel whose outer packet is a flow packet too (6in4), with the packet it carried.
    Tunneled { outer: PacketMeta, inner: PacketMeta },
}

/// One counter per [`Anomaly`], indexed by `anomaly as usize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCounts(pub [u64; Anomaly::COUNT]);

impl Default for EventCounts {
    fn default() -> Self {
        EventCounts([0; Anomaly::COUNT])
    }
}

impl std::ops::Deref for EventCounts {
    type Target = [u64; Anomaly::COUNT];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for EventCounts {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Decoder counters, named as Suricata's `stats.decoder`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub pkts: u64,
    pub bytes: u64,
    pub invalid: u64,
    pub ethernet: u64,
    pub sll: u64,
    pub null: u64,
    pub raw: u64,
    pub vlan: u64,
    pub vlan_qinq: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub sctp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub arp: u64,
    pub gre: u64,
    pub ipv4_in_ipv4: u64,
    pub ipv6_in_ipv4: u64,
    pub ipv4_in_ipv6: u64,
    pub ipv6_in_ipv6: u64,
    pub unknown_ethertype: u64,
    pub unsupported_link: u64,
    pub max_pkt_size: u64,
    pub events: EventCounts,
    pub defrag_ipv4_fragments: u64,
    pub defrag_ipv4_reassembled: u64,
    pub defrag_ipv6_fragments: u64,
    pub defrag_ipv6_reassembled: u64,
    pub defrag_max_trackers_reached: u64,
    pub defrag_timeouts: u64,
}

impl DecodeStats {
    pub fn merge(&mut self, o: &DecodeStats) {
        macro_rules! add { ($($f:ident),*) => { $(self.$f += o.$f;)* } }
        add!(pkts, bytes, invalid, ethernet, sll, null, raw, vlan, vlan_qinq, ipv4, ipv6, tcp, udp, sctp, icmpv4, icmpv6, arp, gre,
            ipv4_in_ipv4, ipv6_in_ipv4, ipv4_in_ipv6, ipv6_in_ipv6, unknown_ethertype, unsupported_link, defrag_ipv4_fragments, defrag_ipv4_reassembled, defrag_ipv6_fragments,
            defrag_ipv6_reassembled, defrag_max_trackers_reached, defrag_timeouts);
        self.max_pkt_size = self.max_pkt_size.max(o.max_pkt_size);
        for (a, b) in self.events.iter_mut().zip(o.events.iter()) {
            *a += b;
        }
    }

    pub fn anomalies(&self) -> u64 {
        self.events.iter().sum()
    }
}

/// Turns frames into [`PacketMeta`]s; owns the IP defragmenter and the decoder counters.
#[derive(Debug)]
pub struct Decoder {
    defrag: Defrag,
    /// The last reassembled datagram (IP header and payload): the bytes a packet marked
    /// `reassembled` indexes, valid until the next call to `decode`.
    datagram: Vec<u8>,
    pub stats: DecodeStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl Decoder {
    pub fn new(cfg: DecoderConfig) -> Self {
        Decoder { defrag: Defrag::new(cfg.defrag), datagram: Vec::new(), stats: DecodeStats::default() }
    }

    /// The bytes a packet's offsets (`ip_offset`, `l4_offset`, `payload_offset`) index: the
    /// frame it was decoded from, or for a datagram reassembled from fragments the decoder's
    /// copy of it. Valid until the next call to [`Decoder::decode`].
    pub fn packet_bytes<'a>(&'a self, meta: &PacketMeta, frame: &'a [u8]) -> &'a [u8] {
        if meta.reassembled {
            &self.datagram
        } else {
            frame
        }
    }

    /// Decodes one frame. `pcap_cnt` is its 1-based index in the capture.
    pub fn decode(&mut self, frame: &Frame<'_>, pcap_cnt: u64) -> Decoded {
        let data = frame.data;
        self.stats.pkts += 1;
        self.stats.bytes += data.len() as u64;
        self.stats.max_pkt_size = self.stats.max_pkt_size.max(data.len() as u64);
        self.defrag.expire(frame.ts, &mut self.stats);
        let sliced = match frame.link {
            LinkType::Ethernet => {
                self.stats.ethernet += 1;
                SlicedPacket::from_ethernet(data)
            }
            LinkType::LinuxSll | LinkType::LinuxSll2 => {
                // Parsed by hand: etherparse refuses ARPHRD types it does not know, which
                // Android and tunnel captures use; only the protocol field matters here.
                // SLL has a 16-byte header with the protocol last, SLL2 20 bytes with it first.
                self.stats.sll += 1;
                let (hlen, at) = if frame.link == LinkType::LinuxSll { (16, 14) } else { (20, 0) };
                if data.len() < hlen {
                    return self.invalid(Anomaly::SllPktTooSmall);
                }
                let proto = u16::from_be_bytes([data[at], data[at + 1]]);
                SlicedPacket::from_ether_type(etherparse::EtherType(proto), &data[hlen..])
            }
            LinkType::Raw => {
                self.stats.raw += 1;
                if data.is_empty() || !matches!(data[0] >> 4, 4 | 6) {
                    return self.invalid(Anomaly::IpRawInvalidIpVersion);
                }
                SlicedPacket::from_ip(data)
            }
            LinkType::Null | LinkType::Loop => {
                self.stats.null += 1;
                if data.len() < 4 {
                    return self.invalid(Anomaly::LtnullPktTooSmall);
                }
                let family = if frame.link == LinkType::Loop {
                    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
                } else {
                    // Host byte order of the capturing machine: accept either.
                    let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                    if le < 256 { le } else { u32::from_be_bytes([data[0], data[1], data[2], data[3]]) }
                };
                match family {
                    2 | 10 | 24 | 28 | 30 => SlicedPacket::from_ip(&data[4..]),
                    _ => return self.invalid(Anomaly::LtnullUnsupportedType),
                }
            }
            LinkType::Other(_) => {
                self.stats.unsupported_link += 1;
                return Decoded::Unsupported;
            }
        };
        match sliced {
            Ok(s) => self.packet(&s, frame, pcap_cnt, None),
            Err(e) => {
                let a = anomaly_of(&e);
                self.invalid(a)
            }
        }
    }

    fn invalid(&mut self, a: Anomaly) -> Decoded {
        self.stats.invalid += 1;
        self.stats.events[a as usize] += 1;
        Decoded::Invalid(a)
    }

    fn packet(&mut self, s: &SlicedPacket<'_>, frame: &Frame<'_>, pcap_cnt: u64, outer: Option<Outer>) -> Decoded {
        let mut vlan = [0u16; 2];
        let mut nvlan = 0;
        for ext in &s.link_exts {
            if let etherparse::LinkExtSlice::Vlan(v) = ext {
                if nvlan < 2 {
                    vlan[nvlan] = v.vlan_identifier().value();
                }
                nvlan += 1;
            }
        }
        match nvlan {
            0 => {}
            1 => self.stats.vlan += 1,
            2 => self.stats.vlan_qinq += 1,
            _ => return self.invalid(Anomaly::VlanTooManyLayers),
        }
        let base = frame.data.as_ptr() as usize;
        let (family, src, dst, payload, ip) = match &s.net {
            Some(NetSlice::Ipv4(ip)) => {
                self.stats.ipv4 += 1;
                let h = ip.header();
                let f = IpFields { ttl: h.ttl(), tos: h.slice()[1], id: h.identification(), offset: (h.slice().as_ptr() as usize - base) as u32 };
                (IpFamily::V4, h.source_addr().into(), h.destination_addr().into(), ip.payload(), f)
            }
            Some(NetSlice::Ipv6(ip)) => {
                self.stats.ipv6 += 1;
                let h = ip.header();
                let f = IpFields { ttl: h.hop_limit(), tos: h.traffic_class(), id: 0, offset: (h.slice().as_ptr() as usize - base) as u32 };
                (IpFamily::V6, h.source_addr().into(), h.destination_addr().into(), ip.payload(), f)
            }
            Some(NetSlice::Arp(_)) => {
                self.stats.arp += 1;
                return Decoded::NoFlow;
            }
            None => {
                if matches!(s.link, Some(LinkSlice::Ethernet2(_)) | Some(LinkSlice::LinuxSll(_))) {
                    self.stats.unknown_ethertype += 1;
                }
                return Decoded::NoFlow;
            }
        };
        let depth = outer.map_or(0, |o| o.depth);
        let proto = payload.ip_number.0;
        if family == IpFamily::V4 && proto == 4 {
            // Suricata does not decode IPv4-in-IPv4, nor track its outer packets.
            self.stats.ipv4_in_ipv4 += 1;
            return Decoded::NoFlow;
        }
        let mut key = FlowKey::new(src, dst, 0, 0, proto);
        key.vlan = vlan;
        // A tunnelled packet counts as the inner IP packet, as Suricata's pseudo-packets do.
        let len = outer.map_or(frame.data.len() as u32, |o| o.len);
        let mut meta = PacketMeta::new(frame.ts, key, len);
        meta.pcap_cnt = pcap_cnt;
        meta.ttl = ip.ttl;
        meta.tos = ip.tos;
        meta.ip_id = ip.id;
        meta.ip_offset = ip.offset;

        if !payload.fragmented && depth < MAX_TUNNEL_DEPTH {
            if let Some(inner) = self.tunnel(family, proto, payload.payload, frame, pcap_cnt, depth) {
                if family == IpFamily::V4 && proto == 41 {
                    // 6in4: the outer packet is a flow of its own (proto 41, no ports) and the
                    // inner IPv6 packet is decoded as well, as Suricata does.
                    meta.payload_offset = (payload.payload.as_ptr() as usize - base) as u32;
                    meta.l4_offset = meta.payload_offset;
                    meta.payload_len = payload.payload.len() as u32;
                    return match inner {
                        Decoded::Packet(i) => Decoded::Tunneled { outer: meta, inner: i },
                        _ => Decoded::Packet(meta),
                    };
                }
                return inner;
            }
        }

        if payload.fragmented {
            return match self.defrag.add(s, frame, &mut self.stats) {
                FragOutcome::Held => Decoded::NoFlow,
                FragOutcome::Invalid(a) => self.invalid(a),
                FragOutcome::Complete { datagram, ip_header_len, link_len } => {
                    // The datagram's bytes are the first fragment's IP header and the
                    // reassembled payload; the packet's offsets point into it, and it stays
                    // with the decoder until the next frame (see `packet_bytes`).
                    meta.len = (link_len + datagram.len()) as u32;
                    meta.reassembled = true;
                    meta.ip_offset = 0;
                    let old = std::mem::replace(&mut self.datagram, datagram);
                    self.defrag.recycle(old);
                    let dg = std::mem::take(&mut self.datagram);
                    let r = self.transport_from_bytes(&mut meta, &dg[ip_header_len..], ip_header_len);
                    self.datagram = dg;
                    r
                }
            };
        }

        match &s.transport {
            Some(TransportSlice::Tcp(t)) => {
                self.stats.tcp += 1;
                tcp_fields(&mut meta, t);
                meta.l4_offset = (t.slice().as_ptr() as usize - base) as u32;
                meta.payload_offset = (t.payload().as_ptr() as usize - base) as u32;
                meta.payload_len = t.payload().len() as u32;
            }
            Some(TransportSlice::Udp(u)) => {
                self.stats.udp += 1;
                meta.key.sport = u.source_port();
                meta.key.dport = u.destination_port();
                meta.l4_header_len = 8;
                meta.l4_offset = (u.slice().as_ptr() as usize - base) as u32;
                meta.payload_offset = (u.payload().as_ptr() as usize - base) as u32;
                meta.payload_len = u.payload().len() as u32;
            }
            Some(TransportSlice::Icmpv4(i)) => {
                self.stats.icmpv4 += 1;
                meta.icmp_type = i.type_u8();
                meta.icmp_code = i.code_u8();
                icmp_id_seq(&mut meta, i.slice());
                meta.l4_offset = (i.slice().as_ptr() as usize - base) as u32;
                meta.payload_offset = (i.payload().as_ptr() as usize - base) as u32;
                meta.payload_len = i.payload().len() as u32;
                icmp_key(&mut meta, i.payload());
            }
            Some(TransportSlice::Icmpv6(i)) => {
                self.stats.icmpv6 += 1;
                meta.icmp_type = i.type_u8();
                meta.icmp_code = i.code_u8();
                icmp_id_seq(&mut meta, i.slice());
                meta.l4_offset = (i.slice().as_ptr() as usize - base) as u32;
                meta.payload_offset = (i.payload().as_ptr() as usize - base) as u32;
                meta.payload_len = i.payload().len() as u32;
                icmp_key(&mut meta, &[]);
            }
            Some(TransportSlice::Igmp(_)) | None => {
                let p = payload.payload;
                match payload.ip_number.0 {
                    ipproto::TCP => return self.invalid(Anomaly::TcpPktTooSmall),
                    ipproto::UDP => return self.invalid(Anomaly::UdpPktTooSmall),
                    ipproto::ICMP => return self.invalid(Anomaly::Icmpv4PktTooSmall),
                    ipproto::ICMPV6 => return self.invalid(Anomaly::Icmpv6PktTooSmall),
                    ipproto::SCTP if p.len() >= 12 => {
                        self.stats.sctp += 1;
                        leading_ports(&mut meta, p);
                    }
                    // ESP is tracked per direction, keyed by its SPI in place of the ports.
                    ipproto::ESP if p.len() >= 8 => leading_ports(&mut meta, p),
                    ipproto::ESP => return self.invalid(Anomaly::EspPktTooSmall),
                    // Other IP protocols (IGMP, OSPF, VRRP, PIM, ...) are counted but, as in
                    // Suricata, not tracked as flows.
                    _ => return Decoded::NoFlow,
                }
                meta.payload_offset = (p.as_ptr() as usize - base) as u32;
                meta.l4_offset = meta.payload_offset;
                meta.payload_len = p.len() as u32;
            }
        }
        Decoded::Packet(meta)
    }

    /// Decapsulates IP-in-IP (IPv4 or IPv6 inside IPv4 or IPv6) and GRE version 0 carrying
    /// IP or Ethernet. `None` when `proto` is not a tunnel; the inner packet is decoded
    /// in full (and may itself be a tunnel, up to a depth limit). Inner packets do not
    /// inherit the outer VLAN tags, as in Suricata.
    fn tunnel(&mut self, family: IpFamily, proto: u8, inner: &[u8], frame: &Frame<'_>, pcap_cnt: u64, depth: u8) -> Option<Decoded> {
        let (sliced, len) = match proto {
            4 | 41 => {
                match (family, proto) {
                    (IpFamily::V4, 4) => self.stats.ipv4_in_ipv4 += 1,
                    (IpFamily::V4, _) => self.stats.ipv6_in_ipv4 += 1,
                    (IpFamily::V6, 4) => self.stats.ipv4_in_ipv6 += 1,
                    (IpFamily::V6, _) => self.stats.ipv6_in_ipv6 += 1,
                }
                (SlicedPacket::from_ip(inner), inner.len())
            }
            ipproto::GRE => {
                self.stats.gre += 1;
                if inner.len() < 4 {
                    return Some(self.invalid(Anomaly::GrePktTooSmall));
                }
                let flags = inner[0];
                let version = inner[1] & 0x07;
                if version != 0 {
                    // Enhanced GRE (PPTP) carries PPP, which is not decoded.
                    return Some(Decoded::NoFlow);
                }
                let hlen = 4 + 4 * [0x80u8, 0x20, 0x10].iter().filter(|&&b| flags & b != 0).count();
                if inner.len() < hlen {
                    return Some(self.invalid(Anomaly::GrePktTooSmall));
                }
                let ethertype = u16::from_be_bytes([inner[2], inner[3]]);
                let body = &inner[hlen..];
                let sliced = match ethertype {
                    0x0800 | 0x86dd => SlicedPacket::from_ip(body),
                    0x6558 => SlicedPacket::from_ethernet(body),
                    _ => return Some(Decoded::NoFlow),
                };
                (sliced, body.len())
            }
            _ => return None,
        };
        let outer = Outer { len: len as u32, depth: depth + 1 };
        Some(match sliced {
            Ok(s) => self.packet(&s, frame, pcap_cnt, Some(outer)),
            Err(e) => self.invalid(anomaly_of(&e)),
        })
    }

    /// Fills the transport fields of a reassembled datagram from its payload bytes.
    fn transport_from_bytes(&mut self, meta: &mut PacketMeta, p: &[u8], header_len: usize) -> Decoded {
        meta.l4_offset = header_len as u32;
        meta.payload_offset = header_len as u32;
        meta.payload_len = p.len() as u32;
        match meta.key.proto {
            ipproto::TCP => match etherparse::TcpSlice::from_slice(p) {
                Ok(t) => {
                    self.stats.tcp += 1;
                    tcp_fields(meta, &t);
                    meta.payload_offset += t.header_len() as u32;
                    meta.payload_len = t.payload().len() as u32;
                }
                Err(_) => return self.invalid(Anomaly::TcpPktTooSmall),
            },
            ipproto::UDP => {
                if p.len() < 8 {
                    return self.invalid(Anomaly::UdpPktTooSmall);
                }
                self.stats.udp += 1;
                leading_ports(meta, p);
                meta.l4_header_len = 8;
                meta.payload_offset += 8;
                meta.payload_len = (p.len() - 8) as u32;
            }
            ipproto::ICMP | ipproto::ICMPV6 => {
                if p.len() < 4 {
                    return self.invalid(if meta.key.proto == ipproto::ICMP { Anomaly::Icmpv4PktTooSmall } else { Anomaly::Icmpv6PktTooSmall });
                }
                if meta.key.proto == ipproto::ICMP {
                    self.stats.icmpv4 += 1
                } else {
                    self.stats.icmpv6 += 1
                }
                meta.icmp_type = p[0];
                meta.icmp_code = p[1];
                icmp_id_seq(meta, p);
                // As for an unfragmented message, the payload follows the 8-byte header.
                let h = p.len().min(8);
                meta.payload_offset += h as u32;
                meta.payload_len -= h as u32;
                icmp_key(meta, p.get(8..).unwrap_or(&[]));
            }
            ipproto::SCTP if p.len() >= 12 => {
                self.stats.sctp += 1;
                leading_ports(meta, p);
            }
            ipproto::ESP if p.len() >= 8 => leading_ports(meta, p),
            _ => return Decoded::NoFlow,
        }
        Decoded::Packet(*meta)
    }

    /// Drops every incomplete reassembly (at the end of a capture).
    pub fn flush(&mut self) {
        self.defrag.expire(Timestamp(i64::MAX), &mut self.stats);
    }
}

const ICMP_DEST_UNREACH: u8 = 3;
const MAX_TUNNEL_DEPTH: u8 = 3;

/// The IP header fields a packet's meta carries, read once from whichever header it has.
#[derive(Clone, Copy, Debug)]
struct IpFields {
    ttl: u8,
    tos: u8,
    id: u16,
    /// Where the header starts in the frame.
    offset: u32,
}

/// Reads the identifier and sequence number of the ICMP messages that have them (echo,
/// timestamp, information and address mask; ICMPv6 echo), as Suricata does for `icmp_id`,
/// `icmp_seq` and its drop log; other messages leave both 0.
fn icmp_id_seq(meta: &mut PacketMeta, icmp: &[u8]) {
    let has = if meta.key.proto == ipproto::ICMPV6 { matches!(meta.icmp_type, 128 | 129) } else { matches!(meta.icmp_type, 0 | 8 | 13..=18) };
    if has && icmp.len() >= 8 {
        meta.icmp_id = u16::from_be_bytes([icmp[4], icmp[5]]);
        meta.icmp_seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    }
}

/// What a tunnelled packet inherits from the packet that carried it.
#[derive(Clone, Copy, Debug)]
struct Outer {
    /// Length the inner packet is counted with: from its IP header to the end.
    len: u32,
    depth: u8,
}

/// The type an ICMP request or reply pairs with (Suricata's counterpart tables).
fn icmp_counterpart(v6: bool, t: u8) -> Option<u8> {
    const V4: [(u8, u8); 5] = [(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)];
    const V6: [(u8, u8); 10] =
        [(128, 129), (135, 136), (133, 134), (130, 131), (139, 140), (144, 145), (146, 147), (148, 149), (151, 152), (157, 158)];
    let table: &[(u8, u8)] = if v6 { &V6 } else { &V4 };
    table.iter().find_map(|&(a, b)| if a == t { Some(b) } else if b == t { Some(a) } else { None })
}

/// ICMP flows are keyed, as in Suricata, by the message type and the type it pairs with
/// standing in for ports, so a request and its reply are one flow. ICMPv6 keys on the code
/// too. ICMPv4 error messages never make a flow; a destination-unreachable joins the TCP or
/// UDP flow it quotes.
fn icmp_key(meta: &mut PacketMeta, quoted: &[u8]) {
    let v6 = meta.key.proto == ipproto::ICMPV6;
    let t = meta.icmp_type;
    let counterpart = u16::from(icmp_counterpart(v6, t).unwrap_or(0)) << 8;
    meta.key.sport = if v6 { u16::from(t) << 8 | u16::from(meta.icmp_code) } else { u16::from(t) << 8 };
    meta.key.dport = counterpart;
    if !v6 && matches!(t, 3 | 4 | 5 | 11 | 12) {
        meta.attach_only = true;
        if t == ICMP_DEST_UNREACH {
            if let Some(k) = embedded_flow(quoted) {
                // It travels back towards the sender of the packet it quotes.
                meta.key = FlowKey { vlan: meta.key.vlan, ..k.reversed() };
            }
        }
    }
}

/// Takes the key's ports from the first four bytes of a transport header: UDP and SCTP
/// ports, or the two halves of an ESP SPI. The caller has checked the length.
fn leading_ports(meta: &mut PacketMeta, p: &[u8]) {
    meta.key.sport = u16::from_be_bytes([p[0], p[1]]);
    meta.key.dport = u16::from_be_bytes([p[2], p[3]]);
}

/// The TCP or UDP flow an ICMP destination-unreachable message quotes: the embedded IPv4
/// header and the ports after it, oriented as originally sent. Like Suricata, it needs the
/// whole minimal transport header quoted and reads the ports at offset 20.
fn embedded_flow(quoted: &[u8]) -> Option<FlowKey> {
    let h = etherparse::Ipv4HeaderSlice::from_slice(quoted).ok()?;
    let proto = h.protocol().0;
    let need = match proto {
        ipproto::TCP => 40,
        ipproto::UDP => 28,
        _ => return None,
    };
    if quoted.len() < need {
        return None;
    }
    Some(FlowKey::new(
        h.source_addr().into(),
        h.destination_addr().into(),
        u16::from_be_bytes([quoted[20], quoted[21]]),
        u16::from_be_bytes([quoted[22], quoted[23]]),
        proto,
    ))
}

/// The TCP header fields the flow table uses.
fn tcp_fields(meta: &mut PacketMeta, t: &etherparse::TcpSlice<'_>) {
    meta.key.sport = t.source_port();
    meta.key.dport = t.destination_port();
    // The low byte of the flags word, as the wire carries it (etherparse offers only
    // one accessor per flag).
    meta.tcp_flags = TcpFlags(t.slice()[13]);
    meta.tcp_seq = t.sequence_number();
    meta.tcp_ack = t.acknowledgment_number();
    meta.tcp_win = t.window_size();
    meta.l4_header_len = t.header_len() as u16;
}

/// The Suricata decoder event for an etherparse slicing failure.
fn anomaly_of(e: &SliceError) -> Anomaly {
    use etherparse::err::{ip, ipv6_exts};
    match e {
        SliceError::Len(l) => match l.layer {
            Layer::Ethernet2Header | Layer::EtherPayload => Anomaly::EthernetPktTooSmall,
            Layer::VlanHeader | Layer::MacsecHeader | Layer::MacsecPacket => Anomaly::VlanHeaderTooSmall,
            Layer::LinuxSllHeader => Anomaly::SllPktTooSmall,
            Layer::Ipv4Header | Layer::IpHeader if l.required_len <= 20 => Anomaly::Ipv4PktTooSmall,
            Layer::Ipv4Header | Layer::IpHeader => Anomaly::Ipv4HlenTooSmall,
            Layer::Ipv4Packet | Layer::IpAuthHeader => Anomaly::Ipv4TruncPkt,
            Layer::Ipv6Header => Anomaly::Ipv6PktTooSmall,
            Layer::Ipv6Packet => Anomaly::Ipv6TruncPkt,
            Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader => Anomaly::Ipv6TruncExthdr,
            Layer::UdpHeader | Layer::UdpPayload => Anomaly::UdpPktTooSmall,
            Layer::TcpHeader => Anomaly::TcpPktTooSmall,
            Layer::Icmpv4 | Layer::Icmpv4Timestamp | Layer::Icmpv4TimestampReply | Layer::Igmp => {
                Anomaly::Icmpv4PktTooSmall
            }
            Layer::Icmpv6 => Anomaly::Icmpv6PktTooSmall,
            _ => Anomaly::EthernetPktTooSmall,
        },
        SliceError::LinuxSll(_) => Anomaly::SllPktTooSmall,
        SliceError::Macsec(_) => Anomaly::VlanHeaderTooSmall,
        SliceError::Ip(ip::HeaderError::UnsupportedIpVersion { .. }) => Anomaly::Ipv4WrongIpVersion,
        SliceError::Ip(ip::HeaderError::Ipv4HeaderLengthSmallerThanHeader { .. }) => Anomaly::Ipv4HlenTooSmall,
        SliceError::Ipv4(_) => Anomaly::Ipv4WrongIpVersion,
        SliceError::Ipv6(_) => Anomaly::Ipv6WrongIpVersion,
        SliceError::Ipv4Exts(_) => Anomaly::Ipv4TruncPkt,
        SliceError::Ipv6Exts(ipv6_exts::HeaderError::HopByHopNotAtStart) => Anomaly::Ipv6ExthdrInvalidOptlen,
        SliceError::Ipv6Exts(_) => Anomaly::Ipv6ExthdrInvalidOptlen,
        SliceError::Tcp(_) => Anomaly::TcpHlenTooSmall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn frame(data: &[u8]) -> Frame<'_> {
        Frame { ts: Timestamp(1_000_000), orig_len: data.len() as u32, link: LinkType::Ethernet, data, offset: 0 }
    }

    fn tcp_packet(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(40000, 80, 1234, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn decodes_tcp_over_ipv4() {
        let pkt = tcp_packet(b"hello");
        let mut d = Decoder::default();
        let Decoded::Packet(m) = d.decode(&frame(&pkt), 1) else { panic!() };
        assert_eq!(m.key.src_ip().to_string(), "10.0.0.2");
        assert_eq!((m.key.sport, m.key.dport, m.key.proto), (40000, 80, 6));
        assert!(m.tcp_flags.has(TcpFlags::SYN));
        assert_eq!(m.tcp_seq, 1234);
        assert_eq!(m.len as usize, pkt.len());
        assert_eq!(&pkt[m.payload_offset as usize..][..m.payload_len as usize], b"hello");
        assert_eq!((d.stats.ipv4, d.stats.tcp), (1, 1));
    }

    #[test]
    fn header_fields_and_byte_offsets() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64).icmpv4_echo_request(0x1234, 7);
        let mut pkt = Vec::new();
        b.write(&mut pkt, b"ping").unwrap();
        pkt[14 + 1] = 0x10; // TOS
        pkt[14 + 4..14 + 6].copy_from_slice(&0xbeefu16.to_be_bytes());
        let mut d = Decoder::default();
        let Decoded::Packet(m) = d.decode(&frame(&pkt), 1) else { panic!() };
        assert_eq!((m.icmp_id, m.icmp_seq, m.ip_id, m.tos), (0x1234, 7, 0xbeef, 0x10));
        let l3 = &d.packet_bytes(&m, &pkt)[m.l3_range()];
        assert_eq!(l3, &pkt[14..]);
        assert_eq!(m.l4_in_l3(l3)[0], 8, "the ICMP header starts the transport bytes");
        assert_eq!(m.payload_in_l3(l3), b"ping");
    }

    #[test]
    fn vlan_ids_enter_the_key() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .udp(5353, 53);
        let mut pkt = Vec::new();
        b.write(&mut pkt, b"q").unwrap();
        let mut d = Decoder::default();
        let Decoded::Packet(m) = d.decode(&frame(&pkt), 1) else { panic!() };
        assert_eq!(m.key.vlan, [42, 0]);
        assert_eq!(m.key.family, IpFamily::V6);
        assert_eq!(d.stats.vlan, 1);
    }

    #[test]
    fn truncated_ip_is_an_anomaly_not_a_panic() {
        let pkt = tcp_packet(b"hello world");
        let mut d = Decoder::default();
        for cut in 0..pkt.len() - 1 {
            let r = d.decode(&frame(&pkt[..cut]), 1);
            assert!(matches!(r, Decoded::Invalid(_)), "cut at {cut}: {r:?}");
        }
        assert!(d.stats.events[Anomaly::Ipv4TruncPkt as usize] > 0);
        assert!(d.stats.events[Anomaly::EthernetPktTooSmall as usize] > 0);
    }

    #[test]
    fn arp_is_not_a_flow_packet() {
        let mut pkt = vec![0xff; 12];
        pkt.extend_from_slice(&[0x08, 0x06]);
        pkt.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        pkt.extend_from_slice(&[0; 20]);
        let mut d = Decoder::default();
        assert_eq!(d.decode(&frame(&pkt), 1), Decoded::NoFlow);
    }
}
