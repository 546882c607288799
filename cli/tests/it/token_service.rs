//! A registry token service for tests, as Docker's token specification describes it.
//!
//! A registry token service for tests, as Docker's token specification
//! describes it: `GET /token` with basic credentials and `POST /token` with an
//! OAuth2 refresh token (a Docker identity token) both answer a JWT signed with
//! a key whose certificate the registry trusts; it grants per user and logs
//! what it was asked (never the secrets).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::registry_harness::tool;

/// The service name the registry and the token service agree on.
pub const SERVICE: &str = "kiln-test-registry";
/// The issuer the registry trusts.
pub const ISSUER: &str = "kiln-test-token-issuer";
/// The identity token the service accepts in `grant_type=refresh_token`;
/// tests check it never appears in kiln's output.
pub const IDENTITY_TOKEN: &str = "kiln-identity-token-never-printed-7f3a";
/// A user who may only pull (password: the registry harness' PASSWORD).
pub const READER: &str = "kiln-reader";

/// A running token service.
pub struct TokenService {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The certificate of the signing key, for the registry's
    /// `rootcertbundle`.
    pub certificate: PathBuf,
    /// One line per request: `GET user scope...` or `POST grant scope...`.
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

struct Keys {
    dir: PathBuf,
    x5c: String,
}

impl TokenService {
    /// Makes a signing key and certificate in `dir` and starts serving.
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenService {
        let out = Command::new(tool("openssl"))
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=kiln test token issuer",
                "-keyout",
                "token-key.pem",
                "-out",
                "token-cert.pem",
            ])
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read_to_string(dir.join("token-cert.pem")).unwrap();
        let x5c: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let keys = Arc::new(Keys {
            dir: dir.to_path_buf(),
            x5c,
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let users = Arc::new((user.to_string(), password.to_string()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (keys, log, users) = (keys.clone(), l.clone(), users.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, &keys, &log, &users);
                });
            }
        });
        TokenService {
            realm: format!("http://{addr}/token"),
            certificate: dir.join("token-cert.pem"),
            log,
            stop,
            addr,
        }
    }

    /// What the service was asked so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn handle(
    mut stream: TcpStream,
    keys: &Keys,
    log: &Mutex<Vec<String>>,
    users: &(String, String),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/token" {
        return respond(&mut stream, "404 Not Found", "{}");
    }
    let params = match method.as_str() {
        "GET" => form(query),
        "POST" => form(&String::from_utf8_lossy(&body)),
        _ => return respond(&mut stream, "405 Method Not Allowed", "{}"),
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    // Who is asking, and which actions they may have.
    let (who, allowed): (String, &[&str]) = if method == "POST" {
        if param("grant_type").as_deref() != Some("refresh_token") {
            log.lock()
                .unwrap()
                .push(format!("POST bad-grant {}", scopes.join(" ")));
            return respond(
                &mut stream,
                "400 Bad Request",
                r#"{"error":"unsupported_grant_type"}"#,
            );
        }
        if param("refresh_token").as_deref() != Some(IDENTITY_TOKEN) {
            log.lock()
                .unwrap()
                .push(format!("POST refused {}", scopes.join(" ")));
            return respond(
                &mut stream,
                "401 Unauthorized",
                r#"{"error":"invalid_grant"}"#,
            );
        }
        ("identity".to_string(), &["pull", "push"])
    } else {
        match header("authorization").and_then(|a| {
            a.strip_prefix("Basic ")
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .map(|d| String::from_utf8_lossy(&d).into_owned())
        }) {
            None => ("anonymous".to_string(), &[]),
            Some(creds) => {
                let (u, p) = creds.split_once(':').unwrap_or((&creds, ""));
                if p != users.1 || (u != users.0 && u != READER) {
                    log.lock()
                        .unwrap()
                        .push(format!("GET refused {}", scopes.join(" ")));
                    return respond(
                        &mut stream,
                        "401 Unauthorized",
                        r#"{"details":"bad credentials"}"#,
                    );
                }
                if u == READER {
                    (u.to_string(), &["pull"])
                } else {
                    (u.to_string(), &["pull", "push"])
                }
            }
        }
    };
    log.lock()
        .unwrap()
        .push(format!("{method} {who} {}", scopes.join(" ")));
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let (kind, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            let granted: Vec<&str> = actions.split(',').filter(|a| allowed.contains(a)).collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let token = jwt(keys, &who, access);
    let body = if method == "POST" {
        serde_json::json!({"access_token": token, "expires_in": 300, "token_type": "Bearer"})
    } else {
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
    };
    respond(&mut stream, "200 OK", &body.to_string())
}

/// A token as distribution verifies it: ES256 over `header.claims`, the
/// signing certificate in `x5c`, the signature as raw r||s.
fn jwt(keys: &Keys, subject: &str, access: Vec<serde_json::Value>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [keys.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let tmp = tempfile::NamedTempFile::new_in(&keys.dir).unwrap();
    std::fs::write(tmp.path(), &input).unwrap();
    let out = Command::new(tool("openssl"))
        .args(["dgst", "-sha256", "-sign"])
        .arg(keys.dir.join("token-key.pem"))
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(raw_signature(&out.stdout))
    )
}

/// An ECDSA signature's DER `SEQUENCE { r INTEGER, s INTEGER }` as the
/// 64 bytes r||s that JWS uses.
fn raw_signature(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "a DER sequence");
    let mut i = if der[1] & 0x80 != 0 {
        2 + (der[1] & 0x7f) as usize
    } else {
        2
    };
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02, "a DER integer");
        let len = der[i + 1] as usize;
        let mut int = &der[i + 2..i + 2 + len];
        while int.len() > 32 && int[0] == 0 {
            int = &int[1..];
        }
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        i += 2 + len;
    }
    out
}
