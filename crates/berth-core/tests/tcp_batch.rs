//! `Stack::receive_batch`: segments read together are answered together.

mod common;

use berth_core::wire::TcpFlags;
use berth_core::IfaceId;
use common::*;

/// Ten full data segments, captured on their way from A to B.
fn ten_segments(seed: u64) -> (Net, berth_core::SocketHandle, Vec<Vec<u8>>) {
    let (mut net, _l, c, s) = tcp_pair(seed);
    net.set_tap(|f: &Frame| {
        if f.node == 0 {
            Action::Capture
        } else {
            Action::Deliver
        }
    });
    let now = net.now;
    let mss = net.nodes[0].tcp_info(c).expect("info").snd_mss;
    let data = pattern(10 * mss, 7);
    assert_eq!(
        net.nodes[0].tcp_send(now, c, &data).expect("send"),
        data.len()
    );
    net.pump();
    let frames: Vec<Vec<u8>> = net.captured.drain(..).map(|f| f.bytes).collect();
    assert_eq!(frames.len(), 10, "the initial window: ten segments");
    net.clear_tap();
    (net, s, frames)
}

fn acks_from_b(net: &Net, from: usize) -> usize {
    net.log[from..]
        .iter()
        .filter(|f| f.node == 1)
        .filter_map(|f| tcp_of(&f.bytes).map(|(_, t)| t))
        .filter(|t| t.flags.contains(TcpFlags::ACK) && t.payload.is_empty())
        .count()
}

#[test]
fn a_batch_of_segments_gets_one_ack() {
    let (mut net, s, frames) = ten_segments(71);
    let from = net.log.len();
    let now = net.now;
    net.nodes[1].receive_batch(now, IfaceId(0), frames.iter().map(|f| f.as_slice()));
    net.pump();
    assert_eq!(acks_from_b(&net, from), 1, "one ACK for the batch");
    let mut buf = vec![0u8; 65536];
    let n = net.nodes[1].tcp_recv(now, s, &mut buf).expect("data");
    assert_eq!(
        n,
        frames.iter().map(|f| f.len() - 52).sum::<usize>(),
        "all data delivered"
    );
}

#[test]
fn segments_one_by_one_are_acked_as_they_come() {
    let (mut net, _s, frames) = ten_segments(72);
    let from = net.log.len();
    for f in &frames {
        net.inject(1, IfaceId(0), f);
    }
    net.pump();
    // Quick ACKs at the start of a connection: one per segment.
    assert_eq!(acks_from_b(&net, from), 10);
}
