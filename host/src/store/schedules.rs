//! Recurring schedules (`POST /v1/schedules`): their definitions, the due zset the API's timer reads, and
//! the claim that makes one job per due time (`fire_schedule.lua`, which wraps `submit.lua`).

use super::{InputRef, JobInput, NewJob, Result, Store, StoreError, Submitted, keys};
use crate::job::{JobId, Priority};
use redis::AsyncCommands;
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;

static ADD_SCHEDULE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/add_schedule.lua")));
static DELETE_SCHEDULE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/delete_schedule.lua")));
/// `fire_schedule.lua` with `submit.lua`'s body (less its shebang line) as a function at `--[[SUBMIT]]`:
/// one copy of the submit logic, so a schedule's job passes exactly the checks a submit does.
static FIRE_SCHEDULE: LazyLock<Script> = LazyLock::new(|| {
    let submit = include_str!("lua/submit.lua");
    let body = submit.split_once('\n').map_or(submit, |(_shebang, body)| body);
    Script::new(&include_str!("lua/fire_schedule.lua").replace("--[[SUBMIT]]", body))
});

/// A recurring schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    pub id: JobId,
    pub tenant: String,
    pub cron: String,
    pub kind: String,
    pub params: String,
    pub priority: Priority,
    /// The input it was made with, as named (`blob:sha256:<hex>`, `job:<id>`); its copy is the schedule's.
    pub input: Option<String>,
    pub created_at: i64,
    pub next_at: i64,
    /// The due time of the last job it made, and that job.
    pub last_at: Option<i64>,
    pub last_job: Option<JobId>,
    /// Why the last skipped due time was skipped (a quota, the kind gone), and that due time.
    pub last_error: Option<(String, i64)>,
    pub fired: u64,
    pub skipped: u64,
}

/// A schedule to add.
pub struct NewSchedule<'a> {
    pub id: JobId,
    pub tenant: &'a str,
    pub cron: &'a str,
    pub kind: &'a str,
    pub params: &'a str,
    pub priority: Priority,
    /// Where its input copy comes from, as named by the caller, and the kind's largest input (0: none).
    pub input: Option<(InputRef<'a>, &'a str, u64)>,
    pub first_due: i64,
    pub max_schedules: u32,
    pub max_bytes: u64,
}

/// Why a schedule was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddScheduleRefused {
    /// The tenant has this many already.
    Limit(u64),
    InputGone,
    InputTooBig(u64),
    OverBytes(u64),
}

/// What one attempt to fire a due time did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// Another process fired this due time, or the schedule is gone.
    Lost,
    /// The due time was skipped as asked.
    Skipped,
    /// The submit ran: `Submitted::New` made the job; anything else skipped the due time (recorded).
    Submitted(Submitted),
}

impl Store {
    pub async fn add_schedule(&self, new: &NewSchedule<'_>) -> Result<std::result::Result<(), AddScheduleRefused>> {
        let mut conn = self.conn.clone();
        let id = new.id.to_string();
        let (source, named, max_input) = match new.input {
            Some((from, named, max_input)) => (input_key(new.tenant, from), named, max_input),
            None => (String::new(), "", 0),
        };
        let mut invocation = ADD_SCHEDULE.prepare_invoke();
        invocation
            .key(keys::SCHEDULES)
            .key(keys::schedule(new.tenant, new.id))
            .key(keys::schedules_of(new.tenant))
            .key(keys::schedule_input(new.tenant, new.id))
            .key(keys::BYTES_HELD)
            .arg(keys::member(new.tenant, new.id))
            .arg(new.first_due)
            .arg(new.max_schedules)
            .arg(source)
            .arg(new.max_bytes)
            .arg(max_input)
            .arg(new.tenant)
            .arg(&id)
            .arg(new.params.len())
            .arg(&["id", &id, "tenant", new.tenant, "cron", new.cron, "kind", new.kind])
            .arg(&["params", new.params, "priority", new.priority.as_str()])
            .arg(&[
                "created_at",
                &new.id
                    .created_millis()
                    .unwrap_or_else(crate::job::now_millis)
                    .to_string(),
            ]);
        if new.input.is_some() {
            invocation.arg(&["input", named]);
        }
        let answer: String = invocation.invoke_async(&mut conn).await?;
        let limit = |text: &str| {
            text.parse()
                .map_err(|_| StoreError::Corrupt(format!("add_schedule.lua answered `{answer}`")))
        };
        Ok(match answer.split_once(':') {
            None if answer == "ok" => Ok(()),
            Some(("limit", n)) => Err(AddScheduleRefused::Limit(limit(n)?)),
            Some(("ref", "missing")) => Err(AddScheduleRefused::InputGone),
            Some(("ref", n)) => Err(AddScheduleRefused::InputTooBig(limit(
                n.trim_start_matches("too-big:"),
            )?)),
            Some(("quota", n)) => Err(AddScheduleRefused::OverBytes(limit(n.trim_start_matches("bytes:"))?)),
            _ => return Err(StoreError::Corrupt(format!("add_schedule.lua answered `{answer}`"))),
        })
    }

