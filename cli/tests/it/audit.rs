//! `kiln audit` on hand-written components and modules with known imports.
//!
//! `kiln audit` on hand-written components and modules with known imports:
//! every rule kind passes and fails where it should, JSON is deserialized,
//! SARIF is validated against its schema.

use crate::common::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct Results {
    passed: bool,
    policy: String,
    reports: Vec<Report>,
}

#[derive(Debug, Deserialize)]
struct Report {
    name: String,
    passed: bool,
    findings: Vec<Finding>,
    facts: Facts,
}

#[derive(Debug, Deserialize)]
struct Finding {
    rule: String,
    item: Option<String>,
    pattern: Option<String>,
    origin: String,
}

#[derive(Debug, Deserialize)]
struct Facts {
    imports: Vec<String>,
    exports: Vec<String>,
    core_imports: Vec<String>,
}

/// Compiles the audit fixtures into `dir` and returns their paths by name.
fn compiled(dir: &Path) -> impl Fn(&str) -> PathBuf + '_ {
    for entry in std::fs::read_dir(fixture("audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wat") {
            let out = dir.join(path.with_extension("wasm").file_name().unwrap());
            std::fs::write(&out, wat::parse_file(&path).unwrap()).unwrap();
        }
    }
    move |name: &str| dir.join(format!("{name}.wasm"))
}

fn policy(name: &str) -> PathBuf {
    fixture("audit/policies").join(format!("{name}.toml"))
}

fn audit_json(inputs: &[PathBuf], policy: &str) -> (Option<i32>, Results) {
    let out = run(kiln()
        .arg("audit")
        .args(inputs)
        .args(["--policy", policy, "--json"]));
    let results: Results = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), results)
}

/// Filters for audit outputs: the compiled fixtures' directory and the
/// workspace (policies are named by their path).
fn filters(dir: &Path) -> Filters {
    Filters::new().path(dir, "TMP").path(&root(), "ROOT")
}

fn rules(report: &Report) -> Vec<(&str, Option<&str>)> {
    report
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.item.as_deref()))
        .collect()
}

#[test]
fn deny_patterns_versions_and_forbidden_exports() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let p = policy("no-network");
    let (code, r) = audit_json(&[wasm("cli-tool"), wasm("net-tool")], p.to_str().unwrap());
    assert_eq!(code, Some(1));
    assert!(!r.passed);
    assert!(r.policy.ends_with("no-network.toml"), "{}", r.policy);
    assert!(r.reports[0].passed, "{:?}", r.reports[0]);
    assert_eq!(
        rules(&r.reports[1]),
        [
            ("imports.denied", Some("wasi:sockets/tcp@0.2.0")),
            ("imports.denied", Some("wasi:http/outgoing-handler@0.2.9")),
            ("exports.forbidden", Some("acme:debug/shell@1.0.0")),
        ]
    );
    let f = &r.reports[1].findings[1];
    assert_eq!(
        f.pattern.as_deref(),
        Some("wasi:http/outgoing-handler@>=0.2.0, <0.3.0")
    );
    assert!(f.origin.ends_with("no-network.toml:6"), "{}", f.origin);

    // Only the clean component: exit 0.
    let (code, r) = audit_json(&[wasm("cli-tool")], p.to_str().unwrap());
    assert_eq!(code, Some(0));
    assert!(r.passed);
}

#[test]
fn default_deny_extends_builtins_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let (code, r) = audit_json(
        &[wasm("cli-tool"), wasm("net-tool")],
        policy("strict-cli").to_str().unwrap(),
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        rules(&r.reports[0]),
        [
            ("imports.denied", Some("wasi:filesystem/types@0.2.3")),
            ("limits.imports", None),
        ]
    );
    let net = &r.reports[1];
    // Deny rules inherited from the built-in name it as their origin.
    let sockets = &net.findings[0];
    assert_eq!(sockets.origin, "builtin:wasi-cli-pure:5");
    assert!(
        rules(net).contains(&("imports.not-allowed", Some("acme:telemetry/report"))),
        "{net:?}"
    );
}

#[test]
fn size_limit_and_required_exports() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let tight = dir.path().join("tight.toml");
    std::fs::write(
        &tight,
        "[limits]\nmax-size = 16\n[exports]\nrequire = [\"wasi:cli/run@0.2\"]\n",
    )
    .unwrap();
    let (_, r) = audit_json(
        &[wasm("cli-tool"), wasm("http-rc")],
        tight.to_str().unwrap(),
    );
    assert_eq!(rules(&r.reports[0]), [("limits.size", None)]);
    assert_eq!(
        rules(&r.reports[1]),
        [("exports.missing", None), ("limits.size", None)]
    );
}

