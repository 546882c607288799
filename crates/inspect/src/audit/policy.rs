//! Audit policies: the TOML format (docs/audit-policy.md), built-ins and name patterns.
//!
//! Patterns carry version requirements; the effective policy is what
//! `--explain` prints.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where a rule came from, for findings and `--explain`.
pub type Origin = String;

/// `default = "allow"` or `"deny"`: what happens to names no list mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Default {
    /// Unlisted names pass.
    Allow,
    /// Unlisted names are violations.
    Deny,
}

/// A name pattern: a glob over `namespace:package/interface` and an
/// optional semver requirement on the version after `@`.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as written.
    pub text: String,
    base: String,
    version: Option<semver::VersionReq>,
    /// Where it was written.
    pub origin: Origin,
}

impl Pattern {
    /// Parses `wasi:cli/*@0.2`, `wasi:http/outgoing-handler@>=0.2.0, <0.3.0`
    /// or `wasi:sockets/*`.
    pub fn parse(text: &str, origin: Origin) -> Result<Pattern> {
        let (base, version) = match text.split_once('@') {
            Some((b, v)) => {
                let req = semver::VersionReq::parse(v.trim()).with_context(|| {
                    format!("`{v}` in pattern `{text}` is not a version requirement (e.g. `0.2`, `>=0.2.0, <0.3.0`)")
                })?;
                (b.trim(), Some(req))
            }
            None => (text.trim(), None),
        };
        if base.is_empty() {
            bail!("pattern `{text}` names nothing before the version");
        }
        Ok(Pattern {
            text: text.to_string(),
            base: base.to_string(),
            version,
            origin,
        })
    }

    /// Whether `name` (e.g. `wasi:cli/environment@0.2.6`) matches. A pattern
    /// with a version requirement never matches a name without a version,
    /// and, as in Cargo, matches pre-releases only when the requirement
    /// names one.
    pub fn matches(&self, name: &str) -> bool {
        let (base, version) = match name.rsplit_once('@') {
            Some((b, v)) => (b, Some(v)),
            None => (name, None),
        };
        if !glob_match(&self.base, base) {
            return false;
        }
        match (&self.version, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(req), Some(v)) => semver::Version::parse(v).is_ok_and(|v| req.matches(&v)),
        }
    }
}

/// `*` matches any run of characters, everything else itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A size limit: bytes as an integer, or a string such as `"10 MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

