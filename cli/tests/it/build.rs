//! `kiln build` on the Rust fixtures with real cargo, checked by running the components in Wasmtime.

use crate::common::*;
use std::path::Path;
use wasmtime::component::Val;

fn digest_of(path: &Path) -> String {
    kiln_core::Digest::of(&std::fs::read(path).expect("read built component")).to_string()
}

#[test]
fn command_builds_to_a_component_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hello.wasm");
    let summary = build(&fixture("rust-command"), &out, &[]);
    assert_eq!(summary["kind"], "component");
    assert_eq!(summary["language"], "rust");
    assert_eq!(summary["package"], "hello-command");
    assert_eq!(summary["version"], "0.3.1");
    assert_eq!(summary["adapter"], serde_json::Value::Null);
    assert_eq!(summary["digest"], digest_of(&out));
    assert_eq!(summary["size"], std::fs::metadata(&out).unwrap().len());
    let exports = summary["world"]["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 1, "{summary}");
    assert!(
        exports[0]
            .as_str()
            .unwrap()
            .starts_with("wasi:cli/run@0.2.")
    );
    let imports = summary["world"]["imports"].to_string();
    assert!(imports.contains("wasi:cli/environment@0.2."), "{imports}");

    assert_eq!(run_command(&out, &["Ada"], &[]).unwrap(), "hello, Ada!\n");
    assert_eq!(
        run_command(&out, &[], &[("GREETING_NAME", "Kiln")]).unwrap(),
        "hello, Kiln!\n"
    );
    assert_eq!(
        run_command(&out, &["--sum", "1", "2", "39"], &[]).unwrap(),
        "sum=42\n"
    );

    // The package's metadata is embedded and kiln is recorded as a producer.
    let report: serde_json::Value =
        serde_json::from_slice(&run_ok(kiln().arg("inspect").arg(&out).arg("--json")).stdout)
            .unwrap();
    let meta = &report["metadata"];
    assert_eq!(meta["name"], "hello-command");
    assert_eq!(meta["version"], "0.3.1");
    assert_eq!(meta["licenses"], "Apache-2.0 OR MIT");
    assert_eq!(meta["authors"], "Kiln Fixtures <fixtures@example.com>");
    assert_eq!(meta["source"], "https://example.com/kiln/fixtures");
    let producers = report["producers"].to_string();
    assert!(producers.contains("\"kiln\""), "{producers}");
    assert!(producers.contains("\"Rust\""), "{producers}");
    let exports = report["world"]["exports"].to_string();
    assert!(exports.contains("wasi:cli/run@0.2"), "{exports}");
}

#[test]
fn default_output_is_under_the_target_dir() {
    let out = run_ok(
        kiln()
            .args(["build", "--json"])
            .current_dir(fixture("rust-command").join("src")),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = summary["path"].as_str().unwrap();
    assert_eq!(
        Path::new(path),
        fixtures_target_dir()
            .join("kiln")
            .join("hello-command.wasm")
    );
    assert_eq!(summary["digest"], digest_of(Path::new(path)));
}

#[test]
fn wasip1_build_is_componentized_with_the_command_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hello-p1.wasm");
    let summary = build(
        &fixture("rust-command"),
        &out,
        &["--target", "wasm32-wasip1"],
    );
    assert_eq!(summary["kind"], "component");
    assert_eq!(summary["adapter"], "command");
    assert!(
        summary["toolchain_output"]
            .as_str()
            .unwrap()
            .contains("wasm32-wasip1"),
        "{summary}"
    );
    assert_eq!(run_command(&out, &["p1"], &[]).unwrap(), "hello, p1!\n");
}

