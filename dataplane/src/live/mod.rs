//! Live capture: frames from network interfaces instead of files.
//!
//! A [`Capture`] is opened once for the daemon's topology (tap on some interfaces, or an
//! inline pair) and splits into [`Port`]s, one per worker thread: one per RX queue with
//! AF_XDP, one per fanout member with AF_PACKET, one with libpcap. The backend is chosen once
//! ([`CaptureKind`], or automatically: AF_XDP, then AF_PACKET, then libpcap, with one line
//! saying why each was passed over) and each port is an enum matched once per batch, never
//! per packet.
//!
//! Tapping with AF_XDP takes the frames from the kernel stack (they are redirected to
//! Portcullis, not copied): right for a SPAN or mirror port only. `auto` therefore taps with
//! AF_PACKET and bridges with AF_XDP.
//!
//! [`Port::poll`] hands the worker a batch of frames borrowed from the kernel's ring (UMEM
//! for AF_XDP, the TPACKET_V3 block for AF_PACKET) with one verdict slot per frame. Inline,
//! the port then transmits every frame whose slot is still `true` on the other interface of
//! the pair, unmodified, and drops the rest; tapping, verdicts are ignored.
//!
//! The XDP program ([`xdp`]) is attached whenever it can be, whatever the capture backend: it
//! drops sources in the block map before they cost a userspace cycle and, with AF_XDP,
//! redirects everything else to the queue's socket.

pub mod afpacket;
pub mod afxdp;
pub mod pcap_live;
pub mod xdp;

use std::fmt;
use std::time::Duration;

use portcullis_common::Timestamp;

/// A capture backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureKind {
    AfXdp,
    AfPacket,
    Pcap,
}

impl CaptureKind {
    pub fn name(self) -> &'static str {
        match self {
            CaptureKind::AfXdp => "af-xdp",
            CaptureKind::AfPacket => "af-packet",
            CaptureKind::Pcap => "pcap",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "afxdp" | "af-xdp" | "af_xdp" => Some(CaptureKind::AfXdp),
            "afpacket" | "af-packet" | "af_packet" => Some(CaptureKind::AfPacket),
            "pcap" | "libpcap" => Some(CaptureKind::Pcap),
            _ => None,
        }
    }
}

impl fmt::Display for CaptureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where Portcullis sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Watch these interfaces (a SPAN port, or the gateway's own interfaces): nothing is
    /// forwarded, verdicts are not enforced on packets.
    Tap(Vec<String>),
    /// Bridge two interfaces: frames received on one are transmitted on the other.
    Inline(String, String),
}

impl Topology {
    pub fn interfaces(&self) -> Vec<&str> {
        match self {
            Topology::Tap(v) => v.iter().map(String::as_str).collect(),
            Topology::Inline(a, b) => vec![a.as_str(), b.as_str()],
        }
    }

    pub fn is_inline(&self) -> bool {
        matches!(self, Topology::Inline(..))
    }
}

/// Whether AF_XDP sockets bind in zero-copy mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Zero-copy where the driver supports it, copy mode otherwise (logged).
    #[default]
    Auto,
    /// Zero-copy or fail.
    On,
    /// Always copy mode.
    Off,
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode, generic (SKB) mode where the driver has none.
    #[default]
    Auto,
    Driver,
    Generic,
}

/// AF_XDP settings (config section `af-xdp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// RX queues to open a socket on; `None`: every combined/RX queue the interface has.
    pub queues: Option<u32>,
    /// Frames in each socket's UMEM; a power of two.
    pub umem_frames: u32,
    /// Bytes per UMEM frame: 2048 or 4096.
    pub frame_size: u32,
    /// Descriptors in each of the RX, TX, fill and completion rings; powers of two.
    pub rx_ring: u32,
    pub tx_ring: u32,
    pub fill_ring: u32,
    pub comp_ring: u32,
    pub zero_copy: ZeroCopy,
    pub xdp_mode: XdpMode,
    /// `SO_PREFER_BUSY_POLL` with this `SO_BUSY_POLL` time (µs) and budget; `None`: off.
    pub busy_poll: Option<BusyPoll>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyPoll {
    pub usecs: u32,
    pub budget: u32,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            queues: None,
            umem_frames: 16384,
            frame_size: 4096,
            rx_ring: 8192,
            tx_ring: 2048,
            fill_ring: 8192,
            comp_ring: 2048,
            zero_copy: ZeroCopy::Auto,
            xdp_mode: XdpMode::Auto,
            busy_poll: None,
        }
    }
}

/// AF_PACKET settings (config section `af-packet`), as Suricata's `af-packet` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Sockets per interface in one fanout group; `None`: one per core.
    pub threads: Option<u32>,
    /// TPACKET_V3 block size and count (the ring is their product).
    pub block_size: u32,
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not full.
    pub block_timeout_ms: u32,
    /// Fanout group id; `None`: derived from the interface index.
    pub cluster_id: Option<u16>,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig { threads: None, block_size: 1 << 20, block_count: 64, block_timeout_ms: 10, cluster_id: None }
    }
}

