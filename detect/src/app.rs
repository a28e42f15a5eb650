//! App-layer rules: the buffers a rule inspects in a transaction (`http.uri`, `dns.query`,
//! `tls.sni`, ...) with their transformations, the app-layer keywords that are not buffers
//! (`urilen`, `tls.version`, `ssl_version`, `dns.opcode`, `app-layer-protocol`), and the
//! inspection of one transaction.
//!
//! Semantics (Suricata 7's transaction-based detection, simplified where it does not change
//! which alerts fire): a rule with a sticky buffer or a transaction keyword is evaluated on a
//! transaction when a packet updated it, in the packet's direction; every buffer list of the
//! rule must match some instance of its buffer in that transaction; a rule alerts at most
//! once per transaction. Buffers are final when the parser publishes them, so a list that
//! cannot match yet (its buffer is not there) is simply tried again on the next update.

use portcullis_applayer::{AppProto, Buf, Num, Tx};
use portcullis_common::Direction;
use portcullis_rules::AppMatch;

use crate::payload::{Inspect, Op};

/// One transformation of a sticky buffer.
#[derive(Debug)]
pub(crate) enum Transform {
    DotPrefix,
    StripWhitespace,
    CompressWhitespace,
    ToLower,
    ToUpper,
    Md5,
    Sha1,
    Sha256,
    UrlDecode,
    Xor(Vec<u8>),
    /// The first capture group (or the whole match) of the expression; no match leaves the
    /// buffer as it was.
    PcreXform(pcre2::bytes::Regex),
}

impl Transform {
    /// `to_lowercase`, `xor:"0d0ac8ff"`, `pcrexform:"^(.*)$"`, as the parser keeps them.
    pub(crate) fn parse(text: &str) -> Result<Transform, String> {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v.trim())),
            None => (text, None),
        };
        Ok(match (name, value) {
            ("dotprefix", None) => Transform::DotPrefix,
            ("strip_whitespace", None) => Transform::StripWhitespace,
            ("compress_whitespace", None) => Transform::CompressWhitespace,
            ("to_lowercase", None) => Transform::ToLower,
            ("to_uppercase", None) => Transform::ToUpper,
            ("to_md5", None) => Transform::Md5,
            ("to_sha1", None) => Transform::Sha1,
            ("to_sha256", None) => Transform::Sha256,
            ("url_decode", None) => Transform::UrlDecode,
            ("xor", Some(v)) => {
                let hex = v.trim_matches('"');
                if hex.is_empty() || hex.len() % 2 != 0 {
                    return Err(format!("xor key `{hex}` is not an even number of hex digits"));
                }
                let key = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| format!("xor key `{hex}` is not hex"))?;
                Transform::Xor(key)
            }
            ("pcrexform", Some(v)) => {
                let re = v.trim_matches('"');
                let re = pcre2::bytes::RegexBuilder::new()
                    .jit_if_available(true)
                    .build(re)
                    .map_err(|e| format!("pcrexform: PCRE2 rejects /{re}/: {e}"))?;
                Transform::PcreXform(re)
            }
            _ => return Err(format!("transformation `{text}` is not supported")),
        })
    }

    fn apply(&self, input: &[u8], out: &mut Vec<u8>) {
        use md5::Digest as _;
        out.clear();
        match self {
            Transform::DotPrefix => {
                out.push(b'.');
                out.extend_from_slice(input);
            }
            Transform::StripWhitespace => out.extend(input.iter().copied().filter(|b| !is_space(*b))),
            Transform::CompressWhitespace => {
                // Suricata keeps the first whitespace byte of each run.
                let mut prev_space = false;
                for &b in input {
                    let s = is_space(b);
                    if !(s && prev_space) {
                        out.push(b);
                    }
                    prev_space = s;
                }
            }
            Transform::ToLower => out.extend(input.iter().map(u8::to_ascii_lowercase)),
            Transform::ToUpper => out.extend(input.iter().map(u8::to_ascii_uppercase)),
            Transform::Md5 => out.extend_from_slice(&md5::Md5::digest(input)),
            Transform::Sha1 => out.extend_from_slice(&sha1::Sha1::digest(input)),
            Transform::Sha256 => out.extend_from_slice(&sha2::Sha256::digest(input)),
            Transform::UrlDecode => {
                let mut i = 0;
                while i < input.len() {
                    let b = input[i];
                    let hex = |c: u8| (c as char).to_digit(16);
                    if b == b'%' && i + 2 < input.len() {
                        if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                            out.push((h * 16 + l) as u8);
                            i += 3;
                            continue;
                        }
                    }
                    out.push(if b == b'+' { b' ' } else { b });
                    i += 1;
                }
            }
            Transform::Xor(key) => out.extend(input.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k)),
            Transform::PcreXform(re) => match re.captures(input) {
                Ok(Some(c)) => out.extend_from_slice(c.get(1).or_else(|| c.get(0)).map_or(input, |m| m.as_bytes())),
                _ => out.extend_from_slice(input),
            },
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Applies `ts` in order to `input`; the result is in `out` (`tmp` is scratch).
pub(crate) fn transform(ts: &[Transform], input: &[u8], out: &mut Vec<u8>, tmp: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(input);
    for t in ts {
        t.apply(out, tmp);
        std::mem::swap(out, tmp);
    }
}

