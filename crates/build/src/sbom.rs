//! CycloneDX 1.5 SBOMs for built components, from what each language driver records.
//!
//! They list Rust's resolved dependency graph, Go's module list from the build
//! info in the binary, or C's source files and toolchain.
//!
//! The documents are reproducible: no wall clock (the `created` time comes
//! from the caller, i.e. `SOURCE_DATE_EPOCH`), a serial number derived from
//! the component's digest, sorted lists, and no absolute paths. The shape is
//! described in docs/sbom.md.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a build knows that its SBOM needs, recorded by each driver.
#[derive(Debug, Clone)]
pub enum SbomSource {
    /// A cargo package: the dependency graph is resolved for the wasm target
    /// with the same features the build used.
    Rust {
        /// The manifest cargo was given.
        manifest: PathBuf,
        /// The package's name.
        package: String,
        /// The package's version.
        version: String,
        /// The cargo target triple.
        triple: String,
        /// `--features`, `--all-features`, `--no-default-features` as given.
        feature_args: Vec<String>,
    },
    /// A Go module: everything is read from the build info Go writes into
    /// the binary, so nothing is re-resolved.
    Go {
        /// The toolchain's version (`go1.27.3`), which wasm binaries do not
        /// record.
        version: String,
    },
    /// A C project: its source files and the toolchain.
    C {
        /// The project directory (paths are recorded relative to it).
        root: PathBuf,
        /// The sources compiled (besides those found under `root`).
        sources: Vec<PathBuf>,
        /// The compiler's version line.
        compiler: String,
        /// The WASI sysroot the program was linked against.
        sysroot: PathBuf,
    },
}

/// A CycloneDX BOM (the subset kiln writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    /// Always `CycloneDX`.
    pub bom_format: String,
    /// `1.5`.
    pub spec_version: String,
    /// `urn:uuid:…`, derived from the component's digest.
    pub serial_number: String,
    /// Document version, 1.
    pub version: u32,
    /// The component described and the tool that described it.
    pub metadata: BomMetadata,
    /// Everything the component was built from.
    pub components: Vec<Component>,
    /// Who depends on whom, by `bom-ref`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BomMetadata {
    /// The artifact's `created` time (never the wall clock).
    pub timestamp: String,
    /// kiln.
    pub tools: Tools,
    /// The wasm component itself.
    pub component: Component,
}

/// `metadata.tools` in the 1.5 form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    /// The tools.
    pub components: Vec<Component>,
}

/// A CycloneDX component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Component {
    /// `application`, `library`, `file`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// A reference unique in the document.
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Name (or relative path, for files).
    pub name: String,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Package URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// Hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// License expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    /// Where the component comes from.
    #[serde(
        rename = "externalReferences",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_references: Vec<ExternalReference>,
    /// Free-form facts (`kiln:…` names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// A hash of a component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hash {
    /// `SHA-256`.
    pub alg: String,
    /// Lowercase hex.
    pub content: String,
}

/// A license, as an SPDX expression.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct License {
    /// The expression.
    pub expression: String,
}

/// An external reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExternalReference {
    /// `vcs`, `distribution`, `website`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL.
    pub url: String,
}

/// A name and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Property {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A node of the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dependency {
    /// The `bom-ref` of the dependent.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The `bom-ref`s it depends on.
    #[serde(rename = "dependsOn", default)]
    pub depends_on: Vec<String>,
}

/// The component the SBOM is about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its version.
    pub version: Option<&'a str>,
    /// Its license.
    pub license: Option<&'a str>,
    /// The sha256 of the final component, hex.
    pub digest_hex: &'a str,
    /// A program (`application`) or a library.
    pub is_program: bool,
    /// `created`, RFC 3339.
    pub created: &'a str,
}

fn sha256(hex: &str) -> Hash {
    Hash {
        alg: "SHA-256".to_string(),
        content: hex.to_string(),
    }
}

fn licenses(expr: Option<&str>) -> Vec<License> {
    expr.map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            vec![License {
                expression: e.to_string(),
            }]
        })
        .unwrap_or_default()
}

