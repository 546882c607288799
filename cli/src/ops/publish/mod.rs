//! `kiln publish` as a run: one stage method of [`Run`] after another, the precompile beside them.
//!
//! Build, audit, precompile, push (component, SBOM, precompiled artifacts),
//! sign and attest, with one receipt. The precompile runs on a thread of its
//! own from the moment the component's bytes are final, beside the SBOM, the
//! push and the signing.

mod attest;
mod events;
mod plan;
mod precompile;
mod receipt;
mod render;

use crate::ops::build::{BuildOptions, BuildOutput};
use crate::ops::{ms, registry};
use crate::output::Printer;
use anyhow::{Context as _, Result, bail};
use events::{Event, Events};
use kiln_core::{Digest, Reporter};
use kiln_inspect::audit::{self, AuditReport, Policy, WorldNames};
use kiln_oci::{Reference, Store};
use plan::Plan;
use precompile::Handoff;
use receipt::{
    AdapterInfo, AuditInfo, ComponentInfo, Precompiled, ProjectInfo, PushedInfo, Receipt,
    ReferrerInfo, RunInfo, SbomInfo, SignatureInfo, Toolchain, relative,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::thread::ScopedJoinHandle;
use std::time::Instant;

/// What to publish and how, as plain values; settings left out here come
/// from kiln.toml or `[package.metadata.kiln]`.
#[derive(Debug, Clone)]
pub struct Request {
    /// The project directory or manifest.
    pub path: PathBuf,
    /// Where to publish (REGISTRY/REPO[:TAG], oci:DIR[:TAG] or NAME[:TAG]).
    pub to: Option<String>,
    /// The audit policy: a file or `builtin:NAME`.
    pub policy: Option<String>,
    /// Targets to precompile for, `all`, or `none`.
    pub targets: Vec<String>,
    /// CPU features of the precompiled artifacts.
    pub cpu: Option<String>,
    /// The private key to sign with.
    pub key: Option<PathBuf>,
    /// Sign nothing, even when a key is configured.
    pub no_sign: bool,
    /// The signature format, over `[sign] format`.
    pub sign_format: Option<kiln_core::SignatureFormat>,
    /// Make no SBOM.
    pub no_sbom: bool,
    /// Do everything but push and sign.
    pub dry_run: bool,
    /// Put the build's start and finish times in its provenance.
    pub provenance_times: bool,
    /// Where to write the receipt.
    pub receipt: Option<PathBuf>,
    /// How to build.
    pub build: BuildOptions,
    /// How to reach the registry.
    pub registry: registry::Options,
    /// Report JSON events on stdout, and the receipt last.
    pub json: bool,
}

/// How a publish ended, when it did not fail.
pub enum Ended {
    /// Published (or, for a dry run, everything but pushed and signed).
    Published,
    /// The component failed its audit; nothing was pushed.
    FailedAudit,
}

/// Publishes the project `request` names: every setting and the key are
/// checked before anything is built, and nothing is pushed before the
/// build, validation and audit passed.
pub fn run(request: &Request, printer: &Printer) -> Result<Ended> {
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    let events = Events::new(printer, request.json);
    let project = kiln_build::discover(&request.path)?;
    let plan = Plan::new(request, &project)?;
    let signer = match &plan.key {
        Some(key) if !request.dry_run => Some(crate::ops::sign::signer(key)?),
        _ => None,
    };
    if let Some(signer) = &signer
        && plan.sign_format == kiln_core::SignatureFormat::Bundle
    {
        signer.hash_for_bundles()?;
    }
    let cx = Settings {
        request,
        plan,
        signer,
        events,
        printer,
        started,
        started_at,
    };
    // Precompiling starts as soon as the component's bytes are final, while
    // the build still validates and writes them: it publishes nothing, and
    // its artifacts are attached only once the component is pushed.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handoff = Handoff::new(ready_tx);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let compile =
            s.spawn(|| precompile::when_ready(ready_rx, &cx.plan, &cx.events, done_tx, &stop));
        let ended = publish(&cx, &handoff, done_rx, compile);
        // Whatever ended the run, no further target need be compiled.
        stop.store(true, Ordering::Relaxed);
        ended
    })
}

