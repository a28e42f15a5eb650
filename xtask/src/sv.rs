//! suricata-verify's test language, interpreted the way its `run.py` does.
//!
//! A test is a directory with `test.yaml` (`requires`, `args`, `pcap`, `checks`), a capture,
//! optional rules and an optional `suricata.yaml`. This module holds the parts that need no
//! process: version requirements compared with the Suricata version Portcullis emulates,
//! `find_value` over dotted keys, `filter` and `stats` checks over EVE events. The runner in
//! `verify.rs` decides what Portcullis can run and runs it.
//!
//! Where `run.py` is silent (the `__gt`/`__gte`/`__lt`/`__lte` suffixes its README documents
//! but the stored `run.py` predates), the README's meaning is followed: a numeric comparison
//! of the value found with the expected number.

use serde_json::{Map, Value};

/// The Suricata release Portcullis emulates: tests are gated against it.
pub const EMULATED: Version = Version { major: 7, minor: Some(0), patch: Some(10) };

/// A Suricata version; missing parts are `None` only in `version:` (equality) requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: Option<u64>,
    pub patch: Option<u64>,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.major)?;
        if let Some(m) = self.minor {
            write!(f, ".{m}")?;
            if let Some(p) = self.patch {
                write!(f, ".{p}")?;
            }
        }
        Ok(())
    }
}

