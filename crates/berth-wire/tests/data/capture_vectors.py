# Capture real Linux-kernel-generated frames between two throwaway network namespaces;
# the source of the vectors in ../known_vectors.rs (Linux 6.18, 2 namespaces, veth).
# Run as root: unshare -n python3 crates/berth-wire/tests/data/capture_vectors.py
# Prints one line per frame: "<label> <hex>", then "# checksums ok" lines computed here
# with an independent RFC 1071 sum (struct, no berth code involved). Addresses are the
# documentation range 192.0.2.0/24; nothing leaves the namespaces.
# Namespace A (this process): veth0 192.0.2.1/24, 02:00:00:00:00:01.
# Namespace B (a child `unshare -n`): veth1 192.0.2.2/24, 02:00:00:00:00:02,
# a TCP server on 192.0.2.2:8080. Both ends have TX checksum offload turned off
# (ETHTOOL_STXCSUM) so the kernel writes final transport checksums in software.
import ctypes, fcntl, os, select, socket, struct, subprocess, sys, time

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)

def tx_csum_off(ifname):
    ev = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))  # ETHTOOL_STXCSUM, off
    ifr = struct.pack("16sP", ifname.encode(), ctypes.addressof(ev))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fcntl.ioctl(sock.fileno(), 0x8946, ifr)
    sock.close()

if len(sys.argv) > 1 and sys.argv[1] == "child-setup":
    tx_csum_off("veth1")
    sys.exit(0)
if len(sys.argv) > 1 and sys.argv[1] == "server":
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("192.0.2.2", 8080)); srv.listen(1)
    c, _ = srv.accept(); c.recv(100); time.sleep(2)
    sys.exit(0)

def sniff(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifname, 0)); s.setblocking(False)
    return s

def drain(s, wait=0.4):
    out = []
    end = time.time() + wait
    while time.time() < end:
        r, _, _ = select.select([s], [], [], 0.05)
        if r:
            data, addr = s.recvfrom(65535)
            out.append(data)
    return out

sh("ip link set lo up")
child = subprocess.Popen(["unshare", "-n", "sleep", "30"])
time.sleep(0.3)
ns = f"nsenter -t {child.pid} -n"
sh("ip link add veth0 type veth peer name veth1")
sh("ip link set veth0 address 02:00:00:00:00:01")
sh("ip link set veth1 address 02:00:00:00:00:02")
sh(f"ip link set veth1 netns {child.pid}")
tx_csum_off("veth0")
sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
sh(f"{ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
sh("ip addr add 192.0.2.1/24 dev veth0 && ip link set veth0 up")
sh(f"{ns} sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev veth1; ip link set veth1 up'")
sh(f"{ns} python3 {os.path.abspath(__file__)} child-setup")
server = subprocess.Popen(f"{ns} python3 {os.path.abspath(__file__)} server", shell=True)
time.sleep(1.0)
v = sniff("veth0")
drain(v, 0.3)

frames = []
# ARP request/reply, then a UDP datagram to a closed port -> ICMP port unreachable.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("192.0.2.1", 40000))
u.sendto(b"berth", ("192.0.2.2", 9))
frames += [("arp+udp", f) for f in drain(v)]

# ICMP echo request (iputils-style 48-byte data: timestamp + 0x10..0x37) -> kernel echo reply.
ic = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
data = struct.pack("!II", 0x65f0a1b2, 0x000c3d5e) + bytes(range(0x10, 0x38))
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
hdr = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + data
ic.sendto(hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:], ("192.0.2.2", 0))
frames += [("icmp", f) for f in drain(v)]

# TCP handshake and one data segment.
cli = socket.socket(); cli.bind(("192.0.2.1", 47330)); cli.connect(("192.0.2.2", 8080))
cli.send(b"hello")
tcp_frames = drain(v, 0.6)
frames += [("tcp", f) for f in tcp_frames]

# An out-of-order segment on the same connection, 100 bytes past the client's snd_nxt,
# injected with a raw socket: the server's kernel answers with a duplicate ACK that
# carries a SACK block (RFC 2018) for it.
last = [f for f in tcp_frames if f[12:14] == b"\x08\x00" and f[26:30] == bytes([192, 0, 2, 1])
        and len(f) > 66][-1]
ip = last[14:]; hl = (ip[0] & 15) * 4; tcp = ip[hl:]
seq, ack = struct.unpack("!II", tcp[4:12])
tsval, tsecr = struct.unpack("!II", tcp[24:32])
sent = len(tcp) - 32
payload = b"later"
opts = bytes([1, 1, 8, 10]) + struct.pack("!II", tsval + 1, tsecr)
seg = struct.pack("!HHIIBBHHH", 47330, 8080, seq + sent + 100, ack, (32 // 4) << 4, 0x18,
                  int.from_bytes(tcp[14:16], "big"), 0, 0) + opts + payload
pseudo = bytes([192, 0, 2, 1, 192, 0, 2, 2, 0, 6]) + struct.pack("!H", len(seg))
c = csum(pseudo + seg)
seg = seg[:16] + struct.pack("!H", c) + seg[18:]
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw.sendto(seg, ("192.0.2.2", 0))
frames += [("tcp-sack", f) for f in drain(v, 0.6)]
child.kill(); server.kill()
for name, f in frames:
    print(name, f.hex())

def ones_sum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return s
for name, f in frames:
    if f[12:14] != b"\x08\x00":
        continue
    ip = f[14:]; hl = (ip[0] & 15) * 4; tl = struct.unpack("!H", ip[2:4])[0]
    seg = ip[hl:tl]
    l4 = seg if ip[9] == 1 else ip[12:20] + struct.pack("!BBH", 0, ip[9], len(seg)) + seg
    print("# %s ip checksum ok=%s, transport checksum ok=%s"
          % (name, ones_sum(ip[:hl]) == 0xffff, ones_sum(l4) == 0xffff))
