//! Registries as people run them over TLS, trusted through `--ca-file` and `certs.d`.
//!
//! Registries as people run them over TLS: a self-signed `CA:TRUE` certificate
//! made as Docker's guide makes it, a certificate from a private CA, and a
//! registry requiring client certificates, each trusted through `--ca-file` and
//! through a docker/podman `certs.d` directory (`KILN_CERTS_DIRS`); and the
//! refusals that must stay strict around them.

use crate::common::*;
use crate::registry_harness::{Registry, Variant, openssl};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// kiln in `home`, with its own Docker config and cache, no environment
/// credentials and the certs.d directories given (none: the machine's own
/// `/etc/docker/certs.d` must not change what these tests see).
fn k(home: &Path, certs_dirs: Option<&Path>) -> Command {
    let mut c = kiln_in(home);
    c.env("KILN_CERTS_DIRS", certs_dirs.unwrap_or(Path::new("")));
    c
}

/// What goes into a certs.d directory for one registry.
#[derive(Default)]
struct CertsD<'a> {
    /// Copied to `ca.crt`.
    ca: Option<&'a Path>,
    /// Copied to `client.cert` and `client.key`.
    client: Option<&'a (PathBuf, PathBuf)>,
}

impl CertsD<'_> {
    /// Writes `ROOT/certs.d/HOST/…` and returns `ROOT/certs.d`, the value
    /// for `KILN_CERTS_DIRS`.
    fn write(&self, root: &Path, host: &str) -> PathBuf {
        let certs_d = root.join("certs.d");
        let dir = certs_d.join(host);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(ca) = self.ca {
            std::fs::copy(ca, dir.join("ca.crt")).unwrap();
        }
        if let Some((cert, key)) = self.client {
            std::fs::copy(cert, dir.join("client.cert")).unwrap();
            std::fs::copy(key, dir.join("client.key")).unwrap();
        }
        certs_d
    }
}

/// Pushes a small module to `HOST/tls/NAME:1` and pulls it back with the
/// same trust (`--ca-file` arguments and certs.d directories), checking
/// the bytes.
fn round_trip(home: &Path, host: &str, name: &str, ca_file: Option<&Path>, certs: Option<&Path>) {
    let wasm = crate::trust::module(home, name);
    let reference = format!("{host}/tls/{name}:1");
    let with_trust = |c: &mut Command| {
        if let Some(ca) = ca_file {
            c.arg("--ca-file").arg(ca);
        }
    };
    let mut push = k(home, certs);
    push.arg("push").arg(&wasm).arg(&reference).arg("--no-aot");
    with_trust(&mut push);
    run_ok(&mut push);
    let pulled = home.join(format!("{name}.pulled.wasm"));
    let mut pull = k(home, certs);
    pull.arg("pull").arg(&reference).arg("-o").arg(&pulled);
    with_trust(&mut pull);
    run_ok(&mut pull);
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&wasm).unwrap()
    );
}

/// Pushes a small module with the given extra arguments, expecting kiln to
/// refuse with exit 2; returns its standard error.
fn push_refused(home: &Path, reference: &str, certs: Option<&Path>, args: &[&Path]) -> String {
    let wasm = crate::trust::module(home, "refused");
    let mut push = k(home, certs);
    push.arg("push")
        .arg(&wasm)
        .arg(reference)
        .args(["--no-aot", "--retries", "1"]);
    for a in args {
        push.arg(a);
    }
    let out: Output = run(&mut push);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

/// Another self-signed certificate in `dir`, as Docker's guide makes one,
/// for `subject_alt_name`: `NAME.crt`.
fn self_signed(dir: &Path, name: &str, subject_alt_name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            &format!("subjectAltName = {subject_alt_name}"),
            "-x509",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
        ],
    );
    dir.join(format!("{name}.crt"))
}

#[test]
fn a_self_signed_ca_true_certificate_is_accepted_when_trusted_exactly() {
    if !requires_registry(Variant::SelfSigned) {
        return;
    }
    let reg = Registry::start(Variant::SelfSigned);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    round_trip(h, &reg.host, "by-flag", Some(&reg.ca_file()), None);
    let certs = CertsD {
        ca: Some(&reg.ca_file()),
        ..CertsD::default()
    }
    .write(h, &reg.host);
    round_trip(h, &reg.host, "by-dir", None, Some(&certs));
}

