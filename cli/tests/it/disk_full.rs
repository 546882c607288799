//! A full disk under a layout and under an output directory: a clear error, nothing left behind.
//!
//! A full disk under a layout and under an output directory (a small tmpfs the
//! test mounts when run as root): a clear error, the previous state intact, no
//! temporary files left behind.

use crate::common::*;
use crate::trust::module;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted at a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message) when this process may not mount one.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: mounting a tmpfs needs root ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: `mount` could not run ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A valid core module of about `size` bytes (a custom section pads it).
fn big_module(dir: &Path, size: usize) -> PathBuf {
    let mut m = wasm_encoder::Module::new();
    m.section(&wasm_encoder::CustomSection {
        name: "padding".into(),
        data: vec![0x5a; size].into(),
    });
    let path = dir.join("big.wasm");
    std::fs::write(&path, m.finish()).unwrap();
    path
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    crate::registry_harness::files_under(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".kiln-tmp"))
        })
        .collect()
}

#[test]
fn a_full_disk_under_a_layout_or_an_output_directory_is_a_clear_error_and_changes_nothing() {
    if not_root() {
        eprintln!("skipped: not root, so no tmpfs can be mounted for the full-disk test");
        return;
    }
    let Some(fs) = Tmpfs::mount("512k") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let small = module(w, "small");
    let big = big_module(w, 1 << 20);
    let layout = fs.path().join("layout");
    let r = |tag: &str| format!("oci:{}:{tag}", layout.display());

    // A layout with one artifact, then a push that does not fit.
    run_ok(kiln().arg("push").arg(&small).arg(r("small")));
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    let out = run(kiln().arg("push").arg(&big).arg(r("big")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("failed to store"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before
    );
    assert_eq!(leftovers(fs.path()), Vec::<PathBuf>::new());
    // What was there still pulls, whole.
    let pulled = w.join("pulled.wasm");
    run_ok(kiln().arg("pull").arg(r("small")).arg("-o").arg(&pulled));
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&small).unwrap()
    );

    // An output directory that fills up: `kiln compile -o` keeps the
    // artifacts already there as they were.
    let out_dir = fs.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let host = kiln_core::Target::host().as_str();
    let kept = out_dir.join(format!("small.{host}.cwasm"));
    std::fs::write(&kept, b"an earlier artifact").unwrap();
    // Fill what is left of the disk.
    let filler = fs.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    let out = run(kiln()
        .arg("compile")
        .arg(&small)
        .args(["--target", host, "--no-cache", "-o"])
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&kept).unwrap(), b"an earlier artifact");
    assert_eq!(leftovers(fs.path()), Vec::<PathBuf>::new());
}

/// Whether this process runs as someone other than root (`id -u`).
fn not_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
        .unwrap_or(true)
}
