//! AF_PACKET capture on TPACKET_V3 block rings in a fanout group: the fallback when AF_XDP
//! cannot attach.
//!
//! Each interface gets `threads` packet sockets in one `PACKET_FANOUT_HASH` group. The kernel's
//! fanout hash is the symmetric flow hash, so both directions of a flow reach the same member;
//! and because the hash (and its seed) does not depend on the interface, member `i` of the
//! group on one side of an inline pair receives the flows whose other direction reaches member
//! `i` on the other side, as long as both groups have the same number of members. A port
//! therefore holds member `i` of every interface it reads (one when tapping, both sides
//! inline) and sees whole flows.
//!
//! Frames are handed to the worker straight from the mmapped ring. A block goes back to the
//! kernel only once every frame in it was handed out and the callback that saw the last of
//! them returned; a cursor remembers where the previous poll stopped inside a block.
//!
//! Frames whose 802.1Q tag the driver moved into the ring header (VLAN offload) get it back
//! in place before they are handed out, as libpcap does.
//!
//! Tapping, fanout also sets `PACKET_FANOUT_FLAG_DEFRAG` (a datagram's fragments arrive
//! reassembled at one member). Inline it does not: a reassembled datagram is bigger than the
//! MTU and could not be forwarded, so fragments are forwarded one by one as they came (all
//! fragments of a datagram still reach one member: without ports the hash covers addresses).

// This module maps the kernel's RX ring and reads it through raw pointers, and calls socket,
// setsockopt, mmap, poll and send directly: there is no safe std API for any of them. Every
// unsafe block says why it holds; nothing unsafe leaves the module.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_common::Timestamp;

use super::{Capture, CaptureKind, LiveConfig, LiveError, LiveFrame, Port, PortStats, Topology};

/// `tp_frame_size` of the ring request. TPACKET_V3 packs frames of any length into a block, so
/// this only has to satisfy the kernel's checks (aligned, at least a header, divides the block).
const REQ_FRAME_SIZE: u32 = 2048;

/// One member of a fanout group: a packet socket bound to one interface, and its RX ring.
#[derive(Debug)]
struct Member {
    iface: String,
    fd: OwnedFd,
    ring: Ring,
    /// The kernel's drop count, accumulated: reading `PACKET_STATISTICS` resets it.
    rx_dropped: AtomicU64,
}

/// An mmapped TPACKET_V3 RX ring: `count` blocks of `block_size` bytes.
#[derive(Debug)]
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    count: usize,
}

// SAFETY: the mapping is owned by the ring alone (unmapped in its Drop, never aliased by another
// Rust value) and is shared memory the kernel accesses whatever thread the owner runs on, so
// moving the ring to another thread changes nothing.
unsafe impl Send for Ring {}
// SAFETY: through `&Ring` only block statuses are touched, with atomic loads and stores; frame
// bytes are read, never written, and only the thread that owns the port's cursor (`&mut`) hands
// them out.
unsafe impl Sync for Ring {}

/// Where the next frame of a ring comes from.
#[derive(Debug, Default)]
struct Cursor {
    /// The block being read, or to be read next.
    block: usize,
    /// Whether `block` was found ready (`TP_STATUS_USER`) and is being read.
    open: bool,
    /// Frames of `block` not handed out yet, and the offset of the next one.
    left: u32,
    next: usize,
    /// Blocks before `block` whose frames were all handed out in this poll: released once the
    /// callback has returned.
    finished: usize,
}

/// One worker's share of an AF_PACKET capture: fanout member `index` of each interface it
/// reads (one when tapping, both sides of the pair inline).
#[derive(Debug)]
pub struct PacketPort {
    members: Vec<Member>,
    cursors: Vec<Cursor>,
    /// Side of each member: inline 0/1, tapping the interface's index in the topology.
    sides: Vec<u8>,
    inline: bool,
    index: u32,
    of: u32,
    stats: PortStats,
    /// Reused between polls so that a poll does not allocate; always empty between polls.
    frames: Vec<LiveFrame<'static>>,
    verdicts: Vec<bool>,
    pollfds: Vec<libc::pollfd>,
}

