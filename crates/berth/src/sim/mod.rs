//! Network simulator: hosts joined by in-memory links with seeded
//! impairments, on a virtual clock.
//!
//! The clock never waits: [`Simulator::step`] jumps straight to the next
//! deadline (a frame arriving or a node's timer), so simulated minutes run in
//! milliseconds. Hosts are sans-IO stacks behind the [`Node`] trait.
//!
//! # Topology
//!
//! - [`Simulator::connect`] joins two node ports with a full-duplex
//!   point-to-point link.
//! - [`Simulator::add_switch`] and [`Simulator::attach`] build a learning
//!   Ethernet switch for more than two hosts: it learns source MAC → port from
//!   bytes 6..12, forwards by destination MAC (bytes 0..6) and floods
//!   broadcast, multicast and unknown destinations to every other port. The
//!   switch itself forwards instantly; impairments apply on each attach link,
//!   so a frame from host to host crosses two links (twice the delay).
//!
//! # Impairments ([`LinkConfig`]), per link direction, in this order
//!
//! `loss`, `reorder` and `duplicate` are probabilities from 0.0 to 1.0 (0.01
//! is 1 %; the `berth` command's flags take percentages).
//!
//! 1. **MTU**: a frame longer than `mtu` (+14 bytes on [`Medium::Ethernet`])
//!    is dropped and counted in `mtu_drops`.
//! 2. **Rate**: with `rate_bps`, frames are serialized one after another at
//!    that rate behind a FIFO of `queue_limit_bytes`; a frame that does not
//!    fit in the queue is tail-dropped (`queue_drops`). A frame leaves when
//!    its last bit is sent.
//! 3. **Loss**: each frame is dropped with probability `loss` (Bernoulli).
//! 4. **Delay and jitter**: the frame arrives `delay` plus a per-frame extra
//!    uniform in `[0, jitter]` later. Jitter alone can let a frame overtake
//!    an earlier one; that is reordering too.
//! 5. **Reorder**: with probability `reorder` the frame is held back by
//!    another `max(delay, 1 ms)`, so later frames overtake it (`reordered`).
//! 6. **Duplicate**: with probability `duplicate` one extra copy arrives
//!    right after the original (`duplicated`).
//!
//! A link can also be taken down and brought back ([`Simulator::set_link_up`]),
//! both directions at once, like a cable pulled: while it is down every frame
//! offered to it is dropped, and frames still on the wire when it went down are
//! lost (both counted in `down_drops`). [`Simulator::replace_node`] swaps a
//! host for another (a reboot: a fresh stack with the same addresses).
//!
//! # Determinism
//!
//! Each link direction draws from its own ChaCha8 stream derived from the
//! simulator seed and the link's index (the order links were made), and ties
//! between events at the same instant are broken by a sequence number in the
//! order they were scheduled. So the same seed, the same topology and the same
//! node behaviour give the same run, and byte-identical pcap captures
//! ([`Simulator::capture`]); a different seed gives different impairments.
//!
//! # Driving
//!
//! Each [`Simulator::step`]: flush pending transmits, advance the clock to the
//! earliest event, deliver every frame due then ([`Node::receive`]), fire
//! every due timer ([`Node::handle_timeout`]), and flush the nodes'
//! transmits onto their links. After the application uses a node's sockets
//! directly, call [`Simulator::flush`] (or just keep stepping) so what it
//! queued leaves at the current time. A node whose timer stays due after
//! `handle_timeout`, or two nodes echoing each other over zero-delay links,
//! keep the clock at one instant forever: give links some delay.
//!
//! # Example
//!
//! ```
//! use berth::sim::{Duration, Instant, LinkConfig, Node, Simulator};
//!
//! /// Sends one frame at start, counts what it receives.
//! #[derive(Default)]
//! struct Hello { sent: bool, got: usize }
//!
//! impl Node for Hello {
//!     fn receive(&mut self, _now: Instant, _port: usize, _frame: &[u8]) { self.got += 1; }
//!     fn poll_transmit(&mut self, _now: Instant) -> Option<(usize, Vec<u8>)> {
//!         if self.sent { return None; }
//!         self.sent = true;
//!         Some((0, vec![0xff; 60]))
//!     }
//!     fn poll_timeout(&mut self) -> Option<Instant> { None }
//!     fn handle_timeout(&mut self, _now: Instant) {}
//! }
//!
//! let mut sim = Simulator::new(42);
//! let a = sim.add_node(Hello::default());
//! let b = sim.add_node(Hello::default());
//! let cfg = LinkConfig { delay: Duration::from_millis(10), ..LinkConfig::default() };
//! sim.connect((a, 0), (b, 0), cfg);
//! sim.run_until(Instant::from_millis(60_000));
//! assert_eq!(sim.node(b).got, 1);
//! assert_eq!(sim.now(), Instant::from_millis(60_000));
//! ```

