//! CICFlowMeter flow features, computed incrementally per flow.
//!
//! Portcullis's learned detector is trained on the corrected CIC-IDS2017 flows (Engelen et
//! al., "CICIDS2017 improved"), whose columns are CICFlowMeter's features as the fixed tool
//! computes them. [`FEATURE_NAMES`] lists the 83 the model may use, spelled exactly as the
//! dataset's CSV header, and [`FlowFeatures`] computes them for one flow with O(1) work and
//! no allocation per packet: Welford running moments for every mean, standard deviation and
//! variance, running minima and maxima, inter-arrival times from the last-seen timestamps,
//! the tool's bulk state machine and its active/idle periods. [`FlowFeatures::snapshot`]
//! gives the vector at any time: at the end of a flow, or at a checkpoint of a long one.
//! `flowtable/FEATURES.md` gives every feature's definition and unit, and where Portcullis
//! deliberately differs from the tool.
//!
//! # Two kinds of flow
//!
//! CICFlowMeter cuts traffic into flows differently from Suricata, so the same packets make
//! different flows in the two:
//!
//! - [`CicFlowTable`] is a small standalone splitter that follows the corrected tool: a flow
//!   starts at its first packet (which fixes the forward direction), a TCP flow is ready to
//!   end once both FINs and the last ACK, or a RST, were seen, and ends when a new SYN for
//!   the same tuple arrives; any flow ends when a packet arrives more than the flow timeout
//!   (120 s) after the flow's first packet, and a TCP connection cut that way goes on in a
//!   new flow that keeps its orientation and counts "Total TCP Flow Time" from the
//!   connection's start. The 5 s activity timeout separates active from idle periods. This is
//!   what the conformance test and the training pipeline's extraction of flows from
//!   captures use (`portcullis features`), so features computed on captures are the ones the
//!   model was trained on.
//! - The main [`FlowTable`](crate::FlowTable) follows Suricata's flow semantics and
//!   timeouts. It carries one [`FlowFeatures`] per flow (created from the flow's first
//!   packet, updated with every packet) and exports [`FlowFeatures::snapshot`] when the
//!   flow ends and, for long flows, every N seconds of flow age ([`FlowFeatures::checkpoint_due`]),
//!   so that slow attacks are scored while they run. Its flows are usually CIC flows
//!   (a TCP connection, a UDP conversation), but a Suricata flow can span several CIC flows
//!   (a connection longer than 120 s, a tuple reused after a RST) or be cut where CIC's is not
//!   (Suricata's timeouts); the model then sees the features of the longer or shorter flow.
//!
//! Durations and inter-arrival times are microseconds, rates are per second, lengths are
//! transport payload bytes and header lengths transport header bytes, as in the dataset.

use hashbrown::HashMap;
use portcullis_common::{ipproto, FlowKey, PacketMeta, TcpFlags, Timestamp};

/// Number of features in a [`FeatureVector`].
pub const N_FEATURES: usize = 83;

/// The feature names, exactly the CSV column names of the improved CIC-IDS2017 dataset:
/// "Dst Port", "Protocol", then every column from "Flow Duration" to "Total TCP Flow Time"
/// in CSV order. A model names the features it uses; [`feature_index`] maps them here.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "Dst Port",
    "Protocol",
    "Flow Duration",
    "Total Fwd Packet",
    "Total Bwd packets",
    "Total Length of Fwd Packet",
    "Total Length of Bwd Packet",
    "Fwd Packet Length Max",
    "Fwd Packet Length Min",
    "Fwd Packet Length Mean",
    "Fwd Packet Length Std",
    "Bwd Packet Length Max",
    "Bwd Packet Length Min",
    "Bwd Packet Length Mean",
    "Bwd Packet Length Std",
    "Flow Bytes/s",
    "Flow Packets/s",
    "Flow IAT Mean",
    "Flow IAT Std",
    "Flow IAT Max",
    "Flow IAT Min",
    "Fwd IAT Total",
    "Fwd IAT Mean",
    "Fwd IAT Std",
    "Fwd IAT Max",
    "Fwd IAT Min",
    "Bwd IAT Total",
    "Bwd IAT Mean",
    "Bwd IAT Std",
    "Bwd IAT Max",
    "Bwd IAT Min",
    "Fwd PSH Flags",
    "Bwd PSH Flags",
    "Fwd URG Flags",
    "Bwd URG Flags",
    "Fwd RST Flags",
    "Bwd RST Flags",
    "Fwd Header Length",
    "Bwd Header Length",
    "Fwd Packets/s",
    "Bwd Packets/s",
    "Packet Length Min",
    "Packet Length Max",
    "Packet Length Mean",
    "Packet Length Std",
    "Packet Length Variance",
    "FIN Flag Count",
    "SYN Flag Count",
    "RST Flag Count",
    "PSH Flag Count",
    "ACK Flag Count",
    "URG Flag Count",
    "CWR Flag Count",
    "ECE Flag Count",
    "Down/Up Ratio",
    "Average Packet Size",
    "Fwd Segment Size Avg",
    "Bwd Segment Size Avg",
    "Fwd Bytes/Bulk Avg",
    "Fwd Packet/Bulk Avg",
    "Fwd Bulk Rate Avg",
    "Bwd Bytes/Bulk Avg",
    "Bwd Packet/Bulk Avg",
    "Bwd Bulk Rate Avg",
    "Subflow Fwd Packets",
    "Subflow Fwd Bytes",
    "Subflow Bwd Packets",
    "Subflow Bwd Bytes",
    "FWD Init Win Bytes",
    "Bwd Init Win Bytes",
    "Fwd Act Data Pkts",
    "Fwd Seg Size Min",
    "Active Mean",
    "Active Std",
    "Active Max",
    "Active Min",
    "Idle Mean",
    "Idle Std",
    "Idle Max",
    "Idle Min",
    "ICMP Code",
    "ICMP Type",
    "Total TCP Flow Time",
];

