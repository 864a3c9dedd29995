//! Wraparound forecast from the launcher's XID/MXID samples. Pure.
//!
//! The burn rate is the slope between the oldest and the newest sample of the window (XIDs are
//! consumed cluster-wide, so one rate serves every database); a database's time to a limit is
//! its remaining headroom divided by that rate.

use super::samples::XidSample;

/// PostgreSQL 14+: new XIDs are refused 3 million before wraparound (2^31).
pub const XID_STOP_MARGIN: i64 = 3_000_000;
pub const WRAP_LIMIT: i64 = 1 << 31;
/// Fewest samples and shortest window that give a rate worth showing.
pub const MIN_SAMPLES: usize = 3;
pub const MIN_WINDOW_SECS: f64 = 1.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Rates {
    pub xids_per_second: f64,
    pub mxids_per_second: f64,
    pub window_seconds: f64,
    pub samples: usize,
}

/// Burn rates over the samples, or the reason there is none.
pub fn rates(samples: &[XidSample]) -> Result<Rates, String> {
    if samples.len() < MIN_SAMPLES {
        return Err(format!(
            "too few samples ({} of {MIN_SAMPLES}): wait for the launcher (pgops.sample_interval)",
            samples.len()
        ));
    }
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let window = (last.sampled_at - first.sampled_at) as f64 / 1e6;
    if window < MIN_WINDOW_SECS {
        return Err(format!(
            "the samples span {window:.1} s; a forecast needs at least {MIN_WINDOW_SECS} s"
        ));
    }
    let xids = last.next_xid.saturating_sub(first.next_xid) as f64;
    // Multixact IDs are 32-bit and wrap: the difference is taken modulo 2^32.
    let mxids = f64::from(last.next_mxid.wrapping_sub(first.next_mxid));
    Ok(Rates {
        xids_per_second: xids / window,
        mxids_per_second: mxids / window,
        window_seconds: window,
        samples: samples.len(),
    })
}

/// Seconds until `age` grows to `limit` at `rate` per second: None without burn, 0 when past.
pub fn seconds_until(age: i64, limit: i64, rate: f64) -> Option<f64> {
    if age >= limit {
        return Some(0.0);
    }
    (rate > 0.0).then(|| (limit - age) as f64 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_s: i64, xid: u64, mxid: u32) -> XidSample {
        XidSample {
            sampled_at: at_s * 1_000_000,
            next_xid: xid,
            next_mxid: mxid,
        }
    }

    #[test]
    fn rates_are_the_slope_over_the_window() {
        let r = rates(&[s(0, 1000, 10), s(5, 1500, 15), s(10, 2000, 30)]).unwrap();
        assert_eq!(
            (r.xids_per_second, r.mxids_per_second, r.window_seconds, r.samples),
            (100.0, 2.0, 10.0, 3)
        );
    }

    #[test]
    fn multixacts_wrap_modulo_2_32() {
        let r = rates(&[s(0, 0, u32::MAX - 9), s(1, 0, u32::MAX), s(10, 0, 10)]).unwrap();
        assert_eq!(r.mxids_per_second, 2.0);
    }

    #[test]
    fn too_few_samples_or_too_short_a_window_say_why() {
        assert!(
            rates(&[s(0, 1, 1), s(1, 2, 1)])
                .unwrap_err()
                .contains("too few samples (2 of 3)")
        );
        assert!(rates(&[XidSample::default(); 3]).unwrap_err().contains("span 0.0 s"));
    }

    #[test]
    fn time_to_a_limit() {
        assert_eq!(seconds_until(100, 1100, 10.0), Some(100.0));
        assert_eq!(seconds_until(2000, 1000, 10.0), Some(0.0));
        assert_eq!(seconds_until(100, 1100, 0.0), None);
    }
}
