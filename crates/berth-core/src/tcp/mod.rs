//! TCP (RFC 9293), one concern a file, in the manner of gVisor's tcp package:
//!
//! - `conn.rs`: the connection (TCB): segment arrival (RFC 9293 §3.10.7), output,
//!   timers (retransmission, delayed ACK, persist, keepalive, TIME-WAIT);
//! - `listen.rs`: passive open with a SYN queue and an accept queue;
//! - `socket.rs`: the socket calls (`tcp_*` on [`crate::Stack`]) and demultiplexing;
//! - `rtt.rs` (RFC 6298), `cong.rs` (RFC 5681/6582/6928), `assembler.rs`
//!   (out-of-order data), `isn.rs` (RFC 6528).

pub(crate) mod assembler;
pub(crate) mod cong;
pub(crate) mod conn;
pub(crate) mod isn;
pub(crate) mod listen;
pub(crate) mod rtt;
pub(crate) mod socket;

use crate::time::Duration;
use std::fmt;

/// Connection states (RFC 9293 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    /// The name `ss` prints.
    pub fn ss_name(&self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSE",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECV",
            TcpState::Established => "ESTAB",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
        }
    }

    /// States in which both sides have exchanged SYNs.
    pub fn is_synchronized(&self) -> bool {
        !matches!(
            self,
            TcpState::Closed | TcpState::Listen | TcpState::SynSent | TcpState::SynReceived
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ss_name())
    }
}

/// TCP settings; `Default` follows Linux where the RFCs leave room.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Default receive buffer per connection (SO_RCVBUF). Linux tcp_rmem[1] is 128 KiB;
    /// berth uses 256 KiB so one connection can fill fast simulated links.
    pub recv_buffer: usize,
    /// Default send buffer per connection (SO_SNDBUF).
    pub send_buffer: usize,
    /// Minimum retransmission timeout (RFC 6298 says 1 s; Linux uses 200 ms).
    pub rto_min: Duration,
    pub rto_max: Duration,
    /// RTO before any RTT sample (RFC 6298 §2.1: 1 s).
    pub rto_initial: Duration,
    /// SYN retransmissions before connect times out (Linux tcp_syn_retries 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions for a half-open connection (Linux tcp_synack_retries 5).
    pub synack_retries: u32,
    /// Data retransmissions before the connection is dropped (Linux tcp_retries2 15).
    pub retries: u32,
    /// TIME-WAIT length, 2×MSL (Linux: 60 s).
    pub time_wait: Duration,
    /// How long an orphaned connection may sit in FIN-WAIT-2 (Linux tcp_fin_timeout).
    pub fin_timeout: Duration,
    /// Longest delay of an ACK (RFC 1122 §4.2.3.2 allows 500 ms; Linux uses 40 ms).
    pub delayed_ack: Duration,
    /// Keepalive defaults (Linux tcp_keepalive_time / _intvl / _probes).
    pub keepalive_idle: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_count: u32,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Most half-open connections per listener (Linux tcp_max_syn_backlog).
    pub max_syn_backlog: usize,
    /// Challenge ACKs per second, stack-wide (RFC 5961 §7; Linux 1000).
    pub challenge_ack_limit: u32,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            recv_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            rto_initial: Duration::from_secs(1),
            syn_retries: 6,
            synack_retries: 5,
            retries: 15,
            time_wait: Duration::from_secs(60),
            fin_timeout: Duration::from_secs(60),
            delayed_ack: Duration::from_millis(40),
            keepalive_idle: Duration::from_secs(7200),
            keepalive_interval: Duration::from_secs(75),
            keepalive_count: 9,
            window_scaling: true,
            timestamps: true,
            max_syn_backlog: 256,
            challenge_ack_limit: 1000,
        }
    }
}

/// Per-connection details, after Linux `struct tcp_info` (what `ss -i` shows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: Option<TcpState>,
    /// Smoothed RTT and its variation, microseconds.
    pub rtt_us: u64,
    pub rttvar_us: u64,
    pub rto_us: u64,
    /// Congestion window and slow-start threshold, bytes (ssthresh `None` = infinite).
    pub cwnd: usize,
    pub ssthresh: Option<usize>,
    /// Send MSS (payload bytes per segment) and the MSS the peer advertised.
    pub snd_mss: usize,
    pub rcv_mss: usize,
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    /// Segments retransmitted in total, and consecutive timeouts now.
    pub total_retrans: u64,
    pub retransmits: u32,
    /// The peer's advertised window, bytes (scaled).
    pub snd_wnd: usize,
    /// Our advertised window, bytes.
    pub rcv_wnd: usize,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub timestamps: bool,
}
