//! `kiln.toml`: the manifest of C projects, and of Go projects that need more than `go.mod`.
//!
//! Its schema is documented in docs/kiln-toml.md.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole `kiln.toml`. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KilnToml {
    /// `[package]`.
    #[serde(default)]
    pub package: Option<PackageSection>,
    /// `[build]`.
    #[serde(default)]
    pub build: BuildSection,
    /// `[publish]`: where `kiln publish` sends the component.
    #[serde(default)]
    pub publish: PublishSection,
    /// `[compile]`: the precompiled artifacts `kiln publish` makes.
    #[serde(default)]
    pub compile: CompileSection,
    /// `[sign]`: how `kiln publish` signs.
    #[serde(default)]
    pub sign: SignSection,
    /// `[audit]`: the audit policy (docs/audit-policy.md), read by the
    /// audit stage itself.
    #[serde(default)]
    pub audit: Option<toml::Table>,
}

/// `[publish]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PublishSection {
    /// The destination: `REGISTRY/REPO[:TAG]`, `oci:DIR[:TAG]` or
    /// `NAME[:TAG]` (default: the package name and version in the local
    /// layout `target/kiln/oci`).
    pub to: Option<String>,
    /// Whether to make, push and sign an SBOM (default true).
    pub sbom: Option<bool>,
}

/// `[compile]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompileSection {
    /// Target triples, or `["all"]` (default: this host's); `[]` makes none.
    pub targets: Option<Vec<String>>,
    /// `baseline` (default), `native`, or presets and features.
    pub cpu: Option<String>,
}

/// `[sign]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignSection {
    /// The private key, relative to the manifest's directory.
    pub key: Option<PathBuf>,
    /// `bundle` (default) or `legacy`.
    pub format: Option<kiln_core::SignatureFormat>,
}

/// The `kiln publish` settings of a project, from kiln.toml or, for a Rust
/// project without one, from `[package.metadata.kiln]` in Cargo.toml.
#[derive(Debug, Clone, Default)]
pub struct PublishSettings {
    /// The file they were read from, if any.
    pub file: Option<PathBuf>,
    /// `[publish]`.
    pub publish: PublishSection,
    /// `[compile]`.
    pub compile: CompileSection,
    /// `[sign]`, with the key made relative to the current directory.
    pub sign: SignSection,
    /// `[audit]` as TOML text (a policy document), with where it came from.
    pub audit: Option<(String, String)>,
}

/// `[package.metadata.kiln]`: the same tables as kiln.toml without `[build]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CargoKiln {
    #[serde(default)]
    publish: PublishSection,
    #[serde(default)]
    compile: CompileSection,
    #[serde(default)]
    sign: SignSection,
    #[serde(default)]
    audit: Option<toml::Table>,
}

/// Reads the publish settings of `project`.
pub fn publish_settings(project: &crate::Project) -> Result<PublishSettings> {
    if let Some(m) = &project.kiln_toml {
        // Already parsed when the project was found.
        return kiln_toml_settings(&project.root.join("kiln.toml"), m);
    }
    if project.lang == kiln_core::Lang::Rust && project.manifest.is_file() {
        let text = std::fs::read_to_string(&project.manifest)
            .with_context(|| format!("failed to read `{}`", project.manifest.display()))?;
        return publish_settings_from(&project.manifest, &text);
    }
    Ok(PublishSettings::default())
}

/// The publish settings in the text of `manifest`, read from nothing else:
/// a file named `kiln.toml` is a kiln.toml, any other a Cargo.toml whose
/// `[package.metadata.kiln]` holds them (the defaults when it has none).
/// The signing key's path is joined to `manifest`'s directory.
pub fn publish_settings_from(manifest: &Path, text: &str) -> Result<PublishSettings> {
    if manifest.file_name() == Some("kiln.toml".as_ref()) {
        let m =
            parse(text).with_context(|| format!("invalid manifest `{}`", manifest.display()))?;
        return kiln_toml_settings(manifest, &m);
    }
    #[derive(Deserialize)]
    struct CargoToml {
        package: Option<CargoPackage>,
    }
    #[derive(Deserialize)]
    struct CargoPackage {
        metadata: Option<CargoMetadata>,
    }
    #[derive(Deserialize)]
    struct CargoMetadata {
        kiln: Option<CargoKiln>,
    }
    let cargo: CargoToml = toml::from_str(text).with_context(|| {
        format!(
            "invalid `[package.metadata.kiln]` in `{}`",
            manifest.display()
        )
    })?;
    match cargo.package.and_then(|p| p.metadata).and_then(|m| m.kiln) {
        Some(k) => settings(
            manifest,
            k.publish,
            k.compile,
            k.sign,
            k.audit,
            format!("{} [package.metadata.kiln.audit]", manifest.display()),
        ),
        None => Ok(PublishSettings::default()),
    }
}

