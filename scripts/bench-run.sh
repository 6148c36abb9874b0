#!/usr/bin/env bash
# Compare `berth run` with slirp4netns and pasta (issue 13's benchmark; a
# benchmark, not a test: nothing is asserted, the goals are only printed).
#
#   sudo scripts/bench-run.sh                  # berth run, slirp4netns, pasta
#   sudo scripts/bench-run.sh --no-berth       # the two baselines only
#   sudo T=5 MTUS=1500 scripts/bench-run.sh --tools "slirp4netns berth"
#
# For each MTU (1500 and 65520) and each tool, a fresh network namespace is
# made and served by the tool, then:
#   ns→host  iperf3 -c <gateway 192.0.2.2> inside the namespace, to an iperf3
#            server the script starts on the host's 127.0.0.1 (the gateway
#            reaches the host's loopback: slirp4netns' default, pasta's
#            gateway mapping, berth run's default);
#   host→ns  iperf3 -c 127.0.0.1:<FWD_PORT> on the host, through the tool's
#            port forward to an iperf3 server inside the namespace;
#   RR       1-byte request/response over one TCP connection (TCP_NODELAY),
#            client inside to a server on the host's 127.0.0.1 through the
#            gateway; N round trips after a warm-up, mean and p99 in µs, and
#            the tool process's user and system CPU time per round trip
#            (/proc/PID/stat around the timed round trips; no kernel row).
#   kernel   the bound of any relay: the same three measurements with no
#            namespace and no relay, iperf3 and RR straight over the host's
#            loopback (the `kernel` row; one client, one server, two CPUs).
# Rounds: R rounds (default 3), each running every tool once per MTU in a
# rotated order (so a noisy minute does not fall on one tool), and the table
# gives the median of the rounds, with every round's figure beside it.
# Stalls: iperf3 intervals (IVL seconds; sender or receiver side, the worse)
# that moved 0 bytes, or under 5 % of the run's best interval, and runs that
# did not finish in time.
#
# pasta serves a port forward from a loopback source with splice(2) between a
# host socket and a socket it opens inside the namespace (its "local traffic"
# bypass, see pasta(1)): its host→ns figure is two kernel TCP connections, no
# tap and no user-space TCP, the strongest baseline of the table. Its ns→host
# figure is its tap path. slirp4netns goes through its tap both ways.
#
# Prints a markdown table and berth/slirp4netns and berth/pasta ratios (with
# the issue's goals) on stdout, progress on stderr, and writes every figure and
# the raw iperf3 JSON to RESULTS.
#
# Network rules: traffic goes only to services this script starts on the
# host's 127.0.0.1 and inside the namespaces it creates. The namespaces use the
# documentation range 192.0.2.0/24 (namespace .100, gateway .2), and the only
# address a client inside ever uses is the gateway. slirp4netns and pasta bind
# their outbound sockets to 127.0.0.1 (--outbound-addr / -o), so a flow to any
# non-loopback destination cannot be opened at all (connect/sendto from
# 127.0.0.1 to another address fails with EINVAL); DNS forwarding is off;
# pasta runs IPv4-only with no automatic port forwarding.
#
# Rootless by default (the real use): the tools, the namespace holders and the
# iperf3/RR processes run as uid/gid 65534 through `setpriv --reuid=65534
# --regid=65534 --clear-groups`, each namespace is a user+network namespace
# made by that user (`unshare -Urn`, or `berth run` itself). Opening
# /dev/net/tun is checked against the device node's mode with the caller's
# real uid, so where the node is 0600 (as on this project's machines; Debian
# ships 0666, and opening it grants nothing: creating or attaching a TUN still
# needs CAP_NET_ADMIN in the user namespace owning the network namespace) the
# script makes it 0666 for the run and restores the original mode on exit.
# `--root` runs everything as root instead (`unshare -n`, no user namespace),
# except pasta: Debian 12's pasta will not stay root (it changes to nobody and
# then cannot open a root-owned namespace), so its rows stay rootless.
#
# Needs root (to install packages, chmod /dev/net/tun and setpriv); installs
# slirp4netns, passt and iperf3 from Debian with apt-get when missing.
#
# berth is berth run as it comes: its relay polls for the next packet (up to
# 50 µs, fewer wake-ups after windows that catch nothing). berth-sleep is berth run
# with --busy-poll 0, a relay that always sleeps between packets, for what the
# polling buys in latency and costs in CPU (the relay CPU column).
#
# Options:  --no-berth         skip berth run (both rows)
#           --tools "A B .."   any of: slirp4netns pasta berth berth-sleep kernel (default: all)
#           --root             run the tools and the namespaces as root
#           --report RESULTS   print the table of a saved run again (no root, runs nothing)
# Environment: BERTH (default target/release/berth), R (rounds, 3), T (iperf3 seconds, 10),
# N (RR round trips, 10000), MTUS ("1500 65520"), IVL (iperf3 interval s, 0.5),
# HOST_PORT (host iperf3 server, 5201), FWD_PORT (host end of the port
# forward, 5202), GUEST_PORT (iperf3 server inside, 5201), RR_PORT (host RR
# server, 5203; each is the first free port from there up, as the machine may
# be shared), RESULTS (default target/bench-run/results-DATE.json), KEEP_TMP=1
# (keep the scratch directory with each tool's logs).
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)

