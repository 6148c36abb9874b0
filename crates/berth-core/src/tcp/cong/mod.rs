//! Congestion control as a trait, in the manner of quinn-proto's `Controller`
//! and Linux's `tcp_congestion_ops`: the connection reports ACKs, congestion
//! events and timeouts; the algorithm owns cwnd and ssthresh. Loss recovery
//! (`recovery.rs`) may set cwnd directly while it runs (RFC 6937 PRR), and asks
//! for the reduction once per episode through [`Controller::on_congestion_event`].
//!
//! - `reno.rs`: slow start and congestion avoidance (RFC 5681), the initial window
//!   of RFC 6928;
//! - `cubic.rs`: CUBIC (RFC 9438) with HyStart++ (RFC 9406), the default as on Linux.

pub(crate) mod cubic;
pub(crate) mod reno;

use crate::time::{Duration, Instant};
use std::fmt;

/// The congestion-control algorithm of a socket (Linux TCP_CONGESTION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// NewReno (RFC 5681 / RFC 6582).
    Reno,
    /// CUBIC (RFC 9438) with HyStart++ (RFC 9406), Linux's default.
    #[default]
    Cubic,
}

impl Algorithm {
    /// The name TCP_CONGESTION and `ss -i` use.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Reno => "reno",
            Algorithm::Cubic => "cubic",
        }
    }

    /// Parse a TCP_CONGESTION name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "reno" | "newreno" => Some(Algorithm::Reno),
            "cubic" => Some(Algorithm::Cubic),
            _ => None,
        }
    }

    pub(crate) fn controller(self, mss: usize, iw_segments: Option<u32>) -> Box<dyn Controller> {
        match self {
            Algorithm::Reno => Box::new(reno::NewReno::new(mss, iw_segments)),
            Algorithm::Cubic => Box::new(cubic::Cubic::new(mss, iw_segments)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 6928: IW = min(10·MSS, max(2·MSS, 14600)); `iw_segments` overrides it with
/// a segment count (Linux: 10 whatever the MSS).
pub(crate) fn initial_window(mss: usize, iw_segments: Option<u32>) -> usize {
    match iw_segments {
        Some(n) => n.max(1) as usize * mss,
        None => (10 * mss).min((2 * mss).max(14_600)),
    }
}

/// One ACK that acknowledged new data, outside loss recovery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckEvent {
    pub now: Instant,
    /// Bytes newly acknowledged (cumulatively).
    pub acked: usize,
    /// RTT measured from this ACK, if any.
    pub rtt: Option<Duration>,
    /// The smallest RTT seen on the connection.
    pub min_rtt: Option<Duration>,
    /// Bytes in flight before this ACK (part of the contract; NewReno and CUBIC
    /// decide cwnd-limitation through `app_limited` instead).
    #[allow(dead_code)]
    pub in_flight: usize,
    /// The sender was not cwnd-limited (RFC 7661): the window should not grow.
    pub app_limited: bool,
    /// snd_una after this ACK and the highest sequence sent, for round tracking.
    pub snd_una: berth_wire::SeqNumber,
    pub snd_max: berth_wire::SeqNumber,
}

pub(crate) trait Controller: fmt::Debug + Send {
    fn cwnd(&self) -> usize;
    /// `usize::MAX` until the first congestion event.
    fn ssthresh(&self) -> usize;
    /// Loss recovery sets the window while it runs (PRR, RFC 6937 §3).
    fn set_cwnd(&mut self, cwnd: usize);
    fn set_ssthresh(&mut self, ssthresh: usize);
    /// The send MSS changed (a lower path MTU); the window stays in bytes.
    fn set_mss(&mut self, mss: usize);
    /// New data acknowledged outside recovery.
    fn on_ack(&mut self, ev: &AckEvent);
    /// Loss detected (fast retransmit, RACK) at most once per window: lower
    /// ssthresh, and cwnd to it. `in_flight` is the data outstanding then.
    fn on_congestion_event(&mut self, now: Instant, in_flight: usize);
    /// Retransmission timeout (RFC 5681 §3.1): ssthresh from the flight, cwnd to
    /// the loss window of one segment.
    fn on_rto(&mut self, now: Instant, in_flight: usize);
    /// The last congestion event (or RTO) was spurious (D-SACK, RFC 3708; F-RTO,
    /// RFC 5682): restore the window it cut.
    fn undo(&mut self);
    /// The connection sent nothing for a while and starts again (RFC 7661 / Linux
    /// tcp_cwnd_restart): algorithms that keep time state reset it.
    fn on_idle_restart(&mut self, _now: Instant) {}
    /// Bytes per second to pace at, for a flow limited by `window` bytes over
    /// `srtt`. The default is Linux's tcp_update_pacing_rate: window/SRTT ×
    /// 200 % in slow start (cwnd < ssthresh/2), × 120 % after; a model-based
    /// algorithm would return its own estimate.
    fn pacing_rate(&self, window: usize, srtt: Duration) -> u64 {
        let gain = if self.cwnd() < self.ssthresh() / 2 {
            2.0
        } else {
            1.2
        };
        (window as f64 / srtt.as_secs_f64().max(1e-6) * gain) as u64
    }
}
