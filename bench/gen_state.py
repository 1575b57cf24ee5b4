#!/usr/bin/env python3
"""Generate a synthetic Mesos master `/master/state` document for benchmarks.

The document looks like a busy Marathon-style cluster:

* about 100 agents (`--agents`), each with pid `slave(1)@10.x.y.z:5051` and an IP-literal
  hostname, so that Beacon never has to resolve a name;
* a few frameworks (marathon, marathon-user, chronos-like batch, and two "service" frameworks),
  whose tasks are grouped into apps of several instances;
* a `ports` resource with one to three ranges per task;
* DiscoveryInfo with named ports on some tasks, container network (netinfo) IPs on some, and
  IPv6 netinfo addresses on a few.

Every address in the document is data only: nothing is ever sent to 10.x or fd00::/8. The only
real address is the leader, `master@127.0.0.1:PORT`, which must be the fake master serving it.

The output is deterministic for a given `--seed`.
"""

import argparse
import json
import random
import sys
import uuid

WORDS = (
    "api web auth cart search index billing user profile feed notify mail media thumb "
    "upload report metrics logs queue worker cache session admin gateway pricing stock "
    "orders payment ledger audit geo route ads reco chat push sms ratelimit config flags "
    "catalog inventory shipping tax invoice fraud ml train serve etl kafka-bridge redis "
    "memcached postgres mysql mongo elastic kibana grafana prom alert trace zipkin"
).split()

# (framework name, share of tasks, instances per app choices, DiscoveryInfo share, netinfo share)
FRAMEWORKS = (
    ("marathon", 0.62, (1, 2, 3, 3, 4, 5, 6, 8, 10), 0.25, 0.20),
    ("marathon-user", 0.15, (1, 2, 2, 3, 4, 5), 0.10, 0.30),
    ("metronome", 0.10, (1, 1, 1, 2), 0.0, 0.0),
    ("cassandra", 0.07, (3, 3, 5, 6), 0.50, 0.0),
    ("kafka", 0.06, (3, 3, 5), 0.50, 0.0),
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=10000, help="number of running tasks")
    p.add_argument("--agents", type=int, default=100, help="number of agents")
    p.add_argument("--leader-port", type=int, default=15050,
                   help="port of the fake master on 127.0.0.1 (the leader pid)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--ipv6-share", type=float, default=0.03,
                   help="share of tasks with an IPv6 netinfo address")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    return p.parse_args(argv)


