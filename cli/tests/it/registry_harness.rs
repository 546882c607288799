//! A real OCI registry for tests: Debian's `docker-registry` on a free loopback port.
//!
//! A real OCI registry for tests: Debian's `docker-registry` (CNCF
//! distribution) on a free loopback port, plain, behind htpasswd basic auth,
//! behind a bearer token service, or with TLS (a private CA, a self-signed
//! certificate as Docker's guide makes one, or a private CA requiring client
//! certificates); stopped by its process id when dropped.

use std::collections::BTreeSet;
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
    /// HTTPS with a self-signed certificate made as Docker's guide to
    /// private registries makes it (`openssl req -x509`), which marks it
    /// `CA:TRUE`; [`Registry::ca_file`] is that certificate.
    SelfSigned,
    /// HTTPS with a certificate from a private CA, requiring a client
    /// certificate signed by a second private CA (distribution's
    /// `http.tls.clientcas`; see [`Registry::client_cert`] and
    /// [`Registry::wrong_client_cert`]).
    ClientCert,
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

impl Variant {
    /// The programs starting a registry of this variant runs.
    pub fn tools(self) -> &'static [&'static str] {
        match self {
            Variant::Plain => &["docker-registry"],
            Variant::Auth => &["docker-registry", "htpasswd"],
            Variant::Tls | Variant::SelfSigned | Variant::ClientCert | Variant::Token => {
                &["docker-registry", "openssl"]
            }
        }
    }
}

/// A tool the tests need, from PATH or /usr/(s)bin; a clear failure
/// naming the Debian package when missing (tests declare what they need
/// first, with [`crate::common::requires`]).
pub fn tool(name: &str) -> PathBuf {
    crate::common::find_tool(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed; `cargo xtask setup` installs it (Debian packages docker-registry, apache2-utils, openssl, skopeo)"
        )
    })
}

/// Runs `openssl` in `dir` and returns its standard output; a failure
/// fails the test with openssl's message.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(tool("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// P-256 keys: fast to make.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// Extensions of a server certificate for 127.0.0.1.
const SERVER_EXT: &str =
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";

/// Extensions of a client certificate.
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";

/// A private CA in `dir`: `NAME.pem` and `NAME-key.pem`.
fn private_ca(dir: &Path, name: &str, common_name: &str) {
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &EC_KEY,
            &[
                "-days",
                "2",
                "-subj",
                &format!("/CN={common_name}"),
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.pem"),
            ],
        ]
        .concat(),
    );
}