/// The stages in order; `compile` is the precompile running beside them,
/// handing its artifacts over through `precompiled`.
fn publish(
    cx: &Settings,
    handoff: &Handoff,
    precompiled: Receiver<kiln_aot::Artifact>,
    compile: ScopedJoinHandle<'_, Result<()>>,
) -> Result<Ended> {
    let mut run = Run::build(cx, handoff)?;
    if !run.audit()? {
        return Ok(Ended::FailedAudit);
    }
    let destination = run.destination()?;
    // Precompiling (started during the build) runs beside the SBOM, the
    // push of the component and its signing, which need only the
    // component; each precompiled artifact is then attached as soon as it
    // is made. The receiver stays open until the compile is over, so a
    // compile beside a stage that failed still finishes (and caches) its
    // targets.
    let published = run.publish(&destination, &precompiled);
    let compiled = compile
        .join()
        .map_err(|_| anyhow::anyhow!("internal error: the compile stage panicked"))?;
    drop(precompiled);
    let artifacts = published?;
    compiled?;
    run.finish(&destination, &artifacts)?;
    Ok(Ended::Published)
}

/// What a run was told and reports to, fixed before the build.
struct Settings<'a> {
    request: &'a Request,
    plan: Plan,
    signer: Option<kiln_sign::Signer>,
    events: Events<'a>,
    printer: &'a Printer,
    started: Instant,
    /// The wall-clock time the run started, for `--provenance-times`.
    started_at: std::time::SystemTime,
}

/// Where the component goes, and the package pushed there.
struct Destination {
    reference: Reference,
    package: kiln_oci::Package,
}

/// The publish of one built component: each stage is a method, and what
/// the stages did accumulates here until [`Run::finish`] writes it as the
/// receipt.
struct Run<'a> {
    cx: &'a Settings<'a>,
    out: BuildOutput,
    /// `<target dir>/kiln`, where the SBOM and the receipt go.
    kiln_dir: PathBuf,
    /// The file stem of the component, shared by its SBOM.
    stem: String,
    /// The `created` time of every manifest.
    created: String,
    audit: Option<AuditInfo>,
    /// The SBOM, once made (for the SBOM stage or the provenance).
    bom: Option<kiln_build::sbom::Bom>,
    /// The SBOM's bytes, once written.
    sbom_bytes: Option<Vec<u8>>,
    sbom: Option<SbomInfo>,
    pushed: Option<PushedInfo>,
    precompiled: Vec<Precompiled>,
    signatures: Vec<SignatureInfo>,
    attestations: Vec<receipt::AttestationInfo>,
    counts: RunInfo,
}

/// A run is `Send`: members of a workspace can publish on threads of their own.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Run<'static>>();
};

