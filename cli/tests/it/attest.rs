//! Attestations as cosign attests them: `kiln attest`/`verify-attestation`, and the SBOM and SLSA provenance `kiln publish` attaches.

use crate::bundles::{
    BUNDLE, SIGN_PREDICATE, b64, bytes_of, forge_referrer_of, json_of, k, keygen, node,
    openssl_verifies_bundle_of, signed_bundle, sigstore_js, statement,
};
use crate::common::*;
use crate::registry_harness::{Registry, Variant};
use crate::trust::{Forge, module};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const SLSA: &str = "https://slsa.dev/provenance/v1";
const CYCLONEDX: &str = "https://cyclonedx.org/bom";

/// `kiln verify-attestation REF --key KEY [ARGS]`.
fn verify_attestation(dir: &Path, r: &str, key: &Path, args: &[&str]) -> Output {
    run(k(dir)
        .arg("verify-attestation")
        .arg(r)
        .arg("--key")
        .arg(key)
        .args(args))
}

/// The statements `verify-attestation --json` accepted.
fn statements(out: &Output) -> Vec<Value> {
    json_of(out)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statement"].clone())
        .collect()
}

#[test]
fn attestations_round_trip_and_forgeries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "k");
    let (other, other_public) = keygen(d, "other");
    let layout = d.join("layout");
    let forge = Forge {
        dir: layout.clone(),
    };
    let ra = format!("oci:{}:a", layout.display());
    let push = |name: &str, r: &str| {
        json_of(&run_ok(
            k(d).arg("push").arg(module(d, name)).arg(r).arg("--json"),
        ))["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = push("a", &ra);
    let b = push("b", &format!("oci:{}:b", layout.display()));

    // A predicate made elsewhere, attested with cosign's short type name.
    let predicate = json!({
        "buildDefinition": {"buildType": "https://example.com/build/v1", "externalParameters": {"x": 1}},
        "runDetails": {"builder": {"id": "https://example.com/builder"}},
    });
    std::fs::write(d.join("provenance.json"), predicate.to_string()).unwrap();
    let attached = json_of(&run_ok(
        k(d).args([
            "attest",
            &ra,
            "--type",
            "slsaprovenance1",
            "--json",
            "--key",
        ])
        .arg(&key)
        .arg("--predicate")
        .arg(d.join("provenance.json")),
    ));
    assert_eq!(attached["digest"], a.as_str());
    assert_eq!(attached["predicate_type"], SLSA);
    let referrer = attached["referrer"].as_str().unwrap().to_string();
    // Stored as cosign stores it: a bundle referrer naming its predicate type.
    let manifest = forge.manifest(&referrer);
    assert_eq!(manifest["artifactType"], BUNDLE);
    assert_eq!(
        manifest["annotations"]["dev.sigstore.bundle.predicateType"],
        SLSA
    );

    let out = verify_attestation(d, &ra, &public, &["--type", "slsaprovenance1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = statements(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["predicateType"], SLSA);
    assert_eq!(got[0]["predicate"], predicate);
    assert_eq!(
        got[0]["subject"][0]["digest"]["sha256"],
        a.trim_start_matches("sha256:")
    );
    // Any type without --type; none of another type; none by another key.
    assert_eq!(
        verify_attestation(d, &ra, &public, &[]).status.code(),
        Some(0)
    );
    assert_eq!(
        verify_attestation(d, &ra, &public, &["--type", "cyclonedx"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        verify_attestation(d, &ra, &other_public, &[]).status.code(),
        Some(1)
    );
    // An attestation is not a signature.
    let out = run(k(d).args(["verify", &ra, "--key"]).arg(&public));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Not JSON: an error naming the file.
    std::fs::write(d.join("bad.json"), "{not json").unwrap();
    let bad = run(k(d)
        .args(["attest", &ra, "--type", "cyclonedx", "--key"])
        .arg(&key)
        .arg("--predicate")
        .arg(d.join("bad.json")));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("bad.json"), "{}", stderr(&bad));

    // `custom`, the default type, wraps the file's text as cosign does.
    std::fs::write(d.join("note.txt"), "reviewed by the release team\n").unwrap();
    run_ok(
        k(d).args(["attest", &ra, "--key"])
            .arg(&key)
            .arg("--predicate")
            .arg(d.join("note.txt")),
    );
    let out = verify_attestation(d, &ra, &public, &["--type", "custom", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let custom = statements(&out).remove(0);
    assert_eq!(
        custom["predicateType"],
        "https://cosign.sigstore.dev/attestation/v1"
    );
    assert_eq!(
        custom["predicate"],
        json!({"Data": "reviewed by the release team\n", "Timestamp": "1970-01-01T00:00:00Z"})
    );

    // Forgeries attached to `a`, each judged on its own.
    let mut names = vec![(referrer.clone(), "GOOD")];
    // This key's attestation of `b`, moved to `a`.
    let of_b = signed_bundle(&key, &statement(&b, SLSA));
    names.push((
        forge_referrer_of(&forge, &a, &[(BUNDLE, bytes_of(&of_b))], SLSA),
        "OF-B",
    ));
    // This key's attestation of `a`, its predicate changed after signing.
    let mut tampered = signed_bundle(&key, &statement(&a, SLSA));
    let mut changed = statement(&a, SLSA);
    changed["predicate"] = json!({"buildDefinition": {"buildType": "https://evil.example/"}});
    tampered["dsseEnvelope"]["payload"] = json!(b64(&bytes_of(&changed)));
    names.push((
        forge_referrer_of(&forge, &a, &[(BUNDLE, bytes_of(&tampered))], SLSA),
        "TAMPERED",
    ));
    // This key's signature of `a`, offered as an attestation.
    let signature = signed_bundle(&key, &statement(&a, SIGN_PREDICATE));
    names.push((
        forge_referrer_of(&forge, &a, &[(BUNDLE, bytes_of(&signature))], SLSA),
        "SIGNATURE",
    ));
    // Another key's attestation of `a`.
    let by_other = signed_bundle(&other, &statement(&a, CYCLONEDX));
    names.push((
        forge_referrer_of(&forge, &a, &[(BUNDLE, bytes_of(&by_other))], CYCLONEDX),
        "OTHER-KEY",
    ));
    let mut filters = Filters::new()
        .path(&layout, "LAYOUT")
        .text(&a, "[A]")
        .text(&b, "[B]");
    for (digest, name) in &names {
        filters = filters.text(digest, &format!("[{name}]"));
    }
    let out = verify_attestation(d, &ra, &public, &["--type", "slsaprovenance1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_snapshot(
        snapshot("errors/verify-attestation-forged.stderr"),
        &stderr(&out),
        &filters,
    );
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}

/// Checks a statement and its SLSA v1 predicate with in-toto's own model
/// (PyPI's in-toto-attestation, strict about field names) and the fields
/// the SLSA v1 specification requires, which that package leaves to its
/// callers: buildDefinition.buildType and .externalParameters,
/// runDetails.builder.id, and a URI or digest in every resource descriptor.
const SLSA_CHECK: &str = r#"
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1.statement_pb2 import Statement as StatementPb
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.predicates.provenance.v1.provenance_pb2 import Provenance

raw = json.load(open(sys.argv[1], encoding="utf-8"))
pb = json_format.ParseDict(raw, StatementPb(), ignore_unknown_fields=False)
Statement.copy_from_pb(pb).validate()
assert pb.predicate_type == "https://slsa.dev/provenance/v1", pb.predicate_type
p = json_format.ParseDict(raw["predicate"], Provenance(), ignore_unknown_fields=False)
bd, rd = p.build_definition, p.run_details
assert p.HasField("build_definition"), "buildDefinition required"
assert bd.build_type, "buildDefinition.buildType required"
assert bd.HasField("external_parameters") and len(bd.external_parameters) > 0, "externalParameters required"
assert p.HasField("run_details") and rd.HasField("builder") and rd.builder.id, "runDetails.builder.id required"
for lst in (bd.resolved_dependencies, rd.byproducts, rd.builder.builder_dependencies):
    for r in lst:
        ResourceDescriptor.copy_from_pb(r).validate()
        assert r.uri or len(r.digest) > 0 or r.content, "a resource descriptor needs a uri, digest or content"
print("ok")
"#;

fn slsa_valid(dir: &Path, statement: &Value) {
    let file = dir.join("statement.json");
    std::fs::write(&file, statement.to_string()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(SLSA_CHECK)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success() && stdout(&out).trim() == "ok",
        "in-toto-attestation refused the provenance: {}{}\n{statement:#}",
        stdout(&out),
        stderr(&out)
    );
}

/// Validates a CycloneDX document against the vendored 1.5 schema.
fn cyclonedx_valid(document: &Value) {
    let schema = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(fixture("cyclonedx").join(name)).unwrap()).unwrap()
    };
    let (spdx, jsf) = (
        schema("spdx.SNAPSHOT.schema.json"),
        schema("jsf-0.82.SNAPSHOT.schema.json"),
    );
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
            spdx,
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
            jsf,
        )
        .unwrap()
        .prepare()
        .unwrap();
    let validator = jsonschema::options()
        .with_registry(&registry)
        .build(&schema("bom-1.5.SNAPSHOT.schema.json"))
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not CycloneDX 1.5: {errors:#?}");
}

#[test]
fn publish_attaches_sbom_and_provenance_attestations() {
    if !requires(&["clang", "openssl", "in_toto_attestation"]) || !requires_registry(Variant::Plain)
    {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, public) = keygen(d, "cosign");
    let project = d.join("c-command");
    copy_dir(&fixture("c-command"), &project);
    let repo = "attested/c-command";
    let r = format!("{}/{repo}:1", reg.host);
    let publish = || {
        run_ok(
            k(d).arg("publish")
                .arg(&project)
                .args(["--to", &r, "--key", "cosign.key", "--target", "pulley64"])
                .arg("--receipt")
                .arg(d.join("receipt.json"))
                .env_remove("GITHUB_ACTIONS")
                .env_remove("GITLAB_CI"),
        );
        serde_json::from_slice::<Value>(&std::fs::read(d.join("receipt.json")).unwrap()).unwrap()
    };
    let receipt = publish();
    let digest = receipt["pushed"]["digest"].as_str().unwrap().to_string();
    let attestations = receipt["attestations"].as_array().unwrap();
    let whats: Vec<&str> = attestations
        .iter()
        .map(|a| a["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        whats,
        ["sbom", "provenance", "precompiled pulley64 provenance"]
    );
    assert_eq!(receipt["run"]["attested"], 3);

    // The SBOM attestation holds the SBOM kiln wrote, valid CycloneDX 1.5.
    let out = verify_attestation(d, &r, &public, &["--type", "cyclonedx", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sbom = &statements(&out)[0]["predicate"];
    let written: Value = serde_json::from_slice(
        &std::fs::read(project.join(receipt["sbom"]["path"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(sbom, &written);
    cyclonedx_valid(sbom);

    // The provenance: valid SLSA v1, about the pushed manifest, naming the
    // source tree, the adapter and the sources compiled.
    let out = verify_attestation(d, &r, &public, &["--type", "slsaprovenance1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let provenance = statements(&out).remove(0);
    slsa_valid(d, &provenance);
    assert_eq!(
        provenance["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    let p = &provenance["predicate"];
    assert_eq!(
        p["buildDefinition"]["buildType"],
        "https://example.invalid/kiln/build-types/component/v1"
    );
    assert_eq!(
        p["runDetails"]["builder"]["id"],
        "https://example.invalid/kiln/builder/local"
    );
    assert!(p["runDetails"].get("metadata").is_none(), "{p:#}");
    let resolved = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(resolved[0]["name"], "source");
    assert_eq!(
        resolved[1]["digest"]["sha256"],
        receipt["adapter"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    );
    let main_c = resolved.iter().find(|r| r["name"] == "src/main.c").unwrap();
    assert_eq!(
        main_c["digest"]["sha256"],
        kiln_core::Digest::of(&std::fs::read(project.join("src/main.c")).unwrap()).hex()
    );

    // The precompiled artifact's provenance names the component as input.
    let cwasm = receipt["precompiled"][0]["manifest"].as_str().unwrap();
    let pinned = format!("{}/{repo}@{cwasm}", reg.host);
    let out = verify_attestation(
        d,
        &pinned,
        &public,
        &["--type", "slsaprovenance1", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let precompiled = statements(&out).remove(0);
    slsa_valid(d, &precompiled);
    let input = &precompiled["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(input["uri"], format!("{}/{repo}@{digest}", reg.host));
    assert_eq!(
        input["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );

    // Independently: openssl over the PAE, and Sigstore's JavaScript
    // verifier.
    for (a, kind) in attestations.iter().zip([CYCLONEDX, SLSA, SLSA]) {
        openssl_verifies_bundle_of(
            d,
            &reg.host,
            repo,
            a["referrer_manifest"].as_str().unwrap(),
            a["subject"].as_str().unwrap(),
            &public,
            kind,
        );
    }
    if let Some(js) = sigstore_js() {
        let manifest: Value = serde_json::from_slice(
            &reg.linked_blob(repo, attestations[1]["referrer_manifest"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let bundle = reg
            .linked_blob(repo, manifest["layers"][0]["digest"].as_str().unwrap())
            .unwrap();
        std::fs::write(d.join("provenance.sigstore.json"), bundle).unwrap();
        let out = node(
            &js,
            "verify.js",
            &[
                public.as_os_str(),
                d.join("provenance.sigstore.json").as_os_str(),
                digest.as_ref(),
            ],
        );
        assert!(
            out.status.success() && stdout(&out).contains(SLSA),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
    }

    // Nothing changed: nothing attested again, the same receipt.
    let again = publish();
    assert_eq!(again["run"]["attested"], 0);
    assert_eq!(again["run"]["already_attested"], 3);
    assert_eq!(again["attestations"], receipt["attestations"]);

    // Times only when asked: a new provenance of each, the SBOM unchanged.
    run_ok(
        k(d).arg("publish")
            .arg(&project)
            .args(["--to", &r, "--key", "cosign.key", "--target", "pulley64"])
            .arg("--provenance-times")
            .arg("--receipt")
            .arg(d.join("timed.json")),
    );
    let timed: Value =
        serde_json::from_slice(&std::fs::read(d.join("timed.json")).unwrap()).unwrap();
    assert_eq!(timed["run"]["attested"], 2);
    assert_eq!(timed["run"]["already_attested"], 1);
    let out = verify_attestation(d, &r, &public, &["--type", "slsaprovenance1", "--json"]);
    let metadata: Vec<Value> = statements(&out)
        .iter()
        .map(|s| s["predicate"]["runDetails"]["metadata"].clone())
        .collect();
    assert_eq!(metadata.len(), 2);
    let with_times = metadata.iter().find(|m| !m.is_null()).unwrap();
    for key in ["startedOn", "finishedOn"] {
        let t = with_times[key].as_str().unwrap();
        assert!(t.len() == 20 && t.ends_with('Z') && t > "2020", "{t}");
    }
}
