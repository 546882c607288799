//! A local OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`).
//!
//! It is written with atomic renames and read with digest checks.

use crate::artifact::{ANNOTATION_REF_NAME, Descriptor, INDEX_MEDIA_TYPE, Index};
use anyhow::{Context, Result, bail};
use kiln_core::Digest;
use std::path::{Path, PathBuf};

/// An OCI image layout on disk.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens the layout at `dir`, creating it when `create` is set and it
    /// does not exist yet.
    pub fn open(dir: &Path, create: bool) -> Result<Layout> {
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            if !create {
                bail!(
                    "`{}` is not an OCI image layout (it has no `oci-layout` file)",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir.join("blobs/sha256"))
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
            let layout = Layout {
                dir: dir.to_path_buf(),
            };
            // Under the lock: a process creating the same layout at the same
            // time must not replace an index another one already wrote to.
            let _lock = layout.lock()?;
            if !dir.join("index.json").is_file() {
                layout.write_index(&Index::default())?;
            }
            if !marker.is_file() {
                kiln_core::fs::write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
        }
        // What killed writers left (`.kiln-tmp-*`), once nobody holds it.
        kiln_core::fs::clean_stale(dir);
        kiln_core::fs::clean_stale(&dir.join("blobs/sha256"));
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// A descriptor for a stored blob found by digest alone (a manifest
    /// stored but not listed in `index.json`); `None` when it is absent.
    pub fn stored_blob(&self, digest: &Digest, media_type: &str) -> Option<Descriptor> {
        let meta = std::fs::metadata(self.blob_path(digest)).ok()?;
        Some(Descriptor::new(media_type, digest, meta.len()))
    }

    /// Whether the blob is stored with the right size.
    pub fn has_blob(&self, d: &Descriptor) -> Result<bool> {
        let path = self.blob_path(&d.sha256()?);
        Ok(std::fs::metadata(path).is_ok_and(|m| m.len() == d.size))
    }

    /// Stores a blob (atomically), after checking it matches `d`.
    pub fn put_blob(&self, d: &Descriptor, bytes: &[u8]) -> Result<()> {
        verify(d, bytes)?;
        let path = self.blob_path(&d.sha256()?);
        kiln_core::fs::write_atomic(&path, bytes).with_context(|| {
            format!(
                "failed to store blob {} in the layout `{}`",
                d.digest,
                self.dir.display()
            )
        })?;
        kiln_core::kill::point(kiln_core::kill::BLOB_STORED);
        Ok(())
    }

    /// Stores a file as a blob: copied in chunks while hashed, moved into
    /// place only if it matches `d`.
    pub fn put_blob_file(&self, d: &Descriptor, path: &Path) -> Result<()> {
        let dest = self.blob_path(&d.sha256()?);
        let dir = dest.parent().unwrap_or(&self.dir);
        // Locked while open, so `clean_stale` in another process never takes it.
        let mut tmp = kiln_core::fs::temp_file_in(dir)?;
        let (digest, size) = crate::artifact::hash_file(path, Some(tmp.as_file_mut()))
            .with_context(|| {
                format!(
                    "failed to store `{}` in the layout `{}` (nothing was changed)",
                    path.display(),
                    self.dir.display()
                )
            })?;
        if digest.to_string() != d.digest || size != d.size {
            bail!(
                "`{}` changed while it was being stored ({digest}, {size} bytes; expected {}, {} bytes)",
                path.display(),
                d.digest,
                d.size
            );
        }
        tmp.persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("failed to write `{}`", dest.display()))?;
        kiln_core::kill::point(kiln_core::kill::BLOB_STORED);
        Ok(())
    }

    /// Reads a blob and checks its digest and size.
    pub fn get_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&d.sha256()?);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "blob {} is missing from the layout `{}`",
                d.digest,
                self.dir.display()
            )
        })?;
        verify(d, &bytes)?;
        Ok(bytes)
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<Index> {
        let path = self.dir.join("index.json");
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        Index::parse(&bytes)
            .with_context(|| format!("`{}` is not an OCI image index", path.display()))
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(index)?;
        bytes.push(b'\n');
        kiln_core::fs::write_atomic(&self.dir.join("index.json"), &bytes)?;
        kiln_core::kill::point(kiln_core::kill::INDEX_UPDATED);
        Ok(())
    }

    /// Takes the layout's lock, which every read-modify-write of its shared
    /// state (`index.json`, and through [`crate::Store`] the referrers
    /// indexes and signature manifests it lists) holds from the read to the
    /// rename, so concurrent kiln processes never lose each other's updates.
    /// Re-entrant within a thread (see [`kiln_core::lock`]).
    pub fn lock(&self) -> Result<kiln_core::lock::LockGuard> {
        // Other tools ignore files they do not know at the top of a layout.
        kiln_core::lock::lock(&self.dir.join(kiln_core::fs::LOCK_FILE))
    }

    /// Records a manifest in `index.json`: under `tag` (replacing what the
    /// tag pointed to), or untagged when `tag` is `None`.
    pub fn add_manifest(&self, d: &Descriptor, tag: Option<&str>) -> Result<()> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let mut entry = d.clone();
        match tag {
            Some(t) => {
                index.manifests.retain(|m| {
                    m.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(t)
                });
                entry
                    .annotations
                    .insert(ANNOTATION_REF_NAME.to_string(), t.to_string());
            }
            None => {
                if index.manifests.iter().any(|m| {
                    m.digest == d.digest && !m.annotations.contains_key(ANNOTATION_REF_NAME)
                }) {
                    return Ok(());
                }
                entry.annotations.remove(ANNOTATION_REF_NAME);
            }
        }
        index.manifests.push(entry);
        if index.media_type.is_none() {
            index.media_type = Some(INDEX_MEDIA_TYPE.to_string());
        }
        self.write_index(&index)
    }

    /// The manifest a tag names.
    pub fn resolve_tag(&self, tag: &str) -> Result<Option<Descriptor>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .rev()
            .find(|m| m.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag))
            .map(|mut m| {
                m.annotations.remove(ANNOTATION_REF_NAME);
                m
            }))
    }

    /// Every tag, sorted.
    pub fn tags(&self) -> Result<Vec<String>> {
        let mut tags: Vec<String> = self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|m| m.annotations.get(ANNOTATION_REF_NAME).cloned())
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }
}

/// Fails unless `bytes` have the size `d` says.
pub fn verify_size(d: &Descriptor, bytes: &[u8]) -> Result<()> {
    if bytes.len() as u64 != d.size {
        bail!(
            "blob {} has {} bytes, but its descriptor says {}",
            d.digest,
            bytes.len(),
            d.size
        );
    }
    Ok(())
}

/// Fails unless `bytes` have the digest and size `d` says.
pub fn verify(d: &Descriptor, bytes: &[u8]) -> Result<()> {
    verify_size(d, bytes)?;
    let actual = Digest::of(bytes).to_string();
    if actual != d.digest {
        bail!(
            "content does not match its digest: expected {}, got {actual}",
            d.digest
        );
    }
    Ok(())
}
