//! The flow table: a hash map from canonical key to a slot in a slab, plus one intrusive
//! activity list per (protocol class, flow state). Every list holds flows with the same
//! timeout, ordered by last activity, so expiry only ever looks at list heads and the least
//! recently active flow overall (the memcap victim) is the oldest of the heads.
//!
//! With features on, each slot has a [`FlowFeatures`] beside it, in a separate vector indexed
//! like the slots, so that the slots (and the no-features path) stay as small and fast as
//! they were.

use hashbrown::HashMap;
use portcullis_common::{ipproto, Direction, FlowKey, PacketMeta, Timestamp};

use crate::features::{FeatureVector, FlowFeatures};
use crate::tcp::{TcpState, TcpTracker};
use crate::timeouts::{list_of, LISTS};
use crate::{EndReason, FlowRecord, FlowState, Timeouts};

const NIL: u32 = u32::MAX;
/// flow_id fits in 51 bits so JSON consumers that parse numbers as doubles keep it exact.
const FLOW_ID_MASK: u64 = (1 << 51) - 1;

/// Flow table settings (the config's `flow` and `flow-timeouts` sections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    pub timeouts: Timeouts,
    /// Bytes the table may use for flows; when a new flow would exceed it, the least recently
    /// active flow is ended with reason `forced` and counted in `memcap`.
    pub memcap: u64,
    /// Carry CICFlowMeter features ([`FlowFeatures`]) for every flow, updated with each of its
    /// packets, and export them ([`FeatureExport`]). Off: the table does no feature work and
    /// reserves no memory for them.
    pub features: bool,
    /// With `features`, a running flow's features are also exported each time its age (from
    /// its first packet) passes another multiple of this many seconds; 0: only at its end.
    pub checkpoint_secs: u32,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig { timeouts: Timeouts::default(), memcap: 128 << 20, features: false, checkpoint_secs: 0 }
    }
}

impl FlowConfig {
    /// How many flows `memcap` allows.
    pub fn max_flows(&self) -> usize {
        ((self.memcap as usize) / self.flow_cost()).max(1)
    }

    /// Bytes one flow is accounted at: its slot, its hash map entry and, with features on,
    /// its feature accumulator.
    pub fn flow_cost(&self) -> usize {
        if self.features {
            FLOW_COST + FEATURES_COST
        } else {
            FLOW_COST
        }
    }
}

/// A flow's features, exported for scoring: when the flow ends (`is_final`), and for a long
/// flow at every checkpoint ([`FlowConfig::checkpoint_secs`]) before that.
///
/// Every field depends only on the flow's own packets (and, for the final export, on when
/// the flow ended, which is its [`FlowRecord::logged_at`]), never on which worker owns the
/// flow or how packets were batched, so exports sorted by `(at, flow_id, is_final)` are the
/// same for any number of worker threads; as for the records themselves, the exception is a
/// flow evicted for the memcap, which is split between workers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureExport {
    pub flow_id: u64,
    /// Initiator → responder, as [`FlowRecord::key`]; the features' forward direction.
    pub key: FlowKey,
    /// A checkpoint: the timestamp of the packet that made it due (the features include that
    /// packet). The final export: the flow record's `logged_at`.
    pub at: Timestamp,
    pub features: FeatureVector,
    /// The flow has ended; its [`FlowRecord`] (same `flow_id`) was produced with this export.
    /// (`final` is a Rust keyword.)
    pub is_final: bool,
}

/// Counters of one table, named after Suricata's `stats.flow`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub total: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub other: u64,
    pub active: u64,
    /// Flows ended early because the memcap was reached.
    pub memcap: u64,
    pub tcp_reuse: u64,
    pub timeouts: u64,
    pub end_new: u64,
    pub end_established: u64,
    pub end_closed: u64,
    pub max_active: u64,
}

impl FlowStats {
    pub fn merge(&mut self, o: &FlowStats) {
        macro_rules! add { ($($f:ident),*) => { $(self.$f += o.$f;)* } }
        add!(total, tcp, udp, icmpv4, icmpv6, other, active, memcap, tcp_reuse, timeouts, end_new, end_established, end_closed, max_active);
    }
}

/// What [`FlowTable::update`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// The slot of the packet's flow, stable until the flow ends (its [`FlowRecord::slot`]);
    /// per-flow state kept beside the table is indexed by it.
    pub slot: u32,
    pub flow_id: u64,
    pub dir: Direction,
    /// The packet opened a new flow.
    pub new_flow: bool,
    /// Suricata's `flow:established` for this packet: for TCP, the three-way handshake had
    /// completed before this packet (the session is `established` or later); for other
    /// protocols, both directions have been seen, this packet included.
    pub established: bool,
}

/// A flow's counters as of its latest packet: what an alert's `flow` object reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSnapshot {
    /// The initiator → responder key (EVE's flow `src_*` → `dest_*`).
    pub key: FlowKey,
    pub flow_id: u64,
    pub start: Timestamp,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
}

impl FlowSnapshot {
    /// The flow as it ended: the record's final counters.
    pub fn of_record(r: &FlowRecord) -> FlowSnapshot {
        FlowSnapshot {
            key: r.key,
            flow_id: r.flow_id,
            start: r.start,
            pkts_toserver: r.pkts_toserver,
            pkts_toclient: r.pkts_toclient,
            bytes_toserver: r.bytes_toserver,
            bytes_toclient: r.bytes_toclient,
        }
    }
}

