#!/usr/bin/env bash
# DNS benchmark: Beacon against NSD 4.6, both serving the same 10,000-task Mesos catalog over
# UDP on 127.0.0.1, measured with dnsperf. See bench/README.md.
#
#   bench/dns.sh            full run: 3 rounds of 10 s throughput + 5 s fixed-rate latency each
#   bench/dns.sh --quick    smoke test: 1 round of 3 s throughput + 2 s latency
#
# Environment (all optional):
#   BEACON_BIN   the beacon binary (default: target/release/beacon under the repo root, or
#                $CARGO_TARGET_DIR/release/beacon when CARGO_TARGET_DIR is set); built with
#                `cargo build --release` when missing
#   TASKS        tasks in the generated state (default 10000)
#   ROUNDS       A/B rounds (default 3; --quick: 1)
#   DURATION     seconds per throughput run (default 10; --quick: 3)
#   CLIENTS      dnsperf -c (default 10)
#   OUTSTANDING  dnsperf -q (default 200)
#   LAT_RATE     queries per second of the latency runs (default 20000; --quick: 10000)
#   LAT_DURATION seconds per latency run (default 5; --quick: 2)
#   BEACON_LOG   beacon's --log filter (default: Beacon's DEFAULT_LOG, which logs nothing per
#                query; "info" makes hickory log two lines per query)
#   QUIET_WAIT   before each measured run, wait up to this many seconds for a 1 s window in
#                which the machine is at most 10% busy (other users' builds); 0 disables
#                (default 20; --quick: 0). The busy share is reported per run either way.
#   KEEP_TMP=1   keep the temporary directory (configs, logs, zone, query file) for inspection
#
# Network: everything listens on and is sent to 127.0.0.1 only. The 10.x and fd01:: addresses in
# the generated state are data served in DNS answers; nothing ever sends to them.
# Every process started here is stopped by PID on exit (trap).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "dns.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

# The helpers are imported from bench/: leave no __pycache__ in the repo.
export PYTHONDONTWRITEBYTECODE=1

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$REPO_ROOT/bench"
HELPER="$BENCH_DIR/dnsbench.py"

if [[ $QUICK == 1 ]]; then
    TASKS=${TASKS:-10000} ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-3}
    LAT_RATE=${LAT_RATE:-10000} LAT_DURATION=${LAT_DURATION:-2} WARMUP=1
    QUIET_WAIT=${QUIET_WAIT:-0}
else
    TASKS=${TASKS:-10000} ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10}
    LAT_RATE=${LAT_RATE:-20000} LAT_DURATION=${LAT_DURATION:-5} WARMUP=2
    QUIET_WAIT=${QUIET_WAIT:-20}
