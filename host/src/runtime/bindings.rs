//! The host's bindings to the WIT contract; every other module imports the generated types from here.
//!
//! The export is async so that a run is a future the host can time out or drop (see `runtime`); the
//! `host` imports stay synchronous: they only touch memory.

wasmtime::component::bindgen!({
    world: "handler",
    path: "../wit",
    exports: { default: async },
});
