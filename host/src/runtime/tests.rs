//! The sandbox's own limits, against components written in the component text format (WAT), so that a
//! test can build exactly the shape it needs: several memories, many core instances.

use super::*;

#[path = "../../tests/shared/wat_components.rs"]
mod wat_components;
use wat_components::{answering_component, run_component};

/// A component exporting Kiln's `run` whose core module has a memory of `pages` × 64 KiB and traps when
/// called; `extra` more core modules are instantiated beside it, each with a memory of `extra_pages`.
fn component(pages: u32, extra: usize, extra_pages: Option<u32>) -> Vec<u8> {
    let extra_memory = extra_pages.map_or(String::new(), |pages| format!("(memory {pages})"));
    let extra_modules: String = (0..extra)
        .map(|i| format!("(core module $extra{i} {extra_memory}) (core instance (instantiate $extra{i}))\n"))
        .collect();
    run_component(
        &format!(
            r#"(memory (export "memory") {pages})
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
    (func (export "run") (param i32 i32 i32 i32) (result i32) unreachable)"#
        ),
        &extra_modules,
    )
}

/// The error of a prepare that must fail.
fn refused(runtime: &Runtime, component: &[u8]) -> PrepareError {
    match runtime.prepare("refused", component) {
        Ok(_) => panic!("the component was accepted"),
        Err(e) => e,
    }
}

fn request(memory_mb: usize) -> RunRequest {
    RunRequest {
        params: "{}".into(),
        input: bytes::Bytes::new(),
        expected_media_types: vec!["image/png".into()],
        settings: BTreeMap::new(),
        limits: SandboxLimits {
            memory_bytes: memory_mb << 20,
            ..SandboxLimits::default()
        },
        signals: RunSignals::new(),
    }
}

/// 40 MiB in 64 KiB pages.
const FORTY_MIB: u32 = 640;

#[tokio::test]
async fn memory_is_counted_across_all_of_a_runs_memories() {
    let runtime = Runtime::new(None).unwrap();
    let two_memories = component(FORTY_MIB, 1, Some(FORTY_MIB));
    let pre = runtime.prepare("two-memories", &two_memories).unwrap();

    // Each 40 MiB memory fits a 64 MiB cap alone; together they do not.
    let report = runtime.run(&pre, request(64)).await;
    let error = report.result.unwrap_err();
    assert_eq!(error.code, ErrorCode::MemoryLimit, "{error:?}");
    assert!(error.message.contains("64 MiB"), "{error:?}");

    // With room for both, the same component instantiates and gets as far as its trap.
    let report = runtime.run(&pre, request(96)).await;
    let error = report.result.unwrap_err();
    assert_eq!(error.code, ErrorCode::Trap, "{error:?}");
    assert_eq!(report.memory_peak, 80 << 20, "both memories are counted in the peak");
}

#[test]
fn components_over_the_per_component_limits_are_refused_when_compiled() {
    let runtime = Runtime::new(None).unwrap();
    let memories = MAX_MEMORIES_PER_COMPONENT as usize;
    let too_many_memories = component(1, memories, Some(1));
    let error = refused(&runtime, &too_many_memories);
    assert!(matches!(error, PrepareError::Compile(_)), "{error}");
    assert!(error.to_string().contains("Wasm linear memories"), "{error}");

    let instances = MAX_CORE_INSTANCES_PER_COMPONENT as usize;
    let too_many_instances = component(1, instances, None);
    let error = refused(&runtime, &too_many_instances);
    assert!(error.to_string().contains("core module instances"), "{error}");

    // At the limits exactly, both are fine.
    runtime
        .prepare("ok-memories", &component(1, memories - 1, Some(1)))
        .unwrap();
    runtime
        .prepare("ok-instances", &component(1, instances - 1, None))
        .unwrap();
}

#[test]
fn a_memory_declared_over_the_pool_ceiling_is_refused_when_compiled() {
    let runtime = Runtime::with_config(RuntimeConfig {
        max_memory_bytes: 32 << 20,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let error = refused(&runtime, &component(FORTY_MIB, 0, None));
    assert!(matches!(error, PrepareError::Compile(_)), "{error}");
    runtime.prepare("small", &component(256, 0, None)).unwrap();
}

#[test]
fn the_built_in_and_test_components_fit_the_limits() {
    let runtime = Runtime::new(None).unwrap();
    for package in crate::kinds::builtin_packages() {
        runtime.prepare(&package.component_hash(), &package.component).unwrap();
    }
    for (name, _, path) in crate::kinds::TEST_GUESTS {
        let component = std::fs::read(path).unwrap();
        runtime
            .prepare(name, &component)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// A component whose `run` returns an `ok` output whose media type is the bytes `media_type` (WAT string
/// escapes) and whose data is empty.
fn returning(media_type: &str, media_type_len: u8) -> Vec<u8> {
    answering_component(media_type, media_type_len, "", 0, "")
}

#[tokio::test]
async fn a_guest_that_breaks_the_canonical_abi_is_at_fault_not_kiln() {
    let runtime = Runtime::new(None).unwrap();
    // A well-formed answer gets as far as the output check (empty data is not a PNG).
    let pre = runtime.prepare("fine", &returning("image/png", 9)).unwrap();
    let error = runtime.run(&pre, request(64)).await.result.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidOutput, "{error:?}");
    // A media type that is not UTF-8 fails while the host lifts it: the guest's doing, so not retried.
    let pre = runtime.prepare("not-utf8", &returning("\\ff\\fe", 2)).unwrap();
    let error = runtime.run(&pre, request(64)).await.result.unwrap_err();
    assert_eq!(error.code, ErrorCode::Trap, "{error:?}");
    assert!(error.message.contains("misused a host call"), "{error:?}");
}
