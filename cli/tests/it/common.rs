//! Shared test helpers: running kiln, locating fixtures, requiring tools, and running components in Wasmtime.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// A fixture's path.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The target directory fixture builds share, so repeated runs reuse cargo's
/// cache and only one copy of each dependency is built.
pub fn fixtures_target_dir() -> PathBuf {
    root().join("target").join("fixtures")
}

/// Copies a directory tree, leaving out build outputs (`target/`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// A program the tests run, from `PATH` or /usr/(s)bin.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether a tool a test requires is there: `clang` is a clang kiln can
/// build for WASI with (a WASI libc beside it), `go` a Go toolchain, as kiln
/// finds them; `oras` the oras Python client (`pip install oras`),
/// `in_toto_attestation` in-toto's Python package; anything
/// else a program of that name. Looked up once.
fn available(tool: &str) -> bool {
    static FOUND: std::sync::Mutex<Vec<(String, bool)>> = std::sync::Mutex::new(Vec::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, there)) = found.iter().find(|(t, _)| t == tool) {
        return *there;
    }
    let there = match tool {
        "clang" => kiln_build::toolchain::find_c_toolchain(None).is_ok(),
        "go" => kiln_build::toolchain::find_go().is_ok(),
        "oras" => Command::new("python3")
            .args(["-c", "import oras.client"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "in_toto_attestation" => Command::new("python3")
            .args(["-c", "import in_toto_attestation.v1.statement"])
            .output()
            .is_ok_and(|o| o.status.success()),
        other => find_tool(other).is_some(),
    };
    found.push((tool.to_string(), there));
    there
}

/// Declares the tools a test runs: true when all are there. Without `CI`
/// set, a missing one prints `skipped: requires TOOL` and the test returns
/// early (`if !requires(&["go"]) { return; }`); with `CI` set, it fails the
/// test naming the tool, so CI never passes by skipping.
pub fn requires(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !available(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    assert!(
        std::env::var_os("CI").is_none(),
        "requires {missing}, which is not installed (`cargo xtask setup` installs it)"
    );
    eprintln!("skipped: requires {missing}");
    false
}

/// [`requires`] the tools a registry of this variant runs on
/// (`docker-registry`, and `htpasswd` or `openssl` to set it up).
pub fn requires_registry(variant: crate::registry_harness::Variant) -> bool {
    requires(variant.tools())
}

/// A `kiln` command with a clean, deterministic environment.
pub fn kiln() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env("CARGO_TARGET_DIR", fixtures_target_dir())
        .env("KILN_CACHE_DIR", root().join("target").join("test-cache"))
        .env("NO_COLOR", "1")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("KILN_TARGET_DIR");
    cmd
}

/// kiln working in `dir` as a user whose whole setup is there: Docker's
/// config in `dir/.docker` (empty unless the test writes it), its own cache
/// in `dir/cache` (so what one test's pushes record about where blobs are,
/// for mounts, is not asked of another test's registry on the same port),
/// and no registry credentials, key password, `SOURCE_DATE_EPOCH` or kill
/// point from the environment the tests run in.
pub fn kiln_in(dir: &Path) -> Command {
    let mut cmd = kiln();
    cmd.current_dir(dir)
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .env("KILN_CACHE_DIR", dir.join("cache"))
        .env_remove("KILN_REGISTRY")
        .env_remove("KILN_REGISTRY_USERNAME")
        .env_remove("KILN_REGISTRY_PASSWORD")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("KILN_PASSWORD")
        .env_remove("KILN_TEST_KILL_AFTER")
        .env_remove("KILN_TEST_FAST_RETRY")
        .env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// The rust-command fixture, built once per run of the tests so that its
/// bytes are the same in every checkout at every commit, as the snapshots
/// of what tests do with it (which keep its digests, and those of what is
/// made from it) need: a copy outside kiln's git repository (kiln records
/// the project's git revision), built with `--release` (a dev build's
/// debug information holds the project's path), as the golden tests build.
fn hello_component() -> &'static Path {
    static WASM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WASM.get_or_init(|| {
        let out = root().join("target/test-cache/hello.wasm");
        let copy = tempfile::tempdir().expect("a temporary directory");
        let project = copy.path().join("rust-command");
        copy_dir(&fixture("rust-command"), &project);
        build(&project, &out, &["--release"]);
        out
    })
}

/// `dir/hello.wasm`: a copy of the rust-command fixture's component, for
/// tests that need a real component but do not test building it.
pub fn hello(dir: &Path) -> PathBuf {
    let wasm = dir.join("hello.wasm");
    std::fs::copy(hello_component(), &wasm).expect("copy the built component");
    wasm
}

/// Runs kiln and returns its output, whatever its exit status.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the kiln binary runs")
}

