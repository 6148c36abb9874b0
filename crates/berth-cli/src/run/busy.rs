//! Busy polling (`berth run --busy-poll USEC`): after the relay's thread
//! wakes up, it keeps polling its descriptors (epoll_wait with a zero
//! timeout) for up to a window of quiet instead of going back to sleep, as
//! Linux's SO_BUSY_POLL / net.core.busy_read do for a socket.
//!
//! Why: a relayed round trip wakes the relay twice (the request from the
//! TUN, the answer from the host socket), and on a virtual machine each
//! sleep and wake-up costs tens of microseconds: polling through the gap
//! halved a 1-byte round trip here (README, `berth run`).
//!
//! Polling pays only when the next packet comes within the window, so the
//! poller keeps score: a window that caught a packet (the device's frame
//! counters moved after the wake-up's own work) is a hit, one that ran out is
//! a miss. After a miss the next wake-up is not polled, after another the next
//! two, and so on doubling to [`MAX_SKIP`]; a hit polls every wake-up again.
//! Request/response traffic and busy flows, whose packets come close
//! together, are polled; sparse traffic costs one window per up to
//! [`MAX_SKIP`] wake-ups. That is why it is on by default (USEC 50), where
//! Linux's busy_read is off.
//!
//! How: a task on the relay's single-threaded tokio runtime that yields in a
//! loop. A yielding task makes tokio poll its I/O driver without blocking
//! before running it again, so every event is handled as it arrives. The
//! runtime's unpark hook ([`BusyPoll::unparked`]) starts a window; it goes
//! on while the frame counters move and ends after USEC without.
//!
//! Polling only pays while the CPU is otherwise idle. When other threads
//! want it (a bulk transfer keeps iperf3, the kernel's TCP and the relay
//! busy on few CPUs) every microsecond the thread polls is taken from them.
//! The scheduler then runs them in its place for a slice at a time (0.75 ms
//! and up), where the thread that a relayed packet wakes (the other end of a
//! round trip) runs for tens of microseconds. So the task compares its
//! thread's CPU time (CLOCK_THREAD_CPUTIME_ID) with the wall clock: if
//! others held the CPU for [`STOLEN`] within a few polls, the window ends and
//! polling stays off for a back-off (1 ms, doubling to [`MAX_BACKOFF`] while
//! it keeps happening).

use nix::time::{clock_gettime, ClockId};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The window by default (`--busy-poll`).
pub const DEFAULT_WINDOW_US: u64 = 50;
/// Most wake-ups left unpolled after windows that caught nothing.
pub const MAX_SKIP: u32 = 128;
/// First back-off after a contended window.
const MIN_BACKOFF: Duration = Duration::from_millis(1);
/// Longest back-off while windows keep being contended.
pub const MAX_BACKOFF: Duration = Duration::from_millis(128);
/// Polls between two looks at the thread's CPU time (a syscall).
const CHECK_EVERY: u64 = 16;
/// Time others held the CPU between two looks that means it is wanted.
const STOLEN: Duration = Duration::from_micros(250);

