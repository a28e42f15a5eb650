//! Events about one packet: `alert` and `drop`, with Suricata 7's field names and order.

use std::net::IpAddr;

use portcullis_common::{ipproto, Direction, FlowKey, PacketMeta, Timestamp};
use portcullis_flowtable::FlowSnapshot;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::app::{AlertApp, EveDns, EveHttp, EveSsh, EveTls};
use crate::event::{format_timestamp, has_ports, proto_name};

/// An IP address as Suricata writes it: IPv4 dotted, IPv6 as eight groups of four lowercase
/// hex digits with no `::` shortening (`fe80:0000:0000:0000:0077:00ff:fe00:0002`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EveIp(pub IpAddr);

impl Serialize for EveIp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            IpAddr::V4(a) => s.collect_str(&a),
            IpAddr::V6(a) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut buf = [b':'; 39];
                for (i, g) in a.segments().iter().enumerate() {
                    for d in 0..4 {
                        buf[i * 5 + d] = HEX[usize::from((g >> (12 - 4 * d)) & 0xf)];
                    }
                }
                // Only ASCII was written.
                s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
            }
        }
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

/// The packet an `alert` or `drop` event is about, as the worker saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    pub ts: Timestamp,
    pub pcap_cnt: u64,
    /// Addresses, ports and protocol of the packet itself, oriented as it travelled.
    pub key: FlowKey,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The flow it belongs to, if any, and its direction within that flow.
    pub flow_id: Option<u64>,
    pub dir: Option<Direction>,
}

impl PacketInfo {
    /// The event's view of a decoded packet. An ICMP error carries the key of the flow it
    /// quotes, so its own addresses are read from its IP header (`l3`, the packet's bytes
    /// from the IP header on).
    pub fn new(meta: &PacketMeta, l3: &[u8], flow_id: Option<u64>, dir: Option<Direction>) -> Self {
        let key = meta.own_key(l3);
        PacketInfo { ts: meta.ts, pcap_cnt: meta.pcap_cnt, key, icmp_type: meta.icmp_type, icmp_code: meta.icmp_code, flow_id, dir }
    }
}

/// What the detection engine knows of the rule an alert names.
#[derive(Clone, Copy, Debug)]
pub struct AlertRule<'a> {
    pub gid: u32,
    pub sid: u32,
    pub rev: u32,
    pub msg: &'a str,
    /// The classtype's description; empty when the rule has none.
    pub category: &'a str,
    pub severity: u8,
    /// `metadata:` pairs in rule order.
    pub metadata: &'a [(String, String)],
}

/// An EVE `alert` event.
#[derive(Debug, Serialize)]
pub struct AlertEvent<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    /// Absent on a model alert raised when its flow ended: no packet caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_cnt: Option<u64>,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vlan: Vec<u16>,
    src_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pkt_src: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    tx_guessed: bool,
    alert: AlertObject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<EveHttp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<EveDns<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<EveTls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh: Option<EveSsh<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<AlertFlow>,
}

#[derive(Debug, Serialize)]
struct AlertObject<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata<'a>,
    /// Suricata's "extra context data" object; Portcullis puts a model alert's verdict here
    /// (`alert.context.ml`), because the EVE schema allows no other property at the top level
    /// or in `alert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<AlertContext<'a>>,
}

#[derive(Debug, Serialize)]
struct AlertContext<'a> {
    ml: MlVerdict<'a>,
}

/// Why the flow model alerted: the model, its verdict on the flow and the features that
/// weighed most in it. Written as `alert.context.ml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlVerdict<'a> {
    pub model: &'a str,
    pub version: &'a str,
    /// `classifier` or `anomaly`: which of the model's detectors raised the alert.
    pub detector: &'static str,
    /// The classifier's most probable class.
    pub class: &'a str,
    pub probability: f32,
    /// The autoencoder's reconstruction score, when the model has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly_score: Option<f32>,
    /// True when the features were exported at the flow's end; false for a checkpoint of a
    /// flow still running.
    pub flow_ended: bool,
    /// The features that weighed most in the verdict, largest first.
    pub top_features: Vec<MlFeature<'a>>,
}

