//! The prefilter must not change results: an engine with it gives exactly the alerts of an
//! engine that evaluates every rule on every packet, over generated rules and payloads.

mod support;

use portcullis_common::Direction;
use portcullis_detect::{DetectConfig, PrefilterKind};
use portcullis_rules::{Proto, Rule};
use support::*;

/// A small deterministic generator (64-bit LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Bytes over a small alphabet (mixed case) so that patterns occur often.
    fn word(&mut self, len: usize) -> Vec<u8> {
        const A: &[u8] = b"abcABC\x00\xff";
        (0..len).map(|_| A[self.below(A.len() as u64) as usize]).collect()
    }
}

fn gen_rule(g: &mut Lcg, sid: u32) -> Rule {
    let mut r = rule(sid).proto(match g.below(3) {
        0 => Proto::Tcp,
        1 => Proto::Udp,
        _ => Proto::Ip,
    });
    let n = 1 + g.below(3);
    for i in 0..n {
        let len = 1 + g.below(4) as usize;
        let w = g.word(len);
        r = if g.below(6) == 0 { r.not_content(&w) } else { r.content(&w) };
        if g.below(2) == 0 {
            r = r.nocase();
        }
        if i > 0 && g.below(2) == 0 {
            r = r.distance(g.below(3) as i32);
            if g.below(2) == 0 {
                r = r.within(len as i32 + g.below(4) as i32);
            }
        }
        if i == 0 && g.below(5) == 0 {
            r = r.depth(len as u32 + g.below(8) as u32);
        }
        if g.below(8) == 0 && len > 1 {
            r = r.fast_pattern(Some((0, 1)));
        }
    }
    if g.below(7) == 0 {
        r = r.pcre("[aA][bB]", if g.below(2) == 0 { "" } else { "i" });
    }
    match g.below(4) {
        0 => r = r.flow(|f| f.to_server = true),
        1 => r = r.flow(|f| f.to_client = true),
        _ => {}
    }
    r.build()
}

#[test]
fn prefilter_equals_brute_force() {
    let mut g = Lcg(7);
    let rules: Vec<Rule> = (1..=300).map(|sid| gen_rule(&mut g, sid)).collect();
    let mut fast = T::with(rules.clone(), &DetectConfig::default());
    let mut brute = T::with(rules, &DetectConfig { prefilter: PrefilterKind::None, ..DetectConfig::default() });
    assert!(fast.engine.stats().patterns[0][0] > 50, "most rules have a fast pattern");
    let mut total = 0;
    let mut off = 0u64;
    for i in 0..400 {
        let len = g.below(40) as usize;
        let payload = g.word(len);
        let proto = if i % 2 == 0 { 6 } else { 17 };
        let dir = match i % 3 {
            0 => Some(Direction::ToServer),
            1 => Some(Direction::ToClient),
            _ => None,
        };
        let m = meta(proto, dir.unwrap_or(Direction::ToServer), i);
        let mut p = input(&m, &payload, dir);
        if proto == 6 && i % 4 == 0 && dir.is_some() {
            p.stream = Some(&payload);
            p.stream_offset = off;
            off += payload.len() as u64;
        }
        let (a, va) = fast.run(&p);
        let (b, vb) = brute.run(&p);
        let key = |v: &[portcullis_detect::Alert]| v.iter().map(|a| (a.sid, a.from_stream)).collect::<Vec<_>>();
        assert_eq!(key(&a), key(&b), "packet {i} payload {payload:?}");
        assert_eq!(va, vb);
        total += a.len();
    }
    assert!(total > 200, "the comparison must exercise matches, got {total}");
}

/// Binary payloads of packet size with single-byte and short patterns anywhere, the case
/// where Vectorscan's `SINGLEMATCH` mode loses literals near the end of the buffer.
#[test]
fn prefilter_equals_brute_force_on_binary_payloads() {
    let mut g = Lcg(11);
    let rules: Vec<Rule> = (0..=255u32)
        .step_by(3)
        .map(|b| rule(b + 1).proto(Proto::Tcp).content(&[b as u8]).build())
        .chain((0..60).map(|i| {
            let w: Vec<u8> = (0..2 + i % 3).map(|_| g.below(256) as u8).collect();
            rule(1000 + i as u32).proto(Proto::Tcp).content(&w).build()
        }))
        .collect();
    let cfg = DetectConfig { packet_alert_max: usize::MAX, ..DetectConfig::default() };
    let mut fast = T::with(rules.clone(), &cfg);
    let mut brute = T::with(rules, &DetectConfig { prefilter: PrefilterKind::None, ..cfg });
    for i in 0..300 {
        let len = 1 + g.below(1500) as usize;
        let payload: Vec<u8> = (0..len).map(|_| g.below(256) as u8).collect();
        let m = meta(6, Direction::ToServer, i);
        let p = input(&m, &payload, Some(Direction::ToServer));
        let key = |v: Vec<portcullis_detect::Alert>| {
            let mut s: Vec<u32> = v.iter().map(|a| a.sid).collect();
            s.sort_unstable();
            s
        };
        let (a, _) = fast.run(&p);
        let (b, _) = brute.run(&p);
        assert_eq!(key(a), key(b), "payload {i} of {len} bytes");
    }
}
