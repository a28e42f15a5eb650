//! Address and port expressions (`[$HOME_NET,!10.0.0.0/8]`, `[80,8000:8100]`) and the
//! variables they refer to, resolved into [`IpSet`] and [`PortSet`].
//!
//! The semantics follow Suricata: inside a group, the non-negated elements are united (all
//! addresses when there are none) and the negated ones are then taken away; a `!` in front
//! of a whole expression takes it away from `any`. A result that is empty is an error, as
//! in Suricata ("the complete address space is negated").

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ast::{IpSet, PortSet};

/// The `vars` section of the configuration: `address-groups` and `port-groups`, names
/// without the `$`, values in rule syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vars {
    pub address_groups: BTreeMap<String, String>,
    pub port_groups: BTreeMap<String, String>,
}

/// Suricata 7.0's `suricata.yaml` address groups, in its order.
pub const SURICATA_ADDRESS_GROUPS: &[(&str, &str)] = &[
    ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
    ("EXTERNAL_NET", "!$HOME_NET"),
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
];

/// Suricata 7.0's `suricata.yaml` port groups, in its order.
pub const SURICATA_PORT_GROUPS: &[(&str, &str)] = &[
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
];

impl Default for Vars {
    /// Suricata's defaults, so that ET Open loads without a configuration file.
    fn default() -> Self {
        let m = |t: &[(&str, &str)]| t.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars { address_groups: m(SURICATA_ADDRESS_GROUPS), port_groups: m(SURICATA_PORT_GROUPS) }
    }
}

impl Vars {
    /// No variables at all.
    pub fn empty() -> Self {
        Vars { address_groups: BTreeMap::new(), port_groups: BTreeMap::new() }
    }
}

/// Variables with every definition resolved once, so that 30,000 rules referring to
/// `$HOME_NET` do not parse it 30,000 times. A definition that does not resolve is kept as
/// its error and reported by the rules that use it.
#[derive(Clone, Debug, Default)]
pub struct ResolvedVars {
    addr: HashMap<String, Result<IpSet, String>>,
    port: HashMap<String, Result<PortSet, String>>,
}

/// Variables may refer to variables; this bounds the chain (and catches cycles).
const MAX_DEPTH: u32 = 16;

impl ResolvedVars {
    pub fn new(vars: &Vars) -> Self {
        let mut r = ResolvedVars::default();
        for name in vars.address_groups.keys() {
            let v = resolve_addr_var(vars, name, 0);
            r.addr.insert(name.clone(), v);
        }
        for name in vars.port_groups.keys() {
            let v = resolve_port_var(vars, name, 0);
            r.port.insert(name.clone(), v);
        }
        r
    }

    /// Names of variables whose definition does not resolve, with the reason.
    pub fn errors(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .addr
            .iter()
            .filter_map(|(k, v)| v.as_ref().err().map(|e| format!("address-groups.{k}: {e}")))
            .chain(self.port.iter().filter_map(|(k, v)| v.as_ref().err().map(|e| format!("port-groups.{k}: {e}"))))
            .collect();
        out.sort();
        out
    }

    pub fn address(&self, text: &str) -> Result<IpSet, String> {
        parse_addr(text, &mut |name| match self.addr.get(name) {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(e)) => Err(format!("variable ${name} is invalid: {e}")),
            None => Err(format!("undefined address variable ${name}")),
        })
    }

    pub fn ports(&self, text: &str) -> Result<PortSet, String> {
        parse_ports(text, &mut |name| match self.port.get(name) {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(e)) => Err(format!("variable ${name} is invalid: {e}")),
            None => Err(format!("undefined port variable ${name}")),
        })
    }
}

fn resolve_addr_var(vars: &Vars, name: &str, depth: u32) -> Result<IpSet, String> {
    if depth > MAX_DEPTH {
        return Err(format!("variables nest deeper than {MAX_DEPTH} (a cycle through ${name}?)"));
    }
    let Some(def) = vars.address_groups.get(name) else { return Err(format!("undefined address variable ${name}")) };
    parse_addr(def, &mut |n| resolve_addr_var(vars, n, depth + 1))
}

fn resolve_port_var(vars: &Vars, name: &str, depth: u32) -> Result<PortSet, String> {
    if depth > MAX_DEPTH {
        return Err(format!("variables nest deeper than {MAX_DEPTH} (a cycle through ${name}?)"));
    }
    let Some(def) = vars.port_groups.get(name) else { return Err(format!("undefined port variable ${name}")) };
    parse_ports(def, &mut |n| resolve_port_var(vars, n, depth + 1))
}

