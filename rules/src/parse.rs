//! One rule's text → [`Rule`]: the header, the options with Suricata's escaping, and every
//! supported keyword's value. Keywords are classified by [`crate::keywords`] before their
//! value is looked at, so a rule with an app-layer or unknown keyword is refused with that
//! keyword's name even when the rest would parse.

use std::fmt;

use crate::ast::*;
use crate::keywords::{self, Support};
use crate::meta::{Classifications, References};
use crate::vars::{ResolvedVars, Vars};

/// What a rule is parsed against: the resolved variables and, when given, the
/// classification and reference configs. Build it once per load.
#[derive(Clone, Debug, Default)]
pub struct ParseContext {
    pub vars: ResolvedVars,
    /// `None`: no classification file, so any classtype is accepted (category empty,
    /// priority 3 unless the rule says). `Some`: an unknown classtype is an error, as in
    /// Suricata.
    pub classifications: Option<Classifications>,
    pub references: References,
}

impl ParseContext {
    pub fn new(vars: &Vars) -> Self {
        ParseContext { vars: ResolvedVars::new(vars), classifications: None, references: References::default() }
    }
}

/// Why one rule did not become a [`Rule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// The text does not follow the rule grammar.
    Syntax(String),
    /// It parses, but Suricata would refuse it too (a `within` shorter than its content, an
    /// unknown classtype, ...).
    Invalid(String),
    /// A Suricata keyword Portcullis does not support; `app_layer` when it needs app-layer
    /// inspection, which is not built yet.
    Unsupported { app_layer: bool },
    /// Not a keyword Suricata 7 has, as far as the registry knows.
    Unknown,
}

/// A rule that could not be loaded: where in the rule (byte offset from the rule's first
/// character, continuations joined), which keyword, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub column: usize,
    pub keyword: Option<String>,
    pub sid: Option<u32>,
    pub kind: RuleErrorKind,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kw = self.keyword.as_deref().unwrap_or("");
        match &self.kind {
            RuleErrorKind::Unsupported { app_layer: true } => write!(f, "unsupported app-layer keyword {kw}"),
            RuleErrorKind::Unsupported { app_layer: false } => write!(f, "unsupported keyword {kw}"),
            RuleErrorKind::Unknown => write!(f, "unknown keyword {kw} at column {}", self.column),
            RuleErrorKind::Syntax(m) if kw.is_empty() => write!(f, "syntax error at column {}: {m}", self.column),
            RuleErrorKind::Syntax(m) => write!(f, "syntax error at column {} in {kw}: {m}", self.column),
            RuleErrorKind::Invalid(m) if kw.is_empty() => write!(f, "invalid rule at column {}: {m}", self.column),
            RuleErrorKind::Invalid(m) => write!(f, "invalid {kw} at column {}: {m}", self.column),
        }
    }
}

impl std::error::Error for RuleError {}

fn syntax(column: usize, keyword: Option<&str>, m: impl Into<String>) -> RuleError {
    RuleError { column, keyword: keyword.map(str::to_string), sid: None, kind: RuleErrorKind::Syntax(m.into()) }
}

fn invalid(column: usize, keyword: &str, m: impl Into<String>) -> RuleError {
    RuleError { column, keyword: Some(keyword.to_string()), sid: None, kind: RuleErrorKind::Invalid(m.into()) }
}

/// The app-layer part of a parsed rule that Portcullis cannot inspect, if any: the canonical
/// name of the first sticky buffer no parser fills ([`keywords::APP_BUFFERS`]), or
/// `proto:NAME` for an app-layer protocol in the header that is not detected
/// ([`keywords::APP_PROTOS`]). The loader skips such rules.
pub fn app_layer_use(rule: &Rule) -> Option<String> {
    for m in &rule.payload {
        if let Buffer::Sticky { name, .. } = &m.buffer {
            if !keywords::APP_BUFFERS.contains(&name.as_str()) {
                return Some(name.clone());
            }
        }
    }
    if let Proto::App(p) = &rule.proto {
        if !keywords::APP_PROTOS.contains(&p.as_str()) {
            return Some(format!("proto:{p}"));
        }
    }
    for m in &rule.app {
        if let AppMatch::Protocol { name, .. } = m {
            if !keywords::APP_PROTOS.contains(&name.as_str()) && name != "failed" {
                return Some(format!("app-layer-protocol:{name}"));
            }
        }
    }
    None
}

/// Parses one rule (continuations already joined). `origin` is stored in the rule.
pub fn parse_rule(text: &str, origin: Origin, ctx: &ParseContext) -> Result<Rule, RuleError> {
    let mut sid = None;
    let r = parse_inner(text, origin, ctx, &mut sid);
    r.map_err(|mut e| {
        e.sid = sid.or_else(|| sniff_sid(text));
        e
    })
}

/// The sid of a rule whose options could not be split, for the warning: the digits after
/// the last `sid:` that starts a word.
fn sniff_sid(text: &str) -> Option<u32> {
    let mut rest = text;
    let mut found = None;
    while let Some(i) = rest.find("sid") {
        let before = rest[..i].chars().next_back();
        let after = rest[i + 3..].trim_start();
        if before.is_none_or(|c| c == ';' || c == '(' || c.is_whitespace()) && after.starts_with(':') {
            let digits: String = after[1..].trim_start().chars().take_while(char::is_ascii_digit).collect();
            found = digits.parse().ok().or(found);
        }
        rest = &rest[i + 3..];
    }
    found
}

/// One `keyword[:value];` with byte offsets into the rule.
struct Opt<'a> {
    name: &'a str,
    value: Option<&'a str>,
    col: usize,
}

const APP_PROTOS: &[&str] = &[
    "http", "http1", "http2", "ftp", "ftp-data", "smtp", "tls", "ssl", "ssh", "imap", "pop3", "smb", "dcerpc", "dns", "modbus", "enip",
    "dnp3", "nfs", "ntp", "tftp", "ike", "ikev2", "krb5", "dhcp", "snmp", "sip", "rfb", "mqtt", "pgsql", "telnet", "rdp", "quic",
    "bittorrent-dht", "websocket", "ldap", "irc", "jabber", "failed",
];

