#!/usr/bin/env python3
"""Freshness benchmark: from a task appearing in the master's state to its name answered by
every one of 5 agents, with the master's event stream and with polling, in one run; and the
bytes each agent reads from the master per minute.

One `beacon fake-master` serves a generated state (`gen_state.py`, 10,000 tasks by default) and
streams its changes to subscribers. Five `beacon agent`s follow it by the event stream
(`[mesos_master] events = true`), five more poll `/master/state` every `RefreshSeconds` (60 by
default, Mesos-DNS's default). The script then adds `--tasks` new tasks, one every `--every`
seconds (each a rewrite of the state file, renamed into place), and for each task records when
every agent of a group first answers its name (UDP A query). It prints p50, p99 and max per
group, and, from `beacon_catalog_bytes_total`, what one agent read from the master per minute
over the run.

    python3 bench/freshness.py                 # 10,000 tasks, 100 new ones, polling at 60 s
    python3 bench/freshness.py --quick         # 1,000 tasks, 20 new ones, polling at 10 s

Bounded: at most `--max-seconds` in all (default 600) and only the processes it starts, which
it stops by PID on exit; every address is 127.0.0.1; the temporary directory is removed unless
KEEP_TMP=1.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbench  # noqa: E402  (the house helpers: free ports, DNS queries, percentiles)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENTS = 5
LOG = "warn"


binary = dnsbench.beacon_binary


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--state-tasks", type=int, default=10000)
    p.add_argument("--tasks", type=int, default=100, help="new tasks to time")
    p.add_argument("--every", type=float, default=0.5, help="seconds between new tasks")
    p.add_argument("--refresh", type=int, default=60, help="RefreshSeconds of the pollers")
    p.add_argument("--agents", type=int, default=AGENTS, help="agents per group")
    p.add_argument("--max-seconds", type=int, default=600)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.state_tasks, args.tasks, args.refresh = 1000, 20, 10
    return args


class Run:
    """The processes this run started, stopped by PID at the end."""

    def __init__(self, tmp):
        self.tmp, self.procs = tmp, []

    def spawn(self, argv, log):
        with open(os.path.join(self.tmp, log), "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "RUST_LOG": LOG})
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_agent(run, name, master_port, events, refresh):
    dns, http = dnsbench.free_port(), dnsbench.free_port()
    path = os.path.join(run.tmp, name + ".toml")
    with open(path, "w") as f:
        f.write(f"""[mesos_dns]
masters = ["127.0.0.1:{master_port}"]
refresh_seconds = {refresh}
listener = "127.0.0.1"
port = {dns}
http_listener = "127.0.0.1"
http_port = {http}
external_on = false
[mesos_master]
events = {"true" if events else "false"}
[vip]
data_plane = "off"
""")
    proc = run.spawn([binary(), "agent", "--config", path, "--log", LOG], name + ".log")
    return {"name": name, "dns": dns, "http": http, "proc": proc}


def write_state(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.rename(tmp, path)


def new_task(state, i):
    """A running copy of the first framework's first running task, named fresh{i}."""
    fw = next(f for f in state["frameworks"] if any(t["state"] == "TASK_RUNNING" for t in f["tasks"]))
    task = json.loads(json.dumps(next(t for t in fw["tasks"] if t["state"] == "TASK_RUNNING")))
    task["id"], task["name"] = f"fresh-{i}", f"fresh{i}"
    task.pop("discovery", None)
    fw["tasks"].append(task)
    return f"fresh{i}.{fw['name']}.mesos."


def answered(agent, name):
    r = dnsbench.ask(agent["dns"], name, "A", timeout=0.2, tries=1)
    return bool(r and r["rcode"] == "NOERROR" and r.get("answers"))


def watch_group(agents, added, times, done, deadline):
    """Records, for each added task, when every agent of the group first answers it."""
    left = {}
    while time.monotonic() < deadline:
        for name in list(added):
            if name not in left and name not in times:
                left[name] = set(range(len(agents)))
        if done.is_set() and not left:
            return
        for name in list(left):
            for k in list(left[name]):
                if answered(agents[k], name):
                    left[name].discard(k)
            if not left[name]:
                times[name] = time.monotonic() - added[name]
                del left[name]
        time.sleep(0.002)


