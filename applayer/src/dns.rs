//! DNS over UDP (one message per datagram) and over TCP (RFC 1035 §4.2.2: each message
//! behind a 2-byte length). One transaction per query message; the response with the same
//! id and the same first question completes it, and a response without a query gets a
//! transaction of its own.
//!
//! The wire format is read with NLnet Labs' `domain` crate (0.11, no default features):
//! among `hickory-proto`, `simple-dns` and `domain` it is the one that parses lazily, so the
//! questions are read and each later record is only framed (owner name, fixed fields,
//! RDLENGTH within the message) without interpreting its RDATA. `simple-dns` parses every
//! record's RDATA eagerly and rejects the whole message when one record of a type it knows
//! is malformed (Suricata 7 keeps such a message's questions); `hickory-proto` pulls in an
//! async runtime's worth of dependencies even with default features off. `domain` bounds
//! names at 255 bytes and accepts only compression pointers that point backwards, so a
//! pointer loop cannot be followed forever; its MSRV (1.79) is below the workspace's.
//!
//! Where this differs from Suricata 7 on purpose: Suricata keeps a request and its
//! response as two transactions; Portcullis pairs them in one (the interface wants one
//! transaction per exchange). A message whose questions parse but a later record does not
//! still yields its transaction (Suricata drops it): `dns.malformed_data` is counted and the
//! questions stay inspectable, so a trailing bad record cannot hide a query from rules.

use domain::base::Message;
use portcullis_common::Direction;

use crate::{AppConfig, AppProto, AppStats, Buf, DnsLog, DnsQueryLog, Num, TxLog, Txs};

/// A query waiting for its response: the transaction, the DNS id and the first question
/// (name bytes as pushed, QTYPE), by which the response is paired.
#[derive(Debug)]
struct Pending {
    tx: u64,
    id: u16,
    first: Option<(Vec<u8>, u16)>,
}

/// One flow's DNS parser.
#[derive(Debug, Default)]
pub struct DnsState {
    tcp: bool,
    /// TCP, per direction (to server, to client): the bytes of the message being assembled,
    /// the 2-byte length prefix included. At most `2 + dns_max_tcp_message` bytes.
    msg: [Vec<u8>; 2],
    /// TCP, per direction: bytes still to skip of a message longer than the cap.
    skip: [usize; 2],
    pending: Vec<Pending>,
}

/// One question, as read from the wire.
struct Question {
    /// Labels joined by `.`, raw bytes, no trailing dot (Suricata's `dns.query`).
    name: Vec<u8>,
    qtype: u16,
}

/// What one message says, once its header and questions parsed.
struct Parsed {
    id: u16,
    response: bool,
    opcode: u8,
    rcode: u8,
    questions: Vec<Question>,
}

impl DnsState {
    pub fn new(tcp: bool) -> Self {
        DnsState { tcp, ..DnsState::default() }
    }

