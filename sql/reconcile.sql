-- Reconcile: the launcher keeps what is declared true by itself (pgops.reconcile_roles,
-- pgops.reconcile_databases, pgops.reconcile_hba). Its history, its state, and the trigger that
-- wakes it when a config table changes.

CREATE TABLE pgops.reconcile_run (
    id bigserial PRIMARY KEY,
    capability text NOT NULL CHECK (capability IN ('roles', 'databases', 'hba')),
    policy text NOT NULL CHECK (policy IN ('report', 'safe', 'all')),
    -- what started it: 'interval', 'config change' (a committed write to a config table), 'retry'
    trigger text NOT NULL,
    -- when this outcome was first found (one found again writes nothing: see last_checked)
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    state text NOT NULL CHECK (state IN ('converged', 'held', 'failed')),
    planned integer NOT NULL DEFAULT 0,
    applied integer NOT NULL DEFAULT 0,
    held integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    -- every planned row: database, statement (passwords redacted), risk, status
    rows jsonb NOT NULL DEFAULT '[]',
    error text
);
CREATE INDEX reconcile_run_capability ON pgops.reconcile_run (capability, id);
COMMENT ON TABLE pgops.reconcile_run IS
    'What the launcher''s reconcile planned, applied, held and failed, a row per outcome (the same outcome found again writes nothing; pgops.reconcile_status.last_checked says when it was); the oldest go past pgops.reconcile_history_runs. Not dumped: history of this server''s launcher, bounded by pgops.reconcile_history_runs';

CREATE VIEW pgops.reconcile_status AS
SELECT c.capability,
       pg_catalog.current_setting('pgops.reconcile_' || c.capability) AS policy,
       CASE WHEN pg_catalog.current_setting('pgops.reconcile_' || c.capability) = 'off' THEN 'off'
            WHEN pg_catalog.pg_is_in_recovery() THEN 'standby'
            ELSE coalesce(r.state, 'pending') END AS state,
       r.started_at AS since,
       coalesce(pgops._reconcile_checked(c.capability), r.started_at) AS last_checked,
       r.held,
       r.failed,
       coalesce((SELECT pg_catalog.jsonb_agg(x) FROM pg_catalog.jsonb_array_elements(r.rows) x
                 WHERE x ->> 'status' NOT IN ('applied')), '[]') AS waiting,
       r.error AS last_error,
       pg_catalog.current_setting('pgops.reconcile_interval') AS reconcile_interval
FROM (VALUES (1, 'roles'), (2, 'databases'), (3, 'hba')) c(n, capability)
LEFT JOIN LATERAL (SELECT * FROM pgops.reconcile_run x WHERE x.capability = c.capability
                   ORDER BY x.id DESC LIMIT 1) r ON true
ORDER BY c.n;
COMMENT ON VIEW pgops.reconcile_status IS
    'Each capability''s reconcile policy and where it stands: converged, held (rows waiting for a policy, a reviewed plan or a retry, listed in waiting), failed (last_error), off, pending (no run yet) or standby (a standby never applies)';

-- A committed write to a config table wakes the launcher's reconcile at once.
CREATE FUNCTION pgops._reconcile_wake_trigger() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pgops, pg_temp AS $$
BEGIN
    PERFORM pgops._reconcile_wake();
    RETURN NULL;
END $$;
CREATE TRIGGER reconcile_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgops.role
    FOR EACH STATEMENT EXECUTE FUNCTION pgops._reconcile_wake_trigger();
CREATE TRIGGER reconcile_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgops.default_privilege
    FOR EACH STATEMENT EXECUTE FUNCTION pgops._reconcile_wake_trigger();
CREATE TRIGGER reconcile_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgops.database_spec
    FOR EACH STATEMENT EXECUTE FUNCTION pgops._reconcile_wake_trigger();
CREATE TRIGGER reconcile_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgops.hba_rule
    FOR EACH STATEMENT EXECUTE FUNCTION pgops._reconcile_wake_trigger();
CREATE TRIGGER reconcile_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgops.hba_alias
    FOR EACH STATEMENT EXECUTE FUNCTION pgops._reconcile_wake_trigger();

GRANT SELECT ON pgops.reconcile_run, pgops.reconcile_status TO pg_monitor, pgops_admin;
GRANT EXECUTE ON FUNCTION pgops._reconcile_wake() TO pgops_admin;
GRANT EXECUTE ON FUNCTION pgops._reconcile_checked(text) TO pg_monitor, pgops_admin;
