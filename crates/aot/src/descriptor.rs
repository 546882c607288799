//! The descriptor of a precompiled artifact: what it was made from and with (`.cwasm.json`).
//!
//! Descriptors come from registries and from files beside artifacts, so
//! parsing one needs neither Wasmtime nor Cranelift.

use crate::cpu::Cpu;
use crate::settings::Settings;
use anyhow::Result;
use kiln_core::{Digest, Target, WasmKind};
use serde::{Deserialize, Serialize};

/// The Wasmtime release kiln compiles with; artifacts load only in it.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// What an artifact was made from and with; written beside it as
/// `<artifact>.json` (docs/aot.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// `kiln-cwasm/1`.
    pub format: String,
    /// Component or core module.
    pub kind: WasmKind,
    /// sha256 of the wasm it was compiled from.
    pub source_digest: Digest,
    /// sha256 of the artifact.
    pub artifact_digest: Digest,
    /// Size of the artifact in bytes.
    pub artifact_size: u64,
    /// The Wasmtime release that made it.
    pub wasmtime_version: String,
    /// The target triple.
    pub target: Target,
    /// The CPU selection: `baseline`, `native`, or presets and features.
    pub cpu: Cpu,
    /// The CPU features the code may use (Cranelift's `has_*` names): a
    /// host loads the artifact only if its CPU has every one.
    #[serde(default)]
    pub cpu_features: Vec<String>,
    /// Engine settings.
    pub settings: Settings,
    /// sha256 of Wasmtime's precompile compatibility hash for the engine
    /// that made it: an engine with the same value loads it.
    pub compatibility_hash: String,
}

impl Descriptor {
    /// Parses a descriptor's JSON. Only its shape is checked (the digests,
    /// target and CPU selection parse as what they are): whether it
    /// describes a given artifact is the caller's comparison. The error is
    /// the JSON parser's; callers say what they were reading.
    pub fn parse(bytes: &[u8]) -> Result<Descriptor> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor() -> Descriptor {
        Descriptor {
            format: "kiln-cwasm/1".to_string(),
            kind: WasmKind::Component,
            source_digest: Digest::of(b"wasm"),
            artifact_digest: Digest::of(b"cwasm"),
            artifact_size: 5,
            wasmtime_version: WASMTIME_VERSION.to_string(),
            target: Target::parse("pulley64").unwrap(),
            cpu: Cpu::Named("x86-64-v3,+avx2".to_string()),
            cpu_features: vec!["has_avx2".to_string()],
            settings: Settings::default(),
            compatibility_hash: "00".to_string(),
        }
    }

    fn json() -> serde_json::Value {
        serde_json::to_value(descriptor()).unwrap()
    }

    #[test]
    fn descriptors_round_trip() {
        let bytes = serde_json::to_vec_pretty(&descriptor()).unwrap();
        assert_eq!(Descriptor::parse(&bytes).unwrap(), descriptor());
        // Descriptors written before CPU features were listed still parse.
        let mut old = json();
        old.as_object_mut().unwrap().remove("cpu_features");
        let parsed = Descriptor::parse(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert!(parsed.cpu_features.is_empty());
    }

    #[test]
    fn hostile_descriptors_are_errors() {
        let whole = serde_json::to_vec(&json()).unwrap();
        for bad in [
            &b""[..],
            b"not json",
            b"null",
            b"[]",
            b"{}",
            &whole[..whole.len() / 2],
        ] {
            assert!(
                Descriptor::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let edits: [(&str, serde_json::Value); 9] = [
            ("artifact_size", "5".into()),
            ("artifact_size", (-1).into()),
            ("source_digest", "sha256:nothex".into()),
            ("artifact_digest", 7.into()),
            ("target", "x86_64-evil-os".into()),
            ("kind", "program".into()),
            ("cpu", "  ".into()),
            ("cpu_features", "has_avx2".into()),
            ("settings", serde_json::json!({"opt_level": "fastest"})),
        ];
        for (field, value) in edits {
            let mut d = json();
            d[field] = value.clone();
            let err = Descriptor::parse(&serde_json::to_vec(&d).unwrap());
            assert!(err.is_err(), "{field} = {value} was accepted");
        }
    }
}