/// One flow's features, indexed as [`FEATURE_NAMES`]. `f64` holds every microsecond count
/// and byte total exactly.
pub type FeatureVector = [f64; N_FEATURES];

/// The index of a feature by its CSV column name.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// CICFlowMeter's activity timeout: a gap longer than this ends an active period and is
/// counted as idle time.
pub const ACTIVITY_TIMEOUT_US: i64 = 5_000_000;
/// CICFlowMeter's flow timeout: a packet arriving more than this after a flow's first packet
/// starts a new flow.
pub const FLOW_TIMEOUT_US: i64 = 120_000_000;
/// A gap longer than this between payload packets of one direction ends a candidate bulk.
const BULK_GAP_US: i64 = 1_000_000;
/// Payload packets in a row (with no payload from the other side between) that make a bulk.
const BULK_MIN_PACKETS: u64 = 4;

/// Running count, sum, minimum, maximum, mean and second central moment (Welford), with
/// the sample (n − 1) variance that CICFlowMeter's statistics library reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Running {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Running {
    fn add(&mut self, x: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.n += 1;
        self.sum += x;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    fn std(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Max, min, mean and standard deviation, all zero when nothing was added.
    fn four(&self) -> [f64; 4] {
        if self.n == 0 {
            [0.0; 4]
        } else {
            [self.max, self.min, self.mean, self.std()]
        }
    }
}

/// CICFlowMeter's bulk detector for one direction: at least four payload packets, each
/// within a second of the previous, with no payload packet from the other side in between.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Bulk {
    /// Start of the candidate bulk; `None` when there is none.
    start: Option<i64>,
    /// Time of the last payload packet of this direction that joined a candidate.
    last: Option<i64>,
    cand_packets: u64,
    cand_bytes: u64,
    bulks: u64,
    packets: u64,
    bytes: u64,
    duration_us: i64,
}

impl Bulk {
    /// `other_last` is the other direction's `last`: payload from the other side since this
    /// candidate began breaks it.
    fn add(&mut self, ts: i64, size: u64, other_last: Option<i64>) {
        if let (Some(o), Some(s)) = (other_last, self.start) {
            if o > s {
                self.start = None;
            }
        }
        if size == 0 {
            return;
        }
        match (self.start, self.last) {
            (Some(_), Some(last)) if ts - last <= BULK_GAP_US => {
                self.cand_packets += 1;
                self.cand_bytes += size;
                if self.cand_packets == BULK_MIN_PACKETS {
                    self.bulks += 1;
                    self.packets += self.cand_packets;
                    self.bytes += self.cand_bytes;
                    self.duration_us += ts - self.start.unwrap_or(ts);
                } else if self.cand_packets > BULK_MIN_PACKETS {
                    self.packets += 1;
                    self.bytes += size;
                    self.duration_us += ts - last;
                }
                self.last = Some(ts);
            }
            _ => {
                self.start = Some(ts);
                self.last = Some(ts);
                self.cand_packets = 1;
                self.cand_bytes = size;
            }
        }
    }

    /// Bytes per bulk, packets per bulk and bytes per second of bulk, truncated to integers
    /// as the tool that made the dataset does.
    fn averages(&self) -> [f64; 3] {
        if self.bulks == 0 {
            return [0.0; 3];
        }
        let rate = if self.duration_us != 0 { (self.bytes as f64 / (self.duration_us as f64 / 1e6)).trunc() } else { 0.0 };
        [(self.bytes / self.bulks) as f64, (self.packets / self.bulks) as f64, rate]
    }
}

/// What one direction of a flow accumulates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Side {
    /// Payload lengths: count, total, min, max, mean, std.
    len: Running,
    iat: Running,
    last_seen: i64,
    header_bytes: u64,
    psh: u32,
    urg: u32,
    rst: u32,
    fin: u32,
    bulk: Bulk,
}

/// The CICFlowMeter features of one flow, updated packet by packet in O(1) without
/// allocating (736 bytes, `Copy`).
///
/// The first packet fixes the forward direction (its sender is the flow's source), as in
/// CICFlowMeter. Feed every packet of the flow, in order, to [`FlowFeatures::update`];
/// [`FlowFeatures::snapshot`] may be called at any time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowFeatures {
    /// The forward direction's sender and its port.
    src: [u8; 16],
    sport: u16,
    dport: u16,
    proto: u8,
    activity_timeout_us: i64,
    start_us: i64,
    last_us: i64,
    /// Start of the TCP connection this flow belongs to (earlier than `start_us` when a
    /// flow timeout split the connection).
    conn_start_us: i64,
    all_len: Running,
    flow_iat: Running,
    fwd: Side,
    bwd: Side,
    /// FIN, SYN, RST, PSH, ACK, URG, CWR, ECE: the flag bit order.
    flags: [u32; 8],
    fwd_act_data: u64,
    /// Smallest forward transport header; stuck at 0 when the flow's first packet was a
    /// backward one, as in the tool.
    fwd_min_header: u16,
    fwd_init_win: u16,
    /// The window of the most recent backward packet: the tool overwrites it each time.
    bwd_win: u16,
    active: Running,
    idle: Running,
    active_start_us: i64,
    active_end_us: i64,
    icmp: Option<(u8, u8)>,
    checkpoints: u32,
}

impl FlowFeatures {
    /// A flow whose first packet is `first`, which is also its forward direction.
    pub fn new(first: &PacketMeta) -> Self {
        Self::with_orientation(first, &first.key, first.ts, ACTIVITY_TIMEOUT_US)
    }

