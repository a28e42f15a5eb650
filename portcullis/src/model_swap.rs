//! Models swapped without a restart: `swap-model DIR` (the candidate becomes active, the
//! model it replaces is kept for `rollback-model`), `swap-model DIR shadow` (the candidate
//! scores beside the active model, never alerting, and the console compares their
//! verdicts), `promote-shadow`, `rollback-model`. Every change is loaded aside on the thread
//! that asked, with one scorer per worker, and published under a new generation; each
//! worker checks the generation once per batch and takes its scorers between two batches,
//! as rule reloads do (`crate::reload`). A model that does not load changes nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use portcullis_inference::Scorer;

use crate::ml::{MlModel, ModelError};

/// Loads a model directory with one scorer per worker (the daemon's `load_model`, with its
/// backend).
pub type ModelLoader = dyn Fn(&Path, usize) -> Result<(Arc<MlModel>, Vec<Scorer>), ModelError> + Send + Sync;

/// One loaded model: for the workers, one scorer each, taken once.
struct Loaded {
    model: Arc<MlModel>,
    scorers: Vec<Option<Scorer>>,
}

impl Loaded {
    fn load(loader: &ModelLoader, dir: &Path, workers: usize) -> Result<Loaded, String> {
        let (model, scorers) = loader(dir, workers).map_err(|e| format!("{e}"))?;
        Ok(Loaded { model, scorers: scorers.into_iter().map(Some).collect() })
    }
}

struct State {
    generation: u32,
    active: Loaded,
    shadow: Option<Loaded>,
    /// What `rollback-model` goes back to.
    previous: Option<Arc<MlModel>>,
}

/// What a worker takes when the generation changed: its scorer of the active model and,
/// in shadow mode, of the candidate.
pub(crate) type WorkerModels = (u32, Arc<MlModel>, Scorer, Option<(Arc<MlModel>, Scorer)>);

/// The models in force.
pub struct ModelSlot {
    generation: AtomicU32,
    workers: usize,
    loader: Arc<ModelLoader>,
    state: Mutex<State>,
}

impl std::fmt::Debug for ModelSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSlot").field("generation", &self.generation()).field("workers", &self.workers).finish()
    }
}

fn label(m: &MlModel) -> String {
    format!("{} {} ({})", m.name, m.version, m.dir.display())
}

impl ModelSlot {
    /// The model the daemon started with (its workers already hold their scorers).
    pub fn new(model: Arc<MlModel>, workers: usize, loader: Arc<ModelLoader>) -> Arc<ModelSlot> {
        let active = Loaded { model, scorers: (0..workers).map(|_| None).collect() };
        Arc::new(ModelSlot { generation: AtomicU32::new(0), workers, loader, state: Mutex::new(State { generation: 0, active, shadow: None, previous: None }) })
    }

    #[inline]
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Worker `i`'s scorers of the generation in force; `None` when it already took them.
    pub(crate) fn take(&self, i: usize) -> Option<WorkerModels> {
        let mut s = self.lock();
        let scorer = s.active.scorers.get_mut(i)?.take()?;
        let shadow = s.shadow.as_mut().and_then(|sh| Some((sh.model.clone(), sh.scorers.get_mut(i)?.take()?)));
        Some((s.generation, s.active.model.clone(), scorer, shadow))
    }

    fn publish(&self, mut s: std::sync::MutexGuard<'_, State>, active: Loaded, shadow: Option<Loaded>, previous: Option<Arc<MlModel>>) -> u32 {
        s.generation += 1;
        s.active = active;
        s.shadow = shadow;
        s.previous = previous;
        let g = s.generation;
        self.generation.store(g, Ordering::Release);
        g
    }

    /// The model in force, the one a rollback returns to, and the shadow candidate.
    pub fn describe(&self) -> (String, Option<String>, Option<String>) {
        let s = self.lock();
        (format!("{} {}", s.active.model.name, s.active.model.version), s.previous.as_deref().map(label), s.shadow.as_ref().map(|l| label(&l.model)))
    }