fn parse_inner(text: &str, origin: Origin, ctx: &ParseContext, sid_out: &mut Option<u32>) -> Result<Rule, RuleError> {
    let open = text.find('(').ok_or_else(|| syntax(text.len(), None, "no `(` starting the options"))?;
    let trimmed_end = text.trim_end();
    if !trimmed_end.ends_with(')') {
        return Err(syntax(trimmed_end.len(), None, "the options do not end with `)`"));
    }
    let close = trimmed_end.len() - 1;
    if close <= open {
        return Err(syntax(close, None, "the options do not end with `)`"));
    }
    let opts = split_options(text, open + 1, close)?;
    *sid_out = opts.iter().find(|o| o.name == "sid").and_then(|o| o.value).and_then(|v| v.trim().parse().ok());

    // Header: action proto src sport dir dst dport, tokens split on whitespace outside
    // brackets.
    let toks = header_tokens(text, open);
    if toks.len() != 7 {
        let col = toks.get(7).map_or(open, |t| t.0);
        return Err(syntax(col, None, format!("the header has {} fields; expected `action proto src_addr src_port direction dst_addr dst_port`", toks.len())));
    }
    let action = match toks[0].1 {
        "alert" => Action::Alert,
        "drop" => Action::Drop,
        "reject" => Action::Reject,
        "rejectsrc" => Action::RejectSrc,
        "rejectdst" => Action::RejectDst,
        "rejectboth" => Action::RejectBoth,
        "pass" => Action::Pass,
        a => return Err(syntax(toks[0].0, None, format!("unknown action `{a}`"))),
    };
    let p = toks[1].1.to_ascii_lowercase();
    let proto = match p.as_str() {
        "ip" | "pkthdr" => Proto::Ip,
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" => Proto::Icmp,
        "icmpv6" => Proto::Icmpv6,
        "sctp" => Proto::Sctp,
        "tcp-pkt" => Proto::TcpPkt,
        "tcp-stream" => Proto::TcpStream,
        a if APP_PROTOS.contains(&a) => Proto::App(p.clone()),
        // Suricata 7's one-family protocols; the AST's `Proto` has no family of its own.
        "ipv4" | "ip4" | "ipv6" | "ip6" => {
            return Err(RuleError { column: toks[1].0, keyword: Some(format!("proto:{p}")), sid: None, kind: RuleErrorKind::Unsupported { app_layer: false } })
        }
        a => return Err(syntax(toks[1].0, None, format!("unknown protocol `{a}`"))),
    };
    let addr = |i: usize| ctx.vars.address(toks[i].1).map_err(|m| syntax(toks[i].0, None, m));
    let port = |i: usize| ctx.vars.ports(toks[i].1).map_err(|m| syntax(toks[i].0, None, m));
    let (src, src_ports) = (addr(2)?, port(3)?);
    let bidirectional = match toks[4].1 {
        "->" => false,
        "<>" => true,
        d => return Err(syntax(toks[4].0, None, format!("unknown direction `{d}` (use -> or <>)"))),
    };
    let (dst, dst_ports) = (addr(5)?, port(6)?);

    let mut b = Builder {
        rule: Rule {
            action,
            proto,
            src,
            src_ports,
            dst,
            dst_ports,
            bidirectional,
            gid: 1,
            sid: 0,
            rev: 0,
            msg: String::new(),
            classtype: None,
            category: String::new(),
            priority: 3,
            metadata: Vec::new(),
            references: Vec::new(),
            reference_urls: Vec::new(),
            target: None,
            flow: FlowOpts::default(),
            header: Vec::new(),
            payload: Vec::new(),
            flowbits: Vec::new(),
            app: Vec::new(),
            noalert: false,
            threshold: None,
            detection_filter: None,
            vars: Vec::new(),
            origin,
            text: text.trim().to_string(),
        },
        buffer: Buffer::Payload,
        last_content: None,
        sid_seen: false,
        priority: None,
        flow_seen: false,
    };
    for o in &opts {
        b.option(o)?;
    }
    if !b.sid_seen {
        return Err(invalid(open, "sid", "the rule has no sid"));
    }
    let r = &mut b.rule;
    if let Some(ct) = &r.classtype {
        if let Some(classes) = &ctx.classifications {
            let col = opts.iter().find(|o| o.name == "classtype").map_or(0, |o| o.col);
            let (desc, prio) = classes.get(ct).ok_or_else(|| invalid(col, "classtype", format!("unknown classtype `{ct}` (not in the classification file)")))?;
            r.category = desc.clone();
            r.priority = *prio;
        }
    }
    if let Some(p) = b.priority {
        r.priority = p;
    }
    r.reference_urls = r.references.iter().map(|(sys, _)| ctx.references.get(sys).cloned()).collect();
    Ok(b.rule)
}

