//! The one retry delay: exponential from a floor to a ceiling, and a wait
//! that shutdown cuts short, so no loop ever holds a service past its grace.

use std::time::Duration;

use crate::shutdown::Shutdown;

#[derive(Debug, Clone)]
pub struct Backoff {
    floor: Duration,
    ceiling: Duration,
    attempt: u32,
}

impl Default for Backoff {
    /// 100 ms doubling up to 5 s: long enough not to hammer a server that is
    /// down, short enough that recovery is noticed within seconds.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    pub fn new(floor: Duration, ceiling: Duration) -> Self {
        Self {
            floor,
            ceiling,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self
            .floor
            .saturating_mul(2_u32.saturating_pow(self.attempt.min(16)))
            .min(self.ceiling);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Sleeps the next delay, or less if shutdown fires meanwhile.
    pub async fn wait(&mut self, shutdown: &Shutdown) {
        let delay = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown.clone().wait() => {},
        }
    }

    /// After a success: the next failure starts from the floor again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        assert_eq!(b.failures(), 5);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(5));
        }
    }

    #[tokio::test]
    async fn shutdown_cuts_the_wait_short() {
        let mut b = Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let shutdown = Shutdown::new(async {});
        tokio::time::timeout(Duration::from_secs(5), b.wait(&shutdown))
            .await
            .expect("a fired shutdown ends the wait");
    }
}
