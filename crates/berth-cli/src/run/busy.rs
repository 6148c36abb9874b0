//! Busy polling (`berth run --busy-poll USEC`): after a packet crossed the
//! TUN, the relay's thread keeps polling its descriptors (epoll_wait with a
//! zero timeout) for up to USEC microseconds of quiet instead of going to
//! sleep, as Linux's SO_BUSY_POLL / net.core.busy_read do for a socket.
//!
//! Why: a relayed round trip wakes the relay twice (the request from the
//! TUN, the answer from the host socket), and on a virtual machine each
//! sleep and wake-up costs tens of microseconds: active through the gap
//! halved a 1-byte round trip here (README, `berth run`). The price is CPU:
//! while traffic keeps coming within the window the relay's thread uses a
//! whole core, and a quiet window costs USEC of it after the last packet.
//! Off by default, like Linux's.
//!
//! How: a task on the relay's single-threaded tokio runtime that yields in a
//! loop. A yielding task makes tokio poll its I/O driver without blocking
//! before running it again, so every event is handled as it arrives. The
//! window restarts whenever the device's frame counters moved.
//!
//! Polling only pays while the CPU is otherwise idle. When other threads
//! want it (a bulk transfer keeps iperf3, the kernel's TCP and the relay
//! busy on few CPUs) the scheduler preempts the polling thread, and every
//! microsecond it polled was taken from them. So the task watches its
//! thread's involuntary context switches (getrusage RUSAGE_THREAD): one
//! during a window ends the window and polling stays off for a back-off
//! (1 ms, doubling to [`MAX_BACKOFF`] while it keeps happening).

use nix::sys::resource::{getrusage, UsageWho};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// First back-off after a contended window.
const MIN_BACKOFF: Duration = Duration::from_millis(1);
/// Longest back-off while windows keep being contended.
pub const MAX_BACKOFF: Duration = Duration::from_millis(128);
/// Polls between two looks at the context switch count (a syscall).
const CHECK_EVERY: u64 = 16;

pub struct BusyPoll {
    window: Duration,
    min_backoff: Duration,
    kick: Notify,
    active: AtomicBool,
    polls: AtomicU64,
    backoffs: AtomicU64,
}

/// This thread's involuntary context switches so far.
fn preempted() -> i64 {
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| u.involuntary_context_switches())
        .unwrap_or(0)
}

impl BusyPoll {
    pub fn new(window: Duration) -> BusyPoll {
        BusyPoll {
            window,
            min_backoff: MIN_BACKOFF,
            kick: Notify::new(),
            active: AtomicBool::new(false),
            polls: AtomicU64::new(0),
            backoffs: AtomicU64::new(0),
        }
    }

    /// A packet came: start polling if not polling or paused already.
    pub fn kick(&self) {
        if !self.active.load(Ordering::Relaxed) {
            self.kick.notify_one();
        }
    }

    /// Polls made so far (yields of the polling task).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Windows ended because the thread was preempted.
    pub fn backoffs(&self) -> u64 {
        self.backoffs.load(Ordering::Relaxed)
    }

    /// The polling task: `frames` counts the packets that crossed so far.
    pub async fn run(&self, frames: impl Fn() -> u64) {
        self.run_with(frames, preempted).await
    }

    /// [`BusyPoll::run`] with the preemption count given (for tests).
    async fn run_with(&self, frames: impl Fn() -> u64, preempted: impl Fn() -> i64) {
        let mut backoff = self.min_backoff;
        loop {
            self.kick.notified().await;
            self.active.store(true, Ordering::Relaxed);
            let (mut seen, mut last) = (frames(), Instant::now());
            let switches = preempted();
            let mut contended = false;
            for i in 1u64.. {
                tokio::task::yield_now().await;
                self.polls.fetch_add(1, Ordering::Relaxed);
                if i % CHECK_EVERY == 0 && preempted() != switches {
                    contended = true;
                    break;
                }
                let (n, now) = (frames(), Instant::now());
                if n != seen {
                    (seen, last) = (n, now);
                } else if now.duration_since(last) >= self.window {
                    break;
                }
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
    use std::sync::atomic::AtomicI64;
    use std::sync::Arc;

    /// Wait (up to 5 s, so a loaded machine does not fail it) for `cond`.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn start(
        bp: &Arc<BusyPoll>,
        frames: &Arc<AtomicU64>,
        switches: &Arc<AtomicI64>,
    ) -> tokio::task::JoinHandle<()> {
        let (bp, f, sw) = (Arc::clone(bp), Arc::clone(frames), Arc::clone(switches));
        tokio::spawn(async move {
            bp.run_with(|| f.load(Ordering::Relaxed), || sw.load(Ordering::Relaxed))
                .await
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn polls_only_after_a_kick_and_stops_after_a_quiet_window() {
        let bp = Arc::new(BusyPoll::new(Duration::from_millis(200)));
        let (frames, switches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicI64::new(0)));
        let task = start(&bp, &frames, &switches);
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
    async fn a_preempted_window_ends_and_polling_pauses() {
        let mut bp = BusyPoll::new(Duration::from_secs(60));
        bp.min_backoff = Duration::from_millis(300);
        let bp = Arc::new(bp);
        let (frames, switches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicI64::new(0)));
        let task = start(&bp, &frames, &switches);
        bp.kick();
        until("a kick starts polling", || bp.polls() > 0).await;
        assert_eq!(bp.backoffs(), 0, "not preempted: polls on");
        switches.fetch_add(1, Ordering::Relaxed);
        until("a preemption ends the window", || bp.backoffs() == 1).await;
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
        switches.fetch_add(1, Ordering::Relaxed);
        until("a second preemption", || bp.backoffs() == 2).await;
        task.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_tasks_run_and_timers_fire_while_it_polls() {
        let bp = Arc::new(BusyPoll::new(Duration::from_secs(60)));
        let (frames, switches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicI64::new(0)));
        let task = start(&bp, &frames, &switches);
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
}
