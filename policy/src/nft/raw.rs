//! What the safe `nftnl` API lacks, wrapped once over `nftnl-sys`, `libc` and `mnl`: the
//! netlink socket's options and non-blocking reads, set flags/timeouts/size, the `limit`,
//! `dynset` and `objref` expressions, counter objects, set-element messages with flags and
//! timeouts, dump requests, and the parsers of the kernel's set, element and object messages.
//!
//! Ownership rules of libnftnl this module relies on: an expression handed to
//! `nftnl_rule_add_expr` or `nftnl_expr_add_expr` belongs to the rule/dynset from then on
//! (freed with it); an element handed to `nftnl_set_elem_add` belongs to the set; strings
//! and key bytes given to the setters are copied.

// libnftnl is C: every call goes through raw pointers. They stay inside this file.
#![allow(unsafe_code)]

use std::ffi::{c_void, CStr};
use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::time::Duration;

use nftnl::expr::Expression;
use nftnl::set::Set;
use nftnl::{MsgType, NlMsg, Rule};
use nftnl_sys as sys;

/// `NFT_OBJECT_COUNTER` of `linux/netfilter/nf_tables.h` (not in the `libc` crate).
const NFT_OBJECT_COUNTER: u32 = 1;

/// Family of every message: the table is `inet`.
const FAMILY: u16 = libc::NFPROTO_INET as u16;

/// Allocation failure of a tiny libnftnl object: abort, as `nftnl` and libstd do.
fn alloc<T>(p: *mut T) -> NonNull<T> {
    NonNull::new(p).unwrap_or_else(|| std::process::abort())
}

// ---------------------------------------------------------------------------------------
// The socket.

/// A `NETLINK_NETFILTER` socket (libmnl's `mnl_socket`) with acks capped to their header.
pub(super) struct NlSocket {
    sock: mnl::Socket,
    /// The receive and send buffer sizes last asked for (0: the system default).
    rcvbuf: usize,
    sndbuf: usize,
}

// SAFETY: `mnl::Socket` owns a heap `struct mnl_socket` (a descriptor and its bound address)
// that nothing else points to; libmnl keeps no thread-local or global state for it, so the
// owner may move to another thread. `NlSocket` is not `Sync`: every use takes `&mut` or is a
// system call on the descriptor.
unsafe impl Send for NlSocket {}

impl std::fmt::Debug for NlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlSocket")
            .field("fd", &self.sock.as_raw_fd())
            .field("portid", &self.sock.portid())
            .field("rcvbuf", &self.rcvbuf)
            .field("sndbuf", &self.sndbuf)
            .finish()
    }
}

impl NlSocket {
    /// Opens and binds the socket; blocking reads give up after `timeout`.
    pub(super) fn open(timeout: Duration) -> io::Result<NlSocket> {
        let sock = mnl::Socket::new(mnl::Bus::Netfilter)?;
        let s = NlSocket { sock, rcvbuf: 0, sndbuf: 0 };
        // Errors echo only the header of the refused message, not all of it (Linux 4.3+;
        // best effort: without it the acks are just bigger).
        let _ = s.setsockopt(libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, &1 as &libc::c_int);
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        s.setsockopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        Ok(s)
    }

