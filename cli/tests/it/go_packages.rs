//! Go main packages anywhere in a module (the go-module fixture, Go's own `cmd`), and `--target-dir`/`KILN_TARGET_DIR` for every language.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

/// Builds `path` with kiln's default output (under the target directory)
/// and the extra arguments; returns the `--json` summary.
fn build_in(path: &Path, extra: &[&str], env: &[(&str, &Path)]) -> serde_json::Value {
    let mut cmd = kiln();
    cmd.arg("build").arg(path).arg("--json").args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    serde_json::from_slice(&run_ok(&mut cmd).stdout).expect("build --json prints JSON")
}

#[test]
fn go_commands_are_built_by_directory_or_chosen_by_main() {
    if !requires(&["go"]) {
        return;
    }
    let module = fixture("go-module");
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let target_arg = target.to_str().unwrap();

    // A command named by its directory is named after it; the module-wide
    // `[package]` settings still apply.
    let hello = build_in(
        &module.join("cmd/hello"),
        &["--target-dir", target_arg],
        &[],
    );
    assert_eq!(hello["package"], "hello");
    assert_eq!(hello["version"], "0.3.0");
    assert_eq!(hello["adapter"], "command");
    let hello_wasm = target.join("kiln/hello.wasm");
    assert_eq!(hello["path"], hello_wasm.to_str().unwrap());
    assert_eq!(
        run_command(&hello_wasm, &["a", "b"], &[]).unwrap(),
        "hello from cmd/hello: a b\n"
    );

    // The other command, by directory, with KILN_TARGET_DIR: it imports a
    // package of its own module. It is the one kiln.toml describes, so
    // `[package] name` names it.
    let greet = build_in(
        &module.join("cmd/greet"),
        &[],
        &[("KILN_TARGET_DIR", &target)],
    );
    assert_eq!(greet["package"], "tools-greet");
    let greet_wasm = target.join("kiln/tools-greet.wasm");
    assert_eq!(
        run_command(&greet_wasm, &["Ada"], &[]).unwrap(),
        "greetings, Ada, from cmd/greet\n"
    );

    // From the module root, `[build] main` chooses it.
    let out = tmp.path().join("root.wasm");
    let root = build(&module, &out, &["--target-dir", target_arg]);
    assert_eq!(root["package"], "tools-greet");
    assert_eq!(
        run_command(&out, &[], &[]).unwrap(),
        "greetings, world, from cmd/greet\n"
    );
    // Nothing was written into the module.
    assert!(!module.join("target").exists());

    // A kiln.toml `main` that names no directory is an error.
    let copy = tmp.path().join("go-module");
    copy_dir(&module, &copy);
    let toml = std::fs::read_to_string(copy.join("kiln.toml")).unwrap();
    std::fs::write(
        copy.join("kiln.toml"),
        toml.replace("./cmd/greet", "./cmd/missing"),
    )
    .unwrap();
    let failed = run(kiln().arg("build").arg(&copy));
    assert_eq!(failed.status.code(), Some(2));
    assert!(
        stderr(&failed)
            .contains("error: `[build] main = \"./cmd/missing\"` in kiln.toml is not a directory"),
        "{}",
        stderr(&failed)
    );
}

