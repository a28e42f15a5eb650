//! Transaction rules: sticky buffers, transformations, transaction keywords and the
//! flow's protocol, on transactions built by hand (the parsers have their own tests).

mod support;

use std::path::Path;
use std::sync::Arc;

use portcullis_applayer::{AppProto, Buf, Num, Tx};
use portcullis_common::Direction;
use portcullis_detect::{DetectConfig, Engine, PrefilterKind};
use portcullis_rules::{parse_rule, Origin, ParseContext, Rule, Vars};
use support::{input, meta, T};

fn rules(texts: &[&str]) -> Vec<Rule> {
    let ctx = ParseContext::new(&Vars::default());
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| parse_rule(t, Origin { file: Arc::from(Path::new("app.rules")), line: i as u32 + 1 }, &ctx).unwrap())
        .collect()
}

fn http_tx(id: u64, uri: &[u8], host: &[u8], ua: &[u8]) -> Tx {
    let mut tx = Tx::new(id, AppProto::Http);
    tx.push(Buf::HttpMethod, Direction::ToServer, b"GET");
    tx.push(Buf::HttpUri, Direction::ToServer, uri);
    tx.push(Buf::HttpUriRaw, Direction::ToServer, uri);
    tx.push(Buf::HttpHost, Direction::ToServer, host);
    tx.push(Buf::HttpUserAgent, Direction::ToServer, ua);
    tx.push(Buf::HttpHeader, Direction::ToServer, b"Host: x\r\n");
    tx
}

/// The sids alerting on one packet of `dir` carrying `txs`, for every prefilter kind.
fn sids_all_prefilters(texts: &[&str], txs: &[Tx], dir: Direction, proto: AppProto) -> Vec<u32> {
    let mut out: Option<Vec<u32>> = None;
    for kind in [PrefilterKind::default(), PrefilterKind::AhoCorasick, PrefilterKind::None] {
        let cfg = DetectConfig { prefilter: kind, ..DetectConfig::default() };
        let mut t = T::with(rules(texts), &cfg);
        let m = meta(6, dir, 1);
        let mut p = input(&m, b"", Some(dir));
        p.app_proto = proto;
        p.txs = txs;
        let got = t.sids(&p);
        if let Some(o) = &out {
            assert_eq!(o, &got, "prefilter {kind:?} disagrees");
        }
        out = Some(got);
    }
    out.unwrap()
}

#[test]
fn http_buffers_match_in_their_transaction_only() {
    let texts = [
        r#"alert http any any -> any any (http.uri; content:"/admin"; startswith; http.host; content:"example.com"; endswith; sid:1;)"#,
        r#"alert http any any -> any any (content:"evil"; http_user_agent; nocase; sid:2;)"#,
        r#"alert http any any -> any any (http.host; dotprefix; content:".example.com"; endswith; sid:3;)"#,
        r#"alert http any any -> any any (http.uri; content:"/admin"; http.user_agent; content:"curl"; sid:4;)"#,
        r#"alert http any any -> any any (urilen:>10; sid:5;)"#,
        r#"alert http any any -> any any (http.uri; to_md5; content:"|6c 4f 3e 5b|"; sid:6;)"#,
        r#"alert http any any -> any any (http.stat_code; content:"200"; sid:7;)"#,
        r#"alert tls any any -> any any (tls.sni; content:"example"; sid:8;)"#,
        // md5("/admin/login") = 2035b5b6e9d10224168524656e7e349a (Python's hashlib).
        r#"alert http any any -> any any (http.uri; to_md5; content:"|20 35 b5 b6|"; startswith; sid:9;)"#,
    ];
    let mut tx = http_tx(0, b"/admin/login", b"www.example.com", b"EvilBot/1.0");
    tx.updated = true;
    let got = sids_all_prefilters(&texts, std::slice::from_ref(&tx), Direction::ToServer, AppProto::Http);
    // 4 needs curl in the same transaction; 6's digest is of another URI; 7 is a response
    // buffer not there yet; 8 is for another protocol.
    assert_eq!(got, vec![1, 2, 3, 5, 9]);
}