/// Splits the header into (byte offset, token).
fn header_tokens(text: &str, end: usize) -> Vec<(usize, &str)> {
    let s = &text.as_bytes()[..end];
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0i32;
        while i < s.len() && (depth > 0 || !s[i].is_ascii_whitespace()) {
            match s[i] {
                b'[' => depth += 1,
                b']' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        out.push((start, &text[start..i]));
    }
    out
}

/// Splits `text[start..end]` on unescaped `;`. As in Suricata, quotes do not protect a `;`:
/// it must be written `\;`.
fn split_options(text: &str, start: usize, end: usize) -> Result<Vec<Opt<'_>>, RuleError> {
    let s = text.as_bytes();
    let mut out = Vec::with_capacity(24);
    let mut i = start;
    loop {
        while i < end && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= end {
            break;
        }
        let begin = i;
        while i < end && s[i] != b';' {
            i += if s[i] == b'\\' { 2 } else { 1 };
        }
        if i >= end {
            let name = text[begin..end.min(s.len())].split(':').next().unwrap_or("").trim();
            return Err(syntax(begin, Some(name), "option not terminated by `;`"));
        }
        let raw = &text[begin..i];
        let (name, value) = match raw.find(':') {
            Some(c) => (raw[..c].trim(), Some(raw[c + 1..].trim())),
            None => (raw.trim(), None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(syntax(begin, None, format!("`{}` is not a keyword", name)));
        }
        out.push(Opt { name, value, col: begin });
        i += 1;
    }
    Ok(out)
}

/// Strips the quotes of a quoted value and resolves Suricata's escapes (`\;`, `\"`, `\\`,
/// `\:`). Unquoted values are returned as they are.
fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else { return Ok(v.to_string()) };
    let inner = closing_quote(inner)?;
    let mut out = String::with_capacity(inner.len());
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(e @ (';' | '"' | '\\' | ':')) => out.push(e),
                Some(e) => return Err(format!("invalid escape `\\{e}` (only \\; \\\" \\\\ \\: are allowed)")),
                None => return Err("value ends with a lone backslash".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `msg` as Suricata reads it: the outer quotes stripped, `\\X` for any X kept as X when X is
/// one of Suricata's escapes and as written otherwise (ET Open writes `\\d` in messages).
fn unquote_lenient(v: &str) -> String {
    let inner = match v.strip_prefix('"') {
        Some(r) => r.strip_suffix('"').unwrap_or(r),
        None => v,
    };
    let mut out = String::with_capacity(inner.len());
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(&e @ (';' | '"' | '\\' | ':')) = it.peek() {
                out.push(e);
                it.next();
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// `inner` is what follows an opening quote; returns what lies before the closing quote,
/// which must end the value.
fn closing_quote(inner: &str) -> Result<&str, String> {
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => {
                if inner[i + 1..].trim().is_empty() {
                    return Ok(&inner[..i]);
                }
                return Err(format!("unexpected `{}` after the closing quote", inner[i + 1..].trim()));
            }
            _ => i += 1,
        }
    }
    Err("unterminated quoted value".into())
}

/// Content bytes: quoted text with escapes and `|hex|` runs.
fn content_bytes(v: &str) -> Result<Vec<u8>, String> {
    let inner = v.strip_prefix('"').ok_or("content must be quoted")?;
    let inner = closing_quote(inner)?.as_bytes();
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    let mut hex = false;
    let mut nibble: Option<u8> = None;
    while i < inner.len() {
        let c = inner[i];
        if hex {
            match c {
                b'|' => {
                    if nibble.is_some() {
                        return Err("odd number of hex digits".into());
                    }
                    hex = false;
                }
                b' ' | b'\t' => {
                    if nibble.is_some() {
                        return Err("a hex byte is split by a space".into());
                    }
                }
                _ => {
                    let d = (c as char).to_digit(16).ok_or_else(|| format!("`{}` in a |hex| run", c as char))? as u8;
                    match nibble.take() {
                        Some(h) => out.push(h << 4 | d),
                        None => nibble = Some(d),
                    }
                }
            }
        } else {
            match c {
                b'|' => hex = true,
                b'\\' => {
                    match inner.get(i + 1) {
                        Some(&e @ (b';' | b'"' | b'\\' | b':')) => out.push(e),
                        Some(&e) => return Err(format!("invalid escape `\\{}` (only \\; \\\" \\\\ \\: are allowed)", e as char)),
                        None => return Err("content ends with a lone backslash".into()),
                    }
                    i += 1;
                }
                b'"' => return Err("unescaped `\"` inside content".into()),
                _ => out.push(c),
            }
        }
        i += 1;
    }
    if hex {
        return Err("unterminated |hex| run".into());
    }
    if out.is_empty() {
        return Err("empty content".into());
    }
    Ok(out)
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    let s = s.trim();
    s.parse().map_err(|_| format!("`{s}` is not a valid {what}"))
}

/// Decimal or `0x` hex.
fn int_u64(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not a number"))
}

fn parse_cmp<T: std::str::FromStr + PartialOrd + Copy>(v: &str, what: &str) -> Result<Cmp<T>, String> {
    let v = v.trim();
    let n = |s: &str| num::<T>(s, what);
    if let Some((a, b)) = v.split_once("<>") {
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return Err(format!("range `{v}` is empty"));
        }
        return Ok(Cmp::Between(a, b));
    }
    if let Some(r) = v.strip_prefix("<=") {
        return Ok(Cmp::Le(n(r)?));
    }
    if let Some(r) = v.strip_prefix(">=") {
        return Ok(Cmp::Ge(n(r)?));
    }
    if let Some(r) = v.strip_prefix('<') {
        return Ok(Cmp::Lt(n(r)?));
    }
    if let Some(r) = v.strip_prefix('>') {
        return Ok(Cmp::Gt(n(r)?));
    }
    if let Some(r) = v.strip_prefix('!') {
        return Ok(Cmp::Ne(n(r.strip_prefix('=').unwrap_or(r))?));
    }
    if let Some(r) = v.strip_prefix('=') {
        return Ok(Cmp::Eq(n(r)?));
    }
    if let Some((a, b)) = v.split_once('-') {
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return Err(format!("range `{v}` is empty"));
        }
        return Ok(Cmp::Between(a, b));
    }
    Ok(Cmp::Eq(n(v)?))
}

/// Builds the rule option by option; `buffer` is the sticky buffer in effect.
struct Builder {
    rule: Rule,
    buffer: Buffer,
    /// Index in `rule.payload` of the last `content`, which modifiers apply to.
    last_content: Option<usize>,
    sid_seen: bool,
    priority: Option<u8>,
    flow_seen: bool,
}