    fn setsockopt<T>(&self, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: `value` points to a live `T` for the duration of the call and its size is
        // passed with it; setsockopt only reads it. The descriptor is owned by `self.sock`.
        let rc = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                level,
                name,
                (value as *const T).cast::<c_void>(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Grows the buffers for a batch of `send_len` bytes that will be answered by `acks`
    /// acknowledgements: netlink refuses a message bigger than the send buffer, and drops acks
    /// that do not fit in the receive buffer (the next read then fails with ENOBUFS).
    pub(super) fn reserve(&mut self, send_len: usize, acks: usize) -> io::Result<()> {
        // An ack with its header only is an skb of well under 1 KiB.
        let rcv = (acks * 1024 + (256 << 10)).min(1 << 30);
        if rcv > self.rcvbuf {
            self.grow(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, rcv)?;
            self.rcvbuf = rcv;
        }
        let snd = (send_len + (64 << 10)).min(1 << 30);
        if snd > self.sndbuf {
            self.grow(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, snd)?;
            self.sndbuf = snd;
        }
        Ok(())
    }

    /// The FORCE option passes `rmem_max`/`wmem_max` (needs CAP_NET_ADMIN, which every
    /// nf_tables change needs anyway); without the capability the plain option is capped.
    fn grow(&self, force: libc::c_int, plain: libc::c_int, size: usize) -> io::Result<()> {
        let v = size as libc::c_int;
        self.setsockopt(libc::SOL_SOCKET, force, &v).or_else(|_| self.setsockopt(libc::SOL_SOCKET, plain, &v))
    }

    /// Sends `data` (whole netlink messages) in one datagram: a batch must reach the kernel
    /// in one piece.
    pub(super) fn send(&self, data: &[u8]) -> io::Result<()> {
        let n = self.sock.send(data)?;
        if n != data.len() {
            return Err(io::Error::other(format!("netlink sent {n} of {} bytes", data.len())));
        }
        Ok(())
    }

    /// One datagram into `buf`; `wait: false` returns `WouldBlock` when nothing is queued,
    /// `wait: true` blocks up to the socket's timeout (then `WouldBlock` too).
    pub(super) fn recv(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        // SAFETY: `buf` is writable for `buf.len()` bytes for the duration of the call; recv
        // writes at most that many. The descriptor is owned by `self.sock`.
        let n = unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast::<c_void>(), buf.len(), flags) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

// ---------------------------------------------------------------------------------------
// Expressions the safe API lacks.

/// `limit rate [over] N/second [burst B packets]` or `N bytes/second`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub rate: u64,
    pub bytes: bool,
    pub burst: u32,
    /// `over`: match when the rate is exceeded.
    pub over: bool,
}

impl Limit {
    fn alloc(&self) -> NonNull<sys::nftnl_expr> {
        let e = alloc_expr(c"limit");
        let p = e.as_ptr();
        let kind = if self.bytes { libc::NFT_LIMIT_PKT_BYTES } else { libc::NFT_LIMIT_PKTS };
        let flags = if self.over { libc::NFT_LIMIT_F_INV } else { 0 };
        // SAFETY: `p` is a live limit expression we own; these are the limit attributes with
        // the value widths libnftnl expects for them (rate/unit u64, burst/type/flags u32).
        unsafe {
            sys::nftnl_expr_set_u64(p, sys::NFTNL_EXPR_LIMIT_RATE as u16, self.rate);
            sys::nftnl_expr_set_u64(p, sys::NFTNL_EXPR_LIMIT_UNIT as u16, 1);
            sys::nftnl_expr_set_u32(p, sys::NFTNL_EXPR_LIMIT_BURST as u16, self.burst);
            sys::nftnl_expr_set_u32(p, sys::NFTNL_EXPR_LIMIT_TYPE as u16, kind as u32);
            sys::nftnl_expr_set_u32(p, sys::NFTNL_EXPR_LIMIT_FLAGS as u16, flags as u32);
        }
        e
    }
}

impl Expression for Limit {
    fn to_expr(&self, _rule: &Rule<'_>) -> NonNull<sys::nftnl_expr> {
        self.alloc()
    }
}

/// `update @SET { <register 1> LIMIT }`: the key in register 1 is added to (or has its
/// timeout restarted in) `SET`, and the element's own `limit` decides whether the rule goes
/// on.
#[derive(Debug)]
pub(super) struct Dynset<'a> {
    pub set: &'a CStr,
    /// The id the set was given in this batch.
    pub set_id: u32,
    pub limit: Limit,
}

impl Expression for Dynset<'_> {
    fn to_expr(&self, _rule: &Rule<'_>) -> NonNull<sys::nftnl_expr> {
        let e = alloc_expr(c"dynset");
        let p = e.as_ptr();
        let limit = self.limit.alloc();
        // SAFETY: `p` is a live dynset expression we own; the name is NUL-terminated and
        // copied. `limit` is a live expression we own whose ownership passes to the dynset
        // (it frees it), so it is not used again here.
        unsafe {
            sys::nftnl_expr_set_u32(p, sys::NFTNL_EXPR_DYNSET_SREG_KEY as u16, libc::NFT_REG_1 as u32);
            sys::nftnl_expr_set_u32(p, sys::NFTNL_EXPR_DYNSET_OP as u16, libc::NFT_DYNSET_OP_UPDATE as u32);
            sys::nftnl_expr_set_str(p, sys::NFTNL_EXPR_DYNSET_SET_NAME as u16, self.set.as_ptr());
            sys::nftnl_expr_set_u32(p, sys::NFTNL_EXPR_DYNSET_SET_ID as u16, self.set_id);
            sys::nftnl_expr_add_expr(p, sys::NFTNL_EXPR_DYNSET_EXPR, limit.as_ptr());
        }
        e
    }
}

