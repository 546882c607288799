//! Locked dependencies from before wasm32-wasip2 was stable, and the `cargo update` that moves them.
//!
//! Published crates often ship a Cargo.lock pinning releases (older rustix,
//! lexopt) that use the standard library's WASI extensions while they were
//! still unstable on wasm32-wasip2: rustc rejects them with E0658 ("use of
//! unstable library feature `wasip2`") or, where the crate turns the
//! feature on itself, E0554. When a cargo build fails, kiln asks cargo for
//! the compiler's messages as JSON, finds the registry packages that failed
//! this way, and checks with `cargo update --dry-run` what updating them
//! would change.

use anyhow::{Context, Result};
use cargo_metadata::Message;
use std::path::Path;
use std::process::{Command, Stdio};

/// A locked registry release that failed to compile because it uses an
/// unstable WASI feature of the standard library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatible {
    /// The package's name.
    pub name: String,
    /// Its locked version.
    pub version: String,
    /// The compiler's error code (`E0658` or `E0554`).
    pub code: String,
    /// The unstable feature (`wasip2`).
    pub feature: String,
}

impl Incompatible {
    /// `NAME@VERSION`, the package spec `cargo update -p` takes.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// The resolved dependency graph for a target, from `cargo metadata`.
pub struct Graph {
    metadata: cargo_metadata::Metadata,
}

/// What depends on a set of packages, one level up.
#[derive(Debug, Default)]
pub struct Dependents {
    /// Registry packages, as `(name, version)`: `cargo update -p` can
    /// move them.
    pub registry: Vec<(String, String)>,
    /// Workspace members and path or git packages, as `name version`:
    /// only an edit of a requirement moves what they hold.
    pub members: Vec<String>,
}

impl Graph {
    /// `cargo metadata` with dependencies, for `triple` only.
    pub fn read(manifest: &Path, triple: &str, offline: bool) -> Result<Graph> {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.cargo_path(crate::toolchain::cargo())
            .manifest_path(manifest);
        let mut other = vec!["--filter-platform".to_string(), triple.to_string()];
        if offline {
            other.push("--offline".to_string());
        }
        cmd.other_options(other);
        let metadata = cmd.exec().with_context(|| {
            format!(
                "failed to read the dependency graph of `{}`",
                manifest.display()
            )
        })?;
        Ok(Graph { metadata })
    }

    /// The packages that depend directly on any of `packages`.
    pub fn dependents(&self, packages: &[(String, String)]) -> Dependents {
        let ids: Vec<&cargo_metadata::PackageId> = self
            .metadata
            .packages
            .iter()
            .filter(|p| {
                packages
                    .iter()
                    .any(|(n, v)| p.name.as_str() == n && p.version.to_string() == *v)
            })
            .map(|p| &p.id)
            .collect();
        let mut out = Dependents::default();
        let Some(resolve) = &self.metadata.resolve else {
            return out;
        };
        for node in &resolve.nodes {
            if !node.deps.iter().any(|d| ids.contains(&&d.pkg)) {
                continue;
            }
            let Some(p) = self.metadata.packages.iter().find(|p| p.id == node.id) else {
                continue;
            };
            let entry = (p.name.to_string(), p.version.to_string());
            if registry_package(&p.id.repr).is_some() {
                if !out.registry.contains(&entry) {
                    out.registry.push(entry);
                }
            } else {
                out.members.push(format!("{} {}", entry.0, entry.1));
            }
        }
        out
    }
}

/// One line of what `cargo update` changed (or would change) in Cargo.lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockChange {
    /// Cargo's verb: `Updating`, `Downgrading`, `Adding`, `Removing`.
    pub verb: String,
    /// The package's name.
    pub name: String,
    /// The version before, when there was one.
    pub from: Option<String>,
    /// The version after, when there is one.
    pub to: Option<String>,
}

impl LockChange {
    /// Cargo's verb in the past tense (`Updated`, `Added`), for a status
    /// line after the change.
    pub fn done(&self) -> &'static str {
        match self.verb.as_str() {
            "Downgrading" => "Downgraded",
            "Adding" => "Added",
            "Removing" => "Removed",
            _ => "Updated",
        }
    }

    /// `NAME A -> B`, `NAME B` or `NAME A`.
    pub fn versions(&self) -> String {
        match (&self.from, &self.to) {
            (Some(a), Some(b)) => format!("{} {a} -> {b}", self.name),
            (Some(v), None) | (None, Some(v)) => format!("{} {v}", self.name),
            (None, None) => self.name.clone(),
        }
    }
}

impl std::fmt::Display for LockChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.from, &self.to) {
            (Some(a), Some(b)) => write!(f, "{} {a} -> {b}", self.name),
            (None, Some(b)) => write!(f, "{} {b} (added)", self.name),
            (Some(a), None) => write!(f, "{} {a} (removed)", self.name),
            (None, None) => write!(f, "{}", self.name),
        }
    }
}

