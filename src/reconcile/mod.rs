//! Reconcile: the launcher keeps roles, databases and pg_hba.conf as declared, by itself.
//!
//! Each turn on a primary, for each capability whose `pgops.reconcile_*` is not `off`, when its
//! interval is up, a config table changed (a commit wakes the launcher: `_reconcile_wake`), or a
//! failed statement's back-off ends: plan under the same lock a manual apply takes (never
//! waiting for it: a busy lock is tried again next turn), hold what the policy does not allow
//! (`pgops_core::reconcile::hold_reason`) and what is backing off, apply the rest exactly as the
//! manual apply does, and record the outcome in `pgops.reconcile_run`. Each capability runs in its
//! own transaction: one that fails is recorded and the others go on. Never on a standby.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use pgrx::PgAtomic;
use sha2::Digest;
use pgrx::prelude::*;
use serde_json::{Value, json};

pub use pgops_core::reconcile::{Backoff, Policy, State, hold_reason};
use pgops_core::risk::Risk;

use crate::gucs;
use crate::worker::launcher::{TurnContext, TurnHook};
use crate::worker::{shmem, xact};

pub static TURN: TurnHook = TurnHook {
    name: "reconcile",
    run: turn,
};

/// Bumped by every commit that wrote a config table; the launcher reconciles when it moved.
static WAKES: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"pgops_reconcile_wakes") };
/// The launcher's pid (0: none yet), for the committing backend to signal.
static LAUNCHER_PID: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"pgops_reconcile_launcher") };
/// When each capability was last reconciled (a PostgreSQL timestamp; 0: not since the start).
/// Kept here, not in the history table: an outcome found again writes nothing (an idle server
/// takes no transaction ID and no WAL for it, and its etcd document stays unwritten).
static CHECKED_ROLES: PgAtomic<AtomicI64> = unsafe { PgAtomic::new(c"pgops_reconcile_checked_roles") };
static CHECKED_DATABASES: PgAtomic<AtomicI64> = unsafe { PgAtomic::new(c"pgops_reconcile_checked_databases") };
static CHECKED_HBA: PgAtomic<AtomicI64> = unsafe { PgAtomic::new(c"pgops_reconcile_checked_hba") };
/// The wake count each capability's last finished reconcile started from: a run that started at
/// count N planned from everything committed before the N-th wake (the count moves after commit).
static RAN_WAKES_ROLES: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"pgops_reconcile_ran_roles") };
static RAN_WAKES_DATABASES: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"pgops_reconcile_ran_databases") };
static RAN_WAKES_HBA: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"pgops_reconcile_ran_hba") };

/// Registers the shared memory and the launcher's turn. Call from `_PG_init` while preloading.
pub fn init(preloading: bool) {
    if preloading {
        pgrx::pg_shmem_init!(WAKES);
        pgrx::pg_shmem_init!(LAUNCHER_PID);
        pgrx::pg_shmem_init!(CHECKED_ROLES);
        pgrx::pg_shmem_init!(CHECKED_DATABASES);
        pgrx::pg_shmem_init!(CHECKED_HBA);
        pgrx::pg_shmem_init!(RAN_WAKES_ROLES);
        pgrx::pg_shmem_init!(RAN_WAKES_DATABASES);
        pgrx::pg_shmem_init!(RAN_WAKES_HBA);
        crate::worker::launcher::register_turn(&TURN);
    }
}

