//! What the sinks need to start, as plain values: `portcullis-config` builds these from
//! `outputs.eve-log` and `outputs.webhook`; tests build them directly.

use std::path::PathBuf;
use std::time::Duration;

/// Events a queued sink (unix stream, Redis) holds while its peer is slow or away, unless
/// the config says otherwise. At a few hundred bytes per event, about 5 MB.
pub const DEFAULT_BUFFER: usize = 10_000;

/// The local syslog socket.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// The policy's action names, weakest first (the playbook's order: alert < drop <
/// rate-limit < block < quarantine); `webhook.actions` must name some of them.
pub const ACTIONS: [&str; 5] = ["alert", "drop", "rate-limit", "block", "quarantine"];

/// Every output: the EVE sinks and the webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputsConfig {
    pub eve: Vec<SinkConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// One EVE sink (`outputs.eve-log.filetype` and its settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkConfig {
    /// `regular`: appended to; `-` is stdout.
    File { path: PathBuf },
    /// `unix_dgram`: one datagram per event, to a listener bound at `path`.
    UnixDgram { path: PathBuf },
    /// `unix_stream`: one line per event over a connection to a listener at `path`.
    UnixStream { path: PathBuf, buffer: usize },
    /// `syslog`: one message per event to the local syslog socket.
    Syslog { socket: PathBuf, identity: String, facility: Facility, level: Level },
    /// `redis`.
    Redis(RedisConfig),
}

/// `outputs.eve-log.redis`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    pub server: String,
    pub port: u16,
    pub mode: RedisMode,
    /// The list's key or the channel's name.
    pub key: String,
    /// Events queued while Redis is slow or away; more are dropped and counted.
    pub buffer: usize,
}

/// Suricata's `redis.mode`: `list` is `lpush`, `channel` is `publish`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    Lpush,
    Rpush,
    Publish,
}

impl RedisMode {
    /// Suricata's spellings.
    pub fn parse(s: &str) -> Option<RedisMode> {
        match s {
            "list" | "lpush" => Some(RedisMode::Lpush),
            "rpush" => Some(RedisMode::Rpush),
            "channel" | "publish" => Some(RedisMode::Publish),
            _ => None,
        }
    }

    pub fn command(self) -> &'static str {
        match self {
            RedisMode::Lpush => "LPUSH",
            RedisMode::Rpush => "RPUSH",
            RedisMode::Publish => "PUBLISH",
        }
    }
}

/// `outputs.webhook`: decisions whose action is in `actions` are POSTed to `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `http://host[:port]/path`. https needs TLS, which this build leaves out.
    pub url: String,
    pub actions: Vec<String>,
    /// For the whole request, connect to last byte of the answer.
    pub timeout: Duration,
    /// Decisions waiting to be POSTed; more are dropped and counted.
    pub buffer: usize,
}

/// A syslog facility (RFC 5424 table 1), by its usual name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(pub u8);

