//! libpcap live capture: the last fallback, for machines where neither AF_XDP nor AF_PACKET
//! rings can be opened (or where an operator asks for it).
//!
//! One port per interface when tapping, one port for the pair inline (frames that pass are
//! sent on the other interface with `pcap_sendpacket`). Handles are non-blocking in immediate
//! mode; a poll waits in poll(2) on their selectable descriptors for at most its timeout.
//! libpcap hands out one packet at a time, so a batch is copied into a buffer the port reuses.
//!
//! Built with the `pcap` cargo feature (default); without it [`open`] says so.

use std::time::Duration;

use super::{Capture, LiveConfig, LiveError, LiveFrame, PortStats, Topology};

#[cfg(feature = "pcap")]
pub use imp::{open, PcapPort};

#[cfg(not(feature = "pcap"))]
pub use stub::{open, PcapPort};

#[cfg(feature = "pcap")]
mod imp {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    use pcap::{Active, Capture as PcapCapture, Direction, Precision};
    use portcullis_common::Timestamp;

    use super::{Capture, Duration, LiveConfig, LiveError, LiveFrame, PortStats, Topology};
    use crate::live::{CaptureKind, Port};

    /// How often a poll refreshes libpcap's counters (`pcap_stats` needs the handle mutably,
    /// [`PcapPort::stats`] has it shared).
    const STATS_EVERY: Duration = Duration::from_millis(200);

    /// libpcap's read timeout, which is also its TPACKET_V3 block timeout: the longest a
    /// frame waits in a block that is not full. Inline it is added to the latency of every
    /// frame of sparse traffic (a ping through the bridge: 9 ms average at 10 ms), so inline
    /// uses the smallest the kernel takes.
    const BLOCK_TIMEOUT_MS: i32 = 10;
    const BLOCK_TIMEOUT_INLINE_MS: i32 = 1;

    struct Handle {
        iface: String,
        cap: PcapCapture<Active>,
        side: u8,
        dropped: u64,
    }