#[test]
fn a_rule_alerts_once_per_transaction_and_again_for_the_next() {
    let texts = [r#"alert http any any -> any any (http.uri; content:"/x"; sid:1;)"#];
    let mut t = T::new(rules(&texts));
    let m = meta(6, Direction::ToServer, 1);
    let mut tx0 = http_tx(0, b"/x", b"h", b"u");
    let mut p = input(&m, b"", Some(Direction::ToServer));
    p.app_proto = AppProto::Http;
    let txs = [tx0.clone()];
    p.txs = &txs;
    assert_eq!(t.sids(&p), vec![1]);
    // Updated again (the response arrived): no second alert for the same transaction.
    tx0.updated = true;
    let mut tx1 = http_tx(1, b"/x", b"h", b"u");
    tx1.updated = true;
    let txs = [tx0, tx1];
    p.txs = &txs;
    let (alerts, _) = t.run(&p);
    assert_eq!(alerts.iter().map(|a| (a.sid, a.tx_id)).collect::<Vec<_>>(), vec![(1, Some(1))]);
}

#[test]
fn direction_picks_the_instance_of_two_sided_buffers() {
    let texts = [
        r#"alert http any any -> any any (flow:to_client; http.header; content:"Server: nginx"; sid:1;)"#,
        r#"alert http any any -> any any (flow:to_server; http.header; content:"Server: nginx"; sid:2;)"#,
        r#"alert http any any -> any any (flow:to_client; http.uri; content:"/x"; http.stat_code; content:"404"; sid:3;)"#,
    ];
    let mut tx = http_tx(0, b"/x", b"h", b"u");
    tx.push(Buf::HttpHeader, Direction::ToClient, b"Server: nginx\r\n");
    tx.push(Buf::HttpStatCode, Direction::ToClient, b"404");
    let got = sids_all_prefilters(&texts, std::slice::from_ref(&tx), Direction::ToClient, AppProto::Http);
    assert_eq!(got, vec![1, 3]);
}

#[test]
fn dns_and_tls_keywords() {
    let texts = [
        r#"alert dns any any -> any any (dns.query; content:"evil.example"; nocase; sid:1;)"#,
        r#"alert dns any any -> any any (dns.opcode:0; sid:2;)"#,
        r#"alert dns any any -> any any (dns.opcode:!0; sid:3;)"#,
        r#"alert udp any any -> any any (dns.query; dotprefix; content:".example"; endswith; sid:4;)"#,
    ];
    let mut tx = Tx::new(0, AppProto::Dns);
    tx.push(Buf::DnsQuery, Direction::ToServer, b"www.google.com");
    tx.push(Buf::DnsQuery, Direction::ToServer, b"a.EVIL.example");
    tx.push_num(Num::DnsOpcode, Direction::ToServer, 0);
    let mut t = T::new(rules(&texts));
    let m = meta(17, Direction::ToServer, 1);
    let mut p = input(&m, b"", Some(Direction::ToServer));
    p.app_proto = AppProto::Dns;
    let txs = [tx];
    p.txs = &txs;
    assert_eq!(t.sids(&p), vec![1, 2, 4]);

    let texts = [
        r#"alert tls any any -> any any (tls.sni; content:"bad.example"; sid:1;)"#,
        r#"alert tls any any -> any any (tls.version:1.2; sid:2;)"#,
        r#"alert tls any any -> any any (ssl_version:tls1.3; sid:3;)"#,
        r#"alert tls any any -> any any (ja3.hash; content:"e7d705a3286e19ea42f587b344ee6865"; sid:4;)"#,
    ];
    let mut tx = Tx::new(0, AppProto::Tls);
    tx.push(Buf::TlsSni, Direction::ToServer, b"www.bad.example");
    tx.push(Buf::Ja3Hash, Direction::ToServer, b"e7d705a3286e19ea42f587b344ee6865");
    tx.push_num(Num::TlsVersion, Direction::ToServer, 0x0303);
    let got = sids_all_prefilters(&texts, &[tx], Direction::ToServer, AppProto::Tls);
    assert_eq!(got, vec![1, 2, 4]);
}

#[test]
fn app_protocol_rules_without_buffers_need_the_flow_protocol() {
    let texts = [
        r#"alert http any any -> any any (content:"secret"; sid:1;)"#,
        r#"alert tcp any any -> any any (app-layer-protocol:!http; content:"secret"; sid:2;)"#,
        r#"alert tcp any any -> any any (app-layer-protocol:failed; content:"secret"; sid:3;)"#,
    ];
    for (proto, want) in [(AppProto::Http, vec![1]), (AppProto::Failed, vec![2, 3]), (AppProto::Unknown, vec![])] {
        let mut t = T::new(rules(&texts));
        let m = meta(6, Direction::ToServer, 1);
        let mut p = input(&m, b"a secret", Some(Direction::ToServer));
        p.app_proto = proto;
        assert_eq!(t.sids(&p), want, "{proto:?}");
    }
}

#[test]
fn rules_the_app_layer_cannot_serve_are_refused_with_reasons() {
    let (engine, warnings) = Engine::build(
        rules(&[
            r#"alert tcp any any -> any any (http.uri; content:"a"; tls.sni; content:"b"; sid:1;)"#,
            r#"alert tls any any -> any any (http.uri; content:"a"; sid:2;)"#,
            r#"alert udp any any -> any any (http.uri; content:"a"; sid:3;)"#,
            r#"alert http any any -> any any (http.uri; from_base64; content:"a"; sid:4;)"#,
        ]),
        &DetectConfig::default(),
    );
    assert_eq!(engine.len(), 0);
    let reasons: Vec<&str> = warnings.iter().map(|w| w.reason.as_str()).collect();
    assert!(reasons[0].contains("both http and tls"), "{reasons:?}");
    assert!(reasons[1].contains("http buffers in a rule for tls"), "{reasons:?}");
    assert!(reasons[2].contains("another transport"), "{reasons:?}");
    assert!(reasons[3].contains("from_base64"), "{reasons:?}");
}

#[test]
fn buffer_names_agree_with_the_rule_loader() {
    let mut ours: Vec<&str> = Buf::ALL.iter().map(|b| b.name()).collect();
    let mut theirs = portcullis_rules::keywords::APP_BUFFERS.to_vec();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
}
