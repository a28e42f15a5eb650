use chrono::{DateTime, Utc};
use portcullis_common::{ipproto, Anomaly, Timestamp};
use portcullis_dataplane::DecodeStats;
use portcullis_flowtable::{FlowRecord, FlowStats};
use serde_json::{json, Map, Value};

/// A timestamp as EVE writes it: `2024-04-19T13:05:01.123456+0000`, always UTC.
pub fn format_timestamp(t: Timestamp) -> String {
    let dt = DateTime::<Utc>::from_timestamp(t.secs(), (t.subsec_micros() * 1000) as u32).unwrap_or_default();
    dt.format("%Y-%m-%dT%H:%M:%S%.6f%z").to_string()
}

/// The protocol name EVE's `proto` field uses (Suricata's names), or the number.
pub fn proto_name(p: u8) -> String {
    match p {
        ipproto::TCP => "TCP".into(),
        ipproto::UDP => "UDP".into(),
        ipproto::ICMP => "ICMP".into(),
        ipproto::ICMPV6 => "IPv6-ICMP".into(),
        ipproto::SCTP => "SCTP".into(),
        2 => "IGMP".into(),
        4 => "IPIP".into(),
        41 => "IPv6".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        89 => "OSPFIGP".into(),
        103 => "PIM".into(),
        112 => "VRRP".into(),
        n => n.to_string(),
    }
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP)
}

/// The EVE `flow` event for a finished flow.
pub fn flow_event(r: &FlowRecord) -> Value {
    let k = &r.key;
    let mut ev = Map::new();
    // As Suricata: the engine's time when the flow was logged.
    ev.insert("timestamp".into(), format_timestamp(r.logged_at).into());
    ev.insert("flow_id".into(), r.flow_id.into());
    ev.insert("event_type".into(), "flow".into());
    if k.vlan[0] != 0 || k.vlan[1] != 0 {
        let ids: Vec<u16> = k.vlan.iter().copied().take_while(|&v| v != 0).collect();
        ev.insert("vlan".into(), json!(ids));
    }
    ev.insert("src_ip".into(), k.src_ip().to_string().into());
    if has_ports(k.proto) {
        ev.insert("src_port".into(), k.sport.into());
    }
    ev.insert("dest_ip".into(), k.dst_ip().to_string().into());
    if has_ports(k.proto) {
        ev.insert("dest_port".into(), k.dport.into());
    }
    ev.insert("proto".into(), proto_name(k.proto).into());
    if let Some((t, c)) = r.icmp_ts {
        ev.insert("icmp_type".into(), t.into());
        ev.insert("icmp_code".into(), c.into());
    }
    if r.icmp_ts.is_some() && r.pkts_toclient > 0 {
        // Suricata reports the type a reply pairs with (0 if none), code 0.
        ev.insert("response_icmp_type".into(), (k.dport >> 8).into());
        ev.insert("response_icmp_code".into(), 0.into());
    }
    if k.proto == ipproto::ESP {
        ev.insert("spi".into(), (u32::from(k.sport) << 16 | u32::from(k.dport)).into());
    }
    ev.insert(
        "flow".into(),
        json!({
            "pkts_toserver": r.pkts_toserver,
            "pkts_toclient": r.pkts_toclient,
            "bytes_toserver": r.bytes_toserver,
            "bytes_toclient": r.bytes_toclient,
            "start": format_timestamp(r.start),
            "end": format_timestamp(r.end),
            "age": (r.end.secs() - r.start.secs()).max(0),
            "state": r.state.as_str(),
            "reason": r.reason.as_str(),
            "alerted": r.alerted,
        }),
    );
    if k.proto == ipproto::TCP {
        let both = r.tcp_flags_ts | r.tcp_flags_tc;
        let hex = |f: u8| format!("{f:02x}");
        let mut tcp = Map::new();
        tcp.insert("tcp_flags".into(), hex(both).into());
        tcp.insert("tcp_flags_ts".into(), hex(r.tcp_flags_ts).into());
        tcp.insert("tcp_flags_tc".into(), hex(r.tcp_flags_tc).into());
        for (bit, name) in [(0x01, "fin"), (0x02, "syn"), (0x04, "rst"), (0x08, "psh"), (0x10, "ack"), (0x20, "urg"), (0x40, "ecn"), (0x80, "cwr")] {
            if both & bit != 0 {
                tcp.insert(name.into(), true.into());
            }
        }
        tcp.insert("state".into(), r.tcp_state.as_str().into());
        ev.insert("tcp".into(), Value::Object(tcp));
    }
    Value::Object(ev)
}

/// Everything a `stats` event reports.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub uptime_secs: u64,
    pub decoder: DecodeStats,
    pub flow: FlowStats,
    /// Capture-level failures: unreadable, truncated or corrupt files.
    pub capture_errors: u64,
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
    json!({
        "timestamp": format_timestamp(at),
        "event_type": "stats",
        "stats": {
            "uptime": s.uptime_secs,
            "capture": { "errors": s.capture_errors },
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
                "avg_pkt_size": if d.pkts > 0 { d.bytes / d.pkts } else { 0 },
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::{FlowKey, PacketMeta, TcpFlags};
    use portcullis_flowtable::{FlowConfig, FlowTable};

    fn schema() -> Option<jsonschema::Validator> {
        let dir = std::env::var("PORTCULLIS_DATA").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").into());
        let path = std::path::Path::new(&dir).join("suricata-verify/etc/eve-schema.json");
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
        let ev = flow_event(&r[0]);
        assert_eq!(ev["event_type"], "flow");
        assert_eq!(ev["src_ip"], "10.0.0.2");
        assert_eq!(ev["dest_port"], 80);
        assert_eq!(ev["proto"], "TCP");
        assert_eq!(ev["vlan"], json!([10, 20]));
        assert_eq!(ev["flow"]["pkts_toserver"], 1);
        assert_eq!(ev["flow"]["reason"], "shutdown");
        assert_eq!(ev["tcp"]["tcp_flags"], "02");
        let icmp = flow_event(&r[1]);
        assert_eq!(icmp["proto"], "IPv6-ICMP");
        assert_eq!(icmp["icmp_type"], 128);
        assert!(icmp.get("src_port").is_none());
    }

    #[test]
    fn events_validate_against_the_eve_schema() {
        let Some(v) = schema() else { return };
        let mut s = Stats::default();
        s.decoder.pkts = 3;
        s.decoder.events[Anomaly::Ipv4TruncPkt as usize] = 1;
        let mut events: Vec<Value> = records().iter().map(flow_event).collect();
        events.push(stats_event(Timestamp::from_secs_micros(1_700_000_002, 0), &s));
        for ev in &events {
            let errors: Vec<String> = v.iter_errors(ev).map(|e| format!("{} at {}", e, e.instance_path)).collect();
            assert!(errors.is_empty(), "{ev}\n{errors:#?}");
        }
    }
}
