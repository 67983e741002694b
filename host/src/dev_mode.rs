//! What dev mode (`kiln serve --dev`) lets through. Dev mode needs no key, so anything that can make a
//! request to it can use it with admin rights; that must be a person on this machine, not a web page they
//! happen to visit. So every request must name a loopback host (a page that rebinds its own DNS name to
//! 127.0.0.1 still sends its own name as `Host`), and a request that changes state must not come from
//! another origin (CSRF: a page may send a form or a `fetch` to 127.0.0.1, but the browser marks it with
//! `Origin` and `Sec-Fetch-Site`). Kiln's own web page is served from the API's origin and passes.

use crate::api::ApiError;
use axum::extract::Request;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// The layer: refuses (403) what [`check`] refuses.
pub async fn guard(request: Request, next: Next) -> Response {
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    if let Err(detail) = check(request.method(), request.headers(), authority.as_deref()) {
        return ApiError::Forbidden(detail).into_response();
    }
    next.run(request).await
}

fn check(method: &Method, headers: &HeaderMap, uri_authority: Option<&str>) -> Result<(), String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri_authority)
        .ok_or("in dev mode, requests must name their host (the Host header)")?;
    if !is_loopback(host) {
        return Err(format!(
            "in dev mode Kiln answers only requests for a loopback host (localhost, 127.0.0.1, [::1]), not \
             `{host}`: dev mode has no keys, so it serves only this machine. Set KILN_ADMIN_KEY to serve others"
        ));
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    let foreign_origin = headers
        .get(header::ORIGIN)
        .is_some_and(|origin| !same_origin(origin.as_bytes(), host));
    if cross_site || foreign_origin {
        return Err(format!(
            "in dev mode Kiln refuses {method} requests from other origins (a web page other than Kiln's own): \
             dev mode has no keys, so any page could otherwise act for you"
        ));
    }
    Ok(())
}

/// `localhost`, a name under `.localhost` (RFC 6761: always loopback), or a loopback address; any port.
fn is_loopback(host: &str) -> bool {
    let Ok(authority) = host.parse::<Authority>() else {
        return false;
    };
    let name = authority.host();
    let name = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = name.to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `Origin` is the API's own: its scheme and exactly the host (and port) the request was sent to.
fn same_origin(origin: &[u8], host: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        origin.len() == scheme.len() + host.len()
            && origin[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
            && origin[scheme.len()..].eq_ignore_ascii_case(host.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn only_loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "app.localhost:1",
            "127.0.0.1:8080",
            "127.9.9.9",
            "[::1]:80",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1",
            "[::2]:80",
            "localhost.evil.example",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn writes_only_from_the_own_origin() {
        let host = "127.0.0.1:8080";
        let post = |extra: &[(&'static str, &str)]| {
            let mut all = vec![("host", host)];
            all.extend_from_slice(extra);
            check(&Method::POST, &headers(&all), None)
        };
        assert!(post(&[]).is_ok(), "curl sends no Origin");
        assert!(post(&[("origin", "http://127.0.0.1:8080"), ("sec-fetch-site", "same-origin")]).is_ok());
        assert!(post(&[("origin", "http://127.0.0.1:3000")]).is_err());
        assert!(post(&[("origin", "http://localhost:8080")]).is_err());
        assert!(post(&[("origin", "null")]).is_err());
        assert!(post(&[("sec-fetch-site", "cross-site")]).is_err());
        let get = headers(&[("host", host), ("origin", "https://evil.example")]);
        assert!(check(&Method::GET, &get, None).is_ok(), "reads are not CSRF");
        let rebound = headers(&[("host", "evil.example:8080")]);
        assert!(check(&Method::GET, &rebound, None).is_err());
    }
}