def measure(args, state, path, groups, deadline):
    """Adds the tasks; one thread per group watches its agents. Returns, per group, each task's
    time until all its agents answer, and how many were never answered everywhere."""
    added, done = {}, threading.Event()
    times = {g: {} for g in groups}
    watchers = [threading.Thread(target=watch_group, args=(agents, added, times[g], done, deadline))
                for g, agents in groups.items()]
    for w in watchers:
        w.start()
    for i in range(args.tasks):
        if time.monotonic() >= deadline:
            break
        name = new_task(state, i)
        write_state(path, state)
        added[name] = time.monotonic()
        time.sleep(args.every)
    done.set()
    for w in watchers:
        w.join()
    unanswered = sum(len(added) - len(t) for t in times.values())
    return {g: list(t.values()) for g, t in times.items()}, unanswered


def bytes_read(agents):
    """What the agents of a group read from the master so far, on average."""
    return sum(dnsbench.metric(f"http://127.0.0.1:{a['http']}/metrics", "beacon_catalog_bytes_total")
               for a in agents) / len(agents)


def publish_ms(agents):
    """Mean time per catalog update (fetch or events, generation, zone swap) of a group."""
    total = count = 0.0
    for a in agents:
        url = f"http://127.0.0.1:{a['http']}/metrics"
        total += dnsbench.metric(url, "beacon_catalog_refresh_seconds_sum")
        count += dnsbench.metric(url, "beacon_catalog_refresh_seconds_count")
    return 1000 * total / count if count else 0.0


def report(times, unanswered, minutes, groups, read_before):
    print(f"{'group':<10} {'tasks':>5} {'p50 s':>8} {'p99 s':>8} {'max s':>8} "
          f"{'KiB/min/agent':>14} {'ms/update':>10}")
    for g, ts in times.items():
        ts = sorted(ts)
        kib = (bytes_read(groups[g]) - read_before[g]) / 1024 / minutes
        cost = publish_ms(groups[g])
        if ts:
            print(f"{g:<10} {len(ts):>5} {dnsbench.percentile(ts, 50):>8.3f} "
                  f"{dnsbench.percentile(ts, 99):>8.3f} {ts[-1]:>8.3f} {kib:>14.0f} {cost:>10.0f}")
        else:
            print(f"{g:<10} {0:>5} {'-':>8} {'-':>8} {'-':>8} {kib:>14.0f} {cost:>10.0f}")
    if unanswered:
        print(f"{unanswered} tasks not answered everywhere before the deadline")


def main(argv):
    args = parse_args(argv)
    if not os.path.exists(binary()):
        dnsbench.die(f"no binary at {binary()}: cargo build --release first")
    deadline = time.monotonic() + args.max_seconds
    tmp = tempfile.mkdtemp(prefix="beacon-fresh-")
    run = Run(tmp)
    try:
        port = dnsbench.free_port()
        path = os.path.join(tmp, "state.json")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_state.py"), "--tasks",
                        str(args.state_tasks), "--leader-port", str(port), "-o", path], check=True)
        with open(path) as f:
            state = json.load(f)
        master = run.spawn([binary(), "fake-master", "--state", path, "--listen",
                            f"127.0.0.1:{port}"], "master.log")
        dnsbench.wait_http(f"http://127.0.0.1:{port}/master/state-summary", 30, master.pid)
        groups = {
            "stream": [start_agent(run, f"stream{k}", port, True, args.refresh)
                       for k in range(args.agents)],
            f"poll{args.refresh}s": [start_agent(run, f"poll{k}", port, False, args.refresh)
                                     for k in range(args.agents)],
        }
        for agents in groups.values():
            for a in agents:
                dnsbench.wait_http(f"http://127.0.0.1:{a['http']}/readyz", 120, a["proc"].pid)
        read_before = {g: bytes_read(agents) for g, agents in groups.items()}
        start = time.monotonic()
        times, unanswered = measure(args, state, path, groups, deadline)
        minutes = (time.monotonic() - start) / 60
        print(f"state {args.state_tasks} tasks; {args.tasks} new tasks, one every {args.every} s; "
              f"{args.agents} agents per group; {minutes * 60:.0f} s measured")
        report(times, unanswered, minutes, groups, read_before)
    finally:
        run.stop()
        if os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