/// `counter name NAME`: counts into the named counter object.
#[derive(Debug)]
pub(super) struct Objref<'a> {
    pub counter: &'a CStr,
}

impl Expression for Objref<'_> {
    fn to_expr(&self, _rule: &Rule<'_>) -> NonNull<sys::nftnl_expr> {
        let e = alloc_expr(c"objref");
        // SAFETY: `e` is a live objref expression we own; the name is NUL-terminated and
        // copied.
        unsafe {
            sys::nftnl_expr_set_u32(e.as_ptr(), sys::NFTNL_EXPR_OBJREF_IMM_TYPE as u16, NFT_OBJECT_COUNTER);
            sys::nftnl_expr_set_str(e.as_ptr(), sys::NFTNL_EXPR_OBJREF_IMM_NAME as u16, self.counter.as_ptr());
        }
        e
    }
}

fn alloc_expr(name: &CStr) -> NonNull<sys::nftnl_expr> {
    // SAFETY: `name` is NUL-terminated; the result is a new expression owned by the caller
    // (or null, checked by `alloc`).
    alloc(unsafe { sys::nftnl_expr_alloc(name.as_ptr()) })
}

// ---------------------------------------------------------------------------------------
// Sets and counter objects.

/// Sets a named set's flags, and its default timeout and maximum size when given.
pub(super) fn configure_set<K>(set: &Set<'_, K>, flags: u32, timeout: Option<Duration>, size: Option<u32>) {
    let p = set.as_ptr().as_ptr();
    // SAFETY: `p` is the live set `set` owns; the attributes get the widths libnftnl expects
    // (flags and size u32, timeout u64 milliseconds).
    unsafe {
        sys::nftnl_set_set_u32(p, sys::NFTNL_SET_FLAGS as u16, flags);
        if let Some(t) = timeout {
            sys::nftnl_set_set_u64(p, sys::NFTNL_SET_TIMEOUT as u16, t.as_millis() as u64);
        }
        if let Some(n) = size {
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_DESC_SIZE as u16, n);
        }
    }
}

/// A named counter object of the table (`counter NAME {}`), added with `NEWOBJ`.
pub(super) struct CounterObj(NonNull<sys::nftnl_obj>);

impl CounterObj {
    pub(super) fn new(table: &CStr, name: &CStr) -> CounterObj {
        // SAFETY: allocation has no preconditions; the result is owned here (null checked).
        let o = alloc(unsafe { sys::nftnl_obj_alloc() });
        // SAFETY: `o` is live and ours; the strings are NUL-terminated and copied.
        unsafe {
            sys::nftnl_obj_set_str(o.as_ptr(), sys::NFTNL_OBJ_TABLE as u16, table.as_ptr());
            sys::nftnl_obj_set_str(o.as_ptr(), sys::NFTNL_OBJ_NAME as u16, name.as_ptr());
            sys::nftnl_obj_set_u32(o.as_ptr(), sys::NFTNL_OBJ_FAMILY as u16, u32::from(FAMILY));
            sys::nftnl_obj_set_u32(o.as_ptr(), sys::NFTNL_OBJ_TYPE as u16, NFT_OBJECT_COUNTER);
        }
        CounterObj(o)
    }
}

impl Drop for CounterObj {
    fn drop(&mut self) {
        // SAFETY: the object is ours and freed once, here.
        unsafe { sys::nftnl_obj_free(self.0.as_ptr()) };
    }
}

// SAFETY: the message is a header plus the table, name, type and an empty counter: far below
// `nft_nlmsg_maxsize`.
unsafe impl NlMsg for CounterObj {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        let (t, flags) = match msg_type {
            MsgType::Add => (libc::NFT_MSG_NEWOBJ, libc::NLM_F_CREATE | libc::NLM_F_ACK),
            MsgType::Del => (libc::NFT_MSG_DELOBJ, libc::NLM_F_ACK),
        };
        // SAFETY: the caller (`nftnl::Batch`) gives a buffer of at least `nft_nlmsg_maxsize`
        // bytes; the object is live.
        unsafe {
            let nlh = sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), t as u16, FAMILY, flags as u16, seq);
            sys::nftnl_obj_nlmsg_build_payload(nlh, self.0.as_ptr());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Set elements.