#[test]
fn a_self_signed_certificate_is_refused_unless_it_is_the_one_trusted() {
    if !requires_registry(Variant::SelfSigned) {
        return;
    }
    let reg = Registry::start(Variant::SelfSigned);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let reference = format!("{}/tls/refused:1", reg.host);

    // Not trusted at all: TLS is asked for with an unrelated certificate.
    let unrelated = self_signed(h, "unrelated", "DNS:registry.example");
    let err = push_refused(h, &reference, None, &[Path::new("--ca-file"), &unrelated]);
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // The same subject and name, another key: not the certificate trusted.
    let impostor = self_signed(h, "impostor", "IP:127.0.0.1");
    let err = push_refused(h, &reference, None, &[Path::new("--ca-file"), &impostor]);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let certs = CertsD {
        ca: Some(&impostor),
        ..CertsD::default()
    }
    .write(h, &reg.host);
    let err = push_refused(h, &reference, Some(&certs), &[]);
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // The exact certificate, but another name for the registry: the name
    // is still checked (the certificate is for 127.0.0.1 only).
    let port = reg.host.rsplit_once(':').unwrap().1;
    let err = push_refused(
        h,
        &format!("localhost:{port}/tls/refused:1"),
        None,
        &[Path::new("--ca-file"), &reg.ca_file()],
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn a_certificate_from_a_private_ca_is_accepted_through_the_flag_or_certs_d() {
    if !requires_registry(Variant::Tls) {
        return;
    }
    let reg = Registry::start(Variant::Tls);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    round_trip(h, &reg.host, "by-flag", Some(&reg.ca_file()), None);
    let certs = CertsD {
        ca: Some(&reg.ca_file()),
        ..CertsD::default()
    }
    .write(h, &reg.host);
    round_trip(h, &reg.host, "by-dir", None, Some(&certs));
}

#[test]
fn a_registry_requiring_client_certificates_gets_the_one_in_certs_d() {
    if !requires_registry(Variant::ClientCert) {
        return;
    }
    let reg = Registry::start(Variant::ClientCert);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let client = reg.client_cert();

    // The server's CA by flag, the client certificate from certs.d (kiln
    // has no flag for one, as docker has none).
    let client_only = tempfile::tempdir().unwrap();
    let certs = CertsD {
        client: Some(&client),
        ..CertsD::default()
    }
    .write(client_only.path(), &reg.host);
    round_trip(h, &reg.host, "by-flag", Some(&reg.ca_file()), Some(&certs));

    // Everything from certs.d.
    let everything = tempfile::tempdir().unwrap();
    let certs = CertsD {
        ca: Some(&reg.ca_file()),
        client: Some(&client),
    }
    .write(everything.path(), &reg.host);
    round_trip(h, &reg.host, "by-dir", None, Some(&certs));
}

#[test]
fn a_registry_requiring_client_certificates_refuses_none_or_the_wrong_one_clearly() {
    if !requires_registry(Variant::ClientCert) {
        return;
    }
    let reg = Registry::start(Variant::ClientCert);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let reference = format!("{}/tls/refused:1", reg.host);

    // No client certificate.
    let err = push_refused(
        h,
        &reference,
        None,
        &[Path::new("--ca-file"), &reg.ca_file()],
    );
    assert!(err.contains("client certificate"), "{err}");

    // One the registry's client CA did not sign.
    let wrong = reg.wrong_client_cert();
    let certs = CertsD {
        ca: Some(&reg.ca_file()),
        client: Some(&wrong),
    }
    .write(h, &reg.host);
    let err = push_refused(h, &reference, Some(&certs), &[]);
    assert!(err.contains("client certificate"), "{err}");
}

#[test]
fn a_client_certificate_without_its_key_is_an_error_naming_the_file() {
    if !requires_registry(Variant::ClientCert) {
        return;
    }
    let reg = Registry::start(Variant::ClientCert);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let certs = CertsD {
        ca: Some(&reg.ca_file()),
        client: Some(&reg.client_cert()),
    }
    .write(h, &reg.host);
    std::fs::remove_file(certs.join(&reg.host).join("client.key")).unwrap();
    let err = push_refused(h, &format!("{}/tls/refused:1", reg.host), Some(&certs), &[]);
    assert!(err.contains("client.key"), "{err}");
}
