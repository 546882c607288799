//! Key pairs and the signatures they make and check (the `keys` feature).

use crate::bundle;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature, SigningScheme};
use zeroize::Zeroizing;

/// A private key ready to sign.
pub struct Signer {
    signer: SigStoreSigner,
    scheme: SigningScheme,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, <private key>)", self.scheme)
    }
}

/// A new key pair: `(private key PEM encrypted with password, public key PEM)`,
/// ECDSA P-256 as `cosign generate-key-pair` makes them.
pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String)> {
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .map_err(|e| anyhow!("failed to generate a key: {e}"))?;
    let pair = signer
        .to_sigstore_keypair()
        .map_err(|e| anyhow!("failed to export the key: {e}"))?;
    let private = pair
        .private_key_to_encrypted_pem(password)
        .map_err(|e| anyhow!("failed to encrypt the private key: {e}"))?;
    let public = pair
        .public_key_to_pem()
        .map_err(|e| anyhow!("failed to export the public key: {e}"))?;
    Ok((private, public))
}

/// What kind of PEM a key file holds: the first block that is not
/// `EC PARAMETERS` (which `openssl ecparam -genkey` writes first).
fn pem_tag(pem_text: &[u8]) -> Result<String> {
    let blocks = pem::parse_many(pem_text).unwrap_or_default();
    blocks
        .iter()
        .map(|b| b.tag().to_string())
        .find(|t| t != "EC PARAMETERS")
        .context("not a PEM key file (expected a `-----BEGIN … KEY-----` block)")
}

/// Reads a private key: cosign's encrypted format (`ENCRYPTED SIGSTORE
/// PRIVATE KEY` or the older `ENCRYPTED COSIGN PRIVATE KEY`, which need
/// `password`), PKCS#8 (`PRIVATE KEY`), or SEC1 (`EC PRIVATE KEY`, P-256 and
/// P-384, as `openssl ecparam -genkey` writes them).
pub fn load_private_key(pem_text: &[u8], password: Option<&[u8]>) -> Result<Signer> {
    let tag = pem_tag(pem_text)?;
    let pair = match tag.as_str() {
        "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
            let password = password.context(
                "the key is encrypted: set KILN_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked",
            )?;
            SigStoreKeyPair::from_encrypted_pem(pem_text, password).map_err(|_| {
                anyhow!("cannot decrypt the private key: wrong password, or a corrupt key")
            })?
        }
        "PRIVATE KEY" => {
            let block = pem::parse_many(pem_text)
                .ok()
                .and_then(|bs| bs.into_iter().find(|b| b.tag() == "PRIVATE KEY"))
                .context("cannot read the PKCS#8 private key")?;
            SigStoreKeyPair::from_der(block.contents())
                .map_err(|e| anyhow!("cannot read the PKCS#8 private key: {e}"))?
        }
        "EC PRIVATE KEY" => {
            let block = pem::parse_many(pem_text)
                .ok()
                .and_then(|bs| bs.into_iter().find(|b| b.tag() == "EC PRIVATE KEY"))
                .context("cannot read the EC private key")?;
            let der = sec1_to_pkcs8(&pem::encode(&block))?;
            SigStoreKeyPair::from_der(&der)
                .map_err(|e| anyhow!("cannot read the EC private key: {e}"))?
        }
        other => bail!(
            "`{other}` keys are not supported; use a cosign key (`kiln keygen`), or a PKCS#8 or SEC1 EC PEM key"
        ),
    };
    let scheme = scheme_of(&pair)?;
    let signer = pair
        .to_sigstore_signer(&scheme)
        .map_err(|e| anyhow!("cannot sign with this key: {e}"))?;
    Ok(Signer { signer, scheme })
}

/// SEC1 EC keys converted to PKCS#8 DER, which sigstore reads.
fn sec1_to_pkcs8(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    use p256::pkcs8::EncodePrivateKey as _;
    if let Ok(k) = p256::SecretKey::from_sec1_pem(text) {
        let doc = k
            .to_pkcs8_der()
            .map_err(|e| anyhow!("cannot convert the EC key: {e}"))?;
        return Ok(Zeroizing::new(doc.as_bytes().to_vec()));
    }
    if let Ok(k) = p384::SecretKey::from_sec1_pem(text) {
        let doc = k
            .to_pkcs8_der()
            .map_err(|e| anyhow!("cannot convert the EC key: {e}"))?;
        return Ok(Zeroizing::new(doc.as_bytes().to_vec()));
    }
    bail!("cannot read the EC private key: only P-256 and P-384 SEC1 keys are supported")
}

