//! A fault-injecting reverse proxy on loopback, in front of a real registry, for tests.
//!
//! A fault-injecting reverse proxy on loopback for tests: in front of a real
//! registry (and its token service), it answers chosen requests with a fault —
//! a dropped connection, a 5xx or 429, a stall, a body cut short, a wrong
//! `Docker-Content-Digest`, an oversized manifest or tag list — on the Nth
//! matching request, the first K, or always, forwards everything else
//! unchanged, and counts what it saw so tests can tell that kiln retried.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// More than the 4 MiB kiln accepts for anything that is not a blob.
pub const OVERSIZED: usize = 5 << 20;

/// What the proxy does to a request a rule picked.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Closes the connection at once, without forwarding the request.
    Drop,
    /// Forwards the request, then sends the response's headers and half
    /// its body and closes the connection; for a response without a body
    /// (an upload, a stored manifest), closes it without answering, so the
    /// registry did the work but the client never heard.
    DropMidBody,
    /// Answers with this status (500, 502, 503, 429…) and, when given,
    /// `Retry-After` in seconds, without forwarding the request.
    Status(u16, Option<u32>),
    /// Holds the request this long without answering, then closes the
    /// connection; the request is not forwarded.
    Stall(Duration),
    /// Forwards the request, then sends the headers and half the body at
    /// once and the rest only after this long.
    StallMidBody(Duration),
    /// Forwards the request, then sends all of the body but its last few
    /// bytes under the full `Content-Length`, and closes the connection.
    CutShort,
    /// Forwards the request and replaces the response's
    /// `Docker-Content-Digest` with the digest of something else.
    WrongDigest,
    /// Answers a manifest request with a well-formed manifest of
    /// [`OVERSIZED`] bytes (a long annotation).
    OversizedManifest,
    /// Answers a tag list request with a well-formed list of
    /// [`OVERSIZED`] bytes.
    OversizedTagList,
}

/// Which of the matching requests a rule fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Only the Nth (1 for the first).
    Nth(usize),
    /// The first K: a transient fault.
    First(usize),
    /// Every one: a persistent fault.
    Always,
}

/// A fault for the requests with `method` whose path matches `path`, a
/// pattern in which `*` stands for any run of characters (`/` included):
/// `/v2/*/blobs/uploads/*`, `/v2/*/manifests/*`, `/token`.
#[derive(Clone, Debug)]
pub struct Rule {
    method: String,
    path: String,
    fault: Fault,
    when: When,
    /// How many requests matched so far.
    matched: usize,
    /// How many times the fault was injected.
    fired: usize,
}

