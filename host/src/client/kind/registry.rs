//! The kind routes of a Kiln's API, as `kiln kind push|versions|use|rm` use them.

use super::{Built, Project};
use crate::client::commands::print_stdout;
use crate::client::{Failure, Remote, field, path_segment};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// An upload's request may take this long: the server compiles the component before answering (a
/// Python one takes seconds, more on a busy machine).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// `PUT /v1/kinds/{name}` as multipart (`manifest` = kind.json, `component` = the .wasm); returns the
/// new version.
pub async fn push(remote: &Remote, project: &Project, built: &Built) -> Result<String, Failure> {
    #[derive(Deserialize)]
    struct Registered {
        version: String,
    }
    let component = super::build::read(&built.path)?;
    let size = component.len();
    let file_name = built
        .path
        .file_name()
        .map_or_else(|| "component.wasm".into(), |n| n.to_string_lossy().into_owned());
    let form = Form::new()
        .part(
            "manifest",
            Part::text(project.manifest_text.clone())
                .mime_str("application/json")
                .expect("a valid media type"),
        )
        .part(
            "component",
            Part::bytes(component)
                .file_name(file_name)
                .mime_str("application/wasm")
                .expect("a valid media type"),
        );
    let started = Instant::now();
    let request = remote
        .request(Method::PUT, &format!("/v1/kinds/{}", path_segment(project.name())))
        .timeout(UPLOAD_TIMEOUT)
        .multipart(form);
    let registered: Registered = remote.json(request).await?;
    eprintln!(
        "kiln: pushed kind `{}` ({size} bytes, accepted in {:.1} s): version {}",
        project.name(),
        started.elapsed().as_secs_f64(),
        registered.version
    );
    Ok(registered.version)
}

/// `GET /v1/kinds/{name}/versions`'s answer.
#[derive(Debug, Deserialize)]
pub struct Versions {
    pub versions: Vec<VersionEntry>,
}

#[derive(Debug, Deserialize)]
pub struct VersionEntry {
    pub version: String,
    #[serde(default)]
    pub current: bool,
    #[serde(default)]
    pub uploaded_at: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub component_bytes: u64,
}

/// `kiln kind versions NAME`: a table, newest first, `*` on the current version.
pub async fn versions(remote: &Remote, name: &str) -> Result<(), Failure> {
    let answer: Versions = remote
        .json(remote.request(Method::GET, &format!("/v1/kinds/{}/versions", path_segment(name))))
        .await?;
    print_stdout(&versions_table(&answer))
}

fn versions_table(answer: &Versions) -> String {
    let mut out = format!(
        "  {:<64}  {:<25}  {:>10}  DESCRIPTION\n",
        "VERSION", "UPLOADED", "BYTES"
    );
    for entry in &answer.versions {
        out.push_str(&format!(
            "{} {:<64}  {:<25}  {:>10}  {}\n",
            if entry.current { '*' } else { ' ' },
            entry.version,
            entry.uploaded_at,
            entry.component_bytes,
            field(&entry.description)
        ));
    }
    out
}

/// `kiln kind use NAME VERSION`: `PUT /v1/kinds/{name}/current`.
pub async fn use_version(remote: &Remote, name: &str, version: &str) -> Result<(), Failure> {
    let request = remote
        .request(Method::PUT, &format!("/v1/kinds/{}/current", path_segment(name)))
        .json(&serde_json::json!({ "version": version }));
    remote.send(request).await?;
    eprintln!("kiln: kind `{name}` now runs version {version}");
    Ok(())
}

/// `kiln kind rm NAME`: `DELETE /v1/kinds/{name}`.
pub async fn remove(remote: &Remote, name: &str) -> Result<(), Failure> {
    remote
        .send(remote.request(Method::DELETE, &format!("/v1/kinds/{}", path_segment(name))))
        .await?;
    eprintln!("kiln: kind `{name}` removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_marks_the_current_version() {
        let answer: Versions = serde_json::from_value(serde_json::json!({
            "kind": "x", "current": "b",
            "versions": [
                {"version": "b", "current": true, "uploaded_at": "2026-01-02T00:00:00Z", "description": "new\tone", "component_bytes": 12},
                {"version": "a", "current": false, "uploaded_at": "2026-01-01T00:00:00Z", "description": "old", "component_bytes": 10},
            ]
        }))
        .unwrap();
        let table = versions_table(&answer);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("* b ") && lines[1].ends_with("new one"), "{table}");
        assert!(lines[2].starts_with("  a "), "{table}");
    }
}
