//! Payload keywords on literal payloads, one table row per case.

mod support;

use portcullis_rules::{ByteOp, Cmp, Endian, NumFormat, Rule, Value};
use support::*;

fn check(table: Vec<(&str, Rule, &[u8], bool)>) {
    let mut failed = Vec::new();
    for (name, r, payload, want) in table {
        let got = hits(r, payload);
        if got != want {
            failed.push(format!("{name}: payload {:?} want {want} got {got}", String::from_utf8_lossy(payload)));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn content_modifiers() {
    check(vec![
        ("plain", rule(1).content(b"abc").build(), b"xxabcxx", true),
        ("plain miss", rule(1).content(b"abc").build(), b"xxabxcx", false),
        ("case", rule(1).content(b"ABC").build(), b"xxabc", false),
        ("nocase", rule(1).content(b"ABC").nocase().build(), b"xxabc", true),
        ("nocase hex", rule(1).content(b"\x00Ab").nocase().build(), b"\x00aB", true),
        ("depth in", rule(1).content(b"abc").depth(4).build(), b"xabc", true),
        ("depth out", rule(1).content(b"abc").depth(4).build(), b"xxabc", false),
        ("offset out", rule(1).content(b"abc").offset(2).build(), b"xabc", false),
        ("offset in", rule(1).content(b"abc").offset(2).build(), b"xxabc", true),
        ("offset+depth in", rule(1).content(b"abc").offset(2).depth(3).build(), b"xxabc", true),
        ("offset+depth out", rule(1).content(b"abc").offset(2).depth(3).build(), b"xxxabc", false),
        ("distance in", rule(1).content(b"a").content(b"c").distance(1).build(), b"abc", true),
        ("distance out", rule(1).content(b"a").content(b"c").distance(1).build(), b"ac", false),
        ("within in", rule(1).content(b"a").content(b"b").within(1).build(), b"ab", true),
        ("within out", rule(1).content(b"a").content(b"b").within(1).build(), b"axb", false),
        (
            "negative distance",
            rule(1).content(b"def").content(b"abc").distance(-6).within(3).build(),
            b"abcdef",
            true,
        ),
        (
            "negative distance misplaced",
            rule(1).content(b"def").content(b"abc").distance(-6).within(3).build(),
            b"abcxdef",
            false,
        ),
        ("retry earlier content", rule(1).content(b"a").content(b"b").within(1).build(), b"axab", true),
        (
            "relative byte_test does not retry without within",
            rule(1)
                .content(b"a")
                .byte_test(portcullis_rules::ByteTest { relative: true, ..bt(1, ByteOp::Eq, 0x31, 0) })
                .build(),
            b"a2a1",
            false,
        ),
        (
            "relative byte_test first occurrence",
            rule(1)
                .content(b"a")
                .byte_test(portcullis_rules::ByteTest { relative: true, ..bt(1, ByteOp::Eq, 0x31, 0) })
                .build(),
            b"a1a2",
            true,
        ),
        ("negated within miss", rule(1).content(b"a").not_content(b"b").distance(0).within(2).build(), b"axxb", true),
        ("negated within hit", rule(1).content(b"a").not_content(b"b").distance(0).within(2).build(), b"axb", false),
        ("negated within retry", rule(1).content(b"a").not_content(b"b").distance(0).within(2).build(), b"abxa", true),
        ("negated absent", rule(1).content(b"a").not_content(b"zz").build(), b"abc", true),
        ("negated present", rule(1).content(b"a").not_content(b"bc").build(), b"abc", false),
        ("startswith in", rule(1).content(b"abc").startswith().build(), b"abcd", true),
        ("startswith out", rule(1).content(b"abc").startswith().build(), b"xabc", false),
        ("endswith in", rule(1).content(b"bcd").endswith().build(), b"abcd", true),
        ("endswith out", rule(1).content(b"bcd").endswith().build(), b"abcde", false),
        ("endswith later occurrence", rule(1).content(b"ab").endswith().build(), b"abxab", true),
        (
            "byte_extract feeds depth",
            rule(1).byte_extract(be(1, 0, 0)).content(b"abc").depth_var(0).build(),
            b"\x05xabc",
            true,
        ),
        (
            "byte_extract feeds depth short",
            rule(1).byte_extract(be(1, 0, 0)).content(b"abc").depth_var(0).build(),
            b"\x04xabc",
            false,
        ),
        (
            "byte_extract feeds distance",
            rule(1)
                .content(b"L")
                .byte_extract(portcullis_rules::ByteExtract { relative: true, ..be(1, 0, 0) })
                .content(b"Z")
                .distance_var(0)
                .within(1)
                .build(),
            b"L\x02abZ",
            true,
        ),
        (
            "byte_extract string",
            rule(1)
                .byte_extract(portcullis_rules::ByteExtract { format: NumFormat::String(10), ..be(2, 0, 0) })
                .content(b"Q")
                .depth_var(0)
                .build(),
            b"12xxxxxxxxQ",
            true,
        ),
    ]);
}

#[test]
fn isdataat_bsize_dsize() {
    check(vec![
        ("isdataat short", rule(1).isdataat(5, false, false).build(), b"12345", false),
        ("isdataat long", rule(1).isdataat(5, false, false).build(), b"123456", true),
        ("isdataat negated", rule(1).isdataat(5, true, false).build(), b"12345", true),
        ("isdataat relative", rule(1).content(b"ab").isdataat(2, false, true).build(), b"abxx", true),
        ("isdataat relative short", rule(1).content(b"ab").isdataat(2, false, true).build(), b"abx", false),
        ("isdataat !relative", rule(1).content(b"ab").isdataat(1, true, true).build(), b"xab", true),
        ("bsize", rule(1).content(b"a").bsize(Cmp::Eq(4)).build(), b"abcd", true),
        ("bsize miss", rule(1).content(b"a").bsize(Cmp::Lt(4)).build(), b"abcd", false),
        ("dsize", rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Gt(3))).build(), b"abcd", true),
        ("dsize miss", rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Gt(3))).build(), b"abc", false),
        // Suricata's signature mask: `!N`, `>N`, `>=N` and ranges need a payload, `<N` does not.
        ("dsize ne empty", rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Ne(9))).build(), b"", false),
        ("dsize ne", rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Ne(9))).build(), b"a", true),
        ("dsize ge 0 empty", rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Ge(0))).build(), b"", false),
        ("dsize lt empty", rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Lt(9))).build(), b"", true),
        (
            "dsize range exclusive",
            rule(1).header(portcullis_rules::HeaderMatch::Dsize(Cmp::Between(2, 4))).build(),
            b"abcd",
            false,
        ),
    ]);
}