thread_local! {
    /// This transaction already asked to wake the launcher at its commit.
    static WAKE_PENDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the config tables' statement trigger: at this transaction's commit (not before: the
/// launcher must see the change), wake the launcher's reconcile. Nothing when pgops is not
/// preloaded (there is no launcher).
#[pg_extern(volatile, parallel_unsafe)]
fn _reconcile_wake() {
    if !shmem::preloaded() || WAKE_PENDING.with(|w| w.replace(true)) {
        return;
    }
    use pgrx::{PgXactCallbackEvent, register_xact_callback};
    register_xact_callback(PgXactCallbackEvent::Commit, || {
        WAKE_PENDING.with(|w| w.set(false));
        // Post-commit: only atomics and a signal, nothing that can raise an error.
        WAKES.get().fetch_add(1, Ordering::SeqCst);
        let pid = LAUNCHER_PID.get().load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) on the launcher's pid; SIGUSR1 sets its latch.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
        }
    });
    register_xact_callback(PgXactCallbackEvent::Abort, || WAKE_PENDING.with(|w| w.set(false)));
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Capability {
    Roles,
    Databases,
    Hba,
}

const CAPABILITIES: [Capability; 3] = [Capability::Roles, Capability::Databases, Capability::Hba];

impl Capability {
    fn name(self) -> &'static str {
        match self {
            Capability::Roles => "roles",
            Capability::Databases => "databases",
            Capability::Hba => "hba",
        }
    }

    fn setting(self) -> &'static str {
        match self {
            Capability::Roles => "pgops.reconcile_roles",
            Capability::Databases => "pgops.reconcile_databases",
            Capability::Hba => "pgops.reconcile_hba",
        }
    }

    fn policy(self) -> Policy {
        match self {
            Capability::Roles => gucs::RECONCILE_ROLES.get(),
            Capability::Databases => gucs::RECONCILE_DATABASES.get(),
            Capability::Hba => gucs::RECONCILE_HBA.get(),
        }
        .core()
    }

    fn index(self) -> usize {
        self as usize
    }

    fn checked(self) -> &'static AtomicI64 {
        match self {
            Capability::Roles => CHECKED_ROLES.get(),
            Capability::Databases => CHECKED_DATABASES.get(),
            Capability::Hba => CHECKED_HBA.get(),
        }
    }

    fn ran_wakes(self) -> &'static AtomicU64 {
        match self {
            Capability::Roles => RAN_WAKES_ROLES.get(),
            Capability::Databases => RAN_WAKES_DATABASES.get(),
            Capability::Hba => RAN_WAKES_HBA.get(),
        }
    }

    fn named(name: &str) -> Option<Capability> {
        CAPABILITIES.into_iter().find(|c| c.name() == name)
    }
}

/// How many config-table commits have woken reconcile so far (0 without preload). Read after a
/// commit (the fleet's load): `ran_since` then says whether a capability planned from it.
pub fn wakes_now() -> u64 {
    if shmem::preloaded() { WAKES.get().load(Ordering::SeqCst) } else { 0 }
}

/// Whether `capability`'s last reconcile started after wake count `wakes` (so it planned from
/// what those commits wrote).
pub fn ran_since(capability: &str, wakes: u64) -> bool {
    shmem::preloaded()
        && Capability::named(capability).is_some_and(|c| {
            let ran = c.ran_wakes().load(Ordering::SeqCst);
            ran != u64::MAX && ran >= wakes
        })
}

/// When the launcher last reconciled `capability` (NULL: not since the server started, or pgops
/// is not preloaded). For `pgops.reconcile_status.last_checked`.
#[pg_extern(stable, parallel_safe)]
fn _reconcile_checked(capability: &str) -> Option<pgrx::datum::TimestampWithTimeZone> {
    if !shmem::preloaded() {
        return None;
    }
    let c = Capability::named(capability)?;
    crate::pgutil::timestamp(c.checked().load(Ordering::SeqCst))
}

/// One planned row as reconcile saw it.
struct Row {
    database: Option<String>,
    display: String,
    /// The back-off key (`key_of`).
    key: String,
    risk: Risk,
    status: String,
}