fi
CLIENTS=${CLIENTS:-10}
OUTSTANDING=${OUTSTANDING:-200}
QUERY_LINES=100000
# The filter of Beacon's DEFAULT_LOG (src/lib.rs), passed explicitly: a config's [log] filter
# (default "info", also for a config.json) would otherwise enable hickory's per-query lines.
BEACON_LOG=${BEACON_LOG:-info,hickory_server=warn,hickory_proto=warn,hickory_net=warn}
DOMAIN=mesos

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }
fail() { printf 'dns.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# ----------------------------------------------------------------------------- prerequisites
missing=()
command -v dnsperf >/dev/null 2>&1 || missing+=(dnsperf)
command -v nsd >/dev/null 2>&1 || [[ -x /usr/sbin/nsd ]] || missing+=(nsd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
    fail "missing: ${missing[*]}. Install with (as root): apt-get install -y ${missing[*]}
  (Debian 12 has dnsperf 2.10 and nsd 4.6.1; this script installs nothing itself)"
fi
NSD=$(command -v nsd || echo /usr/sbin/nsd)
NSD_CHECKCONF=$(command -v nsd-checkconf || echo /usr/sbin/nsd-checkconf)
for f in gen_state.py axfr_to_zone.py dnsbench.py; do
    [[ -f "$BENCH_DIR/$f" ]] || fail "missing $BENCH_DIR/$f"
done

if [[ -z ${BEACON_BIN:-} ]]; then
    BEACON_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/beacon"
fi
if [[ ! -x $BEACON_BIN ]]; then
    log "beacon binary $BEACON_BIN not found: running cargo build --release"
    command -v cargo >/dev/null 2>&1 || fail "cargo not found and $BEACON_BIN does not exist"
    (cd "$REPO_ROOT" && cargo build --release) || fail "cargo build --release failed"
    [[ -x $BEACON_BIN ]] || fail "cargo build succeeded but $BEACON_BIN still does not exist
  (set BEACON_BIN to the built binary, e.g. \$CARGO_TARGET_DIR/release/beacon)"
fi

# A binary older than the sources measures old code: say so (the script does not rebuild).
BIN_MTIME=$(stat -c %Y "$BEACON_BIN")
NEWEST_SRC=$(find "$REPO_ROOT" -path "$REPO_ROOT/target" -prune -o -path "$REPO_ROOT/.git" -prune \
    -o \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -newer "$BEACON_BIN" -print \
    2>/dev/null | head -n 3)
STALE_NOTE=""
if [[ -n $NEWEST_SRC ]]; then
    STALE_NOTE="WARNING: $BEACON_BIN is older than sources such as $(echo "$NEWEST_SRC" | head -n 1 | sed "s|$REPO_ROOT/||"): rebuild to measure the current code"
    echo "dns.sh: $STALE_NOTE" >&2
fi

NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)

# ----------------------------------------------------------------------------- cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/beacon-dnsbench.XXXXXX")
PIDS=()

stop_pid() { # stop_pid PID NAME: TERM, wait up to 5 s, then KILL; by PID only
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "dns.sh: $name (pid $pid) did not stop on TERM: sending KILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

NSD_PID=""
NSD_CHILDREN=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]%%:*}" "${PIDS[i]#*:}"
    done
    # NSD's server and xfrd processes exit with their parent; make sure, by their recorded PIDs.
    for pid in "${NSD_CHILDREN[@]}"; do
        for ((i = 0; i < 50; i++)); do # they exit with the main process: wait up to 5 s
            [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo X) =~ ^[XZ]$ ]] && break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && grep -q nsd "/proc/$pid/comm" 2>/dev/null \
            && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
            echo "dns.sh: NSD child $pid still running: sending TERM" >&2
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "dns.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_bg() { # start_bg NAME LOGFILE CMD...: starts CMD in the background, records its PID
    local name=$1 logfile=$2
    shift 2
    "$@" >"$logfile" 2>&1 &
    local pid=$!
    PIDS+=("$pid:$name")
    LAST_PID=$pid
}

stop_started() { # stop_started PID NAME: stop a process started by start_bg and forget it
    local pid=$1 name=$2 i kept=()
    stop_pid "$pid" "$name"
    for i in "${PIDS[@]}"; do
        [[ ${i%%:*} == "$pid" ]] || kept+=("$i")
    done
    PIDS=("${kept[@]}")
}

show_log() { echo "---- last lines of $1 ----" >&2; tail -n 20 "$1" >&2 || true; }

py() { python3 "$HELPER" "$@"; }

# ----------------------------------------------------------------------------- machine info
log "machine: $NPROC cores, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "beacon: $BEACON_BIN; tmp: $TMP"
if [[ $QUICK == 1 ]]; then log "--quick: short runs for smoke-testing; the numbers are indicative only"; fi

# ----------------------------------------------------------------------------- state, fake master
MASTER_PORT=$(py free-port)
log "generating a state with $TASKS tasks (leader master@127.0.0.1:$MASTER_PORT)"
python3 "$BENCH_DIR/gen_state.py" --tasks "$TASKS" --leader-port "$MASTER_PORT" \
    -o "$TMP/state.json"