    /// Deletes a schedule and releases what it held; false if there is no such schedule.
    pub async fn delete_schedule(&self, tenant: &str, id: JobId) -> Result<bool> {
        let mut conn = self.conn.clone();
        let deleted: i64 = DELETE_SCHEDULE
            .key(keys::SCHEDULES)
            .key(keys::schedule(tenant, id))
            .key(keys::schedules_of(tenant))
            .key(keys::schedule_input(tenant, id))
            .key(keys::BYTES_HELD)
            .arg(keys::member(tenant, id))
            .arg(tenant)
            .arg(id.to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(deleted == 1)
    }

    pub async fn schedule(&self, tenant: &str, id: JobId) -> Result<Option<ScheduleRecord>> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn.hgetall(keys::schedule(tenant, id)).await?;
        parse_schedule(id, fields)
    }

    /// The tenant's schedules, oldest first (at most the per-tenant limit, so one pipelined read).
    pub async fn schedules(&self, tenant: &str) -> Result<Vec<ScheduleRecord>> {
        let mut conn = self.conn.clone();
        // UUIDv7 ids: their text order is their creation order.
        let mut ids: Vec<String> = conn.smembers(keys::schedules_of(tenant)).await?;
        ids.sort();
        let ids: Vec<JobId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(keys::schedule(tenant, *id));
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let mut schedules = Vec::new();
        for (id, fields) in ids.into_iter().zip(all) {
            schedules.extend(parse_schedule(id, fields)?);
        }
        Ok(schedules)
    }

    /// Up to `limit` schedules due by `now` (ms): `(tenant, id, due time)`. One round trip.
    pub async fn due_schedules(&self, now: i64, limit: usize) -> Result<Vec<(String, JobId, i64)>> {
        let mut conn = self.conn.clone();
        let due: Vec<(String, f64)> = conn
            .zrangebyscore_limit_withscores(keys::SCHEDULES, "-inf", now, 0, limit as isize)
            .await?;
        Ok(due
            .into_iter()
            .filter_map(|(member, score)| {
                let (tenant, id) = member.split_once('/')?;
                Some((tenant.to_owned(), id.parse().ok()?, score as i64))
            })
            .collect())
    }

    /// Fires the schedule's due time `due` (the score seen) and moves it on to `next`: makes `job` (its
    /// input copied from the schedule's own), or with `skip`, records why the due time makes none.
    pub async fn fire_schedule(
        &self,
        schedule: JobId,
        due: i64,
        next: i64,
        job: NewJob<'_>,
        skip: Option<&str>,
    ) -> Result<Fired> {
        let mut conn = self.conn.clone();
        let mut invocation = FIRE_SCHEDULE.prepare_invoke();
        self.submit_args(&mut invocation, &job);
        invocation
            .arg(keys::member(job.tenant, schedule))
            .arg(due)
            .arg(next)
            .arg(keys::schedule(job.tenant, schedule))
            .arg(schedule.to_string())
            .arg(skip.unwrap_or_default());
        let answer: String = invocation.invoke_async(&mut conn).await?;
        Ok(match answer.as_str() {
            "lost" => Fired::Lost,
            "skipped" => Fired::Skipped,
            _ => Fired::Submitted(super::parse_submitted(&answer)?),
        })
    }
}

/// The key an input reference names (`submit.lua` copies from it).
pub(super) fn input_key(tenant: &str, from: InputRef<'_>) -> String {
    match from {
        InputRef::Blob(hex) => keys::blob(tenant, hex),
        InputRef::JobResult(id) => keys::result(tenant, id),
        InputRef::JobInput(id) => keys::input(tenant, id),
        InputRef::Schedule(id) => keys::schedule_input(tenant, id),
    }
}

/// The input of a schedule's job: its own copy, if it has an input.
pub fn schedule_job_input(record: &ScheduleRecord, max_bytes: u64) -> JobInput<'static> {
    match record.input {
        Some(_) => JobInput::Copy {
            from: InputRef::Schedule(record.id),
            max_bytes,
        },
        None => JobInput::None,
    }
}

fn parse_schedule(id: JobId, mut f: HashMap<String, String>) -> Result<Option<ScheduleRecord>> {
    if f.is_empty() {
        return Ok(None);
    }
    let corrupt = |field: &str| StoreError::Corrupt(format!("schedule {id}: field `{field}` is missing or malformed"));
    let mut text = |field: &str| f.remove(field).ok_or_else(|| corrupt(field));
    let tenant = text("tenant")?;
    let cron = text("cron")?;
    let kind = text("kind")?;
    let params = text("params")?;
    let mut number = |field: &str| -> Result<Option<i64>> {
        f.remove(field)
            .map(|v| v.parse::<i64>().map_err(|_| corrupt(field)))
            .transpose()
    };
    let created_at = number("created_at")?.ok_or_else(|| corrupt("created_at"))?;
    let next_at = number("next_at")?.ok_or_else(|| corrupt("next_at"))?;
    let last_at = number("last_at")?;
    let last_error_at = number("last_error_at")?;
    let fired = number("fired")?.unwrap_or(0) as u64;
    let skipped = number("skipped")?.unwrap_or(0) as u64;
    Ok(Some(ScheduleRecord {
        id,
        tenant,
        cron,
        kind,
        params,
        priority: f.remove("priority").and_then(|p| p.parse().ok()).unwrap_or_default(),
        input: f.remove("input"),
        created_at,
        next_at,
        last_at,
        last_job: f.remove("last_job").and_then(|id| id.parse().ok()),
        last_error: f.remove("last_error").map(|why| (why, last_error_at.unwrap_or(0))),
        fired,
        skipped,
    }))
}
