//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`.
//!
//! It cannot drift from the router: `api::api_routes` and `api::ops_routes` register every handler through
//! `utoipa_axum::routes!`, which builds the axum route and the document's operation from the same
//! `#[utoipa::path]` annotation, so a route without an annotation does not exist. The web page's routes
//! come from `web::pages`, the same table `web::routes` is built from. `host/tests/e2e/openapi.rs` checks the
//! document against the live server and README's routes table.

use crate::job::{JobError, Status};
use crate::kinds::Manifest;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// The error answers most routes share, for `#[utoipa::path(responses(...))]` next to a route's own:
/// written once here rather than in every annotation.
pub mod errors {
    use std::collections::BTreeMap;
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder};
    use utoipa::{IntoResponses, PartialSchema};

    fn problem(description: &str) -> ResponseBuilder {
        ResponseBuilder::new().description(description).content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
    }

    fn header(schema: RefOr<utoipa::openapi::schema::Schema>, description: &str) -> utoipa::openapi::Header {
        HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(description))
            .build()
    }

    fn responses(forbidden: Option<&str>) -> BTreeMap<String, RefOr<Response>> {
        let mut all = BTreeMap::new();
        if let Some(forbidden) = forbidden {
            let unauthorized =
                problem("No key, or an unknown one").header("WWW-Authenticate", header(String::schema(), "`Bearer`"));
            all.insert("401".to_owned(), unauthorized.build().into());
            all.insert("403".to_owned(), problem(forbidden).build().into());
        }
        let unavailable =
            problem("Redis is unreachable").header("Retry-After", header(u32::schema(), "Seconds to wait"));
        all.insert("503".to_owned(), unavailable.build().into());
        all
    }

    /// 401, 403 (the admin key on a tenant's route) and 503: the routes of a tenant's jobs.
    pub struct TenantRoute;

    impl IntoResponses for TenantRoute {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            responses(Some("The admin key: jobs belong to tenants"))
        }
    }

    /// 401, 403 (a tenant's key) and 503: the admin routes.
    pub struct AdminRoute;

    impl IntoResponses for AdminRoute {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            responses(Some("Not the admin key"))
        }
    }

    /// 503 alone: routes that need no key but Redis.
    pub struct NeedsRedis;

    impl IntoResponses for NeedsRedis {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            responses(None)
        }
    }

    /// 404 for a job id that is unknown, another tenant's or expired.
    pub struct NoSuchJob;

    impl IntoResponses for NoSuchJob {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            let description = "No such job (or another tenant's, or expired)";
            BTreeMap::from([("404".to_owned(), problem(description).build().into())])
        }
    }

    /// 404 on the routes of one tenant by name.
    pub struct NoSuchTenant;

    impl IntoResponses for NoSuchTenant {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            let description = "No tenant has this name";
            BTreeMap::from([("404".to_owned(), problem(description).build().into())])
        }
    }
}

/// The operations' tags.
pub mod tags {
    pub const JOBS: &str = "jobs";
    pub const KINDS: &str = "kinds";
    pub const ADMIN: &str = "admin";
    pub const OPS: &str = "ops";
    pub const WEB: &str = "web";
}

/// The document's fixed parts; the operations are added by the routers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Kiln",
        description = "Run image-producing jobs as sandboxed WebAssembly components. Errors are \
                       `application/problem+json` (RFC 9457). In dev mode (`kiln serve --dev`, loopback \
                       only) Kiln needs no `Authorization` header.",
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    tags(
        (name = tags::JOBS, description = "Submit, watch, download and cancel jobs (a tenant's key)"),
        (name = tags::KINDS, description = "The job kinds and their params schemas"),
        (name = tags::ADMIN, description = "Routes that need the admin key (`KILN_ADMIN_KEY`)"),
        (name = tags::OPS, description = "Health, readiness, metrics and this document"),
        (name = tags::WEB, description = "The web page"),
    ),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "api_key",
            bearer("A tenant's API key (`kiln tenant add`). Not needed in dev mode."),
        );
        components.add_security_scheme(
            "admin_key",
            bearer("The admin key (`KILN_ADMIN_KEY`). Not needed in dev mode."),
        );
    }
}