fn kiln_toml_settings(file: &Path, m: &KilnToml) -> Result<PublishSettings> {
    settings(
        file,
        m.publish.clone(),
        m.compile.clone(),
        m.sign.clone(),
        m.audit.clone(),
        format!("{} [audit]", file.display()),
    )
}

fn settings(
    file: &Path,
    publish: PublishSection,
    compile: CompileSection,
    mut sign: SignSection,
    audit: Option<toml::Table>,
    origin: String,
) -> Result<PublishSettings> {
    let dir = file.parent().unwrap_or(Path::new("."));
    sign.key = sign.key.map(|k| dir.join(k));
    let audit = match audit {
        Some(table) => Some((
            toml::to_string(&table).context("failed to re-encode `[audit]`")?,
            origin,
        )),
        None => None,
    };
    Ok(PublishSettings {
        file: Some(file.to_path_buf()),
        publish,
        compile,
        sign,
        audit,
    })
}

/// `[package]`: what is embedded as the component's metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PackageSection {
    /// Package name; the output file is `<name>.wasm`.
    pub name: String,
    /// Package version.
    pub version: Option<String>,
    /// One-line description.
    pub description: Option<String>,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// Repository URL.
    pub repository: Option<String>,
    /// Homepage URL.
    pub homepage: Option<String>,
}

impl KilnToml {
    /// The package metadata `[package]` declares, for a package called
    /// `name` at source `revision`.
    pub fn metadata(&self, name: &str, revision: Option<String>) -> kiln_core::PackageMetadata {
        let p = self.package.clone().unwrap_or_default();
        kiln_core::PackageMetadata {
            name: Some(name.to_string()),
            version: p.version,
            authors: (!p.authors.is_empty()).then(|| p.authors.join(", ")),
            description: p.description,
            licenses: p.license,
            source: p.repository,
            homepage: p.homepage,
            revision,
        }
    }
}

/// `language` in `[build]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// C, compiled with clang.
    C,
    /// Go, compiled with `go build`.
    Go,
    /// Rust, compiled with cargo (for a kiln.toml beside Cargo.toml).
    Rust,
}

/// Whether the project is a program or a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectKind {
    /// A program with `main`: componentized with the command adapter.
    Command,
    /// A library exporting a WIT world: componentized with the reactor adapter.
    Library,
}

/// An optimization level: 0-3, "s" or "z".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OptLevel {
    /// `0`..`3`.
    Number(u8),
    /// `"s"`, `"z"`, or a number as a string.
    Text(String),
}

impl OptLevel {
    /// The clang flag, e.g. `-O2`, or an error for an unknown level.
    pub fn flag(&self) -> Result<String> {
        let level = match self {
            OptLevel::Number(n) => n.to_string(),
            OptLevel::Text(t) => t.clone(),
        };
        match level.as_str() {
            "0" | "1" | "2" | "3" | "s" | "z" => Ok(format!("-O{level}")),
            other => anyhow::bail!(
                "`opt-level = {other}` is not an optimization level; use 0, 1, 2, 3, \"s\" or \"z\""
            ),
        }
    }
}

/// `[build]`: how to build the project.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildSection {
    /// `c`, `go` or `rust`; inferred from the files beside kiln.toml when unset.
    pub language: Option<Language>,
    /// `command` or `library`; by default a project with a `wit/` world is a
    /// library and anything else a command.
    pub kind: Option<ProjectKind>,
    /// C sources: paths or globs relative to the project (default `src/**/*.c`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// C include directories.
    #[serde(default)]
    pub include_dirs: Vec<String>,
    /// C preprocessor defines, `NAME` or `NAME=VALUE`.
    #[serde(default)]
    pub defines: Vec<String>,
    /// Extra compiler flags.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Extra linker flags (C), or `-ldflags` (Go).
    #[serde(default)]
    pub ldflags: Vec<String>,
    /// Optimization level for C (default 2).
    pub opt_level: Option<OptLevel>,
    /// The WIT directory or file (default `wit` when it exists).
    pub wit: Option<PathBuf>,
    /// The world in it to build (default: its only world).
    pub world: Option<String>,
    /// For Makefile and CMake projects: the .wasm the build writes.
    pub output: Option<PathBuf>,
    /// For CMake projects: the executable target to build (default: the
    /// project's only executable).
    pub cmake_target: Option<String>,
    /// Go build tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// For Go: the package to build, relative to the module root (e.g.
    /// `./cmd/hello`; default: the module root's package).
    pub main: Option<PathBuf>,
    /// C: wasi-libc's emulations of what WASI lacks, each adding its
    /// `-D_WASI_EMULATED_*` define and `-lwasi-emulated-*` library.
    #[serde(default)]
    pub emulate: Vec<Emulation>,
}

