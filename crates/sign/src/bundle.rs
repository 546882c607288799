//! Sigstore bundles as cosign v3 writes them with a key.
//!
//! DSSE envelopes over in-toto statements, and message signatures over blobs.
//!
//! The shapes follow the Sigstore bundle specification (protobuf-specs'
//! `sigstore_bundle.proto` in its JSON mapping: camelCase names, bytes as
//! standard base64 with padding, empty fields left out) and what cosign v3's
//! `sign --key` and `sign-blob --key --bundle` produce offline: a public key
//! hint, no transparency-log entries, no timestamps, and a DSSE signature
//! without a `keyid` (the verifier cosign uses skips a signature whose
//! `keyid` is not its own key id). Bundles are written by kiln's own serde
//! types rather than `sigstore-types`, whose bundle always carries empty
//! `tlogEntries` and `timestampVerificationData` and whose in-toto subject
//! cannot hold cosign's annotations.
//!
//! Verifying takes a public key and checks the signature with kiln's
//! [`Verifier`] over the DSSE pre-authentication encoding; a transparency
//! log entry or timestamp a bundle carries is not checked offline, and the
//! result says so ([`Verified::log_entries`]).

#[cfg(feature = "keys")]
use crate::{Signer, Verifier};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use kiln_core::Digest;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::collections::BTreeMap;

/// The media type of a v0.3 bundle, also the layer and artifact type of the
/// OCI referrer that carries it.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The `_type` of an in-toto v1 statement.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of cosign's signature statement: a statement with any
/// other predicate type is an attestation, never a signature.
pub const SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Most bytes a bundle may have; cosign's are a few kilobytes.
pub const MAX_BUNDLE_BYTES: usize = 1 << 20;

/// An in-toto v1 statement: what a DSSE envelope signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_name: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// [`SIGN_PREDICATE_TYPE`] for a signature.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// `{}` for a signature (absent in statements of cosign before 3.0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<serde_json::Value>,
}

/// One subject of a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// cosign leaves it empty (absent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Algorithm → hex digest, e.g. `{"sha256": "…"}`.
    pub digest: BTreeMap<String, String>,
    /// The `-a key=value` annotations given at signing (cosign ≥ 3.0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Statement {
    /// Parses the JSON of an in-toto statement (a DSSE envelope's payload,
    /// decoded). Parsing proves nothing: only a verified envelope's
    /// statement is signed.
    pub fn parse(payload: &[u8]) -> Result<Statement> {
        serde_json::from_slice(payload).context("the signed payload is not an in-toto statement")
    }

    /// cosign's signature statement over `digest`, with annotations, as
    /// `cosign sign -a k=v` writes it.
    pub fn signature(digest: &Digest, annotations: &BTreeMap<String, String>) -> Statement {
        Statement {
            type_name: STATEMENT_TYPE.to_string(),
            subject: vec![Subject {
                name: String::new(),
                digest: BTreeMap::from([("sha256".to_string(), digest.hex())]),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                ),
            }],
            predicate_type: SIGN_PREDICATE_TYPE.to_string(),
            predicate: Some(serde_json::Value::Object(serde_json::Map::new())),
        }
    }

    /// An attestation as `cosign attest` writes it: `predicate` of
    /// `predicate_type` about `digest`, the subject named `name` (the
    /// repository, as cosign names it).
    pub fn attestation(
        name: &str,
        digest: &Digest,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        Statement {
            type_name: STATEMENT_TYPE.to_string(),
            subject: vec![Subject {
                name: name.to_string(),
                digest: BTreeMap::from([("sha256".to_string(), digest.hex())]),
                annotations: None,
            }],
            predicate_type: predicate_type.to_string(),
            predicate: Some(predicate),
        }
    }

    /// Whether some subject has `digest` and, in that subject, every
    /// required annotation with its value.
    pub fn covers(&self, digest: &Digest, required: &BTreeMap<String, String>) -> bool {
        let hex = digest.hex();
        self.subject.iter().any(|s| {
            s.digest.get("sha256") == Some(&hex)
                && required.iter().all(|(k, v)| {
                    s.annotations
                        .as_ref()
                        .and_then(|a| a.get(k))
                        .and_then(|x| x.as_str())
                        == Some(v.as_str())
                })
        })
    }
}

