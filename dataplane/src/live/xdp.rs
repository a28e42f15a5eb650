//! The XDP program (`kernels/xdp/portcullis.bpf.c`): loading, attaching, the AF_XDP socket
//! map and the block map.
//!
//! One loaded program serves every interface of the topology, so the block map and the
//! counters are shared; each interface gets a slot (its position in the topology) and the
//! program redirects a frame to the socket map entry `slot * MAX_QUEUES + rx_queue`.
//! `build.rs` compiles the C source with clang; without clang, libbpf's headers or the
//! `afxdp` feature the API stays and returns [`LiveError::NotBuilt`].
//!
//! Attachment goes through a BPF link where the kernel has them (5.9+): the link dies with
//! the process, so even a crash leaves no program behind. On older kernels aya falls back to
//! netlink, which only [`XdpProgram`]'s `Drop` undoes.

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use portcullis_common::xdp::xdp_stat;

use super::{LiveError, Topology, XdpMode};

/// Interfaces one program serves (slots in its socket map).
pub const MAX_INTERFACES: usize = 16;
/// RX queues per interface that can have an AF_XDP socket.
pub const MAX_QUEUES: u32 = 64;

/// The loaded program, attached to every interface of a topology; detached when dropped.
#[derive(Debug)]
pub struct XdpProgram {
    inner: imp::Program,
}

impl XdpProgram {
    /// Loads the program and attaches it to every interface of `topology`. With `redirect`,
    /// frames not dropped by the block map go to the AF_XDP socket registered for their
    /// interface and queue (the kernel stack when there is none); without, they pass on.
    ///
    /// The interfaces are looked up in the calling thread's network namespace.
    /// [`XdpMode::Auto`] tries driver mode on each interface and falls back to generic
    /// mode; [`XdpProgram::mode`] tells which one each got.
    pub fn attach(topology: &Topology, mode: XdpMode, redirect: bool) -> Result<Self, LiveError> {
        imp::Program::attach(topology, mode, redirect).map(|inner| XdpProgram { inner })
    }

    /// Directs frames of `iface`'s RX queue `queue` to the AF_XDP socket `fd`, replacing any
    /// socket registered there before. The socket must be bound to that interface and queue
    /// (the kernel drops frames redirected to a socket bound elsewhere). The map holds its
    /// own reference: closing the socket removes the entry, and frames of the queue go back
    /// to the kernel stack.
    pub fn register_socket(&mut self, iface: &str, queue: u32, fd: RawFd) -> Result<(), LiveError> {
        self.inner.register_socket(iface, queue, fd)
    }

    /// Undoes [`XdpProgram::register_socket`]; frames of the queue pass to the kernel stack.
    pub fn unregister_socket(&mut self, iface: &str, queue: u32) -> Result<(), LiveError> {
        self.inner.unregister_socket(iface, queue)
    }

    /// A handle on the block map, shareable between threads.
    pub fn blocklist(&self) -> Blocklist {
        Blocklist { inner: self.inner.blocklist() }
    }

    /// The program's counters summed over CPUs, indexed by
    /// [`portcullis_common::xdp::xdp_stat`].
    pub fn stats(&self) -> Result<[u64; xdp_stat::COUNT as usize], LiveError> {
        self.inner.stats()
    }

    /// The mode `iface` was attached in ([`XdpMode::Driver`] or [`XdpMode::Generic`]);
    /// `None` when it is not one of the program's interfaces. AF_XDP sockets on a generic
    /// mode interface can only bind in copy mode.
    pub fn mode(&self, iface: &str) -> Option<XdpMode> {
        self.inner.mode(iface)
    }

    /// `"driver mode on veth0, veth1"`.
    pub fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A blocked address as the map holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedAddr {
    pub ip: IpAddr,
    /// Time left; `None`: until unblocked.
    pub expires_in: Option<Duration>,
    pub hits: u64,
    pub bytes: u64,
}

/// The block map, shared by the daemon's control socket and (later) the policy.
#[derive(Clone, Debug)]
pub struct Blocklist {
    inner: imp::Map,
}

impl Blocklist {
    /// Drops every frame from `ip` in the XDP program, for `duration` or until unblocked.
    /// Blocking an address again replaces its expiry and keeps its counters (drops counted
    /// by the program between reading and rewriting the entry are lost).
    pub fn block(&self, ip: IpAddr, duration: Option<Duration>) -> Result<(), LiveError> {
        self.inner.block(ip, duration)
    }

