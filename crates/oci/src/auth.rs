//! Registry credentials as docker, oras and cosign users keep them: `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD` (for the registry `KILN_REGISTRY` names, else the one registry a command addresses), then Docker's `config.json` (`credHelpers`, `credsStore`, `auths` with `auth` or `identitytoken`); and `login`/`logout` writing that same file.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use kiln_core::Reporter;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;
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
    /// `auths` in the config file.
    ConfigFile(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::None => f.write_str("no credentials"),
            Source::Environment { .. } => {
                f.write_str("KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD")
            }
            Source::Helper(h) => write!(f, "credential helper docker-credential-{h}"),
            Source::ConfigFile(p) => write!(f, "{}", p.display()),
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
    match std::fs::read(&path) {
        Ok(bytes) => {
            let value: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
            match value {
                Value::Object(map) => Ok((Some(path), map)),
                _ => bail!("`{}` is not a JSON object", path.display()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Some(path), Map::new())),
        Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// The keys a registry may be stored under in `auths`: docker writes
/// `https://index.docker.io/v1/` for Docker Hub and the bare host for
/// others; some tools add a scheme.
fn config_keys(registry: &str) -> Vec<String> {
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
/// for it.
pub fn credentials(
    registry: &str,
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
    let entry = config
        .get("auths")
        .and_then(Value::as_object)
        .and_then(|a| keys.iter().find_map(|k| a.get(k)));
    if let (Some(entry), Some(path)) = (entry, path) {
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok((
                Credentials::Token(token.to_string()),
                Source::ConfigFile(path),
            ));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
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
            return Ok((
                Credentials::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                },
                Source::ConfigFile(path),
            ));
        }
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
    let v: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("`{program} get` did not print JSON"))?;
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
}
