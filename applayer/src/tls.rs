//! The clear-text part of a TLS (SSLv3 to TLS 1.3) handshake: ClientHello, ServerHello and
//! the server's Certificate message. One transaction per flow, as Suricata keeps one TLS
//! transaction.
//!
//! Records are framed here, byte by byte across TCP chunks, so only handshake bytes are
//! buffered: the payloads of handshake records are joined into one buffer per direction and
//! each complete handshake message (which may span records) is parsed with rusticata's
//! `tls-parser`; certificates are read with `x509-parser`. A handshake message longer than
//! [`AppConfig::tls_max_handshake`] is `tls.handshake_too_long`, a record longer than TLS
//! allows (2^14 + 2048 bytes) `tls.record_too_long`, and either stops parsing the flow. The
//! buffer holds at most the cap plus one record.
//!
//! A direction is finished when its ChangeCipherSpec or its first application-data record
//! arrives: what follows is encrypted. TLS 1.3 sends a dummy ChangeCipherSpec for
//! middleboxes (RFC 8446 D.4), possibly before a second ClientHello or the ServerHello that
//! follows a HelloRetryRequest; when the flow is (or offers) TLS 1.3 it is skipped and the
//! encrypted application-data records end the direction. `tls-parser` does not read SSLv2
//! records: an SSLv2-compatible ClientHello is counted as `tls.sslv2` and that direction is
//! left; the server's TLS records are still parsed.

use md5::{Digest, Md5};
use portcullis_common::Direction;
use sha1::Sha1;
use tls_parser::{parse_tls_message_handshake, TlsMessage, TlsMessageHandshake};

use crate::{AppConfig, AppProto, AppStats, Buf, Ja3, Num, TlsLog, Tx, TxLog, Txs};

/// RFC 5246 §6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes.
const MAX_RECORD: usize = (1 << 14) + 2048;

/// ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256 of
/// "HelloRetryRequest".
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;

/// Record framing and handshake reassembly of one direction.
#[derive(Debug, Default)]
struct Side {
    hdr: [u8; 5],
    hdr_len: usize,
    /// Content type and payload bytes still to come of the current record.
    rec_type: u8,
    rec_left: usize,
    records: u64,
    /// Handshake bytes not yet consumed as whole messages.
    hs: Vec<u8>,
    /// Encrypted data started, or the direction closed: nothing more to read.
    done: bool,
}

/// One flow's TLS parser.
#[derive(Debug, Default)]
pub struct TlsState {
    sides: [Side; 2],
    tx: Option<u64>,
    /// Gave up on the flow (malformed, too long, SSLv2).
    failed: bool,
    client_hello: bool,
    server_hello: bool,
    certificate: bool,
    /// The client listed TLS 1.3 in supported_versions.
    client_offers_13: bool,
    /// The version the server chose (ServerHello or HelloRetryRequest), if seen.
    negotiated: Option<u16>,
}

impl TlsState {
    pub fn parse(&mut self, cfg: &AppConfig, dir: Direction, mut data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        let d = usize::from(dir == Direction::ToClient);
        while !data.is_empty() && !self.failed && !self.sides[d].done {
            let side = &mut self.sides[d];
            if side.rec_left == 0 {
                let n = (5 - side.hdr_len).min(data.len());
                side.hdr[side.hdr_len..side.hdr_len + n].copy_from_slice(&data[..n]);
                side.hdr_len += n;
                data = &data[n..];
                if side.hdr_len < 5 {
                    return;
                }
                side.hdr_len = 0;
                self.record_header(dir, txs, stats);
                continue;
            }
            let n = side.rec_left.min(data.len());
            side.rec_left -= n;
            if side.rec_type == CT_HANDSHAKE {
                side.hs.extend_from_slice(&data[..n]);
                data = &data[n..];
                self.handshake_messages(cfg, dir, txs, stats);
            } else {
                // Alerts and heartbeats: nothing to inspect.
                data = &data[n..];
            }
        }
    }

    /// The direction ended: it adds nothing more.
    pub fn close(&mut self, _cfg: &AppConfig, dir: Direction, txs: &mut Txs, _stats: &mut AppStats) {
        self.finish(dir, txs);
    }