TOOLS="slirp4netns pasta berth berth-sleep kernel"
ROOTMODE=0
REPORT=
while [ $# -gt 0 ]; do
    case "$1" in
        --no-berth) TOOLS=$(echo " $TOOLS " | sed 's/ berth-sleep / /; s/ berth / /') ;;
        --tools) TOOLS=$2; shift ;;
        --tools=*) TOOLS=${1#--tools=} ;;
        --root) ROOTMODE=1 ;;
        --report) REPORT=$2; shift ;;
        --report=*) REPORT=${1#--report=} ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for t in $TOOLS; do
    case $t in slirp4netns|pasta|berth|berth-sleep|kernel) ;; *) echo "bench-run.sh: unknown tool $t" >&2; exit 2 ;; esac
done

T=${T:-10}
R=${R:-3}
N=${N:-10000}
MTUS=${MTUS:-"1500 65520"}
IVL=${IVL:-0.5}
HOST_PORT=${HOST_PORT:-5201}
FWD_PORT=${FWD_PORT:-5202}
GUEST_PORT=${GUEST_PORT:-5201}
RR_PORT=${RR_PORT:-5203}
BERTH=${BERTH:-$REPO/target/release/berth}
BERTH_EXTRA=()
RESULTS=${RESULTS:-$REPO/target/bench-run/results-$(date +%Y%m%d-%H%M%S).json}

NET=192.0.2.0/24
GW=192.0.2.2
GUEST=192.0.2.100

# Progress goes to the script's own stderr, kept on fd 3: a trap can run while a
# command's redirections are in force (ctrl-c during an iperf3 run).
exec 3>&2
log() { echo "bench-run: $*" >&3; }
die() { log "$*"; exit 1; }

