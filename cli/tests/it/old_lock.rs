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
use std::path::{Path, PathBuf};

/// A copy of the fixture `name` to build in, and the directory holding it
/// (which outputs may go to too).
fn copied(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    copy_dir(&fixture(name), &project);
    (dir, project)
}

/// `kiln build --update-incompatible` of `project` into `wasm`, which must
/// succeed; its stderr.
fn build_updating(project: &Path, wasm: &Path) -> String {
    let out = run_ok(
        kiln()
            .arg("build")
            .arg(project)
            .arg("--update-incompatible")
            .arg("-o")
            .arg(wasm),
    );
    stderr(&out)
}

/// The packages Cargo.lock at `dir` pins, by name, with their versions in
/// order.
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
    for versions in packages.values_mut() {
        versions.sort();
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
    let (_dir, project) = copied("rust-old-lock");
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
    let (dir, project) = copied("rust-old-lock");
    let before = locked(&project);
    assert_eq!(before["lexopt"], ["0.3.0"]);

    let wasm = dir.path().join("old-lock.wasm");
    let err = build_updating(&project, &wasm);
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

/// What kiln's status lines say it changed in Cargo.lock, as the packages
/// and versions a lock would hold afterwards.
fn reported(stderr: &str, before: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let mut lock = before.clone();
    for line in stderr.lines().map(str::trim_start) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let remove = |lock: &mut BTreeMap<String, Vec<String>>, name: &str, v: &str| {
            let versions = lock.entry(name.to_string()).or_default();
            versions.retain(|x| x != v);
            if versions.is_empty() {
                lock.remove(name);
            }
        };
        match words.as_slice() {
            ["Updated" | "Downgraded", name, from, "->", to] => {
                remove(&mut lock, name, from);
                lock.entry(name.to_string())
                    .or_default()
                    .push(to.to_string());
            }
            ["Added", name, v] => lock
                .entry(name.to_string())
                .or_default()
                .push(v.to_string()),
            ["Removed", name, v] => remove(&mut lock, name, v),
            _ => {}
        }
    }
    for versions in lock.values_mut() {
        versions.sort();
    }
    lock
}

#[test]
fn update_incompatible_moves_the_dependent_when_the_release_cannot_move() {
    if !requires(&["cargo"]) {
        return;
    }
    // `fixtures/rust-old-lock-deep` pins tempfile 3.10.1 with rustix
    // 0.38.34. Round one moves rustix to the newest 0.38 release, which
    // still fails (it turns on `#![feature(wasip2)]`, E0554); no rustix
    // 0.38 builds, so round two updates tempfile, whose newer releases use
    // rustix 1.
    let (dir, project) = copied("rust-old-lock-deep");
    let before = locked(&project);
    assert_eq!(before["rustix"], ["0.38.34"]);
    assert_eq!(before["tempfile"], ["3.10.1"]);

    let wasm = dir.path().join("deep.wasm");
    let err = build_updating(&project, &wasm);
    let updates: Vec<&str> = err
        .lines()
        .filter(|l| l.trim_start().starts_with("Updating Cargo.lock"))
        .map(str::trim_start)
        .collect();
    assert_eq!(
        updates,
        [
            "Updating Cargo.lock: `cargo update -p rustix@0.38.34`",
            "Updating Cargo.lock: `cargo update -p tempfile@3.10.1`"
        ],
        "{err}"
    );
    assert!(
        err.contains("(it turns on the unstable feature `wasip2`, E0554)"),
        "{err}"
    );

    // The lock changed exactly as kiln reported, tempfile and rustix left
    // their old releases, and the component runs.
    let after = locked(&project);
    assert_eq!(reported(&err, &before), after, "{err}");
    assert!(!after["rustix"].contains(&"0.38.34".to_string()));
    assert_ne!(after["tempfile"], ["3.10.1"]);
    // No directory is preopened, so there is nowhere to create the file.
    assert_eq!(
        run_command(&wasm, &[], &[]).unwrap(),
        "no temporary file here\n"
    );
}

#[test]
fn a_requirement_that_holds_the_release_back_is_named() {
    if !requires(&["cargo"]) {
        return;
    }
    // `lexopt = "=0.3.0"`: no `cargo update` can move it, only an edit of
    // the requirement.
    let (_dir, project) = copied("rust-old-lock");
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(r#"lexopt = "0.3""#, r#"lexopt = "=0.3.0""#),
    )
    .unwrap();
    let before = std::fs::read(project.join("Cargo.lock")).unwrap();

    let out = run(kiln()
        .arg("build")
        .arg(&project)
        .arg("--update-incompatible"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let from = err.find("error: Cargo.lock pins").unwrap_or(0);
    assert_snapshot(
        snapshot("build/old-lock-held.stderr"),
        &err[from..],
        &Filters::new(),
    );
    assert_eq!(std::fs::read(project.join("Cargo.lock")).unwrap(), before);
}

#[test]
fn publish_updates_only_when_asked_and_says_so_in_its_events() {
    if !requires(&["cargo"]) {
        return;
    }
    let (dir, project) = copied("rust-old-lock");
    let publish = || {
        let mut c = kiln_in(dir.path());
        c.env("CI", "1").arg("publish").arg(&project).args([
            "--no-sign",
            "--target",
            "none",
            "--json",
        ]);
        c
    };

    // Without the flag: the build stage fails with the suggestion and
    // nothing is pushed or written.
    let out = run(&mut publish());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hint: `cargo update -p lexopt@0.3.0` would change lexopt 0.3.0 -> "),
        "{}",
        stderr(&out)
    );
    assert_eq!(locked(&project)["lexopt"], ["0.3.0"]);
    assert!(!project.join("target/kiln/oci").exists());

    // With it: the update is in the JSON events and the SBOM of what was
    // pushed names the release the lock now holds.
    let out = run_ok(publish().arg("--update-incompatible"));
    let new = locked(&project)["lexopt"][0].clone();
    assert_ne!(new, "0.3.0");
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["type"] == "status"
            && e["verb"] == "Updated"
            && e["message"] == format!("lexopt 0.3.0 -> {new}")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "warning"
                && e["message"].as_str().unwrap().contains("`lexopt` 0.3.0")),
        "{events:?}"
    );
    let receipt = &events.last().unwrap()["receipt"];
    let reference = receipt["pushed"]["reference"].as_str().unwrap();
    let sbom = run_ok(kiln_in(dir.path()).args(["inspect", reference, "--sbom"]));
    let bom: serde_json::Value = serde_json::from_slice(&sbom.stdout).unwrap();
    assert!(
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "lexopt" && c["version"] == new.as_str()),
        "{bom}"
    );
}
