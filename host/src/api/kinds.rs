//! The job-kind routes: list and show kinds, and (admin) upload or delete plugin components.
//!
//! An upload is checked before it is accepted: a core module, something that is not wasm, a component
//! that does not export Kiln's `run` (or targets a WIT version Kiln doesn't offer), or one that imports
//! anything Kiln does not provide, or that holds more core instances, memories or tables than a run may
//! (`runtime::MAX_*_PER_COMPONENT`), is refused with 422 naming the problem; so is a manifest whose
//! `output_media_type` is not one Kiln checks results against (`kinds::OUTPUT_MEDIA_TYPES`). Checking
//! compiles the component; the compiled code lands in the shared cache, so workers don't compile it again.

use super::openapi::{KindUpload, Problem, errors, tags};
use super::{ApiError, AppState};
use crate::auth::Admin;
use crate::kinds::{InputPolicy, Kind, KindPackage, Manifest, is_valid_kind_name};
use crate::store::UseVersion;
use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// A job kind as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KindView {
    pub name: String,
    pub description: String,
    /// A SHA-256 over the component and the manifest: jobs run on the version they were submitted for.
    pub version: String,
    /// Whether a job of this kind needs, may take or takes no input file.
    pub input: InputPolicy,
    /// The media type of the results, e.g. `image/png`.
    pub output_media_type: String,
    /// Every media type its results may have (`output_media_type` first), e.g. when params choose a format.
    pub output_media_types: Vec<String>,
    /// The JSON Schema a job's `params` must fit.
    pub params_schema: Value,
    /// Paused by an admin (`POST /v1/kinds/{name}/pause`): its jobs stay queued and are not started.
    pub paused: bool,
}

/// `GET /v1/kinds`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KindList {
    pub kinds: Vec<KindView>,
}

/// One version of a kind, in `GET /v1/kinds/{name}/versions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub version: String,
    /// Whether new jobs run on it (a submit without `?version=`).
    pub current: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: time::OffsetDateTime,
    pub description: String,
    /// The component's size.
    pub component_bytes: Option<u64>,
}

/// `GET /v1/kinds/{name}/versions`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionList {
    pub kind: String,
    /// The version new jobs run on.
    pub current: String,
    /// The kind's history, newest upload first: these versions may be pinned (`?version=`) or made
    /// current again (`PUT /v1/kinds/{name}/current`).
    pub versions: Vec<VersionView>,
}

/// `PUT /v1/kinds/{name}/current`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentVersion {
    /// A version from the kind's history.
    pub version: String,
}

/// The JSON a kind is shown as.
fn describe(kind: &Kind, paused: bool) -> KindView {
    let m = &kind.manifest;
    KindView {
        name: m.name.clone(),
        description: m.description.clone(),
        version: kind.version.clone(),
        input: m.input,
        output_media_type: m.output_media_type.clone(),
        output_media_types: m.produces().into_iter().map(String::from).collect(),
        params_schema: m.params_schema.clone(),
        paused,
    }
}

/// The job kinds
///
/// Every registered kind, with its description, version and params JSON Schema.
#[utoipa::path(
    get,
    path = "/v1/kinds",
    operation_id = "listKinds",
    tag = tags::KINDS,
    responses((status = 200, description = "The registered kinds", body = KindList), errors::NeedsRedis),
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<KindList>, ApiError> {
    let paused = state.store.paused().await?.kinds;
    let kinds = state
        .catalog
        .all()
        .iter()
        .map(|k| describe(k, paused.contains(k.name())))
        .collect();
    Ok(Json(KindList { kinds }))
}

pub(super) fn unknown_kind(name: &str) -> ApiError {
    ApiError::NotFound(format!("no job kind named `{name}`; GET /v1/kinds lists them"))
}

