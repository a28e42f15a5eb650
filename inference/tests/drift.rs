//! Drift of real flows against the shipped references: the shipped `drift.yaml` files load and
//! match their models; the CIC-IDS2017 benign flows the model did not fit on score low, attack
//! classes high; the monitor alerts when the traffic turns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::{
    newest_version, psi, DriftConfig, DriftCounts, DriftMonitor, DriftReference, ModelSpec, DEFAULT_THRESHOLD,
    DRIFT_FILE,
};

fn models_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017")
}

#[test]
fn the_shipped_references_load_and_match_their_models() {
    let root = models_root();
    let newest = newest_version(&root).expect("a shipped model");
    assert!(newest.join(DRIFT_FILE).is_file(), "the newest model ({}) ships no drift.yaml", newest.display());
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join(DRIFT_FILE).is_file() {
            continue;
        }
        let spec = ModelSpec::load(&dir.join("model.yaml")).unwrap();
        let r = DriftReference::load(&dir).unwrap().expect("drift.yaml is there");
        assert_eq!(r.features(), spec.features.as_slice(), "{}", dir.display());
        assert!(r.flows() >= 1000, "{}: {} flows", dir.display(), r.flows());
        for f in 0..r.features().len() {
            assert_eq!(r.shares(f).len(), r.edges(f).len() + 1);
        }
        checked += 1;
    }
    assert!(checked >= 1);
    // A model without the file has no reference, which is not an error.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(newest.join("model.yaml"), tmp.path().join("model.yaml")).unwrap();
    assert_eq!(DriftReference::load(tmp.path()).unwrap(), None);
}

struct Cic {
    dir: PathBuf,
    reference: Arc<DriftReference>,
    /// The extractor's columns (the CSV header's feature names).
    extractor: Vec<String>,
}

fn cic() -> Option<Cic> {
    let Some(dir) = dataset::cicids_dir() else {
        eprintln!("skipping: flows/cicids2017-improved-5000 not under $PORTCULLIS_DATA");
        return None;
    };
    let model = newest_version(&models_root()).unwrap();
    let reference = Arc::new(DriftReference::load(&model).unwrap().unwrap());
    let extractor = dataset::header_feature_names(&dir).unwrap();
    Some(Cic { dir, reference, extractor })
}

impl Cic {
    /// Every row of one class file, in extractor column order.
    fn rows(&self, file: &str) -> Dataset {
        let names: Vec<&str> = self.extractor.iter().map(String::as_str).collect();
        let mut d = Dataset::default();
        d.read_csv(&self.dir.join(file), &names, usize::MAX).unwrap();
        d
    }

    fn counts(&self, d: &Dataset, rows: impl IntoIterator<Item = usize>) -> DriftCounts {
        let names: Vec<&str> = self.extractor.iter().map(String::as_str).collect();
        let mut c = DriftCounts::extractor_rows(&self.reference, &names).unwrap();
        for i in rows {
            c.add_row(d.row(i));
        }
        c
    }
}

/// Row indices of a class file's latest 20 % by (Timestamp, id): train.py's test split, flows
/// the reference (built from the earliest 65 %) never saw.
fn test_split(path: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let ts = header.iter().position(|h| *h == "Timestamp").unwrap();
    let id = header.iter().position(|h| *h == "id").unwrap();
    let mut keys: Vec<(String, i64, usize)> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() == header.len())
        .enumerate()
        .map(|(i, f)| (f[ts].to_owned(), f[id].parse().unwrap(), i))
        .collect();
    keys.sort();
    let n_test = (keys.len() as f64 * 0.2).round() as usize;
    keys[keys.len() - n_test..].iter().map(|k| k.2).collect()
}

fn show(what: &str, p: &[(String, f64)]) {
    let above = |t: f64| p.iter().filter(|(_, v)| *v >= t).count();
    let median = p[p.len() / 2].1;
    eprintln!(
        "{what}: median PSI {median:.4}, {} features >= 0.1, {} >= 0.25; highest: {}",
        above(0.1),
        above(DEFAULT_THRESHOLD),
        p.iter().take(5).map(|(f, v)| format!("{f} {v:.3}")).collect::<Vec<_>>().join(", ")
    );
}

