#!/usr/bin/env python3
"""Restart benchmark: DNS queries lost while the agent is killed (`kill -9`) or restarted
(SIGTERM), with the agent binding its own sockets (before) and with the sockets held by a
service manager and handed over by socket activation (after, `packaging/beacon.socket`).

One `beacon fake-master` serves the conformance state; one `beacon agent` answers on
127.0.0.1. dnsperf sends at a fixed rate (`--rate`, default 2,000 qps) for `--seconds`
(default 10) while, 3 s in, the agent is stopped and started again `--gap` seconds later (default
2 s; 0 for a planned restart, as `systemctl restart` does). dnsperf's own count of lost queries
(no answer within its 5 s timeout) is the figure. Each case runs once, in one run, and prints one
line.

    python3 bench/restart.py
    BEACON_BIN=... python3 bench/restart.py --rate 5000

The socket-activated agent is started as systemd would: the bench (the "service manager") binds
the UDP and TCP sockets once and passes them as descriptors 3 and 4 with LISTEN_FDS=2 and
LISTEN_PID set to the agent's PID. With a state directory, the restarted agent serves the
last-known master state at once.

Needs root: it raises net.core.rmem_max for the run (see RMEM_MAX) and restores it. Bounded: a
few seconds per case; only the processes it starts, stopped by PID; every address is
127.0.0.1; the temporary directory is removed unless KEEP_TMP=1.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, "..", "shared", "conformance", "mesos-dns", "fake-loopback-leader.json")


# dnsperf's socket must hold the answers to every query queued during an outage, which arrive
# together: the run raises net.core.rmem_max to this much (and puts it back at the end), or
# the client itself would drop them and count them lost.
RMEM_MAX = 32 << 20
RMEM_PATH = "/proc/sys/net/core/rmem_max"


binary = dnsbench.beacon_binary


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=2000, help="queries per second")
    p.add_argument("--seconds", type=int, default=10, help="dnsperf run length")
    p.add_argument("--gap", type=float, default=2.0, help="seconds between kill -9 and restart")
    return p.parse_args(argv)


class Agent:
    """The agent under test: started, stopped and restarted by PID."""

    def __init__(self, tmp, config, sockets):
        self.tmp, self.config, self.sockets, self.proc = tmp, config, sockets, None

    def start(self):
        argv = [binary(), "agent", "--config", self.config, "--log", os.environ.get("BEACON_LOG", "warn")]
        log = open(os.path.join(self.tmp, "agent.log"), "a")
        if self.sockets is None:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
            return
        fds = [s.fileno() for s in self.sockets]

        def hand_over():
            # As systemd: the sockets become descriptors 3 and 4 (through spare numbers, so
            # that neither is overwritten first).
            for i, fd in enumerate(fds):
                os.dup2(fd, 100 + i)
            for i in range(len(fds)):
                os.dup2(100 + i, 3 + i)
        script = 'LISTEN_PID=$$ LISTEN_FDS=2 exec "$@"'
        # Python's own descriptors are not inherited (PEP 446); the dup2 copies are.
        self.proc = subprocess.Popen(["sh", "-c", script, "sh"] + argv, stdout=log, stderr=log,
                                     preexec_fn=hand_over, close_fds=False)

    def stop(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)


def write_config(tmp, master_port, dns_port, http_port):
    path = os.path.join(tmp, "agent.toml")
    with open(path, "w") as f:
        f.write(f"""[mesos_dns]
masters = ["127.0.0.1:{master_port}"]
listener = "127.0.0.1"
port = {dns_port}
http_listener = "127.0.0.1"
http_port = {http_port}
external_on = false
[node]
state_dir = "{os.path.join(tmp, 'state')}"
[vip]
data_plane = "off"
""")
    return path


def held_sockets(port):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # As systemd's ReceiveBuffer= (packaging/beacon.socket): forced past net.core.rmem_max,
    # so that the queries of a whole outage fit in the socket.
    udp.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 16 << 20)
    udp.bind(("127.0.0.1", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(128)
    return [udp, tcp]


def run_case(args, tmp, master_port, activated, sig, gap):
    dns_port, http_port = dnsbench.free_port(), dnsbench.free_port()
    case = os.path.join(tmp, f"case-{int(activated)}-{sig}-{gap}")
    os.makedirs(case)
    config = write_config(case, master_port, dns_port, http_port)
    sockets = held_sockets(dns_port) if activated else None
    agent = Agent(case, config, sockets)
    agent.start()
    dnsbench.wait_http(f"http://127.0.0.1:{http_port}/readyz", 30, agent.proc.pid)
    queries = os.path.join(case, "queries")
    with open(queries, "w") as f:
        f.write("leader.mesos A\nmaster.mesos A\n_liquor-store._tcp.marathon.mesos SRV\n")
    perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(dns_port), "-d", queries,
                             "-Q", str(args.rate), "-l", str(args.seconds), "-t", "5",
                             # Room for every query of the outage to be outstanding at once,
                             # and for their answers, which come in one burst when the agent is
                             # back (see RMEM_MAX).
                             "-q", str(args.rate * 10), "-b", str(RMEM_MAX >> 10)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)
    agent.stop(sig)
    time.sleep(gap)
    agent.start()
    out, _ = perf.communicate(timeout=args.seconds + 30)
    agent.stop(signal.SIGTERM)
    for s in sockets or []:
        s.close()
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    if not (sent and lost):
        dnsbench.die("dnsperf output not understood:\n" + out)
    return int(sent.group(1)), int(lost.group(1))


def main(argv):
    args = parse_args(argv)
    if not os.path.exists(binary()):
        dnsbench.die(f"no binary at {binary()}: cargo build --release first")
    tmp = tempfile.mkdtemp(prefix="beacon-restart-")
    master = None
    with open(RMEM_PATH) as f:
        rmem_before = f.read().strip()
    try:
        with open(RMEM_PATH, "w") as f:
            f.write(str(max(RMEM_MAX, int(rmem_before))))
        master_port = dnsbench.free_port()
        master = subprocess.Popen([binary(), "fake-master", "--state", STATE, "--listen",
                                   f"127.0.0.1:{master_port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dnsbench.wait_http(f"http://127.0.0.1:{master_port}/master/state", 30, master.pid)
        print(f"dnsperf at {args.rate} qps for {args.seconds} s; the agent is stopped 3 s in")
        print(f"{'case':<44} {'sent':>7} {'lost':>6} {'lost %':>7}")
        cases = [
            (False, signal.SIGKILL, args.gap, f"kill -9, restart {args.gap:g} s later, own sockets"),
            (True, signal.SIGKILL, args.gap, f"kill -9, restart {args.gap:g} s later, socket activation"),
            (False, signal.SIGTERM, 0, "planned restart (SIGTERM, start), own sockets"),
            (True, signal.SIGTERM, 0, "planned restart, socket activation"),
        ]
        for activated, sig, gap, name in cases:
            sent, lost = run_case(args, tmp, master_port, activated, sig, gap)
            print(f"{name:<44} {sent:>7} {lost:>6} {100 * lost / max(sent, 1):>6.2f}%")
    finally:
        with open(RMEM_PATH, "w") as f:
            f.write(rmem_before)
        if master and master.poll() is None:
            master.send_signal(signal.SIGTERM)
            master.wait(timeout=10)
        if os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
