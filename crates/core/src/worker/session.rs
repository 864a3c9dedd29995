//! The pinned session (the decisions; the extension applies them in `worker::session`): every setting a database owner (or `ALTER ROLE … SET`) could attach to a
//! session that would change what pgops' SQL does, or whether it finishes, decided once, here.
//!
//! pgops does superuser work inside databases that belong to other people. PostgreSQL applies
//! `ALTER DATABASE … SET` / `ALTER ROLE … SET` values when a session connects (source "database",
//! "user", "database user"); a value set earlier with a *higher-priority* source wins over them,
//! exactly as a client's `-c` startup options do. So a worker calls [`pin_before_connect`] before
//! it connects: each setting below is set with the client's priority (`PGC_S_CLIENT`) — to a fixed
//! value, or to the server's own value (a worker inherits the postmaster's settings, i.e.
//! postgresql.conf / ALTER SYSTEM / the command line) — and the database's or role's value for it
//! is then ignored. [`after_connect`] undoes `role` (which cannot be set before a connection) and
//! checks that the session is the bootstrap superuser's own.
//!
//! The fixed values marked `function` are attached to every function of the extension as `SET`
//! clauses (the install script applies them from [`function_pins`]; ones only a superuser may set
//! go on SECURITY DEFINER functions only): a function's queries are parsed when it runs, under the
//! caller's settings. Functions keep the caller's timeouts and transaction mode.
//!
//! Decided and left alone (they cannot change what a statement returns or writes, only its plan,
//! speed or messages): planner switches and costs (`enable_*`, `*_cost`, `jit*`,
//! `*_collapse_limit`, `geqo*`, `constraint_exclusion`, `cursor_tuple_fraction`, parallel
//! settings), `client_min_messages` and `application_name`, `default_text_search_config` (pgops
//! runs no text search), `gin_fuzzy_search_limit` (pgops reads no GIN index), `client_encoding`
//! (a worker has no client). Settings only a superuser may change (`log_*`, `lc_messages`,
//! `session_preload_libraries`, `temp_file_limit`, …) are not the database owner's to attach.
//! `local_preload_libraries` is not loaded by background workers.

/// What a setting is pinned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// This value, whatever the server or the database says.
    Fixed(&'static str),
    /// The server's own value (postgresql.conf, ALTER SYSTEM, command line), never the database's.
    Server,
}

/// One pinned setting: its name, the pin, whether SECURITY DEFINER functions carry it too, and why.
#[derive(Clone, Copy, Debug)]
pub struct Pinned {
    pub name: &'static str,
    pub pin: Pin,
    pub function: bool,
    pub why: &'static str,
}

const fn fixed(name: &'static str, value: &'static str, function: bool, why: &'static str) -> Pinned {
    Pinned {
        name,
        pin: Pin::Fixed(value),
        function,
        why,
    }
}

const fn server(name: &'static str, why: &'static str) -> Pinned {
    Pinned {
        name,
        pin: Pin::Server,
        function: false,
        why,
    }
}

