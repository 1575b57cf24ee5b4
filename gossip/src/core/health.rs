//! Local health: how much this node should distrust its own failure verdicts.
//!
//! foca implements SWIM without Lifeguard (research/gossip-dns.md §1.4, §2.3). A node that is
//! itself slow, overloaded or cut off sees its probes time out and suspects healthy peers; that
//! is where most false positives come from. Lifeguard's first mechanism, the Local Health
//! Multiplier (LHM), is the cheap fix: a saturating score, 0..=max (8 in memberlist), that
//!
//! * rises by one when one of our probes gets no ack at all (direct or indirect), when we have to
//!   refute a suspicion about ourselves (the cluster found us slow), and when our own timers fire
//!   late (we are starved of CPU);
//! * falls by one when a direct probe is acked in time.
//!
//! Indirect-only success leaves it unchanged (Lifeguard counts a missing nack there; foca has no
//! nacks). The membership layer multiplies the probe period, the probe timeout and the suspicion
//! timeout by `1 + score` when it schedules foca's timers, so an unhealthy node probes less, waits
//! longer for acks and takes longer to turn a suspicion into a "down" verdict. foca's `set_config`
//! cannot change `probe_period` or `probe_rtt`, so scaling is done on the timer queue instead,
//! which also covers timers already in flight when the score changes.
//!
//! The score is learnt by watching the SWIM packets go past (foca reports probe results only
//! behind its `unstable-notifications` feature): our `Ping(n)` starts a probe, an `Ack(n)` from
//! the target or a `ForwardedAck(n)` ends it, and the next `Ping` settles the previous probe.

use std::net::SocketAddr;
use std::time::Duration;

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The target acked directly.
    Direct,
    /// Only an indirect ack came back.
    Indirect,
    /// No ack: foca now suspects `target`.
    Failed(SocketAddr),
}

/// The local health score and the probe being watched.
#[derive(Debug)]
pub(crate) struct LocalHealth {
    score: u8,
    max: u8,
    probe: Option<Probe>,
    incarnation: u16,
}

#[derive(Debug)]
struct Probe {
    target: SocketAddr,
    number: u8,
    direct: bool,
    indirect: bool,
}

impl LocalHealth {
    pub(crate) fn new(max: u8) -> Self {
        Self {
            score: 0,
            max,
            probe: None,
            incarnation: 0,
        }
    }

    /// The current score, 0..=max.
    pub(crate) fn score(&self) -> u8 {
        self.score
    }

    /// Scale a timeout by `1 + score`.
    pub(crate) fn scale(&self, timeout: Duration) -> Duration {
        timeout * (1 + u32::from(self.score))
    }

    /// We sent `Ping(number)` to `target`: settle the previous probe and watch this one.
    pub(crate) fn ping_sent(&mut self, target: SocketAddr, number: u8) -> Option<Outcome> {
        let previous = self.probe.replace(Probe {
            target,
            number,
            direct: false,
            indirect: false,
        });
        let outcome = previous.map(|p| match (p.direct, p.indirect) {
            (true, _) => Outcome::Direct,
            (false, true) => Outcome::Indirect,
            (false, false) => Outcome::Failed(p.target),
        });
        match outcome {
            Some(Outcome::Direct) => self.better(),
            Some(Outcome::Failed(_)) => self.worse(),
            Some(Outcome::Indirect) | None => {}
        }
        outcome
    }

    /// `from` acked `Ping(number)`.
    pub(crate) fn ack(&mut self, from: SocketAddr, number: u8) {
        if let Some(p) = &mut self.probe
            && p.target == from
            && p.number == number
        {
            p.direct = true;
        }
    }

    /// A helper forwarded the target's ack of `Ping(number)`.
    pub(crate) fn forwarded_ack(&mut self, number: u8) {
        if let Some(p) = &mut self.probe
            && p.number == number
        {
            p.indirect = true;
        }
    }

    /// Our packets carry `incarnation`: a rise means we refuted a suspicion about ourselves.
    pub(crate) fn incarnation(&mut self, incarnation: u16) {
        if incarnation > self.incarnation {
            self.worse();
        }
        self.incarnation = incarnation;
    }

    /// Our identity changed (rejoin): foca restarts incarnations at zero.
    pub(crate) fn identity_changed(&mut self) {
        self.incarnation = 0;
        self.probe = None;
    }

    /// The last incarnation seen on our packets.
    pub(crate) fn current_incarnation(&self) -> u16 {
        self.incarnation
    }

    /// A timer fired `lateness` after its deadline.
    pub(crate) fn timer_late(&mut self, lateness: Duration, tolerance: Duration) {
        if lateness > tolerance {
            self.worse();
        }
    }

    fn worse(&mut self) {
        self.score = (self.score + 1).min(self.max);
    }

    fn better(&mut self) {
        self.score = self.score.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        1,
    ));

    #[test]
    fn failures_raise_and_acks_lower() {
        let mut h = LocalHealth::new(2);
        assert_eq!(h.ping_sent(A, 1), None);
        assert_eq!(h.ping_sent(A, 2), Some(Outcome::Failed(A)));
        assert_eq!(h.ping_sent(A, 3), Some(Outcome::Failed(A)));
        assert_eq!(h.ping_sent(A, 4), Some(Outcome::Failed(A)));
        assert_eq!(h.score(), 2, "saturates at max");
        assert_eq!(h.scale(Duration::from_secs(1)), Duration::from_secs(3));
        h.ack(A, 4);
        assert_eq!(h.ping_sent(A, 5), Some(Outcome::Direct));
        assert_eq!(h.score(), 1);
        h.forwarded_ack(5);
        assert_eq!(h.ping_sent(A, 6), Some(Outcome::Indirect));
        assert_eq!(h.score(), 1);
        h.incarnation(1);
        assert_eq!(h.score(), 2);
    }
}
