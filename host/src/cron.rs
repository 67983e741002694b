//! The cron expressions of recurring schedules (`POST /v1/schedules`), parsed by the `croner` crate.
//!
//! Standard 5-field cron (`minute hour day-of-month month day-of-week`), or 6 fields with seconds first
//! (`*/2 * * * * *`, every 2 s). No year field. Times are UTC. A schedule's due times must lie at least
//! the operator's minimum interval apart (`KILN_MIN_SCHEDULE_SECS`), checked over its next due times.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};

/// The longest expression accepted, in bytes.
pub const MAX_CRON_LEN: usize = 128;

/// How many due times ahead the minimum interval is checked over (an expression like `0,1 * * * *`
/// has uneven gaps).
const INTERVAL_CHECKS: usize = 16;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr(croner::Cron);

impl CronExpr {
    /// Parses `expr` and checks that its due times lie at least `min_secs` apart; the error says why not.
    pub fn parse(expr: &str, min_secs: u32) -> Result<Self, String> {
        if expr.len() > MAX_CRON_LEN {
            return Err(format!("the cron expression is longer than {MAX_CRON_LEN} bytes"));
        }
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "`{expr}` has {fields} fields; a cron expression has 5 (minute hour day-of-month month day-of-week) \
                 or 6 (seconds first)"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(expr)
            .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
        let parsed = Self(cron);
        let now = crate::job::now_millis();
        let mut at = parsed
            .next_after(now)
            .ok_or_else(|| format!("`{expr}` has no due time ahead"))?;
        for _ in 0..INTERVAL_CHECKS {
            let Some(next) = parsed.next_after(at) else { break };
            if next - at < i64::from(min_secs) * 1000 {
                return Err(format!(
                    "`{expr}` is due every {} s at times; schedules may fire at most every {min_secs} s \
                     (KILN_MIN_SCHEDULE_SECS)",
                    (next - at) / 1000
                ));
            }
            at = next;
        }
        Ok(parsed)
    }

    /// The first due time strictly after `ms` (Unix ms), if there is one.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let start: DateTime<Utc> = DateTime::from_timestamp_millis(ms)?;
        let next = self.0.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2030-01-01T00:00:00Z.
    const MIDNIGHT: i64 = 1_893_456_000_000;

    #[test]
    fn five_fields_are_minutes_and_six_have_seconds() {
        let every_5_min = CronExpr::parse("*/5 * * * *", 60).unwrap();
        assert_eq!(every_5_min.next_after(MIDNIGHT), Some(MIDNIGHT + 300_000));
        assert_eq!(every_5_min.next_after(MIDNIGHT + 1), Some(MIDNIGHT + 300_000));
        let every_2_s = CronExpr::parse("*/2 * * * * *", 1).unwrap();
        assert_eq!(every_2_s.next_after(MIDNIGHT), Some(MIDNIGHT + 2_000));
        assert_eq!(every_2_s.next_after(MIDNIGHT + 1_999), Some(MIDNIGHT + 2_000));
    }

    #[test]
    fn bad_expressions_and_too_short_intervals_are_refused() {
        for bad in ["", "* * * *", "* * * * * * *", "61 * * * *", "nonsense here a b c"] {
            assert!(CronExpr::parse(bad, 1).is_err(), "{bad}");
        }
        let too_often = CronExpr::parse("*/2 * * * * *", 60).unwrap_err();
        assert!(too_often.contains("KILN_MIN_SCHEDULE_SECS"), "{too_often}");
        // Uneven gaps: 0 and 1 past the hour are a minute apart.
        assert!(CronExpr::parse("0,1 * * * *", 120).is_err());
        assert!(CronExpr::parse("0 * * * *", 3600).is_ok());
        assert!(CronExpr::parse(&"1".repeat(200), 1).is_err());
    }
}
