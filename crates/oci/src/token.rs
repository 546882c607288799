//! Registry authentication as Docker's token specification describes it.
//!
//! A registry answers with a challenge (`WWW-Authenticate`); kiln sends basic
//! credentials where it asks for them, and bearer tokens per repository and
//! scope from the token service it names — fetched with `GET` and the user name
//! and password, or, for a Docker identity token, through the OAuth2
//! refresh-token exchange — cached while they last.
//!
//! An identity token (what `docker login` stores for registries with
//! OAuth2 or single sign-on logins: Azure Container Registry, Harbor with
//! OIDC, Docker Hub's SSO logins) is never sent to the registry itself:
//! it is POSTed to the token service (`grant_type=refresh_token`) and the
//! access token that comes back is used, as docker and oras do.

use crate::auth::Credentials;
use crate::registry::http::{self, Clients, Failure, Request};
use crate::wire::{self, BadTokenReply, Challenge, Scheme, scheme_of, token_deadline};
use anyhow::anyhow;
use base64::Engine as _;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use url::Url;

/// Asks the registry at `base` (`scheme://host[:port]/`) for its
/// challenge with `GET /v2/`: the status and every `WWW-Authenticate`
/// value. A 5xx or 429 is a failure (worth another attempt).
pub(crate) async fn probe(
    clients: &Clients,
    base: &Url,
) -> Result<(StatusCode, Vec<String>), Failure> {
    let url = base
        .join("v2/")
        .map_err(|e| Failure::Fatal(anyhow!("failed to make a URL from `{base}`: {e}")))?;
    let response = clients.send(Request::new(Method::GET, url)).await?;
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(http::failure(response).await);
    }
    Ok((status, http::www_authenticate(response.headers())))
}

/// The credentials of one registry and the tokens they were exchanged
/// for, per repository and scope.
pub(crate) struct Tokens {
    registry: String,
    /// `scheme://host[:port]/`.
    base: Url,
    credentials: Credentials,
    /// Send the credentials to a token service only at the registry's own
    /// origin (see [`crate::registry::TokenServices::SameHost`]).
    same_origin_only: bool,
    /// What the registry asks for, once known.
    scheme: Mutex<Option<Scheme>>,
    /// Access tokens per (repository, push), until when each is used.
    cache: Mutex<HashMap<(String, bool), (String, Instant)>>,
}

impl Tokens {
    /// For `registry`, reached at `base`.
    pub fn new(
        registry: &str,
        base: Url,
        credentials: Credentials,
        same_origin_only: bool,
    ) -> Tokens {
        Tokens {
            registry: registry.to_string(),
            base,
            credentials,
            same_origin_only,
            scheme: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Records what a probe of the registry answered (see [`probe`]), so
    /// it need not be asked again.
    pub fn learn(&self, status: StatusCode, challenges: &[String]) {
        let scheme = if status == StatusCode::UNAUTHORIZED {
            scheme_of(challenges).unwrap_or(Scheme::Basic)
        } else {
            Scheme::Open
        };
        if let Ok(mut s) = self.scheme.lock() {
            *s = Some(scheme);
        }
    }

    /// What the registry asks for, asking it the first time.
    async fn scheme(&self, clients: &Clients) -> Result<Scheme, Failure> {
        if let Some(known) = self.scheme.lock().ok().and_then(|s| s.clone()) {
            return Ok(known);
        }
        let (status, challenges) = probe(clients, &self.base).await?;
        self.learn(status, &challenges);
        Ok(self
            .scheme
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or(Scheme::Open))
    }

    /// The `Authorization` value for a request about `repository` (to
    /// push when `push`), and whether it holds a token fetched just now;
    /// `None` when the registry asks for nothing or kiln has nothing to
    /// send.
    pub async fn authorization(
        &self,
        clients: &Clients,
        repository: &str,
        push: bool,
    ) -> Result<Option<(HeaderValue, bool)>, Failure> {
        match self.scheme(clients).await? {
            Scheme::Open => Ok(None),
            Scheme::Basic => match &self.credentials {
                Credentials::Basic { username, password } => {
                    Ok(Some((basic(username, password)?, false)))
                }
                Credentials::Token(_) => Err(Failure::Fatal(anyhow!(
                    "the registry `{}` asks for a user name and password, but the credentials found for it are an identity token, which only works with a token service; log in with `kiln login {} -u USER --password-stdin`",
                    self.registry,
                    self.registry
                ))),
                Credentials::Anonymous => Ok(None),
            },
            Scheme::Bearer(challenge) => {
                if let Some(token) = self.cached(repository, push) {
                    return Ok(Some((bearer(&token)?, false)));
                }
                let (token, until) = self.fetch(clients, &challenge, repository, push).await?;
                let header = bearer(&token)?;
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert((repository.to_string(), push), (token, until));
                }
                Ok(Some((header, true)))
            }
        }
    }

    /// A request about `repository` was refused (401) with `challenges`,
    /// having been sent with credentials when `sent`: learns what the
    /// registry asks for now and forgets the tokens for the repository.
    /// Whether asking again, with what kiln would send now, may help.
    pub fn refused(&self, challenges: &[String], repository: &str, sent: bool) -> bool {
        let Some(scheme) = scheme_of(challenges) else {
            return false;
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|(r, _), _| r != repository);
        }
        let again = match &scheme {
            Scheme::Bearer(_) => true,
            Scheme::Basic => !sent && matches!(self.credentials, Credentials::Basic { .. }),
            Scheme::Open => false,
        };
        if let Ok(mut s) = self.scheme.lock() {
            *s = Some(scheme);
        }
        again
    }

