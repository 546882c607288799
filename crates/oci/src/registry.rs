//! A registry through the `oci-client` crate: connection settings (plain HTTP, private CAs, self-signed certificates, timeouts), credentials, and retries with backoff on server errors, throttling and dropped connections.

use crate::artifact::{BlobData, Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::auth::Credentials;
use crate::layout::{verify, verify_size};
use crate::token::{IdentityToken, probe, realm_elsewhere};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use kiln_core::Reporter;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Speak HTTP instead of HTTPS.
    pub plain_http: bool,
    /// PEM certificates of extra certificate authorities to trust.
    pub ca_files: Vec<std::path::PathBuf>,
    /// Accept any certificate (self-signed test registries).
    pub insecure: bool,
    /// Connect and read timeout; `None` is 30 seconds.
    pub timeout: Option<Duration>,
    /// Attempts per request for transient failures; `None` is 5.
    pub attempts: Option<u32>,
}

/// Whether `registry` (host[:port]) is this machine, where plain HTTP is
/// the default as docker allows it: `localhost` or a loopback address
/// (`127.0.0.0/8`, `::1`), never a name that merely starts like one.
pub fn is_loopback(registry: &str) -> bool {
    // A bare address, including an IPv6 one with its colons.
    if let Ok(ip) = registry.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let host = match registry.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, _)) => host,
            None => return false,
        },
        None => registry.rsplit_once(':').map_or(registry, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where a registry's credentials may go besides the registry itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenServices {
    /// To any token service (Bearer realm) the registry names, as docker
    /// does with credentials stored for that registry.
    #[default]
    Any,
    /// Only to a token service at the registry's own scheme, host and
    /// port: for credentials not given for this registry by name (the
    /// environment's when `KILN_REGISTRY` is unset). When its token service
    /// is elsewhere, the registry is used anonymously.
    SameHost,
}

/// The pause before retry `retry` (1 for the first): 250 ms, doubling,
/// never more than 8 seconds.
fn backoff(retry: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(8);
    1u32.checked_shl(retry.saturating_sub(1))
        .and_then(|factor| FIRST.checked_mul(factor))
        .map_or(MAX, |d| d.min(MAX))
}

/// A client for one registry.
pub struct Registry {
    /// Everything, with blobs uploaded in one streamed request.
    client: Client,
    /// Uploads of blobs over [`MONOLITHIC_MAX`], in 4 MiB chunks: proxies
    /// in front of registries often cap the size of one request.
    chunked: Client,
    auth: RegistryAuth,
    /// Set when the credentials are a Docker identity token: exchanged
    /// for an access token per repository before each use.
    identity: Option<IdentityToken>,
    registry: String,
    attempts: u32,
    runtime: tokio::runtime::Runtime,
    /// Repositories already authenticated for, and whether for pushing, so
    /// a push can authenticate while its input is still being hashed and
    /// not again after.
    authenticated: std::sync::Mutex<Vec<(String, bool)>>,
}

/// The HTTP status behind a failure, when there is one.
fn status(e: &OciDistributionError) -> Option<u16> {
    match e {
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::RequestError(r) => r.status().map(|s| s.as_u16()),
        _ => None,
    }
}

/// A digest check that failed while content streamed in.
fn digest_mismatch(e: &OciDistributionError) -> Option<String> {
    let inner: &(dyn std::error::Error + 'static) = match e {
        OciDistributionError::DigestError(d) => d,
        OciDistributionError::IoError(io) => io.get_ref()?,
        OciDistributionError::RequestError(r) => std::error::Error::source(r)?,
        _ => return None,
    };
    let mut cur = Some(inner);
    while let Some(err) = cur {
        if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) =
            err.downcast_ref::<oci_client::errors::DigestError>()
        {
            return Some(format!(
                "content does not match its digest: expected {expected}, got {actual}"
            ));
        }
        cur = err.source();
    }
    None
}

