//! Where a precompiled artifact lives on disk: `STEM.TRIPLE.cwasm` and its descriptor beside it.
//!
//! The descriptor is `STEM.TRIPLE.cwasm.json`; this is the one naming rule
//! `compile`, `push`, `pull` and `publish` share.

use crate::Descriptor;
use anyhow::{Context, Result};
use kiln_core::Target;
use std::path::{Path, PathBuf};

/// The two files of a precompiled artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFiles {
    /// The `.cwasm`.
    pub cwasm: PathBuf,
    /// Its descriptor, the `.cwasm` path with `.json` appended.
    pub descriptor: PathBuf,
}

impl ArtifactFiles {
    /// `DIR/STEM.TRIPLE.cwasm` and its descriptor. `stem` is used as
    /// given: callers pass a stem they derived themselves (a file stem, or
    /// a title made safe).
    pub fn new(dir: &Path, stem: &str, target: Target) -> ArtifactFiles {
        ArtifactFiles::at(dir.join(format!("{stem}.{target}.cwasm")))
    }

    /// The files of the artifact at `cwasm` (any name, e.g. one given with `-o`).
    pub fn at(cwasm: PathBuf) -> ArtifactFiles {
        let mut descriptor = cwasm.clone().into_os_string();
        descriptor.push(".json");
        ArtifactFiles {
            cwasm,
            descriptor: PathBuf::from(descriptor),
        }
    }

    /// The descriptor beside the artifact, `None` when there is none.
    pub fn read_descriptor(&self) -> Result<Option<Descriptor>> {
        match std::fs::read(&self.descriptor) {
            Ok(json) => Ok(Some(Descriptor::parse(&json).with_context(|| {
                format!("invalid descriptor `{}`", self.descriptor.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("failed to read `{}`", self.descriptor.display()))
            }
        }
    }

    /// Whether kiln may replace what is at these paths with the artifact
    /// `descriptor` describes: nothing is there, or what is there is kiln's
    /// own output for the same source and target (its descriptor says so).
    /// Anything else — a file of the user's that happens to have the name —
    /// is not kiln's to replace.
    pub fn replaceable_by(&self, descriptor: &Descriptor) -> bool {
        let cwasm_there = std::fs::symlink_metadata(&self.cwasm).is_ok();
        let descriptor_there = std::fs::symlink_metadata(&self.descriptor).is_ok();
        if !cwasm_there && !descriptor_there {
            return true;
        }
        matches!(
            self.read_descriptor(),
            Ok(Some(old)) if old.source_digest == descriptor.source_digest
                && old.target == descriptor.target
        ) && std::fs::symlink_metadata(&self.cwasm).is_ok_and(|m| !m.is_dir())
    }

    /// Writes the artifact and its descriptor (each atomically; an unchanged
    /// file is left as it is).
    pub fn write(&self, bytes: &[u8], descriptor: &Descriptor) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(descriptor)?;
        json.push(b'\n');
        kiln_core::fs::write_if_changed(&self.cwasm, bytes)?;
        kiln_core::fs::write_if_changed(&self.descriptor, &json)?;
        kiln_core::kill::point(kiln_core::kill::OUTPUT_WRITTEN);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_one_rule() {
        let target = Target::parse("x86_64-unknown-linux-gnu").unwrap();
        let f = ArtifactFiles::new(Path::new("out"), "app", target);
        assert_eq!(f.cwasm, Path::new("out/app.x86_64-unknown-linux-gnu.cwasm"));
        assert_eq!(
            f.descriptor,
            Path::new("out/app.x86_64-unknown-linux-gnu.cwasm.json")
        );
        assert_eq!(
            ArtifactFiles::at(PathBuf::from("x/a.bin")).descriptor,
            Path::new("x/a.bin.json")
        );
    }
}