    /// A whole record header is in `hdr`.
    fn record_header(&mut self, dir: Direction, txs: &mut Txs, stats: &mut AppStats) {
        let d = usize::from(dir == Direction::ToClient);
        let side = &mut self.sides[d];
        let [ctype, major, minor, l0, l1] = side.hdr;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let first = side.records == 0;
        side.records += 1;
        if !(CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&ctype) {
            // An SSLv2 record header has the high bit of its 2-byte length set. An
            // SSLv2-compatible ClientHello is not parsed, but a server answering in TLS
            // records still is (Suricata does the same; its certificate is what rules see).
            if first && ctype & 0x80 != 0 {
                stats.anomaly("tls.sslv2");
                return self.finish(dir, txs);
            }
            return self.fail("tls.invalid_record_type", txs, stats);
        }
        if major != 3 || minor > 4 {
            return self.fail("tls.invalid_record_version", txs, stats);
        }
        if len > MAX_RECORD {
            return self.fail("tls.record_too_long", txs, stats);
        }
        let tls13 = self.negotiated == Some(0x0304) || (self.negotiated.is_none() && self.client_offers_13);
        match ctype {
            CT_APPLICATION_DATA => self.finish(dir, txs),
            CT_CHANGE_CIPHER_SPEC if !tls13 => self.finish(dir, txs),
            _ => {
                let side = &mut self.sides[d];
                side.rec_type = ctype;
                side.rec_left = len;
            }
        }
    }

    /// Parses every complete handshake message in the buffer.
    fn handshake_messages(&mut self, cfg: &AppConfig, dir: Direction, txs: &mut Txs, stats: &mut AppStats) {
        let d = usize::from(dir == Direction::ToClient);
        let hs = std::mem::take(&mut self.sides[d].hs);
        let mut at = 0;
        while hs.len() - at >= 4 && !self.failed && !self.sides[d].done {
            let len = usize::from(hs[at + 1]) << 16 | usize::from(hs[at + 2]) << 8 | usize::from(hs[at + 3]);
            if 4 + len > cfg.tls_max_handshake {
                self.fail("tls.handshake_too_long", txs, stats);
                break;
            }
            if hs.len() - at < 4 + len {
                break;
            }
            self.handshake(cfg, dir, &hs[at..at + 4 + len], txs, stats);
            at += 4 + len;
        }
        if !self.failed && !self.sides[d].done {
            let mut hs = hs;
            hs.drain(..at);
            self.sides[d].hs = hs;
        }
    }

    /// One complete handshake message (4-byte header included).
    fn handshake(&mut self, cfg: &AppConfig, dir: Direction, msg: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        let wanted = match (dir, msg[0]) {
            (Direction::ToServer, 1) => !self.client_hello,
            (Direction::ToClient, 2) => !self.server_hello,
            (Direction::ToClient, 11) => !self.certificate,
            _ => false,
        };
        if !wanted {
            return;
        }
        let parsed = match parse_tls_message_handshake(msg) {
            Ok((_, TlsMessage::Handshake(h))) => h,
            _ => {
                stats.anomaly("tls.invalid_handshake_message");
                return;
            }
        };
        match parsed {
            TlsMessageHandshake::ClientHello(ch) => {
                self.client_hello = true;
                let ext = extensions(ch.ext.unwrap_or(&[]), stats);
                let tx = self.tx(cfg, txs, stats);
                client_hello(tx, ch.version.0, ch.random, &ch.ciphers.iter().map(|c| c.0).collect::<Vec<_>>(), &ext);
                self.client_offers_13 = ext.supported_versions.contains(&0x0304);
            }
            TlsMessageHandshake::ServerHello(sh) => {
                let ext = extensions(sh.ext.unwrap_or(&[]), stats);
                let version = ext.selected_version.unwrap_or(sh.version.0);
                self.negotiated = Some(version);
                if sh.random == HRR_RANDOM {
                    // A HelloRetryRequest: the real ServerHello follows the second
                    // ClientHello.
                    return;
                }
                self.server_hello = true;
                let tx = self.tx(cfg, txs, stats);
                server_hello(tx, sh.version.0, version, sh.random, sh.cipher.0, &ext);
            }
            TlsMessageHandshake::ServerHelloV13Draft18(sh) => {
                self.server_hello = true;
                self.negotiated = Some(sh.version.0);
                let ext = extensions(sh.ext.unwrap_or(&[]), stats);
                let tx = self.tx(cfg, txs, stats);
                server_hello(tx, sh.version.0, sh.version.0, sh.random, sh.cipher.0, &ext);
            }
            TlsMessageHandshake::Certificate(c) => {
                self.certificate = true;
                let tx = self.tx(cfg, txs, stats);
                let chain: Vec<&[u8]> = c.cert_chain.iter().map(|c| c.data).collect();
                certificates(tx, &chain, stats);
            }
            _ => stats.anomaly("tls.invalid_handshake_message"),
        }
    }

