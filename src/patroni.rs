//! Patroni, read from etcd by the etcd worker (never written): the worker leaves what it read in
//! `VIEW_FILE` (in pg_stat_tmp, which pg_basebackup does not copy); the instance name, the HBA
//! lock-out guard, `hba_lint` and `hba_drift` read it from there. The decisions are the core
//! crate's (`pgops_core::patroni`).

pub use pgops_core::patroni::*;

/// Where the etcd worker leaves its last read of Patroni's keys (relative to the data directory).
pub const VIEW_FILE: &str = "pg_stat_tmp/pgops.patroni.json";

/// The key prefix of Patroni's keys: `pgops.patroni_namespace` (else `pgops.etcd_prefix`) and
/// `pgops.patroni_scope` (else the cluster name).
pub fn key_prefix(cluster: &str) -> crate::error::Result<String> {
    let ns = crate::gucs::patroni_namespace().unwrap_or_else(|| crate::gucs::etcd().prefix);
    let scope = crate::gucs::patroni_scope().unwrap_or_else(|| cluster.to_string());
    prefix(&ns, &scope)
}

/// The last view the etcd worker wrote (None: no etcd, no Patroni read yet).
pub fn view() -> Option<View> {
    let text = std::fs::read(VIEW_FILE).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Replaces the view file (a temporary file and a rename: readers never see half a file).
pub fn write_view(v: &View) -> Result<(), String> {
    let tmp = format!("{VIEW_FILE}.tmp");
    std::fs::write(&tmp, serde_json::to_vec(v).map_err(|e| e.to_string())?)
        .and_then(|()| std::fs::rename(&tmp, VIEW_FILE))
        .map_err(|e| format!("cannot write {VIEW_FILE}: {e}"))
}

/// This server's Patroni member name, when the last view found one.
pub fn member_name() -> Option<String> {
    view().and_then(|v| v.me)
}
