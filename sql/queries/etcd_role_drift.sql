-- Role drift for the etcd document (a plan over every database: every 5 minutes).
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT jsonb_build_object('role_drift', differences, 'role_drift_checked_at', checked_at) FROM pgops.role_drift_summary