    /// A flow whose forward direction is `fwd` (src = forward sender), first packet
    /// `first` (either direction), belonging to a connection that began at `conn_start`, and
    /// with the given activity timeout. [`CicFlowTable`] uses it for a TCP connection that
    /// the flow timeout split.
    pub fn with_orientation(first: &PacketMeta, fwd: &FlowKey, conn_start: Timestamp, activity_timeout_us: i64) -> Self {
        let ts = first.ts.0;
        let mut f = FlowFeatures {
            src: fwd.src,
            sport: fwd.sport,
            dport: fwd.dport,
            proto: fwd.proto,
            activity_timeout_us,
            start_us: ts,
            last_us: ts,
            conn_start_us: conn_start.0.min(ts),
            all_len: Running::default(),
            flow_iat: Running::default(),
            fwd: Side::default(),
            bwd: Side::default(),
            flags: [0; 8],
            fwd_act_data: 0,
            fwd_min_header: 0,
            fwd_init_win: 0,
            bwd_win: 0,
            active: Running::default(),
            idle: Running::default(),
            active_start_us: ts,
            active_end_us: ts,
            icmp: None,
            checkpoints: 0,
        };
        if matches!(first.key.proto, ipproto::ICMP | ipproto::ICMPV6) {
            f.icmp = Some((first.icmp_code, first.icmp_type));
        }
        let forward = f.is_forward(first);
        if forward {
            f.fwd_min_header = first.l4_header_len;
            f.fwd_init_win = first.tcp_win;
        } else {
            f.bwd_win = first.tcp_win;
        }
        f.count(first, forward);
        f
    }

    /// Whether `meta` travels in the flow's forward direction.
    pub fn is_forward(&self, meta: &PacketMeta) -> bool {
        meta.key.src == self.src && meta.key.sport == self.sport
    }

    /// Adds a packet after the first. O(1), no allocation.
    pub fn update(&mut self, meta: &PacketMeta) {
        let ts = meta.ts.0;
        // Active/idle: a gap longer than the activity timeout closes the active period
        // (recorded only when it lasted) and counts as idle, all in relative time.
        if ts - self.active_end_us > self.activity_timeout_us {
            if self.active_end_us > self.active_start_us {
                self.active.add((self.active_end_us - self.active_start_us) as f64);
            }
            self.idle.add((ts - self.active_end_us) as f64);
            self.active_start_us = ts;
        }
        self.active_end_us = ts;

        let forward = self.is_forward(meta);
        let payload = u64::from(self.payload(meta));
        if forward {
            if payload >= 1 {
                self.fwd_act_data += 1;
            }
            self.fwd_min_header = self.fwd_min_header.min(meta.l4_header_len);
        } else {
            self.bwd_win = meta.tcp_win;
        }
        let side = if forward { &mut self.fwd } else { &mut self.bwd };
        if side.len.n > 0 {
            side.iat.add((ts - side.last_seen) as f64);
        }
        self.flow_iat.add((ts - self.last_us) as f64);
        self.last_us = ts;
        self.count(meta, forward);
    }

    /// What every packet, the first included, adds.
    fn count(&mut self, meta: &PacketMeta, forward: bool) {
        let ts = meta.ts.0;
        let payload = u64::from(self.payload(meta));
        let (side, other) = if forward { (&mut self.fwd, &self.bwd) } else { (&mut self.bwd, &self.fwd) };
        side.bulk.add(ts, payload, other.bulk.last);
        side.len.add(payload as f64);
        side.last_seen = ts;
        side.header_bytes += u64::from(meta.l4_header_len);
        let fl = meta.tcp_flags;
        side.psh += u32::from(fl.has(TcpFlags::PSH));
        side.urg += u32::from(fl.has(TcpFlags::URG));
        side.rst += u32::from(fl.has(TcpFlags::RST));
        side.fin += u32::from(fl.has(TcpFlags::FIN));
        for (bit, n) in self.flags.iter_mut().enumerate() {
            *n += u32::from(fl.0 >> bit & 1);
        }
        self.all_len.add(payload as f64);
    }

    /// Transport payload bytes as the tool counts them: TCP and UDP payload, nothing for
    /// other protocols (ICMP included).
    fn payload(&self, meta: &PacketMeta) -> u32 {
        match meta.key.proto {
            ipproto::TCP | ipproto::UDP => meta.payload_len,
            _ => 0,
        }
    }

    /// The flow's first packet's time.
    pub fn start(&self) -> Timestamp {
        Timestamp(self.start_us)
    }