# The report (Python, on stdout): reads the run's directory, writes RESULTS
# and prints the table; `--from RESULTS` prints a saved run's table again.
report_py() {
cat <<'EOF'
# Reads DIR/<tool>-<mtu>/ and writes RESULTS (JSON) and the table on stdout.
import glob, json, os, sys
# Or, with --from RESULTS: the table of a run saved before (nothing written).
if sys.argv[1] == "--from":
    d, results = None, sys.argv[2]
    meta = json.load(open(results))
else:
    d, results, meta = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
def load(p):
    try:
        with open(p) as f: return json.load(f)
    except Exception: return None
def iperf(cli, srv, rc):
    r = {"exit": rc, "client": cli, "server": srv}
    # Per side (sender = client, receiver = server), the worse side counts:
    # intervals that moved 0 bytes, and intervals under 5 % of that side's
    # best interval (a collapse that still trickles a few segments).
    zero, low, n, mins = 0, 0, 0, []
    for side in (cli, srv):
        if not side or "intervals" not in side: continue
        ivs = [i["sum"] for i in side["intervals"]]
        # the last interval may be a sliver (< 0.1 s): not a stall
        ivs = [i for i in ivs if i.get("seconds", 1) >= 0.1]
        if not ivs: continue
        peak = max(i["bits_per_second"] for i in ivs)
        zero = max(zero, sum(1 for i in ivs if i.get("bytes", 0) == 0))
        low = max(low, sum(1 for i in ivs if i["bits_per_second"] < 0.05 * peak))
        n = max(n, len(ivs))
        mins.append(min(i["bits_per_second"] for i in ivs) / 1e9)
    end = (cli or {}).get("end", {})
    snd, rcv = end.get("sum_sent", {}), end.get("sum_received", {})
    r["sender_gbps"] = snd.get("bits_per_second", 0) / 1e9 if snd else None
    r["receiver_gbps"] = rcv.get("bits_per_second", 0) / 1e9 if rcv else None
    r["retransmits"] = snd.get("retransmits")
    r["zero_intervals"] = zero
    r["low_intervals"] = low
    r["intervals"] = n
    r["min_interval_gbps"] = min(mins) if mins else None
    r["ok"] = rc == 0 and bool(rcv) and "error" not in (cli or {})
    if cli and "error" in cli: r["error"] = cli["error"]
    return r
cells = meta.get("cells", []) if d is None else []
for cd in (sorted(glob.glob(os.path.join(d, "*-*"))) if d is not None else []):
    m = load(os.path.join(cd, "meta.json"))
    if not m: continue
    rc = lambda n: int(open(os.path.join(cd, n)).read().strip() or 1) if os.path.exists(os.path.join(cd, n)) else None
    m["ns_to_host"] = iperf(load(os.path.join(cd, "n2h_cli.json")), load(os.path.join(cd, "n2h_srv.json")), rc("n2h.rc"))
    m["host_to_ns"] = iperf(load(os.path.join(cd, "h2n_cli.json")), load(os.path.join(cd, "h2n_srv.json")), rc("h2n.rc"))
    m["rr"] = load(os.path.join(cd, "rr.json")) or {"error": "no result"}
    m["rr"]["exit"] = rc("rr.rc")
    cells.append(m)
if d is not None:
    meta["cells"] = cells
    os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
    with open(results, "w") as f: json.dump(meta, f, indent=1)

order = {"berth": 0, "berth-sleep": 1, "slirp4netns": 2, "pasta": 3, "kernel": 4}
cells.sort(key=lambda c: (c["mtu"], order.get(c["tool"], 9), c.get("round", 1)))
# One row per tool and MTU: the median of its rounds (a failed round counts
# as a failure in the stalls column and is left out of the median).
groups = {}
for c in cells: groups.setdefault((c["tool"], c["mtu"]), []).append(c)
def median(xs):
    xs = sorted(xs)
    if not xs: return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2
def gbps(cs, k):
    return [c[k]["receiver_gbps"] for c in cs if c[k].get("ok")]
def rr(cs):
    return [c["rr"]["mean_us"] for c in cs if "mean_us" in c["rr"]]
def relay_cpu(cs):
    return [c["rr"]["relay_user_us"] + c["rr"]["relay_sys_us"] for c in cs if "relay_user_us" in c["rr"]]
def relay_user(cs):
    return [c["rr"]["relay_user_us"] for c in cs if "relay_user_us" in c["rr"]]
def cell_stalls(c):
    if c.get("setup_error"): return "setup failed: " + c["setup_error"]
    s = []
    for k, name in (("ns_to_host", "ns→host"), ("host_to_ns", "host→ns")):
        x = c[k]
        if not x.get("ok"): s.append("%s: did not finish" % name)
        elif x["zero_intervals"] or x["low_intervals"]:
            s.append("%s: %d/%d intervals 0 B, %d/%d < 5%% of peak" % (
                name, x["zero_intervals"], x["intervals"], x["low_intervals"], x["intervals"]))
    if "error" in c["rr"]: s.append("RR: " + c["rr"]["error"])
    return "; ".join(s)
def stalls(cs):
    s = ["round %d: %s" % (c.get("round", 1), cell_stalls(c)) for c in cs if cell_stalls(c)]
    return "; ".join(s) or "none"
def fmt(m, xs, f):
    if m is None: return "FAIL"
    return (f % m) + (" (" + ", ".join(f % x for x in xs) + ")" if len(xs) > 1 else "")
def name(t):
    if t == "kernel": return "kernel loopback (no relay)"
    if t == "berth-sleep": return "berth --busy-poll 0"
    return t
print()
print("berth run vs slirp4netns vs pasta: T=%ss, IVL=%ss, RR N=%s, %s rounds (median, then each round), %s, %d CPUs, kernel %s, %s" % (
    meta["T"], meta["IVL"], meta["N"], meta.get("R", 1), "rootless (uid 65534)" if meta["rootless"] else "as root",
    meta["cpus"], meta["kernel"], meta["date"]))
print()
print("| tool | MTU | ns→host Gbit/s | host→ns Gbit/s | RR latency µs | relay CPU µs/RT (user) | stalls |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
med = {}
for (t, mtu), cs in sorted(groups.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 9))):
    n2h, h2n, lat = gbps(cs, "ns_to_host"), gbps(cs, "host_to_ns"), rr(cs)
    med[(t, mtu)] = (median(n2h), median(h2n), median(lat))
    rc, ru = relay_cpu(cs), relay_user(cs)
    cpu_col = "%s (%.1f)" % (fmt(median(rc), rc, "%.1f"), median(ru)) if rc else "-"
    print("| %s | %d | %s | %s | %s | %s | %s |" % (name(t), mtu, fmt(median(n2h), n2h, "%.2f"),
          fmt(median(h2n), h2n, "%.2f"), fmt(median(lat), lat, "%.1f"), cpu_col, stalls(cs)))
print()
print("Gbit/s: iperf3 receiver side; RR: mean of 1-byte round trips, ns→host through the gateway;")
print("relay CPU: user + system CPU time of the tool's process per timed round trip (from /proc/PID/stat, 10 ms ticks), median user time in parentheses;")
print("  less noisy than the latency on a busy host: the work the relay does, not how long the CPUs took to get to it.")
print("stalls: %ss iperf3 intervals (sender or receiver side, the worse) that moved 0 bytes or < 5%% of the best one." % meta["IVL"])
print("kernel loopback: iperf3 and RR on the host's 127.0.0.1 with no namespace (both columns the same path), the bound of any relay.")
# The same ratio round by round (the two tools ran minutes apart in the same
# round, so a machine that drifts over the run weighs less): each round's
# ratio, and in how many rounds the goal held. The verdict stays on the
# ratio of the medians.
def paired(bs, os_, k, goal):
    by = {c.get("round", 1): c[k]["receiver_gbps"] for c in os_ if c[k].get("ok")}
    rs = [c[k]["receiver_gbps"] / by[c.get("round", 1)] for c in sorted(bs, key=lambda c: c.get("round", 1))
          if c[k].get("ok") and by.get(c.get("round", 1))]
    if len(rs) < 2: return ""
    return "; by round %s, median %.2f×, goal held in %d of %d" % (
        ", ".join("%.2f" % r for r in rs), median(rs), sum(r >= goal for r in rs), len(rs))
