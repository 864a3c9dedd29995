-- Scheduled VACUUM FREEZE: jobs, runs, per-table history, status for Grafana.
-- Jobs live in the launcher's database (pgops.database); the launcher starts a worker in each
-- target database when a job is due or pgops.run_freeze() asks.

CREATE TABLE pgops.freeze_job (
    name text PRIMARY KEY CHECK (name <> ''),
    database text NOT NULL DEFAULT '*',
    schedule text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    max_duration interval NOT NULL DEFAULT '4 hours',
    min_age bigint NOT NULL DEFAULT 100000000,
    lock_timeout interval NOT NULL DEFAULT '5 seconds',
    cost_delay_ms double precision,
    cost_limit integer,
    buffer_usage_limit text,
    enabled boolean NOT NULL DEFAULT true,
    comment text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_scheduled_at timestamptz
);
COMMENT ON TABLE pgops.freeze_job IS 'VACUUM FREEZE jobs: where (database or * for every connectable one), when (5-field cron in timezone), within what budget (max_duration), which tables (min_age), how gently (lock_timeout, cost settings, BUFFER_USAGE_LIMIT on PG16+)';
COMMENT ON COLUMN pgops.freeze_job.database IS 'A database name, or * for every database that allows connections (templates excluded)';
COMMENT ON COLUMN pgops.freeze_job.schedule IS 'pg_cron-compatible: minute hour day-of-month month day-of-week, or @daily/@weekly/...';
COMMENT ON COLUMN pgops.freeze_job.min_age IS 'Tables whose XID and MXID ages are both younger are left alone (default 100 million, like pg-vacuum)';
COMMENT ON COLUMN pgops.freeze_job.last_scheduled_at IS 'Set by the launcher when it starts a scheduled run';

CREATE FUNCTION pgops._freeze_job_check() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pgops._check_freeze_job(to_jsonb(NEW));
    RETURN NEW;
END $$;
CREATE TRIGGER freeze_job_check BEFORE INSERT OR UPDATE ON pgops.freeze_job
    FOR EACH ROW EXECUTE FUNCTION pgops._freeze_job_check();

-- The built-in 'weekly' job is seeded by CREATE EXTENSION and kept by pg_dump with the others: on
-- restore the dumped row arrives after the seeded one, and replaces it (your schedule, enabled
-- or not) instead of failing on the primary key and losing every job with it.
CREATE FUNCTION pgops._freeze_job_restore() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.name = 'weekly' AND EXISTS (SELECT FROM pgops.freeze_job WHERE name = 'weekly') THEN
        UPDATE pgops.freeze_job
           SET (database, schedule, timezone, max_duration, min_age, lock_timeout, cost_delay_ms, cost_limit,
                buffer_usage_limit, enabled, comment, created_at, last_scheduled_at)
             = (NEW.database, NEW.schedule, NEW.timezone, NEW.max_duration, NEW.min_age, NEW.lock_timeout,
                NEW.cost_delay_ms, NEW.cost_limit, NEW.buffer_usage_limit, NEW.enabled, NEW.comment,
                NEW.created_at, NEW.last_scheduled_at)
         WHERE name = 'weekly';
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER freeze_job_restore BEFORE INSERT ON pgops.freeze_job
    FOR EACH ROW EXECUTE FUNCTION pgops._freeze_job_restore();

-- The default: weekly, Sunday 03:00 UTC, every database, 4 hours. Disabled: a DBA opts in.
INSERT INTO pgops.freeze_job (name, database, schedule, max_duration, enabled, comment)
VALUES ('weekly', '*', '0 3 * * 0', '4 hours', false,
        'Pigsty-style weekly freeze of every database, most urgent tables first; enable with UPDATE pgops.freeze_job SET enabled = true WHERE name = ''weekly''');