/// What an element message asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ElemOp {
    /// `NEWSETELEM` with `NLM_F_CREATE` and not `NLM_F_EXCL`: an existing element is not an
    /// error (and, on recent kernels, has its timeout updated when one is given).
    Add,
    /// `DELSETELEM`: fails with ENOENT when the element is absent.
    Del,
}

/// One `NEWSETELEM`/`DELSETELEM` message for one set, with up to [`ElemMsg::MAX`] elements.
pub(super) struct ElemMsg {
    set: NonNull<sys::nftnl_set>,
    op: ElemOp,
    len: usize,
}

impl ElemMsg {
    /// Elements per message: each is at most ~48 bytes of attributes (16-byte key, flags,
    /// timeout), so 512 keep a message far below the 64 KiB a netlink attribute can nest.
    pub(super) const MAX: usize = 512;

    pub(super) fn new(table: &CStr, set: &CStr, op: ElemOp) -> ElemMsg {
        // SAFETY: allocation has no preconditions; the result is owned here (null checked).
        let s = alloc(unsafe { sys::nftnl_set_alloc() });
        // SAFETY: `s` is live and ours; the strings are NUL-terminated and copied.
        unsafe {
            sys::nftnl_set_set_str(s.as_ptr(), sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(s.as_ptr(), sys::NFTNL_SET_NAME as u16, set.as_ptr());
            sys::nftnl_set_set_u32(s.as_ptr(), sys::NFTNL_SET_FAMILY as u16, u32::from(FAMILY));
        }
        ElemMsg { set: s, op, len: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Adds an element: `key` in network order (4 or 16 bytes), `interval_end` for the end
    /// element of an allowlist range, `timeout` for the kernel to delete it after.
    ///
    /// # Panics
    /// When the message already holds [`ElemMsg::MAX`] elements, or the key is not 4 or 16
    /// bytes.
    pub(super) fn push(&mut self, key: &[u8], interval_end: bool, timeout_ms: Option<u64>) {
        assert!(self.len < Self::MAX, "an element message holds at most {} elements", Self::MAX);
        assert!(key.len() == 4 || key.len() == 16, "an address key is 4 or 16 bytes");
        // SAFETY: allocation has no preconditions; the result is owned here (null checked).
        let e = alloc(unsafe { sys::nftnl_set_elem_alloc() });
        // SAFETY: `e` is live and ours; the key is copied from a slice of `key.len()` bytes (at
        // most 16, the key register's size). `nftnl_set_elem_add` then takes ownership of `e`.
        unsafe {
            sys::nftnl_set_elem_set(
                e.as_ptr(),
                sys::NFTNL_SET_ELEM_KEY as u16,
                key.as_ptr().cast::<c_void>(),
                key.len() as u32,
            );
            if interval_end {
                sys::nftnl_set_elem_set_u32(
                    e.as_ptr(),
                    sys::NFTNL_SET_ELEM_FLAGS as u16,
                    libc::NFT_SET_ELEM_INTERVAL_END as u32,
                );
            }
            if let Some(ms) = timeout_ms {
                sys::nftnl_set_elem_set_u64(e.as_ptr(), sys::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            sys::nftnl_set_elem_add(self.set.as_ptr(), e.as_ptr());
        }
        self.len += 1;
    }
}

impl Drop for ElemMsg {
    fn drop(&mut self) {
        // SAFETY: the set (and the elements it owns) is ours and freed once, here.
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) };
    }
}

// SAFETY: at most `ElemMsg::MAX` elements of at most ~48 bytes each plus the table and set
// names (each at most 256 bytes): ~25 KiB, below `nft_nlmsg_maxsize`.
unsafe impl NlMsg for ElemMsg {
    /// `msg_type` is ignored: the message's own [`ElemOp`] decides.
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _msg_type: MsgType) {
        let (t, flags) = match self.op {
            ElemOp::Add => (libc::NFT_MSG_NEWSETELEM, libc::NLM_F_CREATE | libc::NLM_F_ACK),
            ElemOp::Del => (libc::NFT_MSG_DELSETELEM, libc::NLM_F_ACK),
        };
        // SAFETY: the caller (`nftnl::Batch`) gives a buffer of at least `nft_nlmsg_maxsize`
        // bytes, which holds this message (see above); the set is live.
        unsafe {
            let nlh = sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), t as u16, FAMILY, flags as u16, seq);
            sys::nftnl_set_elems_nlmsg_build_payload(nlh, self.set.as_ptr());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dumps.

/// What a dump request lists.
#[derive(Clone, Copy, Debug)]
pub(super) enum Dump<'a> {
    /// The table's sets (`GETSET`).
    Sets,
    /// One set's elements (`GETSETELEM`).
    Elems(&'a CStr),
    /// The table's counter objects (`GETOBJ`).
    Counters,
}

/// A dump request for table `table`, as bytes to send.
pub(super) fn dump_request(table: &CStr, what: Dump<'_>, seq: u32) -> Vec<u8> {
    // Built in a `u32` buffer so the header libnftnl writes is aligned; requests are a header
    // and two names, far below the buffer's size.
    let mut buf = vec![0u32; 1024];
    let p = buf.as_mut_ptr().cast::<c_char>();
    let flags = libc::NLM_F_DUMP as u16;
    // SAFETY: `buf` has 4 KiB, more than a header plus a table and a set name (each at most
    // 256 bytes). The objects are allocated, used and freed within this block; the strings
    // are NUL-terminated and copied.
    let len = unsafe {
        let nlh = match what {
            Dump::Sets | Dump::Elems(_) => {
                let s = alloc(sys::nftnl_set_alloc());
                sys::nftnl_set_set_str(s.as_ptr(), sys::NFTNL_SET_TABLE as u16, table.as_ptr());
                let nlh = if let Dump::Elems(name) = what {
                    sys::nftnl_set_set_str(s.as_ptr(), sys::NFTNL_SET_NAME as u16, name.as_ptr());
                    let nlh = sys::nftnl_nlmsg_build_hdr(p, libc::NFT_MSG_GETSETELEM as u16, FAMILY, flags, seq);
                    sys::nftnl_set_elems_nlmsg_build_payload(nlh, s.as_ptr());
                    nlh
                } else {
                    let nlh = sys::nftnl_nlmsg_build_hdr(p, libc::NFT_MSG_GETSET as u16, FAMILY, flags, seq);
                    sys::nftnl_set_nlmsg_build_payload(nlh, s.as_ptr());
                    nlh
                };
                sys::nftnl_set_free(s.as_ptr());
                nlh
            }
            Dump::Counters => {
                let o = alloc(sys::nftnl_obj_alloc());
                sys::nftnl_obj_set_str(o.as_ptr(), sys::NFTNL_OBJ_TABLE as u16, table.as_ptr());
                sys::nftnl_obj_set_u32(o.as_ptr(), sys::NFTNL_OBJ_TYPE as u16, NFT_OBJECT_COUNTER);
                let nlh = sys::nftnl_nlmsg_build_hdr(p, libc::NFT_MSG_GETOBJ as u16, FAMILY, flags, seq);
                sys::nftnl_obj_nlmsg_build_payload(nlh, o.as_ptr());
                sys::nftnl_obj_free(o.as_ptr());
                nlh
            }
        };
        (*nlh).nlmsg_len as usize
    };
    buf.iter().flat_map(|w| w.to_ne_bytes()).take(len).collect()
}

// ---------------------------------------------------------------------------------------
// Parsing the kernel's messages.

/// One whole netlink message, aligned for `nlmsghdr`, whose length field fits the slice: what
/// libnftnl's parsers may read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Msg<'a>(&'a [u8]);

impl<'a> Msg<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Option<Msg<'a>> {
        let hdr = std::mem::size_of::<libc::nlmsghdr>();
        if bytes.len() < hdr || bytes.as_ptr().align_offset(std::mem::align_of::<libc::nlmsghdr>()) != 0 {
            return None;
        }
        let len = u32::from_ne_bytes(bytes[..4].try_into().ok()?) as usize;
        (hdr..=bytes.len()).contains(&len).then(|| Msg(&bytes[..len]))
    }

    fn nlh(&self) -> *const sys::libc::nlmsghdr {
        self.0.as_ptr().cast()
    }
}

/// A set element as the kernel reported it.
#[derive(Clone, Debug)]
pub(super) struct RawElem {
    pub key: Vec<u8>,
    pub timeout_ms: Option<u64>,
    pub expires_ms: Option<u64>,
}

/// The set's name in a `NEWSET` message of a `GETSET` dump.
pub(super) fn parse_set_name(msg: Msg<'_>) -> Option<String> {
    // SAFETY: allocation has no preconditions; the result is owned here (null checked).
    let s = alloc(unsafe { sys::nftnl_set_alloc() });
    // SAFETY: `msg` is a whole, aligned netlink message (see `Msg`), so the parser reads
    // within it; `s` is ours, the name pointer is read before `s` is freed, once.
    unsafe {
        let name = if sys::nftnl_set_nlmsg_parse(msg.nlh(), s.as_ptr()) < 0 {
            None
        } else {
            c_string(sys::nftnl_set_get_str(s.as_ptr(), sys::NFTNL_SET_NAME as u16))
        };
        sys::nftnl_set_free(s.as_ptr());
        name
    }
}

/// The set name and elements of a `NEWSETELEM` message of a `GETSETELEM` dump.
pub(super) fn parse_elems(msg: Msg<'_>) -> Option<(String, Vec<RawElem>)> {
    // SAFETY: allocation has no preconditions; the result is owned here (null checked).
    let s = alloc(unsafe { sys::nftnl_set_alloc() });
    let mut out = Vec::new();
    // SAFETY: `msg` is a whole, aligned netlink message (see `Msg`). `s` is ours and owns the
    // parsed elements; the iterator walks them while `s` lives and is destroyed before `s` is
    // freed. Keys are copied out of the element (`len` bytes at the returned pointer).
    let name = unsafe {
        if sys::nftnl_set_elems_nlmsg_parse(msg.nlh(), s.as_ptr()) < 0 {
            sys::nftnl_set_free(s.as_ptr());
            return None;
        }
        let name = c_string(sys::nftnl_set_get_str(s.as_ptr(), sys::NFTNL_SET_NAME as u16));
        let it = alloc(sys::nftnl_set_elems_iter_create(s.as_ptr()));
        loop {
            let e = sys::nftnl_set_elems_iter_next(it.as_ptr());
            if e.is_null() {
                break;
            }
            let mut len = 0u32;
            let k = sys::nftnl_set_elem_get(e, sys::NFTNL_SET_ELEM_KEY as u16, &mut len);
            let key = if k.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(k.cast::<u8>(), len as usize).to_vec()
            };
            let get_u64 = |attr: u32| {
                sys::nftnl_set_elem_is_set(e, attr as u16).then(|| sys::nftnl_set_elem_get_u64(e, attr as u16))
            };
            out.push(RawElem {
                key,
                timeout_ms: get_u64(sys::NFTNL_SET_ELEM_TIMEOUT),
                expires_ms: get_u64(sys::NFTNL_SET_ELEM_EXPIRATION),
            });
        }
        sys::nftnl_set_elems_iter_destroy(it.as_ptr());
        sys::nftnl_set_free(s.as_ptr());
        name
    };
    Some((name?, out))
}

/// (name, packets, bytes) of a counter object in a `NEWOBJ` message of a `GETOBJ` dump.
pub(super) fn parse_counter(msg: Msg<'_>) -> Option<(String, u64, u64)> {
    // SAFETY: allocation has no preconditions; the result is owned here (null checked).
    let o = alloc(unsafe { sys::nftnl_obj_alloc() });
    // SAFETY: `msg` is a whole, aligned netlink message (see `Msg`); `o` is ours, read before
    // it is freed, once.
    unsafe {
        let r = if sys::nftnl_obj_nlmsg_parse(msg.nlh(), o.as_ptr()) < 0
            || sys::nftnl_obj_get_u32(o.as_ptr(), sys::NFTNL_OBJ_TYPE as u16) != NFT_OBJECT_COUNTER
        {
            None
        } else {
            c_string(sys::nftnl_obj_get_str(o.as_ptr(), sys::NFTNL_OBJ_NAME as u16)).map(|name| {
                (
                    name,
                    sys::nftnl_obj_get_u64(o.as_ptr(), sys::NFTNL_OBJ_CTR_PKTS as u16),
                    sys::nftnl_obj_get_u64(o.as_ptr(), sys::NFTNL_OBJ_CTR_BYTES as u16),
                )
            })
        };
        sys::nftnl_obj_free(o.as_ptr());
        r
    }
}

/// A copy of a C string libnftnl returned (null: unset).
///
/// # Safety
/// `p` is null or a NUL-terminated string that stays valid during the call.
unsafe fn c_string(p: *const c_char) -> Option<String> {
    // SAFETY: per this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}