    /// In-order bytes of one direction of a DNS-over-TCP flow.
    pub fn parse(&mut self, cfg: &AppConfig, dir: Direction, mut data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        if !self.tcp {
            // A datagram handed in as a stream chunk: treat it as one message.
            self.datagram(cfg, dir, data, txs, stats);
            return;
        }
        let d = usize::from(dir == Direction::ToClient);
        while !data.is_empty() {
            if self.skip[d] > 0 {
                let n = self.skip[d].min(data.len());
                self.skip[d] -= n;
                data = &data[n..];
                continue;
            }
            let buf = &mut self.msg[d];
            if buf.len() < 2 {
                let n = (2 - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                if buf.len() < 2 {
                    return;
                }
                let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                if len > cfg.dns_max_tcp_message {
                    stats.anomaly("dns.message_too_long");
                    buf.clear();
                    self.skip[d] = len;
                    continue;
                }
                if len == 0 {
                    stats.anomaly("dns.malformed_data");
                    buf.clear();
                    continue;
                }
            }
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            let want = 2 + len - buf.len();
            let n = want.min(data.len());
            buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if buf.len() == 2 + len {
                let msg = std::mem::take(&mut self.msg[d]);
                self.message(cfg, dir, &msg[2..], txs, stats);
                // Keep the allocation for the next message of this direction.
                self.msg[d] = msg;
                self.msg[d].clear();
            }
        }
    }

    /// The direction ended: a TCP message cut short is malformed.
    pub fn close(&mut self, _cfg: &AppConfig, dir: Direction, _txs: &mut Txs, stats: &mut AppStats) {
        let d = usize::from(dir == Direction::ToClient);
        if !self.msg[d].is_empty() || self.skip[d] > 0 {
            stats.anomaly("dns.malformed_data");
        }
        self.msg[d] = Vec::new();
        self.skip[d] = 0;
    }

    /// One UDP datagram: one message.
    pub fn datagram(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        self.message(cfg, dir, data, txs, stats);
    }

    fn message(&mut self, cfg: &AppConfig, dir: Direction, data: &[u8], txs: &mut Txs, stats: &mut AppStats) {
        let Some(m) = parse_message(data, stats) else {
            return;
        };
        match (dir, m.response) {
            (Direction::ToServer, true) => {
                stats.anomaly("dns.not_a_request");
                return;
            }
            (Direction::ToClient, false) => {
                stats.anomaly("dns.not_a_response");
                return;
            }
            _ => {}
        }
        if m.response {
            self.response(cfg, m, txs, stats);
        } else {
            self.request(cfg, m, txs, stats);
        }
    }

    fn request(&mut self, cfg: &AppConfig, m: Parsed, txs: &mut Txs, stats: &mut AppStats) {
        let tx = txs.open(AppProto::Dns, cfg.max_txs, stats);
        let dir = Direction::ToServer;
        tx.push_num(Num::DnsOpcode, dir, u64::from(m.opcode));
        for q in &m.questions {
            tx.push(Buf::DnsQuery, dir, &q.name);
            tx.push_num(Num::DnsRrtype, dir, u64::from(q.qtype));
        }
        tx.log = TxLog::Dns(Box::new(DnsLog { queries: query_logs(&m), rcode: None }));
        tx.complete[0] = true;
        let id = tx.id;
        // Queries whose transaction was dropped (list full) can no longer be paired.
        self.pending.retain(|p| txs.iter().any(|t| t.id == p.tx));
        if self.pending.len() >= cfg.max_txs.max(1) {
            self.pending.remove(0);
        }
        self.pending.push(Pending { tx: id, id: m.id, first: m.questions.first().map(|q| (q.name.clone(), q.qtype)) });
    }

    fn response(&mut self, cfg: &AppConfig, m: Parsed, txs: &mut Txs, stats: &mut AppStats) {
        let first = m.questions.first().map(|q| (&q.name[..], q.qtype));
        let found = self.pending.iter().position(|p| {
            p.id == m.id
                && match (&p.first, first) {
                    (None, None) => true,
                    // Resolvers echo the question as sent (0x20 case randomisation included);
                    // case is ignored all the same, as DNS names compare.
                    (Some((n, t)), Some((rn, rt))) => *t == rt && n.eq_ignore_ascii_case(rn),
                    _ => false,
                }
        });
        let paired = found.map(|i| self.pending.remove(i).tx).filter(|id| txs.iter().any(|t| t.id == *id));
        let dir = Direction::ToClient;
        let id = match paired {
            Some(id) => id,
            None => {
                let tx = txs.open(AppProto::Dns, cfg.max_txs, stats);
                // No query will come for this one. Suricata 7's `dns.query` inspects the
                // request's questions only (its rule docs: "the DNS request queries are
                // inspected"), so the response's questions fill the log, not the buffer.
                tx.complete[0] = true;
                tx.log = TxLog::Dns(Box::new(DnsLog { queries: query_logs(&m), rcode: None }));
                tx.id
            }
        };
        let Some(tx) = txs.get_mut(id) else {
            return;
        };
        tx.push_num(Num::DnsOpcode, dir, u64::from(m.opcode));
        for q in &m.questions {
            tx.push_num(Num::DnsRrtype, dir, u64::from(q.qtype));
        }
        if let TxLog::Dns(log) = &mut tx.log {
            log.rcode = Some(rcode_name(m.rcode));
        }
        tx.complete[1] = true;
        tx.updated = true;
    }
}

fn query_logs(m: &Parsed) -> Vec<DnsQueryLog> {
    m.questions
        .iter()
        .map(|q| DnsQueryLog {
            id: m.id,
            // Suricata writes the root name as "<root>".
            rrname: if q.name.is_empty() { "<root>".to_string() } else { String::from_utf8_lossy(&q.name).into_owned() },
            rrtype: rrtype_name(q.qtype),
            opcode: m.opcode,
        })
        .collect()
}

/// Reads the header and the questions, and frames every later record. `None` (counted as
/// `dns.malformed_data`) when the header or a question does not parse.
fn parse_message(data: &[u8], stats: &mut AppStats) -> Option<Parsed> {
    let Ok(msg) = Message::from_octets(data) else {
        stats.anomaly("dns.malformed_data");
        return None;
    };
    let h = msg.header();
    // The count bounds the allocation by what the message can hold (5 bytes a question).
    let qdcount = usize::from(msg.header_counts().qdcount()).min(data.len() / 5);
    let mut questions = Vec::with_capacity(qdcount);
    let mut section = msg.question();
    for q in &mut section {
        let Ok(q) = q else {
            stats.anomaly("dns.malformed_data");
            return None;
        };
        let mut name = Vec::new();
        for label in q.qname().iter().filter(|l| !l.is_root()) {
            if !name.is_empty() {
                name.push(b'.');
            }
            name.extend_from_slice(label.as_slice());
        }
        questions.push(Question { name, qtype: q.qtype().to_int() });
    }
    if !records_frame(section) {
        stats.anomaly("dns.malformed_data");
    }
    if h.z() {
        stats.anomaly("dns.z_flag_set");
    }
    Some(Parsed {
        id: h.id(),
        response: h.qr(),
        opcode: h.opcode().to_int(),
        rcode: h.rcode().to_int(),
        questions,
    })
}

/// Whether the answer, authority and additional records all frame within the message.
fn records_frame(questions: domain::base::message::QuestionSection<'_, &[u8]>) -> bool {
    let Ok(mut section) = questions.answer() else {
        return false;
    };
    loop {
        for rr in &mut section {
            if rr.is_err() {
                return false;
            }
        }
        match section.next_section() {
            Ok(Some(next)) => section = next,
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The record type as Suricata names it, else the number.
fn rrtype_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return t.to_string(),
    };
    name.to_string()
}

/// The response code as Suricata names it, else the number.
fn rcode_name(r: u8) -> String {
    let name = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return r.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tx;

    /// A message built by hand: header fields, then questions (name as labels, qtype),
    /// then raw bytes appended as they are (answers, pointers, garbage).
    fn msg(id: u16, flags: u16, questions: &[(&str, u16)], ancount: u16, tail: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&(questions.len() as u16).to_be_bytes());
        m.extend_from_slice(&ancount.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        for (name, qtype) in questions {
            for label in name.split('.').filter(|l| !l.is_empty()) {
                m.push(label.len() as u8);
                m.extend_from_slice(label.as_bytes());
            }
            m.push(0);
            m.extend_from_slice(&qtype.to_be_bytes());
            m.extend_from_slice(&1u16.to_be_bytes());
        }
        m.extend_from_slice(tail);
        m
    }

    /// An A record answering the first question by a pointer to its name (offset 12).
    const ANSWER_A: &[u8] = &[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];

    fn queries(tx: &Tx) -> Vec<&[u8]> {
        tx.get(Buf::DnsQuery, Direction::ToServer).collect()
    }

    fn log(tx: &Tx) -> &DnsLog {
        match &tx.log {
            TxLog::Dns(l) => l,
            other => panic!("not a DNS log: {other:?}"),
        }
    }

    #[test]
    fn udp_query_and_response_pair_in_one_transaction() {
        let (cfg, mut txs, mut st) = (AppConfig::default(), Txs::default(), AppStats::default());
        let mut s = DnsState::new(false);
        let q = msg(0x1234, 0x0100, &[("www.Example.com", 1), ("example.net", 16)], 0, &[]);
        s.datagram(&cfg, Direction::ToServer, &q, &mut txs, &mut st);
        assert_eq!(txs.len(), 1);
        let tx = &txs.as_slice()[0];
        assert_eq!(queries(tx), vec![&b"www.Example.com"[..], b"example.net"]);
        assert_eq!(tx.nums(Num::DnsRrtype).collect::<Vec<_>>(), vec![(Direction::ToServer, 1), (Direction::ToServer, 16)]);
        assert_eq!(tx.nums(Num::DnsOpcode).collect::<Vec<_>>(), vec![(Direction::ToServer, 0)]);
        assert_eq!(tx.complete, [true, false]);
        let l = log(tx);
        assert_eq!(l.queries[1], DnsQueryLog { id: 0x1234, rrname: "example.net".into(), rrtype: "TXT".into(), opcode: 0 });
        assert_eq!(l.rcode, None);

        // A response to another id opens its own transaction; the matching one pairs.
        let other = msg(0x9999, 0x8183, &[("nope.example", 28)], 0, &[]);
        s.datagram(&cfg, Direction::ToClient, &other, &mut txs, &mut st);
        let r = msg(0x1234, 0x8180, &[("www.example.com", 1), ("example.net", 16)], 1, ANSWER_A);
        s.datagram(&cfg, Direction::ToClient, &r, &mut txs, &mut st);
        assert_eq!(txs.len(), 2);
        let tx = &txs.as_slice()[0];
        assert_eq!(tx.complete, [true, true]);
        assert_eq!(log(tx).rcode.as_deref(), Some("NOERROR"));
        assert_eq!(tx.nums(Num::DnsOpcode).collect::<Vec<_>>(), vec![(Direction::ToServer, 0), (Direction::ToClient, 0)]);
        let lone = &txs.as_slice()[1];
        assert_eq!(log(lone).rcode.as_deref(), Some("NXDOMAIN"));
        assert_eq!(log(lone).queries[0].rrname, "nope.example");
        assert_eq!(log(lone).queries[0].rrtype, "AAAA");
        assert!(queries(lone).is_empty(), "dns.query is the request's questions only");
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
    }

    #[test]
    fn response_with_another_first_question_does_not_pair() {
        let (cfg, mut txs, mut st) = (AppConfig::default(), Txs::default(), AppStats::default());
        let mut s = DnsState::new(false);
        s.datagram(&cfg, Direction::ToServer, &msg(7, 0x0100, &[("a.example", 1)], 0, &[]), &mut txs, &mut st);
        s.datagram(&cfg, Direction::ToClient, &msg(7, 0x8180, &[("b.example", 1)], 0, &[]), &mut txs, &mut st);
        assert_eq!(txs.len(), 2);
        assert_eq!(txs.as_slice()[0].complete, [true, false]);
        // Wrong directions are Suricata's not_a_request / not_a_response, with no transaction.
        s.datagram(&cfg, Direction::ToServer, &msg(8, 0x8180, &[("c.example", 1)], 0, &[]), &mut txs, &mut st);
        s.datagram(&cfg, Direction::ToClient, &msg(9, 0x0100, &[("d.example", 1)], 0, &[]), &mut txs, &mut st);
        assert_eq!(txs.len(), 2);
        assert_eq!(st.anomalies.get("dns.not_a_request"), Some(&1));
        assert_eq!(st.anomalies.get("dns.not_a_response"), Some(&1));
    }

    #[test]
    fn tcp_framing_across_and_within_chunks() {
        let (cfg, mut txs, mut st) = (AppConfig::default(), Txs::default(), AppStats::default());
        let mut s = DnsState::new(true);
        let framed = |m: Vec<u8>| {
            let mut f = (m.len() as u16).to_be_bytes().to_vec();
            f.extend_from_slice(&m);
            f
        };
        let q1 = framed(msg(1, 0x0100, &[("one.example", 1)], 0, &[]));
        let q2 = framed(msg(2, 0x0100, &[("two.example", 15)], 0, &[]));
        let q3 = framed(msg(3, 0x0100, &[("three.example", 2)], 0, &[]));
        // q1 split inside its length prefix and inside its body; q2 and q3 in one chunk
        // with the tail of q1.
        s.parse(&cfg, Direction::ToServer, &q1[..1], &mut txs, &mut st);
        s.parse(&cfg, Direction::ToServer, &q1[1..9], &mut txs, &mut st);
        assert_eq!(txs.len(), 0);
        let mut rest = q1[9..].to_vec();
        rest.extend_from_slice(&q2);
        rest.extend_from_slice(&q3);
        s.parse(&cfg, Direction::ToServer, &rest, &mut txs, &mut st);
        let names: Vec<Vec<u8>> = txs.iter().flat_map(|t| queries(t).into_iter().map(|q| q.to_vec())).collect();
        assert_eq!(names, vec![b"one.example".to_vec(), b"two.example".to_vec(), b"three.example".to_vec()]);
        // The responses, byte by byte, pair with their queries.
        let r = framed(msg(2, 0x8180, &[("two.example", 15)], 0, &[]));
        for b in &r {
            s.parse(&cfg, Direction::ToClient, std::slice::from_ref(b), &mut txs, &mut st);
        }
        assert_eq!(txs.as_slice()[1].complete, [true, true]);
        assert_eq!(txs.len(), 3);
        assert!(st.anomalies.is_empty(), "{:?}", st.anomalies);
    }

    #[test]
    fn tcp_message_over_the_cap_is_skipped_and_framing_stays_in_step() {
        let cfg = AppConfig { dns_max_tcp_message: 40, ..AppConfig::default() };
        let (mut txs, mut st) = (Txs::default(), AppStats::default());
        let mut s = DnsState::new(true);
        let long = msg(1, 0x0100, &[("a-rather-long-label-for-the-cap.example", 1)], 0, &[]);
        let short = msg(2, 0x0100, &[("s.example", 1)], 0, &[]);
        let mut stream = Vec::new();
        for m in [&long, &short] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        s.parse(&cfg, Direction::ToServer, &stream, &mut txs, &mut st);
        assert_eq!(st.anomalies.get("dns.message_too_long"), Some(&1));
        assert_eq!(txs.len(), 1);
        assert_eq!(queries(&txs.as_slice()[0]), vec![&b"s.example"[..]]);
        // A message cut by the end of the stream.
        s.parse(&cfg, Direction::ToServer, &[0, 30, 1, 2], &mut txs, &mut st);
        s.close(&cfg, Direction::ToServer, &mut txs, &mut st);
        assert_eq!(st.anomalies.get("dns.malformed_data"), Some(&1));
    }

    #[test]
    fn compression_pointers_are_followed_and_loops_rejected() {
        let (cfg, mut txs, mut st) = (AppConfig::default(), Txs::default(), AppStats::default());
        let mut s = DnsState::new(false);
        // Second question "www" + pointer to the first question's name (offset 12).
        let mut m = msg(5, 0x0100, &[("example.com", 1)], 0, &[]);
        m[5] = 2;
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 12, 0, 28, 0, 1]);
        s.datagram(&cfg, Direction::ToServer, &m, &mut txs, &mut st);
        assert_eq!(queries(&txs.as_slice()[0]), vec![&b"example.com"[..], b"www.example.com"]);
        assert!(st.anomalies.is_empty());

        // A pointer to itself, a pointer forward, and two names pointing at each other.
        let header = |qd: u8| vec![0, 6, 1, 0, 0, qd, 0, 0, 0, 0, 0, 0];
        let mut self_loop = header(1);
        self_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut forward = header(1);
        forward.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1, 0, 0, 1, b'a', 0]);
        let mut mutual = header(2);
        mutual.extend_from_slice(&[1, b'a', 0xc0, 20, 0, 1, 0, 1, 1, b'b', 0xc0, 12, 0, 1, 0, 1]);
        for bad in [self_loop, forward, mutual] {
            s.datagram(&cfg, Direction::ToServer, &bad, &mut txs, &mut st);
        }
        assert_eq!(txs.len(), 1);
        assert_eq!(st.anomalies.get("dns.malformed_data"), Some(&3));
    }

    #[test]
    fn truncated_and_garbage_messages_are_counted_not_parsed() {
        let (cfg, mut txs, mut st) = (AppConfig::default(), Txs::default(), AppStats::default());
        let mut s = DnsState::new(false);
        let good = msg(5, 0x0100, &[("example.com", 1)], 0, &[]);
        // Short header, question cut in its name, question cut in its type.
        for cut in [5, 16, good.len() - 2] {
            s.datagram(&cfg, Direction::ToServer, &good[..cut], &mut txs, &mut st);
        }
        assert_eq!(txs.len(), 0);
        assert_eq!(st.anomalies.get("dns.malformed_data"), Some(&3));
        // A response whose answer's RDATA runs past the end keeps its question.
        let r = msg(5, 0x8180, &[("example.com", 1)], 1, &ANSWER_A[..ANSWER_A.len() - 2]);
        s.datagram(&cfg, Direction::ToClient, &r, &mut txs, &mut st);
        assert_eq!(txs.len(), 1);
        assert_eq!(st.anomalies.get("dns.malformed_data"), Some(&4));
        // Pseudo-random garbage: never a panic.
        let mut x = 0x2545_f491_u32;
        for len in 0..400 {
            let bytes = crate::garbage(&mut x, len);
            s.datagram(&cfg, Direction::ToServer, &bytes, &mut txs, &mut st);
            s.parse(&cfg, Direction::ToClient, &bytes, &mut txs, &mut st);
        }
    }

    #[test]
    fn names_follow_suricata() {
        assert_eq!(rrtype_name(28), "AAAA");
        assert_eq!(rrtype_name(65), "HTTPS");
        assert_eq!(rrtype_name(4242), "4242");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(5), "REFUSED");
    }
}
