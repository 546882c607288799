//! TLS for registries: rustls with the system's and the user's trust, and client certificates.
//!
//! The system's certificate authorities are found as reqwest finds them
//! (through rustls-platform-verifier). A certificate the user trusts, presented
//! exactly as itself, is accepted even when it is marked as a CA. Client
//! certificates serve mutual TLS; `--insecure` is handled here too.

use anyhow::{Context, Result, anyhow};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// What one HTTP client trusts and presents.
#[derive(Debug, Default)]
pub(crate) struct Trust {
    /// Certificates the user trusts explicitly (`--ca-file`, certs.d
    /// `*.crt`): certificate authorities, and exact server certificates.
    pub certificates: Vec<CertificateDer<'static>>,
    /// Accept any server certificate.
    pub insecure: bool,
    /// A client certificate chain and its key, for mutual TLS.
    pub identity: Option<Identity>,
}

/// A client certificate chain and its private key.
pub(crate) struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The certificate's file, for errors.
    file: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "Identity({})", self.file)
    }
}

/// The certificates in the PEM file `path`; an error naming the file when
/// there is none or one cannot be used as a trust anchor.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("failed to read the CA file `{}`", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("failed to read a certificate from `{}`", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("`{}` holds no PEM certificate", path.display());
    }
    for c in &certificates {
        rustls::RootCertStore::empty()
            .add(c.clone())
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("failed to read a certificate from `{}`", path.display()))?;
    }
    Ok(certificates)
}

