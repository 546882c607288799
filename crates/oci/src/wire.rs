//! Pure parsers of what registries and token services send: no I/O, no HTTP client types.
//!
//! Everything here takes bytes or header values exactly as they came off the
//! wire, so the registry client and the fuzz targets run the same code: error
//! bodies, `WWW-Authenticate` challenges, `Link` and `Retry-After` headers,
//! token-service replies, referrer lists and tag-list pages.

use crate::artifact::Descriptor;
use anyhow::Result;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// What an error body says, shortened: the distribution spec's
/// `{"errors": [{"code", "message"}]}` as `CODE: message`, else its text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Envelope>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    const MAX: usize = 300;
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}

/// Parses a `Retry-After` value: seconds, or an HTTP date (how long from
/// `now`, nothing when it has passed).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is "very long".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A registry's bearer challenge: where its token service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The token service's URL.
    pub realm: String,
    /// The service name the token is for.
    pub service: Option<String>,
}

/// Parses a `WWW-Authenticate` value; `None` unless it is a Bearer
/// challenge with a realm.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
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
            // A quoted string; `\"` escapes a quote inside it. An
            // unterminated one makes the whole challenge unreadable.
            let (value, remaining) = quoted_string(quoted);
            (value, remaining?)
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

/// The token service among `challenges` (a registry's `WWW-Authenticate`
/// values) that is not at the origin (scheme, host and port) of `base`,
/// if any: where credentials meant for the registry alone must not go.
/// A value that mentions Bearer but cannot be read counts as elsewhere:
/// where it points cannot be checked.
pub fn realm_elsewhere(challenges: &[String], base: &str) -> Option<String> {
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

/// What a registry asks of its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// Nothing.
    Open,
    /// Basic credentials with every request.
    Basic,
    /// Bearer tokens from this token service.
    Bearer(Challenge),
}

/// The scheme `challenges` (`WWW-Authenticate` values) ask for: Bearer
/// when one names a token service, else Basic when one asks for it.
pub fn scheme_of(challenges: &[String]) -> Option<Scheme> {
    if let Some(c) = challenges.iter().find_map(|h| parse_challenge(h)) {
        return Some(Scheme::Bearer(c));
    }
    challenges
        .iter()
        .any(|h| h.trim_start().to_ascii_lowercase().starts_with("basic"))
        .then_some(Scheme::Basic)
}

/// An HTTP quoted string whose opening `"` was just read (`\\` escapes the
/// character after it): its value, and what follows the closing `"`, or
/// `None` when there is none.
pub fn quoted_string(quoted: &str) -> (String, Option<&str>) {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    value.push(next);
                }
            }
            '"' => return (value, Some(&quoted[i + 1..])),
            c => value.push(c),
        }
    }
    (value, None)
}

/// The target of the `rel="next"` link among the `Link` header `values`
/// of one answer (RFC 8288), as written: relative or absolute.
pub fn next_link_in<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values
        .into_iter()
        .flat_map(parse_links)
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
        .map(|(target, _)| target)
}

/// The links of one `Link` value: each `<target>` with its `rel` values.
pub fn parse_links(value: &str) -> Vec<(String, Vec<String>)> {
    let mut links = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after) = rest.strip_prefix('<') else {
            return links;
        };
        let Some((target, after)) = after.split_once('>') else {
            return links;
        };
        rest = after;
        let mut rels = Vec::new();
        // Parameters: `; name=value` or `; name="quoted, value"`, up to
        // the comma that starts the next link.
        loop {
            rest = rest.trim_start();
            let Some(after) = rest.strip_prefix(';') else {
                break;
            };
            let after = after.trim_start();
            let name_end = after.find(['=', ';', ',']).unwrap_or(after.len());
            let name = after[..name_end].trim().to_ascii_lowercase();
            rest = &after[name_end..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                if let Some(quoted) = after.strip_prefix('"') {
                    let (unquoted, after) = quoted_string(quoted);
                    value = unquoted;
                    // An unterminated string runs to the end of the value.
                    rest = after.unwrap_or("");
                } else {
                    let end = after.find([';', ',']).unwrap_or(after.len());
                    value = after[..end].trim().to_string();
                    rest = &after[end..];
                }
            }
            if name == "rel" {
                rels.extend(value.split_whitespace().map(str::to_string));
            }
        }
        links.push((target.trim().to_string(), rels));
    }
}

