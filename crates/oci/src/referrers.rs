//! Following referrers safely: the one way kiln reads what is attached to a manifest.
//!
//! Each referrer is fetched by digest and kept only when it really refers to
//! that manifest and is of a type the caller asked for.
//!
//! A referrers list (the registry's referrers API, or the `sha256-<hex>`
//! index tag of the referrers tag schema) is written by anyone with push
//! rights to the repository, and says nothing kiln can trust on its own: an
//! entry may name an unrelated manifest, claim an artifact type its manifest
//! does not have, or not exist at all. Every caller that acts on referrers
//! (`sign --recursive`, `pull --target`, `inspect REF`, reuse in `publish`)
//! goes through [`Store::verified_referrers`], which trusts nothing from the
//! list but the digests to look at.

#[cfg(feature = "net")]
use crate::artifact::{ANNOTATION_BUNDLE_PREDICATE_TYPE, SIGSTORE_BUNDLE_MEDIA_TYPE};
use crate::artifact::{Descriptor, MANIFEST_MEDIA_TYPE, Manifest, digest_algorithm};
#[cfg(feature = "net")]
use crate::store::Store;
#[cfg(feature = "net")]
use anyhow::Result;
use kiln_core::Digest;
#[cfg(feature = "net")]
use kiln_core::Reporter;
use std::collections::BTreeMap;

/// A referrer whose manifest kiln fetched by digest and checked: its
/// `subject` is the digest it was listed for and its artifact type is one
/// the caller allowed.
#[derive(Debug, Clone)]
pub struct VerifiedReferrer {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// The referrer manifest's size.
    pub size: u64,
    /// The artifact type, from the manifest itself (its `artifactType`, else
    /// its config's media type), not from the list.
    pub artifact_type: String,
    /// The manifest, as fetched and parsed.
    pub manifest: Manifest,
}

impl VerifiedReferrer {
    /// The manifest's annotations (the list's copy of them is not trusted).
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.manifest.annotations
    }

    /// A descriptor of the referrer manifest, as an index lists it, built
    /// from what was fetched.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            artifact_type: Some(self.artifact_type.clone()),
            annotations: self.manifest.annotations.clone(),
            ..Descriptor::new(MANIFEST_MEDIA_TYPE, &self.digest, self.size)
        }
    }
}

/// Which artifact types a caller of [`Store::verified_referrers`] acts on.
#[derive(Debug, Clone, Copy)]
pub enum Allowed<'a> {
    /// Every type (for showing what is attached, not acting on it).
    Any,
    /// Only these.
    Types(&'a [&'a str]),
}

impl Allowed<'_> {
    fn allows(&self, artifact_type: &str) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::Types(types) => types.contains(&artifact_type),
        }
    }
}

/// The artifact type of a manifest as the image spec defines it: its
/// `artifactType`, else its config's media type.
pub fn artifact_type_of(manifest: &Manifest) -> &str {
    manifest
        .artifact_type
        .as_deref()
        .unwrap_or(&manifest.config.media_type)
}

/// The digest kiln follows a listed referrer by: its sha256 digest, or
/// why it cannot be followed.
fn listed_digest(listed: &Descriptor) -> Result<Digest, String> {
    listed
        .sha256()
        .map_err(|_| match digest_algorithm(&listed.digest) {
            Some(algorithm) => {
                format!("its digest is `{algorithm}`, and kiln follows sha256 digests only")
            }
            None => "its digest is malformed".to_string(),
        })
}

/// Checks one referrer of `subject` from the bytes of its manifest: what
/// [`Store::verified_referrers`] does with each manifest it fetched for an
/// entry `listed` in a referrers list. `manifest` must be what was fetched
/// by `listed`'s digest (the store checks content against its digest; this
/// does not hash it again).
///
/// Kept only when `listed` has a sha256 digest, the bytes are an image
/// manifest whose `subject` is `subject`, whose own artifact type (its
/// `artifactType`, else its config's media type) is in `allowed`, and
/// whose type agrees with what the list claims. Otherwise the reason it is
/// skipped, as the warning says it after "skipped the referrer … listed for
/// …: ".
pub fn judge(
    manifest: &[u8],
    subject: &Digest,
    listed: &Descriptor,
    allowed: Allowed<'_>,
) -> Result<VerifiedReferrer, String> {
    let digest = listed_digest(listed)?;
    let size = manifest.len() as u64;
    let manifest =
        Manifest::parse(manifest).map_err(|_| "it is not an OCI image manifest".to_string())?;
    match manifest.subject.as_ref().map(|s| s.digest.as_str()) {
        Some(s) if s == subject.to_string() => {}
        Some(other) => return Err(format!("it refers to {other}, not to {subject}")),
        None => return Err("it has no subject".to_string()),
    }
    let artifact_type = artifact_type_of(&manifest).to_string();
    if !allowed.allows(&artifact_type) {
        return Err(format!(
            "it is `{artifact_type}`, which is not what was asked for here"
        ));
    }
    if let Some(t) = listed.artifact_type.as_deref()
        && t != artifact_type
    {
        return Err(format!(
            "it is listed as `{t}` but its manifest says `{artifact_type}`"
        ));
    }
    Ok(VerifiedReferrer {
        digest,
        size,
        artifact_type,
        manifest,
    })
}