start_bg fake-master "$TMP/fake-master.log" \
    "$BEACON_BIN" fake-master --state "$TMP/state.json" --listen "127.0.0.1:$MASTER_PORT" --no-v1  # polled: the refresh figures are the poll's
MASTER_PID=$LAST_PID
py wait-http "http://127.0.0.1:$MASTER_PORT/master/state" --timeout 30 --pid "$MASTER_PID" \
    || { show_log "$TMP/fake-master.log"; fail "the fake master did not come up"; }

# ----------------------------------------------------------------------------- beacon
# start_beacon NAME REFRESH_SECONDS: writes a Mesos-DNS config.json and starts `beacon agent`
# with it (the drop-in path: one SO_REUSEPORT UDP socket per core) and --log "$BEACON_LOG".
# Sets BEACON_PID, DNS_PORT, HTTP_PORT.
start_beacon() {
    local name=$1 refresh=$2
    DNS_PORT=$(py free-port)
    HTTP_PORT=$(py free-port)
    [[ $DNS_PORT != "$HTTP_PORT" ]] || HTTP_PORT=$(py free-port)
    cat >"$TMP/$name.json" <<EOF
{"masters":["127.0.0.1:$MASTER_PORT"],"listener":"127.0.0.1","port":$DNS_PORT,
 "HTTPListener":"127.0.0.1","httpport":$HTTP_PORT,"refreshSeconds":$refresh,
 "resolvers":["127.0.0.1:9"],"externalon":false,"domain":"$DOMAIN"}
EOF
    start_bg "$name" "$TMP/$name.log" "$BEACON_BIN" agent --mesos-dns-config "$TMP/$name.json" \
        --log "$BEACON_LOG"
    BEACON_PID=$LAST_PID
    py wait-http "http://127.0.0.1:$HTTP_PORT/readyz" --timeout 120 --pid "$BEACON_PID" \
        || { show_log "$TMP/$name.log"; fail "beacon ($name) did not become ready"; }
    py wait-dns "$DNS_PORT" "$DOMAIN." --timeout 30 --pid "$BEACON_PID" \
        || { show_log "$TMP/$name.log"; fail "beacon ($name) does not answer DNS"; }
}

# Phase 1: refresh every 2 s to measure the refresh time and the memory with the catalog loaded
# (the old and the new catalog coexist briefly during each refresh).
log "starting beacon with refreshSeconds=2 to measure refresh time and memory"
start_beacon beacon-refresh 2
METRICS="http://127.0.0.1:$HTTP_PORT/metrics"
WANT_REFRESHES=3
deadline=$((SECONDS + 60))
while :; do
    count=$(py metric "$METRICS" beacon_catalog_refresh_seconds_count)
    count=${count%.*}
    ((count >= WANT_REFRESHES)) && break
    ((SECONDS < deadline)) || fail "only $count refreshes after 60 s (log: $TMP/beacon-refresh.log)"
    kill -0 "$BEACON_PID" 2>/dev/null || { show_log "$TMP/beacon-refresh.log"; fail "beacon died"; }
    sleep 0.5
done
REFRESH_SUM=$(py metric "$METRICS" beacon_catalog_refresh_seconds_sum)
REFRESH_COUNT=$(py metric "$METRICS" beacon_catalog_refresh_seconds_count)
CATALOG_TASKS=$(py metric "$METRICS" beacon_catalog_tasks)
BEACON_MEM=$(py rss "$BEACON_PID")
py get "http://127.0.0.1:$HTTP_PORT/v1/axfr" "$TMP/axfr.json"
py get "http://127.0.0.1:$HTTP_PORT/v1/config" "$TMP/config.json" || echo '{}' >"$TMP/config.json"
log "refreshes: $REFRESH_COUNT, total $REFRESH_SUM s; tasks in catalog: $CATALOG_TASKS; memory: $BEACON_MEM"
stop_started "$BEACON_PID" beacon-refresh