    fn tx<'t>(&mut self, cfg: &AppConfig, txs: &'t mut Txs, stats: &mut AppStats) -> &'t mut Tx {
        let id = match self.tx {
            Some(id) if txs.iter().any(|t| t.id == id) => id,
            _ => {
                let tx = txs.open(AppProto::Tls, cfg.max_txs, stats);
                tx.log = TxLog::Tls(Box::default());
                self.tx = Some(tx.id);
                tx.id
            }
        };
        txs.get_mut(id).expect("the transaction was just found or opened")
    }

    /// Nothing more comes from `dir`.
    fn finish(&mut self, dir: Direction, txs: &mut Txs) {
        let d = usize::from(dir == Direction::ToClient);
        let side = &mut self.sides[d];
        side.done = true;
        side.hs = Vec::new();
        if let Some(tx) = self.tx.and_then(|id| txs.get_mut(id)) {
            if !tx.complete[d] {
                tx.complete[d] = true;
                tx.updated = true;
            }
        }
    }

    fn fail(&mut self, anomaly: &'static str, txs: &mut Txs, stats: &mut AppStats) {
        stats.anomaly(anomaly);
        self.failed = true;
        self.finish(Direction::ToServer, txs);
        self.finish(Direction::ToClient, txs);
    }
}

/// What the hello extensions say, in wire order.
#[derive(Debug, Default)]
struct Extensions<'a> {
    types: Vec<u16>,
    sni: Option<&'a [u8]>,
    groups: Vec<u16>,
    point_formats: Vec<u8>,
    /// ClientHello supported_versions.
    supported_versions: Vec<u16>,
    /// ServerHello supported_versions (one version).
    selected_version: Option<u16>,
}

