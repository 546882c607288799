//! Per-registry trust where docker and podman users already keep it: `certs.d/HOST[:PORT]/`.
//!
//! Those directories hold extra certificate authorities (`*.crt`) and client
//! certificates for mutual TLS (`*.cert` with its `*.key`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The directories searched when `KILN_CERTS_DIRS` is not set, in order: docker's, then podman's.
const DEFAULT_CERTS_DIRS: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];

/// The environment variable that replaces the default directories (docker's, then podman's) with a `:`-separated list (for tests, and for setups that keep these directories elsewhere).
pub const CERTS_DIRS_ENV: &str = "KILN_CERTS_DIRS";

/// What a registry is trusted with beyond the system roots, from docker's and podman's per-registry directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryTrust {
    /// PEM files of certificate authorities (or exact certificates) to trust for this registry, in the order found.
    pub cas: Vec<PathBuf>,
    /// A client certificate and its private key (both PEM) to present to this registry, from the first directory holding one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl RegistryTrust {
    /// Whether the directories held nothing for this registry.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty() && self.client_cert.is_none()
    }
}

/// The trust configured for `registry` (`host[:port]` exactly as the user wrote it) in the certs.d directories: `KILN_CERTS_DIRS` if set, else `/etc/docker/certs.d` then `/etc/containers/certs.d`.
///
/// In each directory kiln reads the subdirectory named like the registry (`host:port`, or `host`); for `host:443` also the one named `host`.
/// CAs are gathered from all of them; the client certificate comes from the first that has one.
/// A directory that does not exist is skipped; one that cannot be read, or a `.cert` without its `.key` (or the reverse), is an error naming the file.
pub fn registry_trust(registry: &str) -> Result<RegistryTrust> {
    registry_trust_in(&certs_dirs(), registry)
}

/// The certs.d directories searched, in order.
pub fn certs_dirs() -> Vec<PathBuf> {
    match std::env::var_os(CERTS_DIRS_ENV) {
        Some(list) => std::env::split_paths(&list)
            .filter(|dir| !dir.as_os_str().is_empty())
            .collect(),
        None => DEFAULT_CERTS_DIRS.iter().map(PathBuf::from).collect(),
    }
}

fn registry_trust_in(dirs: &[PathBuf], registry: &str) -> Result<RegistryTrust> {
    let mut trust = RegistryTrust::default();
    for name in dir_names(registry) {
        for dir in dirs {
            let host_dir = dir.join(&name);
            let Some(found) = read_host_dir(&host_dir)? else {
                continue;
            };
            trust.cas.extend(found.cas);
            if trust.client_cert.is_none() {
                trust.client_cert = found.client_cert;
            }
        }
    }
    Ok(trust)
}

/// The subdirectory names docker looks up for a registry: the name as written, and for port 443 the bare host too.
/// A name that could leave the certs.d directory (a path separator, `.` or `..`) has none.
fn dir_names(registry: &str) -> Vec<String> {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty()
        || registry == "."
        || registry == ".."
        || registry.contains(['/', '\\', '\0'])
    {
        return Vec::new();
    }
    let mut names = vec![registry.to_owned()];
    if let Some(host) = registry.strip_suffix(":443")
        && !host.is_empty()
        && !host.ends_with(':')
    {
        names.push(host.to_owned());
    }
    names
}

