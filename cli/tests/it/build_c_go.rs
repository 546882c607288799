//! `kiln build` on the C and Go fixtures with the real clang and Go toolchains, checked in Wasmtime.

use crate::both_ways::{Case, Status, assert_same_both_ways};
use crate::common::*;
use std::path::{Path, PathBuf};
use wasmtime::component::Val;

/// A private copy of a fixture, so tests that build in place (make, the
/// object cache) never race each other.
fn fixture_copy(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    copy_dir(&fixture(name), &to);
    to
}

#[test]
fn c_command_greets_and_reads_a_preopened_file() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-command", dir.path());
    let out = dir.path().join("c-greeter.wasm");
    let summary = build(&project, &out, &[]);
    assert_eq!(summary["language"], "c");
    assert_eq!(summary["package"], "c-greeter");
    assert_eq!(summary["version"], "0.2.0");
    assert_eq!(summary["adapter"], "command");

    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("note.txt"), "from a preopened dir\n").unwrap();
    assert_eq!(
        run_command_with_dir(
            &out,
            &["Ada", "/data/note.txt"],
            &[],
            Some((&data, "/data"))
        )
        .unwrap(),
        "hello, Ada!\nfrom a preopened dir\n"
    );
    assert_eq!(
        run_command(&out, &[], &[("GREETING_NAME", "C")]).unwrap(),
        "hello, C!\n"
    );

    // As the component, so the program: reading a file, failing to.
    let outcomes = assert_same_both_ways(
        &out,
        core_module(&summary),
        &[
            Case {
                args: &["Ada", "/data/note.txt"],
                files: &[("note.txt", b"from a preopened dir\n")],
                ..Case::default()
            },
            Case {
                args: &["Ada", "/data/missing.txt"],
                ..Case::default()
            },
            Case {
                env: &[("GREETING_NAME", "C")],
                ..Case::default()
            },
        ],
    );
    assert_eq!(outcomes[1].status, Status::Failure);
    assert_eq!(outcomes[1].stderr, b"cannot open /data/missing.txt\n");

    let report: serde_json::Value =
        serde_json::from_slice(&run_ok(kiln().arg("inspect").arg(&out).arg("--json")).stdout)
            .unwrap();
    assert_eq!(report["metadata"]["name"], "c-greeter");
    assert_eq!(report["metadata"]["licenses"], "MIT");
    assert!(
        report["producers"].to_string().contains("C11"),
        "{}",
        report["producers"]
    );
}

#[test]
fn c_sources_are_compiled_incrementally() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-command", dir.path());
    let out = dir.path().join("a.wasm");
    let filters = Filters::new().path(dir.path(), "TMP");
    let step = |n: u32| snapshot(&format!("build/c-incremental-{n}.stderr"));
    let first = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&out));
    assert_snapshot(step(1), &stderr(&first), &filters);

    // Nothing changed: nothing compiled.
    let second = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&out));
    assert_snapshot(step(2), &stderr(&second), &filters);

    // A header both sources include is newer: both recompile.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let header = project.join("src/greet.h");
    let text = std::fs::read_to_string(&header).unwrap();
    std::fs::write(&header, text + "\n").unwrap();
    let third = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&out));
    assert_snapshot(step(3), &stderr(&third), &filters);
    assert_eq!(
        run_command(&out, &["again"], &[]).unwrap(),
        "hello, again!\n"
    );
}

#[test]
fn c_library_exports_strings_and_lists_through_wit() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-library", dir.path());
    let out = dir.path().join("strings.wasm");
    let summary = build(&project, &out, &[]);
    assert_eq!(summary["adapter"], "reactor");
    let mut lib = Library::new(&out).unwrap();
    let iface = "kiln-fixtures:strings/text@0.1.0";
    let s = |v: &str| Val::String(v.into());
    assert_eq!(lib.call(iface, "reverse", &[s("kiln")]).unwrap(), s("nlik"));
    assert_eq!(lib.call(iface, "reverse", &[s("")]).unwrap(), s(""));
    assert_eq!(
        lib.call(
            iface,
            "total-length",
            &[Val::List(vec![s("ab"), s("cde"), s("")])]
        )
        .unwrap(),
        Val::U32(5)
    );
    assert_eq!(
        lib.call(iface, "repeat", &[s("hi"), Val::U32(3)]).unwrap(),
        Val::List(vec![s("hi"), s("hi"), s("hi")])
    );
    assert_eq!(
        lib.call(iface, "repeat", &[s("x"), Val::U32(0)]).unwrap(),
        Val::List(vec![])
    );
}

