/// Something the decoder found wrong with a packet. Malformed traffic is data, not an error:
/// each anomaly is counted under the name Suricata gives the same condition
/// (`decoder.event.<layer>.<name>` in EVE `stats`), and capture goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Anomaly {
    EthernetPktTooSmall,
    EthernetUnknownEthertype,
    VlanHeaderTooSmall,
    VlanTooManyLayers,
    SllPktTooSmall,
    LtnullPktTooSmall,
    LtnullUnsupportedType,
    IpRawInvalidIpVersion,
    Ipv4PktTooSmall,
    Ipv4HlenTooSmall,
    Ipv4IplenSmallerThanHlen,
    Ipv4TruncPkt,
    Ipv4WrongIpVersion,
    Ipv4FragOverlap,
    Ipv4FragPktTooLarge,
    Ipv4FragIgnored,
    Ipv6PktTooSmall,
    Ipv6TruncPkt,
    Ipv6TruncExthdr,
    Ipv6WrongIpVersion,
    Ipv6ExthdrInvalidOptlen,
    Ipv6FragOverlap,
    Ipv6FragPktTooLarge,
    Ipv6FragIgnored,
    TcpPktTooSmall,
    TcpHlenTooSmall,
    UdpPktTooSmall,
    UdpHlenInvalid,
    UdpLenInvalid,
    Icmpv4PktTooSmall,
    Icmpv6PktTooSmall,
    GrePktTooSmall,
    EspPktTooSmall,
}

impl Anomaly {
    pub const COUNT: usize = Anomaly::EspPktTooSmall as usize + 1;

    pub const ALL: [Anomaly; Anomaly::COUNT] = [
        Anomaly::EthernetPktTooSmall,
        Anomaly::EthernetUnknownEthertype,
        Anomaly::VlanHeaderTooSmall,
        Anomaly::VlanTooManyLayers,
        Anomaly::SllPktTooSmall,
        Anomaly::LtnullPktTooSmall,
        Anomaly::LtnullUnsupportedType,
        Anomaly::IpRawInvalidIpVersion,
        Anomaly::Ipv4PktTooSmall,
        Anomaly::Ipv4HlenTooSmall,
        Anomaly::Ipv4IplenSmallerThanHlen,
        Anomaly::Ipv4TruncPkt,
        Anomaly::Ipv4WrongIpVersion,
        Anomaly::Ipv4FragOverlap,
        Anomaly::Ipv4FragPktTooLarge,
        Anomaly::Ipv4FragIgnored,
        Anomaly::Ipv6PktTooSmall,
        Anomaly::Ipv6TruncPkt,
        Anomaly::Ipv6TruncExthdr,
        Anomaly::Ipv6WrongIpVersion,
        Anomaly::Ipv6ExthdrInvalidOptlen,
        Anomaly::Ipv6FragOverlap,
        Anomaly::Ipv6FragPktTooLarge,
        Anomaly::Ipv6FragIgnored,
        Anomaly::TcpPktTooSmall,
        Anomaly::TcpHlenTooSmall,
        Anomaly::UdpPktTooSmall,
        Anomaly::UdpHlenInvalid,
        Anomaly::UdpLenInvalid,
        Anomaly::Icmpv4PktTooSmall,
        Anomaly::Icmpv6PktTooSmall,
        Anomaly::GrePktTooSmall,
        Anomaly::EspPktTooSmall,
    ];

    /// `(layer, event)`: the anomaly's name in EVE `stats.decoder.event.<layer>.<event>`.
    pub fn name(self) -> (&'static str, &'static str) {
        use Anomaly::*;
        match self {
            EthernetPktTooSmall => ("ethernet", "pkt_too_small"),
            EthernetUnknownEthertype => ("ethernet", "unknown_ethertype"),
            VlanHeaderTooSmall => ("vlan", "header_too_small"),
            VlanTooManyLayers => ("vlan", "too_many_layers"),
            SllPktTooSmall => ("sll", "pkt_too_small"),
            LtnullPktTooSmall => ("ltnull", "pkt_too_small"),
            LtnullUnsupportedType => ("ltnull", "unsupported_type"),
            IpRawInvalidIpVersion => ("ipraw", "invalid_ip_version"),
            Ipv4PktTooSmall => ("ipv4", "pkt_too_small"),
            Ipv4HlenTooSmall => ("ipv4", "hlen_too_small"),
            Ipv4IplenSmallerThanHlen => ("ipv4", "iplen_smaller_than_hlen"),
            Ipv4TruncPkt => ("ipv4", "trunc_pkt"),
            Ipv4WrongIpVersion => ("ipv4", "wrong_ip_version"),
            Ipv4FragOverlap => ("ipv4", "frag_overlap"),
            Ipv4FragPktTooLarge => ("ipv4", "frag_pkt_too_large"),
            Ipv4FragIgnored => ("ipv4", "frag_ignored"),
            Ipv6PktTooSmall => ("ipv6", "pkt_too_small"),
            Ipv6TruncPkt => ("ipv6", "trunc_pkt"),
            Ipv6TruncExthdr => ("ipv6", "trunc_exthdr"),
            Ipv6WrongIpVersion => ("ipv6", "wrong_ip_version"),
            Ipv6ExthdrInvalidOptlen => ("ipv6", "exthdr_invalid_optlen"),
            Ipv6FragOverlap => ("ipv6", "frag_overlap"),
            Ipv6FragPktTooLarge => ("ipv6", "frag_pkt_too_large"),
            Ipv6FragIgnored => ("ipv6", "frag_ignored"),
            TcpPktTooSmall => ("tcp", "pkt_too_small"),
            TcpHlenTooSmall => ("tcp", "hlen_too_small"),
            UdpPktTooSmall => ("udp", "pkt_too_small"),
            UdpHlenInvalid => ("udp", "hlen_invalid"),
            UdpLenInvalid => ("udp", "len_invalid"),
            Icmpv4PktTooSmall => ("icmpv4", "pkt_too_small"),
            Icmpv6PktTooSmall => ("icmpv6", "pkt_too_small"),
            GrePktTooSmall => ("gre", "pkt_too_small"),
            EspPktTooSmall => ("esp", "pkt_too_small"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_variant_in_order() {
        for (i, a) in Anomaly::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
        }
    }
}
