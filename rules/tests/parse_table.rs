//! Table-driven tests of the rule parser: rule text in, AST fields or the error's column,
//! keyword and kind out. Columns are byte offsets from the rule's first character; the
//! prefix `alert tcp any any -> any any (` is 30 bytes, so the first option is at 30.

use std::path::Path;
use std::sync::Arc;

use portcullis_rules::*;

fn ctx() -> ParseContext {
    ParseContext::new(&Vars::default())
}

fn origin() -> Origin {
    Origin { file: Arc::from(Path::new("t.rules")), line: 1 }
}

fn parse(text: &str) -> Result<Rule, RuleError> {
    parse_rule(text, origin(), &ctx())
}

fn content(r: &Rule, i: usize) -> &Content {
    match &r.payload[i].kind {
        PayloadKind::Content(c) => c,
        k => panic!("payload {i} is {k:?}"),
    }
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

type Check = fn(&Rule);

const OK: &[(&str, Check)] = &[
    ("alert tcp any any -> any any (msg:\"hi\"; sid:1;)", |r| {
        assert_eq!((r.action, &r.proto, r.sid, r.gid, r.rev, r.priority), (Action::Alert, &Proto::Tcp, 1, 1, 0, 3));
        assert_eq!(r.msg, "hi");
        assert!(r.src.is_any() && r.dst.is_any() && r.src_ports.is_any() && !r.bidirectional);
    }),
    ("drop udp $HOME_NET 53 <> $EXTERNAL_NET [1024:,!8080] (sid:2; rev:3; gid:7;)", |r| {
        assert_eq!((r.action, &r.proto, r.rev, r.gid), (Action::Drop, &Proto::Udp, 3, 7));
        assert!(r.bidirectional);
        assert!(r.src.contains_v4(v4("10.1.1.1")) && !r.src.contains_v4(v4("8.8.8.8")));
        assert!(r.dst.contains_v4(v4("8.8.8.8")) && !r.dst.contains_v4(v4("192.168.1.1")));
        assert_eq!(r.src_ports.0, vec![(53, 53)]);
        assert_eq!(r.dst_ports.0, vec![(1024, 8079), (8081, 65535)]);
    }),
    ("rejectboth tcp-pkt [1.2.3.0/24, !1.2.3.4] any -> any $HTTP_PORTS (sid:3;)", |r| {
        assert_eq!((r.action, &r.proto), (Action::RejectBoth, &Proto::TcpPkt));
        assert_eq!(r.src.v4, vec![(v4("1.2.3.0"), v4("1.2.3.3")), (v4("1.2.3.5"), v4("1.2.3.255"))]);
        assert!(r.src.v6.is_empty());
    }),
    ("pass pkthdr any any -> any any (sid:4;)", |r| assert_eq!((r.action, &r.proto), (Action::Pass, &Proto::Ip))),
    ("alert http any any -> any any (sid:5;)", |r| assert_eq!(r.proto, Proto::App("http".into()))),
    // Escapes in msg and content, hex runs, negation, modifiers.
    (r#"alert tcp any any -> any any (msg:"a\;b\"c\\d\:e"; content:!"x|41 42|\;\"\\\:y"; nocase; offset:2; depth:20; sid:6;)"#, |r| {
        assert_eq!(r.msg, "a;b\"c\\d:e");
        let c = content(r, 0);
        assert_eq!(c.pattern, b"xAB;\"\\:y");
        assert!(c.negated && c.nocase);
        assert_eq!((c.offset.clone(), c.depth.clone()), (Some(Value::Lit(2)), Some(Value::Lit(20))));
        assert_eq!(r.payload[0].buffer, Buffer::Payload);
    }),
    ("alert tcp any any -> any any (content:\"|00 01|GET|0d0a|\"; sid:7;)", |r| assert_eq!(content(r, 0).pattern, b"\x00\x01GET\r\n")),
    ("alert tcp any any -> any any (content:\"abc\"; content:\"de\"; distance:-2; within:10; fast_pattern:only; content:\"xyz\"; startswith; endswith; fast_pattern:1,2; sid:8;)", |r| {
        let c = content(r, 1);
        assert_eq!((c.distance.clone(), c.within.clone()), (Some(Value::Lit(-2)), Some(Value::Lit(10))));
        assert!(c.is_relative());
        assert_eq!(c.fast_pattern, Some(FastPattern { only: true, chop: None }));
        let c = content(r, 2);
        assert!(c.startswith && c.endswith);
        assert_eq!(c.fast_pattern, Some(FastPattern { only: false, chop: Some((1, 2)) }));
    }),
    // pcre: Suricata flags, negation, relative, escapes only for ; and ".
    (r#"alert tcp any any -> any any (content:"a"; pcre:!"/^x\;y\d\"+$/smixAEGRO"; sid:9;)"#, |r| {
        let PayloadKind::Pcre(p) = &r.payload[1].kind else { panic!() };
        assert_eq!(p.pattern, r#"^x;y\d"+$"#);
        assert!(p.negated && p.dotall && p.multiline && p.caseless && p.extended && p.anchored && p.dollar_endonly && p.ungreedy && p.relative);
        assert_eq!(p.raw_flags, "smixAEGRO");
        assert_eq!(r.payload[1].buffer, Buffer::Payload);
    }),
    // A pcre buffer flag makes the match inspect that sticky buffer.
    ("alert tcp any any -> any any (pcre:\"/\\/index\\.php/Ui\"; sid:10;)", |r| {
        assert_eq!(r.payload[0].buffer, Buffer::Sticky { name: "http.uri".into(), transforms: vec![] });
        // The app layer fills http.uri: nothing here stops the rule from loading.
        assert_eq!(app_layer_use(r), None);
    }),
    // A buffer no parser fills is what the loader skips.
    ("alert smb any any -> any any (smb.share; content:\"IPC$\"; sid:12;)", |r| {
        assert_eq!(app_layer_use(r).as_deref(), Some("smb.share"));
    }),
    ("alert smb any any -> any any (content:\"IPC$\"; sid:13;)", |r| {
        assert_eq!(app_layer_use(r).as_deref(), Some("proto:smb"));
    }),
    // App-layer keywords that are not buffers.
    ("alert http any any -> any any (urilen:>5,raw; app-layer-protocol:!tls; sid:14;)", |r| {
        assert_eq!(r.app[0], AppMatch::UriLen { cmp: Cmp::Gt(5), raw: true });
        assert_eq!(r.app[1], AppMatch::Protocol { name: "tls".into(), negated: true });
        assert_eq!(app_layer_use(r), None);
    }),
    ("alert tls any any -> any any (tls.version:1.2; ssl_version:sslv3,!tls1.0; sid:15;)", |r| {
        assert_eq!(r.app[0], AppMatch::TlsVersion(0x0303));
        assert_eq!(r.app[1], AppMatch::SslVersion(vec![(0x0300, false), (0x0301, true)]));
    }),
    ("alert dns any any -> any any (dns.opcode:!4; sid:16;)", |r| {
        assert_eq!(r.app[0], AppMatch::DnsOpcode { opcode: 4, negated: true });
    }),
    // Sticky buffers, legacy modifiers, transforms, pkt_data.
    ("alert tcp any any -> any any (content:\"GET\"; http_method; content:\"/a\"; http_uri; http.host; dotprefix; content:\".evil\"; endswith; pkt_data; content:\"x\"; sid:11;)", |r| {
        let names: Vec<&Buffer> = r.payload.iter().map(|m| &m.buffer).collect();
        assert_eq!(names[0], &Buffer::Sticky { name: "http.method".into(), transforms: vec![] });
        assert_eq!(names[1], &Buffer::Sticky { name: "http.uri".into(), transforms: vec![] });
        assert_eq!(names[2], &Buffer::Sticky { name: "http.host".into(), transforms: vec!["dotprefix".into()] });
        assert_eq!(names[3], &Buffer::PktData);
    }),
    ("alert tcp any any -> any any (uricontent:\"/x\"; file_data; content:\"MZ\"; sid:12;)", |r| {
        assert_eq!(r.payload[0].buffer, Buffer::Sticky { name: "http.uri".into(), transforms: vec![] });
        assert_eq!(r.payload[1].buffer, Buffer::Sticky { name: "file.data".into(), transforms: vec![] });
    }),
    // byte_extract variables used by later keywords.
    ("alert tcp any any -> any any (content:\"L\"; byte_extract:2,0,len,relative,little; content:\"Z\"; distance:len; within:len; byte_test:1,>,len,len,relative; isdataat:!len,relative; byte_jump:4,0,relative,multiplier 2,little,align,post_offset -1,from_beginning; sid:13;)", |r| {
        assert_eq!(r.vars, vec!["len".to_string()]);
        let PayloadKind::ByteExtract(x) = &r.payload[1].kind else { panic!() };
        assert_eq!((x.nbytes, x.offset, x.var, x.relative, x.endian), (2, 0, 0, true, Endian::Little));
        let c = content(r, 2);
        assert_eq!((c.distance.clone(), c.within.clone()), (Some(Value::Var(0)), Some(Value::Var(0))));
        let PayloadKind::ByteTest(t) = &r.payload[3].kind else { panic!() };
        assert_eq!((t.value.clone(), t.offset.clone(), t.op, t.relative), (Value::Var(0), Value::Var(0), ByteOp::Gt, true));
        let PayloadKind::IsDataAt(d) = &r.payload[4].kind else { panic!() };
        assert_eq!((d.pos.clone(), d.negated, d.relative), (Value::Var(0), true, true));
        let PayloadKind::ByteJump(j) = &r.payload[5].kind else { panic!() };
        assert_eq!((j.nbytes, j.multiplier, j.align, j.post_offset, j.from_beginning, j.endian), (4, 2, true, -1, true, Endian::Little));
    }),
    ("alert tcp any any -> any any (content:\"a\"; byte_test:4,!&,0x10,-2,relative,string,hex,bitmask 0xff00; sid:14;)", |r| {
        let PayloadKind::ByteTest(t) = &r.payload[1].kind else { panic!() };
        assert_eq!((t.op, t.negated, t.value.clone(), t.offset.clone(), t.format, t.bitmask), (ByteOp::And, true, Value::Lit(16), Value::Lit(-2), NumFormat::String(16), Some(0xff00)));
    }),
    ("alert tcp any any -> any any (dsize:100<>200; ttl:<5; itype:!8; icode:>=1; icmp_id:7; icmp_seq:9; ip_proto:!tcp; sameip; ack:0; seq:42; window:!1024; id:31337; sid:15;)", |r| {
        assert_eq!(
            r.header,
            vec![
                HeaderMatch::Dsize(Cmp::Between(100, 200)),
                HeaderMatch::Ttl(Cmp::Lt(5)),
                HeaderMatch::Itype(Cmp::Ne(8)),
                HeaderMatch::Icode(Cmp::Ge(1)),
                HeaderMatch::IcmpId(7),
                HeaderMatch::IcmpSeq(9),
                HeaderMatch::IpProto(Cmp::Ne(6)),
                HeaderMatch::SameIp,
                HeaderMatch::Ack(0),
                HeaderMatch::Seq(42),
                HeaderMatch::Window { value: 1024, negated: true },
                HeaderMatch::IpId(31337),
            ]
        );
    }),
    ("alert tcp any any -> any any (flags:S,12; sid:16;)", |r| {
        assert_eq!(r.header, vec![HeaderMatch::Flags(TcpFlagsMatch { flags: 0x02, ignore: 0xc0, modifier: FlagsModifier::Exact })]);
    }),
    ("alert tcp any any -> any any (flags:+SA; sid:17;)", |r| {
        assert_eq!(r.header, vec![HeaderMatch::Flags(TcpFlagsMatch { flags: 0x12, ignore: 0, modifier: FlagsModifier::All })]);
    }),
    ("alert tcp any any -> any any (flags:0; sid:18;)", |r| {
        assert_eq!(r.header, vec![HeaderMatch::Flags(TcpFlagsMatch { flags: 0, ignore: 0, modifier: FlagsModifier::Exact })]);
    }),
    ("alert tcp any any -> any any (flow:established,to_server,only_stream; flowbits:isset,a|b; flowbits:set,c; flowbits:noalert; sid:19;)", |r| {
        assert!(r.flow.established && r.flow.to_server && r.flow.only_stream && !r.flow.to_client);
        assert_eq!(r.flowbits, vec![Flowbit { cmd: FlowbitCmd::IsSet, names: vec!["a".into(), "b".into()] }, Flowbit { cmd: FlowbitCmd::Set, names: vec!["c".into()] }]);
        assert!(r.noalert);
    }),
    ("alert tcp any any -> any any (threshold: type both, track by_src, count 5, seconds 60; detection_filter:track by_dst, count 10, seconds 1; sid:20;)", |r| {
        assert_eq!(r.threshold, Some(Threshold { kind: ThresholdKind::Both, track: TrackBy::Src, count: 5, seconds: 60 }));
        assert_eq!(r.detection_filter, Some(Threshold { kind: ThresholdKind::Threshold, track: TrackBy::Dst, count: 10, seconds: 1 }));
    }),
    ("alert tcp any any -> any any (metadata:created_at 2010_07_30, updated_at 2019_07_26, former_category X; reference:url,example.com/a; reference:cve,2009-4179; classtype:trojan-activity; priority:2; target:dest_ip; tag:session,5,packets; noalert; sid:21;)", |r| {
        assert_eq!(r.metadata, vec![("created_at".into(), "2010_07_30".into()), ("updated_at".into(), "2019_07_26".into()), ("former_category".into(), "X".into())]);
        assert_eq!(r.references, vec![("url".into(), "example.com/a".into()), ("cve".into(), "2009-4179".into())]);
        assert_eq!(r.reference_urls, vec![None, None]);
        assert_eq!((r.classtype.as_deref(), r.priority, r.target), (Some("trojan-activity"), 2, Some(Target::Dst)));
        assert!(r.noalert);
    }),
    ("alert tcp any any -> any any (content:\"ab\"; bsize:<10; isdataat:5; content:\"c\"; rawbytes; sid:22;)", |r| {
        assert_eq!(r.payload[1].kind, PayloadKind::Bsize(Cmp::Lt(10)));
        assert_eq!(r.payload[2].kind, PayloadKind::IsDataAt(IsDataAt { pos: Value::Lit(5), negated: false, relative: false }));
    }),
    // byte_* and isdataat may be relative with no earlier match (relative to the buffer's
    // start), as Suricata 7.0.10 accepts; ET Open has `http.accept_lang; isdataat:100,relative;`.
    // A relative pcre may follow a pcre, or start a buffer chosen by a sticky keyword.
    ("alert tcp any any -> any any (byte_test:1,=,1,0,relative; isdataat:1,relative; byte_jump:1,0,relative; pcre:\"/b/\"; pkt_data; pcre:\"/a/R\"; http.uri; pcre:\"/c/R\"; sid:24;)", |r| {
        let PayloadKind::ByteTest(t) = &r.payload[0].kind else { panic!() };
        let PayloadKind::Pcre(p) = &r.payload[4].kind else { panic!() };
        assert!(p.relative && t.relative);
        assert_eq!(r.payload[5].buffer, Buffer::Sticky { name: "http.uri".into(), transforms: vec![] });
    }),
    ("alert tcp any any -> any any (flowbits:set,a&b; sid:25;)", |r| assert_eq!(r.flowbits, vec![Flowbit { cmd: FlowbitCmd::Set, names: vec!["a&b".into()] }])),
    // Whitespace is free around keywords, values and the final parenthesis.
    ("  alert   tcp  any  any  ->  any  any  ( msg : \"x\" ;content :  \"y\" ; sid : 23 ; )  ", |r| {
        assert_eq!((r.msg.as_str(), content(r, 0).pattern.as_slice(), r.sid), ("x", &b"y"[..], 23));
    }),
];

