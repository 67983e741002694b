//! The API's one error type. Every error response is `application/problem+json` (RFC 9457): clients get
//! a precise, safe message; the cause of server-side failures goes to the log, not the client.

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Longest problem `detail`, in bytes: details may quote what the client sent (a kind name, a schema
/// error), and an answer must not grow with the request.
pub const MAX_DETAIL: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidParams(String),
    /// An uploaded kind (component or manifest) that Kiln cannot accept.
    #[error("{0}")]
    InvalidKind(String),
    /// An input reference (blob or job) that is unknown, expired, unfinished or another tenant's (422).
    #[error("{0}")]
    InvalidReference(String),
    /// A kind version that is not in the kind's history (422).
    #[error("{0}")]
    UnknownVersion(String),
    /// A recurring schedule Kiln cannot keep: a bad cron expression, an unknown kind, an input the kind
    /// does not take (422).
    #[error("{0}")]
    InvalidSchedule(String),
    /// An `Idempotency-Key` sent again with another payload (422).
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// A `callback_url` Kiln will not call: webhooks off, a host not allowed, a malformed URL (422).
    #[error("{0}")]
    InvalidCallback(String),
    /// A tenant quota is used up; `retry_after` in seconds.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u32 },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request conflicts with the job's state; `extra` carries e.g. the job's status and error.
    #[error("{detail}")]
    Conflict { detail: String, extra: Map<String, Value> },
    #[error("Redis is unavailable")]
    Unavailable(#[source] StoreError),
    /// The process is at its limit of requests in flight (503, load shedding).
    #[error("{0}")]
    Overloaded(String),
    /// A request ran past its deadline (503).
    #[error("{0}")]
    Timeout(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    pub(super) fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::InvalidParams(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-params"),
            ApiError::InvalidKind(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-kind"),
            ApiError::InvalidReference(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-reference"),
            ApiError::UnknownVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-version"),
            ApiError::InvalidSchedule(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-schedule"),
            ApiError::IdempotencyKeyReused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused"),
            ApiError::InvalidCallback(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-callback"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota-exceeded"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug) = self.parts();
        let detail = match &self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "answering 503");
                "Kiln cannot reach its Redis right now; try again shortly".to_owned()
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "answering 500");
                "Kiln hit an internal error; it has been logged".to_owned()
            }
            other => crate::text::capped(other.to_string(), MAX_DETAIL),
        };
        let mut body = json!({
            "type": format!("urn:kiln:problem:{slug}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        if let ApiError::Conflict { extra, .. } = self
            && let Value::Object(map) = &mut body
        {
            map.extend(extra);
        }
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
