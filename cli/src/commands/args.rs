//! Flags several commands share, each turned into the plain options of an operation.
//!
//! Flags several commands share, as clap structs that each turn into the plain
//! options an operation takes; not a command of its own.

use crate::ops;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach a registry.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Speak plain HTTP to the registry (the default for localhost and
    /// 127.0.0.1 unless --ca-file or --insecure is given).
    #[arg(long)]
    plain_http: bool,
    /// Trust this PEM certificate authority, or this exact server
    /// certificate, too (repeatable). A registry's own CAs and client
    /// certificate are also read from /etc/docker/certs.d/HOST[:PORT]/ and
    /// /etc/containers/certs.d/HOST[:PORT]/.
    #[arg(long, value_name = "PEM")]
    ca_file: Vec<PathBuf>,
    /// Accept any TLS certificate from the registry named (test registries
    /// only); token services and redirects on other hosts are still
    /// checked.
    #[arg(long)]
    insecure: bool,
    /// Connect timeout and deadline of each request, in seconds; blob
    /// transfers get more in proportion to their size, and a download
    /// that sends nothing for this long fails.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Attempts per request on server errors (5xx), throttling (429),
    /// dropped connections and timeouts, with exponential backoff or the
    /// registry's Retry-After (up to 60 seconds).
    #[arg(long = "retries", value_name = "N", default_value_t = 5)]
    max_attempts: u32,
}

impl RegistryArgs {
    /// The options as plain values; a zero timeout or retry count means one.
    pub fn options(&self) -> ops::registry::Options {
        ops::registry::Options {
            plain_http: self.plain_http,
            ca_files: self.ca_file.clone(),
            insecure: self.insecure,
            timeout: Duration::from_secs(self.timeout.max(1)),
            max_attempts: self.max_attempts.max(1),
        }
    }
}

/// How to build: the flags `kiln build` and `kiln publish` share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BuildFlags {
    /// The package to build in a Cargo workspace.
    #[arg(short, long, value_name = "SPEC")]
    package: Option<String>,
    /// Build the binary with this name.
    #[arg(long, value_name = "NAME", conflicts_with = "lib")]
    bin: Option<String>,
    /// Build the package's library (a `cdylib`).
    #[arg(long)]
    lib: bool,
    /// Build with the release profile.
    #[arg(short, long, conflicts_with = "profile")]
    release: bool,
    /// Build with the named cargo profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Features to enable (comma- or space-separated, repeatable).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    features: Vec<String>,
    /// Enable all features.
    #[arg(long)]
    all_features: bool,
    /// Do not enable the default features.
    #[arg(long)]
    no_default_features: bool,
    /// Require Cargo.lock to be up to date.
    #[arg(long)]
    locked: bool,
    /// When locked Rust dependencies fail to compile because they use an
    /// unstable WASI feature of the standard library (releases from before
    /// wasm32-wasip2 was stable), run `cargo update -p NAME@VERSION` for
    /// them and build again. This writes Cargo.lock.
    #[arg(long, conflicts_with = "locked")]
    update_incompatible: bool,
    /// Build without accessing the network.
    #[arg(long)]
    offline: bool,
    /// The clang to compile C with (default: `CC` when it is a clang, then
    /// `WASI_SDK_PATH`, then the newest system clang with a WASI libc).
    #[arg(long, value_name = "CC")]
    cc: Option<String>,
    /// CMake projects: the executable target to build (default: kiln.toml's
    /// `[build] cmake-target`, else the project's only executable).
    #[arg(long, value_name = "TARGET")]
    cmake_target: Option<String>,
    /// Go build tags (repeatable).
    #[arg(long = "tags", value_name = "TAGS")]
    go_tags: Vec<String>,
    /// Go `-ldflags` (repeatable).
    #[arg(long = "ldflags", value_name = "FLAGS")]
    go_ldflags: Vec<String>,
    /// Keep absolute paths in Go binaries (`-trimpath` is on by default so
    /// builds are reproducible).
    #[arg(long)]
    no_trimpath: bool,
    /// Componentize, embed metadata and validate even when the toolchain's
    /// output is the one the current component was made from.
    #[arg(long)]
    force: bool,
    /// Put `target/` here instead of in the project (for a source tree that
    /// is read-only or not yours); cargo's target directory too, for Rust.
    #[arg(long, value_name = "DIR", env = "KILN_TARGET_DIR")]
    target_dir: Option<PathBuf>,
    /// Extra arguments for the language's build tool (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    tool_args: Vec<String>,
}

impl BuildFlags {
    /// The options as plain values, with the wasm target each command takes
    /// under its own name (`--target` of `kiln build`, `--wasm-target` of
    /// `kiln publish`).
    pub fn options(&self, target: Option<String>) -> anyhow::Result<ops::build::BuildOptions> {
        let f = self.clone();
        // Made absolute here: the drivers run tools in other directories.
        let target_dir = f
            .target_dir
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| {
                std::path::absolute(&d).with_context(|| {
                    format!("failed to resolve the target directory `{}`", d.display())
                })
            })
            .transpose()?;
        Ok(ops::build::BuildOptions {
            package: f.package,
            bin: f.bin,
            lib: f.lib,
            release: f.release,
            profile: f.profile,
            features: f.features,
            all_features: f.all_features,
            no_default_features: f.no_default_features,
            locked: f.locked,
            update_incompatible: f.update_incompatible,
            offline: f.offline,
            target,
            cc: f.cc,
            cmake_target: f.cmake_target,
            go_tags: f.go_tags,
            go_ldflags: f.go_ldflags,
            no_trimpath: f.no_trimpath,
            force: f.force,
            target_dir,
            tool_args: f.tool_args,
        })
    }
}
