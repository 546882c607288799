//! Faults survived: push, pull, sign, publish and tags through a fault-injecting proxy.
//!
//! Faults survived: push, pull, sign, publish and tags through a
//! fault-injecting proxy in front of a real registry (and its token service). A
//! transient fault is retried and the run succeeds; a persistent one is a clear
//! error (exit 2) naming the registry and the operation; after any fault no tag
//! points at a manifest whose blobs are missing; a rerun uploads nothing that
//! is already there. `KILN_TEST_FAST_RETRY=1` and small `--timeout`/`--retries`
//! keep the matrix to seconds.

use crate::common::*;
use crate::fault_proxy::{Fault, FaultProxy, Rule, When};
use crate::registry_harness::{PASSWORD, Registry, USER, Variant, check_whole};
use crate::trust::module;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const KEY_PASSWORD: &str = "faults-test-password";

/// Attempts and deadline of every run: four attempts, two seconds each.
const NET: [&str; 4] = ["--timeout", "2", "--retries", "4"];

/// Longer than the deadline.
const STALL: Duration = Duration::from_secs(5);

/// No faulty run may take longer (a stall costs one deadline per attempt).
const MAX_RUN: Duration = Duration::from_secs(15);

const UPLOAD: &str = "/v2/*/blobs/uploads/*";
const BLOB: &str = "/v2/*/blobs/sha256:*";
const MANIFEST: &str = "/v2/*/manifests/*";
const TAGS: &str = "/v2/*/tags/list";

/// kiln in `dir` with its own Docker config and cache, fast retries, and
/// no credentials from the environment.
fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", KEY_PASSWORD)
        .env("KILN_TEST_FAST_RETRY", "1")
        .env("CI", "1");
    c
}

/// Runs a command that talks to the registry, with [`NET`], and checks it
/// ends within [`MAX_RUN`].
fn net(cmd: &mut Command, what: &str) -> Output {
    net_with(cmd, what, &NET)
}

