//! The Rust driver: `cargo build` for a wasm target, the artifact read from cargo's messages.
//!
//! The package and target are picked with cargo_metadata; the artifact's path
//! comes from cargo's JSON messages.

use crate::Built;
use crate::toolchain::{cargo, git_revision, rustc, rustc_version};
use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, MetadataCommand, Package, Target, TargetKind};
use kiln_core::{PackageMetadata, Reporter, WasmKind, hinted};
use std::io::BufReader;
use std::path::Path;
use std::process::Command;

/// The wasm targets kiln builds Rust for: wasm32-wasip2 gives a component
/// directly, wasm32-wasip1 a core module that kiln componentizes.
pub const TARGETS: &[&str] = &["wasm32-wasip2", "wasm32-wasip1"];

/// Which cargo profile to build with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Profile {
    /// `dev`, cargo's default.
    #[default]
    Dev,
    /// `--release`.
    Release,
    /// `--profile NAME`.
    Named(String),
}

/// Which target of the package to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TargetChoice {
    /// The only buildable target, or an error listing them.
    #[default]
    Auto,
    /// `--bin NAME`.
    Bin(String),
    /// `--lib`.
    Lib,
}

/// Options of a Rust build, mirroring cargo's flags.
#[derive(Debug, Clone, Default)]
pub struct RustOptions {
    /// `-p/--package`.
    pub package: Option<String>,
    /// `--bin` / `--lib`.
    pub target: TargetChoice,
    /// The cargo profile.
    pub profile: Profile,
    /// `--features`.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// `--locked`.
    pub locked: bool,
    /// `--offline`.
    pub offline: bool,
    /// The wasm target triple; `wasm32-wasip2` when unset.
    pub triple: Option<String>,
    /// `--target-dir`: where cargo, and kiln after it, put their outputs
    /// (default: cargo's own target directory).
    pub target_dir: Option<std::path::PathBuf>,
    /// Extra arguments passed to `cargo build` as they are.
    pub cargo_args: Vec<String>,
}

/// Builds the Rust project whose manifest is `manifest`.
pub fn build(manifest: &Path, opts: &RustOptions, reporter: &dyn Reporter) -> Result<Built> {
    let triple = opts.triple.as_deref().unwrap_or("wasm32-wasip2");
    if !TARGETS.contains(&triple) {
        return Err(hinted(
            format!("`{triple}` is not a wasm target kiln builds Rust for"),
            format!("use one of: {}", TARGETS.join(", ")),
        ));
    }
    let dir = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The target check, rustc's version and the git revision are separate
    // processes that need nothing else: they run while cargo works.
    std::thread::scope(|s| {
        let target_check = s.spawn(|| ensure_target_installed(dir, triple));
        let rustc = s.spawn(|| rustc_version(dir));
        let revision = s.spawn(|| git_revision(dir));
        let metadata = cached_metadata(manifest)?;
        let package = select_package(&metadata, manifest, opts.package.as_deref())?;
        let target = select_target(package, &opts.target)?;
        let is_program = target.is_kind(TargetKind::Bin);
        let mut cmd = Command::new(cargo());
        cmd.current_dir(dir)
            .arg("build")
            .arg("--manifest-path")
            .arg(manifest)
            .args([
                "--package",
                &format!("{}@{}", package.name, package.version),
            ])
            .args(["--target", triple])
            .arg("--message-format=json-render-diagnostics");
        if is_program {
            cmd.args(["--bin", &target.name]);
        } else {
            cmd.arg("--lib");
        }
        match &opts.profile {
            Profile::Dev => {}
            Profile::Release => {
                cmd.arg("--release");
            }
            Profile::Named(p) => {
                cmd.args(["--profile", p]);
            }
        }
        cmd.args(feature_args(opts));
        if opts.locked {
            cmd.arg("--locked");
        }
        if opts.offline {
            cmd.arg("--offline");
        }
        if let Some(dir) = &opts.target_dir {
            cmd.arg("--target-dir").arg(dir);
        }
        cmd.args(&opts.cargo_args);

        reporter.status(
            "Building",
            &format!("{} v{} ({triple})", package.name, package.version),
        );
        let compile_started = std::time::Instant::now();
        let mut child = kiln_process::spawn_streaming(&mut cmd).context("failed to run cargo")?;
        let stdout = child
            .stdout
            .take()
            .context("cargo's output pipe was not available")?;
        let mut wasm_path = None;
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let message = message.context("failed to read cargo's build messages")?;
            if let Message::CompilerArtifact(artifact) = message
                && artifact.package_id == package.id
                && artifact.target.name == target.name
                && let Some(file) = artifact
                    .filenames
                    .iter()
                    .find(|f| f.extension() == Some("wasm"))
            {
                wasm_path = Some(file.clone().into_std_path_buf());
            }
        }
        let status = child.wait().context("failed to wait for cargo")?;
        let compile_time = compile_started.elapsed();
        if !status.success()
            && let Ok(Err(missing)) = target_check.join()
        {
            return Err(missing);
        }
        kiln_process::check_status(&cmd, status).with_context(|| {
            format!(
                "cargo could not build `{}` for {triple}; its errors are shown above",
                package.name
            )
        })?;
        let Some(wasm_path) = wasm_path else {
            bail!(
                "cargo built `{}` but reported no .wasm file for target `{}`",
                package.name,
                target.name
            );
        };
        let wasm = kiln_core::input::Input::read(&wasm_path)?;
        let kind = WasmKind::sniff(&wasm).with_context(|| {
            format!(
                "cargo's output `{}` is not a wasm binary",
                wasm_path.display()
            )
        })?;
        let name = if is_program {
            target.name.clone()
        } else {
            package.name.to_string()
        };
        Ok(Built {
            wasm,
            toolchain_output: wasm_path,
            kind,
            is_program,
            name,
            target_dir: opts
                .target_dir
                .clone()
                .unwrap_or_else(|| metadata.target_directory.clone().into_std_path_buf()),
            metadata: PackageMetadata {
                revision: revision.join().ok().flatten(),
                ..package_metadata(package)
            },
            language: rustc
                .join()
                .ok()
                .flatten()
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
                .map(|v| ("Rust".to_string(), v)),
            embed_world: None,
            compile_time,
            sbom: crate::sbom::SbomSource::Rust {
                manifest: package.manifest_path.clone().into_std_path_buf(),
                package: package.name.to_string(),
                version: package.version.to_string(),
                triple: triple.to_string(),
                feature_args: feature_args(opts),
            },
            prepare: None,
        })
    })
}

