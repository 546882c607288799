//! Fuzz target for credential files and credential helpers' replies.

use crate::select;
use kiln_oci::auth;
use std::path::Path;

/// Docker's `config.json` or a containers auth file, or what a credential
/// helper printed, by the selector byte, through what kiln reads from them
/// for a registry (under the keys docker and podman look up). Oracle: no
/// panic.
pub fn credentials(data: &[u8]) {
    let (kind, bytes) = select(data, 2);
    match kind {
        0 => {
            let Ok(config) = auth::parse_config(bytes) else {
                return;
            };
            for registry in ["registry.example:5000", "docker.io", "index.docker.io"] {
                let keys = vec![
                    registry.to_string(),
                    format!("https://{registry}"),
                    format!("{registry}/team/app"),
                    "https://index.docker.io/v1/".to_string(),
                ];
                let _ = auth::credentials_in(&config, &keys, registry, Path::new("config.json"));
            }
        }
        _ => {
            let _ = auth::helper_reply(bytes);
        }
    }
}
