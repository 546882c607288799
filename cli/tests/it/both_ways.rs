//! Runs a C command both ways — kiln's component, and the wasip1 core module it was made from — and compares what each left behind.
//!
//! A component made through the preview1 adapter should behave as the
//! program does: the same standard output and error, the same files
//! written, and the same success or failure. Only success versus failure
//! survives `wasi:cli/exit`, so an exit status is compared as that. Every C
//! command the tests build goes through [`assert_same_both_ways`].

use crate::common::{Host, w};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder};

/// One run of a program.
#[derive(Clone, Copy, Default)]
pub struct Case<'a> {
    /// Its arguments after the program name.
    pub args: &'a [&'a str],
    /// Its environment.
    pub env: &'a [(&'a str, &'a str)],
    /// Its standard input.
    pub stdin: &'a [u8],
    /// Files in the directory preopened read-write at `/data`.
    pub files: &'a [(&'a str, &'a [u8])],
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("args", &self.args)
            .field("env", &self.env)
            .field("stdin", &format_args!("{} bytes", self.stdin.len()))
            .field(
                "files",
                &self.files.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// How a run ended, as both routes can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    /// A trap (`abort()` is one); the message differs between the routes.
    Trap,
}

/// What a run left behind.
#[derive(PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Every file under `/data` afterwards, by path below it.
    pub files: BTreeMap<String, Vec<u8>>,
    pub status: Status,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            if s.chars().count() > 300 {
                let head: String = s.chars().take(300).collect();
                format!("{head}… ({} bytes)", b.len())
            } else {
                s.into_owned()
            }
        };
        f.debug_struct("Outcome")
            .field("status", &self.status)
            .field("stdout", &text(&self.stdout))
            .field("stderr", &text(&self.stderr))
            .field(
                "files",
                &self
                    .files
                    .iter()
                    .map(|(k, v)| (k, text(v)))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

/// Runs every case as the component `component` and as the core module
/// `core` (a `kiln build` summary's `toolchain_output`), asserts that each
/// case left the same behind both ways, and returns the outcomes so the
/// caller can check what the program did.
pub fn assert_same_both_ways(component: &Path, core: &Path, cases: &[Case]) -> Vec<Outcome> {
    let engine = Engine::default();
    let loaded = Component::from_file(&engine, component)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .unwrap();
    let module = Module::from_file(&engine, core)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .unwrap();
    let mut out = Vec::new();
    for case in cases {
        let (as_component, trap) = run(case, |dir, b| run_component(&engine, &loaded, dir, b));
        let (as_core, core_trap) = run(case, |dir, b| run_core(&engine, &module, dir, b));
        assert_eq!(
            as_component,
            as_core,
            "{} run with {case:?} as a component (left) and as the core module `{}` (right) differ\n\
             component trap: {trap:?}\ncore trap: {core_trap:?}",
            component.display(),
            core.display()
        );
        out.push(as_component);
    }
    out
}

/// Runs `case` in a fresh `/data` directory with the run function given,
/// and returns the outcome and the trap's message if it trapped.
fn run(
    case: &Case,
    run: impl FnOnce(&Path, &mut WasiCtxBuilder) -> Result<Result<(), wasmtime::Error>>,
) -> (Outcome, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in case.files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    let stdout = MemoryOutputPipe::new(16 << 20);
    let stderr = MemoryOutputPipe::new(16 << 20);
    let mut builder = WasiCtx::builder();
    let mut argv = vec!["prog"];
    argv.extend_from_slice(case.args);
    builder
        .args(&argv)
        .envs(case.env)
        .stdin(MemoryInputPipe::new(case.stdin.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    let ended = run(dir.path(), &mut builder).unwrap();
    let (status, trap) = match ended {
        Ok(()) => (Status::Success, None),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => (Status::Success, None),
            Some(_) => (Status::Failure, None),
            // The adapter's `wasi:cli/run` returning an error.
            None if e.downcast_ref::<Failed>().is_some() => (Status::Failure, None),
            None => (Status::Trap, Some(format!("{e:?}"))),
        },
    };
    let outcome = Outcome {
        stdout: stdout.contents().to_vec(),
        stderr: stderr.contents().to_vec(),
        files: files_under(dir.path()),
        status,
    };
    (outcome, trap)
}

/// `wasi:cli/run` returned `err`.
#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the command returned an error")
    }
}

impl std::error::Error for Failed {}

fn run_component(
    engine: &Engine,
    component: &Component,
    dir: &Path,
    builder: &mut WasiCtxBuilder,
) -> Result<Result<(), wasmtime::Error>> {
    w(builder.preopened_dir(dir, "/data", FsPerms::ReadWrite))?;
    let mut linker = Linker::<Host>::new(engine);
    w(wasmtime_wasi::p2::add_to_linker_sync(&mut linker))?;
    let mut store = Store::new(
        engine,
        Host {
            ctx: builder.build(),
            table: ResourceTable::new(),
        },
    );
    let command = w(wasmtime_wasi::p2::bindings::sync::Command::instantiate(
        &mut store, component, &linker,
    ))
    .context("instantiate the component")?;
    Ok(match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => Err(wasmtime::Error::new(Failed)),
        Err(e) => Err(e),
    })
}

fn run_core(
    engine: &Engine,
    module: &Module,
    dir: &Path,
    builder: &mut WasiCtxBuilder,
) -> Result<Result<(), wasmtime::Error>> {
    w(builder.preopened_dir(dir, "/data", FsPerms::ReadWrite))?;
    let mut linker = wasmtime::Linker::<WasiP1Ctx>::new(engine);
    w(wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| {
        ctx
    }))?;
    let mut store = Store::new(engine, builder.build_p1());
    let instance = w(linker.instantiate(&mut store, module)).context("instantiate the module")?;
    let start = w(instance.get_typed_func::<(), ()>(&mut store, "_start"))?;
    Ok(start.call(&mut store, ()))
}

/// Every file below `dir`, by its path relative to it.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}
