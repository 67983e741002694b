//! The blob routes: upload bytes once (`POST /v1/blobs`), then name them as the input of many jobs
//! (`"input": {"blob": "sha256:..."}`). A blob is the tenant's own, addressed by the SHA-256 of its
//! bytes, kept for `KILN_BLOB_TTL_SECS` after its last upload and counted against the byte quota.

use super::openapi::{Problem, errors, tags};
use super::submit::parse_blob_id;
use super::{ApiError, AppState};
use crate::auth::Tenant;
use crate::store::PutBlob;
use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

/// A blob as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BlobView {
    /// `sha256:<hex>` of the bytes: the same bytes always have the same id.
    pub id: String,
    pub size: u64,
    pub media_type: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: time::OffsetDateTime,
}

impl From<crate::store::BlobInfo> for BlobView {
    fn from(info: crate::store::BlobInfo) -> Self {
        Self {
            id: format!("sha256:{}", info.hex),
            size: info.size,
            media_type: info.media_type,
            expires_at: crate::job::from_millis(info.expires_at_ms),
        }
    }
}

/// The media type a blob is stored with when the client names none.
const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

/// Upload a blob
///
/// The bytes as the raw body (its `Content-Type` is the blob's media type), or `multipart/form-data`
/// with one `file` part. `201` for new bytes; `200` when the tenant has them already (their expiry
/// moves out). At most the request body limit; counted against the tenant's byte quota.
#[utoipa::path(
    post,
    path = "/v1/blobs",
    operation_id = "putBlob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    request_body(description = "The bytes, or a multipart `file` part", content(("application/octet-stream"), ("multipart/form-data"))),
    responses(
        (status = 201, description = "Stored", body = BlobView),
        (status = 200, description = "The tenant had these bytes already", body = BlobView),
        (status = 400, description = "An empty or malformed body, or a bad media type", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over the body limit or the tenant's byte quota", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's byte quota is used up", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn put(State(state): State<AppState>, tenant: Tenant, request: Request) -> Result<Response, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (media_type, bytes) = match content_type.as_deref() {
        Some(ct) if ct.starts_with("multipart/form-data") => read_multipart(request).await?,
        _ => {
            let limit = state.config.max_body_bytes;
            let bytes = axum::body::to_bytes(request.into_body(), limit)
                .await
                .map_err(|_| ApiError::PayloadTooLarge(format!("the blob is over the limit of {limit} bytes")))?;
            (content_type, bytes)
        }
    };
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the blob is empty".into()));
    }
    let media_type = checked_media_type(media_type.as_deref())?;
    let hex = crate::kinds::component_hash(&bytes);
    let max_bytes = state
        .keys
        .submit_quotas(tenant.as_str(), &state.config.quotas)
        .max_bytes;
    let (status, info) = match state
        .store
        .put_blob(tenant.as_str(), &hex, &bytes, &media_type, max_bytes)
        .await?
    {
        PutBlob::New(info) => (StatusCode::CREATED, info),
        PutBlob::Existing(info) => (StatusCode::OK, info),
        PutBlob::OverQuota(quota) => return Err(super::jobs::quota_error(quota, tenant.name(), "this blob's bytes")),
    };
    let location =
        HeaderValue::try_from(format!("/v1/blobs/sha256:{hex}")).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((status, [(header::LOCATION, location)], Json(BlobView::from(info))).into_response())
}

/// A media type as stored: `type/subtype` of token characters, parameters dropped, at most 127 bytes.
fn checked_media_type(sent: Option<&str>) -> Result<String, ApiError> {
    let Some(sent) = sent else {
        return Ok(DEFAULT_MEDIA_TYPE.to_owned());
    };
    let essence = sent.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if essence.len() <= 127 && token(kind) && token(sub) => Ok(essence),
        _ => Err(ApiError::BadRequest(format!(
            "`{}` is not a media type (type/subtype)",
            crate::text::capped(sent.to_owned(), 80)
        ))),
    }
}

async fn read_multipart(request: Request) -> Result<(Option<String>, Bytes), ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text())))?;
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(super::submit::multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" || file.is_some() {
            return Err(ApiError::BadRequest(format!(
                "unexpected multipart part `{}`; send one `file` part",
                crate::text::capped(name, 80)
            )));
        }
        let media_type = field.content_type().map(str::to_owned);
        file = Some((media_type, field.bytes().await.map_err(super::submit::multipart_error)?));
    }
    file.ok_or_else(|| ApiError::BadRequest("the `file` part is missing".into()))
}

fn unknown_blob(hex: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no blob `sha256:{hex}` (never uploaded by this tenant, expired or deleted)"
    ))
}

/// Download a blob
#[utoipa::path(
    get,
    path = "/v1/blobs/{id}",
    operation_id = "getBlob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "`sha256:<hex>`")),
    responses(
        (status = 200, description = "The bytes, as the media type they were uploaded with"),
        (status = 400, description = "Not a blob id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such blob of this tenant", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>, tenant: Tenant) -> Result<Response, ApiError> {
    let hex = parse_blob_id(&id)?;
    let blob = state
        .store
        .blob(tenant.as_str(), &hex)
        .await?
        .ok_or_else(|| unknown_blob(&hex))?;
    let media_type = HeaderValue::try_from(blob.info.media_type).map_err(|e| ApiError::Internal(e.into()))?;
    // Bytes a client chose, served from the page's origin: nothing in them may run there.
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox")),
        ],
        blob.bytes,
    )
        .into_response())
}

/// Delete a blob
///
/// Its bytes are released from the tenant's quota at once; jobs that already took it as input keep
/// their copies.
#[utoipa::path(
    delete,
    path = "/v1/blobs/{id}",
    operation_id = "deleteBlob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "`sha256:<hex>`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a blob id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such blob of this tenant", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<StatusCode, ApiError> {
    let hex = parse_blob_id(&id)?;
    if !state.store.delete_blob(tenant.as_str(), &hex).await? {
        return Err(unknown_blob(&hex));
    }
    Ok(StatusCode::NO_CONTENT)
}
