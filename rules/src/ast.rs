//! The typed form of a parsed rule: what the parser produces and the detection engine
//! compiles. Variables are already resolved, classtypes looked up and numbers parsed, so the
//! engine never sees rule text. Matches keep rule order, because `distance`/`within` and the
//! relative forms of `pcre`, `byte_*` and `isdataat` depend on the match before them in the
//! same buffer.

use std::path::Path;
use std::sync::Arc;

/// Where a rule came from, for every message about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<Path>,
    /// 1-based line of the rule's first line (continuations follow it).
    pub line: u32,
}

/// Suricata's rule actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Alert,
    Drop,
    Reject,
    RejectSrc,
    RejectDst,
    RejectBoth,
    Pass,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Drop => "drop",
            Action::Reject => "reject",
            Action::RejectSrc => "rejectsrc",
            Action::RejectDst => "rejectdst",
            Action::RejectBoth => "rejectboth",
            Action::Pass => "pass",
        }
    }

    /// Drop and the reject family discard the packet in IPS mode.
    pub fn drops(self) -> bool {
        matches!(self, Action::Drop | Action::Reject | Action::RejectSrc | Action::RejectDst | Action::RejectBoth)
    }
}

/// The header's protocol field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `ip` (and `pkthdr`): any IP packet.
    Ip,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    /// `tcp-pkt` / `tcp-stream`: TCP, packets only or stream only.
    TcpPkt,
    TcpStream,
    /// An app-layer protocol name (`http`, `dns`, `tls`, ...): matches flows whose detected
    /// app protocol is this one. The parser records it; whether it loads depends on the
    /// engine's app-layer support.
    App(String),
}

/// A set of addresses: sorted, disjoint, inclusive ranges per family. `any` is the full
/// range of both families; negations and groups are resolved into it by the parser.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct IpSet {
    pub v4: Vec<(u32, u32)>,
    pub v6: Vec<(u128, u128)>,
}

impl IpSet {
    pub fn any() -> Self {
        IpSet { v4: vec![(0, u32::MAX)], v6: vec![(0, u128::MAX)] }
    }

    pub fn is_any(&self) -> bool {
        self.v4 == [(0, u32::MAX)] && self.v6 == [(0, u128::MAX)]
    }

    /// Membership of an address in the [`portcullis_common`] 16-byte form is the engine's
    /// business; these two take host-order integers.
    pub fn contains_v4(&self, a: u32) -> bool {
        contains(&self.v4, a)
    }

    pub fn contains_v6(&self, a: u128) -> bool {
        contains(&self.v6, a)
    }
}

/// A set of ports: sorted, disjoint, inclusive ranges. `any` is `[(0, 65535)]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct PortSet(pub Vec<(u16, u16)>);

impl PortSet {
    pub fn any() -> Self {
        PortSet(vec![(0, u16::MAX)])
    }

    pub fn is_any(&self) -> bool {
        self.0 == [(0, u16::MAX)]
    }

    pub fn contains(&self, p: u16) -> bool {
        contains(&self.0, p)
    }
}

fn contains<T: Ord + Copy>(ranges: &[(T, T)], v: T) -> bool {
    // Ranges are sorted and disjoint: binary search on the start.
    let i = ranges.partition_point(|r| r.0 <= v);
    i > 0 && v <= ranges[i - 1].1
}

/// A number that is either written in the rule or taken from a `byte_extract` variable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value<T> {
    Lit(T),
    /// Index into [`Rule::vars`].
    Var(u8),
}

/// Comparison operators of `dsize`, `ttl`, `bsize`, `itype`, `icode`, `window`, `id`,
/// `seq`, `ack` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp<T> {
    Eq(T),
    Ne(T),
    Lt(T),
    Le(T),
    Gt(T),
    Ge(T),
    /// `a<>b` (exclusive on both ends, as Suricata) or `a-b` (likewise).
    Between(T, T),
}

impl<T: PartialOrd + Copy> Cmp<T> {
    pub fn matches(&self, v: T) -> bool {
        match *self {
            Cmp::Eq(a) => v == a,
            Cmp::Ne(a) => v != a,
            Cmp::Lt(a) => v < a,
            Cmp::Le(a) => v <= a,
            Cmp::Gt(a) => v > a,
            Cmp::Ge(a) => v >= a,
            Cmp::Between(a, b) => v > a && v < b,
        }
    }
}