impl Builder {
    fn option(&mut self, o: &Opt<'_>) -> Result<(), RuleError> {
        let name = o.name;
        let unsupported = |app_layer| RuleError { column: o.col, keyword: Some(name.to_string()), sid: None, kind: RuleErrorKind::Unsupported { app_layer } };
        let Some(support) = keywords::lookup(name) else {
            return Err(RuleError { column: o.col, keyword: Some(name.to_string()), sid: None, kind: RuleErrorKind::Unknown });
        };
        match support {
            Support::Unsupported => return Err(unsupported(false)),
            Support::AppLayer => match self.app_keyword(o)? {
                Some(m) => {
                    self.rule.app.push(m);
                    return Ok(());
                }
                None => return Err(unsupported(true)),
            },
            Support::Sticky(canonical) => {
                if o.value.is_some() {
                    return Err(syntax(o.col, Some(name), "a sticky buffer takes no value"));
                }
                self.buffer = Buffer::Sticky { name: canonical.to_string(), transforms: Vec::new() };
                return Ok(());
            }
            Support::Modifier(canonical) => return self.modifier(o, canonical),
            Support::Transform => {
                return match &mut self.buffer {
                    Buffer::Sticky { transforms, .. } => {
                        transforms.push(match o.value {
                            Some(v) => format!("{name}:{v}"),
                            None => name.to_string(),
                        });
                        Ok(())
                    }
                    _ => Err(unsupported(false)),
                };
            }
            Support::Engine => {}
        }
        let e = |m: String| invalid(o.col, name, m);
        let no_value = || match o.value {
            Some(_) => Err(syntax(o.col, Some(name), "takes no value")),
            None => Ok(()),
        };
        let value = || o.value.filter(|v| !v.is_empty()).ok_or_else(|| syntax(o.col, Some(name), "needs a value"));
        let r = &mut self.rule;
        match name {
            "msg" => r.msg = unquote_lenient(value()?),
            "sid" => {
                let v: u32 = num(value()?, "sid").map_err(e)?;
                if v == 0 {
                    return Err(invalid(o.col, name, "sid 0 is not allowed"));
                }
                r.sid = v;
                self.sid_seen = true;
            }
            "rev" => r.rev = num(value()?, "rev").map_err(e)?,
            "gid" => r.gid = num(value()?, "gid").map_err(e)?,
            "classtype" => {
                let v = value()?;
                if !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
                    return Err(syntax(o.col, Some(name), format!("`{v}` is not a classtype name")));
                }
                r.classtype = Some(v.to_string());
            }
            "priority" => {
                let p: u8 = num(value()?, "priority (1-255)").map_err(e)?;
                if p == 0 {
                    return Err(invalid(o.col, name, "priority must be 1-255"));
                }
                self.priority = Some(p);
            }
            "metadata" => {
                for item in value()?.split(',') {
                    let item = item.trim();
                    if item.is_empty() {
                        continue;
                    }
                    let (k, v) = item.split_once(char::is_whitespace).unwrap_or((item, ""));
                    r.metadata.push((k.to_string(), v.trim().to_string()));
                }
            }
            "reference" => {
                let v = value()?;
                let (sys, id) = v.split_once(',').ok_or_else(|| syntax(o.col, Some(name), "expected `system,id`"))?;
                r.references.push((sys.trim().to_string(), unquote(id.trim()).map_err(|m| syntax(o.col, Some(name), m))?));
            }
            "target" => {
                r.target = Some(match value()? {
                    "src_ip" => Target::Src,
                    "dest_ip" => Target::Dst,
                    t => return Err(e(format!("`{t}` is not src_ip or dest_ip"))),
                })
            }
            "content" => {
                let c = self.parse_content(o)?;
                self.push_content(c);
            }
            "nocase" => {
                no_value()?;
                self.content_mut(o)?.nocase = true;
            }
            "rawbytes" => {
                // Portcullis inspects raw bytes already (no telnet normalisation), so it
                // has nothing to change; it must still follow a content, as in Suricata.
                no_value()?;
                self.content_mut(o)?;
            }
            "depth" | "offset" => {
                let v = self.value_u32(value()?, o)?;
                let c = self.content_mut(o)?;
                if c.is_relative() {
                    return Err(e(format!("{name} cannot be combined with distance or within on the same content")));
                }
                if c.startswith {
                    return Err(e(format!("{name} cannot be combined with startswith")));
                }
                let slot = if name == "depth" { &mut c.depth } else { &mut c.offset };
                if slot.is_some() {
                    return Err(e(format!("{name} given twice for one content")));
                }
                if name == "depth" {
                    if let Value::Lit(d) = v {
                        if d == 0 {
                            return Err(e("depth 0 matches nothing".into()));
                        }
                        if (d as usize) < c.pattern.len() {
                            return Err(e(format!("depth {d} is smaller than the content length {}", c.pattern.len())));
                        }
                    }
                }
                *slot = Some(v);
            }
            "distance" | "within" => {
                let v = self.value_i32(value()?, o)?;
                let c = self.content_mut(o)?;
                if c.depth.is_some() || c.offset.is_some() || c.startswith {
                    return Err(e(format!("{name} cannot be combined with depth, offset or startswith on the same content")));
                }
                let slot = if name == "distance" { &mut c.distance } else { &mut c.within };
                if slot.is_some() {
                    return Err(e(format!("{name} given twice for one content")));
                }
                if name == "within" {
                    if let Value::Lit(w) = v {
                        if w < c.pattern.len() as i32 {
                            return Err(e(format!("within {w} is smaller than the content length {}", c.pattern.len())));
                        }
                    }
                }
                *slot = Some(v);
            }
            "startswith" => {
                no_value()?;
                let c = self.content_mut(o)?;
                if c.depth.is_some() || c.offset.is_some() || c.is_relative() {
                    return Err(e("startswith cannot be combined with depth, offset, distance or within".into()));
                }
                c.startswith = true;
            }
            "endswith" => {
                no_value()?;
                self.content_mut(o)?.endswith = true;
            }
            "fast_pattern" => {
                let fp = match o.value {
                    None => FastPattern::default(),
                    Some("only") => FastPattern { only: true, chop: None },
                    Some(v) => {
                        let (a, b) = v.split_once(',').ok_or_else(|| syntax(o.col, Some(name), "expected `only` or `offset,length`"))?;
                        FastPattern { only: false, chop: Some((num(a, "offset").map_err(e)?, num(b, "length").map_err(e)?)) }
                    }
                };
                let c = self.content_mut(o)?;
                if let Some((off, len)) = fp.chop {
                    if len == 0 || off as usize + len as usize > c.pattern.len() {
                        return Err(invalid(o.col, name, format!("{off},{len} lies outside the content ({} bytes)", c.pattern.len())));
                    }
                }
                if c.fast_pattern.is_some() {
                    return Err(invalid(o.col, name, "fast_pattern given twice for one content"));
                }
                c.fast_pattern = Some(fp);
            }
            "pcre" => {
                let (pcre, flag_buffer) = parse_pcre(value()?).map_err(|m| syntax(o.col, Some(name), m))?;
                let buffer = match flag_buffer {
                    Some(b) => Buffer::Sticky { name: b.to_string(), transforms: Vec::new() },
                    None => self.buffer.clone(),
                };
                // Suricata 7 refuses a relative pcre with no content or pcre before it in the
                // same buffer, except in a buffer chosen by a sticky keyword (`http.uri;
                // pcre:"/x/R"` loads). byte_* and isdataat accept `relative` anywhere.
                let sticky_keyword = flag_buffer.is_none() && matches!(self.buffer, Buffer::Sticky { .. });
                if pcre.relative && !sticky_keyword && !self.has_match_in(&buffer) {
                    return Err(invalid(o.col, name, "relative (R) needs a preceding content or pcre in the same buffer"));
                }
                self.rule.payload.push(PayloadMatch { buffer, kind: PayloadKind::Pcre(pcre) });
            }
            "isdataat" => {
                let v = value()?;
                let (neg, rest) = match v.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v),
                };
                let mut parts = rest.split(',').map(str::trim);
                let pos = self.value_u32(parts.next().unwrap_or(""), o)?;
                let mut relative = false;
                for p in parts {
                    match p {
                        "relative" => relative = true,
                        "rawbytes" => {}
                        other => return Err(syntax(o.col, Some(name), format!("unknown option `{other}`"))),
                    }
                }
                self.push(PayloadKind::IsDataAt(IsDataAt { pos, negated: neg, relative }));
            }
            "bsize" => {
                let c = parse_cmp::<u64>(value()?, "size").map_err(e)?;
                self.push(PayloadKind::Bsize(c));
            }
            "byte_test" => {
                let bt = self.parse_byte_test(o)?;
                self.push(PayloadKind::ByteTest(bt));
            }
            "byte_jump" => {
                let bj = self.parse_byte_jump(o)?;
                self.push(PayloadKind::ByteJump(bj));
            }
            "byte_extract" => {
                let bx = self.parse_byte_extract(o)?;
                self.push(PayloadKind::ByteExtract(bx));
            }
            "pkt_data" => {
                no_value()?;
                self.buffer = Buffer::PktData;
            }
            "dsize" => {
                let c = parse_cmp::<u16>(value()?, "size").map_err(e)?;
                r.header.push(HeaderMatch::Dsize(c));
            }
            "ttl" => r.header.push(HeaderMatch::Ttl(parse_cmp(value()?, "ttl").map_err(e)?)),
            "itype" => r.header.push(HeaderMatch::Itype(parse_cmp(value()?, "ICMP type").map_err(e)?)),
            "icode" => r.header.push(HeaderMatch::Icode(parse_cmp(value()?, "ICMP code").map_err(e)?)),
            "icmp_id" => r.header.push(HeaderMatch::IcmpId(num(value()?, "ICMP id").map_err(e)?)),
            "icmp_seq" => r.header.push(HeaderMatch::IcmpSeq(num(value()?, "ICMP sequence").map_err(e)?)),
            "ip_proto" => {
                let v = value()?;
                let (prefix, rest) = v.split_at(v.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0));
                let n = match rest.parse::<u8>() {
                    Ok(n) => n,
                    Err(_) => ip_proto_number(rest).ok_or_else(|| e(format!("`{rest}` is not a protocol number or name")))?,
                };
                let c = parse_cmp::<u8>(&format!("{prefix}{n}"), "protocol").map_err(e)?;
                r.header.push(HeaderMatch::IpProto(c));
            }
            "sameip" => {
                no_value()?;
                r.header.push(HeaderMatch::SameIp);
            }
            "ack" => r.header.push(HeaderMatch::Ack(num(value()?, "ack number").map_err(e)?)),
            "seq" => r.header.push(HeaderMatch::Seq(num(value()?, "sequence number").map_err(e)?)),
            "window" => {
                let v = value()?;
                let (negated, n) = match v.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, v),
                };
                r.header.push(HeaderMatch::Window { value: num(n, "window").map_err(e)?, negated });
            }
            "id" => r.header.push(HeaderMatch::IpId(num(value()?, "IP id").map_err(e)?)),
            "flags" => r.header.push(HeaderMatch::Flags(parse_flags(value()?).map_err(e)?)),
            "flow" => {
                if self.flow_seen {
                    return Err(e("flow given twice".into()));
                }
                self.flow_seen = true;
                r.flow = parse_flow(value()?).map_err(e)?;
            }
            "flowbits" => {
                let v = value()?;
                let (cmd, names) = match v.split_once(',') {
                    Some((c, n)) => (c.trim(), Some(n.trim())),
                    None => (v.trim(), None),
                };
                let cmd = match cmd {
                    "noalert" => {
                        if names.is_some() {
                            return Err(syntax(o.col, Some(name), "noalert takes no name"));
                        }
                        r.noalert = true;
                        return Ok(());
                    }
                    "set" => FlowbitCmd::Set,
                    "unset" => FlowbitCmd::Unset,
                    "toggle" => FlowbitCmd::Toggle,
                    "isset" => FlowbitCmd::IsSet,
                    "isnotset" => FlowbitCmd::IsNotSet,
                    c => return Err(syntax(o.col, Some(name), format!("unknown flowbits command `{c}`"))),
                };
                let names = names.filter(|n| !n.is_empty()).ok_or_else(|| syntax(o.col, Some(name), "needs a flowbit name"))?;
                let list: Vec<String> = names.split('|').map(|n| n.trim().to_string()).collect();
                if list.iter().any(|n| n.is_empty() || n.contains(char::is_whitespace)) {
                    return Err(syntax(o.col, Some(name), format!("`{names}` is not a flowbit name")));
                }
                // `&` has no meaning in Suricata 7: it is part of the name. `|` joins names for
                // isset/isnotset only; Suricata 7 accepts it on set/unset/toggle but then
                // changes no named bit, which is not worth copying.
                if list.len() > 1 && !matches!(cmd, FlowbitCmd::IsSet | FlowbitCmd::IsNotSet) {
                    return Err(e("several names joined with | are only meaningful for isset and isnotset".into()));
                }
                r.flowbits.push(Flowbit { cmd, names: list });
            }
            "threshold" => {
                if r.threshold.is_some() {
                    return Err(e("threshold given twice".into()));
                }
                r.threshold = Some(parse_threshold(value()?, true).map_err(e)?);
            }
            "detection_filter" => {
                if r.detection_filter.is_some() {
                    return Err(e("detection_filter given twice".into()));
                }
                r.detection_filter = Some(parse_threshold(value()?, false).map_err(e)?);
            }
            "noalert" => {
                no_value()?;
                r.noalert = true;
            }
            // `tag` is accepted and ignored (see the registry).
            "tag" => {}
            other => unreachable!("keyword {other} is marked Engine in the registry but has no parser"),
        }
        Ok(())
    }

    /// The app-layer keywords that are not buffers and that the engine evaluates; `None`
    /// for the others (skipped as app-layer).
    fn app_keyword(&self, o: &Opt<'_>) -> Result<Option<AppMatch>, RuleError> {
        let name = o.name;
        let e = |m: String| invalid(o.col, name, m);
        let value = || o.value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| syntax(o.col, Some(name), "needs a value"));
        Ok(Some(match name {
            "urilen" => {
                let v = value()?;
                let (cmp, raw) = match v.split_once(',') {
                    Some((c, "raw")) => (c.trim(), true),
                    Some((c, "norm")) => (c.trim(), false),
                    Some((_, m)) => return Err(e(format!("`{m}` is not norm or raw"))),
                    None => (v, false),
                };
                AppMatch::UriLen { cmp: parse_cmp(cmp, "urilen").map_err(e)?, raw }
            }
            "app-layer-protocol" => {
                let v = value()?;
                let (negated, p) = match v.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, v),
                };
                // `app-layer-protocol:http,final` and friends name when to check; the flow's
                // protocol is known once, so the mode changes nothing here.
                let p = p.split(',').next().unwrap_or(p).trim().to_ascii_lowercase();
                AppMatch::Protocol { name: p, negated }
            }
            "tls.version" => AppMatch::TlsVersion(tls_version(value()?).ok_or_else(|| e(format!("`{}` is not a TLS version", value().unwrap_or_default())))?),
            "ssl_version" => {
                let mut list = Vec::new();
                for item in value()?.split(',') {
                    let item = item.trim();
                    let (neg, n) = match item.strip_prefix('!') {
                        Some(n) => (true, n.trim()),
                        None => (false, item),
                    };
                    let v = match n.to_ascii_lowercase().as_str() {
                        "sslv2" => 0x0002,
                        "sslv3" => 0x0300,
                        "tls1.0" => 0x0301,
                        "tls1.1" => 0x0302,
                        "tls1.2" => 0x0303,
                        "tls1.3" => 0x0304,
                        other => return Err(e(format!("`{other}` is not an SSL/TLS version name"))),
                    };
                    list.push((v, neg));
                }
                AppMatch::SslVersion(list)
            }
            "dns.opcode" => {
                let v = value()?;
                let (negated, n) = match v.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, v),
                };
                let opcode: u8 = num(n.trim(), "opcode").map_err(e)?;
                if opcode > 15 {
                    return Err(e(format!("opcode {opcode} is not 0-15")));
                }
                AppMatch::DnsOpcode { opcode, negated }
            }
            _ => return Ok(None),
        }))
    }

    fn modifier(&mut self, o: &Opt<'_>, canonical: &str) -> Result<(), RuleError> {
        if o.name == "uricontent" {
            // `uricontent:"x"` is `content:"x"; http_uri;` in one keyword.
            let c = self.parse_content(o)?;
            self.rule.payload.push(PayloadMatch { buffer: Buffer::Sticky { name: canonical.to_string(), transforms: Vec::new() }, kind: PayloadKind::Content(c) });
            self.last_content = Some(self.rule.payload.len() - 1);
            return Ok(());
        }
        if o.value.is_some() {
            return Err(syntax(o.col, Some(o.name), "a content modifier takes no value"));
        }
        let idx = self.last_content.ok_or_else(|| invalid(o.col, o.name, "needs a preceding content"))?;
        self.rule.payload[idx].buffer = Buffer::Sticky { name: canonical.to_string(), transforms: Vec::new() };
        Ok(())
    }

    fn parse_content(&self, o: &Opt<'_>) -> Result<Content, RuleError> {
        let v = o.value.filter(|v| !v.is_empty()).ok_or_else(|| syntax(o.col, Some(o.name), "needs a value"))?;
        let (negated, rest) = match v.strip_prefix('!') {
            Some(r) => (true, r.trim_start()),
            None => (false, v),
        };
        let pattern = content_bytes(rest).map_err(|m| syntax(o.col, Some(o.name), m))?;
        Ok(Content {
            pattern,
            negated,
            nocase: false,
            offset: None,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            fast_pattern: None,
        })
    }

    fn push_content(&mut self, c: Content) {
        self.push(PayloadKind::Content(c));
        self.last_content = Some(self.rule.payload.len() - 1);
    }

    fn push(&mut self, kind: PayloadKind) {
        self.rule.payload.push(PayloadMatch { buffer: self.buffer.clone(), kind });
    }

    fn content_mut(&mut self, o: &Opt<'_>) -> Result<&mut Content, RuleError> {
        let idx = self.last_content.ok_or_else(|| invalid(o.col, o.name, "needs a preceding content"))?;
        match &mut self.rule.payload[idx].kind {
            PayloadKind::Content(c) => Ok(c),
            _ => unreachable!("last_content points at a content"),
        }
    }

    /// Whether a content or pcre already inspects `buffer` (the payload and `pkt_data` are one
    /// buffer).
    fn has_match_in(&self, buffer: &Buffer) -> bool {
        let same = |b: &Buffer| match (b, buffer) {
            (Buffer::Sticky { name: a, .. }, Buffer::Sticky { name: b, .. }) => a == b,
            (Buffer::Sticky { .. }, _) | (_, Buffer::Sticky { .. }) => false,
            _ => true,
        };
        self.rule.payload.iter().any(|m| same(&m.buffer) && matches!(m.kind, PayloadKind::Content(_) | PayloadKind::Pcre(_)))
    }

    fn var_index(&self, s: &str) -> Option<u8> {
        self.rule.vars.iter().position(|v| v == s).map(|i| i as u8)
    }

    fn value_u32(&self, s: &str, o: &Opt<'_>) -> Result<Value<u32>, RuleError> {
        let s = s.trim();
        if let Ok(n) = s.parse() {
            return Ok(Value::Lit(n));
        }
        self.var_index(s).map(Value::Var).ok_or_else(|| invalid(o.col, o.name, format!("`{s}` is neither a number nor a byte_extract variable")))
    }

    fn value_i32(&self, s: &str, o: &Opt<'_>) -> Result<Value<i32>, RuleError> {
        let s = s.trim();
        if let Ok(n) = s.parse() {
            return Ok(Value::Lit(n));
        }
        self.var_index(s).map(Value::Var).ok_or_else(|| invalid(o.col, o.name, format!("`{s}` is neither a number nor a byte_extract variable")))
    }

    fn parse_byte_test(&self, o: &Opt<'_>) -> Result<ByteTest, RuleError> {
        let v = o.value.ok_or_else(|| syntax(o.col, Some(o.name), "needs a value"))?;
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        if parts.len() < 4 {
            return Err(syntax(o.col, Some(o.name), "expected bytes,operator,value,offset[,options]"));
        }
        let e = |m: String| invalid(o.col, o.name, m);
        let nbytes: u8 = num(parts[0], "byte count").map_err(e)?;
        let (negated, op) = match parts[1].strip_prefix('!') {
            Some(r) => (true, if r.is_empty() { "=" } else { r }),
            None => (false, parts[1]),
        };
        let op = match op {
            "<" => ByteOp::Lt,
            ">" => ByteOp::Gt,
            "<=" => ByteOp::Le,
            ">=" => ByteOp::Ge,
            "=" => ByteOp::Eq,
            "&" => ByteOp::And,
            "^" => ByteOp::Or,
            other => return Err(syntax(o.col, Some(o.name), format!("unknown operator `{other}`"))),
        };
        let value = match int_u64(parts[2]) {
            Ok(n) => Value::Lit(n),
            Err(_) => Value::Var(self.var_index(parts[2]).ok_or_else(|| e(format!("`{}` is neither a number nor a byte_extract variable", parts[2])))?),
        };
        let offset = self.value_i32(parts[3], o)?;
        let mut t = ByteTest { nbytes, op, negated, value, offset, relative: false, endian: Endian::Big, format: NumFormat::Binary, bitmask: None };
        let mut string = false;
        let mut base = 10u8;
        for p in &parts[4..] {
            match *p {
                "relative" => t.relative = true,
                "big" => t.endian = Endian::Big,
                "little" => t.endian = Endian::Little,
                "string" => string = true,
                "hex" => base = 16,
                "dec" => base = 10,
                "oct" => base = 8,
                "dce" => return Err(RuleError { column: o.col, keyword: Some("byte_test dce".into()), sid: None, kind: RuleErrorKind::Unsupported { app_layer: true } }),
                p if p.starts_with("bitmask") => t.bitmask = Some(bitmask(p).map_err(e)?),
                other => return Err(syntax(o.col, Some(o.name), format!("unknown option `{other}`"))),
            }
        }
        if string {
            t.format = NumFormat::String(base);
        }
        check_nbytes(nbytes, string).map_err(e)?;
        Ok(t)
    }

    fn parse_byte_jump(&self, o: &Opt<'_>) -> Result<ByteJump, RuleError> {
        let v = o.value.ok_or_else(|| syntax(o.col, Some(o.name), "needs a value"))?;
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        if parts.len() < 2 {
            return Err(syntax(o.col, Some(o.name), "expected bytes,offset[,options]"));
        }
        let e = |m: String| invalid(o.col, o.name, m);
        let nbytes: u8 = num(parts[0], "byte count").map_err(e)?;
        let offset = self.value_i32(parts[1], o)?;
        let mut j = ByteJump {
            nbytes,
            offset,
            relative: false,
            multiplier: 1,
            endian: Endian::Big,
            format: NumFormat::Binary,
            align: false,
            from_beginning: false,
            from_end: false,
            post_offset: 0,
            bitmask: None,
        };
        let mut string = false;
        let mut base = 10u8;
        for p in &parts[2..] {
            let (k, arg) = p.split_once(char::is_whitespace).map_or((*p, ""), |(k, a)| (k, a.trim()));
            match k {
                "relative" => j.relative = true,
                "multiplier" => j.multiplier = num(arg, "multiplier").map_err(e)?,
                "big" => j.endian = Endian::Big,
                "little" => j.endian = Endian::Little,
                "string" => string = true,
                "hex" => base = 16,
                "dec" => base = 10,
                "oct" => base = 8,
                "align" => j.align = true,
                "from_beginning" => j.from_beginning = true,
                "from_end" => j.from_end = true,
                "post_offset" => j.post_offset = num(arg, "post_offset").map_err(e)?,
                "dce" => return Err(RuleError { column: o.col, keyword: Some("byte_jump dce".into()), sid: None, kind: RuleErrorKind::Unsupported { app_layer: true } }),
                "bitmask" => j.bitmask = Some(bitmask(p).map_err(e)?),
                other => return Err(syntax(o.col, Some(o.name), format!("unknown option `{other}`"))),
            }
        }
        if j.from_beginning && j.from_end {
            return Err(e("from_beginning and from_end exclude each other".into()));
        }
        if string {
            j.format = NumFormat::String(base);
        }
        check_nbytes(nbytes, string).map_err(e)?;
        Ok(j)
    }

    fn parse_byte_extract(&mut self, o: &Opt<'_>) -> Result<ByteExtract, RuleError> {
        let v = o.value.ok_or_else(|| syntax(o.col, Some(o.name), "needs a value"))?;
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        if parts.len() < 3 {
            return Err(syntax(o.col, Some(o.name), "expected bytes,offset,name[,options]"));
        }
        let e = |m: String| invalid(o.col, o.name, m);
        let nbytes: u8 = num(parts[0], "byte count").map_err(e)?;
        let offset: i32 = num(parts[1], "offset").map_err(e)?;
        let name = parts[2];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(e(format!("`{name}` is not a variable name")));
        }
        if self.var_index(name).is_some() {
            return Err(e(format!("variable `{name}` is extracted twice")));
        }
        if self.rule.vars.len() >= u8::MAX as usize {
            return Err(e("too many byte_extract variables".into()));
        }
        let mut x = ByteExtract {
            nbytes,
            offset,
            var: self.rule.vars.len() as u8,
            relative: false,
            multiplier: 1,
            endian: Endian::Big,
            format: NumFormat::Binary,
            align: 0,
            bitmask: None,
        };
        let mut string = false;
        let mut base = 10u8;
        for p in &parts[3..] {
            let (k, arg) = p.split_once(char::is_whitespace).map_or((*p, ""), |(k, a)| (k, a.trim()));
            match k {
                "relative" => x.relative = true,
                "multiplier" => x.multiplier = num(arg, "multiplier").map_err(e)?,
                "big" => x.endian = Endian::Big,
                "little" => x.endian = Endian::Little,
                "string" => string = true,
                "hex" => base = 16,
                "dec" => base = 10,
                "oct" => base = 8,
                "align" => {
                    x.align = num(arg, "alignment").map_err(e)?;
                    if !matches!(x.align, 2 | 4) {
                        return Err(e("align must be 2 or 4".into()));
                    }
                }
                "dce" => return Err(RuleError { column: o.col, keyword: Some("byte_extract dce".into()), sid: None, kind: RuleErrorKind::Unsupported { app_layer: true } }),
                "bitmask" => x.bitmask = Some(bitmask(p).map_err(e)?),
                other => return Err(syntax(o.col, Some(o.name), format!("unknown option `{other}`"))),
            }
        }
        if string {
            x.format = NumFormat::String(base);
        }
        check_nbytes(nbytes, string).map_err(e)?;
        self.rule.vars.push(name.to_string());
        Ok(x)
    }
}

