//! `kiln push`/`pull`/`tags`/`login` against a real registry and local OCI layouts.
//!
//! `kiln push`/`pull`/`tags`/`login` against a real registry (CNCF
//! distribution) and local OCI layouts: the CNCF Wasm layout, reproducible
//! digests, referrers through the tag schema, credentials, TLS, retries and
//! tampered content; cross-checked with skopeo.

use crate::common::*;
use crate::referrers_proxy::ReferrersProxy;
use crate::registry_harness::{PASSWORD, Registry, USER, Variant, files_under, skopeo};
use std::path::{Path, PathBuf};

/// The component in `dir`, with precompiled artifacts for the host and
/// aarch64 beside it.
fn component_with_aot(dir: &Path) -> PathBuf {
    let wasm = hello(dir);
    run_ok(kiln().arg("compile").arg(&wasm).args([
        "--target",
        kiln_core::Target::host().as_str(),
        "--target",
        "aarch64-unknown-linux-gnu",
    ]));
    wasm
}

/// Filters for these tests: the test's directory and the addresses of the
/// registries (and proxies, token services) it started, each `(address,
/// placeholder)`.
fn filters(dir: &Path, hosts: &[(&str, &str)]) -> Filters {
    hosts.iter().fold(
        Filters::new().path(dir, "TMP"),
        |filters, (host, placeholder)| filters.text(host, placeholder),
    )
}

/// Checks that kiln failed with exit 2 and compares its stderr with
/// `snapshots/oci/errors/NAME.stderr`.
fn assert_error(out: &std::process::Output, name: &str, filters: &Filters) {
    assert_eq!(out.status.code(), Some(2), "{name}: {}", transcript(out));
    assert_snapshot(
        snapshot(&format!("oci/errors/{name}.stderr")),
        &stderr(out),
        filters,
    );
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// Pulls `reference` with `--target host` into `dir` and checks that it is
/// the precompiled artifact `kiln compile` wrote there for this host.
fn pull_host_cwasm(dir: &Path, reference: &str) -> PathBuf {
    let cw = dir.join("pulled.cwasm");
    let p = json(&run_ok(
        kiln_in(dir)
            .arg("pull")
            .arg(reference)
            .args(["--target", "host", "--json", "-o"])
            .arg(&cw),
    ));
    assert_eq!(p["kind"], "cwasm");
    let host = kiln_core::Target::host().as_str();
    assert_eq!(
        std::fs::read(&cw).unwrap(),
        std::fs::read(dir.join(format!("hello.{host}.cwasm"))).unwrap()
    );
    cw
}

#[test]
fn a_registry_with_the_referrers_api_is_given_no_referrers_tag() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let api = ReferrersProxy::start(&reg.host);
    let dir = tempfile::tempdir().unwrap();
    let wasm = component_with_aot(dir.path());
    let r = format!("{}/demo/api:1.0", api.host);
    let pushed = json(&run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--json"),
    ));
    assert_eq!(pushed["referrers"].as_array().unwrap().len(), 2);
    let digest = pushed["digest"].as_str().unwrap().to_string();
    assert!(api.saw("GET", &format!("/v2/demo/api/referrers/{digest}")));
    // The registry behind the API holds the tag pushed and nothing else:
    // the referrers are found through the API, no `sha256-<hex>` tag.
    let tags = json(&run_ok(
        kiln_in(dir.path())
            .args(["tags", "--all", "--json"])
            .arg(format!("{}/demo/api", reg.host)),
    ));
    assert_eq!(tags, serde_json::json!(["1.0"]));
    // Pull finds the host's precompiled artifact through the API.
    pull_host_cwasm(dir.path(), &r);
    // Pushed again: still no tag, nothing uploaded.
    let again = json(&run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--json"),
    ));
    assert_eq!(again["uploaded_bytes"], 0);
    let tags = json(&run_ok(
        kiln_in(dir.path())
            .args(["tags", "--all", "--json"])
            .arg(format!("{}/demo/api", reg.host)),
    ));
    assert_eq!(tags, serde_json::json!(["1.0"]));
    assert!(!api.saw("PUT", "/manifests/sha256-"));
}

