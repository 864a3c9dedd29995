//! The status board of pgops' background workers.
//!
//! Plain fixed-size data (no pointers, no heap) so they can live in shared memory; the
//! shared-memory statics and locking are in `shmem.rs`. Everything here is pure and unit-tested.

use heapless::String;

/// Slots on the board: the launcher, future static workers, and dynamic per-database workers.
pub const MAX_SLOTS: usize = 32;

pub type Name = String<64>;
pub type Text = String<256>;

/// Copies `src` into a bounded string, cutting on a character boundary (with `…`) when too long.
pub fn set_text<const N: usize>(dst: &mut String<N>, src: &str) {
    dst.clear();
    if src.len() <= N {
        let _ = dst.push_str(src);
        return;
    }
    let ellipsis = "…";
    let mut end = N.saturating_sub(ellipsis.len());
    while end > 0 && !src.is_char_boundary(end) {
        end -= 1;
    }
    let _ = dst.push_str(&src[..end]);
    let _ = dst.push_str(ellipsis);
}

fn text<const N: usize>(src: &str) -> String<N> {
    let mut s = String::new();
    set_text(&mut s, src);
    s
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Started with the postmaster, restarted by it.
    #[default]
    Static = 0,
    /// Started on demand for one database and one task; never restarted.
    Dynamic = 1,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Static => "static",
            Kind::Dynamic => "dynamic",
        }
    }
}

/// One worker's status. Timestamps are PostgreSQL `TimestampTz` values (µs since 2000-01-01 UTC),
/// 0 meaning "never".
#[derive(Clone, Debug, Default)]
pub struct Slot {
    pub in_use: bool,
    /// Bumped every time the slot is handed to a new dynamic worker, so a worker can tell that
    /// the slot it was started for is still its own.
    pub generation: u32,
    pub kind: Kind,
    pub name: Name,
    pub database: Name,
    pub pid: i32,
    pub state: Text,
    pub started_at: i64,
    pub last_run_at: i64,
    pub runs: u64,
    pub errors: u64,
    pub last_error: Text,
    pub last_error_at: i64,
    pub starts: u32,
    /// Dynamic workers: the worker wrote its result (its task and result travel in files, see
    /// `dbworker`).
    pub finished: bool,
    /// Dynamic workers: the starter has read the result (or given up on it). Until then the slot
    /// is not handed to another worker, but for one that finished `REUSE_GRACE_US` ago (its
    /// starter is gone).
    pub collected: bool,
}

impl Slot {
    pub fn record_error(&mut self, message: &str, now: i64) {
        self.errors += 1;
        set_text(&mut self.last_error, message);
        self.last_error_at = now;
    }

    pub fn set_state(&mut self, state: &str) {
        set_text(&mut self.state, state);
    }

    /// A dynamic worker gone without writing its result: failed, finished (the slot can be
    /// reused), with the reason.
    /// The starter found its worker gone without a result (or stopped it): the slot is done with.
    pub fn died(&mut self, why: &str, now: i64) {
        self.record_error(why, now);
        self.set_state("failed");
        self.finished = true;
        self.collected = true;
        self.pid = 0;
        self.last_run_at = now;
    }
}

/// How long a finished dynamic slot is kept for a starter that has not collected it (µs).
pub const REUSE_GRACE_US: i64 = 60_000_000;

#[derive(Debug, Default)]
pub struct Registry {
    pub slots: [Slot; MAX_SLOTS],
}

impl Registry {
    /// The slot of the static worker `name`, claimed for a (re)started process `pid`. Counters
    /// survive restarts of the worker (not of the server) so that a crash loop shows in `starts`.
    pub fn claim_static(&mut self, name: &str, database: &str, pid: i32, now: i64) -> Option<usize> {
        let idx = self
            .slots
            .iter()
            .position(|s| s.in_use && s.kind == Kind::Static && s.name.as_str() == name)
            .or_else(|| self.free_slot())?;
        let slot = &mut self.slots[idx];
        if !(slot.in_use && slot.kind == Kind::Static) {
            *slot = Slot::default();
        }
        slot.in_use = true;
        slot.kind = Kind::Static;
        slot.name = text(name);
        slot.database = text(database);
        slot.pid = pid;
        slot.started_at = now;
        slot.starts += 1;
        slot.finished = false;
        slot.set_state("starting");
        Some(idx)
    }