/// `tls.version`'s value: `1.0`-`1.3`, `sslv3`, or a number (`0x0303`).
fn tls_version(v: &str) -> Option<u16> {
    Some(match v.to_ascii_lowercase().as_str() {
        "1.0" => 0x0301,
        "1.1" => 0x0302,
        "1.2" => 0x0303,
        "1.3" => 0x0304,
        "sslv3" | "3.0" => 0x0300,
        n => match n.strip_prefix("0x") {
            Some(h) => u16::from_str_radix(h, 16).ok()?,
            None => n.parse().ok()?,
        },
    })
}

fn check_nbytes(n: u8, string: bool) -> Result<(), String> {
    // Suricata accepts 0 bytes with `string` (ET Open has `byte_test:0,=,0,0,string,dec`).
    let (min, max) = if string { (0, 23) } else { (1, 8) };
    if n < min || n > max {
        return Err(format!("byte count {n} is outside {min}-{max}"));
    }
    Ok(())
}

fn bitmask(p: &str) -> Result<u32, String> {
    let arg = p.strip_prefix("bitmask").unwrap_or(p).trim();
    let v = int_u64(arg)?;
    u32::try_from(v).map_err(|_| format!("bitmask `{arg}` is wider than 32 bits"))
}

fn ip_proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "hopopt" => 0,
        "icmp" => 1,
        "igmp" => 2,
        "ipip" | "ipv4" => 4,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "ipv6-route" => 43,
        "ipv6-frag" => 44,
        "rsvp" => 46,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" | "icmpv6" => 58,
        "ipv6-nonxt" => 59,
        "ipv6-opts" => 60,
        "eigrp" => 88,
        "ospf" | "ospfigp" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "l2tp" => 115,
        "sctp" => 132,
        _ => return None,
    })
}

