//! Loads all of ET Open 2024-04 (from the shared corpora) and checks that every rule either
//! loads or is skipped for a named keyword Portcullis does not support, never for a parse
//! error, and that the parser does not panic on any of it.

use std::path::PathBuf;

use portcullis_rules::{RuleSet, SkipKind, Vars};

fn et_dir() -> Option<PathBuf> {
    let d = portcullis_common::shared_data_dir().join("rules/et-open-2024-04");
    d.join("classification.config").exists().then_some(d)
}

#[test]
fn et_open_loads_with_only_named_skips() {
    let Some(dir) = et_dir() else {
        eprintln!("skipping: ET Open not found under the shared data dir (set PORTCULLIS_DATA)");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "rules")).collect();
    files.sort();
    let t = std::time::Instant::now();
    let r = RuleSet::load(&files, &Vars::default(), Some(&dir.join("classification.config")), None).unwrap();
    eprintln!("loaded {} skipped {} in {:?}", r.rules.len(), r.skipped.len(), t.elapsed());
    for (k, n) in r.skipped_by_keyword().iter().take(40) {
        eprintln!("  {n:6} {k}");
    }
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // Every active rule is accounted for.
    let active: usize = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().filter(|l| { let l = l.trim(); !l.is_empty() && !l.starts_with('#') }).count())
        .sum();
    assert_eq!(r.rules.len() + r.skipped.len(), active);
    let bad: Vec<String> = r
        .skipped
        .iter()
        .filter(|s| !matches!(s.kind, SkipKind::AppLayer | SkipKind::Unsupported))
        .map(|s| s.to_string())
        .collect();
    for b in bad.iter().take(60) {
        eprintln!("{b}");
    }
    assert!(bad.is_empty(), "{} rules skipped for something other than a named unsupported keyword", bad.len());
    assert!(r.rules.len() > 3000, "only {} rules loaded", r.rules.len());
    // Classification lookups took effect.
    assert!(r.rules.iter().filter(|r| r.classtype.is_some()).all(|r| !r.category.is_empty()));
}
