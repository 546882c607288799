//! Push, pull, tags and referrers, the same on a registry and on a local OCI image layout.

use crate::artifact::{
    ANNOTATION_TARGET, ANNOTATION_WASMTIME, ArtifactConfig, BlobData, CWASM_ARTIFACT_TYPE,
    CWASM_CONFIG_MEDIA_TYPE, CWASM_LAYER_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, Index,
    MANIFEST_MEDIA_TYPE, Manifest, Package, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
    is_wasm_layer, referrers_tag, to_bytes,
};
use crate::auth::{self, Addressed, Credentials, Source};
use crate::layout::Layout;
use crate::locations::BlobLocations;
use crate::reference::Reference;
use crate::referrers::Allowed;
use crate::registry::{Connection, Registry, TokenServices};
use anyhow::{Context, Result, bail};
use kiln_core::{Digest, Reporter, Target};
use serde::Serialize;

/// Where artifacts are kept: a registry repository or a local layout.
pub enum Store {
    /// A repository in a registry.
    Registry {
        /// The client.
        client: Box<Registry>,
        /// The repository path.
        repository: String,
    },
    /// A local OCI image layout.
    Layout(Layout),
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// Where it went, pinned by digest.
    pub reference: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
    /// The manifest's media type.
    pub media_type: String,
    /// The config's media type.
    pub config_media_type: String,
    /// The layers' media types.
    pub layer_media_types: Vec<String>,
    /// Bytes of blobs actually uploaded (0 when all were there already).
    pub uploaded_bytes: u64,
    /// Attached precompiled artifacts.
    pub referrers: Vec<PushedReferrer>,
}

/// An attached artifact that was pushed.
#[derive(Debug, Clone, Serialize)]
pub struct PushedReferrer {
    /// Its manifest digest.
    pub digest: Digest,
    /// Its artifact type.
    pub artifact_type: String,
    /// The target triple, for precompiled artifacts.
    pub target: Option<String>,
}

/// A Wasm artifact's manifest and config, read without its wasm layer.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The digest of the manifest the reference resolved to.
    pub digest: Digest,
    /// The manifest.
    pub manifest: Manifest,
    /// Its one wasm layer (of any type [`is_wasm_layer`] accepts).
    pub layer: Descriptor,
    /// What its config says, read leniently: empty when the config is
    /// not a Wasm config.
    pub config: ArtifactConfig,
}

impl Resolved {
    /// Whether the config lists the wasm's imports and exports; when it
    /// does not, only the layer says what they are.
    pub fn lists_imports_and_exports(&self) -> bool {
        self.config.component.is_some()
    }
}

/// A pulled artifact.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest of the manifest the reference resolved to.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: Manifest,
    /// Its one wasm layer: the component a precompiled artifact must have
    /// been compiled from.
    pub layer: Descriptor,
    /// What its config says, read leniently (see [`Resolved::config`]).
    pub config: ArtifactConfig,
    /// The content: a `.wasm`, or a `.cwasm` when a precompiled artifact
    /// for the requested target was found.
    pub bytes: Vec<u8>,
    /// The digest of `bytes` (checked).
    pub digest: Digest,
    /// What `bytes` is.
    pub content: Content,
}

/// What was pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The portable wasm layer.
    Wasm,
    /// A precompiled artifact.
    Cwasm {
        /// Its manifest digest.
        digest: Digest,
        /// The target triple it was asked for (and its manifest names).
        target: Target,
        /// Its descriptor (the config blob), unparsed: empty when the
        /// config is not a kiln descriptor. The caller checks it before
        /// using it.
        descriptor_json: Vec<u8>,
    },
}

impl Store {
    /// Opens the store a reference names; a layout is created when
    /// `create` is set.
    pub fn open(
        reference: &Reference,
        connection: &Connection,
        create: bool,
        reporter: &dyn Reporter,
    ) -> Result<Store> {
        match reference {
            Reference::Layout { dir, .. } => Ok(Store::Layout(Layout::open(dir, create)?)),
            Reference::Registry {
                registry,
                repository,
                ..
            } => {
                let (credentials, source) = auth::repository_credentials(
                    registry,
                    Some(repository),
                    Addressed::Directly,
                    reporter,
                )?;
                let token_services = match source {
                    Source::Environment { named: false } => {
                        reporter.warn(&format!(
                            "sending the credentials from `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` to `{registry}`, the registry this command addresses; set `KILN_REGISTRY={registry}` to name the registry they are for"
                        ));
                        TokenServices::SameHost
                    }
                    _ => {
                        if credentials != Credentials::Anonymous {
                            reporter.status(
                                "Using",
                                &format!("credentials for `{registry}` from {source}"),
                            );
                        }
                        TokenServices::Any
                    }
                };
                let client = Registry::with_token_services(
                    registry,
                    credentials,
                    token_services,
                    connection,
                    reporter,
                )?;
                Ok(Store::Registry {
                    client: Box::new(client),
                    repository: repository.clone(),
                })
            }
        }
    }