#[test]
fn pcre() {
    check(vec![
        ("plain", rule(1).pcre("ab+c", "").build(), b"xabbbc", true),
        ("caseless", rule(1).pcre("ab+c", "i").build(), b"xABBC", true),
        ("case", rule(1).pcre("ab+c", "").build(), b"xABBC", false),
        ("lookahead and backref", rule(1).pcre("(a)\\1(?=b)", "").build(), b"xaab", true),
        ("lookbehind", rule(1).pcre("(?<=x)y", "").build(), b"zy xy", true),
        ("lookbehind miss", rule(1).pcre("(?<=x)y", "").build(), b"zy", false),
        ("relative anchored ^", rule(1).content(b"x").pcre("^y", "R").build(), b"xy", true),
        (
            "content before a relative pcre is not retried (no within)",
            rule(1).content(b"a").pcre("^b", "R").build(),
            b"axab",
            false,
        ),
        ("relative anchored ^ miss", rule(1).content(b"x").pcre("^y", "R").build(), b"xzy", false),
        ("A flag", rule(1).pcre("abc", "A").build(), b"abc", true),
        ("A flag miss", rule(1).pcre("abc", "A").build(), b"xabc", false),
        ("dotall", rule(1).pcre("a.b", "s").build(), b"a\nb", true),
        ("no dotall", rule(1).pcre("a.b", "").build(), b"a\nb", false),
        ("multiline", rule(1).pcre("^b", "m").build(), b"a\nb", true),
        ("extended", rule(1).pcre("a b # comment", "x").build(), b"ab", true),
        ("ungreedy then relative", rule(1).pcre("a.+b", "G").content(b"b").distance(0).build(), b"axbyb", true),
        ("E flag", rule(1).pcre("ab$", "E").build(), b"ab\n", false),
        ("no E flag", rule(1).pcre("ab$", "").build(), b"ab\n", true),
        ("negated", rule(1).content(b"ab").pcre("cd", "!").build(), b"ab", true),
        ("negated hit", rule(1).content(b"ab").pcre("cd", "!").build(), b"abcd", false),
        (
            "relative pcre retries",
            rule(1).pcre("a.", "").content(b"Z").within(1).build(),
            b"a1xa2Z",
            true,
        ),
        ("content after pcre", rule(1).pcre("GET ", "").content(b"HTTP").distance(0).build(), b"GET / HTTP", true),
    ]);
}

