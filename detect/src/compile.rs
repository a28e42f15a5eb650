//! Turning one typed [`Rule`] into what the engine runs: the payload program, the header
//! checks, the protocol classes it applies to, Suricata's stream/packet inspection flags,
//! whether it is an IP-only rule, its flowbit operations as indices, and its fast pattern.
//! A rule that cannot be compiled yields a reason instead.

use memchr::memmem;
use portcullis_applayer::{AppProto, Buf};
use portcullis_common::Direction;
use portcullis_rules::{
    AppMatch, Buffer, Content, FlowbitCmd, HeaderMatch, PayloadKind, Pcre, Proto, Rule, ThresholdKind, TrackBy,
};

use crate::app::{AppPart, AppProgram, Transform};
use crate::payload::{ContentOp, Op, PcreOp, MAX_VARS};

/// The distinct (buffer, transformations) pairs rules inspect: each has its own prefilter,
/// and its transformations are compiled once.
#[derive(Debug, Default)]
pub(crate) struct AppKeys {
    pub list: Vec<(Buf, Vec<String>)>,
    pub transforms: Vec<Vec<Transform>>,
}

impl AppKeys {
    fn intern(&mut self, buf: Buf, ts: &[String]) -> Result<u32, Reason> {
        if let Some(i) = self.list.iter().position(|(b, t)| *b == buf && t == ts) {
            return Ok(i as u32);
        }
        let compiled = ts.iter().map(|t| Transform::parse(t)).collect::<Result<Vec<_>, _>>()?;
        self.list.push((buf, ts.to_vec()));
        self.transforms.push(compiled);
        Ok((self.list.len() - 1) as u32)
    }
}

/// Protocol classes: each has its own prefilter.
pub(crate) const CLASS_TCP: usize = 0;
pub(crate) const CLASS_UDP: usize = 1;
pub(crate) const CLASS_ICMP: usize = 2;
pub(crate) const CLASS_OTHER: usize = 3;
pub(crate) const CLASSES: usize = 4;

pub(crate) fn class_of(proto: u8) -> usize {
    match proto {
        6 => CLASS_TCP,
        17 => CLASS_UDP,
        1 | 58 => CLASS_ICMP,
        _ => CLASS_OTHER,
    }
}

