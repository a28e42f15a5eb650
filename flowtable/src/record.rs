use portcullis_common::{FlowKey, Timestamp};

use crate::TcpState;

/// Suricata's flow states, which choose the timeout that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FlowState {
    New = 0,
    Established = 1,
    Closed = 2,
}

impl FlowState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Why a flow record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// No packet for longer than the timeout of its state. A TCP flow that closed with FIN
    /// or RST ends this way too, after the (short) `closed` timeout, with state `closed`.
    Timeout,
    /// A new TCP connection (a SYN with a fresh sequence number) reused the tuple of a closed
    /// one.
    TcpReuse,
    /// Evicted to stay within the memcap.
    Forced,
    /// Still open when capture ended.
    Shutdown,
}

impl EndReason {
    /// The name EVE's `flow.reason` uses (Suricata's vocabulary).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            // Suricata logs a flow ended by port reuse as timed out; stats.flow.tcp_reuse
            // counts them.
            EndReason::TcpReuse => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Everything known about a flow when it ends: what EVE `flow` events are written from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// Oriented initiator → responder (EVE's `src_*` → `dest_*`).
    pub key: FlowKey,
    /// The table slot the flow occupied ([`Update::slot`](crate::Update::slot)), free again
    /// now: per-flow state kept beside the table under it ends with this record.
    pub slot: u32,
    pub flow_id: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub state: FlowState,
    pub reason: EndReason,
    pub alerted: bool,
    pub tcp_state: TcpState,
    /// TCP flags seen toserver / toclient (OR of all packets).
    pub tcp_flags_ts: u8,
    pub tcp_flags_tc: u8,
    /// First ICMP type/code seen each way, if any.
    pub icmp_ts: Option<(u8, u8)>,
    pub icmp_tc: Option<(u8, u8)>,
    /// When this record was produced, in packet time: flows are ordered by it on output.
    pub logged_at: Timestamp,
    /// The app-layer protocol detection named (EVE's `app_proto`); the flow table never
    /// sets it, the engine that parsed the flow's app layer does.
    pub app_proto: Option<&'static str>,
}
