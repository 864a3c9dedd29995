-- Database sizes for the etcd document (a stat of every file: every 5 minutes).
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT jsonb_build_object(
  'databases', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', datname, 'bytes', pg_database_size(oid))
                                          ORDER BY datname), '[]')
                FROM pg_database WHERE datallowconn),
  'databases_checked_at', clock_timestamp())
