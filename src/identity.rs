//! Who this instance is: the pure naming rules live in the core crate; `current()` reads the
//! server's settings.

pub use pgops_core::identity::*;

/// This server's (cluster, instance, hostname), from pgops' settings, the server's
/// `cluster_name` and, under Patroni, this server's member name as the etcd worker last read it.
pub fn current() -> (String, String, String) {
    // SAFETY: a GUC variable of the server, read on a backend's main thread.
    let server_cluster = unsafe {
        let p = pgrx::pg_sys::cluster_name;
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    let host = hostname();
    let cluster = cluster_name(
        crate::gucs::cluster_name_setting().as_deref(),
        server_cluster.as_deref(),
    );
    // SAFETY: the server's port setting, fixed at start.
    let port = unsafe { pgrx::pg_sys::PostPortNumber };
    let setting = crate::gucs::instance_name_setting();
    // The Patroni member name is looked up only when no setting names the instance.
    let member = if setting.is_none() {
        crate::patroni::member_name()
    } else {
        None
    };
    let instance = instance_name(setting.as_deref(), member.as_deref(), &cluster, &host, port);
    (cluster, instance, host)
}

/// Whether `pgops.instance_name` names this server: the only name nobody but its DBA can change
/// (the Patroni member name, and the default it falls back to, depend on etcd's keys).
pub fn name_is_set() -> bool {
    crate::gucs::instance_name_setting().is_some()
}

/// This server as `host:port`, as pg_hba.conf stamps record who wrote them.
pub fn this_server() -> String {
    // SAFETY: the server's port setting, fixed at start.
    let port = unsafe { pgrx::pg_sys::PostPortNumber };
    format!("{}:{port}", hostname())
}
