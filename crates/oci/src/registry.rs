//! A registry through kiln's own client for the OCI distribution spec, on reqwest.
//!
//! It moves blobs (checked, uploaded in one request or in chunks, mounted
//! across repositories), manifests, tags and referrers. Every request is
//! authenticated (`token.rs`), bounded, given a deadline and retried when its
//! failure may pass (`registry/http.rs`), over TLS as the user trusts the
//! registry (`registry/tls.rs`).

pub(crate) mod http;
mod tls;

use crate::artifact::{
    BlobData, Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, media_type_of, referrers_tag,
};
use crate::auth::Credentials;
use crate::layout::verify;
use crate::token::{Tokens, probe};
use crate::wire::{self, realm_elsewhere};
use anyhow::{Context, Result, anyhow, bail};
use http::{Clients, Failure, Request, Retries};
use kiln_core::{Digest, Reporter};
use reqwest::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION,
};
use reqwest::{Method, StatusCode};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Speak HTTP instead of HTTPS.
    pub plain_http: bool,
    /// PEM certificates of extra certificate authorities to trust (or
    /// exact server certificates), for every host kiln talks to.
    pub ca_files: Vec<std::path::PathBuf>,
    /// Accept any certificate from the registry named (never from a token
    /// service or redirect target on another host).
    pub insecure: bool,
    /// Connect timeout, idle time between reads, and total deadline of a
    /// request (requests carrying blobs get longer in proportion to their
    /// size); `None` is 30 seconds.
    pub timeout: Option<Duration>,
    /// The most attempts per request, the first included, for transient
    /// failures (what `--retries` sets); `None` is [`DEFAULT_MAX_ATTEMPTS`].
    /// Read it with [`Connection::max_attempts`].
    pub max_attempts: Option<u32>,
}

/// Attempts per request when a [`Connection`] sets none.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

impl Connection {
    /// The most attempts per request, the first included: at least 1.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1)
    }

    /// This connection with at most `max_attempts` attempts per request.
    pub fn with_max_attempts(self, max_attempts: u32) -> Connection {
        Connection {
            max_attempts: Some(max_attempts),
            ..self
        }
    }
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

/// Blobs up to this size go up in one request; larger ones in
/// [`CHUNK`]-sized pieces, since proxies in front of registries often cap
/// the size of one request.
const MONOLITHIC_MAX: u64 = 128 << 20;

/// The piece size of chunked uploads, and of reads from a blob's file.
const CHUNK: usize = 4 << 20;

/// The most tags `kiln tags` lists, and referrers kiln reads for one
/// manifest: bounds on lists a registry pages through.
const MAX_TAGS: usize = 100_000;
const MAX_REFERRERS: usize = 10_000;

/// The most pages of one list followed.
const MAX_PAGES: usize = 10_000;

/// The manifest media types kiln asks for.
const MANIFEST_TYPES: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A client for one registry.
pub struct Registry {
    registry: String,
    /// `scheme://host[:port]/`.
    base: Url,
    clients: Clients,
    tokens: Tokens,
    retries: Retries,
    /// `--timeout`.
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

/// One request about a repository, made again for each attempt (and once
/// more within an attempt when a 401 says to get a new token).
struct Call<'a> {
    method: Method,
    url: Url,
    repository: &'a str,
    /// Whether the request writes (the token's scope).
    push: bool,
    headers: HeaderMap,
    /// Makes the body, once per request sent.
    body: Option<&'a dyn Fn() -> reqwest::Body>,
    /// The total deadline, when not `--timeout`.
    deadline: Option<Duration>,
}

