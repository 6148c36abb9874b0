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
//! The window adapts, as KVM's halt polling does for a vCPU (virt/kvm,
//! `grow_halt_poll_ns`/`shrink_halt_poll_ns`): at every wake-up the time
//! since the thread last had work is the gap polling would have had to
//! bridge. A gap within USEC grows the window (10 µs, then doubling, up to
//! USEC); a longer one resets it to 0, so no polling. Traffic whose packets
//! come close together (request/response, a busy flow) gets polled; sparse
//! traffic costs no CPU, and the polling ever spent is bounded by the gaps it
//! bridged plus one window per pattern change. That is why it is on by
//! default (USEC 50), where Linux's fixed-window busy_read is off.
//!
//! How: a task on the relay's single-threaded tokio runtime that yields in a
//! loop. A yielding task makes tokio poll its I/O driver without blocking
//! before running it again, so every event is handled as it arrives. The
//! runtime's unpark hook ([`BusyPoll::unparked`]) adapts the window and
//! starts a polling run; the run goes on while the device's frame counters
//! move and ends after a window without.
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

/// The window's largest size by default (`--busy-poll`).
pub const DEFAULT_MAX_US: u64 = 50;
/// First back-off after a contended window.
const MIN_BACKOFF: Duration = Duration::from_millis(1);
/// Longest back-off while windows keep being contended.
pub const MAX_BACKOFF: Duration = Duration::from_millis(128);
/// The window's first size when a short gap grows it from 0.
const GROW_START: Duration = Duration::from_micros(10);
/// Polls between two looks at the context switch count (a syscall).
const CHECK_EVERY: u64 = 16;

pub struct BusyPoll {
    /// The largest window (USEC).
    max: Duration,
    grow_start: Duration,
    min_backoff: Duration,
    /// Time origin of the nanosecond stamps below.
    base: Instant,
    /// The current window, ns (0: no polling).
    window_ns: AtomicU64,
    /// When the thread last had work (a wake-up, or a packet seen while
    /// polling), ns since `base`.
    last_ns: AtomicU64,
    kick: Notify,
    active: AtomicBool,
    polls: AtomicU64,
    backoffs: AtomicU64,
    grows: AtomicU64,
    resets: AtomicU64,
}

/// This thread's involuntary context switches so far.
fn preempted() -> i64 {
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| u.involuntary_context_switches())
        .unwrap_or(0)
}