/// Interval arithmetic on sorted, disjoint, inclusive ranges.
pub(crate) trait Bound: Copy + Ord {
    const MAX: Self;
    fn succ(self) -> Self;
    fn pred(self) -> Self;
}

macro_rules! bound {
    ($($t:ty),*) => {$(
        impl Bound for $t {
            const MAX: Self = <$t>::MAX;
            fn succ(self) -> Self { self + 1 }
            fn pred(self) -> Self { self - 1 }
        }
    )*};
}
bound!(u16, u32, u128);

/// Sorts and merges touching or overlapping ranges.
pub(crate) fn normalize<T: Bound>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if last.1 == T::MAX || a <= last.1.succ() => {
                if b > last.1 {
                    last.1 = b;
                }
            }
            _ => out.push((a, b)),
        }
    }
    out
}

/// `a` minus `b`, both normalized.
pub(crate) fn subtract<T: Bound>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in a {
        let mut alive = true;
        for &(blo, bhi) in b {
            if bhi < lo || blo > hi {
                continue;
            }
            if blo > lo {
                out.push((lo, blo.pred()));
            }
            if bhi >= hi {
                alive = false;
                break;
            }
            lo = bhi.succ();
        }
        if alive {
            out.push((lo, hi));
        }
    }
    out
}

/// One element of a group after parsing: a set and whether it was negated.
struct Elem<S> {
    set: S,
    negated: bool,
}

/// The part shared by addresses and ports: brackets, commas, `!`, `$VAR`, `any`.
trait SetKind: Sized + Clone {
    fn any() -> Self;
    fn union(items: Vec<Self>) -> Self;
    fn minus(&self, other: &Self) -> Self;
    fn is_empty(&self) -> bool;
    fn atom(text: &str) -> Result<Self, String>;
}

impl SetKind for IpSet {
    fn any() -> Self {
        IpSet::any()
    }
    fn union(items: Vec<Self>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for s in items {
            v4.extend(s.v4);
            v6.extend(s.v6);
        }
        IpSet { v4: normalize(v4), v6: normalize(v6) }
    }
    fn minus(&self, o: &Self) -> Self {
        IpSet { v4: subtract(&self.v4, &o.v4), v6: subtract(&self.v6, &o.v6) }
    }
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
    fn atom(t: &str) -> Result<Self, String> {
        parse_ip_atom(t)
    }
}

impl SetKind for PortSet {
    fn any() -> Self {
        PortSet::any()
    }
    fn union(items: Vec<Self>) -> Self {
        PortSet(normalize(items.into_iter().flat_map(|s| s.0).collect()))
    }
    fn minus(&self, o: &Self) -> Self {
        PortSet(subtract(&self.0, &o.0))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn atom(t: &str) -> Result<Self, String> {
        parse_port_atom(t)
    }
}

pub(crate) fn parse_addr(text: &str, var: &mut dyn FnMut(&str) -> Result<IpSet, String>) -> Result<IpSet, String> {
    parse_set(text, var, "address")
}

pub(crate) fn parse_ports(text: &str, var: &mut dyn FnMut(&str) -> Result<PortSet, String>) -> Result<PortSet, String> {
    parse_set(text, var, "port")
}

fn parse_set<S: SetKind>(text: &str, var: &mut dyn FnMut(&str) -> Result<S, String>, what: &str) -> Result<S, String> {
    let mut p = SetParser { s: text.as_bytes(), text, i: 0, var, depth: 0 };
    let e = p.expr()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected `{}` in {what} `{text}`", &text[p.i..]));
    }
    let set = if e.negated { S::any().minus(&e.set) } else { e.set };
    if set.is_empty() {
        return Err(format!("{what} `{text}` matches nothing (everything is negated)"));
    }
    Ok(set)
}

struct SetParser<'a, 'v, S> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    var: &'v mut dyn FnMut(&str) -> Result<S, String>,
    depth: u32,
}

