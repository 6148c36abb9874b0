#!/usr/bin/env bash
# Run packetdrill scripts against berth through the berth-packetdrill shared
# object (packetdrill's --so_filename mode: no kernel TCP, no TUN, virtual clock).
#
#   scripts/packetdrill.sh                 # every tests/packetdrill/*.pkt
#   scripts/packetdrill.sh DIR|FILE.pkt... # any scripts or directories of them
#
# Upstream google/packetdrill scripts run too (see tests/packetdrill/README.md,
# "Upstream scripts"): each script runs from its own directory, so their
# `../common/defaults.sh` is found; scripts with `%{ }%` blocks are skipped
# (packetdrill evaluates them with the host's getsockopt, which cannot see
# berth's sockets).
#
# Needs a packetdrill binary on PATH (or PACKETDRILL=/path/to/packetdrill); see
# README.md ("packetdrill"). Each script runs inside `unshare -n` (a private,
# empty network namespace) so nothing can touch a real network even if a script
# asks packetdrill for a TUN. Prints one line per script and `N passed, M failed`
# (and `, K skipped`); exits non-zero when any script failed.
#
# Each script runs in each of packetdrill's --ip_version modes with run_all.py's
# flags for it (ipv4; ipv4-mapped-ipv6; ipv6 with --mtu=1520 and fd3d:...
# addresses), which the adapter reads from packetdrill's command line. As
# run_all.py, *v4.pkt runs only over IPv4 and *v6.pkt only over IPv6; over IPv6
# a script with an ICMPv4-only code (packetdrill would reject it) is skipped.
#
# Environment: BERTH_PD_SO (a prebuilt libberth_packetdrill.so), BERTH_PD_FLAGS
# (--so_flags, default empty: the Linux TCP profile), BERTH_PD_IP_VERSIONS
# (default "ipv4 ipv4-mapped-ipv6 ipv6"), PACKETDRILL_ARGS (extra packetdrill
# flags).
set -u
cd "$(dirname "$0")/.."

pd=${PACKETDRILL:-$(command -v packetdrill || true)}
if [ -z "$pd" ] || [ ! -x "$pd" ]; then
    echo "packetdrill.sh: no packetdrill binary on PATH (or PACKETDRILL): build it from" >&2
    echo "  https://github.com/google/packetdrill (gtests/net/packetdrill: ./configure && make)" >&2
    echo "  and put it on PATH; see README.md, section packetdrill." >&2
    exit 2
fi

so=${BERTH_PD_SO:-}
if [ -z "$so" ]; then
    cargo build --release -q -p berth-packetdrill || exit 2
    so=${CARGO_TARGET_DIR:-$PWD/target}/release/libberth_packetdrill.so
fi
[ -f "$so" ] || { echo "packetdrill.sh: $so not found" >&2; exit 2; }
# Scripts run from their own directories: make both paths absolute.
so=$(realpath "$so")
pd=$(realpath "$pd")

if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
if ! "${ns[@]}" true 2>/dev/null; then
    echo "packetdrill.sh: cannot create a network namespace with ${ns[*]}: run as root" \
         "or allow unprivileged user namespaces" >&2
    exit 2
fi

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tests/packetdrill)
scripts=()
for t in "${targets[@]}"; do
    if [ -d "$t" ]; then
        while IFS= read -r f; do scripts+=("$(realpath "$f")"); done < <(find "$t" -name '*.pkt' | sort)
    elif [ -f "$t" ]; then
        scripts+=("$(realpath "$t")")
    else
        echo "packetdrill.sh: $t: no such file or directory" >&2
        exit 2
    fi
done
[ ${#scripts[@]} -gt 0 ] || { echo "packetdrill.sh: no .pkt scripts found" >&2; exit 2; }

# run_all.py's flags for each --ip_version.
mode_flags() {
    case $1 in
    ipv4) echo "--ip_version=ipv4 --local_ip=192.168.0.1 --gateway_ip=192.168.0.1" \
        "--netmask_ip=255.255.0.0 --remote_ip=192.0.2.1 -D TFO_COOKIE=3021b9d889017eeb" \
        "-D CODE=host_unreachable -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR" ;;
    ipv4-mapped-ipv6) echo "--ip_version=ipv4-mapped-ipv6 --local_ip=192.168.0.1" \
        "--gateway_ip=192.168.0.1 --netmask_ip=255.255.0.0 --remote_ip=192.0.2.1" \
        "-D TFO_COOKIE=3021b9d889017eeb -D CODE=host_unreachable" \
        "-D CMSG_LEVEL_IP=SOL_IPV6 -D CMSG_TYPE_RECVERR=IPV6_RECVERR" ;;
    ipv6) echo "--ip_version=ipv6 --mtu=1520 --local_ip=fd3d:0a0b:17d6::1" \
        "--gateway_ip=fd3d:0a0b:17d6:8888::1 --remote_ip=fd3d:fa7b:d17d::1" \
        "-D TFO_COOKIE=c1d1e9742a47a9bc -D CMSG_LEVEL_IP=SOL_IPV6" \
        "-D CMSG_TYPE_RECVERR=IPV6_RECVERR" ;;
    *) echo "packetdrill.sh: unknown ip version $1 (give ipv4, ipv4-mapped-ipv6 or ipv6)" >&2
       exit 2 ;;
    esac
}
# ICMPv4 unreachable codes that ICMPv6 does not have (packetdrill's tables).
v4_only_icmp='icmp unreachable (net_unreachable|host_unreachable|protocol_unreachable|frag_needed|source_route_failed|net_unknown|host_unknown|source_host_isolated|net_prohibited|host_prohibited|net_unreachable_for_tos|host_unreachable_for_tos|packet_filtered|precedence_violation|precedence_cutoff)'

modes=(${BERTH_PD_IP_VERSIONS:-ipv4 ipv4-mapped-ipv6 ipv6})
summary=()
fail=0
for mode in "${modes[@]}"; do
    flags=$(mode_flags "$mode") || exit 2
    mpass=0
    mfail=0
    mskip=0
    for s in "${scripts[@]}"; do
        name=${s#"$PWD"/}
        why=
        if grep -q '%{' "$s"; then
            why="%{ }% block"
        elif [ "$mode" = ipv6 ] && [[ $s == *v4.pkt ]]; then
            why="IPv4 only (*v4.pkt)"
        elif [ "$mode" != ipv6 ] && [[ $s == *v6.pkt ]]; then
            why="IPv6 only (*v6.pkt)"
        elif [ "$mode" = ipv6 ] && grep -Eq "$v4_only_icmp" "$s"; then
            why="an ICMPv4-only code, which ICMPv6 does not have"
        fi
        if [ -n "$why" ]; then
            mskip=$((mskip + 1))
            echo "skip  $mode $name ($why)"
            continue
        fi
        # shellcheck disable=SC2086
        if out=$(cd "$(dirname "$s")" && "${ns[@]}" "$pd" --so_filename="$so" \
            --so_flags="${BERTH_PD_FLAGS:-}" --send_omit_free $flags \
            ${PACKETDRILL_ARGS:-} "$(basename "$s")" 2>&1); then
            mpass=$((mpass + 1))
            echo "ok    $mode $name"
        else
            mfail=$((mfail + 1))
            echo "FAIL  $mode $name"
            printf '%s\n' "$out" | grep -v '^sysctl: ' | sed 's/^/      /'
        fi
    done
    fail=$((fail + mfail))
    summary+=("$mode: $mpass passed, $mfail failed, $mskip skipped")
done
printf '%s\n' "${summary[@]}"
[ "$fail" -eq 0 ]