/// What the launcher keeps between turns (its own process only).
struct Memory {
    wakes_seen: u64,
    /// When each capability is due next (ms since the PostgreSQL epoch; 0: now).
    due: [i64; 3],
    /// The policy each capability had last turn (a change makes it due now).
    policy: [Policy; 3],
    /// pgops.reconcile_interval as of the last turn (ms).
    interval: i64,
    /// The next turn of a capability is for a statement whose back-off ended.
    retry: [bool; 3],
    backoff: Backoff,
}

static MEMORY: std::sync::Mutex<Option<Memory>> = std::sync::Mutex::new(None);

fn turn(ctx: &TurnContext) -> crate::error::Result<Option<Duration>> {
    // SAFETY: this process's pid, set at its start.
    LAUNCHER_PID.get().store(unsafe { pg_sys::MyProcPid }, Ordering::SeqCst);
    if !ctx.installed || !ctx.primary {
        return Ok(None);
    }
    let mut guard = MEMORY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mem = guard.get_or_insert_with(|| Memory {
        wakes_seen: u64::MAX,
        due: [0; 3],
        policy: [Policy::Off; 3],
        retry: [false; 3],
        interval: gucs::reconcile_interval_ms(),
        backoff: Backoff::default(),
    });
    let wakes = WAKES.get().load(Ordering::SeqCst);
    let woken = wakes != mem.wakes_seen && mem.wakes_seen != u64::MAX;
    mem.wakes_seen = wakes;
    let now = ctx.now / 1000;
    let interval = gucs::reconcile_interval_ms();
    if interval != mem.interval {
        // A new interval counts from now.
        mem.interval = interval;
        mem.due = mem.due.map(|d| d.min(now + interval));
    }
    let mut first_error = None;
    let mut next: Option<i64> = None;
    for c in CAPABILITIES {
        let policy = c.policy();
        let i = c.index();
        if policy != mem.policy[i] {
            server_log!(
                "pgops reconcile: {} = {} (was {})",
                c.setting(),
                policy.as_str(),
                mem.policy[i].as_str()
            );
            mem.policy[i] = policy;
            mem.due[i] = 0;
            mem.retry[i] = false;
        }
        if policy == Policy::Off {
            continue;
        }
        let trigger = if woken {
            "config change"
        } else if now < mem.due[i] {
            next = Some(next.map_or(mem.due[i], |n| n.min(mem.due[i])));
            continue;
        } else if mem.retry[i] {
            "retry"
        } else {
            "interval"
        };
        mem.retry[i] = false;
        let outcome = reconcile_one(c, policy, trigger, now, &mut mem.backoff);
        if !matches!(outcome, Ok(false)) {
            c.ran_wakes().store(wakes, Ordering::SeqCst);
        }
        match outcome {
            Ok(true) => {
                mem.due[i] = now + interval;
                // A statement backing off is tried again when its wait ends, if that is sooner.
                if let Some(at) = mem.backoff.next_retry(&format!("{}\u{0}", c.name()), now)
                    && at < mem.due[i]
                {
                    mem.due[i] = at;
                    mem.retry[i] = true;
                }
            }
            // Another apply holds the lock: look again shortly.
            Ok(false) => mem.due[i] = now + 1_000,
            Err(e) => {
                mem.due[i] = now + interval;
                first_error.get_or_insert(e);
            }
        }
        next = Some(next.map_or(mem.due[i], |n| n.min(mem.due[i])));
    }
    drop(guard);
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(next.map(|at| Duration::from_millis((at - now).max(1) as u64)))
}