/// [`net`] with other network options.
fn net_with(cmd: &mut Command, what: &str, options: &[&str]) -> Output {
    let start = Instant::now();
    let out = run(cmd.args(options));
    assert!(
        start.elapsed() < MAX_RUN,
        "{what}: took {:?}\n{}",
        start.elapsed(),
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("panicked"),
        "{what}: {}",
        stderr(&out)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// A registry with the proxy in front, and a directory to work in.
struct Bench {
    reg: Registry,
    proxy: FaultProxy,
    dir: tempfile::TempDir,
}

impl Bench {
    fn plain() -> Bench {
        let reg = Registry::start(Variant::Plain);
        let proxy = FaultProxy::start(&reg.host);
        Bench {
            reg,
            proxy,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `PROXY/faults/NAME:v1`.
    fn reference(&self, name: &str) -> String {
        format!("{}/faults/{name}:v1", self.proxy.host)
    }

    /// The same artifact reached without the proxy.
    fn direct(&self, name: &str) -> String {
        format!("{}/faults/{name}:v1", self.reg.host)
    }

    fn repository(name: &str) -> String {
        format!("faults/{name}")
    }

    /// The manifest or blob with `digest`, when it is stored and linked
    /// into the repository.
    fn stored_blob(&self, name: &str, digest: &str) -> Option<Vec<u8>> {
        self.reg.linked_blob(&Bench::repository(name), digest)
    }

    /// The digests of the blobs linked into the repository.
    fn stored(&self, name: &str) -> BTreeSet<String> {
        self.reg.linked_layers(&Bench::repository(name))
    }

    /// Every tag and the digest it points at, read from storage.
    fn tagged(&self, name: &str) -> Vec<(String, String)> {
        self.reg.tags(&Bench::repository(name))
    }

    /// Checks that everything reachable from the tags is stored whole,
    /// with the digest and size its descriptor gives; returns the blobs
    /// (not manifests) reachable, with their sizes.
    fn check_whole(&self, name: &str) -> BTreeSet<(String, u64)> {
        check_whole(name, self.tagged(name), |d| self.stored_blob(name, d))
    }

    /// Bytes of the blobs reachable now that were not stored `before`: the
    /// most a rerun may upload.
    fn missing_bytes(&self, name: &str, before: &BTreeSet<String>) -> u64 {
        self.check_whole(name)
            .iter()
            .filter(|b| !before.contains(&b.0))
            .map(|b| b.1)
            .sum()
    }

    fn unique(&self) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}

/// One fault and the request it is on.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    fault: Fault,
}

fn case(name: &'static str, method: &'static str, path: &'static str, fault: Fault) -> Case {
    Case {
        name,
        method,
        path,
        fault,
    }
}

impl Case {
    fn rule(&self, when: When) -> Vec<Rule> {
        vec![Rule::new(self.method, self.path, self.fault.clone(), when)]
    }
}

/// Transient faults on requests of `method` and `path`, each injected on
/// the first one (or two) only: those of `names` among `drop`,
/// `drop-mid-body`, `cut-short`, `500` (twice), `502`, `503-retry-after`,
/// `429-retry-after`, `stall`, `stall-mid-body` and `wrong-digest`.
fn transient(method: &'static str, path: &'static str, names: &[&str]) -> Vec<(Case, When)> {
    let all = vec![
        (case("drop", method, path, Fault::Drop), When::First(1)),
        (
            case("drop-mid-body", method, path, Fault::DropMidBody),
            When::First(1),
        ),
        (
            case("cut-short", method, path, Fault::CutShort),
            When::First(1),
        ),
        (
            case("500", method, path, Fault::Status(500, None)),
            When::First(2),
        ),
        (
            case("502", method, path, Fault::Status(502, None)),
            When::First(1),
        ),
        (
            case("503-retry-after", method, path, Fault::Status(503, Some(1))),
            When::First(1),
        ),
        (
            case("429-retry-after", method, path, Fault::Status(429, Some(1))),
            When::First(1),
        ),
        (
            case("stall", method, path, Fault::Stall(STALL)),
            When::Nth(1),
        ),
        (
            case("stall-mid-body", method, path, Fault::StallMidBody(STALL)),
            When::Nth(1),
        ),
        (
            case("wrong-digest", method, path, Fault::WrongDigest),
            When::First(1),
        ),
    ];
    for name in names {
        assert!(
            all.iter().any(|(c, _)| c.name == *name),
            "no fault `{name}`"
        );
    }
    all.into_iter()
        .filter(|(c, _)| names.contains(&c.name))
        .collect()
}

/// Asserts that the run retried through the fault and succeeded.
fn assert_retried(bench: &Bench, c: &Case, out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: a transient fault was not survived: {}\n{}",
        stderr(out),
        bench.proxy.log()
    );
    let fired = bench.proxy.fired();
    assert!(
        fired >= 1,
        "{what}: the fault never fired\n{}",
        bench.proxy.log()
    );
    assert!(
        bench.proxy.count(c.method, c.path) > fired,
        "{what}: the request was not made again after the fault\n{}",
        bench.proxy.log()
    );
}

/// Asserts a clear error: exit 2, naming the registry and (any of)
/// `operation`.
fn assert_clear_error(out: &Output, host: &str, operation: &[&str], what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.contains(host),
        "{what}: the error does not name the registry `{host}`: {err}"
    );
    let lower = err.to_lowercase();
    assert!(
        operation.iter().any(|o| lower.contains(o)),
        "{what}: the error names none of {operation:?}: {err}"
    );
}

/// Whether an error names the 4 MiB limit on what is not a blob.
fn names_limit(err: &str) -> bool {
    err.contains("4 MiB") || err.contains("4194304") || err.contains("4,194,304")
}

/// Runs `check` on every case, on past one that fails, and then fails
/// naming each that did (their own messages are above): one report for
/// the whole matrix.
fn each<T>(cases: &[T], name: impl Fn(&T) -> String, check: impl Fn(usize, &T)) {
    let failed: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(i, c)))
                .err()
                .map(|_| name(c))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:#?}",
        failed.len(),
        cases.len()
    );
}

fn uploaded(out: &Output) -> u64 {
    json_of(out)["uploaded_bytes"].as_u64().unwrap()
}

