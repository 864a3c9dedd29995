//! Freeze job schedules: pg_cron-compatible five-field cron expressions (minute, hour, day of
//! month, month, day of week; `@daily`-style nicknames), parsed by croner, evaluated in the job's
//! IANA time zone. Pure.
//!
//! Semantics follow Vixie cron and pg_cron: when both day of month and day of week are
//! restricted, a day matching either runs the job; Sunday is 0 or 7. A missed occurrence (the
//! server was down) runs once when the launcher next looks, not once per missed slot.

use crate::error::Result;
use crate::invalid;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `expr` in time zone `tz`, or says what is wrong in terms a DBA can act on.
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule> {
        let fields = expr.split_whitespace().count();
        if !expr.trim_start().starts_with('@') && fields != 5 {
            return Err(invalid!(
                "schedule \"{expr}\" has {fields} fields; use 5 (minute hour day-of-month month day-of-week), \
                 e.g. \"0 3 * * 0\" for Sundays at 03:00"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(expr)
            .map_err(|e| invalid!("schedule \"{expr}\" is not a cron expression: {e}"))?;
        let tz = Tz::from_str(tz)
            .map_err(|_| invalid!("time zone \"{tz}\" is unknown; use an IANA name such as UTC or Europe/Paris"))?;
        // A pattern that never fires (30 February) is an error, not a job that silently never runs.
        Schedule { cron: cron.clone(), tz }
            .next_after(Utc::now())
            .ok_or_else(|| invalid!("schedule \"{expr}\" never fires"))?;
        Ok(Schedule { cron, tz })
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Whether an occurrence fell in (`after`, `now`]: the job is due.
    pub fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(after).filter(|n| *n <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn weekly_sunday_three_am() {
        let s = Schedule::parse("0 3 * * 0", "UTC").unwrap();
        // 2026-11-21 is a Saturday.
        assert_eq!(s.next_after(utc(2026, 11, 21, 12, 0)), Some(utc(2026, 11, 22, 3, 0)));
        assert_eq!(s.next_after(utc(2026, 11, 22, 3, 0)), Some(utc(2026, 11, 29, 3, 0)));
        // Sunday is 7 too.
        let s7 = Schedule::parse("0 3 * * 7", "UTC").unwrap();
        assert_eq!(s7.next_after(utc(2026, 11, 21, 12, 0)), Some(utc(2026, 11, 22, 3, 0)));
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // 03:00 in Paris is 02:00 UTC in winter and 01:00 UTC in summer.
        let s = Schedule::parse("0 3 * * *", "Europe/Paris").unwrap();
        assert_eq!(s.next_after(utc(2026, 11, 21, 12, 0)), Some(utc(2026, 11, 22, 2, 0)));
        assert_eq!(s.next_after(utc(2026, 7, 1, 12, 0)), Some(utc(2026, 7, 2, 1, 0)));
    }

    #[test]
    fn day_of_month_or_day_of_week_like_cron() {
        // "the 1st, or any Monday"
        let s = Schedule::parse("0 0 1 * 1", "UTC").unwrap();
        assert_eq!(s.next_after(utc(2026, 11, 24, 0, 0)), Some(utc(2026, 11, 30, 0, 0))); // a Monday
        assert_eq!(s.next_after(utc(2026, 11, 30, 0, 0)), Some(utc(2026, 12, 1, 0, 0)));
    }

    #[test]
    fn steps_ranges_lists_nicknames() {
        let s = Schedule::parse("*/15 1-2 * * 1,3", "UTC").unwrap();
        assert_eq!(s.next_after(utc(2026, 11, 23, 1, 7)), Some(utc(2026, 11, 23, 1, 15)));
        let d = Schedule::parse("@daily", "UTC").unwrap();
        assert_eq!(d.next_after(utc(2026, 11, 21, 12, 0)), Some(utc(2026, 11, 22, 0, 0)));
    }

    #[test]
    fn due_only_once_per_occurrence() {
        let s = Schedule::parse("* * * * *", "UTC").unwrap();
        let last = utc(2026, 11, 21, 12, 0);
        assert_eq!(s.due(last, utc(2026, 11, 21, 12, 0)), None);
        assert_eq!(s.due(last, utc(2026, 11, 21, 12, 1)), Some(utc(2026, 11, 21, 12, 1)));
        // Down for an hour: due once (the first missed slot), not sixty times.
        assert_eq!(s.due(last, utc(2026, 11, 21, 13, 0)), Some(utc(2026, 11, 21, 12, 1)));
    }

    #[test]
    fn clear_errors() {
        let e = Schedule::parse("0 3 * *", "UTC").unwrap_err();
        assert!(e.message.contains("has 4 fields; use 5"), "{e}");
        let e = Schedule::parse("0 0 3 * * 0", "UTC").unwrap_err();
        assert!(e.message.contains("has 6 fields"), "{e}");
        let e = Schedule::parse("61 3 * * 0", "UTC").unwrap_err();
        assert!(e.message.contains("is not a cron expression"), "{e}");
        let e = Schedule::parse("0 3 * * 0", "Mars/Olympus").unwrap_err();
        assert!(e.message.contains("time zone \"Mars/Olympus\" is unknown"), "{e}");
        let e = Schedule::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(e.message.contains("never fires"), "{e}");
    }
}
