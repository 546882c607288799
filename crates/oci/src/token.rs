//! Docker identity tokens: the OAuth2 refresh-token exchange (`grant_type=refresh_token`) that turns the `identitytoken` `docker login` stores into a registry access token per repository and scope.
//!
//! oci-client sends a [`oci_client::secrets::RegistryAuth::Bearer`] token
//! to the registry as it is, which is right for an access token and wrong
//! for an identity token: registries that hand out identity tokens (Azure
//! Container Registry, Harbor with OIDC, Docker Hub's SSO logins) expect
//! the client to POST it to the token service named in the registry's
//! `WWW-Authenticate` challenge and use the access token that comes back,
//! as docker and oras do. kiln does that exchange here, with reqwest (the
//! HTTP client oci-client itself is built on, so nothing is built twice).

use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A registry's bearer challenge: where its token service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The token service's URL.
    pub realm: String,
    /// The service name the token is for.
    pub service: Option<String>,
}

/// Parses a `WWW-Authenticate` value; `None` unless it is a Bearer
/// challenge with a realm.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted string; `\"` escapes a quote inside it.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        realm: params.remove("realm").filter(|r| !r.is_empty())?,
        service: params.remove("service"),
    })
}

/// Asks the registry at `base` (`scheme://host[:port]`) for its challenge
/// with `GET /v2/`: the status and every `WWW-Authenticate` value.
pub(crate) async fn probe(
    http: &reqwest::Client,
    base: &str,
) -> reqwest::Result<(reqwest::StatusCode, Vec<String>)> {
    let response = http.get(format!("{base}/v2/")).send().await?;
    let headers = response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    Ok((response.status(), headers))
}

/// The token service among `challenges` (a registry's `WWW-Authenticate`
/// values) that is not at the origin (scheme, host and port) of `base`,
/// if any: where credentials meant for the registry alone must not go.
/// A value that mentions Bearer but cannot be read counts as elsewhere,
/// since oci-client may read it differently and follow it.
pub(crate) fn realm_elsewhere(challenges: &[String], base: &str) -> Option<String> {
    let origin = url::Url::parse(base).ok().map(|u| u.origin());
    challenges.iter().find_map(|header| {
        if !header.to_ascii_lowercase().contains("bearer") {
            return None;
        }
        match parse_challenge(header) {
            Some(c) => {
                let realm = url::Url::parse(&c.realm).ok().map(|u| u.origin());
                let same =
                    matches!((&realm, &origin), (Some(r), Some(o)) if r == o && r.is_tuple());
                (!same).then_some(c.realm)
            }
            None => Some(header.clone()),
        }
    })
}

/// Longest an access token is used, whatever its service says: a bound
/// on a value from the network, far above the minutes services grant.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Until when an access token fetched at `now` is used: for `expires_in`
/// seconds (Docker's token specification: 60 when not told), at most
/// [`MAX_TOKEN_LIFETIME`], renewed 10 seconds early so no request goes
/// out with a token about to lapse.
fn token_deadline(now: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = Duration::from_secs(expires_in.unwrap_or(60))
        .min(MAX_TOKEN_LIFETIME)
        .saturating_sub(Duration::from_secs(10));
    now.checked_add(lifetime).unwrap_or(now)
}

/// The token service's answer.
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token: Option<String>,
    expires_in: Option<u64>,
}

/// Exchanges one identity token for access tokens, caching each per
/// repository and scope until shortly before it expires.
pub(crate) struct IdentityToken {
    http: reqwest::Client,
    base: String,
    registry: String,
    refresh_token: String,
    challenge: tokio::sync::OnceCell<Option<Challenge>>,
    cache: Mutex<HashMap<(String, bool), (String, Instant)>>,
}