#[cfg(feature = "net")]
impl Store {
    /// The referrers of `subject` whose artifact type is in `allowed`, each
    /// fetched by digest and kept only when its manifest's `subject` is
    /// `subject` and its own artifact type is in `allowed`.
    ///
    /// Entries of other types are passed over without fetching them (they
    /// are legitimate attachments the caller did not ask for). Entries that
    /// do not check out — a malformed digest, a manifest that is missing,
    /// is not an image manifest, refers to another digest, or is of another
    /// type than listed — are skipped with a warning naming them. Each
    /// manifest is kept once, however often it is listed.
    pub fn verified_referrers(
        &self,
        subject: &Digest,
        allowed: Allowed<'_>,
        reporter: &dyn Reporter,
    ) -> Result<Vec<VerifiedReferrer>> {
        let mut kept: Vec<VerifiedReferrer> = Vec::new();
        for listed in self.referrers(subject)? {
            if let Some(t) = listed.artifact_type.as_deref()
                && !allowed.allows(t)
            {
                continue;
            }
            let skip = |why: String| {
                reporter.warn(&format!(
                    "skipped the referrer {} listed for {subject}: {why}",
                    listed.digest
                ));
            };
            // The list parsed: an entry with a digest kiln cannot follow
            // is skipped, never a reason to drop the others.
            let digest = match listed_digest(&listed) {
                Ok(digest) => digest,
                Err(why) => {
                    skip(why);
                    continue;
                }
            };
            if kept.iter().any(|k| k.digest == digest) {
                continue;
            }
            let bytes = match self.manifest(None, Some(&digest)) {
                Ok(Some((bytes, _, _))) => bytes,
                Ok(None) => {
                    skip("its manifest does not exist".to_string());
                    continue;
                }
                Err(e) => {
                    skip(format!("its manifest could not be fetched: {e:#}"));
                    continue;
                }
            };
            match judge(&bytes, subject, &listed, allowed) {
                Ok(referrer) => kept.push(referrer),
                Err(why) => skip(why),
            }
        }
        Ok(kept)
    }

    /// The Sigstore bundles attached to `subject` as cosign v3 attaches
    /// signatures: each referrer of the bundle type with exactly one layer
    /// of a Sigstore bundle media type, of at most `max_bytes`, fetched and
    /// checked against its digest. Referrers of that type that do not fit
    /// are skipped with a warning, as cosign skips them. `wanted` is asked
    /// first with what each referrer's (unsigned) predicate type annotation
    /// says, so bundles of no interest (attestations, to a signature
    /// verifier) are not even fetched.
    pub fn bundles(
        &self,
        subject: &Digest,
        max_bytes: u64,
        wanted: &dyn Fn(Option<&str>) -> bool,
        reporter: &dyn Reporter,
    ) -> Result<Vec<FoundBundle>> {
        let mut found = Vec::new();
        for r in self.verified_referrers(
            subject,
            Allowed::Types(&[SIGSTORE_BUNDLE_MEDIA_TYPE]),
            reporter,
        )? {
            let skip = |why: &str| {
                reporter.warn(&format!(
                    "skipped the Sigstore bundle referrer {} of {subject}: {why}",
                    r.digest
                ));
            };
            let predicate_type = r
                .manifest
                .annotations
                .get(ANNOTATION_BUNDLE_PREDICATE_TYPE)
                .cloned();
            if !wanted(predicate_type.as_deref()) {
                continue;
            }
            let [layer] = r.manifest.layers.as_slice() else {
                skip(&format!(
                    "it has {} layers; a bundle referrer has exactly one",
                    r.manifest.layers.len()
                ));
                continue;
            };
            if !layer
                .media_type
                .starts_with("application/vnd.dev.sigstore.bundle")
            {
                skip(&format!("its layer is `{}`", layer.media_type));
                continue;
            }
            if layer.size > max_bytes {
                skip(&format!(
                    "its bundle is {} bytes, over the limit of {max_bytes}",
                    layer.size
                ));
                continue;
            }
            if layer.sha256().is_err() {
                skip("its layer's digest is malformed");
                continue;
            }
            match self.blob(layer, reporter) {
                Ok(bytes) => found.push(FoundBundle {
                    manifest: r.digest,
                    predicate_type,
                    bytes,
                }),
                Err(e) => skip(&format!("its bundle could not be fetched: {e:#}")),
            }
        }
        Ok(found)
    }
}

