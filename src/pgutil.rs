//! Small helpers shared by the SQL-facing modules: settings, a cluster-wide lock, snapshots.

use pgrx::prelude::*;

/// A PostgreSQL `TimestampTz` (µs since 2000-01-01) kept in shared memory, 0 meaning "never".
pub fn timestamp(v: i64) -> Option<TimestampWithTimeZone> {
    (v != 0).then(|| TimestampWithTimeZone::try_from(v).ok()).flatten()
}

/// A text column from a bounded string, NULL when empty.
pub fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// A server setting as text (empty when the setting does not exist).
pub fn setting(name: &str) -> String {
    crate::spi::get_one_with_args::<String>("SELECT current_setting($1, true)", &[name.into()])
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The bootstrap superuser's name (the role with OID 10, whatever initdb called it).
pub fn bootstrap_superuser() -> String {
    // SAFETY: a catalog lookup by OID inside a transaction; the result is a palloc'd C string.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID), false);
        std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// The database this backend is connected to.
pub fn current_database() -> String {
    crate::spi::get_one::<String>("SELECT current_database()::text")
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Takes a transaction-level advisory lock for the whole cluster (database 0 in pg_locks), so
/// that callers in different databases serialise. Waits honour lock_timeout and cancel.
pub fn cluster_lock(key: u64) {
    cluster_lock_inner(key, false);
}

/// `cluster_lock` without waiting: false when another transaction holds it.
pub fn try_cluster_lock(key: u64) -> bool {
    cluster_lock_inner(key, true)
}

fn cluster_lock_inner(key: u64, dont_wait: bool) -> bool {
    let tag = pg_sys::LOCKTAG {
        locktag_field1: 0,
        locktag_field2: (key >> 32) as u32,
        locktag_field3: key as u32,
        locktag_field4: 1,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    };
    // SAFETY: a lock tag built above, inside a transaction; released at its end.
    let r = unsafe { pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, false, dont_wait) };
    r != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// Runs `f` with a new snapshot on top of the active-snapshot stack: read-only SPI reads use the
/// active snapshot, which the calling statement took before any wait (for a lock, say); under
/// READ COMMITTED this one sees what committed meanwhile. Popped on success, released by the
/// abort on error.
pub fn with_fresh_snapshot<R>(f: impl FnOnce() -> R) -> R {
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let r = f();
    unsafe { pg_sys::PopActiveSnapshot() };
    r
}
