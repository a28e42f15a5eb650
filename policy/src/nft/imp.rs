//! The enforcer proper (with the `nftables` feature): batches built with `nftnl` (and
//! [`super::raw`] for what it lacks), sent on one netlink socket, every message acknowledged.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use nftnl::expr::{Cmp, CmpOp, Ipv4HeaderField, Ipv6HeaderField, Lookup, Meta, NetworkHeaderField, Payload, Verdict};
use nftnl::set::{Set, SetKey};
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table};

use super::plan::{allow_ranges, describe, interval_elems, key_bytes, timeout_ms, v4_bytes, v6_bytes};
use super::raw::{self, CounterObj, Dump, Dynset, ElemMsg, ElemOp, Limit, Msg, NlSocket, Objref};
use super::{
    ElementStatus, NftConfig, NftError, Op, RateUnit, SetKind, TableStatus, TimeoutRefresh, METER_SIZE, METER_TIMEOUT,
};

const TABLE_C: &CStr = c"portcullis";

/// How long a blocking read waits for the kernel. The kernel answers a batch or a dump while
/// handling the send (or the read), so this only bounds a read that would otherwise hang.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The set `install` uses to check how the kernel refreshes timeouts; no rule refers to it and
/// it is deleted right after.
const PROBE_SET: &CStr = c"refresh_probe";

/// Receive buffer: more than the biggest dump datagram (the kernel fills up to 32 KiB).
const RECV_BUF: usize = 64 << 10;

/// A refused transaction: the refused message's description and the error number.
struct Refused {
    what: String,
    errno: i32,
    others: usize,
}

impl Refused {
    fn into_error(self) -> NftError {
        let mut what = self.what;
        if self.errno == libc::EPERM {
            what.push_str(" (needs CAP_NET_ADMIN)");
        }
        if self.others > 0 {
            what.push_str(&format!(" (and {} more messages refused)", self.others));
        }
        NftError::Kernel { what, source: io::Error::from_raw_os_error(self.errno) }
    }
}

fn kernel_error(what: &str, errno: i32) -> NftError {
    Refused { what: what.to_string(), errno, others: 0 }.into_error()
}

fn cstring(s: &str) -> CString {
    // Names are built from validated profile names and fixed strings: no NUL inside.
    CString::new(s).expect("nftables names have no NUL byte")
}

pub(crate) struct Enforcer {
    sock: NlSocket,
    cfg: Option<NftConfig>,
    /// Found by the first install's check (or set by `set_timeout_refresh`).
    refresh: Option<TimeoutRefresh>,
    buf: Vec<u8>,
    /// Sequence numbers of dump requests (batches number their own messages from 1).
    seq: u32,
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("sock", &self.sock)
            .field("cfg", &self.cfg)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

/// What differs between the ip and ip6 halves of the ruleset.
struct Family {
    /// `meta nfproto` value.
    nfproto: u8,
    /// `ip` or `ip6`.
    name: &'static str,
    /// Set name suffix.
    n: char,
    saddr: Payload,
    daddr: Payload,
}

const IP: Family = Family {
    nfproto: libc::NFPROTO_IPV4 as u8,
    name: "ip",
    n: '4',
    saddr: Payload::Network(NetworkHeaderField::Ipv4(Ipv4HeaderField::Saddr)),
    daddr: Payload::Network(NetworkHeaderField::Ipv4(Ipv4HeaderField::Daddr)),
};

const IP6: Family = Family {
    nfproto: libc::NFPROTO_IPV6 as u8,
    name: "ip6",
    n: '6',
    saddr: Payload::Network(NetworkHeaderField::Ipv6(Ipv6HeaderField::Saddr)),
    daddr: Payload::Network(NetworkHeaderField::Ipv6(Ipv6HeaderField::Daddr)),
};

/// One family's sets of the table, created in the install batch.
struct Sets<'t, K> {
    allow: Set<'t, K>,
    block: Set<'t, K>,
    quarantine: Set<'t, K>,
    /// Per profile: (who is limited, the meter).
    rl: Vec<(Set<'t, K>, Set<'t, K>)>,
}

/// A step of a rule, for building it and naming it in errors.
enum Step<'a, K> {
    Saddr,
    Daddr,
    In(&'a Set<'a, K>),
    Update { meter: &'a Set<'a, K>, limit: Limit },
    Count(&'a CStr),
    Accept,
    Drop,
}

/// A batch and the description of each of its messages, in order.
struct Tx {
    batch: Batch,
    what: Vec<String>,
}