/// Builds the SBOM for a component. `core_module` is the toolchain's output
/// before componentizing (Go's build info lives there).
pub fn generate(source: &SbomSource, subject: &Subject, core_module: &[u8]) -> Result<Bom> {
    let root_ref = format!(
        "pkg:generic/{}{}",
        subject.name,
        subject.version.map(|v| format!("@{v}")).unwrap_or_default()
    );
    let Parts {
        mut components,
        mut dependencies,
        root_deps,
    } = match source {
        SbomSource::Rust {
            manifest,
            package,
            version,
            triple,
            feature_args,
        } => rust(manifest, package, version, triple, feature_args)?,
        SbomSource::Go { version } => go(core_module, version)?,
        SbomSource::C {
            root,
            sources,
            compiler,
            sysroot,
        } => c(root, sources, compiler, sysroot)?,
    };
    components.sort();
    dependencies.push(Dependency {
        reference: root_ref.clone(),
        depends_on: root_deps,
    });
    dependencies.sort();
    let serial = {
        let h = Sha256::digest(format!("kiln-sbom\n{}", subject.digest_hex));
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        // A name-based UUID (version 8, RFC 9562) of the component digest.
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        let x = hex::encode(b);
        format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &x[..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..]
        )
    };
    Ok(Bom {
        bom_format: "CycloneDX".to_string(),
        spec_version: "1.5".to_string(),
        serial_number: serial,
        version: 1,
        metadata: BomMetadata {
            timestamp: subject.created.to_string(),
            tools: Tools {
                components: vec![Component {
                    kind: "application".to_string(),
                    bom_ref: None,
                    name: "kiln".to_string(),
                    version: Some(env!("CARGO_PKG_VERSION").to_string()),
                    purl: None,
                    hashes: Vec::new(),
                    licenses: Vec::new(),
                    external_references: Vec::new(),
                    properties: Vec::new(),
                }],
            },
            component: Component {
                kind: if subject.is_program {
                    "application"
                } else {
                    "library"
                }
                .to_string(),
                bom_ref: Some(root_ref.clone()),
                name: subject.name.to_string(),
                version: subject.version.map(str::to_string),
                purl: Some(root_ref),
                hashes: vec![sha256(subject.digest_hex)],
                licenses: licenses(subject.license),
                external_references: Vec::new(),
                properties: vec![Property {
                    name: "kiln:artifact".to_string(),
                    value: "wasm32-wasip2 component".to_string(),
                }],
            },
        },
        components,
        dependencies,
    })
}

/// The document as written: pretty JSON with a final newline.
pub fn to_bytes(bom: &Bom) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(bom).context("failed to encode the SBOM")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// What one driver's source contributes to the document.
struct Parts {
    /// Every component but the root.
    components: Vec<Component>,
    /// Who depends on whom, below the root.
    dependencies: Vec<Dependency>,
    /// The references the root depends on directly.
    root_deps: Vec<String>,
}

