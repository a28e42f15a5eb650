//! AF_XDP capture (xdpilone): one XSK socket per (interface, RX queue), each with its own UMEM.
//!
//! The XDP program ([`super::xdp`]) redirects every frame it does not drop to the socket
//! registered in its XSKMAP for the frame's interface and queue. A port owns one socket when
//! tapping and two when inline (the queue's socket on each interface of the pair); it refills
//! the fill ring, takes a batch from the RX ring(s), lends the frames to the worker straight
//! from the UMEM, then hands the frames back to the fill ring. Inline, each frame whose verdict
//! stays `true` is copied into a free frame of the other socket's UMEM and queued on its TX
//! ring: the two UMEMs are separate, so one copy per forwarded frame is the price of keeping
//! the two interfaces' queues independent.
//!
//! Frame accounting per socket: tapping, every UMEM frame belongs to RX (the fill ring, the RX
//! ring, the batch being looked at, or the free list). Inline, the first half of the UMEM is for
//! RX and the second half for frames being transmitted (free list, TX ring, completion ring).

// AF_XDP shares memory with the kernel: the UMEM is a mapping the kernel writes frames into,
// the worker reads them in place, and forwarding writes into another UMEM. Those accesses, the
// mapping itself and the socket options xdpilone does not wrap (statistics are wrapped; the
// zero-copy query, busy-poll, ethtool and poll(2) are not) are the unsafe code of this module.
#![allow(unsafe_code)]

#[cfg(feature = "afxdp")]
pub use imp::{open, XskPort};
#[cfg(not(feature = "afxdp"))]
pub use stub::{open, XskPort};

#[cfg(not(feature = "afxdp"))]
mod stub {
    use std::time::Duration;

    use crate::live::{Capture, LiveConfig, LiveError, LiveFrame, PortStats, Topology};

    /// Never constructed without the `afxdp` feature.
    #[derive(Debug)]
    pub struct XskPort {
        never: std::convert::Infallible,
    }

    pub fn open(_cfg: &LiveConfig, _topology: &Topology) -> Result<Capture, LiveError> {
        Err(LiveError::NotBuilt("AF_XDP", "built without the `afxdp` feature"))
    }