impl IdentityToken {
    /// For `registry`, reached at `base` (`https://host[:port]`).
    pub fn new(
        http: reqwest::Client,
        base: String,
        registry: &str,
        refresh_token: String,
    ) -> IdentityToken {
        IdentityToken {
            http,
            base,
            registry: registry.to_string(),
            refresh_token,
            challenge: tokio::sync::OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The access token for `repository` (`pull`, or `pull,push` when
    /// `push`), and whether it was fetched just now (rather than cached).
    /// `None` when the registry asks for no token at all.
    pub async fn access_token(
        &self,
        repository: &str,
        push: bool,
    ) -> Result<Option<(String, bool)>> {
        let key = (repository.to_string(), push);
        // A pull,push token also serves for pulling.
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&(repository.to_string(), true))
                .or_else(|| c.get(&key))
                .cloned()
        });
        if let Some((token, until)) = cached
            && Instant::now() < until
        {
            return Ok(Some((token, false)));
        }
        let challenge = self
            .challenge
            .get_or_try_init(|| self.challenge())
            .await?
            .clone();
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        let scope = format!(
            "repository:{repository}:{}",
            if push { "pull,push" } else { "pull" }
        );
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &self.refresh_token)
            .append_pair("client_id", "kiln")
            .append_pair("scope", &scope);
        if let Some(service) = &challenge.service {
            form.append_pair("service", service);
        }
        let response = self
            .http
            .post(&challenge.realm)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.finish())
            .send()
            .await
            .map_err(|e| anyhow!("{}", self.redact(&e.to_string())))
            .with_context(|| {
                format!(
                    "failed to reach the token service `{}` of `{}`",
                    challenge.realm, self.registry
                )
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let detail = self.redact(String::from_utf8_lossy(&body).trim());
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {}", detail.chars().take(300).collect::<String>())
            };
            if status == reqwest::StatusCode::NOT_FOUND
                || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
            {
                bail!(
                    "the token service `{}` of `{}` does not take identity tokens (OAuth2 POST answered {status}); log in with a user name and password or access token: `kiln login {} -u USER --password-stdin`",
                    challenge.realm,
                    self.registry,
                    self.registry
                );
            }
            bail!(
                "the token service `{}` of `{}` refused the identity token ({status}{detail}); it may have expired or been revoked: log in again (`docker login {}` or `kiln login {}`)",
                challenge.realm,
                self.registry,
                self.registry,
                self.registry
            );
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).with_context(|| {
            format!(
                "the token service `{}` of `{}` answered with something that is not a token response",
                challenge.realm, self.registry
            )
        })?;
        let token = parsed
            .access_token
            .or(parsed.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "the token service `{}` of `{}` answered without an access token",
                    challenge.realm,
                    self.registry
                )
            })?;
        let until = token_deadline(Instant::now(), parsed.expires_in);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (token.clone(), until));
        }
        Ok(Some((token, true)))
    }

    /// Asks the registry where its token service is.
    async fn challenge(&self) -> Result<Option<Challenge>> {
        let (status, headers) = probe(&self.http, &self.base)
            .await
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("failed to reach the registry `{}`", self.registry))?;
        if status != reqwest::StatusCode::UNAUTHORIZED {
            // No authentication asked for at all.
            return Ok(None);
        }
        match headers.iter().find_map(|h| parse_challenge(h)) {
            Some(c) => Ok(Some(c)),
            None => bail!(
                "the registry `{}` asks for a user name and password ({}), but the credentials found for it are an identity token, which only works with a token service; log in with `kiln login {} -u USER --password-stdin`",
                self.registry,
                headers.join("; "),
                self.registry
            ),
        }
    }

    /// `text` with the identity token blanked out, should a token service
    /// echo it back.
    fn redact(&self, text: &str) -> String {
        if self.refresh_token.len() >= 4 {
            text.replace(&self.refresh_token, "<redacted>")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_and_others_are_not() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.example.com/token");
        assert_eq!(c.service.as_deref(), Some("registry.example.com"));
        // Spaces after commas, upper-case keys, unquoted values, escapes.
        let c = parse_challenge(r#"bearer Realm="https://a/t\"x", service=svc"#).unwrap();
        assert_eq!(c.realm, "https://a/t\"x");
        assert_eq!(c.service.as_deref(), Some("svc"));
        assert_eq!(parse_challenge(r#"Basic realm="kiln-test""#), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_challenge("Bearer"), None);
    }

    #[test]
    fn token_lifetimes_are_capped_and_never_overflow() {
        let now = Instant::now();
        assert_eq!(
            token_deadline(now, Some(u64::MAX)),
            now + MAX_TOKEN_LIFETIME - Duration::from_secs(10)
        );
        assert_eq!(token_deadline(now, None), now + Duration::from_secs(50));
        assert_eq!(
            token_deadline(now, Some(300)),
            now + Duration::from_secs(290)
        );
        assert_eq!(token_deadline(now, Some(5)), now);
    }

    /// Serves `/v2/` with a Bearer challenge naming its own `/token`, and
    /// `/token` with `token_reply`, one request per connection.
    fn token_server(token_reply: &'static str) -> String {
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
                    ("200 OK", String::new(), token_reply)
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

    #[test]
    fn a_token_that_claims_to_last_forever_is_used_and_does_not_panic() {
        let base = token_server(r#"{"access_token":"tok","expires_in":18446744073709551615}"#);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let identity = IdentityToken::new(
            reqwest::Client::builder().build().unwrap(),
            base,
            "registry.test",
            "refresh".to_string(),
        );
        let fetched = runtime
            .block_on(identity.access_token("a/b", true))
            .unwrap();
        assert_eq!(fetched, Some(("tok".to_string(), true)));
        // Cached, not fetched again.
        let cached = runtime
            .block_on(identity.access_token("a/b", false))
            .unwrap();
        assert_eq!(cached, Some(("tok".to_string(), false)));
    }

    #[test]
    fn token_services_elsewhere_than_the_registry_are_found() {
        let base = "http://127.0.0.1:5000";
        let bearer = |realm: &str| vec![format!(r#"Bearer realm="{realm}",service="s""#)];
        assert_eq!(
            realm_elsewhere(&bearer("http://127.0.0.1:5000/token"), base),
            None
        );
        assert_eq!(
            realm_elsewhere(&bearer("HTTP://127.0.0.1:5000/t?x=1"), base),
            None
        );
        assert_eq!(
            realm_elsewhere(&bearer("http://127.0.0.1:5001/token"), base).as_deref(),
            Some("http://127.0.0.1:5001/token")
        );
        assert!(realm_elsewhere(&bearer("http://127.0.0.2:5000/token"), base).is_some());
        assert!(realm_elsewhere(&bearer("https://127.0.0.1:5000/token"), base).is_some());
        assert!(realm_elsewhere(&bearer("/token"), base).is_some());
        // Default ports are the same origin; an https registry's realm on
        // plain http is not.
        let tls = "https://registry.example.com";
        assert_eq!(
            realm_elsewhere(&bearer("https://Registry.Example.com:443/token"), tls),
            None
        );
        assert!(realm_elsewhere(&bearer("http://registry.example.com/token"), tls).is_some());
        assert!(realm_elsewhere(&bearer("https://auth.example.com/token"), tls).is_some());
        // Basic goes to the registry itself; an unreadable Bearer challenge
        // counts as elsewhere.
        assert_eq!(
            realm_elsewhere(&[r#"Basic realm="r""#.to_string()], base),
            None
        );
        assert!(
            realm_elsewhere(
                &[r#"Basic realm="r", Bearer realm="http://x/t""#.to_string()],
                base
            )
            .is_some()
        );
        assert_eq!(realm_elsewhere(&[], base), None);
    }
}