    impl std::fmt::Debug for Handle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Handle").field("iface", &self.iface).field("side", &self.side).finish_non_exhaustive()
        }
    }

    /// One libpcap port: one interface tapping, both interfaces of the pair inline.
    #[derive(Debug)]
    pub struct PcapPort {
        handles: Vec<Handle>,
        inline: bool,
        stats: PortStats,
        stats_at: Instant,
        /// The batch's bytes, and each frame's (handle, start, len, orig_len, ts).
        buf: Vec<u8>,
        metas: Vec<(usize, usize, usize, u32, Timestamp)>,
        frames: Vec<LiveFrame<'static>>,
        verdicts: Vec<bool>,
        pollfds: Vec<libc::pollfd>,
        /// Handle the next batch starts reading from, so one busy interface cannot starve the
        /// other.
        next: usize,
    }

    pub fn open(cfg: &LiveConfig, topology: &Topology) -> Result<Capture, LiveError> {
        let inline = topology.is_inline();
        let mut handles = Vec::new();
        for (i, iface) in topology.interfaces().into_iter().enumerate() {
            handles.push(open_handle(iface, cfg, inline, i as u8)?);
        }
        let ports = if inline {
            vec![Port::Pcap(PcapPort::new(handles, true))]
        } else {
            handles.into_iter().map(|h| Port::Pcap(PcapPort::new(vec![h], false))).collect()
        };
        let note = format!("pcap: {} port(s), immediate mode, snaplen {}", ports.len(), cfg.pcap.snaplen);
        Ok(Capture { kind: CaptureKind::Pcap, ports, xdp: None, notes: vec![note] })
    }

    fn open_handle(iface: &str, cfg: &LiveConfig, inline: bool, side: u8) -> Result<Handle, LiveError> {
        let pc = &cfg.pcap;
        let err = |what: &'static str| move |e: pcap::Error| LiveError::io(iface, what, io::Error::other(e.to_string()));
        let cap = PcapCapture::from_device(iface)
            .map_err(err("opening the libpcap handle"))?
            .promisc(pc.promisc)
            .snaplen(pc.snaplen.min(i32::MAX as u32) as i32)
            .buffer_size(pc.buffer_size.min(i32::MAX as u32) as i32)
            // Not immediate mode: there libpcap falls back to TPACKET_V2, whose slots are
            // snaplen-sized (a 32 MiB buffer holds ~500 frames at snaplen 65535), and drops
            // most of a burst. TPACKET_V3 packs frames into blocks handed over after at most
            // this many milliseconds.
            .immediate_mode(false)
            .timeout(if inline { BLOCK_TIMEOUT_INLINE_MS } else { BLOCK_TIMEOUT_MS })
            .precision(Precision::Micro)
            .open()
            .map_err(err("activating the libpcap handle"))?
            .setnonblock()
            .map_err(err("making the libpcap handle non-blocking"))?;
        if inline {
            // What this port sends on an interface must not come back as captured.
            cap.direction(Direction::In).map_err(err("capturing received frames only (pcap_setdirection)"))?;
        }
        Ok(Handle { iface: iface.to_string(), cap, side, dropped: 0 })
    }

    impl PcapPort {
        fn new(handles: Vec<Handle>, inline: bool) -> Self {
            let pollfds = handles
                .iter()
                .map(|h| libc::pollfd { fd: h.cap.as_raw_fd(), events: libc::POLLIN, revents: 0 })
                .collect();
            PcapPort {
                handles,
                inline,
                stats: PortStats::default(),
                stats_at: Instant::now(),
                buf: Vec::new(),
                metas: Vec::new(),
                frames: Vec::new(),
                verdicts: Vec::new(),
                pollfds,
                next: 0,
            }
        }

        pub fn poll<F>(&mut self, max: usize, timeout: Duration, mut f: F) -> Result<usize, LiveError>
        where
            F: FnMut(&[LiveFrame<'_>], &mut [bool]),
        {
            if max == 0 {
                return Ok(0);
            }
            let deadline = Instant::now() + timeout;
            loop {
                if self.stats_at.elapsed() >= STATS_EVERY {
                    self.refresh_stats();
                }
                self.read_batch(max)?;
                let n = self.metas.len();
                if n > 0 {
                    let mut frames = recycle(std::mem::take(&mut self.frames));
                    for &(h, start, len, orig_len, ts) in &self.metas {
                        frames.push(LiveFrame { ts, data: &self.buf[start..start + len], orig_len, side: self.handles[h].side });
                    }
                    self.verdicts.clear();
                    self.verdicts.resize(n, true);
                    f(&frames, &mut self.verdicts);
                    self.frames = recycle(frames);
                    self.stats.packets += n as u64;
                    for (i, &(h, start, len, ..)) in self.metas.iter().enumerate() {
                        self.stats.bytes += len as u64;
                        if !self.inline {
                            continue;
                        }
                        if !self.verdicts[i] {
                            self.stats.dropped += 1;
                            continue;
                        }
                        let out = &mut self.handles[1 - h];
                        match out.cap.sendpacket(&self.buf[start..start + len]) {
                            Ok(()) => self.stats.forwarded += 1,
                            Err(_) => self.stats.tx_failed += 1,
                        }
                    }
                    return Ok(n);
                }
                let now = Instant::now();
                if now >= deadline {
                    return Ok(0);
                }
                let left = deadline - now;
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
                let ms = if Duration::from_millis(ms as u64) < left { ms.saturating_add(1) } else { ms };
                for p in &mut self.pollfds {
                    p.revents = 0;
                }
                // The only unsafe in this module: poll(2) on the handles' selectable fds (the
                // pcap crate has no multi-handle wait).
                #[allow(unsafe_code)]
                // SAFETY: `pollfds` is a live, exclusively borrowed array of `len` pollfd structs.
                let rc = unsafe { libc::poll(self.pollfds.as_mut_ptr(), self.pollfds.len() as libc::nfds_t, ms) };
                if rc < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(LiveError::io(&self.handles[0].iface, "waiting for frames (poll)", e));
                    }
                }
            }
        }

        /// Copies up to `max` waiting packets into `buf`/`metas`, taking handles in turn. One
        /// `pcap_dispatch` per handle and round hands over everything libpcap has buffered
        /// (one packet per `pcap_next_ex` call costs about three times as much).
        fn read_batch(&mut self, max: usize) -> Result<(), LiveError> {
            self.buf.clear();
            self.metas.clear();
            let k = self.handles.len();
            let mut idle = 0;
            let mut h = self.next % k;
            while self.metas.len() < max && idle < k {
                let (buf, metas) = (&mut self.buf, &mut self.metas);
                let handle = &mut self.handles[h];
                let want = max - metas.len();
                let got = handle.cap.dispatch(Some(want), |p| {
                    let start = buf.len();
                    buf.extend_from_slice(p.data);
                    let ts = Timestamp::from_secs_micros(p.header.ts.tv_sec, p.header.ts.tv_usec);
                    metas.push((h, start, p.data.len(), p.header.len, ts));
                });
                match got {
                    Ok(0) => idle += 1,
                    Ok(_) => idle = 0,
                    Err(e) => {
                        return Err(LiveError::io(&handle.iface, "reading packets", io::Error::other(e.to_string())));
                    }
                }
                h = (h + 1) % k;
            }
            self.next = h;
            Ok(())
        }

        fn refresh_stats(&mut self) {
            for h in &mut self.handles {
                if let Ok(s) = h.cap.stats() {
                    h.dropped = u64::from(s.dropped);
                }
            }
            self.stats_at = Instant::now();
        }

        /// Counters; `rx_dropped` is libpcap's `ps_drop` as of the last refresh (every 200 ms
        /// while the port is polled).
        pub fn stats(&self) -> PortStats {
            let mut s = self.stats;
            s.rx_dropped = self.handles.iter().map(|h| h.dropped).sum();
            s
        }

        pub fn backlog(&self) -> usize {
            0
        }

        /// `"veth0: pcap"`, inline `"veth0,veth1: pcap"`.
        pub fn describe(&self) -> String {
            let names: Vec<&str> = self.handles.iter().map(|h| h.iface.as_str()).collect();
            format!("{}: pcap", names.join(","))
        }
    }

    /// Reuses a frame vector's allocation for frames of another lifetime (emptied first, so the
    /// map never runs; std collects `into_iter().map()` of a `Vec` in place).
    fn recycle<'b>(mut v: Vec<LiveFrame<'_>>) -> Vec<LiveFrame<'b>> {
        v.clear();
        v.into_iter().map(|f| LiveFrame { ts: f.ts, data: &[], orig_len: f.orig_len, side: f.side }).collect()
    }
}

#[cfg(not(feature = "pcap"))]
mod stub {
    use super::*;

    /// Stands in for the libpcap port when the `pcap` feature is off; never constructed.
    #[derive(Debug)]
    pub struct PcapPort {
        _private: (),
    }

    pub fn open(_cfg: &LiveConfig, _topology: &Topology) -> Result<Capture, LiveError> {
        Err(LiveError::NotBuilt("libpcap", "build with the `pcap` feature"))
    }

    impl PcapPort {
        pub fn poll<F>(&mut self, _max: usize, _timeout: Duration, _f: F) -> Result<usize, LiveError>
        where
            F: FnMut(&[LiveFrame<'_>], &mut [bool]),
        {
            Ok(0)
        }

        pub fn stats(&self) -> PortStats {
            PortStats::default()
        }

        pub fn backlog(&self) -> usize {
            0
        }

        pub fn describe(&self) -> String {
            String::from("pcap (not built)")
        }
    }
}