#[test]
fn rules_that_parse() {
    for (text, check) in OK {
        match parse(text) {
            Ok(r) => {
                assert_eq!(r.text, text.trim());
                check(&r)
            }
            Err(e) => panic!("{text}\n  failed: {e}"),
        }
    }
}

#[derive(Debug, PartialEq)]
enum K {
    Syntax,
    Invalid,
    App,
    Unsupported,
    Unknown,
}

/// (rule, column, keyword, kind, part of the message).
const ERR: &[(&str, usize, Option<&str>, K, &str)] = &[
    ("alert tcp any any -> any any (content:\"abcde\"; within:3; sid:1;)", 47, Some("within"), K::Invalid, "within 3 is smaller than the content length 5"),
    ("alert tcp any any -> any any (content:\"abc\"; depth:0; sid:1;)", 45, Some("depth"), K::Invalid, "depth 0"),
    ("alert tcp any any -> any any (content:\"abc\"; depth:2; sid:1;)", 45, Some("depth"), K::Invalid, "smaller than the content length"),
    ("alert tcp any any -> any any (content:\"a\"; depth:5; distance:1; sid:1;)", 52, Some("distance"), K::Invalid, "cannot be combined"),
    ("alert tcp any any -> any any (nocase; sid:1;)", 30, Some("nocase"), K::Invalid, "needs a preceding content"),
    // Each of these is refused by Suricata 7.0.10 too (checked with `suricata -T`).
    ("alert tcp any any -> any any (pcre:\"/a/R\"; sid:1;)", 30, Some("pcre"), K::Invalid, "needs a preceding content or pcre in the same buffer"),
    ("alert tcp any any -> any any (isdataat:1; pcre:\"/a/R\"; sid:1;)", 42, Some("pcre"), K::Invalid, "same buffer"),
    ("alert tcp any any -> any any (content:\"x\"; pcre:\"/a/UR\"; sid:1;)", 43, Some("pcre"), K::Invalid, "same buffer"),
    ("alert tcp any any -> any any (content:\"a\"; startswith; offset:1; sid:1;)", 55, Some("offset"), K::Invalid, "startswith"),
    ("alert tcp any any -> any any (content:\"a\"; depth:1; depth:2; sid:1;)", 52, Some("depth"), K::Invalid, "given twice"),
    ("alert tcp any any -> any any (content:\"a\"; byte_test:9,=,1,0; sid:1;)", 43, Some("byte_test"), K::Invalid, "outside 1-8"),
    ("alert tcp any any -> any any (content:\"a\"; fast_pattern:0,5; sid:1;)", 43, Some("fast_pattern"), K::Invalid, "outside the content"),
    ("alert tcp any any -> any any (content:\"a\"; distance:foo; sid:1;)", 43, Some("distance"), K::Invalid, "byte_extract variable"),
    ("alert tcp any any -> any any (flow:to_server,to_client; sid:1;)", 30, Some("flow"), K::Invalid, "exclude each other"),
    ("alert tcp any any -> any any (flowbits:set,a|b; sid:1;)", 30, Some("flowbits"), K::Invalid, "only meaningful for isset"),
    ("alert tcp any any -> any any (threshold:type limit, count 1, seconds 2; sid:1;)", 30, Some("threshold"), K::Invalid, "needs type, track"),
    ("alert tcp any any -> any any (msg:\"x\";)", 29, Some("sid"), K::Invalid, "no sid"),
    ("alert tcp any any -> any any (sid:0;)", 30, Some("sid"), K::Invalid, "sid 0"),
    // Syntax: escapes, quotes, hex, terminators, header.
    ("alert tcp any any -> any any (content:\"a\\x\"; sid:1;)", 30, Some("content"), K::Syntax, "invalid escape `\\x`"),
    ("alert tcp any any -> any any (content:\"|4|\"; sid:1;)", 30, Some("content"), K::Syntax, "odd number of hex digits"),
    ("alert tcp any any -> any any (content:\"|41 4G|\"; sid:1;)", 30, Some("content"), K::Syntax, "`G` in a |hex| run"),
    ("alert tcp any any -> any any (content:\"|41\"; sid:1;)", 30, Some("content"), K::Syntax, "unterminated |hex|"),
    ("alert tcp any any -> any any (content:\"a\"b\"; sid:1;)", 30, Some("content"), K::Syntax, "after the closing quote"),
    ("alert tcp any any -> any any (content:abc; sid:1;)", 30, Some("content"), K::Syntax, "must be quoted"),
    ("alert tcp any any -> any any (content:\"\"; sid:1;)", 30, Some("content"), K::Syntax, "empty content"),
    ("alert tcp any any -> any any (msg:\"x\"; sid:1)", 39, Some("sid"), K::Syntax, "not terminated by `;`"),
    ("alert tcp any any -> any any (sid:1;", 36, None, K::Syntax, "do not end with `)`"),
    ("alert tcp any any -> any any sid:1;)", 36, None, K::Syntax, "no `(`"),
    ("alert tcp any any -> any (sid:1;)", 25, None, K::Syntax, "the header has 6 fields"),
    ("alarm tcp any any -> any any (sid:1;)", 0, None, K::Syntax, "unknown action `alarm`"),
    ("alert tcpx any any -> any any (sid:1;)", 6, None, K::Syntax, "unknown protocol `tcpx`"),
    ("alert tcp $NOPE any -> any any (sid:1;)", 10, None, K::Syntax, "undefined address variable $NOPE"),
    ("alert tcp any any <- any any (sid:1;)", 18, None, K::Syntax, "unknown direction `<-`"),
    ("alert tcp any 99999 -> any any (sid:1;)", 14, None, K::Syntax, "not a port"),
    ("alert tcp any any -> !any any (sid:1;)", 21, None, K::Syntax, "matches nothing"),
    ("alert tcp any any -> any any (content:\"a\"; pcre:\"/a/Rq\"; sid:1;)", 43, Some("pcre"), K::Syntax, "unknown pcre flag `q`"),
    ("alert tcp any any -> any any (pcre:\"/a/UH\"; sid:1;)", 30, Some("pcre"), K::Syntax, "two buffers"),
    ("alert tcp any any -> any any (flags:SX; sid:1;)", 30, Some("flags"), K::Invalid, "`X` is not a TCP flag"),
    ("alert tcp any any -> any any (nocase:1; content:\"a\"; sid:1;)", 30, Some("nocase"), K::Syntax, "takes no value"),
    // Support: app-layer, unsupported, unknown keywords are named.
    ("alert http any any -> any any (app-layer-event:http.x; sid:1;)", 31, Some("app-layer-event"), K::App, "unsupported app-layer keyword app-layer-event"),
    ("alert dns any any -> any any (dns.opcode:16; sid:1;)", 30, Some("dns.opcode"), K::Invalid, "not 0-15"),
    ("alert tcp any any -> any any (content:\"a\"; byte_test:1,=,1,0,dce; sid:1;)", 43, Some("byte_test dce"), K::App, "app-layer"),
    ("alert tcp any any -> any any (stream_size:server,>,5; sid:1;)", 30, Some("stream_size"), K::Unsupported, "unsupported keyword stream_size"),
    ("alert ipv6 any any -> any any (sid:1;)", 6, Some("proto:ipv6"), K::Unsupported, "unsupported keyword proto:ipv6"),
    ("alert tcp any any -> any any (frobnicate:1; sid:1;)", 30, Some("frobnicate"), K::Unknown, "unknown keyword frobnicate"),
    ("alert tcp any any -> any any (content:\"a\"; to_md5; sid:1;)", 43, Some("to_md5"), K::Unsupported, "unsupported keyword to_md5"),
];

