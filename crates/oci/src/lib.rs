//! OCI artifacts for kiln: components and their precompiled artifacts in the CNCF Wasm layout.
//!
//! They are pushed to and pulled from registries (through kiln's own
//! distribution-spec client on reqwest) or local OCI image layouts, with
//! referrers, tags, Docker- and podman-compatible credentials and per-registry
//! trust.

pub mod artifact;
pub mod auth;
pub mod certs;
pub mod layout;
pub mod locations;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod signature;
pub mod store;
mod token;
pub mod wire;

pub use artifact::{ComponentInfo, Package, cwasm_package, sbom_package, wasm_package};
pub use reference::Reference;
pub use referrers::{Allowed, FoundBundle, VerifiedReferrer};
pub use registry::{Connection, DEFAULT_MAX_ATTEMPTS};
pub use store::{Content, Pulled, Pushed, Store};