/// The resolved graph for `package` (normal and build dependencies, as
/// compiled for `triple`), with checksums from Cargo.lock.
fn rust(
    manifest: &Path,
    package: &str,
    version: &str,
    triple: &str,
    feature_args: &[String],
) -> Result<Parts> {
    let metadata = resolved_metadata(manifest, triple, feature_args)?;
    let lock = read_lock(
        &metadata
            .workspace_root
            .join("Cargo.lock")
            .into_std_path_buf(),
    );
    let resolve = metadata
        .resolve
        .as_ref()
        .context("cargo metadata returned no dependency graph")?;
    let by_id: BTreeMap<_, _> = metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let root = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == package && p.version.to_string() == version)
        .with_context(|| format!("cargo metadata does not list `{package}@{version}`"))?;
    let nodes: BTreeMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    // bom-refs are purls, made unique with the source when two packages
    // share a name and version.
    let mut refs = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut reachable = BTreeSet::new();
    let mut stack = vec![&root.id];
    while let Some(id) = stack.pop() {
        if !reachable.insert(id) {
            continue;
        }
        if let Some(node) = nodes.get(id) {
            for dep in &node.deps {
                let runtime = dep
                    .dep_kinds
                    .iter()
                    .any(|k| k.kind != cargo_metadata::DependencyKind::Development);
                if runtime {
                    stack.push(&dep.pkg);
                }
            }
        }
    }
    for id in &reachable {
        let Some(p) = by_id.get(id) else { continue };
        let purl = format!("pkg:cargo/{}@{}", p.name, p.version);
        let n = seen.entry(purl.clone()).or_default();
        *n += 1;
        let r = if *n == 1 { purl } else { format!("{purl}#{n}") };
        refs.insert(*id, r);
    }
    let root_ref = refs.get(&root.id).cloned();
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut root_deps = Vec::new();
    for id in &reachable {
        let (Some(p), Some(r)) = (by_id.get(id), refs.get(id)) else {
            continue;
        };
        let deps: Vec<String> = nodes
            .get(id)
            .map(|n| {
                let mut d: Vec<String> = n
                    .deps
                    .iter()
                    .filter(|d| reachable.contains(&d.pkg))
                    .filter(|d| {
                        d.dep_kinds
                            .iter()
                            .any(|k| k.kind != cargo_metadata::DependencyKind::Development)
                    })
                    .filter_map(|d| refs.get(&d.pkg).cloned())
                    .collect();
                d.sort();
                d.dedup();
                d
            })
            .unwrap_or_default();
        if Some(r) == root_ref.as_ref() {
            // The package itself is the component; its dependencies hang
            // off the component's own node.
            root_deps = deps;
            continue;
        }
        let source = p.source.as_ref().map(|s| s.repr.clone());
        let mut component = Component {
            kind: "library".to_string(),
            bom_ref: Some(r.clone()),
            name: p.name.to_string(),
            version: Some(p.version.to_string()),
            purl: Some(format!("pkg:cargo/{}@{}", p.name, p.version)),
            hashes: Vec::new(),
            licenses: licenses(p.license.as_deref()),
            external_references: Vec::new(),
            properties: Vec::new(),
        };
        if let Some(sum) = lock.get(&LockKey {
            name: p.name.to_string(),
            version: p.version.to_string(),
            source: source.clone(),
        }) {
            component.hashes.push(sha256(sum));
        }
        match source.as_deref() {
            Some(s) if s.starts_with("registry+") || s.starts_with("sparse+") => {
                component.external_references.push(ExternalReference {
                    kind: "distribution".to_string(),
                    url: s.split_once('+').map_or(s, |x| x.1).to_string(),
                });
            }
            Some(s) if s.starts_with("git+") => {
                component.external_references.push(ExternalReference {
                    kind: "vcs".to_string(),
                    url: s.trim_start_matches("git+").to_string(),
                });
            }
            Some(_) => {}
            None => {
                // A path dependency: named by where it is in the workspace,
                // never by an absolute path.
                let rel = p
                    .manifest_path
                    .parent()
                    .and_then(|d| d.strip_prefix(&metadata.workspace_root).ok())
                    .map(|d| d.to_string())
                    .unwrap_or_default();
                component.properties.push(Property {
                    name: "kiln:path".to_string(),
                    value: if rel.is_empty() { ".".to_string() } else { rel },
                });
            }
        }
        components.push(component);
        dependencies.push(Dependency {
            reference: r.clone(),
            depends_on: deps,
        });
    }
    Ok(Parts {
        components,
        dependencies,
        root_deps,
    })
}

/// `cargo metadata` with dependencies for the wasm target, cached while
/// Cargo.lock and the workspace's manifests are unchanged.
fn resolved_metadata(
    manifest: &Path,
    triple: &str,
    feature_args: &[String],
) -> Result<cargo_metadata::Metadata> {
    use crate::cache::{Fingerprint, cached, env_key};
    let abs = std::path::absolute(manifest)
        .with_context(|| format!("failed to resolve `{}`", manifest.display()))?;
    let key = format!(
        "{}\n{triple}\n{}\n{}",
        abs.display(),
        feature_args.join(" "),
        env_key(&["CARGO", "CARGO_HOME", "RUSTUP_TOOLCHAIN"])
    );
    cached("cargo-resolve", &key, || {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.cargo_path(crate::toolchain::cargo())
            .manifest_path(&abs)
            .other_options(
                ["--filter-platform".to_string(), triple.to_string()]
                    .into_iter()
                    .chain(feature_args.iter().cloned())
                    .collect::<Vec<_>>(),
            );
        let metadata = cmd.exec().with_context(|| {
            format!(
                "failed to resolve the dependencies of `{}` for the SBOM",
                abs.display()
            )
        })?;
        let mut files = vec![
            metadata
                .workspace_root
                .join("Cargo.lock")
                .into_std_path_buf(),
            metadata
                .workspace_root
                .join("Cargo.toml")
                .into_std_path_buf(),
        ];
        for p in &metadata.packages {
            if p.source.is_none() {
                files.push(p.manifest_path.clone().into_std_path_buf());
            }
        }
        let fingerprints = files.iter().map(|f| Fingerprint::of(f)).collect();
        Ok((metadata, fingerprints))
    })
}

