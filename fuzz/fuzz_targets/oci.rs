//! cargo-fuzz entry for the `oci` target; the target and its oracles are in kiln-fuzz-harness.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz_harness::oci(data));