/// Walks an extension block: framing by hand (JA3 needs every type as sent, known or not),
/// contents of the few that matter. A block that does not frame is counted and what came
/// before it is kept.
fn extensions<'a>(mut b: &'a [u8], stats: &mut AppStats) -> Extensions<'a> {
    let mut e = Extensions::default();
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    while !b.is_empty() {
        if b.len() < 4 || b.len() < 4 + usize::from(u16_at(b, 2)) {
            stats.anomaly("tls.invalid_handshake_message");
            break;
        }
        let (t, len) = (u16_at(b, 0), usize::from(u16_at(b, 2)));
        let data = &b[4..4 + len];
        b = &b[4 + len..];
        e.types.push(t);
        match t {
            // server_name: list length, then (type, length, name); host_name is type 0.
            0 if data.len() >= 5 && data[2] == 0 => {
                let n = usize::from(u16_at(data, 3));
                if let Some(name) = data.get(5..5 + n) {
                    e.sni.get_or_insert(name);
                }
            }
            // supported_groups: a u16 list.
            10 if data.len() >= 2 => {
                let n = usize::from(u16_at(data, 0)).min(data.len() - 2);
                e.groups = data[2..2 + n].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            }
            // ec_point_formats: a u8 list.
            11 if !data.is_empty() => {
                let n = usize::from(data[0]).min(data.len() - 1);
                e.point_formats = data[1..1 + n].to_vec();
            }
            // supported_versions: a u8-length list in a ClientHello, one u16 in a ServerHello.
            43 if data.len() == 2 => e.selected_version = Some(u16_at(data, 0)),
            43 if !data.is_empty() => {
                let n = usize::from(data[0]).min(data.len() - 1);
                e.supported_versions =
                    data[1..1 + n].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            }
            _ => {}
        }
    }
    e
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn join<T: ToString>(it: impl Iterator<Item = T>) -> String {
    it.map(|v| v.to_string()).collect::<Vec<_>>().join("-")
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn log(tx: &mut Tx) -> &mut TlsLog {
    if !matches!(tx.log, TxLog::Tls(_)) {
        tx.log = TxLog::Tls(Box::default());
    }
    match &mut tx.log {
        TxLog::Tls(l) => l,
        _ => unreachable!("set just above"),
    }
}

fn client_hello(tx: &mut Tx, version: u16, random: &[u8], ciphers: &[u16], ext: &Extensions<'_>) {
    let dir = Direction::ToServer;
    tx.push(Buf::TlsRandom, dir, random);
    // The offered version is the hello's legacy_version (0x0303 for a TLS 1.3 client too),
    // as Suricata's ssl_version reads it; supported_versions only decides the server side.
    tx.push_num(Num::TlsVersion, dir, u64::from(version));
    if let Some(sni) = ext.sni {
        tx.push(Buf::TlsSni, dir, sni);
        log(tx).sni = Some(String::from_utf8_lossy(sni).into_owned());
    }
    let string = format!(
        "{},{},{},{},{}",
        version,
        join(ciphers.iter().filter(|c| !grease(**c))),
        join(ext.types.iter().filter(|t| !grease(**t))),
        join(ext.groups.iter().filter(|g| !grease(**g))),
        join(ext.point_formats.iter()),
    );
    let hash = md5_hex(&string);
    tx.push(Buf::Ja3String, dir, string.as_bytes());
    tx.push(Buf::Ja3Hash, dir, hash.as_bytes());
    log(tx).ja3 = Some(Ja3 { hash, string });
}

fn server_hello(tx: &mut Tx, legacy: u16, version: u16, random: &[u8], cipher: u16, ext: &Extensions<'_>) {
    let dir = Direction::ToClient;
    tx.push(Buf::TlsRandom, dir, random);
    tx.push_num(Num::TlsVersion, dir, u64::from(version));
    let string = format!("{},{},{}", legacy, cipher, join(ext.types.iter().filter(|t| !grease(**t))));
    let hash = md5_hex(&string);
    tx.push(Buf::Ja3sString, dir, string.as_bytes());
    tx.push(Buf::Ja3sHash, dir, hash.as_bytes());
    let l = log(tx);
    l.version = Some(version_name(version));
    l.ja3s = Some(Ja3 { hash, string });
}

/// Every certificate fills `tls.certs`; the first (the server's own) the rest.
fn certificates(tx: &mut Tx, chain: &[&[u8]], stats: &mut AppStats) {
    let dir = Direction::ToClient;
    for der in chain {
        tx.push(Buf::TlsCerts, dir, der);
    }
    let Some(der) = chain.first() else {
        return;
    };
    let cert = match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c,
        Err(_) => {
            stats.anomaly("tls.invalid_certificate");
            return;
        }
    };
    // Suricata formats names with x509-parser's Display: RDNs in certificate order,
    // "C=US, O=Let's Encrypt, CN=R3".
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    let serial = hex_colon(cert.raw_serial(), true);
    let fingerprint = hex_colon(&Sha1::digest(der), false);
    tx.push(Buf::TlsCertSubject, dir, subject.as_bytes());
    tx.push(Buf::TlsCertIssuer, dir, issuer.as_bytes());
    tx.push(Buf::TlsCertSerial, dir, serial.as_bytes());
    tx.push(Buf::TlsCertFingerprint, dir, fingerprint.as_bytes());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                tx.push(Buf::TlsSubjectAltName, dir, n.as_bytes());
            }
        }
    }
    let validity = cert.validity();
    let (notbefore, notafter) = (iso_time(validity.not_before.timestamp()), iso_time(validity.not_after.timestamp()));
    let l = log(tx);
    l.subject = Some(subject);
    l.issuerdn = Some(issuer);
    l.serial = Some(serial);
    l.fingerprint = Some(fingerprint);
    l.notbefore = Some(notbefore);
    l.notafter = Some(notafter);
}

/// "00:AB:..." (Suricata's serial, upper case) or "ab:cd:..." (its fingerprint).
fn hex_colon(b: &[u8], upper: bool) -> String {
    let parts: Vec<String> =
        b.iter().map(|x| if upper { format!("{x:02X}") } else { format!("{x:02x}") }).collect();
    parts.join(":")
}