impl<'a> Call<'a> {
    fn new(method: Method, url: Url, repository: &'a str, push: bool) -> Call<'a> {
        Call {
            method,
            url,
            repository,
            push,
            headers: HeaderMap::new(),
            body: None,
            deadline: None,
        }
    }

    fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Call<'a> {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
}

/// What a registry failure means to a user.
fn describe(e: &Failure, registry: &str) -> String {
    match e {
        Failure::Status {
            status,
            retry_after,
            message,
        } => {
            let detail = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            match status.as_u16() {
                401 => format!(
                    "the registry `{registry}` refused the credentials (or needs some): log in with `kiln login {registry}`, or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD"
                ),
                403 => format!(
                    "the registry `{registry}` denied access (403): the credentials lack permission for this repository{detail}"
                ),
                _ => {
                    let mut text = format!("the registry `{registry}` answered {status}{detail}");
                    if let Some(wait) = retry_after
                        && *wait > http::MAX_RETRY_AFTER
                    {
                        text.push_str(&format!(
                            "; it asked to be asked again in {} s, longer than kiln waits ({} s)",
                            wait.as_secs(),
                            http::MAX_RETRY_AFTER.as_secs()
                        ));
                    }
                    text
                }
            }
        }
        Failure::Transport(e) => {
            // A redirect or a token service may have led to another host.
            let elsewhere = e.url().and_then(|u| {
                let host = match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str()?),
                    None => u.host_str()?.to_string(),
                };
                (!host.eq_ignore_ascii_case(registry)).then_some(host)
            });
            if let Some(tls) = tls::explain(e, registry, elsewhere.as_deref()) {
                return format!("{tls}: {}", error_chain(e));
            }
            let at = elsewhere
                .map(|host| format!(" (at `{host}`)"))
                .unwrap_or_default();
            if e.is_timeout() {
                format!(
                    "the registry `{registry}`{at} did not answer in time (see --timeout): {}",
                    error_chain(e)
                )
            } else if e.is_connect() {
                format!(
                    "cannot connect to the registry `{registry}`{at}; is it running and reachable, and does it speak TLS? (see --plain-http, --ca-file, --insecure): {}",
                    error_chain(e)
                )
            } else {
                format!(
                    "the connection to the registry `{registry}`{at} failed: {}",
                    error_chain(e)
                )
            }
        }
        Failure::TooLarge { what, limit, why } => format!(
            "the registry `{registry}` sent a {what} of more than {} ({why}); refusing it",
            bytes_text(*limit)
        ),
        Failure::Content(message) => format!("the registry `{registry}` sent {message}"),
        Failure::Idle(idle) => format!(
            "the registry `{registry}` sent nothing for {} s in the middle of a blob: it timed out (see --timeout)",
            idle.as_secs()
        ),
        Failure::Fatal(e) => format!("{e:#}"),
    }
}

/// `n` bytes for a message: whole MiB as such.
fn bytes_text(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
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

/// `response` when its status is one `ok` takes; else the failure it
/// means.
async fn expect(
    response: reqwest::Response,
    ok: impl Fn(StatusCode) -> bool,
) -> Result<reqwest::Response, Failure> {
    if ok(response.status()) {
        Ok(response)
    } else {
        Err(http::failure(response).await)
    }
}

/// Fails when the answer's `Docker-Content-Digest` names another digest
/// than `expected` for `what`.
fn check_content_digest(headers: &HeaderMap, expected: &Digest, what: &str) -> Result<(), Failure> {
    match http::content_digest(headers) {
        Some(said) if said != expected.to_string() => Err(Failure::Content(format!(
            "a `Docker-Content-Digest` of {said} for {what}, whose digest is {expected}; refusing it"
        ))),
        _ => Ok(()),
    }
}

/// Where an upload goes on: the answer's `Location`, relative to `from`.
fn upload_location(response: &reqwest::Response, from: &Url) -> Result<Url, Failure> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| from.join(l).ok())
        .ok_or_else(|| {
            Failure::Fatal(anyhow!(
                "the registry did not say where the upload goes on (no usable `Location` in its answer to `{from}`)"
            ))
        })
}