fn check_text_tools(wasm: &Path) {
    let mut lib = Library::new(wasm).unwrap();
    let iface = "kiln-fixtures:text/tools@0.1.0";
    let s = |v: &str| Val::String(v.into());
    assert_eq!(
        lib.call(iface, "shout", &[s("quiet please")]).unwrap(),
        s("QUIET PLEASE")
    );
    assert_eq!(
        lib.call(iface, "words", &[s(" a  bc d ")]).unwrap(),
        Val::List(vec![s("a"), s("bc"), s("d")])
    );
    assert_eq!(
        lib.call(iface, "stats", &[s("one three\nfive")]).unwrap(),
        Val::Record(vec![
            ("words".into(), Val::U32(3)),
            ("lines".into(), Val::U32(2)),
            ("longest".into(), Val::Option(Some(Box::new(s("three"))))),
        ])
    );
    assert_eq!(
        lib.call(iface, "stats", &[s("")]).unwrap(),
        Val::Record(vec![
            ("words".into(), Val::U32(0)),
            ("lines".into(), Val::U32(0)),
            ("longest".into(), Val::Option(None)),
        ])
    );
    assert_eq!(
        lib.call(iface, "parse-number", &[s(" -42 ")]).unwrap(),
        Val::Result(Ok(Some(Box::new(Val::S64(-42)))))
    );
    match lib.call(iface, "parse-number", &[s("x1")]).unwrap() {
        Val::Result(Err(Some(msg))) => match *msg {
            Val::String(m) => assert!(m.contains("`x1` is not a number"), "{m}"),
            other => panic!("unexpected error payload {other:?}"),
        },
        other => panic!("unexpected result {other:?}"),
    }
    assert_eq!(
        lib.call(
            iface,
            "join",
            &[Val::List(vec![s("a"), s("b"), s("c")]), s("::")]
        )
        .unwrap(),
        s("a::b::c")
    );
}

#[test]
fn library_exports_its_wit_interface() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("text.wasm");
    let summary = build(&fixture("rust-library"), &out, &[]);
    assert_eq!(summary["kind"], "component");
    assert_eq!(summary["package"], "text-tools");
    assert_eq!(
        summary["world"]["exports"],
        serde_json::json!(["kiln-fixtures:text/tools@0.1.0"])
    );
    check_text_tools(&out);

    let report: serde_json::Value =
        serde_json::from_slice(&run_ok(kiln().arg("inspect").arg(&out).arg("--json")).stdout)
            .unwrap();
    let exports = report["world"]["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert_eq!(exports[0]["name"], "kiln-fixtures:text/tools@0.1.0");
    assert_eq!(exports[0]["package"], "kiln-fixtures:text");
    assert_eq!(exports[0]["interface"], "tools");
    assert_eq!(exports[0]["version"], "0.1.0");
    let sigs: Vec<String> = exports[0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f["name"].as_str().unwrap(),
                f["signature"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        sigs.contains(&"parse-number: func(text: string) -> result<s64, string>".to_string()),
        "{sigs:?}"
    );
    assert!(
        sigs.contains(&"join: func(parts: list<string>, separator: string) -> string".to_string()),
        "{sigs:?}"
    );

    let wit = stdout(&run_ok(kiln().arg("inspect").arg(&out).arg("--wit")));
    assert_snapshot(snapshot("build/rust-library.wit"), &wit, &Filters::new());
}

#[test]
fn wasip1_library_is_componentized_with_the_reactor_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("text-p1.wasm");
    let summary = build(
        &fixture("rust-library"),
        &out,
        &["--target", "wasm32-wasip1", "--release"],
    );
    assert_eq!(summary["adapter"], "reactor");
    check_text_tools(&out);
}

#[test]
fn workspace_member_is_chosen_with_package() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("greeter.wasm");
    let summary = build(&fixture("rust-workspace"), &out, &["-p", "greeter@0.9.0"]);
    assert_eq!(summary["package"], "greeter");
    assert_eq!(summary["version"], "0.9.0");
    assert_eq!(
        run_command(&out, &["3"], &[]).unwrap(),
        "square 3: area 9\ncircle 3: area 28.27\n"
    );

    // Run from the member's directory, the member is picked without `-p`.
    let summary = build(&fixture("rust-workspace").join("greeter"), &out, &[]);
    assert_eq!(summary["package"], "greeter");
}