/// A client certificate (PEM, the certificate first, then any
/// intermediates) and its private key (PEM: PKCS#8, PKCS#1 or SEC1).
pub(crate) fn read_identity(cert: &Path, key: &Path) -> Result<Identity> {
    let pem = std::fs::read(cert)
        .with_context(|| format!("failed to read the client certificate `{}`", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("failed to read the client certificate `{}`", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("`{}` holds no PEM certificate", cert.display());
    }
    let key_pem = std::fs::read(key)
        .with_context(|| format!("failed to read the client key `{}`", key.display()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("failed to read a private key from `{}`", key.display()))?;
    Ok(Identity {
        chain,
        key: key_der,
        file: cert.display().to_string(),
    })
}

/// The crypto provider reqwest would use: one installed for the process,
/// else aws-lc-rs.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The rustls configuration for a client with `trust`.
pub(crate) fn client_config(trust: Trust) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier = server_verifier(&trust, &provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("failed to set up TLS")?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match trust.identity {
        Some(identity) => {
            let file = identity.file.clone();
            builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| {
                    format!("failed to use the client certificate `{file}` with its key")
                })?
        }
        None => builder.with_no_client_auth(),
    };
    // reqwest is built for HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// How a client with `trust` checks the server's certificate.
fn server_verifier(trust: &Trust, provider: &Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    if trust.insecure {
        return Arc::new(AnyCertificate {
            provider: provider.clone(),
        });
    }
    let strict: Arc<dyn ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(
            trust.certificates.iter().cloned(),
            provider.clone(),
        ) {
            Ok(v) => Arc::new(v),
            // Only when neither the system nor the user has a single
            // certificate authority: plain HTTP still works, and TLS fails
            // with this reason.
            Err(e) => Arc::new(NoRoots {
                reason: e.to_string(),
                provider: provider.clone(),
            }),
        };
    Arc::new(ExactOrStrict {
        strict,
        exact: trust.certificates.iter().filter_map(Exact::new).collect(),
    })
}

/// A certificate the user trusts, as a server may present it itself.
#[derive(Debug)]
struct Exact {
    der: Vec<u8>,
    /// Its validity period, in seconds since the Unix epoch.
    not_before: u64,
    not_after: u64,
}

impl Exact {
    /// `None` for a certificate whose validity cannot be read: it is
    /// still a trust anchor, but never accepted as itself.
    fn new(der: &CertificateDer<'_>) -> Option<Exact> {
        use x509_cert::der::Decode as _;
        let cert = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
        let validity = cert.tbs_certificate().validity();
        Some(Exact {
            der: der.as_ref().to_vec(),
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
        })
    }

    /// The checks that remain when the server presents this very
    /// certificate: it is valid now and names the server.
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let now = now.as_secs();
        if now < self.not_before {
            return Err(CertificateError::NotValidYet.into());
        }
        if now > self.not_after {
            return Err(CertificateError::Expired.into());
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)
    }
}

/// The system's and the user's certificate authorities, as strictly as
/// webpki checks them; and, when that refuses a certificate the user
/// trusts explicitly and the server presented exactly that certificate
/// (the same DER), the certificate is accepted after its validity period
/// and the server's name are checked. That is how docker, curl and Go
/// treat a self-signed certificate made as Docker's guide makes it
/// (`CA:TRUE`, which webpki refuses as an end entity with
/// `CaUsedAsEndEntity`). Nothing else is loosened.
#[derive(Debug)]
struct ExactOrStrict {
    strict: Arc<dyn ServerCertVerifier>,
    exact: Vec<Exact>,
}

impl ServerCertVerifier for ExactOrStrict {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let strict = self.strict.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if strict.is_ok() {
            return strict;
        }
        match self.exact.iter().find(|e| e.der == end_entity.as_ref()) {
            Some(exact) => exact
                .verify(end_entity, server_name, now)
                .map(|()| ServerCertVerified::assertion()),
            None => strict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.strict.supported_verify_schemes()
    }
}

/// `--insecure`: any certificate is accepted (the handshake's signatures
/// are still checked against it).
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// No certificate authority anywhere: every certificate is refused, with
/// the reason.
#[derive(Debug)]
struct NoRoots {
    reason: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoRoots {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(format!(
            "no certificate authority to check the certificate against: {}",
            self.reason
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AnyCertificate {
            provider: self.provider.clone(),
        }
        .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AnyCertificate {
            provider: self.provider.clone(),
        }
        .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a TLS failure tells the user, when the error chain of `e` holds
/// one kiln can explain: a server certificate it does not trust, or the
/// registry's refusal of kiln's client certificate (or of having none).
pub(crate) fn explain(
    e: &(dyn std::error::Error + 'static),
    registry: &str,
    elsewhere: Option<&str>,
) -> Option<String> {
    let tls = find_tls_error(e)?;
    match tls {
        // Another host the registry sent kiln to (its token service, blob
        // storage): per-registry trust and `--insecure` do not reach it.
        rustls::Error::InvalidCertificate(reason) if elsewhere.is_some() => Some(format!(
            "`{}`, where the registry `{registry}` sent kiln, presented a certificate kiln does not trust ({reason:?}): trust its certificate authority with --ca-file (certs.d directories and --insecure apply to the registry itself only)",
            elsewhere.unwrap_or_default()
        )),
        rustls::Error::InvalidCertificate(reason) => Some(format!(
            "the registry `{registry}` presented a certificate kiln does not trust ({reason:?}): trust its certificate authority, or the certificate itself, with --ca-file or a `{registry}` directory under /etc/docker/certs.d or /etc/containers/certs.d"
        )),
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            match alert {
                A::CertificateRequired => Some(format!(
                    "the registry `{registry}` asks for a client certificate and kiln has none for it: put `client.cert` and `client.key` in a `{registry}` directory under /etc/docker/certs.d or /etc/containers/certs.d"
                )),
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied => Some(format!(
                    "the registry `{registry}` refused the TLS connection ({alert:?}): it refused kiln's client certificate, or wants one kiln does not have (client certificates are read from a `{registry}` directory under /etc/docker/certs.d or /etc/containers/certs.d)"
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The rustls error in the chain of `e`, looking inside I/O errors
/// (whose `source` skips the error they wrap).
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = find_tls_error(inner)
        {
            return Some(tls);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::process::Command;

    /// A self-signed certificate as Docker's guide makes one (`req -x509`,
    /// which marks it `CA:TRUE`) for `san`, in `dir`; `None` without
    /// openssl (outside CI).
    fn self_signed(dir: &Path, name: &str, san: &str) -> Option<CertificateDer<'static>> {
        let out = Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                &format!("subjectAltName = {san}"),
                "-x509",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
            ])
            .current_dir(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            _ if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: openssl is not installed");
                return None;
            }
            other => panic!("openssl failed: {other:?}"),
        }
        let text = std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap();
        assert!(
            !text.is_empty(),
            "openssl wrote no certificate for `{name}`"
        );
        Some(
            read_certificates(&dir.join(format!("{name}.crt")))
                .unwrap()
                .remove(0),
        )
    }

    fn verifier(trusted: &[CertificateDer<'static>]) -> Arc<dyn ServerCertVerifier> {
        let trust = Trust {
            certificates: trusted.to_vec(),
            ..Trust::default()
        };
        // The configuration builds, and its verifier is this one.
        client_config(Trust {
            certificates: trusted.to_vec(),
            ..Trust::default()
        })
        .unwrap();
        server_verifier(&trust, &provider())
    }

    fn check(
        verifier: &dyn ServerCertVerifier,
        cert: &CertificateDer<'static>,
        name: &str,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn a_trusted_certificate_presented_exactly_is_accepted_for_its_name_only() {
        let dir = tempfile::tempdir().unwrap();
        let Some(cert) = self_signed(dir.path(), "registry", "IP:127.0.0.1") else {
            return;
        };
        let Some(impostor) = self_signed(dir.path(), "impostor", "IP:127.0.0.1") else {
            return;
        };
        // webpki alone refuses it, even as its own trust anchor: it is
        // marked as a CA.
        let strict =
            rustls_platform_verifier::Verifier::new_with_extra_roots([cert.clone()], provider())
                .unwrap();
        let refused = check(&strict, &cert, "127.0.0.1").unwrap_err();
        assert!(
            format!("{refused:?}").contains("CaUsedAsEndEntity"),
            "{refused:?}"
        );
        let v = verifier(std::slice::from_ref(&cert));
        check(v.as_ref(), &cert, "127.0.0.1").unwrap();
        // The hostname is still checked.
        let wrong_name = check(v.as_ref(), &cert, "localhost").unwrap_err();
        assert!(
            matches!(wrong_name, rustls::Error::InvalidCertificate(_)),
            "{wrong_name:?}"
        );
        // The same subject and name with another key is another
        // certificate: webpki's answer stands.
        let other = check(v.as_ref(), &impostor, "127.0.0.1").unwrap_err();
        assert!(
            matches!(other, rustls::Error::InvalidCertificate(_)),
            "{other:?}"
        );
        // Trusted nowhere: refused.
        let untrusted = verifier(&[]);
        assert!(check(untrusted.as_ref(), &cert, "127.0.0.1").is_err());
    }

    #[test]
    fn insecure_accepts_any_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let Some(cert) = self_signed(dir.path(), "any", "DNS:elsewhere.example") else {
            return;
        };
        let trust = Trust {
            insecure: true,
            ..Trust::default()
        };
        let v = server_verifier(&trust, &provider());
        check(v.as_ref(), &cert, "127.0.0.1").unwrap();
    }

    #[test]
    fn a_file_without_certificates_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = format!("{:#}", read_certificates(&path).unwrap_err());
        assert!(err.contains("empty.pem"), "{err}");
    }
}