/// Opens `threads` fanout members per interface of the topology and groups them into ports.
pub fn open(cfg: &LiveConfig, topology: &Topology) -> Result<Capture, LiveError> {
    let ac = &cfg.afpacket;
    let threads = match ac.threads {
        Some(0) => return Err(LiveError::unsupported(&topology.interfaces().join(","), "af-packet threads must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
    };
    let inline = topology.is_inline();
    let ifaces = topology.interfaces();
    // members[i][k]: member k of interface i.
    let mut members: Vec<Vec<Member>> = Vec::with_capacity(ifaces.len());
    for (i, iface) in ifaces.iter().enumerate() {
        let group = ac.cluster_id.map(|c| c.wrapping_add(i as u16));
        members.push(open_group(iface, cfg, inline, threads, group)?);
    }
    let mut ports = Vec::new();
    if inline {
        let mut b = members.pop().unwrap_or_default().into_iter();
        let a = members.pop().unwrap_or_default().into_iter();
        for (k, ma) in a.enumerate() {
            let Some(mb) = b.next() else { break };
            ports.push(Port::AfPacket(PacketPort::new(vec![ma, mb], vec![0, 1], true, k as u32, threads)));
        }
    } else {
        for (i, group) in members.into_iter().enumerate() {
            for (k, m) in group.into_iter().enumerate() {
                ports.push(Port::AfPacket(PacketPort::new(vec![m], vec![i as u8], false, k as u32, threads)));
            }
        }
    }
    let notes = vec![format!(
        "af-packet: {} fanout member(s) per interface, ring {} x {} bytes, block timeout {} ms{}",
        threads,
        ac.block_count,
        ac.block_size,
        ac.block_timeout_ms,
        if inline { ", inline (no fanout defrag)" } else { "" }
    )];
    Ok(Capture { kind: CaptureKind::AfPacket, ports, xdp: None, notes })
}

/// Opens the `threads` members of one interface's fanout group.
fn open_group(iface: &str, cfg: &LiveConfig, inline: bool, threads: u32, group: Option<u16>) -> Result<Vec<Member>, LiveError> {
    let ifindex = if_index(iface)?;
    let mut kind = libc::PACKET_FANOUT_HASH;
    if !inline {
        kind |= libc::PACKET_FANOUT_FLAG_DEFRAG;
    }
    let mut out = Vec::with_capacity(threads as usize);
    // Without a configured id, the kernel picks one no other group in the namespace uses (so a
    // second capture, Suricata say, is never joined by accident) and the others join it.
    let mut id = group;
    for _ in 0..threads {
        let m = open_member(iface, ifindex, cfg, inline)?;
        let fd = m.fd.as_raw_fd();
        match id {
            Some(id) => set_int(fd, libc::PACKET_FANOUT, (id as u32 | (kind << 16)) as libc::c_int)
                .map_err(|e| LiveError::io(iface, "joining the fanout group (PACKET_FANOUT)", e))?,
            None => {
                set_int(fd, libc::PACKET_FANOUT, ((kind | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16) as libc::c_int)
                    .map_err(|e| LiveError::io(iface, "creating the fanout group (PACKET_FANOUT)", e))?;
                let v = get_int(fd, libc::PACKET_FANOUT).map_err(|e| LiveError::io(iface, "reading the fanout group id", e))?;
                id = Some((v & 0xffff) as u16);
            }
        }
        out.push(m);
    }
    Ok(out)
}

fn open_member(iface: &str, ifindex: i32, cfg: &LiveConfig, inline: bool) -> Result<Member, LiveError> {
    let ac = &cfg.afpacket;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
    if ac.block_size == 0 || !ac.block_size.is_multiple_of(page) || !ac.block_size.is_multiple_of(REQ_FRAME_SIZE) || ac.block_count == 0 {
        return Err(LiveError::unsupported(
            iface,
            format!("af-packet block-size must be a non-zero multiple of the page size ({page}), block-count at least 1"),
        ));
    }
    // Protocol 0: the socket receives nothing until it is bound, after the ring exists.
    // SAFETY: socket has no memory-safety preconditions; the descriptor is owned just below.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(LiveError::io(iface, "creating the packet socket", io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let s = fd.as_raw_fd();
    set_int(s, libc::PACKET_VERSION, libc::tpacket_versions::TPACKET_V3 as libc::c_int)
        .map_err(|e| LiveError::io(iface, "selecting TPACKET_V3", e))?;
    if inline {
        // The frames this port forwards leave through this socket's interface; it must not
        // read them back.
        set_int(s, libc::PACKET_IGNORE_OUTGOING, 1).map_err(|e| LiveError::io(iface, "setting PACKET_IGNORE_OUTGOING", e))?;
    }
    let req = libc::tpacket_req3 {
        tp_block_size: ac.block_size,
        tp_block_nr: ac.block_count,
        tp_frame_size: REQ_FRAME_SIZE,
        tp_frame_nr: (ac.block_size / REQ_FRAME_SIZE) * ac.block_count,
        tp_retire_blk_tov: ac.block_timeout_ms,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    set_opt(s, libc::PACKET_RX_RING, &req).map_err(|e| LiveError::io(iface, "creating the RX ring (PACKET_RX_RING)", e))?;
    let len = ac.block_size as usize * ac.block_count as usize;
    // SAFETY: a fresh shared mapping of the socket's ring, exactly the size that was requested;
    // the result is checked before use.
    let map = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, s, 0) };
    if map == libc::MAP_FAILED {
        return Err(LiveError::io(iface, "mapping the RX ring", io::Error::last_os_error()));
    }
    let ring = Ring {
        base: NonNull::new(map.cast::<u8>()).ok_or_else(|| LiveError::unsupported(iface, "mmap returned null"))?,
        len,
        block_size: ac.block_size as usize,
        count: ac.block_count as usize,
    };
    // SAFETY: sockaddr_ll is plain data for which all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        libc::bind(s, (&sll as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    };
    if rc < 0 {
        return Err(LiveError::io(iface, "binding the packet socket", io::Error::last_os_error()));
    }
    let mreq = libc::packet_mreq { mr_ifindex: ifindex, mr_type: libc::PACKET_MR_PROMISC as u16, mr_alen: 0, mr_address: [0; 8] };
    set_opt(s, libc::PACKET_ADD_MEMBERSHIP, &mreq).map_err(|e| LiveError::io(iface, "enabling promiscuous mode", e))?;
    Ok(Member { iface: iface.to_string(), fd, ring, rx_dropped: AtomicU64::new(0) })
}

impl PacketPort {
    fn new(members: Vec<Member>, sides: Vec<u8>, inline: bool, index: u32, of: u32) -> Self {
        let n = members.len();
        PacketPort {
            pollfds: members
                .iter()
                .map(|m| libc::pollfd { fd: m.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 })
                .collect(),
            cursors: (0..n).map(|_| Cursor::default()).collect(),
            members,
            sides,
            inline,
            index,
            of,
            stats: PortStats::default(),
            frames: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// See [`super::Port::poll`]. Blocks in poll(2) for at most `timeout` (rounded up to a
    /// millisecond) when no block is ready; a block that is not full becomes ready after the
    /// configured block timeout.
    pub fn poll<F>(&mut self, max: usize, timeout: Duration, mut f: F) -> Result<usize, LiveError>
    where
        F: FnMut(&[LiveFrame<'_>], &mut [bool]),
    {
        if max == 0 {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let mut frames = recycle(std::mem::take(&mut self.frames));
            for ((m, cur), &side) in self.members.iter().zip(self.cursors.iter_mut()).zip(&self.sides) {
                m.ring.gather(cur, side, max, &mut frames);
            }
            let n = frames.len();
            if n > 0 {
                self.verdicts.clear();
                self.verdicts.resize(n, true);
                f(&frames, &mut self.verdicts);
                for fr in &frames {
                    self.stats.bytes += fr.data.len() as u64;
                }
                self.stats.packets += n as u64;
                if self.inline {
                    for (fr, &pass) in frames.iter().zip(&self.verdicts) {
                        if !pass {
                            self.stats.dropped += 1;
                            continue;
                        }
                        let out = &self.members[usize::from(fr.side == 0)];
                        if send_frame(out.fd.as_raw_fd(), fr.data) {
                            self.stats.forwarded += 1;
                        } else {
                            self.stats.tx_failed += 1;
                        }
                    }
                }
                // The frames borrow the ring: they are gone before their blocks are released.
                self.frames = recycle(frames);
                for (m, cur) in self.members.iter().zip(self.cursors.iter_mut()) {
                    m.ring.release(cur);
                }
                return Ok(n);
            }
            self.frames = recycle(frames);
            let now = Instant::now();
            if now >= deadline {
                return Ok(0);
            }
            let left = deadline - now;
            let ms = left.as_millis().max(1).min(i32::MAX as u128) as libc::c_int;
            let ms = if Duration::from_millis(ms as u64) < left { ms.saturating_add(1) } else { ms };
            for p in &mut self.pollfds {
                p.revents = 0;
            }
            // SAFETY: `pollfds` is a live, exclusively borrowed array of `len` pollfd structs.
            let rc = unsafe { libc::poll(self.pollfds.as_mut_ptr(), self.pollfds.len() as libc::nfds_t, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(LiveError::io(&self.members[0].iface, "waiting for frames (poll)", e));
                }
            }
        }
    }

    pub fn stats(&self) -> PortStats {
        let mut s = self.stats;
        for m in &self.members {
            let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
            let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
            // SAFETY: `st` and `len` are valid for writes and `len` is `st`'s size.
            let rc = unsafe {
                libc::getsockopt(
                    m.fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_STATISTICS,
                    (&mut st as *mut libc::tpacket_stats_v3).cast(),
                    &mut len,
                )
            };
            if rc == 0 {
                m.rx_dropped.fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
            }
            s.rx_dropped += m.rx_dropped.load(Ordering::Relaxed);
        }
        s
    }

    pub fn backlog(&self) -> usize {
        0
    }

    /// `"veth0 fanout 3/4: af-packet tpacket-v3"`: member 3 (from 0) of 4; inline both
    /// interfaces of the pair, `"a,b fanout 0/2: ..."`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.members.iter().map(|m| m.iface.as_str()).collect();
        format!("{} fanout {}/{}: af-packet tpacket-v3", names.join(","), self.index, self.of)
    }
}

impl Ring {
    fn block(&self, b: usize) -> *mut u8 {
        debug_assert!(b < self.count);
        // SAFETY: b < count, so the offset stays inside the mapping of count * block_size bytes.
        unsafe { self.base.as_ptr().add(b * self.block_size) }
    }

    fn status(&self, b: usize) -> &AtomicU32 {
        let off = offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
        // SAFETY: every block starts with a tpacket_block_desc (blocks are page aligned, so the
        // u32 is aligned); the kernel and this process both access it atomically, and the
        // mapping outlives the returned reference, which borrows `self`.
        unsafe { AtomicU32::from_ptr(self.block(b).add(off).cast::<u32>()) }
    }

    /// Appends the frames after `cur` to `out` until it holds `max`, moving the cursor; the
    /// blocks it finishes are released by [`Ring::release`] after the callback.
    fn gather<'a>(&'a self, cur: &mut Cursor, side: u8, max: usize, out: &mut Vec<LiveFrame<'a>>) {
        while out.len() < max {
            if !cur.open {
                if cur.finished == self.count || self.status(cur.block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    return;
                }
                // SAFETY: the block is ours (TP_STATUS_USER, loaded with Acquire above) until
                // released, so the kernel does not write its descriptor; it is in the mapping and
                // aligned (page-aligned block).
                let h = unsafe {
                    std::ptr::read(self.block(cur.block).add(offset_of!(libc::tpacket_block_desc, hdr)).cast::<libc::tpacket_hdr_v1>())
                };
                cur.open = true;
                cur.left = h.num_pkts;
                cur.next = h.offset_to_first_pkt as usize;
                if cur.left == 0 {
                    self.finish(cur);
                }
                continue;
            }
            let hdr_end = cur.next.checked_add(size_of::<libc::tpacket3_hdr>());
            if hdr_end.is_none_or(|e| e > self.block_size) {
                // A header outside the block: never written by a sane kernel; give the block back.
                self.finish(cur);
                continue;
            }
            // SAFETY: the header lies inside the block (checked above), which is ours until
            // released; read_unaligned because nothing here relies on the kernel's alignment.
            let h = unsafe { std::ptr::read_unaligned(self.block(cur.block).add(cur.next).cast::<libc::tpacket3_hdr>()) };
            let mut start = cur.next + h.tp_mac as usize;
            let mut len = h.tp_snaplen as usize;
            let mut orig_len = h.tp_len;
            if start.checked_add(len).is_none_or(|e| e > self.block_size) {
                self.finish(cur);
                continue;
            }
            if h.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && len >= 12 && start >= cur.next + libc::TPACKET3_HDRLEN + 4 {
                // The driver took the 802.1Q tag out of the frame (VLAN offload, veth included):
                // put it back, so that the worker sees and the bridge forwards the frame as it
                // was on the wire. The kernel leaves padding between the frame's sockaddr_ll and
                // its data; the MAC addresses move 4 bytes into it.
                let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 { h.hv1.tp_vlan_tpid } else { 0x8100 };
                let tci = h.hv1.tp_vlan_tci as u16;
                let [t0, t1] = tpid.to_be_bytes();
                let [c0, c1] = tci.to_be_bytes();
                // SAFETY: [start-4, start+12) lies inside the block (start-4 is past the frame's
                // header and sockaddr_ll, checked above; len >= 12), which is ours until
                // released; no slice handed out covers these bytes (earlier frames' data lie
                // before this frame's header).
                unsafe {
                    let p = self.block(cur.block).add(start);
                    std::ptr::copy(p, p.sub(4), 12);
                    p.add(8).cast::<[u8; 4]>().write_unaligned([t0, t1, c0, c1]);
                }
                start -= 4;
                len += 4;
                orig_len += 4;
            }
            // SAFETY: [start, start+len) lies inside the block, which the kernel does not write
            // until it is released, and it is released only after `out` has been emptied (the
            // frames cannot outlive `&'a self` either, and the mapping lives as long as `self`).
            let data = unsafe { std::slice::from_raw_parts(self.block(cur.block).add(start), len) };
            let ts = Timestamp::from_secs_micros(i64::from(h.tp_sec), i64::from(h.tp_nsec / 1000));
            out.push(LiveFrame { ts, data, orig_len, side });
            cur.left -= 1;
            cur.next += h.tp_next_offset as usize;
            if cur.left == 0 {
                self.finish(cur);
            }
        }
    }

    /// Marks the cursor's block as read and moves to the next one.
    fn finish(&self, cur: &mut Cursor) {
        cur.open = false;
        cur.left = 0;
        cur.finished += 1;
        cur.block = (cur.block + 1) % self.count;
    }

    /// Hands the blocks finished since the last release back to the kernel.
    fn release(&self, cur: &mut Cursor) {
        for i in 0..cur.finished {
            let b = (cur.block + self.count - cur.finished + i) % self.count;
            self.status(b).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
        cur.finished = 0;
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned; no frame borrows the mapping any more
        // (they borrow `self`, which is being dropped).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// Reuses a frame vector's allocation for frames of another lifetime. The vector is emptied
/// first, so the map never runs; std collects a `Vec`'s `into_iter().map()` in place.
fn recycle<'b>(mut v: Vec<LiveFrame<'_>>) -> Vec<LiveFrame<'b>> {
    v.clear();
    v.into_iter().map(|f| LiveFrame { ts: f.ts, data: &[], orig_len: f.orig_len, side: f.side }).collect()
}

/// Transmits one frame on a bound packet socket. A full socket buffer gets one short wait.
fn send_frame(fd: RawFd, data: &[u8]) -> bool {
    for attempt in 0..2 {
        // SAFETY: `data` is a valid slice for the duration of the call.
        let rc = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT) };
        if rc >= 0 {
            return true;
        }
        let e = io::Error::last_os_error();
        let busy = matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOBUFS));
        if !busy || attempt == 1 {
            return false;
        }
        let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        // SAFETY: one valid, exclusively borrowed pollfd.
        unsafe { libc::poll(&mut p, 1, 1) };
    }
    false
}

fn if_index(iface: &str) -> Result<i32, LiveError> {
    let name = CString::new(iface).map_err(|_| LiveError::unsupported(iface, "interface name contains a NUL byte"))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        return Err(LiveError::io(iface, "looking up the interface", io::Error::last_os_error()));
    }
    Ok(idx as i32)
}

