//! Plugin kinds end to end: `guest-filter`, which no host code knows, is uploaded through the API to a
//! running Kiln and runs jobs; uploads that cannot work are refused with the reason.

use crate::common::*;
use image::GenericImageView;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::time::Duration;

const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// (manifest JSON, component bytes) of a test guest built by `host/build.rs`.
pub(crate) fn test_guest(name: &str) -> (Value, Vec<u8>) {
    let (_, manifest, component) = kiln::kinds::TEST_GUESTS
        .iter()
        .find(|(crate_name, _, _)| *crate_name == name)
        .unwrap_or_else(|| panic!("build.rs builds {name}"));
    let manifest = serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    (manifest, std::fs::read(component).unwrap())
}

fn filter_guest() -> (Value, Vec<u8>) {
    test_guest("guest-filter")
}

/// `PUT /v1/kinds/{name}` as multipart: the `manifest` part and the `component` file part, like
/// `curl -X PUT -F manifest=@kind.json -F component=@my_kind.wasm`.
pub(crate) async fn upload(kiln: &Kiln, name: &str, manifest: &Value, component: &[u8]) -> reqwest::Response {
    let form = Form::new()
        .part(
            "manifest",
            Part::bytes(manifest.to_string().into_bytes())
                .file_name("kind.json")
                .mime_str("application/json")
                .unwrap(),
        )
        .part("component", Part::bytes(component.to_vec()).file_name("kind.wasm"));
    client()
        .put(kiln.url(&format!("/v1/kinds/{name}")))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The version Kiln gives a kind of this manifest and component.
fn version_of(manifest: &Value, component: &[u8]) -> String {
    kiln::kinds::KindPackage {
        manifest: serde_json::from_value(manifest.clone()).unwrap(),
        component: component.into(),
    }
    .version()
}

/// Uploads and expects 201 with the kind document.
async fn upload_ok(kiln: &Kiln, name: &str, manifest: &Value, component: &[u8]) -> Value {
    let response = upload(kiln, name, manifest, component).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn get_json(kiln: &Kiln, path: &str) -> (u16, Value) {
    let response = client().get(kiln.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The names `GET /v1/kinds` lists.
async fn kind_names(kiln: &Kiln) -> Vec<String> {
    let (status, list) = get_json(kiln, "/v1/kinds").await;
    assert_eq!(status, 200, "{list}");
    list["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Submits a job as multipart (params part + image file part), as `curl -F` would.
async fn submit(kiln: &Kiln, kind: &str, params: Value, image: &[u8]) -> reqwest::Response {
    let form = Form::new()
        .text("params", params.to_string())
        .part("input", Part::bytes(image.to_vec()).file_name("in.png"));
    client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Submits, expects 202, returns the job id.
async fn submit_ok(kiln: &Kiln, kind: &str, params: Value, image: &[u8]) -> String {
    let response = submit(kiln, kind, params, image).await;
    let status = response.status().as_u16();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{doc}");
    doc["id"].as_str().unwrap().to_owned()
}

/// Runs a filter job to the end and returns its output image.
async fn run_filter(kiln: &Kiln, params: Value, image: &[u8]) -> image::DynamicImage {
    let id = submit_ok(kiln, "filter", params, image).await;
    let doc = wait_final(kiln, &id, JOB_TIMEOUT).await;
    assert_eq!(doc["progress"], 1.0, "{doc}");
    result_image(kiln, &doc).await
}

#[tokio::test]
async fn uploaded_kind_runs_jobs_and_can_be_updated_and_deleted() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let (manifest, component) = filter_guest();

    // Not there before the upload.
    let (status, _) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(status, 404);

    let kind = upload_ok(&kiln, "filter", &manifest, &component).await;
    assert_eq!(kind["name"], "filter");
    assert_eq!(kind["description"], manifest["description"]);
    assert_eq!(kind["input"], "required");
    assert_eq!(kind["output_media_type"], "image/png");
    assert_eq!(kind["params_schema"], manifest["params_schema"]);
    let version = kind["version"].as_str().unwrap().to_owned();
    assert_eq!(
        version,
        version_of(&manifest, &component),
        "the version is the SHA-256 of component and manifest"
    );

    let (status, shown) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(status, 200);
    assert_eq!(shown, kind);
    let names = kind_names(&kiln).await;
    assert!(
        names.contains(&"filter".to_owned()) && names.contains(&"crop".to_owned()),
        "{names:?}"
    );

    // Jobs, checked pixel by pixel. Source pixel (x, y) is (x, y, 128).
    let source = encode_png(&coordinate_image(60, 40));
    let flipped = run_filter(&kiln, json!({"ops": [{"op": "flip", "axis": "horizontal"}]}), &source).await;
    let flipped = flipped.to_rgb8();
    assert_eq!(flipped.dimensions(), (60, 40));
    for (x, y) in [(0, 0), (59, 0), (0, 39), (21, 13)] {
        assert_eq!(flipped.get_pixel(x, y).0, [(59 - x) as u8, y as u8, 128], "({x}, {y})");
    }
    let turned = run_filter(
        &kiln,
        json!({"ops": [{"op": "rotate", "degrees": 90}, {"op": "invert"}]}),
        &source,
    )
    .await;
    assert_eq!(turned.dimensions(), (40, 60), "a quarter turn swaps width and height");
    // Clockwise: output (x, y) comes from source (y, 39 - x); then inverted.
    let turned = turned.to_rgb8();
    for (x, y) in [(0, 0), (39, 0), (0, 59), (7, 31)] {
        assert_eq!(
            turned.get_pixel(x, y).0,
            [255 - y as u8, 255 - (39 - x) as u8, 127],
            "({x}, {y})"
        );
    }
    let grey = run_filter(&kiln, json!({"ops": [{"op": "grayscale"}]}), &source).await;
    assert_eq!(grey.color(), image::ColorType::L8);

    // Params are checked against the uploaded schema at submit.
    let bad = submit(
        &kiln,
        "filter",
        json!({"ops": [{"op": "rotate", "degrees": 45}]}),
        &source,
    )
    .await;
    let problem = expect_problem(bad, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("/ops/0/degrees: 45 is not one of 90, 180 or 270"),
        "{detail}"
    );
    // A job the schema allows but the guest refuses fails with the guest's code and message.
    let id = submit_ok(&kiln, "filter", json!({"ops": []}), b"not an image").await;
    let doc = wait_final(&kiln, &id, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["error"]["code"], "invalid-input", "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("unknown format"),
        "{doc}"
    );
    assert_eq!(doc["attempts"], 1, "the user's mistakes are not retried");

    // Upload again with a new description: a new kind document and a new version (same component).
    let mut changed = manifest.clone();
    changed["description"] = json!("Filters, described anew.");
    let updated = upload_ok(&kiln, "filter", &changed, &component).await;
    assert_eq!(updated["description"], "Filters, described anew.");
    assert_ne!(updated["version"], version.as_str());
    assert_eq!(updated["version"], version_of(&changed, &component).as_str());
    let (_, shown) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(shown, updated);
    // ...and it still runs.
    let again = run_filter(&kiln, json!({"ops": [{"op": "flip", "axis": "vertical"}]}), &source).await;
    assert_eq!(again.to_rgb8().get_pixel(3, 0).0, [3, 39, 128]);

    // Delete: gone from the API, jobs of that kind are refused at submit.
    let response = client().delete(kiln.url("/v1/kinds/filter")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(status, 404);
    assert!(!kind_names(&kiln).await.contains(&"filter".to_owned()));
    let gone = submit(&kiln, "filter", json!({"ops": []}), &source).await;
    let problem = expect_problem(gone, 404).await;
    assert_detail_contains(&problem, "filter");
    send_problem(client().delete(kiln.url("/v1/kinds/filter")), 404).await;
}

#[tokio::test]
async fn uploads_that_cannot_work_are_refused_with_the_reason() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let (manifest, component) = filter_guest();

    /// Uploads and expects a problem with `status` whose detail mentions every needle.
    async fn refused(kiln: &Kiln, name: &str, manifest: &Value, component: &[u8], status: u16, needles: &[&str]) {
        let response = upload(kiln, name, manifest, component).await;
        let problem = expect_problem(response, status).await;
        let detail = problem["detail"].as_str().unwrap();
        for needle in needles {
            assert!(detail.contains(needle), "{detail:?} should mention {needle:?}");
        }
    }

    // A core module (the 8-byte header alone is a valid, empty one): Kiln runs components only.
    let core_module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    refused(
        &kiln,
        "filter",
        &manifest,
        &core_module,
        422,
        &["core wasm module", "wasm32-wasip2"],
    )
    .await;
    // Not wasm at all.
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    refused(
        &kiln,
        "filter",
        &manifest,
        &random,
        422,
        &["not a WebAssembly component"],
    )
    .await;
    // A valid but empty component (header only): it does not export `run`.
    let empty_component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    refused(
        &kiln,
        "filter",
        &manifest,
        &empty_component,
        422,
        &["kiln:job/handler@0.1.0", "run"],
    )
    .await;
    // The manifest names another kind than the URL.
    refused(&kiln, "other", &manifest, &component, 422, &["`filter`", "`other`"]).await;
    // Not a kind name. (A small body: the API answers without reading it and closes the connection, so
    // a client still sending a large component may see a broken pipe instead of the answer.)
    refused(&kiln, "Filter", &manifest, &empty_component, 400, &["a-z"]).await;
    refused(
        &kiln,
        "2d",
        &manifest,
        &empty_component,
        400,
        &["starting with a letter"],
    )
    .await;
    // A manifest that is not one.
    refused(
        &kiln,
        "filter",
        &json!({"name": "filter"}),
        &component,
        422,
        &["manifest"],
    )
    .await;
    let mut bad_schema = manifest.clone();
    bad_schema["params_schema"] = json!({"type": "no-such-type"});
    refused(&kiln, "filter", &bad_schema, &component, 422, &["params_schema"]).await;
    // A media type that is not one, or not one Kiln can check results against.
    for (media_type, needle) in [("png", "type/subtype"), ("text/html", "image/png, image/jpeg")] {
        let mut bad_type = manifest.clone();
        bad_type["output_media_type"] = json!(media_type);
        let named = format!("`{media_type}`");
        refused(&kiln, "filter", &bad_type, &component, 422, &[&named, needle]).await;
    }
    // More linear memories than a run may have (as text: a component of several core modules).
    let memories = kiln::runtime::MAX_MEMORIES_PER_COMPONENT + 1;
    let modules: String = (0..memories)
        .map(|i| format!("(core module $m{i} (memory 1)) (core instance (instantiate $m{i}))"))
        .collect();
    let many_memories = wat::parse_str(format!("(component {modules})")).unwrap();
    refused(
        &kiln,
        "filter",
        &manifest,
        &many_memories,
        422,
        &["within Kiln's limits", &format!("{memories} Wasm linear memories")],
    )
    .await;

    // Nothing of the above was registered.
    let (status, _) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&kiln, "/v1/kinds/other").await;
    assert_eq!(status, 404);
}

/// On an API with no worker yet: uploads kind `filter` as `v1` (manifest, component), queues an invert
/// job, replaces the kind by `v2` (checking that this is a new version) and queues another. Returns the
/// ids of the job before and the job after the replacement.
async fn jobs_around_a_replacement(api: &Kiln, v1: (&Value, &[u8]), v2: (&Value, &[u8])) -> (String, String) {
    let source = encode_png(&coordinate_image(20, 10));
    let invert = || json!({"ops": [{"op": "invert"}]});
    let v1 = upload_ok(api, "filter", v1.0, v1.1).await;
    let before = submit_ok(api, "filter", invert(), &source).await;
    let v2 = upload_ok(api, "filter", v2.0, v2.1).await;
    assert_ne!(v1["version"], v2["version"]);
    let after = submit_ok(api, "filter", invert(), &source).await;
    (before, after)
}

#[tokio::test]
async fn queued_jobs_run_on_the_version_they_were_submitted_for() {
    let redis = Redis::start();
    // The API alone: jobs stay queued until a worker starts.
    let api = Kiln::api_only(&redis, &[]);
    let (manifest, component) = filter_guest();
    // Replace the component by a different one (guest-hostile's, under filter's manifest).
    let (_, other_component) = test_guest("guest-hostile");
    let (before, after) = jobs_around_a_replacement(&api, (&manifest, &component), (&manifest, &other_component)).await;

    let _worker = Kiln::worker(&redis, &[]);
    // Submitted for v1: guest-filter's code runs it, though the kind is now v2.
    let doc = wait_final(&api, &before, JOB_TIMEOUT).await;
    let image = result_image(&api, &doc).await.to_rgb8();
    assert_eq!(image.get_pixel(3, 2).0, [252, 253, 127]);
    // Submitted for v2: guest-hostile's code runs it, and does not understand filter params.
    let doc = wait_final(&api, &after, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `mode`"),
        "{doc}"
    );
}

#[tokio::test]
async fn a_new_manifest_is_a_new_version_and_queued_jobs_keep_theirs() {
    let redis = Redis::start();
    // The API alone: jobs stay queued until a worker starts.
    let api = Kiln::api_only(&redis, &[]);
    let (manifest, component) = filter_guest();
    // The same component under a manifest that declares JPEG results: the filter's PNGs do not fit it.
    let mut jpeg = manifest.clone();
    jpeg["output_media_type"] = json!("image/jpeg");
    jpeg["output_media_types"] = json!(["image/jpeg"]);
    let (before, after) = jobs_around_a_replacement(&api, (&manifest, &component), (&jpeg, &component)).await;

    let _worker = Kiln::worker(&redis, &[]);
    // Submitted under v1's manifest: a PNG is what it declares.
    let doc = wait_final(&api, &before, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let image = result_image(&api, &doc).await.to_rgb8();
    assert_eq!(image.get_pixel(3, 2).0, [252, 253, 127]);
    // Submitted under v2's: the same code's PNG is not the JPEG it declares.
    let doc = wait_final(&api, &after, JOB_TIMEOUT).await;
    assert_eq!(doc["error"]["code"], "invalid-output", "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("image/jpeg"),
        "{doc}"
    );
}

#[tokio::test]
async fn a_retired_version_stays_while_a_job_needs_it_and_is_collected_after() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(
        &redis,
        &[
            "--kinds-dir",
            kinds.path().to_str().unwrap(),
            "--sweep-secs",
            "1",
            "--timeout-secs",
            "60",
        ],
    );
    let (hostile_manifest, hostile_component) = test_guest("guest-hostile");
    let v1 = version_of(&hostile_manifest, &hostile_component);
    let v1_component = format!("{{kiln}}:component:{}", kiln::kinds::component_hash(&hostile_component));
    let v1_record = format!("{{kiln}}:version:{v1}");
    let mut conn = redis.conn();
    let exists =
        |conn: &mut redis::Connection, key: &str| -> bool { redis::cmd("EXISTS").arg(key).query(conn).unwrap() };
    assert!(exists(&mut conn, &v1_record) && exists(&mut conn, &v1_component));

    // A job on v1 that outlasts the collection's grace (10 s) by far, then the kind is deleted (which
    // retires its whole history) and uploaded again as v2 (another component, under hostile's manifest).
    let id = submit_ok(&kiln, "hostile", json!({"mode": "sleep", "ms": 25_000}), b"x").await;
    let deleted = client().delete(kiln.url("/v1/kinds/hostile")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let (_, filter_component) = filter_guest();
    let v2 = upload_ok(&kiln, "hostile", &hostile_manifest, &filter_component).await;
    let v2_record = format!("{{kiln}}:version:{}", v2["version"].as_str().unwrap());
    let retired = std::time::Instant::now();

    tokio::time::sleep_until((retired + Duration::from_secs(12)).into()).await;
    let (_, doc) = get_json(&kiln, &format!("/v1/jobs/{id}")).await;
    assert_eq!(doc["status"], "running", "{doc}");
    assert!(exists(&mut conn, &v1_record), "v1 was collected while its job ran");
    assert!(exists(&mut conn, &v1_component));

    let doc = wait_final(&kiln, &id, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while exists(&mut conn, &v1_record) || exists(&mut conn, &v1_component) {
        assert!(
            std::time::Instant::now() < deadline,
            "v1 was not collected after its job ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(exists(&mut conn, &v2_record), "the kind's current version stays");
    let unfinished: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg("{kiln}:unfinished-by-version")
        .query(&mut conn)
        .unwrap();
    assert!(unfinished.is_empty(), "{unfinished:?}");
}

/// `component` grown to `size` bytes by a custom section (ignored by the compiler, kept in the bytes).
fn padded(component: &[u8], size: usize) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    // Section id, size (5 bytes at most), name length, name: the payload is what remains.
    let payload = size - component.len() - 1 - 5 - 1 - name.len();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(section.len() + payload, 0);
    let mut out = component.to_vec();
    out.push(0);
    let mut length = Vec::new();
    leb128(section.len(), &mut length);
    // Padded to five bytes (a valid LEB128 form), so the total comes out exact.
    while length.len() < 5 {
        *length.last_mut().unwrap() |= 0x80;
        length.push(0);
    }
    out.extend(length);
    out.extend(section);
    out
}

#[tokio::test]
async fn a_60_mb_component_uploads_as_multipart_and_a_bigger_one_is_refused() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let (manifest, component) = filter_guest();
    let big = padded(&component, 60_000_000);
    assert_eq!(big.len(), 60_000_000);
    let kind = upload_ok(&kiln, "filter", &manifest, &big).await;
    let (_, list) = get_json(&kiln, "/v1/kinds/filter/versions").await;
    assert_eq!(list["versions"][0]["component_bytes"], 60_000_000, "{list}");
    assert_eq!(list["current"], kind["version"]);
    let source = encode_png(&coordinate_image(20, 10));
    let image = run_filter(&kiln, json!({"ops": [{"op": "invert"}]}), &source)
        .await
        .to_rgb8();
    assert_eq!(image.get_pixel(3, 2).0, [252, 253, 127]);

    // Over the 64 MiB default (KILN_MAX_COMPONENT_MB): 413, and the kind stays as it was.
    let too_big = padded(&component, (64 << 20) + 1);
    let problem = expect_problem(upload(&kiln, "filter", &manifest, &too_big).await, 413).await;
    assert_detail_contains(&problem, "over the limit");
    let (_, shown) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(shown["version"], kind["version"]);
}

/// `PUT /v1/kinds/{name}/current` with `{"version": version}`.
async fn use_version(kiln: &Kiln, name: &str, version: &str) -> reqwest::Response {
    client()
        .put(kiln.url(&format!("/v1/kinds/{name}/current")))
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_upload_is_a_version_that_can_be_listed_pinned_and_made_current_again() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let source = encode_png(&coordinate_image(20, 10));
    let invert = || json!({"ops": [{"op": "invert"}]});
    let (manifest, component) = filter_guest();
    // v2: guest-hostile's code under filter's manifest, which does not understand filter params.
    let (_, other_component) = test_guest("guest-hostile");
    let v1 = upload_ok(&kiln, "filter", &manifest, &component).await["version"].clone();
    let v2 = upload_ok(&kiln, "filter", &manifest, &other_component).await["version"].clone();

    let (status, list) = get_json(&kiln, "/v1/kinds/filter/versions").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "filter");
    assert_eq!(list["current"], v2);
    let versions = list["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{list}");
    assert_eq!((&versions[0]["version"], &versions[0]["current"]), (&v2, &json!(true)));
    assert_eq!((&versions[1]["version"], &versions[1]["current"]), (&v1, &json!(false)));
    assert_eq!(versions[0]["component_bytes"], other_component.len());
    assert_eq!(versions[1]["component_bytes"], component.len());
    let uploaded = |v: &Value| {
        time::OffsetDateTime::parse(
            v["uploaded_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(uploaded(&versions[0]) >= uploaded(&versions[1]), "{list}");
    assert!(time::OffsetDateTime::now_utc() - uploaded(&versions[1]) < time::Duration::minutes(5));

    // A pinned submit runs v1's code; an unpinned one the current v2's.
    let form = || {
        Form::new()
            .text("params", invert().to_string())
            .part("input", Part::bytes(source.clone()).file_name("in.png"))
    };
    let pinned = client()
        .post(kiln.url(&format!("/v1/jobs/filter?version={}", v1.as_str().unwrap())))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(pinned.status(), 202);
    let pinned: Value = pinned.json().await.unwrap();
    let doc = wait_final(&kiln, pinned["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert_eq!(
        result_image(&kiln, &doc).await.to_rgb8().get_pixel(3, 2).0,
        [252, 253, 127]
    );
    let unpinned = submit_ok(&kiln, "filter", invert(), &source).await;
    let doc = wait_final(&kiln, &unpinned, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "failed", "{doc}");

    // A version the kind does not have is refused at submit, never a failed job.
    let bogus = client()
        .post(kiln.url("/v1/jobs/filter?version=0123abcd"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    let problem = expect_problem(bogus, 422).await;
    assert!(
        problem["type"].as_str().unwrap().ends_with("unknown-version"),
        "{problem}"
    );
    assert_detail_contains(&problem, "GET /v1/kinds/filter/versions");

    // v1 current again, with no upload: unpinned jobs run it.
    let response = use_version(&kiln, "filter", v1.as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let kind: Value = response.json().await.unwrap();
    assert_eq!(kind["version"], v1);
    let (_, shown) = get_json(&kiln, "/v1/kinds/filter").await;
    assert_eq!(shown["version"], v1);
    // Another input than the pinned job's, so that the result cache does not answer it.
    let other_source = encode_png(&coordinate_image(21, 10));
    let id = submit_ok(&kiln, "filter", invert(), &other_source).await;
    let doc = wait_final(&kiln, &id, JOB_TIMEOUT).await;
    assert_eq!(
        result_image(&kiln, &doc).await.to_rgb8().get_pixel(3, 2).0,
        [252, 253, 127]
    );
    let (_, list) = get_json(&kiln, "/v1/kinds/filter/versions").await;
    assert_eq!(list["current"], v1);
    assert_eq!(list["versions"][1]["current"], true, "{list}");

    // Bad requests to make a version current.
    expect_problem(use_version(&kiln, "filter", "0123abcd").await, 422).await;
    expect_problem(use_version(&kiln, "nope", v1.as_str().unwrap()).await, 404).await;
    let bad_body = client()
        .put(kiln.url("/v1/kinds/filter/current"))
        .json(&json!({"versio": "x"}))
        .send()
        .await
        .unwrap();
    expect_problem(bad_body, 400).await;

    // The history keeps the last 20 uploads: the oldest (v1) goes, and can be pinned no more.
    for n in 0..kiln::store::MAX_KIND_VERSIONS - 1 {
        let mut changed = manifest.clone();
        changed["description"] = json!(format!("upload {n}"));
        upload_ok(&kiln, "filter", &changed, &component).await;
    }
    let (_, list) = get_json(&kiln, "/v1/kinds/filter/versions").await;
    let listed: Vec<&Value> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(listed.len(), kiln::store::MAX_KIND_VERSIONS, "{list}");
    assert!(listed.contains(&&v2) && !listed.contains(&&v1), "{list}");
    expect_problem(use_version(&kiln, "filter", v1.as_str().unwrap()).await, 422).await;

    // Deleted: no versions to list.
    let deleted = client().delete(kiln.url("/v1/kinds/filter")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _) = get_json(&kiln, "/v1/kinds/filter/versions").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn start_up_registration_keeps_an_admins_changes_to_built_in_kinds() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let dir = kinds.path().to_str().unwrap().to_owned();
    let serve = || Kiln::serve(&redis, &["--kinds-dir", &dir]);
    let mut kiln = serve();
    // The admin deletes `crop` and puts their own `plot` (guest-filter's code) in place of Kiln's.
    let response = client().delete(kiln.url("/v1/kinds/crop")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let (mut filter_manifest, filter_component) = filter_guest();
    filter_manifest["name"] = json!("plot");
    let own_plot = upload_ok(&kiln, "plot", &filter_manifest, &filter_component).await;
    let (_, hostile_v1) = get_json(&kiln, "/v1/kinds/hostile").await;

    // A new `hostile` ships (another manifest in --kinds-dir); restart.
    let manifest_path = kinds.path().join("hostile.json");
    let mut shipped: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    shipped["description"] = json!("A newer hostile.");
    std::fs::write(&manifest_path, shipped.to_string()).unwrap();
    kiln.terminate();
    assert!(kiln.wait_exit(Duration::from_secs(30)).is_some());
    drop(kiln);
    let kiln = serve();

    let (status, _) = get_json(&kiln, "/v1/kinds/crop").await;
    assert_eq!(status, 404, "the admin deleted crop; a restart does not bring it back");
    let (_, plot) = get_json(&kiln, "/v1/kinds/plot").await;
    assert_eq!(plot["version"], own_plot["version"], "the admin's plot stays");
    let (_, hostile) = get_json(&kiln, "/v1/kinds/hostile").await;
    assert_eq!(hostile["description"], "A newer hostile.", "untouched, so upgraded");
    assert_ne!(hostile["version"], hostile_v1["version"]);
}