mod capture;
mod host;
mod link;
pub mod soak;
mod switch;
pub mod workload;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub use berth_core::time::{Duration, Instant};

use capture::Capture;
pub use host::TwoHosts;
use link::DirState;
pub use link::{LinkConfig, LinkDir, LinkStats, Medium};
pub use switch::SwitchStats;
use switch::{Forward, Switch};

/// A host the simulator drives: a sans-IO stack (berth_core::Stack implements it).
pub trait Node {
    /// A frame arrives on the node's interface `port` (0-based).
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]);
    /// Next frame the node wants to send, with the port it leaves on.
    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)>;
    /// Earliest time the node needs handle_timeout.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// Called at (or, if it was overdue, after) the time poll_timeout named.
    fn handle_timeout(&mut self, now: Instant);
}

/// Lets one simulator mix node types as `Simulator<Box<dyn Node>>`.
impl<T: Node + ?Sized> Node for Box<T> {
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]) {
        (**self).receive(now, port, frame)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        (**self).poll_transmit(now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now)
    }
}

/// A node of this simulator, in the order it was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(usize);

/// A link of this simulator (from `connect` or `attach`), in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(usize);

/// A switch of this simulator, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwitchId(usize);

impl NodeId {
    /// Position in creation order, from 0.
    pub fn index(self) -> usize {
        self.0
    }
}

impl LinkId {
    /// Position in creation order, from 0; also selects the link's RNG streams.
    pub fn index(self) -> usize {
        self.0
    }
}

impl SwitchId {
    /// Position in creation order, from 0.
    pub fn index(self) -> usize {
        self.0
    }
}

/// One end of a link.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Node { node: usize, port: usize },
    Switch { switch: usize, port: usize },
}

/// A full-duplex link: `dirs[s]` carries frames sent by `ends[s]`.
struct Link {
    ends: [Endpoint; 2],
    dirs: [DirState; 2],
    capture: Option<Capture>,
    up: bool,
    /// Times the link went down: a frame sent in an earlier epoch was on the
    /// wire when the carrier dropped, and is lost.
    epoch: u64,
}

struct NodeSlot<N> {
    node: N,
    /// For each port: the link and which side of it this node is.
    ports: Vec<Option<(usize, usize)>>,
}

/// A frame in flight, due at `at`.
struct Event {
    at: Instant,
    seq: u64,
    link: usize,
    /// Side that sent it; it arrives at the other side.
    from: usize,
    /// The link's epoch when it was sent.
    epoch: u64,
    frame: Vec<u8>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    /// Reversed so the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Hosts, links and switches on a virtual clock. See the [module docs](self).
pub struct Simulator<N: Node> {
    seed: u64,
    now: Instant,
    nodes: Vec<NodeSlot<N>>,
    links: Vec<Link>,
    switches: Vec<Switch>,
    events: BinaryHeap<Event>,
    next_seq: u64,
    unconnected_drops: u64,
    /// First capture write error; that capture is stopped and the error
    /// reported by `finish_captures`, since `step` has no way to return it.
    capture_error: Option<io::Error>,
}

impl<N: Node> Simulator<N> {
    /// An empty network at time zero whose impairments derive from `seed`.
    pub fn new(seed: u64) -> Simulator<N> {
        Simulator {
            seed,
            now: Instant::ZERO,
            nodes: Vec::new(),
            links: Vec::new(),
            switches: Vec::new(),
            events: BinaryHeap::new(),
            next_seq: 0,
            unconnected_drops: 0,
            capture_error: None,
        }
    }

