//! Counters for every packet handled and every packet dropped, with the reason, in the
//! spirit of `netstat -s` / `nstat`. Field names follow the SNMP MIB where one exists.

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Stack-wide counters. All start at zero and only grow.
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct Stats {
            $(#[doc = $doc] pub $name: u64,)*
        }

        impl Stats {
            /// Every counter as (name, description, value), in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> {
                [$((stringify!($name), $doc, self.$name)),*].into_iter()
            }
            /// Only the counters that are not zero.
            pub fn non_zero(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> {
                self.iter().filter(|c| c.2 != 0)
            }
        }
    };
}

counters! {
    link_in_frames: "frames received from devices",
    link_in_truncated: "frames dropped: shorter than the link header",
    link_in_not_for_us: "frames dropped: destination MAC is not ours",
    link_in_multicast_filtered: "frames dropped: IPv6 multicast for a group this interface did not join",
    link_in_unknown_ethertype: "frames dropped: EtherType not handled",
    link_out_frames: "frames handed to devices",
    arp_in: "ARP packets received",
    arp_in_malformed: "ARP packets dropped: malformed or unsupported",
    arp_in_not_for_us: "ARP packets ignored: target address not ours",
    arp_requests_sent: "ARP requests sent",
    arp_replies_sent: "ARP replies sent",
    arp_probes_sent: "ARP probes sent (RFC 5227: sender 0.0.0.0, address conflict detection)",
    arp_conflicts: "ARP probes answered: another host uses the probed address",
    arp_resolve_failed: "ARP resolutions given up after all retries",
    arp_queue_dropped: "packets dropped: too many waiting for one ARP resolution",
    arp_cache_full: "packets dropped: neighbour cache full",
    neigh_ucast_probes: "neighbour probes sent by unicast to check a STALE entry (NUD PROBE)",
    neigh_failed: "neighbour entries FAILED: solicitations or unicast probes unanswered",
    neigh_lladdr_changed: "neighbour link-layer addresses replaced (advertisement, gratuitous ARP)",
    neigh_reclaimed: "neighbour entries (STALE or FAILED) reclaimed to make room in a full cache",
    ip_in_receives: "IPv4 packets received",
    ip_in_truncated: "IPv4 packets dropped: truncated",
    ip_in_bad_length: "IPv4 packets dropped: inconsistent length fields",
    ip_in_bad_version: "IPv4 packets dropped: version not 4",
    ip_in_bad_checksum: "IPv4 packets dropped: bad header checksum",
    ip_in_malformed: "IPv4 packets dropped: malformed header",
    ip_in_addr_errors: "IPv4 packets dropped: not addressed to this host",
    ip_in_unknown_protos: "IPv4 packets dropped: protocol not handled and no raw socket",
    ip_in_delivers: "IPv4 packets delivered to a transport or raw socket",
    ip_out_requests: "IPv4 packets sent by local sockets and the stack",
    ip_out_no_routes: "IPv4 packets dropped: no route to the destination",
    ip_out_discards: "IPv4 packets dropped on send: too big with DF set",
    ip_frag_creates: "IPv4 fragments created",
    ip_frag_oks: "IPv4 datagrams fragmented",
    ip_reasm_reqds: "IPv4 fragments received",
    ip_reasm_oks: "IPv4 datagrams reassembled",
    ip_reasm_timeout: "IPv4 datagrams dropped: reassembly timed out",
    ip_reasm_overlap: "IPv4 datagrams dropped: overlapping fragments",
    ip_reasm_too_big: "IPv4 datagrams dropped: reassembled size over 65535",
    ip_reasm_mem_evict: "IPv4 datagrams dropped: reassembly memory cap reached",
    icmp_in_msgs: "ICMP messages received",
    icmp_in_errors: "ICMP messages dropped: truncated or bad checksum",
    icmp_in_unsupported: "ICMP messages of a type the stack ignores",
    icmp_in_echos: "ICMP echo requests received",
    icmp_in_echo_reps: "ICMP echo replies received",
    icmp_in_dest_unreachs: "ICMP destination unreachable received",
    icmp_in_time_excds: "ICMP time exceeded received",
    icmp_out_msgs: "ICMP messages sent",
    icmp_out_echo_reps: "ICMP echo replies sent",
    icmp_out_dest_unreachs: "ICMP destination unreachable sent",
    icmp_out_time_excds: "ICMP time exceeded sent",
    icmp_out_rate_limited: "ICMP errors not sent: rate limit",
    icmp_echo_ignored: "ICMP echo requests not answered (echo reply off or broadcast)",
    icmp_in_frag_needed: "ICMP fragmentation needed received (RFC 1191)",
    ip6_in_receives: "IPv6 packets received",
    ip6_in_truncated: "IPv6 packets dropped: truncated (Ip6InTruncatedPkts)",
    ip6_in_hdr_errors: "IPv6 packets dropped: bad header or extension headers (Ip6InHdrErrors)",
    ip6_in_addr_errors: "IPv6 packets dropped: not addressed to this host, or a martian source (Ip6InAddrErrors)",
    ip6_in_unknown_protos: "IPv6 packets dropped: next header not handled (Ip6InUnknownProtos)",
    ip6_in_delivers: "IPv6 packets delivered to a transport (Ip6InDelivers)",
    ip6_atomic_frags: "IPv6 atomic fragments processed as whole packets (RFC 6946)",
    ip6_out_requests: "IPv6 packets sent by local sockets and the stack",
    ip6_out_no_routes: "IPv6 packets dropped: no route or no source address (Ip6OutNoRoutes)",
    ip6_frag_oks: "IPv6 packets fragmented",
    ip6_frag_creates: "IPv6 fragments created",
    ip6_frag_fails: "IPv6 packets dropped: could not be fragmented",
    ip6_reasm_reqds: "IPv6 fragments received",
    ip6_reasm_oks: "IPv6 packets reassembled",
    ip6_reasm_fails: "IPv6 datagrams dropped: inconsistent or oversized fragments",
    ip6_reasm_timeout: "IPv6 datagrams dropped: reassembly timed out",
    ip6_reasm_overlap: "IPv6 datagrams dropped: overlapping fragments (RFC 5722)",
    ip6_reasm_mem_evict: "IPv6 datagrams dropped: reassembly memory cap reached",
    icmp6_in_msgs: "ICMPv6 messages received",
    icmp6_in_errors: "ICMPv6 messages dropped: truncated or malformed",
    icmp6_in_csum_errors: "ICMPv6 messages dropped: bad checksum",
    icmp6_in_echos: "ICMPv6 echo requests received",
    icmp6_in_echo_reps: "ICMPv6 echo replies received",
    icmp6_in_dest_unreachs: "ICMPv6 destination unreachable received",
    icmp6_in_pkt_too_bigs: "ICMPv6 packet too big received",
    icmp6_in_time_excds: "ICMPv6 time exceeded received",
    icmp6_in_parm_problems: "ICMPv6 parameter problem received",
    icmp6_in_unknown: "ICMPv6 messages of a type the stack does not handle (MLD among them)",
    icmp6_echo_ignored: "ICMPv6 echo requests not answered (echo reply off)",
    icmp6_out_msgs: "ICMPv6 messages sent",
    icmp6_out_echo_reps: "ICMPv6 echo replies sent",
    icmp6_out_dest_unreachs: "ICMPv6 destination unreachable sent",
    icmp6_out_time_excds: "ICMPv6 time exceeded sent",
    icmp6_out_parm_problems: "ICMPv6 parameter problem sent",
    icmp6_out_rate_limited: "ICMPv6 errors not sent: rate limit",
    pmtu_lowered: "path MTUs lowered by fragmentation needed or Packet Too Big (RFC 1191, RFC 8201)",
    pmtu_clamped: "path MTU reports below the minimum (552 IPv4, 1280 IPv6) raised to it",
    pmtu_ignored: "path MTU reports ignored: not below the current path MTU",
    pmtu_evicted: "path MTU entries evicted to make room in a full cache",
    pmtu_expired: "path MTU entries expired (Config::pmtu_expires)",
    ndp_in_invalid: "NDP messages dropped: hop limit not 255, bad source or options (RFC 4861 §6.1, §7.1)",
    ndp_in_solicits: "neighbor solicitations received",
    ndp_in_adverts: "neighbor advertisements received",
    ndp_in_router_adverts: "router advertisements received",
    ndp_in_not_for_us: "neighbor solicitations ignored: target not ours",
    ndp_in_unsolicited_ignored: "neighbor advertisements ignored: for an address we did not ask about",
    ndp_in_ignored: "NDP messages a host ignores (router solicitations, redirects)",
    ndp_out_solicits: "neighbor solicitations sent (resolution and NUD probes)",
    ndp_out_adverts: "neighbor advertisements sent",
    ndp_out_dad_solicits: "neighbor solicitations sent for Duplicate Address Detection",
    ndp_out_router_solicits: "router solicitations sent",
    ndp_dad_ok: "IPv6 addresses that passed Duplicate Address Detection",
    ndp_dad_failed: "IPv6 addresses found duplicate by DAD (never used)",
    ndp_slaac_addrs: "IPv6 addresses formed by SLAAC from router advertisements",
    ndp_addrs_expired: "IPv6 addresses removed at the end of their valid lifetime",
    udp_in_datagrams: "UDP datagrams delivered to sockets",
    udp_in_errors: "UDP datagrams dropped: malformed",
    udp_in_csum_errors: "UDP datagrams dropped: bad checksum",
    udp_no_ports: "UDP datagrams dropped: no socket on the port",
    udp_rcvbuf_errors: "UDP datagrams dropped: socket receive queue full",
    udp_mem_errors: "UDP datagrams dropped: stack-wide datagram memory (udp_mem high) exhausted (Linux MemErrors)",
    udp_out_datagrams: "UDP datagrams sent",
    raw_in_delivers: "packets copied to raw sockets",
    raw_rcvbuf_errors: "packets dropped: raw socket receive queue full",
    raw_mem_errors: "packets dropped: stack-wide datagram memory (udp_mem high) exhausted",
    raw_out_packets: "packets sent from raw sockets",
    tcp_in_segs: "TCP segments received",
    tcp_in_errs: "TCP segments dropped: malformed (offsets, options, ports) or SYN+FIN to a listener",
    tcp_in_csum_errors: "TCP segments dropped: bad checksum",
    tcp_no_socket: "TCP segments for no socket (answered with a reset unless RST)",
    tcp_forward_requests: "TCP SYNs of forwarding interfaces offered to the forwarder",
    tcp_forward_drops: "TCP SYNs dropped: the forwarder's requests in flight were at their limit",
    tcp_forward_refused: "TCP forwarded requests refused by the application (RST or ICMP unreachable)",
    udp_forward_flows: "UDP flows the forwarder made for datagrams of forwarding interfaces",
    udp_forward_drops: "UDP datagrams dropped: the forwarder's flows were at their limit",
    tcp_out_segs: "TCP segments sent",
    tcp_retrans_segs: "TCP segments retransmitted",
    tcp_out_rsts: "TCP resets sent",
    tcp_active_opens: "TCP connections opened by connect",
    tcp_passive_opens: "TCP SYNs accepted into a SYN queue, and connections made from SYN cookies",
    tcp_attempt_fails: "TCP connects refused",
    tcp_estab_resets: "TCP connections reset by the peer",
    tcp_timeouts: "TCP connections dropped: retransmission or keepalive timeout",
    tcp_abort_on_data: "TCP connections reset: data arrived after the application closed them",
    tcp_rto_events: "TCP retransmission timeouts",
    tcp_listen_overflows: "TCP handshakes dropped: accept queue full",
    tcp_listen_drops: "TCP SYNs dropped: SYN or accept queue full",
    tcp_synack_timeouts: "TCP half-open connections given up (no final ACK)",
    tcp_syncookies_sent: "TCP SYN cookies sent (Linux SyncookiesSent)",
    tcp_syncookies_recv: "TCP connections made from a valid SYN cookie (Linux SyncookiesRecv)",
    tcp_syncookies_failed: "TCP ACKs to a listener with an invalid or stale SYN cookie (Linux SyncookiesFailed)",
    tcp_req_q_full_do_cookies: "TCP SYNs to a full SYN queue answered with a cookie (Linux TCPReqQFullDoCookies)",
    tcp_req_q_full_drop: "TCP SYNs to a full SYN queue dropped, cookies off (Linux TCPReqQFullDrop)",
    tcp_challenge_acks: "TCP challenge ACKs sent (RFC 5961)",
    tcp_challenge_ack_limited: "TCP challenge ACKs suppressed by the rate limit",
    tcp_paws_drops: "TCP segments dropped: old timestamp (PAWS)",
    tcp_out_of_window: "TCP segments outside the receive window",
    tcp_bad_acks: "TCP ACKs for data never sent or too old",
    tcp_sack_invalid: "TCP SACK blocks ignored as impossible: reversed, beyond what was sent, or across the cumulative ACK",
    tcp_ofo_drops: "TCP out-of-order bytes dropped: the connection's reassembly budget or the stack's memory (tcp_mem high) is full",
    tcp_rcvq_drops: "TCP in-order segments dropped: stack-wide TCP memory (tcp_mem) exhausted (Linux TCPRcvQDrop)",
    tcp_prune_called: "TCP receive queues pruned for memory (Linux PruneCalled)",
    tcp_ofo_pruned: "TCP out-of-order queues pruned for memory, from the highest sequence down (Linux OfoPruned)",
    tcp_memory_pressures: "TCP memory pressure entered: tcp_mem pressure mark crossed (Linux TCPMemoryPressures)",
    tcp_mem_send_blocked: "TCP sends refused (WouldBlock): stack-wide TCP memory exhausted",
    tcp_tw_recycled: "TCP TIME-WAIT connections reopened by a new SYN (RFC 6191)",
    tcp_icmp_errors: "ICMP errors delivered to TCP connections (abort or soft error)",
    tcp_icmp_out_of_window: "ICMP errors for TCP ignored: quoted sequence not in flight (Linux OutOfWindowIcmps)",
    tcp_pmtu_out_of_window: "fragmentation needed / Packet Too Big for TCP ignored: quoted sequence not in flight (RFC 5927 §5.2; also in tcp_icmp_out_of_window)",
    tcp_pmtu_no_socket: "fragmentation needed / Packet Too Big quoting a TCP segment of no connection, ignored",
    tcp_mss_reduced: "TCP connections whose send MSS a lower path MTU reduced",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iter_names_and_non_zero() {
        let mut s = Stats::default();
        assert_eq!(s.non_zero().count(), 0);
        s.udp_no_ports = 3;
        let nz: Vec<_> = s.non_zero().collect();
        assert_eq!(nz.len(), 1);
        assert_eq!(nz[0].0, "udp_no_ports");
        assert_eq!(nz[0].2, 3);
        assert!(s.iter().count() > 40);
    }
}
