//! Snapshots for the tests: empty, what a small gateway under a port scan looks like, and one
//! with every list far longer and every string far wider than any pane.

use std::net::IpAddr;

use portcullis_api::*;

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A snapshot from a daemon that has just started: nothing seen, nothing decided.
pub(crate) fn empty() -> Snapshot {
    Snapshot { source: "run".into(), ..Snapshot::default() }
}

pub(crate) fn rule_alert(ts: &str, sid: u64, sig: &str, severity: u8, src: &str, dst: &str) -> AlertRow {
    AlertRow {
        timestamp: ts.into(),
        kind: AlertKind::Rule,
        gid: 1,
        sid,
        signature: sig.into(),
        severity,
        category: Some("Attempted Information Leak".into()),
        src: Some(ip(src)),
        src_port: Some(51_544),
        dst: Some(ip(dst)),
        dst_port: Some(22),
        proto: Some("TCP".into()),
        action: "allowed".into(),
        rule: Some(format!(
            "alert tcp any any -> $HOME_NET 22 (msg:\"{sig}\"; flow:to_server; flags:S; threshold:type both, track by_src, count 5, seconds 60; sid:{sid}; rev:3;)"
        )),
        ml: None,
    }
}

pub(crate) fn ml_alert(ts: &str, class: &str, p: f32, src: &str) -> AlertRow {
    AlertRow {
        timestamp: ts.into(),
        kind: AlertKind::Ml,
        gid: 1,
        sid: 9_000_001,
        signature: format!("ML {class} {p:.2}"),
        severity: 2,
        category: Some("model".into()),
        src: Some(ip(src)),
        src_port: Some(40_000),
        dst: Some(ip("10.0.0.1")),
        dst_port: Some(80),
        proto: Some("TCP".into()),
        action: "allowed".into(),
        rule: None,
        ml: Some(MlVerdict {
            model: "cicids2017 v3".into(),
            class: class.into(),
            probability: p,
            anomaly: Some(0.82),
            features: vec![
                ("Flow IAT Mean".into(), 1532.5, 0.41),
                ("SYN Flag Count".into(), 1.0, 0.22),
                ("Dst Port".into(), 8080.0, -0.05),
            ],
        }),
    }
}

pub(crate) fn flow(id: u64, (src, sport): (&str, u16), (dst, dport): (&str, u16), packets: u64, bytes: u64, age: f64) -> FlowRow {
    FlowRow {
        flow_id: id,
        proto: "TCP".into(),
        src: ip(src),
        src_port: Some(sport),
        dst: ip(dst),
        dst_port: Some(dport),
        app_proto: Some("http".into()),
        packets,
        bytes,
        age_secs: age,
        state: Some("established".into()),
        ml_class: None,
        ml_score: None,
    }
}

pub(crate) fn active(addr: &str, action: &str, expires: u64, hits: u64) -> ActiveRow {
    ActiveRow { addr: ip(addr), action: action.into(), decision: 7, expires_in_secs: expires, dry_run: false, hits }
}

pub(crate) fn pending(id: u64, target: &str, trigger: &str) -> PendingRow {
    PendingRow { id, action: "block".into(), target: ip(target), duration_secs: Some(600), trigger: trigger.into(), age_secs: 95 }
}