/// A package as Cargo.lock names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LockKey {
    name: String,
    version: String,
    source: Option<String>,
}

/// Checksums from Cargo.lock by name, version and source.
fn read_lock(path: &Path) -> BTreeMap<LockKey, String> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Locked>,
    }
    #[derive(Deserialize)]
    struct Locked {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let Ok(lock) = toml::from_str::<Lock>(&text) else {
        return BTreeMap::new();
    };
    lock.package
        .into_iter()
        .filter_map(|p| {
            let key = LockKey {
                name: p.name,
                version: p.version,
                source: p.source,
            };
            Some((key, p.checksum?))
        })
        .collect()
}

/// Go's build info as `go version -m` shows it: the Go version and the
/// module lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// e.g. `go1.27.3`.
    pub go_version: String,
    /// The main package's path.
    pub path: Option<String>,
    /// The main module.
    pub main: Option<GoModule>,
    /// Dependencies, replacements applied.
    pub deps: Vec<GoModule>,
    /// `build` settings (`-trimpath`, `GOOS`, …).
    pub settings: Vec<GoSetting>,
}

/// One `build` setting from Go's build info: `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSetting {
    /// e.g. `GOOS` or `-trimpath`.
    pub key: String,
    /// e.g. `wasip1` or `true`.
    pub value: String,
}

/// A module from Go's build info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoModule {
    /// Module path.
    pub path: String,
    /// Version.
    pub version: String,
    /// `h1:` checksum, when there is one.
    pub sum: Option<String>,
    /// What it was replaced with (`=>` lines).
    pub replaced_by: Option<Box<GoModule>>,
}