#[test]
fn rules_that_fail_name_column_keyword_and_reason() {
    for (text, col, kw, kind, needle) in ERR {
        let e = match parse(text) {
            Ok(r) => panic!("{text}\n  parsed: {r:?}"),
            Err(e) => e,
        };
        let k = match e.kind {
            RuleErrorKind::Syntax(_) => K::Syntax,
            RuleErrorKind::Invalid(_) => K::Invalid,
            RuleErrorKind::Unsupported { app_layer: true } => K::App,
            RuleErrorKind::Unsupported { app_layer: false } => K::Unsupported,
            RuleErrorKind::Unknown => K::Unknown,
        };
        let msg = e.to_string();
        assert_eq!((e.column, e.keyword.as_deref(), &k), (*col, *kw, kind), "{text}\n  {msg}");
        assert!(msg.contains(needle), "{text}\n  message `{msg}` lacks `{needle}`");
        if text.contains("sid:1;") {
            assert_eq!(e.sid, Some(1), "{text}");
        }
    }
}

#[test]
fn classification_and_reference_configs_fill_category_priority_and_urls() {
    let (classifications, bad) = Classifications::parse("config classification: trojan-activity,A Network Trojan was detected, 1\n");
    assert!(bad.is_empty());
    let (references, _) = References::parse("config reference: url http://\n");
    let ctx = ParseContext { classifications: Some(classifications), references, ..ctx() };
    let r = parse_rule("alert tcp any any -> any any (classtype:trojan-activity; reference:url,x.com; reference:foo,1; sid:1;)", origin(), &ctx).unwrap();
    assert_eq!((r.category.as_str(), r.priority), ("A Network Trojan was detected", 1));
    assert_eq!(r.reference_urls, vec![Some("http://".to_string()), None]);
    // An explicit priority wins over the classtype's, whatever the order.
    let r = parse_rule("alert tcp any any -> any any (priority:3; classtype:trojan-activity; sid:1;)", origin(), &ctx).unwrap();
    assert_eq!(r.priority, 3);
    let e = parse_rule("alert tcp any any -> any any (classtype:nope; sid:1;)", origin(), &ctx).unwrap_err();
    assert_eq!((e.column, e.keyword.as_deref()), (30, Some("classtype")));
    assert!(e.to_string().contains("unknown classtype `nope`"));
}

