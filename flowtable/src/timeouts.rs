use portcullis_common::ipproto;

use crate::FlowState;

/// Timeouts of one protocol, in seconds, per flow state (Suricata's `flow-timeouts.<proto>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoTimeouts {
    pub new: u32,
    pub established: u32,
    pub closed: u32,
}

/// Flow timeouts for every protocol class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: ProtoTimeouts,
    pub udp: ProtoTimeouts,
    pub icmp: ProtoTimeouts,
    /// Every other IP protocol.
    pub default: ProtoTimeouts,
}

impl Default for Timeouts {
    /// Suricata 7's defaults from its shipped suricata.yaml.
    fn default() -> Self {
        Timeouts {
            tcp: ProtoTimeouts { new: 60, established: 600, closed: 60 },
            udp: ProtoTimeouts { new: 30, established: 300, closed: 0 },
            icmp: ProtoTimeouts { new: 30, established: 300, closed: 0 },
            default: ProtoTimeouts { new: 30, established: 300, closed: 0 },
        }
    }
}

/// Index of a protocol class: the flow table keeps one activity list per (class, state).
pub(crate) fn class_of(proto: u8) -> usize {
    match proto {
        ipproto::TCP => 0,
        ipproto::UDP => 1,
        ipproto::ICMP | ipproto::ICMPV6 => 2,
        _ => 3,
    }
}

pub(crate) const CLASSES: usize = 4;
pub(crate) const LISTS: usize = CLASSES * 3;

pub(crate) fn list_of(proto: u8, state: FlowState) -> usize {
    class_of(proto) * 3 + state as usize
}

impl Timeouts {
    pub(crate) fn for_list(&self, list: usize) -> u32 {
        let p = match list / 3 {
            0 => &self.tcp,
            1 => &self.udp,
            2 => &self.icmp,
            _ => &self.default,
        };
        match list % 3 {
            0 => p.new,
            1 => p.established,
            _ => p.closed,
        }
    }
}