#[test]
fn push_survives_transient_faults_on_every_request() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let bench = Bench::plain();
    let mut cases = transient("HEAD", BLOB, &["drop", "503-retry-after"]);
    cases.extend(transient(
        "POST",
        UPLOAD,
        &["500", "429-retry-after", "stall"],
    ));
    cases.extend(transient("PUT", UPLOAD, &["drop", "drop-mid-body", "502"]));
    cases.extend(transient(
        "PUT",
        MANIFEST,
        &[
            "drop-mid-body",
            "503-retry-after",
            "429-retry-after",
            "stall",
        ],
    ));
    let name = |(c, _): &(Case, When)| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |i, (c, when)| {
        let name = format!("push-{i}");
        let what = format!("push with {} on {} {}", c.name, c.method, c.path);
        // Content of its own, so no blob can be mounted from another case.
        let wasm = module(bench.path(), &format!("pushed{i}"));
        let layer = kiln_core::Digest::of(&std::fs::read(&wasm).unwrap()).to_string();
        bench.proxy.set(c.rule(*when));
        bench.proxy.reset_log();
        let out = net(
            k(bench.path())
                .arg("push")
                .arg(&wasm)
                .arg(bench.reference(&name))
                .arg("--json"),
            &what,
        );
        assert_retried(&bench, c, &out, &what);
        bench.proxy.clear();
        // The tag points at a whole artifact whose layer is the module.
        let blobs = bench.check_whole(&name);
        assert!(blobs.iter().any(|(d, _)| *d == layer), "{what}: {blobs:?}");
        // Everything is there now: a rerun uploads nothing.
        let again = net(
            k(bench.path())
                .arg("push")
                .arg(&wasm)
                .arg(bench.reference(&name))
                .arg("--json"),
            &what,
        );
        assert!(again.status.success(), "{what}: {}", stderr(&again));
        assert_eq!(uploaded(&again), 0, "{what}: the rerun uploaded again");
    });
}

#[test]
fn push_fails_clearly_on_persistent_faults_and_a_rerun_finishes() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let bench = Bench::plain();
    let cases: Vec<(Case, &[&str])> = vec![
        (
            case("500", "POST", UPLOAD, Fault::Status(500, None)),
            &["upload", "blob"],
        ),
        (
            case("503", "PUT", UPLOAD, Fault::Status(503, Some(1))),
            &["upload", "blob"],
        ),
        (
            case("drop", "PUT", UPLOAD, Fault::DropMidBody),
            &["upload", "blob"],
        ),
        (
            case("502", "PUT", MANIFEST, Fault::Status(502, None)),
            &["manifest"],
        ),
        (
            case("stall", "PUT", MANIFEST, Fault::Stall(STALL)),
            &["manifest", "time"],
        ),
    ];
    let name = |(c, _): &(Case, &[&str])| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |i, (c, operation)| {
        let name = format!("push-persistent-{i}");
        let what = format!("push with {} always on {} {}", c.name, c.method, c.path);
        let wasm = module(bench.path(), &format!("persistent{i}"));
        bench.proxy.set(c.rule(When::Always));
        bench.proxy.reset_log();
        // A stall costs a deadline per attempt: fewer, shorter ones.
        let options: &[&str] = if c.name == "stall" {
            &["--timeout", "1", "--retries", "2"]
        } else {
            &NET
        };
        let out = net_with(
            k(bench.path())
                .arg("push")
                .arg(&wasm)
                .arg(bench.reference(&name))
                .arg("--json"),
            &what,
            options,
        );
        assert_clear_error(&out, &bench.proxy.host, operation, &what);
        if c.name != "stall" {
            assert!(
                bench.proxy.count(c.method, c.path) >= 2,
                "{what}: not retried\n{}",
                bench.proxy.log()
            );
        }
        assert!(
            bench.proxy.count(c.method, c.path) <= 4 * 3,
            "{what}: more attempts than --retries allows\n{}",
            bench.proxy.log()
        );
        bench.proxy.clear();
        // Nothing tagged, or whatever is tagged is whole.
        bench.check_whole(&name);
        let before = bench.stored(&name);
        let again = net(
            k(bench.path())
                .arg("push")
                .arg(&wasm)
                .arg(bench.reference(&name))
                .arg("--json"),
            &what,
        );
        assert!(again.status.success(), "{what}: rerun: {}", stderr(&again));
        let missing = bench.missing_bytes(&name, &before);
        assert!(
            uploaded(&again) <= missing,
            "{what}: the rerun uploaded {} bytes, {missing} were missing",
            uploaded(&again)
        );
        if c.path == MANIFEST {
            assert_eq!(uploaded(&again), 0, "{what}: every blob was already in");
        }
    });

    // A wrong `Docker-Content-Digest` on every stored manifest: kiln goes
    // by the digest of what it sent, or refuses; it never reports the
    // wrong one, and whatever is tagged is whole.
    let what = "push with a wrong Docker-Content-Digest on every stored manifest";
    let name = "push-wrong-digest";
    let wasm = module(bench.path(), "wrongdigest");
    bench.proxy.set(vec![Rule::new(
        "PUT",
        MANIFEST,
        Fault::WrongDigest,
        When::Always,
    )]);
    let out = net(
        k(bench.path())
            .arg("push")
            .arg(&wasm)
            .arg(bench.reference(name))
            .arg("--json"),
        what,
    );
    bench.proxy.clear();
    bench.check_whole(name);
    if out.status.success() {
        let tagged: Vec<String> = bench
            .tagged(name)
            .into_iter()
            .filter(|(tag, _)| tag == "v1")
            .map(|(_, digest)| digest)
            .collect();
        assert_eq!(
            tagged,
            [json_of(&out)["digest"].as_str().unwrap()],
            "{what}: kiln reported another digest than it stored"
        );
    } else {
        assert_clear_error(&out, &bench.proxy.host, &["digest"], what);
    }
}

