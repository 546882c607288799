//! User mistakes end in one clear error, exit 2, no panic and no partial output.

use crate::common::*;

fn assert_clean_error(out: &std::process::Output, needle: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // Tool output (cargo's) may come first; kiln's own error is one line.
    assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    err
}

#[test]
fn directory_without_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(kiln().arg("build").arg(dir.path()));
    let err = assert_clean_error(&out, "no project found");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn missing_path() {
    let out = run(kiln().args(["build", "/nonexistent/kiln-project"]));
    assert_clean_error(&out, "failed to read `/nonexistent/kiln-project`");
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
    let out = run(kiln().arg("build").arg(&project).arg("-o").arg(&out_file));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mismatched types"),
        "cargo's error is shown:\n{err}"
    );
    assert!(
        err.contains("error: cargo could not build `hello-command`"),
        "{err}"
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
    assert_clean_error(&out, "a-file");
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
    let err = assert_clean_error(&out, "`wasm32-wasip2` is not installed");
    assert!(err.contains("rustup target add wasm32-wasip2"), "{err}");
}

#[test]
fn missing_cargo_is_explained() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .env("CARGO", "/nonexistent/bin/cargo"));
    let err = assert_clean_error(&out, "`cargo` was not found");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn unknown_target_lists_the_valid_ones() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .args(["--target", "wasm64-unknown"]));
    let err = assert_clean_error(&out, "`wasm64-unknown` is not a wasm target");
    assert!(err.contains("wasm32-wasip2, wasm32-wasip1"), "{err}");
}

#[test]
fn inspect_of_a_text_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let out = run(kiln().arg("inspect").arg(&file));
    let err = assert_clean_error(&out, "not a wasm binary");
    assert!(out.stdout.is_empty());
    assert!(err.contains("notes.txt"), "{err}");
}

#[test]
fn inspect_and_validate_of_a_missing_file() {
    let out = run(kiln().args(["inspect", "/nonexistent/x.wasm"]));
    assert_clean_error(&out, "failed to read `/nonexistent/x.wasm`");
    let out = run(kiln().args(["validate", "/nonexistent/x.wasm"]));
    assert_clean_error(&out, "failed to read `/nonexistent/x.wasm`");
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
    assert!(stderr(&out).contains("is invalid at offset 0x0"));
}

#[test]
fn flags_of_another_language_are_refused() {
    let out = run(kiln()
        .arg("build")
        .arg(fixture("rust-command"))
        .args(["--cc", "clang"]));
    let err = assert_clean_error(&out, "`--cc` does not apply to rust projects");
    assert!(err.contains("it is for c projects"), "{err}");
    let out = run(kiln().arg("build").arg(fixture("go-command")).arg("--lib"));
    assert_clean_error(&out, "`--lib` does not apply to go projects");
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
    assert_clean_error(&out, "is not a valid name");
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
    let out = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&out_file));
    let err = stderr(&out);
    assert!(
        err.contains("warning: license `MIT/Apache-2.0` is not an SPDX expression"),
        "{err}"
    );
    assert_eq!(run_command(&out_file, &["x"], &[]).unwrap(), "hello, x!\n");
    // A rebuild that reuses the component says it again.
    let again = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&out_file));
    let err = stderr(&again);
    assert!(err.contains("Fresh"), "{err}");
    assert!(err.contains("is not an SPDX expression"), "{err}");
}
