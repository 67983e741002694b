//! The component's linear memory starts at 8 MiB, above the 6.3 MiB a crop of a 1024×768 photo peaks at,
//! so that a typical run never grows it. The pooling allocator hands each run a slot reset to the initial
//! size; growing it again costs the run ~0.1 ms of `mprotect` (BENCHMARKS.md, "of which instantiation").
//! Larger images still grow memory as before, up to the kind's memory limit.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={}", 8 << 20);
    }
}
