//! Hostile registries on loopback must not hold kiln: each run ends within seconds.
//!
//! Hostile registries on loopback — plain TCP servers that send a 256 MiB
//! manifest or token reply, a tag list that links to itself forever, or one
//! byte every two seconds — must not hold kiln: each run ends within seconds,
//! in little memory, with an error naming what was exceeded.

use crate::common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a hostile server sends where a manifest or token should be.
const HUGE: u64 = 256 << 20;

/// Peak memory allowed: a bounded client needs a few MiB over its
/// baseline, not the 256 MiB (534 MB measured) that reading it all took.
const MAX_RSS_KIB: u64 = 64 * 1024;

/// One request as the servers see it.
struct Request {
    method: String,
    path: String,
    query: String,
}

/// Reads a request's line and headers (bounded); `None` when the client
/// went away.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut length = 0usize;
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    std::io::copy(
        &mut std::io::Read::take(&mut reader, length as u64),
        &mut std::io::sink(),
    )
    .ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
    })
}

/// Serves every connection on a thread of its own, one request each
/// (`Connection: close`), with `answer(stream, request, host)`.
fn serve(answer: fn(&mut TcpStream, &Request, &str) -> std::io::Result<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let shared = Arc::new(host.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let host = shared.clone();
            std::thread::spawn(move || {
                if let Some(request) = read_request(&stream) {
                    let _ = answer(&mut stream, &request, &host);
                }
            });
        }
    });
    host
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Sends `head`, then `a`s up to [`HUGE`] bytes in all (never held in
/// memory), until the client stops reading.
fn send_huge(stream: &mut TcpStream, head: &str) -> std::io::Result<()> {
    stream.write_all(head.as_bytes())?;
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0u64;
    while sent < HUGE {
        let n = chunk.len().min(usize::try_from(HUGE - sent).unwrap());
        stream.write_all(&chunk[..n])?;
        sent += n as u64;
    }
    stream.flush()
}

/// A registry whose every manifest is [`HUGE`] bytes, with its length
/// declared.
fn huge_manifest(stream: &mut TcpStream, r: &Request, _: &str) -> std::io::Result<()> {
    huge_manifest_answer(stream, r, true)
}

/// The same without a length: the body ends when the connection does.
fn huge_manifest_unannounced(stream: &mut TcpStream, r: &Request, _: &str) -> std::io::Result<()> {
    huge_manifest_answer(stream, r, false)
}

fn huge_manifest_answer(stream: &mut TcpStream, r: &Request, length: bool) -> std::io::Result<()> {
    if r.path == "/v2/" {
        return respond(stream, "200 OK", "", "{}");
    }
    if !r.path.contains("/manifests/") {
        return respond(stream, "404 Not Found", "", r#"{"errors":[]}"#);
    }
    let declared = if length {
        format!("Content-Length: {HUGE}\r\n")
    } else {
        String::new()
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: sha256:{}\r\n{declared}Connection: close\r\n\r\n",
        "0".repeat(64)
    );
    if r.method == "HEAD" {
        stream.write_all(head.as_bytes())?;
        return stream.flush();
    }
    send_huge(
        stream,
        &format!(
            r#"{head}{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{{"pad":""#
        ),
    )
}

/// A registry that wants bearer tokens from a token service whose reply
/// is [`HUGE`] bytes.
fn huge_token(stream: &mut TcpStream, r: &Request, host: &str) -> std::io::Result<()> {
    if r.path == "/token" {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\nConnection: close\r\n\r\n"
        );
        return send_huge(stream, &format!(r#"{head}{{"token":""#));
    }
    let challenge = format!(
        "WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"hostile\",scope=\"repository:r:pull\"\r\n"
    );
    respond(
        stream,
        "401 Unauthorized",
        &challenge,
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    )
}

/// A registry whose tag list is always a full page that links to itself.
fn self_linking_tags(stream: &mut TcpStream, r: &Request, _: &str) -> std::io::Result<()> {
    if r.path == "/v2/" {
        return respond(stream, "200 OK", "", "{}");
    }
    if r.path != "/v2/r/tags/list" {
        return respond(stream, "404 Not Found", "", r#"{"errors":[]}"#);
    }
    // As many tags as asked for (a full page), whatever `last` says.
    let n = r
        .query
        .split('&')
        .find_map(|p| p.strip_prefix("n="))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 10_000);
    let tags: Vec<String> = (0..n).map(|i| format!("\"a{i:05}\"")).collect();
    let body = format!(r#"{{"name":"r","tags":[{}]}}"#, tags.join(","));
    respond(
        stream,
        "200 OK",
        "Link: </v2/r/tags/list?n=100&last=a>; rel=\"next\"\r\n",
        &body,
    )
}

/// A registry that answers everything one byte every two seconds.
fn trickle(stream: &mut TcpStream, _: &Request, _: &str) -> std::io::Result<()> {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    for byte in answer {
        stream.write_all(&[*byte])?;
        stream.flush()?;
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(())
}

/// What one measured run of kiln did.
pub struct Measured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Peak resident memory of the kiln process alone, in KiB.
    pub max_rss_kib: u64,
    /// Whether it was still running at the limit and was killed.
    pub killed: bool,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} after {:.1?}, {} MiB peak{}\n--- stderr\n{}",
            self.status,
            self.elapsed,
            self.max_rss_kib / 1024,
            if self.killed { ", killed" } else { "" },
            self.stderr
        )
    }
}

/// Set in the environment of [`measure_in_a_small_process`] to what it is
/// to run.
const MEASURE: &str = "KILN_TEST_MEASURE";

/// Runs `cmd` (killing it if it runs past `limit`) and measures its wall
/// time and peak memory.
///
/// The measuring is done by a small process of its own, this test binary
/// running only [`measure_in_a_small_process`]: Linux carries the peak
/// memory of the process that spawns a child into the child's `ru_maxrss`
/// (exec records the old address space's peak, and a `vfork`ed child's old
/// address space is its parent's), so kiln spawned from this process, with
/// its other tests running, would report this process's peak, not its own.
pub fn measure(cmd: &Command, limit: Duration) -> Measured {
    let out = tempfile::tempdir().unwrap();
    let spec = serde_json::json!({
        "program": cmd.get_program().to_str().unwrap(),
        "args": cmd.get_args().map(|a| a.to_str().unwrap()).collect::<Vec<_>>(),
        "dir": cmd.get_current_dir().map(|d| d.to_str().unwrap()),
        "limit_ms": u64::try_from(limit.as_millis()).unwrap(),
        "out": out.path().to_str().unwrap(),
    });
    let mut helper = Command::new(std::env::current_exe().unwrap());
    helper
        .args([
            "--exact",
            "hostile_registry::measure_in_a_small_process",
            "--ignored",
            "--test-threads=1",
            "--quiet",
        ])
        .env(MEASURE, spec.to_string());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => helper.env(key, v),
            None => helper.env_remove(key),
        };
    }
    let ran = helper.output().unwrap();
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap_or_default();
    assert!(
        ran.status.success() && out.path().join("result.json").exists(),
        "the measuring process failed: {}\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(&read("result.json")).unwrap();
    let number = |key: &str| result[key].as_u64().unwrap();
    Measured {
        status: ExitStatus::from_raw(i32::try_from(result["status"].as_i64().unwrap()).unwrap()),
        stdout: read("stdout"),
        stderr: read("stderr"),
        elapsed: Duration::from_millis(number("elapsed_ms")),
        max_rss_kib: number("max_rss_kib"),
        killed: result["killed"].as_bool().unwrap(),
    }
}