fn parse_size(v: &SizeValue) -> Result<u64> {
    match v {
        SizeValue::Bytes(b) => Ok(*b),
        SizeValue::Text(t) => {
            let t = t.trim();
            let split = t
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let num: f64 = num
                .parse()
                .with_context(|| format!("`{t}` is not a size (e.g. `10 MiB` or `1048576`)"))?;
            let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" => 1000,
                "kib" => 1 << 10,
                "m" | "mb" => 1000 * 1000,
                "mib" => 1 << 20,
                "g" | "gb" => 1000 * 1000 * 1000,
                "gib" => 1 << 30,
                other => bail!(
                    "`{other}` in `{t}` is not a size unit (use B, KiB, MiB, GiB, KB, MB, GB)"
                ),
            };
            Ok((num * mult as f64) as u64)
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ListsFile {
    default: Option<Spanned<Default>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ExportsFile {
    #[serde(default)]
    require: Vec<Spanned<String>>,
    #[serde(default)]
    require_any: Vec<Spanned<String>>,
    #[serde(default)]
    forbid: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WorldFile {
    wit: Spanned<PathBuf>,
    name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitsFile {
    max_size: Option<Spanned<SizeValue>>,
    max_imports: Option<Spanned<u32>>,
    #[serde(default)]
    forbid_features: Vec<Spanned<String>>,
    max_memory: Option<Spanned<SizeValue>>,
}

/// The policy file format, also the `[audit]` table of kiln.toml.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    extends: Option<Spanned<String>>,
    imports: Option<ListsFile>,
    exports: Option<ExportsFile>,
    world: Option<WorldFile>,
    limits: Option<LimitsFile>,
    core: Option<ListsFile>,
}

/// Allow and deny lists with their default.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// What unlisted names get, and where that was said.
    pub default: Option<(Default, Origin)>,
    /// Names that pass.
    pub allow: Vec<Pattern>,
    /// Names that fail; deny wins over allow.
    pub deny: Vec<Pattern>,
}

impl Lists {
    /// Whether a rule of these lists decides about `name`: a pattern
    /// matches it, or a default applies to whatever no pattern matches.
    pub fn looks_at(&self, name: &str) -> bool {
        self.default.is_some()
            || self.allow.iter().any(|p| p.matches(name))
            || self.deny.iter().any(|p| p.matches(name))
    }
}

/// A world the component must fit.
#[derive(Debug, Clone)]
pub struct TargetWorld {
    /// The WIT file or directory.
    pub wit: PathBuf,
    /// The world's name; the package's only world when `None`.
    pub name: Option<String>,
    /// Where it was set.
    pub origin: Origin,
}

/// A numeric limit and where it was set.
#[derive(Debug, Clone)]
pub struct Limit<T> {
    /// The limit.
    pub value: T,
    /// Where it was set.
    pub origin: Origin,
}

/// The effective policy: built-ins it extends merged with its own rules.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Where the policy came from (file, kiln.toml, built-in).
    pub source: String,
    /// Rules on component imports.
    pub imports: Lists,
    /// Exports that must all be present.
    pub require_exports: Vec<Pattern>,
    /// Exports of which at least one must be present.
    pub require_any_export: Vec<Pattern>,
    /// Exports that must not be present.
    pub forbid_exports: Vec<Pattern>,
    /// A world the component must fit.
    pub world: Option<TargetWorld>,
    /// Maximum size in bytes.
    pub max_size: Option<Limit<u64>>,
    /// Maximum number of component imports.
    pub max_imports: Option<Limit<u32>>,
    /// Features that must not be used.
    pub forbid_features: Vec<Limit<String>>,
    /// Maximum declared memory in bytes (a memory without maximum exceeds it).
    pub max_memory: Option<Limit<u64>>,
    /// Rules on core module imports (`module::name`).
    pub core: Lists,
}

/// The names of the built-in policies.
pub const BUILTINS: &[&str] = &["wasi-cli-pure", "http-handler"];

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        // A command that computes and uses the filesystem, clocks and
        // randomness, but reaches no network.
        "wasi-cli-pure" => Some(
            r#"
[imports]
default = "deny"
allow = ["wasi:cli/*@0.2", "wasi:io/*@0.2", "wasi:clocks/*@0.2", "wasi:random/*@0.2", "wasi:filesystem/*@0.2"]
deny = ["wasi:sockets/*", "wasi:http/*"]
"#,
        ),
        // What the wasi:http/proxy world lets a handler import, and the
        // export it must have.
        "http-handler" => Some(
            r#"
[imports]
default = "deny"
allow = [
    "wasi:http/types@0.2",
    "wasi:http/outgoing-handler@0.2",
    "wasi:io/*@0.2",
    "wasi:clocks/monotonic-clock@0.2",
    "wasi:clocks/wall-clock@0.2",
    "wasi:random/random@0.2",
    "wasi:cli/stdout@0.2",
    "wasi:cli/stderr@0.2",
    "wasi:cli/stdin@0.2",
]
deny = ["wasi:sockets/*", "wasi:filesystem/*"]

[exports]
require = ["wasi:http/incoming-handler@0.2"]
"#,
        ),
        _ => None,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Policy {
    /// A built-in policy by name (`wasi-cli-pure`, `http-handler`).
    pub fn builtin(name: &str) -> Result<Policy> {
        let text = builtin_text(name).with_context(|| {
            format!(
                "`{name}` is not a built-in policy; the built-ins are: {}",
                BUILTINS.join(", ")
            )
        })?;
        let mut policy = Policy {
            source: format!("builtin:{name}"),
            ..Policy::default()
        };
        let file: PolicyFile = toml::from_str(text).context("built-in policy")?;
        policy.merge(file, text, &format!("builtin:{name}"), Path::new("."))?;
        Ok(policy)
    }

    /// The policy a `--policy` argument names: `builtin:NAME` for a
    /// built-in, anything else a policy file.
    pub fn from_arg(arg: &str) -> Result<Policy> {
        match arg.strip_prefix("builtin:") {
            Some(name) => Policy::builtin(name),
            None => Policy::from_file(Path::new(arg)),
        }
    }

    /// Reads a policy file.
    pub fn from_file(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read policy `{}`", path.display()))?;
        Self::from_text(
            &text,
            &path.display().to_string(),
            path.parent().unwrap_or(Path::new(".")),
        )
        .with_context(|| format!("invalid policy `{}`", path.display()))
    }

    /// Reads the `[audit]` table of a kiln.toml.
    pub fn from_kiln_toml(path: &Path) -> Result<Option<Policy>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        Self::from_kiln_toml_text(
            &text,
            &path.display().to_string(),
            path.parent().unwrap_or(Path::new(".")),
        )
    }

    /// The policy in the `[audit]` table of kiln.toml text, or `None` when
    /// it has none; `origin` names the file in findings and errors, `base`
    /// resolves relative paths in it. Other tables are not parsed.
    pub fn from_kiln_toml_text(text: &str, origin: &str, base: &Path) -> Result<Option<Policy>> {
        // Only `[audit]` and its sub-tables are read; every other line is
        // blanked so that line numbers in errors and origins stay the file's.
        #[derive(Deserialize)]
        struct WithAudit {
            audit: Option<PolicyFile>,
        }
        let stripped = strip_other_tables(text);
        let with: WithAudit = toml::from_str(&stripped)
            .with_context(|| format!("invalid `[audit]` in `{origin}`"))?;
        let Some(audit) = with.audit else {
            return Ok(None);
        };
        let mut policy = Policy {
            source: format!("{origin} [audit]"),
            ..Policy::default()
        };
        policy
            .merge(audit, &stripped, origin, base)
            .with_context(|| format!("invalid `[audit]` in `{origin}`"))?;
        Ok(Some(policy))
    }

    /// Parses policy text; `origin` names it in findings, `base` resolves
    /// relative paths in it.
    pub fn from_text(text: &str, origin: &str, base: &Path) -> Result<Policy> {
        let file: PolicyFile = toml::from_str(text)?;
        let mut policy = Policy {
            source: origin.to_string(),
            ..Policy::default()
        };
        policy.merge(file, text, origin, base)?;
        Ok(policy)
    }

    fn merge(&mut self, file: PolicyFile, text: &str, origin: &str, base: &Path) -> Result<()> {
        let at = |span: std::ops::Range<usize>| format!("{origin}:{}", line_of(text, span.start));
        if let Some(extends) = &file.extends {
            let name = extends.get_ref();
            let name = name.strip_prefix("builtin:").unwrap_or(name);
            let inherited = Policy::builtin(name)
                .with_context(|| format!("`extends` at {}", at(extends.span())))?;
            let source = std::mem::take(&mut self.source);
            *self = inherited;
            self.source = format!("{source} (extends builtin:{name})");
        }
        let patterns = |list: &[Spanned<String>]| -> Result<Vec<Pattern>> {
            list.iter()
                .map(|p| Pattern::parse(p.get_ref(), at(p.span())))
                .collect::<Result<Vec<_>>>()
        };
        let lists = |dst: &mut Lists, src: &ListsFile, table: &str| -> Result<()> {
            if let Some(d) = &src.default {
                dst.default = Some((*d.get_ref(), at(d.span())));
            }
            dst.allow.extend(patterns(&src.allow)?);
            dst.deny.extend(patterns(&src.deny)?);
            if dst.default.is_none() && (!dst.allow.is_empty() || !dst.deny.is_empty()) {
                bail!(
                    "`[{table}]` lists names but chooses no default: add `default = \"deny\"` (unlisted names fail) or `default = \"allow\"` (unlisted names pass)"
                );
            }
            Ok(())
        };
        if let Some(imports) = &file.imports {
            lists(&mut self.imports, imports, "imports")?;
        }
        if let Some(core) = &file.core {
            lists(&mut self.core, core, "core")?;
        }
        if let Some(exports) = &file.exports {
            self.require_exports.extend(patterns(&exports.require)?);
            self.require_any_export
                .extend(patterns(&exports.require_any)?);
            self.forbid_exports.extend(patterns(&exports.forbid)?);
        }
        if let Some(world) = &file.world {
            self.world = Some(TargetWorld {
                wit: base.join(world.wit.get_ref()),
                name: world.name.clone(),
                origin: at(world.wit.span()),
            });
        }
        if let Some(limits) = &file.limits {
            if let Some(s) = &limits.max_size {
                self.max_size = Some(Limit {
                    value: parse_size(s.get_ref())
                        .with_context(|| format!("`max-size` at {}", at(s.span())))?,
                    origin: at(s.span()),
                });
            }
            if let Some(n) = &limits.max_imports {
                self.max_imports = Some(Limit {
                    value: *n.get_ref(),
                    origin: at(n.span()),
                });
            }
            for f in &limits.forbid_features {
                if !super::FEATURES.contains(&f.get_ref().as_str()) {
                    bail!(
                        "`{}` at {} is not a feature kiln can check; use one of: {}",
                        f.get_ref(),
                        at(f.span()),
                        super::FEATURES.join(", ")
                    );
                }
                self.forbid_features.push(Limit {
                    value: f.get_ref().clone(),
                    origin: at(f.span()),
                });
            }
            if let Some(s) = &limits.max_memory {
                self.max_memory = Some(Limit {
                    value: parse_size(s.get_ref())
                        .with_context(|| format!("`max-memory` at {}", at(s.span())))?,
                    origin: at(s.span()),
                });
            }
        }
        Ok(())
    }

    /// The effective policy as TOML, each rule annotated with its origin.
    pub fn explain(&self) -> String {
        let mut out = format!("# effective policy from {}\n", self.source);
        let quote = |p: &Pattern| format!("    {:?}, # {}\n", p.text, p.origin);
        let lists = |out: &mut String, name: &str, l: &Lists| {
            if l.default.is_none() && l.allow.is_empty() && l.deny.is_empty() {
                return;
            }
            let _ = writeln!(out, "\n[{name}]");
            if let Some((d, o)) = &l.default {
                let d = match d {
                    Default::Allow => "allow",
                    Default::Deny => "deny",
                };
                let _ = writeln!(out, "default = {d:?} # {o}");
            }
            for (key, pats) in [("allow", &l.allow), ("deny", &l.deny)] {
                if !pats.is_empty() {
                    let _ = writeln!(out, "{key} = [");
                    for p in pats {
                        out.push_str(&quote(p));
                    }
                    out.push_str("]\n");
                }
            }
        };
        lists(&mut out, "imports", &self.imports);
        if !self.require_exports.is_empty()
            || !self.require_any_export.is_empty()
            || !self.forbid_exports.is_empty()
        {
            out.push_str("\n[exports]\n");
            for (key, pats) in [
                ("require", &self.require_exports),
                ("require-any", &self.require_any_export),
                ("forbid", &self.forbid_exports),
            ] {
                if !pats.is_empty() {
                    let _ = writeln!(out, "{key} = [");
                    for p in pats {
                        out.push_str(&quote(p));
                    }
                    out.push_str("]\n");
                }
            }
        }
        if let Some(w) = &self.world {
            let _ = writeln!(
                out,
                "\n[world]\nwit = {:?} # {}",
                w.wit.display().to_string(),
                w.origin
            );
            if let Some(n) = &w.name {
                let _ = writeln!(out, "name = {n:?}");
            }
        }
        if self.max_size.is_some()
            || self.max_imports.is_some()
            || !self.forbid_features.is_empty()
            || self.max_memory.is_some()
        {
            out.push_str("\n[limits]\n");
            if let Some(l) = &self.max_size {
                let _ = writeln!(out, "max-size = {} # {}", l.value, l.origin);
            }
            if let Some(l) = &self.max_imports {
                let _ = writeln!(out, "max-imports = {} # {}", l.value, l.origin);
            }
            if !self.forbid_features.is_empty() {
                out.push_str("forbid-features = [\n");
                for f in &self.forbid_features {
                    let _ = writeln!(out, "    {:?}, # {}", f.value, f.origin);
                }
                out.push_str("]\n");
            }
            if let Some(l) = &self.max_memory {
                let _ = writeln!(out, "max-memory = {} # {}", l.value, l.origin);
            }
        }
        lists(&mut out, "core", &self.core);
        out
    }
}

/// kiln.toml with every table but `[audit]` (and its sub-tables) blanked
/// out line by line, so that line numbers in errors stay those of the file.
fn strip_other_tables(text: &str) -> String {
    let mut keep = false;
    text.lines()
        .map(|line| {
            let t = line.trim_start();
            if t.starts_with('[') {
                let name = t.trim_start_matches('[').trim_start();
                keep = name.starts_with("audit]")
                    || name.starts_with("audit.")
                    || name.starts_with("audit ]");
            }
            if keep { line } else { "" }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Pattern {
        Pattern::parse(s, "test".into()).unwrap()
    }

    #[test]
    fn patterns_match_names_and_versions() {
        assert!(pat("wasi:cli/*@0.2").matches("wasi:cli/environment@0.2.6"));
        assert!(!pat("wasi:cli/*@0.2").matches("wasi:cli/environment@0.3.0"));
        assert!(pat("wasi:sockets/*").matches("wasi:sockets/tcp@0.2.0"));
        assert!(pat("wasi:sockets/*").matches("wasi:sockets/tcp"));
        assert!(
            pat("wasi:http/outgoing-handler@>=0.2.0, <0.3.0")
                .matches("wasi:http/outgoing-handler@0.2.9")
        );
        assert!(
            !pat("wasi:http/outgoing-handler@>=0.2.0, <0.3.0")
                .matches("wasi:http/outgoing-handler@0.3.0")
        );
        assert!(pat("wasi:*").matches("wasi:io/streams@0.2.0"));
        assert!(!pat("wasi:cli/*").matches("wasi:clocks/wall-clock@0.2.0"));
        assert!(pat("*").matches("run"));
    }

    #[test]
    fn version_edge_cases() {
        // A requirement never matches a name without a version.
        assert!(!pat("my:pkg/iface@1").matches("my:pkg/iface"));
        // Pre-releases match only requirements that name one, as in Cargo.
        assert!(!pat("wasi:http/*@0.3").matches("wasi:http/types@0.3.0-rc-2025-08-15"));
        assert!(
            pat("wasi:http/*@>=0.3.0-rc-2025-08-15").matches("wasi:http/types@0.3.0-rc-2025-08-15")
        );
        // `0.2.x` and `=` work too; a malformed version never matches.
        assert!(pat("wasi:io/*@0.2.x").matches("wasi:io/poll@0.2.3"));
        assert!(pat("wasi:io/poll@=0.2.3").matches("wasi:io/poll@0.2.3"));
        assert!(!pat("wasi:io/*@0.2").matches("wasi:io/poll@banana"));
        assert!(Pattern::parse("wasi:io/*@not a version", "t".into()).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(
            parse_size(&SizeValue::Text("10 MiB".into())).unwrap(),
            10 << 20
        );
        assert_eq!(parse_size(&SizeValue::Text("2KB".into())).unwrap(), 2000);
        assert_eq!(parse_size(&SizeValue::Bytes(5)).unwrap(), 5);
        assert!(parse_size(&SizeValue::Text("10 parsecs".into())).is_err());
    }

    #[test]
    fn unknown_keys_and_missing_defaults_are_errors() {
        let err = Policy::from_text(
            "[imports]\ndefault = \"deny\"\nalow = []\n",
            "p.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3") && err.contains("alow"), "{err}");
        let err = Policy::from_text(
            "[imports]\nallow = [\"wasi:cli/*\"]\n",
            "p.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("chooses no default"), "{err}");
    }

    #[test]
    fn origins_name_file_and_line() {
        let p = Policy::from_text(
            "\n[imports]\ndefault = \"allow\"\ndeny = [\n  \"wasi:sockets/*\",\n]\n",
            "p.toml",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(p.imports.deny[0].origin, "p.toml:5");
    }

    #[test]
    fn arguments_name_builtins_or_files() {
        let p = Policy::from_arg("builtin:wasi-cli-pure").unwrap();
        assert_eq!(p.source, "builtin:wasi-cli-pure");
        let err = Policy::from_arg("builtin:nope").unwrap_err().to_string();
        assert!(err.contains("not a built-in policy"), "{err}");

        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/audit/policies/no-network.toml"
        );
        let p = Policy::from_arg(file).unwrap();
        assert_eq!(p.source, file);
        let err = Policy::from_arg("no-such-dir/builtin:wasi-cli-pure")
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed to read policy"), "{err}");
    }

    #[test]
    fn builtins_parse_and_extend() {
        for b in BUILTINS {
            Policy::builtin(b).unwrap();
        }
        let p = Policy::from_text(
            "extends = \"wasi-cli-pure\"\n[limits]\nmax-imports = 3\n",
            "p.toml",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(p.imports.default.as_ref().unwrap().0, Default::Deny);
        assert_eq!(p.max_imports.as_ref().unwrap().value, 3);
        assert!(p.explain().contains("builtin:wasi-cli-pure"));
    }

    #[test]
    fn kiln_toml_text_reads_only_audit_and_rejects_hostile_tables() {
        let base = Path::new(".");
        // No `[audit]`: no policy, whatever the other tables hold (they are
        // not parsed, so even broken TOML outside `[audit]` is fine).
        let none = Policy::from_kiln_toml_text("[build]\nlang = [[[\n", "k.toml", base).unwrap();
        assert!(none.is_none());
        assert!(
            Policy::from_kiln_toml_text("", "k.toml", base)
                .unwrap()
                .is_none()
        );

        let text = "[build]\nlang = \"rust\"\n[audit]\nextends = \"wasi-cli-pure\"\n[audit.limits]\nmax-imports = 3\n";
        let p = Policy::from_kiln_toml_text(text, "k.toml", base)
            .unwrap()
            .unwrap();
        assert_eq!(p.source, "k.toml [audit] (extends builtin:wasi-cli-pure)");
        assert_eq!(p.max_imports.as_ref().unwrap().value, 3);
        assert_eq!(p.max_imports.as_ref().unwrap().origin, "k.toml:6");

        for (bad, says) in [
            ("[audit]\nextends = 7\n", "invalid `[audit]` in `k.toml`"),
            (
                "[audit]\nnot toml at all\n",
                "invalid `[audit]` in `k.toml`",
            ),
            ("[audit]\nextends = \"nope\"\n", "not a built-in policy"),
            (
                "[audit.imports]\nallow = [\"wasi:*\"]\n",
                "chooses no default",
            ),
            (
                "[audit]\nsurprise = true\n",
                "invalid `[audit]` in `k.toml`",
            ),
            (
                "[audit.limits]\nmax-size = \"10 parsecs\"\n",
                "invalid `[audit]`",
            ),
        ] {
            let err = format!(
                "{:#}",
                Policy::from_kiln_toml_text(bad, "k.toml", base).unwrap_err()
            );
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}
