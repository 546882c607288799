//! Fuzz target for the OCI documents a registry or a layout hands kiln.

use crate::select;
use kiln_core::Digest;
use kiln_oci::artifact::{self, ArtifactConfig, Descriptor, Index, Manifest};
use kiln_oci::referrers::{Allowed, judge};
use kiln_oci::wire;

/// The kinds of document, by the selector byte.
pub const MANIFEST: u8 = 0;
/// An image index: a referrers index or a layout's `index.json`.
pub const INDEX: u8 = 1;
/// A referrers API reply.
pub const REFERRERS: u8 = 2;
/// A page of a tag list.
pub const TAG_PAGE: u8 = 3;
/// A CNCF Wasm config, read as `kiln audit REF` reads it.
pub const CONFIG: u8 = 4;
/// A registry's error body.
pub const ERROR_BODY: u8 = 5;
/// A reference as a user, a receipt or a config names one.
pub const REFERENCE: u8 = 6;
const KINDS: u8 = 7;

/// A subject every referrer judged here claims or fails to claim.
const SUBJECT: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// A document by the selector byte through the parser kiln runs on it, and
/// every descriptor in it through the checks kiln makes before following
/// it. Oracles: no panic; a file name taken from an annotation never
/// escapes its directory; a referrer `judge` keeps has the subject, the
/// listed digest and type, and a type that was asked for; error messages
/// stay bounded; a reference prints as what it parsed from.
pub fn oci(data: &[u8]) {
    let (kind, bytes) = select(data, KINDS);
    let _ = artifact::media_type_of(bytes);
    match kind {
        MANIFEST => {
            if let Ok(m) = Manifest::parse(bytes) {
                descriptors(
                    m.subject
                        .iter()
                        .chain(std::iter::once(&m.config))
                        .chain(&m.layers),
                );
                for value in m.annotations.values() {
                    file_name(value);
                }
            }
            let subject = Digest::parse(SUBJECT).unwrap();
            // What the referrers list claimed about the entry, from the
            // input too: the digest's algorithm and the listed type.
            let claim = bytes.first().copied().unwrap_or(0);
            let mut listed = Descriptor::of(artifact::MANIFEST_MEDIA_TYPE, bytes);
            listed.digest = match claim % 4 {
                0 => listed.digest,
                1 => format!("sha512:{}", "ab".repeat(64)),
                2 => "sha256:not-hex".to_string(),
                _ => String::new(),
            };
            listed.artifact_type = match (claim >> 2) % 3 {
                0 => None,
                1 => Some(artifact::SIGSTORE_BUNDLE_MEDIA_TYPE.to_string()),
                _ => Some("application/vnd.example+json".to_string()),
            };
            for allowed in [
                Allowed::Any,
                Allowed::Types(&[artifact::SIGSTORE_BUNDLE_MEDIA_TYPE]),
            ] {
                if let Ok(kept) = judge(bytes, &subject, &listed, allowed) {
                    let claimed = kept.manifest.subject.as_ref().map(|s| s.digest.as_str());
                    assert_eq!(
                        claimed,
                        Some(SUBJECT),
                        "judge kept a referrer of another subject"
                    );
                    assert_eq!(
                        kept.digest.to_string(),
                        listed.digest,
                        "kept under another digest"
                    );
                    if let Some(t) = &listed.artifact_type {
                        assert_eq!(*t, kept.artifact_type, "kept as another type than listed");
                    }
                    if let Allowed::Types(types) = allowed {
                        assert!(types.contains(&kept.artifact_type.as_str()));
                    }
                }
            }
        }
        INDEX => {
            if let Ok(index) = Index::parse(bytes) {
                descriptors(&index.manifests);
            }
        }
        REFERRERS => {
            if let Ok(entries) = wire::referrer_entries(bytes) {
                descriptors(&entries);
            }
        }
        TAG_PAGE => {
            let _ = wire::tag_page(bytes);
        }
        CONFIG => {
            if let Ok(config) = ArtifactConfig::read(bytes) {
                let _ = config.missing();
                let _ = config.kind();
                let info = config.component.unwrap_or_default();
                let facts = kiln_inspect::audit::AuditFacts {
                    name: "fuzz".to_string(),
                    kind: Some(kiln_core::WasmKind::Component),
                    imports: info.imports,
                    exports: info.exports,
                    ..Default::default()
                };
                for builtin in kiln_inspect::audit::BUILTINS {
                    let policy = kiln_inspect::audit::Policy::builtin(builtin).unwrap();
                    let report = kiln_inspect::audit::audit(&facts, &policy, None);
                    serde_json::to_string(&kiln_inspect::audit::to_sarif(&[report])).unwrap();
                }
            }
        }
        ERROR_BODY => {
            // At most 300 characters and the ellipsis, whatever was sent.
            let message = wire::error_message(bytes);
            let chars = message.chars().count();
            assert!(chars <= 301, "an error message of {chars} characters");
        }
        REFERENCE => {
            // A reference prints as something that parses to itself, as
            // receipts and status lines hand it on.
            if let Ok(reference) = kiln_oci::Reference::parse(&String::from_utf8_lossy(bytes)) {
                let printed = reference.to_string();
                let again = kiln_oci::Reference::parse(&printed)
                    .unwrap_or_else(|e| panic!("`{printed}` does not parse again: {e:#}"));
                assert_eq!(
                    again.to_string(),
                    printed,
                    "a reference changes when printed"
                );
            }
        }
        _ => unreachable!("select gives a kind below KINDS"),
    }
}

/// The checks a descriptor goes through before kiln follows it.
fn descriptors<'a>(all: impl IntoIterator<Item = &'a Descriptor>) {
    for d in all {
        let sha = d.sha256();
        if let Ok(digest) = &sha {
            assert_eq!(
                digest.to_string(),
                d.digest,
                "a digest that does not print as read"
            );
        }
        let _ = artifact::digest_algorithm(&d.digest);
        for value in d.annotations.values() {
            file_name(value);
        }
    }
}

/// `safe_file_name`'s promise: a name to join to an output directory.
fn file_name(value: &str) {
    if let Some(name) = artifact::safe_file_name(value) {
        assert!(!name.is_empty() && name.len() <= 255, "`{name}`");
        assert!(!name.contains(['/', '\\']), "`{name}` has a separator");
        assert!(!name.starts_with('.'), "`{name}` starts with a dot");
        assert!(
            !name.chars().any(char::is_control),
            "`{name:?}` has a control character"
        );
    }
}
