//! The web page at `/`: submit crop and plot jobs, watch them, see and download their results.
//!
//! Plain HTML, CSS and JavaScript with no build step, embedded in the binary, so `kiln serve` (or
//! `kiln api`) serves it with nothing else installed and nothing fetched from elsewhere. The page is a
//! client of the public API like any other: it sends the API key, if one is set, as a Bearer header.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One embedded file: its bytes, media type and an ETag derived from its contents.
struct Asset {
    body: &'static str,
    media_type: &'static str,
    etag: LazyLock<String>,
}

macro_rules! asset {
    ($file:literal, $media_type:literal) => {
        Asset {
            body: include_str!($file),
            media_type: $media_type,
            etag: LazyLock::new(|| etag(include_str!($file))),
        }
    };
}

static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
static APP_JS: Asset = asset!("app.js", "text/javascript; charset=utf-8");
static STYLE_CSS: Asset = asset!("style.css", "text/css; charset=utf-8");
static FAVICON: Asset = asset!("favicon.svg", "image/svg+xml");

/// Only this origin's scripts, styles and API; images may also be `blob:` URLs (previews, results).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn etag(body: &str) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..16])
}

/// Every path the page is served at, and what it serves.
static PAGES: [(&str, &Asset); 5] = [
    ("/", &INDEX),
    ("/index.html", &INDEX),
    ("/app.js", &APP_JS),
    ("/style.css", &STYLE_CSS),
    ("/favicon.svg", &FAVICON),
];

/// The page's routes: `/` (also `/index.html`), `/app.js`, `/style.css` and `/favicon.svg`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    PAGES.iter().fold(Router::new(), |router, (path, asset)| {
        router.route(path, asset_route(asset))
    })
}

/// Each route of [`routes`] with its media type, for the OpenAPI document.
pub fn pages() -> impl Iterator<Item = (&'static str, &'static str)> {
    PAGES.iter().map(|(path, asset)| (*path, asset.media_type))
}

fn asset_route<S: Clone + Send + Sync + 'static>(asset: &'static Asset) -> MethodRouter<S> {
    get(move |headers: HeaderMap| async move { serve(asset, &headers) })
}

/// The asset, or `304` when the browser's copy is current. `no-cache` makes browsers revalidate each
/// time, so a new binary's page is picked up at once while an unchanged one costs a bodiless answer.
fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag.as_str();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    (headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        routes::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn assets_have_their_types_and_revalidate() {
        for (path, media_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/style.css", "text/css; charset=utf-8"),
            ("/favicon.svg", "image/svg+xml"),
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], media_type, "{path}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
            let tag = response.headers()[header::ETAG].to_str().unwrap().to_owned();
            let again = get(path, Some(&tag)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        }
        assert!(INDEX.body.contains("app.js") && INDEX.body.contains("style.css"));
    }
}