    /// `swap-model DIR`: DIR becomes active; the model it replaces is kept for rollback.
    pub fn swap(&self, dir: &Path) -> Result<String, String> {
        let new = Loaded::load(&*self.loader, dir, self.workers)?;
        let s = self.lock();
        let shadow = match &s.shadow {
            Some(sh) => Some(Loaded::load(&*self.loader, &sh.model.dir, self.workers)?),
            None => None,
        };
        let previous = Some(s.active.model.clone());
        let msg = format!("model {} active (generation {}); `rollback-model` returns to {}", label(&new.model), s.generation + 1, label(&s.active.model));
        self.publish(s, new, shadow, previous);
        Ok(msg)
    }

    /// `swap-model DIR shadow`: DIR scores beside the active model without alerting.
    pub fn shadow(&self, dir: &Path) -> Result<String, String> {
        let cand = Loaded::load(&*self.loader, dir, self.workers)?;
        let s = self.lock();
        let active = Loaded::load(&*self.loader, &s.active.model.dir, self.workers)?;
        let msg = format!("model {} scoring in shadow beside {}", label(&cand.model), label(&s.active.model));
        let previous = s.previous.clone();
        self.publish(s, active, Some(cand), previous);
        Ok(msg)
    }

    /// `promote-shadow`: the candidate becomes active, the active one is kept for rollback.
    pub fn promote(&self) -> Result<String, String> {
        let dir: PathBuf = self.lock().shadow.as_ref().map(|s| s.model.dir.clone()).ok_or("no model is in shadow (start one with swap-model DIR shadow)")?;
        let new = Loaded::load(&*self.loader, &dir, self.workers)?;
        let s = self.lock();
        let previous = Some(s.active.model.clone());
        let msg = format!("shadow model {} promoted; `rollback-model` returns to {}", label(&new.model), label(&s.active.model));
        self.publish(s, new, None, previous);
        Ok(msg)
    }

    /// `rollback-model`: back to the model the last swap or promotion replaced.
    pub fn rollback(&self) -> Result<String, String> {
        let dir = self.lock().previous.as_ref().map(|m| m.dir.clone()).ok_or("no previous model to roll back to")?;
        let back = Loaded::load(&*self.loader, &dir, self.workers)?;
        let s = self.lock();
        let previous = Some(s.active.model.clone());
        let msg = format!("rolled back to {}; {} kept for another rollback", label(&back.model), label(&s.active.model));
        self.publish(s, back, None, previous);
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::{bundled_model_dir, load_model};

    fn slot(workers: usize) -> (Arc<ModelSlot>, PathBuf) {
        let dir = bundled_model_dir().expect("the bundled model");
        let (model, _) = load_model(&dir, 1).unwrap();
        (ModelSlot::new(model, workers, Arc::new(|d: &Path, n: usize| load_model(d, n))), dir)
    }

    #[test]
    fn swap_shadow_promote_and_rollback_publish_new_generations() {
        let (slot, dir) = slot(2);
        assert!(slot.take(0).is_none(), "workers already hold the model they started with");
        assert!(slot.rollback().unwrap_err().contains("no previous model"));
        assert!(slot.promote().unwrap_err().contains("no model is in shadow"));

        let msg = slot.swap(&dir).unwrap();
        assert!(msg.contains("active (generation 1)"), "{msg}");
        assert_eq!(slot.generation(), 1);
        let (g, _, _, shadow) = slot.take(0).expect("worker 0's new scorer");
        assert!(g == 1 && shadow.is_none());
        assert!(slot.take(0).is_none(), "taken once");
        assert!(slot.take(1).is_some(), "each worker has its own");
        assert!(slot.describe().1.is_some(), "the replaced model is kept for rollback");

        slot.shadow(&dir).unwrap();
        let (_, _, _, shadow) = slot.take(1).unwrap();
        assert!(shadow.is_some(), "shadow mode hands each worker a candidate scorer too");
        assert!(slot.describe().2.is_some());
        slot.promote().unwrap();
        assert!(slot.describe().2.is_none(), "promoted: no shadow any more");
        slot.rollback().unwrap();
        assert_eq!(slot.generation(), 4);

        // A model that does not load changes nothing.
        let before = slot.generation();
        let e = slot.swap(Path::new("/nonexistent/model")).unwrap_err();
        assert!(e.contains("/nonexistent/model"), "{e}");
        assert_eq!(slot.generation(), before);
    }
}
