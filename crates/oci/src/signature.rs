//! Signatures stored as cosign stores them: Sigstore bundles as referrers, and the legacy `.sig` tag.
//!
//! The legacy tag `sha256-<hex>.sig` names an OCI manifest in the signed artifact's repository with one
//! `application/vnd.dev.cosign.simplesigning.v1+json` layer per signature, the
//! base64 signature in its `dev.cosignproject.cosign/signature` annotation.

use crate::artifact::{Blob, Descriptor, MANIFEST_MEDIA_TYPE, Manifest, Package, to_bytes};
use crate::store::Store;
use anyhow::{Context, Result};
use kiln_core::{Digest, Reporter};

/// The media type of a signed payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The config media type of cosign's signature manifests.
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The tag holding the signatures of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// One stored signature.
#[derive(Debug, Clone)]
pub struct StoredSignature {
    /// The digest of the signature manifest holding it.
    pub manifest: Digest,
    /// The payload's bytes (digest checked).
    pub payload: Vec<u8>,
    /// The base64 signature from the annotation.
    pub signature: String,
}

/// The config cosign writes: an image config whose `diff_ids` list the
/// payload digests.
fn config(layers: &[Descriptor]) -> Result<Vec<u8>> {
    to_bytes(&serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
    }))
}

impl Store {
    /// The digest a reference names (its manifest's, for a tag).
    pub fn resolve_digest(&self, reference: &crate::Reference) -> Result<Digest> {
        let (_, _, digest) = self
            .manifest(reference.tag(), reference.digest())?
            .with_context(|| format!("`{reference}` does not exist"))?;
        Ok(digest)
    }

    /// The descriptor of the manifest stored under `digest` (its media
    /// type and size, as a referrer's `subject` names it).
    pub fn descriptor(&self, digest: &Digest) -> Result<Descriptor> {
        let (bytes, media_type, _) = self
            .manifest(None, Some(digest))?
            .with_context(|| format!("the manifest {digest} does not exist"))?;
        Ok(Descriptor::new(&media_type, digest, bytes.len() as u64))
    }

    /// Signs nothing itself: stores a Sigstore bundle (made by the caller)
    /// as a referrer of `subject`, as cosign v3 does, under the referrers
    /// rule of [`Store::attach`] (a layout's lock; on a registry without the
    /// referrers API, a fallback index rewritten until it lists the bundle).
    /// Returns the referrer manifest's digest.
    pub fn add_bundle(
        &self,
        subject: &Descriptor,
        bundle: Vec<u8>,
        predicate_type: &str,
        created: &str,
        reporter: &dyn Reporter,
    ) -> Result<Digest> {
        let package = crate::artifact::bundle_package(bundle, predicate_type, subject, created)?;
        self.attach(&subject.sha256()?, &package, reporter)?;
        kiln_core::kill::point(kiln_core::kill::SIGNATURE_STORED);
        Ok(package.digest())
    }

    /// The signature manifest of `subject` and its digest, if any.
    fn signature_manifest(&self, subject: &Digest) -> Result<Option<(Manifest, Digest)>> {
        let tag = signature_tag(subject);
        match self.manifest(Some(&tag), None)? {
            Some((bytes, _, digest)) => {
                let manifest = Manifest::parse(&bytes).with_context(|| {
                    format!("the signature manifest `{tag}` is not an OCI image manifest")
                })?;
                Ok(Some((manifest, digest)))
            }
            None => Ok(None),
        }
    }

