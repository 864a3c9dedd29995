-- Views over the worker backbone. Readable by pg_monitor (Grafana's usual role); nothing here is
-- visible to PUBLIC.

CREATE VIEW pgops.workers AS
    SELECT * FROM pgops._workers();
COMMENT ON VIEW pgops.workers IS
    'pgops background workers: state, pid, runs, errors and last error of each (from shared memory)';

REVOKE ALL ON FUNCTION pgops._workers(), pgops.installations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgops._workers(), pgops.instance() TO pg_monitor;
GRANT SELECT ON pgops.workers TO pg_monitor;

-- Nothing in schema pgops is PUBLIC's (PostgreSQL grants EXECUTE on every new function to PUBLIC):
-- each capability's file grants what pg_monitor and pgops_admin need.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgops FROM PUBLIC;

-- Pinned functions (issue: hostile tenants). Every function of the extension resolves names in
-- pg_catalog only (pgops' own objects are always written schema-qualified), whatever search_path
-- the caller's database or role set; the temporary schema comes last. Every function also carries
-- the fixed settings of worker::session that decide what its SQL means (literals, NULL
-- comparisons, text output): a PL/pgSQL or Rust function's queries are parsed when it runs, under
-- the caller's settings. Settings only a superuser may set go on SECURITY DEFINER functions only
-- (a non-superuser calling a function that sets one would be refused). The caller's timeouts are
-- kept: the caller decides how long it waits. Runs last in the install script, so it covers every
-- function, also ones added later.
DO $pin$
DECLARE
    f regprocedure;
    secdef boolean;
    cfg text[];
    pin record;
BEGIN
    FOR f, secdef, cfg IN
        SELECT p.oid::pg_catalog.regprocedure, p.prosecdef, p.proconfig
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_proc p ON p.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
          AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pgops')
          AND d.deptype = 'e' AND p.prokind IN ('f', 'p')
    LOOP
        IF cfg IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(cfg) c WHERE c LIKE 'search\_path=%') THEN
            EXECUTE pg_catalog.format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp', f);
        END IF;
        FOR pin IN
            SELECT fp.name, fp.value
            FROM pgops._function_pins() fp
            LEFT JOIN pg_catalog.pg_settings s ON pg_catalog.lower(s.name) = pg_catalog.lower(fp.name)
            WHERE fp.name <> 'search_path' AND (secdef OR s.context IS DISTINCT FROM 'superuser')
        LOOP
            EXECUTE pg_catalog.format('ALTER ROUTINE %s SET %I = %L', f, pin.name, pin.value);
        END LOOP;
    END LOOP;
END
$pin$;
