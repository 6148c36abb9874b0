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
# Environment: BERTH_PD_SO (a prebuilt libberth_packetdrill.so), BERTH_PD_FLAGS
# (--so_flags, default empty: berth 192.168.0.1/16, gateway 192.168.0.2, the
# Linux TCP profile), PACKETDRILL_ARGS (extra packetdrill flags).
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

pass=0
fail=0
skip=0
for s in "${scripts[@]}"; do
    name=${s#"$PWD"/}
    if grep -q '%{' "$s"; then
        skip=$((skip + 1))
        echo "skip  $name (%{ }% block)"
        continue
    fi
    # packetdrill's defaults match berth-packetdrill's: local 192.168.0.1,
    # gateway 192.168.0.2, netmask 255.255.0.0, remote 192.0.2.1.
    # shellcheck disable=SC2086
    if out=$(cd "$(dirname "$s")" && "${ns[@]}" "$pd" --so_filename="$so" \
        --so_flags="${BERTH_PD_FLAGS:-}" --send_omit_free \
        --ip_version=ipv4 --local_ip=192.168.0.1 --gateway_ip=192.168.0.2 \
        --netmask_ip=255.255.0.0 --remote_ip=192.0.2.1 \
        -D TFO_COOKIE=3021b9d889017eeb -D CODE=host_unreachable \
        -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR \
        ${PACKETDRILL_ARGS:-} "$(basename "$s")" 2>&1); then
        pass=$((pass + 1))
        echo "ok    $name"
    else
        fail=$((fail + 1))
        echo "FAIL  $name"
        printf '%s\n' "$out" | grep -v '^sysctl: ' | sed 's/^/      /'
    fi
done
if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
