//! How much a planned statement can take away: shared by every planner (roles, databases) so a
//! plan's `risk` column means the same everywhere.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Adds or changes without taking anything away.
    Safe,
    /// Takes a privilege, membership or connection right away.
    Revoke,
    /// Drops an object (or data with it).
    Drop,
    /// Nothing runs: a difference the plan reports and leaves to the DBA.
    Note,
    /// Copies a database that a non-superuser owns or has objects in: its functions, triggers,
    /// operators and data come along into the new database.
    Clone,
    /// Runs a script (a baseline) in a database that exists: it may change or remove anything
    /// there, so like a drop it waits for the plan_hash of a reviewed plan.
    Script,
}

impl Risk {
    /// Applied only with the plan_hash of a plan the caller reviewed.
    pub fn needs_review(self) -> bool {
        matches!(self, Risk::Drop | Risk::Script)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Safe => "safe",
            Risk::Revoke => "revoke",
            Risk::Drop => "drop",
            Risk::Note => "note",
            Risk::Clone => "clone",
            Risk::Script => "script",
        }
    }
}