impl Tx {
    fn new() -> Tx {
        Tx { batch: Batch::new(), what: Vec::new() }
    }

    fn add<T: nftnl::NlMsg>(&mut self, msg: &T, t: MsgType, what: impl Into<String>) {
        self.batch.add(msg, t);
        self.what.push(what.into());
    }

    /// One element message per `ElemMsg::MAX` elements of `elems` (key, interval end, timeout).
    fn elems(&mut self, set: &str, elems: impl IntoIterator<Item = (Vec<u8>, bool, Option<u64>)>) {
        let c = cstring(set);
        let mut msg = ElemMsg::new(TABLE_C, &c, ElemOp::Add);
        for (key, end, timeout) in elems {
            if msg.len() == ElemMsg::MAX {
                self.elem_msg(set, &msg);
                msg = ElemMsg::new(TABLE_C, &c, ElemOp::Add);
            }
            msg.push(&key, end, timeout);
        }
        if msg.len() > 0 {
            self.elem_msg(set, &msg);
        }
    }

    fn elem_msg(&mut self, set: &str, msg: &ElemMsg) {
        self.add(msg, MsgType::Add, format!("adding {} elements to set {set}", msg.len()));
    }
}

impl Enforcer {
    pub(crate) fn open() -> Result<Enforcer, NftError> {
        Ok(Enforcer {
            sock: NlSocket::open(READ_TIMEOUT)?,
            cfg: None,
            refresh: None,
            buf: vec![0; RECV_BUF + 8],
            seq: 1 << 30,
        })
    }

    pub(crate) fn config(&self) -> Option<&NftConfig> {
        self.cfg.as_ref()
    }

    pub(crate) fn timeout_refresh(&self) -> Option<TimeoutRefresh> {
        self.refresh
    }

    pub(crate) fn set_timeout_refresh(&mut self, refresh: TimeoutRefresh) {
        self.refresh = Some(refresh);
    }

    pub(crate) fn install(
        &mut self,
        cfg: &NftConfig,
        allow: &[super::Net],
        elements: &[(SetKind, IpAddr, Duration)],
    ) -> Result<(), NftError> {
        cfg.validate()?;
        let (allow4, allow6) = allow_ranges(allow)?;
        // Set name -> key -> timeout; a repeated element keeps its last timeout.
        let mut given: BTreeMap<String, BTreeMap<Vec<u8>, u64>> = BTreeMap::new();
        for &(kind, addr, timeout) in elements {
            let set = cfg.set_name(kind, addr)?;
            let ms = timeout_ms(timeout).map_err(|e| NftError::Invalid(format!("element {addr} of {set}: {e}")))?;
            given.entry(set).or_default().insert(key_bytes(addr), ms);
        }

        let table = Table::new(TABLE_C, ProtoFamily::Inet);
        let mut tx = Tx::new();
        tx.add(&table, MsgType::Add, "creating table inet portcullis (so that deleting it cannot fail)");
        tx.add(&table, MsgType::Del, "deleting the old table inet portcullis");
        tx.add(&table, MsgType::Add, "creating table inet portcullis");

        let mut counters = Vec::new();
        for f in [&IP, &IP6] {
            counters.push(format!("block{}", f.n));
            counters.push(format!("quarantine{}", f.n));
            counters.extend(cfg.rate_limits.iter().map(|rl| format!("rl{}_{}", f.n, rl.name)));
        }
        counters.sort();
        let counters: Vec<CString> = counters.iter().map(|c| cstring(c)).collect();
        for c in &counters {
            let obj = CounterObj::new(TABLE_C, c);
            tx.add(&obj, MsgType::Add, format!("creating counter {}", c.to_string_lossy()));
        }

        let mut id = 0;
        let sets4 = new_sets::<Ipv4Addr>(&mut tx, &table, &IP, cfg, &mut id);
        let sets6 = new_sets::<Ipv6Addr>(&mut tx, &table, &IP6, cfg, &mut id);

        tx.elems("allow4", interval_elems(&allow4, v4_bytes).into_iter().map(|(k, end)| (k, end, None)));
        tx.elems("allow6", interval_elems(&allow6, v6_bytes).into_iter().map(|(k, end)| (k, end, None)));
        for (set, elems) in &given {
            tx.elems(set, elems.iter().map(|(k, &ms)| (k.clone(), false, Some(ms))));
        }

        let mut input = Chain::new(c"input", &table);
        let mut forward = Chain::new(c"forward", &table);
        for (chain, hook) in [(&mut input, Hook::In), (&mut forward, Hook::Forward)] {
            chain.set_hook(hook, cfg.priority);
            chain.set_type(ChainType::Filter);
            chain.set_policy(Policy::Accept);
        }
        tx.add(&input, MsgType::Add, "creating chain input");
        tx.add(&forward, MsgType::Add, "creating chain forward");
        for chain in [&input, &forward] {
            add_rules(&mut tx, chain, &IP, &sets4, cfg);
            add_rules(&mut tx, chain, &IP6, &sets6, cfg);
        }

        self.transact(tx, "the install of table inet portcullis")?;
        self.cfg = Some(cfg.clone());
        if self.refresh.is_none() {
            // A failed check leaves the choice that is right on every kernel.
            self.refresh = Some(self.probe_refresh().unwrap_or(TimeoutRefresh::Recreate));
        }
        Ok(())
    }

