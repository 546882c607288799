//! The attest stages of a publish: the SBOM and SLSA v1 provenance of the component, and provenance of each precompiled artifact, signed and attached.

use super::receipt::AttestationInfo;
use super::{Destination, Run};
use crate::ops::attest::{CYCLONEDX, SLSA_PROVENANCE_V1, accepted, attest_digest, judge};
use anyhow::{Context, Result};
use kiln_build::provenance::{self, Builder, ComponentBuild, Precompile};
use kiln_core::{Digest, Reporter};
use kiln_oci::Store;
use serde_json::{Value, json};

impl Run<'_> {
    /// The attest stage of the component: its SBOM (when one was made) and
    /// its build provenance, each an in-toto statement about the pushed
    /// manifest, signed with the publish key and attached.
    pub(super) fn attest_component(
        &mut self,
        signer: &kiln_sign::Signer,
        store: &Store,
        to: &Destination,
    ) -> Result<()> {
        let subject = to.package.digest();
        if let Some(bytes) = &self.sbom_bytes {
            let sbom: Value =
                serde_json::from_slice(bytes).context("internal error: the SBOM is not JSON")?;
            self.attest_once(signer, store, to, &subject, "sbom", CYCLONEDX, sbom)?;
        }
        let predicate = self.component_provenance()?;
        self.attest_once(
            signer,
            store,
            to,
            &subject,
            "provenance",
            SLSA_PROVENANCE_V1,
            predicate,
        )
    }

    /// The attest stage of the precompiled artifacts: provenance of each,
    /// naming the component as what it was compiled from.
    pub(super) fn attest_precompiled(
        &mut self,
        signer: &kiln_sign::Signer,
        store: &Store,
        to: &Destination,
    ) -> Result<()> {
        let builder = builder();
        let component = to.reference.with_digest(&to.package.digest()).to_string();
        let subjects: Vec<(Digest, Value, String)> = self
            .precompiled
            .iter()
            .filter_map(|p| {
                let predicate = provenance::precompiled(
                    &Precompile {
                        component: &component,
                        manifest: &to.package.digest(),
                        wasm: &self.out.digest,
                        settings: json!({
                            "target": p.descriptor.target,
                            "cpu": p.descriptor.cpu,
                            "cpu_features": p.descriptor.cpu_features,
                            "settings": p.descriptor.settings,
                        }),
                        wasmtime: &p.descriptor.wasmtime_version,
                        times: self.times(),
                    },
                    &builder,
                );
                Some((
                    p.manifest?,
                    predicate,
                    format!("precompiled {} provenance", p.target),
                ))
            })
            .collect();
        for (subject, predicate, what) in subjects {
            self.attest_once(
                signer,
                store,
                to,
                &subject,
                &what,
                SLSA_PROVENANCE_V1,
                predicate,
            )?;
        }
        Ok(())
    }

    /// The component's SLSA v1 provenance predicate.
    fn component_provenance(&mut self) -> Result<Value> {
        let bom = self.bom()?;
        let out = &self.out;
        let toolchain = super::Toolchain::of(out);
        let adapter = out.adapter.map(super::AdapterInfo::of);
        provenance::component(
            &ComponentBuild {
                root: &out.project.root,
                language: out.project.lang,
                name: out.built.package_name(),
                version: out.built.metadata.version.as_deref(),
                settings: crate::ops::build::provenance_settings(
                    &self.cx.request.build,
                    &out.project,
                ),
                compiler: toolchain.compiler.as_deref().unwrap_or("unknown"),
                adapter: adapter.as_ref().map(|a| (a.name, &a.digest)),
                bom: &bom,
                times: self.times(),
            },
            &builder(),
            kiln_aot::WASMTIME_VERSION,
        )
    }

    /// When the run started and now (RFC 3339), when asked for with
    /// `--provenance-times`; else nothing, so the provenance is the same
    /// for the same inputs.
    fn times(&self) -> Option<(String, String)> {
        let request = self.cx.request;
        if !request.provenance_times {
            return None;
        }
        let secs = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().to_string())
                .unwrap_or_default()
        };
        let started = kiln_oci::artifact::created(Some(&secs(self.cx.started_at))).ok()?;
        let now = kiln_oci::artifact::created(Some(&secs(std::time::SystemTime::now()))).ok()?;
        Some((started, now))
    }

    /// Attaches this key's attestation of `predicate` about `subject`
    /// unless an equal one (same type, same predicate) is there already,
    /// and records it for the receipt.
    #[allow(clippy::too_many_arguments)]
    fn attest_once(
        &mut self,
        signer: &kiln_sign::Signer,
        store: &Store,
        to: &Destination,
        subject: &Digest,
        what: &str,
        predicate_type: &str,
        predicate: Value,
    ) -> Result<()> {
        let events = &self.cx.events;
        let key = signer.verifier()?;
        let judged = judge(store, subject, &key, Some(predicate_type), events)?;
        let existing = accepted(&judged)
            .into_iter()
            .find(|a| a.statement.predicate.as_ref() == Some(&predicate))
            .map(|a| a.manifest);
        let referrer = match existing {
            Some(m) => {
                events.status(
                    "Attested",
                    &format!("{what} of {subject} (already, by this key)"),
                );
                self.counts.already_attested += 1;
                m
            }
            None => {
                let name = crate::ops::sign::identity(&to.reference);
                let m = attest_digest(
                    store,
                    subject,
                    &name,
                    signer,
                    predicate_type,
                    predicate,
                    events,
                )?;
                events.status("Attested", &format!("{what} of {subject}"));
                self.counts.attested += 1;
                m
            }
        };
        self.attestations.push(AttestationInfo {
            subject: *subject,
            what: what.to_string(),
            predicate_type: predicate_type.to_string(),
            reference: to.reference.with_digest(&referrer).to_string(),
            referrer_manifest: referrer,
        });
        Ok(())
    }
}

/// The builder, from what the CI environment says.
fn builder() -> Builder {
    Builder::from_env(&|name| std::env::var(name).ok())
}