    impl XskPort {
        pub fn poll<F>(&mut self, _max: usize, _timeout: Duration, _f: F) -> Result<usize, LiveError>
        where
            F: FnMut(&[LiveFrame<'_>], &mut [bool]),
        {
            match self.never {}
        }

        pub fn stats(&self) -> PortStats {
            match self.never {}
        }

        pub fn backlog(&self) -> usize {
            match self.never {}
        }

        pub fn describe(&self) -> String {
            match self.never {}
        }
    }
}

#[cfg(feature = "afxdp")]
mod imp {
    use std::collections::BTreeSet;
    use std::ffi::CString;
    use std::fmt;
    use std::io;
    use std::num::NonZeroU32;
    use std::os::fd::RawFd;
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    use xdpilone::xdp::XdpDesc;
    use xdpilone::{DeviceQueue, Errno, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

    use crate::live::xdp::XdpProgram;
    use crate::live::{AfXdpConfig, Capture, CaptureKind, LiveConfig, LiveError, LiveFrame, Port, PortStats, Topology, ZeroCopy};

    const SOL_XDP: libc::c_int = 283;
    const XDP_OPTIONS: libc::c_int = 8;
    const XDP_OPTIONS_ZEROCOPY: u32 = 1;
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    /// In copy mode the kernel transmits at most this many descriptors per `sendto` (its
    /// `TX_BATCH_SIZE`); the kick loops so a batch of forwarded frames leaves in one poll.
    const MAX_KICKS: usize = 256;

    fn errno_io(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.get_raw().abs())
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The UMEM's memory: an anonymous mapping, page-aligned as the kernel requires.
    struct Area {
        ptr: NonNull<u8>,
        len: usize,
    }

    // SAFETY: the mapping is owned by this value alone (no other handle to it in this process
    // except the XSK socket of the same `Xsk`, which moves with it); it is plain memory with no
    // thread affinity, so moving its owner to a worker thread is sound.
    unsafe impl Send for Area {}

    impl Area {
        fn new(len: usize) -> io::Result<Area> {
            // SAFETY: an anonymous private mapping with no address hint touches no existing
            // memory; the result is checked for MAP_FAILED before use.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
            Ok(Area { ptr, len })
        }

        /// `len` bytes at `addr` when they lie inside the mapping.
        fn range(&self, addr: u64, len: u32) -> Option<*mut u8> {
            let end = addr.checked_add(u64::from(len))?;
            if end > self.len as u64 {
                return None;
            }
            // SAFETY: addr + len <= self.len was just checked, so the offset stays inside the
            // mapping this pointer was derived from.
            Some(unsafe { self.ptr.as_ptr().add(addr as usize) })
        }
    }

    impl Drop for Area {
        fn drop(&mut self) {
            // SAFETY: ptr/len are exactly the mapping created in `new`, unmapped once; every
            // borrow of it (frames lent to a worker) ended with the `poll` that made it, and the
            // socket that registered it as UMEM is closed before (field order of `Xsk`; the
            // kernel keeps its own pin of the pages until the socket is released anyway).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }

    /// One bound XSK socket with its UMEM.
    struct Xsk {
        // Declaration order is drop order: rings and socket handles first, memory last.
        rx: RingRx,
        tx: Option<RingTx>,
        fq: DeviceQueue,
        user: User,
        area: Area,
        fd: RawFd,
        frame_mask: u64,
        /// UMEM frames (chunk addresses) owned by userspace and free for the fill ring / TX.
        rx_free: Vec<u64>,
        tx_free: Vec<u64>,
        /// Descriptors of frames copied in for transmission, queued on the TX ring at the end
        /// of the batch.
        tx_pending: Vec<XdpDesc>,
        iface: String,
        queue: u32,
        side: u8,
        zero_copy: bool,
        packets: u64,
        bytes: u64,
    }

    impl Xsk {
        fn open(iface: &str, queue: u32, side: u8, cfg: &AfXdpConfig, inline: bool) -> Result<Xsk, LiveError> {
            let frames = cfg.umem_frames as usize;
            let area = Area::new(frames * cfg.frame_size as usize).map_err(|e| LiveError::io(iface, "mapping the UMEM", e))?;
            let ucfg = UmemConfig {
                fill_size: cfg.fill_ring,
                complete_size: cfg.comp_ring,
                frame_size: cfg.frame_size,
                headroom: 0,
                flags: 0,
            };
            let region = NonNull::slice_from_raw_parts(area.ptr, area.len);
            // SAFETY: `region` is the page-aligned mapping of `area`, valid for its whole
            // length; `area` is stored in the returned `Xsk` next to every handle on the socket
            // and dropped after them, so the memory outlives its registration as UMEM.
            let umem = unsafe { Umem::new(ucfg, region) }.map_err(|e| LiveError::io(iface, "registering the UMEM", errno_io(e)))?;
            let name = CString::new(iface).map_err(|_| LiveError::unsupported(iface, "interface name contains NUL"))?;
            let mut info = IfInfo::invalid();
            info.from_name(&name).map_err(|e| LiveError::io(iface, "looking up the interface", errno_io(e)))?;
            info.set_queue(queue);
            let sock = Socket::with_shared(&info, &umem).map_err(|e| LiveError::io(iface, "creating the XSK socket", errno_io(e)))?;
            let fq = umem.fq_cq(&sock).map_err(|e| LiveError::io(iface, "creating the fill and completion rings", errno_io(e)))?;
            let mode_flag = match cfg.zero_copy {
                // No flag: the kernel tries zero-copy and falls back to copy mode silently;
                // XDP_OPTIONS tells afterwards which one it took.
                ZeroCopy::Auto => 0,
                ZeroCopy::On => SocketConfig::XDP_BIND_ZEROCOPY,
                ZeroCopy::Off => SocketConfig::XDP_BIND_COPY,
            };
            let scfg = SocketConfig {
                rx_size: NonZeroU32::new(cfg.rx_ring),
                tx_size: if inline { NonZeroU32::new(cfg.tx_ring) } else { None },
                bind_flags: mode_flag | SocketConfig::XDP_BIND_NEED_WAKEUP,
            };
            let user = umem.rx_tx(&sock, &scfg).map_err(|e| LiveError::io(iface, "creating the RX/TX rings", errno_io(e)))?;
            let rx = user.map_rx().map_err(|e| LiveError::io(iface, "mapping the RX ring", errno_io(e)))?;
            let tx = if inline {
                Some(user.map_tx().map_err(|e| LiveError::io(iface, "mapping the TX ring", errno_io(e)))?)
            } else {
                None
            };
            let fd = user.as_raw_fd();
            if let Some(bp) = cfg.busy_poll {
                set_busy_poll(fd, bp.usecs, bp.budget).map_err(|e| LiveError::io(iface, "setting busy-poll options", e))?;
            }
            umem.bind(&user).map_err(|e| {
                let e = errno_io(e);
                if cfg.zero_copy == ZeroCopy::On {
                    LiveError::unsupported(iface, format!("zero-copy bind of queue {queue} failed ({e}); set zero-copy to auto or off"))
                } else {
                    LiveError::io(iface, "binding the XSK socket", e)
                }
            })?;
            let zero_copy = xdp_options(fd).map_err(|e| LiveError::io(iface, "reading XDP_OPTIONS", e))? & XDP_OPTIONS_ZEROCOPY != 0;
            // The Umem value holds one more reference to the socket and the ring registry; the
            // kernel object lives as long as the socket does, so it need not be kept.
            drop(umem);

            let fsz = u64::from(cfg.frame_size);
            let (rx_frames, tx_frames) = if inline { (frames / 2, frames - frames / 2) } else { (frames, 0) };
            // Reversed so that `pop` hands out low addresses first (the order is irrelevant to
            // the kernel; it makes dumps easier to read).
            let rx_free: Vec<u64> = (0..rx_frames as u64).rev().map(|i| i * fsz).collect();
            let tx_free: Vec<u64> = (rx_frames as u64..(rx_frames + tx_frames) as u64).rev().map(|i| i * fsz).collect();
            let mut x = Xsk {
                rx,
                tx,
                fq,
                user,
                area,
                fd,
                frame_mask: !(fsz - 1),
                rx_free,
                tx_free,
                tx_pending: Vec::with_capacity(tx_frames),
                iface: iface.to_string(),
                queue,
                side,
                zero_copy,
                packets: 0,
                bytes: 0,
            };
            x.refill();
            Ok(x)
        }

        /// Gives the fill ring every free RX frame it has room for.
        fn refill(&mut self) {
            if self.rx_free.is_empty() {
                return;
            }
            // xdpilone reserves against its cached view of the kernel's consumer and refreshes
            // it only when that view shows no room at all, so a first reservation may be short:
            // ask again until the ring is really full.
            while !self.rx_free.is_empty() {
                let mut w = self.fq.fill(self.rx_free.len() as u32);
                let n = w.capacity() as usize;
                if n == 0 {
                    break;
                }
                let start = self.rx_free.len() - n;
                let put = w.insert(self.rx_free[start..].iter().copied()) as usize;
                w.commit();
                drop(w);
                self.rx_free.truncate(self.rx_free.len() - put);
            }
        }

        /// Takes back TX frames the kernel has finished sending.
        fn reap(&mut self) {
            if self.tx.is_none() {
                return;
            }
            let mut r = self.fq.complete(u32::MAX);
            while let Some(addr) = r.read() {
                self.tx_free.push(addr & self.frame_mask);
            }
            r.release();
        }

        /// Moves `tx_pending` onto the TX ring; returns (queued, rejected). Rejected frames go
        /// back to the free list.
        fn submit(&mut self) -> (u64, u64) {
            let Some(tx) = self.tx.as_mut() else { return (0, 0) };
            if self.tx_pending.is_empty() {
                return (0, 0);
            }
            // As in `refill`: a short reservation may only mean a stale cached view of the ring.
            let mut n = 0;
            while n < self.tx_pending.len() {
                let mut w = tx.transmit((self.tx_pending.len() - n) as u32);
                let put = w.insert(self.tx_pending[n..].iter().copied()) as usize;
                w.commit();
                drop(w);
                if put == 0 {
                    break;
                }
                n += put;
            }
            let rejected = self.tx_pending.len() - n;
            for d in self.tx_pending.drain(n..) {
                self.tx_free.push(d.addr & self.frame_mask);
            }
            self.tx_pending.clear();
            (n as u64, rejected as u64)
        }

        /// Makes the kernel transmit what is on the TX ring. Copy mode sends inside `sendto`,
        /// at most 32 descriptors a call, so it loops while descriptors are left and the kernel
        /// makes progress; zero-copy needs one kick, and only when the driver asks for it.
        fn kick(&mut self) {
            let Some(tx) = self.tx.as_ref() else { return };
            if tx.pending() == 0 {
                return;
            }
            if self.zero_copy {
                if tx.needs_wakeup() {
                    let _ = send_kick(self.fd);
                }
                return;
            }
            for _ in 0..MAX_KICKS {
                let before = self.tx.as_ref().map_or(0, RingTx::pending);
                if before == 0 {
                    break;
                }
                let r = send_kick(self.fd);
                // The completion ring filling up stalls copy-mode transmission (EAGAIN):
                // recycle between kicks.
                self.reap();
                let after = self.tx.as_ref().map_or(0, RingTx::pending);
                match r {
                    Ok(()) => {}
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS)) => {
                        if after >= before {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }

        fn kernel_stats(&self, s: &mut PortStats) {
            if let Ok(k) = self.user.statistics_v2() {
                s.rx_dropped += k.rx_dropped;
                s.rx_ring_full += k.rx_ring_full;
                s.fill_ring_empty += k.rx_fill_ring_empty_descs;
                s.rx_invalid_descs += k.rx_invalid_descs;
                s.tx_invalid_descs += k.tx_invalid_descs;
            }
        }

        fn mode(&self) -> &'static str {
            if self.zero_copy {
                "zero-copy"
            } else {
                "copy mode"
            }
        }
    }

    fn send_kick(fd: RawFd) -> io::Result<()> {
        // SAFETY: a zero-length sendto with no buffer and no address only asks the kernel to
        // process the socket's TX ring; `fd` is the port's open XSK socket.
        let rc = unsafe { libc::sendto(fd, std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn setsockopt_u32(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: u32) -> io::Result<()> {
        let v = v as libc::c_int;
        // SAFETY: passes a pointer to a live c_int with its exact size; the kernel only reads it.
        check(unsafe {
            libc::setsockopt(fd, level, opt, (&v as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
        })
    }

    fn set_busy_poll(fd: RawFd, usecs: u32, budget: u32) -> io::Result<()> {
        setsockopt_u32(fd, libc::SOL_SOCKET, libc::SO_PREFER_BUSY_POLL, 1)?;
        setsockopt_u32(fd, libc::SOL_SOCKET, libc::SO_BUSY_POLL, usecs)?;
        setsockopt_u32(fd, libc::SOL_SOCKET, libc::SO_BUSY_POLL_BUDGET, budget)
    }

    /// `struct xdp_options.flags` of a bound socket.
    fn xdp_options(fd: RawFd) -> io::Result<u32> {
        let mut flags: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
        // SAFETY: `flags` is a live u32 (struct xdp_options is one u32) and `len` its size; the
        // kernel writes at most `len` bytes.
        check(unsafe { libc::getsockopt(fd, SOL_XDP, XDP_OPTIONS, (&mut flags as *mut u32).cast(), &mut len) })?;
        Ok(flags)
    }

    #[repr(C)]
    #[derive(Default)]
    struct EthtoolChannels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }

    /// RX queues of `iface` that can carry traffic: ethtool's combined + RX-only channels, or
    /// /sys's rx-* directories when the driver has no channel query. ethtool is asked first as
    /// it answers for the calling thread's network namespace, while /sys shows the namespace
    /// sysfs was mounted in.
    pub(super) fn rx_queues(iface: &str) -> Result<u32, LiveError> {
        match ethtool_channels(iface) {
            Ok(ch) if ch.rx_count + ch.combined_count > 0 => return Ok(ch.rx_count + ch.combined_count),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Err(LiveError::io(iface, "reading the queue count", e)),
            Err(_) => {}
        }
        let n = std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
            .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
            .unwrap_or(0);
        Ok(n.max(1))
    }

    fn ethtool_channels(iface: &str) -> io::Result<EthtoolChannels> {
        if iface.len() >= libc::IFNAMSIZ || iface.as_bytes().contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        // SAFETY: plain socket(2) call; the descriptor is closed below on every path.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ch = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
        // SAFETY: ifreq is plain old data (a name and a union of integers and pointers); all
        // zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, b) in ifr.ifr_name.iter_mut().zip(iface.bytes()) {
            *d = b as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
        // SAFETY: SIOCETHTOOL with a NUL-terminated name (length checked, rest zeroed) and
        // ifru_data pointing at a live ethtool_channels, which the kernel fills in; both
        // outlive the call.
        let rc = unsafe { libc::ioctl(s, libc::SIOCETHTOOL as _, &mut ifr as *mut libc::ifreq) };
        let err = io::Error::last_os_error();
        // SAFETY: `s` is the socket opened above, closed exactly once.
        unsafe { libc::close(s) };
        if rc < 0 {
            return Err(err);
        }
        Ok(ch)
    }

    fn validate(cfg: &AfXdpConfig, topology: &Topology) -> Result<(), LiveError> {
        let who = topology.interfaces().join(",");
        let bad = |msg: String| Err(LiveError::unsupported(&who, msg));
        if cfg.frame_size != 2048 && cfg.frame_size != 4096 {
            return bad(format!("af-xdp frame-size must be 2048 or 4096, not {}", cfg.frame_size));
        }
        let min_frames = if topology.is_inline() { 2 } else { 1 };
        if !cfg.umem_frames.is_power_of_two() || cfg.umem_frames < min_frames {
            return bad(format!("af-xdp umem-frames must be a power of two ≥ {min_frames}, not {}", cfg.umem_frames));
        }
        for (name, v) in [("rx-ring", cfg.rx_ring), ("tx-ring", cfg.tx_ring), ("fill-ring", cfg.fill_ring), ("comp-ring", cfg.comp_ring)] {
            if !v.is_power_of_two() {
                return bad(format!("af-xdp {name} must be a power of two, not {v}"));
            }
        }
        if cfg.queues == Some(0) {
            return bad("af-xdp queues must be at least 1".to_string());
        }
        if topology.interfaces().is_empty() {
            return bad("no interface to capture on".to_string());
        }
        Ok(())
    }

    /// Notes the copy-mode fallback once per interface.
    fn note_mode(x: &Xsk, cfg: &AfXdpConfig, noted: &mut BTreeSet<String>, notes: &mut Vec<String>) {
        if cfg.zero_copy == ZeroCopy::Auto && !x.zero_copy && noted.insert(x.iface.clone()) {
            notes.push(format!("{}: zero-copy not supported by the driver, copy mode", x.iface));
        }
    }

    pub fn open(cfg: &LiveConfig, topology: &Topology) -> Result<Capture, LiveError> {
        let a = &cfg.afxdp;
        validate(a, topology)?;
        let mut counts = Vec::new();
        for iface in topology.interfaces() {
            let n = rx_queues(iface)?;
            counts.push(a.queues.map_or(n, |q| q.min(n)));
        }
        let mut prog = XdpProgram::attach(topology, a.xdp_mode, true)?;
        let mut notes = vec![format!("XDP program attached ({})", prog.describe())];
        let mut noted = BTreeSet::new();
        let mut ports = Vec::new();
        match topology {
            Topology::Tap(ifaces) => {
                for (i, iface) in ifaces.iter().enumerate() {
                    for q in 0..counts[i] {
                        let x = Xsk::open(iface, q, i as u8, a, false)?;
                        prog.register_socket(iface, q, x.fd)?;
                        note_mode(&x, a, &mut noted, &mut notes);
                        ports.push(Port::AfXdp(XskPort::new(vec![x], false, a.busy_poll.is_some())));
                    }
                }
            }
            Topology::Inline(ia, ib) => {
                let n = counts[0].min(counts[1]);
                if counts[0] != counts[1] {
                    notes.push(format!(
                        "{ia} has {} RX queues and {ib} {}: bridging {n}; frames on the other queues reach the host stack, not the bridge",
                        counts[0], counts[1]
                    ));
                }
                for q in 0..n {
                    let xa = Xsk::open(ia, q, 0, a, true)?;
                    let xb = Xsk::open(ib, q, 1, a, true)?;
                    prog.register_socket(ia, q, xa.fd)?;
                    prog.register_socket(ib, q, xb.fd)?;
                    note_mode(&xa, a, &mut noted, &mut notes);
                    note_mode(&xb, a, &mut noted, &mut notes);
                    ports.push(Port::AfXdp(XskPort::new(vec![xa, xb], true, a.busy_poll.is_some())));
                }
            }
        }
        Ok(Capture { kind: CaptureKind::AfXdp, ports, xdp: Some(prog), notes })
    }

    /// One worker's sockets: one when tapping, the pair's two for one queue when inline.
    pub struct XskPort {
        socks: Vec<Xsk>,
        inline: bool,
        busy_poll: bool,
        /// (socket index, descriptor address, length) of the batch being handed out.
        descs: Vec<(usize, u64, u32)>,
        /// The batch's frames; empty between polls (see `poll`), kept for its allocation.
        frames: Vec<LiveFrame<'static>>,
        verdicts: Vec<bool>,
        forwarded: u64,
        tx_failed: u64,
        dropped: u64,
    }

    impl fmt::Debug for XskPort {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("XskPort").field("describe", &self.describe()).finish_non_exhaustive()
        }
    }

    impl XskPort {
        fn new(socks: Vec<Xsk>, inline: bool, busy_poll: bool) -> XskPort {
            let cap: usize = socks.iter().map(|x| x.rx_free.len() + x.tx_free.len()).sum();
            let cap = cap.min(1 << 16);
            XskPort {
                socks,
                inline,
                busy_poll,
                descs: Vec::with_capacity(cap),
                frames: Vec::with_capacity(cap),
                verdicts: Vec::with_capacity(cap),
                forwarded: 0,
                tx_failed: 0,
                dropped: 0,
            }
        }

        fn available(&self) -> usize {
            self.socks.iter().map(|x| x.rx.available() as usize).sum()
        }

        /// Waits until some RX ring has descriptors or `timeout` passes.
        fn wait(&mut self, timeout: Duration) -> Result<(), LiveError> {
            if self.busy_poll {
                // With SO_PREFER_BUSY_POLL the socket's NAPI runs from recvfrom(2); spin on
                // it rather than sleep, which is what busy-polling asks for.
                let deadline = Instant::now() + timeout;
                loop {
                    for x in &self.socks {
                        // SAFETY: zero-length non-blocking recvfrom on the port's XSK socket,
                        // no buffer: it only drives the kernel's RX processing.
                        unsafe {
                            libc::recvfrom(x.fd, std::ptr::null_mut(), 0, libc::MSG_DONTWAIT, std::ptr::null_mut(), std::ptr::null_mut())
                        };
                    }
                    if self.available() > 0 || Instant::now() >= deadline {
                        return Ok(());
                    }
                    std::hint::spin_loop();
                }
            }
            let mut fds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 2];
            for (p, x) in fds.iter_mut().zip(&self.socks) {
                p.fd = x.fd;
                p.events = libc::POLLIN;
            }
            let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
            // SAFETY: `fds` holds `socks.len()` (≤ 2) initialised pollfds, `ts` is a live
            // timespec and the signal mask pointer is NULL (unchanged).
            let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), self.socks.len() as libc::nfds_t, &ts, std::ptr::null()) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(LiveError::io(&self.socks[0].iface, "poll(2) on the XSK socket", e));
                }
            }
            for (p, x) in fds.iter().zip(&self.socks) {
                if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                    return Err(LiveError::io(&x.iface, "poll(2) on the XSK socket", io::Error::other("socket error")));
                }
            }
            Ok(())
        }

        pub fn poll<F>(&mut self, max: usize, timeout: Duration, mut f: F) -> Result<usize, LiveError>
        where
            F: FnMut(&[LiveFrame<'_>], &mut [bool]),
        {
            for x in &mut self.socks {
                x.reap();
                x.refill();
                x.kick();
            }
            if max == 0 {
                return Ok(0);
            }
            if self.available() == 0 && !timeout.is_zero() {
                self.wait(timeout)?;
            }

            // Take up to `max` descriptors, an even share from each socket first so that one
            // busy side cannot starve the other, then whatever is left from either.
            self.descs.clear();
            let share = max.div_ceil(self.socks.len());
            for pass in 0..2 {
                for (i, x) in self.socks.iter_mut().enumerate() {
                    let room = max - self.descs.len();
                    let want = if pass == 0 { share.min(room) } else { room };
                    if want == 0 {
                        continue;
                    }
                    // Short reads can come from xdpilone's cached view of the producer; a
                    // second read refreshes it.
                    let mut left = want;
                    while left > 0 {
                        let mut r = x.rx.receive(left as u32);
                        let got = r.capacity() as usize;
                        while let Some(d) = r.read() {
                            self.descs.push((i, d.addr, d.len));
                        }
                        r.release();
                        if got == 0 {
                            break;
                        }
                        left -= got;
                    }
                }
            }
            let n = self.descs.len();
            if n == 0 {
                return Ok(0);
            }

            let ts = crate::live::now();
            let socks = &self.socks;
            let mut frames: Vec<LiveFrame<'_>> = std::mem::take(&mut self.frames);
            for &(i, addr, len) in &self.descs {
                let x = &socks[i];
                let data: &[u8] = match x.area.range(addr, len) {
                    // SAFETY: the range lies inside the UMEM mapping (checked by `range`) and
                    // belongs to a descriptor just taken off the RX ring, so the kernel has
                    // handed the frame over and will not write it until it is given back to
                    // the fill ring, which happens only after `frames` is emptied below. The
                    // borrow is tied to `self.socks`, which owns the mapping.
                    Some(p) => unsafe { std::slice::from_raw_parts(p, len as usize) },
                    // The kernel never produces such a descriptor; show an empty frame
                    // rather than read outside the UMEM.
                    None => &[],
                };
                frames.push(LiveFrame { ts, data, orig_len: len, side: x.side });
            }
            self.verdicts.clear();
            self.verdicts.resize(n, true);
            f(&frames, &mut self.verdicts);
            frames.clear();
            // Keep the allocation for the next batch: an empty Vec's element lifetime can be
            // widened again (collecting an empty in-place iterator reuses the buffer).
            self.frames = frames.into_iter().map(|_| -> LiveFrame<'static> { unreachable!() }).collect();

            for (k, &(i, addr, len)) in self.descs.iter().enumerate() {
                let src = &mut self.socks[i];
                src.packets += 1;
                src.bytes += u64::from(len);
                let base = addr & src.frame_mask;
                let from = src.area.range(addr, len);
                src.rx_free.push(base);
                if !self.inline {
                    continue;
                }
                if !self.verdicts[k] {
                    self.dropped += 1;
                    continue;
                }
                let dst = &mut self.socks[1 - i];
                if dst.tx_free.is_empty() {
                    dst.reap();
                }
                let (Some(from), Some(t)) = (from, dst.tx_free.pop()) else {
                    self.tx_failed += 1;
                    continue;
                };
                let Some(to) = dst.area.range(t, len) else {
                    // A frame larger than a TX chunk (cannot happen with equal frame sizes).
                    dst.tx_free.push(t);
                    self.tx_failed += 1;
                    continue;
                };
                // SAFETY: `from` is `len` bytes of an RX frame of the other socket's UMEM,
                // owned by userspace (taken off the RX ring; being on the free list only means
                // it is not yet back on the fill ring, which happens in `refill`, later).
                // `to` is `len` bytes of a TX frame taken from `dst`'s free list, so neither
                // the kernel nor any other descriptor uses it; the two mappings are distinct,
                // so the ranges cannot overlap.
                unsafe { std::ptr::copy_nonoverlapping(from, to, len as usize) };
                dst.tx_pending.push(XdpDesc { addr: t, len, options: 0 });
            }
            if self.inline {
                for x in &mut self.socks {
                    let (queued, rejected) = x.submit();
                    self.forwarded += queued;
                    self.tx_failed += rejected;
                    x.kick();
                }
            }
            for x in &mut self.socks {
                x.refill();
            }
            Ok(n)
        }

        pub fn stats(&self) -> PortStats {
            let mut s = PortStats { forwarded: self.forwarded, tx_failed: self.tx_failed, dropped: self.dropped, ..PortStats::default() };
            for x in &self.socks {
                s.packets += x.packets;
                s.bytes += x.bytes;
                x.kernel_stats(&mut s);
            }
            s
        }

        pub fn backlog(&self) -> usize {
            self.available()
        }

        pub fn describe(&self) -> String {
            let Some(a) = self.socks.first() else { return String::new() };
            let mode = if self.socks.iter().all(|x| x.zero_copy == a.zero_copy) {
                a.mode().to_string()
            } else {
                self.socks.iter().map(|x| format!("{} {}", x.iface, x.mode())).collect::<Vec<_>>().join(", ")
            };
            match self.socks.get(1) {
                Some(b) => format!("{} ↔ {} queue {}: af-xdp {mode}", a.iface, b.iface, a.queue),
                None => format!("{} queue {}: af-xdp {mode}", a.iface, a.queue),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn config_validation_names_the_setting() {
            let tap = Topology::Tap(vec!["eth0".into()]);
            let ok = AfXdpConfig::default();
            assert!(validate(&ok, &tap).is_ok());
            type Edit = fn(&mut AfXdpConfig);
            let cases: [(Edit, &str); 5] = [
                (|c| c.frame_size = 3000, "frame-size"),
                (|c| c.umem_frames = 1000, "umem-frames"),
                (|c| c.rx_ring = 1000, "rx-ring"),
                (|c| c.comp_ring = 3, "comp-ring"),
                (|c| c.queues = Some(0), "queues"),
            ];
            for (edit, name) in cases {
                let mut c = ok.clone();
                edit(&mut c);
                let e = validate(&c, &tap).unwrap_err().to_string();
                assert!(e.contains(name), "{e}");
            }
            let mut one = ok.clone();
            one.umem_frames = 1;
            assert!(validate(&one, &tap).is_ok());
            assert!(validate(&one, &Topology::Inline("a".into(), "b".into())).is_err());
        }

        #[test]
        fn area_range_stays_inside_the_mapping() {
            let a = Area::new(8192).unwrap();
            assert!(a.range(0, 8192).is_some());
            assert!(a.range(4096, 4096).is_some());
            assert!(a.range(4097, 4096).is_none());
            assert!(a.range(u64::MAX, 2).is_none());
        }

        #[test]
        fn queue_count_of_loopback() {
            // lo has one RX queue and no channel query: the /sys fallback answers.
            assert!(rx_queues("lo").unwrap() >= 1);
            assert!(rx_queues("pcx-no-such-if").is_err());
        }
    }
}