/// The token service's answer.
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token: Option<String>,
    expires_in: Option<u64>,
}

/// Why a token service's reply gave kiln no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadTokenReply {
    /// The body is not a token response (not JSON, or fields of the wrong
    /// type).
    NotATokenResponse,
    /// A token response with neither `token` nor `access_token`, or only
    /// empty ones.
    NoToken,
}

impl std::fmt::Display for BadTokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadTokenReply::NotATokenResponse => "not a token response",
            BadTokenReply::NoToken => "a token response without an access token",
        })
    }
}

impl std::error::Error for BadTokenReply {}

/// The access token and its `expires_in` (seconds) in a token service's
/// reply: `access_token` (OAuth2) before `token` (Docker's), never an
/// empty one.
pub fn token_reply(body: &[u8]) -> std::result::Result<(String, Option<u64>), BadTokenReply> {
    let parsed: TokenResponse =
        serde_json::from_slice(body).map_err(|_| BadTokenReply::NotATokenResponse)?;
    let token = parsed
        .access_token
        .or(parsed.token)
        .filter(|t| !t.is_empty())
        .ok_or(BadTokenReply::NoToken)?;
    Ok((token, parsed.expires_in))
}

/// Longest an access token is used, whatever its service says: a bound
/// on a value from the network, far above the minutes services grant.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Until when an access token fetched at `now` is used: for `expires_in`
/// seconds (Docker's token specification: 60 when not told), at most
/// [`MAX_TOKEN_LIFETIME`], renewed 10 seconds early so no request goes
/// out with a token about to lapse.
pub fn token_deadline(now: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = Duration::from_secs(expires_in.unwrap_or(60))
        .min(MAX_TOKEN_LIFETIME)
        .saturating_sub(Duration::from_secs(10));
    now.checked_add(lifetime).unwrap_or(now)
}

/// The entries of an OCI image index (a referrers list). Entries that are
/// not descriptors are left out rather than failing the whole list; the
/// rest are checked by whoever follows them ([`crate::referrers`]).
pub fn referrer_entries(body: &[u8]) -> Result<Vec<Descriptor>> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<serde_json::Value>,
    }
    let index: Index = serde_json::from_slice(body)?;
    Ok(index
        .manifests
        .into_iter()
        .filter_map(|m| serde_json::from_value(m).ok())
        .collect())
}

