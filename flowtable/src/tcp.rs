//! The TCP connection state machine, tracked per flow to choose timeouts and to spot a new
//! connection on an old tuple. It follows Suricata's stream engine with `midstream: false`:
//! a flow whose first packet is not a SYN stays without a session (state `None`, flow
//! state `new`), a handshake leads to `Established`, the second FIN or a RST closes it.
//! Sequence numbers are not validated here; reassembly (a later stage) does that.

use portcullis_common::{Direction, TcpFlags};

use crate::FlowState;

/// Where a TCP connection is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    /// No SYN seen: picked up mid-stream, not tracked as a session.
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    /// One side has sent FIN.
    FinWait,
    /// Both sides have sent FIN.
    LastAck,
    /// Reset.
    Closed,
}

impl TcpState {
    /// The name EVE's `tcp.state` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait => "fin_wait1",
            TcpState::LastAck => "last_ack",
            TcpState::Closed => "closed",
        }
    }

    /// The flow state (and so the timeout) this connection state implies.
    pub fn flow_state(self) -> FlowState {
        match self {
            TcpState::None | TcpState::SynSent | TcpState::SynRecv => FlowState::New,
            TcpState::Established | TcpState::FinWait => FlowState::Established,
            TcpState::LastAck | TcpState::Closed => FlowState::Closed,
        }
    }
}

/// Per-flow TCP tracking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpTracker {
    pub(crate) state: TcpState,
    client_isn: u32,
    /// Which sides have sent FIN: bit 0 toserver, bit 1 toclient.
    fins: u8,
}

fn is_pure_syn(flags: TcpFlags) -> bool {
    flags.0 & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN) == TcpFlags::SYN
}

impl TcpTracker {
    /// Whether this packet starts a new connection on the tuple of a finished one, in which
    /// case the old flow ends and the packet opens a new flow. A SYN that repeats the first
    /// SYN's sequence number is a retransmission, not a new connection.
    pub(crate) fn is_reuse(&self, dir: Direction, flags: TcpFlags, seq: u32) -> bool {
        if !is_pure_syn(flags) || self.state < TcpState::LastAck {
            return false;
        }
        match dir {
            Direction::ToServer => seq != self.client_isn,
            Direction::ToClient => true,
        }
    }

    pub(crate) fn update(&mut self, dir: Direction, flags: TcpFlags, seq: u32) {
        use TcpState::*;
        let f = flags;
        if f.has(TcpFlags::RST) {
            if self.state != None {
                self.state = Closed;
            }
            return;
        }
        match (self.state, dir) {
            (None, Direction::ToServer) if is_pure_syn(f) => {
                self.state = SynSent;
                self.client_isn = seq;
            }
            (SynSent, Direction::ToClient) if f.has(TcpFlags::SYN | TcpFlags::ACK) => self.state = SynRecv,
            (SynRecv, Direction::ToServer) if f.has(TcpFlags::ACK) && !f.has(TcpFlags::SYN) => self.state = Established,
            _ => {}
        }
        if f.has(TcpFlags::FIN) && self.state >= SynRecv && self.state < LastAck {
            self.fins |= match dir {
                Direction::ToServer => 1,
                Direction::ToClient => 2,
            };
            self.state = if self.fins == 3 { LastAck } else { FinWait };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const SYNACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const FINACK: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);

    fn run(steps: &[(Direction, TcpFlags)]) -> TcpTracker {
        let mut t = TcpTracker::default();
        for (d, f) in steps {
            t.update(*d, *f, 100);
        }
        t
    }

    #[test]
    fn states_through_a_connection() {
        let cases: &[(&[(Direction, TcpFlags)], TcpState, FlowState)] = &[
            (&[(ToServer, SYN)], TcpState::SynSent, FlowState::New),
            (&[(ToServer, SYN), (ToClient, SYNACK)], TcpState::SynRecv, FlowState::New),
            (&[(ToServer, SYN), (ToClient, SYNACK), (ToServer, ACK)], TcpState::Established, FlowState::Established),
            (&[(ToServer, SYN), (ToClient, SYNACK), (ToServer, ACK), (ToServer, FINACK)], TcpState::FinWait, FlowState::Established),
            (
                &[(ToServer, SYN), (ToClient, SYNACK), (ToServer, ACK), (ToServer, FINACK), (ToClient, FINACK)],
                TcpState::LastAck,
                FlowState::Closed,
            ),
            (&[(ToServer, SYN), (ToClient, RST)], TcpState::Closed, FlowState::Closed),
            (&[(ToServer, ACK), (ToClient, ACK)], TcpState::None, FlowState::New),
            (&[(ToServer, ACK), (ToClient, RST)], TcpState::None, FlowState::New),
        ];
        for (steps, tcp, flow) in cases {
            let t = run(steps);
            assert_eq!((t.state, t.state.flow_state()), (*tcp, *flow), "{steps:?}");
        }
    }

    #[test]
    fn reuse_needs_a_closed_connection_and_a_fresh_syn() {
        let t = run(&[(ToServer, SYN), (ToClient, RST)]);
        assert!(t.is_reuse(ToServer, SYN, 999));
        assert!(!t.is_reuse(ToServer, SYN, 100), "same ISN is a retransmission");
        assert!(!t.is_reuse(ToServer, ACK, 999));
        let open = run(&[(ToServer, SYN), (ToClient, SYNACK)]);
        assert!(!open.is_reuse(ToServer, SYN, 999));
    }
}