    /// Whether re-adding an element updates its timeout: a set of our own (no rule uses it)
    /// gets an element with a 1 h timeout, the element is re-added with 10 min, the set is read
    /// back and deleted.
    fn probe_refresh(&mut self) -> Result<TimeoutRefresh, NftError> {
        let table = Table::new(TABLE_C, ProtoFamily::Inet);
        let set = Set::<Ipv4Addr>::new_named(PROBE_SET, 1, &table, ProtoFamily::Inet);
        raw::configure_set(&set, libc::NFT_SET_TIMEOUT as u32, None, None);
        let key = [192, 0, 2, 1]; // TEST-NET-1
        let probe_set = PROBE_SET.to_string_lossy();
        let elem = |ms: u64| {
            let mut m = ElemMsg::new(TABLE_C, PROBE_SET, ElemOp::Add);
            m.push(&key, false, Some(ms));
            m
        };
        let mut tx = Tx::new();
        tx.add(&set, MsgType::Add, format!("creating set {probe_set}"));
        tx.add(&elem(3_600_000), MsgType::Add, format!("adding an element to {probe_set}"));
        self.transact(tx, "the timeout check")?;

        let checked = (|| {
            let mut tx = Tx::new();
            tx.add(&elem(600_000), MsgType::Add, format!("re-adding an element to {probe_set}"));
            self.transact(tx, "the timeout check")?;
            let mut timeout = None;
            let r = self.dump(Dump::Elems(PROBE_SET), |m| {
                if let Some((_, es)) = raw::parse_elems(m) {
                    timeout = timeout.or(es.first().and_then(|e| e.timeout_ms));
                }
            })?;
            r.map_err(|errno| kernel_error("listing the timeout check's set", errno))?;
            Ok::<_, NftError>(if timeout == Some(600_000) { TimeoutRefresh::InPlace } else { TimeoutRefresh::Recreate })
        })();

        let mut tx = Tx::new();
        tx.add(&set, MsgType::Del, format!("deleting set {probe_set}"));
        let deleted = self.transact(tx, "the timeout check");
        let refresh = checked?;
        deleted?;
        Ok(refresh)
    }

    pub(crate) fn apply(&mut self, ops: &[Op]) -> Result<(), NftError> {
        if ops.is_empty() {
            return Ok(());
        }
        let none = NftConfig::default();
        let cfg = self.cfg.as_ref().unwrap_or(&none);
        let refresh = self.refresh.unwrap_or(TimeoutRefresh::Recreate);
        let n = ops.len();
        let mut tx = Tx::new();
        for (i, op) in ops.iter().enumerate() {
            let (kind, addr) = match *op {
                Op::Add { set, addr, .. } | Op::Remove { set, addr } => (set, addr),
            };
            let set = cfg.set_name(kind, addr).map_err(|e| {
                let hint = if self.cfg.is_none() { " (no install yet)" } else { "" };
                NftError::Invalid(format!("op {} of {n}: {e}{hint}", i + 1))
            })?;
            let what = format!("{} (op {} of {n})", describe(op, &set), i + 1);
            let c = cstring(&set);
            let key = key_bytes(addr);
            let mut msg = |elem_op: ElemOp, timeout: Option<u64>| {
                let mut m = ElemMsg::new(TABLE_C, &c, elem_op);
                m.push(&key, false, timeout);
                tx.add(&m, MsgType::Add, what.clone());
            };
            match *op {
                Op::Add { timeout, .. } => {
                    let ms = timeout_ms(timeout).map_err(|e| NftError::Invalid(format!("{what}: {e}")))?;
                    if refresh == TimeoutRefresh::Recreate {
                        msg(ElemOp::Add, None);
                        msg(ElemOp::Del, None);
                    }
                    msg(ElemOp::Add, Some(ms));
                }
                Op::Remove { .. } => {
                    // The add makes the delete succeed whether or not the element exists.
                    msg(ElemOp::Add, None);
                    msg(ElemOp::Del, None);
                }
            }
        }
        self.transact(tx, "the element changes")
    }

