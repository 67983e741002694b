//! `kiln kind new`: the starter kinds, carried inside the binary so that they build anywhere.
//!
//! Every file is `include_str!`'d: the templates in `host/templates/`, Kiln's WIT contract, and (for
//! Rust) the guest SDK's own sources, which the new kind gets as a vendored path dependency
//! (`kiln-guest/`) since the SDK is not on crates.io. `{{name}}` in a template is the kind's name.

use super::Lang;
use crate::client::Failure;
use std::path::Path;

/// A file of a new kind: its path inside the kind's folder and its text.
type File = (&'static str, &'static str);

/// Kiln's WIT contract; the SDK's copy is kept identical to it by the SDK's own test.
const JOB_WIT: &str = include_str!("../../../../wit/job.wit");

const RUST: &[File] = &[
    ("Cargo.toml", include_str!("../../../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../templates/rust/src/lib.rs")),
    ("kind.json", include_str!("../../../templates/rust/kind.json")),
    ("sample.json", include_str!("../../../templates/rust/sample.json")),
    (".gitignore", include_str!("../../../templates/rust/gitignore")),
];

/// The guest SDK as a standalone crate: its sources and WIT as they are in this repository, with a
/// Cargo.toml of exact versions instead of the workspace's.
const KILN_GUEST: &[File] = &[
    ("kiln-guest/Cargo.toml", KILN_GUEST_CARGO_TOML),
    (
        "kiln-guest/wit/job.wit",
        include_str!("../../../../guest-sdk/wit/job.wit"),
    ),
    (
        "kiln-guest/src/lib.rs",
        include_str!("../../../../guest-sdk/src/lib.rs"),
    ),
    (
        "kiln-guest/src/component.rs",
        include_str!("../../../../guest-sdk/src/component.rs"),
    ),
    (
        "kiln-guest/src/error.rs",
        include_str!("../../../../guest-sdk/src/error.rs"),
    ),
    (
        "kiln-guest/src/host.rs",
        include_str!("../../../../guest-sdk/src/host.rs"),
    ),
    (
        "kiln-guest/src/image.rs",
        include_str!("../../../../guest-sdk/src/image.rs"),
    ),
    (
        "kiln-guest/src/params.rs",
        include_str!("../../../../guest-sdk/src/params.rs"),
    ),
    (
        "kiln-guest/src/schema.rs",
        include_str!("../../../../guest-sdk/src/schema.rs"),
    ),
    (
        "kiln-guest/src/test.rs",
        include_str!("../../../../guest-sdk/src/test.rs"),
    ),
];

const KILN_GUEST_CARGO_TOML: &str = include_str!("../../../templates/kiln-guest/Cargo.toml");

const PYTHON: &[File] = &[
    ("app.py", include_str!("../../../templates/python/app.py")),
    ("test_app.py", include_str!("../../../templates/python/test_app.py")),
    ("kind.json", include_str!("../../../templates/python/kind.json")),
    ("sample.json", include_str!("../../../templates/python/sample.json")),
    (".gitignore", include_str!("../../../templates/python/gitignore")),
    ("wit/job.wit", JOB_WIT),
];

/// The files of a new kind of `lang`.
fn files(lang: Lang) -> Vec<File> {
    match lang {
        Lang::Rust => RUST.iter().chain(KILN_GUEST).copied().collect(),
        Lang::Python => PYTHON.to_vec(),
    }
}

