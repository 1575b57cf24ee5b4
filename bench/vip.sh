#!/usr/bin/env bash
# VIP data-plane benchmark: Beacon's XDP path and socket LB against nftables DNAT and a direct
# connection, in one run with the modes interleaved round by round (A B C A B C ...).
#
#   bench/vip.sh [--quick]        as root; --quick takes about 1 minute, the full run about 5
#
# What it prints (bench/README.md has the details):
#   1. ns/packet of beacon_xdp_lb via BPF_PROG_TEST_RUN next to a minimal DNAT baseline
#      (ebpf/examples/xdp_bench.rs), with Katran's published 101-119 ns for scale;
#   2. through a VIP over veth pairs (client netns -> node netns, forwarding on -> 3 backend
#      netns): new TCP connections/s, keep-alive requests/s with p50/p99, UDP echoes/s, for
#      "direct" (the client talks to the backends itself, thread i to backend i mod 3), "nft"
#      (nftables DNAT in the node's prerouting, round-robin over the 3 backends) and "beacon"
#      (beacon_xdp_lb on the node's client-facing veth + beacon_tc_revnat on its egress), with
#      ratios to direct; and
#      "beacon-skb", the same with generic (skb) XDP whatever XDP_MODE says, to compare the
#      two attach modes on a veth in one run;
#      "xdp-hook", a diagnostic: the direct traffic with Beacon's programs attached (no VIP
#      hit), which shows what the XDP and tc hooks on a veth cost before any translation;
#   3. connect() latency through the socket LB (a client in a throw-away cgroup v2 child with
#      the cgroup programs attached there, connecting to a VIP) against a direct connect() to
#      the same loopback listener, p50/p99.
#
# Settings (environment): ROUNDS (5; quick 1), SECS per load run (4; quick 3), MODES ("direct
# nft beacon beacon-skb xdp-hook"), CPS_THREADS (4), RPS_CONNS (12), UDP_THREADS (4), UDP_FLOWS (24
# sockets), UDP_WINDOW (2 in flight per socket), CONNECTS per mode in each connect-latency
# round (20000; quick 5000), XDP_MODE (drv or skb; drv), CLIENT_TX (on or off: the client veth's
# TX checksum offload; on), XDP_REPEAT (1000000), XDP_ROUNDS (7;
# quick 3), KEEP_TMP=1 keeps the work directory. The servers and load generators are
# ebpf/examples/vip_bench.rs (built here with cargo --release).
#
# Everything it creates is named after this shell's PID and removed on exit, error or Ctrl-C
# (trap): network namespaces vb<PID>-{c,n,b1,b2,b3}, the nftables table (inside the node
# namespace), the cgroup beacon-vipbench-<PID>, and the processes it started (killed by PID).
# BPF programs are attached by helper processes through bpf_links, which close when they exit.
set -euo pipefail

QUICK=0
case "${1:-}" in
    --quick) QUICK=1 ;;
    "") ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
if ((QUICK)); then
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-3} CONNECTS=${CONNECTS:-5000} XDP_ROUNDS=${XDP_ROUNDS:-3}
else
    ROUNDS=${ROUNDS:-5} SECS=${SECS:-4} CONNECTS=${CONNECTS:-20000} XDP_ROUNDS=${XDP_ROUNDS:-7}
fi
CPS_THREADS=${CPS_THREADS:-4}
RPS_CONNS=${RPS_CONNS:-12}
UDP_THREADS=${UDP_THREADS:-4}
UDP_FLOWS=${UDP_FLOWS:-24}
UDP_WINDOW=${UDP_WINDOW:-2}
XDP_MODE=${XDP_MODE:-drv}
CLIENT_TX=${CLIENT_TX:-on}
MODES=${MODES:-direct nft beacon beacon-skb xdp-hook}
XDP_REPEAT=${XDP_REPEAT:-1000000}
MAX_OPS=50000000 # per load run; the time limit normally ends it first

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

if ((EUID != 0)); then
    echo "vip.sh needs root (network namespaces, XDP, tc, cgroups, nftables)" >&2
    exit 2
fi
need=()
command -v nft >/dev/null || need+=(nftables)
command -v ethtool >/dev/null || need+=(ethtool)
command -v tc >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "building ebpf examples (release) ..."
(cd "$REPO" && cargo build --release -q -p beacon-ebpf --example vip_bench --example xdp_bench)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release/examples/vip_bench
XDP_BENCH=$TARGET_DIR/release/examples/xdp_bench

P=vb$$
C=$P-c N=$P-n
BACKENDS=(1 2 3)
CG=""
TMP=$(mktemp -d /tmp/vipbench.XXXXXX)
RESULTS=$TMP/results.txt
: >"$RESULTS"
PIDS=()

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "$C" "$N" "$P-b1" "$P-b2" "$P-b3"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [[ -n $CG && -d $CG ]]; then
        rmdir "$CG" 2>/dev/null || echo "warning: could not remove $CG" >&2
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background, records its PID, and waits for a "ready" line on its stdout.
# Sets STARTED to the PID. "$@" must be a program (ip netns exec execs into it, so the PID is
# the server's own), never a shell function, which would leave a subshell's PID instead.
start() {
    local name=$1
    shift
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    STARTED=$!
    PIDS+=("$STARTED")
    for _ in $(seq 200); do
        grep -q '^ready' "$TMP/$name.out" 2>/dev/null && return 0
        if ! kill -0 "$STARTED" 2>/dev/null; then
            echo "$name exited early:" >&2
            cat "$TMP/$name.err" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "$name not ready after 10 s" >&2
    exit 1
}

