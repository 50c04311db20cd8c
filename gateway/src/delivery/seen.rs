//! What one socket was handed, per conversation, so that it gets each seq
//! once and read markers only forward, however deliveries repeat or race:
//! a batch retried after it published (a worker killed, an acknowledgement
//! lost), a message both rerouted live and queued offline, two read
//! markers announced from two gateways in the opposite order.
//!
//! Per conversation (the most recent [`TRACKED`] of them per socket): the
//! highest seq handed, a bitmap of the [`WINDOW`] seqs below it, and the
//! highest read marker. A seq older than the window is handed on: a rare
//! duplicate (clients drop them by id) beats a missed message. An idle
//! socket holds nothing here.

use std::collections::VecDeque;

/// Conversations remembered per socket; the least recently used goes first.
pub const TRACKED: usize = 64;
/// Seqs below the highest whose delivery is remembered exactly.
const WINDOW: u64 = 64;

/// A conversation id as a key: FNV-1a, 64 bits.
pub fn key(conversation: &str) -> u64 {
    conversation
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// What a frame is, for [`Seen::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A `message` frame with this seq.
    Seq(u64),
    /// A `read` frame with this marker.
    Read(u64),
}

#[derive(Debug, Clone, Copy)]
struct Track {
    key: u64,
    top: u64,
    /// Bit d: seq `top - d` was handed.
    bits: u64,
    read: u64,
}

#[derive(Debug, Default)]
pub struct Seen {
    tracks: VecDeque<Track>,
}

impl Seen {
    /// Whether a frame marked `mark` in conversation `key` is new to this
    /// socket; records it if so.
    pub fn admit(&mut self, key: u64, mark: Mark) -> bool {
        let i = match self.tracks.iter().position(|t| t.key == key) {
            Some(i) => i,
            None => {
                if self.tracks.len() == TRACKED {
                    self.tracks.pop_back();
                }
                self.tracks.push_front(Track {
                    key,
                    top: 0,
                    bits: 0,
                    read: 0,
                });
                0
            }
        };
        if i > 0 {
            let t = self.tracks.remove(i).unwrap_or(Track {
                key,
                top: 0,
                bits: 0,
                read: 0,
            });
            self.tracks.push_front(t);
        }
        let t = &mut self.tracks[0];
        match mark {
            Mark::Read(marker) if marker > t.read => {
                t.read = marker;
                true
            }
            Mark::Read(_) => false,
            Mark::Seq(seq) => t.admit_seq(seq),
        }
    }
}

impl Track {
    fn admit_seq(&mut self, seq: u64) -> bool {
        if self.top == 0 || seq > self.top {
            let shift = seq.saturating_sub(self.top);
            self.bits = if self.top == 0 || shift >= WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.top = seq;
            return true;
        }
        let behind = self.top - seq;
        if behind >= WINDOW {
            return true;
        }
        let bit = 1_u64 << behind;
        let fresh = self.bits & bit == 0;
        self.bits |= bit;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seq_once_in_any_order_and_markers_only_forward() {
        let mut s = Seen::default();
        let c = key("room:a");
        for seq in [5, 3, 9, 4] {
            assert!(s.admit(c, Mark::Seq(seq)), "{seq} is new");
        }
        for seq in [5, 3, 9, 4] {
            assert!(!s.admit(c, Mark::Seq(seq)), "{seq} again");
        }
        assert!(s.admit(c, Mark::Seq(200)));
        assert!(s.admit(c, Mark::Seq(6)), "too old to tell: handed on");
        assert!(s.admit(c, Mark::Read(5)));
        assert!(!s.admit(c, Mark::Read(3)), "a marker never goes back");
        assert!(!s.admit(c, Mark::Read(5)));
        assert!(s.admit(c, Mark::Read(6)));
        assert!(s.admit(key("room:b"), Mark::Seq(5)), "conversations apart");
    }

    #[test]
    fn at_most_tracked_conversations_are_remembered() {
        let mut s = Seen::default();
        for i in 0..(TRACKED + 10) {
            assert!(s.admit(key(&format!("room:r{i}")), Mark::Seq(1)));
        }
        assert_eq!(s.tracks.len(), TRACKED);
        // The most recent are still known.
        let last = key(&format!("room:r{}", TRACKED + 9));
        assert!(!s.admit(last, Mark::Seq(1)));
    }
}