/// The fast pattern a rule contributes to its classes' prefilters.
#[derive(Debug, Clone)]
pub(crate) struct FastPattern {
    pub bytes: Vec<u8>,
    pub nocase: bool,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub ops: Vec<Op>,
    pub header: Vec<HeaderMatch>,
    /// Bit per class this rule applies to.
    pub classes: u8,
    /// The exact IP protocol when the header names one class member only (ICMPv6, SCTP).
    pub ip_proto: Option<u8>,
    /// ICMP class rules: `icmp` means both ICMP and ICMPv6 in Suricata.
    pub src_any: bool,
    pub dst_any: bool,
    pub require_stream: bool,
    pub require_packet: bool,
    pub stream_only: bool,
    pub iponly: bool,
    /// IP-only, or only addresses, ports and protocol (Suricata's "like IP-only"): a drop
    /// or pass of such a rule applies to the whole flow.
    pub header_only: bool,
    pub any_nocase: bool,
    pub fbit_writes: Vec<(FlowbitCmd, u32)>,
    /// `isset`/`isnotset` with OR-ed names.
    pub fbit_reads: Vec<(FlowbitCmd, Vec<u32>)>,
    pub fast: Option<FastPattern>,
    /// For a transaction rule, the buffer key its fast pattern is searched in.
    pub fast_key: Option<u32>,
    /// App-layer protocol, buffers and keywords; `None` for a plain packet rule.
    pub app: Option<Box<AppProgram>>,
    /// `(kind, track, count, seconds, is detection_filter)`.
    pub threshold: Option<Thresh>,
    /// Sort key after the action: flowbit role, then priority.
    pub order: (u8, u8),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresh {
    pub kind: ThresholdKind,
    pub track: TrackBy,
    pub count: u32,
    pub seconds: u32,
    pub detection_filter: bool,
}

/// Why a rule was dropped.
pub(crate) type Reason = String;

pub(crate) fn compile(rule: &Rule, fbits: &mut Vec<String>, keys: &mut AppKeys) -> Result<Compiled, Reason> {
    let mut app = AppProgram::default();
    let (mut classes, ip_proto) = match &rule.proto {
        Proto::Ip => (0b1111u8, None),
        Proto::Tcp | Proto::TcpPkt | Proto::TcpStream => (1 << CLASS_TCP, None),
        Proto::Udp => (1 << CLASS_UDP, None),
        Proto::Icmp => (1 << CLASS_ICMP, None),
        Proto::Icmpv6 => (1 << CLASS_ICMP, Some(58)),
        Proto::Sctp => (1 << CLASS_OTHER, Some(132)),
        Proto::App(name) => {
            let p = AppProto::from_rule_name(name).ok_or_else(|| format!("app-layer protocol `{name}` is not detected"))?;
            app.proto = Some(p);
            (transport_classes(p), None)
        }
    };
    for h in &rule.header {
        if let HeaderMatch::Other { keyword, .. } = h {
            return Err(format!("keyword `{keyword}` is not supported"));
        }
    }
    if rule.vars.len() > MAX_VARS {
        return Err(format!("more than {MAX_VARS} byte_extract variables"));
    }
    let mut ops = Vec::with_capacity(rule.payload.len());
    for pm in &rule.payload {
        let op = match &pm.kind {
            PayloadKind::Content(c) => Op::Content(Box::new(content_op(c)?)),
            PayloadKind::Pcre(p) => Op::Pcre(Box::new(pcre_op(p, rule.sid)?)),
            PayloadKind::ByteTest(b) => Op::ByteTest(b.clone()),
            PayloadKind::ByteJump(b) => Op::ByteJump(b.clone()),
            PayloadKind::ByteExtract(b) => Op::ByteExtract(b.clone()),
            PayloadKind::IsDataAt(d) => Op::IsDataAt(d.clone()),
            PayloadKind::Bsize(c) => Op::Bsize(*c),
        };
        match &pm.buffer {
            Buffer::Sticky { name, transforms } => {
                let buf = Buf::from_name(name).ok_or_else(|| format!("sticky buffer `{name}` is not supported"))?;
                let key = keys.intern(buf, transforms)?;
                // Suricata gathers every keyword of one buffer (and transformation list) into
                // one list, wherever the rule names the buffer again.
                match app.parts.iter_mut().find(|p| p.key == key) {
                    Some(p) => p.ops.push(op),
                    None => app.parts.push(AppPart { buf, key, ops: vec![op], any_nocase: false }),
                }
            }
            Buffer::Payload | Buffer::PktData => ops.push(op),
        }
    }
    link_relative(&mut ops);
    for part in &mut app.parts {
        link_relative(&mut part.ops);
        part.any_nocase = part.ops.iter().any(Op::uses_nocase);
    }
    for m in &rule.app {
        match m {
            AppMatch::Protocol { name, negated } => {
                let p = match name.as_str() {
                    "failed" => AppProto::Failed,
                    n => AppProto::from_rule_name(n).ok_or_else(|| format!("app-layer-protocol `{n}` is not detected"))?,
                };
                app.flow_protos.push((p, *negated));
            }
            other => app.tx_checks.push(other.clone()),
        }
    }
    // The protocol the transaction keywords belong to; they must agree with the header's.
    let mut tx_protos = app.parts.iter().map(|p| p.buf.proto()).chain(app.tx_checks.iter().map(|m| match m {
        AppMatch::UriLen { .. } => AppProto::Http,
        AppMatch::TlsVersion(_) | AppMatch::SslVersion(_) => AppProto::Tls,
        AppMatch::DnsOpcode { .. } => AppProto::Dns,
        AppMatch::Protocol { .. } => unreachable!("flow-level checks are not transaction keywords"),
    }));
    if let Some(first) = tx_protos.next() {
        if let Some(other) = tx_protos.find(|p| *p != first) {
            return Err(format!("inspects both {} and {} buffers", first.name().unwrap_or("?"), other.name().unwrap_or("?")));
        }
        match app.proto {
            Some(p) if p != first => {
                return Err(format!("{} buffers in a rule for {}", first.name().unwrap_or("?"), p.name().unwrap_or("?")))
            }
            Some(_) => {}
            None => {
                if classes & transport_classes(first) == 0 {
                    return Err(format!("{} buffers in a rule for another transport", first.name().unwrap_or("?")));
                }
                classes &= transport_classes(first);
                app.proto = Some(first);
            }
        }
    }
    let tx_based = app.tx_based();
    if tx_based {
        let fixed = app.parts.iter().map(|p| p.buf.fixed_dir()).chain(app.tx_checks.iter().map(|m| match m {
            AppMatch::UriLen { .. } => Some(Direction::ToServer),
            _ => None,
        }));
        let (mut server, mut client) = (false, false);
        for d in fixed.flatten() {
            match d {
                Direction::ToServer => server = true,
                Direction::ToClient => client = true,
            }
        }
        app.dir = if rule.flow.to_server {
            Some(Direction::ToServer)
        } else if rule.flow.to_client || client {
            Some(Direction::ToClient)
        } else if server {
            Some(Direction::ToServer)
        } else {
            None
        };
    }
    let app = (app.proto.is_some() || !app.flow_protos.is_empty()).then(|| Box::new(app));

    // Suricata's SIG_FLAG_REQUIRE_{STREAM,PACKET} for rules that may see TCP.
    let has_payload = !ops.is_empty();
    let has_dsize = rule.header.iter().any(|h| matches!(h, HeaderMatch::Dsize(_)));
    let tcp = classes & (1 << CLASS_TCP) != 0;
    let mut require_packet = matches!(rule.proto, Proto::TcpPkt) || rule.flow.no_stream || has_dsize;
    let mut require_stream = false;
    let stream_only = matches!(rule.proto, Proto::TcpStream) || rule.flow.only_stream;
    if tcp && has_payload {
        if stream_only {
            require_stream = true;
            require_packet = false;
        } else if !require_packet {
            require_stream = true;
            // Absolute contents are also checked on packets, as Suricata.
            if rule.payload.iter().any(|p| matches!(&p.kind, PayloadKind::Content(c) if c.depth.is_some() || c.offset.is_some())) {
                require_packet = true;
            }
        }
    }

    let mut fbit_writes = Vec::new();
    let mut fbit_reads = Vec::new();
    for fb in &rule.flowbits {
        let ids: Vec<u32> = fb.names.iter().map(|n| intern(fbits, n)).collect();
        match fb.cmd {
            FlowbitCmd::IsSet | FlowbitCmd::IsNotSet => fbit_reads.push((fb.cmd, ids)),
            cmd => fbit_writes.extend(ids.into_iter().map(|i| (cmd, i))),
        }
    }
    let flow_dir_only = {
        let f = rule.flow;
        !(f.established || f.not_established || f.only_stream || f.no_stream || f.only_frag || f.no_frag)
    };
    let iponly = !has_payload
        && app.is_none()
        && rule.header.is_empty()
        && rule.src_ports.is_any()
        && rule.dst_ports.is_any()
        && flow_dir_only
        && !matches!(rule.proto, Proto::TcpPkt | Proto::TcpStream)
        && fbit_reads.is_empty()
        && fbit_writes.iter().all(|(c, _)| *c == FlowbitCmd::Set);

    let header_only = !has_payload && app.is_none() && rule.header.is_empty() && flow_dir_only && fbit_reads.is_empty();
    let any_nocase = ops.iter().any(Op::uses_nocase);
    let (fast, fast_key) = if tx_based {
        match tx_fast_pattern(rule) {
            Some((fp, buf, ts)) => (Some(fp), Some(keys.intern(Buf::from_name(&buf).expect("checked above"), &ts)?)),
            None => (None, None),
        }
    } else {
        (fast_pattern(rule), None)
    };
    let threshold = rule
        .threshold
        .map(|t| Thresh { kind: t.kind, track: t.track, count: t.count, seconds: t.seconds, detection_filter: false })
        .or(rule.detection_filter.map(|t| Thresh {
            kind: t.kind,
            track: t.track,
            count: t.count,
            seconds: t.seconds,
            detection_filter: true,
        }));
    // Rules that only set bits run before rules that set and read, then rules without
    // flowbits, then rules that only read: a bit set by a packet is visible to the rules
    // checking it on the same packet.
    let fb_rank = match (fbit_writes.is_empty(), fbit_reads.is_empty()) {
        (false, true) => 0,
        (false, false) => 1,
        (true, true) => 2,
        (true, false) => 3,
    };
    Ok(Compiled {
        ops,
        header: rule.header.clone(),
        classes,
        ip_proto,
        src_any: rule.src.is_any(),
        dst_any: rule.dst.is_any(),
        require_stream,
        require_packet,
        stream_only,
        iponly,
        header_only,
        any_nocase,
        fbit_writes,
        fbit_reads,
        fast,
        fast_key,
        app,
        threshold,
        order: (fb_rank, rule.priority),
    })
}

/// The transport classes an app-layer protocol runs over.
fn transport_classes(p: AppProto) -> u8 {
    match p {
        AppProto::Dns => (1 << CLASS_TCP) | (1 << CLASS_UDP),
        _ => 1 << CLASS_TCP,
    }
}

fn intern(names: &mut Vec<String>, n: &str) -> u32 {
    if let Some(i) = names.iter().position(|x| x == n) {
        return i as u32;
    }
    names.push(n.to_string());
    (names.len() - 1) as u32
}

fn content_op(c: &Content) -> Result<ContentOp, Reason> {
    if c.pattern.is_empty() {
        return Err("empty content".into());
    }
    let pat: Vec<u8> = if c.nocase { c.pattern.to_ascii_lowercase() } else { c.pattern.clone() };
    let (mut offset, mut depth) = (c.offset.clone(), c.depth.clone());
    if c.startswith {
        offset = Some(portcullis_rules::Value::Lit(0));
        depth = Some(portcullis_rules::Value::Lit(c.pattern.len() as u32));
    }
    Ok(ContentOp {
        finder: memmem::Finder::new(&pat).into_owned(),
        pat,
        nocase: c.nocase,
        negated: c.negated,
        offset,
        depth,
        distance: c.distance.clone(),
        within: c.within.clone(),
        endswith: c.endswith,
        within_next: false,
        relative_next: false,
    })
}

/// Suricata's flags as PCRE2 options; what the builder lacks becomes inline syntax.
fn pcre_op(p: &Pcre, sid: u32) -> Result<PcreOp, Reason> {
    let mut pat = String::with_capacity(p.pattern.len() + 16);
    // Leading `(*VERB)` items must stay first.
    let mut body = p.pattern.as_str();
    while body.starts_with("(*") {
        match body.find(')') {
            Some(e) => {
                pat.push_str(&body[..=e]);
                body = &body[e + 1..];
            }
            None => break,
        }
    }
    if p.ungreedy {
        pat.push_str("(?U)");
    }
    let body = if p.dollar_endonly && !p.multiline { dollar_end_only(body) } else { body.to_string() };
    if p.anchored {
        pat.push_str("\\G(?:");
        pat.push_str(&body);
        pat.push(')');
    } else {
        pat.push_str(&body);
    }
    let re = pcre2::bytes::RegexBuilder::new()
        .caseless(p.caseless)
        .dotall(p.dotall)
        .multi_line(p.multiline)
        .extended(p.extended)
        .jit_if_available(true)
        .build(&pat)
        .map_err(|e| format!("sid {sid}: PCRE2 rejects /{}/: {e}", p.pattern))?;
    Ok(PcreOp { re, negated: p.negated, relative: p.relative, relative_next: false })
}

/// PCRE's DOLLAR_ENDONLY: an unescaped `$` outside a class means the very end.
fn dollar_end_only(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut esc = false;
    let mut class = false;
    for ch in s.chars() {
        if esc {
            out.push(ch);
            esc = false;
            continue;
        }
        match ch {
            '\\' => {
                esc = true;
                out.push(ch);
            }
            '[' if !class => {
                class = true;
                out.push(ch);
            }
            ']' if class => {
                class = false;
                out.push(ch);
            }
            '$' if !class => out.push_str("\\z"),
            _ => out.push(ch),
        }
    }
    out
}

/// Sets the flags that tie a keyword to the content or pcre before it.
fn link_relative(ops: &mut [Op]) {
    for j in 0..ops.len() {
        let (relative, within) = match &ops[j] {
            Op::Content(c) => (c.distance.is_some() || c.within.is_some(), c.within.is_some()),
            Op::Pcre(p) => (p.relative, false),
            Op::ByteTest(b) => (b.relative, false),
            Op::ByteJump(b) => (b.relative, false),
            Op::ByteExtract(b) => (b.relative, false),
            Op::IsDataAt(d) => (d.relative, false),
            Op::Bsize(_) => (false, false),
        };
        if !relative {
            continue;
        }
        let prev = (0..j).rev().find(|&k| matches!(ops[k], Op::Content(_) | Op::Pcre(_)));
        if let Some(k) = prev {
            match &mut ops[k] {
                Op::Content(c) => {
                    c.relative_next = true;
                    if within {
                        c.within_next = true;
                    }
                }
                Op::Pcre(p) => p.relative_next = true,
                _ => {}
            }
        }
    }
}

/// Suricata's pattern strength: rarer-looking bytes count more.
fn strength(p: &[u8]) -> u32 {
    let mut seen = [false; 256];
    let mut s = 0;
    for &b in p {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            s += if b.is_ascii_alphabetic() {
                3
            } else if b.is_ascii_graphic() || b == b' ' || b == 0 || b == 1 || b == 0xff {
                4
            } else {
                6
            };
        } else {
            s += 1;
        }
    }
    s
}