    /// The seed given to [`Simulator::new`].
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a host; its ports are unconnected until `connect` or `attach`.
    pub fn add_node(&mut self, node: N) -> NodeId {
        self.nodes.push(NodeSlot {
            node,
            ports: Vec::new(),
        });
        NodeId(self.nodes.len() - 1)
    }

    /// The host `id`.
    ///
    /// # Panics
    /// If `id` is not from this simulator.
    pub fn node(&self, id: NodeId) -> &N {
        &self.nodes[id.0].node
    }

    /// The host `id`, to use its sockets; call [`Simulator::flush`] after.
    ///
    /// # Panics
    /// If `id` is not from this simulator.
    pub fn node_mut(&mut self, id: NodeId) -> &mut N {
        &mut self.nodes[id.0].node
    }

    /// Number of hosts.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Joins port `a.1` of node `a.0` to port `b.1` of node `b.0` with a
    /// full-duplex link; both directions use `cfg`, each with its own
    /// impairment state and random stream.
    ///
    /// # Panics
    /// If a node id is not from this simulator or a port is already connected.
    pub fn connect(&mut self, a: (NodeId, usize), b: (NodeId, usize), cfg: LinkConfig) -> LinkId {
        let link = self.links.len();
        self.claim_port(a, link, 0);
        self.claim_port(b, link, 1);
        self.push_link(
            [
                Endpoint::Node {
                    node: a.0 .0,
                    port: a.1,
                },
                Endpoint::Node {
                    node: b.0 .0,
                    port: b.1,
                },
            ],
            cfg,
        )
    }

    /// Adds a learning Ethernet switch with no ports.
    pub fn add_switch(&mut self) -> SwitchId {
        self.switches.push(Switch::new());
        SwitchId(self.switches.len() - 1)
    }

    /// Joins node port `node.1` to a new port of switch `sw` with a link
    /// configured by `cfg` (direction A→B is node→switch).
    ///
    /// # Panics
    /// If an id is not from this simulator or the node port is already connected.
    pub fn attach(&mut self, sw: SwitchId, node: (NodeId, usize), cfg: LinkConfig) -> LinkId {
        let link = self.links.len();
        self.claim_port(node, link, 0);
        let switch = &mut self.switches[sw.0];
        switch.ports.push(link);
        let port = switch.ports.len() - 1;
        self.push_link(
            [
                Endpoint::Node {
                    node: node.0 .0,
                    port: node.1,
                },
                Endpoint::Switch { switch: sw.0, port },
            ],
            cfg,
        )
    }

    fn claim_port(&mut self, (id, port): (NodeId, usize), link: usize, side: usize) {
        let ports = &mut self.nodes[id.0].ports;
        if ports.len() <= port {
            ports.resize(port + 1, None);
        }
        assert!(
            ports[port].is_none(),
            "node {} port {port} is already connected",
            id.0
        );
        ports[port] = Some((link, side));
    }

    fn push_link(&mut self, ends: [Endpoint; 2], cfg: LinkConfig) -> LinkId {
        let index = self.links.len();
        // Two streams per link: one per direction.
        let stream = 2 * index as u64;
        self.links.push(Link {
            ends,
            dirs: [
                DirState::new(cfg.clone(), self.seed, stream),
                DirState::new(cfg, self.seed, stream + 1),
            ],
            capture: None,
            up: true,
            epoch: 0,
        });
        LinkId(index)
    }

    /// Number of links.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Configuration of one direction of `link`.
    pub fn link_config(&self, link: LinkId, dir: LinkDir) -> &LinkConfig {
        &self.links[link.0].dirs[dir.index()].cfg
    }

