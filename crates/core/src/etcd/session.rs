//! One instance's publishing session with etcd: its lease, its key, and what it last wrote.
//!
//! Each `push` refreshes the lease (keepalive) — granting a new one when none exists yet or the
//! old one expired while etcd was unreachable — and writes the member document only when it
//! changed (progress alone — LSNs, lags, ages — at most every half TTL), when the lease is new, or
//! when asked to (`force`): the keepalive alone proves liveness. Before the first write under a new lease it reads the key: a live key written by
//! another instance (another host, port or data directory under the same instance name) is a
//! conflict, reported and left alone, never overwritten. `revoke` ends the session: etcd deletes
//! the key with the lease.
//!
//! Plain Rust over the client; it never touches PostgreSQL.

use std::time::Duration;

use super::client::{Client, Config, Error, Kv};
use super::state::{Digest, should_push};

/// What identifies the process that writes a member key (the same instance name on two servers
/// is a configuration mistake pgops refuses to paper over).
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    pub hostname: String,
    pub port: i64,
    pub data_directory: String,
}

impl Owner {
    /// The owner recorded in a member document, if it is one pgops wrote.
    /// The document is a peer's: one over 64 KiB is not read, and the names are kept short and
    /// printable (they reach etcd_status and the log).
    pub fn of_document(value: &[u8]) -> Option<Owner> {
        if value.len() > 64 << 10 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(value).ok()?;
        let clean = |s: &str| s.chars().filter(|c| !c.is_control()).take(256).collect::<String>();
        Some(Owner {
            hostname: clean(v["hostname"].as_str()?),
            port: v["port"].as_i64()?,
            data_directory: clean(v["data_directory"].as_str()?),
        })
    }

    fn describe(&self) -> String {
        format!("{}:{} ({})", self.hostname, self.port, self.data_directory)
    }
}

/// The outcome of one successful push.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The document was written (not only the lease refreshed).
    pub wrote: bool,
    /// etcd's revision after the write (0 when nothing was written).
    pub revision: i64,
    pub lease: i64,
    /// The TTL etcd granted the lease.
    pub ttl: i64,
    /// A lease was granted in this push (first push, or the old one had expired).
    pub new_lease: bool,
    /// The endpoint that answered.
    pub endpoint: String,
}

struct Written {
    digest: Digest,
    at: std::time::Instant,
    /// etcd's revision of that write: the key's mod_revision while nobody else touched it.
    revision: i64,
    /// Pushes since the key was last read back.
    unchecked: u32,
}

/// Every this many pushes without a write, the key is read back (a read makes no revision): a
/// document deleted or overwritten behind pgops' back is written again.
pub const CHECK_EVERY: u32 = 10;

pub struct Session {
    client: Client,
    ttl: i64,
    lease: Option<(i64, i64)>,
    written: Option<Written>,
    /// The key was found free or ours under the current lease.
    owner_verified: bool,
}

impl Session {
    pub fn new(cfg: Config, ttl: Duration) -> Result<Session, Error> {
        Ok(Session {
            client: Client::new(cfg)?,
            ttl: ttl.as_secs().max(1) as i64,
            lease: None,
            written: None,
            owner_verified: false,
        })
    }

    /// A rotated password: the lease and the key stay as they are.
    pub fn set_password(&mut self, password: Option<String>) {
        self.client.set_password(password);
    }

    /// The lease currently held (id, granted TTL), if any.
    pub fn lease(&self) -> Option<(i64, i64)> {
        self.lease
    }

    pub fn endpoint(&self) -> String {
        self.client.endpoint().to_string()
    }