    /// A cached access token for `repository` that is still good; a
    /// pull,push token also serves for pulling.
    fn cached(&self, repository: &str, push: bool) -> Option<String> {
        let cache = self.cache.lock().ok()?;
        let now = Instant::now();
        [
            (repository.to_string(), true),
            (repository.to_string(), push),
        ]
        .iter()
        .filter_map(|key| cache.get(key))
        .find(|(_, until)| now < *until)
        .map(|(token, _)| token.clone())
    }

    /// Asks the token service of `challenge` for an access token for
    /// `repository`: with `GET` and the user name and password (or none),
    /// or for an identity token with the OAuth2 refresh-token exchange.
    async fn fetch(
        &self,
        clients: &Clients,
        challenge: &Challenge,
        repository: &str,
        push: bool,
    ) -> Result<(String, Instant), Failure> {
        let scope = format!(
            "repository:{repository}:{}",
            if push { "pull,push" } else { "pull" }
        );
        let mut realm = Url::parse(&challenge.realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                Failure::Fatal(anyhow!(
                    "the registry `{}` names the token service `{}`, which is not an HTTP URL",
                    self.registry,
                    challenge.realm
                ))
            })?;
        // Credentials given for the registry alone do not go to a token
        // service elsewhere, whatever a later challenge names.
        let allowed = !self.same_origin_only || realm.origin() == self.base.origin();
        let credentials = if allowed {
            &self.credentials
        } else {
            &Credentials::Anonymous
        };
        let identity = matches!(credentials, Credentials::Token(_));
        let response = match credentials {
            Credentials::Token(refresh) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "kiln")
                    .append_pair("scope", &scope);
                if let Some(service) = &challenge.service {
                    form.append_pair("service", service);
                }
                let mut request = Request::new(Method::POST, realm.clone());
                request.headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                request.body = Some(form.finish().into());
                clients.send(request).await?
            }
            other => {
                {
                    let mut query = realm.query_pairs_mut();
                    if let Some(service) = &challenge.service {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", &scope);
                }
                let mut request = Request::new(Method::GET, realm.clone());
                if let Credentials::Basic { username, password } = other {
                    request.authorization = Some(basic(username, password)?);
                }
                clients.send(request).await?
            }
        };
        let status = response.status();
        if !status.is_success() {
            if identity && !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                let body = http::read_document(response, "token service's answer")
                    .await
                    .unwrap_or_default();
                let detail = self.redact(&wire::error_message(&body));
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                };
                if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
                    return Err(Failure::Fatal(anyhow!(
                        "the token service `{}` of `{}` does not take identity tokens (OAuth2 POST answered {status}); log in with a user name and password or access token: `kiln login {} -u USER --password-stdin`",
                        challenge.realm,
                        self.registry,
                        self.registry
                    )));
                }
                return Err(Failure::Fatal(anyhow!(
                    "the token service `{}` of `{}` refused the identity token ({status}{detail}); it may have expired or been revoked: log in again (`docker login {}` or `kiln login {}`)",
                    challenge.realm,
                    self.registry,
                    self.registry,
                    self.registry
                )));
            }
            return Err(match http::failure(response).await {
                Failure::Status {
                    status,
                    retry_after,
                    message,
                } => Failure::Status {
                    status,
                    retry_after,
                    message: format!("from its token service `{}`: {message}", challenge.realm),
                },
                other => other,
            });
        }
        let body = http::read_document(
            response,
            &format!("reply of the token service `{}`", challenge.realm),
        )
        .await?;
        let (token, expires_in) = wire::token_reply(&body).map_err(|e| {
            Failure::Fatal(match e {
                BadTokenReply::NotATokenResponse => anyhow!(
                    "the token service `{}` of `{}` answered with something that is not a token response",
                    challenge.realm,
                    self.registry
                ),
                BadTokenReply::NoToken => anyhow!(
                    "the token service `{}` of `{}` answered without an access token",
                    challenge.realm,
                    self.registry
                ),
            })
        })?;
        Ok((token, token_deadline(Instant::now(), expires_in)))
    }

    /// `text` with the secret blanked out, should a server echo it back.
    pub fn redact(&self, text: &str) -> String {
        let secret = match &self.credentials {
            Credentials::Basic { password, .. } => password,
            Credentials::Token(refresh) => refresh,
            Credentials::Anonymous => return text.to_string(),
        };
        if secret.len() >= 4 {
            text.replace(secret.as_str(), "<redacted>")
        } else {
            text.to_string()
        }
    }
}