/// A live flow as a periodic snapshot sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveFlow {
    pub flow: FlowSnapshot,
    /// Its slot in the table (what per-flow state beside the table is indexed by).
    pub slot: u32,
    /// Time of its latest packet.
    pub last: Timestamp,
    pub state: FlowState,
    pub tcp_state: TcpState,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Canonical key.
    key: FlowKey,
    /// The initiator is the canonical key's destination side.
    initiator_rev: bool,
    flow_id: u64,
    start: Timestamp,
    last: Timestamp,
    /// `clock` of the last packet: what timeouts are measured against.
    last_clock: Timestamp,
    pkts: [u64; 2],
    bytes: [u64; 2],
    tcp: TcpTracker,
    state: FlowState,
    flags: [u8; 2],
    icmp: [Option<(u8, u8)>; 2],
    seen: u8,
    alerted: bool,
    list: u8,
    prev: u32,
    next: u32,
}

/// Approximate bytes one flow costs: its slot plus its hash map entry and control byte.
const FLOW_COST: usize = std::mem::size_of::<Slot>() + std::mem::size_of::<(FlowKey, u32)>() + 1;
/// What features add to a flow's cost: the accumulator in its side vector.
const FEATURES_COST: usize = std::mem::size_of::<FlowFeatures>();

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