#[test]
fn makefile_project_builds_with_the_wasi_toolchain() {
    if !requires(&["clang", "make"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-make", dir.path());
    let out = dir.path().join("counter.wasm");
    let summary = build(&project, &out, &[]);
    assert_eq!(summary["language"], "c");
    assert!(
        summary["toolchain_output"]
            .as_str()
            .unwrap()
            .ends_with("counter.wasm")
    );
    assert_eq!(
        run_command(&out, &["1", "2", "39"], &[]).unwrap(),
        "args=3 sum=42\n"
    );
    assert_same_both_ways(
        &out,
        core_module(&summary),
        &[
            Case {
                args: &["1", "2", "39"],
                ..Case::default()
            },
            Case::default(),
        ],
    );
    // A no-op rebuild (make does nothing) still finds the output.
    let again = build(&project, &out, &[]);
    assert_eq!(again["digest"], summary["digest"]);
}

#[test]
fn a_makefile_link_without_ldflags_is_warned_about() {
    if !requires(&["clang", "make"]) {
        return;
    }
    // A link line that passes `$(CFLAGS)` where `$(LDFLAGS)` belongs links
    // (clang finds the WASI libc from the target) but never sees kiln's
    // `cabi_realloc` object; the build still succeeds, and says so.
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-make", dir.path());
    let makefile = project.join("Makefile");
    let text = std::fs::read_to_string(&makefile).unwrap();
    std::fs::write(
        &makefile,
        text.replace("$(CC) $(LDFLAGS) -o $@", "$(CC) $(CFLAGS) -o $@"),
    )
    .unwrap();
    let out = dir.path().join("counter.wasm");
    let built = run_ok(kiln().arg("build").arg(&project).arg("-o").arg(&out));
    let err = stderr(&built);
    assert!(
        err.contains("does not export kiln's `cabi_realloc`")
            && err.contains("a Makefile link line without `$(LDFLAGS)`"),
        "{err}"
    );
    // The fixture's own Makefile passes `$(LDFLAGS)`: no warning there.
    let plain = fixture_copy("c-make", &dir.path().join("plain"));
    let built = run_ok(kiln().arg("build").arg(&plain).arg("-o").arg(&out));
    assert!(
        !stderr(&built).contains("does not export"),
        "{}",
        stderr(&built)
    );
}

#[test]
fn a_header_missing_from_the_wasi_libc_is_named() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("needs-execinfo");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"needs-execinfo\"\n[build]\nlanguage = \"c\"\n",
    )
    .unwrap();
    // glibc has this header in the host's /usr/include; the WASI libc does not.
    std::fs::write(
        project.join("src/main.c"),
        "#include <execinfo.h>\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let out = run(kiln().arg("build").arg(&project));
    // Not compared whole: the clang command line names a temporary object
    // file and an object name hashed from the directory.
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`execinfo.h` is missing from the WASI libc"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("bits/"), "host headers leaked in:\n{err}");
}

#[test]
fn malformed_kiln_toml_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("bad");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[build]\nlanguage = \"c\"\nsource = [\"a.c\"]\n",
    )
    .unwrap();
    let out = run(kiln().arg("build").arg(&project));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_snapshot(
        snapshot("build/malformed-kiln-toml.stderr"),
        &stderr(&out),
        &Filters::new().path(dir.path(), "TMP"),
    );
}