/// Runs kiln and fails the test unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "kiln failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stdout, then stderr after a `--- stderr` line when there is any: both
/// streams of a run in one snapshot.
pub fn transcript(out: &Output) -> String {
    let mut text = stdout(out);
    if !out.stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&stderr(out));
    }
    text
}

/// Builds a project with kiln into `out_dir` and returns the JSON summary.
pub fn build(project: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let output = run_ok(
        kiln()
            .arg("build")
            .arg(project)
            .arg("-o")
            .arg(out)
            .arg("--json")
            .args(extra),
    );
    serde_json::from_slice(&output.stdout).expect("build --json prints JSON")
}

/// Compares `actual` with the expected file, or rewrites the file when
/// `BLESS=1` is set.
pub fn assert_expected(expected: &Path, actual: &str) {
    if std::env::var_os("BLESS").is_some() {
        if let Some(dir) = expected.parent() {
            std::fs::create_dir_all(dir).expect("create the expected output's directory");
        }
        std::fs::write(expected, actual).expect("write expected output");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|_| {
        panic!(
            "missing expected output `{}`; run the tests with BLESS=1 to create it",
            expected.display()
        )
    });
    assert!(
        want == actual,
        "output differs from `{}` (rerun with BLESS=1 if the change is intended)\n--- expected\n{want}\n--- actual\n{actual}",
        expected.display()
    );
}

/// A snapshot's path: `cli/tests/it/snapshots/NAME`.
pub fn snapshot(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots")
        .join(name)
}

/// Compares `actual`, with `filters` applied, with the snapshot file at
/// `expected` (see [`snapshot`]), or rewrites the file when `BLESS=1` is set
/// (`cargo xtask bless`).
pub fn assert_snapshot(expected: impl AsRef<Path>, actual: &str, filters: &Filters) {
    assert_expected(expected.as_ref(), &filters.apply(actual));
}

/// What differs between two runs of the same test and is replaced before an
/// output is compared with its snapshot: paths given to [`Filters::path`],
/// text given to [`Filters::text`] (a registry's `HOST:PORT`, a digest that
/// covers a random signature), and always times: the values of JSON keys
/// named `ms` or ending in `_ms` (numbers, or every number in an object such
/// as `timings_ms`) in the JSON documents that start a line, and durations
/// after ` in ` (`in 1.23s`, `in 45ms`).
#[derive(Clone, Default)]
pub struct Filters {
    replacements: Vec<(String, String)>,
    /// Lines left out, by how they start (leading spaces ignored).
    dropped_lines: Vec<&'static str>,
}

impl Filters {
    /// Filters for times only.
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Replaces `path`, as given and as the file system resolves it, with
    /// `[NAME]`.
    pub fn path(mut self, path: &Path, name: &str) -> Filters {
        let placeholder = format!("[{name}]");
        if let Ok(real) = path.canonicalize() {
            self.replacements
                .push((real.display().to_string(), placeholder.clone()));
        }
        self.replacements
            .push((path.display().to_string(), placeholder));
        self
    }

    /// Replaces `text` with `placeholder`.
    pub fn text(mut self, text: &str, placeholder: &str) -> Filters {
        self.replacements
            .push((text.to_string(), placeholder.to_string()));
        self
    }

    /// Leaves out cargo's own status lines whose presence depends on what
    /// else builds at the same time in the shared target directory
    /// (`Blocking waiting for file lock`, `Compiling`, `Finished`), and
    /// names cargo `cargo` where kiln runs the one `CARGO` names (as
    /// `cargo test` sets it).
    pub fn cargo(mut self) -> Filters {
        if let Ok(cargo) = std::env::var("CARGO") {
            self = self.text(&cargo, "cargo");
        }
        self.dropped_lines
            .extend(["Blocking waiting for file lock", "Compiling ", "Finished `"]);
        self
    }

    /// The text with every filter applied; longer replacements go first, so
    /// a path inside another filtered path keeps its own name.
    pub fn apply(&self, text: &str) -> String {
        let kept;
        let text = if self.dropped_lines.is_empty() {
            text
        } else {
            kept = text
                .split_inclusive('\n')
                .filter(|l| {
                    let l = l.trim_start();
                    !self.dropped_lines.iter().any(|d| l.starts_with(d))
                })
                .collect::<String>();
            &kept
        };
        let mut replacements = self.replacements.clone();
        replacements.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        let mut out = text.to_string();
        for (from, to) in &replacements {
            if !from.is_empty() {
                out = out.replace(from.as_str(), to);
            }
        }
        durations(&json_times(&out))
    }
}

/// What a time value becomes in a snapshot.
const MS: &str = "[ms]";

/// A time value while it is serialized: a string no output of kiln holds,
/// turned into [`MS`] in the serialized text.
const MS_MARK: &str = "\u{1}ms";

