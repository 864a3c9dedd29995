//! What pgops publishes to etcd and when. Pure.
//!
//! Keys: `{prefix}/{cluster}/pgops/members/{instance}` — inside the cluster's own prefix (so a
//! Pigsty per-cluster etcd user may write it) and inside pgops' own `pgops/` subtree (so it can
//! never collide with Patroni's `leader`, `members/`, `config`, `status`, `failover`, `sync`,
//! `history`…). Names that would escape that subtree are refused.
//!
//! Values: versioned JSON (`{"schema": 1, ...}`). The pusher writes only when the content changed
//! (or under a new lease): the lease keepalive every interval proves the instance is alive, so an
//! idle cluster's documents cause no revisions and wake no watcher (Patroni watches its prefix).
//! A change of state (role, timeline, peers, drift…) is written at once; progress alone (LSNs,
//! lags, XID ages) at most every half TTL. `updated_at` is when the document was last written. It backs off exponentially, capped at the push
//! interval, when etcd fails — so it resumes within two intervals once etcd is back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::invalid;

pub const SCHEMA: u32 = 1;

/// Checks the configured prefix and names and returns the member key, or why it is refused.
pub fn member_key(prefix: &str, cluster: &str, instance: &str) -> Result<String> {
    // Patroni writes its namespace with a trailing slash (`namespace: /pg/`): the same prefix.
    let prefix = match prefix.trim_end_matches('/') {
        "" if prefix.starts_with('/') => "/",
        p => p,
    };
    if !prefix.starts_with('/') || prefix.contains("//") {
        return Err(invalid!(
            "pgops.etcd_prefix \"{prefix}\" must start with / (e.g. /pg, as Patroni's namespace)"
        ));
    }
    for (what, name) in [("cluster", cluster), ("instance", instance)] {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.chars().any(char::is_control) {
            return Err(invalid!(
                "the {what} name \"{name}\" cannot be part of an etcd key (empty, '/', '.', '..' or control characters)"
            ));
        }
    }
    let prefix = if prefix == "/" { "" } else { prefix };
    Ok(format!("{prefix}/{cluster}/pgops/members/{instance}"))
}

/// The prefix under which every member of the cluster publishes.
pub fn members_prefix(prefix: &str, cluster: &str) -> Result<String> {
    member_key(prefix, cluster, "x").map(|k| k[..k.len() - 1].to_string())
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: String,
    pub sync_state: String,
    pub replay_lag_seconds: Option<f64>,
    pub replay_lag_bytes: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    pub bytes: i64,
}

/// One instance's state as published.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberState {
    pub schema: u32,
    pub cluster: String,
    pub instance: String,
    pub hostname: String,
    pub port: i64,
    pub data_directory: String,
    /// Shared by a primary and its physical replicas.
    pub system_identifier: String,
    /// primary or replica
    pub role: String,
    pub timeline: Option<i64>,
    /// Primary: the current WAL insert position. Replica: what it received and replayed.
    pub current_lsn: Option<String>,
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub replay_lag_seconds: Option<f64>,
    pub replication: Vec<Peer>,
    pub server_version: String,
    pub started_at: String,
    #[serde(default)]
    pub databases: Vec<Database>,
    /// When the sizes were read (every few minutes, not every push).
    pub databases_checked_at: Option<String>,
    pub max_xid_age: i64,
    pub max_mxid_age: i64,
    pub xids_per_second: Option<f64>,
    pub seconds_to_freeze_max_age: Option<f64>,
    pub role_drift: Option<i64>,
    /// When role_drift was computed (every few minutes, not every push).
    pub role_drift_checked_at: Option<String>,
    /// Declared databases that differ from the catalog (pgops.database_drift_summary).
    #[serde(default)]
    pub database_drift: Option<i64>,
    #[serde(default)]
    pub database_drift_checked_at: Option<String>,
    pub hba_drift: Option<bool>,
    /// `pgops.hba_drift.state`: current, edited, other_role, other_instance, patroni, unstamped.
    #[serde(default)]
    pub hba_state: Option<String>,
    /// The last finished freeze run: job, database, status, finished_at.
    pub last_freeze: Option<serde_json::Value>,
    /// Each capability whose reconcile is on (pgops.reconcile_status): policy, state, since,
    /// held, failed, last_error.
    #[serde(default)]
    pub reconcile: Option<serde_json::Value>,
    /// The fleet this instance follows: fleet, generation loaded, seen_generation, state
    /// (converged / held / failed / refused), held, last_error.
    #[serde(default)]
    pub fleet: Option<serde_json::Value>,
    pub pgops_version: String,
    pub updated_at: String,
}

impl MemberState {
    /// A digest of everything but `updated_at`: equal digests mean nothing worth a write changed.
    pub fn content_digest(&self) -> u64 {
        let mut copy = self.clone();
        copy.updated_at.clear();
        digest_of(&copy)
    }

