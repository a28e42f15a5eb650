use chrono::{DateTime, Datelike, Timelike, Utc};
use portcullis_common::{ipproto, Anomaly, Timestamp};
use portcullis_dataplane::DecodeStats;
use portcullis_flowtable::{FlowRecord, FlowStats};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use crate::packet::EveIp;

/// A timestamp as EVE writes it: `2024-04-19T13:05:01.123456+0000`, always UTC.
pub fn format_timestamp(t: Timestamp) -> String {
    // chrono does the calendar; the digits are pushed here because strftime-style formatting
    // was the largest cost of writing flow events.
    let dt = DateTime::<Utc>::from_timestamp(t.secs(), 0).unwrap_or_default();
    let mut out = String::with_capacity(32);
    let mut num = |n: i64, width: usize, sep: Option<char>| {
        let mut buf = [b'0'; 8];
        let mut v = n.unsigned_abs();
        for i in (0..width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend(buf[..width].iter().map(|&b| char::from(b)));
        if let Some(c) = sep {
            out.push(c);
        }
    };
    num(i64::from(dt.year()), 4, Some('-'));
    num(i64::from(dt.month()), 2, Some('-'));
    num(i64::from(dt.day()), 2, Some('T'));
    num(i64::from(dt.hour()), 2, Some(':'));
    num(i64::from(dt.minute()), 2, Some(':'));
    num(i64::from(dt.second()), 2, Some('.'));
    num(t.subsec_micros(), 6, None);
    out.push_str("+0000");
    out
}

/// The protocol name EVE's `proto` field uses (Suricata's names), or the number.
pub fn proto_name(p: u8) -> Cow<'static, str> {
    Cow::Borrowed(match p {
        ipproto::TCP => "TCP",
        ipproto::UDP => "UDP",
        ipproto::ICMP => "ICMP",
        ipproto::ICMPV6 => "IPv6-ICMP",
        ipproto::SCTP => "SCTP",
        2 => "IGMP",
        4 => "IPIP",
        41 => "IPv6",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        89 => "OSPFIGP",
        103 => "PIM",
        112 => "VRRP",
        n => return Cow::Owned(n.to_string()),
    })
}

pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP)
}

/// An EVE `flow` event, serialised field by field in Suricata's order.
#[derive(Debug, Serialize)]
pub struct FlowEvent {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vlan: Vec<u16>,
    src_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: EveIp,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_type: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spi: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    flow: FlowObject,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpObject>,
}

#[derive(Debug, Serialize)]
struct FlowObject {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    age: i64,
    state: &'static str,
    reason: &'static str,
    alerted: bool,
}

