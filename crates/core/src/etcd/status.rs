//! The pusher's status board in shared memory (plain fixed-size data), and the request counters
//! SQL functions use to ask the worker for a push or a read.
//!
//! A request: the backend bumps `*_requested` and wakes the worker; the worker copies the counter
//! before it starts, does the work, stores the result and sets `*_done` to the copied value. A
//! backend whose number is ≤ `*_done` has its answer (from work that started after it asked).

use heapless::String;

use crate::worker::registry::{Text, set_text};

pub type Long = String<1024>;

#[derive(Clone, Debug, Default)]
pub struct EtcdStatus {
    /// Publishing is configured (pgops.etcd_endpoints is not empty).
    pub enabled: bool,
    pub state: Text,
    pub endpoints: Long,
    pub endpoint: Text,
    pub key: Text,
    pub members_prefix: Text,
    pub lease_id: i64,
    pub lease_ttl: i64,
    pub interval_s: i64,
    pub last_attempt_at: i64,
    pub last_push_at: i64,
    pub last_write_at: i64,
    pub revision: i64,
    pub last_error: Text,
    pub last_error_at: i64,
    pub next_push_at: i64,
    pub pushes: u64,
    pub writes: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub leases_granted: u64,
    /// Microseconds the last push took (HTTP only) and the last state collection took.
    pub last_push_us: i64,
    pub last_collect_us: i64,

    pub push_requested: u64,
    pub push_done: u64,
    pub push_ok: bool,
    pub push_wrote: bool,
    pub push_error: Text,
    pub push_us: i64,

    pub read_requested: u64,
    pub read_done: u64,
    pub read_error: Text,
}

/// The outcome of one push attempt, as the worker records it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub at: i64,
    pub took_us: i64,
    pub result: Result<AttemptOk, std::string::String>,
}

#[derive(Clone, Debug, Default)]
pub struct AttemptOk {
    pub wrote: bool,
    pub revision: i64,
    pub lease: i64,
    pub ttl: i64,
    pub new_lease: bool,
    pub endpoint: std::string::String,
}

impl EtcdStatus {
    pub fn set_state(&mut self, s: &str) {
        set_text(&mut self.state, s);
    }

    /// Publishing configured (or reconfigured): counters survive, the session's facts do not.
    pub fn configure(&mut self, endpoints: &str, key: &str, members_prefix: &str, interval_s: i64) {
        self.enabled = true;
        set_text(&mut self.endpoints, endpoints);
        set_text(&mut self.key, key);
        set_text(&mut self.members_prefix, members_prefix);
        self.interval_s = interval_s;
        self.endpoint.clear();
        self.lease_id = 0;
        self.lease_ttl = 0;
    }

    pub fn disable(&mut self, why: &str) {
        self.enabled = false;
        self.endpoints.clear();
        self.endpoint.clear();
        self.key.clear();
        self.members_prefix.clear();
        self.lease_id = 0;
        self.lease_ttl = 0;
        self.next_push_at = 0;
        self.set_state(why);
    }

    pub fn record_error(&mut self, message: &str, at: i64) {
        set_text(&mut self.last_error, message);
        self.last_error_at = at;
    }

    /// Records a push attempt; returns the consecutive failures so far (0 after a success).
    pub fn record(&mut self, a: &Attempt) -> u32 {
        self.last_attempt_at = a.at;
        self.last_push_us = a.took_us;
        match &a.result {
            Ok(ok) => {
                self.pushes += 1;
                self.consecutive_failures = 0;
                self.last_push_at = a.at;
                self.lease_id = ok.lease;
                self.lease_ttl = ok.ttl;
                set_text(&mut self.endpoint, &ok.endpoint);
                if ok.new_lease {
                    self.leases_granted += 1;
                }
                if ok.wrote {
                    self.writes += 1;
                    self.last_write_at = a.at;
                    self.revision = ok.revision;
                }
                self.set_state("publishing");
            }
            Err(e) => {
                self.failures += 1;
                self.consecutive_failures += 1;
                self.record_error(e, a.at);
                self.set_state("retrying (see last_error)");
            }
        }
        self.consecutive_failures
    }

    /// Records the answer to a push_now request numbered `seq`.
    pub fn answer_push(&mut self, seq: u64, a: &Attempt) {
        self.push_ok = a.result.is_ok();
        self.push_wrote = a.result.as_ref().is_ok_and(|o| o.wrote);
        match &a.result {
            Ok(_) => self.push_error.clear(),
            Err(e) => set_text(&mut self.push_error, e),
        }
        self.push_us = a.took_us;
        self.push_done = self.push_done.max(seq);
    }

    pub fn answer_read(&mut self, seq: u64, error: Option<&str>) {
        match error {
            Some(e) => set_text(&mut self.read_error, e),
            None => self.read_error.clear(),
        }
        self.read_done = self.read_done.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(wrote: bool, new_lease: bool) -> Attempt {
        Attempt {
            at: 10,
            took_us: 500,
            result: Ok(AttemptOk {
                wrote,
                revision: 7,
                lease: 99,
                ttl: 30,
                new_lease,
                endpoint: "http://127.0.0.1:2379".into(),
            }),
        }
    }

    #[test]
    fn counts_pushes_writes_failures_and_leases() {
        let mut s = EtcdStatus::default();
        s.configure("http://a,http://b", "/pg/c/pgops/members/i", "/pg/c/pgops/members/", 10);
        assert_eq!(s.record(&ok(true, true)), 0);
        assert_eq!(s.record(&ok(false, false)), 0);
        let fail = Attempt {
            at: 20,
            took_us: 2_000_000,
            result: Err("etcd unreachable: http://a: timed out".into()),
        };
        assert_eq!(s.record(&fail), 1);
        assert_eq!(s.record(&fail), 2);
        assert_eq!(
            (s.pushes, s.writes, s.failures, s.leases_granted, s.revision, s.lease_id),
            (2, 1, 2, 1, 7, 99)
        );
        assert_eq!(s.state.as_str(), "retrying (see last_error)");
        assert_eq!((s.last_push_at, s.last_error_at, s.last_attempt_at), (10, 20, 20));
        assert_eq!(s.record(&ok(true, true)), 0);
        assert_eq!(s.leases_granted, 2);
        assert_eq!(
            s.last_error.as_str(),
            "etcd unreachable: http://a: timed out",
            "kept for the record"
        );
        s.disable("off");
        assert!(!s.enabled && s.key.is_empty() && s.lease_id == 0);
        assert_eq!(s.pushes, 3, "counters survive");
    }

    #[test]
    fn answers_never_go_backwards() {
        let mut s = EtcdStatus::default();
        s.answer_push(5, &ok(true, false));
        s.answer_push(3, &ok(false, false));
        assert_eq!(s.push_done, 5);
        s.answer_read(2, Some("boom"));
        assert_eq!((s.read_done, s.read_error.as_str()), (2, "boom"));
        s.answer_read(4, None);
        assert_eq!((s.read_done, s.read_error.as_str()), (4, ""));
    }
}