impl Facility {
    const NAMES: [(&'static str, u8); 20] = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];

    /// Suricata's default.
    pub const LOCAL5: Facility = Facility(21);

    /// A name as Suricata and syslog.conf write it (`local5`, `daemon`), any case.
    pub fn parse(s: &str) -> Option<Facility> {
        let s = s.to_ascii_lowercase();
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|&(_, v)| Facility(v))
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::NAMES.iter().map(|(n, _)| *n)
    }
}

/// A syslog severity (RFC 5424 table 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level(pub u8);

impl Level {
    const NAMES: [&'static str; 8] = ["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"];

    /// Suricata's default.
    pub const INFO: Level = Level(6);

    /// Suricata's names (`Info`, `Warning`, ...), any case; the short syslog.conf forms
    /// (`emerg`, `crit`, `err`, `warn`) too.
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.to_ascii_lowercase();
        let s = match s.as_str() {
            "emerg" => "emergency",
            "crit" => "critical",
            "err" => "error",
            "warn" => "warning",
            other => other,
        };
        Self::NAMES.iter().position(|n| *n == s).map(|i| Level(i as u8))
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::NAMES.iter().copied()
    }
}

impl OutputsConfig {
    /// Checks what the types cannot: names the key (below `outputs.`) and says why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        for s in &self.eve {
            match s {
                SinkConfig::File { path } if path.as_os_str().is_empty() => return bad("eve-log.filename", "is empty".into()),
                SinkConfig::UnixDgram { path } | SinkConfig::UnixStream { path, .. } if path.as_os_str().is_empty() || path.as_os_str() == "-" => {
                    return bad("eve-log.filename", "must be the path of the listening socket for unix_dgram and unix_stream".into());
                }
                SinkConfig::UnixStream { buffer: 0, .. } => return bad("eve-log.buffer", "must be at least 1".into()),
                SinkConfig::Syslog { identity, .. } if identity.is_empty() || identity.contains(|c: char| c.is_whitespace() || c == ':' || c == '[') => {
                    return bad("eve-log.identity", format!("`{identity}` must be a non-empty word (no spaces, `:` or `[`)"));
                }
                SinkConfig::Redis(r) => {
                    if r.server.is_empty() {
                        return bad("eve-log.redis.server", "is empty".into());
                    }
                    if r.port == 0 {
                        return bad("eve-log.redis.port", "must be 1 to 65535".into());
                    }
                    if r.key.is_empty() {
                        return bad("eve-log.redis.key", "is empty".into());
                    }
                    if r.buffer == 0 {
                        return bad("eve-log.buffer", "must be at least 1".into());
                    }
                }
                _ => {}
            }
        }
        if let Some(w) = &self.webhook {
            if let Err(m) = check_url(&w.url) {
                return bad("webhook.url", m);
            }
            if w.actions.is_empty() {
                return bad("webhook.actions", format!("names no action (use some of {})", ACTIONS.join(", ")));
            }
            if let Some(a) = w.actions.iter().find(|a| !ACTIONS.contains(&a.as_str())) {
                return bad("webhook.actions", format!("`{a}` is not one of {}", ACTIONS.join(", ")));
            }
            if w.timeout.is_zero() {
                return bad("webhook.timeout", "must be at least 1 second".into());
            }
            if w.buffer == 0 {
                return bad("webhook.buffer", "must be at least 1".into());
            }
        }
        Ok(())
    }
}

/// Accepts `http://host[:port][/path]`; says why anything else is refused.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("is empty (an enabled webhook needs a URL)".into());
    }
    if url.starts_with("https://") {
        return Err(format!("`{url}`: https is not supported (this build has no TLS); use http:// to a local relay"));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("`{url}` is not an http:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            if !p.is_empty() && p.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("`{url}`: `{p}` is not a port"));
            }
            h
        }
        _ => authority,
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("`{url}` has no host (credentials in the URL are not supported)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_suricata_writes_them() {
        assert_eq!(Facility::parse("local5"), Some(Facility::LOCAL5));
        assert_eq!(Facility::parse("DAEMON"), Some(Facility(3)));
        assert_eq!(Facility::parse("local8"), None);
        assert_eq!(Level::parse("Info"), Some(Level::INFO));
        assert_eq!(Level::parse("Emergency"), Some(Level(0)));
        assert_eq!(Level::parse("warn"), Some(Level(4)));
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(RedisMode::parse("list"), Some(RedisMode::Lpush));
        assert_eq!(RedisMode::parse("channel"), Some(RedisMode::Publish));
        assert_eq!(RedisMode::parse("xadd"), None);
    }

    #[test]
    fn urls() {
        for ok in ["http://127.0.0.1:8080/hook", "http://hooks.example/x?y=1", "http://[::1]:9000/", "http://relay"] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("https://hooks.example/", "https is not supported"),
            ("ftp://x/", "not an http:// URL"),
            ("http://:80/", "no host"),
            ("http://u:p@host/", "not a port"),
            ("http://host:0/", "not a port"),
            ("", "is empty"),
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