    /// The flow's last packet's time.
    pub fn last_seen(&self) -> Timestamp {
        Timestamp(self.last_us)
    }

    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.fwd.len.n + self.bwd.len.n
    }

    /// FIN flags seen in the forward and backward directions.
    pub fn fins(&self) -> (u32, u32) {
        (self.fwd.fin, self.bwd.fin)
    }

    /// Whether a checkpoint snapshot is due at `now` for a flow scored every `every_secs`
    /// seconds of its age; counts it when it is. The main table calls this when it sees
    /// a packet or expires flows, so a long flow is scored while it runs.
    pub fn checkpoint_due(&mut self, now: Timestamp, every_secs: u32) -> bool {
        if every_secs == 0 {
            return false;
        }
        let age = now.0 - self.start_us;
        let due = (age / (i64::from(every_secs) * 1_000_000)).max(0) as u32;
        if due > self.checkpoints {
            self.checkpoints = due;
            true
        } else {
            false
        }
    }

    /// The feature vector as the tool would write it if the flow ended with the last packet
    /// seen: every value depends only on the packets, never on the wall clock, so a
    /// checkpoint of a running flow is in the same units and distribution as the training
    /// data. (The still open active period is not counted, as in the tool.)
    pub fn snapshot(&self) -> FeatureVector {
        let mut v = [0.0; N_FEATURES];
        let dur = self.last_us - self.start_us;
        let secs = dur as f64 / 1e6;
        let (fp, bp) = (self.fwd.len.n as f64, self.bwd.len.n as f64);
        let (fb, bb) = (self.fwd.len.sum, self.bwd.len.sum);
        let pkts = fp + bp;
        let per_sec = |x: f64| if dur > 0 { x / secs } else { 0.0 };
        let iat5 = |s: &Side| {
            if s.len.n > 1 {
                [s.iat.sum, s.iat.mean, s.iat.std(), s.iat.max, s.iat.min]
            } else {
                [0.0; 5]
            }
        };
        // The flag bits run FIN … URG, ECE, CWR; the columns end CWR, ECE.
        let f = self.flags;
        let fl = [f[0], f[1], f[2], f[3], f[4], f[5], f[7], f[6]].map(f64::from);
        let [f_max, f_min, f_mean, f_std] = self.fwd.len.four();
        let [b_max, b_min, b_mean, b_std] = self.bwd.len.four();
        let flow_iat = if self.flow_iat.n > 0 {
            [self.flow_iat.mean, self.flow_iat.std(), self.flow_iat.max, self.flow_iat.min]
        } else {
            [0.0; 4]
        };
        let pl = if self.all_len.n > 0 {
            [self.all_len.min, self.all_len.max, self.all_len.mean, self.all_len.std(), self.all_len.variance()]
        } else {
            [0.0; 5]
        };
        let [a_max, a_min, a_mean, a_std] = self.active.four();
        let [i_max, i_min, i_mean, i_std] = self.idle.four();
        // The tool that made the dataset counts a subflow at every packet (an operator
        // precedence slip makes its 1 s gap test always true) and divides longs.
        let sub = |x: f64| if pkts > 0.0 { (x / pkts).trunc() } else { 0.0 };
        let (icmp_code, icmp_type) = self.icmp.map_or((-1.0, -1.0), |(c, t)| (f64::from(c), f64::from(t)));
        let rows: [&[f64]; 19] = [
            &[f64::from(self.dport), f64::from(self.proto), dur as f64, fp, bp, fb, bb],
            &[f_max, f_min, f_mean, f_std, b_max, b_min, b_mean, b_std],
            // A flow of one instant has no rate: the tool writes -1 there.
            &[if dur != 0 { (fb + bb) / secs } else { -1.0 }, if dur != 0 { pkts / secs } else { -1.0 }],
            &flow_iat,
            &iat5(&self.fwd),
            &iat5(&self.bwd),
            &[self.fwd.psh, self.bwd.psh, self.fwd.urg, self.bwd.urg, self.fwd.rst, self.bwd.rst].map(f64::from),
            &[self.fwd.header_bytes as f64, self.bwd.header_bytes as f64, per_sec(fp), per_sec(bp)],
            &pl,
            &fl,
            &[
                if fp > 0.0 { bp / fp } else { 0.0 },
                if pkts > 0.0 { (fb + bb) / pkts } else { 0.0 },
                if fp > 0.0 { fb / fp } else { 0.0 },
                if bp > 0.0 { bb / bp } else { 0.0 },
            ],
            &self.fwd.bulk.averages(),
            &self.bwd.bulk.averages(),
            &[sub(fp), sub(fb), sub(bp), sub(bb)],
            &[f64::from(self.fwd_init_win), f64::from(self.bwd_win), self.fwd_act_data as f64, f64::from(self.fwd_min_header)],
            &[a_mean, a_std, a_max, a_min],
            &[i_mean, i_std, i_max, i_min],
            &[icmp_code, icmp_type],
            &[if self.proto == ipproto::TCP { (self.last_us - self.conn_start_us) as f64 } else { 0.0 }],
        ];
        let mut i = 0;
        for r in rows {
            v[i..i + r.len()].copy_from_slice(r);
            i += r.len();
        }
        debug_assert_eq!(i, N_FEATURES);
        v
    }
}

/// When a TCP flow of the corrected tool may end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpClose {
    Open,
    /// One FIN seen.
    OneFin,
    /// FINs seen from both sides; the next ACK completes the close.
    BothFins,
    /// Closed (FIN exchange acknowledged, or RST): a new SYN starts a new flow, other
    /// packets still join this one.
    Ready,
}

/// Which CICFlowMeter's flow boundaries [`CicFlowTable`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The corrected tool of the improved dataset: a TCP flow closes on the FIN exchange and
    /// its last ACK, or on a RST, and ends at the next SYN for its tuple.
    Corrected,
    /// The original tool (CICFlowMeter 3 and 4): the first FIN packet ends the flow and later
    /// packets of the connection form a new one. Only for comparing with that tool's output.
    FirstFin,
}

/// Settings of a [`CicFlowTable`]; the defaults are CICFlowMeter's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CicConfig {
    pub flow_timeout_us: i64,
    pub activity_timeout_us: i64,
    pub termination: Termination,
    /// Flows with fewer packets are not reported: the dataset has no one-packet flows.
    pub min_packets: u64,
}

impl Default for CicConfig {
    fn default() -> Self {
        CicConfig {
            flow_timeout_us: FLOW_TIMEOUT_US,
            activity_timeout_us: ACTIVITY_TIMEOUT_US,
            termination: Termination::Corrected,
            min_packets: 2,
        }
    }
}

/// A flow as CICFlowMeter cuts it: its key oriented forward and its features.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CicFlow {
    /// src = the forward sender; VLAN ids are zero and ICMP has no ports, as in the tool.
    pub key: FlowKey,
    pub features: FlowFeatures,
}