/// The explicit `fast_pattern`, else the longest (then strongest) non-negated content of
/// the packet payload buffer. A negated choice leaves the rule without a usable pattern.
pub(crate) fn fast_pattern(rule: &Rule) -> Option<FastPattern> {
    let contents: Vec<&Content> = rule
        .payload
        .iter()
        .filter(|p| matches!(p.buffer, Buffer::Payload | Buffer::PktData))
        .filter_map(|p| match &p.kind {
            PayloadKind::Content(c) => Some(c),
            _ => None,
        })
        .collect();
    choose(&contents)
}

/// A transaction rule's fast pattern, chosen the same way among the contents of its sticky
/// buffers, with the buffer (and transformations) it is searched in.
fn tx_fast_pattern(rule: &Rule) -> Option<(FastPattern, String, Vec<String>)> {
    let contents: Vec<(&Content, &String, &Vec<String>)> = rule
        .payload
        .iter()
        .filter_map(|p| match (&p.buffer, &p.kind) {
            (Buffer::Sticky { name, transforms }, PayloadKind::Content(c)) => Some((c, name, transforms)),
            _ => None,
        })
        .collect();
    let only: Vec<&Content> = contents.iter().map(|c| c.0).collect();
    let (i, fp) = choose_index(&only)?;
    let (_, name, ts) = contents[i];
    Some((fp, name.clone(), ts.clone()))
}

