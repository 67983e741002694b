//! The host's bindings to the WIT contract; every other module imports the generated types from here.

wasmtime::component::bindgen!({
    world: "handler",
    path: "../wit",
});
