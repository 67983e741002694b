//! The component's linear memory starts at 4 MiB, above the 3.4 MiB the default 800×600 chart peaks at, so
//! that a typical run never grows it: the pooling allocator hands each run a slot reset to the initial size,
//! and growing it again costs the run ~30 µs of `mprotect` (BENCHMARKS.md, "of which instantiation").
//! Larger charts still grow memory as before, up to the kind's memory limit.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={}", 4 << 20);
    }
}
