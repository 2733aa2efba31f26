//! Every fuzz finding stays fixed: each file under `regressions/TARGET/` runs through its
//! target (no panic), and each target runs on its seeds, which its parser accepts (but for
//! the cache's planted entries).

use nucleus_fuzz::{target, TARGETS};
use std::path::Path;

/// Findings whose input the parser must refuse (it accepted them wrongly, or panicked).
const REFUSED: &[(&str, &str)] = &[];

#[test]
fn every_regression_file_runs_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut ran = 0;
    for dir in std::fs::read_dir(&root).expect("regressions/").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        let name = dir.file_name().to_string_lossy().into_owned();
        let t = target(&name).unwrap_or_else(|| panic!("regressions/{name}: no such target"));
        for file in std::fs::read_dir(dir.path())
            .expect("a target's directory")
            .flatten()
        {
            let input = std::fs::read(file.path()).expect("a regression file");
            let file_name = file.file_name().to_string_lossy().into_owned();
            let accepted = (t.run)(&input);
            if REFUSED.contains(&(name.as_str(), file_name.as_str())) {
                assert!(!accepted, "{name}/{file_name} is accepted");
            }
            ran += 1;
        }
    }
    eprintln!("{ran} regression file(s)");
}

#[test]
fn every_target_runs_its_seeds() {
    for t in TARGETS {
        let seeds = (t.seeds)();
        // Seeds are valid examples, but for the cache's planted and foreign entries.
        let refused: Vec<usize> = (0..seeds.len()).filter(|&i| !(t.run)(&seeds[i])).collect();
        let expected: Vec<usize> = match t.name {
            "wasm-cache" => (0..seeds.len()).filter(|i| i % 3 != 0).collect(),
            _ => Vec::new(),
        };
        assert_eq!(refused, expected, "{}: seeds refused", t.name);
    }
}

#[test]
fn the_mutator_is_deterministic_and_bounded() {
    let seeds = (TARGETS[0].seeds)();
    let mut a = nucleus_fuzz::Mutator::new(42, 1024);
    let mut b = nucleus_fuzz::Mutator::new(42, 1024);
    for _ in 0..1000 {
        let input = a.next(&seeds);
        assert!(input.len() <= 1024);
        assert_eq!(input, b.next(&seeds));
    }
}