    fn has_blob(&self, d: &Descriptor) -> Result<bool> {
        match self {
            Store::Registry { client, repository } => client.has_blob(repository, d),
            Store::Layout(l) => l.has_blob(d),
        }
    }

    fn put_blob(&self, d: &Descriptor, data: &BlobData, reporter: &dyn Reporter) -> Result<()> {
        match self {
            Store::Registry { client, repository } => {
                let bar = reporter.progress(&format!("Uploading {}", short(&d.digest)), d.size);
                client.put_blob(repository, d, data, &|n| bar.inc(n))?;
                bar.finish();
                kiln_core::kill::point(kiln_core::kill::BLOB_STORED);
                Ok(())
            }
            Store::Layout(l) => match data {
                BlobData::Bytes(b) => l.put_blob(d, b),
                BlobData::File(p) => l.put_blob_file(d, p),
            },
        }
    }

    fn put_manifest(&self, bytes: &[u8], d: &Descriptor, tag: Option<&str>) -> Result<()> {
        match self {
            Store::Registry { client, repository } => {
                client.put_manifest(repository, bytes, &d.media_type, tag)?;
            }
            Store::Layout(l) => {
                l.put_blob(d, bytes)?;
                l.add_manifest(d, tag)?;
            }
        }
        kiln_core::kill::point(kiln_core::kill::MANIFEST_STORED);
        Ok(())
    }

    /// Fetches a manifest (or index) by tag or digest: bytes, media type,
    /// digest. `None` when there is none.
    pub(crate) fn manifest(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Option<(Vec<u8>, String, Digest)>> {
        match self {
            Store::Registry { client, repository } => client.get_manifest(repository, tag, digest),
            Store::Layout(l) => {
                let d = match (digest, tag) {
                    (Some(d), _) => {
                        let listed = d.to_string();
                        match l
                            .index()?
                            .manifests
                            .into_iter()
                            .find(|m| m.digest == listed)
                        {
                            Some(listed) => Some(listed),
                            None => l.stored_blob(d, MANIFEST_MEDIA_TYPE),
                        }
                    }
                    (None, Some(t)) => l.resolve_tag(t)?,
                    (None, None) => l.resolve_tag("latest")?,
                };
                let Some(d) = d else { return Ok(None) };
                let bytes = l.get_blob(&d)?;
                Ok(Some((bytes, d.media_type.clone(), d.sha256()?)))
            }
        }
    }

    /// Fetches a blob by its descriptor, checked against its digest and
    /// size; a descriptor whose digest is not sha256 is refused before
    /// anything is fetched.
    pub(crate) fn blob(&self, d: &Descriptor, reporter: &dyn Reporter) -> Result<Vec<u8>> {
        d.sha256()?;
        match self {
            Store::Registry { client, repository } => {
                let bar = reporter.progress(&format!("Downloading {}", short(&d.digest)), d.size);
                let bytes = client.get_blob(repository, d, &|n| bar.inc(n))?;
                bar.finish();
                Ok(bytes)
            }
            Store::Layout(l) => l.get_blob(d),
        }
    }

    /// Every tag, sorted.
    pub fn tags(&self) -> Result<Vec<String>> {
        match self {
            Store::Registry { client, repository } => client.tags(repository),
            Store::Layout(l) => l.tags(),
        }
    }

    /// The manifests referring to `subject`: the referrers API where a
    /// registry has one, else the `sha256-<hex>` index tag.
    pub fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        match self {
            Store::Registry { client, repository } => client.referrers(repository, subject),
            Store::Layout(_) => Ok(self.referrers_index(subject)?.manifests),
        }
    }

    /// The referrers tag schema's index for `subject`; empty when there is
    /// none. One that is there but does not parse is an error: replacing
    /// it with an empty one would drop every referrer it lists.
    fn referrers_index(&self, subject: &Digest) -> Result<Index> {
        let tag = referrers_tag(subject);
        match self.manifest(Some(&tag), None)? {
            Some((bytes, _, digest)) => Index::parse(&bytes).with_context(|| {
                format!(
                    "the referrers index `{tag}` ({digest}) is not an OCI image index; kiln will not replace it and lose what it lists: fix or delete that tag"
                )
            }),
            None => Ok(Index::default()),
        }
    }

