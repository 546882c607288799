//! OCI artifacts for kiln: components and their precompiled artifacts in the CNCF Wasm layout.
//!
//! They are pushed to and pulled from registries (through kiln's own
//! distribution-spec client on reqwest) or local OCI image layouts, with
//! referrers, tags, Docker- and podman-compatible credentials and per-registry
//! trust.
//!
//! Without the default `net` feature only the pure half is built: the
//! documents ([`artifact`]), local layouts, references, credentials files,
//! the checks of one referrer ([`referrers::judge`]) and the wire-format
//! parsers ([`wire`]), with no HTTP, TLS or async runtime.

pub mod artifact;
pub mod auth;
#[cfg(feature = "net")]
pub mod certs;
pub mod layout;
#[cfg(feature = "net")]
pub mod locations;
pub mod reference;
pub mod referrers;
#[cfg(feature = "net")]
pub mod registry;
#[cfg(feature = "net")]
pub mod signature;
#[cfg(feature = "net")]
pub mod store;
#[cfg(feature = "net")]
mod token;
pub mod wire;

pub use artifact::{ComponentInfo, Package, cwasm_package, sbom_package, wasm_package};
pub use reference::Reference;
pub use referrers::{Allowed, FoundBundle, VerifiedReferrer};
#[cfg(feature = "net")]
pub use registry::{Connection, DEFAULT_MAX_ATTEMPTS};
#[cfg(feature = "net")]
pub use store::{Content, Pulled, Pushed, Store};
