//! What `tcp_info` reports beyond the TCB's own state (Linux tcpi_last_data_sent,
//! tcpi_delivery_rate, tcpi_busy_time, …): times of the last data and ACK, data
//! segment counts, delivered segments and a delivery-rate sample. Kept apart so
//! the TCB's hot paths only call three small hooks.

use super::*;
use crate::tcp::{TcpTimer, TcpTimerKind};

/// Times and counts read only by [`Tcb::info`].
#[derive(Debug, Clone)]
pub(crate) struct InfoMarks {
    /// When data was last sent and received, and an acceptable ACK last
    /// arrived; the connection's start until then (as Linux's lsndtime,
    /// lrcvtime and rcv_tstamp).
    last_data_sent: Instant,
    last_data_recv: Instant,
    last_ack_recv: Instant,
    /// Segments sent and received that carried data.
    data_segs_out: u64,
    data_segs_in: u64,
    /// Segments delivered to the peer (acknowledged or SACKed), and bytes.
    delivered: u64,
    delivered_bytes: u64,
    /// Start of the current rate sample: when, and `delivered_bytes` then.
    rate_mark: Option<(Instant, u64)>,
    /// Latest delivery-rate sample, bytes per second, and whether the sender
    /// had nothing more to send while it was taken (application-limited).
    delivery_rate: u64,
    app_limited: bool,
    /// Time with data outstanding: closed periods, and the open one's start.
    busy_total: Duration,
    busy_since: Option<Instant>,
    /// The delayed-ACK timeout, once data has been received (Linux tcpi_ato is
    /// 0 until then).
    ato: Duration,
}

impl InfoMarks {
    pub fn new(now: Instant) -> InfoMarks {
        InfoMarks {
            last_data_sent: now,
            last_data_recv: now,
            last_ack_recv: now,
            data_segs_out: 0,
            data_segs_in: 0,
            delivered: 0,
            delivered_bytes: 0,
            rate_mark: None,
            delivery_rate: 0,
            app_limited: false,
            busy_total: Duration::ZERO,
            busy_since: None,
            ato: Duration::ZERO,
        }
    }
}

impl Tcb {
    /// A segment carrying `len` data bytes went out.
    pub(super) fn info_on_send(&mut self, now: Instant, len: usize) {
        if len == 0 {
            return;
        }
        let m = &mut self.marks;
        m.data_segs_out += 1;
        m.last_data_sent = now;
        if m.busy_since.is_none() {
            // Data outstanding again after an idle time: a rate sample
            // starts here (Linux restarts its delivered_mstamp likewise).
            m.busy_since = Some(now);
            m.rate_mark = Some((now, m.delivered_bytes));
        }
    }

    /// A segment with `len` payload bytes arrived (before any trimming).
    pub(super) fn info_on_recv(&mut self, now: Instant, len: usize, cfg: &TcpConfig) {
        if len == 0 {
            return;
        }
        self.marks.data_segs_in += 1;
        self.marks.last_data_recv = now;
        self.marks.ato = cfg.delayed_ack;
    }

    /// An acceptable ACK that delivered `bytes` (cumulatively or by SACK).
    pub(super) fn info_on_ack(&mut self, now: Instant, bytes: usize) {
        let srtt = self.rtt.srtt().unwrap_or(Duration::ZERO);
        let unsent = self.send.len() > self.flight().min(self.send.len());
        let idle = self.snd_una >= self.snd_max && self.send.len() == 0;
        let m = &mut self.marks;
        m.last_ack_recv = now;
        if bytes > 0 {
            m.delivered += bytes.div_ceil(self.mss.max(1)) as u64;
            m.delivered_bytes += bytes as u64;
            // The rate over the sample so far; a new sample starts once this
            // one spans a smoothed RTT.
            if let Some((t0, d0)) = m.rate_mark {
                let dt = now.saturating_duration_since(t0);
                if !dt.is_zero() {
                    let rate = (m.delivered_bytes - d0) as u128 * 1_000_000 / dt.as_micros();
                    m.delivery_rate = u64::try_from(rate).unwrap_or(u64::MAX);
                    m.app_limited = !unsent;
                    if dt >= srtt {
                        m.rate_mark = Some((now, m.delivered_bytes));
                    }
                }
            }
        }
        if idle {
            if let Some(t0) = m.busy_since.take() {
                m.busy_total += now.saturating_duration_since(t0);
            }
            m.rate_mark = None;
        }
    }

