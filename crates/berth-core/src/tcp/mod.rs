//! TCP (RFC 9293), one concern a file, in the manner of gVisor's tcp package:
//!
//! - `conn/`: the connection (TCB, `mod.rs`) and its machine: `input.rs` (segment
//!   arrival, RFC 9293 §3.10.7), `recv.rs` (receive queue, window, autotuning),
//!   `output.rs` (what to send next, pacing), `timers.rs` (RTO, RACK reordering
//!   timer, tail loss probe, delayed ACK, persist, keepalive, TIME-WAIT),
//!   `loss.rs` (SACK input, RACK, TLP, PRR and D-SACK glue);
//! - `send_buf.rs`: the send ring; `assembler.rs`: out-of-order data;
//! - `sent.rs`: the record of segments in flight (send times, SACKed, lost);
//! - `sack.rs`: the RFC 6675 scoreboard; `rack.rs`: RACK (RFC 8985);
//! - `recovery.rs`: fast recovery (RFC 6582), PRR (RFC 6937), undo (RFC 3708);
//! - `cong/`: congestion control behind the `Controller` trait — `cubic.rs`
//!   (RFC 9438 with HyStart++, RFC 9406) and `reno.rs` (RFC 5681);
//! - `listen.rs`: passive open with a SYN queue and an accept queue;
//! - `socket.rs`: the socket calls (`tcp_*` on [`crate::Stack`]) and demultiplexing;
//! - `rtt.rs` (RFC 6298), `isn.rs` (RFC 6528).
//!
//! How an ACK flows on a SACK connection: `input.rs::on_ack` validates it, lets
//! `loss.rs::sack_input` mark the scoreboard and the records, moves snd_una
//! (`sent.rs::on_ack`), feeds the controller outside recovery, then
//! `loss.rs::loss_on_ack` runs RACK (maybe entering recovery), sets PRR's cwnd and
//! re-arms the probe timer. `output.rs::next_segment` then picks, in order: a
//! probe, a fast retransmission, a segment RACK marked lost (in recovery), new
//! data within cwnd (or PRR's budget), the peer's window and the pacing time.

pub(crate) mod assembler;
pub(crate) mod cong;
pub(crate) mod conn;
pub(crate) mod cookie;
pub(crate) mod isn;
pub(crate) mod listen;
pub(crate) mod rack;
pub(crate) mod recovery;
pub(crate) mod rtt;
pub(crate) mod sack;
pub(crate) mod send_buf;
pub(crate) mod sent;
pub(crate) mod socket;

use crate::time::Duration;
pub use cong::Algorithm;
pub use cookie::SynCookies;
pub use socket::SOMAXCONN;
use std::fmt;