# Stops a process started by start() (by its PID) and forgets it.
stop() {
    local pid=$1 keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------------------
echo
echo "== 1. beacon_xdp_lb, ns per packet (BPF_PROG_TEST_RUN, repeat $XDP_REPEAT, $XDP_ROUNDS rounds interleaved with the baseline)"
"$XDP_BENCH" "$XDP_REPEAT" "$XDP_ROUNDS" | tee "$TMP/xdp.txt" | grep -E '^(breakdown|median|beacon_xdp_lb)'
echo "(Katran publishes 101-119 ns per packet for its BPF program alone: katran issue #235)"

# ---------------------------------------------------------------------------------------
echo
echo "== 2. through a VIP over veth: topology"
VIP=10.203.0.1
TCP_PORT=80
UDP_PORT=9000
for ns in "$C" "$N" "$P-b1" "$P-b2" "$P-b3"; do
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
done
ip link add c0 netns "$C" type veth peer name n0 netns "$N"
in_ns "$C" ip addr add 10.201.0.1/24 dev c0
in_ns "$C" ip link set c0 up
in_ns "$C" ip route add default via 10.201.0.2
# One client source address per mode (.11 direct, .12 nft, .13 beacon, .14 beacon-skb), chosen
# by route. A
# backend keeps TIME_WAIT for every connection it closed; if another mode later reused the
# same client address and port towards it, with sequence numbers and timestamps derived from
# another destination (the VIP instead of the backend), the backend would drop the SYN as an
# old duplicate and the client would retransmit it a second later. Separate sources keep the
# modes' connections apart.
for s in 11 12 13 14; do
    in_ns "$C" ip addr add 10.201.0.$s/24 dev c0
done
in_ns "$C" ip route add 10.202.0.0/16 via 10.201.0.2 src 10.201.0.11
# Client-side TX checksum offload: on by default, as a veth has it (the client's frames are
# CHECKSUM_PARTIAL, and beacon_xdp_lb updates their checksum seeds); CLIENT_TX=off for frames
# with complete checksums, as from a physical NIC. The same in every mode.
in_ns "$C" ethtool -K c0 tx "$CLIENT_TX" >/dev/null
# Wide port range: the connection-rate runs open tens of thousands of connections.
in_ns "$C" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
in_ns "$N" ip addr add 10.201.0.2/24 dev n0
in_ns "$N" ip link set n0 up
in_ns "$N" sysctl -qw net.ipv4.ip_forward=1
for i in "${BACKENDS[@]}"; do
    B=$P-b$i
    ip link add b0 netns "$B" type veth peer name nb$i netns "$N"
    in_ns "$B" ip addr add 10.202.$i.2/24 dev b0
    in_ns "$B" ip link set b0 up
    in_ns "$B" ip route add default via 10.202.$i.1
    in_ns "$N" ip addr add 10.202.$i.1/24 dev nb$i
    in_ns "$N" ip link set nb$i up
    start "http-b$i" ip netns exec "$B" "$BIN" http-server "10.202.$i.2:$TCP_PORT" "b$i"
    start "udp-b$i" ip netns exec "$B" "$BIN" udp-echo "10.202.$i.2:$UDP_PORT"
done
echo "client 10.201.0.1 -> node (forwarding) -> backends 10.202.{1,2,3}.2 (HTTP :$TCP_PORT, UDP echo :$UDP_PORT)"
echo "VIP $VIP:$TCP_PORT/tcp and $VIP:$UDP_PORT/udp; direct = backend 1; XDP mode $XDP_MODE"

NFT_RULES="table ip vipbench {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport $TCP_PORT dnat to numgen inc mod 3 map { 0 : 10.202.1.2, 1 : 10.202.2.2, 2 : 10.202.3.2 }
        ip daddr $VIP udp dport $UDP_PORT dnat to numgen inc mod 3 map { 0 : 10.202.1.2, 1 : 10.202.2.2, 2 : 10.202.3.2 }
    }
}"

