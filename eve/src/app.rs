//! The app-layer objects of an `alert` event (`http`, `dns`, `tls`), with Suricata 7's
//! field names and order, built from the transaction log the app-layer parser kept.

use portcullis_applayer::{DnsLog, HttpLog, SshLog, SshSide, TlsLog, TxLog};
use serde::Serialize;

/// What an alert says about the app layer: the flow's protocol and, when the rule matched in
/// a transaction (or the flow has one to attach, `guessed` as Suricata's `tx_guessed`), that
/// transaction's id and log.
#[derive(Clone, Debug, Default)]
pub struct AlertApp {
    pub proto: Option<&'static str>,
    pub tx_id: Option<u64>,
    pub guessed: bool,
    pub log: TxLog,
}

#[derive(Debug, Serialize)]
pub(crate) struct EveHttp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_refer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<&'a str>,
    length: u64,
}

impl<'a> From<&'a HttpLog> for EveHttp<'a> {
    fn from(h: &'a HttpLog) -> Self {
        EveHttp {
            hostname: h.hostname.as_deref(),
            http_port: h.port,
            url: h.url.as_deref(),
            http_user_agent: h.http_user_agent.as_deref(),
            http_content_type: h.http_content_type.as_deref(),
            http_refer: h.http_refer.as_deref(),
            http_method: h.http_method.as_deref(),
            protocol: h.protocol.as_deref(),
            status: h.status,
            redirect: h.redirect.as_deref(),
            length: h.length,
        }
    }
}

#[derive(Debug, Serialize)]
struct EveDnsQuery<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u16,
    rrname: &'a str,
    rrtype: &'a str,
    tx_id: u64,
    opcode: u8,
}

/// `dns.query[]`: the transaction's questions, under Suricata 7's `version: 2` marker.
#[derive(Debug, Serialize)]
pub(crate) struct EveDns<'a> {
    version: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    query: Vec<EveDnsQuery<'a>>,
}

impl<'a> EveDns<'a> {
    fn new(d: &'a DnsLog, tx_id: u64) -> Self {
        EveDns {
            version: 2,
            query: d
                .queries
                .iter()
                .map(|q| EveDnsQuery { kind: "query", id: q.id, rrname: &q.rrname, rrtype: &q.rrtype, tx_id, opcode: q.opcode })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct EveTls<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuerdn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notbefore: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notafter: Option<&'a str>,
}

impl<'a> From<&'a TlsLog> for EveTls<'a> {
    fn from(t: &'a TlsLog) -> Self {
        EveTls {
            subject: t.subject.as_deref(),
            issuerdn: t.issuerdn.as_deref(),
            serial: t.serial.as_deref(),
            fingerprint: t.fingerprint.as_deref(),
            sni: t.sni.as_deref(),
            version: t.version.as_deref(),
            notbefore: t.notbefore.as_deref(),
            notafter: t.notafter.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
struct EveSshSide<'a> {
    proto_version: &'a str,
    software_version: &'a str,
}

impl<'a> From<&'a SshSide> for EveSshSide<'a> {
    fn from(s: &'a SshSide) -> Self {
        EveSshSide { proto_version: &s.proto_version, software_version: &s.software_version }
    }
}

/// Suricata's `ssh` object: each side's identification.
#[derive(Debug, Serialize)]
pub(crate) struct EveSsh<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<EveSshSide<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<EveSshSide<'a>>,
}

impl<'a> From<&'a SshLog> for EveSsh<'a> {
    fn from(s: &'a SshLog) -> Self {
        EveSsh { client: s.client.as_ref().map(EveSshSide::from), server: s.server.as_ref().map(EveSshSide::from) }
    }
}

/// The objects one transaction log adds to an alert.
#[derive(Debug, Default)]
pub(crate) struct Objects<'a> {
    pub http: Option<EveHttp<'a>>,
    pub dns: Option<EveDns<'a>>,
    pub tls: Option<EveTls<'a>>,
    pub ssh: Option<EveSsh<'a>>,
}

pub(crate) fn objects(log: &TxLog, tx_id: u64) -> Objects<'_> {
    match log {
        TxLog::None => Objects::default(),
        TxLog::Http(h) => Objects { http: Some(EveHttp::from(&**h)), ..Objects::default() },
        TxLog::Dns(d) => Objects { dns: Some(EveDns::new(d, tx_id)), ..Objects::default() },
        TxLog::Tls(t) => Objects { tls: Some(EveTls::from(&**t)), ..Objects::default() },
        TxLog::Ssh(s) => Objects { ssh: Some(EveSsh::from(&**s)), ..Objects::default() },
    }
}
