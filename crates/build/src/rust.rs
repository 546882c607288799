//! The Rust driver: `cargo build` for a wasm target, the artifact read from cargo's messages.
//!
//! The package and target are picked with cargo_metadata; the artifact's path
//! comes from cargo's JSON messages.

use crate::Built;
use crate::rust_update::{self, Incompatible, LockChange};
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
    /// When registry dependencies fail on an unstable WASI feature, run
    /// `cargo update -p NAME@VERSION` for them and build again (up to
    /// [`MAX_UPDATE_ROUNDS`] times). This writes Cargo.lock.
    pub update_incompatible: bool,
}

/// How many rounds of `cargo update` `--update-incompatible` runs before
/// it gives up: each round moves the releases that failed in the build
/// before, which can uncover another failing dependency.
pub const MAX_UPDATE_ROUNDS: usize = 4;

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
        // The `cargo build` with a message format: the build has cargo
        // render diagnostics, a failure's diagnosis reads them as JSON.
        let cargo_build = |message_format: &str| {
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
                .arg(format!("--message-format={message_format}"));
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
            cmd
        };

        reporter.status(
            "Building",
            &format!("{} v{} ({triple})", package.name, package.version),
        );
        let compile_started = std::time::Instant::now();
        let mut target_check = Some(target_check);
        let mut round = 0;
        let wasm_path = loop {
            let mut cmd = cargo_build("json-render-diagnostics");
            let (status, wasm_path) = run_cargo(&mut cmd, &package.id, &target.name)?;
            if status.success() {
                break wasm_path;
            }
            // A missing target explains any failure.
            if let Some(check) = target_check.take()
                && let Ok(Err(missing)) = check.join()
            {
                return Err(missing);
            }
            let failed = || {
                format!(
                    "cargo could not build `{}` for {triple}; its errors are shown above",
                    package.name
                )
            };
            // A diagnosis that cannot run leaves cargo's own failure.
            let incompatible =
                rust_update::find_incompatible(cargo_build("json")).unwrap_or_default();
            if incompatible.is_empty() {
                // `check_status` fails: the status is not a success.
                kiln_process::check_status(&cmd, status).with_context(failed)?;
                bail!("{}", failed());
            }
            let fix = UpdatePlan::new(manifest, incompatible, opts)?;
            if !opts.update_incompatible {
                return Err(fix.suggestion(&package.name, triple));
            }
            if round == MAX_UPDATE_ROUNDS {
                return Err(hinted(
                    format!(
                        "dependencies of `{}` still fail on {triple} after {MAX_UPDATE_ROUNDS} rounds of `cargo update`: {}",
                        package.name,
                        fix.described()
                    ),
                    "see the compiler's errors above; a newer release of the crate that depends on them may be needed",
                ));
            }
            round += 1;
            reporter.warn(&format!(
                "Cargo.lock pins {} from before {triple} was stable, updating as asked: {}",
                fix.releases(),
                fix.described()
            ));
            reporter.status("Updating", &format!("Cargo.lock: `{}`", fix.command()));
            let changes = rust_update::cargo_update(manifest, &fix.specs(), opts.offline, true)?;
            for change in &changes {
                reporter.status(change.done(), &change.versions());
            }
        };
        let compile_time = compile_started.elapsed();
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

/// Runs a `cargo build` with JSON messages on stdout and returns how it
/// exited and the `.wasm` file cargo reported for `target` of `package`.
fn run_cargo(
    cmd: &mut Command,
    package: &cargo_metadata::PackageId,
    target: &str,
) -> Result<(std::process::ExitStatus, Option<std::path::PathBuf>)> {
    let mut child = kiln_process::spawn_streaming(cmd).context("failed to run cargo")?;
    let stdout = child
        .stdout
        .take()
        .context("cargo's output pipe was not available")?;
    let mut wasm_path = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.context("failed to read cargo's build messages")?;
        if let Message::CompilerArtifact(artifact) = message
            && artifact.package_id == *package
            && artifact.target.name == target
            && let Some(file) = artifact
                .filenames
                .iter()
                .find(|f| f.extension() == Some("wasm"))
        {
            wasm_path = Some(file.clone().into_std_path_buf());
        }
    }
    let status = child.wait().context("failed to wait for cargo")?;
    Ok((status, wasm_path))
}

/// The `cargo update` that moves the locked releases that failed, with
/// what its dry run said it would change.
struct UpdatePlan {
    incompatible: Vec<Incompatible>,
    /// The `NAME@VERSION` specs to update: the failing releases, or the
    /// registry packages that hold one of them back.
    specs: Vec<String>,
    changes: Vec<LockChange>,
}

