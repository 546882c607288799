//! HTTP for registries: clients, redirects, bodies read within limits, deadlines and retries.
//!
//! One client has the registry's own trust for its origin, a strict one serves
//! every other host. Redirects are followed by hand, bodies read incrementally
//! within a limit, and retries wait a capped backoff or the server's
//! `Retry-After`.

use crate::wire::{self, error_message, parse_retry_after};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use std::time::{Duration, SystemTime};
use url::Url;

/// The most kiln reads of anything a registry or token service sends that
/// is not a blob (manifests, indexes, tag pages, referrer lists, token
/// replies, error bodies): containerd's limit for manifests.
pub(crate) const DOCUMENT_LIMIT: u64 = 4 << 20;

/// The longest `Retry-After` kiln waits; a server asking for more is not
/// asked again.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// The slowest average rate (bytes per second) a blob transfer may run at
/// before its deadline passes: the deadline of a blob request is the
/// `--timeout` plus the blob's size at this rate.
pub(crate) const SLOWEST_TRANSFER: u64 = 64 << 10;

/// The environment variable that divides every retry pause by 100, so
/// tests of faults take seconds.
pub(crate) const FAST_RETRY_ENV: &str = "KILN_TEST_FAST_RETRY";

/// The pause before retry `retry` (1 for the first): 250 ms, doubling,
/// never more than 8 seconds.
pub(crate) fn backoff(retry: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(8);
    1u32.checked_shl(retry.saturating_sub(1))
        .and_then(|factor| FIRST.checked_mul(factor))
        .map_or(MAX, |d| d.min(MAX))
}

/// The deadline of a request that carries `size` bytes of a blob either
/// way: `timeout`, plus the time the bytes take at [`SLOWEST_TRANSFER`].
pub(crate) fn transfer_deadline(timeout: Duration, size: u64) -> Duration {
    timeout.saturating_add(Duration::from_secs(size / SLOWEST_TRANSFER))
}

/// Why one request failed, which decides whether it is made again.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with a status the operation does not take.
    Status {
        /// The status.
        status: StatusCode,
        /// How long a 429 or 503 asked the client to wait.
        retry_after: Option<Duration>,
        /// What the body says (the registry's error codes and messages),
        /// shortened.
        message: String,
    },
    /// No answer, or an answer that broke off: refused or dropped
    /// connections, TLS, the deadline.
    Transport(reqwest::Error),
    /// The server sent more than kiln reads of it.
    TooLarge {
        /// What it was sending (`manifest`, `tag list`, `blob sha256:…`).
        what: String,
        /// The bytes kiln reads at most.
        limit: u64,
        /// Where the limit comes from.
        why: &'static str,
    },
    /// Content that does not match its digest or size: perhaps corrupted
    /// on the way, so asked for again.
    Content(String),
    /// A blob download that stopped for this long (`--timeout`) in the
    /// middle.
    Idle(Duration),
    /// Anything else: not retried.
    Fatal(anyhow::Error),
}

impl Failure {
    /// Whether another attempt may succeed: 5xx, 429 and 408 answers,
    /// connections that failed, dropped or ran out of time (except for
    /// TLS certificates, which do not change), and content corrupted on
    /// the way.
    pub fn transient(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            Failure::Transport(e) => {
                !(e.is_builder() || e.is_redirect() || e.is_status())
                    && super::tls::explain(e, "", None).is_none()
            }
            Failure::Content(_) | Failure::Idle(_) => true,
            Failure::TooLarge { .. } | Failure::Fatal(_) => false,
        }
    }

    /// The server's `Retry-After`, when it gave one with a 429 or 503.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Failure {
        Failure::Transport(e)
    }
}

/// How often and how patiently requests are made again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retries {
    /// The most attempts per request, the first included: at least 1.
    max_attempts: u32,
    /// Every pause is divided by this ([`FAST_RETRY_ENV`] makes it 100).
    divisor: u32,
}

impl Retries {
    /// At most `max_attempts` per request, with pauses shortened when
    /// [`FAST_RETRY_ENV`] is `1`.
    pub fn new(max_attempts: u32) -> Retries {
        let fast = std::env::var(FAST_RETRY_ENV).is_ok_and(|v| v == "1");
        Retries {
            max_attempts: max_attempts.max(1),
            divisor: if fast { 100 } else { 1 },
        }
    }