#[test]
fn files_comments_continuations_and_duplicates() {
    let text = "# a comment\n\
                \n\
                alert tcp any any -> any any (msg:\"one\"; sid:1; rev:1;)\n\
                # alert tcp any any -> any any (msg:\"commented\"; sid:2;)\n\
                alert tcp any any -> any any (msg:\"two\"; \\\n    content:\"x\"; \\\n    sid:3;)\r\n\
                alert tcp any any -> any any (msg:\"dup, lower rev\"; sid:1; rev:0;)\n\
                alert tcp any any -> any any (msg:\"dup, higher rev\"; sid:1; rev:2;)\n\
                alert smb any any -> any any (msg:\"app\"; smb.share; content:\"/a\"; sid:4;)\n\
                alert tcp any any -> any any (msg:\"broken\"; content:\"a; sid:5;)\n\
                #alert tcp any any -> any any (msg:\"commented continuation\"; \\\n    sid:6;)\n";
    let r = RuleSet::load_str(text, "t.rules", &ctx());
    let got: Vec<(u32, u32, &str)> = r.rules.iter().map(|r| (r.sid, r.origin.line, r.msg.as_str())).collect();
    assert_eq!(got, vec![(1, 9, "dup, higher rev"), (3, 5, "two")]);
    assert_eq!(r.rules[1].text, "alert tcp any any -> any any (msg:\"two\";     content:\"x\";     sid:3;)");
    let skipped: Vec<(u32, Option<u32>, SkipKind, Option<&str>)> = r.skipped.iter().map(|s| (s.origin.line, s.sid, s.kind, s.keyword.as_deref())).collect();
    assert_eq!(
        skipped,
        vec![
            (8, Some(1), SkipKind::DuplicateSid, Some("sid")),
            (3, Some(1), SkipKind::DuplicateSid, Some("sid")),
            (10, Some(4), SkipKind::AppLayer, Some("smb.share")),
            (11, Some(5), SkipKind::Syntax, Some("content")),
        ]
    );
    assert_eq!(r.skipped[2].to_string(), "t.rules:10: sid 4: unsupported app-layer keyword smb.share (no parser fills it)");
    assert!(r.skipped[3].to_string().starts_with("t.rules:11: sid 5: syntax error at column 44 in content:"), "{}", r.skipped[3]);
    assert_eq!(r.skipped_by_keyword(), vec![("(duplicate sid)".to_string(), 2), ("content".to_string(), 1), ("smb.share".to_string(), 1)]);
}

