"""A SYN flood from spoofed sources, for tests/netns_synflood.rs.

usage: synflood.py DST DPORT COUNT DEV WINDOW

Builds one SYN template with scapy (IP/TCP, options MSS, SAckOK, Timestamp,
NOP, WScale, as Linux sends them), then COUNT copies with distinct spoofed
sources 198.51.100.1-254 (ports 1024 up), random sequence numbers and
timestamps, patching the TCP checksum incrementally. Sends them through a
raw socket (IP_HDRINCL, bound to DEV) in a tight loop.

A TUN device drops what its queue (txqueuelen) cannot hold, silently, so
"full speed" is as fast as the reader of the TUN takes packets: no more than
WINDOW packets are ever outstanding (sent, not yet read from DEV, going by
DEV's tx_packets), so every SYN reaches the reader.

Prints "built N SECS", "start T", "progress I T" eleven times, and
"done N SECS RATE T WAITS" (T: time.monotonic(), comparable across
processes).
"""
import logging
import os
import random
import socket
import struct
import sys
import time

# Not "Interface lo: no address assigned" from scapy's routing table, in a
# namespace with nothing but the TUN.
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet import IP, TCP  # noqa: E402

dst, dport, count, dev, window = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))

t0 = time.monotonic()
opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (0, 0)), ("NOP", None), ("WScale", 7)]
# Variable fields zero: the template's checksum is then the complement of the
# sum of the fixed words (pseudo-header and segment).
tmpl = bytes(IP(src="0.0.0.0", dst=dst, ttl=64) /
             TCP(sport=0, dport=dport, seq=0, flags="S", window=64240, options=opts))
ihl = (tmpl[0] & 15) * 4
doff = (tmpl[ihl + 12] >> 4) * 4
# Find the timestamp option (kind 8).
ts_at, i = None, ihl + 20
while i < ihl + doff:
    kind = tmpl[i]
    if kind in (0, 1):
        i += 1
        continue
    if kind == 8:
        ts_at = i + 2
    i += tmpl[i + 1]
assert ts_at is not None, "no timestamp option in the template"
(c0,) = struct.unpack_from("!H", tmpl, ihl + 16)
base = ~c0 & 0xFFFF

rng = random.Random()
pkts = []
for n in range(count):
    src = (198 << 24) | (51 << 16) | (100 << 8) | (1 + n % 254)
    sport = 1024 + n // 254
    seq = rng.getrandbits(32)
    ts = rng.getrandbits(32)
    s = (base + (src >> 16) + (src & 0xFFFF) + sport + (seq >> 16) + (seq & 0xFFFF)
         + (ts >> 16) + (ts & 0xFFFF))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    p = bytearray(tmpl)
    struct.pack_into("!I", p, 12, src)
    struct.pack_into("!HHI", p, ihl, sport, dport, seq)
    struct.pack_into("!H", p, ihl + 16, ~s & 0xFFFF)
    struct.pack_into("!I", p, ts_at, ts)
    pkts.append(bytes(p))

# Check the incremental checksums against scapy's on a few packets.
for p in pkts[:3] + pkts[-3:]:
    q = IP(p)
    want = q[TCP].chksum
    del q[TCP].chksum
    assert IP(bytes(q))[TCP].chksum == want, "bad incremental TCP checksum"
print("built", count, "%.3f" % (time.monotonic() - t0), flush=True)

sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
txf = os.open("/sys/class/net/%s/statistics/tx_packets" % dev, os.O_RDONLY)


def tx_read():
    return int(os.pread(txf, 64, 0))


tx0 = tx_read()
addr = (dst, 0)
send = sock.sendto
step = count // 11
next_progress = step
waits = 0
start = time.monotonic()
print("start", "%.6f" % start, flush=True)
n = 0
while n < count:
    if n - (tx_read() - tx0) > window:
        waits += 1
        time.sleep(0.0001)
        continue
    end = min(n + 64, count)
    for p in pkts[n:end]:
        send(p, addr)
    n = end
    if n >= next_progress and next_progress < count:
        print("progress", next_progress, "%.6f" % time.monotonic(), flush=True)
        next_progress += step
secs = time.monotonic() - start
print("done", count, "%.3f" % secs, "%.0f" % (count / secs), "%.6f" % time.monotonic(),
      waits, flush=True)