    /// A digest of everything but the progress fields — LSNs, lags, XID ages and forecasts,
    /// which move with every write the server takes — and `updated_at`.
    pub fn state_digest(&self) -> u64 {
        let mut copy = self.clone();
        copy.updated_at.clear();
        copy.current_lsn = None;
        copy.receive_lsn = None;
        copy.replay_lsn = None;
        copy.replay_lag_seconds = None;
        copy.max_xid_age = 0;
        copy.max_mxid_age = 0;
        copy.xids_per_second = None;
        copy.seconds_to_freeze_max_age = None;
        for p in &mut copy.replication {
            p.replay_lag_seconds = None;
            p.replay_lag_bytes = None;
        }
        digest_of(&copy)
    }

    pub fn digest(&self) -> Digest {
        Digest {
            state: self.state_digest(),
            content: self.content_digest(),
        }
    }
}

fn digest_of(s: &MemberState) -> u64 {
    use std::hash::{Hash, Hasher};
    let text = serde_json::to_string(s).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The two digests of a document: its state, and its whole content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    pub state: u64,
    pub content: u64,
}

impl From<u64> for Digest {
    /// A document whose every field is state.
    fn from(n: u64) -> Digest {
        Digest { state: n, content: n }
    }
}

/// Whether to write now: nothing written under this lease yet; the state changed (a role, a
/// timeline, a peer, drift, a database — at once); or only progress moved (LSNs, lags, ages) and
/// `progress_every` passed since the last write. An idle server writes nothing; a busy one
/// refreshes its progress at most every `progress_every`.
pub fn should_push(last: Option<(Digest, Duration)>, now: Digest, progress_every: Duration) -> bool {
    match last {
        None => true,
        Some((d, since)) => d.state != now.state || (d.content != now.content && since >= progress_every),
    }
}

/// Exponential backoff after failures, from one second, capped at the push interval.
pub fn retry_delay(failures: u32, interval: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    let d = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    d.min(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_in_pgops_subtree() {
        assert_eq!(
            member_key("/pg", "pg-meta", "pg-meta-1").unwrap(),
            "/pg/pg-meta/pgops/members/pg-meta-1"
        );
        assert_eq!(member_key("/", "c", "i").unwrap(), "/c/pgops/members/i");
        assert_eq!(members_prefix("/pg", "pg-meta").unwrap(), "/pg/pg-meta/pgops/members/");
        assert_eq!(
            member_key("/pg/", "pg-meta", "pg-meta-1").unwrap(),
            "/pg/pg-meta/pgops/members/pg-meta-1",
            "Patroni's spelling of the namespace"
        );
        for (p, c, i) in [
            ("pg", "c", "i"),
            ("//pg", "c", "i"),
            ("/pg", "a/b", "i"),
            ("/pg", "c", ".."),
            ("/pg", "", "i"),
        ] {
            assert!(member_key(p, c, i).is_err(), "{p} {c} {i}");
        }
    }

    #[test]
    fn versioned_json() {
        let s = MemberState {
            schema: SCHEMA,
            cluster: "c".into(),
            role: "primary".into(),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["role"], "primary");
        assert_eq!(serde_json::from_value::<MemberState>(v).unwrap(), s);
    }

    #[test]
    fn state_at_once_progress_at_most_every_half_ttl_nothing_when_idle() {
        let every = Duration::from_secs(15);
        let mut a = MemberState {
            schema: 1,
            role: "primary".into(),
            current_lsn: Some("0/1".into()),
            updated_at: "t1".into(),
            ..Default::default()
        };
        let d = a.digest();
        a.updated_at = "t2".into();
        assert_eq!(a.digest(), d, "updated_at alone is not a change");
        assert!(should_push(None, d, every));
        assert!(
            !should_push(Some((d, Duration::from_secs(3600))), d, every),
            "idle: never"
        );
        a.current_lsn = Some("0/2".into());
        a.max_xid_age = 5;
        let progress = a.digest();
        assert_eq!(progress.state, d.state);
        assert!(
            !should_push(Some((d, Duration::from_secs(1))), progress, every),
            "progress waits"
        );
        assert!(should_push(Some((d, every)), progress, every), "then goes out");
        a.role = "replica".into();
        assert!(
            should_push(Some((d, Duration::from_secs(1))), a.digest(), every),
            "state at once"
        );
    }

    #[test]
    fn backoff_is_bounded_by_the_interval() {
        let i = Duration::from_secs(10);
        let delays: Vec<u64> = (0..7).map(|f| retry_delay(f, i).as_secs()).collect();
        assert_eq!(delays, vec![10, 1, 2, 4, 8, 10, 10]);
        assert_eq!(retry_delay(1000, i), i);
    }
}
