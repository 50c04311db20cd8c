//! Latency samples and their percentiles.

use std::fmt;

#[derive(Default)]
pub struct Latencies {
    micros: Vec<u64>,
}

impl Latencies {
    pub fn record(&mut self, micros: u64) {
        self.micros.push(micros);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn summary(mut self) -> Summary {
        self.micros.sort_unstable();
        let at = |q: f64| -> f64 {
            if self.micros.is_empty() {
                return 0.0;
            }
            let i = ((self.micros.len() as f64 - 1.0) * q).round() as usize;
            self.micros[i] as f64 / 1000.0
        };
        Summary {
            count: self.micros.len(),
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

/// Latencies by the second of the run their message was sent in: a tail
/// that comes from one stretch (a cold start, a stall) shows as a few bad
/// seconds, a steady one in every second.
pub struct Timeline {
    start: u64,
    seconds: Vec<Latencies>,
}

/// Seconds past this many are counted in the last one (the vector stays bounded).
const TIMELINE_SECONDS: u64 = 600;

impl Timeline {
    pub fn new(start_micros: u64) -> Self {
        Self {
            start: start_micros,
            seconds: Vec::new(),
        }
    }

    pub fn record(&mut self, stamp: u64, micros: u64) {
        let second = (stamp.saturating_sub(self.start) / 1_000_000).min(TIMELINE_SECONDS) as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Latencies::default);
        }
        self.seconds[second].record(micros);
    }

    pub fn extend(&mut self, other: Timeline) {
        if self.seconds.len() < other.seconds.len() {
            self.seconds
                .resize_with(other.seconds.len(), Latencies::default);
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(other.seconds) {
            mine.extend(theirs);
        }
    }

    /// `second: p50/p99 ms` for each second that has samples.
    pub fn summary(self) -> String {
        let parts: Vec<String> = self
            .seconds
            .into_iter()
            .enumerate()
            .filter(|(_, l)| l.len() > 0)
            .map(|(i, l)| {
                let s = l.summary();
                format!("{i}s {:.1}/{:.1}", s.p50, s.p99)
            })
            .collect();
        parts.join(" · ")
    }
}

/// Percentiles in milliseconds.
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} p50={:.2}ms p90={:.2}ms p95={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
            self.count, self.p50, self.p90, self.p95, self.p99, self.p999, self.max
        )
    }
}

/// Microseconds since the Unix epoch (senders stamp bodies with it).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The send stamp a `sent` frame carries in its client_id: `"client_id":"<micros>-…"`.
pub fn ack_stamp(frame: &str) -> Option<u64> {
    let start = frame.find("\"client_id\":\"")? + 13;
    let rest = &frame[start..];
    rest[..rest.find('-')?].parse().ok()
}

/// The send stamp a body carries: `<micros> <anything>`.
pub fn stamp_of(frame: &str) -> Option<u64> {
    let start = frame.find("\"body\":\"")? + 8;
    let rest = &frame[start..];
    let end = rest.find(' ')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_stamps() {
        let mut l = Latencies::default();
        for i in 1..=1000 {
            l.record(i * 1000);
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 500.0).abs() <= 1.0);
        assert!((s.p99 - 990.0).abs() <= 1.0);
        assert_eq!(
            stamp_of(r#"{"type":"message","body":"12345 hi","ts":1}"#),
            Some(12345)
        );
        assert_eq!(stamp_of(r#"{"type":"pong"}"#), None);
    }

    #[test]
    fn the_timeline_splits_by_second_sent() {
        let start = 5_000_000;
        let mut a = Timeline::new(start);
        a.record(start + 100, 300_000);
        a.record(start + 2_500_000, 2_000);
        let mut b = Timeline::new(start);
        b.record(start + 2_600_000, 4_000);
        b.record(start.saturating_sub(1), 1_000);
        a.extend(b);
        assert_eq!(a.summary(), "0s 300.0/300.0 · 2s 4.0/4.0");
    }
}