#[test]
fn workspace_without_package_lists_members() {
    let out = run(kiln().arg("build").arg(fixture("rust-workspace")));
    assert_eq!(out.status.code(), Some(2));
    assert_snapshot(
        snapshot("build/workspace-without-package.stderr"),
        &stderr(&out),
        &Filters::new().path(&root(), "ROOT"),
    );
}

#[test]
fn plain_rust_library_asks_for_cdylib() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-workspace"))
        .args(["-p", "shapes"]));
    assert_eq!(out.status.code(), Some(2));
    assert_snapshot(
        snapshot("build/plain-rust-library.stderr"),
        &stderr(&out),
        &Filters::new().path(&root(), "ROOT").cargo(),
    );
}

#[test]
fn builds_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.wasm");
    let b = dir.path().join("b.wasm");
    let first = build(&fixture("rust-command"), &a, &["--release"]);
    // Touch the source so cargo really recompiles the crate (its contents
    // never change: other tests build this fixture at the same time).
    std::fs::File::options()
        .append(true)
        .open(fixture("rust-command").join("src/main.rs"))
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let second = build(&fixture("rust-command"), &b, &["--release"]);
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn cached_project_metadata_follows_new_binaries_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("evolving");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::copy(
        fixture("rust-command").join("src/main.rs"),
        project.join("src/main.rs"),
    )
    .unwrap();
    let manifest = |version: &str| {
        format!(
            "[package]\nname = \"evolving\"\nversion = \"{version}\"\nedition = \"2024\"\n\n[workspace]\n"
        )
    };
    std::fs::write(project.join("Cargo.toml"), manifest("1.0.0")).unwrap();
    let out = dir.path().join("out.wasm");
    assert_eq!(build(&project, &out, &[])["version"], "1.0.0");

    // A binary cargo discovers by itself, and a new version.
    std::fs::create_dir_all(project.join("src/bin")).unwrap();
    std::fs::write(
        project.join("src/bin/extra.rs"),
        "fn main() { println!(\"extra\"); }\n",
    )
    .unwrap();
    std::fs::write(project.join("Cargo.toml"), manifest("1.1.0")).unwrap();
    let summary = build(&project, &out, &["--bin", "extra"]);
    assert_eq!(summary["version"], "1.1.0");
    assert_eq!(run_command(&out, &[], &[]).unwrap(), "extra\n");
}

/// `kiln build`'s summary of the Rust fixtures, human (stdout and stderr)
/// and `--json`, compared with `snapshots/build/FIXTURE.{stdout,stderr,json}`.
/// Release builds: a dev build's debug information holds the project's path,
/// so its digest would differ from one checkout to the next; and git kept
/// from finding kiln's own repository above the fixture, whose commit would
/// be embedded as the component's revision.
#[test]
fn summaries_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let filters = Filters::new()
        .path(dir.path(), "TMP")
        .path(&root(), "ROOT")
        .cargo();
    let kiln = || {
        let mut c = kiln();
        c.env("GIT_CEILING_DIRECTORIES", fixture(""));
        c
    };
    for name in ["rust-command", "rust-library"] {
        let human = run_ok(
            kiln()
                .arg("build")
                .arg(fixture(name))
                .arg("--release")
                .arg("-o")
                .arg(dir.path().join(format!("{name}.wasm"))),
        );
        let json = run_ok(
            kiln()
                .arg("build")
                .arg(fixture(name))
                .args(["--release", "--json", "-o"])
                .arg(dir.path().join(format!("{name}.json.wasm"))),
        );
        let file = |suffix: &str| snapshot(&format!("build/{name}.{suffix}"));
        assert_snapshot(file("stdout"), &stdout(&human), &filters);
        assert_snapshot(file("stderr"), &stderr(&human), &filters);
        assert_snapshot(file("json"), &stdout(&json), &filters);
    }
}