    /// Changes one direction of `link` from now on (frames in flight keep
    /// their arrival time; the serializer's backlog is kept).
    pub fn set_link_config(&mut self, link: LinkId, dir: LinkDir, cfg: LinkConfig) {
        self.links[link.0].dirs[dir.index()].cfg = cfg;
    }

    /// Takes `link` down (`false`) or brings it back up (`true`), both
    /// directions. Going down loses every frame in flight on it; while down,
    /// frames offered to it are dropped. Counted in `LinkStats::down_drops`.
    /// Setting the state it already has changes nothing.
    pub fn set_link_up(&mut self, link: LinkId, up: bool) {
        let l = &mut self.links[link.0];
        if l.up && !up {
            l.epoch += 1;
        }
        l.up = up;
    }

    /// Whether `link` is up (links start up).
    pub fn link_is_up(&self, link: LinkId) -> bool {
        self.links[link.0].up
    }

    /// Replaces host `id` with `node` and returns the old one: a reboot when
    /// `node` is a fresh stack with the same addresses. Links stay as they are;
    /// frames in flight to the host arrive at the new node.
    ///
    /// # Panics
    /// If `id` is not from this simulator.
    pub fn replace_node(&mut self, id: NodeId, node: N) -> N {
        std::mem::replace(&mut self.nodes[id.0].node, node)
    }

    /// Counters of `link`: (A→B, B→A).
    pub fn link_stats(&self, link: LinkId) -> (LinkStats, LinkStats) {
        let dirs = &self.links[link.0].dirs;
        (dirs[0].stats, dirs[1].stats)
    }

    /// Counters of switch `sw`.
    pub fn switch_stats(&self, sw: SwitchId) -> SwitchStats {
        self.switches[sw.0].stats
    }

    /// Frames nodes sent on ports with no link (dropped).
    pub fn unconnected_drops(&self) -> u64 {
        self.unconnected_drops
    }

    /// Frames in flight on all links.
    pub fn frames_in_flight(&self) -> usize {
        self.events.len()
    }

    /// Captures every frame put onto `link` from now on, both directions, to
    /// a pcap file at `path` (an extra record for each duplicate).
    pub fn capture(&mut self, link: LinkId, path: &Path) -> io::Result<()> {
        let file = BufWriter::new(File::create(path)?);
        self.capture_to(link, file)
    }

    /// Like [`Simulator::capture`] into any writer; replaces an earlier
    /// capture of the same link (which is flushed).
    pub fn capture_to<W: Write + Send + 'static>(
        &mut self,
        link: LinkId,
        out: W,
    ) -> io::Result<()> {
        let l = &mut self.links[link.0];
        let capture = Capture::new(Box::new(out), l.dirs[0].cfg.medium)?;
        match l.capture.replace(capture) {
            Some(old) => old.finish(),
            None => Ok(()),
        }
    }

    /// Stops every capture and flushes it; returns the first error any
    /// capture met, including write errors during earlier steps.
    pub fn finish_captures(&mut self) -> io::Result<()> {
        let mut result = match self.capture_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        for link in &mut self.links {
            if let Some(capture) = link.capture.take() {
                let flushed = capture.finish();
                if result.is_ok() {
                    result = flushed;
                }
            }
        }
        result
    }

    /// When the next thing happens: the earliest frame arrival or node timer,
    /// never earlier than now; `None` if nothing is pending.
    pub fn next_event_time(&mut self) -> Option<Instant> {
        let frame = self.events.peek().map(|e| e.at);
        let timer = self
            .nodes
            .iter_mut()
            .filter_map(|slot| slot.node.poll_timeout())
            .min();
        let next = match (frame, timer) {
            (Some(f), Some(t)) => f.min(t),
            (f, t) => f.or(t)?,
        };
        Some(next.max(self.now))
    }