impl<S: SetKind> SetParser<'_, '_, S> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn expr(&mut self) -> Result<Elem<S>, String> {
        self.skip_ws();
        let mut negated = false;
        while self.s.get(self.i) == Some(&b'!') {
            negated = !negated;
            self.i += 1;
            self.skip_ws();
        }
        let set = match self.s.get(self.i) {
            Some(b'[') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("groups nest deeper than {MAX_DEPTH}"));
                }
                self.i += 1;
                let mut pos = Vec::new();
                let mut neg = Vec::new();
                loop {
                    let e = self.expr()?;
                    if e.negated { neg.push(e.set) } else { pos.push(e.set) }
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(format!("unterminated group in `{}`", self.text)),
                    }
                }
                self.depth -= 1;
                let base = if pos.is_empty() { S::any() } else { S::union(pos) };
                if neg.is_empty() { base } else { base.minus(&S::union(neg)) }
            }
            Some(b'$') => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(format!("`$` without a variable name in `{}`", self.text));
                }
                (self.var)(&self.text[start..self.i])?
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b']' | b'[' | b'!') && !self.s[self.i].is_ascii_whitespace() {
                    self.i += 1;
                }
                let atom = &self.text[start..self.i];
                if atom.is_empty() {
                    return Err(format!("empty element in `{}`", self.text));
                }
                if atom.eq_ignore_ascii_case("any") {
                    S::any()
                } else {
                    S::atom(atom)?
                }
            }
            None => return Err(format!("empty element in `{}`", self.text)),
        };
        Ok(Elem { set, negated })
    }
}

fn parse_ip_atom(t: &str) -> Result<IpSet, String> {
    let bad = || format!("`{t}` is not an address, CIDR block or range");
    let mut set = IpSet::default();
    if let Some((a, b)) = t.split_once('-') {
        // A range `a-b` of one family.
        if let (Ok(a), Ok(b)) = (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) {
            let (a, b) = (u32::from(a), u32::from(b));
            if a > b {
                return Err(format!("range `{t}` ends before it starts"));
            }
            set.v4.push((a, b));
        } else if let (Ok(a), Ok(b)) = (a.parse::<Ipv6Addr>(), b.parse::<Ipv6Addr>()) {
            let (a, b) = (u128::from(a), u128::from(b));
            if a > b {
                return Err(format!("range `{t}` ends before it starts"));
            }
            set.v6.push((a, b));
        } else {
            return Err(bad());
        }
        return Ok(set);
    }
    let (addr, mask) = match t.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (t, None),
    };
    if let Ok(a) = addr.parse::<Ipv4Addr>() {
        let bits = match mask {
            None => 32,
            Some(m) => match m.parse::<u32>() {
                Ok(b) if b <= 32 => b,
                Ok(_) => return Err(bad()),
                // A dotted netmask, which must be contiguous ones.
                Err(_) => {
                    let m = u32::from(m.parse::<Ipv4Addr>().map_err(|_| bad())?);
                    if m.leading_ones() + m.trailing_zeros() != 32 {
                        return Err(format!("netmask in `{t}` is not contiguous"));
                    }
                    m.leading_ones()
                }
            },
        };
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        let lo = u32::from(a) & mask;
        set.v4.push((lo, lo | !mask));
        return Ok(set);
    }
    if let Ok(a) = addr.parse::<Ipv6Addr>() {
        let bits = match mask {
            None => 128,
            Some(m) => match m.parse::<u32>() {
                Ok(b) if b <= 128 => b,
                _ => return Err(bad()),
            },
        };
        let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
        let lo = u128::from(a) & mask;
        set.v6.push((lo, lo | !mask));
        return Ok(set);
    }
    Err(bad())
}

