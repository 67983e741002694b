//! What keeps one API process answering when callers misbehave: a cap on the requests it works on at
//! once (past it, 503 at once: a queue of waiting requests would grow memory without bound), and a
//! deadline on every request that is not an event stream or a `?wait=` long-poll (those have their own
//! bounds: `events::MAX_WAIT_SECS`, `events::MAX_STREAM` and the per-tenant [`super::StreamSlots`]).

use super::ApiError;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The HTTP limits of one process (`kiln serve --help` documents each).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Time a client gets to send a request's headers (enforced by `server::serve_http`).
    pub header_timeout: Duration,
    /// Deadline of every request but streams and long-polls.
    pub request_timeout: Duration,
    /// Requests worked on at once, GET streams and long-polls aside.
    pub max_concurrent_requests: usize,
    /// Event streams and long-polls one tenant may hold open at once.
    pub max_streams_per_tenant: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 64,
            max_streams_per_tenant: 100,
        }
    }
}

/// The state of [`enforce`]: the permits of requests in flight, shared by every route.
#[derive(Clone)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    limits: HttpLimits,
}

impl InFlight {
    pub fn new(limits: HttpLimits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
            limits,
        }
    }
}

/// A request that may stay open for long on purpose, on the routes that wait and only there: an event
/// stream (`GET /v1/jobs/{id}/events`), a long-poll (`GET /v1/jobs/{id}?wait=`) or an invoke
/// (`POST /v1/jobs/{kind}?wait=`, or `Prefer: wait=N`). A `wait` sent to any other route buys no exemption.
fn is_long_lived(request: &Request) -> bool {
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix("/v1/jobs/") else {
        return false;
    };
    match rest.split_once('/') {
        Some((id, "events")) => !id.is_empty(),
        Some(_) => false,
        None if rest.is_empty() => false,
        None => {
            uri.query()
                .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("wait=") && pair.len() > 5))
                || (request.method() == Method::POST
                    && super::jobs::prefer_wait(request.headers()).is_ok_and(|wait| wait.is_some()))
        }
    }
}

/// A kind upload (`PUT /v1/kinds/{name}`, admin only): compiling a large component may take minutes on a
/// busy machine, so it has no deadline (it still takes a permit).
fn is_kind_upload(request: &Request) -> bool {
    request.method() == Method::PUT && request.uri().path().starts_with("/v1/kinds/")
}

/// Middleware: sheds requests past the concurrency limit and times out the ones that are not long-lived.
///
/// A long-lived GET takes no permit: it holds no body, and [`super::StreamSlots`] caps them per tenant. An
/// invoke does (its body is in memory while it waits). The permit is held until the response's head is
/// ready; a response body still being sent is not counted.
pub async fn enforce(State(in_flight): State<InFlight>, request: Request, next: Next) -> Response {
    let long_lived = is_long_lived(&request);
    let _permit = if long_lived && request.method() == Method::GET {
        None
    } else {
        match in_flight.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return ApiError::Overloaded(format!(
                    "this Kiln process is already working on {} requests (KILN_MAX_CONCURRENT_REQUESTS); \
                     try again shortly",
                    in_flight.limits.max_concurrent_requests
                ))
                .into_response();
            }
        }
    };
    if long_lived || is_kind_upload(&request) {
        return next.run(request).await;
    }
    let timeout = in_flight.limits.request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(format!(
            "the request took longer than {} s (KILN_REQUEST_TIMEOUT_SECS) and was abandoned",
            timeout.as_secs()
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> Request {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn streams_and_long_polls_are_long_lived() {
        assert!(is_long_lived(&request("GET", "/v1/jobs/abc/events")));
        assert!(is_long_lived(&request("GET", "/v1/jobs/abc?wait=10")));
        assert!(is_long_lived(&request("POST", "/v1/jobs/plot?x=1&wait=30")));
        assert!(!is_long_lived(&request("GET", "/v1/jobs/abc?wait=")));
        assert!(!is_long_lived(&request("GET", "/v1/jobs/abc")));
        assert!(!is_long_lived(&request("GET", "/v1/kinds/events")));
        assert!(!is_long_lived(&request("GET", "/v1/jobs?await=3")));
        assert!(!is_long_lived(&request("GET", "/v1/jobs?wait=3")));
        assert!(!is_long_lived(&request("GET", "/v1/jobs/abc/result?wait=3")));
        assert!(!is_long_lived(&request("GET", "/v1/kinds?wait=3")));
        let mut prefer_get = request("GET", "/v1/jobs/abc");
        prefer_get.headers_mut().insert("prefer", "wait=20".parse().unwrap());
        assert!(!is_long_lived(&prefer_get), "GET reads only ?wait=");
        let mut prefer = request("POST", "/v1/jobs/plot");
        prefer.headers_mut().insert("prefer", "wait=20".parse().unwrap());
        assert!(is_long_lived(&prefer));
    }
}