/// One feature's part in a model alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlFeature<'a> {
    pub name: &'a str,
    /// Its value in the flow.
    pub value: f32,
    /// Classifier: how much the alerting class's probability drops when the feature is set
    /// to the model's benign reference. Anomaly: the feature's squared reconstruction error.
    pub weight: f32,
}

/// `alert.metadata`: each key once with all its values, as Suricata 7 writes it: keys in
/// case-insensitive order, a key's values in reverse rule order (Suricata prepends each pair
/// to its list as it parses the rule).
#[derive(Debug)]
struct Metadata<'a>(&'a [(String, String)]);

impl Metadata<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_by(|a, b| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()).then(a.cmp(b)));
        keys.dedup();
        let mut m = s.serialize_map(Some(keys.len()))?;
        for k in keys {
            let values: Vec<&str> = self.0.iter().rev().filter(|(kk, _)| kk == k).map(|(_, v)| v.as_str()).collect();
            m.serialize_entry(k, &values)?;
        }
        m.end()
    }
}

/// The `flow` object of an alert: the flow's counters including the alerting packet.
#[derive(Debug, Serialize)]
struct AlertFlow {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    src_ip: EveIp,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
}

fn is_icmp(proto: u8) -> bool {
    matches!(proto, ipproto::ICMP | ipproto::ICMPV6)
}

/// The EVE `alert` event for a rule that matched `pkt`. `blocked` is Suricata's
/// `alert.action`: `blocked` when the packet is dropped (IPS) or the rule rejects.
pub fn alert_event<'a>(pkt: &PacketInfo, flow: Option<&FlowSnapshot>, rule: &AlertRule<'a>, blocked: bool) -> AlertEvent<'a> {
    let k = &pkt.key;
    let ports = has_ports(k.proto);
    let icmp = is_icmp(k.proto);
    AlertEvent {
        timestamp: format_timestamp(pkt.ts),
        flow_id: pkt.flow_id,
        pcap_cnt: Some(pkt.pcap_cnt),
        event_type: "alert",
        vlan: k.vlan.iter().copied().take_while(|&v| v != 0).collect(),
        src_ip: EveIp(k.src_ip()),
        src_port: ports.then_some(k.sport),
        dest_ip: EveIp(k.dst_ip()),
        dest_port: ports.then_some(k.dport),
        proto: proto_name(k.proto),
        icmp_type: icmp.then_some(pkt.icmp_type),
        icmp_code: icmp.then_some(pkt.icmp_code),
        pkt_src: "wire/pcap",
        tx_id: None,
        tx_guessed: false,
        alert: AlertObject {
            action: if blocked { "blocked" } else { "allowed" },
            gid: rule.gid,
            signature_id: rule.sid,
            rev: rule.rev,
            signature: rule.msg,
            category: rule.category,
            severity: rule.severity,
            metadata: Metadata(rule.metadata),
            context: None,
        },
        http: None,
        dns: None,
        tls: None,
        ssh: None,
        app_proto: None,
        direction: pkt.dir.map(direction_name),
        flow: flow.map(|f| {
            // Suricata writes the flow's ports by the packet's protocol: an ICMP error on a
            // UDP flow gets none.
            let fports = ports;
            AlertFlow {
                pkts_toserver: f.pkts_toserver,
                pkts_toclient: f.pkts_toclient,
                bytes_toserver: f.bytes_toserver,
                bytes_toclient: f.bytes_toclient,
                start: format_timestamp(f.start),
                src_ip: EveIp(f.key.src_ip()),
                dest_ip: EveIp(f.key.dst_ip()),
                src_port: fports.then_some(f.key.sport),
                dest_port: fports.then_some(f.key.dport),
            }
        }),
    }
}

