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
/// encoding. Oracles: no panic; PAE frames the decoded payload as DSSE
/// specifies; requiring annotations never lets more statements or payloads
/// pass than requiring none.
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
            if let Some(envelope) = &bundle.dsse_envelope
                && let Ok(payload) = envelope.payload_bytes()
            {
                check_pae(&envelope.payload_type, &payload);
                if let Ok(statement) = Statement::parse(&payload) {
                    check_covers(&statement, &subject, &required);
                }
            }
            if let Some(message) = &bundle.message_signature {
                let _ = HashAlgorithm::named(&message.message_digest.algorithm);
            }
        }
        STATEMENT => {
            if let Ok(statement) = Statement::parse(bytes) {
                check_covers(&statement, &subject, &required);
            }
        }
        PAYLOAD => {
            if let Ok(payload) = Payload::parse(bytes) {
                // Requiring more annotations never lets more payloads pass.
                if payload.has_annotations(&required) {
                    assert!(payload.has_annotations(&BTreeMap::new()));
                }
            }
        }
        _ => unreachable!("select gives a kind below KINDS"),
    }
}

/// DSSE's pre-authentication encoding, as the specification writes it:
/// `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths in decimal bytes.
fn check_pae(payload_type: &str, payload: &[u8]) {
    let encoded = pae(payload_type, payload);
    let head = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    );
    assert!(
        encoded.starts_with(head.as_bytes()),
        "PAE header is not `{head}`"
    );
    assert_eq!(
        &encoded[head.len()..],
        payload,
        "PAE body is not the payload"
    );
}

/// A statement that covers the subject with required annotations covers it
/// with none.
fn check_covers(statement: &Statement, subject: &Digest, required: &BTreeMap<String, String>) {
    if statement.covers(subject, required) {
        assert!(statement.covers(subject, &BTreeMap::new()));
    }
}
