//! Registry credentials where docker, oras, cosign and podman users keep them, and login/logout.
//!
//! They are looked up in order:
//! `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` (for the registry
//! `KILN_REGISTRY` names, else the one registry a command addresses), then
//! Docker's `config.json` (`credHelpers`, `credsStore`, `auths` with `auth` or
//! `identitytoken`), then the containers auth file podman, skopeo and buildah
//! write (`auths`, also keyed by repository). `login`/`logout` write Docker's
//! file.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use kiln_core::Reporter;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Credentials for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: anonymous access (token flows still run).
    Anonymous,
    /// User name and password (or access token used as a password).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An identity (refresh) token, sent as a bearer token.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Where credentials came from, for messages (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No credentials found.
    None,
    /// `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD`.
    Environment {
        /// Whether `KILN_REGISTRY` names this registry: the credentials
        /// may then go to any token service it names. Otherwise they are
        /// used only because the command addresses this registry, and go
        /// only to it and a token service on its own host and port.
        named: bool,
    },
    /// A credential helper, by name.
    Helper(String),
    /// `auths` in Docker's config file.
    ConfigFile(PathBuf),
    /// `auths` in the containers auth file (podman's, see [`auth_file_paths`]).
    AuthFile(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::None => f.write_str("no credentials"),
            Source::Environment { .. } => {
                f.write_str("KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD")
            }
            Source::Helper(h) => write!(f, "credential helper docker-credential-{h}"),
            Source::ConfigFile(p) | Source::AuthFile(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
}

fn read_config() -> Result<(Option<PathBuf>, Map<String, Value>)> {
    let Some(path) = config_path() else {
        return Ok((None, Map::new()));
    };
    let config = read_json_object(&path)?.unwrap_or_default();
    Ok((Some(path), config))
}

/// Parses the bytes of Docker's `config.json` or a containers auth file:
/// any JSON object. Bytes that are not JSON fail with the JSON parser's
/// own error; JSON that is not an object fails with a message saying so.
pub fn parse_config(bytes: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(bytes)? {
        Value::Object(map) => Ok(map),
        _ => bail!("not a JSON object"),
    }
}

/// A JSON object from a file, `None` when the file does not exist.
fn read_json_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    match std::fs::read(path) {
        Ok(bytes) => parse_config(&bytes).map(Some).map_err(|e| {
            if e.is::<serde_json::Error>() {
                e.context(format!("`{}` is not valid JSON", path.display()))
            } else {
                anyhow!("`{}` is not a JSON object", path.display())
            }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// The containers auth files podman, skopeo and buildah read, in order:
/// `REGISTRY_AUTH_FILE` alone when set, else
/// `$XDG_RUNTIME_DIR/containers/auth.json` (where `podman login` writes)
/// and then `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config` when
/// unset). kiln reads them for credentials only; `kiln login` writes
/// Docker's config file.
pub fn auth_file_paths() -> Vec<PathBuf> {
    auth_file_paths_from(|name| std::env::var_os(name))
}

fn auth_file_paths_from(var: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let var = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        return vec![file];
    }
    let mut paths = Vec::new();
    if let Some(run) = var("XDG_RUNTIME_DIR") {
        paths.push(run.join("containers/auth.json"));
    }
    if let Some(config) = var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config")))
    {
        paths.push(config.join("containers/auth.json"));
    }
    paths
}

/// The keys a registry's credentials may be stored under in a containers
/// auth file, most specific first: `host/namespace/…` for each prefix of
/// the repository (podman's repository-scoped entries), then the registry
/// as [`config_keys`] spells it.
pub fn auth_file_keys(registry: &str, repository: Option<&str>) -> Vec<String> {
    let host = match canonical_registry(registry).as_str() {
        "docker.io" => "docker.io".to_string(),
        _ => registry.to_string(),
    };
    let mut keys = Vec::new();
    if let Some(repository) = repository.filter(|r| !r.is_empty()) {
        let parts: Vec<&str> = repository.split('/').collect();
        for n in (1..=parts.len()).rev() {
            keys.push(format!("{host}/{}", parts[..n].join("/")));
        }
    }
    keys.extend(config_keys(registry));
    keys
}

/// The credentials `config` (a Docker config file or a containers auth
/// file, as [`parse_config`] returns it) holds under `auths` for the first
/// of `keys` it has an entry for; `None` when it has none, or that entry
/// holds neither an identity token nor `auth`. An `auth` that is not base64
/// of `user:password` is an error naming `registry` and `origin` (the file
/// it came from).
pub fn credentials_in(
    config: &Map<String, Value>,
    keys: &[String],
    registry: &str,
    origin: &Path,
) -> Result<Option<Credentials>> {
    match config
        .get("auths")
        .and_then(Value::as_object)
        .and_then(|a| keys.iter().find_map(|k| a.get(k)))
    {
        Some(entry) => entry_credentials(entry, registry, origin),
        None => Ok(None),
    }
}

/// The credentials an `auths` entry holds (`identitytoken`, else `auth`),
/// `None` when it holds neither.
fn entry_credentials(entry: &Value, registry: &str, path: &Path) -> Result<Option<Credentials>> {
    if let Some(token) = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(Credentials::Token(token.to_string())));
    }
    let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .with_context(|| {
            format!(
                "the `auth` entry for `{registry}` in `{}` is not base64 of `user:password`",
                path.display()
            )
        })?;
    let (username, password) = decoded.split_once(':').with_context(|| {
        format!(
            "the `auth` entry for `{registry}` in `{}` has no `:` between user and password",
            path.display()
        )
    })?;
    Ok(Some(Credentials::Basic {
        username: username.to_string(),
        password: password.to_string(),
    }))
}

/// The credentials the first of `paths` with an entry for `keys` holds
/// (the first key found in that file), and that file.
fn auth_file_credentials(
    paths: &[PathBuf],
    keys: &[String],
    registry: &str,
) -> Result<Option<(Credentials, PathBuf)>> {
    for path in paths {
        let Some(file) = read_json_object(path)? else {
            continue;
        };
        if let Some(credentials) = credentials_in(&file, keys, registry, path)? {
            return Ok(Some((credentials, path.clone())));
        }
    }
    Ok(None)
}

/// The keys a registry may be stored under in `auths`: docker writes
/// `https://index.docker.io/v1/` for Docker Hub and the bare host for
/// others; some tools add a scheme.
pub fn config_keys(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return vec![
            "https://index.docker.io/v1/".to_string(),
            "index.docker.io".to_string(),
            "docker.io".to_string(),
        ];
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ]
}

