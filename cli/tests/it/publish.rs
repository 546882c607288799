//! `kiln publish` end to end: real builds, a loopback registry, signatures and receipts checked.
//!
//! `kiln publish` end to end: real builds, a real loopback registry, signatures
//! checked by openssl, pulled artifacts run in Wasmtime, the receipt checked
//! against its schema, no-op and reproducible republishes, and audit failures
//! that push nothing.

use crate::common::*;
use crate::registry_harness::{Registry, Variant, files_under};
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "publish-test-password";

/// kiln in `dir` with the key's password, building into `target`.
fn k(dir: &Path, target: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", PASSWORD)
        .env("CARGO_TARGET_DIR", target)
        .env("CI", "1");
    c
}

/// The JSON events of `publish --json`, checked to be one object per line.
fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
        })
        .collect()
}

fn receipt_of(out: &std::process::Output) -> serde_json::Value {
    let events = events(out);
    let last = events.last().expect("at least one event");
    assert_eq!(last["type"], "receipt", "the receipt comes last");
    last["receipt"].clone()
}

fn check_schema(receipt: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/receipt.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(receipt)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "receipt does not follow its schema: {errors:#?}"
    );
}

/// The receipt without what varies between runs.
fn stable(receipt: &serde_json::Value) -> serde_json::Value {
    let mut r = receipt.clone();
    r.as_object_mut().unwrap().remove("run");
    r
}