fn parse_flags(v: &str) -> Result<TcpFlagsMatch, String> {
    let (main, ignore) = match v.split_once(',') {
        Some((m, i)) => (m.trim(), Some(i.trim())),
        None => (v.trim(), None),
    };
    let bits = |s: &str| -> Result<u8, String> {
        let mut f = 0u8;
        for c in s.chars() {
            f |= match c.to_ascii_uppercase() {
                'F' => 0x01,
                'S' => 0x02,
                'R' => 0x04,
                'P' => 0x08,
                'A' => 0x10,
                'U' => 0x20,
                'E' | '2' => 0x40,
                'C' | '1' => 0x80,
                c => return Err(format!("`{c}` is not a TCP flag (FSRPAUCE12)")),
            };
        }
        Ok(f)
    };
    let mut s = main;
    let mut modifier = FlagsModifier::Exact;
    // The modifier may be written before the flags (Suricata) or after (old Snort).
    for (ch, m) in [('+', FlagsModifier::All), ('*', FlagsModifier::Any), ('!', FlagsModifier::Not)] {
        if let Some(r) = s.strip_prefix(ch).or_else(|| s.strip_suffix(ch)) {
            s = r;
            modifier = m;
            break;
        }
    }
    let flags = if s == "0" {
        0
    } else if s.is_empty() {
        return Err("no flags given".into());
    } else {
        bits(s)?
    };
    let ignore = match ignore {
        Some(i) => bits(i)?,
        None => 0,
    };
    Ok(TcpFlagsMatch { flags, ignore, modifier })
}