/// Which bytes a payload match inspects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Buffer {
    /// The default: the packet payload and, for TCP, the reassembled stream (as Suricata,
    /// unless `flow:only_stream`/`no_stream` or the `tcp-pkt`/`tcp-stream` protocols say).
    Payload,
    /// `pkt_data`: back to the packet payload after a sticky buffer.
    PktData,
    /// A sticky buffer or legacy content modifier by Suricata's canonical name
    /// (`http.uri`, `dns.query`, `tls.sni`, ...), with any transformations applied to it in
    /// order. The app-layer issue gives these meaning; until then rules using them are
    /// skipped by name.
    Sticky { name: String, transforms: Vec<String> },
}

/// `fast_pattern` as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FastPattern {
    /// `fast_pattern:only` (obsolete in Suricata 7, accepted as plain `fast_pattern`).
    pub only: bool,
    /// `fast_pattern:offset,length`: the part of the content used for prefiltering.
    pub chop: Option<(u16, u16)>,
}

/// One `content` with its modifiers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Content {
    /// Bytes after `|hex|` and escape processing.
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: Option<Value<u32>>,
    pub depth: Option<Value<u32>>,
    /// Relative to the end of the previous match in the same buffer; may be negative.
    pub distance: Option<Value<i32>>,
    pub within: Option<Value<i32>>,
    /// `startswith` is `depth:len, offset:0`; kept as written for `--emit-loaded`.
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: Option<FastPattern>,
}

impl Content {
    /// Anchored to the previous match (distance or within given).
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// `pcre:"/re/flags"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pcre {
    /// The expression between the slashes, unescaped only as Suricata does (`\;`, `\"`).
    pub pattern: String,
    pub negated: bool,
    /// PCRE compile flags: `i`, `s`, `m`, `x`, `A` (anchored), `E` (dollar end only),
    /// `G` (ungreedy).
    pub caseless: bool,
    pub dotall: bool,
    pub multiline: bool,
    pub extended: bool,
    pub anchored: bool,
    pub dollar_endonly: bool,
    pub ungreedy: bool,
    /// `R`: starts where the previous match in the buffer ended.
    pub relative: bool,
    /// Flags naming a buffer (`U`, `H`, `P`, ...) are turned into [`Buffer::Sticky`] on the
    /// owning [`PayloadMatch`], not kept here. `O` (override match limits) is ignored.
    pub raw_flags: String,
}

/// Endianness of the `byte_*` keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Endian {
    #[default]
    Big,
    Little,
}

/// How `byte_*` read their bytes: binary, or ASCII digits in a base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NumFormat {
    #[default]
    Binary,
    /// `string,dec|hex|oct`.
    String(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOp {
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    And,
    Or,
}

/// `byte_test:bytes,[!]op,value,offset[,relative][,endian][,string,base][,dce][,bitmask M]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ByteTest {
    pub nbytes: u8,
    pub op: ByteOp,
    pub negated: bool,
    pub value: Value<u64>,
    pub offset: Value<i32>,
    pub relative: bool,
    pub endian: Endian,
    pub format: NumFormat,
    pub bitmask: Option<u32>,
}

/// `byte_jump:bytes,offset[,relative][,multiplier N][,endian][,string,base][,align]
/// [,from_beginning|from_end][,post_offset N][,dce][,bitmask M]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ByteJump {
    pub nbytes: u8,
    pub offset: Value<i32>,
    pub relative: bool,
    pub multiplier: u32,
    pub endian: Endian,
    pub format: NumFormat,
    pub align: bool,
    pub from_beginning: bool,
    pub from_end: bool,
    pub post_offset: i32,
    pub bitmask: Option<u32>,
}

/// `byte_extract:bytes,offset,name[,relative][,multiplier N][,endian][,string,base]
/// [,align N][,dce][,bitmask M]`: stores into [`Rule::vars`]`[var]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ByteExtract {
    pub nbytes: u8,
    pub offset: i32,
    pub var: u8,
    pub relative: bool,
    pub multiplier: u32,
    pub endian: Endian,
    pub format: NumFormat,
    pub align: u8,
    pub bitmask: Option<u32>,
}

/// `isdataat:[!]N[,relative]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IsDataAt {
    pub pos: Value<u32>,
    pub negated: bool,
    pub relative: bool,
}

/// A keyword that inspects the bytes of one buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    Content(Content),
    Pcre(Pcre),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    ByteExtract(ByteExtract),
    IsDataAt(IsDataAt),
    /// `bsize`: the length of the buffer.
    Bsize(Cmp<u64>),
}

/// A payload keyword and the buffer it inspects, in rule order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PayloadMatch {
    pub buffer: Buffer,
    pub kind: PayloadKind,
}

