//! The launcher: one static background worker, started with the postmaster.
//!
//! Each turn it checks that the extension exists in its database (it starts before anyone runs
//! `CREATE EXTENSION`, and work that reads pgops' tables waits for it), then runs the turn hooks
//! capabilities registered (`register_turn`: XID sampling, freeze scheduling), each on its own:
//! a hook that fails is caught, logged, recorded in `pgops.workers`, and the others and the loop
//! go on. SIGTERM ends it at once; it then exits with status 1,
//! so `pg_terminate_backend()` or a crash has the postmaster start it again after
//! `pgops.launcher_restart_time` (at shutdown the postmaster starts nothing).

use std::time::Duration;

use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;

use super::{shmem, xact};
use crate::gucs;

pub const NAME: &str = "pgops launcher";

/// Declares the launcher (registered with the postmaster while preloading).
pub fn declare(preloading: bool) {
    super::statics::declare(NAME, "pgops_launcher_main", preloading);
}

/// What a turn hook knows of the turn.
pub struct TurnContext {
    /// The turn's start (a PostgreSQL `TimestampTz`).
    pub now: i64,
    /// The extension exists in the launcher's database (`pgops.database`): its tables can be read.
    pub installed: bool,
    /// The server is a primary (not in recovery): the turn may write.
    pub primary: bool,
}

/// Work a capability does in the launcher's turns. `run` is called every turn, outside any
/// transaction (`xact::run` opens one); it returns how long the launcher may sleep at most
/// before the hook needs the next turn (None: the naptime is fine).
pub struct TurnHook {
    pub name: &'static str,
    pub run: fn(&TurnContext) -> crate::error::Result<Option<Duration>>,
}

static HOOKS: std::sync::Mutex<Vec<&'static TurnHook>> = std::sync::Mutex::new(Vec::new());

/// Adds a hook to every launcher turn (in registration order). Call from a capability's `init`.
pub fn register_turn(hook: &'static TurnHook) {
    let mut hooks = HOOKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !hooks.iter().any(|h| h.name == hook.name) {
        hooks.push(hook);
    }
}

fn hooks() -> Vec<&'static TurnHook> {
    HOOKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// What the launcher knows between turns.
struct Launcher {
    slot: usize,
    database: String,
    /// The longest sleep the hooks allowed in the last turn.
    sleep_at_most: Option<Duration>,
    /// Each hook's last error: the same error again is recorded in pgops.workers but not logged
    /// again (a hook that fails every turn would fill the log).
    hook_errors: std::collections::HashMap<&'static str, String>,
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgops_launcher_main(_arg: pg_sys::Datum) {
    let Some((slot, database)) = super::statics::start(NAME) else {
        return;
    };
    let pid = unsafe { pg_sys::MyProcPid };
    if !shmem::any_dynamic_running() {
        super::dbworker::remove_leftover_files();
    }
    server_log!("pgops launcher started (database \"{database}\", pid {pid})");

    let mut me = Launcher {
        slot,
        database,
        sleep_at_most: None,
        hook_errors: std::collections::HashMap::new(),
    };
    loop {
        if BackgroundWorker::sighup_received() {
            // pgrx's handler only raises a flag: re-reading the configuration is ours to do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            let wanted = gucs::database();
            if wanted != me.database {
                server_log!(
                    "pgops launcher: pgops.database changed from \"{}\" to \"{wanted}\"; restarting to reconnect",
                    me.database
                );
                exit_for_restart(&me, "restarting: pgops.database changed");
            }
        }
        me.turn();
        // A SIGTERM that arrived while a turn waited for per-database workers stopped them.
        if super::terminating() {
            break;
        }
        let sleep = me.sleep_time();
        if !BackgroundWorker::wait_latch(Some(sleep)) || super::terminating() {
            break;
        }
    }
    exit_for_restart(&me, "stopped (SIGTERM)");
}

fn exit_for_restart(me: &Launcher, state: &str) -> ! {
    super::statics::exit(me.slot, state)
}

impl Launcher {
    fn turn(&mut self) {
        let now = xact::now();
        let checked = self.check_extension();
        let ctx = TurnContext {
            now,
            installed: checked.as_ref().is_ok_and(|state| state.starts_with("idle (pgops")),
            // SAFETY: reads shared recovery state.
            primary: unsafe { !pg_sys::RecoveryInProgress() },
        };
        let mut errors = Vec::new();
        if let Err(e) = &checked {
            errors.push(e.one_line());
        }
        self.sleep_at_most = None;
        for hook in hooks() {
            server_debug!("pgops launcher: turn \"{}\"", hook.name);
            match (hook.run)(&ctx) {
                Ok(Some(d)) => {
                    self.hook_errors.remove(hook.name);
                    self.sleep_at_most = Some(self.sleep_at_most.map_or(d, |m| m.min(d)));
                }
                Ok(None) => {
                    self.hook_errors.remove(hook.name);
                }
                Err(e) => {
                    let line = e.one_line();
                    if self.hook_errors.get(hook.name) != Some(&line) {
                        server_log!(
                            "pgops launcher: {} failed (logged again when the error changes): {line}",
                            hook.name
                        );
                        self.hook_errors.insert(hook.name, line.clone());
                    }
                    errors.push(line);
                }
            }
        }
        shmem::with_slot(self.slot, |s| {
            s.runs += 1;
            s.last_run_at = now;
            match (errors.first(), &checked) {
                (None, Ok(state)) => s.set_state(state),
                (Some(e), _) => {
                    s.record_error(e, now);
                    s.set_state("idle (last turn failed)");
                }
                (None, Err(e)) => {
                    s.record_error(&e.one_line(), now);
                    s.set_state("idle (last turn failed)");
                }
            }
        });
        if let Err(e) = checked {
            server_log!("pgops launcher: turn failed: {e}");
        }
    }

    /// One short transaction: is pgops installed here? Returns the state to show.
    fn check_extension(&self) -> crate::error::Result<String> {
        let database = self.database.clone();
        xact::run("pgops launcher: check extension", move || {
            if gucs::debug_launcher_error() {
                // A real ERROR raised inside the transaction, to exercise the recovery path.
                crate::internal!("injected launcher error (pgops.debug_launcher_error is on)");
            }
            let version = crate::spi::get_one::<String>(
                "SELECT (SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'pgops')",
            )?;
            Ok(match version {
                Some(v) => format!("idle (pgops {v})"),
                None => format!("waiting: CREATE EXTENSION pgops in database \"{database}\""),
            })
        })
    }

    fn sleep_time(&self) -> Duration {
        let naptime = gucs::naptime();
        self.sleep_at_most
            .map_or(naptime, |d| naptime.min(d.max(Duration::from_millis(1))))
    }
}