#[test]
fn pull_survives_transient_faults_and_fails_clearly_on_persistent_ones() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let bench = Bench::plain();
    let wasm = module(bench.path(), "pulled");
    let original = std::fs::read(&wasm).unwrap();
    run_ok(
        k(bench.path())
            .arg("push")
            .arg(&wasm)
            .arg(bench.direct("pull"))
            .args(NET),
    );
    let reference = bench.reference("pull");
    let mut cases = transient(
        "GET",
        MANIFEST,
        &[
            "drop",
            "drop-mid-body",
            "cut-short",
            "503-retry-after",
            "429-retry-after",
            "stall",
            "wrong-digest",
        ],
    );
    cases.extend(transient(
        "GET",
        BLOB,
        &["drop-mid-body", "cut-short", "500", "502", "stall-mid-body"],
    ));
    let name = |(c, _): &(Case, When)| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |_, (c, when)| {
        let what = format!("pull with {} on {} {}", c.name, c.method, c.path);
        bench.proxy.set(c.rule(*when));
        bench.proxy.reset_log();
        let out_file = bench.path().join(format!("p-{}.wasm", bench.unique()));
        let out = net(
            k(bench.path())
                .arg("pull")
                .arg(&reference)
                .arg("-o")
                .arg(&out_file),
            &what,
        );
        assert_retried(&bench, c, &out, &what);
        assert_eq!(std::fs::read(&out_file).unwrap(), original, "{what}");
    });

    // A wrong `Docker-Content-Digest` on every manifest: kiln goes by the
    // digest of what it received, or refuses; it never reports the wrong
    // one.
    let truth = json_of(&run_ok(
        k(bench.path())
            .arg("pull")
            .arg(bench.direct("pull"))
            .arg("-o")
            .arg(bench.path().join("truth.wasm"))
            .arg("--json")
            .args(NET),
    ));
    bench.proxy.set(vec![Rule::new(
        "GET",
        MANIFEST,
        Fault::WrongDigest,
        When::Always,
    )]);
    let out_file = bench.path().join("wrong-digest.wasm");
    let out = net(
        k(bench.path())
            .arg("pull")
            .arg(&reference)
            .arg("-o")
            .arg(&out_file)
            .arg("--json"),
        "pull with a wrong Docker-Content-Digest",
    );
    if out.status.success() {
        assert_eq!(
            json_of(&out)["manifest_digest"],
            truth["manifest_digest"],
            "the pull reported the registry's wrong digest"
        );
        assert_eq!(std::fs::read(&out_file).unwrap(), original);
    } else {
        assert_clear_error(
            &out,
            &bench.proxy.host,
            &["digest"],
            "pull with a wrong Docker-Content-Digest",
        );
        assert!(!out_file.exists(), "a refused pull wrote its output");
    }

    // Persistent faults.
    let cases: Vec<(Case, &[&str])> = vec![
        (
            case("500", "GET", BLOB, Fault::Status(500, None)),
            &["blob", "download"],
        ),
        (
            case("drop", "GET", MANIFEST, Fault::DropMidBody),
            &["manifest"],
        ),
        (
            case("503", "GET", MANIFEST, Fault::Status(503, None)),
            &["manifest"],
        ),
        (
            case("cut-short", "GET", BLOB, Fault::CutShort),
            &["blob", "download"],
        ),
    ];
    let name = |(c, _): &(Case, &[&str])| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |_, (c, operation)| {
        let what = format!("pull with {} always on {} {}", c.name, c.method, c.path);
        bench.proxy.set(c.rule(When::Always));
        bench.proxy.reset_log();
        let out_file = bench.path().join(format!("p-{}.wasm", bench.unique()));
        let out = net(
            k(bench.path())
                .arg("pull")
                .arg(&reference)
                .arg("-o")
                .arg(&out_file),
            &what,
        );
        assert_clear_error(&out, &bench.proxy.host, operation, &what);
        assert!(
            bench.proxy.count(c.method, c.path) >= 2,
            "{what}: not retried\n{}",
            bench.proxy.log()
        );
        assert!(!out_file.exists(), "{what}: a failed pull wrote its output");
    });

    // An oversized manifest: refused at the limit, and not retried into a
    // long wait.
    bench.proxy.set(vec![Rule::new(
        "GET",
        "/v2/*/manifests/v1",
        Fault::OversizedManifest,
        When::Always,
    )]);
    let out_file = bench.path().join("oversized.wasm");
    let out = net(
        k(bench.path())
            .arg("pull")
            .arg(&reference)
            .arg("-o")
            .arg(&out_file),
        "pull of an oversized manifest",
    );
    assert_clear_error(
        &out,
        &bench.proxy.host,
        &["manifest"],
        "pull of an oversized manifest",
    );
    assert!(names_limit(&stderr(&out)), "{}", stderr(&out));
    assert!(!out_file.exists());
}