pub struct BusyPoll {
    window: Duration,
    min_backoff: Duration,
    kick: Notify,
    active: AtomicBool,
    /// Wake-ups still to leave unpolled, and how many the next miss skips.
    skip: AtomicU32,
    next_skip: AtomicU32,
    polls: AtomicU64,
    backoffs: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// This thread's CPU time so far.
fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

impl BusyPoll {
    pub fn new(window: Duration) -> BusyPoll {
        BusyPoll {
            window,
            min_backoff: MIN_BACKOFF,
            kick: Notify::new(),
            active: AtomicBool::new(false),
            skip: AtomicU32::new(0),
            next_skip: AtomicU32::new(1),
            polls: AtomicU64::new(0),
            backoffs: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The runtime's thread woke up (tokio's `on_thread_unpark`): poll,
    /// unless recent windows caught nothing and this wake-up is skipped.
    pub fn unparked(&self) {
        let skip = self.skip.load(Ordering::Relaxed);
        if skip > 0 {
            self.skip.store(skip - 1, Ordering::Relaxed);
        } else {
            self.kick();
        }
    }

    /// Start polling if not polling or paused already.
    fn kick(&self) {
        if !self.active.load(Ordering::Relaxed) {
            self.kick.notify_one();
        }
    }

    /// Polls made so far (yields of the polling task).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Windows ended because others wanted the CPU.
    pub fn backoffs(&self) -> u64 {
        self.backoffs.load(Ordering::Relaxed)
    }

    /// Windows that caught a packet, and windows that ran out.
    pub fn score(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The polling task: `frames` counts the packets that crossed so far.
    pub async fn run(&self, frames: impl Fn() -> u64) {
        self.run_with(frames, cpu_time).await
    }

    /// [`BusyPoll::run`] with the thread's CPU time given (for tests).
    async fn run_with(&self, frames: impl Fn() -> u64, cpu_time: impl Fn() -> Duration) {
        let mut backoff = self.min_backoff;
        loop {
            self.kick.notified().await;
            self.active.store(true, Ordering::Relaxed);
            // One yield first: the tasks the wake-up woke run, so their
            // packets are not taken for the next ones.
            tokio::task::yield_now().await;
            let (mut seen, mut last) = (frames(), Instant::now());
            let mut at = (last, cpu_time());
            let (mut contended, mut hit) = (false, false);
            for i in 1u64.. {
                tokio::task::yield_now().await;
                self.polls.fetch_add(1, Ordering::Relaxed);
                if i % CHECK_EVERY == 0 {
                    let now = (Instant::now(), cpu_time());
                    let wall = now.0.duration_since(at.0);
                    if wall.saturating_sub(now.1.saturating_sub(at.1)) >= STOLEN {
                        contended = true;
                        break;
                    }
                    at = now;
                }
                let (n, now) = (frames(), Instant::now());
                if n != seen {
                    (seen, last, hit) = (n, now, true);
                } else if now.duration_since(last) >= self.window {
                    break;
                }
            }
            if hit {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.next_skip.store(1, Ordering::Relaxed);
            } else if !contended {
                // Nothing came: leave the next wake-ups alone, more of
                // them each time this repeats.
                self.misses.fetch_add(1, Ordering::Relaxed);
                let n = self.next_skip.load(Ordering::Relaxed);
                self.skip.store(n, Ordering::Relaxed);
                self.next_skip
                    .store((n * 2).min(MAX_SKIP), Ordering::Relaxed);
            }
            if contended {
                self.backoffs.fetch_add(1, Ordering::Relaxed);
                // Still marked active: kicks meanwhile are ignored.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            } else {
                backoff = self.min_backoff;
            }
            self.active.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Wait (up to 5 s, so a loaded machine does not fail it) for `cond`.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    fn start(
        bp: &Arc<BusyPoll>,
        frames: &Arc<AtomicU64>,
        stolen: &Arc<AtomicU64>,
    ) -> tokio::task::JoinHandle<()> {
        let (bp, f, st) = (Arc::clone(bp), Arc::clone(frames), Arc::clone(stolen));
        // A CPU clock that runs with the wall clock, and stops while
        // `stolen` is not 0 (others hold the CPU).
        let (base, seen) = (Instant::now(), AtomicU64::new(0));
        let cpu = move || {
            if st.load(Ordering::Relaxed) == 0 {
                seen.store(nanos(base.elapsed()), Ordering::Relaxed);
            }
            Duration::from_nanos(seen.load(Ordering::Relaxed))
        };
        tokio::spawn(async move { bp.run_with(|| f.load(Ordering::Relaxed), cpu).await })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn polls_only_after_a_kick_and_stops_after_a_quiet_window() {
        let bp = Arc::new(BusyPoll::new(Duration::from_millis(200)));
        let (frames, stolen) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let task = start(&bp, &frames, &stolen);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(bp.polls(), 0, "no packet, no polling");

        bp.kick();
        until("a kick starts polling", || bp.polls() > 0).await;
        // Packets every 50 ms keep the 200 ms window open for 400 ms.
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            frames.fetch_add(1, Ordering::Relaxed);
        }
        let during = bp.polls();
        until("still polling after the last packet", || {
            bp.polls() > during
        })
        .await;

        // Quiet: polling ends after the window and stays ended.
        until("polling ends", || !bp.active.load(Ordering::Relaxed)).await;
        let after = bp.polls();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            bp.polls(),
            after,
            "no polling once the window passed quietly"
        );
        assert_eq!(bp.backoffs(), 0);

        // And a new packet starts it again.
        bp.kick();
        until("the next packet starts polling", || bp.polls() > after).await;
        task.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_window_ends_and_polling_pauses_when_others_want_the_cpu() {
        let mut bp = BusyPoll::new(Duration::from_secs(60));
        bp.min_backoff = Duration::from_millis(300);
        let bp = Arc::new(bp);
        let (frames, stolen) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let task = start(&bp, &frames, &stolen);
        bp.kick();
        until("a kick starts polling", || bp.polls() > 0).await;
        assert_eq!(bp.backoffs(), 0, "the CPU is ours: polls on");
        stolen.store(1, Ordering::Relaxed);
        until("others holding the CPU end the window", || {
            bp.backoffs() == 1
        })
        .await;
        stolen.store(0, Ordering::Relaxed);
        // Paused (300 ms): a packet meanwhile does not restart polling, nor
        // leave a permit that would after the pause.
        let stopped = bp.polls();
        bp.kick();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(bp.polls(), stopped, "no polling during the pause");
        until("the pause ends", || !bp.active.load(Ordering::Relaxed)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(bp.polls(), stopped, "nor after it, until a packet");
        bp.kick();
        until("the next packet starts polling", || bp.polls() > stopped).await;
        stolen.store(1, Ordering::Relaxed);
        until("the CPU wanted again", || bp.backoffs() == 2).await;
        task.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_tasks_run_and_timers_fire_while_it_polls() {
        let bp = Arc::new(BusyPoll::new(Duration::from_secs(60)));
        let (frames, stolen) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let task = start(&bp, &frames, &stolen);
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
        until("polling", || bp.polls() > 0).await;
        a.writable().await.unwrap();
        a.try_write(b"ping").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("read while polling")
            .unwrap();
        assert_eq!(got, b"ping");
        assert!(bp.active.load(Ordering::Relaxed), "still in its window");
        task.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn windows_that_catch_nothing_leave_more_wake_ups_unpolled() {
        let ms = Duration::from_millis;
        let bp = Arc::new(BusyPoll::new(ms(20)));
        let (frames, stolen) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let task = start(&bp, &frames, &stolen);
        // Wake up, wait for the window to end, and say whether it polled.
        let wake = || async {
            let before = bp.polls();
            bp.unparked();
            tokio::time::sleep(ms(5)).await;
            let polled = bp.polls() > before;
            until("the window ends", || !bp.active.load(Ordering::Relaxed)).await;
            polled
        };
        // Quiet traffic: a miss skips 1 wake-up, the next 2, then 4.
        let mut pattern = Vec::new();
        for _ in 0..10 {
            pattern.push(wake().await);
        }
        let want = [
            true, false, true, false, false, true, false, false, false, false,
        ];
        assert_eq!(pattern, want, "polled wake-ups");
        assert_eq!(bp.score(), (0, 3));

        // A packet within a window is a hit: every wake-up polled again.
        while bp.skip.load(Ordering::Relaxed) > 0 {
            bp.unparked();
        }
        let before = bp.polls();
        bp.unparked();
        until("polling", || bp.polls() > before).await;
        tokio::time::sleep(ms(5)).await;
        frames.fetch_add(1, Ordering::Relaxed);
        until("the window ends", || !bp.active.load(Ordering::Relaxed)).await;
        assert_eq!(bp.score(), (1, 3));
        assert!(wake().await, "after a hit the next wake-up polls");
        // That window caught nothing: a miss, skipping one wake-up (not 8).
        assert!(!wake().await);
        assert!(wake().await);
        task.abort();
    }
}
