//! SQL surface of HBA management: render, lint, apply (validate, swap, check, reload, roll back),
//! simulate, drift. File I/O is std::fs as the server's OS user.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pgrx::JsonB;
use pgrx::prelude::*;

use crate::pgutil::setting;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::file::{self, ActiveLine, first_match, parse_file, replace_file, trim_backups};
use super::line::Conn;
use super::lint::{Settings, lint};
use super::rules::{Aliases, PIGSTY_DEFAULTS, Rendered, Rule, Target, render, validate};
use super::stamp::{self, State};
use crate::error::{Code, Context, OrRaise, fail};
use crate::{gucs, identity};

const APPLY_LOCK_KEY: u64 = 0x7067_6f70_7368_6261; // "pgopshba"

fn spi_json(sql: &str) -> Value {
    crate::spi::json(sql, &[]).unwrap_or(Value::Null)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The role this instance renders its file for now (`instance_role(None)` without raising: a
/// bad `pgops.instance_role` is reported by the functions that render).
pub(crate) fn current_role() -> String {
    gucs::instance_role().unwrap_or_else(|| identity::role_name(unsafe { pg_sys::RecoveryInProgress() }).to_string())
}

/// Why Patroni owns pg_hba.conf, if it does: the live file itself says so (Patroni's header).
/// Ownership is never decided from etcd alone: anyone who can write Patroni's keys could
/// otherwise make every `apply_hba()` refuse pgops' own file.
fn patroni_owner(live: Option<&str>) -> Option<String> {
    live.is_some_and(stamp::written_by_patroni)
        .then(|| "Patroni wrote pg_hba.conf (its first lines say so) and rewrites it at every reload".into())
}

/// Patroni's dynamic configuration in etcd sets `postgresql.pg_hba` while the file is not
/// Patroni's: a warning (Patroni rewrites the file at its next reload if it manages this server),
/// never a refusal.
fn patroni_config_sets_hba(live: Option<&str>) -> Option<String> {
    if patroni_owner(live).is_some() {
        return None;
    }
    let v = crate::patroni::view()?;
    v.pg_hba_in_config.then(|| {
        format!(
            "Patroni's dynamic configuration ({}config) sets postgresql.pg_hba, but pg_hba.conf is not Patroni's: \
             if Patroni manages this server it rewrites the file at its next reload",
            v.prefix
        )
    })
}

/// Users Patroni replicates as: the `${repl}` alias, and the users of the physical replication
/// connections of Patroni's members (their application_name is the member name) — not every
/// walsender's (a backup tool's or a logical subscriber's).
fn replication_users(aliases: &Aliases, members: &[crate::patroni::Member]) -> Vec<String> {
    let mut users: BTreeSet<String> = aliases.get("${repl}").iter().cloned().collect();
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let live = crate::spi::get_one_with_args::<Vec<String>>(
        "SELECT coalesce(pg_catalog.array_agg(DISTINCT r.usename::text), '{}') FROM pg_catalog.pg_stat_replication r
         WHERE r.usename IS NOT NULL AND r.application_name = ANY ($1)",
        &[names.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    users.extend(live);
    users.into_iter().collect()
}

/// The connections Patroni makes to this server that its pg_hba.conf must admit (none when the
/// etcd worker has not seen Patroni's members).
fn patroni_probes() -> Vec<crate::patroni::Probe> {
    let Some(v) = crate::patroni::view().filter(|v| v.present()) else {
        return vec![];
    };
    let mut supers = gucs::patroni_users();
    if supers.is_empty() {
        supers.push(crate::pgutil::bootstrap_superuser());
    }
    crate::patroni::probes(&v.members, &supers, &replication_users(&load_aliases(), &v.members))
}

fn load_rules() -> Vec<Rule> {
    let v = spi_json("SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.id), '[]') FROM pgops.hba_rule r");
    serde_json::from_value(v)
        .unwrap_or_else(|e| fail(Code::DataException, format!("unreadable pgops.hba_rule: {e}"), ""))
}

fn load_aliases() -> Aliases {
    let v = spi_json("SELECT coalesce(jsonb_object_agg(name, value), '{}') FROM pgops.hba_alias");
    Aliases(serde_json::from_value(v).unwrap_or_default())
}

/// The instance role the file is rendered for: the argument, else pgops.instance_role, else
/// primary/replica from pg_is_in_recovery().
fn instance_role(arg: Option<&str>) -> String {
    let role = arg
        .map(str::to_string)
        .or_else(gucs::instance_role)
        .unwrap_or_else(|| identity::role_name(unsafe { pg_sys::RecoveryInProgress() }).to_string());
    if !["primary", "replica", "offline", "standby", "delayed"].contains(&role.as_str()) {
        fail(
            Code::InvalidParameterValue,
            format!("instance role \"{role}\" is not one of primary, replica, offline, standby, delayed"),
            "Pass a valid role, or fix pgops.instance_role.",
        );
    }
    role
}

fn target(role: String) -> Target {
    let (cluster, instance, host) = identity::current();
    let pwd = server_password_encryption();
    Target {
        cluster,
        instance,
        role,
        offline_query: gucs::offline_query(),
        host,
        port: setting("port").parse().unwrap_or(5432),
        path: setting("hba_file"),
        socket_dir: setting("unix_socket_directories")
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        pwd_method: if pwd == "md5" {
            "md5".into()
        } else {
            "scram-sha-256".into()
        },
        time: crate::spi::get_one::<String>("SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ')")
            .ok()
            .flatten()
            .unwrap_or_default(),
        ipv6: gucs::hba_ipv6(),
    }
}

/// The method `pwd` stands for: the server's own password_encryption (postgresql.conf, ALTER
/// SYSTEM, the command line), never a value the caller's session, role or database set — a
/// database owner's `ALTER DATABASE … SET password_encryption = md5` must not turn every `pwd`
/// line of the cluster's file into md5.
fn server_password_encryption() -> String {
    let (value, source) = crate::spi::get_two_with_args::<String, String>(
        "SELECT setting, source FROM pg_catalog.pg_settings WHERE name = 'password_encryption'",
        &[],
    )
    .unwrap_or((None, None));
    let server_sources = [
        "default",
        "configuration file",
        "command line",
        "environment variable",
        "override",
    ];
    if source.as_deref().is_some_and(|s| server_sources.contains(&s)) {
        return value.unwrap_or_default();
    }
    // Set for this session: the file's value, read as a superuser (apply_hba is one), else the default.
    // SAFETY: reads the current user's superuser flag.
    let from_file = if unsafe { pg_sys::superuser() } {
        crate::spi::get_one::<String>(
            "SELECT f.setting FROM pg_catalog.pg_file_settings f
             WHERE f.name = 'password_encryption' AND f.applied ORDER BY f.seqno DESC LIMIT 1",
        )
        .ok()
        .flatten()
    } else {
        None
    };
    from_file.unwrap_or_else(|| "scram-sha-256".into())
}

fn rendered(role_arg: Option<&str>) -> (Rendered, Target) {
    let t = target(instance_role(role_arg));
    let mut r = render(&load_rules(), &load_aliases(), &t).unwrap_or_else(|e| {
        fail(
            Code::InvalidParameterValue,
            format!("{e:#}"),
            "Fix the rule in pgops.hba_rule or pgops.hba_alias.",
        )
    });
    // The stamp is the last line: the active lines' numbers do not move.
    r.text = stamp::seal(&r.text, &t.cluster, &t.instance, &t.role, &identity::this_server());
    (r, t)
}

/// pg_hba.conf as pgops would write it for this instance (or for `instance_role`).
#[pg_extern(volatile, parallel_unsafe)]
fn render_hba(instance_role: default!(Option<String>, "NULL")) -> String {
    rendered(instance_role.as_deref()).0.text
}

/// Rows of `pgops.hba_lint`.
#[pg_extern(volatile, parallel_unsafe)]
fn _hba_lint() -> TableIterator<
    'static,
    (
        name!(severity, String),
        name!(line_number, i32),
        name!(rule, String),
        name!(finding, String),
        name!(message, String),
        name!(fix_hint, String),
    ),
> {
    let (r, _) = rendered(None);
    let s = Settings {
        password_encryption: setting("password_encryption"),
        ssl: setting("ssl") == "on",
        ssl_ca_file: setting("ssl_ca_file"),
    };
    let mut rows: Vec<_> = lint(&r.active, &s)
        .into_iter()
        .map(|f| {
            (
                f.severity.to_string(),
                f.line_number as i32,
                f.title,
                f.check.to_string(),
                f.message,
                f.fix,
            )
        })
        .collect();
    // Patroni's own connections, from every member's address (what the etcd worker last read).
    for (p, why) in crate::patroni::denied(&r.active, &patroni_probes(), s.ssl) {
        rows.push((
            "error".into(),
            0,
            String::new(),
            "patroni_lockout".into(),
            format!(
                "Patroni's {} connection as \"{}\" to \"{}\" from member {} ({}) {why}",
                p.purpose, p.user, p.database, p.member, p.address
            ),
            format!(
                "Add a rule admitting \"{}\" from {} (for example addr 'cluster' with the members' addresses); \
                 pgops.apply_hba() refuses this file",
                p.user, p.address
            ),
        ));
    }
    let live = std::fs::read_to_string(setting("hba_file")).ok();
    if let Some(why) = patroni_owner(live.as_deref()) {
        rows.push((
            "warning".into(),
            0,
            String::new(),
            "patroni_owns_file".into(),
            format!("{why}: pgops.apply_hba() refuses to write it"),
            "Remove postgresql.pg_hba from Patroni's configuration to let pgops manage pg_hba.conf.".into(),
        ));
    }
    if let Some(why) = patroni_config_sets_hba(live.as_deref()) {
        rows.push((
            "warning".into(),
            0,
            String::new(),
            "patroni_config_sets_hba".into(),
            format!("{why}; pgops decides who owns the file from the file itself and still writes it"),
            "Remove postgresql.pg_hba from Patroni's configuration (patronictl edit-config), or let Patroni own the file.".into(),
        ));
    }
    TableIterator::new(rows)
}

/// Roles `user` belongs to, directly or through other roles (for `+group`).
fn groups_of(user: &str) -> BTreeSet<String> {
    crate::spi::get_one_with_args::<Vec<String>>(
        "SELECT coalesce(array_agg(g.rolname::text), '{}') FROM pg_catalog.pg_roles u, pg_catalog.pg_roles g
         WHERE u.rolname = $1 AND g.oid <> u.oid AND pg_catalog.pg_has_role(u.oid, g.oid, 'MEMBER')",
        &[user.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_default()
    .into_iter()
    .collect()
}

thread_local! {
    /// The rendered lines, for the statement that rendered them (hba_match is called once per
    /// row: a query that simulates many connections renders the file once).
    static RENDER_CACHE: std::cell::RefCell<Option<((i64, i64, u32), Vec<ActiveLine>)>> =
        const { std::cell::RefCell::new(None) };
}

fn rendered_for_statement() -> Vec<ActiveLine> {
    let key = unsafe {
        (
            pg_sys::GetCurrentTransactionStartTimestamp(),
            pg_sys::GetCurrentStatementStartTimestamp(),
            pg_sys::GetCurrentCommandId(false),
        )
    };
    if let Some(hit) = RENDER_CACHE.with(|c| c.borrow().as_ref().filter(|(k, _)| *k == key).map(|(_, v)| v.clone())) {
        return hit;
    }
    let active = rendered(None).0.active;
    RENDER_CACHE.with(|c| *c.borrow_mut() = Some((key, active.clone())));
    active
}

/// Which line of the rendered (or live) file a connection would hit.
#[pg_extern(volatile, parallel_unsafe)]
fn hba_match(
    user_name: &str,
    database: &str,
    address: Option<pgrx::Inet>,
    ssl: default!(bool, false),
    source: default!(&str, "'rendered'"),
) -> TableIterator<
    'static,
    (
        name!(matched, bool),
        name!(line_number, Option<i32>),
        name!(rule, Option<String>),
        name!(method, String),
        name!(line, Option<String>),
    ),
> {
    let addr = address.map(|a| {
        let text = a.0.split('/').next().unwrap_or("").to_string();
        text.parse::<std::net::IpAddr>().unwrap_or_else(|_| {
            fail(
                Code::InvalidParameterValue,
                format!("address \"{}\" is not an IP address", a.0),
                "",
            )
        })
    });
    let active = match source {
        "rendered" => rendered_for_statement(),
        "live" => {
            let path = setting("hba_file");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| fail(Code::IoError, format!("cannot read {path}: {e}"), ""));
            parse_file(&text).context(&path).or_raise()
        }
        other => fail(
            Code::InvalidParameterValue,
            format!("source must be 'rendered' or 'live', got '{other}'"),
            "",
        ),
    };
    let groups = groups_of(user_name);
    let c = Conn {
        user: user_name,
        database,
        address: addr,
        ssl,
        groups: &groups,
    };
    let row = match first_match(&active, &c).or_raise() {
        Some((n, title, l)) => (
            l.method != "reject",
            Some(*n as i32),
            Some(title.clone()),
            l.method.clone(),
            Some(l.render()),
        ),
        None => (false, None, None, "no match = rejected".to_string(), None),
    };
    TableIterator::once(row)
}

/// Who asked for the file: a caller of `pgops.apply_hba()`, or the launcher following the
/// instance (a role change, a file rendered for another instance), with why.
pub(super) enum Trigger {
    Call,
    /// Why, and the file as the launcher read it when it decided: anything else found under the
    /// lock (a hand edit, a restored backup, a concurrent apply) is left alone.
    Follow {
        why: String,
        expected: Vec<u8>,
        /// The rendering the caller judged (reconcile: its risk): a different one found under
        /// the lock (a rule committed in between) is left for the next look.
        rendered: Option<String>,
    },
}

/// Refuses a file that locks out the bootstrap superuser locally, the caller from its current
/// connection (the decision: `file::check_lockout`; the launcher has no caller: it checks the
/// bootstrap superuser's local connection twice), or Patroni from any member.
fn check_lockout(active: &[ActiveLine], trigger: &Trigger) {
    let bootstrap = crate::pgutil::bootstrap_superuser();
    let none = BTreeSet::new();
    match trigger {
        Trigger::Call => {
            let me: Value = crate::spi::get_one::<JsonB>(
                "SELECT jsonb_build_object('user', session_user, 'db', current_database(), 'addr', host(inet_client_addr()),
                        'ssl', coalesce((SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_backend_pid()), false))",
            )
            .ok()
            .flatten()
            .map(|j| j.0)
            .unwrap_or(Value::Null);
            let user = me["user"].as_str().unwrap_or_default().to_string();
            let db = me["db"].as_str().unwrap_or_default().to_string();
            let groups = groups_of(&user);
            let caller = Conn {
                user: &user,
                database: &db,
                address: me["addr"].as_str().and_then(|a| a.parse().ok()),
                ssl: me["ssl"].as_bool().unwrap_or(false),
                groups: &groups,
            };
            file::check_lockout(active, &bootstrap, &caller).or_raise();
        }
        Trigger::Follow { .. } => {
            let local = Conn {
                user: &bootstrap,
                database: "postgres",
                address: None,
                ssl: false,
                groups: &none,
            };
            file::check_lockout(active, &bootstrap, &local).or_raise();
        }
    }
    crate::patroni::check(active, &patroni_probes(), setting("ssl") == "on").or_raise();
}

/// What one apply did.
pub(super) struct Outcome {
    pub path: String,
    pub backup: Option<String>,
    pub sha256: String,
    pub rules: i32,
    pub lines: i32,
    pub status: String,
}

/// Renders, refuses a file Patroni owns or one that locks anyone out, swaps it in, checks it
/// with pg_hba_file_rules (the previous file is restored on error), reloads and records it.
/// None: the launcher's follow found the lock taken or the file changed since it looked (it
/// looks again next turn).
pub(super) fn apply(trigger: &Trigger, dry_run: bool) -> Option<Outcome> {
    // A dry run writes nothing: it takes no lock (an open transaction holding one would stall
    // the launcher). The launcher never waits for the lock.
    match trigger {
        Trigger::Call if !dry_run => crate::pgutil::cluster_lock(APPLY_LOCK_KEY),
        Trigger::Call => {}
        Trigger::Follow { .. } => {
            if !crate::pgutil::try_cluster_lock(APPLY_LOCK_KEY) {
                return None;
            }
        }
    }
    let (r, t) = crate::pgutil::with_fresh_snapshot(|| rendered(None));
    let path = PathBuf::from(&t.path);
    let old = std::fs::read(&path).unwrap_or_else(|e| {
        fail(
            Code::IoError,
            format!("cannot read {}: {e}", path.display()),
            "Check that the file named by hba_file exists and the server's OS user can read it. Nothing was changed.",
        )
    });
    if let Trigger::Follow { expected, rendered, .. } = trigger {
        if *expected != old || rendered.as_ref().is_some_and(|t| *t != r.text) {
            return None;
        }
    }
    let old_text = String::from_utf8_lossy(&old).into_owned();
    if let Some(why) = patroni_owner(Some(&old_text)) {
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!("pgops does not write {}: {why}", t.path),
            "Patroni owns the file: keep its postgresql.pg_hba, or remove postgresql.pg_hba from Patroni's \
             configuration (patronictl edit-config and every member's YAML), then delete the file's first two \
             lines (Patroni's header) and run pgops.apply_hba() again. Nothing was changed.",
        );
    }
    check_lockout(&r.active, trigger);
    let sha = sha256_hex(r.text.as_bytes());
    let (rules, lines) = (r.rules as i32, r.active.len() as i32);
    let outcome = |backup: Option<String>, status: String| {
        Some(Outcome {
            path: t.path.clone(),
            backup,
            sha256: sha.clone(),
            rules,
            lines,
            status,
        })
    };
    if dry_run {
        return outcome(None, "dry run: valid, not written".into());
    }
    // SAFETY: reads the top-level transaction's block state.
    if matches!(trigger, Trigger::Call) && unsafe { pg_sys::IsTransactionBlock() } {
        fail(
            Code::ActiveSqlTransaction,
            "pgops.apply_hba() cannot run inside a transaction block: the file it writes would stay if the \
             transaction rolled back, and its history row would not",
            "Call it on its own (autocommit), or with dry_run => true to check a file inside a transaction.",
        );
    }
    let reason = match trigger {
        Trigger::Call => "pgops.apply_hba()".to_string(),
        Trigger::Follow { why, .. } => why.clone(),
    };
    if stamp::inspect(Some(&old_text), &t.instance, &t.role) == State::Current
        && stamp::comparable(&old_text) == stamp::comparable(&r.text)
    {
        record(&t, None, &sha, rules, lines, "unchanged", &reason);
        return outcome(None, "unchanged".into());
    }
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    let stamp_time = crate::spi::get_one::<String>(
        "SELECT pg_catalog.to_char(pg_catalog.clock_timestamp(), 'YYYYMMDD\"T\"HH24MISS.US')",
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("pg_hba.conf");
    let backup = path.with_file_name(stamp::backup_name(file_name, &stamp_time, &t.instance));
    replace_file(&backup, &old, mode).unwrap_or_else(|e| {
        fail(
            Code::IoError,
            format!("cannot write the backup {}: {e}", backup.display()),
            "Nothing was changed.",
        )
    });
    replace_file(&path, r.text.as_bytes(), mode).unwrap_or_else(|e| {
        fail(
            Code::IoError,
            format!("cannot write {}: {e}", path.display()),
            "The previous file is still in place.",
        )
    });
    let errors = crate::spi::get_one::<String>(
        "SELECT string_agg(format('line %s: %s', line_number, error), '; ' ORDER BY line_number)
         FROM pg_catalog.pg_hba_file_rules WHERE error IS NOT NULL",
    )
    .ok()
    .flatten();
    if let Some(errors) = errors {
        let restored = replace_file(&path, &old, mode);
        // The backup is the file now in place again: no copy is left behind for each refusal.
        if restored.is_ok() {
            let _ = std::fs::remove_file(&backup);
        }
        fail(
            Code::ConfigFileError,
            format!(
                "the server rejects the new pg_hba.conf ({errors}); {}; not reloaded",
                match restored {
                    Ok(()) => "the previous file was restored".to_string(),
                    Err(e) => format!("RESTORING FAILED ({e}): copy {} back by hand", backup.display()),
                }
            ),
            "Fix the rule at that line (see pgops.render_hba()); nothing was reloaded.",
        );
    }
    trim_backups(&path, gucs::hba_backups(), &t.instance);
    let status = match trigger {
        Trigger::Call => reload_and_confirm(),
        // The launcher cannot wait for a worker of its own: the signal is enough, the
        // postmaster re-reads the file it just validated.
        Trigger::Follow { .. } => match crate::spi::get_one::<bool>("SELECT pg_catalog.pg_reload_conf()") {
            Ok(Some(true)) => "applied; reload signalled",
            _ => "written; the reload signal failed",
        },
    };
    // The history row can be rolled back with the caller's transaction (a DO block that fails
    // after the call, say); the log line cannot.
    server_log!(
        "pgops.apply_hba: {} wrote {} for {} as {} (sha256 {sha}, {rules} rules, {lines} lines; backup {}): {status}",
        match trigger {
            Trigger::Call => crate::spi::get_one::<String>("SELECT session_user::text")
                .ok()
                .flatten()
                .unwrap_or_default(),
            Trigger::Follow { why, .. } => format!("the launcher ({why})"),
        },
        t.path,
        t.instance,
        t.role,
        backup.display()
    );
    let backup_s = backup.display().to_string();
    record(&t, Some(&backup_s), &sha, rules, lines, status, &reason);
    outcome(Some(backup_s), status.to_string())
}

/// Renders, validates, swaps in, checks with pg_hba_file_rules, reloads; rolls back on error.
/// Called by the SECURITY DEFINER wrapper pgops.apply_hba().
#[pg_extern(volatile, parallel_unsafe)]
fn _apply_hba(
    dry_run: bool,
) -> TableIterator<
    'static,
    (
        name!(path, String),
        name!(backup_path, Option<String>),
        name!(sha256, String),
        name!(rules, i32),
        name!(lines, i32),
        name!(status, String),
    ),
> {
    let o = apply(&Trigger::Call, dry_run).unwrap_or_else(|| crate::internal!("apply_hba() found nothing to do"));
    TableIterator::once((o.path, o.backup, o.sha256, o.rules, o.lines, o.status))
}

/// Signals the reload, then (with preload) waits until a freshly started process sees a newer
/// configuration load time: the postmaster has re-read the files, including this pg_hba.conf
/// that pg_hba_file_rules just validated.
fn reload_and_confirm() -> &'static str {
    let before = crate::spi::get_one::<String>("SELECT extract(epoch FROM pg_catalog.pg_conf_load_time())::text")
        .ok()
        .flatten();
    let signalled = crate::spi::get_one::<bool>("SELECT pg_catalog.pg_reload_conf()")
        .ok()
        .flatten()
        .unwrap_or(false);
    if !signalled {
        return "written; the reload signal failed";
    }
    if !crate::worker::shmem::preloaded() {
        return "applied; reload signalled";
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let db = crate::pgutil::current_database();
    while std::time::Instant::now() < deadline {
        let seen = crate::worker::dbworker::run_and_wait(
            &db,
            &crate::worker::dbworker::Task::Query {
                label: "reload check".into(),
                sql: "SELECT to_jsonb(extract(epoch FROM pg_catalog.pg_conf_load_time())::text)".into(),
                args: vec![],
                rows: false,
                closed: false,
            },
        );
        if let Ok(Value::String(t)) = seen {
            if Some(&t) != before.as_ref() {
                return "applied and reloaded";
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        pgrx::check_for_interrupts!();
    }
    "applied; reload signalled but not confirmed within 5 s"
}

/// Appends to the bounded history (not on a standby: it is read-only there; the file's stamp
/// records what was written).
fn record(t: &Target, backup: Option<&str>, sha: &str, rules: i32, lines: i32, status: &str, reason: &str) {
    if unsafe { pg_sys::RecoveryInProgress() } {
        return;
    }
    Spi::run_with_args(
        "INSERT INTO pgops.hba_apply (path, backup_path, sha256, rules, lines, status, instance, role, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            t.path.clone().into(),
            backup.map(str::to_string).into(),
            sha.into(),
            rules.into(),
            lines.into(),
            status.into(),
            t.instance.clone().into(),
            t.role.clone().into(),
            reason.into(),
        ],
    )
    .unwrap_or_else(|e| {
        fail(
            Code::Internal,
            format!("the file was written, but its history row could not be recorded: {e}"),
            "pg_hba.conf is in place and reloaded; check pgops.hba_apply's definition and the server log.",
        )
    });
    Spi::run("DELETE FROM pgops.hba_apply WHERE id <= (SELECT pg_catalog.max(id) - 100 FROM pgops.hba_apply)").ok();
}

/// The live file against what pgops wrote for this instance in its current role (rows of
/// `pgops.hba_drift`): decided from the file's own stamp, so it is right on a standby, after a
/// copy from another instance, after a hand edit and after Patroni rewrote the file.
#[pg_extern(volatile, parallel_unsafe)]
fn _hba_drift() -> TableIterator<
    'static,
    (
        name!(path, String),
        name!(live_sha256, Option<String>),
        name!(applied_sha256, Option<String>),
        name!(applied_at, Option<TimestampWithTimeZone>),
        name!(drifted, bool),
        name!(state, String),
        name!(owner, String),
        name!(rendered_for, Option<String>),
        name!(rendered_role, Option<String>),
        name!(foreign_backups, i32),
        name!(detail, String),
    ),
> {
    let path = setting("hba_file");
    let live = std::fs::read(&path).ok();
    let live_text = live.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let (_, instance, _) = identity::current();
    let role = current_role();
    let state = stamp::inspect(live_text.as_deref(), &instance, &role);
    let last = crate::spi::get_two_with_args::<String, TimestampWithTimeZone>(
        "SELECT sha256, applied_at FROM pgops.hba_apply
         WHERE path = $1 AND instance = $2 AND status NOT LIKE 'dry run%' ORDER BY id DESC LIMIT 1",
        &[path.clone().into(), instance.clone().into()],
    )
    .unwrap_or((None, None));
    let (mine, foreign) = file::backups(std::path::Path::new(&path), &instance);
    let wrote_before = last.0.is_some() || !mine.is_empty();
    let patroni = patroni_owner(live_text.as_deref());
    let stamped = live_text.as_deref().and_then(stamp::read).map(|(s, _)| s);
    let owner = match (&patroni, &stamped) {
        (Some(_), _) => "patroni",
        (None, Some(_)) => "pgops",
        (None, None) => "unknown",
    };
    let mut detail = state.detail(&instance, &role);
    if let (Some(why), false) = (&patroni, state == State::Patroni) {
        detail = format!("{detail}; {why}");
    }
    if let Some(why) = patroni_config_sets_hba(live_text.as_deref()) {
        detail = format!("{detail}; {why}");
    }
    if !foreign.is_empty() {
        detail = format!(
            "{detail}; {} backup(s) of another instance's file lie beside it (copied with the data directory)",
            foreign.len()
        );
    }
    TableIterator::once((
        path,
        live.map(|b| sha256_hex(&b)),
        last.0,
        last.1,
        state.drifted(wrote_before),
        state.name().to_string(),
        owner.to_string(),
        stamped.as_ref().map(|s| s.instance.clone()),
        stamped.map(|s| s.role),
        foreign.len() as i32,
        detail,
    ))
}

/// Validates a pgops.hba_rule row (called by its trigger).
#[pg_extern(stable, parallel_safe)]
fn _check_hba_rule(row: JsonB) {
    let r: Rule = serde_json::from_value(row.0.clone()).unwrap_or_else(|e| {
        fail(
            Code::CheckViolation,
            format!("pgops.hba_rule: {e}"),
            "Fix the value; the row was not stored.",
        )
    });
    let row = format!("pgops.hba_rule id {} ({:?})", r.id, r.title);
    if let Err(e) = validate(&r) {
        fail(
            Code::CheckViolation,
            format!("{row}: {e}"),
            "Fix the value; the row was not stored.",
        );
    }
    // SAFETY: reads the current user's superuser flag (the trigger runs as the writer).
    if !unsafe { pg_sys::superuser() } {
        let features = super::rules::superuser_only(&r);
        if !features.is_empty() {
            fail(
                Code::InsufficientPrivilege,
                format!("{row}: only a superuser may write {}", features.join(", ")),
                "pgops_admin may write password, certificate, peer and reject rules; ask a superuser to add \
                 this one (see SECURITY.md). The row was not stored.",
            );
        }
    }
}

/// Refuses an UPDATE or DELETE of a pgops.hba_rule row that only a superuser may write, unless
/// the writer is one (called by its trigger with the row as it was).
#[pg_extern(stable, parallel_safe)]
fn _check_hba_rule_old(row: JsonB, op: &str) {
    // SAFETY: reads the current user's superuser flag (the trigger runs as the writer).
    if unsafe { pg_sys::superuser() } {
        return;
    }
    // A stored row that no longer parses is left to a superuser too.
    let Ok(r) = serde_json::from_value::<Rule>(row.0.clone()) else {
        fail(
            Code::InsufficientPrivilege,
            "pgops.hba_rule: only a superuser may change or delete a row pgops cannot read",
            "Ask a superuser. Nothing was changed.",
        )
    };
    let features = super::rules::superuser_only(&r);
    if !features.is_empty() {
        fail(
            Code::InsufficientPrivilege,
            format!(
                "pgops.hba_rule id {} ({:?}): only a superuser may {} a rule with {}",
                r.id,
                r.title,
                if op == "DELETE" { "delete" } else { "change" },
                features.join(", ")
            ),
            "A superuser wrote it; ask one to change or remove it (see SECURITY.md). Nothing was changed.",
        );
    }
}

/// Validates a pgops.hba_alias row (called by its trigger).
#[pg_extern(stable, parallel_safe)]
fn _check_hba_alias(name: &str, value: Vec<Option<String>>) {
    let values: Vec<String> = value.into_iter().map(Option::unwrap_or_default).collect();
    if let Err(e) = super::rules::validate_alias(name, &values) {
        fail(
            Code::CheckViolation,
            format!("pgops.hba_alias: {e}"),
            "Fix the value; the row was not stored.",
        );
    }
    // An alias used by a rule only a superuser may write (trust for `admin`, say) would let its
    // editor choose who that rule lets in: only a superuser may change it then.
    // SAFETY: reads the current user's superuser flag (the trigger runs as the writer).
    if !unsafe { pg_sys::superuser() } {
        for r in load_rules() {
            let uses = r.rules.is_empty() && (r.user.as_deref() == Some(name) || r.addr.as_deref() == Some(name));
            let features = super::rules::superuser_only(&r);
            if uses && !features.is_empty() {
                fail(
                    Code::InsufficientPrivilege,
                    format!(
                        "pgops.hba_alias {name:?}: pgops.hba_rule id {} ({:?}) uses it with {}, which only a superuser may write",
                        r.id,
                        r.title,
                        features.join(", ")
                    ),
                    "Ask a superuser to change this alias (see SECURITY.md). The row was not stored.",
                );
            }
        }
    }
}

/// Appends Pigsty `pg_hba_rules` objects to pgops.hba_rule; returns how many.
#[pg_extern(volatile, parallel_unsafe)]
pub(crate) fn load_hba_rules(rules: JsonB) -> i32 {
    crate::error::require_primary(
        "pgops.load_hba_rules()",
        "Run it on the primary; pgops' tables replicate to standbys.",
    );
    let Value::Array(items) = rules.0 else {
        fail(
            Code::InvalidParameterValue,
            "pgops.load_hba_rules() takes a JSON array of rule objects",
            "Pass Pigsty's pg_hba_rules list as jsonb.",
        )
    };
    insert_hba_rules(&items, None)
}

/// Appends rule objects to pgops.hba_rule, marked with `source` (who loaded them; None: declared
/// here). Returns how many.
pub(crate) fn insert_hba_rules(items: &[Value], source: Option<&str>) -> i32 {
    for item in items {
        Spi::run_with_args(
            "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, rules, role, \"order\", source)
             SELECT coalesce(r.title, ''), coalesce(r.\"user\", 'all'), coalesce(r.db, 'all'), r.addr, coalesce(r.auth, 'pwd'),
                    coalesce(r.rules, '{}'), coalesce(r.role, 'default'), coalesce(r.\"order\", 1000), $2
             FROM jsonb_populate_record(NULL::pgops.hba_rule, $1) r",
            &[JsonB(item.clone()).into(), source.into()],
        )
        .unwrap_or_else(|e| fail(Code::InvalidParameterValue, e.to_string(), ""));
    }
    items.len() as i32
}

/// Loads Pigsty's 12 default rules (`pg_default_hba_rules`).
#[pg_extern(volatile, parallel_unsafe)]
fn load_pigsty_hba_defaults() -> i32 {
    crate::error::require_primary(
        "pgops.load_pigsty_hba_defaults()",
        "Run it on the primary; pgops' tables replicate to standbys.",
    );
    load_hba_rules(JsonB(
        serde_json::from_str(PIGSTY_DEFAULTS).expect("the defaults are valid JSON"),
    ))
}

/// What the launcher's reconcile of pg_hba.conf found and did.
pub enum Reconciled {
    /// The file is as rendered, or no rule is declared (pgops does not manage it).
    Converged,
    /// The file or the rules changed between the look and the lock: the next turn looks again.
    Moved,
    Row {
        display: String,
        risk: pgops_core::risk::Risk,
        status: String,
    },
}

/// The launcher's reconcile of pg_hba.conf: renders, compares with the live file's active
/// lines (`reconcile::hba_change_risk`), and, unless `hold` holds a change of that risk, applies
/// it exactly as `pgops.apply_hba()` does (lock-out guards for the bootstrap superuser and
/// Patroni, validation with rollback, reload, history), never over a file Patroni owns.
pub fn reconcile(hold: &dyn Fn(pgops_core::risk::Risk) -> Option<String>) -> Reconciled {
    let (r, t) = crate::pgutil::with_fresh_snapshot(|| rendered(None));
    // No rule declared: pgops does not manage this file (yet); nothing to keep true.
    if r.rules == 0 {
        return Reconciled::Converged;
    }
    let old = std::fs::read(&t.path).unwrap_or_else(|e| {
        fail(
            Code::IoError,
            format!("cannot read {}: {e}", t.path),
            "Check that the file named by hba_file exists and the server's OS user can read it.",
        )
    });
    let old_text = String::from_utf8_lossy(&old).into_owned();
    if stamp::inspect(Some(&old_text), &t.instance, &t.role) == State::Current
        && stamp::comparable(&old_text) == stamp::comparable(&r.text)
    {
        return Reconciled::Converged;
    }
    let rendered_lines: Vec<String> = r.active.iter().map(|(_, _, l)| l.render()).collect();
    let live_lines: Option<Vec<String>> = parse_file(&old_text)
        .ok()
        .map(|a| a.iter().map(|(_, _, l)| l.render()).collect());
    let (risk, display) = match &live_lines {
        Some(live) => {
            let gone = live.iter().filter(|l| !rendered_lines.contains(l)).count();
            let new = rendered_lines.iter().filter(|l| !live.contains(l)).count();
            (
                pgops_core::reconcile::hba_change_risk(live, &rendered_lines),
                format!(
                    "write {} as rendered ({} active lines: {new} new, {gone} gone{})",
                    t.path,
                    rendered_lines.len(),
                    if new == 0 && gone == 0 { ", the same lines otherwise" } else { "" }
                ),
            )
        }
        None => (
            pgops_core::risk::Risk::Revoke,
            format!("write {} as rendered (the live file does not parse)", t.path),
        ),
    };
    if let Some(why) = patroni_owner(Some(&old_text)) {
        return Reconciled::Row {
            display,
            risk,
            status: format!("held: pgops does not write the file: {why}"),
        };
    }
    if let Some(why) = hold(risk) {
        return Reconciled::Row { display, risk, status: why };
    }
    let trigger = Trigger::Follow {
        why: format!("reconcile: the live file differs from the rendered one ({} change)", risk.as_str()),
        expected: old,
        rendered: Some(r.text.clone()),
    };
    match apply(&trigger, false) {
        None => Reconciled::Moved,
        Some(outcome) => Reconciled::Row {
            display,
            risk,
            status: if outcome.status.starts_with("applied") {
                "applied".into()
            } else {
                outcome.status
            },
        },
    }
}