#[derive(Debug, Serialize)]
struct TcpObject {
    tcp_flags: String,
    tcp_flags_ts: String,
    tcp_flags_tc: String,
    #[serde(skip_serializing_if = "is_false")]
    fin: bool,
    #[serde(skip_serializing_if = "is_false")]
    syn: bool,
    #[serde(skip_serializing_if = "is_false")]
    rst: bool,
    #[serde(skip_serializing_if = "is_false")]
    psh: bool,
    #[serde(skip_serializing_if = "is_false")]
    ack: bool,
    #[serde(skip_serializing_if = "is_false")]
    urg: bool,
    #[serde(skip_serializing_if = "is_false")]
    ecn: bool,
    #[serde(skip_serializing_if = "is_false")]
    cwr: bool,
    state: &'static str,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The EVE `flow` event for a finished flow.
pub fn flow_event(r: &FlowRecord) -> FlowEvent {
    let k = &r.key;
    let ports = has_ports(k.proto);
    let icmp = r.icmp_ts;
    let tcp = (k.proto == ipproto::TCP).then(|| {
        let both = r.tcp_flags_ts | r.tcp_flags_tc;
        let hex = |f: u8| format!("{f:02x}");
        TcpObject {
            tcp_flags: hex(both),
            tcp_flags_ts: hex(r.tcp_flags_ts),
            tcp_flags_tc: hex(r.tcp_flags_tc),
            fin: both & 0x01 != 0,
            syn: both & 0x02 != 0,
            rst: both & 0x04 != 0,
            psh: both & 0x08 != 0,
            ack: both & 0x10 != 0,
            urg: both & 0x20 != 0,
            ecn: both & 0x40 != 0,
            cwr: both & 0x80 != 0,
            state: r.tcp_state.as_str(),
        }
    });
    // Suricata reports, for ICMP, the type a reply pairs with (0 if none) and code 0.
    let response = icmp.is_some() && r.pkts_toclient > 0;
    FlowEvent {
        // As Suricata: the engine's time when the flow was logged.
        timestamp: format_timestamp(r.logged_at),
        flow_id: r.flow_id,
        event_type: "flow",
        vlan: k.vlan.iter().copied().take_while(|&v| v != 0).collect(),
        src_ip: EveIp(k.src_ip()),
        src_port: ports.then_some(k.sport),
        dest_ip: EveIp(k.dst_ip()),
        dest_port: ports.then_some(k.dport),
        proto: proto_name(k.proto),
        icmp_type: icmp.map(|i| i.0),
        icmp_code: icmp.map(|i| i.1),
        response_icmp_type: response.then_some(k.dport >> 8),
        response_icmp_code: response.then_some(0),
        spi: (k.proto == ipproto::ESP).then_some(u32::from(k.sport) << 16 | u32::from(k.dport)),
        app_proto: r.app_proto,
        flow: FlowObject {
            pkts_toserver: r.pkts_toserver,
            pkts_toclient: r.pkts_toclient,
            bytes_toserver: r.bytes_toserver,
            bytes_toclient: r.bytes_toclient,
            start: format_timestamp(r.start),
            end: format_timestamp(r.end),
            age: (r.end.secs() - r.start.secs()).max(0),
            state: r.state.as_str(),
            reason: r.reason.as_str(),
            alerted: r.alerted,
        },
        tcp,
    }
}

/// Everything a `stats` event reports.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub uptime_secs: u64,
    pub decoder: DecodeStats,
    pub flow: FlowStats,
    /// Capture-level failures: unreadable, truncated or corrupt files.
    pub capture_errors: u64,
    /// Present when rules are loaded (Suricata omits `stats.detect` without detection).
    pub detect: Option<DetectStats>,
    /// Present in (simulated) IPS mode only, as Suricata's `stats.ips`.
    pub ips: Option<IpsStats>,
    /// Present when the app layer was parsed (with rules): `stats.app_layer`.
    pub app_layer: Option<portcullis_applayer::AppStats>,
    /// Present for live capture (`portcullis run`): `stats.capture` beyond `errors`.
    pub capture: Option<CaptureStats>,
}

/// The live daemon's capture counters. `kernel_packets` and `kernel_drops` are Suricata's
/// names; the per-backend detail goes under `capture.afxdp` (the group Suricata 7's AF_XDP
/// source uses), `capture.afpacket` or `capture.pcap`, the bridge's under `capture.inline`
/// and the XDP program's under `capture.xdp`. The EVE schema shipped with suricata-verify
/// lists none of these groups (its `capture` object is closed), so a strict validator flags
/// them; jq, Elastic and Wazuh take them as they are.
#[derive(Clone, Debug, Default)]
pub struct CaptureStats {
    /// `af-xdp`, `af-packet` or `pcap`.
    pub kind: &'static str,
    /// The ports' counters, summed.
    pub port: portcullis_dataplane::live::PortStats,
    /// Inline: frames an overloaded worker forwarded uninspected (fail-open) or dropped
    /// (fail-closed).
    pub inline: bool,
    pub overload_forwarded: u64,
    pub overload_dropped: u64,
    /// Inline: batches of events not written because the writer was behind (workers never
    /// wait for it on the bridge).
    pub events_lost: u64,
    /// AF_XDP: ports whose sockets bound in zero-copy mode, and in copy mode.
    pub zero_copy_ports: u64,
    pub copy_ports: u64,
    /// The XDP program's counters and block map, when it is attached.
    pub xdp: Option<XdpStats>,
}

/// `stats.capture.xdp`.
#[derive(Clone, Debug, Default)]
pub struct XdpStats {
    pub blocked: u64,
    pub redirected: u64,
    pub passed: u64,
    pub malformed: u64,
    /// Block map entries with their counters (at most the 100 with most hits).
    pub entries: Vec<portcullis_dataplane::live::xdp::BlockedAddr>,
}

/// `stats.detect`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Alerts written.
    pub alert: u64,
    /// Alerts a threshold kept from being written.
    pub alerts_suppressed: u64,
}

/// `stats.ips`: what happened to every packet read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpsStats {
    pub accepted: u64,
    pub blocked: u64,
    pub rejected: u64,
    pub replaced: u64,
    /// `drop_reason.rules`: packets a drop or reject rule matched.
    pub drop_rules: u64,
    /// `drop_reason.flow_drop`: later packets of dropped flows.
    pub drop_flow: u64,
}