    pub(crate) fn status(&mut self) -> Result<TableStatus, NftError> {
        let mut names = Vec::new();
        match self.dump(Dump::Sets, |m| names.extend(raw::parse_set_name(m)))? {
            Ok(()) => {}
            Err(libc::ENOENT) => return Ok(TableStatus::default()),
            Err(errno) => return Err(kernel_error("listing the sets of table inet portcullis", errno)),
        }
        let none = NftConfig::default();
        let mut elements = Vec::new();
        for name in names.iter().filter(|n| is_enforcement_set(n)) {
            let mut raw_elems = Vec::new();
            let c = cstring(name);
            match self
                .dump(Dump::Elems(&c), |m| raw_elems.extend(raw::parse_elems(m).into_iter().flat_map(|(_, e)| e)))?
            {
                Ok(()) => {}
                // Deleted between the two dumps (a concurrent install or flush).
                Err(libc::ENOENT) => continue,
                Err(errno) => return Err(kernel_error(&format!("listing the elements of set {name}"), errno)),
            }
            let kind = self.cfg.as_ref().unwrap_or(&none).kind_of_set(name);
            for e in raw_elems {
                let addr = match e.key.len() {
                    4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&e.key[..]).expect("4 bytes"))),
                    16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&e.key[..]).expect("16 bytes"))),
                    _ => continue,
                };
                elements.push(ElementStatus {
                    set: name.clone(),
                    kind,
                    addr,
                    timeout: e.timeout_ms.map(Duration::from_millis),
                    expires: e.expires_ms.map(Duration::from_millis),
                });
            }
        }
        let mut counters = Vec::new();
        match self.dump(Dump::Counters, |m| counters.extend(raw::parse_counter(m)))? {
            Ok(()) => {}
            Err(libc::ENOENT) => return Ok(TableStatus::default()),
            Err(errno) => return Err(kernel_error("listing the counters of table inet portcullis", errno)),
        }
        elements.sort_by(|a, b| (&a.set, a.addr).cmp(&(&b.set, b.addr)));
        counters.sort();
        Ok(TableStatus { present: true, elements, counters })
    }

    pub(crate) fn flush(&mut self) -> Result<bool, NftError> {
        let table = Table::new(TABLE_C, ProtoFamily::Inet);
        let mut tx = Tx::new();
        tx.add(&table, MsgType::Del, "deleting table inet portcullis");
        match self.transact_raw(tx, "deleting table inet portcullis")? {
            Ok(()) => Ok(true),
            Err(r) if r.errno == libc::ENOENT => Ok(false),
            Err(r) => Err(r.into_error()),
        }
    }

    fn transact(&mut self, tx: Tx, ctx: &str) -> Result<(), NftError> {
        self.transact_raw(tx, ctx)?.map_err(Refused::into_error)
    }

    /// Sends the batch in one datagram and reads the kernel's answer to every message. The
    /// kernel handles a batch while the send runs and queues all its answers before the send
    /// returns, so once every message is acknowledged, or once one is refused, whatever else
    /// is queued is read without waiting.
    fn transact_raw(&mut self, tx: Tx, ctx: &str) -> Result<Result<(), Refused>, NftError> {
        let Tx { batch, what } = tx;
        let fin = batch.finalize();
        let seqs = fin.sequence_numbers();
        let mut bytes = Vec::new();
        for page in &fin {
            bytes.extend_from_slice(page);
        }
        // nftnl numbers the batch's begin and end messages too when the kernel acknowledges
        // them (6.10 and later); the messages described in `what` come between.
        let n = what.len();
        let first = if seqs.len() == n + 2 { seqs.start + 1 } else { seqs.start };
        let index = |seq: u32| seq.checked_sub(first).map(|i| i as usize).filter(|&i| i < n);

        self.drain();
        self.sock.reserve(bytes.len(), seqs.len())?;
        self.sock.send(&bytes)?;

        let mut acked = vec![false; n];
        let mut missing = n;
        let mut refused: Vec<(u32, i32)> = Vec::new();
        let off = self.buf.as_ptr().align_offset(4);
        loop {
            let wait = missing > 0 && refused.is_empty();
            let len = match self.sock.recv(&mut self.buf[off..], wait) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !wait => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(NftError::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{ctx}: {missing} of {n} messages not acknowledged within {READ_TIMEOUT:?}"),
                    )))
                }
                Err(e) => {
                    return Err(NftError::Io(io::Error::new(e.kind(), format!("{ctx}: reading acknowledgements: {e}"))))
                }
            };
            for m in mnl::NlMessages::new(&self.buf[off..off + len]) {
                let m = m?;
                let Some(h) = Header::parse(m) else { continue };
                if h.kind != libc::NLMSG_ERROR as u16 {
                    continue;
                }
                match (h.error, index(h.seq)) {
                    (0, Some(i)) if !acked[i] => {
                        acked[i] = true;
                        missing -= 1;
                    }
                    (0, _) => {}
                    (errno, _) => refused.push((h.seq, errno)),
                }
            }
        }
        Ok(match refused.first() {
            None => Ok(()),
            Some(&(seq, errno)) => Err(Refused {
                what: index(seq).map_or_else(|| ctx.to_string(), |i| what[i].clone()),
                errno,
                others: refused.len() - 1,
            }),
        })
    }

    /// Sends a dump request and hands every answer message to `f`; `Ok(Err(errno))` when the
    /// kernel refused it (ENOENT: no such table or set).
    fn dump(&mut self, what: Dump<'_>, mut f: impl FnMut(Msg<'_>)) -> Result<Result<(), i32>, NftError> {
        self.seq = self.seq.wrapping_add(1) | (1 << 30);
        let seq = self.seq;
        let req = raw::dump_request(TABLE_C, what, seq);
        self.drain();
        self.sock.send(&req)?;
        let off = self.buf.as_ptr().align_offset(4);
        loop {
            let len = match self.sock.recv(&mut self.buf[off..], true) {
                Ok(len) => len,
                Err(e) => {
                    return Err(NftError::Io(io::Error::new(e.kind(), format!("reading a dump of {what:?}: {e}"))))
                }
            };
            for m in mnl::NlMessages::new(&self.buf[off..off + len]) {
                let m = m?;
                let Some(h) = Header::parse(m) else { continue };
                if h.seq != seq {
                    continue;
                }
                if h.kind == libc::NLMSG_DONE as u16 {
                    return Ok(Ok(()));
                }
                if h.kind == libc::NLMSG_ERROR as u16 {
                    if h.error != 0 {
                        return Ok(Err(h.error));
                    }
                    continue;
                }
                if let Some(msg) = Msg::new(m) {
                    f(msg);
                }
            }
        }
    }

    /// Discards whatever an earlier call left unread (after a timeout, say), so answers are
    /// never matched to the wrong request.
    fn drain(&mut self) {
        loop {
            match self.sock.recv(&mut self.buf, false) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ENOBUFS (answers were lost) is reported once; keep draining.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(_) => return,
            }
        }
    }
}