impl Rule {
    /// A rule; see [`Rule`].
    pub fn new(method: &str, path: &str, fault: Fault, when: When) -> Rule {
        Rule {
            method: method.to_string(),
            path: path.to_string(),
            fault,
            when,
            matched: 0,
            fired: 0,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && glob(&self.path, path)
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Every request, `METHOD PATH[?QUERY]`, and the fault it got.
    log: Vec<(String, Option<Fault>)>,
}

/// A running proxy; it stops with the test process.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`, to use as the registry's host.
    pub host: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts proxying to the registry at `upstream` (`host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        Self::serve(upstream, None)
    }

    /// Starts proxying to the registry at `upstream` and to its token
    /// service at `token` (`host:port`): the realm in the registry's
    /// challenges is rewritten to the proxy's own `/token`, so the token
    /// exchange goes through the proxy too (and is on the registry's own
    /// host, where kiln sends credentials).
    pub fn with_token_service(upstream: &str, token: &str) -> FaultProxy {
        Self::serve(upstream, Some(token.to_string()))
    }

    fn serve(upstream: &str, token: Option<String>) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state: Arc<Mutex<State>> = Arc::default();
        let route = Arc::new(Route {
            upstream: upstream.to_string(),
            token,
            host: host.clone(),
        });
        let shared = state.clone();
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
                    let (route, state) = (route.clone(), shared.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            handle(req, route.clone(), state.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        FaultProxy { host, state }
    }

    /// Replaces the rules (and restarts their counts); the log stays.
    pub fn set(&self, rules: Vec<Rule>) {
        self.state.lock().unwrap().rules = rules;
    }

    /// Forwards everything from now on.
    pub fn clear(&self) {
        self.set(Vec::new());
    }

    /// Forgets the requests seen so far.
    pub fn reset_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// How many requests with `method` whose path matches `path` (a
    /// [`glob`] pattern) the proxy saw.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(line, _)| {
                let (m, target) = line.split_once(' ').unwrap_or((line, ""));
                let p = target.split_once('?').map_or(target, |(p, _)| p);
                m.eq_ignore_ascii_case(method) && glob(path, p)
            })
            .count()
    }

    /// How many faults were injected since the rules were set.
    pub fn fired(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .rules
            .iter()
            .map(|r| r.fired)
            .sum()
    }

    /// Every request seen, one line each, with the fault it got: for
    /// assertion messages.
    pub fn log(&self) -> String {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .map(|(line, fault)| match fault {
                Some(f) => format!("{line}  <- {f:?}\n"),
                None => format!("{line}\n"),
            })
            .collect()
    }
}

/// Where requests go.
struct Route {
    upstream: String,
    token: Option<String>,
    /// The proxy's own `host:port`.
    host: String,
}

/// The fault for a request, if a rule fires on it; every rule that matches
/// counts the request.
fn pick(state: &Mutex<State>, method: &str, path: &str, line: String) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let mut fault = None;
    for rule in state.rules.iter_mut() {
        if !rule.matches(method, path) {
            continue;
        }
        rule.matched += 1;
        let fire = match rule.when {
            When::Nth(n) => rule.matched == n,
            When::First(k) => rule.matched <= k,
            When::Always => true,
        };
        if fire && fault.is_none() {
            rule.fired += 1;
            fault = Some(rule.fault.clone());
        }
    }
    state.log.push((line, fault.clone()));
    fault
}

type Answer = Result<Response<Scripted>, std::io::Error>;

async fn handle(req: Request<Incoming>, route: Arc<Route>, state: Arc<Mutex<State>>) -> Answer {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let line = match req.uri().query() {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    };
    let fault = pick(&state, &method, &path, line);
    match &fault {
        // An error from the service makes hyper close the connection
        // without an answer.
        Some(Fault::Drop) => return Err(std::io::Error::other("fault: dropped")),
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(*d).await;
            return Err(std::io::Error::other("fault: stalled"));
        }
        Some(Fault::Status(code, retry_after)) => {
            let mut answer = Response::builder()
                .status(StatusCode::from_u16(*code).unwrap())
                .header("content-type", "application/json");
            if let Some(secs) = retry_after {
                answer = answer.header("retry-after", secs.to_string());
            }
            let body = format!(
                r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected fault {code}"}}]}}"#
            );
            return Ok(answer
                .header("content-length", body.len())
                .body(Scripted::whole(Bytes::from(body)))
                .unwrap());
        }
        Some(Fault::OversizedManifest) => {
            let head = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"annotations":{"pad":""#;
            return Ok(oversized(
                head,
                b"\"}}",
                "application/vnd.oci.image.manifest.v1+json",
            ));
        }
        Some(Fault::OversizedTagList) => {
            return Ok(oversized_tags());
        }
        _ => {}
    }
    let forwarded = forward(req, &route).await?;
    let (mut parts, body) = forwarded.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    parts.headers.remove("transfer-encoding");
    parts.headers.insert("content-length", body.len().into());
    let half = body.len() / 2;
    let scripted = match &fault {
        Some(Fault::DropMidBody) if body.is_empty() => {
            return Err(std::io::Error::other("fault: dropped after forwarding"));
        }
        Some(Fault::DropMidBody) => Scripted::new(vec![
            Step::Data(body.slice(..half)),
            // hyper writes what it has while the body waits.
            Step::Pause(Duration::from_millis(50)),
            Step::Fail,
        ]),
        Some(Fault::CutShort) => {
            let keep = body.len().saturating_sub(body.len().clamp(1, 16));
            Scripted::new(vec![
                Step::Data(body.slice(..keep)),
                Step::Pause(Duration::from_millis(50)),
                Step::Fail,
            ])
        }
        Some(Fault::StallMidBody(d)) => Scripted::new(vec![
            Step::Data(body.slice(..half)),
            Step::Pause(*d),
            Step::Data(body.slice(half..)),
        ]),
        Some(Fault::WrongDigest) => {
            if parts.headers.contains_key("docker-content-digest") {
                let wrong = kiln_core::Digest::of(b"not what was sent").to_string();
                parts
                    .headers
                    .insert("docker-content-digest", wrong.parse().unwrap());
            }
            Scripted::whole(body)
        }
        _ => Scripted::whole(body),
    };
    Ok(Response::from_parts(parts, scripted))
}

/// Sends the request to the registry, or to its token service, and
/// rewrites what in the answer names them to name the proxy.
async fn forward(
    req: Request<Incoming>,
    route: &Route,
) -> Result<Response<Incoming>, std::io::Error> {
    let to_token = req.uri().path() == "/token";
    let upstream = match (&route.token, to_token) {
        (Some(token), true) => token.as_str(),
        _ => route.upstream.as_str(),
    };
    let (mut parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    parts.headers.remove("transfer-encoding");
    parts.headers.insert("content-length", body.len().into());
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut response = sender
        .send_request(Request::from_parts(parts, http_body_util::Full::new(body)))
        .await
        .map_err(std::io::Error::other)?;
    for name in ["www-authenticate", "location"] {
        let rewritten: Vec<hyper::header::HeaderValue> = response
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| {
                let mut v = v.replace(&route.upstream, &route.host);
                if let Some(token) = &route.token {
                    v = v.replace(token.as_str(), &route.host);
                }
                v.parse().unwrap()
            })
            .collect();
        if rewritten.is_empty() {
            continue;
        }
        response.headers_mut().remove(name);
        for v in rewritten {
            response.headers_mut().append(name, v);
        }
    }
    Ok(response)
}

/// A JSON document of [`OVERSIZED`] bytes: `head`, padding, `tail`.
fn oversized(head: &[u8], tail: &[u8], media_type: &str) -> Response<Scripted> {
    let mut body = Vec::with_capacity(OVERSIZED);
    body.extend_from_slice(head);
    body.resize(OVERSIZED - tail.len(), b'a');
    body.extend_from_slice(tail);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", media_type)
        .header("content-length", body.len())
        .body(Scripted::whole(Bytes::from(body)))
        .unwrap()
}

/// A tag list of [`OVERSIZED`] bytes.
fn oversized_tags() -> Response<Scripted> {
    let mut body = String::with_capacity(OVERSIZED + 64);
    body.push_str(r#"{"name":"oversized","tags":["#);
    let mut i = 0;
    while body.len() < OVERSIZED {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"tag-{i:08}\""));
        i += 1;
    }
    body.push_str("]}");
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Scripted::whole(Bytes::from(body)))
        .unwrap()
}

/// One step of a response body.
enum Step {
    Data(Bytes),
    Pause(Duration),
    /// Ends the body with an error, which makes hyper close the connection.
    Fail,
}

/// A response body sent as a script: data, pauses, and perhaps a failure.
pub struct Scripted {
    steps: VecDeque<Step>,
    sleeping: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Scripted {
    fn new(steps: Vec<Step>) -> Scripted {
        Scripted {
            steps: steps.into(),
            sleeping: None,
        }
    }

    fn whole(bytes: Bytes) -> Scripted {
        Scripted::new(vec![Step::Data(bytes)])
    }
}

impl hyper::body::Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            if let Some(sleep) = self.sleeping.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleeping = None;
            }
            match self.steps.pop_front() {
                None => return Poll::Ready(None),
                Some(Step::Data(bytes)) if bytes.is_empty() => {}
                Some(Step::Data(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Some(Step::Pause(d)) => self.sleeping = Some(Box::pin(tokio::time::sleep(d))),
                Some(Step::Fail) => {
                    return Poll::Ready(Some(Err(std::io::Error::other("fault: body cut"))));
                }
            }
        }
    }
}

#[test]
fn patterns_match_runs_of_any_characters() {
    assert!(glob("/v2/*/blobs/uploads/*", "/v2/a/b/blobs/uploads/123"));
    assert!(glob("/v2/*/blobs/uploads/*", "/v2/a/blobs/uploads/"));
    assert!(!glob("/v2/*/blobs/uploads/*", "/v2/a/blobs/sha256:1"));
    assert!(glob("/v2/*/manifests/v1", "/v2/x/y/manifests/v1"));
    assert!(!glob("/v2/*/manifests/v1", "/v2/x/y/manifests/v12"));
    assert!(glob("/token", "/token"));
    assert!(!glob("/token", "/token2"));
    assert!(glob("*", "/anything"));
}
