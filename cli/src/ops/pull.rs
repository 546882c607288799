//! Writing what was pulled where kiln names it, never replacing a file that is not kiln's.
//!
//! Writing what was pulled where kiln names it: `STEM.wasm`, or
//! `STEM.TRIPLE.cwasm` with the descriptor kiln checked and writes itself,
//! never replacing a file that is not kiln's.

use anyhow::{Context, Result, bail};
use kiln_oci::Content;
use std::path::{Path, PathBuf};

/// Writes a pulled artifact to `output` (a file, or an existing directory
/// to write into; default the current directory) and returns its path.
pub fn write(pulled: &kiln_oci::Pulled, output: Option<&Path>) -> Result<PathBuf> {
    // Output names are kiln's, never the registry's: the stem comes from
    // the artifact's title made safe, the rest is fixed (`STEM.wasm`, or
    // `STEM.TRIPLE.cwasm` with its descriptor).
    let stem = pulled
        .manifest
        .annotations
        .get("org.opencontainers.image.title")
        .and_then(|t| kiln_oci::artifact::safe_file_name(t))
        .map(|t| t.trim_end_matches(".wasm").to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "component".to_string());
    let explicit_file = output.filter(|p| !p.is_dir());
    let dir = match output {
        Some(p) if p.is_dir() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(match &pulled.content {
        Content::Wasm => {
            let path = match explicit_file {
                Some(p) => p.to_path_buf(),
                None => dir.join(format!("{stem}.wasm")),
            };
            if explicit_file.is_none() && !replaceable_wasm(&path) {
                bail!(
                    "`{}` exists and is not a wasm file; kiln does not replace it — name the output with `-o FILE`, or move it away",
                    path.display()
                );
            }
            kiln_core::fs::write_atomic(&path, &pulled.bytes)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
            path
        }
        Content::Cwasm {
            digest,
            target,
            descriptor_json,
        } => {
            let descriptor = checked_descriptor(descriptor_json, pulled, *target)
                .with_context(|| format!("the precompiled artifact {digest} was not written"))?;
            let files = match explicit_file {
                Some(p) => kiln_aot::ArtifactFiles::at(p.to_path_buf()),
                None => kiln_aot::ArtifactFiles::new(&dir, &stem, *target),
            };
            if explicit_file.is_none() && !files.replaceable_by(&descriptor) {
                bail!(
                    "`{}` (or its descriptor) exists and is not kiln's precompiled artifact of this component for {target}; kiln does not replace it — name the output with `-o FILE`, or move it away",
                    files.cwasm.display()
                );
            }
            files.write(&pulled.bytes, &descriptor)?;
            files.cwasm
        }
    })
}

/// Whether a pulled component may replace what is at `path`: nothing, or
/// a wasm binary (an earlier pull or build).
fn replaceable_wasm(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(_) => true,
        Ok(m) if !m.is_file() => false,
        Ok(_) => {
            let mut magic = [0u8; 4];
            std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && &magic == b"\0asm"
        }
    }
}

/// The descriptor a registry sent with a precompiled artifact, parsed and
/// checked against what was pulled: the same target, the artifact's digest
/// and size, and the component it was attached to as its source. Only a
/// descriptor that checks out is written, and kiln writes it itself.
fn checked_descriptor(
    json: &[u8],
    pulled: &kiln_oci::Pulled,
    target: kiln_core::Target,
) -> Result<kiln_aot::Descriptor> {
    let d = kiln_aot::Descriptor::parse(json)
        .context("its config is not a kiln precompiled-artifact descriptor")?;
    if d.target != target {
        bail!("its descriptor is for `{}`, not `{target}`", d.target);
    }
    if d.artifact_digest != pulled.digest || d.artifact_size != pulled.bytes.len() as u64 {
        bail!(
            "its descriptor describes another artifact ({}, {} bytes)",
            d.artifact_digest,
            d.artifact_size
        );
    }
    if pulled.layer.digest != d.source_digest.to_string() {
        bail!(
            "its descriptor says it was compiled from {}, not from this component",
            d.source_digest
        );
    }
    Ok(d)
}
