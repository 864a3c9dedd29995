//! The launcher follows the instance: every two seconds (while pgops' stamp is on the file) it
//! compares the live pg_hba.conf's stamp with who this instance is now. A file pgops wrote for
//! this instance in its other role (a promotion, a demotion) or for another instance (a data
//! directory copied by pg_basebackup, a Patroni reinit) is rendered and applied again exactly as
//! `pgops.apply_hba()` does — lock-out guards, validation with rollback, reload, history on a
//! primary, a log line everywhere. A file edited by hand, or Patroni's, is never replaced.
//! `pgops.hba_follow = off` turns this off.

use std::time::Duration;

use super::api::{Trigger, apply, current_role};
use super::stamp::{self, State};
use crate::worker::launcher::{TurnContext, TurnHook};
use crate::worker::xact;
use crate::{gucs, identity};

pub static TURN: TurnHook = TurnHook {
    name: "pg_hba.conf follow",
    run: turn,
};

/// How often the stamp is compared while pgops manages the file.
const POLL: Duration = Duration::from_secs(2);

/// The last failure logged: the same failure is logged once, not every two seconds.
static LAST_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn hba_path() -> Option<String> {
    // SAFETY: the server's hba_file setting (a C string the GUC machinery owns), read on the
    // launcher's main thread.
    unsafe {
        let p = pgrx::pg_sys::HbaFileName;
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

fn turn(ctx: &TurnContext) -> crate::error::Result<Option<Duration>> {
    if !ctx.installed || !gucs::hba_follow() {
        return Ok(None);
    }
    let Some(path) = hba_path() else { return Ok(None) };
    let text = std::fs::read(&path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let (_, instance, _) = identity::current();
    let role = current_role();
    let state = stamp::inspect(text.as_deref(), &instance, &role);
    let why = match &state {
        State::OtherRole { stamp } => format!(
            "this instance is {role} now, the file was rendered for it as {}",
            stamp.role
        ),
        State::OtherInstance { stamp } => format!(
            "the file was rendered for {} as {} and copied here with the data directory",
            stamp.instance, stamp.role
        ),
        State::Current | State::Edited { .. } => return Ok(Some(POLL)),
        State::Patroni | State::Unstamped | State::Missing => return Ok(None),
    };
    let result = xact::run("pgops launcher: re-render pg_hba.conf", || {
        Ok(apply(&Trigger::Follow(why.clone()), false).status)
    });
    let mut last = LAST_FAILURE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match result {
        Ok(_) => {
            *last = None;
            if matches!(state, State::OtherInstance { .. }) {
                let (_, foreign) = super::file::backups(std::path::Path::new(&path), &instance);
                let removed = foreign.iter().filter(|p| std::fs::remove_file(p).is_ok()).count();
                if removed > 0 {
                    pgrx::log!(
                        "pgops launcher: removed {removed} backup(s) of another instance's pg_hba.conf copied with the data directory"
                    );
                }
            }
            Ok(Some(POLL))
        }
        Err(e) => {
            let msg = format!("cannot re-render pg_hba.conf ({why}): {}", e.one_line());
            if last.as_deref() == Some(msg.as_str()) {
                return Ok(Some(POLL));
            }
            *last = Some(msg.clone());
            // Logged and shown in pgops.workers once; pgops.hba_drift shows the file's state.
            Err(crate::error::Error::new(e.code, msg))
        }
    }
}