#[test]
fn a_registry_denying_the_push_is_a_clear_error_and_nothing_is_tagged() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let denying = ReferrersProxy::denying_writes(&reg.host);
    let dir = tempfile::tempdir().unwrap();
    let wasm = component_with_aot(dir.path());
    let out = run(kiln_in(dir.path())
        .arg("push")
        .arg(&wasm)
        .arg(format!("{}/demo/denied:1.0", denying.host)));
    let filters = filters(
        dir.path(),
        &[(&denying.host, "[PROXY]"), (&reg.host, "[REGISTRY]")],
    );
    assert_error(&out, "push-denied", &filters);
    // Denied at the first upload, and never retried.
    let posts = denying
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("POST"))
        .count();
    assert_eq!(posts, 1);
    // Reading still works through the same registry; nothing was stored.
    let tags = run(kiln_in(dir.path())
        .args(["tags", "--json"])
        .arg(format!("{}/demo/denied", denying.host)));
    assert_error(&tags, "tags-of-nothing", &filters);
}

#[test]
fn push_pull_referrers_and_reproducible_digests() {
    if !requires(&["skopeo"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let wasm = component_with_aot(dir.path());
    let r = format!("{}/demo/hello:1.0", reg.host);
    let filters = filters(dir.path(), &[(&reg.host, "[REGISTRY]")]);

    let pushed = json(&run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--json"),
    ));
    let digest = pushed["digest"].as_str().unwrap().to_string();
    assert_eq!(
        pushed["config_media_type"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(pushed["layer_media_types"][0], "application/wasm");
    assert_eq!(pushed["referrers"].as_array().unwrap().len(), 2);
    assert!(pushed["uploaded_bytes"].as_u64().unwrap() > std::fs::metadata(&wasm).unwrap().len());

    // Again: same digest, nothing uploaded.
    let again = json(&run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--json"),
    ));
    assert_eq!(again["digest"], digest.as_str());
    assert_eq!(again["uploaded_bytes"], 0);
    // Another repository of the same registry: blobs are mounted, not
    // uploaded again.
    let out = run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(format!("{}/demo/copy:1.0", reg.host))
            .arg("--json"),
    );
    assert_snapshot(snapshot("oci/push-mounted.stderr"), &stderr(&out), &filters);
    assert_eq!(json(&out)["uploaded_bytes"], 0);
    assert_eq!(json(&out)["digest"], digest.as_str());
    // Anywhere: a local layout gives the same manifest digest.
    let layout = dir.path().join("layout");
    let local = json(&run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(format!("oci:{}:1.0", layout.display()))
            .arg("--json"),
    ));
    assert_eq!(local["digest"], digest.as_str());

    // The manifest and config, as skopeo (a client nobody here wrote) reads them.
    let raw = skopeo()
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{r}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    assert_eq!(kiln_core::Digest::of(&raw.stdout).to_string(), digest);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "hello-command"
    );
    let config = skopeo()
        .args(["inspect", "--tls-verify=false", "--raw", "--config"])
        .arg(format!("docker://{r}"))
        .output()
        .unwrap();
    assert!(config.status.success(), "{}", stderr(&config));
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], manifest["layers"][0]["digest"]);
    let imports: Vec<&str> = config["component"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:cli/stdout@")),
        "{imports:?}"
    );

    // The referrers tag schema: an index under sha256-<hex> listing both.
    let tag = digest.replace(':', "-");
    let index = skopeo()
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{}/demo/hello:{tag}", reg.host))
        .output()
        .unwrap();
    assert!(index.status.success(), "{}", stderr(&index));
    let index: serde_json::Value = serde_json::from_slice(&index.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let mut targets: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["dev.kiln.cwasm.target"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    let mut expected = [
        kiln_core::Target::host().as_str(),
        "aarch64-unknown-linux-gnu",
    ];
    expected.sort_unstable();
    assert_eq!(targets, expected);

    // Tags hide the referrers tag unless asked.
    let tags = json(&run_ok(
        kiln_in(dir.path())
            .args(["tags", "--json"])
            .arg(format!("{}/demo/hello", reg.host)),
    ));
    assert_eq!(tags, serde_json::json!(["1.0"]));
    let all = stdout(&run_ok(
        kiln_in(dir.path())
            .args(["tags", "--all"])
            .arg(format!("{}/demo/hello", reg.host)),
    ));
    assert_snapshot(snapshot("oci/tags-all.txt"), &all, &filters);

    // Pull: by tag, by digest, and the precompiled artifact for this host.
    let out = dir.path().join("pulled.wasm");
    run_ok(kiln_in(dir.path()).arg("pull").arg(&r).arg("-o").arg(&out));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&wasm).unwrap());
    let by_digest = dir.path().join("by-digest.wasm");
    run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(format!("{}/demo/hello@{digest}", reg.host))
            .arg("-o")
            .arg(&by_digest),
    );
    assert_eq!(
        std::fs::read(&by_digest).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
    let cw = pull_host_cwasm(dir.path(), &r);
    // The descriptor comes along, so the pulled artifact checks as loading here.
    let check = run(kiln().args(["compile", "--check"]).arg(&cw));
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    // No artifact for riscv64: the portable component.
    let portable = dir.path().join("portable.wasm");
    let p = json(&run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(&r)
            .args(["--target", "riscv64gc-unknown-linux-gnu", "--json", "-o"])
            .arg(&portable),
    ));
    assert_eq!(p["kind"], "wasm");

    // skopeo copies kiln's artifact into a layout kiln pulls from.
    let copied = dir.path().join("skopeo-layout");
    let status = skopeo()
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{r}"))
        .arg(format!("oci:{}:copied", copied.display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let from_skopeo = dir.path().join("from-skopeo.wasm");
    run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(format!("oci:{}:copied", copied.display()))
            .arg("-o")
            .arg(&from_skopeo),
    );
    assert_eq!(
        std::fs::read(&from_skopeo).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
    // And kiln pulls what skopeo pushed to another repository.
    let status = skopeo()
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:copied", copied.display()))
        .arg(format!("docker://{}/other/hello:v2", reg.host))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let other = dir.path().join("other.wasm");
    run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(format!("{}/other/hello:v2", reg.host))
            .arg("-o")
            .arg(&other),
    );
    assert_eq!(
        std::fs::read(&other).unwrap(),
        std::fs::read(&wasm).unwrap()
    );

    // The local layout: pull and referrers work the same.
    let lcw = dir.path().join("layout.cwasm");
    let p = json(&run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(format!("oci:{}:1.0", layout.display()))
            .args(["--target", "host", "--json", "-o"])
            .arg(&lcw),
    ));
    assert_eq!(p["kind"], "cwasm");
    let tags = json(&run_ok(
        kiln_in(dir.path())
            .args(["tags", "--json"])
            .arg(format!("oci:{}", layout.display())),
    ));
    assert_eq!(tags, serde_json::json!(["1.0"]));
}

