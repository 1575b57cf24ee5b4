#!/usr/bin/env python3
"""Helpers for bench/dns.sh (standard library only; loopback only).

Subcommands:
  free-port                     print a port free for both TCP and UDP on 127.0.0.1
  wait-http URL [--timeout S] [--pid PID]
                                wait until URL answers 200 (fails early if PID dies)
  get URL OUT                   GET URL into OUT (fails on non-200)
  metric URL NAME               print the value of a Prometheus sample NAME (0 if absent)
  wait-dns PORT NAME [--timeout S] [--pid PID]
                                wait until 127.0.0.1:PORT answers an SOA query for NAME
                                with NOERROR (fails early if PID dies)
  queries AXFR OUT [--count N] [--seed S]
                                write a dnsperf query file with the benchmark mix
  cpu-ticks PID                 utime+stime (clock ticks) of PID and all its descendants
  cpu-stat                      machine-wide jiffies (total, idle, steal) from /proc/stat
  wait-quiet [--max S] [--threshold PCT]
                                wait up to S seconds for a 1 s window with the machine at most
                                PCT % busy (others' builds); print the last window's busy %
  rss PID                       VmRSS and Pss (kB) of PID, and summed over its descendants
  dnsperf-parse FILE            parse dnsperf's statistics into JSON
  latency FILE                  percentiles of the per-query latencies in dnsperf -v output
  parity AXFR PORT_A PORT_B QUERIES [--n N]
                                compare answers of two servers on a sample of the queries
  summary RESULTS.jsonl INFO.json
                                print the final summary table
"""

import argparse
import json
import os
import random
import re
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

LOOPBACK = "127.0.0.1"


