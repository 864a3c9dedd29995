//! Scheduled VACUUM FREEZE, the deciding part: cron schedules in a time zone (`schedule`) and the
//! order and statuses of a run (`plan`).

pub mod plan;
pub mod schedule;
