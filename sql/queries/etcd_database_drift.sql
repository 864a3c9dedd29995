-- Database drift for the etcd document (a plan over the declared databases: every 5 minutes).
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT pg_catalog.jsonb_build_object('database_drift', databases_drifting, 'database_drift_checked_at', checked_at)
FROM pgops.database_drift_summary