    /// Stores a package that refers to another by its `subject`, without
    /// listing it among the referrers yet (see [`Store::add_referrers`]).
    /// Returns bytes uploaded.
    pub fn put_attachment(&self, package: &Package, reporter: &dyn Reporter) -> Result<u64> {
        self.store_package(package, None, reporter)
    }

    /// Lists manifests among `subject`'s referrers: on a registry with the
    /// referrers API, by having stored them; elsewhere with one update of
    /// the referrers tag schema's index, keeping what is listed there.
    pub fn add_referrers(&self, subject: &Digest, referrers: &[Descriptor]) -> Result<()> {
        // A registry with the referrers API lists a manifest among its
        // subject's referrers as soon as it is stored (it answers 404 to
        // the API otherwise, and the list comes from the tag below): when
        // every one is listed, there is nothing to add to a tag.
        if let Store::Registry { client, repository } = self
            && let Ok(listed) = client.referrers(repository, subject)
            && referrers
                .iter()
                .all(|r| listed.iter().any(|l| l.digest == r.digest))
        {
            return Ok(());
        }
        let tag = referrers_tag(subject);
        let missing = || -> Result<Vec<&Descriptor>> {
            let index = self.referrers_index(subject)?;
            Ok(referrers
                .iter()
                .filter(|r| !index.manifests.iter().any(|m| m.digest == r.digest))
                .collect())
        };
        let merge = || -> Result<bool> {
            let mut index = self.referrers_index(subject)?;
            let before = index.manifests.len();
            for referrer in referrers {
                if !index.manifests.iter().any(|m| m.digest == referrer.digest) {
                    index.manifests.push(referrer.clone());
                }
            }
            if index.manifests.len() == before {
                return Ok(false);
            }
            index.media_type = Some(INDEX_MEDIA_TYPE.to_string());
            let bytes = to_bytes(&index)?;
            let d = Descriptor::of(INDEX_MEDIA_TYPE, &bytes);
            self.put_manifest(&bytes, &d, Some(&tag))?;
            kiln_core::kill::point(kiln_core::kill::REFERRERS_UPDATED);
            Ok(true)
        };
        match self {
            Store::Layout(l) => {
                let _lock = l.lock()?;
                merge().map(drop)
            }
            Store::Registry { .. } => {
                converge(&format!("the referrers index `{tag}`"), merge, || {
                    Ok(missing()?.is_empty())
                })
            }
        }
    }