# ----------------------------------------------------------------------------- zone for NSD
python3 "$BENCH_DIR/axfr_to_zone.py" --config "$TMP/config.json" "$TMP/axfr.json" \
    -o "$TMP/$DOMAIN.zone" 2>"$TMP/zone-summary.txt" || { cat "$TMP/zone-summary.txt" >&2; fail "axfr_to_zone.py failed"; }
ZONE_DESC=$(sed 's/^axfr_to_zone.py: //' "$TMP/zone-summary.txt")
log "zone: $ZONE_DESC"

# Phase 2: the beacon under test. refreshSeconds is long so that no refresh (a 5 MB parse)
# lands inside a measured run: NSD serves a static zone, and the refresh cost is reported
# separately above.
log "starting beacon for the load runs (refreshSeconds=3600)"
start_beacon beacon 3600
BEACON_DNS_PORT=$DNS_PORT
BEACON_HTTP_PORT=$HTTP_PORT
# Same catalog? The serial differs, the records must not.
py get "http://127.0.0.1:$BEACON_HTTP_PORT/v1/axfr" "$TMP/axfr2.json"
python3 - "$TMP/axfr.json" "$TMP/axfr2.json" <<'EOF' || fail "the two beacon instances serve different records"
import json, sys
a, b = (json.load(open(p))["Records"] for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
EOF

# ----------------------------------------------------------------------------- NSD
NSD_PORT=$(py free-port)
mkdir -p "$TMP/nsd"
cp "$TMP/$DOMAIN.zone" "$TMP/nsd/$DOMAIN.zone"
cat >"$TMP/nsd/nsd.conf" <<EOF
# NSD configuration for the benchmark, chosen to match what Beacon does:
server:
  # Loopback only, a non-standard port, IPv4 only (Beacon listens on 127.0.0.1 only).
  ip-address: 127.0.0.1@$NSD_PORT
  do-ip6: no
  # One server process per core, each with its own SO_REUSEPORT socket: the same shape as
  # Beacon's default of one SO_REUSEPORT UDP socket per core on a tokio runtime with one worker
  # per core.
  server-count: $NPROC
  reuseport: yes
  # Beacon (like Mesos-DNS) puts the SRV targets' A/AAAA records in the additional section, and
  # NSD does so only with minimal-responses off (the default). NSD then also adds the NS RRset to
  # the authority section of positive answers, so its answers are a little larger; the average
  # response sizes of both are printed.
  minimal-responses: no
  # Beacon shuffles A/AAAA/SRV answers on every query, as Mesos-DNS does; NSD rotates them.
  round-robin: yes
  # Response rate limiting is compiled in and on by default (200 qps per source /24): with every
  # query coming from 127.0.0.1 it would drop most answers. Beacon has none.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  # Zone in memory only (no nsd.db), as Beacon keeps its zone in memory.
  database: ""
  # Stay root: dropping to the nsd user would leave it unable to read this temp dir.
  username: ""
  zonesdir: "$TMP/nsd"
  zonelistfile: "$TMP/nsd/zone.list"
  xfrdfile: "$TMP/nsd/xfrd.state"
  xfrdir: "$TMP/nsd"
  pidfile: "$TMP/nsd/nsd.pid"
  logfile: "$TMP/nsd/nsd.log"
  verbosity: 0
  # EDNS buffer: NSD's default 1232 equals Beacon's edns_max_payload default; dnsperf sends no
  # EDNS here, so both answer within 512 bytes and set TC when an answer does not fit.
  ipv4-edns-size: 1232
remote-control:
  control-enable: no
zone:
  name: "$DOMAIN."
  zonefile: "$DOMAIN.zone"
EOF
"$NSD_CHECKCONF" "$TMP/nsd/nsd.conf" || fail "nsd-checkconf rejected $TMP/nsd/nsd.conf"
log "starting NSD on 127.0.0.1:$NSD_PORT (server-count $NPROC)"
# -d: stay in the foreground so that $! is NSD's main process; it forks xfrd and the servers.
start_bg nsd "$TMP/nsd/stdout.log" "$NSD" -d -c "$TMP/nsd/nsd.conf"
NSD_PID=$LAST_PID
py wait-dns "$NSD_PORT" "$DOMAIN." --timeout 60 --pid "$NSD_PID" \
    || { show_log "$TMP/nsd/stdout.log"; show_log "$TMP/nsd/nsd.log"; fail "NSD did not come up"; }
mapfile -t NSD_CHILDREN < <(python3 -c '
import sys; sys.path.insert(0, sys.argv[1]); import dnsbench
print("\n".join(str(p) for p in dnsbench.descendants(int(sys.argv[2]))[1:]))' "$BENCH_DIR" "$NSD_PID")
log "NSD processes: main $NSD_PID, children ${NSD_CHILDREN[*]:-none}"

# ----------------------------------------------------------------------------- queries, parity
py queries "$TMP/axfr.json" "$TMP/queries.txt" --count "$QUERY_LINES" --seed 1 | sed 's/^/  /'
log "checking that both servers give the same answers on a sample"
PARITY=$(py parity "$TMP/axfr.json" "$BEACON_DNS_PORT" "$NSD_PORT" "$TMP/queries.txt" --n 400)
python3 -c 'import json,sys; p=json.loads(sys.argv[1]); print("  %d queries: %d same, %d rcode differs, %d answers differ, %d unanswered; TC beacon %d, NSD %d; avg size %.0f vs %.0f B" % (p["queries"], p["same"], p["rcode_differs"], p["answers_differ"], p["no_answer"], p["tc_a"], p["tc_b"], p["avg_size_a"], p["avg_size_b"])); [print("    " + e) for e in p["examples"]]' "$PARITY"

# ----------------------------------------------------------------------------- runs
RESULTS="$TMP/results.jsonl"
: >"$RESULTS"

server_pid() { [[ $1 == beacon ]] && echo "$BEACON_PID" || echo "$NSD_PID"; }
server_port() { [[ $1 == beacon ]] && echo "$BEACON_DNS_PORT" || echo "$NSD_PORT"; }

check_alive() {
    kill -0 "$BEACON_PID" 2>/dev/null || { show_log "$TMP/beacon.log"; fail "beacon died during the runs"; }
    kill -0 "$NSD_PID" 2>/dev/null || { show_log "$TMP/nsd/nsd.log"; fail "NSD died during the runs"; }
}

# run_dnsperf SERVER KIND ROUND: KIND is warmup, throughput (closed loop, -q outstanding) or
# latency (open loop at LAT_RATE qps with -v, per-query latencies -> percentiles).
run_dnsperf() {
    local server=$1 kind=$2 round=$3 pid port out args t0 t1 m0 m1 stats lat
    pid=$(server_pid "$server")
    port=$(server_port "$server")
    out="$TMP/dnsperf-$server-$kind-$round.txt"
    args=(-s 127.0.0.1 -p "$port" -d "$TMP/queries.txt" -c "$CLIENTS" -T 1 -t 2)
    case $kind in
        warmup) args+=(-l "$WARMUP" -q "$OUTSTANDING") ;;
        throughput) args+=(-l "$DURATION" -q "$OUTSTANDING") ;;
        latency) args+=(-l "$LAT_DURATION" -Q "$LAT_RATE" -q "$OUTSTANDING" -v) ;;
    esac
    check_alive
    local before_busy=""
    if [[ $kind != warmup ]] && ((QUIET_WAIT > 0)); then
        before_busy=$(py wait-quiet --max "$QUIET_WAIT" --threshold 10)
    fi
    m0=$(py cpu-stat)
    t0=$(py cpu-ticks "$pid")
    # `times` (a builtin, in this shell) gives the CPU of waited-for children: dnsperf's.
    times >"$TMP/times0"
    # timeout is only a guard: dnsperf stops by itself after -l seconds.
    timeout --signal=INT $(( ${DURATION} + ${LAT_DURATION} + 60 )) dnsperf "${args[@]}" >"$out" 2>&1 \
        || { show_log "$out"; fail "dnsperf against $server failed"; }
    times >"$TMP/times1"
    t1=$(py cpu-ticks "$pid")
    m1=$(py cpu-stat)
    [[ $kind == warmup ]] && return 0
    stats=$(py dnsperf-parse "$out")
    lat='{}'
    [[ $kind == latency ]] && lat=$(py latency "$out")
    python3 - "$server" "$kind" "$round" "$t0" "$t1" "$CLK_TCK" "$stats" "$lat" "$m0" "$m1" \
        "$(tail -n 1 "$TMP/times0")" "$(tail -n 1 "$TMP/times1")" "$before_busy" \
        >>"$RESULTS" <<'EOF'
