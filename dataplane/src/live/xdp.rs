//! The XDP program (`kernels/xdp/portcullis.bpf.c`): loading, attaching, the AF_XDP socket
//! map and the block map. (Being written: see the live-dataplane issue.)

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{LiveError, Topology, XdpMode};

/// The loaded program, attached to every interface of a topology; detached when dropped.
#[derive(Debug)]
pub struct XdpProgram {
    _private: (),
}

impl XdpProgram {
    /// Loads the program and attaches it to every interface of `topology`. With `redirect`,
    /// frames not dropped by the block map go to the AF_XDP socket registered for their
    /// interface and queue (the kernel stack when there is none); without, they pass on.
    pub fn attach(_topology: &Topology, _mode: XdpMode, _redirect: bool) -> Result<Self, LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }

    /// Directs frames of `iface`'s RX queue `queue` to the AF_XDP socket `fd`.
    pub fn register_socket(&mut self, _iface: &str, _queue: u32, _fd: RawFd) -> Result<(), LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }

    /// A handle on the block map, shareable between threads.
    pub fn blocklist(&self) -> Blocklist {
        Blocklist { _private: () }
    }

    /// The program's counters summed over CPUs, indexed by
    /// [`portcullis_common::xdp::xdp_stat`].
    pub fn stats(&self) -> Result<[u64; portcullis_common::xdp::xdp_stat::COUNT as usize], LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }

    /// `"driver mode on veth0, veth1"`.
    pub fn describe(&self) -> String {
        String::new()
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
    _private: (),
}

impl Blocklist {
    /// Drops every frame from `ip` in the XDP program, for `duration` or until unblocked.
    /// Blocking an address again replaces its expiry and keeps its counters.
    pub fn block(&self, _ip: IpAddr, _duration: Option<Duration>) -> Result<(), LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }

    /// Removes `ip`; false when it was not blocked.
    pub fn unblock(&self, _ip: IpAddr) -> Result<bool, LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }

    pub fn list(&self) -> Result<Vec<BlockedAddr>, LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }

    /// Removes expired entries and returns them with their final counters.
    pub fn sweep(&self) -> Result<Vec<BlockedAddr>, LiveError> {
        Err(LiveError::NotBuilt("XDP", "not written yet"))
    }
}
