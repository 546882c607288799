//! Registry behaviours CNCF distribution 2.8 lacks, as a reverse proxy in front of it, for tests.
//!
//! Registry behaviours CNCF distribution 2.8 lacks, for tests: a reverse proxy
//! in front of it that adds the OCI referrers API (records every manifest
//! stored with a `subject` and answers `GET /v2/<repo>/referrers/<digest>` from
//! that record, as registries implementing distribution-spec 1.1 do), or that
//! denies every write with 403 and a `DENIED` error as hosted registries do for
//! credentials without push permission; everything else goes to distribution
//! unchanged.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Referrers = Arc<Mutex<BTreeMap<(String, String), Vec<serde_json::Value>>>>;

/// A running proxy; it stops with the test process.
pub struct ReferrersProxy {
    /// `127.0.0.1:PORT`, to use as the registry's host.
    pub host: String,
    /// Every request line the proxy saw, `METHOD PATH`.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ReferrersProxy {
    /// Starts proxying to the registry at `upstream` (`host:port`), with
    /// the referrers API.
    pub fn start(upstream: &str) -> ReferrersProxy {
        Self::serve(upstream, false)
    }

    /// Starts proxying to `upstream`, answering every write (POST, PUT,
    /// PATCH, DELETE) with 403 `DENIED`.
    pub fn denying_writes(upstream: &str) -> ReferrersProxy {
        Self::serve(upstream, true)
    }

    fn serve(upstream: &str, deny_writes: bool) -> ReferrersProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let referrers: Referrers = Arc::default();
        let upstream = upstream.to_string();
        let seen = log.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (upstream, referrers, seen) =
                        (upstream.clone(), referrers.clone(), seen.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            handle(
                                req,
                                upstream.clone(),
                                referrers.clone(),
                                seen.clone(),
                                deny_writes,
                            )
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        ReferrersProxy { host, log }
    }

    /// Whether a request was made for `path_part` with `method`.
    pub fn saw(&self, method: &str, path_part: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with(method) && l.contains(path_part))
    }
}

/// `/v2/<repo>/<what>/<rest>` split into repository and rest.
fn split<'a>(path: &'a str, what: &str) -> Option<(&'a str, &'a str)> {
    let inner = path.strip_prefix("/v2/")?;
    let at = inner.rfind(&format!("/{what}/"))?;
    Some((&inner[..at], &inner[at + what.len() + 2..]))
}

async fn handle(
    req: Request<Incoming>,
    upstream: String,
    referrers: Referrers,
    seen: Arc<Mutex<Vec<String>>>,
    deny_writes: bool,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    seen.lock()
        .unwrap()
        .push(format!("{} {}", req.method(), path));
    if deny_writes && ![hyper::Method::GET, hyper::Method::HEAD].contains(req.method()) {
        let body = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        return Ok(Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap());
    }
    if req.method() == hyper::Method::GET
        && let Some((repo, digest)) = split(&path, "referrers")
    {
        let list = referrers
            .lock()
            .unwrap()
            .get(&(repo.to_string(), digest.to_string()))
            .cloned()
            .unwrap_or_default();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": list,
        });
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/vnd.oci.image.index.v1+json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&index).unwrap())))
            .unwrap());
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut subject_header = None;
    if parts.method == hyper::Method::PUT
        && let Some((repo, _)) = split(&path, "manifests")
        && let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(subject) = manifest["subject"]["digest"].as_str()
    {
        let digest = format!("sha256:{}", kiln_core::Digest::of(&body).hex());
        let artifact_type = manifest["artifactType"]
            .as_str()
            .or(manifest["config"]["mediaType"].as_str())
            .unwrap_or_default()
            .to_string();
        let descriptor = serde_json::json!({
            "mediaType": manifest["mediaType"],
            "digest": digest,
            "size": body.len(),
            "artifactType": artifact_type,
            "annotations": manifest["annotations"],
        });
        let mut all = referrers.lock().unwrap();
        let list = all
            .entry((repo.to_string(), subject.to_string()))
            .or_default();
        if !list.iter().any(|d| d["digest"] == digest.as_str()) {
            list.push(descriptor);
        }
        subject_header = Some(subject.to_string());
    }
    // Forward to distribution on a connection of its own.
    let stream = tokio::net::TcpStream::connect(&upstream).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let forwarded = Request::from_parts(parts, Full::new(body));
    let response = sender.send_request(forwarded).await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    if let Some(subject) = subject_header {
        // What a registry with the API answers a manifest PUT with.
        parts
            .headers
            .insert("oci-subject", subject.parse().unwrap());
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}
