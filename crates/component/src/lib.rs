//! Turns core modules into components with the WASI preview1 adapter, embeds package metadata, and validates wasm binaries.

mod componentize;
mod metadata;
mod validate;

pub use componentize::{Adapter, componentize, embedded_adapters};
pub use metadata::embed_metadata;
pub use validate::{Invalid, validate, validate_with};
pub use wasmparser::WasmFeatures;