/// The tags on one page of a tag list (`{"name", "tags"}`); a page whose
/// `tags` is absent or null lists none.
pub fn tag_page(body: &[u8]) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    Ok(serde_json::from_slice::<Page>(body)?
        .tags
        .unwrap_or_default())
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

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let s = Duration::from_secs;
        assert_eq!(parse_retry_after("120", now), Some(s(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(s(0)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(s(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(s(30))
        );
        // RFC 850 and asctime forms, as HTTP allows.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now),
            Some(s(10))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:39 1994", now),
            Some(s(2))
        );
        // A date that has passed: no wait.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(s(0))
        );
        for bad in ["", "-1", "1.5", "soon", "12 s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn quoted_strings_unescape_and_say_where_they_end() {
        assert_eq!(
            quoted_string(r#"a\"b\\c", next"#),
            ("a\"b\\c".to_string(), Some(", next"))
        );
        assert_eq!(quoted_string(r#"""#), (String::new(), Some("")));
        assert_eq!(quoted_string("open"), ("open".to_string(), None));
    }

    fn links(value: &str) -> Option<String> {
        next_link_in([value])
    }

    #[test]
    fn next_links_are_found_among_others() {
        assert_eq!(
            links(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            links("<https://r.example/v2/a/tags/list?n=1&last=x>;rel=next").as_deref(),
            Some("https://r.example/v2/a/tags/list?n=1&last=x")
        );
        // Several links and relations, quoted commas and semicolons.
        assert_eq!(
            links(r#"</first>; rel="prev"; title="a, b; c", </second?a=1,2>; rel="last NEXT""#)
                .as_deref(),
            Some("/second?a=1,2")
        );
        assert_eq!(links(r#"</p>; rel="prev""#), None);
        assert_eq!(links(r#"</p>"#), None);
        assert_eq!(links("garbage"), None);
        assert_eq!(links(r#"<unterminated; rel="next""#), None);
        // Several header lines.
        assert_eq!(
            next_link_in([r#"</a>; rel="prev""#, r#"</b>; rel="next""#]).as_deref(),
            Some("/b")
        );
    }

    #[test]
    fn error_bodies_are_read_as_the_spec_writes_them_and_shortened() {
        assert_eq!(
            error_message(
                br#"{"errors":[{"code":"DENIED","message":"no","detail":{}},{"code":"X"}]}"#
            ),
            "DENIED: no; X"
        );
        assert_eq!(error_message(b"  plain text \n"), "plain text");
        let long = "x".repeat(1000);
        assert_eq!(error_message(long.as_bytes()).chars().count(), 301);
    }

    #[test]
    fn referrer_lists_keep_the_entries_that_are_descriptors() {
        let d = format!("sha256:{}", "a".repeat(64));
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{d}","size":3}},{{"digest":1}},{{"mediaType":"m","digest":"sha512:x","size":1,"artifactType":"t"}}]}}"#
        );
        let entries = referrer_entries(body.as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].digest, d);
        assert!(referrer_entries(br#"{"layers":[]}"#).is_err());
    }

    #[test]
    fn token_replies_need_a_non_empty_token() {
        assert_eq!(
            token_reply(br#"{"token":"t","access_token":"a","expires_in":300}"#),
            Ok(("a".to_string(), Some(300)))
        );
        assert_eq!(
            token_reply(br#"{"token":"t","access_token":null}"#),
            Ok(("t".to_string(), None))
        );
        // An empty `access_token` is the one taken, so there is none.
        assert_eq!(
            token_reply(br#"{"token":"t","access_token":""}"#),
            Err(BadTokenReply::NoToken)
        );
        for (body, why) in [
            (&b""[..], BadTokenReply::NotATokenResponse),
            (b"<html>", BadTokenReply::NotATokenResponse),
            (b"[]", BadTokenReply::NotATokenResponse),
            (br#"{"token":5}"#, BadTokenReply::NotATokenResponse),
            (
                br#"{"token":"t","expires_in":-1}"#,
                BadTokenReply::NotATokenResponse,
            ),
            (
                br#"{"token":"t","expires_in":18446744073709551616}"#,
                BadTokenReply::NotATokenResponse,
            ),
            (
                br#"{"token":"t","expires_in":1e30}"#,
                BadTokenReply::NotATokenResponse,
            ),
            (b"{}", BadTokenReply::NoToken),
            (
                br#"{"token":"","access_token":null}"#,
                BadTokenReply::NoToken,
            ),
        ] {
            assert_eq!(
                token_reply(body),
                Err(why),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // The largest lifetime a reply can state is capped, not overflowed.
        let (_, expires_in) =
            token_reply(br#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
        let now = Instant::now();
        assert_eq!(
            token_deadline(now, expires_in),
            now + MAX_TOKEN_LIFETIME - Duration::from_secs(10)
        );
    }

    #[test]
    fn hostile_challenges_name_no_token_service() {
        for header in [
            "",
            "Bearer ",
            "Bearer realm=",
            r#"Bearer realm="""#,
            "Bearer =,=,=",
            "Bearer realm",
            "Bearer\trealm=\"\\",
            "Bearerrealm=\"https://x/t\"",
        ] {
            assert_eq!(parse_challenge(header), None, "{header:?}");
        }
        // The last realm given wins, as it is stored last.
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://a/t", realm="https://b/t""#)
                .map(|c| c.realm)
                .as_deref(),
            Some("https://b/t")
        );
        // A realm on another origin is never taken for the registry's, nor
        // is an unreadable one or one with an opaque origin.
        let base = "https://registry.example";
        for realm in [
            r#"Bearer realm="https://registry.example.evil.test/token""#,
            r#"Bearer realm="https://registry.example:444/token""#,
            r#"Bearer realm="data:text/plain,https://registry.example/""#,
            r#"Bearer realm="https://registry.example"#,
        ] {
            assert!(
                realm_elsewhere(&[realm.to_string()], base).is_some(),
                "{realm}"
            );
        }
        // A base that is not a URL has no origin to match.
        assert!(
            realm_elsewhere(&[r#"Bearer realm="https://r/t""#.to_string()], "not a url").is_some()
        );
    }

    #[test]
    fn schemes_prefer_a_bearer_challenge_with_a_realm() {
        let c = |v: &[&str]| scheme_of(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(c(&[]), None);
        assert_eq!(c(&["Negotiate", "Bearer service=x"]), None);
        assert_eq!(c(&[r#"  BASIC realm="r""#]), Some(Scheme::Basic));
        assert_eq!(
            c(&[r#"Basic realm="r""#, r#"Bearer realm="https://a/t""#]),
            Some(Scheme::Bearer(Challenge {
                realm: "https://a/t".to_string(),
                service: None
            }))
        );
    }

    #[test]
    fn lists_and_pages_of_the_wrong_shape_are_errors() {
        assert_eq!(
            tag_page(br#"{"name":"a","tags":["v1","v2"]}"#).unwrap(),
            ["v1", "v2"]
        );
        assert!(tag_page(br#"{"name":"a","tags":null}"#).unwrap().is_empty());
        assert!(tag_page(br#"{"name":"a"}"#).unwrap().is_empty());
        // serde reads a struct from an array too: `[]` is a page without
        // tags, `[["v1"]]` one with.
        assert!(tag_page(b"[]").unwrap().is_empty());
        assert_eq!(tag_page(br#"[["v1"]]"#).unwrap(), ["v1"]);
        for body in [&b""[..], br#"{"tags":"v1"}"#, br#"{"tags":[1]}"#, b"\xff"] {
            assert!(tag_page(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        // Entries of the wrong type are dropped; a list that is not there
        // or not a list is an error.
        assert!(
            referrer_entries(br#"{"manifests":[1,null,"x",{"size":-1}]}"#)
                .unwrap()
                .is_empty()
        );
        for body in [&b""[..], b"{}", br#"{"manifests":{}}"#, b"null"] {
            assert!(
                referrer_entries(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_bodies_of_any_shape_become_short_text() {
        assert_eq!(error_message(b""), "");
        assert_eq!(error_message(br#"{"errors":[]}"#), r#"{"errors":[]}"#);
        assert_eq!(error_message(br#"{"errors":[{}]}"#), "");
        assert_eq!(error_message(b"\xff\xfe bad"), "\u{fffd}\u{fffd} bad");
        // Long in characters, not bytes: never cut inside one.
        let wide = "é".repeat(400);
        let said = error_message(wide.as_bytes());
        assert_eq!(said.chars().count(), 301);
        assert!(said.ends_with('…'));
    }

    #[test]
    fn odd_link_values_give_no_next_link() {
        assert_eq!(next_link_in([]), None);
        assert_eq!(next_link_in(["", ",,,", "<>", "<x>; rel"]), None);
        assert_eq!(next_link_in([r#"<a>; rel="next"#]).as_deref(), Some("a"));
        assert_eq!(next_link_in(["<>; rel=next"]).as_deref(), Some(""));
        assert_eq!(
            parse_links(r#"<a>; title="x\"; rel=next", <b>; rel=next"#),
            [
                ("a".to_string(), vec![]),
                ("b".to_string(), vec!["next".to_string()])
            ]
        );
    }
}
