//! `--insecure` relaxes TLS for the registry named only, never for a token service elsewhere.
//!
//! `--insecure` relaxes TLS for the registry named only, never for a token
//! service elsewhere (issue 14): a fake registry on 127.0.0.1 over TLS, whose
//! self-signed certificate `--insecure` accepts, sends kiln to a token service
//! presenting the very same certificate at 127.0.0.2 and at another port of
//! 127.0.0.1, which kiln must refuse; `--ca-file`, which applies to every host,
//! is the control showing that the token service is reached once its
//! certificate is trusted.

use crate::common::*;
use crate::registry_harness::{openssl, tool};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An `openssl s_server` with `cert.pem` and `key.pem`, stopped by its
/// process id when dropped.
struct TlsServer {
    child: Child,
    /// `IP:PORT`, where it listens.
    addr: String,
}

impl TlsServer {
    /// Starts one on a free port of `ip` in `dir` with the extra `mode`
    /// arguments, and returns it with its standard output, read up to the
    /// line saying where it listens (so it is listening).
    fn start(dir: &Path, ip: &str, mode: &[&str]) -> (TlsServer, BufReader<ChildStdout>) {
        let log = dir.join(format!("s_server-{ip}-{}.log", mode.join("")));
        let mut child = Command::new(tool("openssl"))
            .args(["s_server", "-accept", &format!("{ip}:0")])
            .args(["-cert", "cert.pem", "-key", "key.pem"])
            .args(mode)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut server = TlsServer {
            child,
            addr: String::new(),
        };
        let mut line = String::new();
        while server.addr.is_empty() {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "openssl s_server did not start on {ip}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            if let Some(addr) = line.strip_prefix("ACCEPT ") {
                server.addr = addr.trim().to_string();
            }
        }
        (server, out)
    }

    /// A token service on `ip` whose every answer is s_server's `-www`
    /// status page (HTML, so never a token).
    fn token_service(dir: &Path, ip: &str) -> TlsServer {
        let (server, mut out) = TlsServer::start(dir, ip, &["-www"]);
        // Nothing is read from it; it must not block on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry on 127.0.0.1 over TLS answering every request with a 401
/// whose challenge names the token service `realm`.
///
/// s_server without `-www` prints what a client sends and sends what it
/// reads on its standard input, one connection after another: a thread
/// answers each request once its headers have ended (a request of kiln's
/// to a registry that wants a token has no body) and counts it.
struct FakeRegistry {
    server: TlsServer,
    requests: Arc<AtomicUsize>,
}

impl FakeRegistry {
    fn start(dir: &Path, realm: &str) -> FakeRegistry {
        let (mut server, mut out) = TlsServer::start(dir, "127.0.0.1", &[]);
        let mut input = server.child.stdin.take().unwrap();
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        // Starts with `H`: s_server takes a few single letters at the start
        // of its input as commands, and `H` is none of them.
        let answer = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:r:pull\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            // Until s_server is stopped and its output ends.
            while let Ok(n @ 1..) = out.read(&mut chunk) {
                seen.extend_from_slice(&chunk[..n]);
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    counted.fetch_add(1, Ordering::SeqCst);
                    if input
                        .write_all(answer.as_bytes())
                        .and_then(|()| input.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        FakeRegistry { server, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// kiln in `home`, with no credentials from anywhere, no certs.d
/// directories and short pauses between attempts.
fn k(home: &Path) -> Command {
    let mut c = kiln_in(home);
    c.env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env("KILN_CERTS_DIRS", "")
        .env("KILN_TEST_FAST_RETRY", "1");
    c
}

/// Whether kiln's error says a server certificate was refused.
fn certificate_refused(err: &str) -> bool {
    err.contains("invalid peer certificate") || err.contains("does not trust")
}

/// Runs `kiln pull` and `kiln tags` of the repository `r` on `registry`
/// with `--insecure` and the extra `trust` arguments; each must fail
/// (exit 2) after reaching the registry. Returns `(command, stderr)` pairs.
fn pull_and_tags(home: &Path, registry: &FakeRegistry, trust: &[&Path]) -> Vec<(String, String)> {
    let host = &registry.server.addr;
    let commands = [
        ("pull", format!("{host}/r:1")),
        ("tags", format!("{host}/r")),
    ];
    let mut results = Vec::new();
    for (command, reference) in commands {
        let before = registry.requests();
        let mut c = k(home);
        c.arg(command)
            .arg(&reference)
            .args(["--insecure", "--retries", "1", "--timeout", "5"]);
        for a in trust {
            c.arg(a);
        }
        let out = run(&mut c);
        let err = stderr(&out);
        let what = format!("kiln {command} {reference} --insecure {trust:?}");
        assert_eq!(out.status.code(), Some(2), "{what}:\n{err}");
        assert!(stdout(&out).is_empty(), "{what}: {}", stdout(&out));
        assert!(!err.contains("panicked"), "{what}:\n{err}");
        // The registry's own certificate, the same self-signed one, was
        // accepted: the request reached it and its challenge was read.
        assert!(
            registry.requests() > before,
            "{what}: the registry was never asked:\n{err}"
        );
        results.push((what, err));
    }
    results
}

#[test]
fn insecure_trusts_the_registry_named_and_not_its_token_service_elsewhere() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Docker's guide to self-signed registry certificates, for both
    // addresses the token services listen on.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.2",
            "-addext",
            "subjectAltName=IP:127.0.0.2,IP:127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
    );
    let cert = d.join("cert.pem");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir(h.join(".docker")).unwrap();

    for (place, ip) in [
        ("on another host", "127.0.0.2"),
        ("on another port of the registry's host", "127.0.0.1"),
    ] {
        let token = TlsServer::token_service(d, ip);
        let realm = format!("https://{}/token", token.addr);
        let registry = FakeRegistry::start(d, &realm);

        // `--insecure` alone: the token service's certificate is checked as
        // strictly as ever, and refused.
        for (what, err) in pull_and_tags(h, &registry, &[]) {
            assert!(
                err.contains(&realm) && certificate_refused(&err),
                "{what}: the certificate of the token service {place} (`{realm}`) was not refused:\n{err}"
            );
        }

        // The control: `--ca-file` trusts the certificate everywhere, so the
        // handshake with the token service succeeds and what fails is its
        // answer, a status page instead of a token.
        for (what, err) in pull_and_tags(h, &registry, &[Path::new("--ca-file"), &cert]) {
            assert!(
                !certificate_refused(&err),
                "{what}: a certificate was refused although trusted:\n{err}"
            );
            assert!(
                err.contains(&realm) && err.contains("not a token response"),
                "{what}: the token service {place} (`{realm}`) did not answer:\n{err}"
            );
        }
    }
}