    /// Removes `ip`; false when it was not blocked.
    pub fn unblock(&self, ip: IpAddr) -> Result<bool, LiveError> {
        self.inner.unblock(ip)
    }

    /// Every entry, expired ones included until [`Blocklist::sweep`] removes them (with
    /// `expires_in` zero), sorted by address.
    pub fn list(&self) -> Result<Vec<BlockedAddr>, LiveError> {
        self.inner.list()
    }

    /// Removes expired entries and returns them with their final counters.
    pub fn sweep(&self) -> Result<Vec<BlockedAddr>, LiveError> {
        self.inner.sweep()
    }
}

/// Time left before `expires_ns` (0: never) at `now`.
#[cfg_attr(not(portcullis_xdp), allow(dead_code))] // only the unit tests use it then
fn time_left(expires_ns: u64, now: u64) -> Option<Duration> {
    (expires_ns != 0).then(|| Duration::from_nanos(expires_ns.saturating_sub(now)))
}

/// The `expires_ns` of an entry blocked at `now` for `duration`.
#[cfg_attr(not(portcullis_xdp), allow(dead_code))] // only the unit tests use it then
fn deadline(now: u64, duration: Option<Duration>) -> u64 {
    match duration {
        // At least 1 so a zero duration is "already expired", never "forever".
        Some(d) => now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).max(1),
        None => 0,
    }
}

#[cfg(portcullis_xdp)]
mod imp {
    use std::ffi::CString;
    use std::net::IpAddr;
    use std::os::fd::RawFd;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::Duration;

