//! Which tables a freeze run takes, in which order, and how a run ends. Pure.
//!
//! Urgency is how far a table is towards the age at which autovacuum forces an anti-wraparound
//! vacuum on it: the greater of `xid_age / autovacuum_freeze_max_age` and `mxid_age /
//! autovacuum_multixact_freeze_max_age` (per-table settings included, TOAST folded into its
//! table). 1.0 means autovacuum would be forcing it now. The most urgent table goes first; at
//! equal urgency the older, then the smaller one (more tables frozen within the budget).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableAge {
    pub relid: u32,
    pub schema: String,
    pub name: String,
    /// The older of the heap's and the TOAST table's ages.
    pub xid_age: i64,
    pub mxid_age: i64,
    pub freeze_max_age: i64,
    pub multixact_freeze_max_age: i64,
    /// Heap and TOAST pages: what VACUUM (FREEZE) may have to read (all-frozen pages are skipped).
    pub pages: i64,
}

impl TableAge {
    pub fn urgency(&self) -> f64 {
        let x = self.xid_age as f64 / self.freeze_max_age.max(1) as f64;
        let m = self.mxid_age as f64 / self.multixact_freeze_max_age.max(1) as f64;
        x.max(m)
    }
}

/// The tables a run freezes: those whose XID or MXID age reaches `min_age`, most urgent first.
pub fn plan(mut tables: Vec<TableAge>, min_age: i64) -> Vec<TableAge> {
    tables.retain(|t| t.xid_age >= min_age || t.mxid_age >= min_age);
    tables.sort_by(|a, b| {
        b.urgency()
            .total_cmp(&a.urgency())
            .then(b.xid_age.cmp(&a.xid_age))
            .then(a.pages.cmp(&b.pages))
            .then(a.schema.cmp(&b.schema))
            .then(a.name.cmp(&b.name))
    });
    tables
}

/// What happened to one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Frozen,
    /// Another session held a conflicting lock past lock_timeout.
    Locked,
    /// Dropped since the plan was made.
    Gone,
    Failed,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Frozen => "frozen",
            Outcome::Locked => "skipped: locked",
            Outcome::Gone => "skipped: dropped",
            Outcome::Failed => "failed",
        }
    }
}

/// Why a run stopped starting new tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every planned table was taken.
    Done,
    /// max_duration was spent (the table running then was finished).
    Budget,
    Cancelled,
}

/// The status a finished run records.
pub fn final_status(stop: Stop, frozen: usize, skipped: usize, failed: usize) -> &'static str {
    match stop {
        Stop::Cancelled => "cancelled",
        Stop::Budget => "budget spent",
        Stop::Done if failed > 0 && frozen == 0 && skipped == 0 => "failed",
        Stop::Done if failed > 0 || skipped > 0 => "partial",
        Stop::Done => "succeeded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, xid_age: i64, mxid_age: i64, pages: i64) -> TableAge {
        TableAge {
            relid: 1,
            schema: "public".into(),
            name: name.into(),
            xid_age,
            mxid_age,
            freeze_max_age: 200_000_000,
            multixact_freeze_max_age: 400_000_000,
            pages,
        }
    }

    #[test]
    fn most_urgent_first_young_tables_left_out() {
        let p = plan(
            vec![
                t("young", 5_000_000, 0, 10),
                t("old", 180_000_000, 0, 100),
                t("older", 190_000_000, 0, 100_000),
            ],
            100_000_000,
        );
        assert_eq!(
            p.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            vec!["older", "old"]
        );
    }

    #[test]
    fn multixact_age_counts_against_its_own_limit() {
        // 300 M multixacts of 400 M (0.75) beat 140 M XIDs of 200 M (0.70).
        let p = plan(
            vec![t("xid", 140_000_000, 0, 1), t("mxid", 1000, 300_000_000, 1)],
            100_000_000,
        );
        assert_eq!(p[0].name, "mxid");
        assert!((p[0].urgency() - 0.75).abs() < 1e-9);
    }

    #[test]
    fn per_table_limit_raises_urgency_and_ties_favour_small_tables() {
        let mut low = t("low_limit", 50_000_000, 0, 1000);
        low.freeze_max_age = 60_000_000;
        let p = plan(
            vec![t("big", 150_000_000, 0, 9000), t("small", 150_000_000, 0, 10), low],
            0,
        );
        assert_eq!(
            p.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            vec!["low_limit", "small", "big"]
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(final_status(Stop::Done, 3, 0, 0), "succeeded");
        assert_eq!(final_status(Stop::Done, 3, 1, 0), "partial");
        assert_eq!(final_status(Stop::Done, 0, 0, 2), "failed");
        assert_eq!(final_status(Stop::Budget, 1, 0, 0), "budget spent");
        assert_eq!(final_status(Stop::Cancelled, 1, 0, 0), "cancelled");
    }
}
