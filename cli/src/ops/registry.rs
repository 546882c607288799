//! How to reach a registry, as plain values, and opening the store a reference names.

use anyhow::Result;
use kiln_oci::{Connection, Reference, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach a registry (the commands' `--plain-http`, `--ca-file`,
/// `--insecure`, `--timeout` and `--retries`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Speak plain HTTP.
    pub plain_http: bool,
    /// Extra certificate authorities or exact server certificates (PEM).
    pub ca_files: Vec<PathBuf>,
    /// Accept any TLS certificate from the registry named.
    pub insecure: bool,
    /// Connect timeout and deadline of each request.
    pub timeout: Duration,
    /// The most attempts per request, the first included (`--retries`).
    pub max_attempts: u32,
}

impl Options {
    /// The connection settings of the OCI client.
    pub fn connection(&self) -> Connection {
        Connection {
            plain_http: self.plain_http,
            ca_files: self.ca_files.clone(),
            insecure: self.insecure,
            timeout: Some(self.timeout),
            max_attempts: Some(self.max_attempts),
        }
    }

    /// Opens the store a reference names.
    pub fn open(
        &self,
        reference: &Reference,
        create: bool,
        reporter: &dyn kiln_core::Reporter,
    ) -> Result<Store> {
        Store::open(reference, &self.connection(), create, reporter)
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