/// How the command came to talk to a registry, which decides whether
/// `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` may go to it when
/// `KILN_REGISTRY` names no registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed {
    /// The command names it: the registry of the reference pushed, pulled,
    /// signed or read.
    Directly,
    /// Anything else, such as a registry another registry or an artifact
    /// points to: the environment's credentials never go there unless
    /// `KILN_REGISTRY` names it.
    Indirectly,
}

/// The registry the environment's credentials went to in this process
/// when `KILN_REGISTRY` is unset: they go to one registry, never a second.
static ADDRESSED_REGISTRY: Mutex<Option<String>> = Mutex::new(None);

/// Whether the environment's credentials apply to a registry, and if not,
/// why not (for a warning).
#[derive(Debug, PartialEq, Eq)]
enum EnvScope {
    /// `KILN_REGISTRY` names it.
    Named,
    /// `KILN_REGISTRY` is unset and the command addresses it.
    Addressed,
    /// Not for this registry.
    Elsewhere(String),
}

/// A registry name as `KILN_REGISTRY` may spell it, made comparable:
/// no scheme or trailing slash, lower case, Docker Hub's aliases as one.
fn canonical_registry(name: &str) -> String {
    let name = name.trim().trim_end_matches('/');
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    match name.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "index.docker.io/v1" => {
            "docker.io".to_string()
        }
        _ => name,
    }
}

/// Decides [`EnvScope`] for `registry` given `KILN_REGISTRY` (`named`)
/// and the registry the credentials already went to (`claimed`, which
/// this records).
fn env_scope(
    registry: &str,
    addressed: Addressed,
    named: Option<&str>,
    claimed: &Mutex<Option<String>>,
) -> EnvScope {
    let this = canonical_registry(registry);
    if let Some(named) = named {
        return if canonical_registry(named) == this {
            EnvScope::Named
        } else {
            EnvScope::Elsewhere(format!("`KILN_REGISTRY` names `{}`", named.trim()))
        };
    }
    if addressed == Addressed::Indirectly {
        return EnvScope::Elsewhere(format!(
            "`{registry}` is not the registry this command addresses; set `KILN_REGISTRY={registry}` to use them there"
        ));
    }
    // Nothing panics while holding the lock; a poisoned one holds a name.
    let mut claimed = claimed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match claimed.as_deref() {
        Some(first) if first != this => EnvScope::Elsewhere(format!(
            "they went to `{first}` already and go to one registry only; set `KILN_REGISTRY` to choose it"
        )),
        _ => {
            *claimed = Some(this);
            EnvScope::Addressed
        }
    }
}

