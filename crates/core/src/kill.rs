//! Deterministic kill points for crash tests: `KILN_TEST_KILL_AFTER=STEP[:N]`.
//!
//! The variable aborts kiln right after the Nth time (default the first) it
//! completes the named step, as a `kill -9` would at that moment.
//!
//! The steps are named where shared state changes: [`BLOB_STORED`],
//! [`MANIFEST_STORED`], [`INDEX_UPDATED`], [`REFERRERS_UPDATED`],
//! [`SIGNATURE_STORED`] and [`OUTPUT_WRITTEN`]. The tests kill `push`,
//! `publish` and `sign` after each and check that what is left is whole and
//! that running the command again finishes the job. Nothing happens unless
//! the variable is set.

use std::sync::atomic::{AtomicU64, Ordering};

/// A blob was stored (uploaded, or written into a layout).
pub const BLOB_STORED: &str = "blob-stored";
/// A manifest was stored (by digest or under a tag).
pub const MANIFEST_STORED: &str = "manifest-stored";
/// A layout's `index.json` was rewritten.
pub const INDEX_UPDATED: &str = "index-updated";
/// A referrers index (the `sha256-<hex>` tag) was stored.
pub const REFERRERS_UPDATED: &str = "referrers-updated";
/// A signature manifest (the `sha256-<hex>.sig` tag) was stored.
pub const SIGNATURE_STORED: &str = "signature-stored";
/// An output file was written into place.
pub const OUTPUT_WRITTEN: &str = "output-written";

/// The environment variable that arms a kill point.
pub const VAR: &str = "KILN_TEST_KILL_AFTER";

static SEEN: AtomicU64 = AtomicU64::new(0);

/// Marks that `step` just completed; aborts the process when the
/// environment asks to die here.
pub fn point(step: &str) {
    let Some(wanted) = std::env::var_os(VAR) else {
        return;
    };
    let wanted = wanted.to_string_lossy();
    let (name, nth) = match wanted.split_once(':') {
        Some((name, n)) => (name, n.parse::<u64>().unwrap_or(1)),
        None => (&*wanted, 1),
    };
    if name != step {
        return;
    }
    if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        // No unwinding, no destructors, no flushing: what a `kill -9` leaves.
        std::process::abort();
    }
}
