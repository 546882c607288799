//! Temporary files a killed kiln left behind are removed by the next kiln writing there.
//!
//! Temporary files and directories a killed kiln left behind are removed by the
//! next kiln that writes into the same directory, once nobody holds their lock
//! and they are over a minute old.

use crate::common::*;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Makes `path` look like a killed kiln's leftover: last modified long ago.
fn age(path: &Path) {
    let when = SystemTime::now() - Duration::from_secs(3600);
    let file = if path.is_dir() {
        std::fs::File::open(path).unwrap()
    } else {
        std::fs::OpenOptions::new().write(true).open(path).unwrap()
    };
    file.set_modified(when).unwrap();
}

#[test]
fn kiln_new_removes_a_killed_kiln_news_directory() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join(".kiln-new-AbC123");
    std::fs::create_dir_all(dead.join("src")).unwrap();
    std::fs::write(dead.join("src/lib.rs"), "").unwrap();
    std::fs::write(dead.join(".kiln-lock"), "").unwrap();
    age(&dead);
    let tmp = dir.path().join(".kiln-tmp-XyZ789");
    std::fs::write(&tmp, "half").unwrap();
    age(&tmp);
    // A fresh one may belong to a kiln running right now.
    let fresh = dir.path().join(".kiln-new-fresh1");
    std::fs::create_dir(&fresh).unwrap();

    run_ok(kiln().current_dir(dir.path()).args([
        "new",
        "hello-stale",
        "--lang",
        "rust",
        "--template",
        "command",
    ]));
    assert!(!dead.exists() && !tmp.exists());
    assert!(fresh.exists());
    assert!(dir.path().join("hello-stale/Cargo.toml").is_file());
    assert!(!dir.path().join("hello-stale/.kiln-lock").exists());
}

#[test]
fn opening_a_layout_removes_leftover_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let stale = [
        layout.join(".kiln-tmp-index1"),
        blobs.join(".kiln-tmp-blob01"),
    ];
    for path in &stale {
        std::fs::write(path, "partial").unwrap();
        age(path);
    }
    // Held by a writer that is still alive: kept, however old.
    let held = blobs.join(".kiln-tmp-live01");
    std::fs::write(&held, "partial").unwrap();
    age(&held);
    let lock = std::fs::File::open(&held).unwrap();
    lock.lock().unwrap();

    run_ok(kiln().arg("tags").arg(format!("oci:{}", layout.display())));
    for path in &stale {
        assert!(!path.exists(), "{} was left", path.display());
    }
    assert!(held.exists());
    drop(lock);
    run_ok(kiln().arg("tags").arg(format!("oci:{}", layout.display())));
    assert!(!held.exists());
}