    /// The pause before retry `retry` after `failure`: the server's
    /// `Retry-After` when it gave one, else [`backoff`]; `None` when the
    /// server asks for longer than [`MAX_RETRY_AFTER`].
    fn pause(&self, retry: u32, failure: &Failure) -> Option<Duration> {
        let wait = match failure.retry_after() {
            Some(asked) if asked > MAX_RETRY_AFTER => return None,
            Some(asked) => asked,
            None => backoff(retry),
        };
        Some(wait / self.divisor)
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts are
    /// spent, pausing between attempts: the last outcome and how many
    /// attempts it took.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> (Result<T, Failure>, u32)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if attempt < self.max_attempts && e.transient() => {
                    let Some(pause) = self.pause(attempt, &e) else {
                        return (Err(e), attempt);
                    };
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                outcome => return (outcome, attempt),
            }
        }
    }
}

/// A reqwest client with kiln's settings: the TLS configuration given, a
/// connect timeout and a total deadline per request of `timeout`
/// (requests that carry blobs set a longer one), no automatic redirects
/// (see [`Clients::send`]).
///
/// No read timeout: reqwest's runs from the start of a request to its
/// answer, so it would cut off an upload slower than `timeout`; blob
/// downloads have their own idle timeout per read instead (see
/// [`Failure::Idle`]).
pub(crate) fn client(
    tls: rustls::ClientConfig,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("failed to set up the HTTP client: {e}"))
}

/// One request, as [`Clients::send`] makes it.
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<reqwest::Body>,
    /// Sent to the origin of `url` only, never after a redirect elsewhere.
    pub authorization: Option<HeaderValue>,
    /// The total deadline, when not the client's.
    pub deadline: Option<Duration>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            authorization: None,
            deadline: None,
        }
    }
}

/// The two HTTP clients of one registry: its own, with the trust the user
/// gave it (`--insecure`, certs.d, client certificates), only ever for its
/// origin; and a strict one for every other host (token services, storage
/// that blob downloads are redirected to).
pub(crate) struct Clients {
    registry: reqwest::Client,
    strict: reqwest::Client,
    origin: url::Origin,
}

impl Clients {
    /// `registry` for `base`'s origin, `strict` for everything else.
    pub fn new(registry: reqwest::Client, strict: reqwest::Client, base: &Url) -> Clients {
        Clients {
            registry,
            strict,
            origin: base.origin(),
        }
    }

    /// Whether `url` is at the registry's own scheme, host and port.
    pub fn is_registry(&self, url: &Url) -> bool {
        url.origin() == self.origin
    }

    /// Sends `request` with the client for its URL. GET and HEAD follow
    /// redirects (up to 10, never from HTTPS to plain HTTP), each hop
    /// with the client for its own host; the authorization goes only to
    /// the origin the request started at.
    pub async fn send(&self, request: Request) -> Result<reqwest::Response, Failure> {
        let Request {
            method,
            mut url,
            headers,
            mut body,
            authorization,
            deadline,
        } = request;
        let first = url.origin();
        let follows = method == Method::GET || method == Method::HEAD;
        for _ in 0..=MAX_REDIRECTS {
            let client = if self.is_registry(&url) {
                &self.registry
            } else {
                &self.strict
            };
            let mut builder = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = &authorization
                && url.origin() == first
            {
                builder = builder.header(AUTHORIZATION, a.clone());
            }
            if let Some(d) = deadline {
                builder = builder.timeout(d);
            }
            if let Some(b) = body.take() {
                builder = builder.body(b);
            }
            let response = builder.send().await?;
            let status = response.status();
            if !follows || !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(response);
            }
            let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Ok(response);
            };
            let next = redirect_target(&url, location)?;
            url = next;
        }
        Err(Failure::Fatal(anyhow::anyhow!(
            "more than {MAX_REDIRECTS} redirects, the last to `{url}`"
        )))
    }
}

/// Where a redirect from `from` to `location` (relative or absolute)
/// leads: HTTPS anywhere, or plain HTTP from plain HTTP; never from HTTPS
/// down to plain HTTP.
fn redirect_target(from: &Url, location: &str) -> Result<Url, Failure> {
    let next = from.join(location).map_err(|_| {
        Failure::Fatal(anyhow::anyhow!(
            "a redirect from `{from}` names `{location}`, which is not a URL"
        ))
    })?;
    if !matches!(next.scheme(), "http" | "https")
        || (from.scheme() == "https" && next.scheme() != "https")
    {
        return Err(Failure::Fatal(anyhow::anyhow!(
            "`{from}` redirects to `{next}`; kiln follows redirects to HTTPS (or from plain HTTP) only"
        )));
    }
    Ok(next)
}

#[cfg(test)]
impl Clients {
    /// Clients with the system's roots only, for tests.
    pub fn for_tests(base: &Url) -> Clients {
        let make = || {
            let tls = super::tls::client_config(super::tls::Trust::default()).unwrap();
            client(tls, Duration::from_secs(10)).unwrap()
        };
        Clients::new(make(), make(), base)
    }
}

