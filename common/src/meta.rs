use crate::{FlowKey, Timestamp};

/// TCP header flags as the wire carries them (low byte of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// The flags as a two-digit lowercase hex string, the form EVE's `tcp.tcp_flags` uses.
    pub fn hex(self) -> [u8; 2] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        [HEX[usize::from(self.0 >> 4)], HEX[usize::from(self.0 & 0xf)]]
    }
}

/// Which way a packet travels within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the flow's initiator (EVE's `src_ip`) to its responder.
    ToServer,
    /// From the responder back to the initiator.
    ToClient,
}

impl Direction {
    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// What the later stages need to know about one decoded packet: a small `Copy` struct built
/// once by the decoder from a checked view of the frame.
///
/// It does not borrow the frame: `ip_offset`, `l4_offset`, `payload_offset` and `payload_len`
/// locate the IP packet, its transport header and its payload within the packet's bytes, which
/// travel beside it (see [`PacketMeta::l3_range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts: Timestamp,
    /// The engine's clock when the packet was read: the largest timestamp seen so far, so it
    /// never runs backwards even when capture files are out of time order. Timeouts are
    /// measured on it; `ts` is what is reported.
    pub clock: Timestamp,
    /// 1-based index of the packet in the capture (EVE's `pcap_cnt`).
    pub pcap_cnt: u64,
    /// Bytes the flow counters add for this packet: the captured frame length, as Suricata.
    pub len: u32,
    /// The flow key oriented as this packet travels (src = sender).
    pub key: FlowKey,
    pub tcp_flags: TcpFlags,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_win: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The IP header's TTL or hop limit.
    pub ttl: u8,
    /// IPv4 type of service, or the IPv6 traffic class.
    pub tos: u8,
    /// IPv4 identification (the `id` keyword); 0 for IPv6.
    pub ip_id: u16,
    /// ICMP echo, timestamp, information and address-mask messages' identifier and sequence
    /// number (ICMPv6 echo too); 0 for every other message, as Suricata reads them.
    pub icmp_id: u16,
    pub icmp_seq: u16,
    /// Where the packet's IP header (the innermost, for a tunnelled packet) starts in the
    /// packet's bytes: the frame, or for a reassembled datagram the decoder's datagram buffer.
    /// The bytes from here to the end of the payload are what workers receive.
    pub ip_offset: u32,
    /// Where the transport header starts, in the same bytes.
    pub l4_offset: u32,
    /// Where the transport payload starts, in the same bytes.
    pub payload_offset: u32,
    pub payload_len: u32,
    /// Bytes of the transport header: the TCP data offset times four (options included),
    /// 8 for UDP, 0 for every other protocol. CICFlowMeter's header-length features sum it.
    pub l4_header_len: u16,
    /// Set when the packet was rebuilt from IP fragments.
    pub reassembled: bool,
    /// An ICMP error: it joins the flow it reports on (its `key`) if that flow exists, and
    /// never creates a flow or counts as seeing that side.
    pub attach_only: bool,
}

impl PacketMeta {
    /// The part of the packet's bytes that workers receive: the IP header to the end of the
    /// transport payload.
    pub fn l3_range(&self) -> std::ops::Range<usize> {
        self.ip_offset as usize..(self.payload_offset + self.payload_len) as usize
    }

    /// The transport payload within the bytes of [`PacketMeta::l3_range`].
    pub fn payload_in_l3<'a>(&self, l3: &'a [u8]) -> &'a [u8] {
        let start = self.payload_offset.saturating_sub(self.ip_offset) as usize;
        l3.get(start..start + self.payload_len as usize).unwrap_or(&[])
    }

    /// The transport header and payload within the bytes of [`PacketMeta::l3_range`].
    pub fn l4_in_l3<'a>(&self, l3: &'a [u8]) -> &'a [u8] {
        l3.get(self.l4_offset.saturating_sub(self.ip_offset) as usize..).unwrap_or(&[])
    }

    /// The packet's own addresses and protocol, oriented as it travels: its `key`, except for
    /// an ICMP error (`attach_only`), whose key is the flow it quotes; its own come from its
    /// IPv4 header in `l3` (the bytes of [`PacketMeta::l3_range`]), with no ports.
    pub fn own_key(&self, l3: &[u8]) -> FlowKey {
        if !self.attach_only || l3.len() < 20 {
            return self.key;
        }
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src[..4].copy_from_slice(&l3[12..16]);
        dst[..4].copy_from_slice(&l3[16..20]);
        FlowKey { src, dst, sport: 0, dport: 0, vlan: self.key.vlan, proto: crate::ipproto::ICMP, family: crate::IpFamily::V4 }
    }

    /// A zeroed packet of the given key, for tests and builders.
    pub fn new(ts: Timestamp, key: FlowKey, len: u32) -> Self {
        PacketMeta {
            ts,
            clock: ts,
            pcap_cnt: 0,
            len,
            key,
            tcp_flags: TcpFlags::default(),
            tcp_seq: 0,
            tcp_ack: 0,
            tcp_win: 0,
            icmp_type: 0,
            icmp_code: 0,
            ttl: 64,
            tos: 0,
            ip_id: 0,
            icmp_id: 0,
            icmp_seq: 0,
            ip_offset: 0,
            l4_offset: 0,
            payload_offset: 0,
            payload_len: 0,
            l4_header_len: 0,
            reassembled: false,
            attach_only: false,
        }
    }
}
