//! Short renderings of numbers, durations and text for panes that have a few columns each.

/// `1234` → `1.2k`, `5_600_000` → `5.6M`: three or four characters for any count.
pub(crate) fn si(n: u64) -> String {
    const UNITS: [(u64, &str); 5] =
        [(1_000_000_000_000_000, "P"), (1_000_000_000_000, "T"), (1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")];
    for (scale, unit) in UNITS {
        if n >= scale {
            let v = n as f64 / scale as f64;
            // One decimal while it fits in three digits, so the width stays steady as rates move.
            return if v < 100.0 { format!("{v:.1}{unit}") } else { format!("{v:.0}{unit}") };
        }
    }
    n.to_string()
}

/// Bytes with binary-looking but decimal units, as traffic tools print them (`12.3kB`).
pub(crate) fn bytes(n: u64) -> String {
    format!("{}B", si(n))
}

/// `572` → `9m32s`, `7322` → `2h02m`, `200000` → `2d07h`: the two largest units only.
pub(crate) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Milliseconds with the precision that matters at each scale.
pub(crate) fn millis(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 100.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

/// The `HH:MM:SS` of an EVE timestamp (`2024-05-01T12:00:01.123456+0000`), or the text as it
/// is when it does not look like one.
pub(crate) fn clock(timestamp: &str) -> &str {
    match timestamp.find('T') {
        Some(t) if timestamp.len() >= t + 9 && timestamp.is_char_boundary(t + 9) => &timestamp[t + 1..t + 9],
        _ => timestamp,
    }
}

/// `addr:port`, with IPv6 addresses bracketed so the port stays readable.
pub(crate) fn endpoint(addr: std::net::IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (std::net::IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// The text cut to `width` characters, the last one replaced by `…` when something was cut.
/// Counts chars, not display cells: the console's own text is ASCII plus a few one-cell
/// symbols, and what the daemon sends (signatures, rule text) is shown as it comes.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// The text padded with spaces or truncated to exactly `width` characters.
pub(crate) fn fit(text: &str, width: usize) -> String {
    let mut out = truncate(text, width);
    let n = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width - n));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_durations_and_text_stay_short() {
        assert_eq!(si(0), "0");
        assert_eq!(si(999), "999");
        assert_eq!(si(1_234), "1.2k");
        assert_eq!(si(123_456), "123k");
        assert_eq!(si(5_600_000), "5.6M");
        assert_eq!(si(u64::MAX), "18447P");
        assert_eq!(bytes(12_300), "12.3kB");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(572), "9m32s");
        assert_eq!(duration(7_322), "2h02m");
        assert_eq!(duration(200_000), "2d07h");
        assert_eq!(millis(0.41), "410µs");
        assert_eq!(millis(1.25), "1.2ms");
        assert_eq!(millis(250.0), "250ms");
        assert_eq!(clock("2024-05-01T12:00:01.123456+0000"), "12:00:01");
        assert_eq!(clock("garbage"), "garbage");
        assert_eq!(clock("xT1"), "xT1");
        assert_eq!(endpoint("10.0.0.1".parse().unwrap(), Some(80)), "10.0.0.1:80");
        assert_eq!(endpoint("2001:db8::1".parse().unwrap(), Some(80)), "[2001:db8::1]:80");
        assert_eq!(endpoint("2001:db8::1".parse().unwrap(), None), "2001:db8::1");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit("abcdef", 3), "ab…");
    }
}
