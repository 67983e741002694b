//! Reading a submission: `application/json` (`{"params", "input_base64"}` or `{"params", "input"}` with
//! a reference) or `multipart/form-data` (a `params` part and an `input` file part, or an `input_ref`
//! part). Both end in the same [`Submission`], and every malformed body gets a 4xx problem that says
//! what is wrong.

use super::ApiError;
use crate::job::Priority;
use crate::kinds::Manifest;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A job's params and input, as sent.
#[derive(Debug, Default)]
pub struct Submission {
    pub params: Map<String, Value>,
    /// None when no input was sent; an empty upload counts as none.
    pub input: Option<Bytes>,
    /// An input by reference instead of `input`.
    pub input_ref: Option<InputSpec>,
    /// `"cache": false`: run it even if the result cache has its answer.
    pub cache: Option<bool>,
    pub priority: Priority,
    /// `delay_secs` or `run_at`, as sent (at most one).
    pub schedule: Option<Schedule>,
    /// Where to POST the job's document when it is final (not checked yet: `jobs::callback` does).
    pub callback_url: Option<String>,
}

/// When a job should be queued, as a submit asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// `"delay_secs": N`: N seconds from now.
    Delay(u64),
    /// `"run_at": "<RFC 3339>"`; a time already past runs now.
    At(OffsetDateTime),
}

/// How far ahead a job may be delayed or scheduled (30 days): a scheduled job holds its params and input
/// in Redis all that time.
pub const MAX_SCHEDULE_SECS: u64 = 30 * 86_400;

impl Schedule {
    /// `delay_secs` and `run_at` from the body (either may be missing, not both present).
    fn parse(delay_secs: Option<u64>, run_at: Option<&str>) -> Result<Option<Self>, ApiError> {
        match (delay_secs, run_at) {
            (Some(_), Some(_)) => Err(ApiError::BadRequest(
                "send either `delay_secs` or `run_at`, not both".into(),
            )),
            (Some(secs), None) if secs > MAX_SCHEDULE_SECS => Err(ApiError::BadRequest(format!(
                "delay_secs may be at most {MAX_SCHEDULE_SECS} (30 days), not {secs}"
            ))),
            (Some(secs), None) => Ok(Some(Schedule::Delay(secs))),
            (None, Some(at)) => OffsetDateTime::parse(at.trim(), &Rfc3339)
                .map(|at| Some(Schedule::At(at)))
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "run_at `{}` is not an RFC 3339 time such as `2030-01-31T12:00:00Z`: {e}",
                        crate::text::capped(at.to_owned(), 80)
                    ))
                }),
            (None, None) => Ok(None),
        }
    }

    /// The due time (Unix ms) seen from `now_ms`, refusing one more than [`MAX_SCHEDULE_SECS`] ahead.
    pub fn due_millis(self, now_ms: i64) -> Result<i64, ApiError> {
        let due = match self {
            Schedule::Delay(secs) => now_ms + secs as i64 * 1000,
            Schedule::At(at) => (at.unix_timestamp_nanos() / 1_000_000) as i64,
        };
        if due > now_ms + MAX_SCHEDULE_SECS as i64 * 1000 {
            return Err(ApiError::BadRequest(format!(
                "run_at is more than 30 days ahead ({MAX_SCHEDULE_SECS} seconds); schedule jobs at most that far"
            )));
        }
        Ok(due)
    }
}

fn parse_priority(priority: &str) -> Result<Priority, ApiError> {
    priority.parse().map_err(ApiError::BadRequest)
}

/// An input named instead of sent: `{"blob": "sha256:<hex>"}` or `{"job": "<job id>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// The blob's hex SHA-256.
    Blob(String),
    /// A succeeded job, whose result is the input.
    Job(crate::job::JobId),
}

impl std::fmt::Display for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputSpec::Blob(hex) => write!(f, "blob:sha256:{hex}"),
            InputSpec::Job(id) => write!(f, "job:{id}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputRefJson {
    blob: Option<String>,
    job: Option<String>,
}