/// One buffer list of a rule: a buffer, its transformations and its keywords.
#[derive(Debug)]
pub(crate) struct AppPart {
    pub buf: Buf,
    /// Index of (buffer, transformations) in the engine's buffer keys.
    pub key: u32,
    pub ops: Vec<Op>,
    pub any_nocase: bool,
}

/// The app-layer side of a compiled rule.
#[derive(Debug, Default)]
pub(crate) struct AppProgram {
    /// The protocol the rule needs: from the header (`alert http`) or its buffers.
    pub proto: Option<AppProto>,
    /// `app-layer-protocol:` checks: protocol, negated.
    pub flow_protos: Vec<(AppProto, bool)>,
    pub parts: Vec<AppPart>,
    pub tx_checks: Vec<AppMatch>,
    /// The direction whose packets evaluate the rule: `flow:to_server`/`to_client`, else
    /// what its buffers imply (a response buffer makes it `to_client`, request buffers only
    /// `to_server`), as Suricata classifies signatures; `None` for both.
    pub dir: Option<Direction>,
}

impl AppProgram {
    /// Evaluated per transaction (it has buffers or transaction keywords); otherwise only
    /// the flow's protocol restricts a packet rule.
    pub(crate) fn tx_based(&self) -> bool {
        !self.parts.is_empty() || !self.tx_checks.is_empty()
    }

    /// The flow-level conditions: the header's protocol and `app-layer-protocol`. As
    /// Suricata, nothing matches while the flow's protocol is unknown.
    pub(crate) fn flow_matches(&self, flow_proto: AppProto) -> bool {
        if let Some(p) = self.proto {
            if flow_proto != p {
                return false;
            }
        }
        self.flow_protos.iter().all(|&(p, neg)| flow_proto != AppProto::Unknown && (flow_proto == p) != neg)
    }
}

/// Transaction keywords that are not buffers.
pub(crate) fn tx_check(m: &AppMatch, tx: &Tx) -> bool {
    match m {
        AppMatch::UriLen { cmp, raw } => {
            let b = if *raw { Buf::HttpUriRaw } else { Buf::HttpUri };
            tx.get(b, Direction::ToServer).any(|u| cmp.matches(u.len() as u64))
        }
        AppMatch::TlsVersion(v) => tx.nums(Num::TlsVersion).any(|(_, x)| x == u64::from(*v)),
        AppMatch::SslVersion(list) => {
            let seen: Vec<u64> = tx.nums(Num::TlsVersion).map(|(_, x)| x).collect();
            !seen.is_empty()
                && list.iter().any(|&(v, neg)| if neg { !seen.contains(&u64::from(v)) } else { seen.contains(&u64::from(v)) })
        }
        AppMatch::DnsOpcode { opcode, negated } => tx.nums(Num::DnsOpcode).any(|(_, x)| (x == u64::from(*opcode)) != *negated),
        AppMatch::Protocol { .. } => true,
    }
}