    /// Keeps the lease alive (or gets a new one) and writes `value` at `key` when needed.
    pub fn push(
        &mut self,
        key: &str,
        value: &[u8],
        digest: impl Into<Digest>,
        owner: &Owner,
        force: bool,
    ) -> Result<Report, Error> {
        let digest = digest.into();
        let mut new_lease = false;
        let alive = match self.lease {
            Some((id, _)) => self.client.lease_keepalive(id)?.map(|ttl| (id, ttl)),
            None => None,
        };
        let (lease, ttl) = match alive {
            Some(l) => l,
            None => {
                // Never granted, or expired while etcd could not be reached: the key went with it.
                self.lease = None;
                self.written = None;
                self.owner_verified = false;
                let granted = self.client.lease_grant(self.ttl)?;
                self.lease = Some(granted);
                new_lease = true;
                granted
            }
        };
        if let Some(w) = self.written.as_mut() {
            w.unchecked += 1;
            if w.unchecked >= CHECK_EVERY {
                w.unchecked = 0;
                let revision = w.revision;
                let now = self.client.range(key.as_bytes(), None, 1)?.into_iter().next();
                if now.is_none_or(|kv| kv.mod_revision != revision) {
                    // Gone or changed: written again, after the owner check.
                    self.written = None;
                    self.owner_verified = false;
                }
            }
        }
        if !self.owner_verified {
            // Checked under every new lease, and again after any failure in between.
            if let Some(existing) = self.client.range(key.as_bytes(), None, 1)?.into_iter().next() {
                if let Err(e) = self.check_owner(key, &existing, owner, lease) {
                    self.give_back();
                    return Err(e);
                }
            }
            self.owner_verified = true;
        }
        let last = self.written.as_ref().map(|w| (w.digest, w.at.elapsed()));
        let mut report = Report {
            lease,
            ttl,
            new_lease,
            ..Report::default()
        };
        if new_lease || force || should_push(last, digest, Duration::from_secs(self.ttl as u64) / 2) {
            let (revision, prev) = self.client.put_prev(key.as_bytes(), value, Some(lease))?;
            // Two servers that started at the same moment both found the key empty: the write
            // itself says whose it was. The one that finds another's document gives way.
            if let Some(prev) = prev {
                if let Err(e) = self.check_owner(key, &prev, owner, lease) {
                    self.give_back();
                    return Err(e);
                }
            }
            report.revision = revision;
            report.wrote = true;
            self.written = Some(Written {
                digest,
                at: std::time::Instant::now(),
                revision,
                unchecked: 0,
            });
        }
        report.endpoint = self.endpoint();
        Ok(report)
    }

    fn check_owner(&self, key: &str, existing: &Kv, owner: &Owner, our_lease: i64) -> Result<(), Error> {
        if existing.lease == our_lease {
            return Ok(());
        }
        match Owner::of_document(&existing.value) {
            // Our own previous incarnation (a restart before its lease expired): take the key over.
            Some(o) if o == *owner => Ok(()),
            Some(o) => Err(Error::Conflict(format!(
                "key {key} is held by another instance, {} (lease {}); give each instance its own pgops.instance_name",
                o.describe(),
                existing.lease
            ))),
            None => Err(Error::Conflict(format!(
                "key {key} exists and was not written by pgops; remove it or choose another pgops.instance_name"
            ))),
        }
    }

    /// After a conflict: revoke the lease (best effort) and forget it, so the next push starts
    /// over with a new lease and a new check.
    fn give_back(&mut self) {
        let _ = self.revoke();
        self.lease = None;
        self.written = None;
        self.owner_verified = false;
    }

    /// Every key under `prefix` (at most `limit`).
    pub fn read_prefix(&mut self, prefix: &str, limit: i64) -> Result<Vec<Kv>, Error> {
        self.client.range_prefix(prefix.as_bytes(), limit)
    }