/// `url` with `digest=` added to its query, as an upload's last request
/// names what it completes.
fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
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
    ///
    /// Trust, in order: the system's certificate authorities, then
    /// `--ca-file`, then the registry's certs.d directories
    /// ([`crate::certs::registry_trust`]: CAs and a client certificate),
    /// which apply to the registry's own host and port only, as
    /// `--insecure` does.
    pub fn with_token_services(
        registry: &str,
        credentials: Credentials,
        token_services: TokenServices,
        connection: &Connection,
        reporter: &dyn Reporter,
    ) -> Result<Registry> {
        let per_registry = crate::certs::registry_trust(registry)?;
        let tls_asked =
            connection.insecure || !connection.ca_files.is_empty() || !per_registry.is_empty();
        let plain = connection.plain_http || (is_loopback(registry) && !tls_asked);
        let timeout = connection.timeout.unwrap_or(Duration::from_secs(30));
        let base = Url::parse(&format!(
            "{}://{registry}/",
            if plain { "http" } else { "https" }
        ))
        .ok()
        .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty())
        .ok_or_else(|| anyhow!("`{registry}` is not a registry host name"))?;

        let mut everywhere = Vec::new();
        for path in &connection.ca_files {
            everywhere.extend(tls::read_certificates(path)?);
        }
        let mut own = everywhere.clone();
        for path in &per_registry.cas {
            own.extend(tls::read_certificates(path)?);
        }
        let identity = match &per_registry.client_cert {
            Some((cert, key)) => Some(tls::read_identity(cert, key)?),
            None => None,
        };
        let registry_client = http::client(
            tls::client_config(tls::Trust {
                certificates: own,
                insecure: connection.insecure,
                identity,
            })?,
            timeout,
        )?;
        let strict_client = http::client(
            tls::client_config(tls::Trust {
                certificates: everywhere,
                ..tls::Trust::default()
            })?,
            timeout,
        )?;
        let clients = Clients::new(registry_client, strict_client, &base);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the network runtime")?;
        let retries = Retries::new(connection.max_attempts());

        let mut credentials = credentials;
        let mut probed = None;
        if token_services == TokenServices::SameHost && credentials != Credentials::Anonymous {
            // Learn where the token service is before anything is sent.
            let (answer, attempts) = runtime.block_on(retries.run(|| probe(&clients, &base)));
            let (status, challenges) = answer
                .map_err(|e| anyhow!("{}", describe(&e, registry)))
                .with_context(|| {
                    format!(
                        "failed to ask the registry `{registry}` where its token service is{}",
                        after(attempts)
                    )
                })?;
            if let Some(realm) = realm_elsewhere(&challenges, base.as_str()) {
                reporter.warn(&format!(
                    "not sending the credentials for `{registry}` to its token service `{realm}`, which is not on `{registry}` itself; going on without credentials (set `KILN_REGISTRY={registry}` to allow it)"
                ));
                credentials = Credentials::Anonymous;
            }
            probed = Some((status, challenges));
        }
        let tokens = Tokens::new(
            registry,
            base.clone(),
            credentials,
            token_services == TokenServices::SameHost,
        );
        if let Some((status, challenges)) = probed {
            tokens.learn(status, &challenges);
        }
        Ok(Registry {
            registry: registry.to_string(),
            base,
            clients,
            tokens,
            retries,
            timeout,
            runtime,
        })
    }

    /// The registry's host (and port).
    pub fn host(&self) -> &str {
        &self.registry
    }

    /// `/v2/<repository>/<tail…>` on the registry, each part escaped.
    fn url(&self, repository: &str, tail: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("`{}` cannot hold a path", self.base))?
            .clear()
            .push("v2")
            .extend(repository.split('/'))
            .extend(tail);
        Ok(url)
    }

    /// Sends `call` with the authorization the registry asks for (only to
    /// the registry's own origin); on a 401 to a request that did not
    /// carry a token fetched just now, learns the registry's challenge and
    /// sends it once more when kiln has something new to send.
    async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response, Failure> {
        let to_registry = self.clients.is_registry(&call.url);
        let auth = if to_registry {
            self.tokens
                .authorization(&self.clients, call.repository, call.push)
                .await?
        } else {
            None
        };
        let fresh = auth.as_ref().is_some_and(|(_, fresh)| *fresh);
        let sent = auth.is_some();
        let response = self.clients.send(self.request(call, auth)).await?;
        if response.status() != StatusCode::UNAUTHORIZED || !to_registry || fresh {
            return Ok(response);
        }
        let challenges = http::www_authenticate(response.headers());
        if !self.tokens.refused(&challenges, call.repository, sent) {
            return Ok(response);
        }
        let auth = self
            .tokens
            .authorization(&self.clients, call.repository, call.push)
            .await?;
        if auth.is_none() {
            return Ok(response);
        }
        drop(response);
        self.clients.send(self.request(call, auth)).await
    }

    fn request(&self, call: &Call<'_>, auth: Option<(HeaderValue, bool)>) -> Request {
        Request {
            method: call.method.clone(),
            url: call.url.clone(),
            headers: call.headers.clone(),
            body: call.body.map(|make| make()),
            authorization: auth.map(|(header, _)| header),
            deadline: call.deadline,
        }
    }

    /// Runs `op` with retries, pauses and the registry's `Retry-After`;
    /// a failure says what failed (`what`) and why.
    fn retry<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let (result, attempts) = self.runtime.block_on(self.retries.run(op));
        self.outcome(what, result, attempts)
    }

    fn outcome<T>(&self, what: &str, result: Result<T, Failure>, attempts: u32) -> Result<T> {
        result.map_err(|e| {
            anyhow!("{}", self.tokens.redact(&describe(&e, &self.registry)))
                .context(format!("failed to {what}{}", after(attempts)))
        })
    }

    /// Makes sure the credentials are good for `repository` (to push when
    /// `push`), fetching a bearer token where the registry uses them.
    pub fn authenticate(&self, repository: &str, push: bool) -> Result<()> {
        self.retry(&format!("authenticate to `{}`", self.registry), || async {
            self.tokens
                .authorization(&self.clients, repository, push)
                .await
                .map(drop)
        })
    }

    /// Checks that the registry accepts the credentials, by listing the
    /// tags of a repository that need not exist: "unknown repository" is
    /// an answer from an authenticated session, a refusal is not.
    pub fn check_login(&self) -> Result<()> {
        let repository = "kiln/login-check";
        let mut url = self.url(repository, &["tags", "list"])?;
        url.set_query(Some("n=1"));
        self.retry(
            &format!("check the credentials for `{}`", self.registry),
            || async {
                let call = Call::new(Method::GET, url.clone(), repository, false);
                let response = self.send(&call).await?;
                let status = response.status();
                if status.is_success() || status == StatusCode::NOT_FOUND {
                    Ok(())
                } else {
                    Err(http::failure(response).await)
                }
            },
        )
    }

    /// Whether a blob is in the repository.
    pub fn has_blob(&self, repository: &str, d: &Descriptor) -> Result<bool> {
        let digest = d.sha256()?;
        let url = self.url(repository, &["blobs", &digest.to_string()])?;
        self.retry(&format!("check for blob {digest}"), || async {
            let call = Call::new(Method::HEAD, url.clone(), repository, false);
            let response = self.send(&call).await?;
            match response.status() {
                s if s.is_success() => {
                    check_content_digest(response.headers(), &digest, "the blob")?;
                    Ok(true)
                }
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(http::failure(response).await),
            }
        })
    }

    /// Mounts a blob from another repository of the same registry; `false`
    /// when the registry declined (the caller then uploads).
    pub fn mount_blob(&self, repository: &str, from: &str, d: &Descriptor) -> bool {
        let Ok(digest) = d.sha256() else {
            return false;
        };
        let Ok(mut url) = self.url(repository, &["blobs", "uploads", ""]) else {
            return false;
        };
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        self.runtime.block_on(async {
            let call = Call::new(Method::POST, url.clone(), repository, true);
            let Ok(response) = self.send(&call).await else {
                return false;
            };
            match response.status() {
                StatusCode::CREATED => true,
                StatusCode::ACCEPTED => {
                    // The registry opened an upload instead: close it.
                    if let Ok(location) = upload_location(&response, &url) {
                        let cancel = Call::new(Method::DELETE, location, repository, true);
                        let _ = self.send(&cancel).await;
                    }
                    false
                }
                _ => false,
            }
        })
    }

    /// Uploads a blob: in one request up to 128 MiB, else in 4 MiB
    /// chunks; streamed from disk for files (mapped when large), reporting
    /// progress as the bytes go out.
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
        let digest = d.sha256()?;
        // The most bytes reported so far, over every attempt, so a retry
        // does not count its bytes twice.
        let reported = std::cell::Cell::new(0u64);
        let (result, attempts) = self.runtime.block_on(self.retries.run(|| async {
            let sent = Arc::new(AtomicU64::new(0));
            let report = || {
                let now = sent.load(Ordering::Relaxed).min(d.size);
                if now > reported.get() {
                    progress(now - reported.get());
                    reported.set(now);
                }
            };
            let upload = self.upload(repository, d, &digest, data, sent.clone());
            tokio::pin!(upload);
            loop {
                tokio::select! {
                    out = &mut upload => {
                        report();
                        return out;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(100)) => report(),
                }
            }
        }));
        self.outcome(&format!("upload blob {digest}"), result, attempts)
    }

    /// One attempt at uploading a blob, counting the bytes sent in `sent`.
    async fn upload(
        &self,
        repository: &str,
        d: &Descriptor,
        digest: &Digest,
        data: &BlobData,
        sent: Arc<AtomicU64>,
    ) -> Result<(), Failure> {
        let start = self
            .url(repository, &["blobs", "uploads", ""])
            .map_err(Failure::Fatal)?;
        let response = self
            .send(&Call::new(Method::POST, start.clone(), repository, true))
            .await?;
        let response = expect(response, |s| s == StatusCode::ACCEPTED).await?;
        let mut location = upload_location(&response, &start)?;
        drop(response);
        let done = if d.size <= MONOLITHIC_MAX {
            let body =
                || reqwest::Body::wrap_stream(BlobReader::new(data, d.size).stream(sent.clone()));
            let mut call = Call::new(Method::PUT, with_digest(location, digest), repository, true)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, &d.size.to_string());
            call.body = Some(&body);
            call.deadline = Some(http::transfer_deadline(self.timeout, d.size));
            self.send(&call).await?
        } else {
            let mut reader = BlobReader::new(data, d.size);
            let mut offset = 0u64;
            while let Some(chunk) = reader.next().await.map_err(|e| Failure::Fatal(e.into()))? {
                let len = chunk.len() as u64;
                let body = move || reqwest::Body::from(chunk.clone());
                let mut call = Call::new(Method::PATCH, location.clone(), repository, true)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, &len.to_string())
                    .header(CONTENT_RANGE, &format!("{offset}-{}", offset + len - 1));
                call.body = Some(&body);
                call.deadline = Some(http::transfer_deadline(self.timeout, len));
                let response = self.send(&call).await?;
                let response = expect(response, |s| s == StatusCode::ACCEPTED).await?;
                location = upload_location(&response, &location)?;
                offset += len;
                sent.fetch_add(len, Ordering::Relaxed);
            }
            let empty = || reqwest::Body::from(Vec::new());
            let mut call = Call::new(Method::PUT, with_digest(location, digest), repository, true);
            call.body = Some(&empty);
            self.send(&call).await?
        };
        let done = expect(done, |s| s.is_success()).await?;
        check_content_digest(done.headers(), digest, "the blob it stored")
    }

    /// Stores a manifest or index under a tag or its digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<()> {
        let digest = Digest::of(bytes);
        let by_digest = digest.to_string();
        let url = self.url(repository, &["manifests", tag.unwrap_or(&by_digest)])?;
        HeaderValue::from_str(media_type)
            .map_err(|_| anyhow!("invalid media type `{media_type}`"))?;
        let body = || reqwest::Body::from(bytes.to_vec());
        self.retry(&format!("store manifest {digest}"), || async {
            let mut call = Call::new(Method::PUT, url.clone(), repository, true)
                .header(CONTENT_TYPE, media_type);
            call.body = Some(&body);
            let response = expect(self.send(&call).await?, |s| s.is_success()).await?;
            check_content_digest(response.headers(), &digest, "the manifest it stored")
        })
    }

    /// Fetches a manifest or index by tag or digest; returns its bytes,
    /// media type and digest (checked against `digest` when one is given).
    /// `None` when the registry does not have it. At most 4 MiB is read.
    pub fn get_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Option<(Vec<u8>, String, Digest)>> {
        let by_digest = digest.map(Digest::to_string);
        let reference = by_digest.as_deref().or(tag).unwrap_or("latest");
        let name = format!(
            "{}/{repository}{}{}",
            self.registry,
            tag.map(|t| format!(":{t}")).unwrap_or_default(),
            digest.map(|d| format!("@{d}")).unwrap_or_default()
        );
        let url = self.url(repository, &["manifests", reference])?;
        self.retry(&format!("fetch the manifest of `{name}`"), || async {
            let call = Call::new(Method::GET, url.clone(), repository, false)
                .header(ACCEPT, MANIFEST_TYPES);
            let response = self.send(&call).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let response = expect(response, |s| s.is_success()).await?;
            let said = http::content_digest(response.headers());
            let bytes = http::read_document(response, "manifest").await?;
            let actual = Digest::of(&bytes);
            if let Some(d) = digest
                && *d != actual
            {
                return Err(Failure::Content(format!(
                    "a manifest for `{name}` whose digest is {actual}, not {d}; refusing it"
                )));
            }
            if let Some(said) = said
                && said != actual.to_string()
            {
                return Err(Failure::Content(format!(
                    "a `Docker-Content-Digest` of {said} for the manifest of `{name}`, whose digest is {actual}; refusing it"
                )));
            }
            let media_type = media_type_of(&bytes).unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string());
            Ok(Some((bytes, media_type, actual)))
        })
    }

    /// Downloads a blob, never reading beyond the size its descriptor
    /// declares, and checks its size and digest before returning it.
    pub fn get_blob(
        &self,
        repository: &str,
        d: &Descriptor,
        progress: &dyn Fn(u64),
    ) -> Result<Vec<u8>> {
        use sha2::Digest as _;
        let digest = d.sha256()?;
        let url = self.url(repository, &["blobs", &digest.to_string()])?;
        let what = format!("blob {digest}");
        let reported = std::cell::Cell::new(0u64);
        self.retry(&format!("download blob {digest}"), || async {
            let mut call = Call::new(Method::GET, url.clone(), repository, false);
            call.deadline = Some(http::transfer_deadline(self.timeout, d.size));
            let response = expect(self.send(&call).await?, |s| s.is_success()).await?;
            check_content_digest(response.headers(), &digest, "the blob")?;
            let too_large = || Failure::TooLarge {
                what: what.clone(),
                limit: d.size,
                why: "the size its descriptor declares",
            };
            if response.content_length().is_some_and(|n| n > d.size) {
                return Err(too_large());
            }
            let mut response = response;
            let mut out = Vec::with_capacity(usize::try_from(d.size.min(1 << 30)).unwrap_or(0));
            let mut hasher = sha2::Sha256::new();
            // Each read within `--timeout`, the whole within the deadline.
            while let Some(chunk) = tokio::time::timeout(self.timeout, response.chunk())
                .await
                .map_err(|_| Failure::Idle(self.timeout))??
            {
                if out.len() as u64 + chunk.len() as u64 > d.size {
                    return Err(too_large());
                }
                hasher.update(&chunk);
                out.extend_from_slice(&chunk);
                let now = out.len() as u64;
                if now > reported.get() {
                    progress(now - reported.get());
                    reported.set(now);
                }
            }
            if out.len() as u64 != d.size {
                return Err(Failure::Content(format!(
                    "blob {digest} with {} bytes, but its descriptor says {}",
                    out.len(),
                    d.size
                )));
            }
            let actual = Digest::from_bytes(hasher.finalize().into());
            if actual != digest {
                return Err(Failure::Content(format!(
                    "a blob whose content does not match its digest: expected {digest}, got {actual}"
                )));
            }
            Ok(out)
        })
    }

    /// Every tag of the repository, sorted.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let mut first = self.url(repository, &["tags", "list"])?;
        first.set_query(Some("n=1000"));
        let mut tags = self
            .pages(
                repository,
                first,
                List {
                    what: format!("list the tags of `{repository}`"),
                    document: "tag list",
                    noun: "tags",
                    accept: None,
                    max: MAX_TAGS,
                    missing_ok: false,
                },
                |body| {
                    wire::tag_page(body).map_err(|e| {
                        anyhow!(
                            "the registry `{}` sent a tag list that does not parse: {e}",
                            self.registry
                        )
                    })
                },
                |tag: &String| tag.clone(),
            )?
            .unwrap_or_default();
        tags.sort();
        Ok(tags)
    }

    /// Manifests referring to `subject`: from the registry's referrers API,
    /// or (where it answers 404) from the referrers tag schema's index.
    pub fn referrers(&self, repository: &str, subject: &Digest) -> Result<Vec<Descriptor>> {
        let first = self.url(repository, &["referrers", &subject.to_string()])?;
        let listed = self.pages(
            repository,
            first,
            List {
                what: format!("list the referrers of {subject}"),
                document: "referrers list",
                noun: "referrers",
                accept: Some(INDEX_MEDIA_TYPE),
                max: MAX_REFERRERS,
                missing_ok: true,
            },
            |body| {
                wire::referrer_entries(body).with_context(|| {
                    format!(
                        "the registry `{}` sent a referrers list that is not an OCI image index",
                        self.registry
                    )
                })
            },
            |d: &Descriptor| d.digest.clone(),
        )?;
        if let Some(listed) = listed {
            return Ok(listed);
        }
        // No referrers API: the referrers tag schema.
        let tag = referrers_tag(subject);
        match self.get_manifest(repository, Some(&tag), None)? {
            None => Ok(Vec::new()),
            Some((bytes, _, digest)) => wire::referrer_entries(&bytes).with_context(|| {
                format!("the referrers index `{tag}` ({digest}) is not an OCI image index")
            }),
        }
    }

    /// The items of a list the registry pages through: from `first`, each
    /// page read within 4 MiB, following `Link: <…>; rel="next"` (relative
    /// or absolute, on the registry only) until a page without one, a page
    /// seen before, or a page that lists nothing new. More than `list.max`
    /// items, or [`MAX_PAGES`] pages, is an error. `None` when the first
    /// page is not found and `list.missing_ok`.
    fn pages<T>(
        &self,
        repository: &str,
        first: Url,
        list: List,
        parse: impl Fn(&[u8]) -> Result<Vec<T>>,
        key: impl Fn(&T) -> String,
    ) -> Result<Option<Vec<T>>> {
        let mut seen_pages = HashSet::new();
        let mut keys = HashSet::new();
        let mut items = Vec::new();
        let mut url = first;
        loop {
            if !seen_pages.insert(url.to_string()) {
                break;
            }
            if seen_pages.len() > MAX_PAGES {
                bail!(
                    "the registry `{}` pages the {} of `{repository}` over more than {MAX_PAGES} pages; kiln stops there",
                    self.registry,
                    list.noun
                );
            }
            let first_page = seen_pages.len() == 1;
            let page = self.retry(&list.what, || async {
                let mut call = Call::new(Method::GET, url.clone(), repository, false);
                if let Some(accept) = list.accept {
                    call = call.header(ACCEPT, accept);
                }
                let response = self.send(&call).await?;
                if first_page && list.missing_ok && response.status() == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                let response = expect(response, |s| s.is_success()).await?;
                let next = http::next_link(response.headers());
                let body = http::read_document(response, list.document).await?;
                Ok(Some((body, next)))
            })?;
            let Some((body, next)) = page else {
                return Ok(None);
            };
            let mut new = 0;
            for item in parse(&body).with_context(|| format!("failed to {}", list.what))? {
                if keys.insert(key(&item)) {
                    items.push(item);
                    new += 1;
                }
            }
            if items.len() > list.max {
                bail!(
                    "the registry `{}` lists more than {} {} for `{repository}`; kiln stops there",
                    self.registry,
                    list.max,
                    list.noun
                );
            }
            let Some(next) = next else { break };
            if new == 0 {
                break;
            }
            let next_url = url.join(&next).with_context(|| {
                format!(
                    "the registry `{}` links the next page of the {} to `{next}`, which is not a URL",
                    self.registry, list.noun
                )
            })?;
            if !self.clients.is_registry(&next_url) {
                bail!(
                    "the registry `{}` links the next page of the {} of `{repository}` to `{next_url}`, elsewhere; kiln follows such links on the registry only",
                    self.registry,
                    list.noun
                );
            }
            url = next_url;
        }
        Ok(Some(items))
    }
}

