//! Signature inspection throughput: real captures' TCP/UDP payloads through
//! `Engine::inspect`, with ET Open's packet-level contents as rules, once per prefilter
//! backend (Aho-Corasick; Vectorscan with `--features vectorscan`).
//!
//! Until the rule parser is in this tree the rules come from a small extractor below: every
//! `alert tcp|udp` rule of ET Open without app-layer keywords becomes a rule with its
//! `content` strings (hex and `nocase` understood, other modifiers dropped). That keeps the
//! fast-pattern set (what the prefilter cost depends on) close to the real one.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis_benches::{bench_captures, decode_all, load_frames};
use portcullis_common::{Direction, PacketMeta};
use portcullis_detect::{DetectConfig, Engine, PacketInput, PrefilterKind};
use portcullis_rules::*;

/// `content:"..."` values of a rule line, decoded, with whether `nocase` follows.
fn contents(line: &str) -> Vec<(Vec<u8>, bool)> {
    let mut out: Vec<(Vec<u8>, bool)> = Vec::new();
    for opt in line.split("; ") {
        let opt = opt.trim();
        if opt == "nocase" {
            if let Some(last) = out.last_mut() {
                last.1 = true;
            }
            continue;
        }
        let Some(v) = opt.strip_prefix("content:\"").and_then(|v| v.strip_suffix('"')) else { continue };
        let mut bytes = Vec::new();
        let mut hex = false;
        for part in v.split('|') {
            if hex {
                for h in part.split_whitespace() {
                    if let Ok(b) = u8::from_str_radix(h, 16) {
                        bytes.push(b);
                    }
                }
            } else {
                let mut esc = false;
                for c in part.bytes() {
                    if c == b'\\' && !esc {
                        esc = true;
                        continue;
                    }
                    esc = false;
                    bytes.push(c);
                }
            }
            hex = !hex;
        }
        if !bytes.is_empty() {
            out.push((bytes, false));
        }
    }
    out
}

fn et_rules() -> Option<Vec<Rule>> {
    let dir = portcullis_common::shared_data_dir().join("rules/et-open-2024-04");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "rules"));
    files.sort();
    const APP: &[&str] = &["http", "dns.", "dns_", "tls", "file", "ssh", "ja3", "smb", "dce", "ftp", "krb5", "snmp", "sip", "quic", "app-layer", "base64", "flowbits", "pkt_data"];
    let mut rules = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).ok()?;
        for line in text.lines() {
            let proto = if line.starts_with("alert tcp ") {
                Proto::Tcp
            } else if line.starts_with("alert udp ") {
                Proto::Udp
            } else {
                continue;
            };
            if APP.iter().any(|k| line.contains(k)) {
                continue;
            }
            let cs = contents(line);
            if cs.is_empty() {
                continue;
            }
            let sid = line.split("sid:").nth(1).and_then(|s| s.split(';').next()).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            rules.push(Rule {
                action: Action::Alert,
                proto,
                src: IpSet::any(),
                src_ports: PortSet::any(),
                dst: IpSet::any(),
                dst_ports: PortSet::any(),
                bidirectional: false,
                gid: 1,
                sid,
                rev: 1,
                msg: String::new(),
                classtype: None,
                category: String::new(),
                priority: 3,
                metadata: vec![],
                references: vec![],
                reference_urls: vec![],
                target: None,
                flow: FlowOpts::default(),
                header: vec![],
                app: vec![],
                payload: cs
                    .into_iter()
                    .map(|(pattern, nocase)| PayloadMatch {
                        buffer: Buffer::Payload,
                        kind: PayloadKind::Content(Content {
                            pattern,
                            negated: false,
                            nocase,
                            offset: None,
                            depth: None,
                            distance: None,
                            within: None,
                            startswith: false,
                            endswith: false,
                            fast_pattern: None,
                        }),
                    })
                    .collect(),
                flowbits: vec![],
                noalert: false,
                threshold: None,
                detection_filter: None,
                vars: vec![],
                origin: Origin { file: f.as_path().into(), line: 0 },
                text: String::new(),
            });
        }
    }
    Some(rules)
}

fn inspect(c: &mut Criterion) {
    let Some(rules) = et_rules() else {
        eprintln!("note: ET Open rules not found under the shared data dir; skipping the prefilter bench");
        return;
    };
    let frames = load_frames(&bench_captures());
    let metas = decode_all(&frames);
    // Payload bytes of each TCP/UDP packet (the decoder records where they sit in the frame).
    let mut pkts: Vec<(PacketMeta, &[u8])> = Vec::new();
    for m in &metas {
        if !matches!(m.key.proto, 6 | 17) || m.payload_len == 0 {
            continue;
        }
        let f = &frames[(m.pcap_cnt - 1) as usize];
        let (o, l) = (m.payload_offset as usize, m.payload_len as usize);
        if let Some(p) = f.data.get(o..o + l) {
            pkts.push((*m, p));
        }
    }
    let bytes: usize = pkts.iter().map(|p| p.1.len()).sum();
    let kinds = [
        PrefilterKind::AhoCorasick,
        #[cfg(feature = "vectorscan")]
        PrefilterKind::Vectorscan,
    ];
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    let mut expected = None;
    for kind in kinds {
        let (engine, _) = Engine::build(rules.clone(), &DetectConfig { prefilter: kind, ..DetectConfig::default() });
        let mut scratch = engine.new_scratch();
        let mut alerts = Vec::new();
        let run = |scratch: &mut portcullis_detect::Scratch, alerts: &mut Vec<portcullis_detect::Alert>| {
            let mut n = 0usize;
            for (m, p) in &pkts {
                let inp = PacketInput {
                    meta: m,
                    payload: p,
                    ip_id: 0,
                    icmp_id: 0,
                    icmp_seq: 0,
                    dir: Some(Direction::ToServer),
                    established: true,
                    stream: None,
                    stream_offset: 0,
                    pseudo: false,
                    app_proto: Default::default(),
                    txs: &[],
                    app_other: None,
                };
                alerts.clear();
                engine.inspect(&inp, None, scratch, alerts);
                n += alerts.len();
            }
            n
        };
        let n = run(&mut scratch, &mut alerts);
        // Both backends must agree, and the rules must fire at all.
        assert!(n > 0, "no alerts: the bench would measure nothing");
        assert_eq!(*expected.get_or_insert(n), n, "{kind:?} disagrees");
        g.bench_function(format!("{kind:?}/{}_rules/{}_packets", engine.len(), pkts.len()), |b| {
            b.iter(|| assert_eq!(run(&mut scratch, &mut alerts), n))
        });
    }
    g.finish();
}

criterion_group!(benches, inspect);
criterion_main!(benches);
