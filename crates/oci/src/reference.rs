//! Where an artifact lives: a repository in a registry, or a local OCI image layout.
//!
//! `REGISTRY/REPO[:TAG][@DIGEST]` names a registry's, `oci:PATH[:TAG][@DIGEST]`
//! a local layout's; a bare `NAME[:TAG]` is a layout under `target/kiln/oci`
//! (under `$KILN_TARGET_DIR/kiln/oci` when that is set).

use anyhow::{Context, Result, bail};
use kiln_core::{Digest, hinted};
use std::fmt;
use std::path::PathBuf;

/// The local layout directory used when a reference names no registry.
pub const DEFAULT_LAYOUT_DIR: &str = "target/kiln/oci";

/// The environment variable that moves `target/` elsewhere, as
/// `--target-dir` does for `kiln build` and `kiln publish`.
pub const TARGET_DIR_ENV: &str = "KILN_TARGET_DIR";

/// Where bare `NAME[:TAG]` layouts live: [`DEFAULT_LAYOUT_DIR`], or
/// `kiln/oci` in the directory `KILN_TARGET_DIR` names.
pub fn default_layout_dir() -> PathBuf {
    match std::env::var_os(TARGET_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("kiln").join("oci"),
        None => PathBuf::from(DEFAULT_LAYOUT_DIR),
    }
}

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// In a registry.
    Registry {
        /// Host and optional port, e.g. `ghcr.io` or `127.0.0.1:5000`.
        registry: String,
        /// Repository path, e.g. `acme/hello`.
        repository: String,
        /// Tag, if given.
        tag: Option<String>,
        /// Digest, if given.
        digest: Option<Digest>,
    },
    /// In a local OCI image layout directory.
    Layout {
        /// The layout's directory.
        dir: PathBuf,
        /// Tag, if given.
        tag: Option<String>,
        /// Digest, if given.
        digest: Option<Digest>,
    },
}

impl Reference {
    /// Parses a reference (see the module docs).
    pub fn parse(text: &str) -> Result<Reference> {
        let text = text.trim();
        if text.is_empty() {
            bail!("empty reference");
        }
        let (rest, digest) = match text.rsplit_once('@') {
            Some((r, d)) => {
                let d = Digest::parse(d).with_context(|| format!("invalid digest in `{text}`"))?;
                (r, Some(d))
            }
            None => (text, None),
        };
        if let Some(path) = rest.strip_prefix("oci:") {
            let (dir, tag) = split_tag(path);
            if dir.is_empty() {
                bail!("`{text}` names no layout directory; write `oci:PATH[:TAG]`");
            }
            return Ok(Reference::Layout {
                dir: PathBuf::from(dir),
                tag: tag.map(check_tag).transpose()?,
                digest,
            });
        }
        let (name, tag) = split_tag(rest);
        let tag = tag.map(check_tag).transpose()?;
        let first = name.split('/').next().unwrap_or("");
        let is_host = name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if !is_host {
            if name.contains('/') {
                return Err(hinted(
                    format!("`{text}` names no registry"),
                    "write the registry host first (e.g. `docker.io/acme/hello:1.0`, `ghcr.io/acme/hello`), or `oci:DIR[:TAG]` for a local layout",
                ));
            }
            check_repository(name, text)?;
            return Ok(Reference::Layout {
                dir: default_layout_dir().join(name),
                tag,
                digest,
            });
        }
        let (registry, repository) = name.split_once('/').unwrap_or((name, ""));
        check_repository(repository, text)?;
        Ok(Reference::Registry {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Reference::Registry { tag, .. } | Reference::Layout { tag, .. } => tag.as_deref(),
        }
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Registry { digest, .. } | Reference::Layout { digest, .. } => {
                digest.as_ref()
            }
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, new: &str) -> Reference {
        let mut r = self.clone();
        match &mut r {
            Reference::Registry { tag, digest, .. } | Reference::Layout { tag, digest, .. } => {
                *tag = Some(new.to_string());
                *digest = None;
            }
        }
        r
    }

    /// The same repository at a digest.
    pub fn with_digest(&self, new: &Digest) -> Reference {
        let mut r = self.clone();
        match &mut r {
            Reference::Registry { tag, digest, .. } | Reference::Layout { tag, digest, .. } => {
                *tag = None;
                *digest = Some(*new);
            }
        }
        r
    }

    /// The registry host, for registries.
    pub fn registry(&self) -> Option<&str> {
        match self {
            Reference::Registry { registry, .. } => Some(registry),
            Reference::Layout { .. } => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tag, digest) = (self.tag(), self.digest());
        match self {
            Reference::Registry {
                registry,
                repository,
                ..
            } => write!(f, "{registry}/{repository}")?,
            Reference::Layout { dir, .. } => write!(f, "oci:{}", dir.display())?,
        }
        if let Some(t) = tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Splits `NAME:TAG` at the last `:` after the last `/`.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (the distribution spec).
fn check_tag(tag: &str) -> Result<String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        bail!("`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)");
    }
    Ok(tag.to_string())
}

/// Repository names: lowercase path components of `[a-z0-9]` separated by
/// `.`, `_`, `__` or `-`.
fn check_repository(repo: &str, text: &str) -> Result<()> {
    let ok = !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if !ok {
        bail!(
            "`{text}`: `{repo}` is not a valid repository name (lowercase letters, digits, `.`, `_`, `-`, separated by `/`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_layout_and_bare_names() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            Reference::parse(&format!("127.0.0.1:5000/acme/hello:1.0@{d}")).unwrap(),
            Reference::Registry {
                registry: "127.0.0.1:5000".into(),
                repository: "acme/hello".into(),
                tag: Some("1.0".into()),
                digest: Some(Digest::parse(&d).unwrap()),
            }
        );
        assert_eq!(
            Reference::parse("oci:/tmp/x:v1").unwrap(),
            Reference::Layout {
                dir: "/tmp/x".into(),
                tag: Some("v1".into()),
                digest: None
            }
        );
        assert_eq!(
            Reference::parse("hello:2").unwrap(),
            Reference::Layout {
                dir: default_layout_dir().join("hello"),
                tag: Some("2".into()),
                digest: None
            }
        );
        assert_eq!(
            Reference::parse("localhost/a").unwrap().registry(),
            Some("localhost")
        );
        assert!(Reference::parse("acme/hello").is_err());
        assert!(Reference::parse("ghcr.io/Acme/hello").is_err());
        assert!(Reference::parse("ghcr.io/acme/hello:bad tag").is_err());
        assert!(Reference::parse("ghcr.io/acme/hello@sha256:zz").is_err());
        assert_eq!(
            Reference::parse("ghcr.io/acme/hello:1")
                .unwrap()
                .to_string(),
            "ghcr.io/acme/hello:1"
        );
    }
}
