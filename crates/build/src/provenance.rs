//! SLSA v1 build provenance for built components and their precompiled artifacts, from what kiln knows of the build.
//!
//! The predicate follows <https://slsa.dev/spec/v1.0/provenance>; its
//! `buildType`s are kiln's and documented in docs/provenance.md. Like the
//! SBOM it is reproducible by default: no wall-clock time unless the caller
//! passes the build's start and finish.

use crate::sbom::Bom;
use anyhow::Result;
use kiln_core::{Digest, Lang};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The `buildType` of a component kiln built from source.
pub const COMPONENT_BUILD_TYPE: &str = "https://example.invalid/kiln/build-types/component/v1";
/// The `buildType` of a precompiled artifact kiln made from a component.
pub const PRECOMPILE_BUILD_TYPE: &str = "https://example.invalid/kiln/build-types/precompile/v1";
/// The builder `id` prefix; the CI system (or `local`) follows.
pub const BUILDER_ID: &str = "https://example.invalid/kiln/builder";

/// An in-toto resource descriptor: something a build read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// Where it is (a purl, a VCS URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Its digests, by in-toto's digest names (`sha256`, `gitCommit`,
    /// `dirHash`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// What it is called, when it has no URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Facts about it (`dirty` for a work tree with uncommitted changes).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub annotations: Map<String, Value>,
}

impl Resource {
    fn named(name: &str, algorithm: &str, value: &str) -> Resource {
        Resource {
            uri: None,
            digest: BTreeMap::from([(algorithm.to_string(), value.to_string())]),
            name: Some(name.to_string()),
            annotations: Map::new(),
        }
    }
}

/// What a component's provenance is made from.
pub struct ComponentBuild<'a> {
    /// The project directory.
    pub root: &'a Path,
    /// Its language.
    pub language: Lang,
    /// The package's name and version.
    pub name: &'a str,
    /// The package's version.
    pub version: Option<&'a str>,
    /// The build settings as given (profile, package, features, …).
    pub settings: Value,
    /// The compiler (`Rust 1.95.0`, `clang …`, `Go 1.27.3`).
    pub compiler: &'a str,
    /// The WASI adapter componentized with, by name and digest.
    pub adapter: Option<(&'a str, &'a Digest)>,
    /// The SBOM of the component: its resolved dependencies.
    pub bom: &'a Bom,
    /// When the build started and finished (RFC 3339), only when asked.
    pub times: Option<(String, String)>,
}

/// Where a build ran: kiln on its own, or in a CI system that says which
/// run it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Builder {
    /// `BUILDER_ID/local`, `BUILDER_ID/github-actions`, `BUILDER_ID/gitlab-ci`.
    pub id: String,
    /// The CI run's URL, when there is one.
    pub invocation: Option<String>,
    /// What the CI system says about the run (repository, workflow, ref).
    pub ci: Map<String, Value>,
    /// The repository URL and commit the CI system says it built.
    pub source: Option<(String, String)>,
}

impl Builder {
    /// The builder from the environment `env` reads (GitHub Actions' and
    /// GitLab CI's documented variables); `local` otherwise.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Builder {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let facts = |names: &[(&str, &str)]| -> Map<String, Value> {
            names
                .iter()
                .filter_map(|(key, var)| get(var).map(|v| (key.to_string(), Value::String(v))))
                .collect()
        };
        if get("GITHUB_ACTIONS").as_deref() == Some("true") {
            let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            let repo = get("GITHUB_REPOSITORY");
            let invocation = match (&repo, get("GITHUB_RUN_ID")) {
                (Some(repo), Some(run)) => Some(format!(
                    "{server}/{repo}/actions/runs/{run}/attempts/{}",
                    get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
                )),
                _ => None,
            };
            return Builder {
                id: format!("{BUILDER_ID}/github-actions"),
                invocation,
                ci: facts(&[
                    ("repository", "GITHUB_REPOSITORY"),
                    ("workflow_ref", "GITHUB_WORKFLOW_REF"),
                    ("ref", "GITHUB_REF"),
                    ("sha", "GITHUB_SHA"),
                    ("event_name", "GITHUB_EVENT_NAME"),
                    ("runner_environment", "RUNNER_ENVIRONMENT"),
                ]),
                source: repo
                    .zip(get("GITHUB_SHA"))
                    .map(|(r, sha)| (format!("{server}/{r}"), sha)),
            };
        }
        if get("GITLAB_CI").as_deref() == Some("true") {
            return Builder {
                id: format!("{BUILDER_ID}/gitlab-ci"),
                invocation: get("CI_JOB_URL"),
                ci: facts(&[
                    ("project_path", "CI_PROJECT_PATH"),
                    ("pipeline_url", "CI_PIPELINE_URL"),
                    ("ref", "CI_COMMIT_REF_NAME"),
                    ("sha", "CI_COMMIT_SHA"),
                    ("pipeline_source", "CI_PIPELINE_SOURCE"),
                    ("runner_id", "CI_RUNNER_ID"),
                ]),
                source: get("CI_PROJECT_URL").zip(get("CI_COMMIT_SHA")),
            };
        }
        Builder {
            id: format!("{BUILDER_ID}/local"),
            invocation: None,
            ci: Map::new(),
            source: None,
        }
    }
}