/// The feature flags of a build, as cargo takes them.
fn feature_args(opts: &RustOptions) -> Vec<String> {
    let mut args = Vec::new();
    if !opts.features.is_empty() {
        args.extend(["--features".to_string(), opts.features.join(",")]);
    }
    if opts.all_features {
        args.push("--all-features".to_string());
    }
    if opts.no_default_features {
        args.push("--no-default-features".to_string());
    }
    args
}

/// `cargo metadata --no-deps`, remembered between runs while every input of
/// it stays the same: the workspace's manifests, the member directories
/// whose files cargo auto-discovers (`src/`, `src/bin/`), cargo
/// configuration and toolchain files up the tree, cargo itself, and the
/// environment variables that move the target directory.
fn cached_metadata(manifest: &Path) -> Result<cargo_metadata::Metadata> {
    use crate::cache::{Fingerprint, cached, env_key};
    let abs = std::path::absolute(manifest)
        .with_context(|| format!("failed to resolve `{}`", manifest.display()))?;
    let key = format!(
        "{}\n{}",
        abs.display(),
        env_key(&[
            "CARGO",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_HOME",
            "RUSTUP_TOOLCHAIN"
        ])
    );
    cached("cargo-metadata", &key, || {
        let metadata = read_metadata(manifest)?;
        let mut files = vec![
            metadata
                .workspace_root
                .join("Cargo.toml")
                .into_std_path_buf(),
        ];
        for package in metadata.workspace_packages() {
            let manifest = package.manifest_path.clone().into_std_path_buf();
            if let Some(dir) = manifest.parent() {
                files.push(dir.join("src"));
                files.push(dir.join("src/bin"));
            }
            files.push(manifest);
        }
        for dir in abs.ancestors().skip(1) {
            for name in [
                ".cargo/config.toml",
                ".cargo/config",
                "rust-toolchain.toml",
                "rust-toolchain",
            ] {
                files.push(dir.join(name));
            }
        }
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo"))
            });
        if let Some(home) = cargo_home {
            files.push(home.join("config.toml"));
            files.push(home.join("config"));
        }
        if let Some(cargo) = crate::toolchain::which(&cargo()) {
            files.push(cargo);
        }
        let fingerprints = files.iter().map(|f| Fingerprint::of(f)).collect();
        Ok((metadata, fingerprints))
    })
}

fn read_metadata(manifest: &Path) -> Result<cargo_metadata::Metadata> {
    MetadataCommand::new()
        .cargo_path(cargo())
        .manifest_path(manifest)
        .no_deps()
        .exec()
        .map_err(|e| match e {
            cargo_metadata::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => hinted(
                "`cargo` was not found on PATH",
                "install Rust with rustup (https://rustup.rs) or set `CARGO` to cargo's path",
            ),
            other => anyhow::Error::new(other),
        })
        .with_context(|| format!("failed to read the Cargo project `{}`", manifest.display()))
}

