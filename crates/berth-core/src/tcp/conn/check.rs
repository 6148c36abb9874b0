//! Invariants of one connection, checked by the whole-stack fuzzers after every
//! step (`Stack::check_invariants`). Each is a relation the code maintains; a
//! failure is a bug in the connection, not in its peer's input.

use super::Tcb;
use crate::tcp::TcpState;

impl Tcb {
    pub(crate) fn check(&self) -> Result<(), String> {
        let (una, nxt, max) = (self.snd_una, self.snd_nxt, self.snd_max);
        if !(una <= nxt && nxt <= max) {
            return Err(format!(
                "snd_una {una} <= snd_nxt {nxt} <= snd_max {max} broken"
            ));
        }
        if self.iss > una {
            return Err(format!("snd_una {una} below iss {}", self.iss));
        }
        // The send ring starts at snd_una and holds every data byte in flight:
        // what snd_una..snd_max covers, less the SYN and FIN it may include.
        let syn = usize::from(una == self.iss && max > una);
        let fin = usize::from(self.fin_seq_sent.is_some_and(|f| f >= una && f < max));
        let data_in_flight = ((max - una) as usize).saturating_sub(syn + fin);
        if data_in_flight > self.send.len() {
            return Err(format!(
                "{data_in_flight} data bytes in flight (snd_una {una}, snd_max {max}, syn {syn}, fin {fin}) but {} in the send buffer",
                self.send.len()
            ));
        }
        if let Some(f) = self.fin_seq_sent {
            // Nothing follows the FIN: it is the last sequence number used.
            if f + 1 != max && f != max {
                return Err(format!("FIN at {f} but snd_max {max}"));
            }
        }
        self.scoreboard.check(una, max)?;
        self.sent.check(una, max)?;
        self.ooo.check(self.rcv_off)?;
        if self.recv.len() + self.ooo.bytes() > self.recv_cap {
            return Err(format!(
                "receive queue {} + out-of-order {} exceed the buffer {}",
                self.recv.len(),
                self.ooo.bytes(),
                self.recv_cap
            ));
        }
        if self.state == TcpState::TimeWait && self.timewait_at.is_none() {
            return Err("TIME-WAIT without its timer".into());
        }
        if self.state.is_synchronized() && self.fin_received && self.ooo_fin.is_some() {
            return Err("FIN both received and pending out of order".into());
        }
        Ok(())
    }
}

impl Tcb {
    /// Every timer field, for invariant-failure messages.
    pub(crate) fn deadlines(&self) -> String {
        format!(
            "rto {:?} pace {:?}/{} rack {:?} tlp {:?} delack {:?} persist {:?} keepalive {:?} timewait {:?} finwait2 {:?}",
            self.rto_at,
            self.pace_next,
            self.pace_blocked,
            self.rack_at,
            self.tlp_at,
            self.delack_at,
            self.persist_at,
            self.keepalive_at,
            self.timewait_at,
            self.finwait2_at
        )
    }
}
