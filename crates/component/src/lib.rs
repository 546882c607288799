//! Turns core modules into components, embeds package metadata, and validates wasm binaries.
//!
//! Core modules are componentized with the WASI preview1 adapter.

mod componentize;
mod embed;
mod metadata;
mod validate;

pub use componentize::{ADAPTER_WASMTIME_VERSION, Adapter, componentize, embedded_adapters};
pub use embed::{check_scalar_world, embed_world};
pub use metadata::embed_metadata;
pub use validate::{validate, validate_with};
pub use wasmparser::WasmFeatures;