/// The fields of a netlink header the enforcer looks at, and an `NLMSG_ERROR`'s error number
/// (positive; 0 for an acknowledgement).
struct Header {
    kind: u16,
    seq: u32,
    error: i32,
}

impl Header {
    fn parse(m: &[u8]) -> Option<Header> {
        let u32_at = |o: usize| m.get(o..o + 4).map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")));
        let kind = u16::from_ne_bytes(m.get(4..6)?.try_into().ok()?);
        let seq = u32_at(8)?;
        let error = if kind == libc::NLMSG_ERROR as u16 { (u32_at(16)? as i32).wrapping_neg() } else { 0 };
        Some(Header { kind, seq, error })
    }
}

fn is_enforcement_set(name: &str) -> bool {
    matches!(name, "block4" | "block6" | "quarantine4" | "quarantine6")
        || name.starts_with("rl4_")
        || name.starts_with("rl6_")
}

/// Adds one family's sets to the batch: allowlist, block, quarantine, and per profile the
/// limited sources and the meter. Set ids (unique in the batch) let the rules find them.
fn new_sets<'t, K: SetKey>(tx: &mut Tx, table: &'t Table, f: &Family, cfg: &NftConfig, id: &mut u32) -> Sets<'t, K> {
    let mut set = |name: String, flags: i32, timeout: Option<Duration>, size: Option<u32>| {
        *id += 1;
        let s = Set::<K>::new_named(&cstring(&name), *id, table, ProtoFamily::Inet);
        raw::configure_set(&s, flags as u32, timeout, size);
        tx.add(&s, MsgType::Add, format!("creating set {name}"));
        s
    };
    let n = f.n;
    Sets {
        allow: set(format!("allow{n}"), libc::NFT_SET_INTERVAL, None, None),
        block: set(format!("block{n}"), libc::NFT_SET_TIMEOUT, None, None),
        quarantine: set(format!("quarantine{n}"), libc::NFT_SET_TIMEOUT, None, None),
        rl: cfg
            .rate_limits
            .iter()
            .map(|rl| {
                let who = set(format!("rl{n}_{}", rl.name), libc::NFT_SET_TIMEOUT, None, None);
                let meter = set(
                    format!("m{n}_{}", rl.name),
                    libc::NFT_SET_TIMEOUT | libc::NFT_SET_EVAL,
                    Some(METER_TIMEOUT),
                    Some(METER_SIZE),
                );
                (who, meter)
            })
            .collect(),
    }
}