/// Connection states (RFC 9293 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// No connection.
    Closed,
    /// Waiting for SYNs.
    Listen,
    /// Our SYN sent, waiting for the SYN-ACK.
    SynSent,
    /// SYN received and answered, waiting for the ACK.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We closed (FIN sent), not yet acknowledged.
    FinWait1,
    /// Our FIN acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer closed; waiting for our close.
    CloseWait,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing,
    /// The peer closed, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both closed; waiting 2·MSL for stray segments.
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
    /// Default receive buffer per connection (SO_RCVBUF). Linux `tcp_rmem[1]` is 128 KiB;
    /// berth uses 256 KiB so one connection can fill fast simulated links.
    pub recv_buffer: usize,
    /// Default send buffer per connection (SO_SNDBUF).
    pub send_buffer: usize,
    /// Minimum retransmission timeout (RFC 6298 says 1 s; Linux uses 200 ms).
    pub rto_min: Duration,
    /// Largest retransmission timeout (RFC 6298 §2.5: at least 60 s; Linux 120 s).
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
    /// Time between unanswered keepalive probes (Linux tcp_keepalive_intvl, 75 s).
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is dropped (Linux tcp_keepalive_probes,
    /// 9).
    pub keepalive_count: u32,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer SACK-permitted and, when both sides did, report out-of-order data in
    /// SACK blocks (RFC 2018) and recover from loss with the peer's blocks
    /// (RFC 6675; NewReno without them).
    pub sack: bool,
    /// Window-scale shift to offer; `None` derives it from the receive buffer (the
    /// smallest shift that lets the whole buffer be advertised).
    pub window_scale: Option<u8>,
    /// Initial congestion window in segments; `None` follows RFC 6928
    /// (min(10·MSS, max(2·MSS, 14600)) bytes).
    pub initial_window: Option<u32>,
    /// Most half-open connections per listener (Linux tcp_max_syn_backlog).
    pub max_syn_backlog: usize,
    /// SYN cookies (RFC 4987; Linux tcp_syncookies): answer SYNs to a full SYN
    /// queue statelessly (the default), never, or always.
    pub syncookies: SynCookies,
    /// Challenge ACKs per second, stack-wide (RFC 5961 §7; Linux 1000).
    pub challenge_ack_limit: u32,
    /// Congestion control of new sockets (Linux tcp_congestion_control);
    /// TCP_CONGESTION changes it per socket.
    pub congestion: Algorithm,
    /// RACK time-based loss detection (RFC 8985) on SACK connections (Linux
    /// tcp_recovery = 1); off: RFC 6675 duplicate-ACK recovery.
    pub rack: bool,
    /// Tail loss probes (RFC 8985 §7; Linux tcp_early_retrans = 3).
    pub tlp: bool,
    /// F-RTO (RFC 5682; Linux tcp_frto): tell a spurious timeout from a real one
    /// on connections without timestamps (with them, Eifel, RFC 3522, does).
    pub frto: bool,
    /// At the end of SACK recovery set cwnd to ssthresh but no more than the
    /// flight plus one segment, nor less than ssthresh/2 (see
    /// `Recovery::exit_sack`); off: cwnd = ssthresh, as Linux's
    /// tcp_end_cwnd_reduction (the Linux profile).
    pub gentle_recovery_exit: bool,
    /// Receive-buffer autotuning (Linux tcp_moderate_rcvbuf, dynamic right-
    /// sizing): the buffer grows to about twice what the application reads per
    /// RTT, up to `rmem_max`. SO_RCVBUF turns it off for that socket.
    pub moderate_rcvbuf: bool,
    /// Pace data at cwnd/SRTT × 200 % (slow start) or 120 % (Linux's internal
    /// pacing, tcp_pacing_ss_ratio / tcp_pacing_ca_ratio).
    pub pacing: bool,
    /// Largest autotuned receive buffer (Linux `tcp_rmem[2]`: 6 MiB).
    pub rmem_max: usize,
    /// Largest autotuned send buffer, payload bytes. Linux's `tcp_wmem[2]` is
    /// 4 MiB of memory including per-packet overhead; berth counts payload and
    /// allows 8 MiB so one connection can keep an rmem_max window in flight.
    pub wmem_max: usize,
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
            sack: true,
            window_scale: None,
            initial_window: None,
            max_syn_backlog: 256,
            syncookies: SynCookies::OnOverflow,
            challenge_ack_limit: 1000,
            congestion: Algorithm::Cubic,
            rack: true,
            tlp: true,
            frto: true,
            gentle_recovery_exit: true,
            moderate_rcvbuf: true,
            pacing: true,
            rmem_max: 6 << 20,
            wmem_max: 8 << 20,
        }
    }
}