/// The credentials to use for `registry`, and where they came from.
///
/// `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` come first, for the
/// registry `KILN_REGISTRY` names, or when it is unset for the one registry
/// the command addresses directly; `reporter` is warned when they are set
/// but not for `registry`, which then gets what Docker's config file holds
/// for it, else what the containers auth file holds for the registry.
pub fn credentials(
    registry: &str,
    addressed: Addressed,
    reporter: &dyn Reporter,
) -> Result<(Credentials, Source)> {
    repository_credentials(registry, None, addressed, reporter)
}

/// [`credentials`] for one repository of `registry`: the containers auth
/// file's entries for `registry/namespace…` prefixes of `repository` come
/// before its entry for the whole registry, longest first, as podman reads
/// them. Docker's config file has no such entries.
pub fn repository_credentials(
    registry: &str,
    repository: Option<&str>,
    addressed: Addressed,
    reporter: &dyn Reporter,
) -> Result<(Credentials, Source)> {
    if let (Ok(username), Ok(password)) = (
        std::env::var("KILN_REGISTRY_USERNAME"),
        std::env::var("KILN_REGISTRY_PASSWORD"),
    ) && !username.is_empty()
    {
        let named = std::env::var("KILN_REGISTRY")
            .ok()
            .filter(|r| !r.trim().is_empty());
        match env_scope(registry, addressed, named.as_deref(), &ADDRESSED_REGISTRY) {
            EnvScope::Elsewhere(why) => reporter.warn(&format!(
                "not using `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` for `{registry}`: {why}"
            )),
            scope => {
                return Ok((
                    Credentials::Basic { username, password },
                    Source::Environment {
                        named: scope == EnvScope::Named,
                    },
                ));
            }
        }
    }
    let (path, config) = read_config()?;
    let keys = config_keys(registry);
    let helper = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| keys.iter().find_map(|k| h.get(k)))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper
        && let Some(c) = helper_get(helper, &keys[0])?
    {
        return Ok((c, Source::Helper(helper.to_string())));
    }
    if let Some(path) = path
        && let Some(credentials) = credentials_in(&config, &keys, registry, &path)?
    {
        return Ok((credentials, Source::ConfigFile(path)));
    }
    let keys = auth_file_keys(registry, repository);
    if let Some((credentials, path)) = auth_file_credentials(&auth_file_paths(), &keys, registry)? {
        return Ok((credentials, Source::AuthFile(path)));
    }
    Ok((Credentials::Anonymous, Source::None))
}

/// Runs `docker-credential-<helper> get` for `server`. `None` when the
/// helper has no credentials for it.
fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let output = run_helper(&program, "get", server.as_bytes())?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if err.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        bail!(
            "`{program} get` failed ({}); its message is not shown because it may contain secrets",
            output.status
        );
    }
    helper_reply(&output.stdout).with_context(|| format!("`{program} get` did not print JSON"))
}

/// The credentials in what a credential helper's `get` printed
/// (`{"ServerURL", "Username", "Secret"}`): an identity token when the
/// user name is `<token>`, else a user name and password; `None` when the
/// secret is missing or empty. Fails (with the JSON parser's error) only
/// when `stdout` is not JSON.
pub fn helper_reply(stdout: &[u8]) -> Result<Option<Credentials>> {
    let v: Value = serde_json::from_slice(stdout)?;
    let username = v
        .get("Username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or_default();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if username == "<token>" {
        Credentials::Token(secret.to_string())
    } else {
        Credentials::Basic {
            username: username.to_string(),
            password: secret.to_string(),
        }
    }))
}

fn run_helper(program: &str, verb: &str, input: &[u8]) -> Result<std::process::Output> {
    let mut child = Command::new(program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("failed to run the credential helper `{program}`; is it installed and on PATH?")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .with_context(|| format!("failed to talk to `{program}`"))?;
    }
    child
        .wait_with_output()
        .with_context(|| format!("failed to run `{program}`"))
}