#[test]
fn byte_keywords() {
    use portcullis_rules::{ByteJump, ByteTest};
    check(vec![
        ("test >", rule(1).byte_test(bt(2, ByteOp::Gt, 0x100, 0)).build(), b"\x01\x01", true),
        ("test > miss", rule(1).byte_test(bt(2, ByteOp::Gt, 0x101, 0)).build(), b"\x01\x01", false),
        (
            "test little endian",
            rule(1).byte_test(ByteTest { endian: Endian::Little, ..bt(2, ByteOp::Eq, 0x0201, 0) }).build(),
            b"\x01\x02",
            true,
        ),
        (
            "test string dec",
            rule(1).byte_test(ByteTest { format: NumFormat::String(10), ..bt(3, ByteOp::Eq, 123, 0) }).build(),
            b"123",
            true,
        ),
        (
            "test string hex",
            rule(1).byte_test(ByteTest { format: NumFormat::String(16), ..bt(2, ByteOp::Eq, 0xff, 1) }).build(),
            b"xff",
            true,
        ),
        (
            "test negated",
            rule(1).byte_test(ByteTest { negated: true, ..bt(1, ByteOp::Eq, 5, 0) }).build(),
            b"\x06",
            true,
        ),
        (
            "test bitmask",
            rule(1).byte_test(ByteTest { bitmask: Some(0xf0), ..bt(1, ByteOp::Eq, 0xa, 0) }).build(),
            b"\xa3",
            true,
        ),
        ("test &", rule(1).byte_test(bt(1, ByteOp::And, 0x80, 0)).build(), b"\x81", true),
        ("test | is xor", rule(1).byte_test(bt(1, ByteOp::Or, 0x81, 0)).build(), b"\x81", false),
        ("test out of buffer", rule(1).byte_test(bt(4, ByteOp::Ge, 0, 0)).build(), b"\x01\x02", false),
        (
            "test relative negative offset",
            rule(1).content(b"ab").byte_test(ByteTest { relative: true, ..bt(1, ByteOp::Eq, b'a' as u64, -2) }).build(),
            b"ab",
            true,
        ),
        (
            "test value from byte_extract",
            rule(1).byte_extract(be(1, 0, 0)).byte_test(ByteTest { value: Value::Var(0), ..bt(1, ByteOp::Eq, 0, 1) }).build(),
            b"\x07\x07",
            true,
        ),
        (
            "jump relative then within",
            rule(1)
                .content(b"A")
                .byte_jump(ByteJump { relative: true, ..bj(1, 0) })
                .content(b"Z")
                .within(1)
                .build(),
            b"A\x02xxZ",
            true,
        ),
        (
            "jump multiplier",
            rule(1).byte_jump(ByteJump { multiplier: 2, ..bj(1, 0) }).content(b"Z").within(1).build(),
            b"\x02xxxxZ",
            true,
        ),
        (
            "jump align",
            rule(1).byte_jump(ByteJump { align: true, ..bj(1, 0) }).content(b"Z").within(1).build(),
            b"\x02xxxxZ",
            true,
        ),
        (
            "jump from_beginning",
            rule(1).byte_jump(ByteJump { from_beginning: true, ..bj(1, 0) }).content(b"Z").within(1).build(),
            b"\x03xxZ",
            true,
        ),
        (
            "jump post_offset",
            rule(1).byte_jump(ByteJump { post_offset: -1, ..bj(1, 0) }).content(b"Z").within(1).build(),
            b"\x02xZx",
            true,
        ),
        (
            "jump from_end",
            rule(1).byte_jump(ByteJump { from_end: true, post_offset: -2, ..bj(1, 0) }).content(b"Z").within(1).build(),
            b"\x00xxZx",
            true,
        ),
        ("jump past end", rule(1).byte_jump(bj(1, 0)).build(), b"\x09xx", false),
        (
            "jump string",
            rule(1)
                .byte_jump(ByteJump { format: NumFormat::String(10), ..bj(1, 0) })
                .content(b"Z")
                .within(1)
                .build(),
            b"3xxxZ",
            true,
        ),
    ]);
}

#[test]
fn recursion_limit_gives_up_like_suricata() {
    let r = || rule(1).content(b"a").content(b"b").within(1).build();
    let mut payload = vec![b'a'; 5000];
    payload.extend_from_slice(b"ab");
    assert!(!hits(r(), &payload), "3000 retries then give up");
    let cfg = portcullis_detect::DetectConfig { recursion_limit: 100_000, ..Default::default() };
    let mut t = T::with(vec![r()], &cfg);
    let m = meta(17, portcullis_common::Direction::ToServer, 0);
    assert_eq!(t.sids(&input(&m, &payload, Some(portcullis_common::Direction::ToServer))), vec![1]);
    let mut short = vec![b'a'; 100];
    short.extend_from_slice(b"ab");
    assert!(hits(r(), &short));
}