/// libpcap settings (config section `pcap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapConfig {
    pub snaplen: u32,
    /// Kernel buffer bytes.
    pub buffer_size: u32,
    pub promisc: bool,
}

impl Default for PcapConfig {
    fn default() -> Self {
        PcapConfig { snaplen: 65535, buffer_size: 32 << 20, promisc: true }
    }
}

/// Everything needed to open a capture.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LiveConfig {
    /// `None`: AF_XDP, else AF_PACKET, else libpcap.
    pub capture: Option<CaptureKind>,
    pub afxdp: AfXdpConfig,
    pub afpacket: AfPacketConfig,
    pub pcap: PcapConfig,
    /// Attach the XDP program for the block map even when capturing with AF_PACKET or
    /// libpcap (AF_XDP always attaches it).
    pub xdp_block: bool,
}

/// One received frame, borrowed from the kernel's ring until [`Port::poll`]'s callback
/// returns.
#[derive(Clone, Copy, Debug)]
pub struct LiveFrame<'a> {
    pub ts: Timestamp,
    pub data: &'a [u8],
    /// Length on the wire (`data` may be shorter with a snaplen).
    pub orig_len: u32,
    /// Inline: 0 when received on the pair's first interface, 1 on the second. Tapping: the
    /// index of the interface in the topology.
    pub side: u8,
}

/// Cumulative counters of one port, read by the stats thread. The XSK names are the
/// kernel's (`struct xdp_statistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames handed to the worker, and their bytes.
    pub packets: u64,
    pub bytes: u64,
    /// AF_XDP: frames the kernel dropped for other reasons than the two below. AF_PACKET and
    /// pcap: the kernel's drop count (`tp_drops`, `ps_drop`).
    pub rx_dropped: u64,
    /// AF_XDP: frames dropped because the RX ring was full (the worker fell behind).
    pub rx_ring_full: u64,
    /// AF_XDP: times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    /// Inline: frames transmitted on the other interface, and frames that could not be
    /// (TX ring full, send error).
    pub forwarded: u64,
    pub tx_failed: u64,
    /// Inline: frames dropped by a verdict.
    pub dropped: u64,
}

impl PortStats {
    pub fn merge(&mut self, o: &PortStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.rx_dropped += o.rx_dropped;
        self.rx_ring_full += o.rx_ring_full;
        self.fill_ring_empty += o.fill_ring_empty;
        self.rx_invalid_descs += o.rx_invalid_descs;
        self.tx_invalid_descs += o.tx_invalid_descs;
        self.forwarded += o.forwarded;
        self.tx_failed += o.tx_failed;
        self.dropped += o.dropped;
    }
}

/// A failure of the capture itself (no such interface, no permission, a socket or map call
/// that failed), with what was being done and on which interface.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{iface}: {what}: {source}")]
    Io { iface: String, what: &'static str, source: std::io::Error },
    #[error("{iface}: {msg}")]
    Unsupported { iface: String, msg: String },
    #[error("XDP program: {0}")]
    Xdp(String),
    #[error("{0} support was not compiled into this build ({1})")]
    NotBuilt(&'static str, &'static str),
    #[error("no capture backend could open {iface}: {reasons}")]
    NoBackend { iface: String, reasons: String },
}

impl LiveError {
    pub fn io(iface: &str, what: &'static str, source: std::io::Error) -> Self {
        LiveError::Io { iface: iface.to_string(), what, source }
    }

    pub fn unsupported(iface: &str, msg: impl Into<String>) -> Self {
        LiveError::Unsupported { iface: iface.to_string(), msg: msg.into() }
    }
}

/// One worker's share of the capture.
#[derive(Debug)]
pub enum Port {
    AfXdp(afxdp::XskPort),
    AfPacket(afpacket::PacketPort),
    Pcap(pcap_live::PcapPort),
}