    /// Every signature stored for `subject`. Layers that are not
    /// signatures, or whose payload is missing or does not match its
    /// digest, come back as the reason they were skipped.
    pub fn signatures(
        &self,
        subject: &Digest,
        reporter: &dyn Reporter,
    ) -> Result<Vec<std::result::Result<StoredSignature, String>>> {
        let Some((manifest, manifest_digest)) = self.signature_manifest(subject)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for layer in &manifest.layers {
            if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
                out.push(Err(format!(
                    "layer {} is `{}`, not a signature",
                    layer.digest, layer.media_type
                )));
                continue;
            }
            let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
                out.push(Err(format!(
                    "layer {} has no signature annotation",
                    layer.digest
                )));
                continue;
            };
            if layer.sha256().is_err() || layer.size > 1 << 20 {
                out.push(Err(format!("layer {} is malformed", layer.digest)));
                continue;
            }
            match self.blob(layer, reporter) {
                Ok(payload) => out.push(Ok(StoredSignature {
                    manifest: manifest_digest,
                    payload,
                    signature: signature.clone(),
                })),
                Err(e) => out.push(Err(format!("payload {}: {e:#}", layer.digest))),
            }
        }
        Ok(out)
    }

    /// Adds a signature of `subject` to its signature manifest (creating
    /// it), keeping the signatures already there. Returns the signature
    /// manifest's digest.
    ///
    /// The manifest is shared by every signer of `subject`: on a layout it
    /// is read, extended and written under the layout's lock; on a
    /// registry, which has no compare-and-swap, the payload is uploaded
    /// first and the read-extend-write is repeated until the signature is
    /// seen listed after other writers had time to finish (see
    /// [`crate::store::converge`]).
    pub fn add_signature(
        &self,
        subject: &Digest,
        payload: Vec<u8>,
        signature: &str,
        reporter: &dyn Reporter,
    ) -> Result<Digest> {
        let tag = signature_tag(subject);
        let mut layer = Blob::bytes(SIMPLE_SIGNING_MEDIA_TYPE, payload);
        layer
            .descriptor
            .annotations
            .insert(SIGNATURE_ANNOTATION.to_string(), signature.to_string());
        let ours = |l: &Descriptor| {
            l.digest == layer.descriptor.digest
                && l.annotations.get(SIGNATURE_ANNOTATION).map(String::as_str) == Some(signature)
        };
        let listed = || -> Result<Vec<Descriptor>> {
            Ok(self
                .signature_manifest(subject)?
                .map(|(m, _)| m.layers)
                .unwrap_or_default())
        };
        if listed()?.iter().any(ours) {
            // The same signature of the same payload: a rerun (after an
            // interruption, say) has nothing to add.
            reporter.status("Exists", &format!("this signature of {subject}"));
        }
        let mut digest = None;
        // The payload goes up once, before the shared manifest is read, so
        // the read-extend-write below is as short as it can be.
        self.store_blobs(std::slice::from_ref(&layer), reporter)?;
        let mut write = || -> Result<bool> {
            let mut layers = listed()?;
            if layers.iter().any(ours) {
                return Ok(false);
            }
            layers.push(layer.descriptor.clone());
            let config = Blob::bytes(CONFIG_MEDIA_TYPE, config(&layers)?);
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
                artifact_type: None,
                config: config.descriptor.clone(),
                layers,
                subject: None,
                annotations: Default::default(),
            };
            let bytes = to_bytes(&manifest)?;
            let package = Package {
                descriptor: Descriptor::of(MANIFEST_MEDIA_TYPE, &bytes),
                manifest: bytes,
                // The payload is stored already.
                blobs: vec![config],
            };
            self.store_package(&package, Some(&tag), reporter)?;
            kiln_core::kill::point(kiln_core::kill::SIGNATURE_STORED);
            digest = Some(package.digest());
            Ok(true)
        };
        match self {
            Store::Layout(l) => {
                let _lock = l.lock()?;
                write()?;
            }
            Store::Registry { .. } => {
                crate::store::converge(&format!("the signature manifest `{tag}`"), write, || {
                    Ok(listed()?.iter().any(ours))
                })?;
            }
        }
        // The manifest as it now stands (another writer may have extended
        // it since, or listed this very signature first).
        match (self.manifest(Some(&tag), None)?, digest) {
            (Some((_, _, now)), _) => Ok(now),
            (None, Some(written)) => Ok(written),
            (None, None) => anyhow::bail!("the signature manifest `{tag}` is gone"),
        }
    }
}