LB_PID=""
mode_up() {
    case $1 in
        direct) ;;
        nft)
            in_ns "$C" ip route replace "$VIP/32" via 10.201.0.2 src 10.201.0.12
            echo "$NFT_RULES" | in_ns "$N" nft -f -
            ;;
        beacon | xdp-hook | beacon-skb)
            local src=13 mode=$XDP_MODE
            [[ $1 == beacon-skb ]] && src=14 mode=skb
            in_ns "$C" ip route replace "$VIP/32" via 10.201.0.2 src 10.201.0.$src
            start "xdp-lb" ip netns exec "$N" "$BIN" xdp-lb n0 "$mode" "$VIP:$TCP_PORT" "$VIP:$UDP_PORT" \
                10.202.1.2 "$TCP_PORT" "$UDP_PORT" 10.202.2.2 10.202.3.2
            LB_PID=$STARTED
            ;;
    esac
}
mode_down() {
    case $1 in
        direct) ;;
        nft) in_ns "$N" nft delete table ip vipbench ;;
        beacon | xdp-hook | beacon-skb)
            stop "$LB_PID"
            sed "s/^COUNTERS/$1:/" "$TMP/xdp-lb.out" | grep "^$1:" >>"$TMP/counters.txt" || true
            in_ns "$N" tc qdisc del dev n0 clsact 2>/dev/null || true
            ;;
    esac
}
# Direct: the client spreads its threads over the three backends itself (thread i to backend
# i mod 3), so every mode has three servers doing the work and only the path differs.
target() {
    if [[ $1 == direct || $1 == xdp-hook ]]; then
        echo "10.202.1.2:$2,10.202.2.2:$2,10.202.3.2:$2"
    else
        echo "$VIP:$2"
    fi
}

# Which backends answer, per mode (a functional check before any load).
for mode in $MODES; do
    mode_up "$mode"
    printf '  %-7s new connections answered by: %s\n' "$mode" \
        "$(in_ns "$C" "$BIN" spread "$(target "$mode" "$TCP_PORT")" 30 | sed 's/^RESULT backends=//')"
    mode_down "$mode"
done

record() { # mode round test, then the RESULT line on stdin
    local line
    line=$(grep '^RESULT' || true)
    if [[ -z $line ]]; then
        echo "  $1 $3: no result" >&2
        return
    fi
    echo "section=net mode=$1 round=$2 test=$3 ${line#RESULT }" >>"$RESULTS"
    printf '  round %s %-7s %-4s %s\n' "$2" "$1" "$3" "${line#RESULT }"
}

echo
echo "== 2. load: $ROUNDS round(s) x {$MODES}, $SECS s per run"
for round in $(seq "$ROUNDS"); do
    for mode in $MODES; do
        mode_up "$mode"
        in_ns "$C" "$BIN" cps "$(target "$mode" "$TCP_PORT")" "$SECS" "$CPS_THREADS" "$MAX_OPS" |
            record "$mode" "$round" cps
        in_ns "$C" "$BIN" rps "$(target "$mode" "$TCP_PORT")" "$SECS" "$RPS_CONNS" "$MAX_OPS" |
            record "$mode" "$round" rps
        in_ns "$C" "$BIN" udp "$(target "$mode" "$UDP_PORT")" "$SECS" "$UDP_THREADS" "$UDP_FLOWS" "$UDP_WINDOW" "$MAX_OPS" |
            record "$mode" "$round" udp
        mode_down "$mode"
    done
done
if [[ -f $TMP/counters.txt ]]; then
    echo "  Beacon XDP/tc counters per mode and round (proof the XDP path carried the load):"
    sed 's/^/    /' "$TMP/counters.txt"
fi

# ---------------------------------------------------------------------------------------
echo
echo "== 3. connect() latency: socket LB vs direct ($CONNECTS connects per mode and round, interleaved in chunks of 500; loopback in the client netns)"
CG_ROOT=""
for r in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [[ -f $r/cgroup.procs ]] && [[ $(stat -f -c %T "$r") == cgroup2fs ]]; then
        CG_ROOT=$r
        break
    fi
done
if [[ -z $CG_ROOT ]]; then
    echo "  skipped: no cgroup v2 at /sys/fs/cgroup/unified or /sys/fs/cgroup"
else
    CG=$CG_ROOT/beacon-vipbench-$$
    mkdir "$CG"
    SOCK_VIP=10.203.0.10:80
    start "http-lo" ip netns exec "$C" "$BIN" http-server 127.0.0.1:8080 lo
    start "sock-lb" "$BIN" sock-lb "$CG" "$SOCK_VIP" 127.0.0.1:8080
    # The client moves itself between the LB cgroup and its own one (fds 3 and 4, opened
    # here: `ip netns exec` remounts /sys, which hides the cgroup mount) every CHUNK connects.
    OWN_CG=$CG_ROOT$(awk -F'::' '/^0::/ {print $2}' /proc/self/cgroup)
    for round in $(seq "$ROUNDS"); do
        out=$(ip netns exec "$C" "$BIN" connect-ab 127.0.0.1:8080 "$SOCK_VIP" "$CONNECTS" 500 \
            3>"$CG/cgroup.procs" 4>"$OWN_CG/cgroup.procs")
        while read -r _ line; do
            echo "section=connect round=$round test=connect $line" >>"$RESULTS"
            printf '  round %s %s\n' "$round" "$line"
        done < <(grep '^RESULT' <<<"$out")
    done
fi

# ---------------------------------------------------------------------------------------
echo
python3 "$HERE/vip_report.py" "$RESULTS" "$TMP/xdp.txt"
