//! The SSH identification string (RFC 4253 §4.2): `SSH-protoversion-softwareversion
//! [SP comments] CR LF`. It fills `ssh.proto` and `ssh.software` for each side; the
//! encrypted part after it is not parsed.

use portcullis_common::Direction;

use crate::{AppConfig, AppProto, AppStats, Buf, SshSide, TxLog, Txs};

/// The banner may be at most 255 bytes including CR LF.
const MAX_BANNER: usize = 255;

#[derive(Debug, Default)]
pub(crate) struct SshState {
    line: [Vec<u8>; 2],
    done: [bool; 2],
    tx: Option<u64>,
}

impl SshState {
    pub(crate) fn parse(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        let d = usize::from(dir == Direction::ToClient);
        if self.done[d] {
            return;
        }
        let line = &mut self.line[d];
        let end = data.iter().position(|&b| b == b'\n');
        let take = end.map_or(data.len(), |e| e + 1);
        line.extend_from_slice(&data[..take.min(MAX_BANNER + 1 - line.len().min(MAX_BANNER + 1))]);
        if end.is_none() && line.len() <= MAX_BANNER {
            return;
        }
        self.done[d] = true;
        if line.len() > MAX_BANNER {
            stats.anomaly("ssh.invalid_banner");
            return;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let Some(rest) = text.strip_prefix(b"SSH-") else {
            stats.anomaly("ssh.invalid_banner");
            return;
        };
        let (proto, software) = match rest.iter().position(|&b| b == b'-') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => {
                stats.anomaly("ssh.invalid_banner");
                return;
            }
        };
        // Suricata's ssh.software stops at the first space (the comments follow it).
        let software = software.split(|&b| b == b' ').next().unwrap_or(software);
        let id = match self.tx {
            Some(id) => id,
            None => {
                let id = txs.open(AppProto::Ssh, cfg.max_txs, stats).id;
                self.tx = Some(id);
                id
            }
        };
        if let Some(tx) = txs.get_mut(id) {
            tx.push(Buf::SshProto, dir, proto);
            tx.push(Buf::SshSoftware, dir, software);
            tx.complete[d] = true;
            if !matches!(tx.log, TxLog::Ssh(_)) {
                tx.log = TxLog::Ssh(Box::default());
            }
            if let TxLog::Ssh(l) = &mut tx.log {
                let side = SshSide {
                    proto_version: String::from_utf8_lossy(proto).into_owned(),
                    software_version: String::from_utf8_lossy(software).into_owned(),
                };
                match dir {
                    Direction::ToServer => l.client = Some(side),
                    Direction::ToClient => l.server = Some(side),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_fill_proto_and_software_per_side() {
        let (cfg, mut txs, mut st) = (AppConfig::default(), Txs::default(), AppStats::default());
        let mut s = SshState::default();
        s.parse(&cfg, Direction::ToServer, b"SSH-2.0-Open", &mut txs, &mut st);
        s.parse(&cfg, Direction::ToServer, b"SSH_8.9p1 Ubuntu-3\r\nrest", &mut txs, &mut st);
        s.parse(&cfg, Direction::ToClient, b"SSH-1.99-libssh\r\n", &mut txs, &mut st);
        let tx = &txs.as_slice()[0];
        assert_eq!(tx.get(Buf::SshSoftware, Direction::ToServer).next(), Some(&b"OpenSSH_8.9p1"[..]));
        assert_eq!(tx.get(Buf::SshProto, Direction::ToClient).next(), Some(&b"1.99"[..]));
        assert!(st.anomalies.is_empty());
        s = SshState::default();
        s.parse(&cfg, Direction::ToServer, b"SSH-garbage\r\n", &mut txs, &mut st);
        assert_eq!(st.anomalies.get("ssh.invalid_banner"), Some(&1));
    }
}
