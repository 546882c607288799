//! Options shared by the commands that talk to registries: how to connect, and turning them into a store.

use anyhow::Result;
use kiln_oci::{Connection, Reference, Store};
use std::path::{Path, PathBuf};
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
    pub fn connection(&self) -> Connection {
        Connection {
            plain_http: self.plain_http,
            ca_files: self.ca_file.clone(),
            insecure: self.insecure,
            timeout: Some(Duration::from_secs(self.timeout.max(1))),
            attempts: Some(self.retries.max(1)),
        }
    }

    /// Opens the store a reference names.
    pub fn open(
        &self,
        reference: &Reference,
        create: bool,
        printer: &dyn kiln_core::Reporter,
    ) -> Result<Store> {
        Store::open(reference, &self.connection(), create, printer)
    }
}

/// A reference given where a file is expected: `oci:…`, or a registry
/// reference (`host/repo…`) when no file of that name exists. Bare names
/// stay file names, so a mistyped file is reported as missing.
pub fn as_reference(arg: &Path) -> Option<Reference> {
    if arg.as_os_str() == "-" || arg.exists() {
        return None;
    }
    let text = arg.to_str()?;
    match Reference::parse(text) {
        Ok(r @ Reference::Registry { .. }) => Some(r),
        Ok(r @ Reference::Layout { .. }) if text.starts_with("oci:") => Some(r),
        _ => None,
    }
}