CREATE TABLE pgops.freeze_run (
    id bigserial PRIMARY KEY,
    job text NOT NULL,
    database text NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'queued',
    cancel_requested boolean NOT NULL DEFAULT false,
    tables_planned integer,
    tables_done integer NOT NULL DEFAULT 0,
    tables_skipped integer NOT NULL DEFAULT 0,
    tables_failed integer NOT NULL DEFAULT 0,
    pages bigint NOT NULL DEFAULT 0,
    xid_age_before bigint,
    xid_age_after bigint,
    max_table_age_before bigint,
    max_table_age_after bigint,
    detail text,
    worker_slot integer,
    worker_generation bigint
);
CREATE INDEX ON pgops.freeze_run (job, id);

CREATE TABLE pgops.freeze_run_table (
    run_id bigint NOT NULL REFERENCES pgops.freeze_run (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    schema text NOT NULL,
    table_name text NOT NULL,
    outcome text NOT NULL,
    error text,
    started_at timestamptz,
    seconds double precision,
    pages bigint,
    urgency double precision,
    xid_age_before bigint,
    xid_age_after bigint,
    mxid_age_before bigint,
    mxid_age_after bigint,
    PRIMARY KEY (run_id, seq)
);

SELECT pg_catalog.pg_extension_config_dump('pgops.freeze_job', '');
COMMENT ON TABLE pgops.freeze_run IS 'One row per job run in one database: status (queued, running, succeeded, partial, budget spent, cancelled, failed, skipped: …), tables done / skipped / failed, pages, database XID age before and after. Not dumped: history of this server, bounded by pgops.freeze_history_days / _runs';
COMMENT ON TABLE pgops.freeze_run_table IS 'Per table of a freeze run, in the order frozen: outcome (frozen, skipped: locked, skipped: dropped, failed), ages before and after. Not dumped: history, deleted with its run';

CREATE VIEW pgops.freeze_status AS
SELECT j.name AS job, j.database, j.schedule, j.timezone, j.enabled,
       CASE WHEN j.enabled THEN pgops._freeze_next_run(j.schedule, j.timezone, coalesce(j.last_scheduled_at, j.created_at)) END AS next_run,
       r.id AS last_run_id, r.database AS last_run_database, r.status AS last_status,
       r.started_at AS last_started_at, r.finished_at AS last_finished_at,
       r.tables_done AS last_tables_done, r.tables_skipped AS last_tables_skipped, r.tables_failed AS last_tables_failed,
       a.running, a.queued,
       a.progress_tables_done, a.progress_tables_planned
FROM pgops.freeze_job j
LEFT JOIN LATERAL (SELECT * FROM pgops.freeze_run x WHERE x.job = j.name AND x.status NOT IN ('queued', 'running')
                   ORDER BY x.id DESC LIMIT 1) r ON true
LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE x.status = 'running') AS running,
                          count(*) FILTER (WHERE x.status = 'queued') AS queued,
                          sum(x.tables_done + x.tables_skipped + x.tables_failed) FILTER (WHERE x.status = 'running') AS progress_tables_done,
                          sum(x.tables_planned) FILTER (WHERE x.status = 'running') AS progress_tables_planned
                   FROM pgops.freeze_run x WHERE x.job = j.name AND x.status IN ('queued', 'running')) a ON true;
COMMENT ON VIEW pgops.freeze_status IS 'Per freeze job: next run, the last finished run''s result, and the progress of runs in flight';

-- run_freeze and cancel_freeze write the history tables on the caller's behalf.
ALTER FUNCTION pgops.run_freeze(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION pgops.cancel_freeze(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION pgops.run_freeze(text), pgops.cancel_freeze(bigint), pgops._check_freeze_job(jsonb) FROM PUBLIC;
GRANT SELECT ON pgops.freeze_job, pgops.freeze_run, pgops.freeze_run_table, pgops.freeze_status TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgops._freeze_next_run(text, text, timestamptz), pgops.freeze_plan(text, bigint) TO pg_monitor;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgops.freeze_job TO pgops_admin;
GRANT SELECT ON pgops.freeze_run, pgops.freeze_run_table, pgops.freeze_status TO pgops_admin;
GRANT EXECUTE ON FUNCTION pgops.run_freeze(text), pgops.cancel_freeze(bigint), pgops._check_freeze_job(jsonb),
    pgops._freeze_next_run(text, text, timestamptz), pgops.freeze_plan(text, bigint) TO pgops_admin;
