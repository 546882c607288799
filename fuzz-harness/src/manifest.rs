//! Fuzz target for kiln.toml, the file a cloned project brings.

/// kiln.toml text through the parser every command runs on a project.
/// Oracle: no panic.
pub fn kiln_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = kiln_build::manifest::parse(&text);
}