/// Runs `cargo` (a `cargo build` command with `--message-format=json`)
/// again, its own output discarded, and returns the registry
/// packages whose compilation failed on an unstable WASI feature. Only
/// the crates that failed are compiled again; the rest are fresh.
pub fn find_incompatible(mut cargo: Command) -> Result<Vec<Incompatible>> {
    let out = cargo
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("failed to run cargo again for its compiler messages")?;
    Ok(incompatible_in(&out.stdout))
}

/// The failing registry releases in cargo's JSON messages.
fn incompatible_in(messages: &[u8]) -> Vec<Incompatible> {
    let mut found: Vec<Incompatible> = Vec::new();
    for message in Message::parse_stream(messages) {
        let Ok(Message::CompilerMessage(m)) = message else {
            continue;
        };
        let Some((name, version)) = registry_package(&m.package_id.repr) else {
            continue;
        };
        let Some(code) = m.message.code.as_ref().map(|c| c.code.clone()) else {
            continue;
        };
        let feature = match code.as_str() {
            "E0658" => unstable_feature(&m.message.message),
            // `#![feature(wasip2)]` on the stable channel: the feature is
            // named in the highlighted source.
            "E0554" => m
                .message
                .spans
                .iter()
                .flat_map(|s| &s.text)
                .find_map(|t| feature_attribute(&t.text)),
            _ => None,
        };
        let Some(feature) = feature.filter(|f| f.starts_with("wasi")) else {
            continue;
        };
        let item = Incompatible {
            name,
            version,
            code,
            feature,
        };
        if !found
            .iter()
            .any(|f| f.name == item.name && f.version == item.version)
        {
            found.push(item);
        }
    }
    found
}

