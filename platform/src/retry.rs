//! Backoff for the loops that wait out an outage (the event bus, identity,
//! a database): backon's exponential policy, capped, never giving up — the
//! loops themselves end on shutdown.

use std::time::Duration;

use backon::BackoffBuilder as _;

/// Returns the policy: `min`, doubling up to `max`, for ever.
pub fn backoff(min: Duration, max: Duration) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .without_max_times()
}

/// The delays of [`backoff`], for a loop that sleeps between attempts itself
/// (start a new one after a success).
#[derive(Debug)]
pub struct Delays {
    delays: backon::ExponentialBackoff,
    max: Duration,
}

impl Delays {
    /// Returns the delays from `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            delays: backoff(min, max).build(),
            max,
        }
    }

    /// Returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_minimum_up_to_the_cap_and_go_on() {
        let mut delays = Delays::new(Duration::from_millis(50), Duration::from_secs(1));
        let first: Vec<u128> = (0..8).map(|_| delays.next_delay().as_millis()).collect();
        assert_eq!(first, vec![50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(delays.next_delay(), Duration::from_secs(1));
    }
}