impl CicFlow {
    /// The tool's "Flow ID": `src-dst-sport-dport-proto`.
    pub fn flow_id(&self) -> String {
        let k = &self.key;
        format!("{}-{}-{}-{}-{}", k.src_ip(), k.dst_ip(), k.sport, k.dport, k.proto)
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    flow: CicFlow,
    close: TcpClose,
}

/// Counters of a [`CicFlowTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CicStats {
    pub packets: u64,
    /// Packets the tool would not make flows of: protocols other than TCP, UDP and ICMP,
    /// and ICMP errors the decoder attributed to the flow they quote.
    pub skipped: u64,
    pub flows: u64,
    /// Flows not reported for having fewer than `min_packets` packets.
    pub short_flows: u64,
}

/// CICFlowMeter's flow splitter over [`PacketMeta`]: see the module documentation. Packets
/// must come in capture order. A live flow leaves the table when a later packet of its tuple
/// ends it or at [`CicFlowTable::finish`], as in the tool (which has no idle sweep), so
/// memory grows with the number of tuples in the capture. Flows live in a slab indexed by a
/// small hash map, so the large per-flow state is written once, not moved on every rehash.
#[derive(Debug, Default)]
pub struct CicFlowTable {
    cfg: CicConfig,
    index: HashMap<FlowKey, u32>,
    slots: Vec<Entry>,
    free: Vec<u32>,
    pub stats: CicStats,
}

/// Reports a flow that ended, unless it is too short to report.
fn emit(cfg: &CicConfig, stats: &mut CicStats, flow: CicFlow, out: &mut Vec<CicFlow>) {
    if flow.features.packets() < cfg.min_packets {
        stats.short_flows += 1;
    } else {
        stats.flows += 1;
        out.push(flow);
    }
}

impl CicFlowTable {
    pub fn new(cfg: CicConfig) -> Self {
        CicFlowTable { cfg, ..Default::default() }
    }

    /// The tool's view of a packet's tuple: no VLAN, no ICMP ports.
    fn cic_key(meta: &PacketMeta) -> FlowKey {
        let mut k = meta.key;
        k.vlan = [0; 2];
        if matches!(k.proto, ipproto::ICMP | ipproto::ICMPV6) {
            k.sport = 0;
            k.dport = 0;
        }
        k
    }

    /// A fresh flow whose first packet, and forward direction, is `pkt`.
    fn fresh(&self, pkt: &PacketMeta) -> Entry {
        let features = FlowFeatures::with_orientation(pkt, &pkt.key, pkt.ts, self.cfg.activity_timeout_us);
        Entry { flow: CicFlow { key: pkt.key, features }, close: TcpClose::Open }
    }

    /// Adds one packet; flows it ends are appended to `out`.
    pub fn push(&mut self, meta: &PacketMeta, out: &mut Vec<CicFlow>) {
        let proto = meta.key.proto;
        let is_icmp = matches!(proto, ipproto::ICMP | ipproto::ICMPV6);
        let tracked = matches!(proto, ipproto::TCP | ipproto::UDP) || is_icmp;
        if !tracked || meta.attach_only && !is_icmp {
            self.stats.skipped += 1;
            return;
        }
        self.stats.packets += 1;
        let mut pkt = *meta;
        pkt.key = Self::cic_key(meta);
        let (canon, _) = pkt.key.canonical();
        let fl = pkt.tcp_flags;
        let ts = pkt.ts.0;
        let cfg = self.cfg;
        let Some(&slot) = self.index.get(&canon) else {
            let entry = self.fresh(&pkt);
            let slot = match self.free.pop() {
                Some(i) => {
                    self.slots[i as usize] = entry;
                    i
                }
                None => {
                    self.slots.push(entry);
                    (self.slots.len() - 1) as u32
                }
            };
            self.index.insert(canon, slot);
            return;
        };
        let e = &self.slots[slot as usize];
        let timed_out = ts - e.flow.features.start_us > cfg.flow_timeout_us;
        let syn_after_close = cfg.termination == Termination::Corrected && e.close == TcpClose::Ready && fl.has(TcpFlags::SYN);
        let icmp_changed = is_icmp
            && cfg.termination == Termination::Corrected
            && e.flow.features.icmp.is_some_and(|(code, ty)| code != pkt.icmp_code && ty != pkt.icmp_type);
        if timed_out || syn_after_close || icmp_changed {
            let ended = *e;
            let continues = timed_out && cfg.termination == Termination::Corrected && proto == ipproto::TCP && ended.close != TcpClose::Ready;
            let next = if continues {
                // The same connection goes on: keep its orientation and its start.
                let fwd = ended.flow.key;
                let conn = Timestamp(ended.flow.features.conn_start_us);
                let features = FlowFeatures::with_orientation(&pkt, &fwd, conn, cfg.activity_timeout_us);
                Entry { flow: CicFlow { key: fwd, features }, close: TcpClose::Open }
            } else {
                // A new connection, or (the corrected tool's rule) an ICMP exchange whose
                // type and code both changed.
                self.fresh(&pkt)
            };
            self.slots[slot as usize] = next;
            emit(&cfg, &mut self.stats, ended.flow, out);
            return;
        }
        let e = &mut self.slots[slot as usize];
        e.flow.features.update(&pkt);
        match cfg.termination {
            Termination::FirstFin => {
                if fl.has(TcpFlags::FIN) {
                    let ended = e.flow;
                    self.index.remove(&canon);
                    self.free.push(slot);
                    emit(&cfg, &mut self.stats, ended, out);
                }
            }
            Termination::Corrected => {
                e.close = if fl.has(TcpFlags::FIN) {
                    let (ff, bf) = e.flow.features.fins();
                    match e.close {
                        TcpClose::Open => TcpClose::OneFin,
                        TcpClose::OneFin if ff > 0 && bf > 0 => TcpClose::BothFins,
                        c => c,
                    }
                } else if fl.has(TcpFlags::RST) || fl.has(TcpFlags::ACK) && e.close == TcpClose::BothFins {
                    TcpClose::Ready
                } else {
                    e.close
                };
            }
        }
    }