#[test]
fn sign_survives_transient_faults_and_a_rerun_after_a_persistent_one_finishes() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let bench = Bench::plain();
    let dir = bench.path();
    run_ok(k(dir).args(["keygen", "--output-prefix", "k"]));
    let wasm = module(dir, "signed");
    let cases: Vec<(Case, When)> = vec![
        (
            case("500", "PUT", MANIFEST, Fault::Status(500, None)),
            When::First(1),
        ),
        (
            case("drop", "PUT", MANIFEST, Fault::DropMidBody),
            When::First(1),
        ),
        (
            case(
                "503-retry-after",
                "GET",
                MANIFEST,
                Fault::Status(503, Some(1)),
            ),
            When::First(1),
        ),
        (
            case("drop-mid-body", "GET", MANIFEST, Fault::DropMidBody),
            When::First(1),
        ),
        (
            case("429", "POST", UPLOAD, Fault::Status(429, Some(1))),
            When::First(1),
        ),
        (case("drop", "PUT", UPLOAD, Fault::Drop), When::First(1)),
    ];
    let verify = |name: &str, what: &str| {
        let out = net(
            k(dir)
                .arg("verify")
                .arg(bench.direct(name))
                .args(["--key", "k.pub"]),
            what,
        );
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
    };
    let name = |(c, _): &(Case, When)| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |i, (c, when)| {
        let name = format!("sign-{i}");
        let what = format!("sign with {} on {} {}", c.name, c.method, c.path);
        run_ok(
            k(dir)
                .arg("push")
                .arg(&wasm)
                .arg(bench.direct(&name))
                .args(NET),
        );
        bench.proxy.set(c.rule(*when));
        bench.proxy.reset_log();
        let out = net(
            k(dir)
                .arg("sign")
                .arg(bench.reference(&name))
                .args(["--key", "k.key"]),
            &what,
        );
        assert_retried(&bench, c, &out, &what);
        bench.proxy.clear();
        bench.check_whole(&name);
        verify(&name, &what);
    });

    // Persistent: the signature cannot be stored.
    let name = "sign-persistent";
    let what = "sign with 503 always on PUT manifests";
    run_ok(
        k(dir)
            .arg("push")
            .arg(&wasm)
            .arg(bench.direct(name))
            .args(NET),
    );
    bench
        .proxy
        .set(case("503", "PUT", MANIFEST, Fault::Status(503, None)).rule(When::Always));
    let out = net(
        k(dir)
            .arg("sign")
            .arg(bench.reference(name))
            .args(["--key", "k.key"]),
        what,
    );
    assert_clear_error(
        &out,
        &bench.proxy.host,
        &["signature", "manifest", "sign"],
        what,
    );
    bench.proxy.clear();
    bench.check_whole(name);
    let out = net(
        k(dir)
            .arg("sign")
            .arg(bench.reference(name))
            .args(["--key", "k.key"]),
        what,
    );
    assert!(out.status.success(), "{what}: rerun: {}", stderr(&out));
    bench.check_whole(name);
    verify(name, what);
}