/// DSSE's pre-authentication encoding, the bytes a DSSE signature covers:
/// `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths in decimal. The
/// `sigstore` crate kiln signs with keeps its own encoder private.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A Sigstore bundle (the fields a key-signed bundle uses; others a bundle
/// may carry are kept as they are, so a bundle read and written again is
/// not narrowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// [`BUNDLE_MEDIA_TYPE`], or an older spelling.
    pub media_type: String,
    /// The key hint, a certificate, log entries, timestamps.
    pub verification_material: VerificationMaterial,
    /// A signed in-toto statement (`kiln sign`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
    /// A signature over a blob's digest (`kiln sign-blob --bundle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<MessageSignature>,
}

/// How a bundle says what verifies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// A public key, named by its hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyHint>,
    /// A signing certificate (keyless signing), which kiln does not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<serde_json::Value>,
    /// A certificate chain (bundles before v0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<serde_json::Value>,
    /// Transparency log entries, which kiln does not check offline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlog_entries: Vec<serde_json::Value>,
    /// Signed timestamps, which kiln does not check offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_verification_data: Option<serde_json::Value>,
}

/// `publicKey`: which key signed, as a hint only (never trusted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicKeyHint {
    /// Standard base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo.
    #[serde(default)]
    pub hint: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The statement, standard base64.
    pub payload: String,
    /// [`IN_TOTO_PAYLOAD_TYPE`].
    pub payload_type: String,
    /// The signatures; cosign writes and accepts exactly one.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// The payload, decoded from base64 (standard or URL-safe, padded or
    /// not): the bytes the signature covers, with [`pae`].
    pub fn payload_bytes(&self) -> Result<Vec<u8>> {
        unb64(&self.payload).context("the envelope's payload")
    }
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Standard base64 of the signature over the pre-authentication encoding.
    pub sig: String,
    /// Left empty, as cosign leaves it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
}

/// A signature over a blob and the blob's digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    /// The blob's digest.
    pub message_digest: MessageDigest,
    /// Standard base64 of the signature over the blob.
    pub signature: String,
}

/// A blob's digest in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDigest {
    /// `SHA2_256`, `SHA2_384` or `SHA2_512`.
    pub algorithm: String,
    /// Standard base64 of the digest.
    pub digest: String,
}

/// cosign's key hint: standard base64 of the SHA-256 of the public key's DER
/// SubjectPublicKeyInfo.
pub fn key_hint(public_key_pem: &str) -> Result<String> {
    let block = pem::parse_many(public_key_pem.as_bytes())
        .ok()
        .and_then(|bs| bs.into_iter().find(|b| b.tag() == "PUBLIC KEY"))
        .context("not a PEM public key (expected `-----BEGIN PUBLIC KEY-----`)")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(block.contents())))
}

#[cfg(feature = "keys")]
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard or URL-safe base64, padded or not, as bundles may hold
/// either.
fn unb64(text: &str) -> Result<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .context("not base64")
}

#[cfg(feature = "keys")]
impl Bundle {
    /// Signs `statement` with `signer` into a DSSE bundle.
    pub fn sign_statement(signer: &Signer, statement: &Statement) -> Result<Bundle> {
        let payload =
            serde_json::to_vec(statement).context("failed to encode the in-toto statement")?;
        let sig = signer.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload))?;
        Ok(Bundle {
            media_type: BUNDLE_MEDIA_TYPE.to_string(),
            verification_material: VerificationMaterial::of(signer)?,
            dsse_envelope: Some(Envelope {
                payload: b64(&payload),
                payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
                signatures: vec![EnvelopeSignature {
                    sig,
                    keyid: String::new(),
                }],
            }),
            message_signature: None,
        })
    }

    /// Signs a blob into a message-signature bundle, as `cosign sign-blob
    /// --bundle` does: the signature is the one `kiln sign-blob` prints.
    pub fn sign_blob(signer: &Signer, blob: &[u8]) -> Result<Bundle> {
        let (algorithm, digest) = signer.hash_for_bundles()?.digest(blob);
        Ok(Bundle {
            media_type: BUNDLE_MEDIA_TYPE.to_string(),
            verification_material: VerificationMaterial::of(signer)?,
            dsse_envelope: None,
            message_signature: Some(MessageSignature {
                message_digest: MessageDigest {
                    algorithm: algorithm.to_string(),
                    digest: b64(&digest),
                },
                signature: signer.sign(blob)?,
            }),
        })
    }
}

