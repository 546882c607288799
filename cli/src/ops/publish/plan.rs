//! What a publish was told, from its request over kiln.toml (or `[package.metadata.kiln]`): destination, audit policy, precompile targets and CPU, signing key, SBOM.

use super::Request;
use anyhow::{Context, Result};
use kiln_inspect::audit::Policy;
use kiln_oci::Reference;
use std::path::PathBuf;

/// Everything `publish` was told, from flags over kiln.toml.
pub struct Plan {
    pub reference: Option<Reference>,
    pub policy: Option<Policy>,
    pub targets: Vec<String>,
    pub cpu: kiln_aot::Cpu,
    pub key: Option<PathBuf>,
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
        let targets: Vec<String> = if !request.targets.is_empty() {
            request.targets.clone()
        } else if let Some(t) = &settings.compile.targets {
            t.clone()
        } else {
            vec![kiln_aot::host_triple().to_string()]
        };
        let targets: Vec<String> = if targets.iter().any(|t| t == "all") {
            kiln_aot::TARGETS.iter().map(|t| t.to_string()).collect()
        } else {
            targets.into_iter().filter(|t| t != "none").collect()
        };
        let cpu: kiln_aot::Cpu = request
            .cpu
            .as_deref()
            .or(settings.compile.cpu.as_deref())
            .unwrap_or("baseline")
            .parse()?;
        for t in &targets {
            kiln_aot::engine_config(t, &cpu, &kiln_aot::Settings::default())?;
        }
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
            sbom: !request.no_sbom && settings.publish.sbom.unwrap_or(true),
            settings_file: settings.file,
        })
    }
}
