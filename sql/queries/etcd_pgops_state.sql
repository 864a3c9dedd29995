-- pgops' own facts for the etcd document (forecast, HBA drift, last freeze), when pgops is installed in pgops.database.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT jsonb_build_object(
  'xids_per_second', (SELECT max(xids_per_second) FROM pgops.wraparound_forecast),
  'seconds_to_freeze_max_age', (SELECT min(seconds_to_freeze_max_age) FROM pgops.wraparound_forecast),
  'hba_drift', (SELECT drifted FROM pgops.hba_drift),
  'hba_state', (SELECT state FROM pgops.hba_drift),
  'last_freeze', (SELECT jsonb_build_object('job', job, 'database', database, 'status', status,
                                            'finished_at', finished_at)
                  FROM pgops.freeze_run WHERE status NOT IN ('queued', 'running')
                  ORDER BY id DESC LIMIT 1),
  -- each capability whose reconcile is on: policy, state, since when, rows waiting, the last error
  'reconcile', (SELECT jsonb_object_agg(capability, jsonb_build_object('policy', policy, 'state', state,
                                        'since', since, 'held', held, 'failed', failed, 'last_error', last_error))
                FROM pgops.reconcile_status WHERE policy <> 'off'))