/// `Basic base64(user:password)`, marked sensitive.
fn basic(username: &str, password: &str) -> Result<HeaderValue, Failure> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

/// `Bearer TOKEN`, marked sensitive.
fn bearer(token: &str) -> Result<HeaderValue, Failure> {
    sensitive(&format!("Bearer {token}"))
}

fn sensitive(value: &str) -> Result<HeaderValue, Failure> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Failure::Fatal(anyhow!(
            "the credentials or token cannot be sent in an HTTP header (they hold characters headers cannot)"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `/v2/` with a Bearer challenge naming its own `/token`, and
    /// `/token` with `token_reply`, one request per connection.
    fn token_server(token_reply: String) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let realm = format!("{base}/token");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let (status, extra, body) = if line.contains(" /token") {
                    ("200 OK", String::new(), token_reply.as_str())
                } else {
                    (
                        "401 Unauthorized",
                        format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\n"),
                        "{}",
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        base
    }

    fn tokens(base: &str) -> (Tokens, Clients) {
        let base = Url::parse(base).unwrap();
        let tokens = Tokens::new(
            "registry.test",
            base.clone(),
            Credentials::Token("refresh".to_string()),
            false,
        );
        (tokens, Clients::for_tests(&base))
    }

    #[test]
    fn a_token_that_claims_to_last_forever_is_used_and_does_not_panic() {
        let base =
            token_server(r#"{"access_token":"tok","expires_in":18446744073709551615}"#.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (identity, clients) = tokens(&base);
        let fetched = runtime
            .block_on(identity.authorization(&clients, "a/b", true))
            .unwrap()
            .unwrap();
        assert_eq!(fetched.0.to_str().unwrap(), "Bearer tok");
        assert!(fetched.0.is_sensitive());
        assert!(fetched.1, "fetched just now");
        // Cached, not fetched again.
        let cached = runtime
            .block_on(identity.authorization(&clients, "a/b", false))
            .unwrap()
            .unwrap();
        assert_eq!(cached.0.to_str().unwrap(), "Bearer tok");
        assert!(!cached.1, "cached");
    }

    #[test]
    fn an_oversized_token_reply_is_refused() {
        let reply = format!(r#"{{"access_token":"{}"}}"#, "t".repeat(5 << 20));
        let base = token_server(reply);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (identity, clients) = tokens(&base);
        let err = runtime
            .block_on(identity.authorization(&clients, "a/b", false))
            .unwrap_err();
        assert!(
            matches!(&err, Failure::TooLarge { limit, .. } if *limit == http::DOCUMENT_LIMIT),
            "{err:?}"
        );
    }
}
