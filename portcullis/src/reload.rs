//! Rule reloads without a restart. The new rules are loaded and compiled aside (on the
//! thread that asked: the control socket's or the SIGHUP watcher's) and, only when they
//! load, put in an [`EngineSlot`] under a new generation. Each worker compares the slot's
//! generation with its own once per batch (one atomic load) and, when it changed, moves to
//! the new engine between two batches: no packet waits for the compile, and none is
//! inspected by half of one engine and half of the other. The writer looks each batch's
//! alerts up in the engine that raised them, by the generation the batch carries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The engine in force and its generation, with the few before it.
#[derive(Debug)]
pub struct EngineSlot<I> {
    generation: AtomicU32,
    engines: Mutex<VecDeque<(u32, Arc<I>)>>,
}

impl<I> EngineSlot<I> {
    pub fn new(engine: Arc<I>) -> Arc<EngineSlot<I>> {
        Arc::new(EngineSlot { generation: AtomicU32::new(0), engines: Mutex::new(VecDeque::from([(0, engine)])) })
    }

    /// The generation in force: what workers compare with theirs per batch.
    #[inline]
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// The engine in force and its generation.
    pub fn current(&self) -> (u32, Arc<I>) {
        let e = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        let (g, engine) = e.back().expect("a slot always holds an engine");
        (*g, engine.clone())
    }

    /// The engine of generation `g`, while it is kept.
    pub fn get(&self, g: u32) -> Option<Arc<I>> {
        let e = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        e.iter().find(|(x, _)| *x == g).map(|(_, engine)| engine.clone())
    }

    /// Puts `engine` in force; its generation.
    pub fn swap(&self, engine: Arc<I>) -> u32 {
        let mut e = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        let g = e.back().map_or(0, |(g, _)| g + 1);
        e.push_back((g, engine));
        // The one just replaced always stays; older ones only while something else holds
        // them: a worker that has not moved yet, the writer, or a batch on its way to the
        // writer (`WorkerOut` holds the engine that inspected it), so the writer finds every
        // batch's engine. Keeping a fixed number instead cost a gateway 700 MB of RSS after a
        // handful of ET Open reloads (about 110 MB an engine; benches/RESULTS.md).
        let newest_two = e.len().saturating_sub(2);
        let mut i = 0;
        e.retain(|(_, engine)| {
            i += 1;
            i > newest_two || Arc::strong_count(engine) > 1
        });
        // Published after the engine is in the list, so a worker that sees the new number
        // finds its engine.
        self.generation.store(g, Ordering::Release);
        g
    }
}

/// Loads the rules again: the new engine, or why the old one stays. Made by the binary,
/// which knows the config and the rule files.
pub type RuleLoader<I> = dyn Fn() -> Result<Loaded<I>, String> + Send + Sync;

/// A successful load: the engine and what the console shows of it.
#[derive(Debug)]
pub struct Loaded<I> {
    pub engine: I,
    pub info: portcullis_api::RulesInfo,
    pub origins: crate::telemetry::RuleOrigins,
}

/// What the control socket calls for `reload-rules`: reloads and swaps, returning the reply.
#[derive(Clone)]
pub struct RuleReloader(pub Arc<dyn Fn() -> serde_json::Value + Send + Sync>);

impl std::fmt::Debug for RuleReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleReloader")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_count_up_and_old_engines_stay_for_a_while() {
        let slot = EngineSlot::new(Arc::new("first"));
        assert_eq!(slot.generation(), 0);
        assert_eq!(slot.swap(Arc::new("second")), 1);
        assert_eq!((slot.generation(), *slot.current().1), (1, "second"));
        assert_eq!(slot.get(0).as_deref(), Some(&"first"), "alerts of the old engine still find it");
        // A worker still on generation 1 (its next batch not started yet) keeps it.
        let held = slot.current().1;
        assert_eq!(slot.swap(Arc::new("third")), 2);
        assert_eq!(slot.swap(Arc::new("fourth")), 3);
        assert!(slot.get(0).is_none(), "nobody holds the first: dropped");
        assert_eq!(slot.get(1).as_deref(), Some(&"second"), "held by a worker: kept");
        drop(held);
        assert_eq!(slot.swap(Arc::new("fifth")), 4);
        assert!(slot.get(1).is_none() && slot.get(2).is_none(), "held by nobody: dropped");
        assert_eq!(slot.get(3).as_deref(), Some(&"fourth"), "the one just replaced always stays");
        // However many are held, all are kept: a batch on its way to the writer holds its own.
        let held: Vec<_> = (0..6).map(|i| {
            slot.swap(Arc::new(if i % 2 == 0 { "x" } else { "y" }));
            slot.current().1
        }).collect();
        assert!((5..=slot.generation()).all(|g| slot.get(g).is_some()));
        drop(held);
        slot.swap(Arc::new("last"));
        assert_eq!((0..=slot.generation()).filter(|&g| slot.get(g).is_some()).count(), 2, "once let go, only two stay");
        assert_eq!(slot.get(slot.generation()).as_deref(), Some(&*slot.current().1));
    }
}