/// One of wasi-libc's emulations of a POSIX facility WASI lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Emulation {
    /// `signal()` and `raise()` within the process (`signal.h`).
    Signal,
    /// `mmap()` of anonymous memory and of files, copied in (`sys/mman.h`).
    Mman,
    /// `clock()`, `times()` and `getrusage()` from the wall clock.
    ProcessClocks,
    /// `getpid()`, returning a placeholder.
    Getpid,
}

impl Emulation {
    /// Every emulation.
    pub const ALL: [Emulation; 4] = [
        Emulation::Signal,
        Emulation::Mman,
        Emulation::ProcessClocks,
        Emulation::Getpid,
    ];

    /// Its name in kiln.toml, e.g. `process-clocks`.
    pub fn name(self) -> &'static str {
        match self {
            Emulation::Signal => "signal",
            Emulation::Mman => "mman",
            Emulation::ProcessClocks => "process-clocks",
            Emulation::Getpid => "getpid",
        }
    }

    /// The define that turns it on in wasi-libc's headers, e.g.
    /// `_WASI_EMULATED_PROCESS_CLOCKS`.
    pub fn define(self) -> String {
        format!(
            "_WASI_EMULATED_{}",
            self.name().replace('-', "_").to_uppercase()
        )
    }

    /// The linker flag of its library, e.g. `-lwasi-emulated-process-clocks`.
    pub fn library(self) -> String {
        format!("-lwasi-emulated-{}", self.name())
    }

    /// The functions only its library defines.
    pub fn symbols(self) -> &'static [&'static str] {
        match self {
            Emulation::Signal => &["signal", "raise", "__SIG_IGN", "__SIG_ERR", "bsd_signal"],
            Emulation::Mman => &[
                "mmap",
                "munmap",
                "mprotect",
                "msync",
                "mremap",
                "posix_madvise",
            ],
            Emulation::ProcessClocks => &["clock", "times", "getrusage"],
            Emulation::Getpid => &["getpid"],
        }
    }
}

/// The package name: `[package] name`, checked, or `fallback()` (a
/// directory or module name) made safe. The name becomes file names under
/// `target/kiln/`, so it may hold only letters, digits, `.`, `_` and `-`
/// and may not start with `.`.
pub fn package_name(
    package: Option<&PackageSection>,
    fallback: impl FnOnce() -> String,
) -> Result<String> {
    let ok = |n: &str| {
        !n.is_empty()
            && !n.starts_with('.')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    match package {
        Some(p) if ok(&p.name) => Ok(p.name.clone()),
        Some(p) => anyhow::bail!(
            "`[package] name = {:?}` in kiln.toml is not a valid name: use letters, digits, `.`, `_` and `-`, not starting with `.`",
            p.name
        ),
        None => {
            let cleaned: String = fallback()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let cleaned = cleaned.trim_start_matches('.').to_string();
            Ok(if cleaned.is_empty() {
                "component".to_string()
            } else {
                cleaned
            })
        }
    }
}

/// Reads and checks `kiln.toml`; errors name the file, line and key.
pub fn read(path: &Path) -> Result<KilnToml> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    parse(&text).with_context(|| format!("invalid manifest `{}`", path.display()))
}

