//! Job kinds: a component plus the manifest that says what it accepts and produces.
//!
//! Kinds are data, not code: the built-in `plot`, `crop` and `cutout` are registered exactly like an uploaded
//! plugin. A kind's version is a SHA-256 over its component and its manifest, so a job names the exact
//! code it runs and the exact manifest (limits, settings, media type) it runs under.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Does a kind need the job's input bytes?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputPolicy {
    Required,
    Optional,
    None,
}

/// The `kind.json` that comes with every component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    /// The media type of the results by default (e.g. `image/png`).
    pub output_media_type: String,
    /// Further media types a job may produce, e.g. when its params choose a `format`; the guest's
    /// result must be `output_media_type` or one of these. Absent: `output_media_type` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_media_types: Option<Vec<String>>,
    pub input: InputPolicy,
    /// Operator settings the guest reads through `host.setting`, with their defaults.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// JSON Schema of the params, checked at submit so that a typo is reported at once.
    #[serde(default = "any_object_schema")]
    pub params_schema: serde_json::Value,
    /// Sandbox limits this kind needs instead of the operator's defaults, capped at the operator's ceilings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<KindLimits>,
    /// `false`: the same params and input may give other results, so jobs are never answered from the
    /// result cache. Absent: deterministic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deterministic: Option<bool>,
    /// The media types of the inputs the kind takes (e.g. `["image/png", "image/jpeg"]`); a pipeline
    /// step is refused at submit when the step before makes something else. Absent: anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_media_types: Option<Vec<String>>,
}

/// The `limits` of a manifest; every field is optional and falls back to the operator's default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindLimits {
    pub memory_mb: Option<u64>,
    pub timeout_secs: Option<f64>,
    pub max_output_mb: Option<u64>,
    /// The largest input the kind accepts; the API's body limit (`KILN_MAX_BODY_BYTES`) is the ceiling.
    pub max_input_mb: Option<u64>,
    /// The largest params (as compact JSON) the kind accepts, in KiB, instead of the default
    /// (`KILN_MAX_PARAMS_KB`); `KILN_MAX_KIND_PARAMS_MB` is the ceiling.
    pub max_params_kb: Option<u64>,
}

fn any_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object"})
}

/// The media types a kind may produce: the image formats Kiln knows how to check a result against
/// (`runtime::output`). One list, for the upload check and the result check.
pub const OUTPUT_MEDIA_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

impl Manifest {
    /// What is checked when a kind is registered (upload or start-up), beyond its shape: the name and
    /// schema ([`Kind::new`]) and a media type Kiln can check results against.
    pub fn check(&self) -> Result<(), ManifestError> {
        for media_type in self.produces() {
            if !is_media_type(media_type) {
                return Err(ManifestError::BadMediaType(media_type.to_owned()));
            }
            if !OUTPUT_MEDIA_TYPES.contains(&media_type) {
                return Err(ManifestError::UncheckedMediaType(media_type.to_owned()));
            }
        }
        Ok(())
    }

    /// Every media type a job of this kind may produce: `output_media_type` first, then the others of
    /// `output_media_types`.
    pub fn produces(&self) -> Vec<&str> {
        let mut types = vec![self.output_media_type.as_str()];
        for extra in self.output_media_types.iter().flatten() {
            if !types.contains(&extra.as_str()) {
                types.push(extra);
            }
        }
        types
    }
}

/// A syntactically valid `type/subtype` (RFC 6838 restricted names, no parameters).
fn is_media_type(value: &str) -> bool {
    let name = |part: &str| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && part.len() <= 127
            && chars.all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    matches!(value.split_once('/'), Some((kind, subtype)) if name(kind) && name(subtype))
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("output_media_type `{0}` is not a media type of the form `type/subtype`")]
    BadMediaType(String),
    #[error(
        "output_media_type `{0}` is not one Kiln can check results against; use one of: {types}",
        types = OUTPUT_MEDIA_TYPES.join(", ")
    )]
    UncheckedMediaType(String),
    #[error("the manifest is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("kind name `{0}` must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter")]
    BadName(String),
    #[error("params_schema is not a valid JSON Schema: {0}")]
    BadSchema(String),
}

/// A kind ready for the API to validate submissions against.
#[derive(Debug)]
pub struct Kind {
    pub manifest: Manifest,
    /// Hex SHA-256 over the component and the manifest ([`kind_version`]).
    pub version: String,
    validator: jsonschema::Validator,
}