#[test]
fn c_and_go_builds_are_reproducible_across_directories() {
    if !requires(&["clang", "go"]) {
        return;
    }
    for name in ["c-command", "c-library", "go-command", "go-reactor"] {
        let dir = tempfile::tempdir().unwrap();
        let a = fixture_copy(name, &dir.path().join("one"));
        let b = fixture_copy(name, &dir.path().join("elsewhere/two"));
        let first = build(&a, &dir.path().join("a.wasm"), &[]);
        let second = build(&b, &dir.path().join("b.wasm"), &[]);
        assert_eq!(first["digest"], second["digest"], "{name}");
        assert_eq!(
            std::fs::read(dir.path().join("a.wasm")).unwrap(),
            std::fs::read(dir.path().join("b.wasm")).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn go_command_reads_args_and_env() {
    if !requires(&["go"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gogreeter.wasm");
    let summary = build(&fixture("go-command"), &out, &[]);
    assert_eq!(summary["language"], "go");
    assert_eq!(summary["package"], "gogreeter");
    assert_eq!(summary["adapter"], "command");
    assert_eq!(
        run_command(&out, &["Grace", "Hopper"], &[]).unwrap(),
        "hello from go, Grace Hopper! (2 args)\n"
    );
    assert_eq!(
        run_command(&out, &[], &[("GREETING_NAME", "gopher")]).unwrap(),
        "hello from go, gopher! (0 args)\n"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&run_ok(kiln().arg("inspect").arg(&out).arg("--json")).stdout)
            .unwrap();
    assert_eq!(
        report["metadata"]["source"],
        "https://example.com/kiln/gogreeter"
    );
    assert!(report["producers"].to_string().contains("\"Go\""));
}

#[test]
fn go_reactor_exports_its_scalar_world() {
    if !requires(&["go"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calc.wasm");
    let summary = build(&fixture("go-reactor"), &out, &[]);
    assert_eq!(summary["adapter"], "reactor");
    assert_eq!(summary["package"], "go-calc");
    let mut lib = Library::new(&out).unwrap();
    let iface = "kiln-fixtures:calc/math@0.1.0";
    assert_eq!(
        lib.call(iface, "add", &[Val::S32(40), Val::S32(2)])
            .unwrap(),
        Val::S32(42)
    );
    assert_eq!(
        lib.call(iface, "scale", &[Val::Float64(1.5), Val::Float64(4.0)])
            .unwrap(),
        Val::Float64(6.0)
    );
    assert_eq!(
        lib.call(iface, "is-even", &[Val::U64(10)]).unwrap(),
        Val::Bool(true)
    );
    assert_eq!(
        lib.call(iface, "is-even", &[Val::U64(7)]).unwrap(),
        Val::Bool(false)
    );
}

#[test]
fn go_world_with_strings_is_refused_clearly() {
    if !requires(&["go"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("go-reactor", dir.path());
    std::fs::write(
        project.join("wit/world.wit"),
        "package kiln-fixtures:calc@0.1.0;\ninterface math {\n  add: func(a: s32, b: s32) -> s32;\n  name: func() -> string;\n}\nworld calc { export math; }\n",
    )
    .unwrap();
    let out = run(kiln()
        .arg("build")
        .arg(&project)
        .arg("-o")
        .arg(dir.path().join("x.wasm")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_snapshot(
        snapshot("build/go-world-with-strings.stderr"),
        &stderr(&out),
        &Filters::new().path(dir.path(), "TMP"),
    );
    assert!(!dir.path().join("x.wasm").exists());
}

#[test]
fn cmake_project_builds_for_wasi() {
    if !requires(&["clang", "cmake"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-cmake", dir.path());
    let out = dir.path().join("wordcount.wasm");
    // The project takes its `UNIX` branch, builds its `SHARED` library as
    // a static one, and leaves alone the test program WASI cannot build
    // (it needs setjmp): kiln.toml names the target.
    let summary = build(&project, &out, &[]);
    assert_eq!(summary["adapter"], "command");
    assert!(
        summary["toolchain_output"]
            .as_str()
            .unwrap()
            .ends_with("wordcount.wasm"),
        "{summary}"
    );
    assert_eq!(
        run_command(&out, &["one two", "three"], &[]).unwrap(),
        "words=3\n"
    );
    assert_same_both_ways(
        &out,
        core_module(&summary),
        &[Case {
            args: &["one two", "three"],
            ..Case::default()
        }],
    );

    // Without a target named, kiln lists the executables.
    std::fs::remove_file(project.join("kiln.toml")).unwrap();
    let failed = run(kiln().arg("build").arg(&project).arg("-o").arg(&out));
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    let text = stderr(&failed);
    assert_snapshot(
        snapshot("build/cmake-several-executables.stderr"),
        // From the error on: the status lines name the machine's clang.
        &text[text.find("error:").unwrap_or(0)..],
        &Filters::new().path(dir.path(), "TMP"),
    );
    // Naming one that is not an executable says what it is.
    let failed = run(kiln()
        .arg("build")
        .arg(&project)
        .args(["--cmake-target", "words", "-o"])
        .arg(&out));
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("CMake target `words` is a static library target"),
        "{}",
        stderr(&failed)
    );
}

/// A copy of a source tree `cargo xtask setup` unpacked with `apt-get
/// source` into `target/upstream/NAME`; `None` (the test skips) when it is
/// missing and `CI` is unset.
fn upstream_copy(name: &str, dir: &Path) -> Option<PathBuf> {
    let from = root().join("target/upstream").join(name);
    if !from.join("CMakeLists.txt").is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "requires the {name} sources in `{}` (`cargo xtask setup` unpacks them)",
            from.display()
        );
        eprintln!("skipped: requires the {name} sources (`cargo xtask setup`)");
        return None;
    }
    let to = dir.join(name);
    copy_dir(&from, &to);
    Some(to)
}

#[test]
fn upstream_cmake_project_builds_the_executable_named() {
    if !requires(&["clang", "cmake"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // cmark as Debian ships it: C and C++ enabled, a shared and a static
    // library, the `cmark` program (target `cmark_exe`) and a C++ API test.
    let Some(project) = upstream_copy("cmark", dir.path()) else {
        return;
    };
    let out = dir.path().join("cmark.wasm");
    let summary = build(&project, &out, &["--cmake-target", "cmark_exe"]);
    assert_eq!(summary["adapter"], "command");
    assert!(
        summary["toolchain_output"]
            .as_str()
            .unwrap()
            .ends_with("src/cmark.wasm"),
        "{summary}"
    );
    assert_eq!(
        String::from_utf8(
            run_command_with_stdin(&out, &[], b"# Hello *kiln*\n\n- one\n- two\n").unwrap()
        )
        .unwrap(),
        "<h1>Hello <em>kiln</em></h1>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
    );
    let markdown: &[u8] = b"# Notes\n\n> quoted *text*\n\n```\ncode\n```\n";
    assert_same_both_ways(
        &out,
        core_module(&summary),
        &[
            Case {
                stdin: b"# Hello *kiln*\n\n- one\n- two\n",
                ..Case::default()
            },
            Case {
                args: &["--to", "xml", "/data/notes.md"],
                files: &[("notes.md", markdown)],
                ..Case::default()
            },
            Case {
                args: &["/data/absent.md"],
                ..Case::default()
            },
        ],
    );
    // Only the target asked for was built.
    let build_dir = project.join("target/kiln/c/cmark/cmake");
    assert!(!build_dir.join("api_test/api_test.wasm").exists());

    // The same from kiln.toml.
    std::fs::write(
        project.join("kiln.toml"),
        "[build]\ncmake-target = \"cmark_exe\"\n",
    )
    .unwrap();
    let again = build(&project, &out, &[]);
    assert_eq!(again["digest"], summary["digest"]);
}

#[test]
fn an_unchanged_toolchain_output_reuses_the_component_until_anything_it_was_made_from_changes() {
    if !requires(&["clang", "go"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = fixture_copy("c-command", dir.path());
    let out = dir.path().join("c-greeter.wasm");
    let first = build(&project, &out, &[]);
    assert_eq!(first["reused"], false);
    let modified = || std::fs::metadata(&out).unwrap().modified().unwrap();
    let written = modified();

    // The compiler runs again and links the same module: the component is
    // kept as it is, not rewritten.
    let second = build(&project, &out, &[]);
    assert_eq!(second["reused"], true, "{second}");
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(second["timings"]["validate_ms"], 0.0);
    assert_eq!(modified(), written);
    assert_eq!(second["world"], first["world"]);

    // --force makes it again (the same bytes).
    let forced = build(&project, &out, &["--force"]);
    assert_eq!(forced["reused"], false);
    assert_eq!(forced["digest"], first["digest"]);

    // New metadata with the same module: made again, with the new version.
    let toml = std::fs::read_to_string(project.join("kiln.toml")).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        toml.replace("version = \"0.2.0\"", "version = \"0.3.0\""),
    )
    .unwrap();
    let bumped = build(&project, &out, &[]);
    assert_eq!(bumped["reused"], false);
    assert_eq!(bumped["version"], "0.3.0");
    assert_ne!(bumped["digest"], first["digest"]);
    let inspected: serde_json::Value =
        serde_json::from_slice(&run_ok(kiln().arg("inspect").arg(&out).arg("--json")).stdout)
            .unwrap();
    assert_eq!(inspected["metadata"]["version"], "0.3.0");

    // An output changed behind kiln's back is made again, whole and valid.
    std::fs::write(&out, b"\0asm\x01\0\0\0").unwrap();
    let repaired = build(&project, &out, &[]);
    assert_eq!(repaired["reused"], false);
    assert_eq!(repaired["digest"], bumped["digest"]);
    assert_eq!(
        kiln_core::Digest::of(&std::fs::read(&out).unwrap()).to_string(),
        bumped["digest"].as_str().unwrap()
    );

    // Go, whose module gets an allocator before it is componentized: the
    // reused component is the one made the first time, and it runs.
    let go = fixture_copy("go-command", dir.path());
    let go_out = dir.path().join("go.wasm");
    let made = build(&go, &go_out, &[]);
    let kept = build(&go, &go_out, &[]);
    assert_eq!(
        (made["reused"].clone(), kept["reused"].clone()),
        (false.into(), true.into())
    );
    assert_eq!(kept["digest"], made["digest"]);
    assert_eq!(kept["adapter"], "command");
    assert_eq!(
        run_command(&go_out, &["again"], &[]).unwrap(),
        "hello from go, again! (1 args)\n"
    );
}

/// `kiln build`'s summary of the C and Go command fixtures, human (stdout
/// and stderr) and `--json`, compared with
/// `snapshots/build/FIXTURE.{stdout,stderr,json}`.
#[test]
fn c_and_go_summaries_match_their_snapshots() {
    if !requires(&["clang", "go"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let filters = Filters::new().path(dir.path(), "TMP");
    for name in ["c-command", "go-command"] {
        let project = fixture_copy(name, dir.path());
        let human = run_ok(
            kiln()
                .arg("build")
                .arg(&project)
                .arg("-o")
                .arg(dir.path().join(format!("{name}.wasm"))),
        );
        // Again from scratch, so both runs compile the same.
        std::fs::remove_dir_all(project.join("target")).unwrap();
        let json = run_ok(
            kiln()
                .arg("build")
                .arg(&project)
                .args(["--json", "-o"])
                .arg(dir.path().join(format!("{name}.json.wasm"))),
        );
        let file = |suffix: &str| snapshot(&format!("build/{name}.{suffix}"));
        assert_snapshot(file("stdout"), &stdout(&human), &filters);
        assert_snapshot(file("stderr"), &stderr(&human), &filters);
        assert_snapshot(file("json"), &stdout(&json), &filters);
    }
}

/// A C program using what WASI lacks and wasi-libc emulates.
const EMULATED: &str = r#"/* Uses signal(), mmap(), clock() and getpid(). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got = 0;
static void on_signal(int sig) { got = sig; }

int main(void) {
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { puts("mmap failed"); return 1; }
    strcpy(page, "mapped");
    clock_t used = clock();
    printf("signal %s, %s, clock %s, pid %s\n", got == SIGUSR1 ? "handled" : "lost", page,
           used >= 0 ? "ok" : "failed", getpid() > 0 ? "ok" : "failed");
    munmap(page, 4096);
    return 0;
}
"#;

#[test]
fn wasi_libc_emulations_are_suggested_then_switched_on_in_kiln_toml() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("emulated");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("src/main.c"), EMULATED).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"emulated\"\n",
    )
    .unwrap();
    let out = dir.path().join("emulated.wasm");

    let failed = run(kiln().arg("build").arg(&project).arg("-o").arg(&out));
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    let text = stderr(&failed);
    assert!(
        text.contains(
            "hint: turn the emulation on with `emulate = [\"signal\", \"mman\", \"process-clocks\", \"getpid\"]`"
        ),
        "{text}"
    );

    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"emulated\"\n[build]\nemulate = [\"signal\", \"mman\", \"process-clocks\", \"getpid\"]\n",
    )
    .unwrap();
    let summary = build(&project, &out, &[]);
    assert_eq!(
        run_command(&out, &[], &[]).unwrap(),
        "signal handled, mapped, clock ok, pid ok\n"
    );
    assert_same_both_ways(&out, core_module(&summary), &[Case::default()]);
}

/// The core module a `kiln build --json` summary says kiln componentized.
fn core_module(summary: &serde_json::Value) -> &Path {
    Path::new(summary["toolchain_output"].as_str().unwrap())
}

/// Runs a minigzip component both ways: compressing standard input, a file
/// in place (written beside it, the original removed) and decompressing,
/// with a file large enough that minigzip allocates a lot between the
/// adapter's calls, and a file that does not exist.
fn minigzip_behaves_like_the_program(component: &Path, summary: &serde_json::Value) {
    let core = core_module(summary);
    let text = b"abc\nthe same line, the same line, the same line\n";
    let from_stdin = assert_same_both_ways(
        component,
        core,
        &[Case {
            stdin: text,
            ..Case::default()
        }],
    );
    let gz = &from_stdin[0].stdout;
    assert_eq!(&gz[..2], b"\x1f\x8b", "{gz:?}");
    let big: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}: {}\n", i * 7919 % 1000).into_bytes())
        .collect();
    let outcomes = assert_same_both_ways(
        component,
        core,
        &[
            Case {
                args: &["-d"],
                stdin: gz,
                ..Case::default()
            },
            Case {
                args: &["-9", "/data/big.txt"],
                files: &[("big.txt", &big)],
                ..Case::default()
            },
            Case {
                args: &["-d", "/data/t.gz"],
                files: &[("t.gz", gz)],
                ..Case::default()
            },
            Case {
                args: &["/data/absent.txt"],
                ..Case::default()
            },
        ],
    );
    assert_eq!(outcomes[0].stdout, text);
    assert!(
        outcomes[1].files.contains_key("big.txt.gz"),
        "{:?}",
        outcomes[1]
    );
    assert!(!outcomes[1].files.contains_key("big.txt"));
    assert_eq!(outcomes[2].files["t"], text);
    assert_eq!(outcomes[3].status, Status::Failure, "{:?}", outcomes[3]);
}

#[test]
fn zlib_minigzip_compresses_and_decompresses_through_the_adapter() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // zlib 1.2.13's own sources as Debian ships them, listed in a kiln.toml.
    // minigzip allocates enough that, without an exported `cabi_realloc`,
    // malloc hands out the adapter's pages and `fclose(stdin)` traps.
    let Some(project) = upstream_copy("zlib", dir.path()) else {
        return;
    };
    std::fs::write(
        project.join("kiln.toml"),
        r#"[package]
name = "minigzip"
[build]
sources = ["adler32.c", "crc32.c", "deflate.c", "infback.c", "inffast.c", "inflate.c",
           "inftrees.c", "trees.c", "zutil.c", "compress.c", "uncompr.c", "gzclose.c",
           "gzlib.c", "gzread.c", "gzwrite.c", "test/minigzip.c"]
cflags = ["-DZ_HAVE_UNISTD_H", "-I."]
"#,
    )
    .unwrap();
    let out = dir.path().join("minigzip.wasm");
    let summary = build(&project, &out, &[]);
    minigzip_behaves_like_the_program(&out, &summary);
}

#[test]
fn zlib_minigzip_through_its_upstream_makefile_behaves_like_the_program() {
    if !requires(&["clang", "make"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(project) = upstream_copy("zlib", dir.path()) else {
        return;
    };
    // zlib's `Makefile.in` is the Makefile `./configure` writes, before it
    // substitutes the host's compiler and flags (kiln passes its own); the
    // CMakeLists.txt goes so that kiln picks make. Nobody adds `$(LDFLAGS)`
    // by hand: zlib's own link line carries kiln's `cabi_realloc` object.
    std::fs::copy(project.join("Makefile.in"), project.join("Makefile")).unwrap();
    std::fs::remove_file(project.join("CMakeLists.txt")).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"minigzip\"\n[build]\ncflags = [\"-DZ_HAVE_UNISTD_H\"]\noutput = \"minigzip\"\n",
    )
    .unwrap();
    let out = dir.path().join("minigzip.wasm");
    let summary = build(&project, &out, &["--", "minigzip"]);
    assert_exports_cabi_realloc(core_module(&summary));
    minigzip_behaves_like_the_program(&out, &summary);
}

#[test]
fn zlib_minigzip_through_its_upstream_cmake_behaves_like_the_program() {
    if !requires(&["clang", "cmake"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(project) = upstream_copy("zlib", dir.path()) else {
        return;
    };
    // Debian's repacked source drops `win32/`, whose resource file zlib's
    // CMakeLists.txt lists on every platform but MinGW; upstream's tarball
    // has it. An empty one stands in: CMake does not compile `.rc` files
    // off Windows.
    std::fs::create_dir(project.join("win32")).unwrap();
    std::fs::write(project.join("win32/zlib1.rc"), "").unwrap();
    let out = dir.path().join("minigzip.wasm");
    let summary = build(&project, &out, &["--cmake-target", "minigzip"]);
    assert_exports_cabi_realloc(core_module(&summary));
    minigzip_behaves_like_the_program(&out, &summary);
}

/// The core module exports kiln's `cabi_realloc`, so the adapter allocates
/// through the program's malloc.
fn assert_exports_cabi_realloc(core: &Path) {
    let bytes = std::fs::read(core).unwrap();
    let exported = wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::ExportSection(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| s.into_iter().map(|e| e.unwrap().name.to_string()))
        .collect::<Vec<_>>();
    assert!(
        exported.iter().any(|n| n == "cabi_realloc"),
        "`{}` exports {exported:?}",
        core.display()
    );
}

const CXX_MAIN: &str = r#"// A C++ program: libc++'s strings, containers and streams.
#include <iostream>
#include <map>
#include <string>

int main(int argc, char **argv) {
    std::map<std::string, int> seen;
    for (int i = 1; i < argc; i++) seen[argv[i]]++;
    for (const auto &[word, n] : seen) std::cout << word << '=' << n << '\n';
    return seen.empty() ? 1 : 0;
}
"#;

#[test]
fn cxx_sources_build_with_libcxx_and_its_absence_is_named_with_the_packages() {
    if !requires(&["clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("words");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("src/main.cpp"), CXX_MAIN).unwrap();
    std::fs::write(
        project.join("kiln.toml"),
        "[package]\nname = \"words\"\n[build]\nsources = [\"src/*.cpp\"]\n",
    )
    .unwrap();
    let out = dir.path().join("words.wasm");
    let summary = build(&project, &out, &[]);
    let outcomes = assert_same_both_ways(
        &out,
        core_module(&summary),
        &[
            Case {
                args: &["b", "a", "b"],
                ..Case::default()
            },
            Case::default(),
        ],
    );
    assert_eq!(outcomes[0].stdout, b"a=1\nb=2\n");
    assert_eq!(outcomes[1].status, Status::Failure);

    // The same against a copy of Debian's WASI sysroot without
    // libc++-19-dev-wasm32 and libc++abi-19-dev-wasm32.
    let debian = Path::new("/usr/include/wasm32-wasi");
    if !debian.join("c++/v1").is_dir() {
        eprintln!("skipped the missing-libc++ half: not Debian's WASI sysroot layout");
        return;
    }
    let sysroot = dir.path().join("sysroot");
    for (from, to, skip) in [
        (debian, sysroot.join("include/wasm32-wasi"), "c++"),
        (
            Path::new("/usr/lib/wasm32-wasi"),
            sysroot.join("lib/wasm32-wasi"),
            "libc++",
        ),
    ] {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if !entry.file_name().to_string_lossy().starts_with(skip) {
                std::os::unix::fs::symlink(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    let failed = run(kiln()
        .env("WASI_SYSROOT", &sysroot)
        .env_remove("CC")
        .env_remove("WASI_SDK_PATH")
        .arg("build")
        .arg(&project)
        .arg("-o")
        .arg(&out));
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    let text = stderr(&failed);
    assert!(
        text.contains("the WASI C++ standard library (libc++) is not installed"),
        "{text}"
    );
    assert!(
        // Named after the machine's clang: `libc++-19-dev-wasm32` for clang-19.
        text.contains("apt-get install -y libc++-") && text.contains("-dev-wasm32 libc++abi-"),
        "{text}"
    );
}

#[test]
fn cmake_cxx_program_behaves_like_the_program() {
    if !requires(&["clang", "cmake"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("words-cxx");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("main.cpp"), CXX_MAIN).unwrap();
    // C++ only: CMake links with clang++, and kiln's `cabi_realloc` rides
    // on `CMAKE_CXX_STANDARD_LIBRARIES`.
    std::fs::write(
        project.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.13)\nproject(words LANGUAGES CXX)\nset(CMAKE_CXX_STANDARD 17)\nadd_executable(words main.cpp)\n",
    )
    .unwrap();
    let out = dir.path().join("words.wasm");
    let summary = build(&project, &out, &[]);
    assert_exports_cabi_realloc(core_module(&summary));
    let outcomes = assert_same_both_ways(
        &out,
        core_module(&summary),
        &[
            Case {
                args: &["z", "y", "z"],
                ..Case::default()
            },
            Case::default(),
        ],
    );
    assert_eq!(outcomes[0].stdout, b"y=1\nz=2\n");
    assert_eq!(outcomes[1].status, Status::Failure);
}