#[test]
fn tags_survive_transient_faults_and_refuse_an_oversized_list() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let bench = Bench::plain();
    let dir = bench.path();
    let wasm = module(dir, "tagged");
    for tag in ["v1", "v2"] {
        run_ok(
            k(dir)
                .arg("push")
                .arg(&wasm)
                .arg(format!("{}/faults/tags:{tag}", bench.reg.host))
                .args(NET),
        );
    }
    let repository = format!("{}/faults/tags", bench.proxy.host);
    let cases = transient(
        "GET",
        TAGS,
        &[
            "drop",
            "drop-mid-body",
            "cut-short",
            "500",
            "503-retry-after",
            "429-retry-after",
            "stall-mid-body",
        ],
    );
    let name = |(c, _): &(Case, When)| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |_, (c, when)| {
        let what = format!("tags with {} on {} {}", c.name, c.method, c.path);
        bench.proxy.set(c.rule(*when));
        bench.proxy.reset_log();
        let out = net(k(dir).arg("tags").arg(&repository), &what);
        assert_retried(&bench, c, &out, &what);
        assert_eq!(stdout(&out), "v1\nv2\n", "{what}");
    });

    let what = "tags with 500 always";
    bench
        .proxy
        .set(case("500", "GET", TAGS, Fault::Status(500, None)).rule(When::Always));
    bench.proxy.reset_log();
    let out = net(k(dir).arg("tags").arg(&repository), what);
    assert_clear_error(&out, &bench.proxy.host, &["tag"], what);
    assert!(bench.proxy.count("GET", TAGS) >= 2, "{what}: not retried");
    assert!(stdout(&out).is_empty(), "{what}: {}", stdout(&out));

    let what = "tags with an oversized list";
    bench
        .proxy
        .set(case("oversized", "GET", TAGS, Fault::OversizedTagList).rule(When::Always));
    let out = net(k(dir).arg("tags").arg(&repository), what);
    assert_clear_error(&out, &bench.proxy.host, &["tag"], what);
    assert!(names_limit(&stderr(&out)), "{what}: {}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{what}: {}", stdout(&out));
}

#[test]
fn the_token_exchange_survives_transient_faults_and_fails_clearly_on_persistent_ones() {
    if !requires_registry(Variant::Token) {
        return;
    }
    let reg = Registry::start(Variant::Token);
    let token = reg
        .token
        .as_ref()
        .unwrap()
        .realm
        .trim_start_matches("http://")
        .trim_end_matches("/token")
        .to_string();
    let proxy = FaultProxy::with_token_service(&reg.host, &token);
    let bench = Bench {
        reg,
        proxy,
        dir: tempfile::tempdir().unwrap(),
    };
    let dir = bench.path();
    let with_credentials = || {
        let mut c = k(dir);
        c.env("KILN_REGISTRY", &bench.proxy.host)
            .env("KILN_REGISTRY_USERNAME", USER)
            .env("KILN_REGISTRY_PASSWORD", PASSWORD);
        c
    };
    let cases: Vec<(Case, When)> = vec![
        (case("drop", "GET", "/token", Fault::Drop), When::First(1)),
        (
            case("drop-mid-body", "GET", "/token", Fault::DropMidBody),
            When::First(1),
        ),
        (
            case("503", "GET", "/token", Fault::Status(503, None)),
            When::First(1),
        ),
        (
            case("429", "GET", "/token", Fault::Status(429, Some(1))),
            When::First(1),
        ),
        (
            case("cut-short", "GET", "/token", Fault::CutShort),
            When::First(1),
        ),
    ];
    let name = |(c, _): &(Case, When)| format!("{} on {} {}", c.name, c.method, c.path);
    each(&cases, name, |i, (c, when)| {
        let name = format!("token-{i}");
        let wasm = module(dir, &format!("token{i}"));
        let original = std::fs::read(&wasm).unwrap();
        let what = format!("push with {} on the token exchange", c.name);
        bench.proxy.set(c.rule(*when));
        bench.proxy.reset_log();
        let out = net(
            with_credentials()
                .arg("push")
                .arg(&wasm)
                .arg(bench.reference(&name))
                .arg("--json"),
            &what,
        );
        assert_retried(&bench, c, &out, &what);
        bench.proxy.clear();
        bench.check_whole(&name);
        let pulled = bench.path().join(format!("t-{i}.wasm"));
        let out = net(
            with_credentials()
                .arg("pull")
                .arg(bench.reference(&name))
                .arg("-o")
                .arg(&pulled),
            &what,
        );
        assert!(out.status.success(), "{what}: pull: {}", stderr(&out));
        assert_eq!(std::fs::read(&pulled).unwrap(), original, "{what}");
    });

    let what = "push with 500 always on the token exchange";
    let wasm = module(dir, "token");
    bench
        .proxy
        .set(case("500", "GET", "/token", Fault::Status(500, None)).rule(When::Always));
    let out = net(
        with_credentials()
            .arg("push")
            .arg(&wasm)
            .arg(bench.reference("token-persistent"))
            .arg("--json"),
        what,
    );
    assert_clear_error(&out, &bench.proxy.host, &["token", "authenticat"], what);
    let err = stderr(&out);
    assert!(!err.contains(PASSWORD), "{what}: the password was printed");
    bench.check_whole("token-persistent");
    assert!(bench.tagged("token-persistent").is_empty(), "{what}");
}

