//! Which WASI 0.2 interfaces a core module's preview1 imports stand for once componentized.
//!
//! The imports are those from `wasi_snapshot_preview1` (or `wasi_unstable`);
//! kiln componentizes with the WASI preview1 adapter.
//!
//! Derived from the adapter kiln embeds, `wasi-preview1-component-adapter-provider`
//! 48.0.8 (built from Wasmtime's `crates/wasi-preview1-component-adapter`,
//! `src/lib.rs`, `src/descriptors.rs` and `src/macros.rs`; source read at tag
//! `v48.0.0`, the newest v48 tag available, whose exports and WIT imports
//! match the 48.0.8 artefacts). For each preview1 export we followed every
//! call the adapter makes, in the source and in the static call graph of the
//! shipped `wasi_snapshot_preview1.{command,reactor}.wasm` (both give the
//! same result per function), and cross-checked with wit-component, which
//! drops the adapter code (and imports) a module does not use.
//!
//! An entry lists every interface one of whose functions the adapter may call
//! for that preview1 function, whatever the descriptor (`fd_write` to stdout,
//! stderr or a file), with these rules:
//!
//! * Left out everywhere: the adapter's trap-message path. Every export can
//!   reach `assert!`/`unreachable!`, which print through `macros::print`
//!   (`wasi:cli/stderr` `get-stderr`, `wasi:io/streams`
//!   `blocking-write-and-flush`, `wasi:io/error` drop). wit-component also
//!   always keeps the adapter's `cabi_import_realloc`, which reaches the same
//!   path, so any component made with the adapter imports [`ADAPTER_BASELINE`]
//!   regardless of which preview1 functions the module uses.
//! * Not left out: the descriptor table. `State::new` itself imports nothing
//!   from WASI (it only calls the main module's `cabi_realloc`), but the
//!   first use of a file descriptor runs `Descriptors::new`, which calls
//!   `wasi:cli/stdin` `get-stdin`, `wasi:cli/stdout` `get-stdout`,
//!   `wasi:cli/stderr` `get-stderr`, `wasi:filesystem/preopens`
//!   `get-directories` and `wasi:filesystem/types` `descriptor.get-type`, and
//!   drops `wasi:io/streams` streams. So every function taking a descriptor
//!   (`fd_*`, `path_*`, `poll_oneoff`, `sock_shutdown`) lists those.
//!   The `wasi:cli/terminal-*` interfaces are *not* part of that
//!   initialisation: only `fd_fdstat_get` and `fd_filestat_get` ask whether
//!   stdio is a terminal.
//! * Included: instances wit-component adds for a type only. A component
//!   whose adapter calls `descriptor.stat` or `set-times` (via `fd_write`,
//!   `fd_seek`, `fd_filestat_get`, `fd_filestat_set_times`,
//!   `path_filestat_get`, `path_filestat_set_times`) imports
//!   `wasi:clocks/wall-clock` for its `datetime` type, though no wall-clock
//!   function is called; the component kiln would make imports it, so a
//!   policy sees it.
//! * Added: `wasi:sockets/tcp` for `sock_accept`, `sock_recv`, `sock_send`
//!   and `sock_shutdown`. This adapter traps on the first three and answers
//!   `NOTSOCK` to the last, but preview1 hosts give modules sockets through
//!   them (`wasmtime run --tcplisten`), so an audit judges them as the
//!   capability they ask for: a policy that denies sockets denies them.

/// The WASI 0.2 version the adapter's imports carry, e.g. "0.2.6".
///
/// The adapter's core module declares `wasi:filesystem/preopens@0.2.6` (a
/// hard-coded import in `descriptors.rs`) next to `@0.2.12` for everything
/// else, but its embedded world asks for `preopens@0.2.12` and wit-component
/// gives the finished component `@0.2.12` throughout.
pub const ADAPTER_WASI_VERSION: &str = "0.2.12";

/// The interfaces (without version) every component made with the adapter
/// imports, whichever preview1 functions its module uses: the adapter's
/// trap-message path (see the module documentation). Not repeated in
/// [`PREVIEW1`] unless a function also calls them for its own work.
pub const ADAPTER_BASELINE: &[&str] = &["wasi:cli/stderr", "wasi:io/error", "wasi:io/streams"];