/// A certificate `CERT.pem` with key `KEY.pem` in `dir`, signed by the CA
/// `CA.pem`, with the extensions `ext` (openssl's config syntax).
fn signed_cert(dir: &Path, ca: &str, cert: &str, key: &str, subject: &str, ext: &str) {
    std::fs::write(dir.join(format!("{cert}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            &["req"][..],
            &EC_KEY,
            &[
                "-subj",
                subject,
                "-keyout",
                &format!("{key}.pem"),
                "-out",
                &format!("{cert}.csr"),
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{cert}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{cert}.ext"),
            "-out",
            &format!("{cert}.pem"),
        ],
    );
}

/// The `http.tls` section of distribution's config for a certificate and
/// key in `dir`.
fn tls_config(dir: &Path, cert: &str, key: &str) -> String {
    format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        dir.join(cert).display(),
        dir.join(key).display()
    )
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
                private_ca(d, "ca", "kiln test CA");
                signed_cert(d, "ca", "cert", "key", "/CN=127.0.0.1", SERVER_EXT);
                config.push_str(&tls_config(d, "cert.pem", "key.pem"));
            }
            Variant::SelfSigned => {
                // Docker's guide ("Use self-signed certificates"), with a
                // smaller key for speed: `req -x509` marks it `CA:TRUE`.
                let d = dir.path();
                openssl(
                    d,
                    &[
                        "req",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-sha256",
                        "-keyout",
                        "domain.key",
                        "-subj",
                        "/CN=127.0.0.1",
                        "-addext",
                        "subjectAltName = IP:127.0.0.1",
                        "-x509",
                        "-days",
                        "2",
                        "-out",
                        "domain.crt",
                    ],
                );
                let text = openssl(d, &["x509", "-in", "domain.crt", "-noout", "-text"]);
                assert!(
                    text.contains("CA:TRUE"),
                    "openssl did not mark the self-signed certificate CA:TRUE:\n{text}"
                );
                config.push_str(&tls_config(d, "domain.crt", "domain.key"));
            }
            Variant::ClientCert => {
                // The server as in `Tls`; clients need a certificate from
                // a second CA. The wrong one is valid, for client
                // authentication even, but signed by the server's CA.
                let d = dir.path();
                private_ca(d, "ca", "kiln test CA");
                signed_cert(d, "ca", "cert", "key", "/CN=127.0.0.1", SERVER_EXT);
                private_ca(d, "client-ca", "kiln test client CA");
                signed_cert(
                    d,
                    "client-ca",
                    "client",
                    "client-key",
                    "/CN=kiln test client",
                    CLIENT_EXT,
                );
                signed_cert(
                    d,
                    "ca",
                    "wrong-client",
                    "wrong-client-key",
                    "/CN=kiln test client",
                    CLIENT_EXT,
                );
                config.push_str(&tls_config(d, "cert.pem", "key.pem"));
                config.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    d.join("client-ca.pem").display()
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
        if matches!(
            self.variant,
            Variant::Tls | Variant::SelfSigned | Variant::ClientCert
        ) {
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

    /// What to trust for a TLS registry: the CA certificate that signed
    /// its certificate, or for [`Variant::SelfSigned`] the certificate
    /// itself.
    pub fn ca_file(&self) -> PathBuf {
        match self.variant {
            Variant::SelfSigned => self.dir.path().join("domain.crt"),
            _ => self.dir.path().join("ca.pem"),
        }
    }

    /// A [`Variant::ClientCert`] registry's accepted client certificate
    /// and its key (PEM).
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        (d.join("client.pem"), d.join("client-key.pem"))
    }

    /// A client certificate a [`Variant::ClientCert`] registry refuses
    /// (signed by its server CA, not its client CA) and its key.
    pub fn wrong_client_cert(&self) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        (d.join("wrong-client.pem"), d.join("wrong-client-key.pem"))
    }

    /// Where the registry keeps what it stores for repository `repo`.
    fn repository(&self, repo: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repo)
    }

    /// The manifest or blob with `digest`, when it is stored and linked
    /// into repository `repo`.
    pub fn linked_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let hex = digest.trim_start_matches("sha256:");
        let dir = self.repository(repo);
        let linked = dir.join("_layers/sha256").join(hex).join("link").is_file()
            || dir
                .join("_manifests/revisions/sha256")
                .join(hex)
                .join("link")
                .is_file();
        if !linked {
            return None;
        }
        std::fs::read(self.blob_file(digest)).ok()
    }

    /// The digests of the blobs linked into repository `repo`.
    pub fn linked_layers(&self, repo: &str) -> BTreeSet<String> {
        std::fs::read_dir(self.repository(repo).join("_layers/sha256"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every tag of repository `repo` and the digest it points at.
    pub fn tags(&self, repo: &str) -> Vec<(String, String)> {
        std::fs::read_dir(self.repository(repo).join("_manifests/tags"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let link = std::fs::read_to_string(e.path().join("current/link")).ok()?;
                        Some((e.file_name().to_string_lossy().into_owned(), link))
                    })
                    .collect()
            })
            .unwrap_or_default()
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

/// Checks that everything reachable from `tags` (tag, digest) is whole:
/// each manifest and blob stored (`blob` reads it by digest), with the
/// digest and size its descriptor gives. Returns the digests and sizes of
/// the blobs (not manifests) reachable. `what` names the store in failures.
pub fn check_whole(
    what: &str,
    tags: Vec<(String, String)>,
    blob: impl Fn(&str) -> Option<Vec<u8>>,
) -> BTreeSet<(String, u64)> {
    let mut blobs = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<(String, Option<u64>, String)> = tags
        .into_iter()
        .map(|(tag, d)| (d, None, format!("tag `{tag}`")))
        .collect();
    while let Some((digest, size, from)) = todo.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let bytes = blob(&digest)
            .unwrap_or_else(|| panic!("{what}: manifest {digest} named by {from} is missing"));
        check_bytes(what, &digest, size, &bytes, &from);
        let m: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{what}: manifest {digest} does not parse: {e}"));
        if let Some(listed) = m["manifests"].as_array() {
            for l in listed {
                todo.push((
                    l["digest"].as_str().unwrap().to_string(),
                    l["size"].as_u64(),
                    format!("index {digest}"),
                ));
            }
            continue;
        }
        let parts = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
        for d in parts {
            let bd = d["digest"].as_str().unwrap();
            let bytes = blob(bd).unwrap_or_else(|| {
                panic!("{what}: blob {bd} of manifest {digest} ({from}) is missing")
            });
            check_bytes(what, bd, d["size"].as_u64(), &bytes, &from);
            blobs.insert((bd.to_string(), d["size"].as_u64().unwrap()));
        }
    }
    blobs
}

/// Checks `bytes` have `digest` and, when given, `size`.
pub fn check_bytes(what: &str, digest: &str, size: Option<u64>, bytes: &[u8], from: &str) {
    assert_eq!(
        kiln_core::Digest::of(bytes).to_string(),
        digest,
        "{what}: content of {digest} ({from}) does not match its digest"
    );
    if let Some(size) = size {
        assert_eq!(
            bytes.len() as u64,
            size,
            "{what}: {digest} ({from}) has the wrong size"
        );
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