/// The name and version of a registry package from cargo's package id
/// (`registry+URL#NAME@VERSION`, `sparse+URL#NAME@VERSION`); `None` for
/// path and git packages, which `cargo update` cannot move.
fn registry_package(id: &str) -> Option<(String, String)> {
    let (source, fragment) = id.split_once('#')?;
    if !(source.starts_with("registry+") || source.starts_with("sparse+")) {
        return None;
    }
    let (name, version) = match fragment.split_once('@') {
        Some((n, v)) => (n.to_string(), v.to_string()),
        // The name is left out when it is the URL's last segment.
        None => (source.rsplit('/').next()?.to_string(), fragment.to_string()),
    };
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

/// The feature of rustc's "use of unstable library feature `NAME`".
fn unstable_feature(message: &str) -> Option<String> {
    let rest = message.strip_prefix("use of unstable library feature `")?;
    Some(rest.split_once('`')?.0.to_string())
}

/// The first feature named in a `feature(...)` attribute on a source line.
fn feature_attribute(line: &str) -> Option<String> {
    let start = line.find("feature(")? + "feature(".len();
    let inner = &line[start..];
    let inner = &inner[..inner.find(')').unwrap_or(inner.len())];
    inner
        .split(',')
        .map(str::trim)
        .find(|f| f.starts_with("wasi"))
        .map(str::to_string)
}

/// `cargo update -p SPEC...` for the manifest's workspace; a dry run
/// unless `apply`. Returns what cargo reported it changed (or would).
pub fn cargo_update(
    manifest: &Path,
    specs: &[String],
    offline: bool,
    apply: bool,
) -> Result<Vec<LockChange>> {
    let mut cmd = Command::new(crate::toolchain::cargo());
    cmd.arg("update").arg("--manifest-path").arg(manifest);
    if !apply {
        cmd.arg("--dry-run");
    }
    if offline {
        cmd.arg("--offline");
    }
    for spec in specs {
        cmd.args(["-p", spec]);
    }
    let out = kiln_process::output(&mut cmd).with_context(|| {
        format!(
            "`cargo update{} -p {}` failed",
            if apply { "" } else { " --dry-run" },
            specs.join(" -p ")
        )
    })?;
    Ok(parse_changes(&String::from_utf8_lossy(&out.stderr)))
}

/// The package lines of `cargo update`'s status output:
/// `Updating NAME vA -> vB (available: …)`, `Adding NAME vB`,
/// `Removing NAME vA`. Lines about the index are not packages and are
/// skipped.
fn parse_changes(stderr: &str) -> Vec<LockChange> {
    let version = |v: &str| v.strip_prefix('v').map(str::to_string);
    stderr
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (verb, name) = (*words.first()?, *words.get(1)?);
            let first = version(words.get(2)?)?;
            let change = |from, to| LockChange {
                verb: verb.to_string(),
                name: name.to_string(),
                from,
                to,
            };
            match verb {
                "Updating" | "Downgrading" | "Upgrading" if words.get(3) == Some(&"->") => {
                    Some(change(Some(first), version(words.get(4)?)))
                }
                "Adding" => Some(change(None, Some(first))),
                "Removing" => Some(change(Some(first), None)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registry_package_ids() {
        assert_eq!(
            registry_package("registry+https://github.com/rust-lang/crates.io-index#lexopt@0.3.0"),
            Some(("lexopt".into(), "0.3.0".into()))
        );
        assert_eq!(
            registry_package("sparse+https://example.com/index/#rustix@0.38.34"),
            Some(("rustix".into(), "0.38.34".into()))
        );
        assert_eq!(registry_package("path+file:///src/app#0.1.0"), None);
        assert_eq!(registry_package("git+https://x/y#a@1.0.0"), None);
        assert_eq!(registry_package("nonsense"), None);
    }

    /// A compiler message as cargo writes it, trimmed to what kiln reads.
    fn message(id: &str, code: &str, text: &str, source: &str) -> String {
        serde_json::json!({
            "reason": "compiler-message",
            "package_id": id,
            "manifest_path": "/registry/x/Cargo.toml",
            "target": {"kind": ["lib"], "crate_types": ["lib"], "name": "x",
                "src_path": "/registry/x/src/lib.rs", "edition": "2021",
                "doc": true, "doctest": true, "test": true},
            "message": {
                "$message_type": "diagnostic", "rendered": text, "children": [],
                "level": "error", "message": text,
                "code": {"code": code, "explanation": null},
                "spans": [{"byte_start": 0, "byte_end": 1, "column_start": 1,
                    "column_end": 2, "line_start": 1, "line_end": 1,
                    "expansion": null, "file_name": "src/lib.rs",
                    "is_primary": true, "label": null,
                    "suggested_replacement": null, "suggestion_applicability": null,
                    "text": [{"text": source, "highlight_start": 1, "highlight_end": 2}]}]
            }
        })
        .to_string()
    }

    #[test]
    fn finds_registry_releases_that_fail_on_wasi_features() {
        let crates_io = "registry+https://github.com/rust-lang/crates.io-index";
        let unstable = "use of unstable library feature `wasip2`";
        let lines = [
            message(
                &format!("{crates_io}#lexopt@0.3.0"),
                "E0658",
                unstable,
                "use std::os::wasi::ffi::OsStrExt;",
            ),
            // The same release again is one finding.
            message(
                &format!("{crates_io}#lexopt@0.3.0"),
                "E0658",
                unstable,
                "OsStringExt",
            ),
            message(
                &format!("{crates_io}#rustix@0.38.44"),
                "E0554",
                "`#![feature]` may not be used on the stable release channel",
                "    feature(wasip2)",
            ),
            // Not WASI, not a registry package, not this error: none of
            // these is kiln's to update.
            message(
                &format!("{crates_io}#nightly@1.0.0"),
                "E0658",
                "use of unstable library feature `core_intrinsics`",
                "",
            ),
            message("path+file:///src/app#0.1.0", "E0658", unstable, ""),
            message(
                &format!("{crates_io}#typo@1.0.0"),
                "E0308",
                "mismatched types",
                "",
            ),
            "not json".to_string(),
        ];
        let found = incompatible_in(lines.join("\n").as_bytes());
        let found: Vec<String> = found
            .iter()
            .map(|i| format!("{} {} {}", i.spec(), i.code, i.feature))
            .collect();
        assert_eq!(
            found,
            ["lexopt@0.3.0 E0658 wasip2", "rustix@0.38.44 E0554 wasip2"]
        );
    }

    #[test]
    fn reads_features() {
        assert_eq!(
            unstable_feature("use of unstable library feature `wasip2`").as_deref(),
            Some("wasip2")
        );
        assert_eq!(unstable_feature("mismatched types"), None);
        assert_eq!(
            feature_attribute("    feature(wasip2)").as_deref(),
            Some("wasip2")
        );
        assert_eq!(
            feature_attribute("#![feature(never_type, wasi_ext)]").as_deref(),
            Some("wasi_ext")
        );
        assert_eq!(feature_attribute("feature(never_type)"), None);
    }

    #[test]
    fn reads_update_lines() {
        let out = "    Updating crates.io index\n     Locking 2 packages to latest compatible versions\n    Updating rustix v0.38.42 -> v0.38.44 (available: v1.1.6)\n      Adding foo v1.0.0\n    Removing bar v0.2.0\n Downgrading baz v2.0.0 -> v1.9.0\nwarning: not updating lockfile due to dry run\n";
        let changes: Vec<String> = parse_changes(out).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            changes,
            [
                "rustix 0.38.42 -> 0.38.44",
                "foo 1.0.0 (added)",
                "bar 0.2.0 (removed)",
                "baz 2.0.0 -> 1.9.0"
            ]
        );
    }
}