impl<'a> AlertEvent<'a> {
    /// Adds the flow's app-layer protocol and the transaction's `tx_id` and objects.
    pub fn with_app(mut self, app: &'a AlertApp) -> Self {
        self.app_proto = app.proto;
        if let Some(id) = app.tx_id {
            self.tx_id = Some(id);
            self.tx_guessed = app.guessed;
            let o = crate::app::objects(&app.log, id);
            (self.http, self.dns, self.tls, self.ssh) = (o.http, o.dns, o.tls, o.ssh);
        }
        self
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The EVE `alert` event for a flow the model flagged: the flow's addresses and ports
/// (initiator as source), its `flow_id`, `at` (the time its features were exported) as the
/// timestamp, the packet that made a checkpoint due as `pcap_cnt` (none when the flow ended),
/// no direction, and the verdict in `alert.context.ml`. The action is always `allowed`: the
/// model only reports.
pub fn ml_alert_event<'a>(flow: &FlowSnapshot, at: Timestamp, pcap_cnt: Option<u64>, rule: &AlertRule<'a>, ml: MlVerdict<'a>) -> AlertEvent<'a> {
    let pkt = PacketInfo { ts: at, pcap_cnt: 0, key: flow.key, icmp_type: 0, icmp_code: 0, flow_id: Some(flow.flow_id), dir: None };
    let mut ev = alert_event(&pkt, Some(flow), rule, false);
    ev.pcap_cnt = pcap_cnt;
    // A flow has no single ICMP type and code.
    (ev.icmp_type, ev.icmp_code) = (None, None);
    if pcap_cnt.is_none() {
        ev.pkt_src = "";
    }
    ev.alert.context = Some(AlertContext { ml });
    ev
}

/// Why a packet was dropped (Suricata's `drop.reason` and `stats.ips.drop_reason` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A drop or reject rule matched it.
    Rules,
    /// Its flow was dropped by an earlier packet.
    FlowDrop,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Rules => "rules",
            DropReason::FlowDrop => "flow drop",
        }
    }
}

/// The header fields a `drop` event reports, read from the packet's bytes where the meta
/// does not carry them. Every field is `None` when the packet has no such header or it is
/// too short; Suricata then leaves the field out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DropInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipid: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tc: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hoplimit: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flowlbl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpseq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpwin: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    syn: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    psh: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rst: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urg: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpres: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpurgp: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udplen: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_seq: Option<u16>,
}

