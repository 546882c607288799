//! `kiln new`: every template builds, publishes and runs with no edits.
//!
//! `kiln new`: every template becomes a project that `kiln build` and `kiln
//! publish` handle with no edits, and that runs in Wasmtime (commands with
//! arguments, libraries through their exports, http handlers through a real
//! wasi:http host).

use crate::common::*;
use std::path::{Path, PathBuf};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Every template: language, template, and how to check what it built.
const TEMPLATES: &[(&str, &str)] = &[
    ("rust", "command"),
    ("rust", "library"),
    ("rust", "http"),
    ("c", "command"),
    ("c", "library"),
    ("go", "command"),
    ("go", "library"),
];

/// Makes a project with `kiln new` and checks it holds exactly its
/// template's files, with every placeholder replaced.
fn new_project(dir: &Path, lang: &str, template: &str) -> PathBuf {
    let name = format!("my-{lang}-{template}");
    let project = dir.join(&name);
    let out = run_ok(kiln().current_dir(dir).args([
        "new",
        &name,
        "--lang",
        lang,
        "--template",
        template,
    ]));
    assert_eq!(stdout(&out).trim(), name);
    let template_dir = root().join("templates").join(format!("{lang}-{template}"));
    let mut want: Vec<String> = crate::registry_harness::files_under(&template_dir)
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&template_dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            rel.replace("gitignore", ".gitignore")
        })
        .collect();
    let mut got: Vec<String> = crate::registry_harness::files_under(&project)
        .iter()
        .map(|p| {
            p.strip_prefix(&project)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{lang}-{template}");
    let text: String = crate::registry_harness::files_under(&project)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        !text.contains("{{"),
        "unreplaced placeholder in {lang}-{template}"
    );
    project
}

#[test]
fn every_template_builds_publishes_verifies_and_runs() {
    use crate::registry_harness::{Registry, Variant};
    if !requires(&["clang", "go", "openssl"]) || !requires_registry(Variant::Plain) {
        return;
    }
    use crate::publish::{Check, publish_verify_and_run};
    let reg = Registry::start(Variant::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (lang, template) in TEMPLATES {
        let project = new_project(dir, lang, template);
        let name = format!("my-{lang}-{template}");
        let interface = format!("component:{name}/api@0.1.0");
        let check = match (*lang, *template) {
            (_, "command") => Check::Command(&["kiln"]),
            ("go", "library") => Check::Call {
                interface,
                func: "add",
                args: vec![Val::S32(40), Val::S32(2)],
                want: Val::S32(42),
            },
            (_, "library") => Check::Call {
                interface,
                func: "greet",
                args: vec![Val::String("kiln".into())],
                want: Val::String("Hello, kiln!".into()),
            },
            (_, "http") => Check::Http {
                path: "/hello?x=1",
                body: format!("Hello from {name}! You asked for /hello?x=1\n"),
            },
            other => unreachable!("{other:?}"),
        };
        publish_verify_and_run(dir, &reg.host, &project, &[], &check);
        // The command templates greet as their source says.
        if *template == "command" {
            let wasm = dir.join(format!("{name}.pulled.wasm"));
            assert_eq!(
                run_command(&wasm, &["kiln"], &[]).unwrap(),
                "Hello, kiln!\n"
            );
        }
    }
}

#[test]
fn bad_names_missing_templates_and_existing_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for bad in ["My-App", "2fast", "a--b", "x_y", "-lead"] {
        let out = run(kiln().current_dir(dir).args(["new", bad]));
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(!dir.join(bad).exists());
    }
    let out =
        run(kiln()
            .current_dir(dir)
            .args(["new", "web", "--lang", "go", "--template", "http"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no `http` template for go"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("rust-http"), "{}", stderr(&out));
    std::fs::create_dir(dir.join("taken")).unwrap();
    let out = run(kiln().current_dir(dir).args(["new", "taken"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"));
    // Nothing half-made is left behind.
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("taken")]);
}

struct HttpHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoing,
    table: ResourceTable,
}

/// A host that serves incoming requests and makes no outgoing ones.
struct NoOutgoing;

impl WasiHttpHooks for NoOutgoing {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        hyper::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl WasiView for HttpHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Sends one GET request to a wasi:http/proxy component in Wasmtime's own
/// wasi:http host (as `wasmtime serve` does) and returns the status and body.
pub(crate) fn serve_one_loaded(
    engine: &Engine,
    component: &Component,
    path_and_query: &str,
) -> (u16, String) {
    use http_body_util::BodyExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut linker = Linker::<HttpHost>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let pre = ProxyPre::new(linker.instantiate_pre(component).unwrap()).unwrap();
        let mut store = Store::new(
            engine,
            HttpHost {
                wasi: WasiCtx::builder().build(),
                http: WasiHttpCtx::new(),
                hooks: NoOutgoing,
                table: ResourceTable::new(),
            },
        );
        let request = hyper::Request::builder()
            .uri(format!("http://localhost{path_and_query}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .unwrap();
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .unwrap();
        let proxy = pre.instantiate_async(&mut store).await.unwrap();
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
            .unwrap();
        let response = receiver.await.unwrap().unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}
