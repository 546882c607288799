//! Where kiln has seen blobs in a registry, kept in the cache directory, so a push to another repository of the same registry can mount a blob instead of uploading it again (as skopeo's blob-info cache does).

use crate::artifact::check_digest;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// At most this many blobs are remembered per registry.
const MAX_PER_REGISTRY: usize = 4096;

/// registry → digest → repository.
#[derive(Debug, Default)]
pub struct BlobLocations {
    path: Option<PathBuf>,
    map: BTreeMap<String, BTreeMap<String, String>>,
    changed: bool,
}

impl BlobLocations {
    /// Loads the record from the cache directory (empty when there is none
    /// or it cannot be read: it only saves time).
    pub fn load() -> BlobLocations {
        let path = kiln_core::cache_dir().map(|d| d.join("oci/blob-locations.json"));
        let map = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        BlobLocations {
            path,
            map,
            changed: false,
        }
    }

    /// A repository of `registry` known to hold `digest`, other than `not`.
    pub fn find(&self, registry: &str, digest: &str, not: &str) -> Option<&str> {
        self.map
            .get(registry)?
            .get(digest)
            .map(String::as_str)
            .filter(|r| *r != not)
    }

    /// Records that `repository` of `registry` holds `digest`.
    pub fn record(&mut self, registry: &str, digest: &str, repository: &str) {
        if check_digest(digest).is_err() {
            return;
        }
        let entries = self.map.entry(registry.to_string()).or_default();
        if entries.get(digest).map(String::as_str) == Some(repository) {
            return;
        }
        if entries.len() >= MAX_PER_REGISTRY
            && let Some(first) = entries.keys().next().cloned()
        {
            entries.remove(&first);
        }
        entries.insert(digest.to_string(), repository.to_string());
        self.changed = true;
    }

    /// Writes the record back (errors only cost a later upload).
    pub fn save(&self) {
        if let (true, Some(path)) = (self.changed, &self.path)
            && let Ok(bytes) = serde_json::to_vec(&self.map)
        {
            let _ = kiln_core::fs::write_atomic(path, &bytes);
        }
    }
}