def beacon_binary():
    """The release binary: $BEACON_BIN, else target/release/beacon (under $CARGO_TARGET_DIR)."""
    if os.environ.get("BEACON_BIN"):
        return os.environ["BEACON_BIN"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    return os.path.join(target, "release", "beacon")


def die(msg):
    print("dnsbench.py: " + msg, file=sys.stderr)
    sys.exit(1)


def alive(pid):
    if not pid:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def only_loopback(url):
    host = urllib.request.urlparse(url).hostname
    if host not in (LOOPBACK, "localhost"):
        die("refusing non-loopback URL %s" % url)


# ---------------------------------------------------------------- ports, HTTP


def free_port():
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((LOOPBACK, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
    die("no free port found")


def http_get(url, timeout=5.0):
    only_loopback(url)
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(url, timeout, pid):
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive(pid):
            die("process %d exited while waiting for %s" % (pid, url))
        try:
            status, _ = http_get(url, timeout=2)
            if status == 200:
                return
            last = "HTTP %d" % status
        except urllib.error.HTTPError as e:
            last = "HTTP %d" % e.code
        except (OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.2)
    die("timed out after %ds waiting for %s (last: %s)" % (timeout, url, last))


def metric(url, name):
    _, body = http_get(url)
    pat = re.compile(r"^%s(?:\{[^}]*\})?\s+(\S+)$" % re.escape(name))
    for line in body.decode().splitlines():
        m = pat.match(line)
        if m:
            return float(m.group(1))
    return 0.0


# ---------------------------------------------------------------- DNS wire


TYPES = {"A": 1, "NS": 2, "SOA": 6, "AAAA": 28, "SRV": 33}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def make_query(qid, name, qtype):
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + encode_name(name) + struct.pack(
        ">HH", TYPES[qtype], 1)


def read_name(msg, off):
    labels, jumped, end = [], False, off
    for _ in range(128):
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            ptr = struct.unpack(">H", msg[off:off + 2])[0] & 0x3FFF
            if not jumped:
                end = off + 2
            jumped, off = True, ptr
            continue
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    return ".".join(labels) + ".", (end if jumped else off)


def parse_response(msg):
    """(rcode, tc, aa, answers as a sorted tuple, counts, size)."""
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        name, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        if rtype == 1:
            value = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            value = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 33:
            prio, weight, port = struct.unpack(">HHH", rdata[:6])
            target, _ = read_name(msg, off + 6)
            value = "%d %d %d %s" % (prio, weight, port, target)
        else:
            value = rdata.hex()
        answers.append((name, TYPE_NAMES.get(rtype, str(rtype)), value))
        off += rdlen
    return {
        "id": qid,
        "rcode": RCODES.get(flags & 0xF, str(flags & 0xF)),
        "tc": bool(flags & 0x0200),
        "aa": bool(flags & 0x0400),
        "answers": tuple(sorted(answers)),
        "counts": (an, ns, ar),
        "size": len(msg),
    }


def ask(port, name, qtype, timeout=1.0, tries=3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        for _ in range(tries):
            qid = random.randrange(65536)
            s.sendto(make_query(qid, name, qtype), (LOOPBACK, port))
            try:
                while True:
                    data, _ = s.recvfrom(65535)
                    r = parse_response(data)
                    if r["id"] == qid:
                        return r
            except socket.timeout:
                continue
    finally:
        s.close()
    return None


def wait_dns(port, name, timeout, pid):
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive(pid):
            die("process %d exited while waiting for DNS on port %d" % (pid, port))
        r = ask(port, name, "SOA", timeout=0.5, tries=1)
        if r and r["rcode"] == "NOERROR":
            return
        if r:
            last = r["rcode"]
        time.sleep(0.2)
    die("timed out after %ds waiting for DNS on 127.0.0.1:%d (last: %s)" % (timeout, port, last))


# ---------------------------------------------------------------- query mix


def load_axfr(path):
    with open(path) as f:
        axfr = json.load(f)
    rec = axfr.get("Records") or {}
    return axfr, rec.get("As") or {}, rec.get("AAAAs") or {}, rec.get("SRVs") or {}


def make_queries(axfr_path, out, count, seed):
    """The mix: 60% A, 15% AAAA, 20% SRV, 5% NXDOMAIN, drawn with a fixed seed.

    * A: 3 in 4 on per-app names (`app.framework.domain.`, what clients resolve), 1 in 4 on any
      other A name of the axfr (per-task canonical names, agent and leader names).
    * AAAA: 1 in 3 on names that have AAAA records, 2 in 3 on A-only app names (NOERROR/NODATA,
      as a dual-stack getaddrinfo() produces).
    * SRV: on `_app._tcp.framework.domain.` names (and `_udp` where DiscoveryInfo says so).
    * NXDOMAIN: random labels under a framework's subdomain.
    """
    axfr, a, aaaa, srv = load_axfr(axfr_path)
    domain = axfr["Domain"].rstrip(".").lower()
    dlabels = domain.count(".") + 1
    rng = random.Random(seed)

    def labels(n):
        return n.rstrip(".").count(".") + 1 - dlabels

    a_names = sorted(a)
    # `app.framework.domain.`, not the per-task `app-hash5-sN.framework.domain.` names.
    per_task = re.compile(r"-[a-z0-9]{5}-s[0-9]+\.")
    app_names = [n for n in a_names if labels(n) == 2 and not per_task.search(n)]
    app_set = set(app_names)
    other_a = [n for n in a_names if n not in app_set] or app_names
    aaaa_names = sorted(aaaa) or app_names
    # `_app._tcp.framework.domain.` (not the `.slave.` variants nor DiscoveryInfo's
    # `_port._app._tcp.framework.domain.` names).
    srv_names = sorted(n for n in srv if labels(n) == 3 and n.startswith("_")
                       and n.split(".")[1] in ("_tcp", "_udp"))
    if not app_names or not srv_names:
        die("axfr has no app A names or no _app._tcp SRV names: is the state loaded?")
    frameworks = sorted({n.rstrip(".").split(".")[1] for n in app_names})

    mix = (("A", 60), ("AAAA", 15), ("SRV", 20), ("NX", 5))
    lines, tally = [], {k: 0 for k, _ in mix}
    kinds = [k for k, w in mix for _ in range(w)]
    for _ in range(count):
        kind = rng.choice(kinds)
        tally[kind] += 1
        if kind == "A":
            name = rng.choice(app_names) if rng.random() < 0.75 else rng.choice(other_a)
            lines.append("%s A" % name)
        elif kind == "AAAA":
            name = rng.choice(aaaa_names) if rng.random() < 1 / 3 else rng.choice(app_names)
            lines.append("%s AAAA" % name)
        elif kind == "SRV":
            lines.append("%s SRV" % rng.choice(srv_names))
        else:
            fw = rng.choice(frameworks)
            lines.append("nx-%08x.%s.%s. A" % (rng.getrandbits(32), fw, domain))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("queries: %d lines (A %d, AAAA %d, SRV %d, NXDOMAIN %d) from %d app names, "
          "%d other A names, %d AAAA names, %d SRV names" % (
              count, tally["A"], tally["AAAA"], tally["SRV"], tally["NX"], len(app_names),
              len(other_a), len(aaaa), len(srv_names)))


# ---------------------------------------------------------------- /proc


def descendants(pid):
    """pid and every descendant, from /proc/*/stat parent links."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_stat():
    """Aggregate jiffies from /proc/stat: total, idle (idle+iowait) and steal."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    fields += [0] * (8 - len(fields))
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    return {"total": sum(fields[:8]), "idle": fields[3] + fields[4], "steal": fields[7]}


def wait_quiet(max_wait, threshold):
    """Wait (at most max_wait s) for a 1 s window in which the machine is busier than
    `threshold` % of all cores; print the busy % of the last window."""
    deadline = time.monotonic() + max_wait
    while True:
        a = cpu_stat()
        time.sleep(1.0)
        b = cpu_stat()
        total = max(1, b["total"] - a["total"])
        busy = 100.0 * (total - (b["idle"] - a["idle"])) / total
        if busy <= threshold or time.monotonic() >= deadline:
            print("%.0f" % busy)
            return


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss(pid):
    procs = descendants(pid)
    return {
        "rss_kb": status_kb(pid, "VmRSS"),
        "hwm_kb": status_kb(pid, "VmHWM"),
        "pss_kb": pss_kb(pid),
        "tree_rss_kb": sum(status_kb(p, "VmRSS") for p in procs),
        "tree_pss_kb": sum(pss_kb(p) for p in procs),
        "processes": len(procs),
    }


# ---------------------------------------------------------------- dnsperf output


def dnsperf_parse(path):
    with open(path, errors="replace") as f:
        text = f.read()

    def num(pattern, cast=float, default=None):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else default

    out = {
        "sent": num(r"Queries sent:\s+(\d+)", int, 0),
        "completed": num(r"Queries completed:\s+(\d+)", int, 0),
        "lost": num(r"Queries lost:\s+(\d+)", int, 0),
        "interrupted": num(r"Queries interrupted:\s+(\d+)", int, 0),
        "qps": num(r"Queries per second:\s+([\d.]+)", float, 0.0),
        "avg_latency_ms": num(r"Average Latency \(s\):\s+([\d.]+)", float, 0.0) * 1000,
        "max_latency_ms": num(r"Average Latency \(s\):.*max ([\d.]+)", float, 0.0) * 1000,
        "latency_sd_ms": num(r"Latency StdDev \(s\):\s+([\d.]+)", float, 0.0) * 1000,
        "resp_size": num(r"Average packet size:.*response (\d+)", int, 0),
        "run_time_s": num(r"Run time \(s\):\s+([\d.]+)", float, 0.0),
    }
    m = re.search(r"Response codes:\s+(.*)", text)
    out["rcodes"] = {}
    if m:
        for code, n in re.findall(r"([A-Z]+) (\d+)", m.group(1)):
            out["rcodes"][code] = int(n)
    warnings = [l.strip() for l in text.splitlines()
                if "Warning" in l or "Error" in l or "error" in l]
    out["warnings"] = sorted(set(warnings))[:5]
    if out["sent"] == 0:
        die("no dnsperf statistics in %s:\n%s" % (path, text[-2000:]))
    return out


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency(path):
    """Percentiles (ms) of `> RCODE name type seconds` lines of dnsperf -v."""
    values, timeouts = [], 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith(">"):
                continue
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "T":
                timeouts += 1
                continue
            try:
                values.append(float(parts[-1]) * 1000)
            except (ValueError, IndexError):
                continue
    values.sort()
    return {
        "samples": len(values),
        "timeouts": timeouts,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "p999_ms": percentile(values, 99.9),
        "mean_ms": sum(values) / len(values) if values else 0.0,
    }


# ---------------------------------------------------------------- parity


def parity(axfr_path, port_a, port_b, queries, n, seed=7):
    with open(queries) as f:
        lines = sorted({l.strip() for l in f if l.strip()})
    rng = random.Random(seed)
    sample = rng.sample(lines, min(n, len(lines)))
    same = diff_rcode = diff_answers = trunc_a = trunc_b = lost = 0
    size_a = size_b = 0
    examples = []
    for line in sample:
        name, qtype = line.split()
        ra, rb = ask(port_a, name, qtype), ask(port_b, name, qtype)
        if ra is None or rb is None:
            lost += 1
            continue
        size_a += ra["size"]
        size_b += rb["size"]
        trunc_a += ra["tc"]
        trunc_b += rb["tc"]
        if ra["rcode"] != rb["rcode"]:
            diff_rcode += 1
            examples.append("%s: rcode %s vs %s" % (line, ra["rcode"], rb["rcode"]))
        elif ra["tc"] or rb["tc"] or ra["answers"] == rb["answers"]:
            same += 1
        else:
            diff_answers += 1
            examples.append("%s: %d vs %d answers" % (line, len(ra["answers"]),
                                                       len(rb["answers"])))
    k = max(1, len(sample) - lost)
    return {
        "queries": len(sample), "same": same, "rcode_differs": diff_rcode,
        "answers_differ": diff_answers, "no_answer": lost,
        "tc_a": trunc_a, "tc_b": trunc_b,
        "avg_size_a": size_a / k, "avg_size_b": size_b / k,
        "examples": examples[:5],
    }


# ---------------------------------------------------------------- summary


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def median(xs):
    xs = sorted(xs)
    if not xs:
        return 0.0
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def summary(results_path, info_path):
    runs = [json.loads(l) for l in open(results_path) if l.strip()]
    info = json.load(open(info_path))
    servers = ("beacon", "nsd")
    agg = {}
    for s in servers:
        thr = [r for r in runs if r["server"] == s and r["kind"] == "throughput"]
        lat = [r for r in runs if r["server"] == s and r["kind"] == "latency"]
        cpu = [r["cpu_us_per_query"] for r in thr if r.get("cpu_us_per_query")]
        agg[s] = {
            "qps": mean([r["qps"] for r in thr]),
            "qps_all": [r["qps"] for r in thr],
            "avg_ms": mean([r["avg_latency_ms"] for r in thr]),
            "cpu_us": mean(cpu),
            "cpu_all": cpu,
            "lost": sum(r["lost"] for r in thr + lat),
            "sent": sum(r["sent"] for r in thr + lat),
            "resp_size": mean([r["resp_size"] for r in thr]),
            "lat_avg_ms": mean([r["avg_latency_ms"] for r in lat]),
            # Percentiles: the median over rounds, so that one round hit by another user's build
            # does not dominate (every round is listed below).
            "p50_ms": median([r["p50_ms"] for r in lat]),
            "p99_ms": median([r["p99_ms"] for r in lat]),
            "p999_ms": median([r["p999_ms"] for r in lat]),
            "p99_all": [r["p99_ms"] for r in lat],
            "other_all": [r.get("other_pct", 0) for r in thr + lat],
            "lat_qps": mean([r["qps"] for r in lat]),
            "rounds": len(thr),
        }
    b, n = agg["beacon"], agg["nsd"]

    def ratio(x, y):
        return "%.2f" % (x / y) if y else "n/a"

    w = print
    w("")
    w("=" * 100)
    w("SUMMARY  beacon vs NSD, loopback UDP, %s" % info.get("when", ""))
    w("=" * 100)
    w("machine: %s cores (%s), kernel %s, load average at start %s" % (
        info.get("nproc"), info.get("cpu_model"), info.get("kernel"), info.get("loadavg")))
    w("NOTE: the machine is a shared, noisy 2-vCPU VM and dnsperf runs on the same cores as the "
      "server,")
    w("      so qps is bounded by the load generator and contention; compare CPU us/query and "
      "the ratios,")
    w("      and expect run-to-run spread of 10-30%.")
    w("      'other load' is the CPU share (of all cores) used by neither the server nor dnsperf "
      "during a run.")
    w("versions: %s; %s; beacon %s" % (info.get("dnsperf_version"), info.get("nsd_version"),
                                        info.get("beacon_version")))
    w("load: %s" % info.get("load_desc"))
    w("latency: %s; p50/p99/p99.9 are medians over rounds" % info.get("latency_desc"))
    w("zone: %s" % info.get("zone_desc"))
    w("")
    hdr = "%-8s %12s %10s %10s %10s %10s %10s %10s %8s %9s" % (
        "server", "qps(mean)", "avg ms", "CPU us/q", "fixed-rate", "p50 ms", "p99 ms",
        "p99.9 ms", "resp B", "lost")
    w(hdr)
    w("-" * len(hdr))
    for s in servers:
        a = agg[s]
        w("%-8s %12.0f %10.3f %10.2f %10.0f %10.3f %10.3f %10.3f %8.0f %9s" % (
            s, a["qps"], a["avg_ms"], a["cpu_us"], a["lat_qps"], a["p50_ms"], a["p99_ms"],
            a["p999_ms"], a["resp_size"], "%d/%d" % (a["lost"], a["sent"])))
    w("")
    for s in servers:
        w("  %-7s per round: qps %s; CPU us/query %s; fixed-rate p99 ms %s; other load %% %s" % (
            s, ", ".join("%.0f" % q for q in agg[s]["qps_all"]),
            ", ".join("%.2f" % c for c in agg[s]["cpu_all"]),
            ", ".join("%.3f" % c for c in agg[s]["p99_all"]),
            ", ".join("%.0f" % c for c in agg[s]["other_all"])))
    w("")
    w("ratios beacon/NSD: qps %s, CPU us/query %s, p99 (fixed rate) %s, avg latency (saturated) %s"
      % (ratio(b["qps"], n["qps"]), ratio(b["cpu_us"], n["cpu_us"]),
         ratio(b["p99_ms"], n["p99_ms"]), ratio(b["avg_ms"], n["avg_ms"])))
    if b["cpu_us"]:
        w("implied ceiling on %s cores at 100%% CPU: beacon ~%.0f qps, NSD ~%.0f qps" % (
            info.get("nproc"), int(info.get("nproc", 1)) * 1e6 / b["cpu_us"],
            int(info.get("nproc", 1)) * 1e6 / n["cpu_us"] if n["cpu_us"] else 0))
    w("")
    w("beacon with %s tasks loaded: VmRSS %.1f MB (VmHWM %.1f MB) after %d refreshes; "
      "after the load %.1f MB" % (
          info.get("tasks"), info.get("beacon_rss_kb", 0) / 1024,
          info.get("beacon_hwm_kb", 0) / 1024, info.get("refreshes", 0),
          info.get("beacon_rss_after_kb", 0) / 1024))
    w("beacon catalog refresh (fetch+parse+publish, %s tasks): mean %.1f ms over %d refreshes "
      "(beacon_catalog_refresh_seconds_sum/_count)" % (
          info.get("tasks"), info.get("refresh_mean_ms", 0), info.get("refreshes", 0)))
    w("records: %s" % info.get("records_desc"))
    w("NSD memory (Pss summed over its %s processes): %.1f MB" % (
        info.get("nsd_processes", "?"), info.get("nsd_pss_kb", 0) / 1024))
    if info.get("parity"):
        p = info["parity"]
        w("parity check (%d distinct queries, beacon vs NSD): %d same, %d rcode differs, "
          "%d answers differ, TC %d vs %d, avg response %.0f B vs %.0f B" % (
              p["queries"], p["same"], p["rcode_differs"], p["answers_differ"], p["tc_a"],
              p["tc_b"], p["avg_size_a"], p["avg_size_b"]))
        for e in p["examples"]:
            w("    differs: %s" % e)
    w("")
    if info.get("stale_note"):
        w(info["stale_note"])
    if info.get("beacon_log_note"):
        w(info["beacon_log_note"])
    w("reference (not re-measured; research/mesos-dns.md section 8): Mesos-DNS on this kind of "
      "VM, dnsperf -c 10,")
    w("  mixed A/AAAA/SRV UDP: 50,094 qps (1.57 ms avg) and 67,709 qps (1.29 ms avg); "
      "fixed 20k qps: 1.66 ms avg; RSS 14 MB")
    w("  (with only 102-225 names, not %s tasks)." % info.get("tasks"))
    for s in servers:
        warn = sorted({x for r in runs if r["server"] == s for x in r.get("warnings", [])})
        if warn:
            w("dnsperf warnings for %s: %s" % (s, "; ".join(warn[:5])))
    w("=" * 100)


# ---------------------------------------------------------------- main


def main(argv):
    p = argparse.ArgumentParser(description="helpers for bench/dns.sh")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    s = sub.add_parser("wait-http")
    s.add_argument("url")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--pid", type=int, default=0)
    s = sub.add_parser("get")
    s.add_argument("url")
    s.add_argument("out")
    s = sub.add_parser("metric")
    s.add_argument("url")
    s.add_argument("name")
    s = sub.add_parser("wait-dns")
    s.add_argument("port", type=int)
    s.add_argument("name")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--pid", type=int, default=0)
    s = sub.add_parser("queries")
    s.add_argument("axfr")
    s.add_argument("out")
    s.add_argument("--count", type=int, default=100000)
    s.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("cpu-ticks")
    s.add_argument("pid", type=int)
    sub.add_parser("cpu-stat")
    s = sub.add_parser("wait-quiet")
    s.add_argument("--max", type=float, default=20)
    s.add_argument("--threshold", type=float, default=10)
    s = sub.add_parser("rss")
    s.add_argument("pid", type=int)
    s = sub.add_parser("dnsperf-parse")
    s.add_argument("file")
    s = sub.add_parser("latency")
    s.add_argument("file")
    s = sub.add_parser("parity")
    s.add_argument("axfr")
    s.add_argument("port_a", type=int)
    s.add_argument("port_b", type=int)
    s.add_argument("queries")
    s.add_argument("--n", type=int, default=300)
    s = sub.add_parser("summary")
    s.add_argument("results")
    s.add_argument("info")
    a = p.parse_args(argv)

    if a.cmd == "free-port":
        print(free_port())
    elif a.cmd == "wait-http":
        wait_http(a.url, a.timeout, a.pid)
    elif a.cmd == "get":
        try:
            status, body = http_get(a.url, timeout=30)
        except (OSError, urllib.error.HTTPError) as e:
            die("GET %s failed: %s" % (a.url, e))
        with open(a.out, "wb") as f:
            f.write(body)
    elif a.cmd == "metric":
        print(repr(metric(a.url, a.name)))
    elif a.cmd == "wait-dns":
        wait_dns(a.port, a.name, a.timeout, a.pid)
    elif a.cmd == "queries":
        make_queries(a.axfr, a.out, a.count, a.seed)
    elif a.cmd == "cpu-ticks":
        print(cpu_ticks(a.pid))
    elif a.cmd == "cpu-stat":
        print(json.dumps(cpu_stat()))
    elif a.cmd == "wait-quiet":
        wait_quiet(a.max, a.threshold)
    elif a.cmd == "rss":
        print(json.dumps(rss(a.pid)))
    elif a.cmd == "dnsperf-parse":
        print(json.dumps(dnsperf_parse(a.file)))
    elif a.cmd == "latency":
        print(json.dumps(latency(a.file)))
    elif a.cmd == "parity":
        print(json.dumps(parity(a.axfr, a.port_a, a.port_b, a.queries, a.n)))
    elif a.cmd == "summary":
        summary(a.results, a.info)


if __name__ == "__main__":
    main(sys.argv[1:])