lines = []
for mtu in sorted({c["mtu"] for c in cells}):
    for bt in ("berth", "berth-sleep"):
        b = med.get((bt, mtu))
        if not b: continue
        for other, goal in (("slirp4netns", 3.0), ("pasta", 1.0)):
            o = med.get((other, mtu))
            if not o: continue
            parts = []
            for i, nm in ((0, "ns→host"), (1, "host→ns")):
                if b[i] and o[i]:
                    r = b[i] / o[i]
                    parts.append("%s %.2f× (goal ≥ %g×: %s%s)" % (nm, r, goal, "met" if r >= goal else "MISSED",
                                 paired(groups[(bt, mtu)], groups[(other, mtu)], ("ns_to_host", "host_to_ns")[i], goal)))
                else:
                    parts.append("%s n/a" % nm)
            if b[2] and o[2]:
                r = b[2] / o[2]
                if other == "slirp4netns":
                    parts.append("latency %.2f× (goal ≤ 1×: %s)" % (r, "met" if r <= 1 else "MISSED"))
                else:
                    parts.append("latency %.2f×" % r)
            lines.append("%s/%s MTU %d: %s" % (name(bt), other, mtu, ", ".join(parts)))
        k, sl = med.get(("kernel", mtu)), med.get(("slirp4netns", mtu))
        if k and sl:
            for i, nm in ((0, "ns→host"), (1, "host→ns")):
                if k[i] and sl[i] and b[i]:
                    lines.append("MTU %d %s: kernel loopback %.2f Gbit/s is %.2f× slirp4netns (3× needs %.2f); %s reaches %.0f%% of the kernel" % (
                        mtu, nm, k[i], k[i] / sl[i], 3 * sl[i], name(bt), 100 * b[i] / k[i]))
        lines.append("%s MTU %d stalls: %s (goal: none)" % (name(bt), mtu, stalls(groups[(bt, mtu)])))
if lines:
    print()
    for l in lines: print(l)
print()
print("results: %s" % results)
EOF
}

if [ -n "$REPORT" ]; then
    rp=$(mktemp /tmp/bench-run-report.XXXXXX.py)
    report_py > "$rp"
    python3 "$rp" --from "$REPORT"
    rc=$?
    rm -f "$rp"
    exit $rc
fi

[ "$(id -u)" = 0 ] || die "run as root (installs packages, may chmod /dev/net/tun, drops to uid 65534 with setpriv)"

# --- packages -----------------------------------------------------------------
missing=
command -v slirp4netns >/dev/null || missing="$missing slirp4netns"
command -v pasta >/dev/null || missing="$missing passt"
command -v iperf3 >/dev/null || missing="$missing iperf3"
if [ -n "$missing" ]; then
    log "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y $missing >&2 || { apt-get update >&2 && apt-get install -y $missing >&2; } ||
        die "apt-get install$missing failed"
    # Debian's iperf3 package may offer a system-wide server; this script
    # starts its own on 127.0.0.1 only.
fi
for c in slirp4netns pasta iperf3 setpriv unshare nsenter ip ss timeout; do
    command -v $c >/dev/null || die "$c not found"
done
# The system python (a python under /root is not reachable for uid 65534).
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || die "python3 not found"

if [[ " $TOOLS " == *" berth"[\ -]* ]]; then
    [ -x "$BERTH" ] || die "no berth binary at $BERTH (cargo build --release -p berth-cli, or BERTH=path, or --no-berth)"
fi

if [ $ROOTMODE = 1 ]; then
    RUNAS=()
else
    RUNAS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi


# --- cleanup ------------------------------------------------------------------
PIDS=()          # every process this script started and may have to end
TUN_MODE=
TMP=
cleanup() {
    local p alive=()
    for p in "${PIDS[@]}"; do
        # Only processes this script started: recorded PIDs, never 1.
        if [ "$p" -gt 1 ] 2>/dev/null && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null && alive+=("$p")
        fi
    done
    if [ ${#alive[@]} -gt 0 ]; then
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            local any=0
            for p in "${alive[@]}"; do pid_alive "$p" && any=1; done
            [ $any = 0 ] && break
            sleep 0.2
        done
        for p in "${alive[@]}"; do kill -KILL "$p" 2>/dev/null; done
    fi
    PIDS=()
}
final_cleanup() {
    cleanup
    wait 2>/dev/null
    [ -n "$TUN_MODE" ] && chmod "$TUN_MODE" /dev/net/tun && log "/dev/net/tun mode restored to $TUN_MODE"
    [ -n "$TMP" ] && [ -z "${KEEP_TMP:-}" ] && rm -rf "$TMP"
}
trap final_cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

TMP=$(mktemp -d /tmp/bench-run.XXXXXX)
chmod 0755 "$TMP"
chown 65534:65534 "$TMP"

# pasta runs rootless even with --root (see setup_pasta), so it needs the
# device too.
if [ $ROOTMODE = 0 ] || [[ " $TOOLS " == *" pasta "* ]]; then
    [ -c /dev/net/tun ] || die "/dev/net/tun missing"
    mode=$(stat -c %a /dev/net/tun)
    if [ $(( 8#$mode & 8#006 )) != 6 ]; then
        TUN_MODE=$mode
        chmod 0666 /dev/net/tun
        log "/dev/net/tun was $mode: 0666 for this run (rootless tools open it as uid 65534), restored on exit"
    fi
fi

if [[ " $TOOLS " == *" berth"[\ -]* ]]; then
    cp "$BERTH" "$TMP/berth" && chmod 0755 "$TMP/berth"   # reachable by uid 65534
    BERTH_BIN=$TMP/berth
fi

# --- helpers (python) ---------------------------------------------------------
cat > "$TMP/rr.py" <<'EOF'
# 1-byte request/response: `serve ADDR PORT` (echo one byte per byte, any number
# of connections in turn) or `client ADDR PORT N [STAT]` (JSON summary on stdout;
# with STAT, a /proc/PID/stat, also that process's user and system CPU time per
# round trip over the timed ones).
# `probe ADDR PORT SECONDS`: connect until it works (exit 0) or time runs out.
import json, os, socket, sys, time
def serve(addr, port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(8)
    while True:
        c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                b = c.recv(1)
                if not b: break
                c.sendall(b)
        except OSError:
            pass
        c.close()
def cpu(stat):
    # utime and stime (clock ticks) of /proc/PID/stat, after the ')' of comm.
    f = open(stat).read().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])
def client(addr, port, n, stat=None):
    c = socket.create_connection((addr, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = {"n": n, "warmup": 200}
    try:
        for _ in range(200):
            c.sendall(b"x"); c.recv(1)
        t = []; now = time.perf_counter_ns
        c0 = cpu(stat) if stat else None
        for _ in range(n):
            a = now(); c.sendall(b"x")
            if c.recv(1) != b"x": raise OSError("short reply")
            t.append(now() - a)
        if c0:
            c1, tick = cpu(stat), 1e6 / os.sysconf("SC_CLK_TCK")
            out["relay_user_us"] = (c1[0] - c0[0]) * tick / n
            out["relay_sys_us"] = (c1[1] - c0[1]) * tick / n
    except OSError as e:
        out["error"] = repr(e); print(json.dumps(out)); sys.exit(1)
    c.close(); t.sort()
    out.update(mean_us=sum(t) / len(t) / 1e3, p50_us=t[len(t) // 2] / 1e3,
               p99_us=t[min(len(t) - 1, int(len(t) * 0.99))] / 1e3,
               min_us=t[0] / 1e3, max_us=t[-1] / 1e3)
    print(json.dumps(out))
def probe(addr, port, secs):
    end = time.time() + secs
    while True:
        try:
            socket.create_connection((addr, port), timeout=1).close(); return
        except OSError as e:
            if time.time() > end: print("probe failed:", e, file=sys.stderr); sys.exit(1)
            time.sleep(0.1)
cmd = sys.argv[1]
if cmd == "serve": serve(sys.argv[2], int(sys.argv[3]))
elif cmd == "client": client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])
elif cmd == "probe": probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
EOF

cat > "$TMP/hostfwd.py" <<'EOF'
# slirp4netns API: add_hostfwd (SOCKET PROTO HOSTADDR HOSTPORT GUESTPORT)
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(json.dumps({"execute": "add_hostfwd", "arguments": {
    "proto": sys.argv[2], "host_addr": sys.argv[3], "host_port": int(sys.argv[4]),
    "guest_port": int(sys.argv[5])}}).encode())
s.shutdown(socket.SHUT_WR); r = s.recv(4096).decode(); print(r)
sys.exit(0 if '"return"' in r and "error" not in r else 1)
EOF

report_py > "$TMP/report.py"

# --- namespace plumbing -------------------------------------------------------
# NSE: the nsenter prefix for namespace holder $1 (user namespace too when it
# has its own, as in rootless mode).
nse_for() {
    local pid=$1
    NSE=(nsenter -t "$pid" -n)
    if [ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/self/ns/user)" ]; then
        NSE=(nsenter -t "$pid" -U -n --preserve-credentials)
    fi
}

# Start a namespace holder process (sleep) in a new network namespace (and
# user namespace, rootless). Sets HOLDER.
start_holder() {
    local ns_flags=-Urn
    [ ${#RUNAS[@]} = 0 ] && ns_flags=-n
    "${RUNAS[@]}" unshare $ns_flags sleep infinity &
    HOLDER=$!
    PIDS+=("$HOLDER")
    wait_for 5 "namespace holder" holder_ready "$HOLDER"
}
holder_ready() { [ "$(readlink /proc/$1/ns/net 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ]; }

# A descendant of $1 whose command line is exactly "$2" (the in-namespace
# command of berth run: found from outside, so its PID is the host's).
find_desc() {
    local root=$1 want=$2 p kids queue=("$1")
    while [ ${#queue[@]} -gt 0 ]; do
        p=${queue[0]}; queue=("${queue[@]:1}")
        if [ "$p" != "$root" ] && [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "$want " ]; then
            echo "$p"; return 0
        fi
        kids=$(ps -o pid= --ppid "$p" 2>/dev/null)
        for k in $kids; do queue+=("$k"); done
    done
    return 1
}

# Run a command in the background and wait for it: `wait` is interrupted by a
# signal, so ctrl-c/SIGTERM cleans up at once instead of after the command.
run_fg() { "$@" & local p=$!; PIDS+=("$p"); wait "$p"; }

wait_for() {   # SECONDS WHAT CMD ARGS..
    local secs=$1 what=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    until "$@"; do
        [ "$(date +%s)" -ge $end ] && { log "timed out waiting for $what"; return 1; }
        sleep 0.1
    done
}
ns_has_addr() { "${RUNAS[@]}" "${NSE[@]}" ip -4 -o addr show 2>/dev/null | grep -q " $GUEST/"; }
# alive and not a zombie (a child not yet reaped still answers kill -0)
pid_gone() { ! pid_alive "$1"; }
pid_alive() { local st; st=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f1) && [ -n "$st" ] && [ "$st" != Z ]; }
host_listens() { ss -Hltn "sport = :$1" | grep -q .; }
# PORT is listened on by process PID (not by someone else's server)
listens_pid() { ss -Hltnp "sport = :$1" | grep -q "pid=$2,"; }
# The first port from BASE up that nothing listens on and is not in EXCL..
# (the machine is shared: another iperf3 may hold 5201).
pick_port() {
    local p=$1; shift
    while ss -Hltn "sport = :$p" | grep -q . || [[ " $* " == *" $p "* ]]; do p=$((p + 1)); done
    echo "$p"
}
ns_listens() { "${RUNAS[@]}" "${NSE[@]}" ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# --- one tool at one MTU ------------------------------------------------------
setup_slirp4netns() {   # MTU DIR
    local mtu=$1 dir=$2
    start_holder || return 1
    nse_for "$HOLDER"
    CMDLINE=("${RUNAS[@]}" slirp4netns --configure --mtu="$mtu" --cidr="$NET" --disable-dns
             --outbound-addr=127.0.0.1 --api-socket "$TMP/slirp.sock" "$HOLDER" tap0)
    rm -f "$TMP/slirp.sock"
    "${CMDLINE[@]}" > "$dir/tool.log" 2>&1 &
    PIDS+=("$!"); RELAY_PID=$!   # setpriv execs the tool: the same process
    wait_for 10 "slirp4netns to configure tap0" ns_has_addr || return 1
    wait_for 5 "slirp4netns API socket" test -S "$TMP/slirp.sock" || return 1
    FWD_CMD=($PY "$TMP/hostfwd.py" "$TMP/slirp.sock" tcp 127.0.0.1 "$FWD" "$GUEST_PORT")
    "${RUNAS[@]}" "${FWD_CMD[@]}" >> "$dir/tool.log" 2>&1 || { log "slirp4netns add_hostfwd failed"; return 1; }
    wait_for 5 "port forward 127.0.0.1:$FWD" host_listens "$FWD"
}

setup_pasta() {
    local mtu=$1 dir=$2
    start_holder || return 1
    nse_for "$HOLDER"
    # -4: IPv4 only; -T/-u/-U none: no automatic forwarding; -o 127.0.0.1:
    # outbound sockets bound to loopback; no DNS options (none by default).
    CMDLINE=("${RUNAS[@]}" pasta -f -q -4 --config-net -I tap0 -a "$GUEST" -n 24 -g "$GW"
             -o 127.0.0.1 --no-dhcp -m "$mtu" -t "127.0.0.1/$FWD:$GUEST_PORT"
             -T none -u none -U none "$HOLDER")
    "${CMDLINE[@]}" > "$dir/tool.log" 2>&1 &
    PIDS+=("$!"); RELAY_PID=$!
    wait_for 10 "pasta to configure tap0" ns_has_addr || return 1
    wait_for 5 "port forward 127.0.0.1:$FWD" host_listens "$FWD"
}

# The host→ns iperf3 server runs under berth run's command (started with it,
# as `berth run -p … -- server` does), not entered with nsenter: only
# processes under the command have their accepts handed the host client's
# connection (see README, berth run; the script's other servers inside and
# every other tool's are entered with nsenter).
setup_berth() {
    local mtu=$1 dir=$2 marker="sleep 86399"
    H2N_IN_CMD="iperf3 -s -1 -p $GUEST_PORT -i $IVL -J"
    CMDLINE=("${RUNAS[@]}" "$BERTH_BIN" run --net "$NET" --mtu "$mtu" "${BERTH_EXTRA[@]}"
             -p "127.0.0.1:$FWD:$GUEST_PORT" --
             sh -c "$H2N_IN_CMD > $dir/h2n_srv.json 2> $dir/h2n_srv.log & exec sleep 86399")
    "${CMDLINE[@]}" > "$dir/tool.log" 2>&1 &
    local bpid=$!
    PIDS+=("$bpid"); RELAY_PID=$bpid
    wait_for 10 "berth run to start its command" find_desc "$bpid" "$marker" >/dev/null || return 1
    HOLDER=$(find_desc "$bpid" "$marker")
    PIDS+=("$HOLDER")
    nse_for "$HOLDER"
    wait_for 10 "berth run to configure the namespace" ns_has_addr || return 1
    wait_for 5 "port forward 127.0.0.1:$FWD" host_listens "$FWD"
}

# berth run with no busy polling: its own row, to compare latency and CPU.
setup_berth-sleep() {
    BERTH_EXTRA=(--busy-poll 0)
    setup_berth "$@"
    local rc=$?
    BERTH_EXTRA=()
    return $rc
}

# No namespace and no relay: the host's loopback straight (the bound).
setup_kernel() {
    NSE=()
    RELAY_PID=
    TARGET=127.0.0.1
    H2N_SRV_PORT=$FWD
    CMDLINE=(none)
}

run_cell() {   # TOOL MTU ROUND
    local tool=$1 mtu=$2 round=$3 err= rc
    local dir="$TMP/res/$tool-$mtu-r$round"
    mkdir -p "$dir"; chown 65534:65534 "$dir"
    log "== round $round: $tool, MTU $mtu"
    # Debian 12's pasta refuses to stay root (it changes to nobody, then cannot
    # open a root-owned namespace): with --root it still runs rootless.
    local saved_runas=("${RUNAS[@]}")
    [ "$tool" = pasta ] && RUNAS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    CMDLINE=(); FWD_CMD=(); TARGET=$GW; H2N_SRV_PORT=$GUEST_PORT; H2N_IN_CMD=
    HP=$(pick_port "$HOST_PORT"); FWD=$(pick_port "$FWD_PORT" "$HP"); RRP=$(pick_port "$RR_PORT" "$HP" "$FWD")
    [ "$HP $FWD $RRP" = "$HOST_PORT $FWD_PORT $RR_PORT" ] ||
        log "ports in use on the host: this cell uses $HP (iperf3), $FWD (forward), $RRP (RR)"
    if ! "setup_$tool" "$mtu" "$dir"; then
        err="setup failed (see log)"
        log "$tool: $err"; sed 's/^/  | /' "$dir/tool.log" >&2
    fi
    local ifmtu=
    [ -z "$err" ] && [ "$tool" != kernel ] && ifmtu=$("${RUNAS[@]}" "${NSE[@]}" ip -o link show 2>/dev/null |
        awk '!/ lo:/ { for (i = 1; i < NF; i++) if ($i == "mtu") print $(i + 1) }' | head -1)

    # RR server on the host (also the readiness probe target).
    "${RUNAS[@]}" $PY "$TMP/rr.py" serve 127.0.0.1 "$RRP" 2>>"$dir/rr_srv.log" &
    local rrs=$!; PIDS+=("$rrs")
    wait_for 5 "RR server" listens_pid "$RRP" "$rrs" || err=${err:-"RR server did not start"}
    if [ -z "$err" ]; then
        # The gateway must reach the host's loopback before measuring.
        run_fg "${RUNAS[@]}" "${NSE[@]}" $PY "$TMP/rr.py" probe "$TARGET" "$RRP" 10 2>>"$dir/probe.log" ||
            err="namespace cannot reach $TARGET:$RRP (host loopback)"
    fi

    if [ -z "$err" ]; then
        # ns→host
        log "$tool $mtu: ns→host iperf3 ${T}s"
        "${RUNAS[@]}" iperf3 -s -1 -B 127.0.0.1 -p "$HP" -i "$IVL" -J > "$dir/n2h_srv.json" 2>"$dir/n2h_srv.log" &
        local srv=$!; PIDS+=("$srv")
        wait_for 5 "host iperf3 server" listens_pid "$HP" "$srv" || echo 99 > "$dir/n2h.rc"
        if [ ! -e "$dir/n2h.rc" ]; then
            run_fg timeout -k 5 $(( ${T%.*} + 30 )) "${RUNAS[@]}" "${NSE[@]}" \
                iperf3 -c "$TARGET" -p "$HP" -t "$T" -i "$IVL" -J --connect-timeout 5000 \
                > "$dir/n2h_cli.json" 2>"$dir/n2h_cli.log"
            echo $? > "$dir/n2h.rc"
        fi
        wait_for 5 "host iperf3 server to finish" pid_gone "$srv" || kill "$srv" 2>/dev/null
        wait "$srv" 2>/dev/null

        # host→ns
        log "$tool $mtu: host→ns iperf3 ${T}s"
        if [ -n "$H2N_IN_CMD" ]; then
            srv=$(find_desc "$RELAY_PID" "$H2N_IN_CMD")
        else
            "${RUNAS[@]}" "${NSE[@]}" iperf3 -s -1 -p "$H2N_SRV_PORT" -i "$IVL" -J > "$dir/h2n_srv.json" 2>"$dir/h2n_srv.log" &
            srv=$!; PIDS+=("$srv")
        fi
        wait_for 5 "iperf3 server in the namespace" ns_listens "$H2N_SRV_PORT"
        run_fg timeout -k 5 $(( ${T%.*} + 30 )) "${RUNAS[@]}" \
            iperf3 -c 127.0.0.1 -p "$FWD" -t "$T" -i "$IVL" -J --connect-timeout 5000 \
            > "$dir/h2n_cli.json" 2>"$dir/h2n_cli.log"
        echo $? > "$dir/h2n.rc"
        wait_for 5 "namespace iperf3 server to finish" pid_gone "$srv" || kill "$srv" 2>/dev/null
        wait "$srv" 2>/dev/null

        # RR latency
        log "$tool $mtu: RR latency, $N round trips"
        run_fg timeout -k 5 120 "${RUNAS[@]}" "${NSE[@]}" $PY "$TMP/rr.py" client "$TARGET" "$RRP" "$N" \
            ${RELAY_PID:+/proc/$RELAY_PID/stat} > "$dir/rr.json" 2>"$dir/rr.log"
        echo $? > "$dir/rr.rc"
    fi

    # meta.json: what ran and how
    $PY - "$dir/meta.json" "$tool" "$mtu" "$round" "${ifmtu:-}" "$err" "${CMDLINE[*]}" "${FWD_CMD[*]}" "$dir/tool.log" "${#RUNAS[@]}" "$HP" "$FWD" "$GUEST_PORT" "$RRP" <<'EOF'
import json, sys
p, tool, mtu, rnd, ifmtu, err, cmd, fwd, logf, runas, hp, fw, gp, rr = sys.argv[1:]
m = {"tool": tool, "mtu": int(mtu), "round": int(rnd), "ns_if_mtu": int(ifmtu) if ifmtu else None, "command": cmd,
     "rootless": runas != "0",
     "ports": {"host_iperf3": int(hp), "forward_host": int(fw), "guest_iperf3": int(gp), "rr": int(rr)}}
if fwd: m["port_forward_command"] = fwd
if err: m["setup_error"] = err
try: m["tool_log"] = open(logf, errors="replace").read()[-4000:]
except OSError: pass
json.dump(m, open(p, "w"))
EOF
    RUNAS=("${saved_runas[@]}")
    cleanup
    wait 2>/dev/null
    # every process of this cell is gone before the next one starts
    sleep 0.5
}

# --- main ---------------------------------------------------------------------
ver_berth=
[[ " $TOOLS " == *" berth"[\ -]* ]] && ver_berth=$("$BERTH_BIN" --version 2>/dev/null | head -1)
$PY - "$TMP/meta.json" <<EOF
import json, os, platform, subprocess, sys, time
def out(c):
    try: return subprocess.run(c, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception: return None
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "kernel": platform.release(),
    "cpus": os.cpu_count(), "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    "T": "$T", "R": $R, "IVL": "$IVL", "N": $N, "mtus": "$MTUS".split(), "tools": "$TOOLS".split(),
    "rootless": $ROOTMODE == 0, "net": "$NET", "gateway": "$GW", "guest": "$GUEST",
    "preferred_ports": {"host_iperf3": $HOST_PORT, "forward_host": $FWD_PORT, "guest_iperf3": $GUEST_PORT, "rr": $RR_PORT},
    "versions": {"slirp4netns": out(["slirp4netns", "--version"]),
                 "passt": out(["dpkg-query", "-W", "-f", "\${Version}", "passt"]),
                 "iperf3": out(["iperf3", "--version"]), "berth": "$ver_berth" or None},
}, open(sys.argv[1], "w"))
EOF

ORDER=()
for tool in slirp4netns pasta berth berth-sleep kernel; do
    [[ " $TOOLS " == *" $tool "* ]] && ORDER+=("$tool")
done
for round in $(seq 1 "$R"); do
    for mtu in $MTUS; do
        for i in "${!ORDER[@]}"; do
            # rotated by the round: each tool runs first, last, ... in turn
            run_cell "${ORDER[$(( (i + round - 1) % ${#ORDER[@]} ))]}" "$mtu" "$round"
        done
    done
done

$PY "$TMP/report.py" "$TMP/res" "$RESULTS" "$TMP/meta.json"