    use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray, XskMap};
    use aya::programs::xdp::XdpLinkId;
    use aya::programs::{Xdp, XdpMode as AyaMode};
    use aya::Ebpf;
    use portcullis_common::xdp::{xdp_stat, BlockEntry, BlockKey};

    use super::{deadline, time_left, BlockedAddr, MAX_INTERFACES, MAX_QUEUES};
    use crate::live::{monotonic_ns, LiveError, Topology, XdpMode};

    const PROGRAM: &str = "portcullis_xdp";

    // The map's key and value are plain byte and word arrays (aya's `Pod` covers them) with
    // the layout of common's #[repr(C)] BlockKey and BlockEntry, so common needs no aya.
    type Key = [u8; 16];
    type Value = [u64; 3];
    const _: () = assert!(std::mem::size_of::<BlockKey>() == std::mem::size_of::<Key>());
    const _: () = assert!(std::mem::size_of::<BlockEntry>() == std::mem::size_of::<Value>());

    struct Attached {
        iface: String,
        mode: XdpMode,
        link: XdpLinkId,
    }

    pub struct Program {
        ebpf: Ebpf,
        attached: Vec<Attached>,
        /// Topology order: an interface's index here is its slot in the socket map.
        slots: Vec<String>,
        xsks: XskMap<MapData>,
        stats: PerCpuArray<MapData, u64>,
        blocklist: Map,
        redirect: bool,
    }

    impl std::fmt::Debug for Program {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("XdpProgram").field("attached", &self.describe()).field("redirect", &self.redirect).finish()
        }
    }

    fn xdp_err(what: &str, e: impl std::fmt::Display) -> LiveError {
        LiveError::Xdp(format!("{what}: {e}"))
    }

    /// The interface's index in the calling thread's network namespace.
    fn ifindex(iface: &str) -> Result<u32, LiveError> {
        let name = CString::new(iface).map_err(|_| LiveError::unsupported(iface, "interface name contains a NUL byte"))?;
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call, which only
        // reads it.
        #[allow(unsafe_code)]
        let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if idx == 0 {
            return Err(LiveError::io(iface, "looking up the interface", std::io::Error::last_os_error()));
        }
        Ok(idx)
    }

    fn take<T>(ebpf: &mut Ebpf, name: &str) -> Result<T, LiveError>
    where
        T: TryFrom<aya::maps::Map, Error = MapError>,
    {
        let map = ebpf.take_map(name).ok_or_else(|| LiveError::Xdp(format!("the object has no map {name}")))?;
        T::try_from(map).map_err(|e| xdp_err(name, e))
    }

    impl Program {
        pub fn attach(topology: &Topology, mode: XdpMode, redirect: bool) -> Result<Self, LiveError> {
            let mut slots: Vec<String> = Vec::new();
            for iface in topology.interfaces() {
                if !slots.iter().any(|s| s == iface) {
                    slots.push(iface.to_string());
                }
            }
            if slots.len() > MAX_INTERFACES {
                return Err(LiveError::Xdp(format!(
                    "{} interfaces, the program serves at most {MAX_INTERFACES}",
                    slots.len()
                )));
            }
            let indices = slots.iter().map(|s| ifindex(s)).collect::<Result<Vec<u32>, _>>()?;

            let bytes = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/portcullis.bpf.o"));
            let mut ebpf = Ebpf::load(bytes).map_err(|e| xdp_err("loading the object", e))?;
            let mut config: Array<MapData, u32> = take(&mut ebpf, "CONFIG")?;
            config.set(0, u32::from(redirect), 0).map_err(|e| xdp_err("setting the redirect flag", e))?;
            let mut slot_map: HashMap<MapData, u32, u32> = take(&mut ebpf, "IFACE_SLOTS")?;
            for (slot, (&idx, iface)) in indices.iter().zip(&slots).enumerate() {
                slot_map.insert(idx, slot as u32, 0).map_err(|e| xdp_err(&format!("{iface}: filling the slot map"), e))?;
            }
            let xsks: XskMap<MapData> = take(&mut ebpf, "XSKS")?;
            let stats: PerCpuArray<MapData, u64> = take(&mut ebpf, "XDP_STATS")?;
            let blocks: HashMap<MapData, Key, Value> = take(&mut ebpf, "BLOCKLIST")?;

            let prog: &mut Xdp = ebpf
                .program_mut(PROGRAM)
                .ok_or_else(|| LiveError::Xdp(format!("the object has no program {PROGRAM}")))?
                .try_into()
                .map_err(|e| xdp_err("program type", e))?;
            prog.load().map_err(|e| xdp_err("loading into the kernel", e))?;

            let mut me = Program {
                ebpf,
                attached: Vec::new(),
                slots: slots.clone(),
                xsks,
                stats,
                blocklist: Map(Arc::new(Mutex::new(blocks))),
                redirect,
            };
            // On an error below, dropping `me` detaches what was already attached.
            for (iface, &idx) in slots.iter().zip(&indices) {
                let prog = me.xdp()?;
                let tries: &[XdpMode] = match mode {
                    XdpMode::Auto => &[XdpMode::Driver, XdpMode::Generic],
                    XdpMode::Driver => &[XdpMode::Driver],
                    XdpMode::Generic => &[XdpMode::Generic],
                };
                let mut failures = Vec::new();
                for &m in tries {
                    let aya_mode = if m == XdpMode::Driver { AyaMode::Driver } else { AyaMode::Skb };
                    match prog.attach_to_if_index(idx, aya_mode) {
                        Ok(link) => {
                            me.attached.push(Attached { iface: iface.clone(), mode: m, link });
                            failures.clear();
                            break;
                        }
                        Err(e) => failures.push(format!("{} mode: {e}", mode_name(m))),
                    }
                }
                if !failures.is_empty() {
                    return Err(LiveError::Xdp(format!("{iface}: attaching: {}", failures.join("; "))));
                }
            }
            Ok(me)
        }

        fn xdp(&mut self) -> Result<&mut Xdp, LiveError> {
            self.ebpf
                .program_mut(PROGRAM)
                .ok_or_else(|| LiveError::Xdp(format!("the object has no program {PROGRAM}")))?
                .try_into()
                .map_err(|e| xdp_err("program type", e))
        }

        fn socket_index(&self, iface: &str, queue: u32) -> Result<u32, LiveError> {
            let slot = self.slots.iter().position(|s| s == iface).ok_or_else(|| {
                LiveError::unsupported(iface, "the XDP program is not attached to this interface")
            })?;
            if queue >= MAX_QUEUES {
                return Err(LiveError::unsupported(
                    iface,
                    format!("queue {queue}: the XDP program serves queues 0 to {}", MAX_QUEUES - 1),
                ));
            }
            Ok(slot as u32 * MAX_QUEUES + queue)
        }

        pub fn register_socket(&mut self, iface: &str, queue: u32, fd: RawFd) -> Result<(), LiveError> {
            let idx = self.socket_index(iface, queue)?;
            self.xsks.set(idx, fd, 0).map_err(|e| xdp_err(&format!("{iface} queue {queue}: registering the AF_XDP socket"), e))
        }

        pub fn unregister_socket(&mut self, iface: &str, queue: u32) -> Result<(), LiveError> {
            let idx = self.socket_index(iface, queue)?;
            match self.xsks.unset(idx) {
                Ok(()) => Ok(()),
                Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                Err(e) => Err(xdp_err(&format!("{iface} queue {queue}: removing the AF_XDP socket"), e)),
            }
        }

        pub fn blocklist(&self) -> Map {
            self.blocklist.clone()
        }

        pub fn stats(&self) -> Result<[u64; xdp_stat::COUNT as usize], LiveError> {
            let mut out = [0u64; xdp_stat::COUNT as usize];
            for (i, o) in out.iter_mut().enumerate() {
                let per_cpu = self.stats.get(&(i as u32), 0).map_err(|e| xdp_err("reading XDP_STATS", e))?;
                *o = per_cpu.iter().sum();
            }
            Ok(out)
        }

        pub fn mode(&self, iface: &str) -> Option<XdpMode> {
            self.attached.iter().find(|a| a.iface == iface).map(|a| a.mode)
        }

        pub fn describe(&self) -> String {
            let mut parts: Vec<String> = Vec::new();
            for m in [XdpMode::Driver, XdpMode::Generic] {
                let ifaces: Vec<&str> = self.attached.iter().filter(|a| a.mode == m).map(|a| a.iface.as_str()).collect();
                if !ifaces.is_empty() {
                    parts.push(format!("{} mode on {}", mode_name(m), ifaces.join(", ")));
                }
            }
            parts.join("; ")
        }
    }

    fn mode_name(m: XdpMode) -> &'static str {
        match m {
            XdpMode::Driver => "driver",
            XdpMode::Generic => "generic",
            XdpMode::Auto => "auto",
        }
    }

    impl Drop for Program {
        fn drop(&mut self) {
            // Dropping `ebpf` would detach too; doing it here, first, keeps the order plain
            // (links before the program and maps they use).
            let links: Vec<XdpLinkId> = self.attached.drain(..).map(|a| a.link).collect();
            if let Ok(prog) = self.xdp() {
                for link in links {
                    let _ = prog.detach(link);
                }
            }
        }
    }

    #[derive(Clone)]
    pub struct Map(Arc<Mutex<HashMap<MapData, Key, Value>>>);

    impl std::fmt::Debug for Map {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Blocklist")
        }
    }

    fn entry(key: &Key, v: &Value, now: u64) -> BlockedAddr {
        BlockedAddr { ip: BlockKey { addr: *key }.ip(), expires_in: time_left(v[0], now), hits: v[1], bytes: v[2] }
    }

    impl Map {
        fn lock(&self) -> MutexGuard<'_, HashMap<MapData, Key, Value>> {
            // The map lives in the kernel: a thread that panicked holding the lock cannot
            // have left it half-written.
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }

        pub fn block(&self, ip: IpAddr, duration: Option<Duration>) -> Result<(), LiveError> {
            let key = BlockKey::from_ip(ip).addr;
            let mut map = self.lock();
            let (hits, bytes) = match map.get(&key, 0) {
                Ok(v) => (v[1], v[2]),
                Err(MapError::KeyNotFound) => (0, 0),
                Err(e) => return Err(xdp_err(&format!("block map: reading {ip}"), e)),
            };
            let expires = deadline(monotonic_ns(), duration);
            map.insert(key, [expires, hits, bytes], 0).map_err(|e| xdp_err(&format!("block map: adding {ip}"), e))
        }

        pub fn unblock(&self, ip: IpAddr) -> Result<bool, LiveError> {
            let key = BlockKey::from_ip(ip).addr;
            let mut map = self.lock();
            match map.remove(&key) {
                Ok(()) => Ok(true),
                Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
                Err(MapError::KeyNotFound) => Ok(false),
                Err(e) => Err(xdp_err(&format!("block map: removing {ip}"), e)),
            }
        }

        fn entries(map: &HashMap<MapData, Key, Value>) -> Result<Vec<(Key, Value)>, LiveError> {
            map.iter().collect::<Result<Vec<_>, _>>().map_err(|e| xdp_err("block map: listing", e))
        }

        pub fn list(&self) -> Result<Vec<BlockedAddr>, LiveError> {
            let map = self.lock();
            let now = monotonic_ns();
            let mut out: Vec<BlockedAddr> = Self::entries(&map)?.iter().map(|(k, v)| entry(k, v, now)).collect();
            out.sort_by_key(|b| b.ip);
            Ok(out)
        }

        pub fn sweep(&self) -> Result<Vec<BlockedAddr>, LiveError> {
            let mut map = self.lock();
            let now = monotonic_ns();
            let mut out = Vec::new();
            for (k, _) in Self::entries(&map)?.into_iter().filter(|(_, v)| v[0] != 0 && now >= v[0]) {
                // Read again: the counters may have moved since the listing (not the
                // expiry, which only this handle writes, under the lock).
                let v = match map.get(&k, 0) {
                    Ok(v) => v,
                    Err(MapError::KeyNotFound) => continue,
                    Err(e) => return Err(xdp_err("block map: sweeping", e)),
                };
                match map.remove(&k) {
                    Ok(()) => out.push(entry(&k, &v, now)),
                    Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(xdp_err("block map: sweeping", e)),
                }
            }
            out.sort_by_key(|b| b.ip);
            Ok(out)
        }
    }
}