fn capture_json(s: &Stats) -> Value {
    let Some(c) = &s.capture else { return json!({ "errors": s.capture_errors }) };
    let p = &c.port;
    let mut m = Map::new();
    m.insert("kernel_packets".into(), (p.packets + p.rx_dropped + p.rx_ring_full).into());
    m.insert("kernel_drops".into(), (p.rx_dropped + p.rx_ring_full).into());
    m.insert("errors".into(), s.capture_errors.into());
    let group = match c.kind {
        "af-xdp" => json!({
            "rx_dropped": p.rx_dropped,
            "rx_ring_full": p.rx_ring_full,
            "fill_ring_empty": p.fill_ring_empty,
            "rx_invalid_descs": p.rx_invalid_descs,
            "tx_invalid_descs": p.tx_invalid_descs,
            "zero_copy_ports": c.zero_copy_ports,
            "copy_ports": c.copy_ports,
        }),
        _ => json!({ "drops": p.rx_dropped }),
    };
    m.insert(c.kind.replace('-', ""), group);
    if c.inline {
        m.insert(
            "inline".into(),
            json!({
                "forwarded": p.forwarded,
                "tx_failed": p.tx_failed,
                "dropped": p.dropped,
                "overload_forwarded": c.overload_forwarded,
                "overload_dropped": c.overload_dropped,
                "events_lost": c.events_lost,
            }),
        );
    }
    if let Some(x) = &c.xdp {
        let entries: Vec<Value> = x
            .entries
            .iter()
            .map(|e| json!({ "ip": e.ip.to_string(), "hits": e.hits, "bytes": e.bytes, "expires_in": e.expires_in.map(|d| d.as_secs()) }))
            .collect();
        m.insert("xdp".into(), json!({ "blocked": x.blocked, "redirected": x.redirected, "passed": x.passed, "malformed": x.malformed, "blocklist": entries }));
    }
    Value::Object(m)
}

