//! Fuzz target for kiln.toml, the file a cloned project brings.

use std::path::Path;

/// kiln.toml text through the parser every command runs on a project, and
/// through the publish settings read from it, as a kiln.toml and as a
/// Cargo.toml's `[package.metadata.kiln]`. Oracle: no panic.
pub fn kiln_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = kiln_build::manifest::parse(&text);
    for file in ["kiln.toml", "Cargo.toml"] {
        let _ = kiln_build::manifest::publish_settings_from(Path::new(file), &text);
    }
}
