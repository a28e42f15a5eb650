//! The TCP connection state machine, tracked per flow to choose timeouts and to spot a new
//! connection on an old tuple. It follows Suricata's stream engine with `midstream: false`
//! and its default `windows` host OS policy, named from the server's point of view:
//! a flow whose first packet is not a SYN gets no session (state `None`, flow state `new`
//! for its whole life); SYN, SYN/ACK acknowledging it, ACK lead to `Established`; a client
//! FIN gives `CloseWait` and the server's FIN `LastAck`; a server FIN first gives `FinWait1`
//! and the client's FIN `TimeWait`; a RST whose sequence number is the one expected closes.
//! The flow counts as `closed` from `LastAck`, `TimeWait` or `Closed` on. Sequence numbers
//! are tracked only as far as that needs; reassembly (a later stage) does the rest.

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
    /// The server sent FIN first.
    FinWait1,
    /// ... and the client acknowledged it.
    FinWait2,
    /// The client sent FIN first.
    CloseWait,
    /// Both sent FIN, the server's not yet acknowledged.
    Closing,
    /// The client sent FIN, then the server.
    LastAck,
    /// The server sent FIN, then the client.
    TimeWait,
    /// Reset, or the last FIN acknowledged.
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
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::LastAck => "last_ack",
            TcpState::TimeWait => "time_wait",
            TcpState::Closed => "closed",
        }
    }

    /// The flow state (and so the timeout) this connection state implies.
    pub fn flow_state(self) -> FlowState {
        use TcpState::*;
        match self {
            None | SynSent | SynRecv => FlowState::New,
            Established | FinWait1 | FinWait2 | CloseWait | Closing => FlowState::Established,
            LastAck | TimeWait | Closed => FlowState::Closed,
        }
    }
}

/// Per-flow TCP tracking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpTracker {
    pub(crate) state: TcpState,
    client_isn: u32,
    /// Next sequence number expected from each side (toserver, toclient); 0 until seen, which
    /// is also what a RST answering a bare SYN must carry.
    next_seq: [u32; 2],
}

fn is_pure_syn(flags: TcpFlags) -> bool {
    flags.0 & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN) == TcpFlags::SYN
}

fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn side(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl TcpTracker {
    /// Whether this packet starts a new connection on the tuple of an old one, in which case
    /// the old flow ends and the packet opens a new flow: a bare SYN on a flow that never had
    /// a session or whose connection is closing or closed. A SYN that repeats the first SYN's
    /// sequence number is a retransmission, not a new connection.
    pub(crate) fn is_reuse(&self, flags: TcpFlags, seq: u32) -> bool {
        use TcpState::*;
        if !is_pure_syn(flags) {
            return false;
        }
        match self.state {
            None => true,
            CloseWait | Closing | LastAck | Closed => seq != self.client_isn,
            _ => false,
        }
    }

    pub(crate) fn update(&mut self, dir: Direction, flags: TcpFlags, seq: u32, ack: u32, payload_len: u32) {
        use TcpState::*;
        let f = flags;
        let d = side(dir);
        if f.has(TcpFlags::RST) {
            // Windows policy: only a RST carrying exactly the expected sequence number counts.
            if self.state != None && seq == self.next_seq[d] {
                self.state = Closed;
            }
            return;
        }
        let advance = |t: &mut TcpTracker| {
            let end = seq.wrapping_add(payload_len).wrapping_add(u32::from(f.has(TcpFlags::SYN)) + u32::from(f.has(TcpFlags::FIN)));
            if t.next_seq[d] == 0 || seq_gt(end, t.next_seq[d]) {
                t.next_seq[d] = end;
            }
        };
        match (self.state, dir) {
            (None, Direction::ToServer) if is_pure_syn(f) => {
                self.state = SynSent;
                self.client_isn = seq;
                self.next_seq = [seq.wrapping_add(1), 0];
                return;
            }
            (None, _) => return,
            (SynSent, Direction::ToClient) if f.has(TcpFlags::SYN | TcpFlags::ACK) && ack == self.client_isn.wrapping_add(1) => {
                self.state = SynRecv;
                self.next_seq[1] = seq.wrapping_add(1);
                return;
            }
            (SynRecv, Direction::ToServer) if f.has(TcpFlags::ACK) && !f.has(TcpFlags::SYN) => self.state = Established,
            _ => {}
        }
        if self.state >= SynRecv {
            advance(self);
        }
        let fin = f.has(TcpFlags::FIN);
        let ackf = f.has(TcpFlags::ACK);
        self.state = match (self.state, dir) {
            (Established, Direction::ToServer) if fin => CloseWait,
            (Established, Direction::ToClient) if fin => FinWait1,
            (FinWait1, Direction::ToServer) if fin && ackf => TimeWait,
            (FinWait1, Direction::ToServer) if fin => Closing,
            (FinWait1, Direction::ToServer) if ackf => FinWait2,
            (FinWait2, Direction::ToServer) if fin => TimeWait,
            (CloseWait, Direction::ToClient) if fin => LastAck,
            (Closing, _) if ackf => TimeWait,
            (LastAck, Direction::ToServer) if ackf => Closed,
            (TimeWait, Direction::ToClient) if ackf => Closed,
            (s, _) => s,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const FINACK: u8 = TcpFlags::FIN | TcpFlags::ACK;
    const RSTACK: u8 = TcpFlags::RST | TcpFlags::ACK;

    /// (direction, flags, seq, ack, payload length)
    type Step = (Direction, u8, u32, u32, u32);

    fn run(steps: &[Step]) -> TcpTracker {
        let mut t = TcpTracker::default();
        for &(d, f, seq, ack, len) in steps {
            t.update(d, TcpFlags(f), seq, ack, len);
        }
        t
    }

    const HANDSHAKE: [Step; 3] = [(ToServer, SYN, 100, 0, 0), (ToClient, SYNACK, 500, 101, 0), (ToServer, ACK, 101, 501, 0)];

    #[test]
    fn states_through_connections() {
        let with = |rest: &[Step]| -> Vec<Step> { HANDSHAKE.iter().chain(rest).copied().collect() };
        let cases: Vec<(Vec<Step>, TcpState, FlowState)> = vec![
            (HANDSHAKE[..1].to_vec(), TcpState::SynSent, FlowState::New),
            (HANDSHAKE[..2].to_vec(), TcpState::SynRecv, FlowState::New),
            (vec![(ToServer, SYN, 100, 0, 0), (ToClient, SYNACK, 500, 7, 0)], TcpState::SynSent, FlowState::New),
            (HANDSHAKE.to_vec(), TcpState::Established, FlowState::Established),
            (with(&[(ToServer, FINACK, 101, 501, 0)]), TcpState::CloseWait, FlowState::Established),
            (with(&[(ToServer, FINACK, 101, 501, 0), (ToClient, FINACK, 501, 102, 0)]), TcpState::LastAck, FlowState::Closed),
            (
                with(&[(ToServer, FINACK, 101, 501, 0), (ToClient, FINACK, 501, 102, 0), (ToServer, ACK, 102, 502, 0)]),
                TcpState::Closed,
                FlowState::Closed,
            ),
            (with(&[(ToClient, FINACK, 501, 101, 0), (ToServer, FINACK, 101, 502, 0)]), TcpState::TimeWait, FlowState::Closed),
            (with(&[(ToServer, ACK, 101, 501, 10), (ToClient, RSTACK, 501, 0, 0)]), TcpState::Closed, FlowState::Closed),
            (with(&[(ToServer, ACK, 101, 501, 10), (ToClient, RSTACK, 9999, 0, 0)]), TcpState::Established, FlowState::Established),
            (vec![(ToServer, SYN, 100, 0, 0), (ToClient, RSTACK, 0, 101, 0)], TcpState::Closed, FlowState::Closed),
            (vec![(ToServer, SYN, 100, 0, 0), (ToClient, RSTACK, 77, 101, 0)], TcpState::SynSent, FlowState::New),
            (vec![(ToServer, ACK, 1, 1, 0), (ToClient, ACK, 1, 1, 0)], TcpState::None, FlowState::New),
            (vec![(ToServer, ACK, 1, 1, 0), (ToClient, RSTACK, 1, 1, 0)], TcpState::None, FlowState::New),
        ];
        for (steps, tcp, flow) in cases {
            let t = run(&steps);
            assert_eq!((t.state, t.state.flow_state()), (tcp, flow), "{steps:?}");
        }
    }

    #[test]
    fn reuse_needs_a_finished_connection_and_a_fresh_syn() {
        let t = run(&[(ToServer, SYN, 100, 0, 0), (ToClient, RSTACK, 0, 101, 0)]);
        assert!(t.is_reuse(TcpFlags(SYN), 999));
        assert!(!t.is_reuse(TcpFlags(SYN), 100), "same ISN is a retransmission");
        assert!(!t.is_reuse(TcpFlags(ACK), 999));
        assert!(!run(&HANDSHAKE).is_reuse(TcpFlags(SYN), 999), "not while established");
        assert!(run(&[(ToServer, ACK, 1, 1, 0)]).is_reuse(TcpFlags(SYN), 5), "a flow without a session ends at a SYN");
    }
}