impl InputSpec {
    pub(super) fn from_json(value: Value) -> Result<Self, ApiError> {
        let bad = |why: String| {
            ApiError::BadRequest(format!(
                "the input reference {why}: send {{\"blob\": \"sha256:<hex>\"}} or {{\"job\": \"<job id>\"}}"
            ))
        };
        let json: InputRefJson = serde_json::from_value(value).map_err(|e| bad(format!("is malformed ({e})")))?;
        match (json.blob, json.job) {
            (Some(blob), None) => parse_blob_id(&blob).map(InputSpec::Blob),
            (None, Some(job)) => job.parse().map(InputSpec::Job).map_err(|_| {
                bad(format!(
                    "names `{}`, which is not a job id",
                    crate::text::capped(job.clone(), 80)
                ))
            }),
            _ => Err(bad("must name exactly one of `blob` and `job`".into())),
        }
    }
}

/// `sha256:<64 lowercase hex>` → the hex.
pub fn parse_blob_id(id: &str) -> Result<String, ApiError> {
    match id.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
            Ok(hex.to_owned())
        }
        _ => Err(ApiError::BadRequest(format!(
            "`{}` is not a blob id: they are `sha256:` and 64 lowercase hex digits",
            crate::text::capped(id.to_owned(), 80)
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSubmission {
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    input_base64: Option<String>,
    /// An input by reference.
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    cache: Option<bool>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    delay_secs: Option<u64>,
    #[serde(default)]
    run_at: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
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
            let input_ref = json.input.map(InputSpec::from_json).transpose()?;
            if input.is_some() && input_ref.is_some() {
                return Err(ApiError::BadRequest(
                    "send the input either as `input_base64` or by reference (`input`), not both".into(),
                ));
            }
            Ok(Submission {
                params: params_object(json.params)?,
                input: input.filter(|i| !i.is_empty()).map(Bytes::from),
                input_ref,
                cache: json.cache,
                priority: json
                    .priority
                    .as_deref()
                    .map(parse_priority)
                    .transpose()?
                    .unwrap_or_default(),
                schedule: Schedule::parse(json.delay_secs, json.run_at.as_deref())?,
                callback_url: json.callback_url,
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

pub(super) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
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
    let (mut seen_params, mut seen_input, mut seen_ref, mut seen_cache) = (false, false, false, false);
    let (mut priority, mut delay_secs, mut run_at) = (None, None, None);
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
            "input_ref" if !seen_ref => {
                seen_ref = true;
                let reference: Value = serde_json::from_slice(&data)
                    .map_err(|e| ApiError::BadRequest(format!("the `input_ref` part is not valid JSON: {e}")))?;
                submission.input_ref = Some(InputSpec::from_json(reference)?);
            }
            "cache" if !seen_cache => {
                seen_cache = true;
                submission.cache = Some(match data.as_ref() {
                    b"true" => true,
                    b"false" => false,
                    _ => {
                        return Err(ApiError::BadRequest(
                            "the `cache` part must be `true` or `false`".into(),
                        ));
                    }
                });
            }
            "priority" if priority.is_none() => priority = Some(parse_priority(&text_part(&name, &data)?)?),
            "delay_secs" if delay_secs.is_none() => {
                let text = text_part(&name, &data)?;
                delay_secs = Some(text.trim().parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "the `delay_secs` part must be a whole number of seconds, not `{}`",
                        crate::text::capped(text.clone(), 40)
                    ))
                })?);
            }
            "run_at" if run_at.is_none() => run_at = Some(text_part(&name, &data)?),
            "callback_url" if submission.callback_url.is_none() => {
                submission.callback_url = Some(text_part(&name, &data)?);
            }
            "params" | "input" | "input_ref" | "cache" | "priority" | "delay_secs" | "run_at" | "callback_url" => {
                return Err(ApiError::BadRequest(format!("the `{name}` part was sent twice")));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unexpected multipart part `{other}`; expected `params`, `input` or `input_ref`, `cache`, \
                     `priority`, `delay_secs`, `run_at` or `callback_url`"
                )));
            }
        }
    }
    if submission.input.is_some() && submission.input_ref.is_some() {
        return Err(ApiError::BadRequest(
            "send either an `input` part or an `input_ref` part, not both".into(),
        ));
    }
    submission.priority = priority.unwrap_or_default();
    submission.schedule = Schedule::parse(delay_secs, run_at.as_deref())?;
    Ok(submission)
}

