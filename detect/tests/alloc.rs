//! `Engine::inspect` must not allocate once its scratch and the flow's buffers have grown:
//! a counting global allocator checks it over a mixed rule set and packet sequence.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use portcullis_common::Direction;
use portcullis_rules::{FlowbitCmd, Proto, ThresholdKind, TrackBy};
use support::*;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers every call to the system allocator unchanged; the counter is atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` above with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn inspect_does_not_allocate_after_warm_up() {
    let rules = vec![
        rule(1).proto(Proto::Tcp).content(b"GET").content(b"HTTP").distance(0).build(),
        rule(2).proto(Proto::Tcp).content(b"user").nocase().pcre("user\\s+(\\w+)\\s+\\1", "i").build(),
        rule(3).content(b"login").flowbit(FlowbitCmd::Set, &["l"]).noalert().build(),
        rule(4).content(b"pass").flowbit(FlowbitCmd::IsSet, &["l"]).threshold(ThresholdKind::Limit, TrackBy::Flow, 100, 60).build(),
        rule(5).src("10.0.0.1").build(),
        rule(6).not_content(b"zzz").build(),
    ];
    let mut t = T::new(rules);
    let m = meta(6, Direction::ToServer, 0);
    let payloads: [&[u8]; 4] = [b"GET / HTTP/1.1\r\n", b"USER bob bob", b"login pass", b"\x00\x01binary"];
    let mut alerts = Vec::with_capacity(64);
    let mut off = 0u64;
    let mut run = |t: &mut T, alerts: &mut Vec<portcullis_detect::Alert>| {
        for p in payloads {
            let mut inp = input(&m, p, Some(Direction::ToServer));
            inp.stream = Some(p);
            inp.stream_offset = off;
            off += p.len() as u64;
            alerts.clear();
            t.engine.inspect(&inp, Some(&mut t.flow), &mut t.scratch, alerts);
        }
    };
    // Warm up until the stream window has reached its cap (2560 bytes).
    for _ in 0..300 {
        run(&mut t, &mut alerts);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..50 {
        run(&mut t, &mut alerts);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations during inspect");
}
