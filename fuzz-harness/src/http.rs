//! Fuzz target for what a registry and its token service send in headers and token replies.

use crate::select;
use kiln_oci::wire;
use std::time::{Duration, Instant, SystemTime};

/// `WWW-Authenticate` values (one per line) for a registry at this origin.
const REGISTRY: &str = "https://registry.example:5000/v2/";

/// A header or reply by the selector byte: `WWW-Authenticate` values,
/// `Link` values, `Retry-After`, a token service's reply. Oracles: no
/// panic; a challenge whose realm is at another origin than the registry's
/// is reported as elsewhere; `Retry-After` and token lifetimes stay within
/// kiln's bounds.
pub fn http(data: &[u8]) {
    let (kind, bytes) = select(data, 4);
    let text = String::from_utf8_lossy(bytes);
    match kind {
        0 => {
            let values: Vec<String> = text.lines().map(str::to_string).collect();
            let elsewhere = wire::realm_elsewhere(&values, REGISTRY);
            let _ = wire::scheme_of(&values);
            for value in &values {
                let _ = wire::quoted_string(value);
                if let Some(challenge) = wire::parse_challenge(value)
                    && let Ok(realm) = url::Url::parse(&challenge.realm)
                    && realm.origin() != url::Url::parse(REGISTRY).unwrap().origin()
                {
                    assert!(
                        elsewhere.is_some(),
                        "realm `{}` at another origin is not reported",
                        challenge.realm
                    );
                }
            }
        }
        1 => {
            let _ = wire::next_link_in(text.lines());
            for line in text.lines() {
                let _ = wire::parse_links(line);
            }
        }
        2 => {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let _ = wire::parse_retry_after(&text, now);
        }
        _ => {
            if let Ok((token, expires_in)) = wire::token_reply(bytes) {
                assert!(!token.is_empty(), "an empty token accepted");
                let now = Instant::now();
                let deadline = wire::token_deadline(now, expires_in);
                assert!(deadline <= now + wire::MAX_TOKEN_LIFETIME);
            }
        }
    }
}