    /// The timer inet_diag would report (what `ss -o` prints): the
    /// retransmission timer (also when a tail loss probe or RACK's reordering
    /// timer stands for it) is "on", then the zero-window probe, then
    /// keepalive (which on Linux also times FIN-WAIT-2), then TIME-WAIT. The
    /// delayed-ACK timer is not reported, as on Linux.
    fn pending_timer(&self, now: Instant) -> Option<TcpTimer> {
        let left = |at: Instant| at.saturating_duration_since(now);
        if let Some(at) = [self.rto_at, self.tlp_at, self.rack_at]
            .into_iter()
            .flatten()
            .min()
        {
            return Some(TcpTimer {
                kind: TcpTimerKind::On,
                expires: left(at),
                retrans: self.retries,
            });
        }
        if let Some(at) = self.persist_at {
            return Some(TcpTimer {
                kind: TcpTimerKind::Persist,
                expires: left(at),
                retrans: self.persist_backoff,
            });
        }
        if let Some(at) = self.keepalive_at.or(self.finwait2_at) {
            return Some(TcpTimer {
                kind: TcpTimerKind::Keepalive,
                expires: left(at),
                retrans: self.keepalive_probes,
            });
        }
        self.timewait_at.map(|at| TcpTimer {
            kind: TcpTimerKind::TimeWait,
            expires: left(at),
            retrans: 0,
        })
    }

    /// Linux `tcp_info` of this connection at `now`.
    pub fn info(&self, now: Instant) -> TcpInfo {
        let ms = |t: Instant| now.saturating_duration_since(t).as_millis() as u64;
        let m = &self.marks;
        let busy = m.busy_total + m.busy_since.map_or(Duration::ZERO, |t| now - t);
        // Linux sk_shutdown: RCV_SHUTDOWN by shutdown(SHUT_RD) or the peer's
        // FIN, SEND_SHUTDOWN by shutdown(SHUT_WR) or close.
        let shutdown =
            u8::from(self.rx_shutdown || self.fin_received) | (2 * u8::from(self.fin_queued));
        // The largest window we would offer now (Linux rcv_ssthresh is the
        // clamp its window grows up to; under memory pressure 4 segments).
        let mut clamp = self.recv_cap.min(65_535usize << self.rcv_shift);
        if self.mem_pressure {
            clamp = clamp.min(4 * self.mss.max(536));
        }
        TcpInfo {
            state: Some(self.state),
            rtt_us: self.rtt.srtt().map_or(0, |d| d.as_micros() as u64),
            rttvar_us: self.rtt.rttvar().as_micros() as u64,
            rto_us: self.rtt.rto().as_micros() as u64,
            snd_cwnd: u32::try_from(self.cc.cwnd() / self.mss.max(1)).unwrap_or(u32::MAX),
            snd_cwnd_bytes: self.cc.cwnd(),
            ssthresh: (self.cc.ssthresh() != usize::MAX).then_some(self.cc.ssthresh()),
            snd_mss: self.mss,
            rcv_mss: self.peer_mss,
            advmss: usize::from(self.our_mss).saturating_sub(if self.ts_ok { 12 } else { 0 }),
            pmtu: self.pmtu + if self.remote.is_ipv6() { 20 } else { 0 },
            ato_us: m.ato.as_micros() as u64,
            bytes_sent: self.bytes_sent,
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            segs_out: self.segs_out,
            segs_in: self.segs_in,
            data_segs_out: m.data_segs_out,
            data_segs_in: m.data_segs_in,
            total_retrans: self.total_retrans,
            retransmits: self.retries,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.window_bytes(),
            window_scaling: self.ws_ok,
            snd_wscale: self.snd_shift,
            rcv_wscale: self.rcv_shift,
            timestamps: self.ts_ok,
            sack: self.sack_ok,
            congestion: self.cc_algorithm.name(),
            rto_events: self.rto_events,
            recoveries: self.rec.episodes,
            dsack_dups: self.dsack_dups,
            reord_seen: self.rack.reord_events,
            pacing_rate: self.pacing_rate,
            delivery_rate: m.delivery_rate,
            app_limited: m.app_limited,
            delivered: m.delivered,
            busy_us: busy.as_micros() as u64,
            last_data_sent_ms: ms(m.last_data_sent),
            last_data_recv_ms: ms(m.last_data_recv),
            last_ack_recv_ms: ms(m.last_ack_recv),
            min_rtt_us: self.rtt.min_rtt().map_or(0, |d| d.as_micros() as u64),
            // Before the first measured round, the initial value autotuning
            // starts from (Linux's tcp_init_buffer_space: 10 segments).
            rcv_space: match self.rcv_space {
                0 => (10 * self.mss).min(self.recv_cap),
                n => n,
            },
            rcv_ssthresh: clamp,
            rcv_buf: self.recv_cap,
            snd_buf: self.send_cap,
            timer: self.pending_timer(now),
            shutdown,
            orphan: self.orphan,
        }
    }
}