fn parse_flow(v: &str) -> Result<FlowOpts, String> {
    let mut f = FlowOpts::default();
    for p in v.split(',').map(str::trim) {
        match p {
            "established" => f.established = true,
            "not_established" => f.not_established = true,
            "stateless" => f.stateless = true,
            "to_server" | "from_client" => f.to_server = true,
            "to_client" | "from_server" => f.to_client = true,
            "only_stream" => f.only_stream = true,
            "no_stream" => f.no_stream = true,
            "only_frag" => f.only_frag = true,
            "no_frag" => f.no_frag = true,
            other => return Err(format!("unknown flow option `{other}`")),
        }
    }
    if f.to_server && f.to_client {
        return Err("to_server and to_client exclude each other".into());
    }
    if f.established && f.not_established {
        return Err("established and not_established exclude each other".into());
    }
    if f.only_stream && f.no_stream {
        return Err("only_stream and no_stream exclude each other".into());
    }
    Ok(f)
}

fn parse_threshold(v: &str, typed: bool) -> Result<Threshold, String> {
    let mut kind = if typed { None } else { Some(ThresholdKind::Threshold) };
    let (mut track, mut count, mut seconds) = (None, None, None);
    for p in v.split(',').map(str::trim) {
        let (k, a) = p.split_once(char::is_whitespace).map(|(k, a)| (k, a.trim())).ok_or_else(|| format!("`{p}` is not `key value`"))?;
        match k {
            "type" if typed => {
                kind = Some(match a {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    t => return Err(format!("unknown type `{t}`")),
                })
            }
            "track" => {
                track = Some(match a {
                    "by_src" => TrackBy::Src,
                    "by_dst" => TrackBy::Dst,
                    "by_rule" => TrackBy::Rule,
                    "by_flow" => TrackBy::Flow,
                    "by_both" => TrackBy::Both,
                    t => return Err(format!("unknown track `{t}`")),
                })
            }
            "count" => count = Some(num::<u32>(a, "count")?),
            "seconds" => seconds = Some(num::<u32>(a, "seconds")?),
            k => return Err(format!("unknown setting `{k}`")),
        }
    }
    match (kind, track, count, seconds) {
        (Some(kind), Some(track), Some(count), Some(seconds)) => Ok(Threshold { kind, track, count, seconds }),
        _ => Err(if typed { "needs type, track, count and seconds".into() } else { "needs track, count and seconds".into() }),
    }
}

