-- A fleet declared once in etcd (pgops.fleet_name, pgops.fleet_trusted_keys): what this cluster
-- loaded, which config rows the fleet owns, and the whole fleet as the etcd worker last read it.

CREATE TABLE pgops.fleet_state (
    fleet       text PRIMARY KEY,
    generation  bigint NOT NULL,
    sha256      text NOT NULL,
    signed_by   text NOT NULL,
    signed_at   text,
    revision    bigint,
    loaded_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- how many roles, databases, HBA rules and default privileges this cluster's share declares
    loaded      jsonb NOT NULL DEFAULT '{}',
    -- declarations not loaded because a row declared locally has the same name (kept)
    conflicts   jsonb NOT NULL DEFAULT '[]'
);
COMMENT ON TABLE pgops.fleet_state IS
    'The fleet document generation this cluster loaded (by the primary''s etcd worker, in the same transaction as its rows), its digest and key, what it declared and what conflicted with local rows';

CREATE TABLE pgops.fleet_row (
    fleet text NOT NULL,
    kind  text NOT NULL CHECK (kind IN ('role', 'database', 'default_privilege')),
    name  text NOT NULL,
    PRIMARY KEY (fleet, kind, name)
);
COMMENT ON TABLE pgops.fleet_row IS
    'Config rows a fleet document declared (pgops.role by name, pgops.database_spec by name, pgops.default_privilege by id; HBA rules carry source fleet:<name>): the next generation replaces them, rows declared locally are never touched';

SELECT pg_catalog.pg_extension_config_dump('pgops.fleet_state', '');
SELECT pg_catalog.pg_extension_config_dump('pgops.fleet_row', '');

CREATE VIEW pgops.fleet_status AS SELECT * FROM pgops._fleet_status();
COMMENT ON VIEW pgops.fleet_status IS
    'Every instance of this instance''s fleet (from their etcd documents, as the etcd worker last read them): cluster, instance, role, generation loaded, state (converged, held, failed, refused), rows held, last error';

GRANT SELECT ON pgops.fleet_state, pgops.fleet_row, pgops.fleet_status TO pg_monitor, pgops_admin;
GRANT EXECUTE ON FUNCTION pgops._fleet_status() TO pg_monitor, pgops_admin;
