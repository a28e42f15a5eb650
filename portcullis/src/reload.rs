//! Rule reloads without a restart. The new rules are loaded and compiled aside (on the
//! thread that asked: the control socket's or the SIGHUP watcher's) and, only when they
//! load, put in an [`EngineSlot`] under a new generation. Each worker compares the slot's
//! generation with its own once per batch (one atomic load) and, when it changed, moves to
//! the new engine between two batches: no packet waits for the compile, and none is
//! inspected by half of one engine and half of the other. The writer looks each batch's
//! alerts up in the engine that raised them, by the generation the batch carries.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The engine in force and its generation, and the ones before it while anything else
/// holds them.
///
/// An old engine stays exactly as long as a worker still inspects with it, a batch it
/// inspected is on its way to the writer (`WorkerOut` holds its engine), or the writer uses
/// it: then the writer finds every batch's engine however many reloads came in between.
/// [`EngineSlot::prune`] (at every swap, and on the writer's once-a-second tick) lets go of
/// the rest, and frees them on a thread of their own: an ET Open engine is about 110 MB of
/// small allocations, not something to free on the packet path or the writer's. Keeping
/// the last four instead cost a gateway 700 MB of RSS after a handful of reloads
/// (benches/RESULTS.md).
#[derive(Debug)]
pub struct EngineSlot<I> {
    generation: AtomicU32,
    engines: Mutex<Engines<I>>,
}

#[derive(Debug)]
struct Engines<I> {
    current: (u32, Arc<I>),
    older: Vec<(u32, Arc<I>)>,
}

impl<I: Send + Sync + 'static> EngineSlot<I> {
    pub fn new(engine: Arc<I>) -> Arc<EngineSlot<I>> {
        Arc::new(EngineSlot { generation: AtomicU32::new(0), engines: Mutex::new(Engines { current: (0, engine), older: Vec::new() }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engines<I>> {
        self.engines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation in force: what workers compare with theirs per batch.
    #[inline]
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// The engine in force and its generation.
    pub fn current(&self) -> (u32, Arc<I>) {
        let e = self.lock();
        (e.current.0, e.current.1.clone())
    }

    /// The engine of generation `g`, while something holds it.
    pub fn get(&self, g: u32) -> Option<Arc<I>> {
        let e = self.lock();
        if e.current.0 == g {
            return Some(e.current.1.clone());
        }
        e.older.iter().find(|(x, _)| *x == g).map(|(_, engine)| engine.clone())
    }

    /// Puts `engine` in force; its generation.
    pub fn swap(&self, engine: Arc<I>) -> u32 {
        let mut e = self.lock();
        let g = e.current.0 + 1;
        let old = std::mem::replace(&mut e.current, (g, engine));
        e.older.push(old);
        // Published after the engine is in place, so a worker that sees the new number
        // finds its engine.
        self.generation.store(g, Ordering::Release);
        drop(e);
        self.prune();
        g
    }

    /// Lets go of the old engines nothing else holds (nobody can take a new hold on them
    /// meanwhile: only the slot hands them out, under its lock), freeing them off this
    /// thread. Returns how many went.
    pub fn prune(&self) -> usize {
        let mut gone = Vec::new();
        {
            let mut e = self.lock();
            let mut i = 0;
            while i < e.older.len() {
                if Arc::strong_count(&e.older[i].1) == 1 {
                    gone.push(e.older.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
        }
        let n = gone.len();
        if n > 0 {
            // If no thread can be had, the caller frees them: slower, never wrong.
            let _ = std::thread::Builder::new().name("engine-free".into()).spawn(move || drop(gone));
        }
        n
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
    fn old_engines_live_while_something_holds_them() {
        let slot = EngineSlot::new(Arc::new("first"));
        assert_eq!(slot.generation(), 0);
        // A worker still on the first engine, as workers are until their next batch.
        let worker = slot.current().1;
        assert_eq!(slot.swap(Arc::new("second")), 1);
        assert_eq!((slot.generation(), *slot.current().1), (1, "second"));
        assert_eq!(slot.get(0).as_deref(), Some(&"first"), "alerts of the old engine still find it");
        // The worker moves; a batch it inspected with the first engine is still on its way.
        let batch = worker;
        assert_eq!(slot.swap(Arc::new("third")), 2);
        assert_eq!(slot.swap(Arc::new("fourth")), 3);
        assert_eq!(slot.get(0).as_deref(), Some(&"first"), "however many reloads came since");
        assert!(slot.get(1).is_none() && slot.get(2).is_none(), "held by nobody: gone");
        drop(batch);
        assert_eq!(slot.get(0).as_deref(), Some(&"first"), "until the next prune");
        assert_eq!(slot.prune(), 1);
        assert!(slot.get(0).is_none(), "written and pruned: gone");
        assert_eq!(slot.get(3).as_deref(), Some(&"fourth"));
        assert!(slot.get(4).is_none());
        assert_eq!(slot.prune(), 0);
    }
}
