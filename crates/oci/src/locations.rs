//! Where kiln has seen blobs in a registry, so a push can mount them instead of uploading.
//!
//! The record is kept in the cache directory; a push to another repository of
//! the same registry mounts a blob seen there (as skopeo's blob-info cache
//! does).

use kiln_core::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// At most this many blobs are remembered per registry.
const MAX_PER_REGISTRY: usize = 4096;

/// registry → digest → repository.
type Map = BTreeMap<String, BTreeMap<String, String>>;

/// The record as loaded, plus what this process learned since. Several
/// kiln processes (parallel CI jobs) may push at once: `save` merges what
/// was learned into the file as it is then, under a lock, so no process
/// drops what another recorded.
#[derive(Debug, Default)]
pub struct BlobLocations {
    path: Option<PathBuf>,
    map: Map,
    learned: Vec<(String, String, String)>,
}

fn read(path: &Path) -> Map {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn insert(map: &mut Map, registry: &str, digest: &str, repository: &str) -> bool {
    let entries = map.entry(registry.to_string()).or_default();
    if entries.get(digest).map(String::as_str) == Some(repository) {
        return false;
    }
    if !entries.contains_key(digest)
        && entries.len() >= MAX_PER_REGISTRY
        && let Some(first) = entries.keys().next().cloned()
    {
        entries.remove(&first);
    }
    entries.insert(digest.to_string(), repository.to_string());
    true
}

impl BlobLocations {
    /// Loads the record from the cache directory (empty when there is none
    /// or it cannot be read: it only saves time).
    pub fn load() -> BlobLocations {
        Self::load_from(kiln_core::cache_dir().map(|d| d.join("oci/blob-locations.json")))
    }

    fn load_from(path: Option<PathBuf>) -> BlobLocations {
        let map = path.as_deref().map(read).unwrap_or_default();
        BlobLocations {
            path,
            map,
            learned: Vec::new(),
        }
    }

    /// A repository of `registry` known to hold `digest`, other than `not`.
    pub fn find(&self, registry: &str, digest: &Digest, not: &str) -> Option<&str> {
        self.map
            .get(registry)?
            .get(&digest.to_string())
            .map(String::as_str)
            .filter(|r| *r != not)
    }

    /// Records that `repository` of `registry` holds `digest`.
    pub fn record(&mut self, registry: &str, digest: &Digest, repository: &str) {
        let digest = digest.to_string();
        if insert(&mut self.map, registry, &digest, repository) {
            self.learned
                .push((registry.into(), digest, repository.into()));
        }
    }

    /// Merges what was recorded into the file (errors only cost a later
    /// upload, so they are ignored).
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        if self.learned.is_empty() {
            return;
        }
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        // Held until the end of this function: readers of the file need no
        // lock (it is replaced atomically), writers take turns.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("blob-locations.lock"));
        let Ok(lock) = lock else { return };
        if lock.lock().is_err() {
            return;
        }
        let mut map = read(path);
        for (registry, digest, repository) in self.learned.drain(..) {
            insert(&mut map, &registry, &digest, &repository);
        }
        if let Ok(bytes) = serde_json::to_vec(&map) {
            let _ = kiln_core::fs::write_atomic(path, &bytes);
        }
        self.map = map;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::from_bytes([n; 32])
    }

    #[test]
    fn two_processes_saving_keep_both_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().join("oci/blob-locations.json"));
        // Both load before either saves (two pushes started together).
        let mut a = BlobLocations::load_from(path.clone());
        let mut b = BlobLocations::load_from(path.clone());
        a.record("r.example", &digest(1), "one");
        b.record("r.example", &digest(2), "two");
        a.save();
        b.save();
        let c = BlobLocations::load_from(path);
        assert_eq!(c.find("r.example", &digest(1), "x"), Some("one"));
        assert_eq!(c.find("r.example", &digest(2), "x"), Some("two"));
        assert_eq!(c.find("r.example", &digest(2), "two"), None);
        assert_eq!(c.find("other.example", &digest(2), "x"), None);
    }

    #[test]
    fn the_oldest_entries_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = BlobLocations::load_from(Some(dir.path().join("l.json")));
        for n in 0..=255u8 {
            a.record("r", &digest(n), "repo");
        }
        assert_eq!(a.map["r"].len(), 256);
        let mut big = Map::new();
        for i in 0..MAX_PER_REGISTRY + 10 {
            insert(&mut big, "r", &format!("sha256:{i:064x}"), "repo");
        }
        assert_eq!(big["r"].len(), MAX_PER_REGISTRY);
    }
}
