//! `kiln pipeline SPEC`: submits a pipeline (`POST /v1/pipelines`) whose steps (and outputs) are
//! `SPEC`, on an input file, blob or job result; with `--wait`/`--out`, follows it to its end and saves
//! its result (and each named output as `<id>-<name>.png`). stdout: `<id>\t<status>`.

use super::commands::{download, extension, save};
use super::submit::read_params;
use super::{EXIT_JOB_FAILED, Failure, Job, Remote, path_segment};
use crate::config::PipelineArgs;
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

pub async fn run(args: PipelineArgs) -> Result<(), Failure> {
    let remote = Remote::new(&args.remote)?;
    let mut body = Value::Object(read_params(Some(&args.spec))?);
    match (&args.input, &args.input_blob, &args.input_job) {
        (Some(path), _, _) => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| Failure::refused(format!("cannot read {}: {e}", path.display())))?;
            body["input_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        (None, Some(blob), _) => body["input"] = json!({ "blob": blob }),
        (None, None, Some(job)) => body["input"] = json!({ "job": job }),
        (None, None, None) => {}
    }
    let request = remote
        .request(Method::POST, "/v1/pipelines")
        .timeout(std::time::Duration::from_secs(300))
        .json(&body);
    let submitted: Job = remote.json(request).await?;
    if !(args.wait || args.out.is_some()) {
        println!("{}\t{}", submitted.id, submitted.status);
        return Ok(());
    }
    let ended = remote.wait_final(&submitted.id, |_| {}).await?;
    println!("{}\t{}", ended.id, ended.status);
    if ended.status != "succeeded" {
        return Err(Failure::new(
            EXIT_JOB_FAILED,
            format!("pipeline {} {}: {}", ended.id, ended.status, ended.reason()),
        ));
    }
    let Some(out) = &args.out else { return Ok(()) };
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::refused(format!("cannot create --out folder {}: {e}", out.display())))?;
    let bytes = download(&remote, &ended.id).await?;
    save(&out.join(format!("{}.{}", ended.id, extension(&bytes))), &bytes)?;
    let outputs: Vec<String> = body["outputs"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for name in outputs {
        let path = format!("/v1/jobs/{}/result/{}", path_segment(&ended.id), path_segment(&name));
        let response = remote.send(remote.request(Method::GET, &path)).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::refused(format!("the download of output `{name}` broke off: {e}")))?;
        save(&out.join(format!("{}-{name}.{}", ended.id, extension(&bytes))), &bytes)?;
    }
    eprintln!("kiln: results saved in {}", out.display());
    Ok(())
}