import json, re, sys
server, kind, rnd, t0, t1, hz, stats, lat, m0, m1, c0, c1, before = sys.argv[1:14]
m0, m1 = json.loads(m0), json.loads(m1)
def child_secs(times_line):  # "0m1.234s 0m0.567s": children's user and system time
    return sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", times_line))
r = {"server": server, "kind": kind, "round": int(rnd)}
r.update(json.loads(stats))
r.update(json.loads(lat))
secs = (int(t1) - int(t0)) / int(hz)
r["cpu_s"] = secs
r["cpu_us_per_query"] = secs * 1e6 / r["completed"] if r["completed"] else 0
total = max(1, m1["total"] - m0["total"])
r["steal_pct"] = 100.0 * (m1["steal"] - m0["steal"]) / total
r["machine_busy_pct"] = 100.0 * (total - (m1["idle"] - m0["idle"])) / total
r["dnsperf_cpu_s"] = child_secs(c1) - child_secs(c0)
# CPU used by neither the server nor dnsperf (other users of this shared machine), as a share
# of all cores' time: the noise indicator.
busy = total - (m1["idle"] - m0["idle"])
r["busy_before_pct"] = float(before) if before else None
r["other_pct"] = max(0.0, 100.0 * (busy - (int(t1) - int(t0)) - r["dnsperf_cpu_s"] * int(hz)) / total)
print(json.dumps(r))
EOF
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
line = "  %-6s %-10s round %d: %8.0f qps, avg %.3f ms, lost %d/%d, CPU %.2f s = %.2f us/query, resp %d B" % (
    r["server"], r["kind"], r["round"], r["qps"], r["avg_latency_ms"], r["lost"], r["sent"],
    r["cpu_s"], r["cpu_us_per_query"], r["resp_size"])