/// A list [`Registry::pages`] reads.
struct List {
    /// What reading it is, for errors (`list the tags of …`).
    what: String,
    /// One page, for errors about its size (`tag list`).
    document: &'static str,
    /// Its items (`tags`).
    noun: &'static str,
    accept: Option<&'static str>,
    max: usize,
    missing_ok: bool,
}

/// ` (after N attempts)` when there were several.
fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// A blob's bytes in [`CHUNK`]-sized pieces: from memory, from its file
/// mapped (large files, sent straight from the page cache), or read from
/// its file as the upload goes (never held whole). A file that no longer
/// has the size it was hashed at is an error.
enum BlobReader {
    Memory {
        bytes: bytes::Bytes,
        at: usize,
        size: u64,
    },
    File {
        path: std::path::PathBuf,
        file: Option<tokio::fs::File>,
        left: u64,
    },
}

impl BlobReader {
    fn new(data: &BlobData, size: u64) -> BlobReader {
        let memory = |bytes| BlobReader::Memory { bytes, at: 0, size };
        match data {
            BlobData::Bytes(b) => memory(bytes::Bytes::copy_from_slice(b)),
            BlobData::File(path) => match kiln_core::input::Input::map(path) {
                Some(mapped) => memory(bytes::Bytes::from_owner(mapped)),
                None => BlobReader::File {
                    path: path.clone(),
                    file: None,
                    left: size,
                },
            },
        }
    }