/// A small text part (`priority`, `delay_secs`, `run_at`) as UTF-8.
fn text_part(name: &str, data: &[u8]) -> Result<String, ApiError> {
    std::str::from_utf8(data)
        .map(str::to_owned)
        .map_err(|_| ApiError::BadRequest(format!("the `{name}` part is not UTF-8 text")))
}

pub(super) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the request body is over the limit: {}", e.body_text()))
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Resolves `"format": "auto"` for a kind that opts in (its params schema has a `format` property and
/// it may produce `image/webp`): `"webp"` when the submit's `Accept` header names `image/webp` with a
/// non-zero q (wildcards do not count: `*/*` from curl is no promise to decode WebP). Otherwise `auto`
/// stays, and the guest picks the input's family (jpeg for a JPEG input, else png), which depends on the
/// input alone, so the result cache stays right. Runs before validation and storage.
pub(super) fn resolve_auto_format(params: &mut Map<String, Value>, kind: &Manifest, headers: &HeaderMap) {
    let opted_in =
        kind.params_schema.pointer("/properties/format").is_some() && kind.produces().contains(&"image/webp");
    if opted_in && params.get("format").and_then(Value::as_str) == Some("auto") && accepts_webp(headers) {
        params.insert("format".into(), Value::from("webp"));
    }
}

/// Whether an `Accept` header lists `image/webp` with a q above 0.
fn accepts_webp(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            parts.next().is_some_and(|t| t.eq_ignore_ascii_case("image/webp"))
                && parts.all(|p| {
                    p.split_once('=')
                        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                        .is_none_or(|(_, q)| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0))
                })
        })
}

pub(super) fn params_object(params: Option<Value>) -> Result<Map<String, Value>, ApiError> {
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

#[cfg(test)]
mod format_tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn webp_is_accepted_only_when_named_with_a_non_zero_q() {
        assert!(accepts_webp(&accept("image/webp")));
        assert!(accepts_webp(&accept(
            "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"
        )));
        assert!(accepts_webp(&accept("IMAGE/WEBP; q=0.5")));
        assert!(!accepts_webp(&accept("image/webp;q=0")));
        assert!(!accepts_webp(&accept("*/*")));
        assert!(!accepts_webp(&accept("image/*")));
        assert!(!accepts_webp(&HeaderMap::new()));
    }

    #[test]
    fn auto_becomes_webp_only_for_kinds_that_opt_in() {
        let manifest = |schema: Value, extra: Option<Vec<String>>| Manifest {
            name: "k".into(),
            description: "d".into(),
            output_media_type: "image/png".into(),
            output_media_types: extra,
            input: crate::kinds::InputPolicy::Required,
            settings: Default::default(),
            params_schema: schema,
            limits: None,
            deterministic: None,
            input_media_types: None,
        };
        let schema = serde_json::json!({"type": "object", "properties": {"format": {}}});
        let webp = Some(vec!["image/webp".into()]);
        let resolved = |kind: &Manifest, format: &str, headers: &HeaderMap| {
            let mut params = serde_json::json!({"format": format}).as_object().unwrap().clone();
            resolve_auto_format(&mut params, kind, headers);
            params["format"].clone()
        };
        let kind = manifest(schema.clone(), webp.clone());
        assert_eq!(resolved(&kind, "auto", &accept("image/webp")), "webp");
        assert_eq!(resolved(&kind, "auto", &accept("*/*")), "auto");
        assert_eq!(resolved(&kind, "png", &accept("image/webp")), "png");
        assert_eq!(resolved(&manifest(schema, None), "auto", &accept("image/webp")), "auto");
        let no_format = manifest(serde_json::json!({"type": "object"}), webp);
        assert_eq!(resolved(&no_format, "auto", &accept("image/webp")), "auto");
    }
}
