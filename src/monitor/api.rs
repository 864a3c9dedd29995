//! SQL surface of the wraparound forecast (the other monitoring views are plain SQL, sql/monitor.sql).

use pgrx::prelude::*;
use serde::Deserialize;

use super::forecast::{WRAP_LIMIT, XID_STOP_MARGIN, rates, seconds_until};

#[derive(Deserialize)]
struct DbAge {
    database: String,
    xid_age: i64,
    mxid_age: i64,
}

#[derive(Deserialize)]
struct Limits {
    freeze_max_age: i64,
    multixact_freeze_max_age: i64,
    /// PG14+ only.
    failsafe_age: Option<i64>,
    multixact_failsafe_age: Option<i64>,
    databases: Vec<DbAge>,
}

/// Rows of `pgops.wraparound_forecast`: per database, the burn rates from pgops.xid_samples and
/// the seconds until the XID/MXID ages reach autovacuum's forced-freeze age, the failsafe age
/// (PG14+) and the stop limit. NULL figures come with a reason.
#[pg_extern(volatile, parallel_unsafe)]
fn _wraparound_forecast() -> TableIterator<
    'static,
    (
        name!(database, String),
        name!(xid_age, i64),
        name!(mxid_age, i64),
        name!(xids_per_second, Option<f64>),
        name!(mxids_per_second, Option<f64>),
        name!(window_seconds, Option<f64>),
        name!(seconds_to_freeze_max_age, Option<f64>),
        name!(seconds_to_failsafe, Option<f64>),
        name!(seconds_to_stop_limit, Option<f64>),
        name!(mxid_seconds_to_freeze_max_age, Option<f64>),
        name!(mxid_seconds_to_failsafe, Option<f64>),
        name!(mxid_seconds_to_stop_limit, Option<f64>),
        name!(reason, Option<String>),
    ),
> {
    let limits: Limits = crate::spi::get_one::<pgrx::JsonB>(
        "SELECT jsonb_build_object(
            'freeze_max_age', current_setting('autovacuum_freeze_max_age')::bigint,
            'multixact_freeze_max_age', current_setting('autovacuum_multixact_freeze_max_age')::bigint,
            'failsafe_age', current_setting('vacuum_failsafe_age', true)::bigint,
            'multixact_failsafe_age', current_setting('vacuum_multixact_failsafe_age', true)::bigint,
            'databases', (SELECT jsonb_agg(jsonb_build_object('database', datname, 'xid_age', age(datfrozenxid),
                                                              'mxid_age', mxid_age(datminmxid)) ORDER BY datname)
                          FROM pg_catalog.pg_database))",
    )
    .ok()
    .flatten()
    .and_then(|j| serde_json::from_value(j.0).ok())
    .unwrap_or_else(|| crate::internal!("pgops.wraparound_forecast: cannot read the database ages"));
    let samples: Option<Vec<_>> = super::sampler::ring().map(|r| r.share().samples.iter().copied().collect());
    let rates = match samples {
        None => Err("no samples: pgops is not in shared_preload_libraries".to_string()),
        Some(s) => rates(&s),
    };
    let stop = WRAP_LIMIT - XID_STOP_MARGIN;
    let rows: Vec<_> = limits
        .databases
        .into_iter()
        .map(|d| match &rates {
            Ok(r) => {
                let x = |limit: Option<i64>| limit.and_then(|l| seconds_until(d.xid_age, l, r.xids_per_second));
                let m = |limit: Option<i64>| limit.and_then(|l| seconds_until(d.mxid_age, l, r.mxids_per_second));
                let idle =
                    (r.xids_per_second == 0.0).then(|| "no transaction IDs consumed in the sample window".to_string());
                (
                    d.database,
                    d.xid_age,
                    d.mxid_age,
                    Some(r.xids_per_second),
                    Some(r.mxids_per_second),
                    Some(r.window_seconds),
                    x(Some(limits.freeze_max_age)),
                    x(limits.failsafe_age),
                    x(Some(stop)),
                    m(Some(limits.multixact_freeze_max_age)),
                    m(limits.multixact_failsafe_age),
                    m(Some(stop)),
                    idle.or_else(|| {
                        limits
                            .failsafe_age
                            .is_none()
                            .then(|| "vacuum_failsafe_age needs PostgreSQL 14".to_string())
                    }),
                )
            }
            Err(why) => (
                d.database,
                d.xid_age,
                d.mxid_age,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(why.clone()),
            ),
        })
        .collect();
    TableIterator::new(rows)
}