impl Port {
    /// Waits at most `timeout` for frames, then hands up to `max` of them to `f` with one
    /// verdict slot each, all `true`. Inline, frames whose slot is still `true` when `f`
    /// returns are transmitted on the other interface and the rest are dropped (counted in
    /// [`PortStats::dropped`]). Returns the number of frames handed to `f`; 0 on timeout, in
    /// which case `f` is not called.
    pub fn poll<F>(&mut self, max: usize, timeout: Duration, f: F) -> Result<usize, LiveError>
    where
        F: FnMut(&[LiveFrame<'_>], &mut [bool]),
    {
        match self {
            Port::AfXdp(p) => p.poll(max, timeout, f),
            Port::AfPacket(p) => p.poll(max, timeout, f),
            Port::Pcap(p) => p.poll(max, timeout, f),
        }
    }

    pub fn stats(&self) -> PortStats {
        match self {
            Port::AfXdp(p) => p.stats(),
            Port::AfPacket(p) => p.stats(),
            Port::Pcap(p) => p.stats(),
        }
    }

    /// Frames already received by the kernel and waiting for this port's next poll, where
    /// the backend can tell (AF_XDP's RX ring); 0 otherwise. The inline overload policy
    /// compares it with its limit.
    pub fn backlog(&self) -> usize {
        match self {
            Port::AfXdp(p) => p.backlog(),
            Port::AfPacket(_) | Port::Pcap(_) => 0,
        }
    }

    /// What this port is, for logs and stats: `"veth0 queue 0: af-xdp copy mode"`.
    pub fn describe(&self) -> String {
        match self {
            Port::AfXdp(p) => p.describe(),
            Port::AfPacket(p) => p.describe(),
            Port::Pcap(p) => p.describe(),
        }
    }

    pub fn kind(&self) -> CaptureKind {
        match self {
            Port::AfXdp(_) => CaptureKind::AfXdp,
            Port::AfPacket(_) => CaptureKind::AfPacket,
            Port::Pcap(_) => CaptureKind::Pcap,
        }
    }
}

/// An open capture: its ports (one per worker), the XDP program when attached, and the
/// one-line notes of what was chosen and why (fallbacks, copy mode).
#[derive(Debug)]
pub struct Capture {
    pub kind: CaptureKind,
    pub ports: Vec<Port>,
    /// The attached XDP program; detached when dropped.
    pub xdp: Option<xdp::XdpProgram>,
    pub notes: Vec<String>,
}

/// Opens the capture for `topology`: the configured backend, or the first that opens every
/// interface (inline: AF_XDP, AF_PACKET, libpcap; tapping: AF_PACKET, libpcap, since AF_XDP
/// takes frames from the kernel stack), each one passed over named in [`Capture::notes`]
/// with why.
pub fn open(cfg: &LiveConfig, topology: &Topology) -> Result<Capture, LiveError> {
    let order: &[CaptureKind] = match cfg.capture {
        Some(CaptureKind::AfXdp) => &[CaptureKind::AfXdp],
        Some(CaptureKind::AfPacket) => &[CaptureKind::AfPacket],
        Some(CaptureKind::Pcap) => &[CaptureKind::Pcap],
        // Inline, Portcullis forwards every frame itself, so AF_XDP taking frames away from
        // the kernel is the point.
        None if topology.is_inline() => &[CaptureKind::AfXdp, CaptureKind::AfPacket, CaptureKind::Pcap],
        // Tapping, AF_XDP would take the frames away from the kernel stack too: right for a
        // SPAN port, but on a gateway's own interfaces it would stop the gateway routing. So
        // `auto` taps with AF_PACKET, which sees copies; AF_XDP taps only when asked for.
        None => &[CaptureKind::AfPacket, CaptureKind::Pcap],
    };
    // Every backend hands the decoder Ethernet frames; a raw-IP interface (tun, WireGuard,
    // PPP) would decode as garbage without a word, so it is refused up front.
    for iface in topology.interfaces() {
        if let Ok(t) = std::fs::read_to_string(format!("/sys/class/net/{iface}/type")) {
            // 1: Ethernet; 772: loopback, whose frames carry a (zeroed) Ethernet header.
            if !matches!(t.trim(), "1" | "772") {
                return Err(LiveError::unsupported(iface, format!("link type {} is not Ethernet (ARPHRD_ETHER); Portcullis captures Ethernet interfaces only", t.trim())));
            }
        }
    }
    let mut notes = Vec::new();
    let mut reasons = Vec::new();
    for &kind in order {
        let r = match kind {
            CaptureKind::AfXdp => afxdp::open(cfg, topology),
            CaptureKind::AfPacket => afpacket::open(cfg, topology),
            CaptureKind::Pcap => pcap_live::open(cfg, topology),
        };
        match r {
            Ok(mut c) => {
                let mut all = std::mem::take(&mut notes);
                all.append(&mut c.notes);
                c.notes = all;
                if kind != CaptureKind::AfXdp && cfg.xdp_block && c.xdp.is_none() {
                    match xdp::XdpProgram::attach(topology, cfg.afxdp.xdp_mode, false) {
                        Ok(p) => {
                            c.notes.push(format!("XDP fast drop attached ({})", p.describe()));
                            c.xdp = Some(p);
                        }
                        Err(e) => c.notes.push(format!("XDP fast drop unavailable: {e}")),
                    }
                }
                return Ok(c);
            }
            Err(e) if order.len() > 1 => {
                notes.push(format!("{kind} not used: {e}"));
                reasons.push(format!("{kind}: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    Err(LiveError::NoBackend { iface: topology.interfaces().join(","), reasons: reasons.join("; ") })
}

/// The monotonic clock the XDP program's expiry compares against (`bpf_ktime_get_ns`), in
/// nanoseconds.
pub fn monotonic_ns() -> u64 {
    // std's Instant is CLOCK_MONOTONIC on Linux but opaque; the block map needs the number.
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The wall clock as a packet timestamp, for backends whose frames carry none.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(d.as_micros() as i64)
}