    /// Revokes the lease (etcd deletes the key with it). Returns whether there was one.
    pub fn revoke(&mut self) -> Result<bool, Error> {
        let Some((id, _)) = self.lease else { return Ok(false) };
        self.client.lease_revoke(id)?;
        self.lease = None;
        self.written = None;
        self.owner_verified = false;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::testing::RealEtcd;

    fn cfg(endpoints: Vec<String>) -> Config {
        Config {
            endpoints,
            timeout: Duration::from_secs(2),
            ..Config::default()
        }
    }

    fn me() -> Owner {
        Owner {
            hostname: "h1".into(),
            port: 5432,
            data_directory: "/data".into(),
        }
    }

    fn doc(owner: &Owner, n: i64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schema": 1, "hostname": owner.hostname, "port": owner.port,
            "data_directory": owner.data_directory, "n": n
        }))
        .unwrap()
    }

    const KEY: &str = "/pg/t/pgops/members/t-1";

    #[test]
    fn writes_only_when_needed_and_regrants_an_expired_lease() {
        let e = RealEtcd::start(1);
        let mut s = Session::new(cfg(e.urls.clone()), Duration::from_secs(6)).unwrap();
        let r = s.push(KEY, &doc(&me(), 1), 1, &me(), false).unwrap();
        assert!(r.wrote && r.new_lease && r.revision > 0, "{r:?}");
        assert_eq!(r.ttl, 6);
        // Same content: the lease is refreshed, nothing written — also past half the TTL.
        let r2 = s.push(KEY, &doc(&me(), 1), 1, &me(), false).unwrap();
        assert!(!r2.wrote && !r2.new_lease && r2.lease == r.lease, "{r2:?}");
        std::thread::sleep(Duration::from_millis(3100));
        let r2 = s.push(KEY, &doc(&me(), 1), 1, &me(), false).unwrap();
        assert!(!r2.wrote && r2.lease == r.lease, "{r2:?}");
        let version = |admin: &mut Client| admin.range(KEY.as_bytes(), None, 1).unwrap()[0].version;
        let mut admin = Client::new(cfg(e.urls.clone())).unwrap();
        assert_eq!(version(&mut admin), 1, "one write so far");
        // Changed content, or forced: written.
        assert!(s.push(KEY, &doc(&me(), 2), 2, &me(), false).unwrap().wrote);
        assert!(!s.push(KEY, &doc(&me(), 2), 2, &me(), false).unwrap().wrote);
        assert!(s.push(KEY, &doc(&me(), 2), 2, &me(), true).unwrap().wrote);
        assert_eq!(version(&mut admin), 3);
        // Progress alone (the same state, other content): held back until half the TTL passed
        // since the last write, then written.
        let progress = Digest { state: 2, content: 3 };
        assert!(!s.push(KEY, &doc(&me(), 3), progress, &me(), false).unwrap().wrote);
        std::thread::sleep(Duration::from_millis(3100));
        assert!(s.push(KEY, &doc(&me(), 3), progress, &me(), false).unwrap().wrote);
        assert_eq!(version(&mut admin), 4);

        // Deleted behind our back while the lease lives: read back within CHECK_EVERY pushes and
        // written again.
        admin.delete(KEY.as_bytes(), None).unwrap();
        let rewritten = (0..CHECK_EVERY).any(|_| s.push(KEY, &doc(&me(), 2), 2, &me(), false).unwrap().wrote);
        assert!(rewritten && version(&mut admin) == 1, "a new key, written once");
        assert!(!s.push(KEY, &doc(&me(), 2), 2, &me(), false).unwrap().wrote);

        // The lease expires behind our back (as when etcd was unreachable for longer than the TTL).
        admin.lease_revoke(r.lease).unwrap();
        assert!(admin.range(KEY.as_bytes(), None, 1).unwrap().is_empty());
        let r3 = s.push(KEY, &doc(&me(), 2), 2, &me(), false).unwrap();
        assert!(r3.new_lease && r3.wrote && r3.lease != r.lease, "{r3:?}");
        let kv = admin.range(KEY.as_bytes(), None, 1).unwrap().remove(0);
        assert_eq!(kv.lease, r3.lease);

        // Revoke: the key is gone at once.
        assert!(s.revoke().unwrap());
        assert!(admin.range(KEY.as_bytes(), None, 1).unwrap().is_empty());
        assert!(!s.revoke().unwrap(), "nothing left to revoke");
    }

    #[test]
    fn another_instance_under_the_same_name_is_a_conflict_not_overwritten() {
        let e = RealEtcd::start(1);
        let other = Owner {
            hostname: "h2".into(),
            ..me()
        };
        let mut a = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        a.push(KEY, &doc(&other, 1), 1, &other, false).unwrap();
        let mut b = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        match b.push(KEY, &doc(&me(), 1), 9, &me(), false) {
            Err(Error::Conflict(m)) => assert!(m.contains("h2:5432") && m.contains("pgops.instance_name"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Asking again is refused again (the check is not a one-off of the first lease).
        assert!(matches!(
            b.push(KEY, &doc(&me(), 1), 9, &me(), false),
            Err(Error::Conflict(_))
        ));
        assert_eq!(b.lease(), None, "the refused session holds no lease");
        let mut admin = Client::new(cfg(e.urls.clone())).unwrap();
        let kv = admin.range(KEY.as_bytes(), None, 1).unwrap().remove(0);
        assert_eq!(Owner::of_document(&kv.value), Some(other.clone()), "left untouched");
        // Our own previous incarnation (same host, port, directory) is taken over.
        let mut again = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        let r = again.push(KEY, &doc(&other, 2), 2, &other, false).unwrap();
        assert!(r.wrote);
        assert_eq!(admin.range(KEY.as_bytes(), None, 1).unwrap()[0].lease, r.lease);
        // A key pgops did not write is not ours either.
        admin.put(b"/pg/t/pgops/members/x", b"not json", None).unwrap();
        let mut c = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        assert!(matches!(
            c.push("/pg/t/pgops/members/x", &doc(&me(), 1), 1, &me(), false),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn two_servers_starting_together_end_with_one_owner() {
        let e = RealEtcd::start(1);
        let other = Owner {
            hostname: "h2".into(),
            ..me()
        };
        let mut a = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        let mut b = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        // Both find the key free (a checks, then b checks before a writes: simulated by the
        // order below — b's first push happens after a's check but a's write lands first).
        a.push(KEY, &doc(&me(), 1), 1, &me(), false).unwrap();
        b.owner_verified = true; // as if b had checked while the key was still free
        b.lease = Some(b.client.lease_grant(10).unwrap());
        match b.push(KEY, &doc(&other, 1), 2, &other, true) {
            Err(Error::Conflict(m)) => assert!(m.contains("h1:5432"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.lease(), None, "the loser gave its lease back");
        // The winner's next write restores its document; the loser stays out.
        a.push(KEY, &doc(&me(), 2), 3, &me(), true).unwrap();
        let mut admin = Client::new(cfg(e.urls.clone())).unwrap();
        let kv = admin.range(KEY.as_bytes(), None, 1).unwrap().remove(0);
        assert_eq!(Owner::of_document(&kv.value), Some(me()));
        assert!(matches!(
            b.push(KEY, &doc(&other, 1), 2, &other, false),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn a_three_member_cluster_survives_losing_the_connected_member() {
        let mut e = RealEtcd::start(3);
        let mut s = Session::new(cfg(e.urls.clone()), Duration::from_secs(10)).unwrap();
        let r = s.push(KEY, &doc(&me(), 1), 1, &me(), false).unwrap();
        assert_eq!(r.endpoint, e.urls[0]);
        e.kill(0);
        // Keepalive and write go to another member; the lease is the same (leases are cluster-wide).
        let mut r2 = None;
        for _ in 0..50 {
            // Right after a member dies the survivors may need a moment to elect a leader.
            match s.push(KEY, &doc(&me(), 2), 2, &me(), false) {
                Ok(r) => {
                    r2 = Some(r);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        let r2 = r2.expect("pushes continue through another member");
        assert!(r2.wrote && !r2.new_lease && r2.lease == r.lease, "{r2:?}");
        assert_ne!(r2.endpoint, e.urls[0]);
        let mut reader = Client::new(cfg(vec![e.urls[2].clone()])).unwrap();
        let kv = reader.range(KEY.as_bytes(), None, 1).unwrap().remove(0);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&kv.value).unwrap()["n"], 2);
    }
}