/// What a registry failure means to a user.
fn describe(e: &OciDistributionError, registry: &str) -> String {
    if let Some(m) = digest_mismatch(e) {
        return m;
    }
    match (e, status(e)) {
        (OciDistributionError::AuthenticationFailure(_), _) | (_, Some(401)) => format!(
            "the registry `{registry}` refused the credentials (or needs some): log in with `kiln login {registry}`, or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD"
        ),
        (_, Some(403)) => format!(
            "the registry `{registry}` denied access (403): the credentials lack permission for this repository"
        ),
        (OciDistributionError::RequestError(r), _) if r.is_connect() => format!(
            "cannot connect to the registry `{registry}`; is it running and reachable, and does it speak TLS? (see --plain-http, --ca-file, --insecure): {}",
            error_chain(r)
        ),
        (OciDistributionError::RequestError(r), _) if r.is_timeout() => {
            format!("the registry `{registry}` did not answer in time (see --timeout)")
        }
        (other, _) => other.to_string(),
    }
}

/// An error and its causes on one line (reqwest hides TLS reasons there).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// Transient failures worth another attempt: 5xx, 429 and connections
/// that failed or dropped.
fn transient(e: &OciDistributionError) -> bool {
    if digest_mismatch(e).is_some() {
        return false;
    }
    if let Some(code) = status(e) {
        return code >= 500 || code == 429;
    }
    match e {
        OciDistributionError::RequestError(r) => {
            r.is_connect() || r.is_timeout() || r.is_request() || r.is_body()
        }
        OciDistributionError::IoError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == oci_client::errors::OciErrorCode::Toomanyrequests),
        _ => false,
    }
}

/// A reqwest client set up as the registry clients are, for what kiln asks
/// of registries and token services itself.
fn http_client(
    connection: &Connection,
    extra: &[Certificate],
    timeout: Duration,
) -> Result<reqwest::Client> {
    let mut http = reqwest::Client::builder()
        .danger_accept_invalid_certs(connection.insecure)
        .read_timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")));
    let mut certs = Vec::new();
    for c in extra {
        certs.push(
            reqwest::Certificate::from_pem(&c.data)
                .map_err(|e| anyhow!("failed to read a certificate from the CA files: {e}"))?,
        );
    }
    if !certs.is_empty() {
        http = http.tls_certs_merge(certs);
    }
    http.build()
        .map_err(|e| anyhow!("failed to set up the HTTP client for token services: {e}"))
}

/// The token service the registry at `base` names when it is not at the
/// registry's own origin, asking with retries and backoff as for every
/// registry request.
async fn token_service_elsewhere(
    http: &reqwest::Client,
    base: &str,
    registry: &str,
    attempts: u32,
) -> Result<Option<String>> {
    let mut attempt = 1;
    loop {
        let answer = probe(http, base).await;
        let again = match &answer {
            Ok((status, _)) => status.is_server_error() || status.as_u16() == 429,
            Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        };
        if again && attempt < attempts {
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
            continue;
        }
        let (_, challenges) = answer
            .map_err(|e| anyhow!("{}", error_chain(&e)))
            .with_context(|| {
                format!("failed to ask the registry `{registry}` where its token service is")
            })?;
        return Ok(realm_elsewhere(&challenges, base));
    }
}

impl Registry {
    /// Connects to `registry` with `credentials`, which may go to any token
    /// service the registry names.
    pub fn new(
        registry: &str,
        credentials: Credentials,
        connection: &Connection,
    ) -> Result<Registry> {
        Registry::with_token_services(
            registry,
            credentials,
            TokenServices::Any,
            connection,
            &kiln_core::SilentReporter,
        )
    }

