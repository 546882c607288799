//! Real inputs for `cargo xtask bench`'s validate rows, and a wasm-tools on kiln's wasmparser.
//!
//! The inputs are wasm shipped in pinned npm packages, downloaded once and
//! checked by hash; the wasm-tools built on kiln's own wasmparser tells kiln's
//! speed from the parser's.

use crate::sh;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A wasm file inside an npm package.
struct Real {
    /// The row's input column.
    label: &'static str,
    package: &'static str,
    version: &'static str,
    /// Its path inside the package's tarball.
    file: &'static str,
    /// SHA-256 of the file.
    sha256: &'static str,
}

/// Three shapes of real code: many small functions (Rust, wasm-bindgen),
/// few large ones and ~100k data segments (Go, GOOS=js), and a C++ engine
/// (SpiderMonkey, WASI).
const REAL: &[Real] = &[
    Real {
        label: "Rust wasm-bindgen module (@swc/wasm 1.16.18)",
        package: "@swc/wasm",
        version: "1.16.18",
        file: "package/wasm_bg.wasm",
        sha256: "67659614a2ca8504a8b33f4e3f261489bd9b700dd12058894b22788a3c61eda5",
    },
    Real {
        label: "Go js/wasm module (esbuild-wasm 0.28.2)",
        package: "esbuild-wasm",
        version: "0.28.2",
        file: "package/esbuild.wasm",
        sha256: "b1831a5c0f6cf688034fb94d0419812f165ea316a3380d3fc00a151e562d2eaf",
    },
    Real {
        label: "SpiderMonkey module (@bytecodealliance/componentize-js 0.23.0)",
        package: "@bytecodealliance/componentize-js",
        version: "0.23.0",
        file: "package/lib/starlingmonkey_embedding.wasm",
        sha256: "6094cd93d966f9bec9b01332db6e0eedbaf22f60b745c9f823f21e33cbd4d365",
    },
];

/// The inputs as (label, path), downloaded into `dir` when missing. A
/// package that cannot be fetched (no npm, no network) is left out with a
/// warning; a file that is not the pinned one is an error.
pub fn inputs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    std::fs::create_dir_all(dir)?;
    let mut inputs = Vec::new();
    for real in REAL {
        let name = real.package.trim_start_matches('@').replace('/', "-");
        let file_name = Path::new(real.file)
            .file_name()
            .context("a file name")?
            .to_string_lossy();
        let path = dir.join(format!("{name}-{}-{file_name}", real.version));
        let pinned = path.is_file() && sha256(&path)? == real.sha256;
        if !pinned && let Err(e) = download(dir, real, &path) {
            eprintln!(
                "bench: leaving out {}@{}: {e:#}",
                real.package, real.version
            );
            continue;
        }
        inputs.push((real.label.to_string(), path));
    }
    Ok(inputs)
}

/// Fetches `real`'s package with `npm pack`, takes its wasm file out and
/// moves it to `path` once its hash is checked.
fn download(dir: &Path, real: &Real, path: &Path) -> Result<()> {
    let spec = format!("{}@{}", real.package, real.version);
    let work = dir.join(format!(
        ".{}",
        path.file_name().context("a name")?.display()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    eprintln!("$ npm pack {spec}");
    let out = Command::new("npm")
        .args(["pack", "--silent", &spec])
        .current_dir(&work)
        .output()
        .context("failed to start npm")?;
    if !out.status.success() {
        bail!(
            "`npm pack {spec}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tarball = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| l.ends_with(".tgz"))
        .with_context(|| format!("`npm pack {spec}` named no tarball"))?;
    sh(Command::new("tar")
        .arg("-xzf")
        .arg(work.join(tarball))
        .arg("-C")
        .arg(&work)
        .arg(real.file))?;
    let extracted = work.join(real.file);
    let found = sha256(&extracted)?;
    if found != real.sha256 {
        bail!(
            "{spec}'s {} has SHA-256 {found}, not the pinned {}",
            real.file,
            real.sha256
        );
    }
    std::fs::rename(&extracted, path)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

fn sha256(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The wasm-tools release built on the wasmparser kiln uses (0.254.2): the
/// wasm-tools on PATH is newer, so its times include a different parser's.
const SAME_PARSER_VERSION: &str = "1.254.2";

/// A wasm-tools to compare kiln's validation with on the same parser.
pub struct SameParser {
    /// What it prints for `--version`.
    pub version: String,
    pub path: PathBuf,
}

/// The binary named by `KILN_BENCH_WASM_TOOLS_SAME_PARSER`, or else
/// wasm-tools [`SAME_PARSER_VERSION`] in `target/bench/tools`, installed
/// there with `cargo install` when missing; `None` (with a warning) when
/// neither can be had, and the bench leaves its column out.
pub fn same_parser_wasm_tools(root: &Path) -> Option<SameParser> {
    let version = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(path) = std::env::var_os("KILN_BENCH_WASM_TOOLS_SAME_PARSER") {
        let path = PathBuf::from(path);
        return match version(&path) {
            Some(version) => Some(SameParser { version, path }),
            None => {
                eprintln!(
                    "bench: KILN_BENCH_WASM_TOOLS_SAME_PARSER={} does not run; leaving its column out",
                    path.display()
                );
                None
            }
        };
    }
    let tools = root.join("target/bench/tools");
    let path = tools.join("bin/wasm-tools");
    let wanted = |v: &String| v.split_whitespace().nth(1) == Some(SAME_PARSER_VERSION);
    if let Some(version) = version(&path).filter(wanted) {
        return Some(SameParser { version, path });
    }
    let installed = sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "wasm-tools", "--locked", "--force", "--version"])
            .arg(SAME_PARSER_VERSION)
            .arg("--root")
            .arg(&tools)
            .env("CARGO_INCREMENTAL", "0"),
    );
    match (installed, version(&path)) {
        (Ok(()), Some(version)) => Some(SameParser { version, path }),
        (Err(e), _) => {
            eprintln!("bench: {e:#}; leaving the same-parser wasm-tools column out");
            None
        }
        (Ok(()), None) => {
            eprintln!(
                "bench: {} does not run; leaving its column out",
                path.display()
            );
            None
        }
    }
}

/// The header cells and separator cells this column adds to a table.
pub fn header(tool: Option<&SameParser>) -> (String, String) {
    match tool {
        Some(t) => (
            format!(" {} (kiln's wasmparser) | kiln / it |", t.version),
            "---|---|".to_string(),
        ),
        None => (String::new(), String::new()),
    }
}

/// The cells this column adds to a row: its time and kiln's ratio to it,
/// blank for a row it was not timed in.
pub fn cells(tool: Option<&SameParser>, kiln: Duration, time: Option<Duration>) -> String {
    match (tool, time) {
        (None, _) => String::new(),
        (Some(_), None) => " | |".to_string(),
        (Some(_), Some(t)) => format!(
            " {:.1} ms | {:.2}x |",
            t.as_secs_f64() * 1e3,
            kiln.as_secs_f64() / t.as_secs_f64()
        ),
    }
}