/// A Sigstore bundle attached as a referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundBundle {
    /// The referrer manifest's digest.
    pub manifest: Digest,
    /// What the referrer's `dev.sigstore.bundle.predicateType` annotation
    /// says the statement is: unsigned, so only a hint for sorting
    /// signatures from attestations, never a reason to trust one.
    pub predicate_type: Option<String>,
    /// The bundle's bytes, checked against their digest.
    pub bytes: Vec<u8>,
}

#[cfg(test)]
#[cfg(feature = "net")]
mod tests {
    use super::*;
    use crate::artifact::{
        EMPTY_MEDIA_TYPE, INDEX_MEDIA_TYPE, Index, bundle_package, referrers_tag, sbom_package,
        to_bytes,
    };
    use crate::layout::Layout;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl Reporter for Warnings {
        fn status(&self, _verb: &str, _message: &str) {}
        fn warn(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn a_referrers_index_with_a_sha512_entry_parses_and_its_sha256_entry_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path(), true).unwrap();
        let subject = Descriptor::of(MANIFEST_MEDIA_TYPE, b"the subject");

        // A referrer of `subject`, stored by its sha256 digest.
        let referrer = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            artifact_type: Some("application/x-test".to_string()),
            config: Descriptor::of(EMPTY_MEDIA_TYPE, b"{}"),
            layers: Vec::new(),
            subject: Some(subject.clone()),
            annotations: BTreeMap::new(),
        };
        let bytes = to_bytes(&referrer).unwrap();
        let mut listed = Descriptor::of(MANIFEST_MEDIA_TYPE, &bytes);
        listed.artifact_type = Some("application/x-test".to_string());
        layout.put_blob(&listed, &bytes).unwrap();

        // The referrers index lists a sha512 referrer first, then that one.
        let sha512 = Descriptor {
            digest: format!("sha512:{}", "c".repeat(128)),
            ..listed.clone()
        };
        let index = Index {
            manifests: vec![sha512.clone(), listed.clone()],
            ..Index::default()
        };
        let index_bytes = to_bytes(&index).unwrap();
        let d = Descriptor::of(INDEX_MEDIA_TYPE, &index_bytes);
        layout.put_blob(&d, &index_bytes).unwrap();
        let subject = subject.sha256().unwrap();
        let tag = referrers_tag(&subject);
        layout.add_manifest(&d, Some(&tag)).unwrap();

        let store = Store::Layout(layout);
        assert_eq!(store.referrers(&subject).unwrap(), index.manifests);
        let warnings = Warnings::default();
        let kept = store
            .verified_referrers(&subject, Allowed::Any, &warnings)
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].digest.to_string(), listed.digest);
        assert_eq!(kept[0].artifact_type, "application/x-test");
        assert_eq!(kept[0].descriptor(), listed);
        let warnings = warnings.0.into_inner().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(&sha512.digest) && warnings[0].contains("`sha512`"),
            "{warnings:?}"
        );
    }

    #[test]
    fn bundles_are_the_bundle_referrers_within_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Layout(crate::layout::Layout::open(dir.path(), true).unwrap());
        let subject = Descriptor::of(MANIFEST_MEDIA_TYPE, b"{\"schemaVersion\":2}");
        let bundle = b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}".to_vec();
        let signature = bundle_package(
            bundle.clone(),
            "https://sigstore.dev/cosign/sign/v1",
            &subject,
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        let sbom = sbom_package(b"{}".to_vec(), &subject, "1970-01-01T00:00:00Z").unwrap();
        let warnings = Warnings::default();
        let subject = subject.sha256().unwrap();
        store
            .attach_all(&subject, &[signature.clone(), sbom], &warnings)
            .unwrap();
        let found = store
            .bundles(&subject, 1 << 20, &|_| true, &warnings)
            .unwrap();
        assert_eq!(
            found,
            [FoundBundle {
                manifest: signature.digest(),
                predicate_type: Some("https://sigstore.dev/cosign/sign/v1".to_string()),
                bytes: bundle.clone(),
            }]
        );
        assert!(warnings.0.lock().unwrap().is_empty());
        // Over the limit: skipped, with a warning naming it.
        let found = store.bundles(&subject, 10, &|_| true, &warnings).unwrap();
        assert!(found.is_empty());
        let said = warnings.0.lock().unwrap().join("\n");
        assert!(
            said.contains(&signature.descriptor.digest) && said.contains("over the limit"),
            "{said}"
        );
    }
}

