//! Kill points: `push`, `sign` and `publish` aborted after each step that changes shared state.
//!
//! Kill points: `push`, `sign` and `publish` aborted right after each step that
//! changes shared state (`KILN_TEST_KILL_AFTER`), against a local layout and a
//! real registry; what is left must be whole, and running the command again
//! must finish the job without uploading what is already there.

use crate::common::*;
use crate::registry_harness::{Registry, Variant, check_whole};
use crate::trust::module_with_aot;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "crash-test-password";

/// Every step kiln names as a kill point (kiln_core::kill).
const STEPS: &[&str] = &[
    "blob-stored",
    "manifest-stored",
    "index-updated",
    "referrers-updated",
    "signature-stored",
    "output-written",
];

fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", PASSWORD).env("CI", "1");
    c
}

/// Where one run's artifacts go: a fresh layout, or a fresh repository.
enum Store<'a> {
    Layout(&'a Path),
    Registry(&'a Registry),
}

impl Store<'_> {
    fn reference(&self, run: &str) -> String {
        match self {
            Store::Layout(dir) => format!("oci:{}:v1", dir.join(run).display()),
            Store::Registry(reg) => format!("{}/crash/{run}:v1", reg.host),
        }
    }

    /// The repository of one run on the registry.
    fn repository(run: &str) -> String {
        format!("crash/{run}")
    }

    /// The manifest or blob with `digest`, when it is stored.
    fn blob(&self, run: &str, digest: &str) -> Option<Vec<u8>> {
        match self {
            Store::Layout(dir) => {
                let hex = digest.trim_start_matches("sha256:");
                std::fs::read(dir.join(run).join("blobs/sha256").join(hex)).ok()
            }
            Store::Registry(reg) => reg.linked_blob(&Store::repository(run), digest),
        }
    }

    /// The digests of every blob stored for this run, reachable or not.
    fn stored(&self, run: &str) -> BTreeSet<String> {
        match self {
            Store::Layout(dir) => std::fs::read_dir(dir.join(run).join("blobs/sha256"))
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                        .collect()
                })
                .unwrap_or_default(),
            Store::Registry(reg) => reg.linked_layers(&Store::repository(run)),
        }
    }

    /// The digests every tag points at.
    fn tagged(&self, run: &str) -> Vec<(String, String)> {
        match self {
            Store::Layout(dir) => {
                let Ok(bytes) = std::fs::read(dir.join(run).join("index.json")) else {
                    return Vec::new();
                };
                let index: Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("index.json of `{run}` does not parse: {e}"));
                index["manifests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["annotations"]["org.opencontainers.image.ref.name"]
                                .as_str()
                                .unwrap_or("(untagged)")
                                .to_string(),
                            m["digest"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            }
            Store::Registry(reg) => reg.tags(&Store::repository(run)),
        }
    }

    /// Checks that everything reachable from the tags is whole: each
    /// manifest and blob stored, with the digest and size its descriptor
    /// gives. Returns the digests and sizes of the blobs (not manifests)
    /// reachable.
    fn check_whole(&self, run: &str) -> BTreeSet<(String, u64)> {
        check_whole(run, self.tagged(run), |d| self.blob(run, d))
    }
}

/// Runs `command` killed after the Nth time of each step, for every N the
/// step is reached, each on a fresh copy of the state `prepare` makes;
/// checks what each kill left, then runs the command again and hands its
/// output to `finish` with the blobs that were already stored.
fn kill_everywhere(
    store: &Store,
    name: &str,
    prepare: &dyn Fn(&str),
    command: &dyn Fn(&str) -> Command,
    finish: &dyn Fn(&str, &std::process::Output, &BTreeSet<String>),
) -> usize {
    let mut kills = 0;
    for step in STEPS {
        for n in 1.. {
            let run = format!("{name}-{step}-{n}");
            prepare(&run);
            let out = command(&run)
                .env("KILN_TEST_KILL_AFTER", format!("{step}:{n}"))
                .output()
                .unwrap();
            if out.status.code().is_some() {
                // The step was reached fewer than N times: the command ran
                // to its end.
                assert!(out.status.success(), "{run}: {}", stderr(&out));
                break;
            }
            kills += 1;
            store.check_whole(&run);
            let before = store.stored(&run);
            let again = command(&run).output().unwrap();
            assert!(
                again.status.success(),
                "{run}: the rerun after the kill failed: {}",
                stderr(&again)
            );
            store.check_whole(&run);
            finish(&run, &again, &before);
        }
    }
    kills
}