fn choose(contents: &[&Content]) -> Option<FastPattern> {
    choose_index(contents).map(|(_, fp)| fp)
}

/// The chosen content's index and its fast pattern.
fn choose_index(contents: &[&Content]) -> Option<(usize, FastPattern)> {
    let idx = match contents.iter().position(|c| c.fast_pattern.is_some()) {
        Some(i) => i,
        None => {
            let mut best: Option<usize> = None;
            for (i, c) in contents.iter().enumerate() {
                if c.negated {
                    continue;
                }
                best = match best {
                    None => Some(i),
                    Some(b) => {
                        let b_c = contents[b];
                        let (lc, lb) = (c.pattern.len(), b_c.pattern.len());
                        if lc > lb || (lc == lb && strength(&c.pattern) > strength(&b_c.pattern)) {
                            Some(i)
                        } else {
                            Some(b)
                        }
                    }
                };
            }
            best?
        }
    };
    let chosen = contents[idx];
    if chosen.negated {
        return None;
    }
    let mut bytes = chosen.pattern.clone();
    if let Some(fp) = chosen.fast_pattern {
        if let Some((off, len)) = fp.chop {
            let (off, len) = (usize::from(off), usize::from(len));
            if off + len <= bytes.len() && len > 0 {
                bytes = bytes[off..off + len].to_vec();
            }
        }
    }
    Some((idx, FastPattern { bytes, nocase: chosen.nocase }))
}