    /// Stores a package's blobs (skipping those already there) and then its
    /// manifest, under `tag` or by digest. Returns bytes uploaded.
    pub(crate) fn store_package(
        &self,
        package: &Package,
        tag: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<u64> {
        let uploaded = self.store_blobs(&package.blobs, reporter)?;
        self.put_manifest(&package.manifest, &package.descriptor, tag)?;
        Ok(uploaded)
    }

    /// Stores blobs, skipping those already there (or mounting them from
    /// another repository of the registry). Returns bytes uploaded.
    pub(crate) fn store_blobs(
        &self,
        blobs: &[crate::artifact::Blob],
        reporter: &dyn Reporter,
    ) -> Result<u64> {
        let mut uploaded = 0;
        let mut locations = match self {
            Store::Registry { .. } => Some(BlobLocations::load()),
            Store::Layout(_) => None,
        };
        for blob in blobs {
            let d = &blob.descriptor;
            let digest = d.sha256()?;
            let what = format!("{} ({})", short(&d.digest), d.media_type);
            if self.has_blob(d)? {
                reporter.status("Exists", &what);
            } else if let (
                Store::Registry {
                    client, repository, ..
                },
                Some(locs),
            ) = (self, &locations)
                && let Some(from) = locs.find(client.host(), &digest, repository)
                && client.mount_blob(repository, from, d)
                && client.has_blob(repository, d)?
            {
                reporter.status("Mounted", &format!("{what} from `{from}`"));
            } else {
                self.put_blob(d, &blob.data, reporter)?;
                uploaded += d.size;
            }
            if let (Store::Registry { client, repository }, Some(locs)) = (self, &mut locations) {
                locs.record(client.host(), &digest, repository);
            }
        }
        if let Some(locs) = &mut locations {
            locs.save();
        }
        Ok(uploaded)
    }

    /// Authenticates for pushing ahead of [`Store::push`] (which then does
    /// not again), so the round trips to a registry and its token service
    /// can overlap the local work of hashing and describing the input.
    pub fn prepare_push(&self) -> Result<()> {
        match self {
            Store::Registry { client, repository } => client.authenticate(repository, true),
            Store::Layout(_) => Ok(()),
        }
    }

    /// Pushes a Wasm artifact under the reference's tag (or by digest
    /// alone), then each attached precompiled artifact as a referrer.
    pub fn push(
        &self,
        reference: &Reference,
        package: &Package,
        attachments: &[Package],
        reporter: &dyn Reporter,
    ) -> Result<Pushed> {
        if reference.digest().is_some() {
            bail!("push to a tag (`REPO:TAG`), not a digest: the digest is what the push computes");
        }
        if let Store::Registry { client, repository } = self {
            client.authenticate(repository, true)?;
        }
        let mut uploaded = self.store_package(package, reference.tag(), reporter)?;
        reporter.status(
            "Pushed",
            &format!("{} {}", reference, package.descriptor.digest),
        );
        for a in attachments {
            uploaded += self.store_package(a, None, reporter)?;
        }
        let attached: Vec<Descriptor> = attachments.iter().map(|a| a.descriptor.clone()).collect();
        if !attached.is_empty() {
            self.add_referrers(&package.digest(), &attached)?;
        }
        let mut referrers = Vec::new();
        for a in attachments {
            let target = a.descriptor.annotations.get(ANNOTATION_TARGET).cloned();
            reporter.status(
                "Attached",
                &format!(
                    "{} {}",
                    target.as_deref().unwrap_or("artifact"),
                    a.descriptor.digest
                ),
            );
            referrers.push(PushedReferrer {
                digest: a.digest(),
                artifact_type: a.descriptor.artifact_type.clone().unwrap_or_default(),
                target,
            });
        }
        let m = Manifest::parse(&package.manifest)?;
        Ok(Pushed {
            reference: format!("{reference}@{}", package.descriptor.digest),
            digest: package.digest(),
            size: package.descriptor.size,
            media_type: package.descriptor.media_type.clone(),
            config_media_type: m.config.media_type.clone(),
            layer_media_types: m.layers.iter().map(|l| l.media_type.clone()).collect(),
            uploaded_bytes: uploaded,
            referrers,
        })
    }

    /// Stores `package` (a manifest whose `subject` is `subject`) and lists
    /// it among `subject`'s referrers. Returns bytes uploaded.
    pub fn attach(
        &self,
        subject: &Digest,
        package: &Package,
        reporter: &dyn Reporter,
    ) -> Result<u64> {
        self.attach_all(subject, std::slice::from_ref(package), reporter)
    }

    /// Stores several packages referring to `subject` and lists them among
    /// its referrers with one update of the referrers index. Returns bytes
    /// uploaded.
    pub fn attach_all(
        &self,
        subject: &Digest,
        packages: &[Package],
        reporter: &dyn Reporter,
    ) -> Result<u64> {
        let mut uploaded = 0;
        for package in packages {
            uploaded += self.put_attachment(package, reporter)?;
        }
        let descriptors: Vec<Descriptor> = packages.iter().map(|p| p.descriptor.clone()).collect();
        self.add_referrers(subject, &descriptors)?;
        Ok(uploaded)
    }

    /// The layer of the first referrer of `subject` with `artifact_type`,
    /// checked against its digest: the manifest digest and the bytes.
    pub fn referrer_layer(
        &self,
        subject: &Digest,
        artifact_type: &str,
        reporter: &dyn Reporter,
    ) -> Result<Option<(Digest, Vec<u8>)>> {
        let Some(r) = self
            .verified_referrers(subject, Allowed::Types(&[artifact_type]), reporter)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let layer = r
            .manifest
            .layers
            .iter()
            .find(|l| l.media_type == artifact_type)
            .with_context(|| format!("the referrer {} has no `{artifact_type}` layer", r.digest))?;
        Ok(Some((r.digest, self.blob(layer, reporter)?)))
    }

    /// Resolves a reference to its Wasm artifact's manifest and config,
    /// without downloading the wasm layer.
    ///
    /// Strict in what kiln pushes, lenient in what it reads: any manifest
    /// with exactly one wasm layer (`application/wasm` or an older Wasm
    /// layer type) resolves, whatever its config: the OCI empty config
    /// `oras push` writes, a Wasm config whose body is `{}` or empty, or
    /// another type. What the config does not say is warned about, naming
    /// what is missing. No wasm layer, or several, is an error.
    pub fn resolve(&self, reference: &Reference, reporter: &dyn Reporter) -> Result<Resolved> {
        let (bytes, media_type, digest) = self
            .manifest(reference.tag(), reference.digest())?
            .with_context(|| format!("`{reference}` does not exist"))?;
        if media_type == INDEX_MEDIA_TYPE {
            bail!("`{reference}` is an image index, not a Wasm artifact");
        }
        let manifest = Manifest::parse(&bytes)
            .with_context(|| format!("`{reference}` is not an OCI image manifest"))?;
        let layer = wasm_layer(reference, &manifest)?.clone();
        layer.sha256()?;
        if layer.media_type != WASM_LAYER_MEDIA_TYPE {
            reporter.warn(&format!(
                "the wasm layer of `{reference}` has the older media type `{}`; kiln reads it as `{WASM_LAYER_MEDIA_TYPE}`",
                layer.media_type
            ));
        }
        let config = self.artifact_config(reference, &manifest, reporter)?;
        Ok(Resolved {
            digest,
            manifest,
            layer,
            config,
        })
    }

    /// Reads a Wasm artifact's config leniently, warning about what it
    /// does not say. Only a config of the Wasm media type is downloaded
    /// (checked against its digest and size); kiln reads nothing from a
    /// config of another type.
    fn artifact_config(
        &self,
        reference: &Reference,
        manifest: &Manifest,
        reporter: &dyn Reporter,
    ) -> Result<ArtifactConfig> {
        const NOT_LISTED: &str = "imports, exports and metadata are not listed";
        if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
            reporter.warn(&format!(
                "the config of `{reference}` is `{}`, not a Wasm config (`{WASM_CONFIG_MEDIA_TYPE}`): {NOT_LISTED}",
                manifest.config.media_type
            ));
            return Ok(ArtifactConfig::default());
        }
        let bytes = self.blob(&manifest.config, reporter)?;
        let config = match ArtifactConfig::read(&bytes) {
            Ok(config) => config,
            Err(why) => {
                reporter.warn(&format!(
                    "the Wasm config of `{reference}` cannot be read ({why}): {NOT_LISTED}"
                ));
                return Ok(ArtifactConfig::default());
            }
        };
        if config == ArtifactConfig::default() {
            reporter.warn(&format!(
                "the Wasm config of `{reference}` lists nothing: {NOT_LISTED}"
            ));
            return Ok(config);
        }
        let missing = config.missing();
        if !missing.is_empty() {
            reporter.warn(&format!(
                "the Wasm config of `{reference}` lacks {}",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // A core module's config has no `component` block; any other
        // that lacks it leaves the imports and exports unsaid.
        if config.component.is_none() && config.kind() != Some(kiln_core::WasmKind::CoreModule) {
            reporter.warn(&format!(
                "the Wasm config of `{reference}` does not list imports and exports"
            ));
        }
        Ok(config)
    }

    /// Downloads a resolved artifact's wasm layer ([`Resolved::layer`]),
    /// checked against its digest and size, and refused unless it is a
    /// wasm module or component.
    pub fn wasm_bytes(
        &self,
        reference: &Reference,
        layer: &Descriptor,
        reporter: &dyn Reporter,
    ) -> Result<Vec<u8>> {
        let bytes = self.blob(layer, reporter)?;
        if kiln_core::WasmKind::sniff(&bytes).is_none() {
            bail!("the layer of `{reference}` is not a wasm module or component");
        }
        Ok(bytes)
    }

    /// Pulls a Wasm artifact; with `target`, the precompiled artifact for
    /// that triple made by `wasmtime_major` when one is attached.
    pub fn pull(
        &self,
        reference: &Reference,
        target: Option<Target>,
        wasmtime_major: &str,
        reporter: &dyn Reporter,
    ) -> Result<Pulled> {
        let Resolved {
            digest,
            manifest,
            layer,
            config,
        } = self.resolve(reference, reporter)?;
        if let Some(target) = target {
            // The target and Wasmtime release are read from the referrer's
            // own manifest, which the helper fetched by digest, never from
            // the list that named it.
            let found = self
                .verified_referrers(&digest, Allowed::Types(&[CWASM_ARTIFACT_TYPE]), reporter)?
                .into_iter()
                .find(|r| {
                    r.annotations().get(ANNOTATION_TARGET).map(String::as_str)
                        == Some(target.as_str())
                        && r.annotations()
                            .get(ANNOTATION_WASMTIME)
                            .is_some_and(|v| v.split('.').next() == Some(wasmtime_major))
                });
            if let Some(r) = found {
                let m = &r.manifest;
                let cwasm_layer = m
                    .layers
                    .iter()
                    .find(|l| l.media_type == CWASM_LAYER_MEDIA_TYPE)
                    .with_context(|| {
                        format!("the referrer {} has no precompiled layer", r.digest)
                    })?;
                let cwasm_digest = cwasm_layer.sha256()?;
                let descriptor_json = if m.config.media_type == CWASM_CONFIG_MEDIA_TYPE {
                    self.blob(&m.config, reporter)?
                } else {
                    Vec::new()
                };
                let cwasm = self.blob(cwasm_layer, reporter)?;
                return Ok(Pulled {
                    digest: cwasm_digest,
                    manifest_digest: digest,
                    manifest,
                    layer,
                    config,
                    bytes: cwasm,
                    content: Content::Cwasm {
                        digest: r.digest,
                        target,
                        descriptor_json,
                    },
                });
            }
            reporter.status(
                "Portable",
                &format!("no precompiled artifact for {target} (Wasmtime {wasmtime_major}); pulling the component"),
            );
        }
        let bytes = self.wasm_bytes(reference, &layer, reporter)?;
        Ok(Pulled {
            digest: layer.sha256()?,
            manifest_digest: digest,
            manifest,
            layer,
            config,
            bytes,
            content: Content::Wasm,
        })
    }
}

/// A manifest's one wasm layer. No wasm layer means it is not a Wasm
/// artifact; several are refused rather than one guessed at.
fn wasm_layer<'m>(reference: &Reference, manifest: &'m Manifest) -> Result<&'m Descriptor> {
    let quoted = |types: &mut dyn Iterator<Item = &str>| {
        types
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wasm: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| is_wasm_layer(&l.media_type))
        .collect();
    match wasm.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "`{reference}` is not a Wasm artifact: none of its layers is wasm (`{WASM_LAYER_MEDIA_TYPE}` or an older Wasm layer type); its config is `{}` and its layers are {}",
            manifest.config.media_type,
            if manifest.layers.is_empty() {
                "none".to_string()
            } else {
                quoted(&mut manifest.layers.iter().map(|l| l.media_type.as_str()))
            }
        ),
        several => bail!(
            "`{reference}` has {} wasm layers ({}); kiln reads an artifact with exactly one and does not guess which is meant",
            several.len(),
            quoted(&mut several.iter().map(|l| l.media_type.as_str()))
        ),
    }
}

