//! The sandbox's own limits, against components written in the component text format (WAT), so that a
//! test can build exactly the shape it needs: several memories, many core instances.

use super::*;

/// A component exporting Kiln's `run` whose core module has a memory of `pages` × 64 KiB and traps when
/// called; `extra` more core modules are instantiated beside it, each with a memory of `extra_pages`.
fn component(pages: u32, extra: usize, extra_pages: Option<u32>) -> Vec<u8> {
    let extra_memory = extra_pages.map_or(String::new(), |pages| format!("(memory {pages})"));
    let extra_modules: String = (0..extra)
        .map(|i| format!("(core module $extra{i} {extra_memory}) (core instance (instantiate $extra{i}))\n"))
        .collect();
    let wat = format!(
        r#"(component
  (type $output' (record (field "media-type" string) (field "data" (list u8))))
  (export $output "output" (type $output'))
  (type $code' (enum "invalid-params" "invalid-input" "internal"))
  (export $code "error-code" (type $code'))
  (type $error' (record (field "code" $code) (field "message" string)))
  (export $error "job-error" (type $error'))
  (core module $main
    (memory (export "memory") {pages})
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
    (func (export "run") (param i32 i32 i32 i32) (result i32) unreachable))
  (core instance $main (instantiate $main))
  {extra_modules}
  (func $run (param "params" string) (param "input" (list u8)) (result (result $output (error $error)))
    (canon lift (core func $main "run") (memory $main "memory") (realloc (func $main "realloc"))))
  (export "run" (func $run))
)"#
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"))
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
        expected_media_type: "image/png".into(),
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
fn returning(media_type: &str, media_type_len: u32) -> Vec<u8> {
    let wat = format!(
        r#"(component
  (type $output' (record (field "media-type" string) (field "data" (list u8))))
  (export $output "output" (type $output'))
  (type $code' (enum "invalid-params" "invalid-input" "internal"))
  (export $code "error-code" (type $code'))
  (type $error' (record (field "code" $code) (field "message" string)))
  (export $error "job-error" (type $error'))
  (core module $main
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    ;; result<output, job-error> at 16: ok (0), then {{media-type ptr 256, len}}, {{data ptr 512, len 0}}
    (data (i32.const 16) "\00\00\00\00\00\01\00\00\{media_type_len:02x}\00\00\00\00\02\00\00\00\00\00\00")
    (data (i32.const 256) "{media_type}")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      global.get $next local.set $at
      global.get $next local.get 3 i32.add i32.const 7 i32.add i32.const -8 i32.and global.set $next
      local.get $at)
    (func (export "run") (param i32 i32 i32 i32) (result i32) i32.const 16))
  (core instance $main (instantiate $main))
  (func $run (param "params" string) (param "input" (list u8)) (result (result $output (error $error)))
    (canon lift (core func $main "run") (memory $main "memory") (realloc (func $main "realloc"))))
  (export "run" (func $run))
)"#
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"))
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
