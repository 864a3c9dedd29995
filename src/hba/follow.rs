//! The launcher follows the instance: every two seconds (while pgops' stamp is on the file) it
//! compares the live pg_hba.conf's stamp with who this instance is now. A file pgops wrote for
//! this instance in its other role (a promotion, a demotion) or for another instance (a data
//! directory copied by pg_basebackup, a Patroni reinit) is rendered and applied again exactly as
//! `pgops.apply_hba()` does — lock-out guards, validation with rollback, reload, history on a
//! primary, a log line everywhere. A file edited by hand, or Patroni's, is never replaced, nor one
//! that changed between the look and the lock. Another instance's file outside the data
//! directory is reported, not rewritten, and a file that keeps turning back is left alone after
//! three writes in ten minutes. Failures are logged by the launcher once per change.
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

/// When the launcher last wrote the file: a file that keeps turning back into another
/// instance's or role's (two servers sharing one hba_file outside their data directories, say)
/// is written at most `MAX_WRITES` times in `WINDOW`, then left alone with a log line.
static WRITES: std::sync::Mutex<Vec<std::time::Instant>> = std::sync::Mutex::new(Vec::new());
const MAX_WRITES: usize = 3;
const WINDOW: Duration = Duration::from_secs(600);

/// The launcher's first turn: a copied file waits (at most `FIRST_READ_WAIT`) for the etcd
/// worker's first read of Patroni's keys, so it is rendered once, under the member name, not
/// first under the default name and again when the member name arrives.
static FIRST_TURN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
const FIRST_READ_WAIT: Duration = Duration::from_secs(30);

fn hba_path() -> Option<String> {
    // SAFETY: the server's hba_file setting (a C string the GUC machinery owns), read on the
    // launcher's main thread.
    unsafe {
        let p = pgrx::pg_sys::HbaFileName;
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

fn data_directory() -> Option<std::path::PathBuf> {
    // SAFETY: the data directory, set at start, read on the launcher's main thread.
    unsafe {
        let p = pgrx::pg_sys::DataDir;
        (!p.is_null()).then(|| std::path::PathBuf::from(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()))
    }
}

fn turn(ctx: &TurnContext) -> crate::error::Result<Option<Duration>> {
    if !ctx.installed || !gucs::hba_follow() {
        return Ok(None);
    }
    let Some(path) = hba_path() else { return Ok(None) };
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (_, instance, _) = identity::current();
    let role = current_role();
    let state = stamp::inspect(Some(&text), &instance, &role);
    let why = match &state {
        State::OtherRole { stamp } => format!(
            "this instance is {role} now, the file was rendered for it as {}",
            stamp.role
        ),
        State::OtherInstance { stamp } => {
            // A copy arrives with a data directory; a file outside it may be shared on purpose.
            let inside = data_directory().is_some_and(|d| std::path::Path::new(&path).starts_with(d));
            if !inside {
                return Err(crate::error::Error::new(
                    crate::error::Code::ObjectNotInPrerequisiteState,
                    format!(
                        "{path} was rendered for {} and lies outside the data directory: not re-rendered \
                         (two servers sharing one file would rewrite it in turn); run pgops.apply_hba() here if it is this server's",
                        stamp.instance
                    ),
                ));
            }
            let started = FIRST_TURN.get_or_init(std::time::Instant::now);
            let etcd_on = !gucs::etcd().endpoints.is_empty();
            if etcd_on && crate::patroni::view().is_none() && started.elapsed() < FIRST_READ_WAIT {
                return Ok(Some(POLL));
            }
            // A name that etcd's keys decide never makes pgops replace what it wrote here: only a
            // set name, or a file that says another server wrote it (a copy).
            if !stamp::may_replace_copy(stamp, identity::name_is_set(), &identity::this_server()) {
                return Err(crate::error::Error::new(
                    crate::error::Code::ObjectNotInPrerequisiteState,
                    format!(
                        "{path} was rendered for {} on {}; this server's name {instance} is not set by pgops.instance_name \
                         (it comes from Patroni's keys in etcd, or the default): not re-rendered and no backup removed \
                         (a writer of etcd could rename this server); set pgops.instance_name, or run pgops.apply_hba() \
                         if the new name is right",
                        stamp.instance,
                        if stamp.written_on.is_empty() { "an unnamed server".to_string() } else { stamp.written_on.clone() }
                    ),
                ));
            }
            format!(
                "the file was rendered for {} as {} and copied here with the data directory",
                stamp.instance, stamp.role
            )
        }
        State::Current | State::Edited { .. } => return Ok(Some(POLL)),
        State::Patroni | State::Unstamped | State::Missing => return Ok(None),
    };
    {
        let mut writes = WRITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        writes.retain(|t| t.elapsed() < WINDOW);
        if writes.len() >= MAX_WRITES {
            return Err(crate::error::Error::new(
                crate::error::Code::ObjectNotInPrerequisiteState,
                format!(
                    "{path} was re-rendered {MAX_WRITES} times in {} minutes and is again not this instance's ({why}): \
                     left alone; is another server writing it?",
                    WINDOW.as_secs() / 60
                ),
            ));
        }
    }
    let trigger = Trigger::Follow {
        why: why.clone(),
        expected: bytes,
        rendered: None,
    };
    let outcome = xact::run("pgops launcher: re-render pg_hba.conf", || {
        Ok(apply(&trigger, false).map(|o| o.status))
    })
    .map_err(|e| {
        crate::error::Error::new(
            e.code,
            format!("cannot re-render pg_hba.conf ({why}): {}", e.one_line()),
        )
    })?;
    let Some(status) = outcome else {
        // Another apply holds the lock, or the file changed since it was read: next turn.
        return Ok(Some(POLL));
    };
    if status != "unchanged" {
        WRITES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(std::time::Instant::now());
    }
    if let State::OtherInstance { stamp } = &state {
        // The copied file's owner's backups came with it; this instance's own stay.
        let (copied, _) = super::file::backups(std::path::Path::new(&path), &stamp.instance);
        let removed = copied.iter().filter(|p| std::fs::remove_file(p).is_ok()).count();
        if removed > 0 {
            server_log!(
                "pgops launcher: removed {removed} backup(s) of {}'s pg_hba.conf copied with the data directory",
                stamp.instance
            );
        }
    }
    Ok(Some(POLL))
}