#[test]
fn publish_survives_transient_faults_and_a_rerun_after_a_persistent_one_uploads_only_what_is_missing()
 {
    if !requires(&["clang"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let bench = Bench::plain();
    let dir = bench.path();
    run_ok(k(dir).args(["keygen", "--output-prefix", "k"]));
    let project = dir.join("project");
    copy_dir(&fixture("c-command"), &project);
    let publish = |name: &str| {
        let mut c = k(dir);
        c.arg("publish")
            .arg(&project)
            .arg("--to")
            .arg(bench.reference(name))
            .args(["--key", "k.key", "--json", "--receipt"])
            .arg(dir.join(format!("{name}.receipt.json")));
        c
    };
    let receipt = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.receipt.json"))).unwrap())
            .unwrap()
    };
    let verify = |name: &str, what: &str| {
        let out = net(
            k(dir)
                .arg("verify")
                .arg(bench.direct(name))
                .args(["--key", "k.pub"]),
            what,
        );
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
    };

    // Transient faults on uploads and on the manifests (the component's,
    // its precompiled artifact's, the SBOM's, the signatures').
    let what = "publish with transient faults";
    bench.proxy.set(vec![
        Rule::new("PUT", UPLOAD, Fault::Status(503, Some(1)), When::First(1)),
        Rule::new("PUT", MANIFEST, Fault::DropMidBody, When::Nth(2)),
        Rule::new("PUT", MANIFEST, Fault::Status(500, None), When::Nth(4)),
    ]);
    let out = net(&mut publish("publish"), what);
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        stderr(&out),
        bench.proxy.log()
    );
    assert_eq!(bench.proxy.fired(), 3, "{what}\n{}", bench.proxy.log());
    bench.proxy.clear();
    bench.check_whole("publish");
    verify("publish", what);

    // Persistent: no manifest can be stored.
    let what = "publish with 500 always on PUT manifests";
    let name = "publish-persistent";
    bench.proxy.set(vec![Rule::new(
        "PUT",
        MANIFEST,
        Fault::Status(500, None),
        When::Always,
    )]);
    let out = net(&mut publish(name), what);
    assert_clear_error(&out, &bench.proxy.host, &["manifest"], what);
    bench.proxy.clear();
    bench.check_whole(name);
    assert!(bench.tagged(name).is_empty(), "{what}: a tag was written");
    let before = bench.stored(name);
    let out = net(&mut publish(name), what);
    assert!(out.status.success(), "{what}: rerun: {}", stderr(&out));
    let up = receipt(name)["run"]["uploaded_bytes"].as_u64().unwrap();
    let missing = bench.missing_bytes(name, &before);
    assert!(
        up <= missing,
        "{what}: the rerun uploaded {up} bytes, {missing} were missing"
    );
    verify(name, what);
}