/// The source a build read: its git commit (with the remote's URL, without
/// credentials, and whether the work tree had uncommitted changes), else a
/// `dirHash` of the project's files.
pub fn source(root: &Path, builder: &Builder) -> Result<Resource> {
    let git = |args: &[&str]| {
        kiln_process::read_stdout(Command::new("git").args(args).current_dir(root)).ok()
    };
    let commit = crate::toolchain::git_revision(root);
    if let Some(commit) = commit {
        let url = git(&["remote", "get-url", "origin"])
            .filter(|u| !u.is_empty())
            .map(|u| without_credentials(&u))
            .or_else(|| {
                builder
                    .source
                    .as_ref()
                    .filter(|(_, sha)| *sha == commit)
                    .map(|(url, _)| url.clone())
            });
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        let mut annotations = Map::new();
        annotations.insert("dirty".to_string(), Value::Bool(dirty));
        return Ok(Resource {
            uri: url.map(|u| format!("git+{u}@{commit}")),
            digest: BTreeMap::from([("gitCommit".to_string(), commit)]),
            name: Some("source".to_string()),
            annotations,
        });
    }
    Ok(Resource::named("source", "dirHash", &dir_hash(root)?))
}

/// A URL as it may be shown: `user:token@` removed.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let path = if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            };
            format!("{scheme}://{host}{path}")
        }
        // scp-like `git@host:owner/repo.git`: the user is not a secret.
        None => url.to_string(),
    }
}

