//! Reconcile: what pgops applies by itself, turn after turn, without a call.
//!
//! Per capability (roles, databases, pg_hba.conf) a policy says how far the launcher may go:
//! `off` does nothing, `report` plans and records what it would do, `safe` applies only rows that
//! take nothing away, `all` applies revokes too. Drops and baselines in a database that exists
//! always wait for the plan_hash of a plan a DBA reviewed, whatever the policy. A statement that
//! failed is not tried again every turn: it backs off (the interval, doubled per failure, at most
//! an hour) and is shown as held meanwhile.

use std::collections::BTreeMap;

use crate::risk::Risk;

/// How far the launcher may go for one capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Off,
    Report,
    Safe,
    All,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Report => "report",
            Policy::Safe => "safe",
            Policy::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Policy::Off),
            "report" => Some(Policy::Report),
            "safe" => Some(Policy::Safe),
            "all" => Some(Policy::All),
            _ => None,
        }
    }
}

/// Whether a planned row of this risk is applied under `policy`; None: applied, Some: why it is
/// held (shown in the status and the history).
pub fn hold_reason(policy: Policy, risk: Risk, setting: &str) -> Option<String> {
    match (policy, risk) {
        // A note never runs, whoever asks: it is a difference left to the DBA.
        (_, Risk::Note) => Some("a note: nothing runs, the DBA decides".into()),
        (_, Risk::Drop | Risk::Script) => Some(format!(
            "held: a {} waits for a reviewed plan (apply it by hand with the plan_hash of the plan you reviewed)",
            if risk == Risk::Drop { "drop" } else { "baseline in a database that exists" }
        )),
        (Policy::Off | Policy::Report, _) => Some(format!("held: {setting} = {}: reported, not applied", policy.as_str())),
        (Policy::Safe, Risk::Safe) => None,
        (Policy::Safe, Risk::Revoke | Risk::Clone) => Some(format!(
            "held: a {} is applied only with {setting} = all, or by hand",
            risk.as_str()
        )),
        (Policy::All, Risk::Safe | Risk::Revoke | Risk::Clone) => None,
    }
}

/// The longest a failing statement waits before it is tried again.
pub const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Failing statements and when each may be tried again. Kept in the launcher's memory: a restart
/// tries everything once more.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    entries: BTreeMap<String, (u32, i64, String)>,
}

impl Backoff {
    /// Why `key` is held at `now_ms` (None: it may run).
    pub fn holds(&self, key: &str, now_ms: i64) -> Option<String> {
        let (n, at, error) = self.entries.get(key)?;
        // The time, not a countdown: the status stays the same between tries (the history
        // records a changed outcome as a new row).
        (now_ms < *at).then(|| {
            format!(
                "held: failed {n} time{} (last: {error}); tried again after {}",
                if *n == 1 { "" } else { "s" },
                utc_time(*at)
            )
        })
    }

    /// Records a failure: the next try waits `base_ms` doubled per earlier failure, at most
    /// `MAX_BACKOFF_MS`.
    pub fn failed(&mut self, key: &str, error: &str, now_ms: i64, base_ms: i64) {
        let e = self.entries.entry(key.to_string()).or_insert((0, 0, String::new()));
        e.0 += 1;
        let wait = base_ms.max(1_000).saturating_mul(1_i64 << (e.0 - 1).min(20)).min(MAX_BACKOFF_MS);
        e.1 = now_ms.saturating_add(wait);
        e.2 = error.chars().take(200).collect();
    }

    pub fn succeeded(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets statements of `prefix` that are no longer planned (the cause was fixed another way).
    pub fn retain_planned(&mut self, prefix: &str, planned: &std::collections::BTreeSet<String>) {
        self.entries.retain(|k, _| !k.starts_with(prefix) || planned.contains(k));
    }

    /// The earliest time after `now_ms` a statement of `prefix` ("" for all) may be tried again
    /// (the launcher wakes for it).
    pub fn next_retry(&self, prefix: &str, now_ms: i64) -> Option<i64> {
        self.entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, (_, at, _))| *at)
            .filter(|at| *at > now_ms)
            .min()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `HH:MM:SS UTC` of a PostgreSQL timestamp in milliseconds (since 2000-01-01 UTC).
pub fn utc_time(pg_ms: i64) -> String {
    let s = (pg_ms / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

/// What one reconcile of one capability came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing left to apply.
    Converged,
    /// Rows wait: for a policy, a reviewed plan, or their back-off.
    Held,
    /// A statement failed, or the plan could not be made.
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Converged => "converged",
            State::Held => "held",
            State::Failed => "failed",
        }
    }

    /// From the rows' statuses after a run: any `failed…` makes it failed, any `held…` held.
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a str>) -> State {
        let mut s = State::Converged;
        for st in statuses {
            if st.starts_with("failed") {
                return State::Failed;
            }
            if st.starts_with("held") {
                s = State::Held;
            }
        }
        s
    }
}