/// A bounded table of bidirectional flows, owned by one worker.
#[derive(Debug)]
pub struct FlowTable {
    cfg: FlowConfig,
    max_flows: usize,
    map: HashMap<FlowKey, u32>,
    slots: Vec<Slot>,
    /// With features on, `feats[i]` belongs to the flow in `slots[i]`; empty otherwise.
    feats: Vec<FlowFeatures>,
    /// Exports made during the current call, handed to the caller before it returns (or
    /// dropped by the calls that take no export vector).
    pending: Vec<FeatureExport>,
    free: Vec<u32>,
    lists: [List; LISTS],
    timeouts: [u32; LISTS],
    pub stats: FlowStats,
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        let mut timeouts = [0; LISTS];
        for (i, t) in timeouts.iter_mut().enumerate() {
            *t = cfg.timeouts.for_list(i);
        }
        FlowTable {
            cfg,
            max_flows: cfg.max_flows(),
            map: HashMap::new(),
            slots: Vec::new(),
            feats: Vec::new(),
            pending: Vec::new(),
            free: Vec::new(),
            lists: [List { head: NIL, tail: NIL }; LISTS],
            timeouts,
            stats: FlowStats::default(),
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes in use by live flows, by the same accounting the memcap uses.
    pub fn memuse(&self) -> u64 {
        (self.map.len() * self.cfg.flow_cost()) as u64
    }

    fn timed_out(&self, idx: u32, now: Timestamp) -> bool {
        let s = &self.slots[idx as usize];
        // Whole seconds, and only past the timeout, as Suricata compares them: a packet
        // exactly `timeout` seconds after the last one still belongs to the flow.
        now.secs() > s.last_clock.secs() + i64::from(self.timeouts[usize::from(s.list)])
    }

    /// Accounts one packet to its flow, creating the flow if needed. Flows ended on the way
    /// (the tuple's previous flow timed out or was a closed TCP connection now reused, or the
    /// least recently active flow evicted for room) are appended to `ended`.
    /// Packets marked `attach_only` (ICMP errors) join an existing flow or are ignored
    /// (`None`).
    ///
    /// With features on, the feature exports this makes are dropped: use
    /// [`FlowTable::update_exporting`] to receive them.
    pub fn update(&mut self, p: &PacketMeta, ended: &mut Vec<FlowRecord>) -> Option<Update> {
        let u = self.account_packet(p, ended);
        if self.cfg.features {
            self.pending.clear();
        }
        u
    }

    /// [`FlowTable::update`], appending to `exports` the final features of every flow that
    /// ended on the way and, when a checkpoint fell due, the packet's flow's features.
    /// Without features `exports` is left untouched.
    pub fn update_exporting(&mut self, p: &PacketMeta, ended: &mut Vec<FlowRecord>, exports: &mut Vec<FeatureExport>) -> Option<Update> {
        let u = self.account_packet(p, ended);
        self.hand_over(exports);
        u
    }

    /// Moves the pending exports to the caller's vector; when that is empty the two buffers
    /// are swapped instead, so a flush's thousands of exports are not copied a second time.
    fn hand_over(&mut self, exports: &mut Vec<FeatureExport>) {
        if exports.is_empty() {
            std::mem::swap(exports, &mut self.pending);
        } else {
            exports.append(&mut self.pending);
        }
    }

    fn account_packet(&mut self, p: &PacketMeta, ended: &mut Vec<FlowRecord>) -> Option<Update> {
        let (ckey, rev) = p.key.canonical();
        let mut new_flow = false;
        let idx = match self.map.get(&ckey).copied() {
            Some(idx) => {
                let s = &self.slots[idx as usize];
                if self.timed_out(idx, p.clock) {
                    if p.attach_only {
                        return None;
                    }
                    ended.push(self.end(idx, EndReason::Timeout, p.clock));
                    new_flow = true;
                    self.create(ckey, rev, p, ended)
                } else if p.key.proto == ipproto::TCP && s.tcp.is_reuse(p.tcp_flags, p.tcp_seq) {
                    self.stats.tcp_reuse += 1;
                    ended.push(self.end(idx, EndReason::TcpReuse, p.clock));
                    new_flow = true;
                    self.create(ckey, rev, p, ended)
                } else {
                    idx
                }
            }
            None if p.attach_only => return None,
            None => {
                new_flow = true;
                self.create(ckey, rev, p, ended)
            }
        };
        let (dir, established) = self.account(idx, rev, p);
        if self.cfg.features && !p.attach_only {
            self.features(idx, new_flow, p);
        }
        let flow_id = self.slots[idx as usize].flow_id;
        Some(Update { slot: idx, flow_id, dir, new_flow, established })
    }

    /// Feeds a packet to its flow's features and exports a checkpoint when one is due. ICMP
    /// errors (`attach_only`) are not fed: CICFlowMeter counts them in an ICMP flow of their
    /// own, never in the flow they report on.
    #[inline(never)]
    fn features(&mut self, idx: u32, new_flow: bool, p: &PacketMeta) {
        let i = idx as usize;
        if i == self.feats.len() {
            self.feats.push(FlowFeatures::new(p));
        } else if new_flow {
            self.feats[i] = FlowFeatures::new(p);
        } else {
            self.feats[i].update(p);
        }
        // Checked on the flow's own packets only: between them its features do not change,
        // so an idle flow has nothing new to report until its next packet or its end.
        if self.feats[i].checkpoint_due(p.ts, self.cfg.checkpoint_secs) {
            let s = &self.slots[i];
            let key = if s.initiator_rev { s.key.reversed() } else { s.key };
            self.pending.push(FeatureExport { flow_id: s.flow_id, key, at: p.ts, features: self.feats[i].snapshot(), is_final: false });
        }
    }

    /// The features so far of the live flow in `slot` (`None` with features off).
    pub fn features_of(&self, slot: u32) -> Option<&FlowFeatures> {
        self.feats.get(slot as usize).filter(|_| self.map.get(&self.slots[slot as usize].key) == Some(&slot))
    }

    /// The counters of the live flow in `slot`.
    pub fn snapshot(&self, slot: u32) -> FlowSnapshot {
        let s = &self.slots[slot as usize];
        FlowSnapshot {
            key: if s.initiator_rev { s.key.reversed() } else { s.key },
            flow_id: s.flow_id,
            start: s.start,
            pkts_toserver: s.pkts[0],
            pkts_toclient: s.pkts[1],
            bytes_toserver: s.bytes[0],
            bytes_toclient: s.bytes[1],
        }
    }

    fn create(&mut self, ckey: FlowKey, rev: bool, p: &PacketMeta, ended: &mut Vec<FlowRecord>) -> u32 {
        if self.map.len() >= self.max_flows {
            if let Some(victim) = self.least_recent() {
                self.stats.memcap += 1;
                ended.push(self.end(victim, EndReason::Forced, p.clock));
            }
        }
        let flow_id = xxhash_rust::xxh3::xxh3_64_with_seed(&p.ts.0.to_le_bytes(), ckey.stable_hash()) & FLOW_ID_MASK;
        let slot = Slot {
            key: ckey,
            initiator_rev: rev,
            flow_id,
            start: p.ts,
            last: p.ts,
            last_clock: p.clock,
            pkts: [0; 2],
            bytes: [0; 2],
            tcp: TcpTracker::default(),
            state: FlowState::New,
            flags: [0; 2],
            icmp: [None; 2],
            seen: 0,
            alerted: false,
            list: list_of(ckey.proto, FlowState::New) as u8,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(ckey, idx);
        self.push_tail(idx);
        self.stats.total += 1;
        match ckey.proto {
            ipproto::TCP => self.stats.tcp += 1,
            ipproto::UDP => self.stats.udp += 1,
            ipproto::ICMP => self.stats.icmpv4 += 1,
            ipproto::ICMPV6 => self.stats.icmpv6 += 1,
            _ => self.stats.other += 1,
        }
        self.stats.active = self.map.len() as u64;
        self.stats.max_active = self.stats.max_active.max(self.stats.active);
        idx
    }

    fn account(&mut self, idx: u32, rev: bool, p: &PacketMeta) -> (Direction, bool) {
        let s = &mut self.slots[idx as usize];
        let dir = if rev == s.initiator_rev { Direction::ToServer } else { Direction::ToClient };
        let d = dir_index(dir);
        s.pkts[d] += 1;
        s.bytes[d] += u64::from(p.len);
        s.last = p.ts;
        s.last_clock = p.clock;
        if !p.attach_only {
            s.seen |= 1 << d;
        }
        let proto = s.key.proto;
        // Suricata decides `established` before the stream engine sees the packet, so the
        // ACK completing a handshake is not yet established; non-TCP flows are once both
        // sides have spoken.
        let established = if proto == ipproto::TCP { s.tcp.state >= crate::TcpState::Established } else { s.seen == 3 };
        let state = match proto {
            ipproto::TCP => {
                s.flags[d] |= p.tcp_flags.0;
                s.tcp.update(dir, p.tcp_flags, p.tcp_seq, p.tcp_ack, p.payload_len);
                s.tcp.state.flow_state()
            }
            _ => {
                if matches!(proto, ipproto::ICMP | ipproto::ICMPV6) && !p.attach_only && s.icmp[d].is_none() {
                    s.icmp[d] = Some((p.icmp_type, p.icmp_code));
                }
                if s.seen == 3 {
                    FlowState::Established
                } else {
                    FlowState::New
                }
            }
        };
        s.state = state;
        // Re-queue at the tail of the list for its (possibly new) state.
        self.unlink(idx);
        self.slots[idx as usize].list = list_of(proto, state) as u8;
        self.push_tail(idx);
        (dir, established)
    }

    fn live_flow(&self, i: u32) -> LiveFlow {
        let s = &self.slots[i as usize];
        LiveFlow { flow: self.snapshot(i), slot: i, last: s.last, state: s.state, tcp_state: s.tcp.state }
    }

    /// The `n` live flows with the most bytes (both ways), largest first (ties: lower flow
    /// id first), into `out` (cleared first): what the console's flow pane shows. Walks every
    /// slot keeping only the `n` best so far, so a table of a million flows costs a walk,
    /// not a million snapshots (`cargo bench -p portcullis-benches --bench flow_sample`).
    pub fn largest(&self, n: usize, out: &mut Vec<LiveFlow>) {
        use std::cmp::Reverse;
        out.clear();
        if n == 0 {
            return;
        }
        // A max-heap on (fewer bytes, higher id): its top is the first to give way.
        let mut best: std::collections::BinaryHeap<(Reverse<u64>, u64, u32)> = std::collections::BinaryHeap::with_capacity(n + 1);
        for &i in self.map.values() {
            let s = &self.slots[i as usize];
            let key = (Reverse(s.bytes[0] + s.bytes[1]), s.flow_id, i);
            if best.len() < n {
                best.push(key);
            } else if best.peek().is_some_and(|top| (key.0, key.1) < (top.0, top.1)) {
                best.pop();
                best.push(key);
            }
        }
        out.extend(best.into_sorted_vec().into_iter().map(|(_, _, i)| self.live_flow(i)));
    }

    /// Adds every live flow's bytes, packets (both ways) and one flow to its source address
    /// (the side that opened it) in `out`: what the console's top talkers show. Walks every
    /// slot, like [`FlowTable::largest`]: once a second, never per packet.
    pub fn per_source<S: std::hash::BuildHasher>(&self, out: &mut std::collections::HashMap<std::net::IpAddr, (u64, u64, u64), S>) {
        for &i in self.map.values() {
            let s = &self.slots[i as usize];
            let e = out.entry(if s.initiator_rev { s.key.dst_ip() } else { s.key.src_ip() }).or_default();
            e.0 += s.bytes[0] + s.bytes[1];
            e.1 += s.pkts[0] + s.pkts[1];
            e.2 += 1;
        }
    }

    /// Marks the flow in `slot` as having raised an alert.
    pub fn set_alerted(&mut self, slot: u32) {
        self.slots[slot as usize].alerted = true;
    }

    /// Ends every flow whose timeout has passed at `now` (a `clock` value). Each activity list
    /// is ordered by `last_clock`, which never runs backwards, so this stops at the first
    /// flow still alive in each list.
    ///
    /// With features on, the flows' final features are dropped: use
    /// [`FlowTable::expire_exporting`] to receive them.
    pub fn expire(&mut self, now: Timestamp, ended: &mut Vec<FlowRecord>) {
        self.expire_flows(now, ended);
        self.pending.clear();
    }

    /// [`FlowTable::expire`], appending the final features of every flow it ends to `exports`.
    pub fn expire_exporting(&mut self, now: Timestamp, ended: &mut Vec<FlowRecord>, exports: &mut Vec<FeatureExport>) {
        self.expire_flows(now, ended);
        self.hand_over(exports);
    }

    fn expire_flows(&mut self, now: Timestamp, ended: &mut Vec<FlowRecord>) {
        for l in 0..LISTS {
            loop {
                let head = self.lists[l].head;
                if head == NIL || !self.timed_out(head, now) {
                    break;
                }
                // A timed-out flow is logged as of the moment it timed out, not `now`.
                let s = &self.slots[head as usize];
                let at = Timestamp::from_secs_micros(s.last_clock.secs() + i64::from(self.timeouts[l]) + 1, 0);
                ended.push(self.end(head, EndReason::Timeout, at.max(s.last_clock)));
            }
        }
    }

    /// Ends every flow (capture over), ordered by start time then flow id.
    ///
    /// With features on, the flows' final features are dropped: use
    /// [`FlowTable::flush_exporting`] to receive them.
    pub fn flush(&mut self, now: Timestamp, ended: &mut Vec<FlowRecord>) {
        self.flush_flows(now, ended);
        self.pending.clear();
    }

    /// [`FlowTable::flush`], appending the final features of every flow to `exports`, in the
    /// same order as the records.
    pub fn flush_exporting(&mut self, now: Timestamp, ended: &mut Vec<FlowRecord>, exports: &mut Vec<FeatureExport>) {
        self.flush_flows(now, ended);
        self.hand_over(exports);
    }

    fn flush_flows(&mut self, now: Timestamp, ended: &mut Vec<FlowRecord>) {
        let mut live: Vec<u32> = self.map.values().copied().collect();
        live.sort_by_key(|&i| (self.slots[i as usize].start, self.slots[i as usize].flow_id));
        for idx in live {
            ended.push(self.end(idx, EndReason::Shutdown, now));
        }
    }

    fn least_recent(&self) -> Option<u32> {
        self.lists.iter().filter(|l| l.head != NIL).map(|l| l.head).min_by_key(|&h| (self.slots[h as usize].last_clock, h))
    }

    fn end(&mut self, idx: u32, reason: EndReason, now: Timestamp) -> FlowRecord {
        self.unlink(idx);
        let s = self.slots[idx as usize];
        self.map.remove(&s.key);
        self.free.push(idx);
        self.stats.active = self.map.len() as u64;
        match s.state {
            FlowState::New => self.stats.end_new += 1,
            FlowState::Established => self.stats.end_established += 1,
            FlowState::Closed => self.stats.end_closed += 1,
        }
        if reason == EndReason::Timeout {
            self.stats.timeouts += 1;
        }
        let key = if s.initiator_rev { s.key.reversed() } else { s.key };
        if let Some(f) = self.feats.get(idx as usize) {
            self.pending.push(FeatureExport { flow_id: s.flow_id, key, at: now, features: f.snapshot(), is_final: true });
        }
        FlowRecord {
            key,
            slot: idx,
            flow_id: s.flow_id,
            start: s.start,
            end: s.last,
            pkts_toserver: s.pkts[0],
            pkts_toclient: s.pkts[1],
            bytes_toserver: s.bytes[0],
            bytes_toclient: s.bytes[1],
            state: s.state,
            reason,
            alerted: s.alerted,
            tcp_state: s.tcp.state,
            tcp_flags_ts: s.flags[0],
            tcp_flags_tc: s.flags[1],
            icmp_ts: s.icmp[0],
            icmp_tc: s.icmp[1],
            logged_at: now,
            app_proto: None,
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next, l) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next, usize::from(s.list))
        };
        if prev == NIL {
            if self.lists[l].head == idx {
                self.lists[l].head = next;
            }
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            if self.lists[l].tail == idx {
                self.lists[l].tail = prev;
            }
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[idx as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_tail(&mut self, idx: u32) {
        let l = usize::from(self.slots[idx as usize].list);
        let tail = self.lists[l].tail;
        self.slots[idx as usize].prev = tail;
        self.slots[idx as usize].next = NIL;
        if tail == NIL {
            self.lists[l].head = idx;
        } else {
            self.slots[tail as usize].next = idx;
        }
        self.lists[l].tail = idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::TcpFlags;

    fn pkt(src: &str, dst: &str, sp: u16, dp: u16, proto: u8, secs: i64, flags: u8) -> PacketMeta {
        let key = FlowKey::new(src.parse().unwrap(), dst.parse().unwrap(), sp, dp, proto);
        let mut p = PacketMeta::new(Timestamp::from_secs_micros(secs, 0), key, 100);
        p.tcp_flags = TcpFlags(flags);
        p
    }

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;
    const R: u8 = TcpFlags::RST;

    #[test]
    fn largest_flows_by_bytes() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let mut out = Vec::new();
        t.largest(3, &mut out);
        assert!(out.is_empty());
        for (i, n) in [(1u16, 2), (2, 5), (3, 1), (4, 3)] {
            for _ in 0..n {
                t.update(&pkt("10.0.0.2", "10.0.0.1", 4000 + i, 53, 17, 1, 0), &mut ended);
            }
        }
        t.largest(3, &mut out);
        let ports: Vec<u16> = out.iter().map(|f| f.flow.key.sport).collect();
        assert_eq!(ports, [4002, 4004, 4001], "most bytes first, the smallest left out");
        assert_eq!(out[0].flow.bytes_toserver, 500);
        t.largest(10, &mut out);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn per_source_adds_up_each_initiators_flows() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        // 10.0.0.2 opens two flows towards a lower address (stored reversed), 10.0.0.1 one.
        for (src, dst, sp, n) in [("10.0.0.2", "10.0.0.1", 4001, 2), ("10.0.0.2", "10.0.0.1", 4002, 1), ("10.0.0.1", "10.0.0.9", 4003, 3)] {
            for _ in 0..n {
                t.update(&pkt(src, dst, sp, 53, 17, 1, 0), &mut ended);
            }
        }
        t.update(&pkt("10.0.0.1", "10.0.0.2", 53, 4001, 17, 1, 0), &mut ended);
        let mut got = std::collections::HashMap::new();
        t.per_source(&mut got);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[&ip("10.0.0.2")], (400, 4, 2), "a reply counts for the flow's initiator");
        assert_eq!(got[&ip("10.0.0.1")], (300, 3, 1));
        // Added into what is there: the caller folds several tables.
        t.per_source(&mut got);
        assert_eq!(got[&ip("10.0.0.1")], (600, 6, 2));
    }

    #[test]
    fn icmp_errors_only_join_existing_flows() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let mut err = pkt("10.0.0.1", "10.0.0.2", 53, 5000, 17, 1, 0);
        err.attach_only = true;
        assert!(t.update(&err, &mut ended).is_none());
        assert!(t.is_empty());
        t.update(&pkt("10.0.0.2", "10.0.0.1", 5000, 53, 17, 1, 0), &mut ended);
        assert_eq!(t.update(&err, &mut ended).unwrap().dir, Direction::ToClient);
        t.flush(Timestamp::from_secs_micros(2, 0), &mut ended);
        assert_eq!((ended[0].pkts_toclient, ended[0].state), (1, FlowState::New), "an error does not establish a flow");
    }

    #[test]
    fn counts_both_directions_of_one_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let u1 = t.update(&pkt("10.0.0.2", "10.0.0.1", 4000, 80, 6, 1, S), &mut ended).unwrap();
        let mut synack = pkt("10.0.0.1", "10.0.0.2", 80, 4000, 6, 1, SA);
        synack.tcp_ack = 1;
        let u2 = t.update(&synack, &mut ended).unwrap();
        let u3 = t.update(&pkt("10.0.0.2", "10.0.0.1", 4000, 80, 6, 2, A), &mut ended).unwrap();
        assert!(u1.new_flow && !u2.new_flow && !u3.new_flow);
        assert_eq!((u1.dir, u2.dir), (Direction::ToServer, Direction::ToClient));
        assert_eq!((u1.slot, u1.flow_id), (u3.slot, u3.flow_id));
        assert!(!u3.established, "the handshake's last ACK is not yet established");
        let u4 = t.update(&pkt("10.0.0.2", "10.0.0.1", 4000, 80, 6, 2, A), &mut ended).unwrap();
        assert!(u4.established);
        assert_eq!(t.snapshot(u4.slot).pkts_toserver, 3);
        t.flush(Timestamp::from_secs_micros(3, 0), &mut ended);
        let r = ended[0];
        assert_eq!(r.key.src_ip().to_string(), "10.0.0.2");
        assert_eq!((r.pkts_toserver, r.pkts_toclient, r.bytes_toserver), (3, 1, 300));
        assert_eq!(r.slot, u1.slot);
        assert_eq!((r.state, r.reason), (FlowState::Established, EndReason::Shutdown));
        assert_eq!(r.tcp_flags_ts, S | A);
    }