#[test]
fn source_date_epoch_sets_created_and_bare_names_use_the_local_layout() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let out = json(&run_ok(
        kiln_in(dir.path())
            .current_dir(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg("--json")
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    ));
    // The name and version come from the component's metadata.
    let reference = out["reference"].as_str().unwrap();
    assert!(
        reference.starts_with("oci:target/kiln/oci/hello-command:0.3.1@sha256:"),
        "{reference}"
    );
    let layout = dir.path().join("target/kiln/oci/hello-command");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(d)).unwrap())
            .unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
}

#[test]
fn credentials_from_login_and_helpers_and_never_printed() {
    if !requires_registry(Variant::Auth) {
        return;
    }
    let reg = Registry::start(Variant::Auth);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let wasm = hello(dir.path());
    let r = format!("{}/private/hello:1", reg.host);
    let filters = filters(dir.path(), &[(&reg.host, "[REGISTRY]")]);
    // Whatever kiln prints, the password is not in it: a property of every
    // output, checked on each rather than on the ones snapshotted.
    let no_secret = |out: &std::process::Output| {
        assert!(!stdout(out).contains(PASSWORD) && !stderr(out).contains(PASSWORD));
    };

    // Anonymous: refused, with what to do.
    let out = run(kiln_in(home).arg("push").arg(&wasm).arg(&r));
    assert_error(&out, "push-anonymous", &filters);

    // A wrong password does not log in and writes nothing.
    let mut login = kiln_in(home);
    login.args(["login", &reg.host, "-u", USER, "--password-stdin"]);
    let out = run_with_stdin(&mut login, "wrong-password\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!home.join(".docker/config.json").exists());
    // The right one does, in Docker's format.
    let out = run_with_stdin(&mut login, &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret(&out);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(".docker/config.json")).unwrap()).unwrap();
    assert!(config["auths"][&reg.host]["auth"].is_string());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join(".docker/config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "config.json must not be readable by others"
        );
    }
    let out = run(kiln_in(home).arg("push").arg(&wasm).arg(&r));
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret(&out);
    run_ok(kiln_in(home).args(["logout", &reg.host]));
    assert_eq!(
        run(kiln_in(home)
            .arg("pull")
            .arg(&r)
            .arg("-o")
            .arg(dir.path().join("x.wasm")))
        .status
        .code(),
        Some(2)
    );

    // A credential helper named by credsStore, written by this test.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-kilntest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> {}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            dir.path().join("helper.log").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        home.join(".docker/config.json"),
        r#"{"credsStore":"kilntest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pulled = dir.path().join("via-helper.wasm");
    let out = run(kiln_in(home)
        .env("PATH", &path)
        .arg("pull")
        .arg(&r)
        .arg("-o")
        .arg(&pulled));
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret(&out);
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
    let log = std::fs::read_to_string(dir.path().join("helper.log")).unwrap();
    assert_snapshot(snapshot("oci/credential-helper.log"), &log, &filters);

    // Environment variables win.
    std::fs::write(home.join(".docker/config.json"), "{}").unwrap();
    let out = run(kiln_in(home)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("tags")
        .arg(&r));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n");
    no_secret(&out);
}

