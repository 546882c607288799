//! An on-disk cache of toolchain discovery and `cargo metadata` results.
//!
//! A rebuild then does not pay for re-probing compilers on every run.
//!
//! Each entry is stored under a key naming everything the result depends on
//! (tool, environment variables) and carries fingerprints — size and
//! modification time, or absence — of the files it was derived from. An
//! entry whose fingerprints no longer match is recomputed. The cache lives
//! in `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`;
//! when none can be written kiln simply works without it.

use anyhow::Result;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

pub use kiln_core::cache_dir;

/// The state of one file a cached result was derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    path: PathBuf,
    /// `(size, mtime in ns)`, or `None` when the file did not exist.
    state: Option<(u64, u128)>,
}

impl Fingerprint {
    /// Records the current state of `path`.
    pub fn of(path: &Path) -> Fingerprint {
        let state = std::fs::metadata(path).ok().map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (m.len(), mtime)
        });
        Fingerprint {
            path: path.to_path_buf(),
            state,
        }
    }

    fn still_holds(&self) -> bool {
        Fingerprint::of(&self.path) == *self
    }
}

#[derive(Serialize, Deserialize)]
struct Entry<T> {
    key: String,
    fingerprints: Vec<Fingerprint>,
    value: T,
}

fn entry_path(kind: &str, key: &str) -> Option<PathBuf> {
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..12]);
    Some(
        cache_dir()?
            .join("discovery")
            .join(format!("{kind}-{hash}.json")),
    )
}

/// Returns the cached value for `key` when its fingerprints still hold, else
/// runs `compute` (which returns the value and the files it depends on) and
/// stores the result.
pub fn cached<T: Serialize + DeserializeOwned>(
    kind: &str,
    key: &str,
    compute: impl FnOnce() -> Result<(T, Vec<Fingerprint>)>,
) -> Result<T> {
    let path = entry_path(kind, key);
    if let Some(path) = &path
        && let Ok(bytes) = std::fs::read(path)
        && let Ok(entry) = serde_json::from_slice::<Entry<T>>(&bytes)
        && entry.key == key
        && entry.fingerprints.iter().all(Fingerprint::still_holds)
    {
        return Ok(entry.value);
    }
    let (value, fingerprints) = compute()?;
    let entry = Entry {
        key: key.to_string(),
        fingerprints,
        value,
    };
    if let Some(path) = &path
        && let Ok(bytes) = serde_json::to_vec(&entry)
    {
        // A cache that cannot be written only costs speed.
        let _ = kiln_core::fs::write_atomic(path, &bytes);
    }
    Ok(entry.value)
}

/// The values of environment variables, for cache keys.
pub fn env_key(vars: &[&str]) -> String {
    vars.iter()
        .map(|v| format!("{v}={}", std::env::var(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_notice_changes_and_creation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let absent = Fingerprint::of(&file);
        assert!(absent.still_holds());
        std::fs::write(&file, "a").unwrap();
        assert!(!absent.still_holds());
        let present = Fingerprint::of(&file);
        assert!(present.still_holds());
        std::fs::write(&file, "ab").unwrap();
        assert!(!present.still_holds());
    }
}