#[test]
fn held_out_benign_flows_score_low_and_attacks_high() {
    let Some(cic) = cic() else { return };
    let benign = cic.rows("BENIGN_5000.csv");
    let test = test_split(&cic.dir.join("BENIGN_5000.csv"));
    assert_eq!(test.len(), 1000);
    let p = psi(&cic.reference, &cic.counts(&benign, test.iter().copied())).unwrap();
    show("CIC benign test split (1,000 flows)", &p);
    let low = p.iter().filter(|(_, v)| *v < 0.1).count();
    assert!(low * 10 >= p.len() * 9, "most features should not shift: {p:?}");
    assert!(p[0].1 < DEFAULT_THRESHOLD, "no feature should drift significantly: {p:?}");

    for file in ["Portscan_5000.csv", "DDoS_5000.csv", "DoS_Hulk_5000.csv", "SSH-Patator_2961.csv"] {
        let d = cic.rows(file);
        let p = psi(&cic.reference, &cic.counts(&d, 0..d.len())).unwrap();
        show(file, &p);
        let high = p.iter().filter(|(_, v)| *v >= DEFAULT_THRESHOLD).count();
        assert!(high >= 10 && p[0].1 > 1.0, "{file}: an attack class should shift many features: {p:?}");
    }
}

#[test]
fn model_ordered_rows_bin_as_extractor_rows() {
    let Some(cic) = cic() else { return };
    let path = cic.dir.join("Portscan_5000.csv");
    let extractor_rows = cic.rows("Portscan_5000.csv");
    let names: Vec<&str> = cic.reference.features().iter().map(String::as_str).collect();
    let mut model_rows = Dataset::default();
    model_rows.read_csv(&path, &names, usize::MAX).unwrap();
    let mut by_model = DriftCounts::model_rows(&cic.reference);
    for i in 0..model_rows.len() {
        by_model.add_row(model_rows.row(i));
    }
    let by_name = cic.counts(&extractor_rows, 0..extractor_rows.len());
    assert_eq!(by_model.flows(), by_name.flows());
    for (f, name) in names.iter().enumerate() {
        assert_eq!(by_model.bins(f), by_name.bins(f), "{name}");
    }
}

#[test]
fn the_monitor_alerts_when_benign_traffic_turns_into_a_port_scan() {
    let Some(cic) = cic() else { return };
    let benign = cic.rows("BENIGN_5000.csv");
    let scan = cic.rows("Portscan_5000.csv");
    let config = DriftConfig { window_flows: 1000, ..DriftConfig::default() };
    let mut m = DriftMonitor::new(cic.reference.clone(), config);
    // Two workers' counts merged once a "second", 250 flows each.
    let mut second = 0;
    let mut events = Vec::new();
    let mut feed = |d: &Dataset, rows: Vec<usize>, m: &mut DriftMonitor| {
        for chunk in rows.chunks(500) {
            let (a, b) = chunk.split_at(chunk.len() / 2);
            let mut w = cic.counts(d, a.iter().copied());
            w.merge(&cic.counts(d, b.iter().copied()));
            second += 1;
            if let Some(e) = m.add(&w, Duration::from_secs(second)) {
                events.push((second, e));
            }
        }
    };
    feed(&benign, test_split(&cic.dir.join("BENIGN_5000.csv")), &mut m);
    let calm = m.last().unwrap().features[0].1;
    feed(&scan, (0..2000).collect(), &mut m);
    for (at, e) in &events {
        eprintln!("second {at}: {} features crossed, {} cleared; first: {:?}", e.crossed.len(), e.cleared.len(), e.crossed.first());
    }
    eprintln!("benign window's highest PSI {calm:.3}");
    assert!(calm < DEFAULT_THRESHOLD);
    assert_eq!(events.len(), 1, "one alert for the turn, none for the next scan window: {events:?}");
    let (at, e) = &events[0];
    assert_eq!(*at, 4, "the first all-scan window closes after the 4th second");
    assert!(e.crossed.len() >= 10 && e.cleared.is_empty(), "{e:?}");
}