/// Stores credentials for `registry` as `docker login` does: through the
/// configured `credsStore`/`credHelpers` helper when there is one, else
/// base64 in `auths`. Returns the file or helper written to.
pub fn login(registry: &str, username: &str, password: &str) -> Result<Source> {
    let (path, mut config) = read_config()?;
    let path = path.context("cannot find Docker's config directory: set DOCKER_CONFIG or HOME")?;
    let key = config_keys(registry).remove(0);
    let helper = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.get(&key))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    if let Some(helper) = helper {
        let program = format!("docker-credential-{helper}");
        let input = serde_json::json!({"ServerURL": key, "Username": username, "Secret": password});
        let out = run_helper(&program, "store", input.to_string().as_bytes())?;
        if !out.status.success() {
            bail!("`{program} store` failed ({})", out.status);
        }
        // docker keeps an empty entry so the registry is listed.
        auths(&mut config).insert(key, Value::Object(Map::new()));
        write_config(&path, &config)?;
        return Ok(Source::Helper(helper));
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths(&mut config).insert(key, serde_json::json!({ "auth": encoded }));
    write_config(&path, &config)?;
    Ok(Source::ConfigFile(path))
}

/// Removes stored credentials for `registry`. Returns whether any were
/// stored.
pub fn logout(registry: &str) -> Result<bool> {
    let (path, mut config) = read_config()?;
    let Some(path) = path else { return Ok(false) };
    let keys = config_keys(registry);
    let helper = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.get(&keys[0]))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let mut removed = false;
    if let Some(helper) = helper {
        let out = run_helper(
            &format!("docker-credential-{helper}"),
            "erase",
            keys[0].as_bytes(),
        )?;
        removed |= out.status.success();
    }
    let a = auths(&mut config);
    for k in &keys {
        removed |= a.remove(k).is_some();
    }
    if removed {
        write_config(&path, &config)?;
    }
    Ok(removed)
}