    /// A slot for a new dynamic worker: a never-used one, else the one that finished longest ago
    /// and whose starter has collected it (or finished `REUSE_GRACE_US` ago). Returns the index and
    /// the generation the worker must present.
    pub fn claim_dynamic(&mut self, name: &str, database: &str, now: i64) -> Option<(usize, u32)> {
        let idx = self.free_slot().or_else(|| {
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.kind == Kind::Dynamic && s.finished && (s.collected || now - s.last_run_at >= REUSE_GRACE_US)
                })
                .min_by_key(|(_, s)| s.last_run_at)
                .map(|(i, _)| i)
        })?;
        let generation = self.slots[idx].generation.wrapping_add(1);
        let slot = &mut self.slots[idx];
        *slot = Slot {
            generation,
            in_use: true,
            kind: Kind::Dynamic,
            starts: 1,
            ..Slot::default()
        };
        slot.name = text(name);
        slot.database = text(database);
        slot.started_at = now;
        slot.set_state("launching");
        Some((idx, generation))
    }

    /// The slot `idx` if it still belongs to `generation` (a dynamic worker's own slot).
    pub fn dynamic_slot(&mut self, idx: usize, generation: u32) -> Option<&mut Slot> {
        self.slots
            .get_mut(idx)
            .filter(|s| s.in_use && s.kind == Kind::Dynamic && s.generation == generation)
    }

    /// Gives a dynamic slot back at once (its worker could not be started).
    pub fn release(&mut self, idx: usize, generation: u32) {
        if let Some(slot) = self.dynamic_slot(idx, generation) {
            *slot = Slot {
                generation,
                ..Slot::default()
            };
        }
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| !s.in_use)
    }

    pub fn in_use(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_worker_frees_its_slot_with_the_reason() {
        let mut r = Registry::default();
        let (idx, generation) = r.claim_dynamic("pgops freeze", "app", 1).unwrap();
        r.dynamic_slot(idx, generation).unwrap().pid = 42;
        r.dynamic_slot(idx, generation)
            .unwrap()
            .died("exited without a result", 7);
        let s = &r.slots[idx];
        assert_eq!(
            (s.state.as_str(), s.finished, s.pid, s.errors, s.last_run_at),
            ("failed", true, 0, 1, 7)
        );
        assert_eq!(s.last_error.as_str(), "exited without a result");
        // Finished: with every other slot busy, the next dynamic worker gets this one.
        while r.claim_dynamic("busy", "app", 8).filter(|(i, _)| *i != idx).is_some() {}
        assert_eq!(r.slots.iter().filter(|s| s.in_use).count(), MAX_SLOTS);
        assert_eq!(r.slots[idx].name.as_str(), "busy", "the dead worker's slot was reused");
    }

    #[test]
    fn set_text_cuts_on_a_char_boundary() {
        let mut s: String<8> = String::new();
        set_text(&mut s, "abc");
        assert_eq!(s.as_str(), "abc");
        set_text(&mut s, "ééééééé"); // 14 bytes
        assert!(s.len() <= 8);
        assert!(s.as_str().ends_with('…'));
        assert!(s.as_str().starts_with("éé"));
    }

    #[test]
    fn static_claims_reuse_the_named_slot_and_count_starts() {
        let mut r = Registry::default();
        let a = r.claim_static("launcher", "postgres", 10, 1).unwrap();
        r.slots[a].runs = 7;
        r.slots[a].record_error("boom", 2);
        let b = r.claim_static("launcher", "postgres", 11, 3).unwrap();
        assert_eq!(a, b);
        let s = &r.slots[b];
        assert_eq!((s.pid, s.starts, s.runs, s.errors), (11, 2, 7, 1));
        assert_eq!(s.state.as_str(), "starting");
        assert_eq!(s.last_error.as_str(), "boom");
    }

    #[test]
    fn dynamic_claims_recycle_the_oldest_finished_slot_only() {
        let mut r = Registry::default();
        for i in 0..MAX_SLOTS {
            let (idx, _) = r.claim_dynamic("w", "db", i as i64).unwrap();
            r.slots[idx].last_run_at = 100 - i as i64;
        }
        assert!(r.claim_dynamic("w", "db", 0).is_none(), "all running: no slot");
        r.slots[3].finished = true;
        r.slots[5].finished = true; // finished longer ago (95 < 97)
        assert!(
            r.claim_dynamic("x", "db2", 200).is_none(),
            "finished but not collected by its starter: kept for it"
        );
        r.slots[3].collected = true;
        r.slots[5].collected = true;
        let (idx, generation) = r.claim_dynamic("x", "db2", 200).unwrap();
        assert_eq!(idx, 5);
        assert_eq!(generation, 2);
        assert_eq!(r.slots[5].name.as_str(), "x");
        assert!(!r.slots[5].finished);
        assert!(
            r.dynamic_slot(5, 1).is_none(),
            "a stale generation no longer owns the slot"
        );
        assert!(r.dynamic_slot(5, 2).is_some());
        r.release(5, 2);
        assert!(!r.slots[5].in_use);
        assert_eq!(r.claim_dynamic("y", "db", 300).unwrap(), (5, 3));
        assert!(!r.slots[5].collected, "a new worker's slot starts uncollected");
        // A finished slot nobody collected (its starter died) is reused after the grace period.
        let mut r = Registry::default();
        for i in 0..MAX_SLOTS {
            r.claim_dynamic("w", "db", 0).unwrap();
            r.slots[i].finished = true;
            r.slots[i].last_run_at = 10;
        }
        assert!(r.claim_dynamic("x", "db", 10 + REUSE_GRACE_US - 1).is_none());
        assert!(r.claim_dynamic("x", "db", 10 + REUSE_GRACE_US).is_some());
    }
}
