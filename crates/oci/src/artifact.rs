//! The OCI documents kiln writes and reads: manifests, indexes, descriptors and configs.
//!
//! They are image manifests and indexes, descriptors, the CNCF Wasm config, and
//! the manifests of precompiled artifacts attached as referrers.
//!
//! These few types are written here rather than taken from `oci-wasm`,
//! which would pull a second oci-client and wasm-tools release into the
//! build; kiln also needs exact control of the bytes it hashes.

use anyhow::{Context, Result, bail};
use kiln_core::{Digest, PackageMetadata, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The CNCF Wasm artifact's config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The CNCF Wasm artifact's one layer, the only layer type kiln pushes.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// An older Wasm layer type that tools still push; kiln reads it, never
/// writes it.
pub const WASM_CONTENT_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// Another older Wasm layer type still in use; kiln reads it, never
/// writes it.
pub const MODULE_WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Every layer media type kiln reads as wasm: [`WASM_LAYER_MEDIA_TYPE`]
/// first, then the older ones.
pub const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    WASM_CONTENT_LAYER_MEDIA_TYPE,
    MODULE_WASM_LAYER_MEDIA_TYPE,
];

/// Whether a layer of `media_type` holds wasm, by any of the types kiln
/// reads ([`WASM_LAYER_MEDIA_TYPES`]).
pub fn is_wasm_layer(media_type: &str) -> bool {
    WASM_LAYER_MEDIA_TYPES.contains(&media_type)
}
/// The artifact type of a precompiled Wasmtime artifact attached to a
/// component's manifest.
pub const CWASM_ARTIFACT_TYPE: &str = "application/vnd.kiln.wasmtime.cwasm.v1";
/// The layer holding the `.cwasm` bytes.
pub const CWASM_LAYER_MEDIA_TYPE: &str = "application/vnd.kiln.wasmtime.cwasm.v1+elf";
/// The config holding the `.cwasm`'s descriptor (docs/aot.md).
pub const CWASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cwasm.descriptor.v1+json";
/// The artifact type (and layer media type) of a CycloneDX SBOM attached
/// to a component's manifest.
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";
/// The OCI empty descriptor's media type, the config of artifacts that
/// need none.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Annotation: the target triple of a precompiled artifact.
pub const ANNOTATION_TARGET: &str = "dev.kiln.cwasm.target";
/// Annotation: the Wasmtime release that made a precompiled artifact.
pub const ANNOTATION_WASMTIME: &str = "dev.kiln.cwasm.wasmtime-version";
/// The media type of a Sigstore bundle (v0.3): the artifact type of the
/// referrer cosign v3 attaches a signature as, and its one layer's type.
pub const SIGSTORE_BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Annotation: what a Sigstore bundle holds (`dsse-envelope`).
pub const ANNOTATION_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
/// Annotation: the predicate type of the statement in a DSSE bundle.
pub const ANNOTATION_BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
/// Annotation: a file name, as oras and others use it.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Annotation: the tag of a manifest in a local layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// The content's digest, `algorithm:encoded`. kiln writes `sha256:`
    /// and reads content by sha256 only ([`Descriptor::sha256`]),
    /// but a descriptor with any algorithm the OCI spec allows (`sha512:`,
    /// or one registered later) parses, so one such entry never breaks the
    /// parse of the index or manifest that lists it.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// For manifests in an index: the manifest's artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// Describes `bytes` of `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, &Digest::of(bytes), bytes.len() as u64)
    }

    /// Describes content of `media_type` with `digest` and `size`.
    pub fn new(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The digest as kiln fetches, stores and follows content by: a
    /// well-formed sha256 digest, safe to use in paths and URLs. Fails for
    /// any other algorithm (which the descriptor itself may carry) or a
    /// malformed digest.
    pub fn sha256(&self) -> Result<Digest> {
        Ok(Digest::parse(&self.digest)?)
    }
}

