#!/bin/sh
# Capture real Linux-kernel IPv6 frames between two throwaway network namespaces;
# the source of the IPv6 vectors in ../known_vectors.rs. Run as root:
#   sh crates/berth-wire/tests/data/capture_ipv6.sh OUTDIR
# Namespace w6test: veth0 02:00:00:00:00:01, 2001:db8::1/64 (link-local fe80::ff:fe00:1).
# Namespace w6test-b: veth1 02:00:00:00:00:02, 2001:db8::2/64, a TCP listener on
# [2001:db8::2]:8080. TX checksum offload is turned off on both ends (ETHTOOL_STXCSUM
# through an ioctl, as capture_vectors.py does) so TCP/UDP checksums are final.
# tshark records on veth1 (w6test-b) from before veth0 comes up, so w6test's router
# solicitation, DAD neighbor solicitation and MLD reports are seen, then: ping -6
# (echo, NS/NA), UDP to a closed port (ICMPv6 port unreachable), a TCP SYN and its
# SYN-ACK, and ping -6 -s 3000 (fragments). Only 2001:db8::/32, fe80::/10 and ff02::/16
# are used; nothing leaves the namespaces. Both namespaces are deleted on exit.
set -eu
OUT=${1:-/tmp/w6cap}
mkdir -p "$OUT"
A=w6test
B=w6test-b
cleanup() {
    [ -n "${TSPID:-}" ] && kill "$TSPID" 2>/dev/null || true
    [ -n "${SRVPID:-}" ] && kill "$SRVPID" 2>/dev/null || true
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT INT TERM
csum_off='
import ctypes, fcntl, socket, struct, sys
ev = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))
ifr = struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(ev))
sock = socket.socket()
fcntl.ioctl(sock.fileno(), 0x8946, ifr)
'
ip netns add $A
ip netns add $B
ip -n $A link set lo up
ip -n $B link set lo up
ip -n $A link add veth0 address 02:00:00:00:00:01 type veth peer name veth1 netns $B
ip -n $B link set veth1 address 02:00:00:00:00:02
ip netns exec $A python3 -c "$csum_off" veth0
ip netns exec $B python3 -c "$csum_off" veth1
ip -n $A addr add 2001:db8::1/64 dev veth0
ip -n $B addr add 2001:db8::2/64 dev veth1
ip -n $B link set veth1 up
ip netns exec $B tshark -q -i veth1 -F pcap -w "$OUT/w6.pcap" 2>"$OUT/tshark.err" &
TSPID=$!
sleep 3
ip -n $A link set veth0 up
sleep 4   # DAD (1 s) and the first router solicitations
ip netns exec $A ping -6 -c 1 -p 6265727468 2001:db8::2
ip netns exec $B python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8::2", 8080)); s.listen(1); time.sleep(6)' &
SRVPID=$!
sleep 1
ip netns exec $A python3 -c '
import socket
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("2001:db8::1", 40000)); u.sendto(b"berth", ("2001:db8::2", 9))
t = socket.socket(socket.AF_INET6); t.bind(("2001:db8::1", 40001))
t.connect(("2001:db8::2", 8080)); t.close()'
sleep 1
ip netns exec $A ping -6 -c 1 -s 3000 2001:db8::2
sleep 1
kill $TSPID; wait $TSPID 2>/dev/null || true
TSPID=
tshark -r "$OUT/w6.pcap" > "$OUT/summary.txt"
python3 - "$OUT/w6.pcap" > "$OUT/frames.txt" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
off, n = 24, 0
while off + 16 <= len(d):
    _, _, incl, _ = struct.unpack_from("<IIII", d, off)
    n += 1
    print(n, d[off + 16: off + 16 + incl].hex())
    off += 16 + incl
PY
echo "captured $(wc -l < "$OUT/frames.txt") frames into $OUT"