/// A gateway watching a port scan from 203.0.113.9: a dozen flows, rule and model alerts, one
/// block in force, one rate limit, one request awaiting approval.
pub(crate) fn realistic() -> Snapshot {
    let ramp = |base: u64| (0..60u64).map(|i| base + base * (i % 10) / 10 + i * base / 60).collect::<Vec<_>>();
    let mut flows = vec![
        flow(11, ("192.168.1.20", 51_000), ("93.184.216.34", 443), 9_100, 12_400_000, 340.0),
        flow(12, ("192.168.1.21", 51_001), ("151.101.1.69", 443), 2_000, 2_300_000, 61.5),
        flow(13, ("203.0.113.9", 40_000), ("10.0.0.1", 22), 40, 2_400, 3.0),
        flow(14, ("192.168.1.22", 53_535), ("1.1.1.1", 53), 2, 180, 0.4),
    ];
    flows[3].proto = "UDP".into();
    flows[3].app_proto = Some("dns".into());
    flows[3].state = None;
    flows[2].ml_class = Some("PortScan".into());
    flows[2].ml_score = Some(0.97);
    Snapshot {
        at: 1_714_564_801.0,
        uptime_secs: 3_720,
        source: "run".into(),
        traffic: Traffic {
            packets_per_sec: ramp(12_000),
            bits_per_sec: ramp(98_000_000),
            drops_per_sec: (0..60).map(|i| u64::from(i % 7 == 0) * 3).collect(),
            packets_total: 44_000_000,
            bytes_total: 36_000_000_000,
            drops_by_reason: vec![("ring".into(), 310), ("rule".into(), 42), ("blocklist".into(), 17)],
        },
        capture: CaptureHealth {
            mode: "af-xdp".into(),
            inline: true,
            fail_mode: Some("open".into()),
            ports: vec![
                PortHealth { name: "eth1 q0".into(), packets_per_sec: 6_100, packets: 22_000_000, ring_drops: 0, backlog: 0 },
                PortHealth { name: "eth1 q1".into(), packets_per_sec: 5_900, packets: 21_000_000, ring_drops: 310, backlog: 12 },
            ],
            events_lost: 0,
        },
        top_talkers: vec![
            Talker { addr: ip("192.168.1.20"), bytes_per_sec: 1_250_000, packets_per_sec: 900, flows: 12 },
            Talker { addr: ip("203.0.113.9"), bytes_per_sec: 40_000, packets_per_sec: 650, flows: 310 },
            Talker { addr: ip("192.168.1.22"), bytes_per_sec: 3_000, packets_per_sec: 20, flows: 4 },
        ],
        flows,
        flows_active: 1_204,
        alerts: vec![
            rule_alert("2024-05-01T12:00:01.000001+0000", 2_001_219, "ET SCAN Potential SSH Scan", 2, "203.0.113.9", "10.0.0.1"),
            ml_alert("2024-05-01T12:00:02.500000+0000", "PortScan", 0.97, "203.0.113.9"),
            rule_alert("2024-05-01T12:00:03.250000+0000", 2_100_498, "GPL ATTACK_RESPONSE id check returned root", 1, "10.0.0.1", "198.51.100.4"),
        ],
        alerts_total: 3,
        enforcement: Enforcement {
            mode: "enforce".into(),
            nft_missing: None,
            active: vec![active("203.0.113.9", "block", 552, 1_234), active("198.51.100.77", "rate-limit", 3_600, 0)],
            pending: vec![pending(4, "198.51.100.4", "sid 2100498")],
        },
        scoring: Some(Scoring {
            backend: "cpu".into(),
            backend_note: None,
            model: "cicids2017 v3".into(),
            previous_model: Some("cicids2017 v2".into()),
            flows_scored: 48_200,
            batches: 1_550,
            mean_batch: 31.1,
            latency_p50_ms: 0.41,
            latency_p99_ms: 1.25,
            shadow: None,
        }),
        drift: Some(Drift { flows: 5_000, features: vec![("Flow IAT Mean".into(), 0.12)], threshold: 0.25, unavailable: None }),
        rules: Some(RulesInfo {
            files: vec!["/etc/portcullis/rules/et.rules".into()],
            loaded: 31_250,
            failed: 0,
            loaded_at: "2024-05-01T11:00:00.000000+0000".into(),
            errors: Vec::new(),
            last_reload_refused: None,
        }),
    }
}

/// Every list longer than any pane, every string wider than any column, every number huge.
pub(crate) fn overflowing() -> Snapshot {
    let mut s = realistic();
    let long = "ET EXPLOIT Something with an extraordinarily long signature that no pane could ever show whole";
    s.traffic.packets_per_sec = (0..1_000).collect();
    s.traffic.bits_per_sec = vec![u64::MAX; 1_000];
    s.traffic.drops_by_reason = (0..40).map(|i| (format!("decoder.event.ipv4.reason_{i}"), 1_000 - i)).collect();
    s.traffic.packets_total = u64::MAX;
    s.capture.ports = (0..16)
        .map(|q| PortHealth {
            name: format!("enp5s0f1np1 queue {q}: af-xdp zero-copy mode, need_wakeup"),
            packets_per_sec: 1_000_000 * q,
            packets: u64::MAX,
            ring_drops: q * 1_000,
            backlog: q,
        })
        .collect();
    s.capture.events_lost = 12;
    s.flows = (0..300u64)
        .map(|i| {
            let src = format!("2001:db8:aaaa:bbbb:cccc:dddd:eeee:{i:x}");
            flow(1_000 + i, (&src, 60_000), ("2001:db8:1111:2222:3333:4444:5555:6666", 443), i * 3, 1_000_000 - i, i as f64)
        })
        .collect();
    s.flows_active = 2_000_000;
    s.alerts = (0..200u32)
        .map(|i| rule_alert(&format!("2024-05-01T12:{:02}:{:02}.000000+0000", i / 60, i % 60), u64::from(i), &format!("{long} #{i}"), 3, "2001:db8::9", "10.0.0.1"))
        .collect();
    s.alerts_total = 1_000_000;
    s.top_talkers = (0..50u64)
        .map(|i| Talker { addr: ip(&format!("2001:db8:aaaa:bbbb:cccc:dddd:eeee:{i:x}")), bytes_per_sec: u64::MAX - i, packets_per_sec: u64::MAX, flows: u64::MAX })
        .collect();
    s.enforcement.active = (0..40).map(|i| active(&format!("198.51.100.{i}"), "block", 86_400 * 30, u64::MAX)).collect();
    s.enforcement.pending = (0..20).map(|i| pending(100 + i, &format!("192.0.2.{i}"), long)).collect();
    if let Some(sc) = s.scoring.as_mut() {
        sc.backend_note = Some("cuda requested but no GPU was found: fell back to the CPU".into());
        sc.shadow = Some(Shadow { model: "cicids2017 v4-candidate".into(), flows: 1_000, agree: 981, only_candidate_alerts: 4, only_active_alerts: 2 });
    }
    if let Some(r) = s.rules.as_mut() {
        r.failed = 3;
        r.last_reload_refused = Some("et.rules:12: unknown keyword 'foo'".into());
    }
    s
}
