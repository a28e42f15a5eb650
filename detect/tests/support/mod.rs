//! Builders for rules and packets: the parser is written elsewhere, so tests construct the
//! typed AST directly.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use portcullis_common::{Direction, FlowKey, PacketMeta, TcpFlags, Timestamp};
use portcullis_detect::{Alert, DetectConfig, Engine, FlowDetect, PacketInput, Scratch, Verdict};
use portcullis_rules::*;

/// A rule under construction: `alert <proto> any any -> any any (sid:N;)`.
pub struct R(pub Rule);

pub fn rule(sid: u32) -> R {
    R(Rule {
        action: Action::Alert,
        proto: Proto::Ip,
        src: IpSet::any(),
        src_ports: PortSet::any(),
        dst: IpSet::any(),
        dst_ports: PortSet::any(),
        bidirectional: false,
        gid: 1,
        sid,
        rev: 1,
        msg: format!("rule {sid}"),
        classtype: None,
        category: String::new(),
        priority: 3,
        metadata: vec![],
        references: vec![],
        reference_urls: vec![],
        target: None,
        flow: FlowOpts::default(),
        header: vec![],
        payload: vec![],
        flowbits: vec![],
        app: vec![],
        noalert: false,
        threshold: None,
        detection_filter: None,
        vars: vec![],
        origin: Origin { file: Arc::from(Path::new("test.rules")), line: sid },
        text: String::new(),
    })
}

pub fn v4(a: &str) -> u32 {
    u32::from(a.parse::<std::net::Ipv4Addr>().unwrap())
}

impl R {
    pub fn proto(mut self, p: Proto) -> Self {
        self.0.proto = p;
        self
    }
    pub fn action(mut self, a: Action) -> Self {
        self.0.action = a;
        self
    }
    pub fn src(mut self, a: &str) -> Self {
        let x = v4(a);
        self.0.src = IpSet { v4: vec![(x, x)], v6: vec![] };
        self
    }
    pub fn dst(mut self, a: &str) -> Self {
        let x = v4(a);
        self.0.dst = IpSet { v4: vec![(x, x)], v6: vec![] };
        self
    }
    pub fn dport(mut self, p: u16) -> Self {
        self.0.dst_ports = PortSet(vec![(p, p)]);
        self
    }
    pub fn bidir(mut self) -> Self {
        self.0.bidirectional = true;
        self
    }
    pub fn priority(mut self, p: u8) -> Self {
        self.0.priority = p;
        self
    }
    fn push(mut self, kind: PayloadKind) -> Self {
        self.0.payload.push(PayloadMatch { buffer: Buffer::Payload, kind });
        self
    }
    pub fn content(self, pat: &[u8]) -> Self {
        self.push(PayloadKind::Content(Content {
            pattern: pat.to_vec(),
            negated: false,
            nocase: false,
            offset: None,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            fast_pattern: None,
        }))
    }
    pub fn not_content(self, pat: &[u8]) -> Self {
        self.content(pat).with(|c| c.negated = true)
    }
    /// Changes the last content.
    pub fn with(mut self, f: impl FnOnce(&mut Content)) -> Self {
        let c = self
            .0
            .payload
            .iter_mut()
            .rev()
            .find_map(|p| match &mut p.kind {
                PayloadKind::Content(c) => Some(c),
                _ => None,
            })
            .expect("a content to modify");
        f(c);
        self
    }
    pub fn nocase(self) -> Self {
        self.with(|c| c.nocase = true)
    }
    pub fn depth(self, n: u32) -> Self {
        self.with(|c| c.depth = Some(Value::Lit(n)))
    }
    pub fn depth_var(self, v: u8) -> Self {
        self.with(|c| c.depth = Some(Value::Var(v)))
    }
    pub fn offset(self, n: u32) -> Self {
        self.with(|c| c.offset = Some(Value::Lit(n)))
    }
    pub fn distance(self, n: i32) -> Self {
        self.with(|c| c.distance = Some(Value::Lit(n)))
    }
    pub fn distance_var(self, v: u8) -> Self {
        self.with(|c| c.distance = Some(Value::Var(v)))
    }
    pub fn within(self, n: i32) -> Self {
        self.with(|c| c.within = Some(Value::Lit(n)))
    }
    pub fn startswith(self) -> Self {
        self.with(|c| c.startswith = true)
    }
    pub fn endswith(self) -> Self {
        self.with(|c| c.endswith = true)
    }
    pub fn fast_pattern(self, chop: Option<(u16, u16)>) -> Self {
        self.with(|c| c.fast_pattern = Some(FastPattern { only: false, chop }))
    }
    /// `flags` as Suricata letters: i s m x A E G R, `!` first for negation.
    pub fn pcre(self, pattern: &str, flags: &str) -> Self {
        let negated = flags.starts_with('!');
        self.push(PayloadKind::Pcre(Pcre {
            pattern: pattern.to_string(),
            negated,
            caseless: flags.contains('i'),
            dotall: flags.contains('s'),
            multiline: flags.contains('m'),
            extended: flags.contains('x'),
            anchored: flags.contains('A'),
            dollar_endonly: flags.contains('E'),
            ungreedy: flags.contains('G'),
            relative: flags.contains('R'),
            raw_flags: flags.to_string(),
        }))
    }
    pub fn byte_test(self, bt: ByteTest) -> Self {
        self.push(PayloadKind::ByteTest(bt))
    }
    pub fn byte_jump(self, bj: ByteJump) -> Self {
        self.push(PayloadKind::ByteJump(bj))
    }
    pub fn byte_extract(mut self, be: ByteExtract) -> Self {
        self.0.vars.push(format!("v{}", be.var));
        self.push(PayloadKind::ByteExtract(be))
    }
    pub fn isdataat(self, pos: u32, negated: bool, relative: bool) -> Self {
        self.push(PayloadKind::IsDataAt(IsDataAt { pos: Value::Lit(pos), negated, relative }))
    }
    pub fn bsize(self, c: Cmp<u64>) -> Self {
        self.push(PayloadKind::Bsize(c))
    }
    pub fn header(mut self, h: HeaderMatch) -> Self {
        self.0.header.push(h);
        self
    }
    pub fn flow(mut self, f: impl FnOnce(&mut FlowOpts)) -> Self {
        f(&mut self.0.flow);
        self
    }
    pub fn flowbit(mut self, cmd: FlowbitCmd, names: &[&str]) -> Self {
        self.0.flowbits.push(Flowbit { cmd, names: names.iter().map(|s| s.to_string()).collect() });
        self
    }
    pub fn noalert(mut self) -> Self {
        self.0.noalert = true;
        self
    }
    pub fn threshold(mut self, kind: ThresholdKind, track: TrackBy, count: u32, seconds: u32) -> Self {
        self.0.threshold = Some(Threshold { kind, track, count, seconds });
        self
    }
    pub fn detection_filter(mut self, track: TrackBy, count: u32, seconds: u32) -> Self {
        self.0.detection_filter = Some(Threshold { kind: ThresholdKind::Threshold, track, count, seconds });
        self
    }
    pub fn buffer(mut self, b: Buffer) -> Self {
        self.0.payload.last_mut().expect("a payload keyword").buffer = b;
        self
    }
    pub fn build(self) -> Rule {
        self.0
    }
}