/// Parses the text of a `kiln.toml`.
pub fn parse(text: &str) -> Result<KilnToml> {
    Ok(toml::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_manifest_parses() {
        let m = parse(
            r#"
            [package]
            name = "hello"
            version = "1.0.0"
            authors = ["A <a@example.com>"]
            [build]
            language = "c"
            sources = ["src/*.c"]
            defines = ["NDEBUG", "LEVEL=2"]
            opt-level = "s"
            "#,
        )
        .unwrap();
        assert_eq!(m.package.unwrap().name, "hello");
        assert_eq!(m.build.language, Some(Language::C));
        assert_eq!(m.build.opt_level.unwrap().flag().unwrap(), "-Os");
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_key() {
        let err = parse("[build]\nlanguage = \"c\"\nsourcez = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("sourcez"), "{err}");
    }

    #[test]
    fn package_names_are_checked_or_cleaned() {
        let named = |n: &str| PackageSection {
            name: n.to_string(),
            ..Default::default()
        };
        assert_eq!(
            package_name(Some(&named("ok-name_1.2")), String::new).unwrap(),
            "ok-name_1.2"
        );
        assert!(package_name(Some(&named("../../x")), String::new).is_err());
        assert!(package_name(Some(&named("")), String::new).is_err());
        assert_eq!(
            package_name(None, || "my project".into()).unwrap(),
            "my-project"
        );
        assert_eq!(package_name(None, || "..".into()).unwrap(), "component");
    }

    #[test]
    fn emulations_parse_into_defines_and_libraries() {
        let m = parse("[build]\nemulate = [\"signal\", \"process-clocks\"]\n").unwrap();
        assert_eq!(
            m.build.emulate,
            [Emulation::Signal, Emulation::ProcessClocks]
        );
        assert_eq!(
            Emulation::ProcessClocks.define(),
            "_WASI_EMULATED_PROCESS_CLOCKS"
        );
        assert_eq!(Emulation::Mman.library(), "-lwasi-emulated-mman");
        let err = parse("[build]\nemulate = [\"pthread\"]\n").unwrap_err();
        assert!(format!("{err:#}").contains("pthread"), "{err:#}");
    }

    #[test]
    fn bad_opt_level_is_an_error() {
        let m = parse("[build]\nopt-level = 7\n").unwrap();
        assert!(m.build.opt_level.unwrap().flag().is_err());
    }

    #[test]
    fn publish_settings_from_text_by_file_name() {
        let kiln = Path::new("proj/kiln.toml");
        let s = publish_settings_from(
            kiln,
            "[publish]\nto = \"oci:out\"\n[sign]\nkey = \"k.key\"\n[audit]\nextends = \"wasi-cli-pure\"\n",
        )
        .unwrap();
        assert_eq!(s.file.as_deref(), Some(kiln));
        assert_eq!(s.publish.to.as_deref(), Some("oci:out"));
        assert_eq!(s.sign.key.as_deref(), Some(Path::new("proj/k.key")));
        let (audit, origin) = s.audit.unwrap();
        assert!(audit.contains("wasi-cli-pure"), "{audit}");
        assert_eq!(origin, "proj/kiln.toml [audit]");

        let cargo = Path::new("proj/Cargo.toml");
        let s = publish_settings_from(
            cargo,
            "[package]\nname = \"x\"\n[package.metadata.kiln.compile]\ntargets = []\n",
        )
        .unwrap();
        assert_eq!(s.file.as_deref(), Some(cargo));
        assert_eq!(s.compile.targets, Some(vec![]));
        // A Cargo.toml without `[package.metadata.kiln]` has the defaults.
        let s = publish_settings_from(cargo, "[workspace]\n").unwrap();
        assert!(s.file.is_none());
    }

    #[test]
    fn publish_settings_from_hostile_text_is_an_error() {
        for (file, text, says) in [
            (
                "kiln.toml",
                "not = toml = at all",
                "invalid manifest `kiln.toml`",
            ),
            ("kiln.toml", "[sign]\nkey = 3\n", "invalid manifest"),
            (
                "kiln.toml",
                "[sign]\nformat = \"gpg\"\n",
                "invalid manifest",
            ),
            ("kiln.toml", "[publish]\nsurprise = 1\n", "invalid manifest"),
            (
                "Cargo.toml",
                "[[[",
                "invalid `[package.metadata.kiln]` in `Cargo.toml`",
            ),
            (
                "Cargo.toml",
                "package = 5\n",
                "invalid `[package.metadata.kiln]`",
            ),
            (
                "Cargo.toml",
                "[package.metadata.kiln]\nbuild = {}\n",
                "invalid `[package.metadata.kiln]`",
            ),
        ] {
            let err = format!(
                "{:#}",
                publish_settings_from(Path::new(file), text).unwrap_err()
            );
            assert!(err.contains(says), "{file}: {text:?}: {err}");
        }
    }
}
