//! Input files as bytes: small ones read into memory, large ones mapped.
//!
//! A 50 MiB component is then hashed and parsed straight from the page cache.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// Files at least this large are mapped instead of read. Below it a read is
/// as quick and needs no mapping.
pub const MAP_AT_LEAST: u64 = 1 << 20;

/// The bytes of an input: read into memory, or mapped from its file.
pub enum Input {
    /// Read into memory (small files, standard input).
    Owned(Vec<u8>),
    /// Mapped from the file, read-only.
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Owned(v) => v,
            Input::Mapped(m) => m,
        }
    }
}

/// A copy in memory (of the mapped bytes, for a mapping).
impl Clone for Input {
    fn clone(&self) -> Input {
        Input::Owned(self.to_vec())
    }
}

impl Default for Input {
    fn default() -> Input {
        Input::Owned(Vec::new())
    }
}

impl AsRef<[u8]> for Input {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self {
            Input::Owned(_) => "Owned",
            Input::Mapped(_) => "Mapped",
        };
        write!(f, "Input::{how}({} bytes)", self.len())
    }
}

impl Input {
    /// Reads `path`, or standard input when it is `-`.
    pub fn read(path: &Path) -> Result<Input> {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("failed to read standard input")?;
            return Ok(Input::Owned(bytes));
        }
        if let Some(mapped) = Input::map(path) {
            return Ok(mapped);
        }
        // Small files, files that cannot be mapped, and errors (named here).
        std::fs::read(path)
            .map(Input::Owned)
            .with_context(|| format!("failed to read `{}`", path.display()))
    }

    /// `path` mapped, when it is a regular file of at least
    /// [`MAP_AT_LEAST`] bytes that can be mapped; `None` otherwise (the
    /// caller then reads it its own way, e.g. streaming).
    pub fn map(path: &Path) -> Option<Input> {
        let file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() < MAP_AT_LEAST {
            return None;
        }
        map(&file).map(Input::Mapped)
    }

    /// The bytes as an owned vector (a copy when mapped).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Input::Owned(v) => v,
            Input::Mapped(m) => m.to_vec(),
        }
    }
}

/// Maps `file` read-only, pages populated up front; `None` when the file
/// system cannot map it.
fn map(file: &std::fs::File) -> Option<memmap2::Mmap> {
    // SAFETY: the mapping is only read, and lives as long as the `Input`
    // that owns it. What a mapping cannot promise is that no other process
    // changes the file meanwhile: kiln's bytes are then whatever the file
    // held as each page was read, which every parser here treats as the
    // untrusted input it already is, and a file cut short under the mapping
    // stops the process. Wasmtime maps modules the same way; tools that
    // write wasm (kiln, cargo, wasm-tools, linkers) replace files by rename
    // or finish writing before kiln runs, which keeps a mapped file whole.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::MmapOptions::new().populate().map(file) };
    map.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_and_large_ones_mapped_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.wasm");
        std::fs::write(&small, b"\0asm\x01\0\0\0").unwrap();
        let input = Input::read(&small).unwrap();
        assert!(matches!(input, Input::Owned(_)));
        assert_eq!(&*input, b"\0asm\x01\0\0\0");

        let large = dir.path().join("large.wasm");
        let bytes: Vec<u8> = (0..MAP_AT_LEAST as usize + 7).map(|i| i as u8).collect();
        std::fs::write(&large, &bytes).unwrap();
        let input = Input::read(&large).unwrap();
        assert!(matches!(input, Input::Mapped(_)), "{input:?}");
        assert_eq!(&*input, &bytes[..]);
        assert_eq!(input.into_vec(), bytes);
    }

    #[test]
    fn missing_files_and_directories_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.wasm");
        let e = format!("{:#}", Input::read(&missing).unwrap_err());
        assert!(e.contains("nope.wasm"), "{e}");
        let e = format!("{:#}", Input::read(dir.path()).unwrap_err());
        assert!(e.contains("failed to read"), "{e}");
    }
}