impl DropInfo {
    /// Reads the fields from a packet's meta and its bytes from the IP header on (`l3`).
    pub fn new(meta: &PacketMeta, l3: &[u8]) -> Self {
        let be16 = |b: &[u8], i: usize| b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
        let be32 = |b: &[u8], i: usize| b.get(i..i + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
        let mut d = DropInfo::default();
        match l3.first().map(|b| b >> 4) {
            Some(4) if l3.len() >= 20 => {
                d.len = be16(l3, 2).map(u32::from);
                d.tos = Some(l3[1]);
                d.ttl = Some(l3[8]);
                d.ipid = be16(l3, 4);
            }
            Some(6) if l3.len() >= 40 => {
                d.len = be16(l3, 4).map(u32::from);
                d.tc = Some(meta.tos);
                d.hoplimit = Some(l3[7]);
                d.flowlbl = be32(l3, 0).map(|w| w & 0x000f_ffff);
            }
            _ => return d,
        }
        let l4 = meta.l4_in_l3(l3);
        // An ICMP error's key is the flow it quotes; its own protocol is ICMP.
        let proto = if meta.attach_only { ipproto::ICMP } else { meta.key.proto };
        match proto {
            ipproto::TCP if l4.len() >= 20 => {
                let f = meta.tcp_flags;
                d.tcpseq = Some(meta.tcp_seq);
                d.tcpack = Some(meta.tcp_ack);
                d.tcpwin = Some(meta.tcp_win);
                d.syn = Some(f.has(0x02));
                d.ack = Some(f.has(0x10));
                d.psh = Some(f.has(0x08));
                d.rst = Some(f.has(0x04));
                d.urg = Some(f.has(0x20));
                d.fin = Some(f.has(0x01));
                d.tcpres = Some(l4[12] & 0x0f);
                d.tcpurgp = be16(l4, 18);
            }
            ipproto::UDP => d.udplen = be16(l4, 4),
            ipproto::ICMP | ipproto::ICMPV6 => {
                d.icmp_id = Some(meta.icmp_id);
                d.icmp_seq = Some(meta.icmp_seq);
            }
            _ => {}
        }
        d
    }
}

/// An EVE `drop` event.
#[derive(Debug, Serialize)]
pub struct DropEvent {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    pcap_cnt: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vlan: Vec<u16>,
    src_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    pkt_src: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    drop: DropObject,
}

#[derive(Debug, Serialize)]
struct DropObject {
    #[serde(flatten)]
    info: DropInfo,
    reason: &'static str,
}

/// The EVE `drop` event for a packet the simulated IPS discarded.
pub fn drop_event(pkt: &PacketInfo, info: &DropInfo, reason: DropReason) -> DropEvent {
    let k = &pkt.key;
    let ports = has_ports(k.proto);
    let icmp = is_icmp(k.proto);
    DropEvent {
        timestamp: format_timestamp(pkt.ts),
        flow_id: pkt.flow_id,
        pcap_cnt: pkt.pcap_cnt,
        event_type: "drop",
        vlan: k.vlan.iter().copied().take_while(|&v| v != 0).collect(),
        src_ip: EveIp(k.src_ip()),
        src_port: ports.then_some(k.sport),
        dest_ip: EveIp(k.dst_ip()),
        dest_port: ports.then_some(k.dport),
        proto: proto_name(k.proto),
        icmp_type: icmp.then_some(pkt.icmp_type),
        icmp_code: icmp.then_some(pkt.icmp_code),
        pkt_src: "wire/pcap",
        direction: pkt.dir.map(direction_name),
        drop: DropObject { info: *info, reason: reason.as_str() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::TcpFlags;
    use serde_json::Value;

    fn key(a: &str, b: &str, sp: u16, dp: u16, proto: u8) -> FlowKey {
        FlowKey::new(a.parse().unwrap(), b.parse().unwrap(), sp, dp, proto)
    }

    /// A TCP packet's bytes from the IP header on, and its meta.
    fn tcp_packet() -> (PacketMeta, Vec<u8>) {
        let mut l3 = vec![0x45, 0x10, 0, 44, 0xbc, 0xed, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 2, 10, 77, 0, 1];
        let mut tcp = vec![0xaf, 0x30, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0, 63, 0, 0, 0, 9];
        l3.append(&mut tcp);
        l3.extend_from_slice(b"abcd");
        let mut m = PacketMeta::new(Timestamp::from_secs_micros(1_700_000_000, 67_564), key("10.77.0.2", "10.77.0.1", 44848, 443, 6), 58);
        m.pcap_cnt = 160;
        m.tcp_flags = TcpFlags(0x18);
        (m.tcp_seq, m.tcp_ack, m.tcp_win) = (1, 2, 63);
        (m.l4_offset, m.payload_offset, m.payload_len) = (20, 40, 4);
        (m.ip_id, m.tos) = (0xbced, 0x10);
        (m, l3)
    }

    fn snapshot() -> FlowSnapshot {
        FlowSnapshot {
            key: key("10.77.0.2", "10.77.0.1", 44848, 443, 6),
            flow_id: 42,
            start: Timestamp::from_secs_micros(1_700_000_000, 65_091),
            pkts_toserver: 3,
            pkts_toclient: 1,
            bytes_toserver: 723,
            bytes_toclient: 74,
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn ipv6_addresses_are_written_in_full() {
        let a = EveIp("fe80::77:ff:fe00:2".parse().unwrap());
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"fe80:0000:0000:0000:0077:00ff:fe00:0002\"");
        assert_eq!(serde_json::to_string(&EveIp("10.0.0.1".parse().unwrap())).unwrap(), "\"10.0.0.1\"");
    }

    #[test]
    fn alert_has_suricatas_fields_in_order() {
        let (m, l3) = tcp_packet();
        let pkt = PacketInfo::new(&m, &l3, Some(42), Some(Direction::ToServer));
        let md = [("created_at".to_string(), "2024_01_01".to_string()), ("B".into(), "x".into()), ("created_at".into(), "2024_02_02".into())];
        let rule = AlertRule { gid: 1, sid: 3, rev: 0, msg: "tls drop", category: "", severity: 3, metadata: &md };
        let ev = serde_json::to_value(alert_event(&pkt, Some(&snapshot()), &rule, true)).unwrap();
        assert_eq!(
            keys(&ev),
            ["timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "pkt_src", "alert", "direction", "flow"]
        );
        assert_eq!(keys(&ev["alert"]), ["action", "gid", "signature_id", "rev", "signature", "category", "severity", "metadata"]);
        assert_eq!(keys(&ev["flow"]), ["pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "start", "src_ip", "dest_ip", "src_port", "dest_port"]);
        assert_eq!(ev["alert"]["action"], "blocked");
        assert_eq!(ev["direction"], "to_server");
        // Suricata 7: keys in case-insensitive order, each key's values newest first.
        assert_eq!(serde_json::to_string(&ev["alert"]["metadata"]).unwrap(), r#"{"B":["x"],"created_at":["2024_02_02","2024_01_01"]}"#);
    }

    #[test]
    fn icmp_alert_has_type_and_code_and_no_ports() {
        let mut m = PacketMeta::new(Timestamp(0), key("fd00::1", "fd00::2", 0x8000, 0x8100, 58), 90);
        m.icmp_type = 128;
        let pkt = PacketInfo::new(&m, &[], None, None);
        let rule = AlertRule { gid: 1, sid: 1, rev: 1, msg: "ping", category: "Misc activity", severity: 3, metadata: &[] };
        let ev = serde_json::to_value(alert_event(&pkt, None, &rule, false)).unwrap();
        assert_eq!(keys(&ev), ["timestamp", "pcap_cnt", "event_type", "src_ip", "dest_ip", "proto", "icmp_type", "icmp_code", "pkt_src", "alert"]);
        assert_eq!(ev["alert"]["action"], "allowed");
        assert!(ev["alert"].get("metadata").is_none());
    }

    #[test]
    fn drop_reads_headers_from_the_bytes() {
        let (m, l3) = tcp_packet();
        let pkt = PacketInfo::new(&m, &l3, Some(42), Some(Direction::ToServer));
        let ev = serde_json::to_value(drop_event(&pkt, &DropInfo::new(&m, &l3), DropReason::Rules)).unwrap();
        assert_eq!(
            serde_json::to_string(&ev["drop"]).unwrap(),
            r#"{"len":44,"tos":16,"ttl":64,"ipid":48365,"tcpseq":1,"tcpack":2,"tcpwin":63,"syn":false,"ack":true,"psh":true,"rst":false,"urg":false,"fin":false,"tcpres":0,"tcpurgp":9,"reason":"rules"}"#
        );
        assert_eq!(keys(&ev), ["timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "pkt_src", "direction", "drop"]);
    }

    #[test]
    fn icmp_error_is_reported_with_its_own_addresses() {
        // A destination-unreachable from a router, quoting a UDP flow 10.0.0.2 -> 10.0.0.1.
        let mut l3 = vec![0x45, 0xc0, 0, 56, 0x21, 0xe7, 0, 0, 64, 1, 0, 0, 192, 168, 0, 254, 10, 0, 0, 2];
        l3.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        let mut m = PacketMeta::new(Timestamp(0), key("10.0.0.1", "10.0.0.2", 53, 5000, 17), 70);
        (m.attach_only, m.icmp_type, m.icmp_code, m.l4_offset, m.payload_offset) = (true, 3, 3, 20, 28);
        let pkt = PacketInfo::new(&m, &l3, Some(7), Some(Direction::ToClient));
        let ev = serde_json::to_value(drop_event(&pkt, &DropInfo::new(&m, &l3), DropReason::FlowDrop)).unwrap();
        assert_eq!((ev["src_ip"].as_str(), ev["dest_ip"].as_str(), ev["proto"].as_str()), (Some("192.168.0.254"), Some("10.0.0.2"), Some("ICMP")));
        assert_eq!(serde_json::to_string(&ev["drop"]).unwrap(), r#"{"len":56,"tos":192,"ttl":64,"ipid":8679,"icmp_id":0,"icmp_seq":0,"reason":"flow drop"}"#);
    }

    fn ml_verdict() -> MlVerdict<'static> {
        MlVerdict {
            model: "portcullis-cicids2017",
            version: "v2",
            detector: "classifier",
            class: "SSH-Patator",
            probability: 0.97,
            anomaly_score: Some(0.5),
            flow_ended: true,
            top_features: vec![MlFeature { name: "Flow Duration", value: 3.5e6, weight: 0.4 }],
        }
    }

    #[test]
    fn ml_alert_is_about_the_flow_and_carries_the_verdict_in_context() {
        let rule = AlertRule { gid: 9000, sid: 9_000_010, rev: 1, msg: "ML SSH-Patator", category: "Machine learning: flow classifier", severity: 1, metadata: &[] };
        let at = Timestamp::from_secs_micros(1_700_000_009, 0);
        let line = serde_json::to_string(&ml_alert_event(&snapshot(), at, None, &rule, ml_verdict())).unwrap();
        let ev: Value = serde_json::from_str(&line).unwrap();
        // No packet made it: no pcap_cnt, packet source or direction; the flow's own 5-tuple.
        assert_eq!(keys(&ev), ["timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "alert", "flow"]);
        assert_eq!(keys(&ev["alert"]), ["action", "gid", "signature_id", "rev", "signature", "category", "severity", "context"]);
        assert_eq!((ev["src_ip"].as_str(), ev["dest_port"].as_u64(), ev["flow_id"].as_u64()), (Some("10.77.0.2"), Some(443), Some(42)));
        assert_eq!(ev["timestamp"], format_timestamp(at));
        assert_eq!(ev["alert"]["action"], "allowed");
        // Written as f32, so probabilities read as the model gave them.
        assert!(
            line.contains(r#""context":{"ml":{"model":"portcullis-cicids2017","version":"v2","detector":"classifier","class":"SSH-Patator","probability":0.97,"anomaly_score":0.5,"flow_ended":true,"top_features":[{"name":"Flow Duration","value":3500000.0,"weight":0.4}]}}}"#),
            "{line}"
        );
        // A checkpoint's alert names the packet that made it due.
        let ev = serde_json::to_value(ml_alert_event(&snapshot(), at, Some(77), &rule, ml_verdict())).unwrap();
        assert_eq!((ev["pcap_cnt"].as_u64(), ev["pkt_src"].as_str()), (Some(77), Some("wire/pcap")));
    }

    #[test]
    fn alert_and_drop_validate_against_the_eve_schema() {
        let Some(v) = crate::event::tests::schema() else { return };
        let (m, l3) = tcp_packet();
        let pkt = PacketInfo::new(&m, &l3, Some(42), Some(Direction::ToServer));
        let md = [("former_category".to_string(), "POLICY".to_string())];
        let rule = AlertRule { gid: 1, sid: 3, rev: 2, msg: "x", category: "Misc activity", severity: 2, metadata: &md };
        let mut v6 = PacketMeta::new(Timestamp(0), key("fd00::1", "fd00::2", 5000, 53, 17), 90);
        let mut l3v6 = vec![0x60, 0, 0, 1, 0, 9, 17, 64];
        l3v6.extend_from_slice(&[0; 32]);
        l3v6.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 9, 0, 0, b'q']);
        (v6.l4_offset, v6.payload_offset, v6.payload_len) = (40, 48, 1);
        let p6 = PacketInfo::new(&v6, &l3v6, Some(1), Some(Direction::ToServer));
        let events = [
            serde_json::to_value(alert_event(&pkt, Some(&snapshot()), &rule, false)).unwrap(),
            serde_json::to_value(drop_event(&pkt, &DropInfo::new(&m, &l3), DropReason::Rules)).unwrap(),
            serde_json::to_value(drop_event(&p6, &DropInfo::new(&v6, &l3v6), DropReason::FlowDrop)).unwrap(),
            serde_json::to_value(ml_alert_event(&snapshot(), Timestamp(5), None, &rule, ml_verdict())).unwrap(),
        ];
        assert_eq!(events[2]["drop"]["flowlbl"], 1);
        assert_eq!(events[2]["drop"]["udplen"], 9);
        for ev in &events {
            let errors: Vec<String> = v.iter_errors(ev).map(|e| format!("{} at {}", e, e.instance_path)).collect();
            assert!(errors.is_empty(), "{ev}\n{errors:#?}");
        }
    }
}
