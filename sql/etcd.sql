-- etcd publishing: the worker's status, a push on demand, and the cluster's members read back.
-- The functions only talk to the pgops etcd worker through shared memory; the worker does the HTTP.

CREATE VIEW pgops.etcd_status AS SELECT * FROM pgops._etcd_status();
COMMENT ON VIEW pgops.etcd_status IS
    'pgops etcd worker: endpoints, the endpoint that answered, key, lease, last push and write, last error, counters (from shared memory)';

COMMENT ON FUNCTION pgops.etcd_push_now() IS
    'Asks the pgops etcd worker to publish this instance''s state now (written even if unchanged) and returns the outcome';
COMMENT ON FUNCTION pgops.cluster_members() IS
    'Every instance of this cluster publishing to etcd (<pgops.etcd_prefix>/<cluster>/pgops/members/), read back through the pgops etcd worker';

REVOKE ALL ON FUNCTION pgops._etcd_status(), pgops.etcd_push_now(), pgops.cluster_members() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgops._etcd_status(), pgops.cluster_members() TO pg_monitor;
GRANT SELECT ON pgops.etcd_status TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgops._etcd_status(), pgops.etcd_push_now(), pgops.cluster_members() TO pgops_admin;
GRANT SELECT ON pgops.etcd_status TO pgops_admin;