fn auths(config: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let entry = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn write_config(path: &std::path::Path, config: &Map<String, Value>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let mut bytes = serde_json::to_vec_pretty(config)?;
    bytes.push(b'\n');
    kiln_core::fs::write_private(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_file(dir: &Path, name: &str, auths: Value) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::json!({ "auths": auths }).to_string()).unwrap();
        path
    }

    fn basic(user: &str, password: &str) -> Value {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        serde_json::json!({ "auth": auth })
    }

    #[test]
    fn auth_file_paths_follow_podman() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            auth_file_paths_from(env(&[
                ("REGISTRY_AUTH_FILE", "/a/auth.json"),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
                ("HOME", "/home/u"),
            ])),
            vec![PathBuf::from("/a/auth.json")]
        );
        assert_eq!(
            auth_file_paths_from(env(&[
                ("REGISTRY_AUTH_FILE", ""),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
                ("HOME", "/home/u"),
            ])),
            vec![
                PathBuf::from("/run/user/1/containers/auth.json"),
                PathBuf::from("/home/u/.config/containers/auth.json"),
            ]
        );
        assert_eq!(
            auth_file_paths_from(env(&[("XDG_CONFIG_HOME", "/cfg"), ("HOME", "/home/u")])),
            vec![PathBuf::from("/cfg/containers/auth.json")]
        );
        assert!(auth_file_paths_from(env(&[])).is_empty());
    }

    #[test]
    fn auth_file_keys_put_the_longest_repository_prefix_first() {
        assert_eq!(
            auth_file_keys("quay.io", Some("team/app/wasm"))[..4],
            [
                "quay.io/team/app/wasm",
                "quay.io/team/app",
                "quay.io/team",
                "quay.io"
            ]
        );
        assert_eq!(auth_file_keys("127.0.0.1:5000", None)[0], "127.0.0.1:5000");
        let hub = auth_file_keys("index.docker.io", Some("library/hello"));
        assert_eq!(hub[0], "docker.io/library/hello");
        assert!(hub.contains(&"docker.io".to_string()));
    }

    #[test]
    fn auth_file_credentials_read_the_first_file_with_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let first = auth_file(
            dir.path(),
            "first.json",
            serde_json::json!({ "other.example": basic("x", "y") }),
        );
        let second = auth_file(
            dir.path(),
            "second.json",
            serde_json::json!({
                "quay.io": basic("registry-user", "r"),
                "quay.io/team": basic("team-user", "t"),
                "https://legacy.example/v1/": basic("legacy", "l"),
                "token.example": { "identitytoken": "refresh" },
                "empty.example": {},
            }),
        );
        let paths = [dir.path().join("missing.json"), first, second.clone()];
        let lookup = |registry: &str, repository: Option<&str>| {
            auth_file_credentials(&paths, &auth_file_keys(registry, repository), registry).unwrap()
        };
        let user = |found: Option<(Credentials, PathBuf)>| match found {
            Some((Credentials::Basic { username, .. }, path)) => {
                assert_eq!(path, second);
                username
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(user(lookup("quay.io", None)), "registry-user");
        assert_eq!(user(lookup("quay.io", Some("team/app"))), "team-user");
        assert_eq!(user(lookup("quay.io", Some("teams/app"))), "registry-user");
        assert_eq!(user(lookup("legacy.example", Some("a"))), "legacy");
        assert!(matches!(
            lookup("token.example", None),
            Some((Credentials::Token(t), _)) if t == "refresh"
        ));
        assert_eq!(lookup("empty.example", None), None);
        assert_eq!(lookup("nowhere.example", None), None);
    }

    #[test]
    fn a_broken_auth_file_entry_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = auth_file(
            dir.path(),
            "auth.json",
            serde_json::json!({ "r.example": { "auth": "bm8tY29sb24=" } }),
        );
        let err = auth_file_credentials(
            std::slice::from_ref(&path),
            &auth_file_keys("r.example", None),
            "r.example",
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("no `:`"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        std::fs::write(&path, "not json").unwrap();
        assert!(auth_file_credentials(&[path], &["r.example".into()], "r.example").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Token("tok".into())).contains("tok"));
    }

    #[test]
    fn kiln_registry_confines_the_environment_credentials_to_the_registry_it_names() {
        let claimed = Mutex::new(None);
        let named = Some("https://Registry.Example.com:5000/");
        assert_eq!(
            env_scope(
                "registry.example.com:5000",
                Addressed::Directly,
                named,
                &claimed
            ),
            EnvScope::Named
        );
        assert_eq!(
            env_scope(
                "registry.example.com:5000",
                Addressed::Indirectly,
                named,
                &claimed
            ),
            EnvScope::Named
        );
        assert!(matches!(
            env_scope("registry.example.com", Addressed::Directly, named, &claimed),
            EnvScope::Elsewhere(why) if why.contains("`KILN_REGISTRY` names")
        ));
        assert!(matches!(
            env_scope(
                "127.0.0.1:5000",
                Addressed::Directly,
                Some("127.0.0.2:5000"),
                &claimed
            ),
            EnvScope::Elsewhere(_)
        ));
        assert_eq!(
            env_scope(
                "index.docker.io",
                Addressed::Directly,
                Some("docker.io"),
                &claimed
            ),
            EnvScope::Named
        );
        // Naming a registry claims none.
        assert_eq!(*claimed.lock().unwrap(), None);
    }

    #[test]
    fn without_kiln_registry_the_environment_credentials_go_to_one_addressed_registry() {
        let claimed = Mutex::new(None);
        assert!(matches!(
            env_scope("other.example.com", Addressed::Indirectly, None, &claimed),
            EnvScope::Elsewhere(why) if why.contains("not the registry this command addresses")
        ));
        assert_eq!(
            env_scope("127.0.0.1:5000", Addressed::Directly, None, &claimed),
            EnvScope::Addressed
        );
        // The same registry again (another store of the same command).
        assert_eq!(
            env_scope("127.0.0.1:5000", Addressed::Directly, None, &claimed),
            EnvScope::Addressed
        );
        assert!(matches!(
            env_scope("127.0.0.2:5000", Addressed::Directly, None, &claimed),
            EnvScope::Elsewhere(why) if why.contains("`127.0.0.1:5000` already")
        ));
    }

    #[test]
    fn config_files_that_are_not_json_objects_are_errors() {
        assert!(
            parse_config(br#"{"auths":{}}"#)
                .unwrap()
                .contains_key("auths")
        );
        let not_json = parse_config(b"\xff{").unwrap_err();
        assert!(not_json.is::<serde_json::Error>(), "{not_json:#}");
        for other in [&b"[]"[..], b"null", b"\"auths\"", b"1e999999"] {
            let err = parse_config(other).unwrap_err();
            assert!(
                !err.is::<serde_json::Error>() || other == b"1e999999",
                "{err:#}"
            );
        }
        // Through the file, the messages name it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "[1]").unwrap();
        let err = read_json_object(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{}` is not a JSON object", path.display())
        );
        std::fs::write(&path, "{").unwrap();
        let err = read_json_object(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{}` is not valid JSON", path.display())
        );
    }

    #[test]
    fn credentials_in_a_config_tolerate_odd_shapes_and_refuse_broken_auth() {
        let origin = Path::new("/x/config.json");
        let keys = config_keys("r.example");
        let found = |config: Value| {
            let Value::Object(config) = config else {
                panic!("an object")
            };
            credentials_in(&config, &keys, "r.example", origin)
        };
        // Nothing usable: no entry, `auths` of another type, an entry that
        // is not an object, values of the wrong type, empty values.
        for config in [
            serde_json::json!({}),
            serde_json::json!({ "auths": [] }),
            serde_json::json!({ "auths": { "r.example": "x" } }),
            serde_json::json!({ "auths": { "r.example": { "auth": 5, "identitytoken": [] } } }),
            serde_json::json!({ "auths": { "r.example": { "auth": "", "identitytoken": "" } } }),
            serde_json::json!({ "auths": { "other.example": basic("u", "p") } }),
        ] {
            assert_eq!(found(config.clone()).unwrap(), None, "{config}");
        }
        // The first key with an entry wins; an identity token before `auth`.
        let auth = basic("u", "p:with:colons")["auth"].clone();
        let config = serde_json::json!({ "auths": {
            "https://r.example": { "auth": auth, "identitytoken": "idt" },
            "r.example": basic("first", "p"),
        } });
        assert_eq!(
            found(config).unwrap(),
            Some(Credentials::Basic {
                username: "first".into(),
                password: "p".into()
            })
        );
        let config = serde_json::json!({ "auths": { "r.example": { "auth": auth, "identitytoken": "idt" } } });
        assert_eq!(
            found(config).unwrap(),
            Some(Credentials::Token("idt".into()))
        );
        let config = serde_json::json!({ "auths": { "r.example": { "auth": auth } } });
        assert_eq!(
            found(config).unwrap(),
            Some(Credentials::Basic {
                username: "u".into(),
                password: "p:with:colons".into()
            })
        );
        // Not base64, base64 of bytes that are not UTF-8, no `:`.
        let invalid_utf8 = base64::engine::general_purpose::STANDARD.encode(b"\xff:\xfe");
        let no_colon = base64::engine::general_purpose::STANDARD.encode("userpass");
        for (auth, says) in [
            ("%%%", "is not base64"),
            (invalid_utf8.as_str(), "is not base64"),
            (no_colon.as_str(), "has no `:`"),
        ] {
            let err = found(serde_json::json!({ "auths": { "r.example": { "auth": auth } } }))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(says) && err.contains("/x/config.json"),
                "{err}"
            );
        }
    }

    #[test]
    fn helper_replies_are_read_or_refused() {
        assert_eq!(
            helper_reply(br#"{"ServerURL":"r","Username":"u","Secret":"s"}"#).unwrap(),
            Some(Credentials::Basic {
                username: "u".into(),
                password: "s".into()
            })
        );
        assert_eq!(
            helper_reply(br#"{"Username":"<token>","Secret":"t"}"#).unwrap(),
            Some(Credentials::Token("t".into()))
        );
        // An empty or missing secret, or one of the wrong type: nothing.
        for reply in [
            &br#"{"Username":"u","Secret":""}"#[..],
            br#"{"Username":"u"}"#,
            br#"{"Username":"u","Secret":7}"#,
            b"[]",
            b"null",
        ] {
            assert_eq!(helper_reply(reply).unwrap(), None);
        }
        // A user name of the wrong type is an empty one.
        assert_eq!(
            helper_reply(br#"{"Username":{},"Secret":"s"}"#).unwrap(),
            Some(Credentials::Basic {
                username: String::new(),
                password: "s".into()
            })
        );
        assert!(helper_reply(b"").is_err());
        assert!(helper_reply(b"credentials not found").is_err());
    }
}