/// The EVE `stats` event (Suricata's layout: `stats.decoder`, `stats.flow`, `stats.defrag`).
pub fn stats_event(at: Timestamp, s: &Stats) -> Value {
    let d = &s.decoder;
    let mut events: Map<String, Value> = Map::new();
    for a in Anomaly::ALL {
        let (layer, name) = a.name();
        let n = d.events[a as usize];
        let layer_obj = events.entry(layer).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = layer_obj {
            m.insert(name.into(), n.into());
        }
    }
    let f = &s.flow;
    let mut ev = json!({
        "timestamp": format_timestamp(at),
        "event_type": "stats",
        "stats": {
            "uptime": s.uptime_secs,
            "capture": capture_json(s),
            "decoder": {
                "pkts": d.pkts,
                "bytes": d.bytes,
                "invalid": d.invalid,
                "ipv4": d.ipv4,
                "ipv6": d.ipv6,
                "ethernet": d.ethernet,
                "sll": d.sll,
                "null": d.null,
                "raw": d.raw,
                "tcp": d.tcp,
                "udp": d.udp,
                "sctp": d.sctp,
                "icmpv4": d.icmpv4,
                "icmpv6": d.icmpv6,
                "arp": d.arp,
                "gre": d.gre,
                "ipv4_in_ipv4": d.ipv4_in_ipv4,
                "ipv6_in_ipv4": d.ipv6_in_ipv4,
                "ipv4_in_ipv6": d.ipv4_in_ipv6,
                "ipv6_in_ipv6": d.ipv6_in_ipv6,
                "vlan": d.vlan,
                "vlan_qinq": d.vlan_qinq,
                "unknown_ethertype": d.unknown_ethertype,
                "avg_pkt_size": d.bytes.checked_div(d.pkts).unwrap_or(0),
                "max_pkt_size": d.max_pkt_size,
                "event": events,
            },
            "defrag": {
                "ipv4": { "fragments": d.defrag_ipv4_fragments, "reassembled": d.defrag_ipv4_reassembled },
                "ipv6": { "fragments": d.defrag_ipv6_fragments, "reassembled": d.defrag_ipv6_reassembled },
                "max_trackers_reached": d.defrag_max_trackers_reached,
            },
            "flow": {
                "total": f.total,
                "active": f.active,
                "tcp": f.tcp,
                "udp": f.udp,
                "icmpv4": f.icmpv4,
                "icmpv6": f.icmpv6,
                "memcap": f.memcap,
                "tcp_reuse": f.tcp_reuse,
                "end": { "state": { "new": f.end_new, "established": f.end_established, "closed": f.end_closed } },
                "mgr": { "flows_timeout": f.timeouts },
            },
        }
    });
    if let Some(Value::Object(stats)) = ev.get_mut("stats") {
        if let Some(i) = &s.ips {
            // Suricata puts `ips` right after `uptime`; the order is cosmetic, the names are not.
            stats.insert(
                "ips".into(),
                json!({
                    "accepted": i.accepted,
                    "blocked": i.blocked,
                    "rejected": i.rejected,
                    "replaced": i.replaced,
                    "drop_reason": { "rules": i.drop_rules, "flow_drop": i.drop_flow },
                }),
            );
        }
        if let Some(d) = &s.detect {
            stats.insert("detect".into(), json!({ "alert": d.alert, "alert_queue_overflow": 0, "alerts_suppressed": d.alerts_suppressed }));
        }
        if let Some(a) = &s.app_layer {
            let errors: Map<String, Value> = a.errors.iter().map(|(k, n)| ((*k).to_string(), json!({ "parser": n }))).collect();
            stats.insert("app_layer".into(), json!({ "flow": a.flows, "error": errors }));
        }
    }
    ev
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use portcullis_common::{FlowKey, PacketMeta, TcpFlags};
    use portcullis_flowtable::{FlowConfig, FlowTable};

    pub(crate) fn schema() -> Option<jsonschema::Validator> {
        let path = portcullis_common::shared_data_dir().join("suricata-verify/etc/eve-schema.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping schema validation: {} not found (set PORTCULLIS_DATA)", path.display());
            return None;
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        Some(jsonschema::validator_for(&v).unwrap())
    }

    fn records() -> Vec<FlowRecord> {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        let mut k = FlowKey::new("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap(), 4000, 80, 6);
        k.vlan = [10, 20];
        let mut p = PacketMeta::new(Timestamp::from_secs_micros(1_700_000_000, 5), k, 60);
        p.tcp_flags = TcpFlags(TcpFlags::SYN);
        t.update(&p, &mut out);
        let icmp = FlowKey::new("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 0, 0, 58);
        let mut q = PacketMeta::new(Timestamp::from_secs_micros(1_700_000_001, 0), icmp, 90);
        q.icmp_type = 128;
        t.update(&q, &mut out);
        t.flush(Timestamp::from_secs_micros(1_700_000_002, 0), &mut out);
        out
    }

    #[test]
    fn timestamps_look_like_suricatas() {
        assert_eq!(format_timestamp(Timestamp::from_secs_micros(1_470_346_531, 286_617)), "2016-08-04T21:35:31.286617+0000");
    }

    #[test]
    fn flow_event_has_suricata_fields() {
        let r = records();
        let ev = serde_json::to_value(flow_event(&r[0])).unwrap();
        assert_eq!(ev["event_type"], "flow");
        assert_eq!(ev["src_ip"], "10.0.0.2");
        assert_eq!(ev["dest_port"], 80);
        assert_eq!(ev["proto"], "TCP");
        assert_eq!(ev["vlan"], json!([10, 20]));
        assert_eq!(ev["flow"]["pkts_toserver"], 1);
        assert_eq!(ev["flow"]["reason"], "shutdown");
        assert_eq!(ev["tcp"]["tcp_flags"], "02");
        let icmp = serde_json::to_value(flow_event(&r[1])).unwrap();
        assert_eq!(icmp["proto"], "IPv6-ICMP");
        assert_eq!(icmp["icmp_type"], 128);
        assert!(icmp.get("src_port").is_none());
    }

    #[test]
    fn events_validate_against_the_eve_schema() {
        let Some(v) = schema() else { return };
        let mut s = Stats { detect: Some(DetectStats { alert: 2, alerts_suppressed: 1 }), ips: Some(IpsStats { accepted: 2, blocked: 1, drop_rules: 1, ..Default::default() }), ..Default::default() };
        s.decoder.pkts = 3;
        s.decoder.events[Anomaly::Ipv4TruncPkt as usize] = 1;
        let mut events: Vec<Value> = records().iter().map(|r| serde_json::to_value(flow_event(r)).unwrap()).collect();
        events.push(stats_event(Timestamp::from_secs_micros(1_700_000_002, 0), &s));
        for ev in &events {
            let errors: Vec<String> = v.iter_errors(ev).map(|e| format!("{} at {}", e, e.instance_path)).collect();
            assert!(errors.is_empty(), "{ev}\n{errors:#?}");
        }
    }
}