/// Bytes of the blobs now reachable that were not stored before the rerun:
/// all the rerun may upload.
fn missing_bytes(store: &Store, run: &str, before: &BTreeSet<String>) -> u64 {
    store
        .check_whole(run)
        .iter()
        .filter(|b| !before.contains(&b.0))
        .map(|b| b.1)
        .sum()
}

fn push_sign_publish(store: &Store, dir: &Path) {
    let wasm = module_with_aot(dir, "crash");
    run_ok(k(dir).args(["keygen", "--output-prefix", "k"]));
    let uploaded = |out: &std::process::Output| -> u64 {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["uploaded_bytes"].as_u64().unwrap()
    };

    // push, with its precompiled artifact attached.
    let push = |run: &str| {
        let mut c = k(dir);
        c.arg("push")
            .arg(&wasm)
            .arg(store.reference(run))
            .arg("--json");
        c
    };
    let pushes = kill_everywhere(store, "push", &|_| {}, &push, &|r, again, before| {
        assert!(
            uploaded(again) <= missing_bytes(store, r, before),
            "{r}: the rerun uploaded {} bytes, more than was missing",
            uploaded(again)
        );
    });
    assert!(pushes >= 5, "only {pushes} kill points in push");

    // sign --recursive of a pushed artifact, in each signature format.
    for format in ["bundle", "legacy"] {
        let sign = |run: &str| {
            let mut c = k(dir);
            c.arg("sign").arg(store.reference(run)).args([
                "--key",
                "k.key",
                "--recursive",
                "--format",
                format,
            ]);
            c
        };
        let prepare = |r: &str| {
            run_ok(&mut push(r));
        };
        let name = format!("sign-{format}");
        let signs = kill_everywhere(store, &name, &prepare, &sign, &|r, _, _| {
            let out = run(k(dir)
                .arg("verify")
                .arg(store.reference(r))
                .args(["--key", "k.pub"]));
            assert_eq!(out.status.code(), Some(0), "{r}: {}", stderr(&out));
        });
        assert!(
            signs >= 4,
            "only {signs} kill points in sign --format {format}"
        );
    }

    // publish of a C project: build, precompile, SBOM, push, sign.
    let project = dir.join("project");
    copy_dir(&fixture("c-command"), &project);
    let publish = |run: &str| {
        let mut c = k(dir);
        c.arg("publish")
            .arg(&project)
            .arg("--to")
            .arg(store.reference(run))
            .args(["--key", "k.key", "--json", "--receipt"])
            .arg(dir.join(format!("{run}.receipt.json")));
        c
    };
    let publishes = kill_everywhere(store, "publish", &|_| {}, &publish, &|r, _, before| {
        let receipt: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{r}.receipt.json"))).unwrap())
                .unwrap();
        let up = receipt["run"]["uploaded_bytes"].as_u64().unwrap();
        assert!(
            up <= missing_bytes(store, r, before),
            "{r}: the rerun uploaded {up} bytes, more than was missing"
        );
        let out = run(k(dir)
            .arg("verify")
            .arg(store.reference(r))
            .args(["--key", "k.pub"]));
        assert_eq!(out.status.code(), Some(0), "{r}: {}", stderr(&out));
    });
    assert!(publishes >= 8, "only {publishes} kill points in publish");
}

#[test]
fn killed_at_every_step_against_a_layout_leaves_it_whole_and_a_rerun_finishes() {
    if !requires(&["clang"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layouts = tmp.path().join("layouts");
    push_sign_publish(&Store::Layout(&layouts), tmp.path());
}

#[test]
fn killed_at_every_step_against_a_registry_leaves_it_whole_and_a_rerun_finishes() {
    if !requires(&["clang"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let tmp = tempfile::tempdir().unwrap();
    push_sign_publish(&Store::Registry(&reg), tmp.path());
}