def make_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def agent_ip(i):
    # 10.<1..>.<0..255>.<1..250>: data only.
    return "10.%d.%d.%d" % (1 + i // 62500, (i // 250) % 256, 1 + i % 250)


def make_agents(rng, count):
    cluster = "%08x-%04x-%04x-%04x-%012x" % tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
    agents = []
    for i in range(count):
        ip = agent_ip(i)
        agents.append({
            "id": "%s-S%d" % (cluster, i),
            "hostname": ip,
            "pid": "slave(1)@%s:5051" % ip,
            "active": True,
            "attributes": {"rack": "r%02d" % (i % 12)},
            "resources": {"cpus": 32, "mem": 128000, "disk": 1000000, "ports": "[31000-32000]"},
        })
    return agents


def port_ranges(rng, count):
    """`count` ports as a Mesos ranges string, contiguous or split."""
    start = rng.randrange(31000, 31990)
    ports = [start + k for k in range(count)]
    if count > 1 and rng.random() < 0.5:
        ports[-1] += rng.randrange(2, 8)
    ranges, lo, prev = [], ports[0], ports[0]
    for p in ports[1:]:
        if p == prev + 1:
            prev = p
            continue
        ranges.append((lo, prev))
        lo = prev = p
    ranges.append((lo, prev))
    return ports, "[" + ", ".join("%d-%d" % r for r in ranges) + "]"


def app_names(rng, count):
    """`count` distinct app names such as `search-api`, `billing-worker-3` or `prod.web`."""
    names, seen = [], set()
    while len(names) < count:
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        name = a if rng.random() < 0.15 else "%s-%s" % (a, b)
        if rng.random() < 0.3:
            name = "%s-%d" % (name, rng.randrange(1, 50))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def make_task(rng, fw_id, app, agent, discovery_share, netinfo_share, ipv6_share, counter):
    ts = 1700000000.0 + counter * 0.37
    task_id = "%s.%s" % (app.replace("/", "_"), make_uuid(rng))
    nports = rng.choice((1, 1, 2, 2, 3))
    port_list, ranges = port_ranges(rng, nports)
    status = {"state": "TASK_RUNNING", "timestamp": ts}
    if rng.random() < netinfo_share or rng.random() < ipv6_share:
        addrs = []
        if rng.random() >= ipv6_share:
            addrs.append({"protocol": "IPv4",
                          "ip_address": "10.%d.%d.%d" % (200 + counter % 40, (counter // 250) % 256,
                                                         1 + counter % 250)})
        if rng.random() < ipv6_share * 3 or not addrs:
            addrs.append({"protocol": "IPv6",
                          "ip_address": "fd01:b::%x:%x" % (counter // 65536 + 1, counter % 65536)})
        status["container_status"] = {
            "container_id": {"value": make_uuid(rng)},
            "network_infos": [{"ip_addresses": addrs, "name": "dcos"}],
        }
    task = {
        "id": task_id,
        "name": app,
        "framework_id": fw_id,
        "executor_id": "",
        "slave_id": agent["id"],
        "state": "TASK_RUNNING",
        "resources": {"cpus": 0.5, "mem": 512, "disk": 0, "ports": ranges},
        "statuses": [status],
        "labels": [{"key": "owner", "value": "team-%d" % (counter % 17)}],
    }
    if rng.random() < discovery_share:
        pnames = ("http", "https", "admin", "grpc", "metrics")
        task["discovery"] = {
            "visibility": "CLUSTER",
            "name": app,
            "ports": {"ports": [
                {"number": p, "protocol": "udp" if k == 2 and rng.random() < 0.3 else "tcp",
                 "name": pnames[k]}
                for k, p in enumerate(port_list)
            ]},
            "labels": {"labels": [{"key": "env", "value": "prod"}]},
        }
    return task


def make_state(args):
    rng = random.Random(args.seed)
    agents = make_agents(rng, args.agents)
    master_id = make_uuid(rng)
    frameworks = []
    remaining = args.tasks
    counter = 0
    for idx, (fw_name, share, instances, disc, netinfo) in enumerate(FRAMEWORKS):
        want = remaining if idx == len(FRAMEWORKS) - 1 else min(remaining, round(args.tasks * share))
        remaining -= want
        fw_id = "%s-%04d" % (master_id, idx)
        sizes = []
        while sum(sizes) < want:
            sizes.append(min(rng.choice(instances), want - sum(sizes)))
        names = app_names(rng, len(sizes))
        tasks = []
        for app, size in zip(names, sizes):
            for _ in range(size):
                agent = rng.choice(agents)
                tasks.append(make_task(rng, fw_id, app, agent, disc, netinfo,
                                       args.ipv6_share, counter))
                counter += 1
        frameworks.append({
            "id": fw_id,
            "name": fw_name,
            "pid": "scheduler-%s@10.0.0.%d:%d" % (make_uuid(rng), 10 + idx, 40000 + idx),
            "hostname": "10.0.0.%d" % (10 + idx),
            "active": True,
            "role": "*",
            "user": "root",
            "tasks": tasks,
            "completed_tasks": [],
        })
    return {
        "version": "1.11.0",
        "id": master_id,
        "pid": "master@127.0.0.1:%d" % args.leader_port,
        "hostname": "127.0.0.1",
        "leader": "master@127.0.0.1:%d" % args.leader_port,
        "activated_slaves": len(agents),
        "deactivated_slaves": 0,
        "slaves": agents,
        "frameworks": frameworks,
        "completed_frameworks": [],
        "flags": {"port": str(args.leader_port)},
    }


def main(argv):
    args = parse_args(argv)
    if args.tasks < 1 or args.agents < 1:
        sys.exit("gen_state.py: --tasks and --agents must be at least 1")
    state = make_state(args)
    text = json.dumps(state, separators=(",", ":"))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    n = sum(len(f["tasks"]) for f in state["frameworks"])
    print("gen_state.py: %d tasks, %d frameworks, %d agents" %
          (n, len(state["frameworks"]), len(state["slaves"])), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
