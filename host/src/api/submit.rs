//! Reading a submission: `application/json` (`{"params", "input_base64"}`) or `multipart/form-data`
//! (a `params` part and an `input` file part). Both end in the same [`Submission`], and every malformed
//! body gets a 4xx problem that says what is wrong.

use super::ApiError;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A job's params and input, as sent.
#[derive(Debug, Default)]
pub struct Submission {
    pub params: Map<String, Value>,
    /// None when no input was sent; an empty upload counts as none.
    pub input: Option<Bytes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSubmission {
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    input_base64: Option<String>,
}

/// Reads the body, refusing more than `limit` bytes with 413.
pub async fn read_submission(request: Request, limit: usize) -> Result<Submission, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some("multipart/form-data") => read_multipart(request).await,
        Some("application/json") => {
            let body = read_limited(request.into_body(), limit).await?;
            if body.is_empty() {
                return Ok(Submission::default());
            }
            let json: JsonSubmission = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("the body is not valid submission JSON: {e}")))?;
            let input = json
                .input_base64
                .map(|b64| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| ApiError::BadRequest(format!("input_base64 is not valid base64: {e}")))
                })
                .transpose()?;
            Ok(Submission {
                params: params_object(json.params)?,
                input: input.filter(|i| !i.is_empty()).map(Bytes::from),
            })
        }
        None => {
            let body = read_limited(request.into_body(), limit).await?;
            if body.is_empty() {
                Ok(Submission::default())
            } else {
                Err(unsupported(None))
            }
        }
        Some(other) => Err(unsupported(Some(other))),
    }
}

fn unsupported(content_type: Option<&str>) -> ApiError {
    let sent = content_type.map_or("no Content-Type".to_owned(), |c| format!("Content-Type `{c}`"));
    ApiError::UnsupportedMediaType(format!(
        "{sent}: send `application/json` ({{\"params\": {{...}}, \"input_base64\": \"...\"}}) or \
         `multipart/form-data` (a `params` part and an `input` file part)"
    ))
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| too_large_or_bad(&e, limit))
}

fn too_large_or_bad(error: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge(format!("the request body is over the limit of {limit} bytes"));
        }
        source = e.source();
    }
    ApiError::BadRequest(format!("could not read the request body: {error}"))
}

async fn read_multipart(request: Request) -> Result<Submission, ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text())))?;
    let mut submission = Submission::default();
    let (mut seen_params, mut seen_input) = (false, false);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let data = field.bytes().await.map_err(multipart_error)?;
        match name.as_str() {
            "params" if !seen_params => {
                seen_params = true;
                let params: Value = serde_json::from_slice(&data)
                    .map_err(|e| ApiError::BadRequest(format!("the `params` part is not valid JSON: {e}")))?;
                submission.params = params_object(Some(params))?;
            }
            "input" if !seen_input => {
                seen_input = true;
                submission.input = (!data.is_empty()).then_some(data);
            }
            "params" | "input" => return Err(ApiError::BadRequest(format!("the `{name}` part was sent twice"))),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unexpected multipart part `{other}`; expected `params` and `input`"
                )));
            }
        }
    }
    Ok(submission)
}

pub(super) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the request body is over the limit: {}", e.body_text()))
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

fn params_object(params: Option<Value>) -> Result<Map<String, Value>, ApiError> {
    match params {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(ApiError::BadRequest(format!(
            "params must be a JSON object, not {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "an array",
            }
        ))),
    }
}