/// Reads the build info Go's linker writes into every binary (what Go's
/// `debug/buildinfo` reads); `go_version` is empty when the binary does not
/// say (wasm). Parsed here rather than by running
/// `go version -m`, which costs a process and needs Go where the SBOM is
/// made; the format is small and stable since Go 1.18.
pub fn go_build_info(binary: &[u8]) -> Option<GoBuildInfo> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    // The markers `cmd/go` puts around the module info string.
    const INFO_START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const INFO_END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let (go_version, modinfo) = if let Some(start) = find(binary, MAGIC)
        && let Some(header) = binary.get(start..start + 32)
        && header[15] & 0x2 != 0
    {
        // Go 1.18+ ELF/Mach-O/PE: the strings inline after a 32-byte header.
        let mut rest = &binary[start + 32..];
        let mut read = || -> Option<String> {
            let (len, used) = uvarint(rest)?;
            let len = usize::try_from(len).ok()?;
            let s = rest.get(used..used.checked_add(len)?)?;
            rest = &rest[used + len..];
            Some(String::from_utf8_lossy(s).into_owned())
        };
        let version = read()?;
        let mut modinfo = read()?;
        if modinfo.len() >= 33 && modinfo.as_bytes()[modinfo.len() - 17] == b'\n' {
            modinfo = modinfo
                .get(16..modinfo.len() - 16)
                .unwrap_or_default()
                .to_string();
        }
        (version, modinfo)
    } else {
        // Wasm binaries have no header (`go version -m` cannot read them):
        // the module info string sits in a data segment between its markers.
        let start = find(binary, INFO_START)? + INFO_START.len();
        let len = find(&binary[start..], INFO_END)?;
        (
            String::new(),
            String::from_utf8_lossy(&binary[start..start + len]).into_owned(),
        )
    };
    let mut info = GoBuildInfo {
        go_version,
        path: None,
        main: None,
        deps: Vec::new(),
        settings: Vec::new(),
    };
    let module = |f: &[&str]| GoModule {
        path: f.get(1).unwrap_or(&"").to_string(),
        version: f.get(2).unwrap_or(&"").to_string(),
        sum: f.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string()),
        replaced_by: None,
    };
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "path" => info.path = f.get(1).map(|s| s.to_string()),
            "mod" => info.main = Some(module(&f)),
            "dep" => info.deps.push(module(&f)),
            "=>" => {
                if let Some(last) = info.deps.last_mut() {
                    last.replaced_by = Some(Box::new(module(&f)));
                }
            }
            "build" => {
                if let Some((key, value)) = f.get(1).and_then(|kv| kv.split_once('=')) {
                    info.settings.push(GoSetting {
                        key: key.to_string(),
                        value: value.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    Some(info)
}

fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Go's `h1:` sums are base64 SHA-256 values; CycloneDX wants hex.
fn h1_hex(sum: &str) -> Option<String> {
    use base64::Engine as _;
    let b64 = sum.strip_prefix("h1:")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .filter(|b| b.len() == 32)
        .map(hex::encode)
}

fn go(core_module: &[u8], toolchain: &str) -> Result<Parts> {
    let mut info = go_build_info(core_module)
        .context("the Go binary carries no build info (was it built by `go build`?)")?;
    if info.go_version.is_empty() {
        info.go_version = toolchain.to_string();
    }
    let mut components = vec![Component {
        kind: "framework".to_string(),
        bom_ref: Some(format!("pkg:golang/std@{}", info.go_version)),
        name: "std".to_string(),
        version: Some(info.go_version.clone()),
        purl: Some(format!("pkg:golang/std@{}", info.go_version)),
        hashes: Vec::new(),
        licenses: Vec::new(),
        external_references: Vec::new(),
        properties: info
            .settings
            .iter()
            .filter(|s| matches!(s.key.as_str(), "GOOS" | "GOARCH" | "-trimpath" | "-tags"))
            .map(|s| Property {
                name: format!("kiln:go:{}", s.key),
                value: s.value.clone(),
            })
            .collect(),
    }];
    let mut root_deps = vec![format!("pkg:golang/std@{}", info.go_version)];
    for dep in &info.deps {
        let m = dep.replaced_by.as_deref().unwrap_or(dep);
        let purl = format!("pkg:golang/{}@{}", m.path, m.version);
        let mut properties = Vec::new();
        if dep.replaced_by.is_some() {
            properties.push(Property {
                name: "kiln:go:replaces".to_string(),
                value: format!("{}@{}", dep.path, dep.version),
            });
        }
        components.push(Component {
            kind: "library".to_string(),
            bom_ref: Some(purl.clone()),
            name: m.path.clone(),
            version: Some(m.version.clone()),
            purl: Some(purl.clone()),
            hashes: m
                .sum
                .as_deref()
                .and_then(h1_hex)
                .map(|h| sha256(&h))
                .into_iter()
                .collect(),
            licenses: Vec::new(),
            external_references: Vec::new(),
            properties,
        });
        root_deps.push(purl);
    }
    root_deps.sort();
    root_deps.dedup();
    // Go's build info lists the modules linked in, not who imports whom.
    let dependencies = Vec::new();
    Ok(Parts {
        components,
        dependencies,
        root_deps,
    })
}

const C_EXTENSIONS: &[&str] = &["c", "h", "cc", "cpp", "cxx", "hh", "hpp", "hxx", "inc"];

fn c(root: &Path, sources: &[PathBuf], compiler: &str, sysroot: &Path) -> Result<Parts> {
    let mut files = BTreeSet::new();
    for s in sources {
        files.insert(s.clone());
    }
    walk_sources(root, root, &mut files, 0);
    let mut components = Vec::new();
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("failed to read `{}`", file.display()))?;
        let rel = relative(root, file);
        components.push(Component {
            kind: "file".to_string(),
            bom_ref: Some(format!("file:{rel}")),
            name: rel,
            version: None,
            purl: None,
            hashes: vec![sha256(&hex::encode(Sha256::digest(&bytes)))],
            licenses: Vec::new(),
            external_references: Vec::new(),
            properties: Vec::new(),
        });
    }
    let version = compiler
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .map(str::to_string);
    components.push(Component {
        kind: "application".to_string(),
        bom_ref: Some("toolchain:clang".to_string()),
        name: "clang".to_string(),
        version,
        purl: None,
        hashes: Vec::new(),
        licenses: Vec::new(),
        external_references: Vec::new(),
        properties: vec![Property {
            name: "kiln:version-line".to_string(),
            value: compiler.to_string(),
        }],
    });
    components.push(Component {
        kind: "library".to_string(),
        bom_ref: Some("toolchain:wasi-libc".to_string()),
        name: "wasi-libc".to_string(),
        version: None,
        purl: None,
        hashes: Vec::new(),
        licenses: Vec::new(),
        external_references: Vec::new(),
        properties: vec![Property {
            name: "kiln:sysroot".to_string(),
            value: sysroot.display().to_string(),
        }],
    });
    let mut root_deps: Vec<String> = components
        .iter()
        .filter_map(|c| c.bom_ref.clone())
        .collect();
    root_deps.sort();
    Ok(Parts {
        components,
        dependencies: Vec::new(),
        root_deps,
    })
}

/// C and C++ sources and headers under the project, skipping build output
/// (`target/`, `build*/`) and hidden directories.
fn walk_sources(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let skip = name.starts_with('.')
                || (dir == root && (name == "target" || name.starts_with("build")));
            if !skip {
                walk_sources(root, &path, out, depth + 1);
            }
        } else if kind.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| C_EXTENSIONS.contains(&e))
        {
            out.insert(path);
        }
    }
}

