//! Signing in cosign's formats, offline, with keys, through the `sigstore` crate.
//!
//! It covers key pairs (cosign's encrypted private key format, plain PKCS#8 and
//! SEC1 PEM), the simple-signing payload over a manifest digest, and signatures
//! over payloads and blobs.
//!
//! Keyless signing (Fulcio certificates, Rekor entries) needs the network
//! and an identity provider; it would add another [`Signer`] source, the
//! payload and storage stay the same.
//!
//! The default feature `keys` brings the keys and the signing and verifying
//! (and with them `sigstore` and its crypto stack); without it the crate
//! keeps only the formats: payloads, bundles, statements, which is what a
//! fuzzer of those parsers needs.

use anyhow::{Context, Result};
use kiln_core::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod bundle;
#[cfg(feature = "keys")]
mod keys;

#[cfg(feature = "keys")]
pub use keys::{Signer, Verifier, generate, load_private_key, load_public_key};

/// The `critical.type` of a cosign container image signature.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// cosign's simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// What is signed.
    pub critical: Critical,
    /// Annotations given at signing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The part of the payload a verifier must check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The repository signed.
    pub identity: Identity,
    /// The manifest digest signed.
    pub image: Image,
    /// [`SIMPLE_SIGNING_TYPE`].
    #[serde(rename = "type")]
    pub type_name: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The reference, without tag or digest.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the manifest, as the payload says it: stored
    /// payloads are anyone's, so it is compared, never trusted to parse.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// The payload for `digest` in `repository`, with annotations.
    pub fn new(
        repository: &str,
        digest: &Digest,
        annotations: &BTreeMap<String, String>,
    ) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                type_name: SIMPLE_SIGNING_TYPE.to_string(),
            },
            optional: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect()
            }),
        }
    }

    /// The bytes that are signed and stored.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).context("failed to encode the signature payload")
    }

    /// Parses stored payload bytes.
    pub fn parse(bytes: &[u8]) -> Result<Payload> {
        serde_json::from_slice(bytes).context("not a cosign simple-signing payload")
    }

    /// Whether every required annotation is in `optional` with that value.
    pub fn has_annotations(&self, required: &BTreeMap<String, String>) -> bool {
        required.iter().all(|(k, v)| {
            self.optional
                .as_ref()
                .and_then(|o| o.get(k))
                .and_then(|x| x.as_str())
                == Some(v.as_str())
        })
    }
}

/// Parses `key=value` annotation arguments.
pub fn parse_annotations(items: &[String]) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("annotation `{a}` is not `key=value`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_check_digests_and_annotations() {
        let mut a = BTreeMap::new();
        a.insert("env".to_string(), "prod".to_string());
        let p = Payload::new("r/x", &Digest::of(b"x"), &a);
        let back = Payload::parse(&p.to_bytes().unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(back.has_annotations(&a));
        a.insert("env".to_string(), "dev".to_string());
        assert!(!back.has_annotations(&a));
        assert!(parse_annotations(&["k=v".into()]).is_ok());
        assert!(parse_annotations(&["novalue".into()]).is_err());
    }
}