/// The algorithm of a digest of the form the OCI image spec gives
/// (`algorithm ":" encoded`, the algorithm lowercase letters and digits
/// joined by `+._-`, the encoded part letters, digits and `=_-`), whatever
/// the algorithm; `None` for anything else.
pub fn digest_algorithm(digest: &str) -> Option<&str> {
    let (algorithm, encoded) = digest.split_once(':')?;
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let well_formed = algorithm.split(['+', '.', '_', '-']).all(component)
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
    well_formed.then_some(algorithm)
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_MEDIA_TYPE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What kind of artifact this is, when the config does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses an image manifest from its bytes, as fetched from a registry
    /// or read from a layout. Reads nothing and checks no digest: callers
    /// fetch by digest and add what the bytes were (see [`crate::wire`] for
    /// the other documents registries send).
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// An OCI image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`INDEX_MEDIA_TYPE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// Parses an image index (a referrers index, a layout's `index.json`)
    /// from its bytes. Entries whose digest uses an algorithm kiln does not
    /// follow still parse (see [`Descriptor::digest`]).
    pub fn parse(bytes: &[u8]) -> Result<Index> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// The `mediaType` a manifest or index names for itself, when its bytes
/// are a JSON object with a string there; `None` for anything else (the
/// registry client then takes it for an image manifest).
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_string()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// The CNCF Wasm artifact config (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 creation time.
    pub created: String,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2` for components, `wasip1` for core modules.
    pub os: String,
    /// The digests of the manifest's layers, in order.
    pub layer_digests: Vec<String>,
    /// A component's world at interface level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
}

/// An artifact's config as kiln reads what others pushed: every field
/// optional, since tools push Wasm with the OCI empty config, a Wasm
/// config whose body is `{}` or empty, or another config altogether.
/// kiln writes only the complete [`WasmConfig`]; it serializes as that
/// does, leaving out what is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactConfig {
    /// RFC 3339 creation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `wasm`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// `wasip2` for components, `wasip1` for core modules, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// The digests of the manifest's layers, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_digests: Option<Vec<String>>,
    /// A component's imports and exports, when the config lists them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
}

/// Why a Wasm config's body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnreadableConfig {
    /// Zero bytes.
    Empty,
    /// Not a JSON object; the parser's message.
    NotAnObject(String),
}

impl std::fmt::Display for UnreadableConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnreadableConfig::Empty => f.write_str("its body is empty, 0 bytes"),
            UnreadableConfig::NotAnObject(e) => write!(f, "its body is not a JSON object: {e}"),
        }
    }
}

impl ArtifactConfig {
    /// Reads the body of a config of [`WASM_CONFIG_MEDIA_TYPE`] leniently:
    /// each field that is there with the type the CNCF layout gives it is
    /// kept, anything else is left out (see [`ArtifactConfig::missing`]).
    /// Only a body that is not a JSON object at all is an error.
    pub fn read(bytes: &[u8]) -> std::result::Result<ArtifactConfig, UnreadableConfig> {
        if bytes.is_empty() {
            return Err(UnreadableConfig::Empty);
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|e| UnreadableConfig::NotAnObject(e.to_string()))?;
        fn field<T: serde::de::DeserializeOwned>(
            object: &serde_json::Map<String, serde_json::Value>,
            name: &str,
        ) -> Option<T> {
            object.get(name).and_then(|v| T::deserialize(v).ok())
        }
        Ok(ArtifactConfig {
            created: field(&object, "created"),
            author: field(&object, "author"),
            architecture: field(&object, "architecture"),
            os: field(&object, "os"),
            layer_digests: field(&object, "layerDigests"),
            component: field(&object, "component"),
        })
    }

    /// The fields the CNCF layout requires that this config lacks (or has
    /// with another type), by their JSON names.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        for (name, present) in [
            ("created", self.created.is_some()),
            ("architecture", self.architecture.is_some()),
            ("os", self.os.is_some()),
            ("layerDigests", self.layer_digests.is_some()),
        ] {
            if !present {
                missing.push(name);
            }
        }
        missing
    }

    /// What the config says the wasm is: `wasip2` a component, `wasip1` a
    /// core module; `None` when it does not say.
    pub fn kind(&self) -> Option<kiln_core::WasmKind> {
        match self.os.as_deref() {
            Some("wasip2") => Some(kiln_core::WasmKind::Component),
            Some("wasip1") => Some(kiln_core::WasmKind::CoreModule),
            _ => None,
        }
    }
}

/// What a component imports and exports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInfo {
    /// Exported names (interfaces as `ns:pkg/iface@version`, or plain names).
    pub exports: Vec<String>,
    /// Imported names.
    pub imports: Vec<String>,
    /// The world it targets, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// JSON bytes of a document, compact and with fields in a fixed order, so
/// the same document always has the same digest.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).context("failed to encode an OCI document")
}

/// A blob kiln is about to store, with its descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    /// What it is.
    pub descriptor: Descriptor,
    /// Where its bytes are.
    pub data: BlobData,
}

/// The bytes of a blob: small documents in memory, files streamed from disk.
#[derive(Debug, Clone)]
pub enum BlobData {
    /// In memory.
    Bytes(Vec<u8>),
    /// A file, read in chunks when stored; it must not change meanwhile
    /// (its digest is checked again as it is read).
    File(std::path::PathBuf),
}

/// Reads a file in 1 MiB chunks, hashing it and copying it to `sink` when
/// given; returns its digest and size.
pub fn hash_file(
    path: &std::path::Path,
    mut sink: Option<&mut dyn std::io::Write>,
) -> Result<(Digest, u64)> {
    use sha2::Digest as _;
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(w) = sink.as_deref_mut() {
            w.write_all(&buf[..n]).context("failed to copy the blob")?;
        }
        size += n as u64;
    }
    Ok((Digest::from_bytes(hasher.finalize().into()), size))
}

impl Blob {
    /// A blob in memory.
    pub fn bytes(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            descriptor: Descriptor::of(media_type, &bytes),
            data: BlobData::Bytes(bytes),
        }
    }

    /// A file as a blob, hashed by reading it in chunks.
    pub fn file(media_type: &str, path: &std::path::Path) -> Result<Blob> {
        let (digest, size) = hash_file(path, None)?;
        Ok(Blob {
            descriptor: Descriptor::new(media_type, &digest, size),
            data: BlobData::File(path.to_path_buf()),
        })
    }
}

/// A manifest with the blobs it references, ready to store.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest's bytes (what its digest covers).
    pub manifest: Vec<u8>,
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// Config first, then layers.
    pub blobs: Vec<Blob>,
}

impl Package {
    /// The manifest's digest, what the package is stored and referred to by.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }

    fn new(manifest: &Manifest, blobs: Vec<Blob>) -> Result<Package> {
        let bytes = to_bytes(manifest)?;
        let mut descriptor = Descriptor::of(MANIFEST_MEDIA_TYPE, &bytes);
        descriptor.artifact_type = manifest
            .artifact_type
            .clone()
            .or_else(|| Some(manifest.config.media_type.clone()));
        descriptor.annotations = manifest.annotations.clone();
        Ok(Package {
            manifest: bytes,
            descriptor,
            blobs,
        })
    }
}

/// `created` for an artifact: `SOURCE_DATE_EPOCH` (seconds) when set, else
/// the Unix epoch; never the wall clock, so pushes are reproducible.
pub fn created(source_date_epoch: Option<&str>) -> Result<String> {
    let secs = match source_date_epoch.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<i64>().with_context(|| {
            format!("SOURCE_DATE_EPOCH `{s}` is not a number of seconds since 1970")
        })?,
        None => 0,
    };
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .with_context(|| format!("SOURCE_DATE_EPOCH `{secs}` is out of range"))?;
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The CNCF Wasm artifact for a component (`info` given) or core module
/// whose bytes are `wasm` (see [`Blob::file`] and [`Blob::bytes`], with
/// media type [`WASM_LAYER_MEDIA_TYPE`]).
pub fn wasm_package(
    wasm: Blob,
    info: Option<ComponentInfo>,
    metadata: &PackageMetadata,
    created: &str,
) -> Result<Package> {
    if wasm.descriptor.media_type != WASM_LAYER_MEDIA_TYPE {
        bail!("a Wasm artifact's layer is `{WASM_LAYER_MEDIA_TYPE}`");
    }
    let layer = wasm.descriptor.clone();
    let config = WasmConfig {
        created: created.to_string(),
        author: metadata.authors.clone(),
        architecture: "wasm".to_string(),
        os: if info.is_some() { "wasip2" } else { "wasip1" }.to_string(),
        layer_digests: vec![layer.digest.clone()],
        component: info,
    };
    let config_bytes = to_bytes(&config)?;
    // The image spec's `org.opencontainers.image.*` annotations: the
    // metadata's name is the `title`, its homepage the `url`.
    let mut annotations = BTreeMap::new();
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            annotations.insert(format!("org.opencontainers.image.{key}"), v.to_string());
        }
    };
    put("title", &metadata.name);
    put("version", &metadata.version);
    put("description", &metadata.description);
    put("licenses", &metadata.licenses);
    put("source", &metadata.source);
    put("url", &metadata.homepage);
    put("revision", &metadata.revision);
    put("authors", &metadata.authors);
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        created.to_string(),
    );
    let config_descriptor = Descriptor::of(WASM_CONFIG_MEDIA_TYPE, &config_bytes);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: vec![layer.clone()],
        subject: None,
        annotations,
    };
    Package::new(
        &manifest,
        vec![
            Blob {
                descriptor: config_descriptor,
                data: BlobData::Bytes(config_bytes),
            },
            wasm,
        ],
    )
}

/// A precompiled artifact attached to `subject` (a component's manifest):
/// its descriptor JSON as config, the `.cwasm` as the one layer.
pub fn cwasm_package(
    cwasm: Vec<u8>,
    descriptor_json: Vec<u8>,
    target: Target,
    wasmtime_version: &str,
    file_name: &str,
    subject: &Descriptor,
    created: &str,
) -> Result<Package> {
    let mut layer = Blob::bytes(CWASM_LAYER_MEDIA_TYPE, cwasm);
    layer
        .descriptor
        .annotations
        .insert(ANNOTATION_TITLE.to_string(), file_name.to_string());
    let config = Blob::bytes(CWASM_CONFIG_MEDIA_TYPE, descriptor_json);
    let annotations = BTreeMap::from([
        (ANNOTATION_TARGET.to_string(), target.to_string()),
        (
            ANNOTATION_WASMTIME.to_string(),
            wasmtime_version.to_string(),
        ),
    ]);
    referrer_package(
        CWASM_ARTIFACT_TYPE,
        config,
        layer,
        annotations,
        subject,
        created,
    )
}

/// An SBOM attached to `subject` (a component's manifest), as `oras attach`
/// makes such artifacts: the empty config, the document as the one layer.
pub fn sbom_package(document: Vec<u8>, subject: &Descriptor, created: &str) -> Result<Package> {
    let mut layer = Blob::bytes(SBOM_ARTIFACT_TYPE, document);
    layer
        .descriptor
        .annotations
        .insert(ANNOTATION_TITLE.to_string(), "sbom.cdx.json".to_string());
    let config = Blob::bytes(EMPTY_MEDIA_TYPE, b"{}".to_vec());
    referrer_package(
        SBOM_ARTIFACT_TYPE,
        config,
        layer,
        BTreeMap::new(),
        subject,
        created,
    )
}

/// A manifest of `artifact_type` attached to `subject` as a referrer, with
/// `config` and one `layer` (both in memory) and `annotations` plus its
/// creation time. The subject is described by digest, size and media type
/// alone.
fn referrer_package(
    artifact_type: &str,
    config: Blob,
    layer: Blob,
    mut annotations: BTreeMap<String, String>,
    subject: &Descriptor,
    created: &str,
) -> Result<Package> {
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        created.to_string(),
    );
    let mut subject = subject.clone();
    subject.annotations.clear();
    subject.artifact_type = None;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: Some(artifact_type.to_string()),
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        subject: Some(subject),
        annotations,
    };
    Package::new(&manifest, vec![config, layer])
}

/// A Sigstore bundle holding a DSSE envelope, attached to `subject` as
/// cosign v3 attaches a signature: the empty config (carrying the artifact
/// type too, as cosign writes it), the bundle as the one layer, the
/// bundle's type as the artifact type, and the annotations cosign sets:
/// what the bundle holds, the statement's predicate type, and `created`
/// (`SOURCE_DATE_EPOCH` or the epoch in kiln, so that signing an unchanged
/// digest again makes the same referrer).
pub fn bundle_package(
    bundle: Vec<u8>,
    predicate_type: &str,
    subject: &Descriptor,
    created: &str,
) -> Result<Package> {
    let layer = Blob::bytes(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle);
    let mut config = Blob::bytes(EMPTY_MEDIA_TYPE, b"{}".to_vec());
    config.descriptor.artifact_type = Some(SIGSTORE_BUNDLE_MEDIA_TYPE.to_string());
    let annotations = BTreeMap::from([
        (
            ANNOTATION_BUNDLE_CONTENT.to_string(),
            "dsse-envelope".to_string(),
        ),
        (
            ANNOTATION_BUNDLE_PREDICATE_TYPE.to_string(),
            predicate_type.to_string(),
        ),
    ]);
    referrer_package(
        SIGSTORE_BUNDLE_MEDIA_TYPE,
        config,
        layer,
        annotations,
        subject,
        created,
    )
}

/// The referrers tag for a subject digest: `sha256-<hex>` (the
/// distribution spec's referrers tag schema).
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// A file name taken from an annotation, made safe to join to an output
/// directory: no path separators, no `..`, no leading dot, no control
/// characters. `None` when nothing usable is left.
pub fn safe_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim_start_matches('.')
        .to_string();
    (!cleaned.is_empty() && cleaned.len() <= 255).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The referrer cosign v3's `sign --key` pushes (its
    /// `pkg/oci/remote/write.go`, `WriteAttestationNewBundleFormat`), field
    /// by field: kiln's must be read by cosign as its own.
    #[test]
    fn a_bundle_referrer_has_cosign_s_shape() {
        let subject = Descriptor::of(MANIFEST_MEDIA_TYPE, b"{\"schemaVersion\":2}");
        let bundle =
            b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}\n".to_vec();
        let package = bundle_package(
            bundle.clone(),
            "https://sigstore.dev/cosign/sign/v1",
            &subject,
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&package.manifest).unwrap();
        let layer = Descriptor::of(SIGSTORE_BUNDLE_MEDIA_TYPE, &bundle);
        assert_eq!(
            manifest,
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                    "size": 2,
                    "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json"
                },
                "layers": [{
                    "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                    "digest": layer.digest,
                    "size": bundle.len()
                }],
                "subject": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": subject.digest,
                    "size": subject.size
                },
                "annotations": {
                    "dev.sigstore.bundle.content": "dsse-envelope",
                    "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
                    "org.opencontainers.image.created": "1970-01-01T00:00:00Z"
                }
            })
        );
        assert_eq!(package.blobs[0].descriptor.size, 2);
        assert_eq!(package.blobs[1].descriptor, layer);
    }

    #[test]
    fn created_is_reproducible() {
        assert_eq!(created(None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(created(Some("1700000000")).unwrap(), "2023-11-14T22:13:20Z");
        assert!(created(Some("yesterday")).is_err());
    }

    #[test]
    fn same_input_same_manifest_digest() {
        let meta = PackageMetadata {
            name: Some("hello".into()),
            version: Some("1.0.0".into()),
            ..Default::default()
        };
        let info = ComponentInfo {
            imports: vec!["wasi:cli/stdout@0.2.6".into()],
            ..Default::default()
        };
        let wasm = || Blob::bytes(WASM_LAYER_MEDIA_TYPE, b"\0asm\x0d\0\x01\0".to_vec());
        let a = wasm_package(wasm(), Some(info.clone()), &meta, "x").unwrap();
        let b = wasm_package(wasm(), Some(info), &meta, "x").unwrap();
        assert_eq!(a.descriptor.digest, b.descriptor.digest);
        let m: Manifest = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m.config.media_type, WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(m.layers[0].media_type, WASM_LAYER_MEDIA_TYPE);
        assert_eq!(m.annotations["org.opencontainers.image.title"], "hello");
        let BlobData::Bytes(config) = &a.blobs[0].data else {
            panic!("the config is in memory")
        };
        let c: WasmConfig = serde_json::from_slice(config).unwrap();
        assert_eq!(c.os, "wasip2");
        assert_eq!(c.layer_digests, vec![m.layers[0].digest.clone()]);
    }

    #[test]
    fn configs_others_push_are_read_leniently() {
        // kiln's own config reads whole and serializes as it was written.
        let info = ComponentInfo {
            imports: vec!["wasi:cli/stdout@0.2.6".into()],
            ..Default::default()
        };
        let wasm = Blob::bytes(WASM_LAYER_MEDIA_TYPE, b"\0asm\x0d\0\x01\0".to_vec());
        let package =
            wasm_package(wasm, Some(info.clone()), &PackageMetadata::default(), "x").unwrap();
        let BlobData::Bytes(bytes) = &package.blobs[0].data else {
            panic!("the config is in memory")
        };
        let config = ArtifactConfig::read(bytes).unwrap();
        assert!(config.missing().is_empty());
        assert_eq!(config.component, Some(info));
        assert_eq!(config.kind(), Some(kiln_core::WasmKind::Component));
        assert_eq!(&to_bytes(&config).unwrap(), bytes);

        // `{}`, a zero-byte body, and fields of the wrong type.
        assert_eq!(
            ArtifactConfig::read(b"{}").unwrap(),
            ArtifactConfig::default()
        );
        assert_eq!(ArtifactConfig::read(b""), Err(UnreadableConfig::Empty));
        assert!(matches!(
            ArtifactConfig::read(b"[]"),
            Err(UnreadableConfig::NotAnObject(_))
        ));
        let odd = ArtifactConfig::read(br#"{"created":5,"os":"wasip1","component":{}}"#).unwrap();
        assert_eq!(odd.created, None);
        assert_eq!(odd.component, None);
        assert_eq!(odd.kind(), Some(kiln_core::WasmKind::CoreModule));
        assert_eq!(odd.missing(), ["created", "architecture", "layerDigests"]);

        for t in WASM_LAYER_MEDIA_TYPES {
            assert!(is_wasm_layer(t));
        }
        assert!(!is_wasm_layer(CWASM_LAYER_MEDIA_TYPE));
    }

    #[test]
    fn hostile_file_names_are_defused() {
        assert_eq!(
            safe_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(safe_file_name("a\\..\\b.cwasm").as_deref(), Some("b.cwasm"));
        assert_eq!(safe_file_name(".."), None);
        assert_eq!(safe_file_name("/"), None);
        assert_eq!(safe_file_name("ok.wasm").as_deref(), Some("ok.wasm"));
    }

    #[test]
    fn descriptors_with_other_digest_algorithms_parse() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let sha512 = format!("sha512:{}", "b".repeat(128));
        let other = "blake3:0123456789abcdef";
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{INDEX_MEDIA_TYPE}","manifests":[
                {{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{sha512}","size":7,"artifactType":"t"}},
                {{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{other}","size":8}},
                {{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{sha256}","size":9,"artifactType":"t"}}
            ]}}"#
        );
        let index: Index = serde_json::from_str(&body).unwrap();
        let digests: Vec<&str> = index.manifests.iter().map(|d| d.digest.as_str()).collect();
        assert_eq!(digests, [sha512.as_str(), other, sha256.as_str()]);
        // Only the sha256 one is usable where kiln needs a sha256.
        assert!(index.manifests[0].sha256().is_err());
        assert!(index.manifests[1].sha256().is_err());
        assert_eq!(index.manifests[2].sha256().unwrap().to_string(), sha256);
        // A manifest whose subject or layers use another algorithm parses too.
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{EMPTY_MEDIA_TYPE}","digest":"{sha256}","size":2}},
                "layers":[{{"mediaType":"x","digest":"{sha512}","size":1}}],
                "subject":{{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{sha512}","size":3}}}}"#
        );
        let m: Manifest = serde_json::from_str(&manifest).unwrap();
        assert_eq!(m.layers[0].digest, sha512);
        // The index writes back with every entry as it was.
        let again: Index = serde_json::from_slice(&to_bytes(&index).unwrap()).unwrap();
        assert_eq!(again, index);

        assert_eq!(digest_algorithm(&sha512), Some("sha512"));
        assert_eq!(digest_algorithm(other), Some("blake3"));
        assert_eq!(
            digest_algorithm("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
            Some("sha256+b64u")
        );
        assert_eq!(digest_algorithm("sha256:../../x"), None);
        assert_eq!(digest_algorithm("SHA256:ab"), None);
        assert_eq!(digest_algorithm("sha512:"), None);
        assert_eq!(digest_algorithm("nocolon"), None);
    }

    #[test]
    fn digests_are_checked() {
        let mut d = Descriptor::of(MANIFEST_MEDIA_TYPE, b"{}");
        assert_eq!(d.sha256().unwrap(), Digest::of(b"{}"));
        d.digest = "sha256:../../x".to_string();
        assert_eq!(
            d.sha256().unwrap_err().to_string(),
            "`sha256:../../x` is not a sha256 digest"
        );
        assert_eq!(
            referrers_tag(&Digest::of(b"{}")),
            format!("sha256-{}", Digest::of(b"{}").hex())
        );
    }

    #[test]
    fn documents_of_the_wrong_shape_do_not_parse() {
        let sha = format!("sha256:{}", "a".repeat(64));
        let config = format!(r#"{{"mediaType":"x","digest":"{sha}","size":2}}"#);
        let good = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[]}}"#);
        assert_eq!(Manifest::parse(good.as_bytes()).unwrap().config.size, 2);
        for bad in [
            String::new(),
            "[]".to_string(),
            "{}".to_string(),
            "\u{feff}{}".to_string(),
            format!(r#"{{"schemaVersion":2,"config":{config}}}"#),
            format!(r#"{{"schemaVersion":"2","config":{config},"layers":[]}}"#),
            format!(r#"{{"schemaVersion":4294967296,"config":{config},"layers":[]}}"#),
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{sha}","size":18446744073709551616}},"layers":[]}}"#
            ),
            format!(
                r#"{{"schemaVersion":2,"config":{config},"layers":[],"annotations":{{"a":1}}}}"#
            ),
        ] {
            assert!(Manifest::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            Index::parse(br#"{"schemaVersion":2}"#).unwrap().manifests,
            []
        );
        for bad in [
            &b""[..],
            b"[]",
            br#"{"schemaVersion":2,"manifests":[1]}"#,
            b"{\"schemaVersion\":-2}",
        ] {
            assert!(
                Index::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_media_type_is_a_string_in_an_object_or_nothing() {
        assert_eq!(
            media_type_of(br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#).as_deref(),
            Some(INDEX_MEDIA_TYPE)
        );
        for bytes in [
            &b""[..],
            b"not json",
            br#"["mediaType"]"#,
            br#"{"mediaType":5}"#,
            br#"{"mediaType":null}"#,
            br#"{"config":{"mediaType":"x"}}"#,
            b"\"mediaType\"",
        ] {
            assert_eq!(
                media_type_of(bytes),
                None,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