    #[test]
    fn udp_is_established_once_both_sides_spoke() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let q = t.update(&pkt("10.0.0.2", "10.0.0.1", 5000, 53, 17, 1, 0), &mut ended).unwrap();
        let q2 = t.update(&pkt("10.0.0.2", "10.0.0.1", 5000, 53, 17, 1, 0), &mut ended).unwrap();
        let r = t.update(&pkt("10.0.0.1", "10.0.0.2", 53, 5000, 17, 1, 0), &mut ended).unwrap();
        assert_eq!((q.established, q2.established, r.established), (false, false, true));
    }

    #[test]
    fn idle_flows_time_out_by_state() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        t.update(&pkt("10.0.0.2", "10.0.0.1", 5000, 53, 17, 10, 0), &mut ended);
        t.expire(Timestamp::from_secs_micros(40, 999_999), &mut ended);
        assert!(ended.is_empty(), "udp new timeout is 30 s, and 30 s later is not past it");
        t.expire(Timestamp::from_secs_micros(41, 0), &mut ended);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, EndReason::Timeout);
        assert_eq!(ended[0].logged_at, Timestamp::from_secs_micros(41, 0));
        assert!(t.is_empty());
    }

    #[test]
    fn tuple_seen_after_timeout_is_a_new_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        t.update(&pkt("10.0.0.2", "10.0.0.1", 5000, 53, 17, 10, 0), &mut ended);
        let u = t.update(&pkt("10.0.0.1", "10.0.0.2", 53, 5000, 17, 100, 0), &mut ended).unwrap();
        assert!(u.new_flow);
        assert_eq!(u.dir, Direction::ToServer, "the new flow's initiator is this packet's sender");
        assert_eq!(ended.len(), 1);
    }

    #[test]
    fn syn_after_reset_starts_a_new_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        t.update(&pkt("10.0.0.2", "10.0.0.1", 4000, 80, 6, 1, S), &mut ended);
        t.update(&pkt("10.0.0.1", "10.0.0.2", 80, 4000, 6, 1, R | A), &mut ended);
        let mut again = pkt("10.0.0.2", "10.0.0.1", 4000, 80, 6, 2, S);
        again.tcp_seq = 77;
        assert!(t.update(&again, &mut ended).unwrap().new_flow);
        assert_eq!(ended[0].reason, EndReason::TcpReuse);
        assert_eq!(ended[0].state, FlowState::Closed);
    }

    #[test]
    fn memcap_evicts_least_recently_active() {
        let cfg = FlowConfig { memcap: (FLOW_COST * 2) as u64, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg);
        let mut ended = Vec::new();
        t.update(&pkt("10.0.0.2", "10.0.0.1", 1, 53, 17, 1, 0), &mut ended);
        t.update(&pkt("10.0.0.2", "10.0.0.1", 2, 53, 17, 2, 0), &mut ended);
        t.update(&pkt("10.0.0.2", "10.0.0.1", 1, 53, 17, 3, 0), &mut ended);
        t.update(&pkt("10.0.0.2", "10.0.0.1", 3, 53, 17, 4, 0), &mut ended);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].key.sport, ended[0].reason), (2, EndReason::Forced));
        assert_eq!(t.stats.memcap, 1);
        assert_eq!(t.len(), 2);
    }
}

