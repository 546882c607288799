//! Credentials podman users keep: the containers auth file (`REGISTRY_AUTH_FILE`).
//!
//! Credentials podman users keep: the containers auth file
//! (`REGISTRY_AUTH_FILE`), read after Docker's config file, on a real registry
//! behind htpasswd.

use crate::common::*;
use crate::registry_harness::{PASSWORD, Registry, USER, Variant};
use base64::Engine as _;
use std::path::Path;
use std::process::Command;

/// kiln in `home` with an empty Docker config, no environment
/// credentials, and `auth_file` as podman's auth file.
fn k(home: &Path, auth_file: &Path) -> Command {
    let mut c = kiln_in(home);
    c.env("REGISTRY_AUTH_FILE", auth_file)
        .env("KILN_CERTS_DIRS", "");
    c
}

fn auths(entries: &[(&str, &str, &str)]) -> String {
    let mut auths = serde_json::Map::new();
    for (key, user, password) in entries {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        auths.insert(key.to_string(), serde_json::json!({ "auth": auth }));
    }
    serde_json::json!({ "auths": auths }).to_string()
}

#[test]
fn credentials_in_podmans_auth_file_push_and_dockers_config_comes_first() {
    if !requires_registry(Variant::Auth) {
        return;
    }
    let reg = Registry::start(Variant::Auth);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join(".docker")).unwrap();
    let auth_file = h.join("auth.json");
    std::fs::write(&auth_file, auths(&[(&reg.host, USER, PASSWORD)])).unwrap();
    let wasm = crate::trust::module(h, "podman");
    let reference = format!("{}/podman/m:1", reg.host);

    let out = run_ok(
        k(h, &auth_file)
            .arg("push")
            .arg(&wasm)
            .arg(&reference)
            .arg("--no-aot"),
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("from {}", auth_file.display())),
        "the source is not named: {err}"
    );
    assert!(!err.contains(PASSWORD) && !stdout(&out).contains(PASSWORD));
    let pulled = h.join("pulled.wasm");
    run_ok(
        k(h, &auth_file)
            .arg("pull")
            .arg(&reference)
            .arg("-o")
            .arg(&pulled),
    );
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );

    // Docker's config file is read first: its (wrong) password wins.
    std::fs::write(
        h.join(".docker/config.json"),
        auths(&[(&reg.host, USER, "wrong")]),
    )
    .unwrap();
    let out = run(k(h, &auth_file)
        .arg("push")
        .arg(&wasm)
        .arg(&reference)
        .args(["--no-aot", "--retries", "1"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".docker/config.json"),
        "{}",
        stderr(&out)
    );

    // Without either, the push asks for a login.
    std::fs::remove_file(h.join(".docker/config.json")).unwrap();
    let out = run(k(h, &h.join("missing.json"))
        .arg("push")
        .arg(&wasm)
        .arg(&reference)
        .args(["--no-aot", "--retries", "1"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