    /// Advances to the next event and processes everything due then: frame
    /// arrivals, then node timers, then the nodes' transmits. Returns the new
    /// time, or `None` (clock unchanged) if nothing is pending.
    pub fn step(&mut self) -> Option<Instant> {
        // What the application queued since the last step leaves now, before
        // the clock moves.
        self.flush();
        self.now = self.next_event_time()?;

        // Zero-delay hops (e.g. through a switch) schedule at `now` and are
        // delivered in this same loop.
        while self.events.peek().is_some_and(|e| e.at <= self.now) {
            if let Some(event) = self.events.pop() {
                self.deliver(event);
            }
        }

        let now = self.now;
        for slot in &mut self.nodes {
            if slot.node.poll_timeout().is_some_and(|t| t <= now) {
                slot.node.handle_timeout(now);
            }
        }

        self.flush();
        Some(self.now)
    }

    /// Steps through every event up to and including `t`, then sets the
    /// clock to `t` (if it is later than now).
    pub fn run_until(&mut self, t: Instant) {
        self.flush();
        while self.next_event_time().is_some_and(|next| next <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// [`Simulator::run_until`] `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Puts every frame the nodes want to send onto their links at the
    /// current time, node by node in creation order.
    pub fn flush(&mut self) {
        for index in 0..self.nodes.len() {
            let now = self.now;
            while let Some((port, frame)) = self.nodes[index].node.poll_transmit(now) {
                match self.nodes[index].ports.get(port).copied().flatten() {
                    Some((link, side)) => self.send(link, side, frame),
                    None => self.unconnected_drops += 1,
                }
            }
        }
    }

    /// Puts `frame` onto `link` from `side`: capture, impairments, schedule.
    fn send(&mut self, link: usize, side: usize, frame: Vec<u8>) {
        let now = self.now;
        let l = &mut self.links[link];
        if !l.up {
            // No carrier: the frame never makes it onto the wire (nor the capture).
            l.dirs[side].stats.tx_frames += 1;
            l.dirs[side].stats.tx_bytes += frame.len() as u64;
            l.dirs[side].stats.down_drops += 1;
            return;
        }
        record(&mut l.capture, &mut self.capture_error, now, &frame);
        let Some(arrival) = l.dirs[side].admit(now, frame.len()) else {
            return;
        };
        if let Some(dup_at) = arrival.duplicate_at {
            record(&mut l.capture, &mut self.capture_error, now, &frame);
            let copy = frame.clone();
            self.schedule(arrival.at, link, side, frame);
            self.schedule(dup_at, link, side, copy);
        } else {
            self.schedule(arrival.at, link, side, frame);
        }
    }

    fn schedule(&mut self, at: Instant, link: usize, from: usize, frame: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let epoch = self.links[link].epoch;
        self.events.push(Event {
            at,
            seq,
            link,
            from,
            epoch,
            frame,
        });
    }

    /// Hands an arrived frame to the node or switch at the far end.
    fn deliver(&mut self, event: Event) {
        let link = &mut self.links[event.link];
        if link.epoch != event.epoch {
            // The link went down while this frame was on it.
            link.dirs[event.from].stats.down_drops += 1;
            return;
        }
        link.dirs[event.from].stats.delivered += 1;
        match link.ends[1 - event.from] {
            Endpoint::Node { node, port } => {
                self.nodes[node].node.receive(self.now, port, &event.frame);
            }
            Endpoint::Switch { switch, port } => {
                let sw = &mut self.switches[switch];
                match sw.forward(port, &event.frame) {
                    Forward::Drop => {}
                    Forward::One(out) => {
                        let out_link = sw.ports[out];
                        self.send(out_link, 1, event.frame);
                    }
                    Forward::FloodExcept(arrival) => {
                        let outs: Vec<usize> = sw
                            .ports
                            .iter()
                            .enumerate()
                            .filter(|&(p, _)| p != arrival)
                            .map(|(_, &l)| l)
                            .collect();
                        for out_link in outs {
                            self.send(out_link, 1, event.frame.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Writes a frame to a link's capture, if any; on error stops that capture
/// and keeps the first error for `finish_captures`.
fn record(capture: &mut Option<Capture>, error: &mut Option<io::Error>, at: Instant, frame: &[u8]) {
    let Some(c) = capture else { return };
    if let Err(e) = c.write(at, frame) {
        *capture = None;
        error.get_or_insert(e);
    }
}
