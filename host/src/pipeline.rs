//! Pipelines: one job that runs several kinds in order, each step in a fresh sandbox with its kind's
//! limits, each step's output the next one's input. A pipeline is stored as a job of kind
//! [`PIPELINE_KIND`] whose params are its [`Plan`] (every step pinned to the kind version current at
//! submit) and whose `version` lists those versions, comma-separated, so each stays while the job needs
//! it. Each finished step's output is kept beside the job, so a retry starts again at the failed step.

use crate::job::JobError;
use serde::{Deserialize, Serialize};

/// The `kind` of a pipeline job; no kind may be registered under this name.
pub const PIPELINE_KIND: &str = "pipeline";

/// Most steps one pipeline may have.
pub const MAX_STEPS: usize = 8;

/// What a pipeline job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub kind: String,
    pub version: String,
    pub params: serde_json::Value,
}

impl Plan {
    /// The job's `version` field: every step's version, so that each is held until the job ends.
    pub fn versions(&self) -> String {
        self.steps
            .iter()
            .map(|s| s.version.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The steps' states before any has run.
    pub fn pending(&self) -> Vec<StepState> {
        self.steps
            .iter()
            .map(|step| StepState {
                kind: step.kind.clone(),
                status: StepStatus::Pending,
                started_at: None,
                finished_at: None,
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
    pub status: StepStatus,
    /// Unix milliseconds in Redis; the API shows RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
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
