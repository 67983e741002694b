//! Pipelines: one job that runs several kinds in order, each step in a fresh sandbox with its kind's
//! limits, each step's output the next one's input. A pipeline is stored as a job of kind
//! [`PIPELINE_KIND`] whose params are its [`Plan`] (every step pinned to the kind version current at
//! submit) and whose `version` lists those versions, comma-separated, so each stays while the job needs
//! it. Each finished step's output is kept beside the job, so a retry starts again at the failed step.

use crate::job::JobError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `kind` of a pipeline job; no kind may be registered under this name.
pub const PIPELINE_KIND: &str = "pipeline";

/// Most steps in one chain: the shared steps, or one output's.
pub const MAX_STEPS: usize = 8;
/// Most named outputs of one pipeline.
pub const MAX_OUTPUTS: usize = 8;

/// What a pipeline job runs: the shared steps, then, for a fan-out, each named output's steps on the
/// shared steps' output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Vec<PlannedStep>>,
    /// Whether steps may be answered from the result cache (`"cache": false` at submit: never).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub cache: bool,
}

fn yes() -> bool {
    true
}

/// A name of a pipeline's output: it is a path segment (`/v1/jobs/{id}/result/{name}`).
pub fn is_valid_output_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub kind: String,
    pub version: String,
    pub params: serde_json::Value,
}

impl Plan {
    /// Every step in the order it runs, with the output it belongs to (`None`: shared).
    pub fn all_steps(&self) -> impl Iterator<Item = (Option<&str>, &PlannedStep)> {
        let shared = self.steps.iter().map(|step| (None, step));
        let outputs = self
            .outputs
            .iter()
            .flat_map(|(name, steps)| steps.iter().map(move |step| (Some(name.as_str()), step)));
        shared.chain(outputs)
    }

    /// The job's `version` field: every step's version, so that each is held until the job ends.
    pub fn versions(&self) -> String {
        let mut versions: Vec<&str> = self.all_steps().map(|(_, s)| s.version.as_str()).collect();
        versions.sort_unstable();
        versions.dedup();
        versions.join(",")
    }

    /// The steps' states before any has run.
    pub fn pending(&self) -> Vec<StepState> {
        self.all_steps()
            .map(|(output, step)| StepState {
                kind: step.kind.clone(),
                output: output.map(str::to_owned),
                status: StepStatus::Pending,
                started_at: None,
                finished_at: None,
                cached: false,
                media_type: None,
                error: None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// A step as the job document shows it (`steps`), kept in the job's `steps` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepState {
    pub kind: String,
    /// The named output this step belongs to; none for a shared step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub status: StepStatus,
    /// Unix milliseconds in Redis; the API shows RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Answered from the result cache: not run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// What the step made, once it succeeded (a named output's media type is its last step's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

/// A step's failure as the job's: the same code, the message naming the step.
pub fn step_error(index: usize, steps: usize, kind: &str, error: &JobError) -> JobError {
    JobError::new(
        error.code,
        format!("step {} of {steps} (`{kind}`) failed: {}", index + 1, error.message),
    )
}
