//! Core module + WASI preview1 adapter -> component, with wit-component.

use anyhow::{Context, Result};
use serde::Serialize;
use wasi_preview1_component_adapter_provider as adapters;

/// Which WASI preview1 adapter bridges a core module's `wasi_snapshot_preview1`
/// imports to WASI 0.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Adapter {
    /// For programs with `_start`: the component exports `wasi:cli/run`.
    Command,
    /// For libraries: the component exports only what the module's world declares.
    Reactor,
}

impl Adapter {
    /// The adapter's bytes, as shipped by Wasmtime's release that kiln pins.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Adapter::Command => adapters::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            Adapter::Reactor => adapters::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        }
    }

    /// The adapter's name in kiln's output.
    pub fn name(self) -> &'static str {
        match self {
            Adapter::Command => "wasi_snapshot_preview1.command",
            Adapter::Reactor => "wasi_snapshot_preview1.reactor",
        }
    }
}

/// The Wasmtime release the embedded WASI preview1 adapters come from.
pub const ADAPTER_WASMTIME_VERSION: &str = "48.0.8";

/// The adapters built into kiln with their bytes, for `kiln doctor` and
/// build receipts.
pub fn embedded_adapters() -> [(Adapter, &'static [u8]); 2] {
    [
        (Adapter::Command, Adapter::Command.bytes()),
        (Adapter::Reactor, Adapter::Reactor.bytes()),
    ]
}

/// Wraps a core module into a component. The module's `component-type`
/// custom sections (embedded by wit-bindgen) give the world it exports; its
/// `wasi_snapshot_preview1` imports are satisfied by `adapter`.
pub fn componentize(module: &[u8], adapter: Adapter) -> Result<Vec<u8>> {
    // The caller validates the finished component (after metadata is
    // embedded); validating here too would walk every function body twice.
    let encoder = wit_component::ComponentEncoder::default()
        .validate(false)
        .module(module)
        .context("failed to read the core module's component type information")?
        .adapter(
            adapters::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            adapter.bytes(),
        )
        .with_context(|| format!("failed to load the `{}` adapter", adapter.name()))?;
    let mut encoder = encoder;
    encoder.encode().with_context(|| {
        format!(
            "failed to turn the core module into a component with the {} adapter",
            adapter.name()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_version_is_the_wasmtime_release_cargo_lock_pins() {
        // The adapter crate and wasmtime come from one Wasmtime release, the
        // one `kiln_aot::WASMTIME_VERSION` names (tested against the lock).
        let lock = include_str!("../../../Cargo.lock");
        for package in ["wasi-preview1-component-adapter-provider", "wasmtime"] {
            let entry = format!("[[package]]\nname = \"{package}\"\nversion = \"");
            let versions: Vec<&str> = lock
                .match_indices(&entry)
                .filter_map(|(at, _)| lock[at + entry.len()..].split('"').next())
                .collect();
            assert_eq!(versions, [ADAPTER_WASMTIME_VERSION], "{package}");
        }
    }
}
