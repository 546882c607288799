//! The two formats kiln writes and reads signatures in: cosign v3's Sigstore bundle and the legacy `.sig` tag.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a signature of an artifact is stored beside it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// A Sigstore bundle (v0.3) holding a DSSE envelope over an in-toto
    /// statement, attached as an OCI referrer: what cosign v3 writes.
    #[default]
    Bundle,
    /// A simple-signing payload under the `sha256-<hex>.sig` tag: what
    /// cosign wrote before v3, for verifiers that read nothing else.
    Legacy,
}

impl SignatureFormat {
    /// Every format, in the order kiln reads them.
    pub const ALL: [SignatureFormat; 2] = [SignatureFormat::Bundle, SignatureFormat::Legacy];

    /// The name used on the command line, in kiln.toml and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            SignatureFormat::Bundle => "bundle",
            SignatureFormat::Legacy => "legacy",
        }
    }
}

impl fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignatureFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<SignatureFormat, String> {
        SignatureFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown signature format `{s}`: expected `bundle` (cosign v3) or `legacy` (the `.sig` tag)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bundle_is_the_default() {
        for f in SignatureFormat::ALL {
            assert_eq!(f.name().parse::<SignatureFormat>(), Ok(f));
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
        }
        assert_eq!(SignatureFormat::default(), SignatureFormat::Bundle);
        assert!(
            "sig"
                .parse::<SignatureFormat>()
                .unwrap_err()
                .contains("`sig`")
        );
    }
}