impl TcpConfig {
    /// The Linux-compatible profile: what a stock Linux kernel (6.x) puts on the
    /// wire, so that scripts and captures written against Linux match berth. Used
    /// by the packetdrill adapter; any berth user may pick it. Each value and why:
    ///
    /// - SYN and SYN-ACK options in Linux's layout and order (berth-wire always
    ///   emits that layout): `mss, sackOK, TS, nop, wscale` — SACK-permitted shares
    ///   a 32-bit word with the timestamp; without timestamps it is `nop, nop,
    ///   sackOK`. A SYN-ACK carries only the options the SYN offered.
    /// - MSS = interface MTU − 40 (1460 on Ethernet), as Linux's tcp_mtu_to_mss.
    /// - SACK-permitted offered (net.ipv4.tcp_sack = 1).
    /// - Window scale 8: Linux derives it from the largest receive buffer
    ///   (`tcp_rmem[2]`); the packetdrill test environment (and many distributions)
    ///   use `tcp_rmem[2]` ≥ 8 MiB, giving 8. Stock `tcp_rmem[2]` = 6 MiB gives 7: set
    ///   `window_scale = Some(7)` for that.
    /// - Window 65535 in SYN and SYN-ACK (the unscaled field's maximum; Linux
    ///   offers min(65535, rcv_wnd) before scaling is agreed, RFC 7323 §2.2).
    /// - Receive buffer 131072 bytes (`tcp_rmem[1]`); send buffer left at berth's
    ///   256 KiB (Linux grows its own send buffer on demand).
    /// - Initial window 10 segments whatever the MSS (Linux TCP_INIT_CWND = 10;
    ///   RFC 6928 caps it by bytes, Linux does not).
    /// - Initial RTO 1 s (RFC 6298 §2.1; Linux TCP_TIMEOUT_INIT), minimum RTO
    ///   200 ms (Linux TCP_RTO_MIN), maximum 120 s (TCP_RTO_MAX).
    /// - Delayed ACK at most 40 ms (Linux TCP_DELACK_MIN) with quick ACKs at the
    ///   start of a connection (Linux quickack mode).
    /// - TIME-WAIT 60 s (TCP_TIMEWAIT_LEN), FIN-WAIT-2 timeout 60 s
    ///   (tcp_fin_timeout), SYN retries 6 and SYN-ACK retries 5, data retries 15,
    ///   keepalive 7200/75/9, timestamps on (tcp_timestamps = 1).
    /// - Loss recovery as Linux's defaults: RACK (tcp_recovery = 1), tail loss
    ///   probes (tcp_early_retrans = 3), PRR, CUBIC with HyStart
    ///   (tcp_congestion_control = cubic).
    pub fn linux() -> TcpConfig {
        TcpConfig {
            recv_buffer: 131_072,
            sack: true,
            window_scale: Some(8),
            initial_window: Some(10),
            rack: true,
            tlp: true,
            congestion: Algorithm::Cubic,
            // Stock Linux computes a pacing rate but enforces it only under the
            // fq qdisc or for BBR (tcp_needs_internal_pacing); with the default
            // fq_codel a CUBIC flow sends its window as it opens, and that is
            // what packetdrill scripts expect on the wire.
            pacing: false,
            gentle_recovery_exit: false,
            ..TcpConfig::default()
        }
    }
}