    /// Ends every live flow (end of the capture), in order of start time.
    pub fn finish(&mut self, out: &mut Vec<CicFlow>) {
        let mut live: Vec<u32> = self.index.drain().map(|(_, i)| i).collect();
        let slots = &self.slots;
        live.sort_by_key(|&i| {
            let f = &slots[i as usize].flow;
            (f.features.start_us, f.key.src, f.key.sport, f.key.dst, f.key.dport, f.key.proto)
        });
        out.reserve(live.len());
        for i in live {
            emit(&self.cfg, &mut self.stats, self.slots[i as usize].flow, out);
        }
        self.slots.clear();
        self.free.clear();
    }

    /// Flows in progress.
    pub fn live(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_500_000_000_000_000;
    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN;
    const PSH: u8 = TcpFlags::PSH;
    const RST: u8 = TcpFlags::RST;

    /// One TCP packet: `c2s` from 10.0.0.1:40000 to 10.0.0.2:80, else the reverse.
    fn tcp(t_us: i64, c2s: bool, flags: u8, hdr: u16, payload: u32, win: u16) -> PacketMeta {
        let k = FlowKey::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 40000, 80, 6);
        let key = if c2s { k } else { k.reversed() };
        let mut m = PacketMeta::new(Timestamp(T0 + t_us), key, 14 + 20 + u32::from(hdr) + payload);
        m.tcp_flags = TcpFlags(flags);
        m.l4_header_len = hdr;
        m.payload_len = payload;
        m.tcp_win = win;
        m
    }

    /// A handshake, one request, one response, and a FIN exchange; times in µs.
    fn connection() -> Vec<PacketMeta> {
        vec![
            tcp(0, true, SYN, 40, 0, 64240),
            tcp(1000, false, SYN | ACK, 40, 0, 65160),
            tcp(1500, true, ACK, 32, 0, 502),
            tcp(2000, true, PSH | ACK, 32, 100, 502),
            tcp(12000, false, ACK, 32, 0, 509),
            tcp(13000, false, PSH | ACK, 32, 1000, 509),
            tcp(14000, true, ACK, 32, 0, 501),
            tcp(20000, true, FIN | ACK, 32, 0, 501),
            tcp(21000, false, FIN | ACK, 32, 0, 509),
            tcp(22000, true, ACK, 32, 0, 501),
        ]
    }

    fn features_of(pkts: &[PacketMeta]) -> FeatureVector {
        let mut f = FlowFeatures::new(&pkts[0]);
        for p in &pkts[1..] {
            f.update(p);
        }
        f.snapshot()
    }

    fn get(v: &FeatureVector, name: &str) -> f64 {
        v[feature_index(name).unwrap_or_else(|| panic!("no feature {name}"))]
    }

    fn check(v: &FeatureVector, expected: &[(&str, f64)]) {
        for &(name, want) in expected {
            let got = get(v, name);
            assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{name}: got {got}, want {want}");
        }
    }

    #[test]
    fn accumulator_is_small() {
        // The main table carries one per flow; keep it within what its memcap accounts for.
        let size = std::mem::size_of::<FlowFeatures>();
        eprintln!("FlowFeatures: {size} bytes");
        assert!(size <= 800, "{size}");
    }