/// A JSON value whose objects keep their keys in the order they were written
/// (`serde_json::Value` sorts them), so that a document is serialized again
/// as kiln wrote it, byte for byte, with its time values replaced.
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// A time, replaced.
    Ms,
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    entries.push(entry);
                }
                Ok(Json::Object(entries))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(text) => s.serialize_str(text),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Json::Ms => s.serialize_str(MS_MARK),
        }
    }
}

impl Json {
    /// Replaces the values of keys `ms` and `…_ms`: a number, or every
    /// number of an object (`timings_ms`). Returns whether it replaced any.
    fn replace_times(&mut self) -> bool {
        let as_ms = |v: &mut Json| match v {
            Json::Number(_) => {
                *v = Json::Ms;
                true
            }
            _ => false,
        };
        match self {
            Json::Array(items) => items.iter_mut().fold(false, |r, i| i.replace_times() | r),
            Json::Object(entries) => entries.iter_mut().fold(false, |r, (key, value)| {
                let replaced = if key == "ms" || key.ends_with("_ms") {
                    match value {
                        Json::Object(times) => {
                            times.iter_mut().fold(false, |r, (_, time)| as_ms(time) | r)
                        }
                        time => as_ms(time),
                    }
                } else {
                    value.replace_times()
                };
                replaced | r
            }),
            _ => false,
        }
    }
}

/// The values of JSON keys `"ms"` and `"…_ms"` as `[ms]`, in every JSON
/// document that starts a line (kiln's `--json` output, pretty or one a
/// line); the rest of the text, and documents without times, are kept as
/// they are.
fn json_times(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with(['{', '[']) {
            let mut docs = serde_json::Deserializer::from_str(rest).into_iter::<Json>();
            if let Some(Ok(mut doc)) = docs.next() {
                let (original, after) = rest.split_at(docs.byte_offset());
                if doc.replace_times() {
                    let text = if original.contains('\n') {
                        serde_json::to_string_pretty(&doc)
                    } else {
                        serde_json::to_string(&doc)
                    };
                    let mark = serde_json::to_string(MS_MARK).unwrap();
                    out.push_str(&text.unwrap().replace(&mark, MS));
                } else {
                    out.push_str(original);
                }
                rest = after;
                continue;
            }
        }
        let line = rest.find('\n').map_or(rest.len(), |i| i + 1);
        out.push_str(&rest[..line]);
        rest = &rest[line..];
    }
    out
}