impl Kind {
    pub fn new(manifest: Manifest, version: String) -> Result<Self, ManifestError> {
        if !is_valid_kind_name(&manifest.name) {
            return Err(ManifestError::BadName(manifest.name));
        }
        let validator =
            jsonschema::validator_for(&manifest.params_schema).map_err(|e| ManifestError::BadSchema(e.to_string()))?;
        Ok(Self {
            manifest,
            version,
            validator,
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Checks params against the kind's schema; the error lists up to ten problems, each with its JSON
    /// path and a short excerpt of the value there (never the whole value: it may be megabytes).
    pub fn validate_params(&self, params: &serde_json::Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(params)
            .take(10)
            .map(|e| {
                // A small value may be quoted whole; for a large one (it may be megabytes) the masked
                // message leaves it out and an excerpt stands in.
                let path = crate::text::capped(e.instance_path.to_string(), 200);
                let problem = match crate::text::json_excerpt(&e.instance, 80) {
                    (_, false) => crate::text::capped(e.to_string(), 300),
                    (got, true) => format!("{} (got {got})", crate::text::capped(e.masked().to_string(), 300)),
                };
                if path.is_empty() {
                    problem
                } else {
                    format!("{path}: {problem}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// A kind with its component bytes, as registered in the store.
#[derive(Debug, Clone)]
pub struct KindPackage {
    pub manifest: Manifest,
    pub component: Arc<[u8]>,
}

impl KindPackage {
    pub fn version(&self) -> String {
        kind_version(&self.component_hash(), &self.manifest)
    }

    pub fn component_hash(&self) -> String {
        component_hash(&self.component)
    }
}

/// Hex SHA-256 of a component: what it is stored and compiled under, shared by the versions using it.
pub fn component_hash(component: &[u8]) -> String {
    hex::encode(Sha256::digest(component))
}

/// A kind's version: hex SHA-256 over its component's hash and its manifest as stored, so the same
/// component with another manifest is another version.
pub fn kind_version(component_hash: &str, manifest: &Manifest) -> String {
    let manifest = serde_json::to_vec(manifest).expect("a manifest serializes");
    let mut hasher = Sha256::new();
    hasher.update(b"kiln kind version 1\0");
    hasher.update(component_hash.as_bytes());
    hasher.update(b"\0");
    hasher.update(&manifest);
    hex::encode(hasher.finalize())
}

pub fn is_valid_kind_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Tells a core module (or something else) from a component before compiling anything. The upload route
/// and `kiln kind build` both check with it, so a user hears the same reason before uploading.
pub fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    const COMPONENT: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    const CORE_MODULE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    match bytes.get(..8) {
        Some(header) if header == COMPONENT => Ok(()),
        Some(header) if header == CORE_MODULE => Err(
            "this is a core wasm module, not a component: build the kind for `wasm32-wasip2` (or wrap it with \
             `wasm-tools component new`)"
                .into(),
        ),
        _ => Err("the upload is not a WebAssembly component (it lacks the `\\0asm` component header)".into()),
    }
}

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// The test-only guest components built by `build.rs`: (crate name, manifest path, component path).
pub use builtin::TEST_GUESTS;

/// The kinds compiled into this binary (`plot`, `crop`, `cutout`).
pub fn builtin_packages() -> Vec<KindPackage> {
    builtin::BUILTIN
        .iter()
        .map(|(manifest, component)| KindPackage {
            manifest: serde_json::from_str(manifest).expect("built-in kind.json files are valid (checked by tests)"),
            component: Arc::from(*component),
        })
        .collect()
}

/// Reads every `NAME.wasm` + `NAME.json` pair in `dir`, sorted by file name.
pub fn packages_in_dir(dir: &std::path::Path) -> Result<Vec<KindPackage>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read kinds dir {}: {e}", dir.display()))?;
    let mut wasm_files: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    wasm_files.sort();
    wasm_files
        .into_iter()
        .map(|wasm| {
            let manifest_path = wasm.with_extension("json");
            let manifest = std::fs::read_to_string(&manifest_path)
                .map_err(|e| format!("{} needs its manifest {}: {e}", wasm.display(), manifest_path.display()))?;
            let manifest: Manifest = serde_json::from_str(&manifest)
                .map_err(|e| format!("manifest {} is invalid: {e}", manifest_path.display()))?;
            let component = std::fs::read(&wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
            Ok(KindPackage {
                manifest,
                component: Arc::from(component),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse_and_compile() {
        let packages = builtin_packages();
        let names: Vec<_> = packages.iter().map(|p| p.manifest.name.clone()).collect();
        assert_eq!(names, ["plot", "crop", "cutout"]);
        for package in packages {
            let kind = Kind::new(package.manifest.clone(), package.version()).expect("valid manifest");
            package.manifest.check().expect("a media type Kiln checks");
            assert_eq!(kind.manifest.output_media_type, "image/png");
            let no_params = kind.validate_params(&serde_json::json!({}));
            // A plot needs data; a crop with no params re-encodes its input, a cutout uses its default rect.
            assert_eq!(no_params.is_ok(), kind.name() != "plot", "{no_params:?}");
            let problem = kind
                .validate_params(&serde_json::json!({"no_such_field": 1}))
                .unwrap_err();
            assert!(problem.contains("no_such_field"), "{problem}");
            // A huge wrong value is named by its path and an excerpt, never quoted whole.
            let huge = serde_json::json!({"crop": vec![7; 1_000_000], "mode": vec![7; 1_000_000]});
            let problem = kind.validate_params(&huge).unwrap_err();
            assert!(problem.len() < 2048 && problem.contains("[7,7,7"), "{problem}");
        }
    }

    #[test]
    fn media_types_are_checked_against_one_list() {
        let mut manifest = builtin_packages().remove(0).manifest;
        for (media_type, ok) in [
            ("image/png", true),
            ("image/webp", true),
            ("image/svg+xml", false),
            ("text/html", false),
            ("png", false),
            ("image/", false),
            ("image/png; charset=x", false),
        ] {
            manifest.output_media_type = media_type.into();
            let checked = manifest.check();
            assert_eq!(checked.is_ok(), ok, "{media_type}: {checked:?}");
            if let Err(e) = checked {
                assert!(e.to_string().contains(&format!("`{media_type}`")), "{e}");
            }
        }
    }

    #[test]
    fn a_version_covers_component_and_manifest() {
        let package = builtin_packages().remove(0);
        let mut other = package.clone();
        other.manifest.description.push('!');
        assert_eq!(package.component_hash(), other.component_hash());
        assert_ne!(package.version(), other.version());
        assert_eq!(package.version(), package.clone().version());
    }

    #[test]
    fn kind_names() {
        assert!(is_valid_kind_name("plot"));
        assert!(is_valid_kind_name("my-filter2"));
        assert!(!is_valid_kind_name(""));
        assert!(!is_valid_kind_name("2d"));
        assert!(!is_valid_kind_name("Plot"));
        assert!(!is_valid_kind_name("a/b"));
        assert!(!is_valid_kind_name(&"a".repeat(65)));
    }
}
