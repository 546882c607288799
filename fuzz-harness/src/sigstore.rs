//! Fuzz target for signatures as registries and files hand them to kiln: Sigstore bundles, in-toto statements, cosign payloads.

use crate::select;
use kiln_core::Digest;
use kiln_sign::Payload;
use kiln_sign::bundle::{Bundle, HashAlgorithm, Statement, pae};
use std::collections::BTreeMap;

/// The kinds of input, by the selector byte.
pub const BUNDLE: u8 = 0;
/// A DSSE payload: the in-toto statement a bundle signs.
pub const STATEMENT: u8 = 1;
/// A cosign simple-signing payload (a `.sig` layer).
pub const PAYLOAD: u8 = 2;
const KINDS: u8 = 3;

/// A subject digest statements and payloads claim or fail to claim.
const SUBJECT: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// An input by the selector byte through everything kiln reads from it
/// before and beside checking a signature: the bundle's shape and key
/// material, the envelope's payload, the statement and its subjects, the
/// simple-signing payload and its annotations, and DSSE's pre-auth
/// encoding. Oracles: no panic; PAE frames the payload it is given.
pub fn sigstore(data: &[u8]) {
    let (kind, bytes) = select(data, KINDS);
    let subject = Digest::parse(SUBJECT).unwrap();
    let required: BTreeMap<String, String> = [("env".to_string(), "fuzz".to_string())].into();
    match kind {
        BUNDLE => {
            let Ok(bundle) = Bundle::parse(bytes) else {
                return;
            };
            let _ = bundle.key_material();
            if let Some(envelope) = &bundle.dsse_envelope {
                let encoded = pae(&envelope.payload_type, envelope.payload.as_bytes());
                assert!(encoded.ends_with(envelope.payload.as_bytes()));
                if let Ok(payload) = envelope.payload_bytes()
                    && let Ok(statement) = Statement::parse(&payload)
                {
                    let _ = statement.covers(&subject, &required);
                }
            }
            if let Some(message) = &bundle.message_signature {
                let _ = HashAlgorithm::named(&message.message_digest.algorithm);
            }
        }
        STATEMENT => {
            if let Ok(statement) = Statement::parse(bytes) {
                let _ = statement.covers(&subject, &BTreeMap::new());
                let _ = statement.covers(&subject, &required);
            }
        }
        PAYLOAD => {
            if let Ok(payload) = Payload::parse(bytes) {
                let _ = payload.has_annotations(&required);
            }
        }
        _ => unreachable!("select gives a kind below KINDS"),
    }
}