/// Durations after ` in ` (`in 1.23s`, `in 45ms`, `in 2m`) as `in [time]`.
fn durations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(" in ") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let digits = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if digits == 0 || !rest.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        let unit = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if matches!(
            &rest[digits..digits + unit],
            "s" | "ms" | "m" | "h" | "us" | "ns"
        ) {
            out.push_str("[time]");
            rest = &rest[digits + unit..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_missing_tool_skips_the_test_unless_ci_is_set() {
    let result = std::panic::catch_unwind(|| requires(&["cargo", "kiln-test-no-such-tool"]));
    if std::env::var_os("CI").is_some() {
        let message = result.expect_err("CI fails on a missing tool");
        let message = message.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("requires kiln-test-no-such-tool"),
            "{message}"
        );
    } else {
        assert!(!result.unwrap());
    }
    assert!(requires(&["cargo"]));
}

#[test]
fn filters_replace_paths_hosts_and_times() {
    let filters = Filters::new()
        .path(Path::new("/tmp/x"), "TMP")
        .path(Path::new("/tmp/x/project"), "PROJECT")
        .text("127.0.0.1:5000", "[REGISTRY]");
    let text = "{\"message\":\"a \\\"quoted\\\" word\",\"stage\":\"build\",\"ms\":854.64}\n{\n  \"timings_ms\": {\n    \"a\": 1.5,\n    \"b\": 2e-3\n  },\n  \"size_ms\": 3,\n  \"size\": 4\n}\n[1,  2] kept as written\n   Published 127.0.0.1:5000/a in 1.44s (/tmp/x/project, /tmp/x/y)\nFinished in 12ms; in 2 places\n";
    assert_eq!(
        filters.apply(text),
        "{\"message\":\"a \\\"quoted\\\" word\",\"stage\":\"build\",\"ms\":[ms]}\n{\n  \"timings_ms\": {\n    \"a\": [ms],\n    \"b\": [ms]\n  },\n  \"size_ms\": [ms],\n  \"size\": 4\n}\n[1,  2] kept as written\n   Published [REGISTRY]/a in [time] ([PROJECT], [TMP]/y)\nFinished in [time]; in 2 places\n"
    );
}

/// A WASI host's state for running a component the tests built.
pub struct Host {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Wasmtime's errors as anyhow errors, keeping the whole chain in the text.
pub fn w<T>(r: wasmtime::Result<T>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn engine() -> Engine {
    Engine::new(&Config::new()).expect("a default engine")
}

/// Runs a command component's `wasi:cli/run` with arguments and environment
/// and returns what it printed to stdout.
pub fn run_command(wasm: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    run_command_with_dir(wasm, args, env, None)
}

/// Runs an already loaded command component.
pub fn run_component(
    engine: &Engine,
    component: &Component,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<String> {
    run_loaded(engine, component, args, env, None, b"")
        .map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// Like [`run_command`], with `stdin` as the program's standard input and
/// its standard output returned as bytes.
pub fn run_command_with_stdin(wasm: &Path, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
    let engine = engine();
    let component = w(Component::from_file(&engine, wasm)).context("load component")?;
    run_loaded(&engine, &component, args, &[], None, stdin)
}

/// Like [`run_command`], with a host directory preopened at a guest path.
pub fn run_command_with_dir(
    wasm: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    preopen: Option<(&Path, &str)>,
) -> Result<String> {
    let engine = engine();
    let component = w(Component::from_file(&engine, wasm)).context("load component")?;
    run_loaded(&engine, &component, args, env, preopen, b"")
        .map(|out| String::from_utf8_lossy(&out).into_owned())
}

fn run_loaded(
    engine: &Engine,
    component: &Component,
    args: &[&str],
    env: &[(&str, &str)],
    preopen: Option<(&Path, &str)>,
    stdin: &[u8],
) -> Result<Vec<u8>> {
    let mut linker = Linker::<Host>::new(engine);
    w(wasmtime_wasi::p2::add_to_linker_sync(&mut linker))?;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let mut argv = vec!["main"];
    argv.extend_from_slice(args);
    let mut builder = WasiCtx::builder();
    builder
        .args(&argv)
        .envs(env)
        .stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(
            stdin.to_vec(),
        ))
        .stdout(stdout.clone());
    if let Some((host, guest)) = preopen {
        w(builder.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly))?;
    }
    let ctx = builder.build();
    let mut store = Store::new(
        engine,
        Host {
            ctx,
            table: ResourceTable::new(),
        },
    );
    let command = w(wasmtime_wasi::p2::bindings::sync::Command::instantiate(
        &mut store, component, &linker,
    ))?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => {}
        Ok(Err(())) => anyhow::bail!("the command exited with an error"),
        // `proc_exit(0)`, as Go programs end, is a successful exit.
        Err(e)
            if e.downcast_ref::<wasmtime_wasi::I32Exit>()
                .is_some_and(|c| c.0 == 0) => {}
        Err(e) => return Err(anyhow::anyhow!("{e:?}")),
    }
    Ok(stdout.contents().to_vec())
}

/// An instantiated library component whose exported functions tests call.
pub struct Library {
    store: Store<Host>,
    instance: wasmtime::component::Instance,
}

impl Library {
    /// Instantiates a component with WASI available to it.
    pub fn new(wasm: &Path) -> Result<Library> {
        let engine = engine();
        let component = w(Component::from_file(&engine, wasm)).context("load component")?;
        Library::from_loaded(&engine, &component)
    }

    /// Instantiates an already loaded (or deserialized) component.
    pub fn from_loaded(engine: &Engine, component: &Component) -> Result<Library> {
        let engine = engine.clone();
        let mut linker = Linker::<Host>::new(&engine);
        w(wasmtime_wasi::p2::add_to_linker_sync(&mut linker))?;
        let mut store = Store::new(
            &engine,
            Host {
                ctx: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        let instance = w(linker.instantiate(&mut store, component))?;
        Ok(Library { store, instance })
    }

    /// Calls `interface#func` with `args` and returns its one result.
    pub fn call(&mut self, interface: &str, func: &str, args: &[Val]) -> Result<Val> {
        let iface = self
            .instance
            .get_export_index(&mut self.store, None, interface)
            .with_context(|| format!("no export `{interface}`"))?;
        let idx = self
            .instance
            .get_export_index(&mut self.store, Some(&iface), func)
            .with_context(|| format!("no function `{func}` in `{interface}`"))?;
        let f = self
            .instance
            .get_func(&mut self.store, idx)
            .with_context(|| format!("`{func}` is not a function"))?;
        let mut results = [Val::Bool(false)];
        w(f.call(&mut self.store, args, &mut results))?;
        let [result] = results;
        Ok(result)
    }
}

/// The engine kiln precompiles for by default (this host, baseline CPU,
/// default settings): what loads a `.cwasm` from `kiln compile`/`publish`.
pub fn host_engine() -> Engine {
    let config = kiln_aot::engine_config(
        kiln_core::Target::host(),
        &kiln_aot::Cpu::Baseline,
        &kiln_aot::Settings::default(),
    )
    .expect("the host's engine configuration");
    Engine::new(&config).expect("the host's engine")
}