/// The family's rules of one chain, in the order the module's documentation gives.
fn add_rules<K>(tx: &mut Tx, chain: &Chain<'_>, f: &Family, s: &Sets<'_, K>, cfg: &NftConfig) {
    use Step::*;
    let n = f.n;
    let quarantine = cstring(&format!("quarantine{n}"));
    let block = cstring(&format!("block{n}"));
    rule(tx, chain, f, &[Saddr, In(&s.allow), Accept]);
    rule(tx, chain, f, &[Saddr, In(&s.quarantine), Daddr, In(&s.allow), Accept]);
    rule(tx, chain, f, &[Saddr, In(&s.quarantine), Count(&quarantine), Drop]);
    rule(tx, chain, f, &[Daddr, In(&s.quarantine), Count(&quarantine), Drop]);
    rule(tx, chain, f, &[Saddr, In(&s.block), Count(&block), Drop]);
    for (rl, (who, meter)) in cfg.rate_limits.iter().zip(&s.rl) {
        let counter = cstring(&format!("rl{n}_{}", rl.name));
        let limit = Limit { rate: rl.per_second, bytes: rl.unit == RateUnit::Bytes, burst: rl.burst, over: true };
        rule(tx, chain, f, &[Saddr, In(who), Saddr, Update { meter, limit }, Count(&counter), Drop]);
    }
}

/// One rule: `meta nfproto` of the family, then the steps (addresses are loaded into register
/// 1, which lookups and the dynset read).
fn rule<K>(tx: &mut Tx, chain: &Chain<'_>, f: &Family, steps: &[Step<'_, K>]) {
    let mut r = Rule::new(chain);
    r.add_expr(&Meta::NfProto);
    r.add_expr(&Cmp::new(CmpOp::Eq, f.nfproto));
    let mut text = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Saddr | Step::Daddr => {
                let (p, field) = if matches!(step, Step::Saddr) { (&f.saddr, "saddr") } else { (&f.daddr, "daddr") };
                r.add_expr(p);
                // The reload before a dynset is implied by `update @m { ip saddr ... }`.
                if !matches!(steps.get(i + 1), Some(Step::Update { .. })) {
                    text.push(format!("{} {field}", f.name));
                }
            }
            Step::In(set) => {
                r.add_expr(&Lookup::new(*set));
                text.push(format!("@{}", set.get_name().to_string_lossy()));
            }
            Step::Update { meter, limit } => {
                r.add_expr(&Dynset { set: meter.get_name(), set_id: meter.get_id(), limit: *limit });
                let unit = if limit.bytes { " bytes" } else { "" };
                text.push(format!(
                    "update @{} {{ {} saddr limit rate over {}{unit}/second burst {} }}",
                    meter.get_name().to_string_lossy(),
                    f.name,
                    limit.rate,
                    limit.burst
                ));
            }
            Step::Count(name) => {
                r.add_expr(&Objref { counter: name });
                text.push(format!("counter name {:?}", name.to_string_lossy()));
            }
            Step::Accept => {
                r.add_expr(&Verdict::Accept);
                text.push("accept".into());
            }
            Step::Drop => {
                r.add_expr(&Verdict::Drop);
                text.push("drop".into());
            }
        }
    }
    let chain_name = chain.get_name().to_string_lossy();
    tx.add(&r, MsgType::Add, format!("adding rule `{}` to chain {chain_name}", text.join(" ")));
}