line += ", dnsperf CPU %.2f s, other load %.0f%%" % (r["dnsperf_cpu_s"], r["other_pct"])
if r["steal_pct"] >= 0.1:
    line += ", steal %.1f%%" % r["steal_pct"]
if r["kind"] == "latency":
    line += ", p50 %.3f p99 %.3f p99.9 %.3f ms" % (r["p50_ms"], r["p99_ms"], r["p999_ms"])
print(line)' "$(tail -n 1 "$RESULTS")"
}

BEACON_LOG_BYTES0=$(stat -c %s "$TMP/beacon.log")
log "warm-up (${WARMUP} s each)"
run_dnsperf beacon warmup 0
run_dnsperf nsd warmup 0
log "runs: $ROUNDS rounds, alternating beacon / NSD"
for ((r = 1; r <= ROUNDS; r++)); do
    run_dnsperf beacon throughput "$r"
    run_dnsperf nsd throughput "$r"
    run_dnsperf beacon latency "$r"
    run_dnsperf nsd latency "$r"
done
check_alive

BEACON_MEM_AFTER=$(py rss "$BEACON_PID")
BEACON_LOG_GROWTH=$(($(stat -c %s "$TMP/beacon.log") - BEACON_LOG_BYTES0))
BEACON_LOG_NOTE=""
if ((BEACON_LOG_GROWTH > 1000000)); then
    BEACON_LOG_NOTE="WARNING: beacon wrote $BEACON_LOG_GROWTH bytes of log during the runs (per-query logging with --log '$BEACON_LOG'?); its CPU/query includes that."
    log "$BEACON_LOG_NOTE"
