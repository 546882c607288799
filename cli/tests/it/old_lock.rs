//! Rust projects whose Cargo.lock pins releases from before wasm32-wasip2 was stable.
//!
//! `fixtures/rust-old-lock` pins lexopt 0.3.0, which uses the standard
//! library's `std::os::wasi::ffi` while it was unstable on wasm32-wasip2
//! (E0658 `wasip2`); lexopt 0.3.1 and later build. Plain `kiln build` names
//! the release and the `cargo update` that moves it; `--update-incompatible`
//! runs that update and builds. Both ask crates.io (the dry run, the
//! download of the newer release).

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The packages Cargo.lock at `dir` pins, by name, with their versions.
fn locked(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    let lock: toml::Table = toml::from_str(&text).unwrap();
    let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in lock["package"].as_array().unwrap() {
        packages
            .entry(p["name"].as_str().unwrap().to_string())
            .or_default()
            .push(p["version"].as_str().unwrap().to_string());
    }
    packages
}

/// kiln's own lines of a failed build's stderr: from its error on, after
/// cargo's and rustc's.
fn kiln_error(stderr: &str) -> String {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("error: cargo could not build"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn old_lock_names_the_release_and_the_update() {
    if !requires(&["cargo"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    copy_dir(&fixture("rust-old-lock"), &project);
    let before = std::fs::read(project.join("Cargo.lock")).unwrap();

    let out = run(kiln().arg("build").arg(&project));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    // cargo's own errors are passed through first.
    assert!(
        err.contains("error[E0658]: use of unstable library feature `wasip2`"),
        "{err}"
    );
    // The dry run names the version it would move to: the newest 0.3.x.
    let rest = err.split("lexopt 0.3.0 -> ").nth(1).unwrap_or_default();
    let newest: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let newest = newest.trim_end_matches('.');
    assert!(newest.starts_with("0.3."), "{err}");
    assert_snapshot(
        snapshot("build/old-lock.stderr"),
        &kiln_error(&err),
        &Filters::new().text(&format!("0.3.0 -> {newest}"), "0.3.0 -> [NEWEST]"),
    );
    // Nothing was written: the dry run leaves Cargo.lock as it was.
    assert_eq!(std::fs::read(project.join("Cargo.lock")).unwrap(), before);
}

#[test]
fn update_incompatible_moves_only_the_failing_release_and_builds() {
    if !requires(&["cargo"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    copy_dir(&fixture("rust-old-lock"), &project);
    let before = locked(&project);
    assert_eq!(before["lexopt"], ["0.3.0"]);

    let wasm = dir.path().join("old-lock.wasm");
    let out = run_ok(
        kiln()
            .arg("build")
            .arg(&project)
            .arg("--update-incompatible")
            .arg("-o")
            .arg(&wasm),
    );
    let err = stderr(&out);
    let after = locked(&project);

    // Only lexopt moved, to a newer 0.3 release, and kiln said so.
    let changed: std::collections::BTreeSet<&String> = after
        .keys()
        .chain(before.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .collect();
    assert_eq!(Vec::from_iter(changed), ["lexopt"], "{err}");
    let new = &after["lexopt"][0];
    assert!(new.starts_with("0.3.") && new != "0.3.0", "{new}");
    assert!(
        err.contains("warning: Cargo.lock pins a release from before wasm32-wasip2 was stable, updating as asked: `lexopt` 0.3.0"),
        "{err}"
    );
    assert!(
        err.contains("Updating Cargo.lock: `cargo update -p lexopt@0.3.0`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("Updated lexopt 0.3.0 -> {new}")),
        "{err}"
    );

    // The component runs as the program does.
    assert_eq!(
        run_command(&wasm, &["--name", "kiln"], &[]).unwrap(),
        "hello, kiln\n"
    );

    // With the lock fixed, a plain build needs no update.
    let out = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&wasm));
    assert!(!stderr(&out).contains("Updat"), "{}", stderr(&out));
}

#[test]
fn update_incompatible_refuses_locked() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-old-lock"))
        .args(["--update-incompatible", "--locked"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}