#[cfg(test)]
mod feature_tests {
    use super::*;
    use crate::features::feature_index;
    use portcullis_common::TcpFlags;

    const T0: i64 = 1_700_000_000_000_000;

    /// A TCP packet at `us` microseconds, client 10.0.0.1:40000 → server 10.0.0.2:80 or back.
    fn tcp(us: i64, c2s: bool, flags: u8, payload: u32) -> PacketMeta {
        let k = FlowKey::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 40000, 80, 6);
        let mut p = PacketMeta::new(Timestamp(T0 + us), if c2s { k } else { k.reversed() }, 66 + payload);
        p.tcp_flags = TcpFlags(flags);
        p.l4_header_len = 32;
        p.payload_len = payload;
        p.tcp_win = if c2s { 502 } else { 509 };
        p.tcp_seq = 1000 + us as u32;
        p
    }

    fn udp(us: i64, c2s: bool, payload: u32) -> PacketMeta {
        let k = FlowKey::new("10.0.0.5".parse().unwrap(), "10.0.0.53".parse().unwrap(), 5353, 53, 17);
        let mut p = PacketMeta::new(Timestamp(T0 + us), if c2s { k } else { k.reversed() }, 42 + payload);
        p.l4_header_len = 8;
        p.payload_len = payload;
        p
    }

    fn connection() -> Vec<PacketMeta> {
        use TcpFlags as F;
        vec![
            tcp(0, true, F::SYN, 0),
            tcp(1000, false, F::SYN | F::ACK, 0),
            tcp(1500, true, F::ACK, 0),
            tcp(2000, true, F::PSH | F::ACK, 100),
            tcp(12000, false, F::PSH | F::ACK, 1000),
            tcp(7_000_000, true, F::FIN | F::ACK, 0),
            tcp(7_001_000, false, F::FIN | F::ACK, 0),
            tcp(7_002_000, true, F::ACK, 0),
        ]
    }

    fn standalone(pkts: &[PacketMeta]) -> FlowFeatures {
        let mut f = FlowFeatures::new(&pkts[0]);
        for p in &pkts[1..] {
            f.update(p);
        }
        f
    }

    fn run(cfg: FlowConfig, pkts: &[PacketMeta]) -> (Vec<FlowRecord>, Vec<FeatureExport>) {
        let mut t = FlowTable::new(cfg);
        let (mut ended, mut exports) = (Vec::new(), Vec::new());
        for p in pkts {
            t.update_exporting(p, &mut ended, &mut exports);
        }
        let end = pkts.last().map_or(Timestamp(T0), |p| p.clock);
        t.expire_exporting(end, &mut ended, &mut exports);
        t.flush_exporting(end, &mut ended, &mut exports);
        (ended, exports)
    }

    fn on(checkpoint_secs: u32) -> FlowConfig {
        FlowConfig { features: true, checkpoint_secs, ..FlowConfig::default() }
    }

    #[test]
    fn final_features_equal_the_accumulator_fed_the_same_packets() {
        let pkts = connection();
        let (records, exports) = run(on(0), &pkts);
        assert_eq!((records.len(), exports.len()), (1, 1));
        let (r, e) = (&records[0], &exports[0]);
        assert!(e.is_final);
        assert_eq!((e.flow_id, e.key, e.at), (r.flow_id, r.key, r.logged_at));
        let want = standalone(&pkts).snapshot();
        assert_eq!(e.features.map(f64::to_bits), want.map(f64::to_bits));
        // And the values are the flow's, not zeros: 5 forward and 3 backward packets.
        let get = |n: &str| e.features[feature_index(n).unwrap()];
        assert_eq!((get("Total Fwd Packet"), get("Total Bwd packets"), get("Dst Port")), (5.0, 3.0, 80.0));
        assert_eq!(get("Flow Duration"), 7_002_000.0);
    }

    #[test]
    fn features_off_leaves_records_as_before_and_exports_nothing() {
        let mut pkts = connection();
        pkts.extend((0..50).map(|i| udp(i * 3_000_000, i % 3 != 0, 20 + i as u32)));
        pkts.sort_by_key(|p| p.ts);
        let (off, none) = run(FlowConfig::default(), &pkts);
        let (with, exports) = run(on(10), &pkts);
        assert!(none.is_empty());
        assert_eq!(off, with, "features change no record");
        let finals: Vec<u64> = exports.iter().filter(|e| e.is_final).map(|e| e.flow_id).collect();
        assert_eq!(finals, off.iter().map(|r| r.flow_id).collect::<Vec<_>>(), "one final export per record, in record order");
    }

    #[test]
    fn a_long_flow_is_checkpointed_once_per_interval() {
        // A packet every 7 s for 200 s, checkpoints every 60 s of flow age.
        let pkts: Vec<_> = (0..=28).map(|i| udp(i * 7_000_000, i % 2 == 0, 10)).collect();
        let (records, exports) = run(on(60), &pkts);
        assert_eq!(records.len(), 1);
        let checkpoints: Vec<&FeatureExport> = exports.iter().filter(|e| !e.is_final).collect();
        // The first packets at or past 60, 120 and 180 s: 63, 126 and 182 s.
        let at: Vec<i64> = checkpoints.iter().map(|e| (e.at.0 - T0) / 1_000_000).collect();
        assert_eq!(at, [63, 126, 182]);
        for e in &checkpoints {
            let upto: Vec<PacketMeta> = pkts.iter().copied().filter(|p| p.ts <= e.at).collect();
            assert_eq!(e.features.map(f64::to_bits), standalone(&upto).snapshot().map(f64::to_bits), "at {:?}", e.at);
            assert_eq!((e.flow_id, e.key), (records[0].flow_id, records[0].key));
        }
        assert!(exports.last().unwrap().is_final);
        assert_eq!(exports.len(), 4);
    }

    #[test]
    fn a_burst_inside_one_interval_is_checkpointed_once() {
        let mut pkts = vec![udp(0, true, 1)];
        pkts.extend((0..100).map(|i| udp(30_000_000 + i * 1000, true, 1)));
        let (_, exports) = run(on(30), &pkts);
        assert_eq!(exports.iter().filter(|e| !e.is_final).count(), 1);
        let (_, exports) = run(on(0), &pkts);
        assert_eq!(exports.iter().filter(|e| !e.is_final).count(), 0, "0 means only at the end");
    }

    #[test]
    fn reused_slots_start_fresh_features() {
        // A UDP flow times out; the next flow on the same tuple takes its slot and must not
        // inherit its features.
        let pkts = [udp(0, true, 5), udp(1000, false, 7), udp(400_000_000, false, 9)];
        let (records, exports) = run(on(0), &pkts);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].slot, records[1].slot);
        assert_eq!(exports[0].features.map(f64::to_bits), standalone(&pkts[..2]).snapshot().map(f64::to_bits));
        assert_eq!(exports[1].features.map(f64::to_bits), standalone(&pkts[2..]).snapshot().map(f64::to_bits));
        assert_eq!(exports[1].key.sport, 53, "the new flow's initiator is the server");
    }

    #[test]
    fn icmp_errors_do_not_feed_features() {
        let mut err = udp(500, false, 0);
        err.attach_only = true;
        let pkts = [udp(0, true, 5), err, udp(1000, false, 7)];
        let (_, exports) = run(on(0), &pkts);
        assert_eq!(exports[0].features.map(f64::to_bits), standalone(&[pkts[0], pkts[2]]).snapshot().map(f64::to_bits));
    }

    #[test]
    fn records_stay_small() {
        // Why the final features travel as a FeatureExport and not inside FlowRecord: the
        // vector alone is 664 bytes, several times a record, and every flow-only consumer
        // would copy it.
        let (r, e) = (std::mem::size_of::<FlowRecord>(), std::mem::size_of::<FeatureExport>());
        eprintln!("FlowRecord {r} bytes, FeatureExport {e} bytes, FlowFeatures {} bytes", std::mem::size_of::<FlowFeatures>());
        assert!(r * 4 < std::mem::size_of::<FeatureVector>(), "{r}");
    }

    #[test]
    fn memcap_pays_for_features() {
        let off = FlowConfig { memcap: 1 << 20, ..FlowConfig::default() };
        let with = FlowConfig { features: true, ..off };
        assert_eq!(with.flow_cost(), off.flow_cost() + std::mem::size_of::<FlowFeatures>());
        assert!(with.max_flows() * 4 < off.max_flows(), "{} vs {}", with.max_flows(), off.max_flows());
        let mut t = FlowTable::new(FlowConfig { memcap: (with.flow_cost() * 2) as u64, ..with });
        let (mut ended, mut exports) = (Vec::new(), Vec::new());
        for (i, sp) in [1u16, 2, 3].into_iter().enumerate() {
            let mut p = udp(i as i64, true, 1);
            p.key.sport = sp;
            t.update_exporting(&p, &mut ended, &mut exports);
        }
        assert_eq!(t.memuse(), (2 * with.flow_cost()) as u64);
        assert_eq!((ended.len(), ended[0].reason, ended[0].key.sport), (1, EndReason::Forced, 1));
        assert!(exports[0].is_final && exports[0].flow_id == ended[0].flow_id, "an evicted flow's features are exported too");
    }

    #[test]
    fn update_without_exports_drops_them() {
        let mut t = FlowTable::new(on(1));
        let (mut ended, mut exports) = (Vec::new(), Vec::new());
        t.update(&udp(0, true, 1), &mut ended);
        t.update(&udp(2_000_000, true, 1), &mut ended);
        let u = t.update_exporting(&udp(2_500_000, true, 1), &mut ended, &mut exports).unwrap();
        assert!(exports.is_empty(), "the checkpoint due at 2 s was dropped by update, not kept for later");
        assert_eq!(t.features_of(u.slot).unwrap().packets(), 3);
        t.flush_exporting(Timestamp(T0 + 3_000_000), &mut ended, &mut exports);
        assert_eq!(exports.len(), 1);
        assert!(t.features_of(u.slot).is_none());
    }
}

