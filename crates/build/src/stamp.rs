//! Stamps of finished components: the toolchain output and settings each one was made from.
//!
//! A rebuild whose toolchain output is unchanged reuses the component file
//! instead of componentizing, embedding and validating again.
//!
//! A stamp lives in `<target dir>/kiln/stamps/`, one per output path. It
//! holds a key (the toolchain output's digest, everything else the
//! component depends on, and the identity of the kiln binary that made it)
//! and the state of the output file right after kiln wrote it: digest,
//! size, modification time and inode. The file is reused only when both
//! still match, so an output edited, replaced or deleted since is made
//! again, as is everything after kiln itself changes.

use kiln_core::Digest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    key: String,
    digest: Digest,
    state: FileState,
    /// Warnings given when the component was made, shown again on reuse.
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileState {
    size: u64,
    modified_ns: u128,
    inode: u64,
}

impl FileState {
    fn of(path: &Path) -> Option<FileState> {
        let m = std::fs::metadata(path).ok()?;
        if !m.is_file() {
            return None;
        }
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileState {
            size: m.len(),
            modified_ns: m
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_nanos(),
            inode,
        })
    }
}

/// The key of a component made from `toolchain_output` with `settings`
/// (anything else it depends on, serialized), by this kiln binary; `None`
/// when the settings cannot be serialized (then nothing is reused).
pub fn key(toolchain_output: &[u8], settings: &impl Serialize) -> Option<String> {
    // The running binary's size and modification time stand for its
    // version: a rebuilt kiln may componentize differently.
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| FileState::of(&p))
        .map(|s| (s.size, s.modified_ns));
    let text = serde_json::to_string(&(
        Digest::of(toolchain_output).hex(),
        settings,
        env!("CARGO_PKG_VERSION"),
        exe,
    ))
    .ok()?;
    Some(Digest::of(text.as_bytes()).hex())
}

/// The digest of the files under `path` (a file or a directory, walked in
/// name order), for keys that depend on sources such as a WIT package.
pub fn tree_digest(path: &Path) -> String {
    fn walk(path: &Path, out: &mut Vec<u8>) {
        if let Ok(entries) = std::fs::read_dir(path) {
            let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            entries.sort();
            for e in entries {
                out.extend_from_slice(e.to_string_lossy().as_bytes());
                out.push(0);
                walk(&e, out);
            }
        } else if let Ok(bytes) = std::fs::read(path) {
            out.extend_from_slice(Digest::of(&bytes).as_bytes());
        }
    }
    let mut out = Vec::new();
    walk(path, &mut out);
    Digest::of(&out).hex()
}

fn stamp_path(target_dir: &Path, output: &Path) -> PathBuf {
    let absolute = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
    let name = Digest::of(absolute.to_string_lossy().as_bytes()).hex();
    target_dir
        .join("kiln")
        .join("stamps")
        .join(format!("{}.json", &name[..32]))
}

/// The digest of `output` and the warnings given when it was made, when its
/// stamp says it was made under `key` and the file is as kiln left it;
/// `None` otherwise.
pub fn fresh(target_dir: &Path, output: &Path, key: &str) -> Option<(Digest, Vec<String>)> {
    let bytes = std::fs::read(stamp_path(target_dir, output)).ok()?;
    let stamp: Stamp = serde_json::from_slice(&bytes).ok()?;
    if stamp.key != key || FileState::of(output)? != stamp.state {
        return None;
    }
    Some((stamp.digest, stamp.warnings))
}

/// Records that `output`, as it is now, with `digest`, was made under
/// `key`, with `warnings`. A stamp that cannot be written only costs the
/// next build time.
pub fn record(target_dir: &Path, output: &Path, key: &str, digest: &Digest, warnings: &[String]) {
    let Some(state) = FileState::of(output) else {
        return;
    };
    let stamp = Stamp {
        key: key.to_string(),
        digest: *digest,
        state,
        warnings: warnings.to_vec(),
    };
    if let Ok(bytes) = serde_json::to_vec(&stamp) {
        let _ = kiln_core::fs::write_atomic(&stamp_path(target_dir, output), &bytes);
    }
}

/// Forgets the stamp of `output` (before it is replaced).
pub fn forget(target_dir: &Path, output: &Path) {
    let _ = std::fs::remove_file(stamp_path(target_dir, output));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_holds_until_the_key_or_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let out = dir.path().join("out.wasm");
        std::fs::write(&out, b"component").unwrap();
        let digest = Digest::of(b"component");
        let k = key(b"core module", &("command", 1)).unwrap();
        assert_ne!(Some(k.clone()), key(b"core module", &("reactor", 1)));
        assert_ne!(Some(k.clone()), key(b"core modulE", &("command", 1)));
        // Settings JSON cannot hold (map keys that are not strings): no key.
        let odd = std::collections::BTreeMap::from([((1, 2), 3)]);
        assert_eq!(key(b"core module", &odd), None);
        assert_eq!(fresh(&target, &out, &k), None);
        record(&target, &out, &k, &digest, &["a warning".to_string()]);
        assert_eq!(
            fresh(&target, &out, &k),
            Some((digest, vec!["a warning".to_string()]))
        );
        assert_eq!(fresh(&target, &out, "other key"), None);
        // Another path has no stamp.
        let other = dir.path().join("other.wasm");
        std::fs::copy(&out, &other).unwrap();
        assert_eq!(fresh(&target, &other, &k), None);
        // Replaced (a new inode), even with the same size: made again.
        std::fs::write(dir.path().join("new"), b"componenT").unwrap();
        std::fs::rename(dir.path().join("new"), &out).unwrap();
        assert_eq!(fresh(&target, &out, &k), None);
        record(&target, &out, &k, &digest, &[]);
        forget(&target, &out);
        assert_eq!(fresh(&target, &out, &k), None);
        std::fs::remove_file(&out).unwrap();
        assert_eq!(fresh(&target, &out, &k), None);
    }

    #[test]
    fn tree_digests_change_with_any_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("deps/a")).unwrap();
        std::fs::write(dir.path().join("world.wit"), "package a:b;").unwrap();
        std::fs::write(dir.path().join("deps/a/x.wit"), "package a:x;").unwrap();
        let before = tree_digest(dir.path());
        assert_eq!(before, tree_digest(dir.path()));
        std::fs::write(dir.path().join("deps/a/x.wit"), "package a:y;").unwrap();
        assert_ne!(before, tree_digest(dir.path()));
    }
}