pub fn bt(nbytes: u8, op: ByteOp, value: u64, offset: i32) -> ByteTest {
    ByteTest {
        nbytes,
        op,
        negated: false,
        value: Value::Lit(value),
        offset: Value::Lit(offset),
        relative: false,
        endian: Endian::Big,
        format: NumFormat::Binary,
        bitmask: None,
    }
}

pub fn bj(nbytes: u8, offset: i32) -> ByteJump {
    ByteJump {
        nbytes,
        offset: Value::Lit(offset),
        relative: false,
        multiplier: 1,
        endian: Endian::Big,
        format: NumFormat::Binary,
        align: false,
        from_beginning: false,
        from_end: false,
        post_offset: 0,
        bitmask: None,
    }
}

pub fn be(nbytes: u8, offset: i32, var: u8) -> ByteExtract {
    ByteExtract {
        nbytes,
        offset,
        var,
        relative: false,
        multiplier: 1,
        endian: Endian::Big,
        format: NumFormat::Binary,
        align: 0,
        bitmask: None,
    }
}

/// A packet of `proto` from 10.0.0.1:1234 to 10.0.0.2:80 (reversed for to-client).
pub fn meta(proto: u8, dir: Direction, sec: i64) -> PacketMeta {
    let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let (sp, dp) = if matches!(proto, 6 | 17) { (1234, 80) } else { (0, 0) };
    let key = FlowKey::new(a, b, sp, dp, proto);
    let key = if dir == Direction::ToClient { key.reversed() } else { key };
    let mut m = PacketMeta::new(Timestamp(sec * 1_000_000), key, 100);
    m.tcp_flags = TcpFlags(TcpFlags::ACK | TcpFlags::PSH);
    m
}

pub fn input<'a>(m: &'a PacketMeta, payload: &'a [u8], dir: Option<Direction>) -> PacketInput<'a> {
    PacketInput {
        meta: m,
        payload,
        ip_id: 0,
        icmp_id: 0,
        icmp_seq: 0,
        dir,
        established: true,
        stream: None,
        stream_offset: 0,
        pseudo: false,
        app_proto: Default::default(),
        txs: &[],
        app_other: None,
    }
}

/// An engine and its per-flow and per-thread state.
pub struct T {
    pub engine: Engine,
    pub flow: FlowDetect,
    pub scratch: Scratch,
}

impl T {
    pub fn new(rules: Vec<Rule>) -> T {
        T::with(rules, &DetectConfig::default())
    }
    pub fn with(rules: Vec<Rule>, cfg: &DetectConfig) -> T {
        let (engine, warnings) = Engine::build(rules, cfg);
        assert!(warnings.is_empty(), "{warnings:?}");
        let flow = engine.new_flow();
        let scratch = engine.new_scratch();
        T { engine, flow, scratch }
    }
    pub fn run(&mut self, p: &PacketInput<'_>) -> (Vec<Alert>, Verdict) {
        let mut alerts = Vec::new();
        let flow = if p.dir.is_some() { Some(&mut self.flow) } else { None };
        let v = self.engine.inspect(p, flow, &mut self.scratch, &mut alerts);
        (alerts, v)
    }
    pub fn sids(&mut self, p: &PacketInput<'_>) -> Vec<u32> {
        self.run(p).0.iter().map(|a| a.sid).collect()
    }
}

/// Whether a single-rule engine alerts on a UDP packet with this payload.
pub fn hits(r: Rule, payload: &[u8]) -> bool {
    let mut t = T::new(vec![r]);
    let m = meta(17, Direction::ToServer, 0);
    !t.sids(&input(&m, payload, Some(Direction::ToServer))).is_empty()
}
