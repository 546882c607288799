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
const KINDS: u8 = 6;

/// A subject every referrer judged here claims or fails to claim.
const SUBJECT: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// A document by the selector byte through the parser kiln runs on it, and
/// every descriptor in it through the checks kiln makes before following
/// it. Oracles: no panic; a file name taken from an annotation never
/// escapes its directory; a referrer `judge` keeps has the subject and a
/// type that was asked for.
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
            let listed = Descriptor::of(artifact::MANIFEST_MEDIA_TYPE, bytes);
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
            let message = wire::error_message(bytes);
            assert!(
                message.len() <= 64 << 10,
                "an error message of {} bytes",
                message.len()
            );
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
