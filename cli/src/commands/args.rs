//! Flags several commands share, as clap structs that each turn into the plain options an operation takes; not a command of its own.

use crate::ops;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach a registry.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Speak plain HTTP to the registry (the default for localhost and
    /// 127.0.0.1 unless --ca-file or --insecure is given).
    #[arg(long)]
    plain_http: bool,
    /// Trust this PEM certificate authority, or this exact server
    /// certificate, too (repeatable). A registry's own CAs and client
    /// certificate are also read from /etc/docker/certs.d/HOST[:PORT]/ and
    /// /etc/containers/certs.d/HOST[:PORT]/.
    #[arg(long, value_name = "PEM")]
    ca_file: Vec<PathBuf>,
    /// Accept any TLS certificate from the registry named (test registries
    /// only); token services and redirects on other hosts are still
    /// checked.
    #[arg(long)]
    insecure: bool,
    /// Connect timeout and deadline of each request, in seconds; blob
    /// transfers get more in proportion to their size, and a download
    /// that sends nothing for this long fails.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Attempts per request on server errors (5xx), throttling (429),
    /// dropped connections and timeouts, with exponential backoff or the
    /// registry's Retry-After (up to 60 seconds).
    #[arg(long, value_name = "N", default_value_t = 5)]
    retries: u32,
}

impl RegistryArgs {
    /// The options as plain values; a zero timeout or retry count means one.
    pub fn options(&self) -> ops::registry::Options {
        ops::registry::Options {
            plain_http: self.plain_http,
            ca_files: self.ca_file.clone(),
            insecure: self.insecure,
            timeout: Duration::from_secs(self.timeout.max(1)),
            attempts: self.retries.max(1),
        }
    }
}