impl Bundle {
    /// The bundle's JSON, one line and a newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec(self).context("failed to encode the bundle")?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parses a bundle of at most [`MAX_BUNDLE_BYTES`] in a v0.3 media type.
    pub fn parse(bytes: &[u8]) -> Result<Bundle> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            bail!(
                "the bundle is {} bytes, over the limit of {MAX_BUNDLE_BYTES}",
                bytes.len()
            );
        }
        let bundle: Bundle =
            serde_json::from_slice(bytes).context("not a Sigstore bundle (JSON)")?;
        if !is_v03(&bundle.media_type) {
            bail!(
                "bundle media type `{}` is not v0.3 (`{BUNDLE_MEDIA_TYPE}`), the version cosign v3 writes and reads",
                bundle.media_type
            );
        }
        Ok(bundle)
    }

    /// Refuses bundles verified by a certificate, or naming no public key:
    /// kiln verifies with keys. The signature checks call it first.
    pub fn key_material(&self) -> Result<()> {
        let m = &self.verification_material;
        if m.certificate.is_some() || m.x509_certificate_chain.is_some() {
            bail!(
                "the bundle is signed with a certificate (keyless signing), which kiln does not verify; it verifies bundles signed with a key"
            );
        }
        if m.public_key.is_none() {
            bail!("the bundle names no public key");
        }
        Ok(())
    }
}

#[cfg(feature = "keys")]
impl Bundle {
    /// Checks a DSSE bundle with `key`: one signature over the envelope,
    /// verified; an in-toto statement with [`SIGN_PREDICATE_TYPE`] whose
    /// subject is `digest` with every required annotation. A bundle made
    /// for a certificate rather than a key is refused.
    pub fn verify_signature(
        &self,
        key: &Verifier,
        digest: &Digest,
        required: &BTreeMap<String, String>,
    ) -> Result<Verified> {
        let statement = self.verified_statement(key)?;
        if statement.predicate_type != SIGN_PREDICATE_TYPE {
            bail!(
                "the statement's predicate type is `{}`: an attestation, not a signature (`{SIGN_PREDICATE_TYPE}`)",
                statement.predicate_type
            );
        }
        if !statement.covers(digest, &BTreeMap::new()) {
            bail!("the statement is about another digest than `{digest}`");
        }
        if !statement.covers(digest, required) {
            bail!("the statement lacks a required annotation");
        }
        Ok(Verified {
            statement,
            log_entries: self.verification_material.tlog_entries.len(),
            timestamps: self
                .verification_material
                .timestamp_verification_data
                .is_some(),
        })
    }

    /// The statement of a DSSE bundle whose signature `key` verifies, of any
    /// predicate type (attestations use this too).
    pub fn verified_statement(&self, key: &Verifier) -> Result<Statement> {
        self.key_material()?;
        let envelope = self.dsse_envelope.as_ref().context(
            "the bundle holds no DSSE envelope (a blob signature, not a signed statement)",
        )?;
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            bail!(
                "the envelope's payload type is `{}`, not `{IN_TOTO_PAYLOAD_TYPE}`",
                envelope.payload_type
            );
        }
        let [signature] = envelope.signatures.as_slice() else {
            bail!(
                "the envelope has {} signatures; cosign's have exactly one",
                envelope.signatures.len()
            );
        };
        let payload = envelope.payload_bytes()?;
        let sig = unb64(&signature.sig).context("the envelope's signature")?;
        if !key.verify(&pae(&envelope.payload_type, &payload), &b64(&sig)) {
            bail!("the envelope's signature does not verify with this key");
        }
        Statement::parse(&payload)
    }

    /// Checks a message-signature bundle for `blob` with `key`.
    pub fn verify_blob(&self, key: &Verifier, blob: &[u8]) -> Result<()> {
        self.key_material()?;
        let message = self.message_signature.as_ref().context(
            "the bundle holds no message signature (a signed statement, not a blob signature)",
        )?;
        let algorithm = HashAlgorithm::named(&message.message_digest.algorithm)?;
        let (_, digest) = algorithm.digest(blob);
        if unb64(&message.message_digest.digest).context("the bundle's message digest")? != digest {
            bail!("the bundle is for another file (its message digest differs)");
        }
        let sig = unb64(&message.signature).context("the bundle's signature")?;
        if !key.verify(blob, &b64(&sig)) {
            bail!("the bundle's signature does not verify with this key");
        }
        Ok(())
    }
}