    /// The next piece; `None` at the end.
    async fn next(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
        match self {
            BlobReader::Memory { bytes, at, size } => {
                if bytes.len() as u64 != *size {
                    return Err(std::io::Error::other(format!(
                        "the blob is {} bytes now, not the {size} it had when it was hashed; it changed during the push",
                        bytes.len()
                    )));
                }
                if *at >= bytes.len() {
                    return Ok(None);
                }
                let end = (*at + CHUNK).min(bytes.len());
                let piece = bytes.slice(*at..end);
                *at = end;
                Ok(Some(piece))
            }
            BlobReader::File { path, file, left } => {
                use tokio::io::AsyncReadExt as _;
                let changed = |path: &std::path::Path| {
                    std::io::Error::other(format!(
                        "`{}` changed during the push (its size is not what it was when it was hashed)",
                        path.display()
                    ))
                };
                let f = match file {
                    Some(f) => f,
                    None => file.insert(tokio::fs::File::open(&path).await.map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("failed to read `{}`: {e}", path.display()),
                        )
                    })?),
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
                if filled as u64 > *left {
                    return Err(changed(path));
                }
                if filled == 0 {
                    return if *left == 0 {
                        Ok(None)
                    } else {
                        Err(changed(path))
                    };
                }
                *left -= filled as u64;
                buf.truncate(filled);
                Ok(Some(bytes::Bytes::from(buf)))
            }
        }
    }

    /// The pieces as a stream for a request body, counted into `sent` as
    /// they are taken.
    fn stream(
        self,
        sent: Arc<AtomicU64>,
    ) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
        futures_util::stream::try_unfold((self, sent), |(mut reader, sent)| async move {
            Ok(reader.next().await?.map(|piece| {
                sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
                (piece, (reader, sent))
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_and_refused_are_told_apart_and_never_retried() {
        let status = |code: u16, message: &str| Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
            message: message.to_string(),
        };
        let denied = status(403, "DENIED: requested access to the resource is denied");
        let text = describe(&denied, "r.example");
        assert!(text.contains("denied access (403)"), "{text}");
        assert!(text.contains("DENIED"), "{text}");
        assert!(!denied.transient());
        let refused = status(401, "");
        assert!(describe(&refused, "r.example").contains("kiln login r.example"));
        assert!(!refused.transient());
        assert!(status(503, "").transient());
        let busy = Failure::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(3600)),
            message: String::new(),
        };
        let text = describe(&busy, "r.example");
        assert!(text.contains("429") && text.contains("3600 s"), "{text}");
    }

    #[test]
    fn limits_name_the_registry_what_and_how_much() {
        let text = describe(
            &Failure::TooLarge {
                what: "manifest".to_string(),
                limit: http::DOCUMENT_LIMIT,
                why: "the most kiln reads of anything but a blob",
            },
            "r.example:5000",
        );
        assert_eq!(
            text,
            "the registry `r.example:5000` sent a manifest of more than 4 MiB (the most kiln reads of anything but a blob); refusing it"
        );
        assert_eq!(bytes_text(925), "925 bytes");
        assert_eq!(bytes_text(4 << 20), "4 MiB");
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
    fn urls_escape_what_they_are_built_from() {
        let r = Registry::new(
            "127.0.0.1:5000",
            Credentials::Anonymous,
            &Connection::default(),
        )
        .unwrap();
        assert_eq!(
            r.url("a/b", &["blobs", "uploads", ""]).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/"
        );
        assert_eq!(
            r.url("a", &["manifests", "x?y#z/.."]).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/manifests/x%3Fy%23z%2F.."
        );
    }

    /// A registry on loopback answering every request with `answer(path)`
    /// (status line, headers and body after them), one per connection.
    fn fake_registry(answer: fn(&str, &str) -> String) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let me = host.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (head, body) = answer(&target, &me)
                    .split_once("\n\n")
                    .map(|(h, b)| (h.to_string(), b.to_string()))
                    .unwrap();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        host
    }

    fn tags_of(answer: fn(&str, &str) -> String) -> Result<Vec<String>> {
        let host = fake_registry(answer);
        Registry::new(&host, Credentials::Anonymous, &Connection::default())
            .unwrap()
            .tags("a/b")
    }

    #[test]
    fn tag_pages_follow_links_and_stop_on_a_page_seen_before() {
        // Page 1 links to page 2 (relative), which links back to page 1.
        let tags = tags_of(|target, _| match target {
            "/v2/" => "200 OK\n\n{}".to_string(),
            "/v2/a/b/tags/list?n=1000" => "200 OK\r\nLink: </v2/a/b/tags/list?last=2&n=1000>; rel=\"next\"\n\n{\"tags\":[\"2\",\"1\"]}".to_string(),
            "/v2/a/b/tags/list?last=2&n=1000" => "200 OK\r\nLink: </v2/a/b/tags/list?n=1000>; rel=\"next\"\n\n{\"tags\":[\"3\"]}".to_string(),
            _ => "404 Not Found\n\n{}".to_string(),
        })
        .unwrap();
        assert_eq!(tags, ["1", "2", "3"]);
    }

    #[test]
    fn tag_pages_stop_when_a_page_lists_nothing_new() {
        // A registry that ignores `last` and links on forever.
        let tags = tags_of(|target, _| match target {
            "/v2/" => "200 OK\n\n{}".to_string(),
            t if t.starts_with("/v2/a/b/tags/list") => {
                let n = t.len();
                format!(
                    "200 OK\r\nLink: </v2/a/b/tags/list?n=1000&x={n}>; rel=\"next\"\n\n{{\"tags\":[\"only\"]}}"
                )
            }
            _ => "404 Not Found\n\n{}".to_string(),
        })
        .unwrap();
        assert_eq!(tags, ["only"]);
    }

    #[test]
    fn tag_pages_are_followed_on_the_registry_only_and_within_the_cap() {
        let err = tags_of(|target, _| match target {
            "/v2/" => "200 OK\n\n{}".to_string(),
            _ => "200 OK\r\nLink: <http://elsewhere.example/v2/a/b/tags/list?last=1>; rel=\"next\"\n\n{\"tags\":[\"1\"]}".to_string(),
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("elsewhere.example"), "{err:#}");
        // Ever new tags, page after page: the cap ends it.
        let err = tags_of(|target, host| match target {
            "/v2/" => "200 OK\n\n{}".to_string(),
            t => {
                let page: usize = t.rsplit('=').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let tags: Vec<String> = (0..1000).map(|i| format!("\"t{page}-{i}\"")).collect();
                format!(
                    "200 OK\r\nLink: <http://{host}/v2/a/b/tags/list?n=1000&page={}>; rel=\"next\"\n\n{{\"tags\":[{}]}}",
                    page + 1,
                    tags.join(",")
                )
            }
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("more than 100000 tags"),
            "{err:#}"
        );
    }

    #[test]
    fn max_attempts_default_to_five_and_are_at_least_one() {
        assert_eq!(Connection::default().max_attempts(), DEFAULT_MAX_ATTEMPTS);
        let c = Connection::default().with_max_attempts(3);
        assert_eq!((c.max_attempts, c.max_attempts()), (Some(3), 3));
        assert_eq!(Connection::default().with_max_attempts(0).max_attempts(), 1);
    }
}
