//! `classification.config` (`config classification: name,description,priority`) and
//! `reference.config` (`config reference: system url-prefix`), read as Suricata reads them:
//! `#` comments and blank lines ignored, a malformed line reported and skipped.

use std::collections::HashMap;

/// classtype name → (description, priority).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classifications(HashMap<String, (String, u8)>);

impl Classifications {
    /// Parses the file's text; returns the table and one message per bad line
    /// (`line N: ...`).
    pub fn parse(text: &str) -> (Self, Vec<String>) {
        let mut map = HashMap::new();
        let mut bad = Vec::new();
        for (n, line) in config_lines(text, "classification") {
            let mut parts = line.splitn(3, ',');
            let (Some(name), Some(desc), Some(prio)) = (parts.next(), parts.next(), parts.next()) else {
                bad.push(format!("line {n}: expected `config classification: name,description,priority`"));
                continue;
            };
            match prio.trim().parse::<u8>() {
                Ok(p) if p > 0 => {
                    map.entry(name.trim().to_string()).or_insert((desc.trim().to_string(), p));
                }
                _ => bad.push(format!("line {n}: priority `{}` is not 1-255", prio.trim())),
            }
        }
        (Classifications(map), bad)
    }

    pub fn get(&self, name: &str) -> Option<&(String, u8)> {
        self.0.get(name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// reference system (lower case) → URL prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References(HashMap<String, String>);

impl References {
    pub fn parse(text: &str) -> (Self, Vec<String>) {
        let mut map = HashMap::new();
        let mut bad = Vec::new();
        for (n, line) in config_lines(text, "reference") {
            match line.split_once(char::is_whitespace) {
                Some((sys, url)) if !url.trim().is_empty() => {
                    map.entry(sys.to_ascii_lowercase()).or_insert_with(|| url.trim().to_string());
                }
                _ => bad.push(format!("line {n}: expected `config reference: system url`")),
            }
        }
        (References(map), bad)
    }

    /// The URL prefix of a reference system, matched without regard to case.
    pub fn get(&self, system: &str) -> Option<&String> {
        if let Some(u) = self.0.get(system) {
            return Some(u);
        }
        self.0.get(&system.to_ascii_lowercase())
    }
}

/// The text after `config KIND:` of each line that has it, with 1-based line numbers.
/// Lines that are neither comments, blank, nor such a line are reported as bad by the
/// callers through an empty remainder.
fn config_lines<'a>(text: &'a str, kind: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    text.lines().enumerate().filter_map(move |(i, l)| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let rest = l.strip_prefix("config").map(str::trim_start).and_then(|r| r.strip_prefix(kind)).and_then(|r| r.trim_start().strip_prefix(':'));
        Some((i + 1, rest.map_or("", str::trim)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_lines() {
        let (c, bad) = Classifications::parse(
            "# comment\n\nconfig classification: trojan-activity,A Network Trojan was detected, 1\nconfig classification: bad\nconfig classification: x,y,0\nnonsense\nconfig classification: trojan-activity,second,2\n",
        );
        assert_eq!(c.get("trojan-activity"), Some(&("A Network Trojan was detected".to_string(), 1)));
        assert_eq!(c.len(), 1);
        assert_eq!(bad, vec!["line 4: expected `config classification: name,description,priority`", "line 5: priority `0` is not 1-255", "line 6: expected `config classification: name,description,priority`"]);
    }

    #[test]
    fn reference_lines() {
        let (r, bad) = References::parse("config reference: url       http://\nconfig reference: bid\thttp://www.securityfocus.com/bid/\nconfig reference: cve\n");
        assert_eq!(r.get("url").map(String::as_str), Some("http://"));
        assert_eq!(r.get("BID").map(String::as_str), Some("http://www.securityfocus.com/bid/"));
        assert_eq!(bad, vec!["line 3: expected `config reference: system url`"]);
    }
}