/// The risk of replacing the live pg_hba.conf's active lines with the rendered ones. Lines
/// appended after every live line only meet connections that matched no line before (and were
/// rejected): that takes nothing away. Any other change (a line removed, changed, moved, or a
/// line put before one that exists) may change what an existing client meets: a revoke.
pub fn hba_change_risk(live: &[String], rendered: &[String]) -> Risk {
    if rendered.len() >= live.len() && rendered[..live.len()] == *live {
        Risk::Safe
    } else {
        Risk::Revoke
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        for p in [Policy::Off, Policy::Report, Policy::Safe, Policy::All] {
            assert_eq!(Policy::parse(p.as_str()), Some(p));
        }
        assert_eq!(Policy::parse(" SAFE "), Some(Policy::Safe));
        assert_eq!(Policy::parse("yes"), None);
    }

    #[test]
    fn safe_applies_only_what_takes_nothing_away() {
        let s = "pgops.reconcile_roles";
        assert_eq!(hold_reason(Policy::Safe, Risk::Safe, s), None);
        for r in [Risk::Revoke, Risk::Drop, Risk::Script, Risk::Clone, Risk::Note] {
            assert!(hold_reason(Policy::Safe, r, s).is_some(), "{r:?}");
        }
        assert!(hold_reason(Policy::Safe, Risk::Revoke, s).unwrap().contains("pgops.reconcile_roles = all"));
    }

    #[test]
    fn all_applies_revokes_but_drops_and_baselines_always_wait_for_review() {
        let s = "pgops.reconcile_roles";
        for r in [Risk::Safe, Risk::Revoke, Risk::Clone] {
            assert_eq!(hold_reason(Policy::All, r, s), None, "{r:?}");
        }
        assert!(hold_reason(Policy::All, Risk::Drop, s).unwrap().contains("reviewed plan"));
        assert!(hold_reason(Policy::All, Risk::Script, s).unwrap().contains("reviewed plan"));
        assert!(hold_reason(Policy::All, Risk::Note, s).is_some());
    }

    #[test]
    fn report_and_off_apply_nothing() {
        for p in [Policy::Off, Policy::Report] {
            for r in [Risk::Safe, Risk::Revoke, Risk::Drop, Risk::Script, Risk::Clone, Risk::Note] {
                assert!(hold_reason(p, r, "x").is_some(), "{p:?} {r:?}");
            }
        }
        assert!(hold_reason(Policy::Report, Risk::Safe, "pgops.reconcile_hba").unwrap().contains("= report"));
    }

    #[test]
    fn a_failing_statement_backs_off_doubling_up_to_an_hour() {
        let mut b = Backoff::default();
        assert_eq!(b.holds("k", 0), None);
        b.failed("k", "permission denied", 0, 10_000);
        assert_eq!(
            b.holds("k", 9_999).unwrap(),
            "held: failed 1 time (last: permission denied); tried again after 00:00:10 UTC"
        );
        assert_eq!(b.holds("k", 9_999), b.holds("k", 5_000), "the same status until the next try");
        assert_eq!(b.holds("k", 10_000), None);
        b.failed("k", "again", 10_000, 10_000);
        assert!(b.holds("k", 29_999).is_some());
        assert_eq!(b.holds("k", 30_000), None);
        assert_eq!(b.next_retry("", 10_000), Some(30_000));
        assert_eq!(b.next_retry("k", 10_000), Some(30_000));
        assert_eq!(b.next_retry("other", 10_000), None);
        for _ in 0..30 {
            b.failed("k", "again", 0, 10_000);
        }
        assert_eq!(b.next_retry("", 0), Some(MAX_BACKOFF_MS));
        b.succeeded("k");
        assert!(b.is_empty());
    }

    #[test]
    fn the_base_is_at_least_a_second_and_forgotten_statements_go() {
        let mut b = Backoff::default();
        b.failed("roles\u{0}a", "x", 0, 0);
        assert_eq!(b.next_retry("", 0), Some(1_000));
        b.failed("roles\u{0}b", "x", 0, 0);
        b.failed("hba\u{0}file", "x", 0, 0);
        let planned = ["roles\u{0}b".to_string()].into_iter().collect();
        b.retain_planned("roles\u{0}", &planned);
        assert_eq!(b.len(), 2);
        assert!(b.holds("roles\u{0}a", 0).is_none());
        assert!(b.holds("hba\u{0}file", 0).is_some());
    }

    #[test]
    fn times_are_utc_clock_times() {
        assert_eq!(utc_time(0), "00:00:00 UTC");
        assert_eq!(utc_time(((17 * 60 + 45) * 60 + 12) * 1000 + 999 + 86_400_000 * 9_000), "17:45:12 UTC");
    }

    #[test]
    fn the_state_of_a_run() {
        assert_eq!(State::of(["applied", "applied"]), State::Converged);
        assert_eq!(State::of(Vec::<&str>::new()), State::Converged);
        assert_eq!(State::of(["applied", "held: a revoke"]), State::Held);
        assert_eq!(State::of(["held: x", "failed: y", "applied"]), State::Failed);
    }

    #[test]
    fn hba_lines_appended_take_nothing_away_anything_else_may() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let live = l(&["local all postgres peer", "host all all 10.0.0.0/8 scram-sha-256"]);
        assert_eq!(hba_change_risk(&live, &live), Risk::Safe);
        let mut more = live.clone();
        more.push("host all all 0.0.0.0/0 reject".into());
        assert_eq!(hba_change_risk(&live, &more), Risk::Safe, "appended: only meets connections rejected before");
        let before = l(&["host all all 10.1.0.0/16 reject", "local all postgres peer", "host all all 10.0.0.0/8 scram-sha-256"]);
        assert_eq!(hba_change_risk(&live, &before), Risk::Revoke, "put first: may shadow a line that exists");
        assert_eq!(hba_change_risk(&live, &live[..1]), Risk::Revoke, "a line removed");
        let changed = l(&["local all postgres peer", "host all all 10.0.0.0/8 md5"]);
        assert_eq!(hba_change_risk(&live, &changed), Risk::Revoke);
        assert_eq!(hba_change_risk(&[], &live), Risk::Safe);
    }
}