/// `sha256:` and the first 12 hex digits, for messages.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

/// How many times kiln writes a referrers index or a signature manifest on
/// a registry before it gives up on concurrent writers.
const CONVERGE_ATTEMPTS: u32 = 8;

/// Updates state on a registry shared by concurrent writers (a referrers
/// index, a signature manifest), which offers no compare-and-swap: `write`
/// reads what is there, adds this process's entries and stores the result
/// (saying whether there was anything to store);
/// then, after a pause as long as a writer that read before this one wrote
/// needs to finish its own write, `present` reads it again and checks the
/// entries are still there. If another writer replaced them, it starts
/// over. Each writer's entries end up listed: this converges under
/// concurrent writers, within [`CONVERGE_ATTEMPTS`] rounds.
pub(crate) fn converge(
    what: &str,
    mut write: impl FnMut() -> Result<bool>,
    mut present: impl FnMut() -> Result<bool>,
) -> Result<()> {
    for attempt in 1..=CONVERGE_ATTEMPTS {
        let started = std::time::Instant::now();
        if !write()? {
            // Everything was listed already: nothing of this process's to
            // lose.
            return Ok(());
        }
        // Another writer's read-modify-write takes about as long as this
        // one's did; jitter keeps retrying writers from meeting again.
        let took = started.elapsed();
        let pause = (took * 2 + std::time::Duration::from_millis(fastrand::u64(20..120)))
            .min(std::time::Duration::from_secs(2));
        std::thread::sleep(pause);
        if present()? {
            return Ok(());
        }
        if attempt == CONVERGE_ATTEMPTS {
            break;
        }
    }
    bail!(
        "{what} kept being replaced by other writers ({CONVERGE_ATTEMPTS} attempts); run the command again"
    )
}