fn scheme_of(pair: &SigStoreKeyPair) -> Result<SigningScheme> {
    use sigstore::crypto::signing_key::ecdsa::ECDSAKeys;
    Ok(match pair {
        SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => SigningScheme::ECDSA_P256_SHA256_ASN1,
        SigStoreKeyPair::ECDSA(ECDSAKeys::P384(_)) => SigningScheme::ECDSA_P384_SHA384_ASN1,
        SigStoreKeyPair::ECDSA(ECDSAKeys::P521(_)) => SigningScheme::ECDSA_P521_SHA512_ASN1,
        SigStoreKeyPair::ED25519(_) => SigningScheme::ED25519,
        SigStoreKeyPair::RSA(_) => SigningScheme::RSA_PKCS1_SHA256(0),
    })
}

impl Signer {
    /// The base64 signature over `message`, as cosign writes it.
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        let sig = self
            .signer
            .sign(message)
            .map_err(|e| anyhow!("signing failed: {e}"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sig))
    }

    /// The digest a blob bundle records for this key, as cosign picks it:
    /// the hash the key signs with. Ed25519 keys are refused, since cosign
    /// signs bundles with Ed25519ph, which this signer does not.
    pub fn hash_for_bundles(&self) -> Result<bundle::HashAlgorithm> {
        Ok(match self.scheme {
            SigningScheme::ECDSA_P384_SHA384_ASN1 => bundle::HashAlgorithm::Sha384,
            SigningScheme::ECDSA_P521_SHA512_ASN1 => bundle::HashAlgorithm::Sha512,
            SigningScheme::ED25519 => bail!(
                "Ed25519 keys cannot sign Sigstore bundles as cosign verifies them (cosign uses Ed25519ph); use an ECDSA key, or `--format legacy`"
            ),
            _ => bundle::HashAlgorithm::Sha256,
        })
    }

    /// The public key, as a verifier of this signer's signatures.
    pub fn verifier(&self) -> Result<Verifier> {
        load_public_key(self.public_key_pem()?.as_bytes())
    }

    /// The public key, PEM.
    pub fn public_key_pem(&self) -> Result<String> {
        self.signer
            .to_sigstore_keypair()
            .and_then(|p| p.public_key_to_pem())
            .map_err(|e| anyhow!("cannot export the public key: {e}"))
    }
}

/// A public key that checks signatures.
pub struct Verifier {
    key: CosignVerificationKey,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(<public key>)")
    }
}

/// Reads a PEM public key (`PUBLIC KEY`, as cosign and openssl write
/// them); the algorithm is taken from the key.
pub fn load_public_key(pem_text: &[u8]) -> Result<Verifier> {
    let tag = pem_tag(pem_text)
        .map_err(|_| anyhow!("not a PEM public key (expected `-----BEGIN PUBLIC KEY-----`)"))?;
    if tag != "PUBLIC KEY" {
        bail!("expected a `PUBLIC KEY` PEM block, found `{tag}` (is this the private key?)");
    }
    let key = CosignVerificationKey::try_from_pem(pem_text)
        .map_err(|e| anyhow!("unsupported or corrupt public key: {e}"))?;
    Ok(Verifier { key })
}

impl Verifier {
    /// Whether `signature` (base64) is this key's signature over `message`.
    /// A malformed signature is simply not a valid one.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        self.key
            .verify_signature(
                Signature::Base64Encoded(signature.trim().as_bytes()),
                message,
            )
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_round_trip_and_refuse_wrong_passwords() {
        let (private, public) = generate(b"pw").unwrap();
        assert!(private.contains("ENCRYPTED SIGSTORE PRIVATE KEY"));
        let signer = load_private_key(private.as_bytes(), Some(b"pw")).unwrap();
        let sig = signer.sign(b"hello").unwrap();
        let verifier = load_public_key(public.as_bytes()).unwrap();
        assert!(verifier.verify(b"hello", &sig));
        assert!(!verifier.verify(b"hellO", &sig));
        assert!(!verifier.verify(b"hello", "not base64!"));
        let e = load_private_key(private.as_bytes(), Some(b"nope")).unwrap_err();
        assert!(e.to_string().contains("wrong password"));
        assert!(load_private_key(b"garbage", None).is_err());
        assert!(load_public_key(private.as_bytes()).is_err());
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }
}
