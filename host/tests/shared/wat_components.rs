//! Components written in the component text format (WAT), for tests that need a shape no guest crate
//! has: several memories, many core instances, a broken canonical-ABI answer, a slow compile.
//!
//! One file shared by the library's runtime tests and the end-to-end suite (both include it with
//! `#[path]`), so Kiln's `run` export is spelt out once.

/// A component exporting Kiln's `run` (with its `output`, `error-code` and `job-error` types), lifted
/// from the core module `$main` whose fields are `main_fields`: they must export `memory`, `realloc` and
/// `run`. `beside_main` is placed after `$main` is instantiated (more core modules and instances).
pub fn run_component(main_fields: &str, beside_main: &str) -> Vec<u8> {
    let wat = format!(
        r#"(component
  (type $output' (record (field "media-type" string) (field "data" (list u8))))
  (export $output "output" (type $output'))
  (type $code' (enum "invalid-params" "invalid-input" "internal"))
  (export $code "error-code" (type $code'))
  (type $error' (record (field "code" $code) (field "message" string)))
  (export $error "job-error" (type $error'))
  (core module $main
    {main_fields})
  (core instance $main (instantiate $main))
  {beside_main}
  (func $run (param "params" string) (param "input" (list u8)) (result (result $output (error $error)))
    (canon lift (core func $main "run") (memory $main "memory") (realloc (func $main "realloc"))))
  (export "run" (func $run))
)"#
    );
    // Only the error: the text of a large component would bury it.
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("the test component does not parse: {e}"))
}

/// A component whose `run` answers `ok` at once with the media type `media_type` (`media_type_len`
/// bytes) and the data `data` (`data_len` bytes), both in WAT string escapes; `more_fields` are added
/// to its core module (more data, more functions).
pub fn answering_component(
    media_type: &str,
    media_type_len: u8,
    data: &str,
    data_len: u8,
    more_fields: &str,
) -> Vec<u8> {
    run_component(
        &format!(
            r#"(memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    ;; result<output, job-error> at 16: ok (0), then {{media-type ptr 256, len}}, {{data ptr 512, len}}
    (data (i32.const 16) "\00\00\00\00\00\01\00\00\{media_type_len:02x}\00\00\00\00\02\00\00\{data_len:02x}\00\00\00")
    (data (i32.const 256) "{media_type}")
    (data (i32.const 512) "{data}")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      global.get $next local.set $at
      global.get $next local.get 3 i32.add i32.const 7 i32.add i32.const -8 i32.and global.set $next
      local.get $at)
    (func (export "run") (param i32 i32 i32 i32) (result i32) i32.const 16)
    {more_fields}"#
        ),
        "",
    )
}