#[cfg(test)]
mod model {
    //! The table against a plain `HashMap` model: with no timeouts and no memcap pressure,
    //! every packet's bytes end up in exactly one record, on the side that sent them.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap as Model;

    proptest! {
        #[test]
        fn counters_match_a_hashmap(pkts in proptest::collection::vec((0u8..4, 0u8..4, 0u16..3, 1u32..1500), 1..400)) {
            let mut t = FlowTable::new(FlowConfig::default());
            let mut ended = Vec::new();
            let mut model: Model<(u8, u8, u16), u64> = Model::new();
            let mut sent = Vec::new();
            for (i, (a, b, port, len)) in pkts.iter().enumerate() {
                let src = format!("10.0.0.{a}").parse().unwrap();
                let dst = format!("10.0.1.{b}").parse().unwrap();
                let (sp, dp) = if i % 2 == 0 { (1000 + port, 53) } else { (53, 1000 + port) };
                let (src, dst, key) = if i % 2 == 0 { (src, dst, (*a, *b, *port)) } else { (dst, src, (*a, *b, *port)) };
                let p = PacketMeta::new(Timestamp::from_secs_micros(1 + i as i64 / 100, 0), FlowKey::new(src, dst, sp, dp, 17), *len);
                t.update(&p, &mut ended);
                sent.push(p);
                *model.entry(key).or_default() += u64::from(*len);
            }
            t.flush(Timestamp::from_secs_micros(10, 0), &mut ended);
            prop_assert_eq!(ended.len(), model.len());
            // The same packets with features on: identical records, and each flow's final
            // features count exactly its packets.
            let mut tf = FlowTable::new(FlowConfig { features: true, checkpoint_secs: 1, ..FlowConfig::default() });
            let (mut ended_f, mut exports) = (Vec::new(), Vec::new());
            for p in &sent {
                tf.update_exporting(p, &mut ended_f, &mut exports);
            }
            tf.flush_exporting(Timestamp::from_secs_micros(10, 0), &mut ended_f, &mut exports);
            prop_assert_eq!(&ended_f, &ended);
            let finals: Vec<&FeatureExport> = exports.iter().filter(|e| e.is_final).collect();
            prop_assert_eq!(finals.len(), ended.len());
            for (r, e) in ended.iter().zip(&finals) {
                prop_assert_eq!(r.flow_id, e.flow_id);
                prop_assert_eq!((r.pkts_toserver + r.pkts_toclient) as f64, e.features[3] + e.features[4]);
            }
            // Two tables sharded by flow hash, as two workers: the same exports once sorted.
            let sort = |v: &mut Vec<FeatureExport>| v.sort_by_key(|e| (e.at, e.flow_id, e.is_final));
            let bits = |v: &[FeatureExport]| v.iter().map(|e| (e.at, e.flow_id, e.key, e.is_final, e.features.map(f64::to_bits))).collect::<Vec<_>>();
            let mut sharded = Vec::new();
            for w in 0..2 {
                let mut t = FlowTable::new(FlowConfig { features: true, checkpoint_secs: 1, ..FlowConfig::default() });
                let mut e = Vec::new();
                for p in sent.iter().filter(|p| p.key.stable_hash() % 2 == w) {
                    t.update_exporting(p, &mut e, &mut sharded);
                }
                t.flush_exporting(Timestamp::from_secs_micros(10, 0), &mut e, &mut sharded);
            }
            sort(&mut sharded);
            sort(&mut exports);
            prop_assert_eq!(bits(&sharded), bits(&exports));
            let total: u64 = ended.iter().map(|r| r.bytes_toserver + r.bytes_toclient).sum();
            prop_assert_eq!(total, model.values().sum::<u64>());
            for r in &ended {
                let a = r.key.src_ip().to_string();
                let (lo, hi) = if a.starts_with("10.0.0.") { (r.key.src_ip(), r.key.dst_ip()) } else { (r.key.dst_ip(), r.key.src_ip()) };
                let port = if r.key.sport == 53 { r.key.dport } else { r.key.sport };
                let last = |ip: std::net::IpAddr| ip.to_string().rsplit('.').next().unwrap().parse::<u8>().unwrap();
                prop_assert_eq!(Some(&(r.bytes_toserver + r.bytes_toclient)), model.get(&(last(lo), last(hi), port - 1000)));
            }
        }
    }
}