impl<'a> Run<'a> {
    /// The build stage: the component, built, validated and written, and
    /// handed to the precompile as soon as its bytes are final.
    fn build(cx: &'a Settings<'a>, handoff: &Handoff) -> Result<Run<'a>> {
        let events = &cx.events;
        let on_component = |bytes: &[u8], path: &Path| handoff.give(bytes, path);
        let stage = events.start("build");
        let built = crate::ops::build::build_component(
            &cx.request.path,
            None,
            &cx.request.build,
            events,
            Some(&on_component),
        );
        let built = stage.end(built);
        // A build that failed before its bytes were final: the compile
        // stops waiting.
        handoff.close();
        let out = built?;
        // The compiler's own run inside the build stage, so the rest of
        // kiln's time can be told apart from it.
        events.record("build.compiler", out.timings.compiler_ms);
        events.record("build.setup", out.timings.setup_ms);
        let kiln_dir = out.built.target_dir.join("kiln");
        let created = crate::ops::created()?;
        let stem = out
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| out.built.name.clone());
        Ok(Run {
            cx,
            out,
            kiln_dir,
            stem,
            created,
            audit: None,
            bom: None,
            sbom_bytes: None,
            sbom: None,
            pushed: None,
            precompiled: Vec::new(),
            signatures: Vec::new(),
            attestations: Vec::new(),
            counts: RunInfo::default(),
        })
    }

    /// The audit stage, when there is a policy: false when the component
    /// fails it (the findings are reported).
    fn audit(&mut self) -> Result<bool> {
        let events = &self.cx.events;
        let Some(policy) = &self.cx.plan.policy else {
            events.warn(
                "no audit policy (no --policy, no `[audit]` in kiln.toml); the audit stage is skipped",
            );
            return Ok(true);
        };
        let stage = events.start("audit");
        let report = stage.end(audit_component(&self.out, policy))?;
        self.audit = Some(AuditInfo {
            policy: policy.source.clone(),
            passed: report.passed,
            findings: report.findings.len(),
        });
        if report.passed {
            return Ok(true);
        }
        for f in &report.findings {
            events.warn(&format!("{}: {} ({})", f.rule, f.message, f.origin));
        }
        events.emit(&Event::StageFailed {
            stage: "audit",
            error: format!(
                "{} finding(s) against {}",
                report.findings.len(),
                policy.source
            ),
        });
        render::stopped(self.cx.printer, &self.out.path, report.findings.len());
        Ok(false)
    }

    /// Where the component goes: the plan's reference, else `NAME:VERSION`
    /// in a layout under `<target dir>/kiln/oci/`; a reference without a
    /// tag gets the version (else `latest`).
    fn destination(&self) -> Result<Destination> {
        let out = &self.out;
        let name = &out.built.name;
        let metadata = &out.surface.metadata;
        let reference = match &self.cx.plan.reference {
            Some(r) => r.clone(),
            None => {
                let r = crate::ops::push::default_reference(metadata, &self.stem)?;
                let dir = self.kiln_dir.join("oci").join(match &r {
                    Reference::Layout { dir, .. } => dir
                        .file_name()
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from(name)),
                    Reference::Registry { .. } => PathBuf::from(name),
                });
                Reference::Layout {
                    dir,
                    tag: r.tag().map(str::to_string),
                    digest: None,
                }
            }
        };
        let reference = if reference.tag().is_none() && reference.digest().is_none() {
            reference.with_tag(metadata.version.as_deref().unwrap_or("latest"))
        } else {
            reference
        };
        if reference.digest().is_some() {
            bail!(
                "publish to a tag (`REPO:TAG`), not a digest: the digest is what the publish computes"
            );
        }
        let info = kiln_oci::ComponentInfo {
            imports: out.surface.imports.clone(),
            exports: out.surface.exports.clone(),
            target: None,
        };
        let layer = kiln_oci::artifact::Blob {
            descriptor: kiln_oci::artifact::Descriptor::of(
                kiln_oci::artifact::WASM_LAYER_MEDIA_TYPE,
                &out.component,
            ),
            data: kiln_oci::artifact::BlobData::File(out.path.clone()),
        };
        let package = kiln_oci::wasm_package(layer, Some(info), metadata, &self.created)?;
        Ok(Destination { reference, package })
    }

    /// The stages after the audit: SBOM, push, signing, and the
    /// precompiled artifacts as they come; returns those artifacts.
    fn publish(
        &mut self,
        to: &Destination,
        precompiled: &Receiver<kiln_aot::Artifact>,
    ) -> Result<Vec<kiln_aot::Artifact>> {
        let cx = self.cx;
        let events = &cx.events;
        if cx.plan.sbom {
            let stage = events.start("sbom");
            let sbom = self.sbom();
            stage.end(sbom)?;
        }
        let store = if cx.request.dry_run {
            None
        } else {
            let stage = events.start("push");
            let store = self.push(to);
            Some(stage.end(store)?)
        };
        if let (Some(store), Some(signer)) = (&store, &cx.signer) {
            let mut subjects = vec![(to.package.digest(), "component".to_string())];
            if let Some(m) = self.sbom.as_ref().and_then(|s| s.manifest) {
                subjects.push((m, "sbom".to_string()));
            }
            let stage = events.start("sign");
            let signed = self.sign(signer, store, to, subjects);
            stage.end(signed)?;
            let stage = events.start("attest");
            let attested = self.attest_component(signer, store, to);
            stage.end(attested)?;
        }
        self.attach_precompiled(store.as_ref(), to, precompiled)
    }

    /// The SBOM stage: a CycloneDX SBOM of the component, written beside it.
    fn sbom(&mut self) -> Result<()> {
        let bom = self.bom()?;
        let out = &self.out;
        let path = self.kiln_dir.join(format!("{}.cdx.json", self.stem));
        let bytes = kiln_build::sbom::to_bytes(&bom)?;
        kiln_core::fs::write_if_changed(&path, &bytes)?;
        self.sbom = Some(SbomInfo {
            format: "CycloneDX 1.5",
            path: relative(&out.project.root, &path),
            digest: Digest::of(&bytes),
            components: bom.components.len(),
            manifest: None,
        });
        self.sbom_bytes = Some(bytes);
        Ok(())
    }

    /// The component's SBOM, made once for the SBOM stage and the
    /// provenance.
    fn bom(&mut self) -> Result<kiln_build::sbom::Bom> {
        if let Some(bom) = &self.bom {
            return Ok(bom.clone());
        }
        let out = &self.out;
        let m = &out.built.metadata;
        let bom = kiln_build::sbom::generate(
            &out.built.sbom,
            &kiln_build::sbom::Subject {
                name: out.built.package_name(),
                version: m.version.as_deref(),
                license: m.licenses.as_deref(),
                digest_hex: &out.digest.hex(),
                is_program: out.built.is_program,
                created: &self.created,
            },
            &out.built.wasm,
        )?;
        self.bom = Some(bom.clone());
        Ok(bom)
    }

    /// The push stage: the component, then its SBOM attached to it.
    fn push(&mut self, to: &Destination) -> Result<Store> {
        let events = &self.cx.events;
        let store = self.cx.request.registry.open(&to.reference, true, events)?;
        let pushed = store.push(&to.reference, &to.package, &[], events)?;
        self.counts.uploaded_bytes += pushed.uploaded_bytes;
        let mut info = PushedInfo {
            reference: pushed.reference.clone(),
            digest: pushed.digest,
            size: pushed.size,
            media_type: pushed.media_type.clone(),
            referrers: Vec::new(),
        };
        if let Some(bytes) = &self.sbom_bytes {
            let sbom =
                kiln_oci::sbom_package(bytes.clone(), &to.package.descriptor, &self.created)?;
            self.counts.uploaded_bytes += store.attach(&to.package.digest(), &sbom, events)?;
            events.status("Attached", &format!("SBOM {}", sbom.digest()));
            if let Some(s) = &mut self.sbom {
                s.manifest = Some(sbom.digest());
            }
            info.referrers.push(ReferrerInfo {
                artifact_type: kiln_oci::artifact::SBOM_ARTIFACT_TYPE.to_string(),
                digest: sbom.digest(),
                target: None,
            });
        }
        self.pushed = Some(info);
        Ok(store)
    }

    /// A sign stage: each subject (a digest and what it is) signed, unless
    /// this key's signature of it is stored already.
    fn sign(
        &mut self,
        signer: &kiln_sign::Signer,
        store: &Store,
        to: &Destination,
        subjects: Vec<(Digest, String)>,
    ) -> Result<()> {
        for (subject, what) in subjects {
            let signature = self.sign_once(signer, store, &to.reference, &subject, &what)?;
            self.signatures.push(signature);
        }
        Ok(())
    }

    /// Signs `subject` unless this key's signature of it, in the planned
    /// format, is already stored: an unchanged digest is never signed twice.
    fn sign_once(
        &mut self,
        signer: &kiln_sign::Signer,
        store: &Store,
        reference: &Reference,
        subject: &Digest,
        what: &str,
    ) -> Result<SignatureInfo> {
        let events = &self.cx.events;
        let format = self.cx.plan.sign_format;
        let verifier = signer.verifier()?;
        let judged =
            crate::ops::sign::judge(store, subject, &verifier, &BTreeMap::new(), "", events)?;
        let existing = crate::ops::sign::accepted(&judged)
            .into_iter()
            .find(|a| a.format == format)
            .map(|a| a.manifest);
        let manifest = match existing {
            None => {
                let manifest = crate::ops::sign::sign_digest(
                    store,
                    reference,
                    subject,
                    signer,
                    &BTreeMap::new(),
                    format,
                    events,
                )?;
                events.status("Signed", &format!("{what} {subject}"));
                self.counts.signed += 1;
                manifest
            }
            Some(manifest) => {
                events.status(
                    "Signed",
                    &format!("{what} {subject} (already, by this key)"),
                );
                self.counts.already_signed += 1;
                manifest
            }
        };
        Ok(SignatureInfo {
            subject: *subject,
            what: what.to_string(),
            format,
            reference: crate::ops::sign::signature_reference(reference, subject, format, &manifest),
            signature_manifest: manifest,
        })
    }

    /// The precompiled artifacts as the compile stage finishes each: an
    /// attach stage for each when there is a store, then one update of the
    /// referrers index for all of them and a sign stage for them.
    fn attach_precompiled(
        &mut self,
        store: Option<&Store>,
        to: &Destination,
        precompiled: &Receiver<kiln_aot::Artifact>,
    ) -> Result<Vec<kiln_aot::Artifact>> {
        let cx = self.cx;
        let events = &cx.events;
        let mut artifacts = Vec::new();
        let mut attached = Vec::new();
        for a in precompiled.iter() {
            let files =
                kiln_aot::ArtifactFiles::new(&self.kiln_dir, &self.stem, a.descriptor.target);
            let mut entry = Precompiled {
                target: a.descriptor.target,
                path: relative(&self.out.project.root, &files.cwasm),
                digest: a.descriptor.artifact_digest,
                size: a.descriptor.artifact_size,
                descriptor: a.descriptor.clone(),
                manifest: None,
            };
            if let Some(store) = store {
                let stage = events.start("attach");
                let cwasm = self.attach(store, to, &a, &files);
                let cwasm = stage.end(cwasm)?;
                entry.manifest = Some(cwasm.digest());
                attached.push(cwasm.descriptor);
            }
            self.precompiled.push(entry);
            artifacts.push(a);
        }
        if let Some(store) = store
            && !attached.is_empty()
        {
            // One update of the referrers index for all of them.
            events.stage("attach", || {
                store.add_referrers(&to.package.digest(), &attached)
            })?;
            if let Some(signer) = &cx.signer {
                let subjects = self
                    .precompiled
                    .iter()
                    .filter_map(|p| Some((p.manifest?, format!("precompiled {}", p.target))))
                    .collect();
                let stage = events.start("sign");
                let signed = self.sign(signer, store, to, subjects);
                stage.end(signed)?;
                let stage = events.start("attest");
                let attested = self.attest_precompiled(signer, store, to);
                stage.end(attested)?;
            }
        }
        Ok(artifacts)
    }

    /// An attach stage: one precompiled artifact, pushed as a referrer of
    /// the component; returns what was pushed.
    fn attach(
        &mut self,
        store: &Store,
        to: &Destination,
        a: &kiln_aot::Artifact,
        files: &kiln_aot::ArtifactFiles,
    ) -> Result<kiln_oci::Package> {
        let events = &self.cx.events;
        let mut json = serde_json::to_vec_pretty(&a.descriptor)?;
        json.push(b'\n');
        let file_name = files
            .cwasm
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cwasm = kiln_oci::cwasm_package(
            a.bytes.clone(),
            json,
            a.descriptor.target,
            &a.descriptor.wasmtime_version,
            &file_name,
            &to.package.descriptor,
            &self.created,
        )?;
        self.counts.uploaded_bytes += store.put_attachment(&cwasm, events)?;
        events.status(
            "Attached",
            &format!("{} {}", a.descriptor.target, cwasm.descriptor.digest),
        );
        if let Some(p) = &mut self.pushed {
            p.referrers.push(ReferrerInfo {
                artifact_type: kiln_oci::artifact::CWASM_ARTIFACT_TYPE.to_string(),
                digest: cwasm.digest(),
                target: Some(a.descriptor.target),
            });
        }
        Ok(cwasm)
    }

    /// Writes the receipt and reports the end: the receipt as the last JSON
    /// event, or what was pushed on stdout.
    fn finish(mut self, to: &Destination, artifacts: &[kiln_aot::Artifact]) -> Result<()> {
        let cx = self.cx;
        for a in artifacts {
            if a.cached {
                self.counts.from_cache += 1;
            } else {
                self.counts.compiled += 1;
            }
        }
        self.counts.timings_ms = cx.events.timings();
        self.counts
            .timings_ms
            .insert("total".to_string(), ms(cx.started));
        let out = &self.out;
        let receipt = Receipt {
            schema: receipt::RECEIPT_SCHEMA,
            dry_run: cx.request.dry_run,
            project: ProjectInfo::of(out, cx.plan.settings_file.as_deref()),
            toolchain: Toolchain::of(out),
            adapter: out.adapter.map(AdapterInfo::of),
            component: ComponentInfo::of(out),
            audit: self.audit,
            precompiled: self.precompiled,
            sbom: self.sbom,
            pushed: self.pushed,
            signatures: self.signatures,
            attestations: self.attestations,
            run: self.counts,
        };
        let receipt_path = cx
            .request
            .receipt
            .clone()
            .unwrap_or_else(|| self.kiln_dir.join("receipt.json"));
        let mut bytes = serde_json::to_vec_pretty(&receipt)?;
        bytes.push(b'\n');
        kiln_core::fs::write_atomic(&receipt_path, &bytes)?;
        render::finished(cx.printer, &receipt, &receipt_path, cx.started);
        if cx.request.json {
            cx.events.emit(&Event::Receipt { receipt: &receipt });
        } else {
            render::summary(cx.printer, &receipt, &to.reference)?;
        }
        Ok(())
    }
}

fn audit_component(out: &BuildOutput, policy: &Policy) -> Result<AuditReport> {
    let world = policy.world.as_ref().map(WorldNames::load).transpose()?;
    let facts = audit::read_facts(&out.path.display().to_string(), &out.component)
        .with_context(|| format!("failed to read `{}`", out.path.display()))?;
    Ok(audit::audit(&facts, policy, world.as_ref()))
}