/// Every wasi_snapshot_preview1 function and the WASI 0.2 interfaces (without version, e.g. "wasi:cli/stdout") the adapter imports to implement it; sorted by function name.
#[rustfmt::skip]
pub const PREVIEW1: &[(&str, &[&str])] = &[
    ("args_get", &["wasi:cli/environment"]),
    ("args_sizes_get", &["wasi:cli/environment"]),
    ("clock_res_get", &["wasi:clocks/monotonic-clock", "wasi:clocks/wall-clock"]),
    ("clock_time_get", &["wasi:clocks/monotonic-clock", "wasi:clocks/wall-clock"]),
    ("environ_get", &["wasi:cli/environment"]),
    ("environ_sizes_get", &["wasi:cli/environment"]),
    ("fd_advise", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_allocate", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_close", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_datasync", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_fdstat_get", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:cli/terminal-input", "wasi:cli/terminal-output", "wasi:cli/terminal-stderr", "wasi:cli/terminal-stdin", "wasi:cli/terminal-stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_fdstat_set_flags", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_fdstat_set_rights", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_filestat_get", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:cli/terminal-input", "wasi:cli/terminal-output", "wasi:cli/terminal-stderr", "wasi:cli/terminal-stdin", "wasi:cli/terminal-stdout", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_filestat_set_size", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_filestat_set_times", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_pread", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_prestat_dir_name", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_prestat_get", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_pwrite", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/error", "wasi:io/streams"]),
    ("fd_read", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/error", "wasi:io/streams"]),
    ("fd_readdir", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_renumber", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_seek", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_sync", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_tell", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("fd_write", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/error", "wasi:io/streams"]),
    ("path_create_directory", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_filestat_get", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_filestat_set_times", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_link", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_open", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_readlink", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_remove_directory", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_rename", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_symlink", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("path_unlink_file", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams"]),
    ("poll_oneoff", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:clocks/monotonic-clock", "wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/poll", "wasi:io/streams"]),
    ("proc_exit", &["wasi:cli/exit"]),
    ("proc_raise", &[]),
    ("random_get", &["wasi:random/random"]),
    ("sched_yield", &[]),
    ("sock_accept", &["wasi:sockets/tcp"]),
    ("sock_recv", &["wasi:sockets/tcp"]),
    ("sock_send", &["wasi:sockets/tcp"]),
    ("sock_shutdown", &["wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/streams", "wasi:sockets/tcp"]),
];

/// The functions of the older `wasi_unstable` module (WASI preview 0) that exist under the same name in preview1, so they map the same way.
///
/// That is every function of `legacy/preview0/witx/wasi_unstable.witx`
/// (WebAssembly/WASI; Wasmtime vendors it as
/// `crates/wasi/witx/p0/wasi_unstable.witx`): preview 1 only added
/// `sock_accept`. Some layouts and constants differ between the two (e.g.
/// `whence`, `filestat`), which does not change which interfaces are needed.
/// Sorted.
pub const UNSTABLE: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "random_get",
    "sched_yield",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The interfaces the adapter implements `name` with, or `None` when preview1 has no such function.
///
/// `module` is `wasi_snapshot_preview1` or `wasi_unstable`; any other module
/// gives `None`.
pub fn interfaces(module: &str, name: &str) -> Option<&'static [&'static str]> {
    match module {
        "wasi_snapshot_preview1" => {}
        "wasi_unstable" => {
            UNSTABLE.binary_search(&name).ok()?;
        }
        _ => return None,
    }
    PREVIEW1
        .binary_search_by(|(function, _)| (*function).cmp(name))
        .ok()
        .map(|i| PREVIEW1[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Descriptors::new` calls; every descriptor-taking function lists it.
    const DESCRIPTOR_TABLE: &[&str] = &[
        "wasi:cli/stderr",
        "wasi:cli/stdin",
        "wasi:cli/stdout",
        "wasi:filesystem/preopens",
        "wasi:filesystem/types",
        "wasi:io/streams",
    ];

    fn is_interface_name(name: &str) -> bool {
        let kebab = |s: &str| {
            !s.is_empty()
                && !s.starts_with('-')
                && !s.ends_with('-')
                && !s.contains("--")
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        match name.split_once(':') {
            Some(("wasi", rest)) => match rest.split_once('/') {
                Some((package, interface)) => kebab(package) && kebab(interface),
                None => false,
            },
            _ => false,
        }
    }

    #[test]
    fn tables_are_sorted_without_duplicates() {
        assert!(PREVIEW1.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(UNSTABLE.windows(2).all(|w| w[0] < w[1]));
        for (function, list) in PREVIEW1 {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{function}");
        }
        assert!(ADAPTER_BASELINE.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_preview1_function_is_listed() {
        // 46 in wasi_snapshot_preview1.witx, 45 in wasi_unstable.witx.
        assert_eq!(PREVIEW1.len(), 46);
        assert_eq!(UNSTABLE.len(), 45);
        for name in UNSTABLE {
            assert!(
                interfaces("wasi_snapshot_preview1", name).is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn interface_names_are_unversioned_wasi_names() {
        for (function, list) in PREVIEW1 {
            for name in *list {
                assert!(is_interface_name(name), "{function}: {name}");
            }
        }
        for name in ADAPTER_BASELINE {
            assert!(is_interface_name(name), "{name}");
        }
        assert!(!is_interface_name("wasi:cli/stdout@0.2.12"));
        assert!(!is_interface_name("wasi:cli"));
        assert!(!is_interface_name("env:cli/stdout"));
    }

    #[test]
    fn version_is_a_0_2_release() {
        let patch = ADAPTER_WASI_VERSION.strip_prefix("0.2.").unwrap();
        assert!(patch.parse::<u32>().is_ok(), "{ADAPTER_WASI_VERSION}");
    }

    #[test]
    fn known_entries() {
        let p1 = |name| interfaces("wasi_snapshot_preview1", name).unwrap();
        assert_eq!(p1("random_get"), ["wasi:random/random"]);
        assert_eq!(p1("proc_exit"), ["wasi:cli/exit"]);
        assert_eq!(p1("args_get"), ["wasi:cli/environment"]);
        assert_eq!(p1("environ_sizes_get"), ["wasi:cli/environment"]);
        assert_eq!(
            p1("clock_time_get"),
            ["wasi:clocks/monotonic-clock", "wasi:clocks/wall-clock"]
        );
        assert!(p1("sched_yield").is_empty());
        assert!(p1("proc_raise").is_empty());
        assert_eq!(p1("sock_send"), ["wasi:sockets/tcp"]);
        for name in ["fd_write", "fd_read"] {
            for interface in [
                "wasi:cli/stdout",
                "wasi:cli/stdin",
                "wasi:filesystem/types",
                "wasi:io/streams",
            ] {
                assert!(p1(name).contains(&interface), "{name}: {interface}");
            }
        }
        assert!(p1("fd_fdstat_get").contains(&"wasi:cli/terminal-stdout"));
        assert!(!p1("fd_write").contains(&"wasi:cli/terminal-stdout"));
        assert!(p1("poll_oneoff").contains(&"wasi:io/poll"));
        assert!(p1("poll_oneoff").contains(&"wasi:clocks/monotonic-clock"));
    }

    #[test]
    fn descriptor_functions_include_the_descriptor_table() {
        for (function, list) in PREVIEW1 {
            let takes_fd = function.starts_with("fd_")
                || function.starts_with("path_")
                || *function == "poll_oneoff"
                || *function == "sock_shutdown";
            for interface in DESCRIPTOR_TABLE {
                assert_eq!(
                    list.contains(interface),
                    takes_fd,
                    "{function}: {interface}"
                );
            }
        }
    }

    #[test]
    fn socket_functions_ask_for_tcp() {
        for (function, list) in PREVIEW1 {
            assert_eq!(
                list.contains(&"wasi:sockets/tcp"),
                function.starts_with("sock_"),
                "{function}"
            );
        }
    }

    #[test]
    fn lookup_by_module() {
        assert_eq!(
            interfaces("wasi_unstable", "random_get"),
            Some(&["wasi:random/random"][..])
        );
        assert_eq!(interfaces("wasi_unstable", "sock_accept"), None);
        assert_eq!(
            interfaces("wasi_snapshot_preview1", "sock_accept"),
            Some(&["wasi:sockets/tcp"][..])
        );
        assert_eq!(interfaces("wasi_snapshot_preview1", "host_log"), None);
        assert_eq!(
            interfaces("wasi_snapshot_preview1", "reset_adapter_state"),
            None
        );
        assert_eq!(interfaces("env", "random_get"), None);
    }
}