/// `file` relative to `root` with `/` separators (`../x` when outside).
fn relative(root: &Path, file: &Path) -> String {
    if let Ok(rel) = file.strip_prefix(root) {
        return rel.to_string_lossy().replace('\\', "/");
    }
    let mut up = String::new();
    for dir in root.ancestors().skip(1) {
        up.push_str("../");
        if let Ok(rel) = file.strip_prefix(dir) {
            return format!("{up}{}", rel.to_string_lossy());
        }
    }
    file.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_build_info_is_read_from_inline_strings() {
        let modinfo = "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.0\th1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg=\n=>\t../text\t(devel)\t\nbuild\tGOOS=wasip1\n";
        let mut wrapped = vec![b'0'; 16];
        wrapped.extend_from_slice(modinfo.as_bytes());
        wrapped.extend_from_slice(&[b'1'; 16]);
        // Header (magic, pointer size, flags = inline strings), then the
        // length-prefixed version and module info.
        let mut b = b"junk\xff Go buildinf:".to_vec();
        b.push(8);
        b.push(2);
        b.resize(4 + 32, 0);
        b.push(8);
        b.extend_from_slice(b"go1.27.3");
        let len = wrapped.len();
        b.push((len as u8 & 0x7f) | 0x80);
        b.push((len >> 7) as u8);
        b.extend_from_slice(&wrapped);
        let info = go_build_info(&b).unwrap();
        assert_eq!(info.go_version, "go1.27.3");
        assert_eq!(info.path.as_deref(), Some("example.com/hello"));
        assert_eq!(info.deps.len(), 1);
        assert_eq!(info.deps[0].replaced_by.as_ref().unwrap().path, "../text");
        assert_eq!(
            info.settings,
            vec![GoSetting {
                key: "GOOS".into(),
                value: "wasip1".into()
            }]
        );
        assert!(go_build_info(&b[..20]).is_none());
        assert!(go_build_info(b"no build info here").is_none());
    }

    #[test]
    fn go_module_info_is_found_between_markers_in_wasm_data() {
        let mut b = b"\0\0data".to_vec();
        b.extend_from_slice(b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6");
        b.extend_from_slice(
            b"path\tx.org/a\nmod\tx.org/a\t(devel)\t\ndep\tx.org/b\tv1.0.0\th1:abc=\n",
        );
        b.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        let info = go_build_info(&b).unwrap();
        assert_eq!(info.go_version, "");
        assert_eq!(info.main.unwrap().path, "x.org/a");
        assert_eq!(info.deps[0].version, "v1.0.0");
    }

    #[test]
    fn h1_sums_become_hex() {
        let hex = h1_hex("h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg=").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(h1_hex("h1:short").is_none());
    }

    #[test]
    fn relative_paths_never_absolute() {
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b/src/x.c")),
            "src/x.c"
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/c/x.c")),
            "../c/x.c"
        );
    }
}
