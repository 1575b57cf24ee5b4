#!/usr/bin/env python3
"""Summary tables for bench/vip.sh: medians over rounds and ratios to the direct connection.

Usage: vip_report.py RESULTS XDP_BENCH_OUTPUT

RESULTS has one line per run: `section=net|connect mode=M round=R test=T key=value ...`.
XDP_BENCH_OUTPUT is the output of ebpf/examples/xdp_bench.rs (its `median` line is read).
Standard library only.
"""

import statistics
import sys

GOAL_THROUGHPUT = 0.97  # the issue: within 3% of direct
GOAL_P99 = 1.10  # p99 no worse than direct by more than 10%


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            row = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if row:
                rows.append(row)
    return rows


def med(rows, section, mode, test, key):
    vals = [
        float(r[key])
        for r in rows
        if r["section"] == section and r["mode"] == mode and r["test"] == test and key in r
    ]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def ratio(v, base):
    return None if v is None or not base else v / base


def check(r, higher_is_better):
    if r is None:
        return ""
    if higher_is_better:
        return "ok" if r >= GOAL_THROUGHPUT else "MISS"
    return "ok" if r <= GOAL_P99 else "MISS"


def xdp_table(path):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return
    med_line = next((l for l in lines if l.startswith("median")), None)
    if not med_line:
        return
    base, v4, v6, nv, _ = (float(x) for x in med_line.split()[1:6])
    print("XDP program, ns per packet (BPF_PROG_TEST_RUN, median of rounds)")
    print(f"  {'program':<38} {'ns/pkt':>7} {'vs baseline':>12}")
    print(f"  {'baseline DNAT (1 hash lookup, rewrite)':<38} {base:>7.1f} {1.0:>11.2f}x")
    print(f"  {'beacon_xdp_lb IPv4 established flow':<38} {v4:>7.1f} {v4 / base:>11.2f}x")
    print(f"  {'beacon_xdp_lb IPv6 established flow':<38} {v6:>7.1f} {v6 / base:>11.2f}x")
    print(f"  {'beacon_xdp_lb non-VIP packet':<38} {nv:>7.1f} {nv / base:>11.2f}x")
    print(f"  {'Katran (published, issue #235)':<38} {'101-119':>7}")
    print(f"  goal <= 80 ns: {'ok' if v4 <= 80 else 'MISS'} (IPv4 flow {v4:.1f} ns)")
    print()


def net_table(rows):
    present = {r["mode"] for r in rows if r["section"] == "net"}
    modes = [m for m in ["direct", "nft", "beacon", "beacon-skb", "xdp-hook"] if m in present]
    if "direct" not in modes:
        return
    rounds = len({r["round"] for r in rows if r["section"] == "net"})
    print(f"Through a VIP over veth (median of {rounds} round(s); ratio = mode / direct)")
    hdr = f"  {'figure':<24}" + "".join(f"{m:>11}" for m in modes)
    hdr += "".join(f"{m + '/dir':>15}" for m in modes[1:]) + "  goal (beacon)"
    print(hdr)
    figures = [
        ("new TCP conns/s", "cps", "cps", True),
        ("keep-alive requests/s", "rps", "rps", True),
        ("keep-alive p50 us", "rps", "p50_us", False),
        ("keep-alive p99 us", "rps", "p99_us", False),
        ("UDP echoes/s", "udp", "pps", True),
    ]
    for name, test, key, higher in figures:
        vals = {m: med(rows, "net", m, test, key) for m in modes}
        digits = 0 if higher else 1
        line = f"  {name:<24}" + "".join(f"{fmt(vals[m], digits):>11}" for m in modes)
        rs = {m: ratio(vals[m], vals["direct"]) for m in modes[1:]}
        line += "".join(f"{fmt(rs[m], 3):>15}" for m in modes[1:])
        if key != "p50_us" and "beacon" in rs:
            line += f"  {check(rs['beacon'], higher)}"
        print(line)
    errors = sum(int(r.get("errors", 0)) for r in rows if r["section"] == "net")
    timeouts = sum(int(r.get("timeouts", 0)) for r in rows if r["section"] == "net")
    print(f"  (connection errors: {errors}; UDP receive timeouts: {timeouts})")
    print()


def connect_table(rows):
    modes = ["direct", "sock-lb", "direct-in-cg"]
    if not any(r["section"] == "connect" for r in rows):
        return
    print("connect() latency on loopback, us (median of rounds; ratio = mode / direct)")
    print(f"  {'mode':<40} {'p50':>8} {'p99':>8} {'mean':>8} {'p50/dir':>8} {'p99/dir':>8}")
    base = {k: med(rows, "connect", "direct", "connect", k) for k in ("p50_us", "p99_us")}
    labels = {
        "direct": "direct (no programs)",
        "sock-lb": "socket LB: connect(VIP) in the LB cgroup",
        "direct-in-cg": "connect(backend) in the LB cgroup",
    }
    for m in modes:
        p50 = med(rows, "connect", m, "connect", "p50_us")
        p99 = med(rows, "connect", m, "connect", "p99_us")
        mean = med(rows, "connect", m, "connect", "mean_us")
        print(
            f"  {labels[m]:<40} {fmt(p50, 2):>8} {fmt(p99, 2):>8} {fmt(mean, 2):>8}"
            f" {fmt(ratio(p50, base['p50_us']), 3):>8} {fmt(ratio(p99, base['p99_us']), 3):>8}"
        )
    r50 = ratio(med(rows, "connect", "sock-lb", "connect", "p50_us"), base["p50_us"])
    r99 = ratio(med(rows, "connect", "sock-lb", "connect", "p99_us"), base["p99_us"])
    ok50 = r50 is not None and r50 <= 1 / GOAL_THROUGHPUT
    ok99 = r99 is not None and r99 <= GOAL_P99
    print(
        f"  goal (socket LB p50 within 3%, p99 within 10%): p50 {'ok' if ok50 else 'MISS'},"
        f" p99 {'ok' if ok99 else 'MISS'}"
    )
    print()


def main():
    rows = parse(sys.argv[1])
    print("== summary")
    if len(sys.argv) > 2:
        xdp_table(sys.argv[2])
    net_table(rows)
    connect_table(rows)


if __name__ == "__main__":
    main()