#[test]
fn target_world_imports_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let (code, r) = audit_json(
        &[wasm("cli-tool"), wasm("http-rc")],
        policy("fits-world").to_str().unwrap(),
    );
    assert_eq!(code, Some(1));
    // The world provides 0.2.6 of what the component imports at 0.2.3:
    // only the filesystem import is outside it.
    assert_eq!(
        rules(&r.reports[0]),
        [("world.import-outside", Some("wasi:filesystem/types@0.2.3"))]
    );
    assert!(
        rules(&r.reports[1]).contains(&("world.export-missing", Some("wasi:cli/run@0.2.0"))),
        "{:?}",
        r.reports[1]
    );
}

#[test]
fn core_rules_features_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let (code, r) = audit_json(
        &[wasm("core-threads")],
        policy("core-rules").to_str().unwrap(),
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        rules(&r.reports[0]),
        [
            ("core.not-allowed", Some("env::host_log")),
            ("limits.feature", Some("threads")),
            ("limits.feature", Some("memory64")),
            ("limits.feature", Some("multi-memory")),
            ("limits.memory", None),
            ("limits.memory", None),
        ]
    );
    assert_eq!(
        r.reports[0].facts.core_imports,
        ["wasi_snapshot_preview1::fd_write", "env::host_log"]
    );
}

#[test]
fn prerelease_versions_match_only_requirements_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let (_, r) = audit_json(&[wasm("http-rc")], policy("prerelease").to_str().unwrap());
    // The imports pass (the allow pattern names the release candidate);
    // `wasi:http/handler@0.3` does not match `0.3.0-rc-…`.
    assert_eq!(rules(&r.reports[0]), [("exports.missing", None)]);
    assert_eq!(
        r.reports[0].facts.imports,
        ["wasi:http/types@0.3.0-rc-2025-08-15", "wasi:io/poll@0.2.1"]
    );
    assert_eq!(
        r.reports[0].facts.exports,
        ["wasi:http/handler@0.3.0-rc-2025-08-15"]
    );
    assert!(r.reports[0].name.ends_with("http-rc.wasm"));
}

#[test]
fn directories_audit_every_wasm_file() {
    let dir = tempfile::tempdir().unwrap();
    let _ = compiled(dir.path());
    let (_, r) = audit_json(&[dir.path().to_path_buf()], "builtin:wasi-cli-pure");
    let names: Vec<_> = r
        .reports
        .iter()
        .map(|r| {
            Path::new(&r.name)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "cli-tool.wasm",
            "core-threads.wasm",
            "http-rc.wasm",
            "net-tool.wasm"
        ]
    );
}