/// The measuring process of [`measure`]: runs the command [`MEASURE`]
/// describes, killing it (by its process id) if it runs past the limit,
/// and writes its output, exit status, wall time and peak resident memory
/// (from `wait4`, as in hostile.rs) into the directory named. Polling with
/// `WNOHANG` leaves the child unreaped until it is killed, so the id
/// cannot have been reused. Without [`MEASURE`] it does nothing.
#[test]
#[ignore = "run by `measure` in a process of its own"]
#[allow(unsafe_code)]
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by `wait4`, which std does not know about"
)]
fn measure_in_a_small_process() {
    let Ok(spec) = std::env::var(MEASURE) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let out = std::path::PathBuf::from(spec["out"].as_str().unwrap());
    let mut cmd = Command::new(spec["program"].as_str().unwrap());
    cmd.args(
        spec["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap()),
    )
    .env_remove(MEASURE)
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(out.join("stdout")).unwrap())
    .stderr(std::fs::File::create(out.join("stderr")).unwrap());
    if let Some(dir) = spec["dir"].as_str() {
        cmd.current_dir(dir);
    }
    let limit = Duration::from_millis(spec["limit_ms"].as_u64().unwrap());
    let start = Instant::now();
    let child = cmd.spawn().expect("the kiln binary runs");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all zeroes
    // is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        let flags = if killed { 0 } else { libc::WNOHANG };
        // SAFETY: `pid` is a child of this process that nothing else waits
        // for (`child` is never waited on through std), and `status` and
        // `usage` are valid for writes for the duration of the call.
        let waited = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if waited == pid {
            break;
        }
        if waited == 0 {
            if start.elapsed() > limit {
                // SAFETY: `pid` is this process's own child, not yet
                // reaped, so it names no other process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = true;
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    let result = serde_json::json!({
        "status": status,
        "elapsed_ms": u64::try_from(start.elapsed().as_millis()).unwrap(),
        // Linux reports `ru_maxrss` in KiB.
        "max_rss_kib": u64::try_from(usage.ru_maxrss).unwrap(),
        "killed": killed,
    });
    std::fs::write(out.join("result.json"), result.to_string()).unwrap();
}

/// kiln in a fresh directory (so a reference is never taken for a file),
/// with no credentials.
fn k(dir: &std::path::Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("CI", "1")
        // A backtrace captured for the error would load the debug
        // information and count against the memory measured.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    c
}

/// Whether an error names the 4 MiB limit on what is not a blob.
fn names_limit(err: &str) -> bool {
    err.contains("4 MiB") || err.contains("4194304") || err.contains("4,194,304")
}

/// Asserts that `kiln inspect` of a reference on `host` is refused quickly,
/// in little memory, naming the limit.
fn assert_inspect_refused(host: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let run = measure(
        k(dir.path()).arg("inspect").arg(format!("{host}/r:t")),
        Duration::from_secs(15),
    );
    eprintln!("{what}: {run}");
    assert_eq!(run.status.code(), Some(2), "{what}: {run}");
    assert!(run.elapsed < Duration::from_secs(5), "{what}: {run}");
    assert!(run.max_rss_kib < MAX_RSS_KIB, "{what}: {run}");
    assert!(names_limit(&run.stderr), "{what}: no limit named: {run}");
    assert!(
        run.stderr.contains(host),
        "{what}: no registry named: {run}"
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {run}");
    assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);
}

#[test]
fn a_256_mib_manifest_is_refused_at_the_limit_in_little_memory() {
    assert_inspect_refused(&serve(huge_manifest), "a declared 256 MiB manifest");
    assert_inspect_refused(
        &serve(huge_manifest_unannounced),
        "a 256 MiB manifest without a length",
    );
}

#[test]
fn a_256_mib_token_reply_is_refused_at_the_limit_in_little_memory() {
    assert_inspect_refused(&serve(huge_token), "a 256 MiB token reply");
}

#[test]
fn a_tag_list_that_links_to_itself_ends() {
    let host = serve(self_linking_tags);
    let dir = tempfile::tempdir().unwrap();
    let run = measure(
        k(dir.path()).arg("tags").arg(format!("{host}/r")),
        Duration::from_secs(12),
    );
    eprintln!("self-linking tag list: {run}");
    assert!(!run.killed, "`kiln tags` did not end: {run}");
    assert!(run.elapsed < Duration::from_secs(5), "{run}");
    assert!(run.max_rss_kib < MAX_RSS_KIB, "{run}");
    assert!(!run.stderr.contains("panicked"), "{run}");
    match run.status.code() {
        // The tags of the one page there is, each once.
        Some(0) => {
            let tags: Vec<&str> = run.stdout.lines().collect();
            assert!(!tags.is_empty(), "{run}");
            let mut unique = tags.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), tags.len(), "tags repeated: {run}");
        }
        Some(2) => assert!(run.stderr.contains(&host), "{run}"),
        _ => panic!("{run}"),
    }
}

#[test]
fn a_registry_sending_a_byte_every_two_seconds_times_out() {
    let host = serve(trickle);
    let dir = tempfile::tempdir().unwrap();
    // Two attempts of at most 3 seconds each, and one pause between them.
    let run = measure(
        k(dir.path()).arg("pull").arg(format!("{host}/r:t")).args([
            "--timeout",
            "3",
            "--retries",
            "2",
        ]),
        Duration::from_secs(15),
    );
    eprintln!("trickling registry: {run}");
    assert!(!run.killed, "`kiln pull` did not end: {run}");
    assert_eq!(run.status.code(), Some(2), "{run}");
    assert!(run.elapsed < Duration::from_secs(10), "{run}");
    assert!(run.stderr.contains(&host), "{run}");
    assert!(
        run.stderr.contains("time") || run.stderr.contains("deadline"),
        "the error does not say it timed out: {run}"
    );
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .all(|e| e.file_name() == "cache" || e.file_name() == ".docker"),
        "a failed pull wrote something"
    );
}