/// `parse_suricata_version`: the leading `MAJOR[.MINOR[.PATCH]]`; missing parts are 0, or
/// unknown for an equality requirement (`version: 7` matches every 7.x.y).
pub fn parse_version(s: &str, equal: bool) -> Option<Version> {
    let s = s.trim();
    let s = s.strip_prefix("Suricata version ").unwrap_or(s);
    let mut parts = s.split('.');
    // The leading digits of each dot-separated part, as run.py's pattern reads them.
    let num = |p: Option<&str>| -> Option<u64> {
        let digits: String = p?.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major = num(parts.next())?;
    let default = if equal { None } else { Some(0) };
    let minor = num(parts.next());
    let patch = if minor.is_some() { num(parts.next()) } else { None };
    Some(Version { major, minor: minor.or(default), patch: patch.or(default) })
}

/// A YAML scalar as Python's `str()` would print it, so `8`, `8.0` and `"8.0.1"` parse alike.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

fn cmp3(a: &Version, b: &Version) -> std::cmp::Ordering {
    let t = |v: &Version| (v.major, v.minor.unwrap_or(0), v.patch.unwrap_or(0));
    t(a).cmp(&t(b))
}

/// `is_equal`: parts the requirement leaves out match anything.
fn version_equal(have: &Version, want: &Version) -> bool {
    have.major == want.major
        && (want.minor.is_none() || have.minor.is_none() || have.minor == want.minor)
        && (want.patch.is_none() || have.patch.is_none() || have.patch == want.patch)
}

/// Checks one version requirement (`min-version`, `lt-version`, `gt-version`, `version`,
/// `max-version`)
/// against `have`. `Ok(None)` when met, `Ok(Some(reason))` when not; `Err` for a key that is
/// not a version requirement or a value that is not a version.
pub fn version_requirement(key: &str, value: &Value, have: &Version) -> Result<Option<String>, String> {
    let text = scalar_text(value);
    let want = parse_version(&text, key == "version").ok_or_else(|| format!("`{key}: {text}` is not a version"))?;
    let ord = cmp3(have, &want);
    let (ok, reason) = match key {
        "min-version" => (ord.is_ge(), format!("requires Suricata >= {text}")),
        "lt-version" => (ord.is_lt(), format!("requires Suricata < {text}")),
        "gt-version" => (ord.is_gt(), format!("requires Suricata > {text}")),
        // Not in run.py; read as its name says, for test descriptions that use it.
        "max-version" => (ord.is_le(), format!("requires Suricata <= {text}")),
        "version" => (version_equal(have, &want), format!("only for Suricata {text}")),
        _ => return Err(format!("`{key}` is not a version requirement")),
    };
    Ok(if ok { None } else { Some(reason) })
}

/// What `find_value` returns: nothing, a value, or the length `__len` asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Found<'a> {
    None,
    Val(&'a Value),
    Len(i64),
}

/// Suffixes that end the path and hand the value to the comparison.
const OPERATORS: [&str; 8] = ["__contains", "__find", "__startswith", "__endswith", "__gt", "__gte", "__lt", "__lte"];

/// `find_value`: walks `a.b[2].c`; `__len` yields the length (-1 for a number), an operator
/// suffix stops the walk. A JSON null is "not found", as Python's `None` is.
pub fn find_value<'a>(name: &str, mut obj: &'a Value) -> Found<'a> {
    for part in name.split('.') {
        if part == "__len" {
            return Found::Len(match obj {
                Value::String(s) => s.chars().count() as i64,
                Value::Array(a) => a.len() as i64,
                Value::Object(o) => o.len() as i64,
                _ => -1,
            });
        }
        if OPERATORS.contains(&part) {
            break;
        }
        let (key, index) = match part.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
            Some((k, i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => (k, i.parse::<usize>().ok()),
            _ => (part, None),
        };
        let Some(next) = obj.as_object().and_then(|o| o.get(key)) else { return Found::None };
        obj = next;
        if let Some(i) = index {
            let Some(next) = obj.as_array().and_then(|a| a.get(i)) else { return Found::None };
            obj = next;
        }
    }
    if obj.is_null() {
        Found::None
    } else {
        Found::Val(obj)
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Python's bool is an int.
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Python's `==` on JSON-like values: numbers by value (`1 == 1.0 == True`), containers
/// element by element.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w))),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Does one `key: expected` entry of a filter's `match` hold for `event`?
pub fn match_entry(key: &str, expected: &Value, event: &Value) -> bool {
    if key == "has-key" || key == "not-has-key" {
        let path = expected.as_str().map_or_else(|| scalar_text(expected), str::to_string);
        let present = find_value(&path, event) != Found::None;
        return present == (key == "has-key");
    }
    let found = find_value(key, event);
    let len_holder;
    let val: &Value = match found {
        Found::None => &Value::Null,
        Found::Val(v) => v,
        Found::Len(n) => {
            len_holder = Value::from(n);
            &len_holder
        }
    };
    let op = OPERATORS.iter().find(|op| key.ends_with(*op));
    match op.copied() {
        Some("__find" | "__startswith" | "__endswith") => {
            let (Some(s), Some(e)) = (val.as_str(), expected.as_str()) else { return false };
            match op.copied() {
                Some("__find") => s.contains(e),
                Some("__startswith") => s.starts_with(e),
                _ => s.ends_with(e),
            }
        }
        Some("__contains") => match val {
            Value::Array(a) => a.iter().any(|x| py_eq(x, expected)),
            Value::String(s) => expected.as_str().is_some_and(|e| s.contains(e)),
            Value::Object(o) => expected.as_str().is_some_and(|e| o.contains_key(e)),
            _ => false,
        },
        Some(cmp) => {
            let (Some(x), Some(y)) = (num(val), num(expected)) else { return false };
            match cmp {
                "__gt" => x > y,
                "__gte" => x >= y,
                "__lt" => x < y,
                _ => x <= y,
            }
        }
        // A missing key reads as None, which equals an expected `~` (absent or null).
        None => py_eq(val, expected),
    }
}

/// Does every entry of a filter's `match` hold for `event`?
pub fn filter_matches(matcher: &Map<String, Value>, event: &Value) -> bool {
    matcher.iter().all(|(k, v)| match_entry(k, v, event))
}

/// A `filter` check: exactly `count` events of `events` match. `Err` says what was found.
pub fn eval_filter(filter: &Map<String, Value>, events: &[Value]) -> Result<(), String> {
    let empty = Map::new();
    let matcher = filter.get("match").and_then(Value::as_object).unwrap_or(&empty);
    let got = events.iter().filter(|e| filter_matches(matcher, e)).count();
    let want = filter.get("count").cloned().unwrap_or(Value::Null);
    if py_eq(&Value::from(got as u64), &want) {
        return Ok(());
    }
    let what = Value::Object(matcher.clone());
    match filter.get("comment").and_then(Value::as_str) {
        Some(c) => Err(format!("{c}: expected {}, got {got} (filter {what})", scalar_text(&want))),
        None => Err(format!("expected {} matches of {what}, got {got}", scalar_text(&want))),
    }
}

/// The `stats` object of the last `stats` event.
pub fn last_stats(events: &[Value]) -> Option<&Value> {
    events.iter().rev().find(|e| e["event_type"] == "stats").map(|e| &e["stats"])
}

/// A `stats` check: every key (relative to the last stats event's `stats`) has its value.
pub fn eval_stats(check: &Map<String, Value>, events: &[Value]) -> Result<(), String> {
    let none = Value::Null;
    let stats = last_stats(events).unwrap_or(&none);
    for (k, want) in check {
        if !match_entry(k, want, stats) {
            let got = match find_value(k, stats) {
                Found::None => "nothing".to_string(),
                Found::Val(v) => v.to_string(),
                Found::Len(n) => n.to_string(),
            };
            return Err(format!("stats.{k}: expected {}; got {got}", scalar_text(want)));
        }
    }
    Ok(())
}

/// The key path a match entry reads (the operator suffix and `__len` removed), for deciding
/// which event types and fields a check depends on.
pub fn key_path(key: &str, expected: &Value) -> String {
    if key == "has-key" || key == "not-has-key" {
        return expected.as_str().map_or_else(|| scalar_text(expected), str::to_string);
    }
    let mut parts: Vec<&str> = key.split('.').collect();
    while parts.last().is_some_and(|p| OPERATORS.contains(p) || *p == "__len") {
        parts.pop();
    }
    parts.join(".")
}

/// The first name of a path, without an index: `dns.query[0].rrname` -> `dns`.
pub fn head(path: &str) -> &str {
    let first = path.split('.').next().unwrap_or("");
    first.split('[').next().unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Value {
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
        serde_json::to_value(y).unwrap()
    }

    #[test]
    fn versions_parse_like_run_py() {
        let v = |s, eq| parse_version(s, eq).map(|v| (v.major, v.minor, v.patch));
        assert_eq!(v("4.0.0", false), Some((4, Some(0), Some(0))));
        assert_eq!(v("4.1.0-dev", false), Some((4, Some(1), Some(0))));
        assert_eq!(v("4", false), Some((4, Some(0), Some(0))));
        assert_eq!(v("4", true), Some((4, None, None)));
        assert_eq!(v("7.0", true), Some((7, Some(0), None)));
        assert_eq!(v("Suricata version 7.0.10 RELEASE", false), Some((7, Some(0), Some(10))));
        assert_eq!(v("x", false), None);
    }

    #[test]
    fn requirements_against_7_0_10() {
        let cases: &[(&str, &str, bool)] = &[
            ("min-version", "7", true),
            ("min-version", "7.0.10", true),
            ("min-version", "7.0.11", false),
            ("min-version", "8", false),
            ("min-version", "6.0", true),
            ("lt-version", "8", true),
            ("lt-version", "7.0.10", false),
            ("lt-version", "7.0.11", true),
            ("gt-version", "7.0.9", true),
            ("gt-version", "7", true),
            ("gt-version", "7.0.10", false),
            ("version", "7", true),
            ("version", "7.0", true),
            ("version", "7.0.10", true),
            ("version", "7.0.9", false),
            ("version", "8", false),
            ("max-version", "7.0.10", true),
            ("max-version", "7.0.9", false),
        ];
        for (key, val, ok) in cases {
            let got = version_requirement(key, &json!(val), &EMULATED).unwrap();
            assert_eq!(got.is_none(), *ok, "{key}: {val} -> {got:?}");
        }
        // YAML numbers print as Python does: 8.0 is 8.0, not 8.
        assert_eq!(version_requirement("min-version", &yaml("8.0"), &EMULATED).unwrap().unwrap(), "requires Suricata >= 8.0");
        assert!(version_requirement("min-version", &yaml("6"), &EMULATED).unwrap().is_none());
        assert!(version_requirement("max-ver", &json!("6"), &EMULATED).is_err());
    }

    #[test]
    fn find_value_paths() {
        let e = json!({"event_type": "alert", "alert": {"signature_id": 2, "metadata": {"tag": ["a", "b", "c"]}},
                       "dns": {"query": [{"rrname": "x.org"}]}, "n": null, "s": "hello"});
        assert_eq!(find_value("event_type", &e), Found::Val(&json!("alert")));
        assert_eq!(find_value("alert.signature_id", &e), Found::Val(&json!(2)));
        assert_eq!(find_value("alert.metadata.tag[1]", &e), Found::Val(&json!("b")));
        assert_eq!(find_value("alert.metadata.tag[3]", &e), Found::None);
        assert_eq!(find_value("dns.query[0].rrname", &e), Found::Val(&json!("x.org")));
        assert_eq!(find_value("alert.metadata.tag.__len", &e), Found::Len(3));
        assert_eq!(find_value("s.__len", &e), Found::Len(5));
        assert_eq!(find_value("alert.signature_id.__len", &e), Found::Len(-1));
        assert_eq!(find_value("n", &e), Found::None);
        assert_eq!(find_value("missing.x", &e), Found::None);
        assert_eq!(find_value("s.__startswith", &e), Found::Val(&json!("hello")));
    }

    #[test]
    fn match_entries() {
        let e: Value = serde_json::from_str(
            r#"{"event_type":"alert","alert":{"signature_id":1,"rev":1.0,"metadata":{"x":["v1","v2"]}},
                "ftp":{"reply":["Opening BINARY","Transfer complete."]},"flow":{"age":3,"alerted":true},
                "engine":{"message":"script failed to run"}}"#,
        )
        .unwrap();
        let cases: &[(&str, Value, bool)] = &[
            ("event_type", json!("alert"), true),
            ("event_type", json!("flow"), false),
            ("alert.signature_id", json!(1), true),
            ("alert.signature_id", json!("1"), false),
            ("alert.rev", json!(1), true),
            ("flow.alerted", json!(true), true),
            ("flow.alerted", json!(1), true),
            ("alert.metadata.x[0]", json!("v1"), true),
            ("alert.metadata.x.__len", json!(2), true),
            ("alert.metadata.x.__len", json!(3), false),
            ("has-key", json!("alert.metadata"), true),
            ("has-key", json!("alert.rule"), false),
            ("not-has-key", json!("alert.rule"), true),
            ("not-has-key", json!("flow"), false),
            ("engine.message.__find", json!("failed"), true),
            ("engine.message.__find", json!("passed"), false),
            ("engine.message.__startswith", json!("script"), true),
            ("engine.message.__endswith", json!("to run"), true),
            ("engine.message.__endswith", json!("script"), false),
            ("ftp.reply.__contains", json!("Transfer complete."), true),
            ("ftp.reply.__contains", json!("Transfer"), false),
            ("flow.age.__gt", json!(0), true),
            ("flow.age.__gt", json!(3), false),
            ("flow.age.__gte", json!(3), true),
            ("flow.age.__lt", json!(3), false),
            ("flow.age.__lte", json!(3), true),
            ("missing.__gt", json!(0), false),
            ("missing", json!(null), true),
            ("missing", json!(0), false),
            ("alert.signature_id", json!(null), false),
        ];
        for (k, v, want) in cases {
            assert_eq!(match_entry(k, v, &e), *want, "{k}: {v}");
        }
    }

    #[test]
    fn filter_counts_from_literal_yaml_and_eve() {
        let test = yaml(
            "checks:\n  - filter:\n      count: 2\n      match:\n        event_type: alert\n        alert.signature_id: 2\n  - filter:\n      comment: one flow\n      count: 1\n      match:\n        event_type: flow\n",
        );
        let eve: Vec<Value> = [
            r#"{"event_type":"alert","alert":{"signature_id":2}}"#,
            r#"{"event_type":"alert","alert":{"signature_id":2}}"#,
            r#"{"event_type":"alert","alert":{"signature_id":3}}"#,
            r#"{"event_type":"flow","flow":{"pkts_toserver":3}}"#,
            r#"{"event_type":"flow","flow":{"pkts_toserver":1}}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let checks = test["checks"].as_array().unwrap();
        assert_eq!(eval_filter(checks[0]["filter"].as_object().unwrap(), &eve), Ok(()));
        let e = eval_filter(checks[1]["filter"].as_object().unwrap(), &eve).unwrap_err();
        assert!(e.starts_with("one flow: expected 1, got 2"), "{e}");
        assert!(eval_filter(checks[0]["filter"].as_object().unwrap(), &eve[..1]).unwrap_err().contains("got 1"));
    }

    #[test]
    fn stats_checks_read_the_last_stats_event() {
        let eve: Vec<Value> = [
            r#"{"event_type":"stats","stats":{"decoder":{"pkts":1}}}"#,
            r#"{"event_type":"stats","stats":{"decoder":{"pkts":42,"bytes":200}}}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let ok = yaml("decoder.pkts: 42\ndecoder.bytes.__gte: 128\n");
        assert_eq!(eval_stats(ok.as_object().unwrap(), &eve), Ok(()));
        let bad = yaml("decoder.pkts: 41\n");
        assert_eq!(eval_stats(bad.as_object().unwrap(), &eve), Err("stats.decoder.pkts: expected 41; got 42".into()));
        let absent = yaml("decoder.chdlc: 1\n");
        assert!(eval_stats(absent.as_object().unwrap(), &eve).unwrap_err().ends_with("got nothing"));
    }

    #[test]
    fn key_paths_and_heads() {
        assert_eq!(key_path("alert.metadata.x.__len", &json!(2)), "alert.metadata.x");
        assert_eq!(key_path("ftp.reply.__contains", &json!("a")), "ftp.reply");
        assert_eq!(key_path("has-key", &json!("alert.rule")), "alert.rule");
        assert_eq!(head("dns.query[0].rrname"), "dns");
        assert_eq!(head("files[0].filename"), "files");
    }
}