/// Plans, applies what the policy allows, records. Ok(false): another apply held the lock.
fn reconcile_one(c: Capability, policy: Policy, trigger: &str, now: i64, backoff: &mut Backoff) -> crate::error::Result<bool> {
    let setting = c.setting();
    let activity = format!("pgops reconcile: {}", c.name());
    let held_by_backoff = backoff.clone();
    // A lock held elsewhere must not stall the launcher's other turns: past the limit the
    // workers are stopped, their statements fail and back off.
    let outcome = crate::worker::dbworker::with_deadline(RUN_LIMIT, || xact::run(&activity, || {
        let rows: Option<Vec<Row>> = match c {
            Capability::Roles => {
                let hold = |s: &crate::roles::plan::Step| {
                    hold_reason(policy, s.risk, setting).or_else(|| {
                        held_by_backoff.holds(&key_of(c, s.database.as_deref(), &s.statement), now)
                    })
                };
                crate::roles::api::reconcile(&hold).map(|(steps, status)| {
                    steps
                        .into_iter()
                        .zip(status)
                        .map(|(s, status)| Row {
                            key: key_of(c, s.database.as_deref(), &s.statement),
                            database: s.database,
                            display: s.display,
                            risk: s.risk,
                            status,
                        })
                        .collect()
                })
            }
            Capability::Databases => {
                let hold = |s: &crate::databases::plan::Step| {
                    hold_reason(policy, s.risk, setting)
                        .or_else(|| held_by_backoff.holds(&key_of(c, Some(&s.database), &s.statement), now))
                };
                crate::databases::api::reconcile(&hold).map(|(steps, status)| {
                    steps
                        .into_iter()
                        .zip(status)
                        .map(|(s, status)| Row {
                            key: key_of(c, Some(&s.database), &s.statement),
                            // A baseline is shown by its digest: the history is pg_monitor's to read.
                            display: match &s.baseline_digest {
                                Some(d) => format!("-- the baseline of database {} (sha256 {d})", s.database),
                                None => s.statement,
                            },
                            database: Some(s.database),
                            risk: s.risk,
                            status,
                        })
                        .collect()
                })
            }
            Capability::Hba => {
                let key = hba_key();
                let hold = |risk: Risk| hold_reason(policy, risk, setting).or_else(|| held_by_backoff.holds(&key, now));
                if !crate::pgutil::try_cluster_lock(HBA_LOCK_KEY) {
                    None
                } else {
                    use crate::hba::api::Reconciled;
                    match crate::hba::api::reconcile(&hold) {
                        Reconciled::Row { display, risk, status } => Some(vec![Row {
                            database: None,
                            display,
                            key: hba_key(),
                            risk,
                            status,
                        }]),
                        Reconciled::Converged => Some(vec![]),
                        // Changed under the lock: looked at again next turn, nothing recorded.
                        Reconciled::Moved => None,
                    }
                }
            }
        };
        let Some(rows) = rows else { return Ok(None) };
        record(c, policy, trigger, &rows, None)?;
        Ok(Some(rows))
    }));
    match outcome {
        Ok(None) => Ok(false),
        Ok(Some(rows)) => {
            let prefix = format!("{}\u{0}", c.name());
            let planned = rows.iter().map(|r| r.key.clone()).collect();
            backoff.retain_planned(&prefix, &planned);
            for r in &rows {
                if let Some(e) = r.status.strip_prefix("failed: ") {
                    backoff.failed(&r.key, e, now, gucs::reconcile_interval_ms());
                } else if r.status == "applied" {
                    backoff.succeeded(&r.key);
                }
            }
            let failed = rows.iter().filter(|r| r.status.starts_with("failed")).count();
            if failed > 0 {
                server_log!(
                    "pgops reconcile: {} statement(s) of {} failed; each is tried again after its back-off (pgops.reconcile_status)",
                    failed,
                    c.name()
                );
            }
            Ok(true)
        }
        Err(e) => {
            // The plan could not be made (a config mistake, a database that cannot be read):
            // recorded in its own transaction; the next interval or config change tries again.
            let line = e.one_line();
            let _ = xact::run("pgops reconcile: record", || record(c, policy, trigger, &[], Some(&line)));
            // pg_hba.conf refused under the lock (a lock-out, the server rejecting a line): the
            // file backs off like a failing statement.
            if c == Capability::Hba {
                backoff.failed(&hba_key(), &line, now, gucs::reconcile_interval_ms());
            }
            Err(crate::error::Error::internal(format!("reconcile of {}: {line}", c.name())))
        }
    }
}

