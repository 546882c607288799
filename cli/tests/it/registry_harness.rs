//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution) on a free loopback port, plain, behind htpasswd basic auth, behind a bearer token service, or with TLS from a private CA; stopped by its process id when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::token_service::TokenService;

/// How the registry is set up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Plain HTTP, anonymous.
    Plain,
    /// Plain HTTP, htpasswd basic auth for [`USER`]/[`PASSWORD`].
    Auth,
    /// HTTPS with a certificate from a private CA (see [`Registry::ca_file`]).
    Tls,
    /// Plain HTTP, bearer tokens from a [`TokenService`] that takes
    /// [`USER`]/[`PASSWORD`] and the identity token
    /// [`crate::token_service::IDENTITY_TOKEN`].
    Token,
}

/// The user of the [`Variant::Auth`] registry.
pub const USER: &str = "kiln-test";
/// Its password; tests check it never appears in kiln's output.
pub const PASSWORD: &str = "s3cret-Pa55word-never-printed";

/// A running registry.
pub struct Registry {
    child: Option<Child>,
    /// Its working directory (storage, config, certificates).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    config: PathBuf,
    variant: Variant,
    /// The token service of a [`Variant::Token`] registry.
    pub token: Option<TokenService>,
}

/// A tool the tests need, from PATH or /usr/(s)bin; a clear failure
/// naming the Debian package when missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed; `cargo xtask setup` installs it (Debian packages docker-registry, apache2-utils, openssl, skopeo)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Registry {
    /// Starts a registry.
    pub fn start(variant: Variant) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: kiln-test-secret\n",
            dir.path().join("data").display()
        );
        let mut token = None;
        match variant {
            Variant::Plain => {}
            Variant::Token => {
                let service = TokenService::start(dir.path(), USER, PASSWORD);
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    service.realm,
                    crate::token_service::SERVICE,
                    crate::token_service::ISSUER,
                    service.certificate.display()
                ));
                token = Some(service);
            }
            Variant::Auth => {
                let out = Command::new(tool("htpasswd"))
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                ));
            }
            Variant::Tls => {
                // A private CA and a server certificate it signed for
                // 127.0.0.1: what a company registry looks like.
                let d = dir.path();
                let openssl = |args: &[&str]| {
                    let out = Command::new(tool("openssl"))
                        .args(args)
                        .current_dir(d)
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "openssl {args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                };
                let ec = [
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                ];
                openssl(
                    &[
                        &["req", "-x509"][..],
                        &ec,
                        &[
                            "-days",
                            "2",
                            "-subj",
                            "/CN=kiln test CA",
                            "-keyout",
                            "ca-key.pem",
                            "-out",
                            "ca.pem",
                        ],
                    ]
                    .concat(),
                );
                openssl(
                    &[
                        &["req"][..],
                        &ec,
                        &[
                            "-subj",
                            "/CN=127.0.0.1",
                            "-keyout",
                            "key.pem",
                            "-out",
                            "server.csr",
                        ],
                    ]
                    .concat(),
                );
                std::fs::write(d.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
                openssl(&[
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    "server.ext",
                    "-out",
                    "cert.pem",
                ]);
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    d.join("cert.pem").display(),
                    d.join("key.pem").display()
                ));
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut r = Registry {
            child: None,
            dir,
            host,
            config: config_path,
            variant,
            token,
        };
        r.resume();
        r
    }

    /// Starts the registry process (again), on the same port and storage.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(&self.config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the registry did not come up on {}:\n{}",
            self.host,
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// Stops the registry process, by its process id.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn answers(&self) -> bool {
        if self.variant == Variant::Tls {
            // Any TCP answer: the TLS handshake is kiln's to do.
            return TcpStream::connect(&self.host).is_ok();
        }
        let Ok(mut s) = TcpStream::connect(&self.host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host).as_bytes())
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
    }

    /// The CA certificate that signed a TLS registry's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where the registry keeps the blob with this digest.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `skopeo`, which must be installed.
pub fn skopeo() -> Command {
    Command::new(tool("skopeo"))
}

/// Every file under `dir`, for checks that nothing was written.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