fn set_opt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a valid T and the length passed is T's size.
    let rc = unsafe { libc::setsockopt(fd, libc::SOL_PACKET, opt, (v as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_int(fd: RawFd, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    set_opt(fd, opt, &v)
}

fn get_int(fd: RawFd, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes and `len` is `v`'s size.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_PACKET, opt, (&mut v as *mut libc::c_int).cast(), &mut len) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycle_keeps_the_allocation() {
        let mut v: Vec<LiveFrame<'static>> = Vec::with_capacity(64);
        v.push(LiveFrame { ts: Timestamp(0), data: b"x", orig_len: 1, side: 0 });
        let p = v.as_ptr() as usize;
        let w: Vec<LiveFrame<'_>> = recycle(v);
        assert!(w.is_empty());
        assert!(w.capacity() >= 64);
        assert_eq!(w.as_ptr() as usize, p);
    }

    #[test]
    fn zero_threads_is_refused() {
        let cfg = LiveConfig { afpacket: super::super::AfPacketConfig { threads: Some(0), ..Default::default() }, ..Default::default() };
        assert!(open(&cfg, &Topology::Tap(vec!["lo".into()])).is_err());
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let cfg = LiveConfig { afpacket: super::super::AfPacketConfig { threads: Some(1), ..Default::default() }, ..Default::default() };
        let e = open(&cfg, &Topology::Tap(vec!["pcx-nosuchif".into()])).unwrap_err();
        assert!(e.to_string().contains("pcx-nosuchif"), "{e}");
    }
}