/// How far up the dependency graph kiln looks for a package whose update
/// moves a failing release that cannot move by itself.
const MAX_DEPENDENT_LEVELS: usize = 3;

impl UpdatePlan {
    /// Finds the smallest `cargo update -p` that moves every failing
    /// release, checking each candidate with `cargo update --dry-run`:
    /// first the releases themselves (`-p NAME@VERSION`, to the newest
    /// release their dependents allow); for one that is already there, the
    /// registry packages that depend on it, then theirs. Fails naming the
    /// release when nothing in reach moves it.
    fn new(manifest: &Path, incompatible: Vec<Incompatible>, opts: &RustOptions) -> Result<Self> {
        let triple = opts.triple.as_deref().unwrap_or("wasm32-wasip2");
        // Per failing release, the packages whose update should move it.
        let mut candidates: Vec<Vec<(String, String)>> = incompatible
            .iter()
            .map(|i| vec![(i.name.clone(), i.version.clone())])
            .collect();
        let mut graph = None;
        let mut level = 0;
        loop {
            let mut specs: Vec<String> = candidates
                .iter()
                .flatten()
                .map(|(n, v)| format!("{n}@{v}"))
                .collect();
            specs.sort();
            specs.dedup();
            let changes = rust_update::cargo_update(manifest, &specs, opts.offline, false)?;
            let moved = |i: &Incompatible| {
                changes
                    .iter()
                    .any(|c| c.name == i.name && c.from.as_deref() == Some(i.version.as_str()))
            };
            if incompatible.iter().all(moved) {
                return Ok(UpdatePlan {
                    incompatible,
                    specs,
                    changes,
                });
            }
            let graph = match &mut graph {
                Some(g) => g,
                None => graph.insert(rust_update::Graph::read(manifest, triple, opts.offline)?),
            };
            for (i, item) in incompatible.iter().enumerate() {
                if moved(item) {
                    continue;
                }
                let up = graph.dependents(&candidates[i]);
                candidates[i] = up.registry;
                if candidates[i].is_empty() || level == MAX_DEPENDENT_LEVELS {
                    let held = if up.members.is_empty() {
                        "no `cargo update` kiln tried moves it".to_string()
                    } else {
                        format!(
                            "the requirement of {} holds it back",
                            up.members
                                .iter()
                                .map(|m| format!("`{m}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    return Err(hinted(
                        format!(
                            "Cargo.lock pins {}, which fails on {triple}, and {held}",
                            describe(item)
                        ),
                        format!(
                            "`cargo tree -i {} --target {triple}` shows what requires it: \
                             raise that requirement in Cargo.toml to a release that builds for {triple}",
                            item.spec()
                        ),
                    ));
                }
            }
            level += 1;
        }
    }

    /// The `NAME@VERSION` specs to update.
    fn specs(&self) -> Vec<String> {
        self.specs.clone()
    }

    /// The `cargo update` command line.
    fn command(&self) -> String {
        format!("cargo update -p {}", self.specs().join(" -p "))
    }

    /// The failing releases, in words.
    fn described(&self) -> String {
        self.incompatible
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// "a release" or "releases".
    fn releases(&self) -> &'static str {
        if self.incompatible.len() == 1 {
            "a release"
        } else {
            "releases"
        }
    }

    /// The error of a build that stops here: which releases failed, the
    /// command that moves them and what its dry run would change.
    fn suggestion(&self, package: &str, triple: &str) -> anyhow::Error {
        let changes = self
            .changes
            .iter()
            .map(LockChange::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        hinted(
            format!(
                "cargo could not build `{package}` for {triple}: Cargo.lock pins {} from before {triple} was stable: {}",
                self.releases(),
                self.described()
            ),
            format!(
                "`{}` would change {changes} (its dry run says). \
                 Run it, or pass `--update-incompatible` to kiln, which runs it and builds again",
                self.command(),
            ),
        )
    }
}

/// `NAME` VERSION (it uses the unstable library feature `F`, E0658), or
/// (it turns on the unstable feature `F`, E0554).
fn describe(i: &Incompatible) -> String {
    let what = if i.code == "E0554" {
        "turns on the unstable feature"
    } else {
        "uses the unstable library feature"
    };
    format!(
        "`{}` {} (it {what} `{}`, {})",
        i.name, i.version, i.feature, i.code
    )
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