/// An error, as `application/problem+json` (RFC 9457).
#[derive(Debug, ToSchema)]
pub struct Problem {
    /// `urn:kiln:problem:<slug>`, e.g. `urn:kiln:problem:not-found` or `urn:kiln:problem:quota-exceeded`.
    #[schema(rename = "type", example = "urn:kiln:problem:not-found")]
    pub kind: String,
    /// The status code's reason phrase.
    #[schema(example = "Not Found")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The job's status, in `409` problems about a job.
    pub job_status: Option<Status>,
    /// The job's error, in `409` problems about a failed job.
    pub error: Option<JobError>,
}

/// The JSON body of `POST /v1/jobs/{kind}` (documentation only; `api::submit` reads it).
#[derive(Debug, ToSchema)]
pub struct SubmitJson {
    /// The params: a JSON object that fits the kind's `params_schema`.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// The input file, in base64.
    #[schema(content_encoding = "base64")]
    pub input_base64: Option<String>,
    /// `high`, `normal` (the default) or `low`: within the tenant, higher runs first (FIFO within one).
    pub priority: Option<crate::job::Priority>,
    /// Queue the job this many seconds from now (at most 30 days); it is `scheduled` until then.
    /// Not with `run_at`.
    #[schema(maximum = 2_592_000)]
    pub delay_secs: Option<u64>,
    /// Queue the job at this time (RFC 3339, at most 30 days ahead; a past time runs now). Not with
    /// `delay_secs`.
    #[schema(format = DateTime)]
    pub run_at: Option<String>,
    /// POST the job's document here when it is final (succeeded, failed or cancelled), signed with the
    /// tenant's webhook secret; http or https, at most 2048 bytes, to a host the operator allows
    /// (`KILN_WEBHOOK_ALLOW`).
    pub callback_url: Option<String>,
}

/// The multipart body of `POST /v1/jobs/{kind}` (documentation only).
#[derive(Debug, ToSchema)]
pub struct SubmitForm {
    /// The params, as JSON text.
    pub params: Option<String>,
    /// The input file.
    #[schema(value_type = Option<String>, format = Binary, content_media_type = "application/octet-stream")]
    pub input: Option<Vec<u8>>,
    /// `high`, `normal` (the default) or `low`.
    pub priority: Option<String>,
    /// Seconds from now to queue the job (at most 30 days); not with `run_at`.
    pub delay_secs: Option<String>,
    /// RFC 3339 time to queue the job (at most 30 days ahead); not with `delay_secs`.
    pub run_at: Option<String>,
    /// Where to POST the job's document when it is final (as in the JSON body).
    pub callback_url: Option<String>,
}

/// The multipart body of `PUT /v1/kinds/{name}` (documentation only).
#[derive(Debug, ToSchema)]
pub struct KindUpload {
    /// The kind's `kind.json`; without it the kind gets a minimal manifest.
    pub manifest: Option<Manifest>,
    /// The component, built for `wasm32-wasip2`.
    #[schema(value_type = String, format = Binary, content_media_type = "application/wasm")]
    pub component: Vec<u8>,
}

/// The whole document: the API's and the operations routes' operations, and the web page's.
pub fn document() -> OpenApi {
    let mut doc = super::api_routes().into_openapi();
    doc.merge(super::ops_routes().into_openapi());
    for (path, media_type) in crate::web::pages() {
        let name = match path.trim_start_matches('/') {
            "" => "root".to_owned(),
            file => file.replace('.', "_"),
        };
        let operation = OperationBuilder::new()
            .operation_id(Some(format!("web_{name}")))
            .summary(Some(format!("The web page: `{path}`")))
            .tag(tags::WEB)
            .response(
                "200",
                ResponseBuilder::new()
                    .description(media_type)
                    .content(media_type.split(';').next().unwrap_or(media_type), Content::default()),
            )
            .response(
                "304",
                ResponseBuilder::new().description("The browser's copy (`If-None-Match`) is current"),
            );
        doc.paths.add_path_operation(path, vec![HttpMethod::Get], operation);
    }
    doc
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_json().expect("the OpenAPI document serializes"));

/// This document
///
/// The OpenAPI 3.1 description of every route.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = tags::OPS,
    responses((status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json")),
)]
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_3_1_with_unique_operation_ids() {
        let doc = serde_json::to_value(document()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_owned()),
                    "{method} {path}: duplicate operationId `{id}`"
                );
            }
        }
    }
}