/// Go's directory hash (golang.org/x/mod/sumdb/dirhash `Hash1`) of the
/// project's files, leaving out its `target/` directory and version control
/// metadata: the SHA-256 of the lines `<sha256 hex>  <path>\n`, sorted by
/// path, in lowercase hex as in-toto's `dirHash` digest holds it (Go writes
/// it as `h1:` and base64). Written here (no crate computes it) because it
/// is the digest in-toto names for a source tree.
pub fn dir_hash(root: &Path) -> Result<String> {
    fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, std::path::PathBuf)>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            let rel = format!("{prefix}{name}");
            if kind.is_dir() {
                if matches!(name.as_str(), ".git" | ".hg" | ".svn" | ".jj")
                    || (prefix.is_empty() && name == "target")
                {
                    continue;
                }
                walk(&entry.path(), &format!("{rel}/"), files)?;
            } else if kind.is_file() {
                files.push((rel, entry.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, "", &mut files)?;
    files.sort();
    let mut summary = Sha256::new();
    for (name, path) in files {
        let bytes = std::fs::read(&path)?;
        summary.update(format!("{}  {name}\n", hex::encode(Sha256::digest(&bytes))));
    }
    Ok(hex::encode(summary.finalize()))
}

/// The resolved dependencies an SBOM lists, and apart from them the
/// toolchain it names (C's clang and WASI libc), which SLSA counts among the
/// builder's dependencies. Each has its purl (or, for a file, its name) and
/// digest; one with neither a purl nor a digest gets a generic purl, since a
/// resource descriptor must have a URI or a digest. Go modules' `h1:`
/// hashes are given as `dirHash` (in hex, as the SBOM holds them), the name
/// in-toto has for them.
pub fn dependencies(bom: &Bom) -> (Vec<Resource>, Vec<Resource>) {
    let mut resolved = Vec::new();
    let mut toolchain = Vec::new();
    for c in &bom.components {
        let go = c
            .purl
            .as_deref()
            .is_some_and(|p| p.starts_with("pkg:golang/"));
        let digest: BTreeMap<String, String> = c
            .hashes
            .iter()
            .filter(|h| h.alg == "SHA-256")
            .map(|h| {
                let key = if go { "dirHash" } else { "sha256" };
                (key.to_string(), h.content.clone())
            })
            .collect();
        let uri = c.purl.clone().or_else(|| {
            digest.is_empty().then(|| {
                let version = c
                    .version
                    .as_deref()
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default();
                format!("pkg:generic/{}{version}", c.name)
            })
        });
        let resource = Resource {
            name: (c.purl.is_none() && !digest.is_empty()).then(|| c.name.clone()),
            uri,
            digest,
            annotations: Map::new(),
        };
        if c.bom_ref
            .as_deref()
            .is_some_and(|r| r.starts_with("toolchain:"))
        {
            toolchain.push(resource);
        } else {
            resolved.push(resource);
        }
    }
    (resolved, toolchain)
}

fn run_details(
    builder: &Builder,
    toolchain: Vec<Resource>,
    times: &Option<(String, String)>,
) -> Value {
    let mut metadata = Map::new();
    if let Some(invocation) = &builder.invocation {
        metadata.insert("invocationId".into(), Value::String(invocation.clone()));
    }
    if let Some((started, finished)) = times {
        metadata.insert("startedOn".into(), Value::String(started.clone()));
        metadata.insert("finishedOn".into(), Value::String(finished.clone()));
    }
    let mut details = json!({
        "builder": {
            "id": builder.id,
            "version": {"kiln": env!("CARGO_PKG_VERSION")},
        },
    });
    if !toolchain.is_empty() {
        details["builder"]["builderDependencies"] = json!(toolchain);
    }
    if !metadata.is_empty() {
        details["metadata"] = Value::Object(metadata);
    }
    details
}

/// The provenance predicate of a component built from `build`'s source.
pub fn component(build: &ComponentBuild, builder: &Builder, wasmtime: &str) -> Result<Value> {
    let source = source(build.root, builder)?;
    let mut resolved = vec![source.clone()];
    if let Some((name, digest)) = build.adapter {
        resolved.push(Resource::named(name, "sha256", &digest.hex()));
    }
    let (dependencies, toolchain) = dependencies(build.bom);
    resolved.extend(dependencies);
    let mut internal = json!({
        "kiln": env!("CARGO_PKG_VERSION"),
        "compiler": build.compiler,
        "wasmtime": wasmtime,
    });
    if let Some((name, digest)) = build.adapter {
        internal["adapter"] = json!({"name": name, "digest": digest});
    }
    if !builder.ci.is_empty() {
        internal["ci"] = Value::Object(builder.ci.clone());
    }
    Ok(json!({
        "buildDefinition": {
            "buildType": COMPONENT_BUILD_TYPE,
            "externalParameters": {
                "source": source,
                "package": {"language": build.language, "name": build.name, "version": build.version},
                "settings": build.settings,
            },
            "internalParameters": internal,
            "resolvedDependencies": resolved,
        },
        "runDetails": run_details(builder, toolchain, &build.times),
    }))
}

/// What a precompiled artifact's provenance is made from.
pub struct Precompile<'a> {
    /// The component's reference, pinned by digest (`REPO@sha256:…`).
    pub component: &'a str,
    /// Its manifest's digest.
    pub manifest: &'a Digest,
    /// The component's (wasm layer's) digest.
    pub wasm: &'a Digest,
    /// The engine settings it was compiled with: target, CPU, settings.
    pub settings: Value,
    /// The Wasmtime release that compiled it.
    pub wasmtime: &'a str,
    /// When it started and finished, only when asked.
    pub times: Option<(String, String)>,
}

