//! The batcher: flush on size, flush on age, drop-and-count, scores matched to flow ids,
//! explanations only for alerting flows.

use std::time::{Duration, Instant};

use portcullis_inference::synthetic::{self, ForestShape, Rng};
use portcullis_inference::{Backend, Batcher, BatcherConfig, FeatureBatch, FlushReason, Scorer, WhenFull};

const F: usize = 4;

fn scorer() -> (Scorer, tempfile::TempDir) {
    let names = ["a", "b", "c", "d"];
    let mut rng = Rng::new(1);
    let rows: Vec<f32> = (0..400 * F).map(|_| rng.unit() * 100.0).collect();
    let labels: Vec<u32> = rows.chunks(F).map(|r| (r[0] > 0.0) as u32).collect();
    let dir = tempfile::tempdir().unwrap();
    let spec = synthetic::write_model_dir(dir.path(), &names, &rows, &labels, &["BENIGN", "ATTACK"], ForestShape { trees: 4, max_depth: 6, min_rows: 2, seed: 1 }, None).unwrap();
    (Scorer::load(&spec, &names, Backend::Native).unwrap(), dir)
}

fn row(i: u64) -> [f32; F] {
    // Positive first feature: the forest learned that as ATTACK.
    let x = if i.is_multiple_of(2) { 80.0 } else { -80.0 };
    [x, i as f32, -(i as f32), 1.0]
}

#[test]
fn a_backlog_is_scored_in_full_batches_not_row_by_row() {
    let (s, _dir) = scorer();
    // Every row is already past max_age when the batcher starts: each would flush on age.
    let config = BatcherConfig { max_batch: 8, max_age: Duration::ZERO, channel_capacity: 64, ..Default::default() };
    let (mut batcher, producer) = Batcher::<F>::new(s, config).unwrap();
    for i in 0..20 {
        assert!(producer.send(i, Instant::now(), &row(i)));
    }
    drop(producer);
    let mut sizes = Vec::new();
    let stats = batcher.run(|b| sizes.push(b.ids.len())).unwrap();
    assert_eq!(sizes, [8, 8, 4]);
    assert_eq!(stats.flows, 20);
}

#[test]
fn flushes_on_size_and_scores_match_their_flow_ids() {
    let (s, _dir) = scorer();
    let (mut reference, _d2) = scorer();
    let config = BatcherConfig { max_batch: 4, max_age: Duration::from_secs(60), channel_capacity: 64, ..Default::default() };
    let (mut batcher, producer) = Batcher::<F>::new(s, config).unwrap();
    for i in 0..10 {
        assert!(producer.send(i, Instant::now(), &row(i)));
    }
    drop(producer);
    let mut seen = Vec::new();
    let stats = batcher
        .run(|b| {
            seen.push((b.reason, b.ids.to_vec()));
            // Each score is the one the scorer gives that row alone.
            for (k, id) in b.ids.iter().enumerate() {
                let mut one = FeatureBatch::with_capacity(F, 1);
                one.push(*id, &row(*id));
                assert_eq!(reference.score(&one).unwrap()[0], b.scores[k]);
                let explained = b.explanations.iter().any(|(r, _)| *r == k);
                assert_eq!(explained, b.scores[k].alert, "row {k}: explanations only for alerts");
            }
        })
        .unwrap();
    assert_eq!(
        seen,
        vec![
            (FlushReason::Size, vec![0, 1, 2, 3]),
            (FlushReason::Size, vec![4, 5, 6, 7]),
            (FlushReason::Shutdown, vec![8, 9]),
        ]
    );
    assert_eq!((stats.flows, stats.batches, stats.flushed_on_size, stats.flushed_on_age, stats.dropped), (10, 3, 2, 0, 0));
    assert_eq!(stats.alerts, 5, "the even rows are attacks");
}

#[test]
fn flushes_on_age_while_producers_are_still_there() {
    let (s, _dir) = scorer();
    let config = BatcherConfig { max_batch: 1024, max_age: Duration::from_millis(20), channel_capacity: 64, ..Default::default() };
    let (mut batcher, producer) = Batcher::<F>::new(s, config).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let stats = std::thread::scope(|scope| {
        scope.spawn(move || {
            for i in 0..3 {
                producer.send(i, Instant::now(), &row(i));
            }
            // Wait until the batch was scored on age, with the producer still alive, before
            // sending more: a batcher that only flushed on size or shutdown would hang here.
            let (reason, ids, waited): (FlushReason, Vec<u64>, Duration) = rx.recv_timeout(Duration::from_secs(10)).expect("a flush on age");
            assert_eq!((reason, ids), (FlushReason::Age, vec![0, 1, 2]));
            assert!(waited >= Duration::from_millis(20), "flushed after {waited:?}, before max_age");
            producer.send(3, Instant::now(), &row(3));
            // Stay connected past max_age so that this row, too, is flushed on age.
            std::thread::sleep(Duration::from_millis(200));
        });
        let start = Instant::now();
        batcher.run(|b| tx.send((b.reason, b.ids.to_vec(), start.elapsed())).unwrap()).unwrap()
    });
    assert_eq!((stats.flows, stats.flushed_on_age), (4, 2));
    assert!(stats.latency_p50_us >= 20_000 && stats.latency_p99_us < 5_000_000, "{stats:?}");
}

#[test]
fn a_full_channel_drops_and_counts_when_so_configured() {
    let (s, _dir) = scorer();
    let config = BatcherConfig { max_batch: 8, channel_capacity: 2, when_full: WhenFull::Drop, ..Default::default() };
    let (mut batcher, producer) = Batcher::<F>::new(s, config).unwrap();
    let sent: Vec<bool> = (0..5).map(|i| producer.send(i, Instant::now(), &row(i))).collect();
    assert_eq!(sent, [true, true, false, false, false]);
    drop(producer);
    let stats = batcher.run(|_| {}).unwrap();
    assert_eq!((stats.flows, stats.dropped), (2, 3));
}

#[test]
fn a_batcher_of_the_wrong_width_is_refused() {
    let (s, _dir) = scorer();
    assert!(Batcher::<5>::new(s, BatcherConfig::default()).is_err());
}
