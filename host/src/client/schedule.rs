//! `kiln schedule add|list|rm`: recurring schedules over HTTP (`/v1/schedules`).

use super::commands::print_stdout;
use super::{Failure, Remote, field, path_segment};
use crate::config::ScheduleCommand;
use reqwest::Method;
use serde_json::{Value, json};

pub async fn run(command: ScheduleCommand) -> Result<(), Failure> {
    match command {
        ScheduleCommand::Add {
            cron,
            kind,
            params,
            input_blob,
            priority,
            remote,
        } => {
            let params: Value =
                serde_json::from_str(&params).map_err(|e| Failure::refused(format!("--params is not JSON: {e}")))?;
            let mut body = json!({"cron": cron, "kind": kind, "params": params});
            if let Some(blob) = input_blob {
                body["input"] = json!({"blob": blob});
            }
            if let Some(priority) = priority {
                body["priority"] = json!(priority);
            }
            let remote = Remote::new(&remote)?;
            let schedule: Value = remote
                .json(remote.request(Method::POST, "/v1/schedules").json(&body))
                .await?;
            print_stdout(&format!("{}\t{}\n", text(&schedule["id"]), text(&schedule["next_at"])))
        }
        ScheduleCommand::List { remote } => {
            let remote = Remote::new(&remote)?;
            let list: Value = remote.json(remote.request(Method::GET, "/v1/schedules")).await?;
            let mut out = String::new();
            for s in list["schedules"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{}\t{}\t{}\tnext {}\tfired {}\tskipped {}\t{}\n",
                    text(&s["id"]),
                    field(&text(&s["cron"])),
                    text(&s["kind"]),
                    text(&s["next_at"]),
                    s["fired"],
                    s["skipped"],
                    field(&text(&s["last_error"]["message"])),
                ));
            }
            print_stdout(&out)
        }
        ScheduleCommand::Rm { id, remote } => {
            let remote = Remote::new(&remote)?;
            remote
                .send(remote.request(Method::DELETE, &format!("/v1/schedules/{}", path_segment(&id))))
                .await?;
            Ok(())
        }
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}