/// The next window after a wake-up that ended a `gap` of quiet (KVM's rule:
/// grow while gaps fit in `max`, drop to 0 after one that does not).
fn adapt(window: Duration, gap: Duration, max: Duration, start: Duration) -> Duration {
    if gap > max {
        Duration::ZERO
    } else if window >= gap {
        // Polling this long would have bridged it: keep.
        window
    } else {
        (window * 2).max(start).min(max)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl BusyPoll {
    pub fn new(max: Duration) -> BusyPoll {
        BusyPoll {
            max,
            grow_start: GROW_START.min(max),
            min_backoff: MIN_BACKOFF,
            base: Instant::now(),
            window_ns: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            kick: Notify::new(),
            active: AtomicBool::new(false),
            polls: AtomicU64::new(0),
            backoffs: AtomicU64::new(0),
            grows: AtomicU64::new(0),
            resets: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        nanos(self.base.elapsed())
    }

    /// The current window.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns.load(Ordering::Relaxed))
    }

    /// The runtime's thread woke up (tokio's `on_thread_unpark`): adapt the
    /// window to the gap that just ended, and poll if it is open.
    pub fn unparked(&self) {
        let now = self.now_ns();
        let gap =
            Duration::from_nanos(now.saturating_sub(self.last_ns.swap(now, Ordering::Relaxed)));
        let old = self.window();
        let new = adapt(old, gap, self.max, self.grow_start);
        if new != old {
            self.window_ns.store(nanos(new), Ordering::Relaxed);
            let count = if new > old { &self.grows } else { &self.resets };
            count.fetch_add(1, Ordering::Relaxed);
        }
        if !new.is_zero() {
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

    /// Windows ended because the thread was preempted.
    pub fn backoffs(&self) -> u64 {
        self.backoffs.load(Ordering::Relaxed)
    }

    /// Times the window grew, and times a long gap reset it to 0.
    pub fn adaptations(&self) -> (u64, u64) {
        (
            self.grows.load(Ordering::Relaxed),
            self.resets.load(Ordering::Relaxed),
        )
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
                    self.last_ns
                        .store(nanos(now.duration_since(self.base)), Ordering::Relaxed);
                } else if now.duration_since(last) >= self.window() {
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

    /// A poller whose window is `w` already (as after short gaps).
    fn pinned(w: Duration) -> BusyPoll {
        let bp = BusyPoll::new(w);
        bp.window_ns.store(nanos(w), Ordering::Relaxed);
        bp
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
        let bp = Arc::new(pinned(Duration::from_millis(200)));
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
        let mut bp = pinned(Duration::from_secs(60));
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
        let bp = Arc::new(pinned(Duration::from_secs(60)));
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

    #[test]
    fn the_window_grows_on_short_gaps_and_resets_on_a_long_one() {
        let us = Duration::from_micros;
        let (max, start) = (us(50), us(10));
        // From 0, a gap polling could have bridged opens it at 10 µs ...
        assert_eq!(adapt(us(0), us(30), max, start), us(10));
        // ... then doubles while gaps stay longer than it and within max.
        assert_eq!(adapt(us(10), us(30), max, start), us(20));
        assert_eq!(adapt(us(20), us(30), max, start), us(40));
        assert_eq!(adapt(us(40), us(45), max, start), us(50));
        assert_eq!(adapt(us(50), us(50), max, start), us(50), "at most max");
        // A window that already covers the gap stays.
        assert_eq!(adapt(us(40), us(25), max, start), us(40));
        // A gap longer than max: no polling until short gaps come back.
        assert_eq!(adapt(us(50), us(51), max, start), us(0));
        assert_eq!(adapt(us(0), us(5000), max, start), us(0));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sparse_wake_ups_never_poll_and_close_ones_do() {
        let ms = Duration::from_millis;
        let mut bp = BusyPoll::new(ms(200));
        bp.grow_start = ms(50);
        let bp = Arc::new(bp);
        let (frames, switches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicI64::new(0)));
        let task = start(&bp, &frames, &switches);
        // Wake-ups 300 ms apart (more than the 200 ms max): never a poll.
        for _ in 0..3 {
            tokio::time::sleep(ms(300)).await;
            bp.unparked();
        }
        tokio::time::sleep(ms(20)).await;
        assert_eq!(bp.window(), ms(0));
        assert_eq!(bp.polls(), 0, "sparse wake-ups cost no polling");

        // One 20 ms after the last: the window opens (50 ms) and it polls.
        bp.unparked();
        assert_eq!(bp.window(), ms(50));
        until("a close wake-up starts polling", || bp.polls() > 0).await;
        until("the window ends", || !bp.active.load(Ordering::Relaxed)).await;
        // The next came after the whole 50 ms window: it doubles, to max.
        for want in [ms(100), ms(200)] {
            let before = bp.polls();
            bp.unparked();
            assert_eq!(bp.window(), want);
            until("polling starts", || bp.polls() > before).await;
            until("the window ends", || !bp.active.load(Ordering::Relaxed)).await;
        }
        assert_eq!(bp.adaptations(), (3, 0));

        // A long quiet resets it: no more polling.
        tokio::time::sleep(ms(300)).await;
        let before = bp.polls();
        bp.unparked();
        assert_eq!(bp.window(), ms(0));
        assert_eq!(bp.adaptations(), (3, 1));
        tokio::time::sleep(ms(50)).await;
        assert_eq!(bp.polls(), before, "no polling after a long gap");
        task.abort();
    }
}