/// `"/re/flags"` → the expression and, if a flag names one, the sticky buffer.
fn parse_pcre(v: &str) -> Result<(Pcre, Option<&'static str>), String> {
    let (negated, rest) = match v.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, v),
    };
    // The expression is everything between the first and the last quote: Suricata does not
    // require a `"` inside it to be escaped.
    let inner = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')).ok_or("pcre must be quoted")?;
    // Only `\;` and `\"` are Suricata's escapes here: every other backslash belongs to the
    // regular expression.
    let mut s = String::with_capacity(inner.len());
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.peek() {
                Some(&e @ (';' | '"')) => {
                    s.push(e);
                    it.next();
                }
                Some(&e) => {
                    s.push('\\');
                    s.push(e);
                    it.next();
                }
                None => s.push('\\'),
            }
        } else {
            s.push(c);
        }
    }
    let body = s.strip_prefix('/').ok_or("pcre must be written /expression/flags")?;
    let end = body.rfind('/').ok_or("pcre has no closing /")?;
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    let mut p = Pcre {
        pattern: pattern.to_string(),
        negated,
        caseless: false,
        dotall: false,
        multiline: false,
        extended: false,
        anchored: false,
        dollar_endonly: false,
        ungreedy: false,
        relative: false,
        raw_flags: flags.to_string(),
    };
    let mut buffer: Option<&'static str> = None;
    for f in flags.chars() {
        let b = match f {
            'i' => {
                p.caseless = true;
                None
            }
            's' => {
                p.dotall = true;
                None
            }
            'm' => {
                p.multiline = true;
                None
            }
            'x' => {
                p.extended = true;
                None
            }
            'A' => {
                p.anchored = true;
                None
            }
            'E' => {
                p.dollar_endonly = true;
                None
            }
            'G' => {
                p.ungreedy = true;
                None
            }
            'R' => {
                p.relative = true;
                None
            }
            // Match-limit override and rawbytes change nothing here.
            'O' | 'B' => None,
            'U' => Some("http.uri"),
            'I' => Some("http.uri.raw"),
            'P' => Some("http.request_body"),
            'Q' => Some("file.data"),
            'H' => Some("http.header"),
            'D' => Some("http.header.raw"),
            'M' => Some("http.method"),
            'C' => Some("http.cookie"),
            'S' => Some("http.stat_code"),
            'Y' => Some("http.stat_msg"),
            'V' => Some("http.user_agent"),
            'W' => Some("http.host"),
            'Z' => Some("http.host.raw"),
            c => return Err(format!("unknown pcre flag `{c}`")),
        };
        if let Some(b) = b {
            if buffer.is_some_and(|old| old != b) {
                return Err(format!("pcre flags name two buffers ({} and {b})", buffer.unwrap_or("")));
            }
            buffer = Some(b);
        }
    }
    Ok((p, buffer))
}