fn select_package<'a>(
    metadata: &'a cargo_metadata::Metadata,
    manifest: &Path,
    wanted: Option<&str>,
) -> Result<&'a Package> {
    let members = metadata.workspace_packages();
    let names = || {
        members
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = wanted {
        // `NAME` or `NAME@VERSION`, as cargo's package specs allow.
        let (name, version) = match wanted.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (wanted, None),
        };
        return members
            .iter()
            .copied()
            .find(|p| p.name.as_str() == name && version.is_none_or(|v| p.version.to_string() == v))
            .ok_or_else(|| {
                hinted(
                    format!("package `{wanted}` is not a member of the workspace"),
                    format!("the members are: {}", names()),
                )
            });
    }
    // The package whose manifest kiln was pointed at, even when it is a
    // member of a larger workspace.
    let manifest = std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    if let Some(package) = members
        .iter()
        .copied()
        .find(|p| std::fs::canonicalize(&p.manifest_path).is_ok_and(|m| m == manifest))
    {
        return Ok(package);
    }
    match members.as_slice() {
        [only] => Ok(only),
        [] => bail!("the workspace has no member packages"),
        _ => Err(hinted(
            "the workspace has several packages and kiln builds one at a time",
            format!(
                "choose one with `-p NAME` or run kiln in its directory; the members are: {}",
                names()
            ),
        )),
    }
}

fn is_wasm_lib(t: &Target) -> bool {
    t.is_kind(TargetKind::CDyLib)
}

fn select_target<'a>(package: &'a Package, choice: &TargetChoice) -> Result<&'a Target> {
    let bins: Vec<&Target> = package
        .targets
        .iter()
        .filter(|t| t.is_kind(TargetKind::Bin))
        .collect();
    let lib = package
        .targets
        .iter()
        .find(|t| t.is_kind(TargetKind::Lib) || t.is_kind(TargetKind::RLib) || is_wasm_lib(t));
    let cdylib_hint = "a library becomes a component only as a `cdylib`: add `[lib] crate-type = [\"cdylib\"]` to Cargo.toml";
    match choice {
        TargetChoice::Bin(name) => bins.into_iter().find(|t| &t.name == name).ok_or_else(|| {
            hinted(
                format!("package `{}` has no binary named `{name}`", package.name),
                format!(
                    "its binaries are: {}",
                    package
                        .targets
                        .iter()
                        .filter(|t| t.is_kind(TargetKind::Bin))
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }),
        TargetChoice::Lib => match lib {
            Some(l) if is_wasm_lib(l) => Ok(l),
            Some(_) => Err(hinted(
                format!("the library of `{}` is not a `cdylib`", package.name),
                cdylib_hint,
            )),
            None => bail!("package `{}` has no library target", package.name),
        },
        TargetChoice::Auto => {
            let wasm_lib = lib.filter(|l| is_wasm_lib(l));
            match (bins.as_slice(), wasm_lib) {
                ([bin], None) => Ok(bin),
                ([], Some(lib)) => Ok(lib),
                ([], None) if lib.is_some() => Err(hinted(
                    format!("the library of `{}` is not a `cdylib`", package.name),
                    cdylib_hint,
                )),
                ([], None) => bail!("package `{}` has no binary or library target", package.name),
                _ => Err(hinted(
                    format!(
                        "package `{}` has several targets kiln could build",
                        package.name
                    ),
                    format!(
                        "choose one with {}",
                        bins.iter()
                            .map(|b| format!("`--bin {}`", b.name))
                            .chain(wasm_lib.map(|_| "`--lib`".to_string()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
    }
}

/// Fails with the command that installs `triple` when the toolchain used in
/// `dir` lacks its standard library.
fn ensure_target_installed(dir: &Path, triple: &str) -> Result<()> {
    let sysroot = match kiln_process::read_stdout(
        Command::new(rustc())
            .args(["--print", "sysroot"])
            .current_dir(dir),
    ) {
        Ok(s) => s,
        Err(e) if e.is_not_found() => {
            return Err(hinted(
                "`rustc` was not found on PATH",
                "install Rust with rustup (https://rustup.rs)",
            ));
        }
        Err(e) => return Err(e).context("failed to ask rustc for its sysroot"),
    };
    let lib = Path::new(&sysroot).join("lib/rustlib").join(triple);
    if lib.is_dir() {
        return Ok(());
    }
    Err(hinted(
        format!("the Rust target `{triple}` is not installed in the toolchain at `{sysroot}`"),
        format!("install it with `rustup target add {triple}` (or `cargo xtask setup`)"),
    ))
}

fn package_metadata(package: &Package) -> PackageMetadata {
    PackageMetadata {
        name: Some(package.name.to_string()),
        version: Some(package.version.to_string()),
        authors: (!package.authors.is_empty()).then(|| package.authors.join(", ")),
        description: package.description.clone(),
        licenses: package.license.clone(),
        source: package.repository.clone(),
        homepage: package.homepage.clone(),
        revision: None,
    }
}