/// Reads one `certs.d/HOST[:PORT]` directory, `None` when it does not exist.
fn read_host_dir(dir: &Path) -> Result<Option<RegistryTrust>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", dir.display()));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read `{}`", dir.display()))?;
        files.push(entry.path());
    }
    files.sort();

    let extension = |path: &Path, ext: &str| path.extension() == Some(OsStr::new(ext));
    let mut trust = RegistryTrust {
        cas: files
            .iter()
            .filter(|path| extension(path, "crt"))
            .cloned()
            .collect(),
        client_cert: None,
    };
    let mut pairs = Vec::new();
    for cert in files.iter().filter(|path| extension(path, "cert")) {
        let key = cert.with_extension("key");
        if !files.contains(&key) {
            bail!(
                "missing key `{}` for client certificate `{}` (certificate authorities use the extension `.crt`)",
                key.display(),
                cert.display()
            );
        }
        pairs.push((cert.clone(), key));
    }
    for key in files.iter().filter(|path| extension(path, "key")) {
        let cert = key.with_extension("cert");
        if !files.contains(&cert) {
            bail!(
                "missing client certificate `{}` for key `{}`",
                cert.display(),
                key.display()
            );
        }
    }
    if pairs.len() > 1 {
        bail!(
            "more than one client certificate in `{}` (`{}` and `{}`); keep one",
            dir.display(),
            pairs[0].0.display(),
            pairs[1].0.display()
        );
    }
    trust.client_cert = pairs.pop();
    Ok(Some(trust))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn touch(dir: &Path, files: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for file in files {
            std::fs::write(dir.join(file), "pem").unwrap();
        }
    }

    #[test]
    fn reads_cas_sorted_and_the_client_certificate() {
        let root = tempfile::tempdir().unwrap();
        let host = root.path().join("registry.test:5000");
        touch(
            &host,
            &["z.crt", "a.crt", "client.cert", "client.key", "README"],
        );
        let trust = registry_trust_in(&[root.path().to_owned()], "registry.test:5000").unwrap();
        assert_eq!(trust.cas, vec![host.join("a.crt"), host.join("z.crt")]);
        assert_eq!(
            trust.client_cert,
            Some((host.join("client.cert"), host.join("client.key")))
        );
    }

    #[test]
    fn nothing_configured_is_empty() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("other:5000"), &["ca.crt"]);
        let dirs = [root.path().to_owned(), root.path().join("missing")];
        let trust = registry_trust_in(&dirs, "registry.test:5000").unwrap();
        assert!(trust.is_empty());
        // The port is part of the name: `host` is not `host:5000`.
        touch(&root.path().join("registry.test"), &["ca.crt"]);
        assert!(
            registry_trust_in(&dirs, "registry.test:5000")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn port_443_also_reads_the_bare_host() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("registry.test"), &["bare.crt"]);
        touch(&root.path().join("registry.test:443"), &["port.crt"]);
        let trust = registry_trust_in(&[root.path().to_owned()], "registry.test:443").unwrap();
        assert_eq!(
            trust.cas,
            vec![
                root.path().join("registry.test:443/port.crt"),
                root.path().join("registry.test/bare.crt"),
            ]
        );
    }

    #[test]
    fn docker_first_then_podman_cas_from_both() {
        let docker = tempfile::tempdir().unwrap();
        let podman = tempfile::tempdir().unwrap();
        touch(
            &docker.path().join("r.test"),
            &["d.crt", "docker.cert", "docker.key"],
        );
        touch(
            &podman.path().join("r.test"),
            &["p.crt", "podman.cert", "podman.key"],
        );
        let dirs = [docker.path().to_owned(), podman.path().to_owned()];
        let trust = registry_trust_in(&dirs, "r.test").unwrap();
        assert_eq!(
            trust.cas,
            vec![
                docker.path().join("r.test/d.crt"),
                podman.path().join("r.test/p.crt")
            ]
        );
        assert_eq!(
            trust.client_cert.unwrap().0,
            docker.path().join("r.test/docker.cert")
        );
    }

    #[test]
    fn a_cert_without_its_key_or_the_reverse_is_an_error_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("a.test"), &["client.cert"]);
        let err = registry_trust_in(&[root.path().to_owned()], "a.test").unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("client.key"), "{message}");
        assert!(message.contains("client.cert"), "{message}");

        touch(&root.path().join("b.test"), &["client.key"]);
        let err = registry_trust_in(&[root.path().to_owned()], "b.test").unwrap_err();
        assert!(
            format!("{err:#}").contains("missing client certificate"),
            "{err:#}"
        );
    }

    #[test]
    fn two_client_certificates_are_an_error() {
        let root = tempfile::tempdir().unwrap();
        touch(
            &root.path().join("a.test"),
            &["one.cert", "one.key", "two.cert", "two.key"],
        );
        let err = registry_trust_in(&[root.path().to_owned()], "a.test").unwrap_err();
        assert!(
            format!("{err:#}").contains("more than one client certificate"),
            "{err:#}"
        );
    }

    #[test]
    fn names_that_leave_the_directory_read_nothing() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), &["top.crt"]);
        for name in ["..", ".", "", "a/../..", "a\\b"] {
            assert!(
                registry_trust_in(&[root.path().to_owned()], name)
                    .unwrap()
                    .is_empty(),
                "{name}"
            );
        }
    }
}