    #[test]
    fn names_are_unique_and_83() {
        let mut names = FEATURE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES);
        assert_eq!(FEATURE_NAMES[2], "Flow Duration");
        assert_eq!(FEATURE_NAMES[N_FEATURES - 1], "Total TCP Flow Time");
    }

    #[test]
    fn names_match_the_dataset_header() {
        let path = portcullis_common::shared_data_dir().join("flows/cicids2017-improved-5000/HEADER.csv");
        let Ok(header) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} not found (set PORTCULLIS_DATA)", path.display());
            return;
        };
        let cols: Vec<&str> = header.trim().split(',').collect();
        let from = cols.iter().position(|c| *c == "Flow Duration").unwrap();
        let to = cols.iter().position(|c| *c == "Total TCP Flow Time").unwrap();
        let mut want = vec!["Dst Port", "Protocol"];
        want.extend_from_slice(&cols[from..=to]);
        assert_eq!(want, FEATURE_NAMES.to_vec());
    }

    /// Every value below was worked out by hand from the ten packets of `connection`.
    #[test]
    fn handshake_data_and_fin_exchange() {
        let v = features_of(&connection());
        check(
            &v,
            &[
                ("Dst Port", 80.0),
                ("Protocol", 6.0),
                ("Flow Duration", 22000.0),
                ("Total Fwd Packet", 6.0),
                ("Total Bwd packets", 4.0),
                ("Total Length of Fwd Packet", 100.0),
                ("Total Length of Bwd Packet", 1000.0),
                ("Fwd Packet Length Max", 100.0),
                ("Fwd Packet Length Min", 0.0),
                ("Fwd Packet Length Mean", 100.0 / 6.0),
                ("Fwd Packet Length Std", 40.8248290463863),
                ("Bwd Packet Length Max", 1000.0),
                ("Bwd Packet Length Min", 0.0),
                ("Bwd Packet Length Mean", 250.0),
                ("Bwd Packet Length Std", 500.0),
                ("Flow Bytes/s", 1100.0 / 0.022),
                ("Flow Packets/s", 10.0 / 0.022),
                // IATs 1000 ×5, 500 ×2, 10000, 6000.
                ("Flow IAT Mean", 22000.0 / 9.0),
                ("Flow IAT Std", 3311.3860810509213),
                ("Flow IAT Max", 10000.0),
                ("Flow IAT Min", 500.0),
                // Forward IATs 1500, 500, 12000, 6000, 2000.
                ("Fwd IAT Total", 22000.0),
                ("Fwd IAT Mean", 4400.0),
                ("Fwd IAT Std", 4735.50419702063),
                ("Fwd IAT Max", 12000.0),
                ("Fwd IAT Min", 500.0),
                // Backward IATs 11000, 1000, 8000.
                ("Bwd IAT Total", 20000.0),
                ("Bwd IAT Mean", 20000.0 / 3.0),
                ("Bwd IAT Std", 5131.601439446884),
                ("Bwd IAT Max", 11000.0),
                ("Bwd IAT Min", 1000.0),
                ("Fwd PSH Flags", 1.0),
                ("Bwd PSH Flags", 1.0),
                ("Fwd URG Flags", 0.0),
                ("Fwd RST Flags", 0.0),
                ("Fwd Header Length", 40.0 + 5.0 * 32.0),
                ("Bwd Header Length", 40.0 + 3.0 * 32.0),
                ("Fwd Packets/s", 6.0 / 0.022),
                ("Bwd Packets/s", 4.0 / 0.022),
                ("Packet Length Min", 0.0),
                ("Packet Length Max", 1000.0),
                ("Packet Length Mean", 110.0),
                ("Packet Length Std", 314.2893217686178),
                ("Packet Length Variance", 889000.0 / 9.0),
                ("FIN Flag Count", 2.0),
                ("SYN Flag Count", 2.0),
                ("RST Flag Count", 0.0),
                ("PSH Flag Count", 2.0),
                ("ACK Flag Count", 9.0),
                ("URG Flag Count", 0.0),
                ("CWR Flag Count", 0.0),
                ("ECE Flag Count", 0.0),
                ("Down/Up Ratio", 4.0 / 6.0),
                ("Average Packet Size", 110.0),
                ("Fwd Segment Size Avg", 100.0 / 6.0),
                ("Bwd Segment Size Avg", 250.0),
                ("Fwd Bytes/Bulk Avg", 0.0),
                ("Bwd Bulk Rate Avg", 0.0),
                // The dataset's subflow quirk: totals divided by the packet count, truncated.
                ("Subflow Fwd Packets", 0.0),
                ("Subflow Fwd Bytes", 10.0),
                ("Subflow Bwd Packets", 0.0),
                ("Subflow Bwd Bytes", 100.0),
                ("FWD Init Win Bytes", 64240.0),
                ("Bwd Init Win Bytes", 509.0),
                ("Fwd Act Data Pkts", 1.0),
                ("Fwd Seg Size Min", 32.0),
                ("Active Mean", 0.0),
                ("Idle Max", 0.0),
                ("ICMP Code", -1.0),
                ("ICMP Type", -1.0),
                ("Total TCP Flow Time", 22000.0),
            ],
        );
    }

    #[test]
    fn active_and_idle_periods() {
        // Active 0–2 s, idle 2–9 s, active 9–9.5 s, idle 9.5–20.5 s, then one packet.
        let ts = [0, 1_000_000, 2_000_000, 9_000_000, 9_500_000, 20_500_000];
        let pkts: Vec<_> = ts.iter().map(|&t| tcp(t, true, ACK, 20, 10, 100)).collect();
        let v = features_of(&pkts);
        check(
            &v,
            &[
                ("Active Mean", 1_250_000.0),
                ("Active Max", 2_000_000.0),
                ("Active Min", 500_000.0),
                ("Active Std", 1_060_660.1717798212),
                ("Idle Mean", 9_000_000.0),
                ("Idle Max", 11_000_000.0),
                ("Idle Min", 7_000_000.0),
                // The first packet's payload is not counted, as in the tool.
                ("Fwd Act Data Pkts", 5.0),
            ],
        );
    }

    #[test]
    fn bulk_needs_four_payload_packets_without_reply() {
        // Forward: 4 payload packets 0.1 s apart (a bulk of 4000 bytes over 0.3 s), then a
        // fifth continues it; a backward payload packet breaks it, 3 more do not make another.
        let mut pkts = vec![tcp(0, true, ACK, 20, 1000, 100)];
        for i in 1..5 {
            pkts.push(tcp(i * 100_000, true, ACK, 20, 1000, 100));
        }
        pkts.push(tcp(500_000, false, ACK, 20, 50, 100));
        for i in 6..9 {
            pkts.push(tcp(i * 100_000, true, ACK, 20, 1000, 100));
        }
        let v = features_of(&pkts);
        check(
            &v,
            &[
                ("Fwd Bytes/Bulk Avg", 5000.0),
                ("Fwd Packet/Bulk Avg", 5.0),
                ("Fwd Bulk Rate Avg", 12500.0),
                ("Bwd Bytes/Bulk Avg", 0.0),
            ],
        );
    }

    fn split(pkts: &[PacketMeta], termination: Termination) -> Vec<CicFlow> {
        let mut t = CicFlowTable::new(CicConfig { termination, min_packets: 1, ..CicConfig::default() });
        let mut out = Vec::new();
        for p in pkts {
            t.push(p, &mut out);
        }
        t.finish(&mut out);
        out
    }

    #[test]
    fn corrected_flow_ends_after_fin_exchange_not_first_fin() {
        let mut pkts = connection();
        // A late duplicate ACK joins the closed flow; a new SYN on the tuple starts a new one.
        pkts.push(tcp(30000, false, ACK, 32, 0, 509));
        pkts.push(tcp(40000, true, SYN, 40, 0, 64240));
        pkts.push(tcp(41000, false, SYN | ACK, 40, 0, 65160));
        let flows = split(&pkts, Termination::Corrected);
        assert_eq!(flows.len(), 2);
        let v = flows[0].features.snapshot();
        check(&v, &[("Total Fwd Packet", 6.0), ("Total Bwd packets", 5.0), ("Flow Duration", 30000.0), ("Bwd Init Win Bytes", 509.0)]);
        assert_eq!(flows[1].key.sport, 40000);
        check(&flows[1].features.snapshot(), &[("Total Fwd Packet", 1.0), ("Total Bwd packets", 1.0), ("SYN Flag Count", 2.0)]);
    }

    #[test]
    fn original_tool_ends_at_first_fin() {
        let flows = split(&connection(), Termination::FirstFin);
        // The client's FIN ends the first flow; the server's FIN and the last ACK make a
        // second flow oriented from the server.
        assert_eq!(flows.len(), 2);
        check(&flows[0].features.snapshot(), &[("Total Fwd Packet", 5.0), ("Total Bwd packets", 3.0)]);
        assert_eq!(flows[1].key.sport, 80);
        check(&flows[1].features.snapshot(), &[("Total Fwd Packet", 1.0), ("Total Bwd packets", 1.0), ("Dst Port", 40000.0)]);
    }

    #[test]
    fn rst_closes_and_syn_reopens() {
        let pkts = [
            tcp(0, true, SYN, 40, 0, 1000),
            tcp(100, false, RST | ACK, 20, 0, 0),
            tcp(200, false, RST | ACK, 20, 0, 0),
            tcp(1_000_000, true, SYN, 40, 0, 1000),
        ];
        let flows = split(&pkts, Termination::Corrected);
        assert_eq!(flows.len(), 2);
        check(&flows[0].features.snapshot(), &[("Bwd RST Flags", 2.0), ("RST Flag Count", 2.0), ("Bwd Init Win Bytes", 0.0)]);
    }

    #[test]
    fn flow_timeout_continues_the_connection() {
        let pkts = [
            tcp(0, true, SYN, 40, 0, 1000),
            tcp(1000, false, SYN | ACK, 40, 0, 2000),
            tcp(2000, true, ACK, 32, 0, 1000),
            tcp(100_000_000, false, PSH | ACK, 32, 10, 2000),
            // More than 120 s after the flow's start: a new flow of the same connection,
            // whose first packet is a backward one.
            tcp(130_000_000, false, PSH | ACK, 32, 10, 2000),
            tcp(130_001_000, true, ACK, 32, 0, 1000),
        ];
        let flows = split(&pkts, Termination::Corrected);
        assert_eq!(flows.len(), 2);
        check(&flows[0].features.snapshot(), &[("Flow Duration", 100_000_000.0), ("Total TCP Flow Time", 100_000_000.0)]);
        assert_eq!(flows[1].key.sport, 40000, "orientation is kept");
        check(
            &flows[1].features.snapshot(),
            &[
                ("Flow Duration", 1000.0),
                ("Total TCP Flow Time", 130_001_000.0),
                ("Total Fwd Packet", 1.0),
                ("Total Bwd packets", 1.0),
                // The tool's quirk: a flow that starts backward keeps forward minimum 0.
                ("Fwd Seg Size Min", 0.0),
                ("FWD Init Win Bytes", 0.0),
            ],
        );
    }

    #[test]
    fn udp_and_icmp() {
        let k = FlowKey::new("10.0.0.5".parse().unwrap(), "10.0.0.53".parse().unwrap(), 5353, 53, 17);
        let mut a = PacketMeta::new(Timestamp(T0), k, 80);
        a.payload_len = 35;
        a.l4_header_len = 8;
        let mut b = PacketMeta::new(Timestamp(T0 + 245), k.reversed(), 96);
        b.payload_len = 51;
        b.l4_header_len = 8;
        let v = features_of(&[a, b]);
        check(&v, &[("Fwd Header Length", 8.0), ("Fwd Seg Size Min", 8.0), ("Total TCP Flow Time", 0.0), ("ICMP Type", -1.0), ("Flow Bytes/s", 86.0 / 245e-6)]);

        let ki = FlowKey::new("10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap(), 0x0800, 0, 1);
        let mut p = PacketMeta::new(Timestamp(T0), ki, 98);
        p.icmp_type = 8;
        p.payload_len = 56;
        let mut q = p;
        q.ts = Timestamp(T0 + 3);
        let v = features_of(&[p, q]);
        check(&v, &[("ICMP Type", 8.0), ("ICMP Code", 0.0), ("Total Length of Fwd Packet", 0.0), ("Protocol", 1.0)]);
    }

    #[test]
    fn single_instant_flow_has_no_rate() {
        let v = features_of(&[tcp(0, true, SYN, 40, 0, 1), tcp(0, false, RST, 20, 0, 0)]);
        check(&v, &[("Flow Bytes/s", -1.0), ("Flow Packets/s", -1.0), ("Fwd Packets/s", 0.0)]);
    }

    #[test]
    fn checkpoints_fire_once_per_period() {
        let mut f = FlowFeatures::new(&tcp(0, true, SYN, 40, 0, 1));
        let at = |s: i64| Timestamp(T0 + s * 1_000_000);
        assert!(!f.checkpoint_due(at(29), 30));
        assert!(f.checkpoint_due(at(30), 30));
        assert!(!f.checkpoint_due(at(45), 30));
        assert!(f.checkpoint_due(at(95), 30));
        assert!(!f.checkpoint_due(at(119), 30));
        assert!(!f.checkpoint_due(at(1000), 0));
    }

    #[test]
    fn min_packets_drops_single_packet_flows() {
        let mut t = CicFlowTable::new(CicConfig::default());
        let mut out = Vec::new();
        t.push(&tcp(0, true, SYN, 40, 0, 1), &mut out);
        t.finish(&mut out);
        assert!(out.is_empty());
        assert_eq!(t.stats.short_flows, 1);
    }
}
