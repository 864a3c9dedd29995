//! The ring of XID/MXID counter samples the launcher's sampling turn fills and the wraparound
//! forecast reads. Plain fixed-size data (no pointers, no heap): it lives in shared memory
//! (`src/monitor/sampler.rs` allocates it).

use heapless::Deque;

/// XID samples kept: a day at the default interval of 60 s.
pub const SAMPLE_CAPACITY: usize = 1440;

/// One sample of the transaction-ID counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XidSample {
    pub sampled_at: i64,
    /// Next full (epoch-extended, 64-bit) transaction ID.
    pub next_xid: u64,
    /// Next multixact ID (32-bit; it wraps, like the server's).
    pub next_mxid: u32,
}

#[derive(Debug, Default)]
pub struct SampleRing {
    pub samples: Deque<XidSample, SAMPLE_CAPACITY>,
    pub last_at: i64,
}

impl SampleRing {
    /// True when `interval_us` has passed since the last sample (or there is none).
    pub fn due(&self, now: i64, interval_us: i64) -> bool {
        self.samples.is_empty() || now - self.last_at >= interval_us || now < self.last_at
    }

    /// Microseconds until the next sample is due (0 when due now).
    pub fn until_due(&self, now: i64, interval_us: i64) -> i64 {
        if self.due(now, interval_us) {
            0
        } else {
            self.last_at + interval_us - now
        }
    }

    /// Appends a sample, dropping the oldest when the ring is full.
    pub fn push(&mut self, sample: XidSample) {
        if self.samples.is_full() {
            self.samples.pop_front();
        }
        let _ = self.samples.push_back(sample);
        self.last_at = sample.sampled_at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_ring_is_bounded_and_knows_when_a_sample_is_due() {
        let mut ring = SampleRing::default();
        assert!(ring.due(0, 1_000));
        for i in 0..(SAMPLE_CAPACITY as u64 + 5) {
            ring.push(XidSample {
                sampled_at: i as i64 * 1_000,
                next_xid: i,
                next_mxid: 1,
            });
        }
        assert_eq!(ring.samples.len(), SAMPLE_CAPACITY);
        assert_eq!(ring.samples.front().unwrap().next_xid, 5);
        let last = ring.last_at;
        assert!(!ring.due(last + 999, 1_000));
        assert_eq!(ring.until_due(last + 400, 1_000), 600);
        assert!(ring.due(last + 1_000, 1_000));
        assert!(
            ring.due(last - 1, 1_000),
            "a clock that went back does not stall sampling"
        );
    }
}