#[test]
#[allow(unsafe_code)]
fn rust_project_publishes_to_a_registry_signed_with_sbom_and_precompiled_artifacts() {
    if !requires(&["openssl"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let project = dir.join("hello");
    copy_dir(&fixture("rust-command"), &project);
    run_ok(k(dir, &dir.join("t1")).args(["keygen", "--output-prefix", "cosign"]));
    let host = kiln_core::Target::host().as_str();
    let repo = format!("{}/apps/hello", reg.host);
    // Settings in Cargo.toml: destination, targets, key and policy.
    let mut cargo_toml = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    cargo_toml = cargo_toml.replace(
        "# A project of its own",
        &format!(
            "[package.metadata.kiln]\npublish.to = \"{repo}\"\ncompile.targets = [\"{host}\", \"pulley64\"]\nsign.key = \"../cosign.key\"\naudit.extends = \"builtin:wasi-cli-pure\"\n\n# A project of its own"
        ),
    );
    std::fs::write(project.join("Cargo.toml"), cargo_toml).unwrap();

    let first = run_ok(
        k(dir, &dir.join("t1"))
            .arg("publish")
            .arg(&project)
            .arg("--json"),
    );
    let events = events(&first);
    for stage in [
        "build", "audit", "sbom", "compile", "push", "sign", "attach",
    ] {
        for kind in ["stage-started", "stage-finished"] {
            assert!(
                events
                    .iter()
                    .any(|e| e["type"] == kind && e["stage"] == stage),
                "no {kind} event for {stage}"
            );
        }
    }
    let receipt = receipt_of(&first);
    check_schema(&receipt);
    // The receipt file is the one printed.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("t1/kiln/receipt.json")).unwrap()).unwrap();
    assert_eq!(file, receipt);
    assert_eq!(receipt["project"]["language"], "rust");
    assert_eq!(receipt["audit"]["passed"], true);
    assert!(
        receipt["audit"]["policy"]
            .as_str()
            .unwrap()
            .contains("wasi-cli-pure")
    );
    let digest = receipt["pushed"]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        receipt["pushed"]["reference"],
        format!("{repo}:0.3.1@{digest}")
    );
    let referrers = receipt["pushed"]["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 3, "SBOM and two precompiled artifacts");
    assert_eq!(receipt["signatures"].as_array().unwrap().len(), 4);
    assert_eq!(receipt["run"]["signed"], 4);
    assert!(receipt["run"]["uploaded_bytes"].as_u64().unwrap() > 0);

    // Independent checks: openssl verifies the component's signature from
    // its Sigstore bundle referrer, and kiln verify agrees.
    let signature = &receipt["signatures"][0];
    assert_eq!(signature["format"], "bundle");
    assert_eq!(signature["subject"], digest.as_str());
    let referrer = signature["signature_manifest"].as_str().unwrap();
    assert_eq!(signature["reference"], format!("{repo}@{referrer}"));
    crate::bundles::openssl_verifies_bundle(
        dir,
        &reg.host,
        "apps/hello",
        referrer,
        &digest,
        &dir.join("cosign.pub"),
    );
    let tagged = format!("{repo}:0.3.1");
    run_ok(k(dir, &dir.join("t1")).args(["verify", &tagged, "--key", "cosign.pub"]));

    // The SBOM is attached and describes this component.
    let sbom = run_ok(k(dir, &dir.join("t1")).args(["inspect", &tagged, "--sbom"]));
    let bom: serde_json::Value = serde_json::from_slice(&sbom.stdout).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    assert_eq!(
        format!(
            "sha256:{}",
            bom["metadata"]["component"]["hashes"][0]["content"]
                .as_str()
                .unwrap()
        ),
        receipt["component"]["digest"].as_str().unwrap()
    );

    // Pull the component and the host's precompiled artifact; both run.
    let pulled = dir.join("pulled.wasm");
    run_ok(
        k(dir, &dir.join("t1"))
            .args(["pull", &tagged, "--verify-key", "cosign.pub", "-o"])
            .arg(&pulled),
    );
    let expected = run_command(&pulled, &["publish"], &[]).unwrap();
    assert!(expected.contains("publish"), "{expected}");
    let cwasm = dir.join("pulled.cwasm");
    run_ok(
        k(dir, &dir.join("t1"))
            .args(["pull", &tagged, "--target", "host", "-o"])
            .arg(&cwasm),
    );
    let engine = host_engine();
    // SAFETY: made by this test's kiln with the same Wasmtime release and
    // configuration, for this host, moments ago.
    let component =
        unsafe { wasmtime::component::Component::deserialize_file(&engine, &cwasm) }.unwrap();
    assert_eq!(
        run_component(&engine, &component, &["publish"], &[]).unwrap(),
        expected
    );

    // Nothing changed: nothing uploaded, nothing compiled or signed again,
    // and the same receipt apart from `run`.
    let again = run_ok(
        k(dir, &dir.join("t1"))
            .arg("publish")
            .arg(&project)
            .arg("--json"),
    );
    let second = receipt_of(&again);
    assert_eq!(stable(&second), stable(&receipt));
    assert_eq!(second["run"]["uploaded_bytes"], 0);
    assert_eq!(second["run"]["signed"], 0);
    assert_eq!(second["run"]["already_signed"], 4);
    assert_eq!(second["run"]["compiled"], 0);

    // A clean build elsewhere gives the same component, manifest and SBOM.
    let layout = dir.join("layout");
    let clean = run_ok(
        k(dir, &dir.join("t2"))
            .arg("publish")
            .arg(&project)
            .arg("--to")
            .arg(format!("oci:{}:1", layout.display()))
            .args(["--no-sign", "--target", "none", "--json"]),
    );
    let third = receipt_of(&clean);
    for key in ["component", "sbom"] {
        assert_eq!(third[key]["digest"], receipt[key]["digest"], "{key}");
    }
    assert_eq!(third["pushed"]["digest"], receipt["pushed"]["digest"]);
    assert!(third["signatures"].as_array().unwrap().is_empty());
}

/// Publishes a C or Go fixture copy into its default local layout.
fn publish_fixture(name: &str, dir: &Path) -> serde_json::Value {
    let project = dir.join(name);
    if !project.exists() {
        copy_dir(&fixture(name), &project);
    }
    let out = run_ok(
        k(dir, &dir.join("unused"))
            .arg("publish")
            .arg(&project)
            .args(["--target", "none", "--json"]),
    );
    let receipt = receipt_of(&out);
    check_schema(&receipt);
    receipt
}

#[test]
fn c_and_go_projects_publish_reproducibly_to_the_local_layout() {
    if !requires(&["clang", "go"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, language) in [("c-command", "c"), ("go-command", "go")] {
        let first = publish_fixture(name, dir);
        assert_eq!(first["project"]["language"], language);
        assert_eq!(first["adapter"]["kind"], "command");
        // The default destination: the layout under the project's target.
        let reference = first["pushed"]["reference"].as_str().unwrap();
        let layout = dir.join(name).join("target/kiln/oci");
        assert!(
            reference.starts_with(&format!("oci:{}", layout.display())),
            "{reference}"
        );
        // A fresh target directory gives the same digests.
        std::fs::remove_dir_all(dir.join(name).join("target")).unwrap();
        let second = publish_fixture(name, dir);
        for key in ["component", "sbom"] {
            assert_eq!(second[key]["digest"], first[key]["digest"], "{name} {key}");
        }
        assert_eq!(
            second["pushed"]["digest"], first["pushed"]["digest"],
            "{name}"
        );

        // The SBOM from the layout names the toolchain and the sources.
        let sbom = run_ok(k(dir, &dir.join("unused")).args(["inspect", reference, "--sbom"]));
        let bom: serde_json::Value = serde_json::from_slice(&sbom.stdout).unwrap();
        let names: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        match language {
            "c" => {
                assert!(names.contains(&"clang"), "{names:?}");
                assert!(names.contains(&"src/main.c"), "{names:?}");
            }
            _ => assert!(names.contains(&"std"), "{names:?}"),
        }
        // The pulled component runs.
        let pulled = dir.join(format!("{name}.wasm"));
        run_ok(
            k(dir, &dir.join("unused"))
                .args(["pull", reference, "-o"])
                .arg(&pulled),
        );
        if language == "go" {
            assert!(!run_command(&pulled, &["kiln"], &[]).unwrap().is_empty());
        }
    }
}

#[test]
fn an_audit_violation_or_a_bad_key_pushes_nothing() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let project = dir.join("hello");
    copy_dir(&fixture("rust-command"), &project);
    std::fs::write(
        project.join("kiln.toml"),
        "[audit.imports]\ndefault = \"allow\"\ndeny = [\"wasi:cli/environment\"]\n",
    )
    .unwrap();
    let to = format!("{}/apps/denied:1", reg.host);
    let out = run(k(dir, &dir.join("t"))
        .arg("publish")
        .arg(&project)
        .args(["--to", &to, "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        events(&out)
            .iter()
            .any(|e| e["type"] == "stage-failed" && e["stage"] == "audit")
    );
    assert!(
        stderr(&out).contains("nothing was pushed"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("kiln.toml:3"), "{}", stderr(&out));
    let tags = run(k(dir, &dir.join("t")).args(["tags", &to]));
    assert_ne!(tags.status.code(), Some(0), "{}", stdout(&tags));
    assert!(!dir.join("t/kiln/oci").exists());

    // A key that cannot be loaded stops the run before anything is built.
    std::fs::remove_file(project.join("kiln.toml")).unwrap();
    let fresh = dir.join("fresh");
    let out = run(k(dir, &fresh).arg("publish").arg(&project).args([
        "--to",
        &to,
        "--key",
        "missing.key",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.key"), "{}", stderr(&out));
    assert!(files_under(&fresh).is_empty() || !fresh.join("kiln").exists());

    // --dry-run builds, audits, compiles and makes the SBOM, and pushes
    // and signs nothing.
    run_ok(k(dir, &dir.join("t")).args(["keygen", "--output-prefix", "cosign"]));
    let out = run_ok(k(dir, &dir.join("t")).arg("publish").arg(&project).args([
        "--to",
        &to,
        "--key",
        "cosign.key",
        "--dry-run",
        "--json",
    ]));
    let receipt = receipt_of(&out);
    assert_eq!(receipt["dry_run"], true);
    assert!(receipt["pushed"].is_null());
    assert!(receipt["signatures"].as_array().unwrap().is_empty());
    assert_eq!(receipt["precompiled"].as_array().unwrap().len(), 1);
    assert!(dir.join("t/kiln/hello-command.cdx.json").is_file());
    let tags = run(k(dir, &dir.join("t")).args(["tags", &to]));
    assert_ne!(tags.status.code(), Some(0));

    // A compile error stops the run at the build stage (the precompile,
    // which waits for the build's bytes, never starts) and pushes nothing.
    let main = project.join("src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        format!("{source}\nfn broken() -> u32 {{ \"no\" }}\n"),
    )
    .unwrap();
    let out = run(k(dir, &dir.join("t"))
        .arg("publish")
        .arg(&project)
        .args(["--to", &to, "--json"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        events(&out)
            .iter()
            .any(|e| e["type"] == "stage-failed" && e["stage"] == "build"),
        "{}",
        stdout(&out)
    );
    assert!(!events(&out).iter().any(|e| e["stage"] == "compile"));
    let tags = run(k(dir, &dir.join("t")).args(["tags", &to]));
    assert_ne!(tags.status.code(), Some(0));
}

/// How a published project is run to check it.
pub(crate) enum Check {
    /// A command, run with these arguments.
    Command(&'static [&'static str]),
    /// A library: `interface#func(args)` must return `want`.
    Call {
        interface: String,
        func: &'static str,
        args: Vec<wasmtime::component::Val>,
        want: wasmtime::component::Val,
    },
    /// A wasi:http handler: GET of `path` must answer 200 with `body`.
    Http { path: &'static str, body: String },
}

/// Publishes `project` to the registry with a key and the host as the
/// precompile target, verifies its signature with kiln and with openssl,
/// pulls the component and the host's precompiled artifact, and runs both.
#[allow(unsafe_code)]
pub(crate) fn publish_verify_and_run(
    dir: &Path,
    registry: &str,
    project: &Path,
    extra: &[&str],
    check: &Check,
) {
    let name = project.file_name().unwrap().to_string_lossy().into_owned();
    if !dir.join("cosign.key").exists() {
        run_ok(k(dir, &dir.join("t")).args(["keygen", "--output-prefix", "cosign"]));
    }
    let host = kiln_core::Target::host().as_str();
    let tagged = format!("{registry}/all/{name}:1");
    let out = run_ok(
        k(dir, &fixtures_target_dir())
            .arg("publish")
            .arg(project)
            .args([
                "--to",
                &tagged,
                "--key",
                "cosign.key",
                "--target",
                host,
                "--json",
            ])
            .args(extra)
            .arg("--receipt")
            .arg(dir.join(format!("{name}.receipt.json"))),
    );
    let receipt = receipt_of(&out);
    check_schema(&receipt);
    assert!(
        receipt["audit"]["passed"].as_bool().unwrap_or(true),
        "{name}"
    );
    assert_eq!(receipt["signatures"].as_array().unwrap().len(), 3, "{name}");
    let digest = receipt["pushed"]["digest"].as_str().unwrap();
    run_ok(
        kiln()
            .current_dir(dir)
            .args(["verify", &tagged, "--key", "cosign.pub"]),
    );
    // Independently: openssl checks the signature where the receipt says it
    // is, in the format it names.
    let signature = &receipt["signatures"][0];
    assert_eq!(signature["subject"], digest);
    match signature["format"].as_str().unwrap() {
        "legacy" => {
            let sig_ref = format!("{registry}/all/{name}:{}.sig", digest.replace(':', "-"));
            assert_eq!(signature["reference"], sig_ref.as_str());
            crate::sign::openssl_verifies(dir, &dir.join("cosign.pub"), &sig_ref);
        }
        _ => crate::bundles::openssl_verifies_bundle(
            dir,
            registry,
            &format!("all/{name}"),
            signature["signature_manifest"].as_str().unwrap(),
            digest,
            &dir.join("cosign.pub"),
        ),
    }

    let wasm = dir.join(format!("{name}.pulled.wasm"));
    let cwasm = dir.join(format!("{name}.pulled.cwasm"));
    run_ok(kiln().args(["pull", &tagged, "-o"]).arg(&wasm));
    run_ok(
        kiln()
            .args(["pull", &tagged, "--target", "host", "-o"])
            .arg(&cwasm),
    );
    let engine = host_engine();
    let plain = wasmtime::component::Component::from_file(&engine, &wasm).unwrap();
    // SAFETY: compiled moments ago by this test's kiln, with the same
    // Wasmtime release and configuration, for this host.
    let precompiled =
        unsafe { wasmtime::component::Component::deserialize_file(&engine, &cwasm) }.unwrap();
    for component in [&plain, &precompiled] {
        match check {
            Check::Command(args) => {
                let got = run_component(&engine, component, args, &[]).unwrap();
                assert!(!got.is_empty(), "{name} printed nothing");
                assert_eq!(got, run_command(&wasm, args, &[]).unwrap(), "{name}");
            }
            Check::Call {
                interface,
                func,
                args,
                want,
            } => {
                let mut lib = Library::from_loaded(&engine, component).unwrap();
                assert_eq!(&lib.call(interface, func, args).unwrap(), want, "{name}");
            }
            Check::Http { path, body } => {
                let (status, got) = crate::new::serve_one_loaded(&engine, component, path);
                assert_eq!((status, &got), (200, body), "{name}");
            }
        }
    }
}

#[test]
fn every_fixture_publishes_verifies_and_runs_from_the_registry() {
    if !requires(&["clang", "go", "make", "cmake", "openssl"]) || !requires_registry(Variant::Plain)
    {
        return;
    }
    use wasmtime::component::Val;
    let reg = Registry::start(Variant::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = |t: &str| Val::String(t.into());
    let fixtures: Vec<(&str, &[&str], Check)> = vec![
        ("rust-command", &[], Check::Command(&["kiln"])),
        (
            "rust-workspace",
            &["-p", "greeter"],
            Check::Command(&["p1"]),
        ),
        (
            "rust-library",
            &[],
            Check::Call {
                interface: "kiln-fixtures:text/tools@0.1.0".into(),
                func: "shout",
                args: vec![s("quiet")],
                want: s("QUIET"),
            },
        ),
        ("c-command", &[], Check::Command(&["kiln"])),
        (
            "c-make",
            &["--sign-format", "legacy"],
            Check::Command(&["1", "2", "39"]),
        ),
        ("c-cmake", &[], Check::Command(&["one two", "three"])),
        (
            "c-library",
            &[],
            Check::Call {
                interface: "kiln-fixtures:strings/text@0.1.0".into(),
                func: "reverse",
                args: vec![s("kiln")],
                want: s("nlik"),
            },
        ),
        ("go-command", &[], Check::Command(&["Grace"])),
        (
            "go-reactor",
            &["--sign-format", "legacy"],
            Check::Call {
                interface: "kiln-fixtures:calc/math@0.1.0".into(),
                func: "add",
                args: vec![Val::S32(40), Val::S32(2)],
                want: Val::S32(42),
            },
        ),
    ];
    for (name, extra, check) in &fixtures {
        let project = dir.join(name);
        copy_dir(&fixture(name), &project);
        publish_verify_and_run(dir, &reg.host, &project, extra, check);
    }
}