    /// Connects to `registry` with `credentials`, sent only to the token
    /// services `token_services` allows. With [`TokenServices::SameHost`]
    /// this asks the registry for its challenge first, and when that names
    /// a token service elsewhere goes on anonymously and tells `reporter`.
    pub fn with_token_services(
        registry: &str,
        credentials: Credentials,
        token_services: TokenServices,
        connection: &Connection,
        reporter: &dyn Reporter,
    ) -> Result<Registry> {
        let mut extra = Vec::new();
        for path in &connection.ca_files {
            let data = std::fs::read(path)
                .with_context(|| format!("failed to read the CA file `{}`", path.display()))?;
            extra.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let tls = connection.insecure || !connection.ca_files.is_empty();
        let plain = connection.plain_http || (is_loopback(registry) && !tls);
        let timeout = connection.timeout.unwrap_or(Duration::from_secs(30));
        let make = |monolithic: bool| {
            let config = ClientConfig {
                protocol: if plain {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                },
                accept_invalid_certificates: connection.insecure,
                extra_root_certificates: extra.clone(),
                read_timeout: Some(timeout),
                connect_timeout: Some(timeout),
                user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")),
                platform_resolver: None,
                use_monolithic_push: monolithic,
                ..Default::default()
            };
            Client::try_from(config)
                .map_err(|e| anyhow!("failed to set up the registry client: {e}"))
        };
        let client = make(true)?;
        let chunked = make(false)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the network runtime")?;
        let attempts = connection.attempts.unwrap_or(5).max(1);
        let base = format!("{}://{registry}", if plain { "http" } else { "https" });
        let mut credentials = credentials;
        if token_services == TokenServices::SameHost && credentials != Credentials::Anonymous {
            // oci-client sends the credentials to whatever token service
            // the registry's challenge names; learn it before it does.
            let http = http_client(connection, &extra, timeout)?;
            let elsewhere =
                runtime.block_on(token_service_elsewhere(&http, &base, registry, attempts))?;
            if let Some(realm) = elsewhere {
                reporter.warn(&format!(
                    "not sending the credentials for `{registry}` to its token service `{realm}`, which is not on `{registry}` itself; going on without credentials (set `KILN_REGISTRY={registry}` to allow it)"
                ));
                credentials = Credentials::Anonymous;
            }
        }
        let (auth, identity) = match credentials {
            Credentials::Anonymous => (RegistryAuth::Anonymous, None),
            Credentials::Basic { username, password } => {
                (RegistryAuth::Basic(username, password), None)
            }
            Credentials::Token(refresh) => {
                let http = http_client(connection, &extra, timeout)?;
                // oci-client keeps the first credentials it is given per
                // registry and would send them as they are when a token
                // lapses; give it none, so only exchanged access tokens
                // (handed over in `ensure`) ever reach the registry.
                for c in [&client, &chunked] {
                    runtime.block_on(c.store_auth_if_needed(registry, &RegistryAuth::Anonymous));
                }
                (
                    RegistryAuth::Anonymous,
                    Some(IdentityToken::new(http, base, registry, refresh)),
                )
            }
        };
        Ok(Registry {
            client,
            chunked,
            auth,
            identity,
            registry: registry.to_string(),
            attempts,
            runtime,
            authenticated: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn reference(
        &self,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> oci_client::Reference {
        match (tag, digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                repository.to_string(),
                d.to_string(),
            ),
            (Some(t), None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                repository.to_string(),
                t.to_string(),
            ),
            (None, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                repository.to_string(),
                "latest".to_string(),
            ),
        }
    }

    /// Runs `op`, again after a [`backoff`] pause for transient failures,
    /// up to the attempts allowed: the last outcome and how many attempts
    /// it took.
    fn attempt<T, F, Fut>(&self, mut op: F) -> (std::result::Result<T, OciDistributionError>, u32)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut attempt = 1;
        loop {
            match self.runtime.block_on(op()) {
                Err(e) if attempt < self.attempts && transient(&e) => {
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                outcome => return (outcome, attempt),
            }
        }
    }

    /// Runs `op` with retries and backoff for transient failures.
    fn retry<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        match self.attempt(op) {
            (Ok(v), _) => Ok(v),
            (Err(e), attempts) => {
                let tries = if attempts > 1 {
                    format!(" (after {attempts} attempts)")
                } else {
                    String::new()
                };
                Err(anyhow!("{}", describe(&e, &self.registry)))
                    .with_context(|| format!("failed to {what}{tries}"))
            }
        }
    }

    /// With an identity token: exchanges it for an access token for
    /// `repository` (once per scope while it lasts) and hands that to
    /// oci-client for both operations it covers. Nothing otherwise.
    fn ensure(&self, repository: &str, push: bool) -> Result<()> {
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        let fresh = self
            .runtime
            .block_on(identity.access_token(repository, push))?;
        if let Some((token, true)) = fresh {
            let r = self.reference(repository, Some("latest"), None);
            let auth = RegistryAuth::Bearer(token);
            let ops: &[RegistryOperation] = if push {
                &[RegistryOperation::Pull, RegistryOperation::Push]
            } else {
                &[RegistryOperation::Pull]
            };
            for client in [&self.client, &self.chunked] {
                for op in ops {
                    self.runtime
                        .block_on(client.auth(&r, &auth, *op))
                        .map_err(|e| anyhow!("{}", describe(&e, &self.registry)))?;
                }
            }
        }
        Ok(())
    }

    /// Makes sure the credentials are good for `op` on `repository`
    /// (fetching a bearer token where the registry uses them).
    pub fn authenticate(&self, repository: &str, push: bool) -> Result<()> {
        if self.identity.is_some() {
            return self.ensure(repository, push);
        }
        let done =
            |list: &Vec<(String, bool)>| list.iter().any(|(r, p)| r == repository && (*p || !push));
        if self.authenticated.lock().is_ok_and(|l| done(&l)) {
            return Ok(());
        }
        let r = self.reference(repository, Some("latest"), None);
        let op = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        self.retry(&format!("authenticate to `{}`", self.registry), || {
            self.client.auth(&r, &self.auth, op)
        })?;
        self.runtime.block_on(
            self.chunked
                .store_auth_if_needed(r.resolve_registry(), &self.auth),
        );
        if let Ok(mut list) = self.authenticated.lock() {
            list.push((repository.to_string(), push));
        }
        Ok(())
    }

    /// The registry's host (and port).
    pub fn host(&self) -> &str {
        &self.registry
    }

    /// Checks that the registry accepts the credentials, by listing the
    /// tags of a repository that need not exist: "unknown repository" is
    /// an answer from an authenticated session, a refusal is not.
    pub fn check_login(&self) -> Result<()> {
        self.ensure("kiln/login-check", false)?;
        let r = self.reference("kiln/login-check", Some("latest"), None);
        let result = self
            .runtime
            .block_on(self.client.list_tags(&r, &self.auth, Some(1), None));
        match result {
            Ok(_) => Ok(()),
            Err(OciDistributionError::ServerError { code: 404, .. }) => Ok(()),
            Err(OciDistributionError::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        oci_client::errors::OciErrorCode::NameUnknown
                            | oci_client::errors::OciErrorCode::NotFound
                    )
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!("{}", describe(&e, &self.registry))),
        }
    }

    /// Whether a blob is in the repository.
    pub fn has_blob(&self, repository: &str, d: &Descriptor) -> Result<bool> {
        self.ensure(repository, false)?;
        let r = self.reference(repository, None, Some(&d.digest));
        self.retry(&format!("check for blob {}", d.digest), || {
            self.client.blob_exists(&r, &d.digest)
        })
    }

    /// Mounts a blob from another repository of the same registry; `false`
    /// when the registry declined (the caller then uploads).
    pub fn mount_blob(&self, repository: &str, from: &str, d: &Descriptor) -> bool {
        if self.ensure(repository, true).is_err() {
            return false;
        }
        let r = self.reference(repository, None, Some(&d.digest));
        let source = self.reference(from, None, Some(&d.digest));
        self.runtime
            .block_on(self.client.mount_blob(&r, &source, &d.digest))
            .is_ok()
    }

    /// Uploads a blob in 4 MiB chunks, streamed from disk for files,
    /// reporting progress as chunks go out.
    pub fn put_blob(
        &self,
        repository: &str,
        d: &Descriptor,
        data: &BlobData,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        if let BlobData::Bytes(b) = data {
            verify(d, b)?;
        }
        self.ensure(repository, true)?;
        let r = self.reference(repository, None, Some(&d.digest));
        self.retry(&format!("upload blob {}", d.digest), || {
            let sent = Arc::new(AtomicU64::new(0));
            let stream = chunks(data, sent.clone());
            let client = if d.size <= MONOLITHIC_MAX {
                &self.client
            } else {
                &self.chunked
            };
            let push = client.push_blob_stream(&r, stream, &d.digest, Some(d.size));
            async move {
                tokio::pin!(push);
                let mut reported = 0;
                let report = |reported: &mut u64| {
                    let now = sent.load(Ordering::Relaxed);
                    progress(now.saturating_sub(*reported));
                    *reported = now;
                };
                loop {
                    tokio::select! {
                        out = &mut push => {
                            report(&mut reported);
                            return out;
                        }
                        _ = tokio::time::sleep(Duration::from_millis(100)) => report(&mut reported),
                    }
                }
            }
        })?;
        Ok(())
    }

    /// Stores a manifest or index under a tag or its digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<()> {
        self.ensure(repository, true)?;
        let digest = kiln_core::Digest::of(bytes).to_string();
        let r = match tag {
            Some(t) => self.reference(repository, Some(t), None),
            None => self.reference(repository, None, Some(&digest)),
        };
        let content_type: http::HeaderValue = media_type
            .parse()
            .map_err(|_| anyhow!("invalid media type `{media_type}`"))?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        self.retry(&format!("store manifest {digest}"), || {
            self.client
                .push_manifest_raw(&r, body.clone(), content_type.clone())
        })?;
        Ok(())
    }

    /// Fetches a manifest or index by tag or digest; returns its bytes,
    /// media type and digest (checked against `digest` when one is given).
    /// `None` when the registry does not have it.
    pub fn get_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Option<(Vec<u8>, String, String)>> {
        self.ensure(repository, false)?;
        let r = self.reference(repository, tag, digest);
        let accepted = [MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE];
        // Retries, but a missing manifest is an answer, not a failure.
        let (result, _) = self.attempt(|| self.client.pull_manifest_raw(&r, &self.auth, &accepted));
        let (bytes, _digest_header) = match result {
            Ok(v) => v,
            Err(OciDistributionError::ImageManifestNotFoundError(_)) => return Ok(None),
            Err(OciDistributionError::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        oci_client::errors::OciErrorCode::ManifestUnknown
                            | oci_client::errors::OciErrorCode::NameUnknown
                            | oci_client::errors::OciErrorCode::NotFound
                    )
                }) =>
            {
                return Ok(None);
            }
            Err(OciDistributionError::ServerError { code: 404, .. }) => return Ok(None),
            Err(e) => {
                return Err(anyhow!("{}", describe(&e, &self.registry)))
                    .with_context(|| format!("failed to fetch the manifest of `{r}`"));
            }
        };
        let actual = kiln_core::Digest::of(&bytes).to_string();
        if let Some(d) = digest
            && d != actual
        {
            bail!(
                "the registry sent a manifest for `{r}` whose digest is {actual}, not {d}; refusing it"
            );
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string());
        Ok(Some((bytes.to_vec(), media_type, actual)))
    }

    /// Downloads a blob, checking its size and digest before returning it.
    pub fn get_blob(
        &self,
        repository: &str,
        d: &Descriptor,
        progress: &dyn Fn(u64),
    ) -> Result<Vec<u8>> {
        self.ensure(repository, false)?;
        let r = self.reference(repository, None, Some(&d.digest));
        let bytes = self.retry(&format!("download blob {}", d.digest), || async {
            let mut stream = self.client.pull_blob_stream(&r, d.digest.as_str()).await?;
            let mut out = Vec::with_capacity(usize::try_from(d.size.min(1 << 30)).unwrap_or(0));
            while let Some(chunk) = stream.stream.next().await {
                let chunk = chunk?;
                if out.len() as u64 + chunk.len() as u64 > d.size {
                    return Err(OciDistributionError::GenericError(Some(format!(
                        "blob {} is larger than the {} bytes its descriptor says",
                        d.digest, d.size
                    ))));
                }
                progress(chunk.len() as u64);
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        })?;
        // oci-client checked the digest as the bytes streamed in (its
        // stream ends in an error otherwise); the size is checked here.
        verify_size(d, &bytes)?;
        Ok(bytes)
    }

    /// Every tag of the repository, sorted.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        self.ensure(repository, false)?;
        let r = self.reference(repository, Some("latest"), None);
        let mut tags = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self.retry(&format!("list the tags of `{repository}`"), || {
                self.client
                    .list_tags(&r, &self.auth, Some(1000), last.as_deref())
            })?;
            let n = page.tags.len();
            last = page.tags.last().cloned();
            tags.extend(page.tags);
            if n < 1000 {
                break;
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Manifests referring to `subject`: from the registry's referrers API,
    /// or (where it answers 404) from the referrers tag schema's index.
    pub fn referrers(&self, repository: &str, subject: &str) -> Result<Vec<Descriptor>> {
        self.ensure(repository, false)?;
        let r = self.reference(repository, None, Some(subject));
        let index = self.retry(&format!("list the referrers of {subject}"), || {
            self.client.pull_referrers(&r, None)
        })?;
        Ok(index
            .manifests
            .into_iter()
            .map(|m| Descriptor {
                media_type: m.media_type,
                digest: m.digest,
                size: u64::try_from(m.size).unwrap_or(0),
                artifact_type: m.artifact_type,
                annotations: m.annotations.unwrap_or_default(),
            })
            .collect())
    }
}

const CHUNK: usize = 4 << 20;
/// Blobs up to this size go up in one request.
const MONOLITHIC_MAX: u64 = 128 << 20;

type Chunk = std::result::Result<bytes::Bytes, OciDistributionError>;

/// A blob's bytes as a stream of chunks, counting what was handed out in
/// `sent`. A large file is mapped and sent straight from the page cache;
/// other files are read from disk as the upload goes, never held whole.
fn chunks(
    data: &BlobData,
    sent: Arc<AtomicU64>,
) -> futures_util::stream::BoxStream<'static, Chunk> {
    use futures_util::StreamExt as _;
    match data {
        BlobData::Bytes(b) => pieces(bytes::Bytes::copy_from_slice(b), sent),
        BlobData::File(path) => match kiln_core::input::Input::map(path) {
            Some(mapped) => pieces(bytes::Bytes::from_owner(mapped), sent),
            None => futures_util::stream::try_unfold(
                (path.clone(), None::<tokio::fs::File>, sent),
                |(path, file, sent)| async move {
                    use tokio::io::AsyncReadExt as _;
                    let mut f = match file {
                        Some(f) => f,
                        None => tokio::fs::File::open(&path).await?,
                    };
                    let mut buf = vec![0u8; CHUNK];
                    let mut filled = 0;
                    while filled < CHUNK {
                        let n = f.read(&mut buf[filled..]).await?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    if filled == 0 {
                        return Ok(None);
                    }
                    buf.truncate(filled);
                    sent.fetch_add(filled as u64, Ordering::Relaxed);
                    Ok(Some((bytes::Bytes::from(buf), (path, Some(f), sent))))
                },
            )
            .boxed(),
        },
    }
}

/// `bytes` as a stream of [`CHUNK`]-sized pieces, counted into `sent` as
/// they are taken.
fn pieces(
    bytes: bytes::Bytes,
    sent: Arc<AtomicU64>,
) -> futures_util::stream::BoxStream<'static, Chunk> {
    use futures_util::StreamExt as _;
    let pieces: Vec<Chunk> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|start| Ok(bytes.slice(start..(start + CHUNK).min(bytes.len()))))
        .collect();
    futures_util::stream::iter(pieces)
        .inspect(move |c| {
            if let Ok(c) = c {
                sent.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_and_refused_are_told_apart_and_never_retried() {
        let denied = OciDistributionError::ServerError {
            code: 403,
            url: "https://r.example/v2/a/b/blobs/uploads/".to_string(),
            message: "denied".to_string(),
        };
        let text = describe(&denied, "r.example");
        assert!(text.contains("denied access (403)"), "{text}");
        assert!(!transient(&denied));
        let refused = OciDistributionError::UnauthorizedError {
            url: "https://r.example/v2/".to_string(),
        };
        assert!(describe(&refused, "r.example").contains("kiln login r.example"));
        assert!(!transient(&refused));
        let busy = OciDistributionError::ServerError {
            code: 503,
            url: String::new(),
            message: String::new(),
        };
        assert!(transient(&busy));
    }

    #[test]
    fn loopback_is_an_address_or_localhost_not_a_prefix() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3",
            "127.1.2.3:80",
            "localhost",
            "localhost:5000",
            "LocalHost:5000",
            "[::1]",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "127.example.com",
            "127.example.com:5000",
            "127.0.0.1.example.com",
            "localhost.example.com:5000",
            "10.0.0.1:5000",
            "[::2]:5000",
            "[::1",
            "ghcr.io",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn backoff_doubles_from_a_quarter_second_up_to_eight_seconds() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(backoff(1), ms(250));
        assert_eq!(backoff(2), ms(500));
        assert_eq!(backoff(3), ms(1000));
        assert_eq!(backoff(5), ms(4000));
        assert_eq!(backoff(6), ms(8000));
        assert_eq!(backoff(7), ms(8000));
        assert_eq!(backoff(32), ms(8000));
        assert_eq!(backoff(33), ms(8000));
        assert_eq!(backoff(u32::MAX), ms(8000));
        assert_eq!(backoff(0), ms(250));
    }
}