fi
NSD_MEM=$(py rss "$NSD_PID")

# ----------------------------------------------------------------------------- summary
BEACON_VERSION=$("$BEACON_BIN" --version 2>/dev/null || echo unknown)
GIT_REV=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    GIT_REV="$GIT_REV+dirty"
fi
python3 - "$TMP/info.json" <<EOF
import json, sys
mem = json.loads('''$BEACON_MEM''')
after = json.loads('''$BEACON_MEM_AFTER''')
nsd = json.loads('''$NSD_MEM''')
axfr = json.load(open("$TMP/axfr.json"))
rec = axfr["Records"]
def n(table):
    return sum(len(v) for v in (rec.get(table) or {}).values())
names = len(set(rec.get("As") or {}) | set(rec.get("AAAAs") or {}) | set(rec.get("SRVs") or {}))
cpu_model = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu_model = line.split(":", 1)[1].strip()
        break
count = float("$REFRESH_COUNT")
info = {
    "when": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "nproc": $NPROC,
    "kernel": "$(uname -r)",
    "cpu_model": cpu_model,
    "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)",
    "dnsperf_version": "dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p')",
    "nsd_version": "$("$NSD" -v 2>&1 | head -n 1)",
    "beacon_version": "$BEACON_VERSION, binary built $(date -u -d "@$BIN_MTIME" +%Y-%m-%dT%H:%M:%SZ); repo HEAD now $GIT_REV",
    "stale_note": """$STALE_NOTE""",
    "tasks": int(float("$CATALOG_TASKS")),
    "beacon_rss_kb": mem["rss_kb"],
    "beacon_hwm_kb": mem["hwm_kb"],
    "beacon_rss_after_kb": after["rss_kb"],
    "nsd_pss_kb": nsd["tree_pss_kb"],
    "nsd_processes": nsd["processes"],
    "refreshes": int(count),
    "refresh_mean_ms": float("$REFRESH_SUM") / count * 1000 if count else 0,
    "records_desc": "%d names; %d A, %d AAAA, %d SRV records (%d in all) in /v1/axfr" % (
        names, n("As"), n("AAAAs"), n("SRVs"), n("As") + n("AAAAs") + n("SRVs")),
    "zone_desc": "NSD zone from /v1/axfr: $ZONE_DESC, plus SOA and NS",
    "load_desc": "dnsperf -c $CLIENTS -T 1 -q $OUTSTANDING -l $DURATION (closed loop), UDP, no EDNS, "
                 "$ROUNDS round(s) alternating beacon/NSD after a ${WARMUP} s warm-up each; "
                 "query mix 60% A, 15% AAAA, 20% SRV, 5% NXDOMAIN ($QUERY_LINES lines, seed 1)",
    "latency_desc": "dnsperf -Q $LAT_RATE -l $LAT_DURATION -v (open loop at a fixed rate); "
                    "percentiles over every query's latency as dnsperf reports it",
    "parity": json.loads('''$PARITY'''),
    "beacon_log_note": """$BEACON_LOG_NOTE""",
}
json.dump(info, open(sys.argv[1], "w"), indent=1)
EOF
py summary "$RESULTS" "$TMP/info.json"
