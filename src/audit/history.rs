//! The security score's history for the dashboard's trend panel: a launcher turn records
//! `pgops.security_score` every `pgops.security_score_interval` in the launcher's database
//! (`pgops._security_score_record()` adds a row only when the score changed, and trims the
//! table to `score_history_rows`). Primary only; off when the interval is 0.

use std::time::Duration;

use crate::gucs;
use crate::worker::launcher::{TurnContext, TurnHook};
use crate::worker::xact;

pub static TURN: TurnHook = TurnHook {
    name: "security score",
    run: turn,
};

/// When the next recording is due (milliseconds, the launcher's clock); None: at once.
static DUE: std::sync::Mutex<Option<i64>> = std::sync::Mutex::new(None);

fn turn(ctx: &TurnContext) -> crate::error::Result<Option<Duration>> {
    let interval = gucs::security_score_interval_ms();
    if interval == 0 || !ctx.installed || !ctx.primary {
        return Ok(None);
    }
    let now = ctx.now / 1000;
    let mut due = DUE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(d) = *due {
        // A shorter interval set since counts from now.
        let d = d.min(now + interval);
        if now < d {
            *due = Some(d);
            return Ok(Some(Duration::from_millis((d - now) as u64)));
        }
    }
    // The next one is due an interval from now whatever this one does: a failing audit is
    // reported in pgops.workers, and tried again then, not every turn.
    *due = Some(now + interval);
    xact::run("pgops: recording the security score", || {
        crate::spi::get_one::<bool>("SELECT pgops._security_score_record()")?;
        Ok(())
    })?;
    Ok(Some(Duration::from_millis(interval as u64)))
}
