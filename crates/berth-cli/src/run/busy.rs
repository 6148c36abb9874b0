//! Busy polling (`berth run --busy-poll USEC`): after a packet crossed the
//! TUN, the relay's thread keeps polling its descriptors (epoll_wait with a
//! zero timeout) for up to USEC microseconds of quiet instead of going to
//! sleep, as Linux's SO_BUSY_POLL / net.core.busy_read do for a socket.
//!
//! Why: a relayed round trip wakes the relay twice (the request from the
//! TUN, the answer from the host socket), and on a virtual machine each
//! sleep and wake-up costs tens of microseconds: spinning through the gap
//! halved a 1-byte round trip here (README, `berth run`). The price is CPU:
//! while traffic keeps coming within the window the relay's thread uses a
//! whole core, and a quiet window costs USEC of it after the last packet.
//! Off by default, like Linux's.
//!
//! How: a task on the relay's single-threaded tokio runtime that yields in a
//! loop. A yielding task makes tokio poll its I/O driver without blocking
//! before running it again, so every event is handled as it arrives. The
//! window restarts whenever the device's frame counters moved.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct BusyPoll {
    window: Duration,
    kick: Notify,
    spinning: AtomicBool,
    polls: AtomicU64,
}

impl BusyPoll {
    pub fn new(window: Duration) -> BusyPoll {
        BusyPoll {
            window,
            kick: Notify::new(),
            spinning: AtomicBool::new(false),
            polls: AtomicU64::new(0),
        }
    }

    /// A packet came: start polling if not already.
    pub fn kick(&self) {
        if !self.spinning.load(Ordering::Relaxed) {
            self.kick.notify_one();
        }
    }

    /// Polls made so far (yields of the polling task).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// The polling task: `frames` counts the packets that crossed so far.
    pub async fn run(&self, frames: impl Fn() -> u64) {
        loop {
            self.kick.notified().await;
            self.spinning.store(true, Ordering::Relaxed);
            let (mut seen, mut last) = (frames(), Instant::now());
            loop {
                tokio::task::yield_now().await;
                self.polls.fetch_add(1, Ordering::Relaxed);
                let (n, now) = (frames(), Instant::now());
                if n != seen {
                    (seen, last) = (n, now);
                } else if now.duration_since(last) >= self.window {
                    break;
                }
            }
            self.spinning.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "current_thread")]
    async fn polls_only_after_a_kick_and_stops_after_a_quiet_window() {
        let bp = Arc::new(BusyPoll::new(Duration::from_millis(30)));
        let frames = Arc::new(AtomicU64::new(0));
        let task = {
            let (bp, frames) = (Arc::clone(&bp), Arc::clone(&frames));
            tokio::spawn(async move { bp.run(|| frames.load(Ordering::Relaxed)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(bp.polls(), 0, "no packet, no polling");

        bp.kick();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(bp.polls() > 0, "a kick starts polling");
        // Packets every 10 ms keep the 30 ms window open.
        let start = Instant::now();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            frames.fetch_add(1, Ordering::Relaxed);
        }
        let during = bp.polls();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            bp.polls() > during,
            "still polling 90 ms after the kick: {:?}",
            start.elapsed()
        );

        // Quiet: polling ends after the window and stays ended.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let after = bp.polls();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            bp.polls(),
            after,
            "no polling once the window passed quietly"
        );
        assert!(!bp.spinning.load(Ordering::Relaxed));

        // And a new packet starts it again.
        bp.kick();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(bp.polls() > after);
        task.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_tasks_run_and_timers_fire_while_it_polls() {
        let bp = Arc::new(BusyPoll::new(Duration::from_secs(5)));
        let task = {
            let bp = Arc::clone(&bp);
            tokio::spawn(async move { bp.run(|| 0).await })
        };
        bp.kick();
        // A socket pair's data and a timer are both handled while polling.
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            loop {
                b.readable().await.unwrap();
                if let Ok(n) = b.try_read(&mut buf) {
                    return buf[..n].to_vec();
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(bp.polls() > 0);
        a.writable().await.unwrap();
        a.try_write(b"ping").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), reader)
            .await
            .expect("read while polling")
            .unwrap();
        assert_eq!(got, b"ping");
        task.abort();
    }
}