#[test]
fn bearer_tokens_from_a_token_service_for_passwords_and_identity_tokens() {
    if !requires_registry(Variant::Token) {
        return;
    }
    use crate::token_service::{IDENTITY_TOKEN, READER};
    let reg = Registry::start(Variant::Token);
    let service = reg.token.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let wasm = hello(dir.path());
    let r = format!("{}/bearer/hello:1", reg.host);
    let filters = filters(
        dir.path(),
        &[(&reg.host, "[REGISTRY]"), (&service.realm, "[TOKEN_REALM]")],
    );
    // Whatever kiln prints, no secret is in it: a property of every output,
    // checked on each rather than on the ones snapshotted.
    let no_secret = |out: &std::process::Output| {
        for secret in [PASSWORD, IDENTITY_TOKEN] {
            assert!(
                !stdout(out).contains(secret) && !stderr(out).contains(secret),
                "a secret was printed"
            );
        }
    };

    // Anonymous: the service hands out a token without push access, and
    // the registry refuses the push.
    let out = run(kiln_in(home).arg("push").arg(&wasm).arg(&r));
    assert_error(&out, "token-push-anonymous", &filters);

    // User and password: the token flow (GET on the realm with basic
    // credentials), for login, push, tags and pull.
    let mut login = kiln_in(home);
    login.args(["login", &reg.host, "-u", USER, "--password-stdin"]);
    let out = run_with_stdin(&mut login, "wrong-password\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run_with_stdin(&mut login, &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(kiln_in(home).arg("push").arg(&wasm).arg(&r));
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret(&out);
    assert_eq!(stdout(&run_ok(kiln_in(home).arg("tags").arg(&r))), "1\n");
    assert!(
        service
            .requests()
            .iter()
            .any(|l| l == &format!("GET {USER} repository:bearer/hello:pull,push")),
        "{:?}",
        service.requests()
    );

    // A user the service grants only pull: pulls, cannot push.
    let mut login = kiln_in(home);
    login.args(["login", &reg.host, "-u", READER, "--password-stdin"]);
    run_with_stdin(&mut login, &format!("{PASSWORD}\n"));
    let pulled = dir.path().join("reader.wasm");
    run_ok(kiln_in(home).args(["pull", &r, "-o"]).arg(&pulled));
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
    let out = run(kiln_in(home)
        .arg("push")
        .arg(&wasm)
        .arg(format!("{}/bearer/hello:2", reg.host)));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // An identity token in config.json, as `docker login` leaves it for
    // registries with OAuth2 logins: exchanged (POST, grant_type
    // refresh_token) for an access token, never sent to the registry.
    let docker = home.join(".docker/config.json");
    std::fs::write(
        &docker,
        serde_json::json!({"auths": {reg.host.clone(): {"auth": "", "identitytoken": IDENTITY_TOKEN}}})
            .to_string(),
    )
    .unwrap();
    let r2 = format!("{}/bearer/hello:2", reg.host);
    let out = run(kiln_in(home).arg("push").arg(&wasm).arg(&r2));
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret(&out);
    let pulled = dir.path().join("identity.wasm");
    let out = run(kiln_in(home).args(["pull", &r2, "-o"]).arg(&pulled));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
    let out = run_ok(kiln_in(home).arg("tags").arg(&r2));
    assert_eq!(stdout(&out), "1\n2\n");
    let requests = service.requests();
    assert!(
        requests
            .iter()
            .any(|l| l == "POST identity repository:bearer/hello:pull,push"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l == "POST identity repository:bearer/hello:pull"),
        "{requests:?}"
    );
    // Reading the manifest and config goes through the same exchange.
    let out = run(kiln_in(home).args(["inspect", &r2, "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));

    // A revoked identity token: the service's refusal, with what to do.
    std::fs::write(
        &docker,
        serde_json::json!({"auths": {reg.host.clone(): {"identitytoken": "revoked-token"}}})
            .to_string(),
    )
    .unwrap();
    let out = run(kiln_in(home)
        .args(["pull", &r2, "-o"])
        .arg(dir.path().join("no.wasm")));
    assert_error(&out, "identity-token-revoked", &filters);
    // Not even the token the service refused is printed.
    assert!(!stderr(&out).contains("revoked-token"), "{}", stderr(&out));
    assert!(!dir.path().join("no.wasm").exists());
}

fn run_with_stdin(cmd: &mut std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn tls_with_a_private_ca_or_insecure() {
    if !requires_registry(Variant::Tls) {
        return;
    }
    let reg = Registry::start(Variant::Tls);
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let r = format!("{}/tls/hello:1", reg.host);
    // The self-signed certificate is not trusted by default.
    let out = run(kiln_in(dir.path())
        .arg("push")
        .arg(&wasm)
        .arg(&r)
        .arg("--ca-file")
        .arg("/dev/null"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(kiln_in(dir.path())
        .arg("push")
        .arg(&wasm)
        .arg(&r)
        .arg("--retries")
        .arg("1")
        .arg("--insecure"));
    assert!(out.status.success(), "{}", stderr(&out));
    let pulled = dir.path().join("tls.wasm");
    let out = run(kiln_in(dir.path())
        .arg("pull")
        .arg(&r)
        .arg("--ca-file")
        .arg(reg.ca_file())
        .arg("-o")
        .arg(&pulled));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
}

#[test]
fn retries_survive_a_registry_restart_and_give_up_clearly() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let mut reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let r = format!("{}/retry/hello:1", reg.host);
    // Down for good: a clear error after the retries, and no tag.
    reg.stop();
    let out = run(kiln_in(dir.path())
        .arg("push")
        .arg(&wasm)
        .arg(&r)
        .args(["--retries", "2"]));
    assert_error(
        &out,
        "registry-down",
        &filters(dir.path(), &[(&reg.host, "[REGISTRY]")]),
    );
    // Down when the push starts, back a moment later: the push succeeds.
    let child = kiln_in(dir.path())
        .arg("push")
        .arg(&wasm)
        .arg(&r)
        .args(["--retries", "6", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    reg.resume();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = json(&out);
    let pulled = dir.path().join("after-restart.wasm");
    run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(format!(
                "{}/retry/hello@{}",
                reg.host,
                pushed["digest"].as_str().unwrap()
            ))
            .arg("-o")
            .arg(&pulled),
    );
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
}

#[test]
fn tampered_content_and_non_wasm_artifacts_are_refused_and_nothing_is_written() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let r = format!("{}/tamper/hello:1", reg.host);
    let pushed = json(&run_ok(
        kiln_in(dir.path())
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--json"),
    ));
    let manifest: serde_json::Value = {
        let layout = dir.path().join("l");
        run_ok(
            kiln_in(dir.path())
                .arg("push")
                .arg(&wasm)
                .arg(format!("oci:{}:1", layout.display())),
        );
        let d = pushed["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(d)).unwrap())
            .unwrap()
    };
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    // Flip a byte of the layer in the registry's storage.
    let blob = reg.blob_file(layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let filters = filters(dir.path(), &[(&reg.host, "[REGISTRY]")]);
    // Each pull of tampered content: exit 2, and nothing written; returns
    // the run.
    let refused = |reference: &str, name: &str| {
        let out = run(kiln_in(dir.path())
            .arg("pull")
            .arg(reference)
            .arg("-o")
            .arg(out_dir.join(name)));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            files_under(&out_dir).is_empty(),
            "{:?}",
            files_under(&out_dir)
        );
        out
    };
    assert_error(&refused(&r, "x.wasm"), "pull-tampered-layer", &filters);
    // A blob of the wrong size: the layer cut short in the registry.
    let mut original = bytes.clone();
    original[100] ^= 0xff;
    std::fs::write(&blob, &original[..original.len() - 100]).unwrap();
    // Which check meets the short layer first depends on how the registry
    // serves a blob whose size no longer matches what it recorded, so
    // either error is right: not a snapshot.
    let err = stderr(&refused(&r, "short.wasm"));
    assert!(
        err.contains("but its descriptor says") || err.contains("does not match its digest"),
        "{err}"
    );
    // The same in a local layout.
    let layout = dir.path().join("l");
    let lblob = layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let in_layout = format!("oci:{}:1", layout.display());
    std::fs::write(&lblob, &bytes).unwrap();
    assert_error(
        &refused(&in_layout, "y.wasm"),
        "pull-tampered-layer-in-a-layout",
        &filters,
    );
    // And cut short in the layout.
    std::fs::write(&lblob, &original[..original.len() - 100]).unwrap();
    assert_error(
        &refused(&in_layout, "short2.wasm"),
        "pull-short-layer-in-a-layout",
        &filters,
    );
    // A manifest fetched by digest that is not that digest.
    let wrong = format!("sha256:{}", "0".repeat(64));
    assert_error(
        &refused(&format!("{}/tamper/hello@{wrong}", reg.host), "z.wasm"),
        "pull-by-a-wrong-digest",
        &filters,
    );

    // A container image (not a Wasm artifact) in a layout.
    let img = dir.path().join("image");
    std::fs::create_dir_all(img.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| {
        let d = kiln_core::Digest::of(bytes);
        std::fs::write(img.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        (d.to_string(), bytes.len())
    };
    let (cd, cs) = put(br#"{"architecture":"amd64","os":"linux"}"#);
    let (ld, ls) = put(b"not a tarball");
    let m = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":cs},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":ld,"size":ls}]});
    let mb = serde_json::to_vec(&m).unwrap();
    let (md, ms) = put(&mb);
    std::fs::write(img.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        img.join("index.json"),
        serde_json::json!({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":md,"size":ms,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}).to_string(),
    )
    .unwrap();
    assert_error(
        &refused(&format!("oci:{}", img.display()), "img.wasm"),
        "pull-of-a-container-image",
        &filters,
    );
}

#[test]
fn bad_references_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let filters = filters(dir.path(), &[]);
    for (r, name) in [
        ("acme/hello:1", "reference-without-a-registry"),
        (
            "ghcr.io/Acme/hello",
            "reference-with-an-uppercase-repository",
        ),
        ("ghcr.io/acme/hello:bad!tag", "reference-with-a-bad-tag"),
        (
            "ghcr.io/acme/hello@sha256:1234",
            "reference-with-a-short-digest",
        ),
    ] {
        let out = run(kiln_in(dir.path()).arg("push").arg(&wasm).arg(r));
        assert_error(&out, name, &filters);
    }
    let out = run(kiln_in(dir.path())
        .arg("pull")
        .arg(format!("oci:{}", dir.path().join("none").display())));
    assert_error(&out, "pull-of-no-layout", &filters);
}

#[test]
fn inspect_and_audit_references_read_the_config_and_deep_checks_the_layer() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let r = format!("{}/audit/hello:1", reg.host);
    run_ok(kiln_in(dir.path()).arg("push").arg(&wasm).arg(&r));
    let shown = json(&run_ok(kiln_in(dir.path()).args(["inspect", "--json", &r])));
    assert_eq!(shown["kind"], "oci");
    assert_eq!(shown["config"]["os"], "wasip2");
    let imports = stdout(&run_ok(kiln_in(dir.path()).args([
        "inspect",
        "--imports",
        &r,
    ])));
    let local = stdout(&run_ok(
        kiln_in(dir.path())
            .arg("inspect")
            .arg("--imports")
            .arg(&wasm),
    ));
    assert_eq!(imports, local);

    let no_stdout = dir.path().join("no-stdout.toml");
    std::fs::write(
        &no_stdout,
        "[imports]\ndefault = \"allow\"\ndeny = [\"wasi:cli/stdout\"]\n",
    )
    .unwrap();
    let policy = no_stdout.to_str().unwrap();
    let filters = filters(dir.path(), &[(&reg.host, "[REGISTRY]")]);
    let out = run(kiln_in(dir.path()).args(["audit", "--policy", policy, &r]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_snapshot(
        snapshot("oci/audit-of-a-reference.txt"),
        &transcript(&out),
        &filters,
    );
    let out =
        run(kiln_in(dir.path()).args(["audit", "--policy", "builtin:wasi-cli-pure", "--deep", &r]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // An artifact whose config lies about its imports: the config alone
    // passes, --deep refuses it.
    let layout = dir.path().join("lying");
    let bytes = std::fs::read(&wasm).unwrap();
    let package = kiln_oci::wasm_package(
        kiln_oci::artifact::Blob::bytes(kiln_oci::artifact::WASM_LAYER_MEDIA_TYPE, bytes),
        Some(kiln_oci::ComponentInfo {
            imports: vec!["wasi:cli/environment@0.2.6".into()],
            exports: vec!["wasi:cli/run@0.2.0".into()],
            target: None,
        }),
        &kiln_core::PackageMetadata::default(),
        "1970-01-01T00:00:00Z",
    )
    .unwrap();
    let lr = kiln_oci::Reference::parse(&format!("oci:{}:1", layout.display())).unwrap();
    let store =
        kiln_oci::Store::open(&lr, &Default::default(), true, &kiln_core::SilentReporter).unwrap();
    store
        .push(&lr, &package, &[], &kiln_core::SilentReporter)
        .unwrap();
    let lref = lr.to_string();
    let out = run(kiln_in(dir.path()).args(["audit", "--policy", policy, &lref]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = run(kiln_in(dir.path()).args(["audit", "--policy", policy, "--deep", &lref]));
    assert_error(&out, "audit-deep-of-a-lying-config", &filters);
}

#[test]
fn kiln_pulls_what_oras_pushed_in_the_cncf_layout() {
    if !requires(&["oras"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let bytes = std::fs::read(&wasm).unwrap();
    let imports = stdout(&run_ok(kiln().arg("inspect").arg("--imports").arg(&wasm)));
    let config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [kiln_core::Digest::of(&bytes).to_string()],
        "component": {"imports": imports.lines().collect::<Vec<_>>(), "exports": ["wasi:cli/run@0.2.0"]},
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let target = format!("{}/oras/hello:v1", reg.host);
    let script = format!(
        "import oras.client\n\
         c = oras.client.OrasClient(hostname='{host}', insecure=True)\n\
         c.push(target='{target}', files=['hello.wasm:application/wasm'], \
         manifest_config='config.json:application/vnd.wasm.config.v0+json', disable_path_validation=True)\n",
        host = reg.host
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "oras (pip install oras; `cargo xtask setup` does it) failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let pulled = dir.path().join("from-oras.wasm");
    run_ok(
        kiln_in(dir.path())
            .arg("pull")
            .arg(&target)
            .arg("-o")
            .arg(&pulled),
    );
    assert_eq!(std::fs::read(&pulled).unwrap(), bytes);
    let shown = json(&run_ok(
        kiln_in(dir.path()).args(["inspect", "--json", &target]),
    ));
    assert_eq!(shown["config"]["created"], "2024-01-01T00:00:00Z");
}

#[test]
fn an_artifact_over_128_mib_is_uploaded_in_chunks_and_pulled_back_whole() {
    if !requires(&["skopeo"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    // A core module whose one custom section holds 130 MiB: over the size
    // above which kiln uploads in chunks.
    let payload = 130usize << 20;
    let mut module = wasm_encoder::Module::new();
    module.section(&wasm_encoder::CustomSection {
        name: "big".into(),
        data: vec![0x5a; payload].into(),
    });
    let bytes = module.finish();
    let wasm = dir.path().join("big.wasm");
    std::fs::write(&wasm, &bytes).unwrap();
    let r = format!("{}/big/module:1", reg.host);
    let pushed = json(&run_ok(
        kiln_in(dir.path())
            .args(["push", "--no-aot", "--json"])
            .arg(&wasm)
            .arg(&r),
    ));
    assert!(pushed["uploaded_bytes"].as_u64().unwrap() > payload as u64);
    let back = dir.path().join("back.wasm");
    run_ok(kiln_in(dir.path()).args(["pull", &r, "-o"]).arg(&back));
    let pulled = std::fs::read(&back).unwrap();
    assert_eq!(pulled.len(), bytes.len());
    assert!(
        pulled == bytes,
        "the pulled module differs from the pushed one"
    );
    // skopeo reads the same manifest.
    let raw = skopeo()
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{r}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let m: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(m["layers"][0]["size"].as_u64().unwrap(), bytes.len() as u64);
}
