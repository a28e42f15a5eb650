//! `filetype: syslog`: one message per event to the local syslog socket (`/dev/log`), framed
//! as glibc's syslog(3) frames it for that socket: RFC 3164 without the hostname,
//! `<PRI>Mmm dd hh:mm:ss identity[pid]: message`. rsyslog and journald read it; the
//! hostname is added by the daemon that receives it. It is written here rather than through
//! libc's `syslog()` so the socket can be chosen (tests), sends never block (a full socket
//! buffer counts overflow), and every event is counted.

use std::io::Write;
use std::path::Path;

use crate::unix::Datagrams;
use crate::{Facility, Level, SinkStats};

#[derive(Debug)]
pub struct SyslogSink {
    socket: Datagrams,
    /// `<PRI>` and, after the timestamp, ` identity[pid]: `.
    pri: String,
    tag: String,
    buf: Vec<u8>,
}

impl SyslogSink {
    pub fn open(socket: &Path, identity: &str, facility: Facility, level: Level, notes: &mut Vec<String>) -> SyslogSink {
        SyslogSink {
            socket: Datagrams::open("syslog", socket, notes),
            pri: format!("<{}>", u32::from(facility.0) * 8 + u32::from(level.0)),
            tag: format!(" {identity}[{}]: ", std::process::id()),
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn write(&mut self, line: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(self.pri.as_bytes());
        // RFC 3164's TIMESTAMP: local time, day of month padded with a space.
        let _ = write!(self.buf, "{}", chrono::Local::now().format("%b %e %H:%M:%S"));
        self.buf.extend_from_slice(self.tag.as_bytes());
        self.buf.extend_from_slice(line);
        self.socket.send(&self.buf);
    }

    pub fn reconnect(&mut self) {
        self.socket.reconnect();
    }

    pub fn stats(&self) -> SinkStats {
        self.socket.stats()
    }
}