#[cfg(feature = "keys")]
impl VerificationMaterial {
    fn of(signer: &Signer) -> Result<VerificationMaterial> {
        Ok(VerificationMaterial {
            public_key: Some(PublicKeyHint {
                hint: key_hint(&signer.public_key_pem()?)?,
            }),
            certificate: None,
            x509_certificate_chain: None,
            tlog_entries: Vec::new(),
            timestamp_verification_data: None,
        })
    }
}

/// Whether a bundle media type is v0.3, in either spelling the
/// specification allows.
fn is_v03(media_type: &str) -> bool {
    media_type == BUNDLE_MEDIA_TYPE
        || media_type == "application/vnd.dev.sigstore.bundle+json;version=0.3"
}

/// A bundle that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The signed statement.
    pub statement: Statement,
    /// How many transparency log entries the bundle carries; none was checked.
    pub log_entries: usize,
    /// Whether it carries timestamps; none was checked.
    pub timestamps: bool,
}

/// The digest a blob bundle records, chosen by the key as cosign chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `SHA2_256`.
    Sha256,
    /// `SHA2_384`.
    Sha384,
    /// `SHA2_512`.
    Sha512,
}

impl HashAlgorithm {
    /// The algorithm a bundle's message digest names (`SHA2_256`, …).
    pub fn named(name: &str) -> Result<HashAlgorithm> {
        Ok(match name {
            "SHA2_256" => HashAlgorithm::Sha256,
            "SHA2_384" => HashAlgorithm::Sha384,
            "SHA2_512" => HashAlgorithm::Sha512,
            other => return Err(anyhow!("unsupported message digest algorithm `{other}`")),
        })
    }