/// Writes a new kind named `name` into `dir`, which must be missing or empty.
pub fn write(name: &str, lang: Lang, dir: &Path) -> Result<(), Failure> {
    if !crate::kinds::is_valid_kind_name(name) {
        return Err(Failure::refused(format!(
            "kind name `{name}` must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"
        )));
    }
    let is_empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Failure::refused(format!("cannot read {}: {e}", dir.display()))),
    };
    if !is_empty {
        return Err(Failure::refused(format!(
            "{} is not empty; pick a new folder (kiln kind new NAME DIR)",
            dir.display()
        )));
    }
    for (path, text) in files(lang) {
        let target = dir.join(path);
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, text.replace("{{name}}", name)));
        written.map_err(|e| Failure::refused(format!("cannot write {}: {e}", target.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Every `name = "version"` of Kiln's Cargo.lock.
    fn locked_versions() -> BTreeMap<String, BTreeSet<String>> {
        let lock = include_str!("../../../../Cargo.lock");
        let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut name = None;
        for line in lock.lines() {
            if let Some(value) = line.strip_prefix("name = ") {
                name = Some(value.trim_matches('"').to_owned());
            } else if let (Some(value), Some(name)) = (line.strip_prefix("version = "), name.take()) {
                versions
                    .entry(name)
                    .or_default()
                    .insert(value.trim_matches('"').to_owned());
            }
        }
        versions
    }

    /// `(crate, version)` of every `crate = "=X"` or `crate = { version = "=X", ... }` line.
    fn pinned(cargo_toml: &str) -> Vec<(String, String)> {
        cargo_toml
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.split_once(" = ")?;
                let start = rest.find("\"=")? + 2;
                let version = &rest[start..start + rest[start..].find('"')?];
                Some((name.trim().to_owned(), version.to_owned()))
            })
            .collect()
    }

    /// The vendored SDK and the Rust template build with exactly the versions Kiln's own guests do: a
    /// dependency bumped in Cargo.lock must be bumped in the templates too.
    #[test]
    fn template_versions_equal_the_workspace_lock() {
        let locked = locked_versions();
        let rust_toml = RUST[0].1;
        for (toml, what, expected) in [
            (KILN_GUEST_CARGO_TOML, "templates/kiln-guest/Cargo.toml", 6),
            (rust_toml, "templates/rust/Cargo.toml", 3),
        ] {
            let pins = pinned(toml);
            assert_eq!(
                pins.len(),
                expected,
                "{what}: every dependency has an exact version: {pins:?}"
            );
            for (name, version) in pins {
                let in_lock = locked.get(&name).cloned().unwrap_or_default();
                assert!(
                    in_lock.contains(&version),
                    "{what} pins {name} ={version}, but Kiln's Cargo.lock has {in_lock:?}: update the template"
                );
            }
        }
        // wit-bindgen is in the lock twice (wasmtime's tools use a newer one): the SDK's is the workspace's.
        let workspace = include_str!("../../../../Cargo.toml");
        assert!(
            workspace.contains("wit-bindgen = { version = \"0.46\""),
            "the workspace moved wit-bindgen"
        );
        assert!(KILN_GUEST_CARGO_TOML.contains("wit-bindgen = { version = \"=0.46."));
    }

    /// The vendored SDK is the SDK: every source file of `guest-sdk/src` is carried.
    #[test]
    fn every_sdk_source_is_vendored() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/src");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| format!("kiln-guest/src/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        let carried: BTreeSet<String> = KILN_GUEST
            .iter()
            .map(|(path, _)| (*path).to_owned())
            .filter(|p| p.starts_with("kiln-guest/src/"))
            .collect();
        assert_eq!(on_disk, carried);
        assert!(
            !KILN_GUEST_CARGO_TOML.contains("workspace"),
            "the vendored SDK stands alone"
        );
    }

    #[test]
    fn new_refuses_a_non_empty_folder_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let error = write("ok", Lang::Python, dir.path()).unwrap_err();
        assert!(error.message.contains("not empty"), "{}", error.message);
        let error = write("Bad_Name", Lang::Python, &dir.path().join("new")).unwrap_err();
        assert!(error.message.contains("a-z"), "{}", error.message);
    }

    #[test]
    fn new_fills_in_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let kind = dir.path().join("disc");
        write("disc", Lang::Rust, &kind).unwrap();
        let manifest: crate::kinds::Manifest =
            serde_json::from_str(&std::fs::read_to_string(kind.join("kind.json")).unwrap()).unwrap();
        assert_eq!(manifest.name, "disc");
        let cargo = std::fs::read_to_string(kind.join("Cargo.toml")).unwrap();
        assert!(
            cargo.contains("name = \"disc\"") && cargo.contains("\n[workspace]\n"),
            "{cargo}"
        );
        assert!(kind.join("kiln-guest/wit/job.wit").is_file());
    }
}
