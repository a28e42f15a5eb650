//! Network namespaces for privileged tests: created by the test, deleted by a guard's `Drop`
//! (so also when an assertion fails and the test unwinds), with nothing created in the
//! machine's own namespace.
//!
//! Namespaces are named `pcx-<tag>-<pid>-<n>`; links are created directly inside them (a veth
//! disappears with either of its namespaces), so names only have to be unique per namespace
//! and at most 15 bytes. Threads enter a namespace with `setns` ([`Netns::spawn`]); a socket
//! keeps the namespace it was created in whatever thread uses it later.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether the test can create namespaces; prints why not when it cannot.
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("skipping {test}: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces");
        return false;
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipping {test}: the `ip` command (iproute2) is missing");
            false
        }
    }
}

/// A network namespace deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `pcx-<tag>-<pid>-<n>`, with loopback up and IPv6 off (no router solicitations or
    /// duplicate address probes in the traffic the test counts).
    pub fn new(tag: &str) -> io::Result<Netns> {
        let name = format!("pcx-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`, failing with its stderr.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args)).map(|_| ())
    }

    /// `ip netns exec NAME CMD...`, failing with its stderr.
    pub fn exec(&self, cmd: &[&str]) -> io::Result<Output> {
        run(Command::new("ip").args(["netns", "exec", &self.name]).args(cmd))
    }

    /// Like [`Netns::exec`] but only reports failure (for best-effort settings such as
    /// offloads a driver may not have).
    pub fn try_exec(&self, cmd: &[&str]) {
        if let Err(e) = self.exec(cmd) {
            eprintln!("{}: {} failed (ignored): {e}", self.name, cmd.join(" "));
        }
    }

    /// Brings `dev` up with `addr` (CIDR) if given and a fixed MAC.
    pub fn link_up(&self, dev: &str, mac: &str, addr: Option<&str>) -> io::Result<()> {
        self.ip(&["link", "set", "dev", dev, "address", mac])?;
        if let Some(a) = addr {
            self.ip(&["addr", "add", a, "dev", dev])?;
        }
        self.ip(&["link", "set", "dev", dev, "up"])
    }

    /// A permanent neighbour entry, so the test's first packets do not wait for ARP.
    pub fn neigh(&self, ip: &str, mac: &str, dev: &str) -> io::Result<()> {
        self.ip(&["neigh", "replace", ip, "lladdr", mac, "dev", dev, "nud", "permanent"])
    }

    /// Turns off checksum and segmentation offloads on `dev`. Needed on the veths of hosts
    /// whose traffic crosses a userspace bridge: with them on, veth hands over frames with
    /// partial checksums and 64 KiB TSO super-frames, which a raw socket forwards as they are
    /// (bad checksums, or bigger than the MTU).
    pub fn offloads_off(&self, dev: &str) {
        self.try_exec(&["ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"]);
    }

    /// Moves the calling thread into this namespace. Only for threads the test owns.
    pub fn enter(&self) -> io::Result<()> {
        let f = File::open(format!("/run/netns/{}", self.name))?;
        // SAFETY: setns takes a valid namespace fd (`f` is open for the call) and changes only
        // the calling thread's network namespace; no memory is involved.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a new thread inside this namespace.
    pub fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = self.name.clone();
        std::thread::spawn(move || {
            Netns { name: path }.enter_and_forget().expect("setns into the test namespace");
            f()
        })
    }

    /// `enter` for a temporary handle that must not delete the namespace when dropped.
    fn enter_and_forget(self) -> io::Result<()> {
        let r = self.enter();
        std::mem::forget(self);
        r
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its links (and their veth peers elsewhere).
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("warning: could not delete network namespace {}: {e}", self.name);
        }
    }
}

/// A veth pair with one end in each namespace (names at most 15 bytes).
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) -> io::Result<()> {
    assert!(a_dev.len() <= 15 && b_dev.len() <= 15, "interface names are at most 15 bytes");
    a.ip(&["link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b.name()])
}

/// Transmits each frame, byte for byte, on `dev` of the calling thread's namespace through a
/// raw packet socket (call it from a thread made by [`Netns::spawn`]). For frames the kernel
/// cannot be asked to build, such as 802.1Q-tagged ones on a kernel without VLAN devices.
#[allow(unsafe_code)]
pub fn send_raw(dev: &str, frames: &[Vec<u8>]) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let name = std::ffi::CString::new(dev).map_err(io::Error::other)?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket has no memory preconditions; the result is checked and then owned.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    for f in frames {
        sll.sll_addr[..6].copy_from_slice(&f[..6]);
        // SAFETY: `f` and `sll` are valid for the call and the lengths passed are theirs.
        let rc = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                f.as_ptr().cast(),
                f.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(out)
}