/// [`judge`] alone: it needs no store, so these run without the `net`
/// feature too.
#[cfg(test)]
mod judge_tests {
    use super::*;
    use crate::artifact::{EMPTY_MEDIA_TYPE, to_bytes};

    const TYPE: &str = "application/x-test";

    fn subject() -> Descriptor {
        Descriptor::of(MANIFEST_MEDIA_TYPE, b"the subject")
    }

    fn referrer(subject: Option<Descriptor>, artifact_type: Option<&str>) -> Vec<u8> {
        to_bytes(&Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            artifact_type: artifact_type.map(str::to_string),
            config: Descriptor::of(EMPTY_MEDIA_TYPE, b"{}"),
            layers: Vec::new(),
            subject,
            annotations: BTreeMap::new(),
        })
        .unwrap()
    }

    fn listed(bytes: &[u8], artifact_type: Option<&str>) -> Descriptor {
        Descriptor {
            artifact_type: artifact_type.map(str::to_string),
            ..Descriptor::of(MANIFEST_MEDIA_TYPE, bytes)
        }
    }

    #[test]
    fn a_referrer_of_the_subject_and_an_allowed_type_is_kept() {
        let s = subject();
        let digest = s.sha256().unwrap();
        let bytes = referrer(Some(s), Some(TYPE));
        let kept = judge(
            &bytes,
            &digest,
            &listed(&bytes, Some(TYPE)),
            Allowed::Types(&[TYPE]),
        )
        .unwrap();
        assert_eq!(kept.digest, Digest::of(&bytes));
        assert_eq!(kept.size, bytes.len() as u64);
        assert_eq!(kept.artifact_type, TYPE);
        assert_eq!(kept.descriptor(), listed(&bytes, Some(TYPE)));
        // Unlisted type: the manifest's config media type is its type.
        let bytes = referrer(Some(subject()), None);
        let kept = judge(&bytes, &digest, &listed(&bytes, None), Allowed::Any).unwrap();
        assert_eq!(kept.artifact_type, EMPTY_MEDIA_TYPE);
    }

    #[test]
    fn referrers_that_do_not_check_out_say_why() {
        let s = subject();
        let digest = s.sha256().unwrap();
        let elsewhere = Descriptor::of(MANIFEST_MEDIA_TYPE, b"another");
        let good = referrer(Some(s.clone()), Some(TYPE));
        let sha512 = Descriptor {
            digest: format!("sha512:{}", "c".repeat(128)),
            ..listed(&good, Some(TYPE))
        };
        let malformed = Descriptor {
            digest: "sha256:../../etc".to_string(),
            ..listed(&good, Some(TYPE))
        };
        let cases: Vec<(Vec<u8>, Descriptor, Allowed<'_>, &str)> = vec![
            (
                good.clone(),
                sha512,
                Allowed::Any,
                "`sha512`, and kiln follows sha256",
            ),
            (good.clone(), malformed, Allowed::Any, "malformed"),
            (
                b"\xff not json".to_vec(),
                listed(b"x", None),
                Allowed::Any,
                "not an OCI image manifest",
            ),
            (
                b"{}".to_vec(),
                listed(b"{}", None),
                Allowed::Any,
                "not an OCI image manifest",
            ),
            (
                referrer(None, Some(TYPE)),
                listed(b"x", None),
                Allowed::Any,
                "it has no subject",
            ),
            (
                referrer(Some(elsewhere.clone()), Some(TYPE)),
                listed(b"x", None),
                Allowed::Any,
                "it refers to sha256:",
            ),
            (
                good.clone(),
                listed(&good, None),
                Allowed::Types(&["application/x-other"]),
                "which is not what was asked for here",
            ),
            (
                good.clone(),
                listed(&good, Some("application/x-other")),
                Allowed::Any,
                "listed as `application/x-other` but its manifest says `application/x-test`",
            ),
        ];
        for (bytes, listed, allowed, says) in cases {
            let why = judge(&bytes, &digest, &listed, allowed).unwrap_err();
            assert!(why.contains(says), "{why}");
        }
        // A subject digest that only differs in case is another digest.
        let mut upper = s;
        upper.digest = upper.digest.to_uppercase().replace("SHA256", "sha256");
        let bytes = referrer(Some(upper), Some(TYPE));
        assert!(judge(&bytes, &digest, &listed(&bytes, None), Allowed::Any).is_err());
    }
}
