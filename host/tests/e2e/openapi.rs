//! `GET /openapi.json` against the live server and README's routes table: every documented operation
//! exists and answers with a status (and content type) it documents, every route in README is
//! documented, and every documented error is problem+json.

use crate::common::{Kiln, Redis, client};
use serde_json::Value;
use std::collections::BTreeSet;

/// `METHOD /path` with path parameters written `{}`, so `{kind}` and `{id}` compare equal.
fn route(method: &str, path: &str) -> String {
    let mut normal = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                normal.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => normal.push(c),
            _ => {}
        }
    }
    format!("{} {normal}", method.to_ascii_uppercase())
}

/// The routes of README's "Routes (v1)" table: every `` `METHOD /path` `` in a row's first cell.
fn readme_routes() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = readme
        .split("### Routes (v1)")
        .nth(1)
        .expect("README has a `### Routes (v1)` section");
    let mut routes = BTreeSet::new();
    for row in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
    {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        for span in first_cell.split('`').skip(1).step_by(2) {
            let mut words = span.split_whitespace();
            if let (Some(method), Some(path)) = (words.next(), words.next())
                && ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method)
            {
                routes.insert(route(method, path.split('?').next().unwrap()));
            }
        }
    }
    assert!(routes.len() >= 10, "too few routes parsed from README: {routes:?}");
    routes
}

/// The media type without parameters, lowercased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[tokio::test]
async fn document_matches_the_live_routes_and_readme() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let response = client().get(kiln.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        essence(response.headers()["content-type"].to_str().unwrap()),
        "application/json"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "openapi: {}",
        doc["openapi"]
    );

    let mut documented = BTreeSet::new();
    let mut web = BTreeSet::new();
    let unknown_job = "0190a6d4-0000-7000-8000-000000000000";
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            // Every documented error is a problem, and only a problem.
            for (status, answer) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let types: Vec<&String> = answer["content"]
                        .as_object()
                        .map(|c| c.keys().collect())
                        .unwrap_or_default();
                    assert_eq!(
                        types,
                        ["application/problem+json"],
                        "{method} {path} {status} must be application/problem+json"
                    );
                }
            }
            let key = route(method, path);
            if operation["tags"].as_array().unwrap().iter().any(|t| t == "web") {
                web.insert(key.clone());
            }
            documented.insert(key);

            // Call it: a real kind for reads; an unknown job, and an unknown kind for anything that
            // would change one (PUT gets an empty body, which no kind is).
            let name = if method == "get" { "plot" } else { "no-such-kind" };
            let url = kiln.url(
                &path
                    .replace("{name}", name)
                    .replace("{id}", if method == "post" { "no-such-kind" } else { unknown_job }),
            );
            let method_ = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let answer = client().request(method_, &url).send().await.unwrap();
            let status = answer.status().as_u16();
            let content_type = answer
                .headers()
                .get("content-type")
                .map(|v| essence(v.to_str().unwrap()));
            let body = answer.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}: not routed ({body})");
            assert!(
                !(status == 404 && body.contains("no route for")),
                "{method} {path}: the router's fallback answered ({body})"
            );
            let declared = responses
                .get(&status.to_string())
                .unwrap_or_else(|| panic!("{method} {path} answered {status}, which it does not document: {body}"));
            if let (Some(content), Some(content_type)) = (declared["content"].as_object(), content_type)
                && !content.is_empty()
            {
                assert!(
                    content.keys().any(|c| essence(c) == content_type),
                    "{method} {path} {status}: answered `{content_type}`, documented {:?}",
                    content.keys().collect::<Vec<_>>()
                );
            }
        }
    }

    // Every route in README is documented, and every documented route but the web page's is in README.
    let readme = readme_routes();
    let missing: Vec<&String> = readme.difference(&documented).collect();
    assert!(missing.is_empty(), "README routes not in the document: {missing:?}");
    let undocumented_in_readme: Vec<&String> = documented.difference(&readme).filter(|r| !web.contains(*r)).collect();
    assert!(
        undocumented_in_readme.is_empty(),
        "documented routes missing from README's table: {undocumented_in_readme:?}"
    );

    // Admin routes are marked: the admin tag and the admin key.
    for (path, method) in [
        ("/v1/kinds/{name}", "put"),
        ("/v1/kinds/{name}", "delete"),
        ("/v1/stats", "get"),
    ] {
        let operation = &doc["paths"][path][method];
        assert!(
            operation["tags"].as_array().unwrap().iter().any(|t| t == "admin"),
            "{method} {path}"
        );
        assert!(operation["security"][0]["admin_key"].is_array(), "{method} {path}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
}
