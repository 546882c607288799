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
                let docker = auth::config_keys(registry);
                let podman = auth::auth_file_keys(registry, Some("team/app"));
                for keys in [docker, podman] {
                    let _ = auth::credentials_in(&config, &keys, registry, Path::new("auth.json"));
                }
            }
        }
        _ => {
            let _ = auth::helper_reply(bytes);
        }
    }
}