#[test]
fn a_go_library_in_a_subdirectory_exports_its_world() {
    if !requires(&["go"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let summary = build_in(
        &fixture("go-module").join("lib/calc"),
        &["--target-dir", target.to_str().unwrap()],
        &[],
    );
    assert_eq!(summary["package"], "calc");
    assert_eq!(summary["adapter"], "reactor");
    let mut lib = Library::new(&target.join("kiln/calc.wasm")).unwrap();
    let iface = "kiln-fixtures:calc/math@0.1.0";
    assert_eq!(
        lib.call(iface, "add", &[Val::S32(40), Val::S32(2)])
            .unwrap(),
        Val::S32(42)
    );
    assert_eq!(
        lib.call(iface, "is-even", &[Val::U64(7)]).unwrap(),
        Val::Bool(false)
    );
}

#[test]
fn a_directory_without_a_main_package_is_refused_clearly() {
    if !requires(&["go"]) {
        return;
    }
    let module = fixture("go-module");
    let tmp = tempfile::tempdir().unwrap();
    for (dir, snap) in [
        ("docs", "build/go-no-package.stderr"),
        ("internal/greeting", "build/go-not-main.stderr"),
    ] {
        let out = run(kiln()
            .arg("build")
            .arg(module.join(dir))
            .arg("--target-dir")
            .arg(tmp.path()));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_snapshot(snapshot(snap), &stderr(&out), &Filters::new());
    }
    assert!(!tmp.path().join("kiln/go/docs.core.wasm").exists());

    // A kiln.toml declaring Go away from go.mod says where it belongs.
    let copy = tmp.path().join("go-module");
    copy_dir(&module, &copy);
    std::fs::write(
        copy.join("cmd/hello/kiln.toml"),
        "[build]\nlanguage = \"go\"\n",
    )
    .unwrap();
    let out = run(kiln().arg("build").arg(copy.join("cmd/hello")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_snapshot(
        snapshot("build/go-kiln-toml-without-go-mod.stderr"),
        &stderr(&out),
        &Filters::new().path(tmp.path(), "TMP"),
    );
}

/// Go's own source tree, as `go env GOROOT` names it.
fn goroot() -> PathBuf {
    let go = kiln_build::toolchain::find_go().unwrap();
    let out = Command::new(go.go)
        .args(["env", "GOROOT"])
        .output()
        .unwrap();
    assert!(out.status.success());
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

const UNFORMATTED: &str = "package  main\nimport \"fmt\"\nfunc main(){\nx:=1\nfmt.Println( x )}\n";
const FORMATTED: &str =
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x)\n}\n";

#[test]
fn gofmt_from_gos_own_source_tree_builds_into_another_target_dir_and_formats() {
    if !requires(&["go"]) {
        return;
    }
    let gofmt_dir = goroot().join("src/cmd/gofmt");
    let had_target = goroot().join("src/cmd/target").exists();
    let tmp = tempfile::tempdir().unwrap();
    let summary = build_in(
        &gofmt_dir,
        &["--target-dir", tmp.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(summary["package"], "gofmt");
    assert_eq!(summary["adapter"], "command");
    if !had_target {
        assert!(!goroot().join("src/cmd/target").exists());
    }
    let wasm = tmp.path().join("kiln/gofmt.wasm");
    let formatted = run_with_stdin(&wasm, UNFORMATTED.as_bytes()).unwrap();
    assert_eq!(formatted, FORMATTED);
    // The host's gofmt agrees, when there is one.
    if let Some(host) = find_tool("gofmt").or_else(|| {
        let p = goroot().join("bin/gofmt");
        p.is_file().then_some(p)
    }) {
        use std::io::Write;
        let mut child = Command::new(host)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(UNFORMATTED.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), formatted);
    }
}

#[test]
fn a_go_package_publishes_into_the_target_dir_and_bare_names_find_it() {
    if !requires(&["go"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("elsewhere");
    let k = || {
        let mut cmd = kiln_in(tmp.path());
        cmd.env("KILN_TARGET_DIR", &target)
            .env("KILN_PASSWORD", "go-packages")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI");
        cmd
    };
    run_ok(k().args(["keygen", "--output-prefix", "cosign"]));
    let publish = run_ok(
        k().arg("publish")
            .arg(fixture("go-module").join("cmd/hello"))
            .args(["--target", "none", "--key", "cosign.key", "--json"]),
    );
    let receipt = stdout(&publish)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "receipt")
        .expect("a receipt")["receipt"]
        .clone();
    let reference = receipt["pushed"]["reference"].as_str().unwrap();
    let layout = target.join("kiln/oci/hello");
    assert!(
        reference.starts_with(&format!("oci:{}:0.3.0", layout.display())),
        "{reference}"
    );
    // The SBOM is read from Go's build info in the package's binary.
    let sbom = std::fs::read(target.join("kiln/hello.cdx.json")).unwrap();
    let bom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let names: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"std"), "{names:?}");
    assert_eq!(bom["metadata"]["component"]["name"], "hello");
    // A bare name is a layout in the same target directory.
    let tags = run_ok(k().args(["tags", "hello"]));
    assert_eq!(stdout(&tags), "0.3.0\n");
    // The provenance names the package built within the module.
    let verified = run_ok(k().args([
        "verify-attestation",
        "hello:0.3.0",
        "--key",
        "cosign.pub",
        "--type",
        "slsaprovenance1",
        "--json",
    ]));
    let statements: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    let definition = &statements[0]["statement"]["predicate"]["buildDefinition"];
    assert_eq!(
        definition["externalParameters"]["settings"]["package_dir"], "cmd/hello",
        "{definition:#}"
    );
}

#[test]
fn target_dir_moves_rust_and_c_outputs_too() {
    if !requires(&["clang"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Rust: cargo's own outputs move with kiln's.
    let rust_target = tmp.path().join("rust");
    let rust = build_in(
        &fixture("rust-command"),
        &["--target-dir", rust_target.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        rust["path"],
        rust_target
            .join("kiln/hello-command.wasm")
            .to_str()
            .unwrap()
    );
    assert!(
        Path::new(rust["toolchain_output"].as_str().unwrap()).starts_with(&rust_target),
        "{}",
        rust["toolchain_output"]
    );
    assert!(
        !run_command(&rust_target.join("kiln/hello-command.wasm"), &["kiln"], &[])
            .unwrap()
            .is_empty()
    );
    // C, through the environment: objects and the component both move.
    let c_target = tmp.path().join("c");
    let project = tmp.path().join("c-command");
    copy_dir(&fixture("c-command"), &project);
    let c = build_in(&project, &[], &[("KILN_TARGET_DIR", &c_target)]);
    let c_wasm = PathBuf::from(c["path"].as_str().unwrap());
    assert!(c_wasm.starts_with(&c_target), "{}", c_wasm.display());
    assert!(c_target.join("kiln/c").is_dir());
    assert!(!project.join("target").exists());
}

/// Runs a command component with `stdin` as its standard input; returns
/// what it wrote to stdout.
fn run_with_stdin(wasm: &Path, stdin: &[u8]) -> anyhow::Result<String> {
    let w = |e: wasmtime::Error| anyhow::anyhow!("{e:?}");
    let engine = Engine::new(&Config::new()).map_err(w)?;
    let component = Component::from_file(&engine, wasm).map_err(w)?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(w)?;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let ctx = WasiCtx::builder()
        .args(&["gofmt"])
        .stdin(MemoryInputPipe::new(stdin.to_vec()))
        .stdout(stdout.clone())
        .build();
    let mut store = Store::new(
        &engine,
        Host {
            ctx,
            table: ResourceTable::new(),
        },
    );
    let command =
        wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, &component, &linker)
            .map_err(w)?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => {}
        Ok(Err(())) => anyhow::bail!("the command exited with an error"),
        Err(e)
            if e.downcast_ref::<wasmtime_wasi::I32Exit>()
                .is_some_and(|c| c.0 == 0) => {}
        Err(e) => return Err(w(e)),
    }
    Ok(String::from_utf8_lossy(&stdout.contents()).into_owned())
}

#[test]
fn main_in_a_kiln_toml_of_another_language_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("c-command");
    copy_dir(&fixture("c-command"), &project);
    let toml = std::fs::read_to_string(project.join("kiln.toml")).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        toml.replacen("[build]", "[build]\nmain = \"./cmd/x\"", 1),
    )
    .unwrap();
    let out = run(kiln().arg("build").arg(&project));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(
            "error: `[build] main = \"./cmd/x\"` in kiln.toml does not apply to c projects\n"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!project.join("target").exists());
}
