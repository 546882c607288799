//! Replays every input a fuzz run found (and the small seeds checked in) as plain tests.
//!
//! `cargo xtask fuzz` copies each crash, timeout or out-of-memory input it
//! finds into `tests/fuzz_regressions/TARGET/`; the fix is committed with
//! it, and this test keeps it fixed without cargo-fuzz or a nightly
//! compiler. Each input runs on its own thread with a deadline, so a hang
//! fails the test instead of stalling the suite.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

/// How long one input may take. libFuzzer's timeout is 10 s on an
/// instrumented build; the test build is unoptimized for kiln's own crates.
const DEADLINE: Duration = Duration::from_secs(30);

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_target_replays_its_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, run) in kiln_fuzz_harness::TARGETS {
        let dirs = [
            root.join("tests/fuzz_regressions").join(name),
            root.join("../fuzz/seeds").join(name),
        ];
        for path in dirs.iter().flat_map(|d| inputs(d)) {
            let bytes = std::fs::read(&path).unwrap();
            let (tx, rx) = channel();
            let run = *run;
            std::thread::spawn(move || {
                run(&bytes);
                let _ = tx.send(());
            });
            match rx.recv_timeout(DEADLINE) {
                Ok(()) => replayed += 1,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{name}: {} hangs (over {DEADLINE:?})", path.display())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{name}: {} panics (the message is above)", path.display())
                }
            }
        }
    }
    // The checked-in seeds alone are dozens: none found means the
    // directories moved and this test stopped testing.
    assert!(replayed >= 20, "only {replayed} inputs replayed");
    eprintln!("replayed {replayed} inputs");
}

/// The cargo-fuzz targets in `fuzz/` and the harness's table name the same
/// set, so no target is fuzzed without being replayed, or the reverse.
#[test]
fn fuzz_targets_match_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = inputs(&root.join("../fuzz/fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut table: Vec<String> = kiln_fuzz_harness::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    table.sort();
    assert_eq!(files, table);
    let manifest = std::fs::read_to_string(root.join("../fuzz/Cargo.toml")).unwrap();
    for name in &table {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] for `{name}`"
        );
    }
}

/// Every regression input is a file in a directory named after a target.
#[test]
fn regression_directories_name_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(dirs) = std::fs::read_dir(root.join("tests/fuzz_regressions")) else {
        return;
    };
    for dir in dirs {
        let name = dir.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            kiln_fuzz_harness::TARGETS.iter().any(|(n, _)| *n == name),
            "tests/fuzz_regressions/{name} names no target"
        );
    }
}
