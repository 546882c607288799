//! Where a `.cwasm` loads, decided without ever deserializing its code.
//!
//! The check reads the artifact's ELF header and Wasmtime engine section, and
//! its descriptor.

use crate::compile::host_compatibility_hash;
use crate::cpu::{Cpu, host_has};
use crate::descriptor::{Descriptor, WASMTIME_VERSION};
use crate::engine::engine_section;
use crate::settings::Settings;
use anyhow::Result;
use kiln_core::{Digest, Target};
use serde::Serialize;

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CheckItem {
    /// `version`, `architecture`, `cpu-features`, `settings` or `descriptor`.
    pub name: &'static str,
    /// Whether it passes.
    pub pass: bool,
    /// Why.
    pub reason: String,
}

/// Whether an artifact loads on this host with Wasmtime's default engine.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Whether every check passes.
    pub loads: bool,
    /// The Wasmtime version recorded in the artifact.
    pub artifact_version: String,
    /// The architecture of the artifact's machine code.
    pub artifact_architecture: String,
    /// Each check.
    pub checks: Vec<CheckItem>,
}

/// The version string Wasmtime writes into artifacts and compares on load:
/// its major version.
fn module_version(release: &str) -> &str {
    release.split('.').next().unwrap_or(release)
}

fn host_architecture() -> &'static str {
    Target::host()
        .as_str()
        .split('-')
        .next()
        .map_or("unknown", |a| match a {
            "riscv64gc" => "riscv64",
            other => other,
        })
}

/// Checks `cwasm` (with its descriptor when there is one) against this
/// host. `engine_version` names the Wasmtime release of the engine that
/// will load it (default: kiln's own). Errors when `cwasm` is not a
/// Wasmtime artifact at all.
pub fn check(
    cwasm: &[u8],
    descriptor: Option<&Descriptor>,
    engine_version: Option<&str>,
) -> Result<CheckReport> {
    let section = engine_section(cwasm)?;
    let arch = section.architecture();
    let version = section.version;
    let engine = engine_version.unwrap_or(WASMTIME_VERSION);
    let same = version == module_version(engine);
    let mut checks = vec![CheckItem {
        name: "version",
        pass: same,
        reason: if same {
            format!("made by Wasmtime {version}.x, and the engine is {engine}")
        } else {
            format!(
                "made by Wasmtime {version}.x, but the engine is {engine}; artifacts load only in the release line that made them"
            )
        },
    }];
    checks.push(CheckItem {
        name: "architecture",
        pass: arch == host_architecture(),
        reason: if arch == host_architecture() {
            format!("{arch} code, and this host is {arch}")
        } else {
            format!("{arch} code, but this host is {}", host_architecture())
        },
    });
    match descriptor {
        None => checks.push(CheckItem {
            name: "descriptor",
            pass: false,
            reason:
                "no descriptor beside the artifact, so its CPU features and settings are unknown"
                    .to_string(),
        }),
        Some(d) => {
            let digest = Digest::of(cwasm);
            let matches = d.artifact_digest == digest;
            checks.push(CheckItem {
                name: "descriptor",
                pass: matches,
                reason: if matches {
                    format!("describes this artifact ({digest})")
                } else {
                    format!(
                        "describes another artifact ({}), not this one ({digest})",
                        d.artifact_digest
                    )
                },
            });
            if matches {
                checks.push(cpu_check(d, arch == host_architecture()));
                checks.push(settings_check(&d.settings));
            }
        }
    }
    Ok(CheckReport {
        loads: checks.iter().all(|c| c.pass),
        artifact_version: version,
        artifact_architecture: arch.to_string(),
        checks,
    })
}

fn cpu_check(d: &Descriptor, same_architecture: bool) -> CheckItem {
    let name = "cpu-features";
    if d.cpu_features.is_empty() {
        // Descriptors always list the features; an empty list is baseline
        // code, or a descriptor written before features were listed, where
        // `native` can only be told apart by the engine hash.
        return match d.cpu {
            Cpu::Native => {
                let same = host_compatibility_hash(&Cpu::Native, &d.settings)
                    .is_ok_and(|h| h == d.compatibility_hash);
                CheckItem {
                    name,
                    pass: same,
                    reason: if same {
                        "compiled for this CPU's features".to_string()
                    } else {
                        "compiled for another CPU's native features".to_string()
                    },
                }
            }
            _ => CheckItem {
                name,
                pass: true,
                reason: "baseline features of the architecture, present on every CPU of it"
                    .to_string(),
            },
        };
    }
    let list = d.cpu_features.join(", ");
    if !same_architecture {
        return CheckItem {
            name,
            pass: false,
            reason: format!("not checked on this host's architecture: needs {list}"),
        };
    }
    let missing: Vec<&str> = d
        .cpu_features
        .iter()
        .filter(|f| host_has(f) != Some(true))
        .map(String::as_str)
        .collect();
    CheckItem {
        name,
        pass: missing.is_empty(),
        reason: if missing.is_empty() {
            format!("this CPU has every feature the code uses ({list})")
        } else {
            format!(
                "this CPU lacks (or cannot be checked for): {}",
                missing.join(", ")
            )
        },
    }
}

fn settings_check(s: &Settings) -> CheckItem {
    let differences = s.incompatibilities();
    CheckItem {
        name: "settings",
        pass: differences.is_empty(),
        reason: if differences.is_empty() {
            "compatible with the default engine's settings".to_string()
        } else {
            format!(
                "differs from the default engine in: {}",
                differences.join(", ")
            )
        },
    }
}
