//! Where `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` go, and where they never go.
//!
//! Where `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` go: to the registry
//! `KILN_REGISTRY` names and its token service, else only to the registry the
//! command addresses and never to a token service on another host, with a
//! warning naming the host they went to.

use crate::common::*;
use crate::registry_harness::{PASSWORD, Registry, USER, Variant};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The smallest core module: what is pushed needs no build.
const MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// kiln with an empty Docker config in `home`, its own cache and the
/// environment's credentials set; `KILN_REGISTRY` as given.
fn kiln_with_env_credentials(home: &Path, named: Option<&str>) -> std::process::Command {
    let mut k = kiln_in(home);
    k.env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD);
    if let Some(r) = named {
        k.env("KILN_REGISTRY", r);
    }
    k
}

fn no_password(out: &std::process::Output) {
    assert!(
        !stdout(out).contains(PASSWORD) && !stderr(out).contains(PASSWORD),
        "the password was printed"
    );
}

#[test]
fn env_credentials_go_to_the_addressed_registry_with_a_warning_naming_it() {
    if !requires_registry(Variant::Auth) {
        return;
    }
    let reg = Registry::start(Variant::Auth);
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("m.wasm");
    std::fs::write(&wasm, MODULE).unwrap();
    let r = format!("{}/env/m:1", reg.host);

    let out = run_ok(
        kiln_with_env_credentials(dir.path(), None)
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--no-aot"),
    );
    no_password(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "to `{}`, the registry this command addresses",
            reg.host
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("KILN_REGISTRY={}", reg.host)),
        "{err}"
    );

    // Named by KILN_REGISTRY: used, without the warning.
    let out = run_ok(
        kiln_with_env_credentials(dir.path(), Some(&reg.host))
            .arg("tags")
            .arg(&r),
    );
    assert_eq!(stdout(&out), "1\n");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    no_password(&out);
}

#[test]
fn kiln_registry_naming_another_host_keeps_env_credentials_from_this_registry() {
    if !requires_registry(Variant::Auth) {
        return;
    }
    let reg = Registry::start(Variant::Auth);
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("m.wasm");
    std::fs::write(&wasm, MODULE).unwrap();
    let r = format!("{}/env/m:1", reg.host);
    // The same port on another loopback address: another registry.
    let port = reg.host.rsplit_once(':').unwrap().1;
    let other = format!("127.0.0.2:{port}");

    let out = run(kiln_with_env_credentials(dir.path(), Some(&other))
        .arg("push")
        .arg(&wasm)
        .arg(&r)
        .arg("--no-aot"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    no_password(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "not using `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` for `{}`",
            reg.host
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("`KILN_REGISTRY` names `{other}`")),
        "{err}"
    );
    // The registry saw no credentials, so it refused.
    assert!(
        err.contains("refused the credentials (or needs some)"),
        "{err}"
    );
}

#[test]
fn env_credentials_never_reach_a_token_service_on_another_port_unless_named() {
    if !requires_registry(Variant::Token) {
        return;
    }
    let reg = Registry::start(Variant::Token);
    let service = reg.token.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("m.wasm");
    std::fs::write(&wasm, MODULE).unwrap();
    let r = format!("{}/env/m:1", reg.host);

    // The realm is 127.0.0.1 on another port: another origin, so kiln goes
    // on anonymously and the push is refused.
    let out = run(kiln_with_env_credentials(dir.path(), None)
        .arg("push")
        .arg(&wasm)
        .arg(&r)
        .arg("--no-aot"));
    let asked = service.requests();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|l| l.starts_with("GET anonymous")),
        "the token service was sent credentials: {asked:?}"
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    no_password(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "not sending the credentials for `{}` to its token service `{}`",
            reg.host, service.realm
        )),
        "{err}"
    );

    // KILN_REGISTRY names the registry: its token service gets them.
    let out = run_ok(
        kiln_with_env_credentials(dir.path(), Some(&reg.host))
            .arg("push")
            .arg(&wasm)
            .arg(&r)
            .arg("--no-aot"),
    );
    no_password(&out);
    assert!(
        service
            .requests()
            .iter()
            .any(|l| l.starts_with(&format!("GET {USER} "))),
        "{:?}",
        service.requests()
    );
}

/// A fake registry on 127.0.0.1 whose token service is on 127.0.0.2; the
/// service records the `Authorization` header of every request.
struct SplitHosts {
    registry: String,
    realm: String,
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
}

fn read_request(stream: &TcpStream) -> (String, Option<String>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    (target, authorization)
}

fn reply(mut stream: TcpStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl SplitHosts {
    fn start() -> SplitHosts {
        let service = TcpListener::bind("127.0.0.2:0").unwrap();
        let realm = format!("http://{}/token", service.local_addr().unwrap());
        let registry = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = registry.local_addr().unwrap().to_string();
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let seen = authorizations.clone();
        std::thread::spawn(move || {
            for stream in service.incoming() {
                let Ok(stream) = stream else { return };
                let (_, authorization) = read_request(&stream);
                seen.lock().unwrap().push(authorization);
                reply(stream, "200 OK", "", r#"{"token":"t0k","expires_in":300}"#);
            }
        });
        let challenge = format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"split\"\r\n");
        std::thread::spawn(move || {
            for stream in registry.incoming() {
                let Ok(stream) = stream else { return };
                let (target, authorization) = read_request(&stream);
                if target.contains("/tags/list") && authorization.as_deref() == Some("Bearer t0k") {
                    reply(stream, "200 OK", "", r#"{"name":"a/b","tags":["1"]}"#);
                } else {
                    reply(stream, "401 Unauthorized", &challenge, "{}");
                }
            }
        });
        SplitHosts {
            registry: host,
            realm,
            authorizations,
        }
    }
}

#[test]
fn env_credentials_never_reach_a_token_service_on_another_host() {
    let split = SplitHosts::start();
    let dir = tempfile::tempdir().unwrap();
    let r = format!("{}/a/b", split.registry);

    let out = run_ok(
        kiln_with_env_credentials(dir.path(), None)
            .arg("tags")
            .arg(&r),
    );
    let seen = split.authorizations.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(Option::is_none),
        "the token service on 127.0.0.2 was sent credentials: {seen:?}"
    );
    assert_eq!(stdout(&out), "1\n");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("token service `{}`", split.realm)),
        "{err}"
    );

    // Named by KILN_REGISTRY, the registry's token service gets them: the
    // check above would have seen them.
    split.authorizations.lock().unwrap().clear();
    run_ok(
        kiln_with_env_credentials(dir.path(), Some(&split.registry))
            .arg("tags")
            .arg(&r),
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let seen = split.authorizations.lock().unwrap().clone();
    assert!(seen.contains(&Some(basic)), "{seen:?}");
}
