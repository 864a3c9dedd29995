// #[pg_test]s: each runs inside the preloaded test server, in a transaction that is rolled back.
// Work done by background workers commits on its own. Included into `mod tests` by lib.rs.

use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// Polls `sql` (a boolean query) until true or `secs` pass.
fn wait_for(sql: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if Spi::get_one::<bool>(sql).unwrap().unwrap_or(false) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[pg_test]
fn launcher_shows_in_workers_and_goes_idle() {
    assert!(
        wait_for(
            "SELECT EXISTS (SELECT FROM pgops.workers WHERE name = 'pgops launcher' AND kind = 'static' \
             AND pid IS NOT NULL AND state = 'idle (pgops 0.1.0)' AND database = 'pgrx_tests')",
            15
        ),
        "launcher not idle: {:?}",
        Spi::get_one::<String>("SELECT string_agg(format('%s|%s|%s', name, pid, state), '; ') FROM pgops.workers")
    );
    // The pid is a live background worker of the expected type.
    assert_eq!(
        Spi::get_one::<String>(
            "SELECT a.backend_type FROM pg_stat_activity a JOIN pgops.workers w ON w.pid = a.pid \
             WHERE w.name = 'pgops launcher'"
        )
        .unwrap()
        .as_deref(),
        Some("pgops launcher")
    );
    let runs = Spi::get_one::<i64>("SELECT runs FROM pgops.workers WHERE name = 'pgops launcher'").unwrap().unwrap();
    assert!(wait_for(&format!("SELECT runs > {runs} FROM pgops.workers WHERE name = 'pgops launcher'"), 10));
}

#[pg_test]
fn xid_samples_accumulate_in_order() {
    assert!(wait_for("SELECT count(*) >= 2 FROM pgops.xid_samples", 15));
    let before = Spi::get_one::<i64>("SELECT count(*) FROM pgops.xid_samples").unwrap().unwrap();
    assert!(wait_for(&format!("SELECT count(*) >= {} FROM pgops.xid_samples", before + 2), 15));
    // Timestamps strictly ascending, counters never going back, the last sample close to now, and
    // samples taken after this test's XID was assigned (by its first query, before the waits)
    // see a next XID beyond it.
    let ordered = Spi::get_one::<bool>(
        "SELECT bool_and(sampled_at > prev_at AND next_xid >= prev_xid) FROM ( \
           SELECT sampled_at, next_xid, lag(sampled_at) OVER w AS prev_at, lag(next_xid) OVER w AS prev_xid \
           FROM pgops.xid_samples WINDOW w AS (ORDER BY sampled_at)) s WHERE prev_at IS NOT NULL",
    )
    .unwrap();
    assert_eq!(ordered, Some(true));
    let fresh = Spi::get_one::<bool>(
        "SELECT max(sampled_at) > clock_timestamp() - interval '5 seconds' \
           AND max(next_xid) > pg_current_xact_id()::text::bigint FROM pgops.xid_samples",
    )
    .unwrap();
    assert_eq!(fresh, Some(true));
}

#[pg_test]
fn instance_reports_identity_and_preload() {
    let (cluster, instance, role) =
        Spi::get_three::<String, String, String>("SELECT cluster, instance, role FROM pgops.instance()").unwrap();
    let preloaded = Spi::get_one::<bool>("SELECT preloaded FROM pgops.instance()").unwrap();
    let expected_cluster = Spi::get_one::<String>("SELECT coalesce(nullif(current_setting('cluster_name'), ''), 'pg')")
        .unwrap()
        .unwrap();
    assert_eq!(cluster.as_deref(), Some(expected_cluster.as_str()));
    let host = crate::identity::hostname();
    let short = host.split('.').next().unwrap();
    let port = Spi::get_one::<i32>("SELECT current_setting('port')::int").unwrap().unwrap();
    let want = if port == 5432 { format!("{expected_cluster}-{short}") } else { format!("{expected_cluster}-{short}-{port}") };
    assert_eq!(instance, Some(want));
    assert_eq!(role.as_deref(), Some("primary"));
    assert_eq!(preloaded, Some(true));
}

#[pg_test]
fn installations_runs_a_worker_in_each_database() {
    // Dynamic workers share max_worker_processes with other tests: serialise them.
    Spi::run("SELECT pg_advisory_xact_lock(7411)").unwrap();
    let here = Spi::get_one::<String>(
        "SELECT installed_version FROM pgops.installations() WHERE database = current_database()",
    )
    .unwrap();
    assert_eq!(here.as_deref(), Some("0.1.0"));
    let postgres = Spi::get_two::<String, String>(
        "SELECT installed_version, error FROM pgops.installations() WHERE database = 'postgres'",
    )
    .unwrap();
    assert_eq!(postgres, (None, None), "postgres has no pgops and the worker reports no error");
    // The finished workers are on the board with their database and state.
    assert!(
        Spi::get_one::<bool>(
            "SELECT count(*) >= 2 FROM pgops.workers WHERE kind = 'dynamic' AND name = 'pgops inventory' \
             AND state = 'done' AND pid IS NULL AND database IN ('postgres', current_database())"
        )
        .unwrap()
        .unwrap()
    );
}

// PostgreSQL 15 reserves a prefix (MarkGUCPrefixReserved): a typo is an error.
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[pg_test(error = "invalid configuration parameter name \"pgops.naptme\"")]
fn misspelt_settings_are_rejected() {
    Spi::run("SET pgops.naptme = '1s'").unwrap();
}

// PostgreSQL 13 and 14 cannot reserve one: the typo becomes a placeholder that nothing reads (the
// server warns about those it finds when the library loads); the real setting keeps its value.
#[cfg(any(feature = "pg13", feature = "pg14"))]
#[pg_test]
fn misspelt_settings_are_placeholders_before_15() {
    let before = Spi::get_one::<String>("SELECT current_setting('pgops.naptime')").unwrap();
    Spi::run("SET pgops.naptme = '1s'").unwrap();
    assert_eq!(Spi::get_one::<String>("SELECT current_setting('pgops.naptme')").unwrap().as_deref(), Some("1s"));
    assert_eq!(Spi::get_one::<String>("SELECT current_setting('pgops.naptime')").unwrap(), before);
}

#[pg_test]
fn views_are_for_pg_monitor_not_public() {
    Spi::run(
        "CREATE ROLE pgops_t_mon IN ROLE pg_monitor; CREATE ROLE pgops_t_nobody; \
         SET ROLE pgops_t_mon",
    )
    .unwrap();
    assert!(Spi::get_one::<i64>("SELECT count(*) FROM pgops.workers").unwrap().unwrap() >= 1);
    Spi::get_one::<i64>("SELECT count(*) FROM pgops.xid_samples").unwrap();
    Spi::run("RESET ROLE").unwrap();
    let public_can = Spi::get_one::<bool>(
        "SELECT has_table_privilege('pgops_t_nobody', 'pgops.workers', 'SELECT') \
             OR has_table_privilege('pgops_t_nobody', 'pgops.xid_samples', 'SELECT') \
             OR has_function_privilege('pgops_t_nobody', 'pgops._workers()', 'EXECUTE') \
             OR has_function_privilege('pgops_t_nobody', 'pgops.installations()', 'EXECUTE') \
             OR has_schema_privilege('pgops_t_nobody', 'pgops', 'USAGE')",
    )
    .unwrap();
    assert_eq!(public_can, Some(false), "a role without pg_monitor must not reach pgops' views");
}

/// Several databases' workers side by side: every result in the order asked, each from its own
/// database; a failing task fails alone; more tasks than workers allowed at once all run (a
/// limit of 2 over 7 tasks); a database that does not exist is an error for that task only.
#[pg_test]
fn workers_side_by_side() {
    use crate::worker::dbworker::{Task, run_many};
    use serde_json::json;
    let query = |sql: &str| Task::Query {
        label: "test query".into(),
        sql: sql.into(),
        args: vec![],
        rows: false,
        closed: false,
    };
    let here = "SELECT to_jsonb(current_database()::text)";
    let jobs: Vec<(String, Task)> = vec![
        ("postgres".into(), query(here)),
        ("template1".into(), query(here)),
        ("postgres".into(), query("SELECT 1/0")),
        ("pgops_no_such_database".into(), query(here)),
        ("template1".into(), query("SELECT to_jsonb(pg_sleep(0.2)::text)")),
        ("postgres".into(), query("SELECT to_jsonb(2)")),
        ("template1".into(), query(here)),
    ];
    let out = run_many(&jobs, 2);
    assert_eq!(out.len(), 7);
    assert_eq!(out[0].as_ref().unwrap(), &json!("postgres"));
    assert_eq!(out[1].as_ref().unwrap(), &json!("template1"));
    assert!(out[2].as_ref().unwrap_err().message.contains("division by zero"), "{:?}", out[2]);
    assert!(out[3].as_ref().unwrap_err().message.contains("pgops_no_such_database"), "{:?}", out[3]);
    assert_eq!(out[4].as_ref().unwrap(), &json!(""));
    assert_eq!(out[5].as_ref().unwrap(), &json!(2));
    assert_eq!(out[6].as_ref().unwrap(), &json!("template1"));
    assert!(run_many(&[], 4).is_empty());
}

/// The backbone's generic tasks, run in per-database workers: a query with jsonb arguments
/// (single value and rows), statements in one transaction (all or nothing, the failing one named),
/// top-level utility statements (CREATE DATABASE refuses a transaction block), and a handler name
/// nobody registered.
#[pg_test]
fn generic_worker_tasks() {
    use crate::worker::dbworker::{Task, run_and_wait};
    use serde_json::json;
    let query = |sql: &str, args: Vec<serde_json::Value>, rows: bool| Task::Query {
        label: "test query".into(),
        sql: sql.into(),
        args,
        rows,
        closed: false,
    };
    let v = run_and_wait(
        "postgres",
        &query("SELECT jsonb_build_object('db', current_database(), 'n', $1->'n')", vec![json!({"n": 7})], false),
    )
    .unwrap();
    assert_eq!(v, json!({"db": "postgres", "n": 7}));
    let v = run_and_wait(
        "postgres",
        &query("SELECT x AS n FROM jsonb_array_elements($1) x", vec![json!([1, 2])], true),
    )
    .unwrap();
    assert_eq!(v, json!([{"n": 1}, {"n": 2}]));
    assert_eq!(run_and_wait("postgres", &query("SELECT NULL::jsonb WHERE false", vec![], false)).unwrap(), json!(null));
    let e = run_and_wait("postgres", &query("SELECT 1/0", vec![], false)).unwrap_err();
    assert!(e.message.contains("division by zero"), "{e}");

    let exec = Task::Exec {
        label: "test exec".into(),
        statements: vec![
            "CREATE TABLE public.pgops_exec_probe (i int)".into(),
            "INSERT INTO public.pgops_exec_probe VALUES (1)".into(),
            "INSERT INTO public.pgops_exec_probe VALUES ('x')".into(),
        ],
    };
    let v = run_and_wait("postgres", &exec).unwrap();
    assert_eq!((v["ok"].clone(), v["failed"].clone()), (json!(false), json!(2)), "{v}");
    let gone = run_and_wait(
        "postgres",
        &query("SELECT to_jsonb(to_regclass('public.pgops_exec_probe') IS NULL)", vec![], false),
    )
    .unwrap();
    assert_eq!(gone, json!(true), "the failed Exec rolled back its first statements");

    let utility = |statements: &[&str]| Task::Utility {
        label: "test utility".into(),
        statements: statements.iter().map(|s| s.to_string()).collect(),
    };
    let v = run_and_wait(
        "postgres",
        &utility(&["CREATE DATABASE pgops_utility_probe", "DROP DATABASE pgops_utility_probe"]),
    )
    .unwrap();
    assert_eq!(v, json!({"ok": true}));
    let v = run_and_wait("postgres", &utility(&["VACUUM pg_catalog.pg_class", "VACUUM no_such_table", "SELECT 1"])).unwrap();
    assert_eq!((v["ok"].clone(), v["failed"].clone()), (json!(false), json!(1)), "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("no_such_table"), "{v}");

    let e = run_and_wait(
        "postgres",
        &Task::Handler {
            name: "no such handler".into(),
            arg: json!(null),
        },
    )
    .unwrap_err();
    assert!(e.message.contains("no task handler \"no such handler\""), "{e}");
}