/// Scratch for inspecting one transaction's buffers: each (buffer, transformations) key's
/// transformed instances, made once per transaction and shared by the prefilter scan and
/// every candidate rule's buffer list, and a lowercase copy for `nocase` contents.
#[derive(Debug, Default)]
pub(crate) struct BufScratch {
    /// Transformed instances, back to back; `spans` says which key each belongs to.
    data: Vec<u8>,
    spans: Vec<(u32, std::ops::Range<usize>)>,
    /// Keys whose instances are in `data` for the current transaction.
    filled: Vec<u32>,
    out: Vec<u8>,
    tmp: Vec<u8>,
    pub(crate) lower: Vec<u8>,
}

impl BufScratch {
    /// Forgets the previous transaction's transformed buffers.
    pub(crate) fn start_tx(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.filled.clear();
    }

    /// Transforms the instances of key `key` (buffer `buf`, transformations `ts`) of `tx`,
    /// evaluated in `dir`, unless this transaction's are there already.
    pub(crate) fn fill(&mut self, key: u32, buf: Buf, ts: &[Transform], tx: &Tx, dir: Direction) {
        if self.filled.contains(&key) {
            return;
        }
        self.filled.push(key);
        for inst in tx.get_for(buf, dir) {
            transform(ts, inst, &mut self.out, &mut self.tmp);
            let start = self.data.len();
            self.data.extend_from_slice(&self.out);
            self.spans.push((key, start..self.data.len()));
        }
    }

    /// The transformed instances of `key` that [`BufScratch::fill`] made.
    pub(crate) fn instances(&self, key: u32) -> impl Iterator<Item = &[u8]> + '_ {
        spans_of(&self.spans, &self.data, key)
    }

    /// [`BufScratch::instances`] and the lowercase scratch, borrowed together.
    pub(crate) fn instances_and_lower(&mut self, key: u32) -> (impl Iterator<Item = &[u8]> + '_, &mut Vec<u8>) {
        (spans_of(&self.spans, &self.data, key), &mut self.lower)
    }
}

fn spans_of<'a>(spans: &'a [(u32, std::ops::Range<usize>)], data: &'a [u8], key: u32) -> impl Iterator<Item = &'a [u8]> + 'a {
    spans.iter().filter(move |(k, _)| *k == key).map(move |(_, r)| &data[r.clone()])
}

/// Whether one buffer list matches one of `instances` (its buffer's, transformed).
pub(crate) fn part_matches<'a>(
    part: &AppPart,
    instances: impl Iterator<Item = &'a [u8]>,
    limit: u32,
    lower: &mut Vec<u8>,
) -> bool {
    for bytes in instances {
        let low: &[u8] = if part.any_nocase {
            lower.clear();
            lower.extend(bytes.iter().map(u8::to_ascii_lowercase));
            lower
        } else {
            bytes
        };
        if Inspect::new(bytes, low, 0, limit).run(&part.ops) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(spec: &str, input: &[u8]) -> Vec<u8> {
        let ts: Vec<Transform> = spec.split(';').filter(|s| !s.is_empty()).map(|s| Transform::parse(s).unwrap()).collect();
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        transform(&ts, input, &mut out, &mut tmp);
        out
    }

    #[test]
    fn transformations_do_what_suricata_documents() {
        assert_eq!(t("dotprefix", b"evil.com"), b".evil.com");
        assert_eq!(t("strip_whitespace", b" a \t b\r\n"), b"ab");
        assert_eq!(t("compress_whitespace", b"a  \t b"), b"a b");
        assert_eq!(t("to_lowercase;dotprefix", b"A.COM"), b".a.com");
        assert_eq!(t("to_uppercase", b"get"), b"GET");
        assert_eq!(t("url_decode", b"%2Fa+b%zz%4"), b"/a b%zz%4");
        assert_eq!(t("xor:\"0102\"", b"\x01\x02\x03"), b"\x00\x00\x02");
        assert_eq!(t("pcrexform:\"^GET (\\S+)\"", b"GET /x HTTP/1.1"), b"/x");
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
        assert_eq!(t("to_md5", b"abc")[..4], [0x90, 0x01, 0x50, 0x98]);
        // sha256("abc") = ba7816bf...
        assert_eq!(t("to_sha256", b"abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
        // sha1("abc") = a9993e36...
        assert_eq!(t("to_sha1", b"abc")[..4], [0xa9, 0x99, 0x3e, 0x36]);
        assert!(Transform::parse("from_base64").is_err());
        assert!(Transform::parse("xor:\"abc\"").is_err());
    }
}
