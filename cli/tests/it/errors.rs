//! User mistakes end in one clear error, exit 2, no panic and no partial output.

use crate::common::*;

/// Checks that kiln failed cleanly (exit 2, an `error:` line, no panic) and
/// compares its stderr with `snapshots/errors/NAME.stderr`; returns it.
fn assert_clean_error(out: &std::process::Output, name: &str, filters: &Filters) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // Tool output (cargo's) may come first; kiln's own error is one line.
    assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    assert_snapshot(snapshot(&format!("errors/{name}.stderr")), &err, filters);
    err
}

#[test]
fn directory_without_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(kiln().arg("build").arg(dir.path()));
    assert_clean_error(
        &out,
        "directory_without_a_project",
        &Filters::new().path(dir.path(), "TMP"),
    );
}

#[test]
fn missing_path() {
    let out = run(kiln().args(["build", "/nonexistent/kiln-project"]));
    assert_clean_error(&out, "missing_path", &Filters::new());
}

#[test]
fn compile_error_shows_cargo_errors_and_names_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("broken");
    copy_dir(&fixture("rust-command"), &project);
    std::fs::write(
        project.join("src/main.rs"),
        "fn main() { let x: u32 = \"no\"; }\n",
    )
    .unwrap();
    let out_file = dir.path().join("out.wasm");
    // A target directory of its own: cargo's fingerprints of path packages
    // leave their path out, so in the shared one another copy of this
    // fixture, built at the same time, can pass for this one.
    let out = run(kiln()
        .arg("build")
        .arg(&project)
        .arg("-o")
        .arg(&out_file)
        .env("CARGO_TARGET_DIR", dir.path().join("target")));
    // cargo's error is shown, then kiln's naming the step.
    assert_clean_error(
        &out,
        "compile_error_shows_cargo_errors_and_names_the_step",
        &Filters::new().path(dir.path(), "TMP").cargo(),
    );
    assert!(!out_file.exists());
}

#[test]
fn unwritable_output_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .arg("-o")
        .arg(blocker.join("out.wasm")));
    assert_clean_error(
        &out,
        "unwritable_output_leaves_nothing",
        &Filters::new()
            .path(dir.path(), "TMP")
            .path(&root(), "ROOT")
            .cargo(),
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn missing_wasm_target_names_the_install_command() {
    // A rustc whose sysroot has no wasm standard library, as on a machine
    // where `rustup target add` was never run: it knows no wasm target.
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu")).unwrap();
    let fake = dir.path().join("rustc");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --print ] && [ \"$2\" = sysroot ]; then echo {}; exit 0; fi\n\
             case \"$*\" in *wasm32-wasip2*) echo \"error[E0463]: can't find crate for core\" >&2; exit 1;; esac\n\
             exec rustc \"$@\"\n",
            sysroot.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .env("RUSTC", &fake));
    assert_clean_error(
        &out,
        "missing_wasm_target_names_the_install_command",
        &Filters::new()
            .path(dir.path(), "TMP")
            .path(&root(), "ROOT")
            .cargo(),
    );
}

#[test]
fn missing_cargo_is_explained() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .env("CARGO", "/nonexistent/bin/cargo"));
    assert_clean_error(
        &out,
        "missing_cargo_is_explained",
        &Filters::new().path(&root(), "ROOT"),
    );
}

#[test]
fn unknown_target_lists_the_valid_ones() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .args(["--target", "wasm64-unknown"]));
    assert_clean_error(
        &out,
        "unknown_target_lists_the_valid_ones",
        &Filters::new().path(&root(), "ROOT"),
    );
}

#[test]
fn inspect_of_a_text_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let out = run(kiln().arg("inspect").arg(&file));
    assert_clean_error(
        &out,
        "inspect_of_a_text_file_is_one_clear_line",
        &Filters::new().path(dir.path(), "TMP"),
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn inspect_and_validate_of_a_missing_file() {
    let out = run(kiln().args(["inspect", "/nonexistent/x.wasm"]));
    assert_clean_error(&out, "inspect_of_a_missing_file", &Filters::new());
    let out = run(kiln().args(["validate", "/nonexistent/x.wasm"]));
    assert_clean_error(&out, "validate_of_a_missing_file", &Filters::new());
}

#[test]
fn validate_reports_offset_and_reason_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let out = run(kiln().arg("validate").arg(&file).arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"][0]["error"]["offset"], 0);
    let filters = Filters::new().path(dir.path(), "TMP");
    assert_snapshot(
        snapshot("errors/validate_reports_offset_and_reason_with_exit_1.stderr"),
        &stderr(&out),
        &filters,
    );
    assert_snapshot(
        snapshot("errors/validate_reports_offset_and_reason_with_exit_1.json"),
        &stdout(&out),
        &filters,
    );
}

#[test]
fn flags_of_another_language_are_refused() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .args(["--cc", "clang"]));
    let filters = Filters::new().path(&root(), "ROOT");
    assert_clean_error(&out, "cc_is_refused_for_rust", &filters);
    let out = run(kiln().arg("build").arg(fixture("go-command")).arg("--lib"));
    assert_clean_error(&out, "lib_is_refused_for_go", &filters);
}

#[test]
fn package_names_that_would_escape_the_target_dir_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("evil");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("src/main.c"), "int main(void) { return 0; }\n").unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"../../escaped\"\n[build]\nlanguage = \"c\"\n",
    )
    .unwrap();
    let out = run(kiln().arg("build").arg(&project));
    assert_clean_error(
        &out,
        "package_names_that_would_escape_the_target_dir_are_refused",
        &Filters::new().path(dir.path(), "TMP"),
    );
    assert!(!dir.path().join("escaped.wasm").exists());
}

#[test]
fn a_cargo_license_that_is_not_spdx_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("legacy-license");
    copy_dir(&fixture("rust-command"), &project);
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "license = \"Apache-2.0 OR MIT\"",
        "license = \"MIT/Apache-2.0\"",
    );
    std::fs::write(&manifest, text).unwrap();
    let out_file = dir.path().join("out.wasm");
    let filters = Filters::new().path(dir.path(), "TMP").cargo();
    // A target directory of its own, as above.
    let build = || {
        let mut c = kiln();
        c.arg("build")
            .arg(&project)
            .arg("-o")
            .arg(&out_file)
            .env("CARGO_TARGET_DIR", dir.path().join("target"));
        c
    };
    let out = run_ok(&mut build());
    assert_snapshot(
        snapshot("errors/a_cargo_license_that_is_not_spdx_is_a_warning.stderr"),
        &stderr(&out),
        &filters,
    );
    assert_eq!(run_command(&out_file, &["x"], &[]).unwrap(), "hello, x!\n");
    // A rebuild that reuses the component says it again.
    let again = run_ok(&mut build());
    assert_snapshot(
        snapshot("errors/a_cargo_license_that_is_not_spdx_is_a_warning.again.stderr"),
        &stderr(&again),
        &filters,
    );
}