#[test]
fn every_engine_keyword_in_the_registry_has_a_parser() {
    // An `Engine` keyword without a parser would hit `unreachable!`; give each a value and
    // check that the answer is a rule or an error, never a panic.
    for (name, support) in keywords::KEYWORDS {
        if *support != keywords::Support::Engine {
            continue;
        }
        for v in ["", ":1", ":\"x\""] {
            let text = format!("alert tcp any any -> any any (content:\"abc\"; {name}{v}; sid:1;)");
            let _ = parse(&text);
        }
    }
}

#[test]
fn unreadable_files_are_errors_not_aborts() {
    let dir = std::env::temp_dir().join(format!("portcullis-rules-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.rules");
    std::fs::write(&good, "alert tcp any any -> any any (sid:1;)\n").unwrap();
    let files = vec![dir.join("missing.rules"), good];
    let r = RuleSet::load(&files, &Vars::default(), None, None).unwrap();
    assert_eq!((r.rules.len(), r.files), (1, 1));
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].contains("missing.rules: cannot read"), "{:?}", r.errors);
    let e = RuleSet::load(&files, &Vars::default(), Some(&dir.join("nope.config")), None).unwrap_err();
    assert!(e.to_string().contains("nope.config: cannot read"));
    let mut bad = Vars::default();
    bad.address_groups.insert("HOME_NET".into(), "[10.0.0.0/8".into());
    let e = RuleSet::load(&files, &bad, None, None).unwrap_err();
    assert!(e.to_string().contains("address-groups.HOME_NET"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
