//! The shape of a classifier graph (trees, branches, classes) and the native evaluator's
//! and tract's rows/s at batch sizes 1 to 16384 on random rows:
//! `cargo run --release -p portcullis-inference --example tree_speed -- classifier.onnx [width]`
use std::time::Instant;

use tract_onnx::prelude::*;
use portcullis_inference::TreeEnsemble;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let t = Instant::now();
    let e = TreeEnsemble::load(std::path::Path::new(&p)).unwrap();
    eprintln!("load {:?}: {:?} trees/branches, {} classes, {} features used", t.elapsed(), e.size(), e.n_classes(), e.n_features_used());
    // The graph's input width: the second argument, else one past the last feature a branch reads.
    let w: usize = std::env::args().nth(2).map(|s| s.parse().expect("width")).unwrap_or(e.n_features_used());
    let mut rng = portcullis_inference::synthetic::Rng::new(1);
    let rows: Vec<f32> = (0..16384 * w).map(|_| (rng.unit() * 1000.0).max(0.0)).collect();
    let mut out = vec![0.0; 16384 * e.n_classes()];
    for n in [1usize, 64, 1024, 16384] {
        let t = Instant::now();
        let reps = (16384 / n).max(4);
        for _ in 0..reps {
            e.predict(&rows[..n * w], w, &mut out);
        }
        let el = t.elapsed().as_secs_f64();
        eprintln!("native batch {n}: {:.0} rows/s", (reps * n) as f64 / el);
    }
    let mut model = tract_onnx::onnx().model_for_path(&p).unwrap();
    let sym = model.symbols.sym("N");
    model.set_input_fact(0, f32::fact([sym.to_dim(), w.to_dim()]).into()).unwrap();
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    for n in [1usize, 64, 1024, 16384] {
        let reps = (4096 / n).max(1);
        let t = Instant::now();
        for _ in 0..reps {
            let x = Tensor::from_shape(&[n, w], &rows[..n * w]).unwrap();
            plan.run(tvec!(x.into_tvalue())).unwrap();
        }
        eprintln!("tract batch {n}: {:.0} rows/s", (reps * n) as f64 / t.elapsed().as_secs_f64());
    }
}