/// Reads a body that is not a blob: at most [`DOCUMENT_LIMIT`] bytes.
pub(crate) async fn read_document(
    response: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    read_limited(
        response,
        DOCUMENT_LIMIT,
        what,
        "the most kiln reads of anything but a blob",
    )
    .await
}

/// Reads a body piece by piece, failing as soon as it is longer than
/// `limit` (or says it will be): nothing beyond the limit is read.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    what: &str,
    why: &'static str,
) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure::TooLarge {
        what: what.to_string(),
        limit,
        why,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The failure an unexpected answer means: its status, the server's
/// `Retry-After` for a 429 or 503, and what its body says (read within
/// [`DOCUMENT_LIMIT`]).
pub(crate) async fn failure(response: reqwest::Response) -> Failure {
    let status = response.status();
    let retry_after =
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        } else {
            None
        };
    let message = match read_document(response, "error message").await {
        Ok(body) => error_message(&body),
        Err(Failure::TooLarge { .. }) => "(an error message over 4 MiB, not read)".to_string(),
        // The status says enough.
        Err(_) => String::new(),
    };
    Failure::Status {
        status,
        retry_after,
        message,
    }
}

/// Every `WWW-Authenticate` value of an answer.
pub(crate) fn www_authenticate(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// The `Docker-Content-Digest` an answer names, when it names a sha256
/// digest (the only kind kiln checks).
pub(crate) fn content_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get(HeaderName::from_static("docker-content-digest"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_string)
}

/// The target of the `rel="next"` link among an answer's `Link` headers
/// (RFC 8288), as written: relative or absolute (see
/// [`wire::next_link_in`]).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    wire::next_link_in(
        headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

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

    #[test]
    fn pauses_honour_retry_after_within_the_cap_and_the_fast_setting() {
        let busy = |retry_after| Failure::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
            message: String::new(),
        };
        let normal = Retries {
            max_attempts: 5,
            divisor: 1,
        };
        assert_eq!(normal.pause(1, &busy(None)), Some(backoff(1)));
        assert_eq!(
            normal.pause(1, &busy(Some(Duration::from_secs(3)))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            normal.pause(1, &busy(Some(MAX_RETRY_AFTER))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            normal.pause(1, &busy(Some(MAX_RETRY_AFTER + Duration::from_secs(1)))),
            None
        );
        let fast = Retries {
            max_attempts: 5,
            divisor: 100,
        };
        assert_eq!(
            fast.pause(1, &busy(Some(Duration::from_secs(2)))),
            Some(Duration::from_millis(20))
        );
        assert_eq!(fast.pause(3, &busy(None)), Some(Duration::from_millis(10)));
    }

    #[test]
    fn statuses_worth_another_attempt() {
        let status = |code| Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
            message: String::new(),
        };
        for code in [500, 502, 503, 504, 429, 408] {
            assert!(status(code).transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert!(!status(code).transient(), "{code}");
        }
        assert!(Failure::Content("digest".into()).transient());
        assert!(
            !Failure::TooLarge {
                what: "manifest".into(),
                limit: 1,
                why: ""
            }
            .transient()
        );
    }

    #[test]
    fn the_next_link_is_found_across_link_header_lines() {
        let mut headers = HeaderMap::new();
        headers.append(
            reqwest::header::LINK,
            r#"</a>; rel="prev""#.parse().unwrap(),
        );
        headers.append(
            reqwest::header::LINK,
            r#"</b>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("/b"));
    }

    /// Accepts one connection on a loopback port, reads the request's
    /// head, and hands the connection to `answer`; returns the URL.
    fn serve_once(answer: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            answer(stream);
        });
        url
    }

    /// Answers with `head` (status line and headers), then `body_len`
    /// bytes of `x` in 64 KiB pieces; how many body bytes were written
    /// goes to the returned channel once the client stops reading.
    fn server(head: String, body_len: usize) -> (String, std::sync::mpsc::Receiver<usize>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let url = serve_once(move |mut stream| {
            let _ = stream.write_all(head.as_bytes());
            let piece = vec![b'x'; 64 << 10];
            let mut written = 0;
            while written < body_len {
                let n = piece.len().min(body_len - written);
                if stream.write_all(&piece[..n]).is_err() {
                    break;
                }
                written += n;
            }
            let _ = tx.send(written);
        });
        (url, rx)
    }

    /// GETs `url` with a client of kiln's settings and reads the body
    /// within `limit`.
    fn get(url: &str, limit: u64, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tls = super::super::tls::client_config(super::super::tls::Trust::default()).unwrap();
        let http = client(tls, timeout).unwrap();
        runtime.block_on(async {
            let response = http.get(url).send().await?;
            read_limited(response, limit, "manifest", "test").await
        })
    }

    #[test]
    fn redirects_go_to_https_or_from_plain_http_only() {
        let https = Url::parse("https://r.example/v2/a/blobs/sha256:1").unwrap();
        let http = Url::parse("http://127.0.0.1:5000/v2/a/blobs/sha256:1").unwrap();
        assert_eq!(
            redirect_target(&https, "/storage/x?sig=1")
                .unwrap()
                .as_str(),
            "https://r.example/storage/x?sig=1"
        );
        assert_eq!(
            redirect_target(&https, "https://storage.example/x")
                .unwrap()
                .as_str(),
            "https://storage.example/x"
        );
        assert!(redirect_target(&https, "http://storage.example/x").is_err());
        assert!(redirect_target(&https, "file:///etc/passwd").is_err());
        assert_eq!(
            redirect_target(&http, "http://127.0.0.2:9/x")
                .unwrap()
                .as_str(),
            "http://127.0.0.2:9/x"
        );
    }

    /// Serves one request on `addr`, answering `answer`; the request's
    /// head goes to the returned channel.
    fn recording(
        addr: &str,
        answer: impl Fn(u16) -> String + Send + 'static,
    ) -> (u16, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind(addr).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let _ = stream.write_all(answer(port).as_bytes());
            let _ = tx.send(head);
        });
        (port, rx)
    }

    #[test]
    fn redirects_elsewhere_get_no_authorization() {
        // Storage on another host, as blob downloads are often redirected.
        let (storage, storage_saw) = recording("127.0.0.2:0", |_| {
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nblob".to_string()
        });
        let (registry, registry_saw) = recording("127.0.0.1:0", move |_| {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:{storage}/blob?sig=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        });
        let base = Url::parse(&format!("http://127.0.0.1:{registry}/")).unwrap();
        let clients = Clients::for_tests(&base);
        assert!(clients.is_registry(&base.join("v2/").unwrap()));
        assert!(
            !clients.is_registry(&Url::parse(&format!("http://127.0.0.2:{storage}/")).unwrap())
        );
        let mut request = Request::new(Method::GET, base.join("v2/a/blobs/x").unwrap());
        request.authorization = Some(HeaderValue::from_static("Bearer secret-token"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = runtime
            .block_on(async {
                let response = clients.send(request).await?;
                read_document(response, "blob").await
            })
            .unwrap();
        assert_eq!(body, b"blob");
        let to_registry = registry_saw.recv().unwrap().to_ascii_lowercase();
        assert!(
            to_registry.contains("authorization: bearer secret-token"),
            "{to_registry}"
        );
        let to_storage = storage_saw.recv().unwrap().to_ascii_lowercase();
        assert!(to_storage.starts_with("get /blob?sig=1 "), "{to_storage}");
        assert!(!to_storage.contains("authorization"), "{to_storage}");
    }

    #[test]
    fn an_oversized_body_is_refused_by_its_length_before_it_is_read() {
        let total = 64 << 20;
        let (url, written) = server(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n"),
            total,
        );
        let err = get(&url, DOCUMENT_LIMIT, Duration::from_secs(10)).unwrap_err();
        assert!(matches!(err, Failure::TooLarge { limit, .. } if limit == DOCUMENT_LIMIT));
        // The server could not write more than the socket buffers hold.
        let written = written.recv().unwrap();
        assert!(written < 32 << 20, "{written} bytes were sent");
    }

    #[test]
    fn an_oversized_body_without_a_length_is_cut_off_at_the_limit() {
        let total = 64 << 20;
        // No Content-Length: the body runs until the connection closes.
        let (url, written) = server(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
            total,
        );
        let err = get(&url, DOCUMENT_LIMIT, Duration::from_secs(10)).unwrap_err();
        assert!(matches!(err, Failure::TooLarge { .. }), "{err:?}");
        let written = written.recv().unwrap();
        assert!(written < 32 << 20, "{written} bytes were sent");
    }

    #[test]
    fn a_body_within_the_limit_is_read_whole() {
        let (url, _) = server(
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_string(),
            1000,
        );
        assert_eq!(
            get(&url, 1000, Duration::from_secs(10)).unwrap(),
            vec![b'x'; 1000]
        );
    }

    #[test]
    fn a_server_that_trickles_fails_at_the_deadline() {
        let url = serve_once(|mut stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            // One byte every 100 ms: never idle for long, never done.
            for _ in 0..1000 {
                if stream.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let started = std::time::Instant::now();
        let err = get(&url, DOCUMENT_LIMIT, Duration::from_secs(1)).unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(&err, Failure::Transport(e) if e.is_timeout()),
            "{err:?}"
        );
        assert!(err.transient());
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}