#[cfg(not(portcullis_xdp))]
mod imp {
    //! Without the object: nothing can be attached, so `Program` (and the `Map` only a
    //! program hands out) cannot exist.

    use std::net::IpAddr;
    use std::os::fd::RawFd;
    use std::time::Duration;

    use portcullis_common::xdp::xdp_stat;

    use super::BlockedAddr;
    use crate::live::{LiveError, Topology, XdpMode};

    const WHY: &str = env!("PORTCULLIS_XDP_MISSING");

    #[derive(Debug)]
    pub enum Program {}

    #[derive(Clone, Debug)]
    pub enum Map {}

    impl Program {
        pub fn attach(_: &Topology, _: XdpMode, _: bool) -> Result<Self, LiveError> {
            Err(LiveError::NotBuilt("XDP", WHY))
        }
        pub fn register_socket(&mut self, _: &str, _: u32, _: RawFd) -> Result<(), LiveError> {
            match *self {}
        }
        pub fn unregister_socket(&mut self, _: &str, _: u32) -> Result<(), LiveError> {
            match *self {}
        }
        pub fn blocklist(&self) -> Map {
            match *self {}
        }
        pub fn stats(&self) -> Result<[u64; xdp_stat::COUNT as usize], LiveError> {
            match *self {}
        }
        pub fn mode(&self, _: &str) -> Option<XdpMode> {
            match *self {}
        }
        pub fn describe(&self) -> String {
            match *self {}
        }
    }

    impl Map {
        pub fn block(&self, _: IpAddr, _: Option<Duration>) -> Result<(), LiveError> {
            match *self {}
        }
        pub fn unblock(&self, _: IpAddr) -> Result<bool, LiveError> {
            match *self {}
        }
        pub fn list(&self) -> Result<Vec<BlockedAddr>, LiveError> {
            match *self {}
        }
        pub fn sweep(&self) -> Result<Vec<BlockedAddr>, LiveError> {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(deadline(1_000, None), 0);
        assert_eq!(deadline(1_000, Some(Duration::from_nanos(500))), 1_500);
        assert_eq!(deadline(0, Some(Duration::ZERO)), 1, "a zero duration never means forever");
        assert_eq!(deadline(u64::MAX - 1, Some(Duration::from_secs(10))), u64::MAX);
        assert_eq!(time_left(0, 5), None);
        assert_eq!(time_left(1_500, 1_000), Some(Duration::from_nanos(500)));
        assert_eq!(time_left(1_500, 2_000), Some(Duration::ZERO));
    }

    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<XdpProgram>();
        send_sync::<Blocklist>();
    }
}
