//! What a publish was told, from its request over kiln.toml (or `[package.metadata.kiln]`).
//!
//! Destination, audit policy, precompile targets and CPU, signing key and
//! format, SBOM.

use super::Request;
use anyhow::{Context, Result};
use kiln_core::{SignatureFormat, Target};
use kiln_inspect::audit::Policy;
use kiln_oci::Reference;
use std::path::PathBuf;

/// Everything `publish` was told, from flags over kiln.toml.
pub struct Plan {
    pub reference: Option<Reference>,
    pub policy: Option<Policy>,
    pub targets: Vec<Target>,
    pub cpu: kiln_aot::Cpu,
    pub key: Option<PathBuf>,
    pub sign_format: SignatureFormat,
    pub sbom: bool,
    pub settings_file: Option<PathBuf>,
}

impl Plan {
    /// The plan for `project`; every setting is checked here, before
    /// anything is built.
    pub fn new(request: &Request, project: &kiln_build::Project) -> Result<Plan> {
        let settings = kiln_build::manifest::publish_settings(project)?;
        let policy = match (&request.policy, &settings.audit) {
            (Some(p), _) => Some(Policy::from_arg(p)?),
            (None, Some((text, origin))) => {
                let file = settings.file.clone().unwrap_or_default();
                let base = crate::ops::dir_of(&file);
                Some(if file.file_name().is_some_and(|n| n == "kiln.toml") {
                    // kiln.toml's own reader keeps line numbers in findings.
                    Policy::from_kiln_toml(&file)?.context("kiln.toml lost its `[audit]` table")?
                } else {
                    Policy::from_text(text, origin, &base)
                        .with_context(|| format!("invalid audit policy in {origin}"))?
                })
            }
            (None, None) => None,
        };
        // Each named target is parsed where the engine for it is checked,
        // after the CPU, so the first problem reported is the same.
        let named: Vec<Result<Target>> = match (&request.targets, &settings.compile.targets) {
            (r, _) if !r.is_empty() => parse_targets(r),
            (_, Some(t)) => parse_targets(t),
            _ => vec![Ok(Target::host())],
        };
        let cpu: kiln_aot::Cpu = request
            .cpu
            .as_deref()
            .or(settings.compile.cpu.as_deref())
            .unwrap_or("baseline")
            .parse()?;
        let targets = named
            .into_iter()
            .map(|t| {
                let t = t?;
                kiln_aot::engine_config(t, &cpu, &kiln_aot::Settings::default())?;
                Ok(t)
            })
            .collect::<Result<Vec<Target>>>()?;
        let to = request.to.clone().or(settings.publish.to.clone());
        let reference = to.as_deref().map(Reference::parse).transpose()?;
        let key = if request.no_sign {
            None
        } else {
            request.key.clone().or(settings.sign.key.clone())
        };
        Ok(Plan {
            reference,
            policy,
            targets,
            cpu,
            key,
            sign_format: request
                .sign_format
                .or(settings.sign.format)
                .unwrap_or_default(),
            sbom: !request.no_sbom && settings.publish.sbom.unwrap_or(true),
            settings_file: settings.file,
        })
    }
}

/// The targets a list names: `all` is every one, `none` is left out.
fn parse_targets(names: &[String]) -> Vec<Result<Target>> {
    if names.iter().any(|t| t == "all") {
        Target::ALL.iter().copied().map(Ok).collect()
    } else {
        names
            .iter()
            .filter(|t| *t != "none")
            .map(|t| Target::parse(t))
            .collect()
    }
}
