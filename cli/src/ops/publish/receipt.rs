//! The receipt of a publish: what was built, audited, precompiled, pushed and signed.
//!
//! Its JSON is documented in docs/receipt.md and docs/receipt.schema.json.

use crate::ops::build::BuildOutput;
use kiln_core::{Digest, Target};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The receipt's format name and version.
pub const RECEIPT_SCHEMA: &str = "kiln-receipt/2";

/// What a publish did; its schema is documented in docs/receipt.md.
/// Everything outside `run` is a function of the inputs, so an unchanged
/// project publishes to the same receipt.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub schema: &'static str,
    pub dry_run: bool,
    pub project: ProjectInfo,
    pub toolchain: Toolchain,
    pub adapter: Option<AdapterInfo>,
    pub component: ComponentInfo,
    pub audit: Option<AuditInfo>,
    pub precompiled: Vec<Precompiled>,
    pub sbom: Option<SbomInfo>,
    pub pushed: Option<PushedInfo>,
    pub signatures: Vec<SignatureInfo>,
    pub attestations: Vec<AttestationInfo>,
    pub run: RunInfo,
}

#[derive(Debug, Serialize)]
pub struct ProjectInfo {
    pub path: PathBuf,
    pub language: kiln_core::Lang,
    pub name: String,
    pub version: Option<String>,
    pub settings: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Toolchain {
    pub kiln: &'static str,
    pub compiler: Option<String>,
    pub wasmtime: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AdapterInfo {
    pub kind: &'static str,
    pub name: &'static str,
    pub digest: Digest,
}

#[derive(Debug, Serialize)]
pub struct ComponentInfo {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AuditInfo {
    pub policy: String,
    pub passed: bool,
    pub findings: usize,
}

#[derive(Debug, Serialize)]
pub struct Precompiled {
    pub target: Target,
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub descriptor: kiln_aot::Descriptor,
    pub manifest: Option<Digest>,
}

#[derive(Debug, Serialize)]
pub struct SbomInfo {
    pub format: &'static str,
    pub path: PathBuf,
    pub digest: Digest,
    pub components: usize,
    pub manifest: Option<Digest>,
}

#[derive(Debug, Serialize)]
pub struct PushedInfo {
    pub reference: String,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub referrers: Vec<ReferrerInfo>,
}

#[derive(Debug, Serialize)]
pub struct ReferrerInfo {
    pub artifact_type: String,
    pub digest: Digest,
    pub target: Option<Target>,
}

#[derive(Debug, Serialize)]
pub struct SignatureInfo {
    pub subject: Digest,
    pub what: String,
    pub format: kiln_core::SignatureFormat,
    pub reference: String,
    pub signature_manifest: Digest,
}

#[derive(Debug, Serialize)]
pub struct AttestationInfo {
    pub subject: Digest,
    pub what: String,
    pub predicate_type: String,
    pub reference: String,
    pub referrer_manifest: Digest,
}

/// What varies from run to run: timings and how much work was done.
#[derive(Debug, Default, Serialize)]
pub struct RunInfo {
    pub timings_ms: BTreeMap<String, f64>,
    pub uploaded_bytes: u64,
    pub compiled: usize,
    pub from_cache: usize,
    pub signed: usize,
    pub already_signed: usize,
    pub attested: usize,
    pub already_attested: usize,
}

impl ProjectInfo {
    /// The project a component was built from; `settings` is the file its
    /// publish settings came from.
    pub fn of(out: &BuildOutput, settings: Option<&Path>) -> ProjectInfo {
        let root = &out.project.root;
        ProjectInfo {
            path: root.clone(),
            language: out.project.lang,
            name: out.built.package_name().to_string(),
            version: out.built.metadata.version.clone(),
            settings: settings.map(|f| relative(root, f)),
        }
    }
}

impl Toolchain {
    /// kiln's, the compiler's and Wasmtime's versions.
    pub fn of(out: &BuildOutput) -> Toolchain {
        Toolchain {
            kiln: env!("CARGO_PKG_VERSION"),
            compiler: out.built.language.as_ref().map(|(l, v)| format!("{l} {v}")),
            wasmtime: kiln_aot::WASMTIME_VERSION,
        }
    }
}

impl AdapterInfo {
    /// The WASI adapter a core module was componentized with.
    pub fn of(adapter: kiln_component::Adapter) -> AdapterInfo {
        AdapterInfo {
            kind: match adapter {
                kiln_component::Adapter::Command => "command",
                kiln_component::Adapter::Reactor => "reactor",
            },
            name: adapter.name(),
            digest: Digest::of(adapter.bytes()),
        }
    }
}

impl ComponentInfo {
    /// The built component: where it is, its digest, size and surface.
    pub fn of(out: &BuildOutput) -> ComponentInfo {
        ComponentInfo {
            path: relative(&out.project.root, &out.path),
            digest: out.digest,
            size: out.component.len() as u64,
            imports: out.surface.imports.clone(),
            exports: out.surface.exports.clone(),
        }
    }
}

/// `path` relative to the project root when it is inside it.
pub fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}