/// The longest one capability's reconcile may wait for its per-database workers.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Same key as the one pg_hba.conf's apply takes (`hba::api`).
const HBA_LOCK_KEY: u64 = 0x7067_6f70_7368_6261; // "pgopshba"

/// The back-off key of a statement: capability, database and a digest of what runs (a changed
/// password is a new statement: it is not held by the old one's failures). Kept in the
/// launcher's memory only.
fn key_of(c: Capability, database: Option<&str>, statement: &str) -> String {
    let digest = sha2::Sha256::digest(statement.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}\u{0}{}\u{0}{hex}", c.name(), database.unwrap_or(""))
}

/// pg_hba.conf is one file: one key, whatever its rendering.
fn hba_key() -> String {
    key_of(Capability::Hba, None, "pg_hba.conf")
}

/// Adds the outcome to pgops.reconcile_run unless it is what the last row of this capability
/// says (nothing applied, the same rows waiting, the same error): then nothing is written, only
/// the time of the check is kept (shared memory). Trims the table to
/// pgops.reconcile_history_runs.
fn record(c: Capability, policy: Policy, trigger: &str, rows: &[Row], error: Option<&str>) -> crate::error::Result<()> {
    // SAFETY: the current time.
    c.checked().store(unsafe { pg_sys::GetCurrentTimestamp() }, Ordering::SeqCst);
    let state = if error.is_some() {
        State::Failed
    } else {
        State::of(rows.iter().map(|r| r.status.as_str()))
    };
    let count = |p: &str| rows.iter().filter(|r| r.status.starts_with(p)).count() as i32;
    let shown: Vec<Value> = rows
        .iter()
        .map(|r| json!({"database": r.database, "statement": r.display, "risk": r.risk.as_str(), "status": r.status}))
        .collect();
    let applied = count("applied");
    let same = applied == 0
        && crate::spi::get_one_with_args::<bool>(
            "SELECT r.state = $2 AND r.rows = $3 AND r.error IS NOT DISTINCT FROM $4 AND r.policy = $5
             FROM pgops.reconcile_run r WHERE r.capability = $1 ORDER BY r.id DESC LIMIT 1",
            &[
                c.name().into(),
                state.as_str().into(),
                pgrx::JsonB(Value::Array(shown.clone())).into(),
                error.into(),
                policy.as_str().into(),
            ],
        )?
        .unwrap_or(false);
    if same {
        return Ok(());
    }
    pgrx::spi::Spi::run_with_args(
        "INSERT INTO pgops.reconcile_run (capability, policy, trigger, state, planned, applied, held, failed, rows, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            c.name().into(),
            policy.as_str().into(),
            trigger.into(),
            state.as_str().into(),
            (rows.len() as i32).into(),
            applied.into(),
            count("held").into(),
            count("failed").into(),
            pgrx::JsonB(Value::Array(shown)).into(),
            error.into(),
        ],
    )?;
    pgrx::spi::Spi::run_with_args(
        "DELETE FROM pgops.reconcile_run WHERE id <= (SELECT max(id) FROM pgops.reconcile_run) - $1",
        &[gucs::reconcile_history_runs().into()],
    )?;
    if applied > 0 || state == State::Failed {
        server_log!(
            "pgops reconcile: {} ({} = {}, {trigger}): {applied} applied, {} held, {} failed{}",
            c.name(),
            c.setting(),
            policy.as_str(),
            count("held"),
            count("failed"),
            error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    Ok(())
}

// This capability's SQL (table, view, triggers, grants), after the function it names.
pgrx::extension_sql_file!(
    "../../sql/reconcile.sql",
    name = "reconcile_tables",
    requires = ["roles_tables", "databases_tables", "hba_tables", reconcile::_reconcile_wake, reconcile::_reconcile_checked]
);