/// The search path of every pgops session and function: nothing outside pg_catalog resolves
/// unqualified; the temporary schema (searched for tables and types only) comes last.
pub const SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Every pinned setting, in one place.
pub const PINNED: &[Pinned] = &[
    // Name resolution.
    fixed(
        "search_path",
        SEARCH_PATH,
        true,
        "functions, operators, types and tables resolve in pg_catalog (pgops' own objects are always qualified)",
    ),
    // Whether it finishes. Functions keep the caller's timeouts: the caller decides how long it waits.
    fixed(
        "statement_timeout",
        "0",
        false,
        "a database's timeout would cut a worker's task half-way",
    ),
    fixed("lock_timeout", "0", false, "tasks that need one (freeze) set their own"),
    fixed(
        "idle_in_transaction_session_timeout",
        "0",
        false,
        "a worker between two statements is not idle",
    ),
    fixed(
        "idle_session_timeout",
        "0",
        false,
        "a waiting launcher or etcd worker is not an idle client",
    ),
    fixed(
        "transaction_timeout",
        "0",
        false,
        "(PostgreSQL 17+) as statement_timeout",
    ),
    fixed(
        "exit_on_error",
        "off",
        false,
        "an ERROR is caught and recorded, never turned into an exit",
    ),
    // Whether it may write, and how transactions behave.
    fixed(
        "default_transaction_read_only",
        "off",
        false,
        "apply, freeze and history writes need a read-write transaction",
    ),
    fixed(
        "default_transaction_isolation",
        "read committed",
        false,
        "serializable would add serialization failures to catalog work",
    ),
    fixed(
        "default_transaction_deferrable",
        "off",
        false,
        "a deferrable transaction can wait for a safe snapshot",
    ),
    fixed(
        "session_replication_role",
        "origin",
        true,
        "replica would silence triggers (pgops' config validation) and foreign keys",
    ),
    fixed(
        "row_security",
        "on",
        true,
        "off makes a query touched by a policy fail instead of filtering",
    ),
    fixed(
        "check_function_bodies",
        "on",
        false,
        "functions pgops creates are checked",
    ),
    // What literals and text mean: pgops builds statements and reads values back as text.
    fixed(
        "standard_conforming_strings",
        "on",
        true,
        "'…' literals take backslashes literally",
    ),
    fixed(
        "backslash_quote",
        "safe_encoding",
        true,
        "the server default; \\' is no quote",
    ),
    fixed("escape_string_warning", "on", true, "the server default"),
    fixed("array_nulls", "on", true, "NULL in an array literal is a null"),
    fixed(
        "transform_null_equals",
        "off",
        true,
        "x = NULL is never true, as the SQL pgops runs assumes",
    ),
    fixed(
        "quote_all_identifiers",
        "off",
        true,
        "quote_ident and pg_get_*def give the names pgops compares",
    ),
    fixed(
        "DateStyle",
        "ISO, MDY",
        true,
        "dates and timestamps read back as text are ISO",
    ),
    fixed("IntervalStyle", "postgres", true, "intervals read back as text"),
    fixed(
        "extra_float_digits",
        "1",
        true,
        "floats read back as text round-trip exactly",
    ),
    fixed("bytea_output", "hex", true, "bytea read back as text"),
    fixed("xmloption", "content", true, "the server default"),
    fixed(
        "plpgsql.extra_errors",
        "none",
        true,
        "extra checks would fail pgops' PL/pgSQL functions",
    ),
    fixed(
        "plpgsql.variable_conflict",
        "error",
        true,
        "the default: a name clash is an error, never a guess",
    ),
    fixed("plpgsql.check_asserts", "on", true, "the default"),
    fixed(
        "debug_print_parse",
        "off",
        true,
        "parse trees in the log would show statements pgops runs (verifiers)",
    ),
    fixed("debug_print_rewritten", "off", true, "as debug_print_parse"),
    fixed("debug_print_plan", "off", true, "as debug_print_parse"),
    fixed(
        "restrict_nonsystem_relation_kind",
        "",
        false,
        "(16.4+) would refuse the views pgops reads",
    ),
    // The server's value, not the database's.
    server(
        "synchronous_commit",
        "durability of pgops' writes is the server's choice, not the database owner's",
    ),
    server(
        "TimeZone",
        "timestamps in pgops' tables and in etcd are in the server's time zone",
    ),
    server("lc_monetary", "to_char output"),
    server("lc_numeric", "to_char output"),
    server("lc_time", "to_char output"),
    server("default_tablespace", "where anything a worker creates goes"),
    server(
        "temp_tablespaces",
        "a tablespace the owner chose could refuse a worker's sort",
    ),
    server("default_table_access_method", "what a worker creates"),
    server("default_toast_compression", "what a worker creates"),
    server(
        "work_mem",
        "memory per sort: a huge value could exhaust the server's memory",
    ),
    server("hash_mem_multiplier", "as work_mem"),
    server("maintenance_work_mem", "memory of VACUUM and index builds in workers"),
    server("temp_buffers", "memory per session"),
    server(
        "vacuum_cost_delay",
        "freeze runs use the job's values or the server's, not the database's",
    ),
    server("vacuum_cost_limit", "as vacuum_cost_delay"),
    server("vacuum_cost_page_hit", "as vacuum_cost_delay"),
    server("vacuum_cost_page_miss", "as vacuum_cost_delay"),
    server("vacuum_cost_page_dirty", "as vacuum_cost_delay"),
    server("vacuum_freeze_min_age", "what a freeze run freezes"),
    server("vacuum_freeze_table_age", "as vacuum_freeze_min_age"),
    server("vacuum_multixact_freeze_min_age", "as vacuum_freeze_min_age"),
    server("vacuum_multixact_freeze_table_age", "as vacuum_freeze_min_age"),
    server("vacuum_failsafe_age", "as vacuum_freeze_min_age"),
    server("vacuum_multixact_failsafe_age", "as vacuum_freeze_min_age"),
    server("vacuum_buffer_usage_limit", "(PostgreSQL 16+) as vacuum_cost_delay"),
    server(
        "vacuum_truncate",
        "(PostgreSQL 18+) what a freeze run does to the table's end",
    ),
    server(
        "vacuum_max_eager_freeze_failure_rate",
        "(PostgreSQL 18+) as vacuum_freeze_min_age",
    ),
];

/// The fixed pins the extension's functions carry as SET clauses.
pub fn function_pins() -> impl Iterator<Item = (&'static str, &'static str)> {
    PINNED.iter().filter(|p| p.function).filter_map(|p| match p.pin {
        Pin::Fixed(v) => Some((p.name, v)),
        Pin::Server => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_listed_once_with_a_reason() {
        let mut names: Vec<_> = PINNED.iter().map(|p| p.name.to_ascii_lowercase()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a setting is listed twice");
        assert!(PINNED.iter().all(|p| !p.why.is_empty()));
    }

    #[test]
    fn functions_carry_only_fixed_values_and_never_timeouts() {
        let pins: Vec<_> = function_pins().collect();
        assert!(pins.contains(&("search_path", SEARCH_PATH)));
        assert!(pins.iter().all(|(n, _)| !n.contains("timeout")));
        assert!(pins.iter().all(|(n, _)| !n.starts_with("default_transaction")));
    }

    #[test]
    fn the_search_path_ends_with_pg_temp() {
        assert!(SEARCH_PATH.starts_with("pg_catalog"));
        assert!(SEARCH_PATH.ends_with("pg_temp"));
    }
}