fn parse_port_atom(t: &str) -> Result<PortSet, String> {
    let num = |s: &str| s.trim().parse::<u16>().map_err(|_| format!("`{t}` is not a port or port range"));
    let (lo, hi) = match t.split_once(':') {
        Some(("", "")) => return Err(format!("`{t}` is not a port range")),
        Some((a, "")) => (num(a)?, u16::MAX),
        Some(("", b)) => (0, num(b)?),
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(t)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("port range `{t}` ends before it starts"));
    }
    Ok(PortSet(vec![(lo, hi)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn address_expressions() {
        let r = ResolvedVars::new(&Vars::default());
        let home = r.address("$HOME_NET").unwrap();
        assert_eq!(home.v4, vec![(v4("10.0.0.0"), v4("10.255.255.255")), (v4("172.16.0.0"), v4("172.31.255.255")), (v4("192.168.0.0"), v4("192.168.255.255"))]);
        assert!(home.v6.is_empty());
        let ext = r.address("$EXTERNAL_NET").unwrap();
        assert!(!ext.contains_v4(v4("10.1.2.3")) && ext.contains_v4(v4("8.8.8.8")) && ext.contains_v4(v4("11.0.0.0")));
        assert_eq!(ext.v6, vec![(0, u128::MAX)]);
        // Negation inside a group is subtracted from the group's positive part.
        let g = r.address("[10.0.0.0/8,!10.1.0.0/16]").unwrap();
        assert_eq!(g.v4, vec![(v4("10.0.0.0"), v4("10.0.255.255")), (v4("10.2.0.0"), v4("10.255.255.255"))]);
        // A group of negations only is taken from `any`.
        let g = r.address("[!1.2.3.4]").unwrap();
        assert_eq!(g.v4, vec![(0, v4("1.2.3.3")), (v4("1.2.3.5"), u32::MAX)]);
        // Nested groups and double negation.
        let g = r.address("![!1.2.3.4]").unwrap();
        assert_eq!(g.v4, vec![(v4("1.2.3.4"), v4("1.2.3.4"))]);
        assert!(g.v6.is_empty());
        // The inner group is 5.6.7.8 (its negation removes nothing from it); the outer `!`
        // takes that from everything.
        let g = r.address("![!1.2.3.4,[5.6.7.8]]").unwrap();
        assert_eq!(g.v4, vec![(0, v4("5.6.7.7")), (v4("5.6.7.9"), u32::MAX)]);
        assert_eq!(g.v6, vec![(0, u128::MAX)]);
        let g = r.address("[$EXTERNAL_NET,!255.255.255.255]").unwrap();
        assert!(!g.contains_v4(u32::MAX) && g.contains_v4(v4("1.1.1.1")));
        let g = r.address("1.2.3.4-1.2.3.9").unwrap();
        assert_eq!(g.v4, vec![(v4("1.2.3.4"), v4("1.2.3.9"))]);
        let g = r.address("192.168.1.7/255.255.255.0").unwrap();
        assert_eq!(g.v4, vec![(v4("192.168.1.0"), v4("192.168.1.255"))]);
        let g = r.address("[2001:db8::/32, fe80::1]").unwrap();
        assert_eq!(g.v6.len(), 2);
        assert!(g.contains_v6(u128::from("2001:db8::5".parse::<Ipv6Addr>().unwrap())));
        assert!(r.address("any").unwrap().is_any());
    }

    #[test]
    fn address_errors() {
        let r = ResolvedVars::new(&Vars::default());
        for (text, needle) in [
            ("!any", "matches nothing"),
            ("$NOPE", "undefined address variable $NOPE"),
            ("[1.2.3.4", "unterminated"),
            ("1.2.3.4/33", "not an address"),
            ("1.2.3.400", "not an address"),
            ("1.2.3.9-1.2.3.4", "ends before"),
            ("[1.2.3.4,]", "empty element"),
        ] {
            let e = r.address(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn port_expressions() {
        let r = ResolvedVars::new(&Vars::default());
        assert_eq!(r.ports("$HTTP_PORTS").unwrap().0, vec![(80, 80)]);
        assert_eq!(r.ports("$SHELLCODE_PORTS").unwrap().0, vec![(0, 79), (81, 65535)]);
        assert_eq!(r.ports("$FILE_DATA_PORTS").unwrap().0, vec![(80, 80), (110, 110), (143, 143)]);
        assert_eq!(r.ports("[1024:,!8080]").unwrap().0, vec![(1024, 8079), (8081, 65535)]);
        assert_eq!(r.ports(":1023").unwrap().0, vec![(0, 1023)]);
        assert_eq!(r.ports("[80,81,82,90:95,94]").unwrap().0, vec![(80, 82), (90, 95)]);
        assert!(r.ports("any").unwrap().is_any());
        for (text, needle) in [("!any", "matches nothing"), ("70000", "not a port"), ("90:80", "ends before"), ("$NOPE", "undefined port variable")] {
            let e = r.ports(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn variable_cycles_and_bad_definitions_are_reported() {
        let mut v = Vars::empty();
        v.address_groups.insert("A".into(), "$B".into());
        v.address_groups.insert("B".into(), "[$A]".into());
        v.address_groups.insert("C".into(), "300.0.0.1".into());
        v.port_groups.insert("P".into(), "[80".into());
        let r = ResolvedVars::new(&v);
        let e = r.errors();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("nest deeper"), "{e:?}");
        assert!(r.address("$C").unwrap_err().contains("variable $C is invalid"));
    }
}
