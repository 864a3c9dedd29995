-- Views over the worker backbone. Readable by pg_monitor (Grafana's usual role); nothing here is
-- visible to PUBLIC.

CREATE VIEW pgops.workers AS
    SELECT * FROM pgops._workers();
COMMENT ON VIEW pgops.workers IS
    'pgops background workers: state, pid, runs, errors and last error of each (from shared memory)';

CREATE VIEW pgops.xid_samples AS
    SELECT * FROM pgops._xid_samples();
COMMENT ON VIEW pgops.xid_samples IS
    'Next transaction ID and multixact ID sampled by the launcher every pgops.sample_interval (ring in shared memory, oldest first)';

REVOKE ALL ON FUNCTION pgops._workers(), pgops._xid_samples(), pgops.installations() FROM PUBLIC;
GRANT USAGE ON SCHEMA pgops TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgops._workers(), pgops._xid_samples(), pgops.instance() TO pg_monitor;
GRANT SELECT ON pgops.workers, pgops.xid_samples TO pg_monitor;