#[test]
fn sarif_output_follows_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let out = run(kiln()
        .arg("audit")
        .args([wasm("net-tool"), wasm("core-threads")])
        .arg("--policy")
        .arg(policy("core-rules"))
        .arg("--sarif"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("audit/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    // Six findings, and a note: core-rules has no `[imports]` rules, so no
    // rule examined net-tool's component imports.
    assert_eq!(results.len(), 7);
    assert_eq!(results[0]["level"], "note");
    assert_eq!(results[0]["ruleId"], "imports.unexamined");
    let results = &results[1..];
    assert_eq!(results[0]["ruleId"], "core.not-allowed");
    assert!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("core-threads.wasm")
    );
    assert_eq!(
        results[0]["relatedLocations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
}

#[test]
fn malformed_policies_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let out = run(kiln()
        .arg("audit")
        .arg(wasm("cli-tool"))
        .arg("--policy")
        .arg(policy("broken-key")));
    let filters = filters(dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_snapshot(
        snapshot("audit/errors/broken-key.stderr"),
        &stderr(&out),
        &filters,
    );
    let out = run(kiln()
        .arg("audit")
        .arg(wasm("cli-tool"))
        .arg("--policy")
        .arg(policy("broken-version")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_snapshot(
        snapshot("audit/errors/broken-version.stderr"),
        &stderr(&out),
        &filters,
    );
    let out = run(kiln()
        .arg("audit")
        .arg(wasm("cli-tool"))
        .args(["--policy", "builtin:nope"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_snapshot(
        snapshot("audit/errors/unknown-builtin.stderr"),
        &stderr(&out),
        &filters,
    );
}

#[test]
fn malformed_wasm_is_an_error_not_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let bytes = std::fs::read(wasm("net-tool")).unwrap();
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = run(kiln()
        .arg("audit")
        .arg(&cut)
        .args(["--policy", "builtin:wasi-cli-pure"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    assert_snapshot(
        snapshot("audit/errors/truncated-wasm.stderr"),
        &stderr(&out),
        &filters(dir.path()),
    );
}

#[test]
fn explain_prints_the_effective_policy_with_origins() {
    let out = run_ok(
        kiln()
            .args(["audit", "--explain", "--policy"])
            .arg(policy("strict-cli")),
    );
    assert_snapshot(
        snapshot("audit/explain-strict-cli.toml"),
        &stdout(&out),
        &Filters::new().path(&root(), "ROOT"),
    );
}

#[test]
fn policy_from_kiln_toml_audit_table() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"x\"\n\n[audit.imports]\ndefault = \"allow\"\ndeny = [\"wasi:sockets/*\"]\n",
    )
    .unwrap();
    let out = run(kiln()
        .arg("audit")
        .arg(wasm("net-tool"))
        .arg("--json")
        .current_dir(&project));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r: Results = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r.reports[0].findings[0].origin,
        format!("{}:6", project.join("kiln.toml").display())
    );
    // No kiln.toml and no --policy: a clear error.
    let out = run(kiln()
        .arg("audit")
        .arg(wasm("net-tool"))
        .current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(2));
    assert_snapshot(
        snapshot("audit/errors/no-policy.stderr"),
        &stderr(&out),
        &filters(dir.path()),
    );
}

#[test]
fn diff_reports_added_and_removed_names() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let out = run(kiln()
        .args(["audit", "--diff"])
        .arg(wasm("cli-tool"))
        .arg(wasm("net-tool")));
    assert_eq!(out.status.code(), Some(1));
    assert_snapshot(
        snapshot("audit/diff-cli-tool-net-tool.txt"),
        &stdout(&out),
        &filters(dir.path()),
    );
    let out = run(kiln()
        .args(["audit", "--diff"])
        .arg(wasm("cli-tool"))
        .arg(wasm("cli-tool")));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn inspect_imports_lists_one_name_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let out = run_ok(kiln().args(["inspect", "--imports"]).arg(wasm("cli-tool")));
    assert_eq!(
        stdout(&out),
        "wasi:cli/environment@0.2.3\nwasi:cli/stdout@0.2.3\nwasi:clocks/wall-clock@0.2.3\nwasi:filesystem/types@0.2.3\n"
    );
    let out = run_ok(
        kiln()
            .args(["inspect", "--imports"])
            .arg(wasm("core-threads")),
    );
    assert_eq!(
        stdout(&out),
        "wasi_snapshot_preview1::fd_write\nenv::host_log\n"
    );
}

#[test]
fn audit_of_a_built_component_matches_its_world() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = audit_json(&[hello(dir.path())], "builtin:wasi-cli-pure");
    assert_eq!(code, Some(0), "{r:?}");
    assert!(r.reports[0].facts.exports[0].starts_with("wasi:cli/run@0.2"));
}

#[test]
fn core_deny_patterns_and_passing_limits() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let p = dir.path().join("core-deny.toml");
    std::fs::write(
        &p,
        "[core]\ndefault = \"allow\"\ndeny = [\"env::*\"]\n[limits]\nmax-size = \"1 MiB\"\nmax-memory = \"8 GiB\"\nforbid-features = [\"exceptions\"]\n",
    )
    .unwrap();
    let (code, r) = audit_json(&[wasm("core-threads")], p.to_str().unwrap());
    assert_eq!(code, Some(1));
    // The 4 GiB shared memory is within 8 GiB; the unbounded 64-bit one is not.
    assert_eq!(
        rules(&r.reports[0]),
        [
            ("core.denied", Some("env::host_log")),
            ("limits.memory", None)
        ]
    );
    assert!(
        r.reports[0].findings[0]
            .origin
            .ends_with("core-deny.toml:3")
    );
}

/// Every audit fixture under each policy, in each output format, compared
/// with `snapshots/audit/POLICY.{txt,json,sarif}` (stdout, then stderr
/// after a `--- stderr` line when there is any).
#[test]
fn reports_of_every_fixture_under_every_policy_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = compiled(dir.path());
    let inputs = ["cli-tool", "core-threads", "http-rc", "net-tool"].map(&wasm);
    let filters = filters(dir.path());
    for (name, policy) in [
        ("no-network", policy("no-network")),
        ("strict-cli", policy("strict-cli")),
        ("fits-world", policy("fits-world")),
        ("core-rules", policy("core-rules")),
        ("prerelease", policy("prerelease")),
        ("wasi-cli-pure", PathBuf::from("builtin:wasi-cli-pure")),
        ("http-handler", PathBuf::from("builtin:http-handler")),
    ] {
        for (format, flag) in [
            ("txt", None),
            ("json", Some("--json")),
            ("sarif", Some("--sarif")),
        ] {
            let out = run(kiln()
                .arg("audit")
                .args(&inputs)
                .arg("--policy")
                .arg(&policy)
                .args(flag));
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{name} {format}: {}",
                stderr(&out)
            );
            assert_snapshot(
                snapshot(&format!("audit/{name}.{format}")),
                &transcript(&out),
                &filters,
            );
        }
    }
}