/// Per-connection details, after Linux `struct tcp_info` (what `ss -i` shows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// TCP state (`None` for a socket without one).
    pub state: Option<TcpState>,
    /// Smoothed RTT and its variation, microseconds.
    pub rtt_us: u64,
    /// RTT variation, microseconds.
    pub rttvar_us: u64,
    /// Retransmission timeout, microseconds.
    pub rto_us: u64,
    /// Congestion window in segments of `snd_mss` (Linux tcpi_snd_cwnd, what
    /// `ss -i` prints as cwnd).
    pub snd_cwnd: u32,
    /// Congestion window in bytes (what the congestion controller keeps).
    pub snd_cwnd_bytes: usize,
    /// Slow-start threshold in bytes (`None` = infinite).
    pub ssthresh: Option<usize>,
    /// Send MSS (payload bytes per segment) and the MSS the peer advertised.
    pub snd_mss: usize,
    /// The MSS the peer advertised.
    pub rcv_mss: usize,
    /// The MSS we advertise, less the timestamp option's 12 bytes when
    /// timestamps are in use (Linux tcpi_advmss).
    pub advmss: usize,
    /// Delayed-ACK timeout, microseconds; 0 until data has been received
    /// (Linux tcpi_ato).
    pub ato_us: u64,
    /// Path MTU the connection sends by, IP header included (Linux
    /// tcpi_pmtu): the interface's, or lower once fragmentation needed /
    /// Packet Too Big said so (RFC 1191, RFC 8201).
    pub pmtu: usize,
    /// Payload bytes sent (retransmissions included).
    pub bytes_sent: u64,
    /// Payload bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// Segments sent.
    pub segs_out: u64,
    /// Segments received.
    pub segs_in: u64,
    /// Segments sent and received that carried data (tcpi_data_segs_out/in).
    pub data_segs_out: u64,
    /// Segments received that carried data.
    pub data_segs_in: u64,
    /// Segments retransmitted in total, and consecutive timeouts now.
    pub total_retrans: u64,
    /// Consecutive retransmission timeouts now.
    pub retransmits: u32,
    /// The peer's advertised window, bytes (scaled).
    pub snd_wnd: usize,
    /// Our advertised window, bytes.
    pub rcv_wnd: usize,
    /// Window scaling was agreed: both SYNs carried the option (RFC 7323
    /// §2.2; Linux TCPI_OPT_WSCALE in tcpi_options). The shifts below are 0
    /// without it, and may be 0 with it too.
    pub window_scaling: bool,
    /// Window scale the peer uses (we shift its window by it).
    pub snd_wscale: u8,
    /// Window scale we use.
    pub rcv_wscale: u8,
    /// Timestamps were negotiated (RFC 7323).
    pub timestamps: bool,
    /// SACK was negotiated (RFC 2018).
    pub sack: bool,
    /// Congestion-control algorithm (TCP_CONGESTION name: "reno", "cubic").
    pub congestion: &'static str,
    /// Retransmission timeouts so far (each RTO once, not its backoffs).
    pub rto_events: u64,
    /// Loss-recovery episodes entered (fast recovery, RACK or SACK based).
    pub recoveries: u64,
    /// Segments the peer reported as received twice (D-SACK, RFC 2883;
    /// Linux tcpi_dsack_dups).
    pub dsack_dups: u64,
    /// Reordering events seen (Linux tcpi_reord_seen).
    pub reord_seen: u64,
    /// Pacing rate in bytes per second (0: not pacing yet).
    pub pacing_rate: u64,
    /// Latest delivery-rate sample, bytes per second: bytes acknowledged or
    /// SACKed over the time since the sample began (at least a smoothed RTT,
    /// or since data went out after an idle time); Linux tcpi_delivery_rate.
    pub delivery_rate: u64,
    /// That sample was taken with nothing more to send (application-limited).
    pub app_limited: bool,
    /// Segments delivered: acknowledged or SACKed (tcpi_delivered).
    pub delivered: u64,
    /// Microseconds with data outstanding (tcpi_busy_time).
    pub busy_us: u64,
    /// Milliseconds since data was last sent (tcpi_last_data_sent); since the
    /// connection began if none was.
    pub last_data_sent_ms: u64,
    /// Milliseconds since data was last received (tcpi_last_data_recv).
    pub last_data_recv_ms: u64,
    /// Milliseconds since an acceptable ACK last arrived (tcpi_last_ack_recv).
    pub last_ack_recv_ms: u64,
    /// Smallest RTT sample, microseconds; 0 before the first (tcpi_min_rtt).
    pub min_rtt_us: u64,
    /// Bytes the application read in the last measured round trip, what
    /// receive-buffer autotuning sizes by (tcpi_rcv_space); 0 before any read.
    pub rcv_space: usize,
    /// The largest window offered now: the buffer, or 4 segments under memory
    /// pressure (what Linux's tcpi_rcv_ssthresh clamps its window to).
    pub rcv_ssthresh: usize,
    /// Receive buffer now in use, bytes (grows by autotuning; Linux tcpi_rcv_space
    /// is the per-RTT measure, this is the buffer it sized).
    pub rcv_buf: usize,
    /// Send buffer now in use, bytes.
    pub snd_buf: usize,
    /// The pending timer as inet_diag reports it (`ss -o`), if any.
    pub timer: Option<TcpTimer>,
    /// Linux sk_shutdown bits: 1 the receive side is shut (shutdown(SHUT_RD)
    /// or the peer's FIN), 2 the send side (shutdown(SHUT_WR) or close).
    pub shutdown: u8,
    /// The application closed its handle; the stack finishes the connection
    /// on its own (an orphan, as `ss -s` counts them).
    pub orphan: bool,
}

/// Which timer a connection waits on, in inet_diag's terms (`ss -o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpTimerKind {
    /// Retransmission (also a tail loss probe or RACK's reordering timer).
    On,
    /// Keepalive, or the FIN-WAIT-2 timeout of an orphan.
    Keepalive,
    /// TIME-WAIT's 2·MSL.
    TimeWait,
    /// Zero-window probe.
    Persist,
}

impl TcpTimerKind {
    /// The name iproute2 `ss -o` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpTimerKind::On => "on",
            TcpTimerKind::Keepalive => "keepalive",
            TcpTimerKind::TimeWait => "timewait",
            TcpTimerKind::Persist => "persist",
        }
    }
}

/// A pending timer: which, time left, and the retransmissions or probes so
/// far (inet_diag's idiag_timer, idiag_expires, idiag_retrans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimer {
    /// Which timer.
    pub kind: TcpTimerKind,
    /// Time until it fires.
    pub expires: crate::time::Duration,
    /// Consecutive retransmission timeouts (for `On`) or unanswered probes.
    pub retrans: u32,
}
