//! `threshold` and `detection_filter`, as Suricata's `detect-engine-threshold.c` counts
//! them: one counter and window start per tracked key. `by_flow` counters live in the flow
//! (in the worker); `by_src`, `by_dst`, `by_rule` and `by_both` live in the one
//! [`ThresholdTable`] of the output thread, so that which alerts pass never depends on how
//! flows were spread over workers.

use std::collections::HashMap;

use portcullis_common::Timestamp;
use portcullis_rules::{ThresholdKind, TrackBy};

use crate::compile::Thresh;
use crate::{Alert, Engine};

/// One tracked counter.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counter {
    /// Start of the current window: whole seconds, or µs for a detection filter.
    first: i64,
    count: u32,
}

/// Whether the alert passes; `state` is `None` for a key not seen yet (and is then filled
/// in when the type keeps state).
pub(crate) fn admit(t: &Thresh, state: &mut Option<Counter>, now: Timestamp) -> bool {
    // Suricata 7 keeps each entry's window end as a timestamp (first match + seconds) and
    // compares packet times exactly: on the demo capture a `type both, track by_dst, count 500,
    // seconds 10` rule alerts at the packet Suricata 7.0.10 does only with exact times.
    let (now, window) = (now.0, i64::from(t.seconds) * Timestamp::MICROS_PER_SEC);
    let Some(c) = state else {
        *state = Some(Counter { first: now, count: 1 });
        return if t.detection_filter {
            t.count == 0
        } else {
            match t.kind {
                ThresholdKind::Limit => true,
                ThresholdKind::Threshold | ThresholdKind::Both => t.count <= 1,
            }
        };
    };
    let within = now - c.first < window;
    if !within {
        c.first = now;
        c.count = 1;
        return if t.detection_filter {
            t.count == 0
        } else {
            match t.kind {
                ThresholdKind::Limit => true,
                ThresholdKind::Threshold | ThresholdKind::Both => t.count <= 1,
            }
        };
    }
    c.count = c.count.saturating_add(1);
    if t.detection_filter {
        return c.count > t.count;
    }
    match t.kind {
        ThresholdKind::Limit => c.count <= t.count,
        ThresholdKind::Threshold => {
            if c.count >= t.count {
                c.count = 0;
                true
            } else {
                false
            }
        }
        ThresholdKind::Both => c.count == t.count,
    }
}

/// Key of a global counter: rule, then the tracked addresses (zero where not tracked).
type Key = (u32, [u8; 16], [u8; 16]);

/// The `by_src`/`by_dst`/`by_rule`/`by_both` state. Keep exactly one, in the thread that
/// writes alerts in order, and call [`ThresholdTable::admit`] for every alert whose
/// `global_threshold` is set, in output order.
#[derive(Debug, Default)]
pub struct ThresholdTable {
    /// Counter and the end of its window in µs (when it may be forgotten).
    counters: HashMap<Key, (Counter, i64)>,
}

impl ThresholdTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `alert` is to be written. `src`/`dst` are the packet's addresses as the
    /// packet travels (the flow key's `src`/`dst`).
    pub fn admit(&mut self, engine: &Engine, alert: &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        let Some(t) = engine.compiled(alert.rule).threshold else { return true };
        let z = [0u8; 16];
        let key: Key = match t.track {
            TrackBy::Src => (alert.rule.0, *src, z),
            TrackBy::Dst => (alert.rule.0, z, *dst),
            TrackBy::Rule => (alert.rule.0, z, z),
            // IP pairs are direction-free in Suricata.
            TrackBy::Both => {
                let (a, b) = if src <= dst { (src, dst) } else { (dst, src) };
                (alert.rule.0, *a, *b)
            }
            TrackBy::Flow => return true,
        };
        let mut state = self.counters.get(&key).map(|c| c.0);
        let ok = admit(&t, &mut state, alert.ts);
        if let Some(s) = state {
            // A window counted in whole seconds may last up to a second longer.
            let end = alert.ts.0 + (i64::from(t.seconds) + 1) * Timestamp::MICROS_PER_SEC;
            self.counters.insert(key, (s, end));
        }
        ok
    }

    /// Forgets counters whose window has passed at `now` (packet time): a later alert starts
    /// a new window either way, so this only bounds memory. Call it now and then (say, once
    /// per batch) from the writer.
    pub fn expire(&mut self, now: Timestamp) {
        self.counters.retain(|_, (_, end)| *end > now.0);
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: ThresholdKind, count: u32, seconds: u32, df: bool) -> Thresh {
        Thresh { kind, track: TrackBy::Src, count, seconds, detection_filter: df }
    }

    /// Feeds matches at the given seconds and returns which were admitted.
    fn run(th: Thresh, at: &[i64]) -> Vec<bool> {
        let mut s = None;
        at.iter().map(|&sec| admit(&th, &mut s, Timestamp(sec * 1_000_000))).collect()
    }

    #[test]
    fn threshold_types() {
        let table: [(Thresh, &[i64], &[bool]); 6] = [
            (t(ThresholdKind::Limit, 2, 10, false), &[0, 1, 2, 3, 11, 12, 13], &[true, true, false, false, true, true, false]),
            (t(ThresholdKind::Threshold, 3, 10, false), &[0, 1, 2, 3, 4, 5], &[false, false, true, false, false, true]),
            (t(ThresholdKind::Threshold, 3, 10, false), &[0, 1, 20, 21, 22], &[false, false, false, false, true]),
            (t(ThresholdKind::Both, 3, 10, false), &[0, 1, 2, 3, 4, 15, 16, 17], &[false, false, true, false, false, false, false, true]),
            (t(ThresholdKind::Threshold, 2, 60, true), &[0, 1, 2, 3], &[false, false, true, true]),
            (t(ThresholdKind::Limit, 1, 60, false), &[0, 59, 60], &[true, false, true]),
        ];
        // Exact times: 0.9 s and 60.1 s are 59.2 s apart, within one 60 s window.
        let mut s = None;
        let th = t(ThresholdKind::Limit, 1, 60, false);
        assert!(admit(&th, &mut s, Timestamp(900_000)));
        assert!(!admit(&th, &mut s, Timestamp(60_100_000)));
        for (i, (th, at, want)) in table.iter().enumerate() {
            assert_eq!(run(*th, at), *want, "case {i}");
        }
    }
}