    /// The algorithm's bundle name and the digest of `data`.
    pub fn digest(self, data: &[u8]) -> (&'static str, Vec<u8>) {
        match self {
            HashAlgorithm::Sha256 => ("SHA2_256", sha2::Sha256::digest(data).to_vec()),
            HashAlgorithm::Sha384 => ("SHA2_384", sha2::Sha384::digest(data).to_vec()),
            HashAlgorithm::Sha512 => ("SHA2_512", sha2::Sha512::digest(data).to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "keys")]
    use crate::{generate, load_private_key, load_public_key};

    #[cfg(feature = "keys")]
    fn keys() -> (Signer, Verifier, String) {
        let (private, public) = generate(b"pw").unwrap();
        let signer = load_private_key(private.as_bytes(), Some(b"pw")).unwrap();
        (signer, load_public_key(public.as_bytes()).unwrap(), public)
    }

    #[cfg(feature = "keys")]
    const DIGEST_TEXT: &str =
        "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    #[cfg(feature = "keys")]
    static DIGEST: std::sync::LazyLock<Digest> =
        std::sync::LazyLock::new(|| Digest::parse(DIGEST_TEXT).unwrap());

    #[test]
    fn pae_is_the_dsse_specification_s_encoding() {
        assert_eq!(
            pae("application/example", b"hello world"),
            b"DSSEv1 19 application/example 11 hello world"
        );
    }

    #[cfg(feature = "keys")]
    #[test]
    fn a_signature_bundle_round_trips_in_cosign_s_shape() {
        let (signer, verifier, public) = keys();
        let annotations = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let statement = Statement::signature(&DIGEST, &annotations);
        let bundle = Bundle::sign_statement(&signer, &statement).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bundle.to_bytes().unwrap()).unwrap();
        assert_eq!(json["mediaType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(
            json["verificationMaterial"],
            serde_json::json!({"publicKey": {"hint": key_hint(&public).unwrap()}})
        );
        let envelope = &json["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(envelope["signatures"].as_array().unwrap().len(), 1);
        assert!(envelope["signatures"][0].get("keyid").is_none());
        let payload: serde_json::Value =
            serde_json::from_slice(&unb64(envelope["payload"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "_type": STATEMENT_TYPE,
                "subject": [{"digest": {"sha256": DIGEST.hex()}, "annotations": {"env": "prod"}}],
                "predicateType": SIGN_PREDICATE_TYPE,
                "predicate": {}
            })
        );
        let parsed = Bundle::parse(&bundle.to_bytes().unwrap()).unwrap();
        let verified = parsed
            .verify_signature(&verifier, &DIGEST, &annotations)
            .unwrap();
        assert_eq!(verified.statement, statement);
        assert_eq!(verified.log_entries, 0);
    }

    #[cfg(feature = "keys")]
    #[test]
    fn bundles_that_do_not_hold_are_refused() {
        let (signer, verifier, _) = keys();
        let (_, other, _) = keys();
        let none = BTreeMap::new();
        let bundle =
            Bundle::sign_statement(&signer, &Statement::signature(&DIGEST, &none)).unwrap();
        let err = |b: &Bundle, key: &Verifier, digest: &Digest, req: &BTreeMap<String, String>| {
            b.verify_signature(key, digest, req)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&bundle, &other, &DIGEST, &none).contains("does not verify"));
        let elsewhere = Digest::parse(&DIGEST_TEXT.replace("01", "02")).unwrap();
        assert!(err(&bundle, &verifier, &elsewhere, &none).contains("another digest"));
        let wanted = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        assert!(err(&bundle, &verifier, &DIGEST, &wanted).contains("annotation"));

        // A tampered payload.
        let mut tampered = bundle.clone();
        let envelope = tampered.dsse_envelope.as_mut().unwrap();
        let mut statement: Statement =
            serde_json::from_slice(&unb64(&envelope.payload).unwrap()).unwrap();
        statement.subject[0]
            .digest
            .insert("sha256".into(), elsewhere.hex());
        envelope.payload = b64(&serde_json::to_vec(&statement).unwrap());
        assert!(err(&tampered, &verifier, &elsewhere, &none).contains("does not verify"));

        // An attestation signed with the same key is not a signature.
        let mut attestation = Statement::signature(&DIGEST, &none);
        attestation.predicate_type = "https://slsa.dev/provenance/v1".into();
        let signed = Bundle::sign_statement(&signer, &attestation).unwrap();
        assert!(err(&signed, &verifier, &DIGEST, &none).contains("not a signature"));
        assert!(signed.verified_statement(&verifier).is_ok());

        // A certificate instead of a key.
        let mut keyless = bundle.clone();
        keyless.verification_material.public_key = None;
        keyless.verification_material.certificate = Some(serde_json::json!({"rawBytes": "AA=="}));
        assert!(err(&keyless, &verifier, &DIGEST, &none).contains("certificate"));

        // Two signatures, an older media type, an oversized bundle.
        let mut two = bundle.clone();
        let sig = two.dsse_envelope.as_ref().unwrap().signatures[0].clone();
        two.dsse_envelope.as_mut().unwrap().signatures.push(sig);
        assert!(err(&two, &verifier, &DIGEST, &none).contains("2 signatures"));
        let mut old = bundle.clone();
        old.media_type = "application/vnd.dev.sigstore.bundle+json;version=0.1".into();
        assert!(Bundle::parse(&old.to_bytes().unwrap()).is_err());
        assert!(Bundle::parse(&vec![b' '; MAX_BUNDLE_BYTES + 1]).is_err());
    }

    #[cfg(feature = "keys")]
    #[test]
    fn blob_bundles_carry_the_signature_sign_blob_prints() {
        let (signer, verifier, _) = keys();
        let bundle = Bundle::sign_blob(&signer, b"hello").unwrap();
        let message = bundle.message_signature.as_ref().unwrap();
        assert_eq!(message.message_digest.algorithm, "SHA2_256");
        assert!(verifier.verify(b"hello", &message.signature));
        let parsed = Bundle::parse(&bundle.to_bytes().unwrap()).unwrap();
        parsed.verify_blob(&verifier, b"hello").unwrap();
        assert!(parsed.verify_blob(&verifier, b"hellO").is_err());
        assert!(
            parsed
                .verify_signature(&verifier, &DIGEST, &BTreeMap::new())
                .is_err()
        );
    }

    /// A key-signed DSSE bundle's JSON around `payload` (base64 text).
    fn bundle_json(payload: &str, material: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": payload,
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": "AA=="}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn hostile_bundles_fail_to_parse_without_a_key() {
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            b"{\"mediaType\": 3}",
            b"{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\"}",
            b"{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", \"verificationMaterial\": {\"tlogEntries\": {}}}",
            b"{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", \"verificationMaterial\": {}, \"dsseEnvelope\": {\"payload\": 1}}",
        ] {
            assert!(Bundle::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        // Parsed, but with a certificate, or with no key named at all.
        let material = |m| Bundle::parse(&bundle_json("", m)).unwrap().key_material();
        let err =
            material(serde_json::json!({"certificate": {"rawBytes": "AA=="}, "publicKey": {}}));
        assert!(err.unwrap_err().to_string().contains("certificate"));
        let err = material(serde_json::json!({}));
        assert!(err.unwrap_err().to_string().contains("no public key"));
        material(serde_json::json!({"publicKey": {"hint": "x"}})).unwrap();
    }

    #[test]
    fn envelope_payloads_and_statements_from_hostile_bytes() {
        let statement = Statement::signature(
            &Digest::of(b"x"),
            &BTreeMap::from([("env".to_string(), "prod".to_string())]),
        );
        let json = serde_json::to_vec(&statement).unwrap();
        let key = serde_json::json!({"publicKey": {"hint": "x"}});
        // Every base64 spelling a bundle may hold decodes to the statement.
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        for text in [STANDARD.encode(&json), URL_SAFE_NO_PAD.encode(&json)] {
            let bundle = Bundle::parse(&bundle_json(&text, key.clone())).unwrap();
            let payload = bundle.dsse_envelope.unwrap().payload_bytes().unwrap();
            assert_eq!(Statement::parse(&payload).unwrap(), statement);
        }
        let envelope = |payload: &str| Envelope {
            payload: payload.to_string(),
            payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
            signatures: Vec::new(),
        };
        let err = envelope("not base64!").payload_bytes().unwrap_err();
        assert!(format!("{err:#}").contains("not base64"), "{err:#}");
        assert_eq!(envelope("").payload_bytes().unwrap(), b"");

        for bad in [
            &b""[..],
            b"\xff\xfe",
            b"null",
            b"{\"_type\": 1, \"subject\": [], \"predicateType\": \"p\"}",
            b"{\"_type\": \"t\", \"subject\": {}, \"predicateType\": \"p\"}",
            b"{\"_type\": \"t\", \"subject\": [{\"digest\": {\"sha256\": 1}}], \"predicateType\": \"p\"}",
            b"{\"_type\": \"t\", \"subject\": [{\"digest\": {}, \"annotations\": []}], \"predicateType\": \"p\"}",
            b"{\"_type\": \"t\", \"subject\": []",
        ] {
            let err = Statement::parse(bad).unwrap_err();
            assert!(err.to_string().contains("not an in-toto statement"), "{err:#}");
        }
        // A statement with no subjects parses, and covers nothing.
        let empty =
            Statement::parse(b"{\"_type\": \"t\", \"subject\": [], \"predicateType\": \"p\"}")
                .unwrap();
        assert!(!empty.covers(&Digest::of(b"x"), &BTreeMap::new()));
    }

    #[test]
    fn hash_algorithms_by_name() {
        assert_eq!(
            HashAlgorithm::named("SHA2_384").unwrap(),
            HashAlgorithm::Sha384
        );
        for bad in ["", "sha256", "SHA2_256 ", "SHA3_256"] {
            assert!(HashAlgorithm::named(bad).is_err(), "{bad:?}");
        }
        let (name, digest) = HashAlgorithm::Sha512.digest(b"");
        assert_eq!((name, digest.len()), ("SHA2_512", 64));
    }
}