/// The provenance predicate of a precompiled artifact, naming the
/// component it was compiled from as its input.
pub fn precompiled(p: &Precompile, builder: &Builder) -> Value {
    let mut internal = json!({"kiln": env!("CARGO_PKG_VERSION"), "wasmtime": p.wasmtime});
    if !builder.ci.is_empty() {
        internal["ci"] = Value::Object(builder.ci.clone());
    }
    let component = Resource {
        uri: Some(p.component.to_string()),
        digest: BTreeMap::from([("sha256".to_string(), p.manifest.hex())]),
        name: Some("component".to_string()),
        annotations: Map::new(),
    };
    json!({
        "buildDefinition": {
            "buildType": PRECOMPILE_BUILD_TYPE,
            "externalParameters": {"component": component, "settings": p.settings},
            "internalParameters": internal,
            "resolvedDependencies": [
                component,
                Resource::named("component.wasm", "sha256", &p.wasm.hex()),
            ],
        },
        "runDetails": run_details(builder, Vec::new(), &p.times),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn builders_say_what_ci_says_and_nothing_else() {
        assert_eq!(
            Builder::from_env(&env_of(&[])).id,
            "https://example.invalid/kiln/builder/local"
        );
        let gh = Builder::from_env(&env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/hello"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_TOKEN", "secret"),
        ]));
        assert_eq!(gh.id, "https://example.invalid/kiln/builder/github-actions");
        assert_eq!(
            gh.invocation.as_deref(),
            Some("https://github.com/acme/hello/actions/runs/42/attempts/2")
        );
        assert_eq!(
            gh.source,
            Some(("https://github.com/acme/hello".into(), "abc".into()))
        );
        assert!(!format!("{:?}", gh.ci).contains("secret"));
        let gl = Builder::from_env(&env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_URL", "https://gitlab.com/acme/hello/-/jobs/7"),
            ("CI_COMMIT_SHA", "def"),
            ("CI_PROJECT_URL", "https://gitlab.com/acme/hello"),
            ("CI_JOB_TOKEN", "secret"),
        ]));
        assert_eq!(gl.id, "https://example.invalid/kiln/builder/gitlab-ci");
        assert_eq!(
            gl.invocation.as_deref(),
            Some("https://gitlab.com/acme/hello/-/jobs/7")
        );
        assert!(!format!("{:?}", gl.ci).contains("secret"));
    }

    #[test]
    fn dependencies_keep_their_digests_under_in_toto_s_names() {
        use crate::sbom::{Component, Hash};
        let component =
            |name: &str, purl: Option<&str>, hash: Option<&str>, bom_ref: &str| Component {
                kind: "library".into(),
                bom_ref: Some(bom_ref.into()),
                name: name.into(),
                version: Some("1.0".into()),
                purl: purl.map(str::to_string),
                hashes: hash
                    .map(|h| Hash {
                        alg: "SHA-256".into(),
                        content: h.into(),
                    })
                    .into_iter()
                    .collect(),
                licenses: Vec::new(),
                external_references: Vec::new(),
                properties: Vec::new(),
            };
        let bom: Bom = serde_json::from_value(json!({
            "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": "urn:uuid:x",
            "version": 1,
            "metadata": {"timestamp": "1970-01-01T00:00:00Z", "tools": {"components": []},
                         "component": {"type": "application", "name": "x"}},
            "components": [
                component("serde", Some("pkg:cargo/serde@1.0"), Some("aa"), "pkg:cargo/serde@1.0"),
                component("golang.org/x/text", Some("pkg:golang/golang.org/x/text@v0.3.0"), Some("bb"), "g"),
                component("src/main.c", None, Some("cc"), "file:src/main.c"),
                component("clang", None, None, "toolchain:clang"),
            ],
        }))
        .unwrap();
        let (resolved, toolchain) = dependencies(&bom);
        let json = serde_json::to_value(&resolved).unwrap();
        assert_eq!(
            json,
            json!([
                {"uri": "pkg:cargo/serde@1.0", "digest": {"sha256": "aa"}},
                {"uri": "pkg:golang/golang.org/x/text@v0.3.0", "digest": {"dirHash": "bb"}},
                {"name": "src/main.c", "digest": {"sha256": "cc"}},
            ])
        );
        assert_eq!(
            serde_json::to_value(&toolchain).unwrap(),
            json!([{"uri": "pkg:generic/clang@1.0"}])
        );
    }

    #[test]
    fn remote_urls_lose_their_credentials() {
        assert_eq!(
            without_credentials("https://user:ghp_token@github.com/acme/hello.git"),
            "https://github.com/acme/hello.git"
        );
        assert_eq!(
            without_credentials("https://github.com/acme/hello"),
            "https://github.com/acme/hello"
        );
        assert_eq!(
            without_credentials("git@github.com:acme/hello.git"),
            "git@github.com:acme/hello.git"
        );
    }

    #[test]
    fn the_dir_hash_is_go_s_hash1_and_leaves_out_target_and_git() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::create_dir_all(d.join("target/debug")).unwrap();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        std::fs::write(d.join("src/main.c"), "int main(void) { return 0; }\n").unwrap();
        std::fs::write(d.join("kiln.toml"), "[package]\n").unwrap();
        let h = dir_hash(d).unwrap();
        // What outputs and VCS metadata hold does not change it.
        std::fs::write(d.join("target/debug/out.wasm"), "x").unwrap();
        std::fs::write(d.join(".git/HEAD"), "ref").unwrap();
        assert_eq!(dir_hash(d).unwrap(), h);
        // The Hash1 of these two files, as computed by hand from its
        // definition: sha256 of "<hex>  kiln.toml\n<hex>  src/main.c\n".
        let line = |name: &str, text: &str| {
            format!("{}  {name}\n", hex::encode(Sha256::digest(text.as_bytes())))
        };
        let summary = line("kiln.toml", "[package]\n")
            + &line("src/main.c", "int main(void) { return 0; }\n");
        assert_eq!(h, hex::encode(Sha256::digest(summary.as_bytes())));
        std::fs::write(d.join("src/main.c"), "int main(void) { return 1; }\n").unwrap();
        assert_ne!(dir_hash(d).unwrap(), h);
    }
}