/// One job kind
#[utoipa::path(
    get,
    path = "/v1/kinds/{name}",
    operation_id = "getKind",
    tag = tags::KINDS,
    params(("name" = String, Path, description = "The kind's name, e.g. `crop`")),
    responses(
        (status = 200, description = "The kind", body = KindView),
        (status = 404, description = "No kind has this name", body = Problem, content_type = "application/problem+json"),
        errors::NeedsRedis,
    ),
)]
pub async fn show(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<KindView>, ApiError> {
    let kind = state.catalog.get(&name).ok_or_else(|| unknown_kind(&name))?;
    let paused = state.store.kind_paused(&name).await?;
    Ok(Json(describe(&kind, paused)))
}

/// A kind's versions
///
/// The kind's history: its last uploads (at most `MAX_KIND_VERSIONS`, 20), newest first, each of which
/// a submit may pin (`POST /v1/jobs/{kind}?version=`) and an admin may make current again.
#[utoipa::path(
    get,
    path = "/v1/kinds/{name}/versions",
    operation_id = "listKindVersions",
    tag = tags::KINDS,
    params(("name" = String, Path, description = "The kind's name, e.g. `crop`")),
    responses(
        (status = 200, description = "The kind's versions", body = VersionList),
        (status = 404, description = "No kind has this name", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn versions(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<VersionList>, ApiError> {
    let kind = state.catalog.get(&name).ok_or_else(|| unknown_kind(&name))?;
    let mut versions: Vec<VersionView> = state
        .store
        .kind_history(&name)
        .await?
        .into_iter()
        .map(|entry| VersionView {
            current: entry.version == kind.version,
            version: entry.version,
            uploaded_at: crate::job::from_millis(entry.uploaded_at_ms),
            description: entry.manifest.description,
            component_bytes: entry.component_bytes,
        })
        .collect();
    // A kind registered before histories existed has none until its next upload: show its current one.
    if versions.is_empty() {
        versions.push(VersionView {
            version: kind.version.clone(),
            current: true,
            uploaded_at: time::OffsetDateTime::UNIX_EPOCH,
            description: kind.manifest.description.clone(),
            component_bytes: None,
        });
    }
    Ok(Json(VersionList {
        kind: name,
        current: kind.version.clone(),
        versions,
    }))
}

/// Make a version current (admin)
///
/// New jobs of the kind run on this version from now on; it must be in the kind's history (`GET
/// /v1/kinds/{name}/versions`), and nothing is uploaded again. Jobs already submitted keep their version.
#[utoipa::path(
    put,
    path = "/v1/kinds/{name}/current",
    operation_id = "useKindVersion",
    tags = [tags::KINDS, tags::ADMIN],
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The kind's name")),
    request_body(content = CurrentVersion, content_type = "application/json"),
    responses(
        (status = 200, description = "The kind, at that version", body = KindView),
        (status = 400, description = "A malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No kind has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The version is not in the kind's history", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn use_version(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Result<Json<CurrentVersion>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<KindView>, ApiError> {
    let CurrentVersion { version } = super::json_body(body)?;
    match state.store.use_kind_version(&name, &version).await? {
        UseVersion::Current => {}
        UseVersion::NoKind => return Err(unknown_kind(&name)),
        UseVersion::NoVersion => return Err(unknown_version(&name, &version)),
    }
    state.catalog.refresh().await?;
    let kind = state.catalog.get(&name).ok_or_else(|| unknown_kind(&name))?;
    tracing::info!(kind = %name, version = %kind.version, "kind version made current");
    let paused = state.store.kind_paused(&name).await?;
    Ok(Json(describe(&kind, paused)))
}

/// A version that is not in the kind's history: a 422 (the kind exists; the request names a bad version).
pub fn unknown_version(name: &str, version: &str) -> ApiError {
    ApiError::UnknownVersion(format!(
        "kind `{name}` has no version `{version}` (GET /v1/kinds/{name}/versions lists the {} it keeps)",
        crate::store::MAX_KIND_VERSIONS
    ))
}

/// Unregister a kind (admin)
///
/// Jobs already queued for it still run on their version.
#[utoipa::path(
    delete,
    path = "/v1/kinds/{name}",
    operation_id = "deleteKind",
    tags = [tags::KINDS, tags::ADMIN],
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The kind's name")),
    responses(
        (status = 204, description = "The kind is gone"),
        (status = 404, description = "No kind has this name", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_kind(&name).await? {
        return Err(unknown_kind(&name));
    }
    state.catalog.refresh().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Register or update a kind (admin)
///
/// The component as the raw body (`application/wasm`), or `multipart/form-data` with a `manifest` part
/// (JSON, as `kind.json`) and a `component` file part. The component is checked before it is accepted.
#[utoipa::path(
    put,
    path = "/v1/kinds/{name}",
    operation_id = "putKind",
    tags = [tags::KINDS, tags::ADMIN],
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The kind's name: 1-64 of a-z, 0-9 and `-`, starting with a letter")),
    request_body(
        description = "The component alone, or with its manifest",
        content(
            ("application/wasm"),
            (KindUpload = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 201, description = "The kind is registered", body = KindView),
        (status = 400, description = "A bad kind name or a malformed multipart body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The component is over the limit (`KILN_MAX_COMPONENT_MB`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a component that fits Kiln's world, a bad manifest, or a compile longer than the limit (`KILN_MAX_COMPILE_SECS`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Another upload is still compiling", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<KindView>), ApiError> {
    if name == crate::pipeline::PIPELINE_KIND {
        return Err(ApiError::BadRequest(format!(
            "`{name}` is reserved for pipeline jobs (POST /v1/pipelines); choose another kind name"
        )));
    }
    if !is_valid_kind_name(&name) {
        return Err(ApiError::BadRequest(format!(
            "kind name `{name}` must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"
        )));
    }
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (manifest, component) = if is_multipart {
        // The route has no default body limit (a component is far bigger than a submit): this is it.
        let limit = state.config.max_component_bytes + MANIFEST_ALLOWANCE;
        let (parts, body) = request.into_parts();
        let limited = Request::from_parts(parts, axum::body::Body::new(http_body_util::Limited::new(body, limit)));
        let (manifest, component) = read_multipart(limited).await?;
        if component.len() > state.config.max_component_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "the component is over the limit of {} bytes (KILN_MAX_COMPONENT_MB)",
                state.config.max_component_bytes
            )));
        }
        (manifest, component)
    } else {
        let limit = state.config.max_component_bytes;
        let body = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "the component is over the limit of {limit} bytes (KILN_MAX_COMPONENT_MB)"
            ))
        })?;
        (None, body)
    };
    let manifest = match manifest {
        Some(manifest) => manifest,
        None => serde_json::from_value(json!({
            "name": name,
            "description": format!("Plugin kind `{name}` (uploaded without a manifest)"),
            "output_media_type": "image/png",
            "input": "optional",
        }))
        .map_err(|e| ApiError::Internal(e.into()))?,
    };
    if manifest.name != name {
        return Err(ApiError::InvalidKind(format!(
            "the manifest names kind `{}` but it is uploaded as `{name}`",
            manifest.name
        )));
    }
    check_wasm_header(&component)?;
    let package = KindPackage {
        manifest,
        component: Arc::from(component.as_ref()),
    };
    // Hashed once (the component may be many megabytes): compiling and registering both use it.
    let hash = package.component_hash();
    state
        .compiles
        .check(&state.runtime, &hash, package.component.clone())
        .await?;
    let kind = state.catalog.register(&package, &hash).await.map_err(|e| match e {
        crate::catalog::RegisterError::Manifest(e) => ApiError::InvalidKind(e.to_string()),
        crate::catalog::RegisterError::Store(e) => e.into(),
    })?;
    tracing::info!(kind = %name, version = %kind.version, "kind registered");
    // An upload does not lift a pause: the admin who paused the kind resumes it.
    let paused = state.store.kind_paused(&name).await?;
    Ok((StatusCode::CREATED, Json(describe(&kind, paused))))
}

/// Room for the manifest (and multipart framing) beside the component in an upload.
const MANIFEST_ALLOWANCE: usize = 1 << 20;

/// Tells a core module (or something else) from a component before compiling anything.
fn check_wasm_header(bytes: &[u8]) -> Result<(), ApiError> {
    crate::kinds::check_component_header(bytes).map_err(ApiError::InvalidKind)
}

async fn read_multipart(request: Request) -> Result<(Option<Manifest>, Bytes), ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text())))?;
    let (mut manifest, mut component) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(super::submit::multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let data = field.bytes().await.map_err(super::submit::multipart_error)?;
        match name.as_str() {
            // Parsed only after the whole body is read: answering mid-upload breaks the client's pipe.
            "manifest" => manifest = Some(data),
            "component" => component = Some(data),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unexpected multipart part `{other}`; expected `manifest` and `component`"
                )));
            }
        }
    }
    let component = component.ok_or_else(|| ApiError::BadRequest("the `component` part is missing".into()))?;
    let manifest = manifest
        .map(|json| serde_json::from_slice::<Manifest>(&json))
        .transpose()
        .map_err(|e| ApiError::InvalidKind(format!("the manifest is invalid: {e}")))?;
    Ok((manifest, component))
}