/// `flow:` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowOpts {
    pub established: bool,
    pub not_established: bool,
    pub stateless: bool,
    /// `to_server` / `from_client`.
    pub to_server: bool,
    /// `to_client` / `from_server`.
    pub to_client: bool,
    pub only_stream: bool,
    pub no_stream: bool,
    pub only_frag: bool,
    pub no_frag: bool,
}

/// `flags:[modifier]flags[,ignored]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpFlagsMatch {
    /// Bits named in the rule (`0` for the literal `0`: no flags set).
    pub flags: u8,
    /// Bits to ignore (the part after the comma, and `12`/`CE` reserved-bit handling).
    pub ignore: u8,
    pub modifier: FlagsModifier,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlagsModifier {
    /// Exactly these flags (after ignoring).
    Exact,
    /// `+`: these and possibly others.
    All,
    /// `*`: any of these.
    Any,
    /// `!`: not these.
    Not,
}

/// A keyword on packet headers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderMatch {
    Dsize(Cmp<u16>),
    Ttl(Cmp<u8>),
    Itype(Cmp<u8>),
    Icode(Cmp<u8>),
    /// `icmp_id` / `icmp_seq`.
    IcmpId(u16),
    IcmpSeq(u16),
    IpProto(Cmp<u8>),
    SameIp,
    Flags(TcpFlagsMatch),
    Ack(u32),
    Seq(u32),
    /// `window:[!]N`.
    Window { value: u16, negated: bool },
    /// `id`: IPv4 identification.
    IpId(u16),
    /// `fragbits`/`fragoffset`, `tos`, `ipopts`, `tcp.mss` and the like are added by the
    /// parser as the engine learns them.
    Other { keyword: String, value: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowbitCmd {
    Set,
    Unset,
    Toggle,
    IsSet,
    IsNotSet,
}

/// `flowbits:cmd,name[|name...]` (OR-ed names for isset/isnotset); `noalert` is
/// [`Rule::noalert`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flowbit {
    pub cmd: FlowbitCmd,
    pub names: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackBy {
    Src,
    Dst,
    Rule,
    Flow,
    Both,
}

/// `threshold:` and `detection_filter:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: TrackBy,
    pub count: u32,
    pub seconds: u32,
}

/// App-layer keywords that are not buffers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AppMatch {
    /// `urilen:[<>]N[<>M][,norm|raw]`: the length of `http.uri` (or `http.uri.raw`).
    UriLen { cmp: Cmp<u64>, raw: bool },
    /// `app-layer-protocol:[!]name`: the flow's detected protocol (`failed` included).
    Protocol { name: String, negated: bool },
    /// `tls.version:1.2` (or a hex number): the negotiated or offered version, as
    /// `0x0300` SSLv3 … `0x0304` TLS 1.3.
    TlsVersion(u16),
    /// `ssl_version:sslv3,tls1.0,...` (`!` negates one name): any listed version matches.
    SslVersion(Vec<(u16, bool)>),
    /// `dns.opcode:[!]N`.
    DnsOpcode { opcode: u8, negated: bool },
}

/// `target:src_ip|dest_ip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Src,
    Dst,
}

/// One loaded rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub proto: Proto,
    pub src: IpSet,
    pub src_ports: PortSet,
    pub dst: IpSet,
    pub dst_ports: PortSet,
    /// `<>`: also matches with source and destination swapped.
    pub bidirectional: bool,
    pub gid: u32,
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: Option<String>,
    /// The classification's description (EVE's `alert.category`), empty if none.
    pub category: String,
    /// `priority:` if given, else the classtype's, else 3 (EVE's `alert.severity`).
    pub priority: u8,
    /// `metadata:` as `(key, value)` pairs in order; EVE groups values by key.
    pub metadata: Vec<(String, String)>,
    /// `reference:` as `(system, id)`; the URL prefix from `reference.config` is in
    /// `reference_urls` (same order) when known.
    pub references: Vec<(String, String)>,
    pub reference_urls: Vec<Option<String>>,
    pub target: Option<Target>,
    pub flow: FlowOpts,
    pub header: Vec<HeaderMatch>,
    pub payload: Vec<PayloadMatch>,
    pub flowbits: Vec<Flowbit>,
    /// App-layer keywords that are not buffers, in rule order.
    pub app: Vec<AppMatch>,
    pub noalert: bool,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<Threshold>,
    /// `byte_extract` variable names, indexed by [`Value::Var`].
    pub vars: Vec<String>,
    pub origin: Origin,
    /// The rule as written, continuations joined: what `--emit-loaded` writes.
    pub text: String,
}