/// Seconds since the epoch as "2024-01-01T00:00:00" (UTC), as Suricata logs validity.
fn iso_time(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from a day count (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The version as Suricata 7's EVE writes it.
fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft-{}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    /// A ClientHello record with GREASE in the ciphers, extensions, groups and
    /// supported_versions, SNI "portcullis.example". Built with a one-off Python script
    /// (struct.pack), which also computed the JA3 below from its own lists with hashlib.md5,
    /// independently of this parser.
    const CLIENT_HELLO: &str = "16030100b2010000ae0303000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee000c0a0a13011302c02bc02f009c010000591a1a0000000000170015000012706f727463756c6c69732e6578616d706c6500170000ff01000100000a000a00082a2a001d00170018000b0002010000230000001000050003026832002b0007063a3a030403034a4a000100";
    const JA3_STRING: &str = "771,4865-4866-49195-49199-156,0-23-65281-10-11-35-16-43,29-23-24,0";
    const JA3_HASH: &str = "a0fb3dfae60a876d5687b32d9c078ebf";

    /// A TLS 1.2 ServerHello handshake message (no record header), same script; JA3S
    /// "771,49199,65281-11-35" hashed by Python to ccc514751b175866924439bdbb5bba34.
    const SERVER_HELLO: &str = "0200003703036465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828300c02f00000fff01000100000b0002010000230000";

    /// A self-signed P-256 certificate generated for this test with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 30
    /// -subj "/C=US/O=Portcullis Test/CN=test.portcullis.example" -addext
    /// "subjectAltName=DNS:test.portcullis.example,DNS:*.portcullis.example,IP:192.0.2.1"
    /// -set_serial 0x00c0ffee1234`; openssl reported serial C0FFEE1234, SHA-1 fingerprint
    /// CA:C9:83:C0:97:EC:45:8D:32:39:70:EE:E1:BC:51:09:6B:B1:B6:A7, notBefore
    /// 2026-12-06 15:14:52Z, notAfter 2027-01-05 15:14:52Z.
    const CERT: &str = "3082021b308201c1a003020102020600c0ffee1234300a06082a8648ce3d0403023049310b300906035504061302555331183016060355040a0c0f506f727463756c6c697320546573743120301e06035504030c17746573742e706f727463756c6c69732e6578616d706c65301e170d3236313230363135313435325a170d3237303130353135313435325a3049310b300906035504061302555331183016060355040a0c0f506f727463756c6c697320546573743120301e06035504030c17746573742e706f727463756c6c69732e6578616d706c653059301306072a8648ce3d020106082a8648ce3d0301070342000407d036e704a7d9ed02c1dfa89cf4e5240476c352239f82a331b58e93e2e9b824cd1a7b75a308079c00aed3512c90c6e87ca07b47d9d36e75819259e01746ab94a38194308191301d0603551d0e04160414c2d95a948d17e938712ce0f892fff2d67c574a8d301f0603551d23041830168014c2d95a948d17e938712ce0f892fff2d67c574a8d300f0603551d130101ff040530030101ff303e0603551d11043730358217746573742e706f727463756c6c69732e6578616d706c6582142a2e706f727463756c6c69732e6578616d706c658704c0000201300a06082a8648ce3d0403020348003045022023145a3060e43a24325524fb7f1c4c574a5243d2543bb805e75d9fe17a2a4185022100e2f44d28792ca50f70b7df320e21f30f3f52efd71863aa56e1781cb2ffb7841b";

    fn record(ctype: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ctype, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    fn certificate_msg(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        handshake(11, &body)
    }

    fn one(txs: &Txs, buf: Buf, dir: Direction) -> Option<String> {
        let tx = txs.as_slice().first()?;
        tx.get(buf, dir).next().map(|b| String::from_utf8_lossy(b).into_owned())
    }

    fn tls_log(txs: &Txs) -> TlsLog {
        match &txs.as_slice()[0].log {
            TxLog::Tls(l) => (**l).clone(),
            other => panic!("not a TLS log: {other:?}"),
        }
    }

    #[test]
    fn client_hello_fills_sni_ja3_random_and_version_however_it_is_split() {
        let ch = unhex(CLIENT_HELLO);
        let cfg = AppConfig::default();
        let mut results = Vec::new();
        for chunk in [ch.len(), 1, 7] {
            let (mut txs, mut st, mut s) = (Txs::default(), AppStats::default(), TlsState::default());
            for c in ch.chunks(chunk) {
                s.parse(&cfg, Direction::ToServer, c, &mut txs, &mut st);
            }
            assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
            assert_eq!(one(&txs, Buf::TlsSni, Direction::ToServer).as_deref(), Some("portcullis.example"));
            assert_eq!(one(&txs, Buf::Ja3String, Direction::ToServer).as_deref(), Some(JA3_STRING));
            assert_eq!(one(&txs, Buf::Ja3Hash, Direction::ToServer).as_deref(), Some(JA3_HASH));
            let tx = &txs.as_slice()[0];
            assert_eq!(tx.get(Buf::TlsRandom, Direction::ToServer).next(), Some(&(0..32).collect::<Vec<u8>>()[..]));
            assert_eq!(tx.nums(Num::TlsVersion).collect::<Vec<_>>(), vec![(Direction::ToServer, 0x0303)]);
            let l = tls_log(&txs);
            assert_eq!(l.sni.as_deref(), Some("portcullis.example"));
            assert_eq!(l.ja3, Some(Ja3 { hash: JA3_HASH.into(), string: JA3_STRING.into() }));
            results.push(tx.buffers().map(|(b, d, v)| (b, d, v.to_vec())).collect::<Vec<_>>());
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn server_flight_spanning_records_fills_ja3s_and_certificate_fields() {
        let cfg = AppConfig::default();
        let (mut txs, mut st, mut s) = (Txs::default(), AppStats::default(), TlsState::default());
        s.parse(&cfg, Direction::ToServer, &unhex(CLIENT_HELLO), &mut txs, &mut st);
        let cert = unhex(CERT);
        let mut flight = unhex(SERVER_HELLO);
        flight.extend_from_slice(&certificate_msg(&[&cert, b"not a certificate"]));
        flight.extend_from_slice(&handshake(14, &[]));
        // The flight cut into three records, the certificate message spanning two of them;
        // each record handed over in 100-byte chunks.
        let mut stream = Vec::new();
        for part in [&flight[..70], &flight[70..300], &flight[300..]] {
            stream.extend_from_slice(&record(22, part));
        }
        for c in stream.chunks(100) {
            s.parse(&cfg, Direction::ToClient, c, &mut txs, &mut st);
        }
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
        let to_client = Direction::ToClient;
        assert_eq!(one(&txs, Buf::Ja3sString, to_client).as_deref(), Some("771,49199,65281-11-35"));
        assert_eq!(one(&txs, Buf::Ja3sHash, to_client).as_deref(), Some("ccc514751b175866924439bdbb5bba34"));
        let subject = "C=US, O=Portcullis Test, CN=test.portcullis.example";
        assert_eq!(one(&txs, Buf::TlsCertSubject, to_client).as_deref(), Some(subject));
        assert_eq!(one(&txs, Buf::TlsCertIssuer, to_client).as_deref(), Some(subject));
        assert_eq!(one(&txs, Buf::TlsCertSerial, to_client).as_deref(), Some("00:C0:FF:EE:12:34"));
        let fp = "ca:c9:83:c0:97:ec:45:8d:32:39:70:ee:e1:bc:51:09:6b:b1:b6:a7";
        assert_eq!(one(&txs, Buf::TlsCertFingerprint, to_client).as_deref(), Some(fp));
        let tx = &txs.as_slice()[0];
        let sans: Vec<&[u8]> = tx.get(Buf::TlsSubjectAltName, to_client).collect();
        assert_eq!(sans, vec![&b"test.portcullis.example"[..], b"*.portcullis.example"]);
        let certs: Vec<&[u8]> = tx.get(Buf::TlsCerts, to_client).collect();
        assert_eq!(certs, vec![&cert[..], b"not a certificate"]);
        assert_eq!(tx.get(Buf::TlsRandom, to_client).next(), Some(&(100..132).collect::<Vec<u8>>()[..]));
        assert_eq!(tx.nums(Num::TlsVersion).collect::<Vec<_>>(), vec![(Direction::ToServer, 0x0303), (to_client, 0x0303)]);
        let l = tls_log(&txs);
        assert_eq!(l.version.as_deref(), Some("TLS 1.2"));
        assert_eq!(l.serial.as_deref(), Some("00:C0:FF:EE:12:34"));
        assert_eq!(l.fingerprint.as_deref(), Some(fp));
        assert_eq!(l.notbefore.as_deref(), Some("2026-12-06T15:14:52"));
        assert_eq!(l.notafter.as_deref(), Some("2027-01-05T15:14:52"));
        assert_eq!(l.issuerdn.as_deref(), Some(subject));
        assert_eq!(tx.complete, [false, false]);

        // ChangeCipherSpec ends each direction of a TLS 1.2 flow, with no anomaly; what
        // follows (an encrypted Finished) is not read.
        let ccs = record(20, &[1]);
        let mut tail = ccs.clone();
        tail.extend_from_slice(&record(22, &[0xde; 40]));
        s.parse(&cfg, Direction::ToServer, &tail, &mut txs, &mut st);
        assert_eq!(txs.as_slice()[0].complete, [true, false]);
        s.parse(&cfg, to_client, &tail, &mut txs, &mut st);
        assert_eq!(txs.as_slice()[0].complete, [true, true]);
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
    }

    #[test]
    fn tls13_server_hello_negotiates_by_supported_versions_and_skips_the_dummy_ccs() {
        let cfg = AppConfig::default();
        let (mut txs, mut st, mut s) = (Txs::default(), AppStats::default(), TlsState::default());
        s.parse(&cfg, Direction::ToServer, &unhex(CLIENT_HELLO), &mut txs, &mut st);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]);
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut stream = record(22, &handshake(2, &body));
        stream.extend_from_slice(&record(20, &[1]));
        s.parse(&cfg, Direction::ToClient, &stream, &mut txs, &mut st);
        assert_eq!(txs.as_slice()[0].complete, [false, false], "the dummy CCS does not end TLS 1.3");
        assert_eq!(tls_log(&txs).version.as_deref(), Some("TLS 1.3"));
        assert_eq!(txs.as_slice()[0].nums(Num::TlsVersion).last(), Some((Direction::ToClient, 0x0304)));
        s.parse(&cfg, Direction::ToClient, &record(23, &[0x55; 60]), &mut txs, &mut st);
        assert_eq!(txs.as_slice()[0].complete, [false, true]);
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
    }

    #[test]
    fn caps_sslv2_and_garbage_are_anomalies_that_end_the_flow() {
        let small = AppConfig { tls_max_handshake: 100, ..AppConfig::default() };
        let (mut txs, mut st, mut s) = (Txs::default(), AppStats::default(), TlsState::default());
        s.parse(&small, Direction::ToServer, &unhex(CLIENT_HELLO), &mut txs, &mut st);
        assert_eq!(st.anomalies.get("tls.handshake_too_long"), Some(&1));
        assert!(txs.is_empty());
        // Nothing more is parsed.
        s.parse(&small, Direction::ToClient, &record(22, &unhex(SERVER_HELLO)), &mut txs, &mut st);
        assert!(txs.is_empty());

        let cfg = AppConfig::default();
        let mut s = TlsState::default();
        s.parse(&cfg, Direction::ToServer, &[22, 3, 1, 0xff, 0xff], &mut txs, &mut st);
        assert_eq!(st.anomalies.get("tls.record_too_long"), Some(&1));

        // An SSLv2-compatible ClientHello: 2-byte header with the high bit, type 1.
        let mut s = TlsState::default();
        s.parse(&cfg, Direction::ToServer, &[0x80, 0x2e, 1, 3, 1, 0, 0x15, 0, 0, 0, 0x10], &mut txs, &mut st);
        assert_eq!(st.anomalies.get("tls.sslv2"), Some(&1));
        // The server's TLS records are still parsed.
        let before = txs.len();
        s.parse(&cfg, Direction::ToClient, &record(22, &unhex(SERVER_HELLO)), &mut txs, &mut st);
        assert_eq!(txs.len(), before + 1, "the ServerHello after an SSLv2 ClientHello opens the transaction");

        // A malformed ClientHello inside a well-framed record is counted, not fatal.
        let mut s = TlsState::default();
        s.parse(&cfg, Direction::ToServer, &record(22, &handshake(1, &[3, 3, 0])), &mut txs, &mut st);
        assert_eq!(st.anomalies.get("tls.invalid_handshake_message"), Some(&1));

        // Pseudo-random garbage, whole and in pieces, after a valid record header too.
        let mut x = 0x9e37_79b9_u32;
        for len in 0..300 {
            let mut bytes = crate::garbage(&mut x, len);
            for prefix in [&[][..], &[22, 3, 3, 1, 0][..], &[22, 3, 3, 1, 0, 1, 0, 0, 0xf0][..]] {
                let mut s = TlsState::default();
                let mut b = prefix.to_vec();
                b.append(&mut bytes.clone());
                for c in b.chunks(13) {
                    s.parse(&cfg, Direction::ToServer, c, &mut txs, &mut st);
                    s.parse(&cfg, Direction::ToClient, c, &mut txs, &mut st);
                }
                s.close(&cfg, Direction::ToServer, &mut txs, &mut st);
            }
            bytes.clear();
        }
    }

    #[test]
    fn helpers_format_as_suricata() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00");
        assert_eq!(iso_time(1_704_067_200), "2024-01-01T00:00:00");
        assert_eq!(iso_time(951_827_696), "2000-02-29T12:34:56");
        assert_eq!(version_name(0x0301), "TLSv1");
        assert_eq!(version_name(0x0300), "SSLv3");
        assert!(grease(0x0a0a) && grease(0xfafa) && !grease(0x0a1a) && !grease(0x1301));
    }

    /// Real ClientHellos from the shared captures, when $PORTCULLIS_DATA is set: every
    /// handshake parses without a panic and a ClientHello fed byte by byte gives what it
    /// gives whole. Reads the TCP payloads of port-443 segments of a classic pcap.
    #[test]
    fn shared_captures_parse_the_same_whole_and_byte_by_byte() {
        let Some(dir) = std::env::var_os("PORTCULLIS_DATA") else {
            println!("skipped: PORTCULLIS_DATA is not set");
            return;
        };
        let path = std::path::Path::new(&dir).join("pcaps/benign/zeek-tls/chrome-34-google.pcap");
        let Ok(pcap) = std::fs::read(&path) else {
            println!("skipped: {} is absent", path.display());
            return;
        };
        let hellos = client_payloads(&pcap);
        assert!(!hellos.is_empty(), "no port-443 client payload in {}", path.display());
        let cfg = AppConfig::default();
        let first = &hellos[0];
        let run = |chunk: usize| {
            let (mut txs, mut st, mut s) = (Txs::default(), AppStats::default(), TlsState::default());
            for c in first.chunks(chunk) {
                s.parse(&cfg, Direction::ToServer, c, &mut txs, &mut st);
            }
            (one(&txs, Buf::TlsSni, Direction::ToServer), one(&txs, Buf::Ja3Hash, Direction::ToServer))
        };
        let whole = run(first.len());
        assert!(whole.0.is_some() && whole.1.is_some(), "{whole:?}");
        assert_eq!(run(1), whole);
    }

    /// TCP payloads sent to port 443 in an Ethernet/IPv4 classic pcap, one per segment.
    fn client_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let caplen = u32::from_le_bytes([pcap[at + 8], pcap[at + 9], pcap[at + 10], pcap[at + 11]]) as usize;
            let Some(frame) = pcap.get(at + 16..at + 16 + caplen) else { break };
            at += 16 + caplen;
            if frame.len() < 34 || frame[12..14] != [8, 0] || frame[23] != 6 {
                continue;
            }
            let ip = &frame[14..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
            let Some(tcp) = ip.get(ihl..total) else { continue };
            if tcp.len() < 20 || u16::from_be_bytes([tcp[2], tcp[3]]) != 443 {
                continue;
            }
            let off = usize::from(tcp[12] >> 4) * 4;
            if let Some(p) = tcp.get(off..).filter(|p| !p.is_empty()) {
                out.push(p.to_vec());
            }
        }
        out
    }
}
