//! Applies the pinned session (the decided list is `pgops_core::worker::session`, with the reason
//! for every setting): before a worker connects, and right after.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;

pub use pgops_core::worker::session::*;

fn current_value(name: &CStr) -> Option<CString> {
    // SAFETY: GetConfigOption returns NULL for an unknown name (missing_ok) or a pointer to a
    // string owned by the GUC machinery, copied here at once.
    unsafe {
        let v = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!v.is_null()).then(|| CStr::from_ptr(v).to_owned())
    }
}

fn set_with_client_priority(name: &CStr, value: &CStr) -> bool {
    // SAFETY: plain GUC assignment in this process; WARNING (not ERROR) on a refused value so a
    // worker is never killed by one setting; the result is reported by the caller.
    let rc = unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_CLIENT,
            pg_sys::GucAction::GUC_ACTION_SET,
            true,
            pg_sys::WARNING as i32,
            false,
        )
    };
    rc > 0
}

/// Pins every setting in [`PINNED`] before the worker connects. Settings this server does not
/// have (a newer version's) are skipped; plpgsql's, before plpgsql is loaded, are kept by PostgreSQL
/// as custom settings that plpgsql adopts when it loads. Returns the names that could not be set.
pub fn pin_before_connect() -> Vec<&'static str> {
    let mut failed = Vec::new();
    for p in PINNED {
        let Ok(name) = CString::new(p.name) else { continue };
        let value = match p.pin {
            Pin::Fixed(v) => {
                if current_value(&name).is_none() && !p.name.contains('.') {
                    continue; // not a setting of this version
                }
                CString::new(v).ok()
            }
            Pin::Server => current_value(&name),
        };
        let Some(value) = value else { continue };
        if !set_with_client_priority(&name, &value) {
            failed.push(p.name);
        }
    }
    failed
}

/// After the connection: `session_authorization` or `role` attached to the database (PostgreSQL
/// lets its owner attach both) would make the worker run as another role; undo them. Then check
/// that the session is the bootstrap superuser's own and that the pins held; an error names what
/// is wrong (the worker does not run its task then).
pub fn after_connect() -> Result<(), String> {
    let bootstrap = pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID);
    // SAFETY: connected, outside a transaction; the name lookup needs one, so it runs in its own;
    // set_config_option reports a refusal as a WARNING and a 0, never an ERROR.
    unsafe {
        if pg_sys::GetSessionUserId() != bootstrap {
            pg_sys::StartTransactionCommand();
            let name = pg_sys::GetUserNameFromId(bootstrap, false);
            pg_sys::set_config_option(
                c"session_authorization".as_ptr(),
                name,
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_OVERRIDE,
                pg_sys::GucAction::GUC_ACTION_SET,
                true,
                pg_sys::WARNING as i32,
                false,
            );
            pg_sys::CommitTransactionCommand();
        }
    }
    // SAFETY: connected; "none" needs no catalog lookup; the override beats the database's value.
    unsafe {
        if pg_sys::GetUserId() != pg_sys::GetSessionUserId() {
            pg_sys::SetConfigOption(
                c"role".as_ptr(),
                c"none".as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_OVERRIDE,
            );
        }
        if pg_sys::GetSessionUserId() != bootstrap || pg_sys::GetUserId() != bootstrap {
            return Err(
                "the session is not the bootstrap superuser's: the database or role sets session_authorization or \
                 role, and it could not be undone (ALTER DATABASE … RESET …)"
                    .into(),
            );
        }
    }
    let path = current_value(c"search_path").unwrap_or_default();
    if path.to_str().map(|s| s.replace(' ', "")) != Ok(SEARCH_PATH.replace(' ', "")) {
        return Err(format!("search_path is {path:?}, not the pinned {SEARCH_PATH}"));
    }
    Ok(())
}
