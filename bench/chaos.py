#!/usr/bin/env python3
"""Chaos soak: 5 real agents in network namespaces, bounded to minutes (Beacon issue 10).

What it builds (root needed; everything is named `bchaos-*` and removed on exit, Ctrl-C or error):

* a bridge `bchaos-br` (10.251.7.254/24) in the root namespace; per agent a namespace
  `bchaos-n<i>` joined to it by a veth pair, with a gossip/API/DNS address 10.251.7.<i> and a
  service address 10.251.8.<i> (the VIP backends); a namespace `bchaos-m` (10.251.7.100) for
  one `beacon fake-master`. Nothing is routed anywhere else: the namespaces have no default route.
* 5 `beacon agent`s (started with `nsenter --net`, so bpffs and cgroupfs stay visible), each with
  a state_dir, cluster mutual TLS from `beacon tls ca|node` (all master-pollers), a write token,
  withdraw_after_secs = 30. Agents n2..n5 run with `[vip] data_plane = "off"`; n1 runs the data
  plane (socket LB only) pinned in /sys/fs/bpf/bchaos-<pid>, attached to a cgroup v2 child
  `bchaos-<pid>` created here (`--no-vip` leaves this out).
* VIP: n2..n5 each serve HTTP on 10.251.8.<i>:8080 and register it as `web.chaos` with
  `VIP_0=/web:80`; a client process in n1's namespace, inside the LB cgroup, connects to the
  VIP's address (resolved once from n1's DNS: it is a hash of the name) every 100 ms and logs
  every success and failure.

Actions, chosen at random from `--seed` (printed) every 2-5 s for `--seconds` (default 180):

* kill -9 of an agent (by PID), restarted 1-3 s later (at most two down at once; n1, the
  data-plane node, twice as likely as each other);
* a partition: blackhole routes on the gossip addresses between one or two nodes and the rest
  (both directions; the script, the master and the VIP backends' service addresses stay
  reachable), healed after 3-10 s;
* registration churn (also every second with probability 1/2): 1-3 PUTs of new names `c<k>.chaos.mesos` through random running agents'
  APIs, and DELETEs of earlier ones through their owner, each recorded with its status;
* the fake master killed (-9) and restarted 3-8 s later.

Invariants, checked throughout and after a final heal and settle:

* acknowledged writes: every registration whose PUT got a 2xx (and no later 2xx DELETE) is
  answered by DNS (UDP, A) on every node, with its address; deleted ones are NXDOMAIN. Writes
  whose outcome is unknown (timeout, connection reset by a kill) are left out of the checks.
* read-your-write: a node answers its own acknowledged PUT at once (checked on the spot).
* convergence: after each heal or restart, once no fault is active, every node's `/v1/axfr`
  holds the same `*.chaos.mesos` names as the acknowledged set within `--settle` s (15).
* master names: `leader.mesos` is answered (A 10.251.7.100) by ready agents throughout, master
  up or down, by a random ready node every second.
* VIP: connections through the socket LB keep succeeding (n1's kill -9 included).
* no crash: no process this script started exits unless the script killed it.

The schedule also depends on timing (the write trickle shares the generator), so a seed does not
replay a run exactly; the log prints every action with its time.

Left out: partitions by link down (the script's own access and the VIP backends would go with
it) and partitions between agents and the master; clock skew, disk faults, TLS revocation;
the XDP path (socket LB only).

    sudo python3 bench/chaos.py --seconds 120            # BEACON_BIN=... to choose the binary
    sudo python3 bench/chaos.py --seconds 60 --seed 7 --no-vip --keep
Exit code: 0 when every invariant holds, 1 on a violation, 2 on a setup failure.
"""

import argparse
import hashlib
import heapq
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbench  # noqa: E402  (the house helpers: the binary's path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 5
NET = "10.251.7"      # gossip, API and DNS addresses; bridge .254, master .100
SVC = "10.251.8"      # VIP backends' service addresses
DATA = "10.251.9"     # addresses churned registrations name: data in DNS answers only
MASTER = f"{NET}.100"
MASTER_PORT = 5050
GOSSIP_PORT = 7946
HTTP_PORT = 8123
BACKEND_PORT = 8080
TOKEN = "bcn_chaos-soak"
TOKENS = f"""[[api.tokens]]
name = "chaos"
secret_sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
frameworks = ["*"]
backend_cidrs = ["10.251.0.0/16"]
named_vips = true
max_registrations = 100000
"""
LOG_FILTER = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn"


def ns(i):
    return f"bchaos-n{i}"


def ip(i):
    return f"{NET}.{i}"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')} +{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


T0 = time.monotonic()


def sh(*argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


# ------------------------------------------------------------------------------------ DNS


def dns_query(server, name, qtype=1, timeout=1.0, tries=2):
    """(rcode, [A addresses]) or None when no answer."""
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        for _ in range(tries):
            qid = random.randrange(65536)
            s.sendto(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1),
                     (server, 53))
            try:
                while True:
                    msg, _ = s.recvfrom(65535)
                    if struct.unpack(">H", msg[:2])[0] == qid:
                        return parse_a(msg)
            except (socket.timeout, ConnectionRefusedError):
                continue
    finally:
        s.close()
    return None


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_a(msg):
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    ips = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1:
            ips.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return flags & 0xF, ips


# ------------------------------------------------------------------------------------ HTTP


def http(addr, path, method="GET", body=None, timeout=4.0):
    """(status, body bytes); -1 when the connection is refused (nothing sent: not applied), 0 on
    another error or a timeout (outcome unknown)."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if method != "GET" else {}
    req = urllib.request.Request(f"http://{addr}:{HTTP_PORT}{path}", data=body, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return -1, b"connection refused"
        return 0, str(e).encode()
    except Exception as e:  # noqa: BLE001 - refused, reset, timeout: unknown outcome
        return 0, str(e).encode()


# ------------------------------------------------------------------------------------ the soak

VIP_CLIENT = r"""
import socket, sys, time
vip, port, out = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "w", buffering=1)
while True:
    t = time.time()
    try:
        s = socket.create_connection((vip, port), timeout=1.0)
        s.settimeout(1.0)
        s.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip()
        ok = data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")
        out.write(f"{t:.3f} {'ok' if ok else 'bad'} {body[:20] if ok else data[:40]!r}\n")
    except Exception as e:
        out.write(f"{t:.3f} fail {type(e).__name__}:{e}\n")
    time.sleep(max(0.0, 0.1 - (time.time() - t)))
"""


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.bin = dnsbench.beacon_binary()
        self.tmp = tempfile.mkdtemp(prefix="bchaos-")
        self.tag = f"bchaos-{os.getpid()}"
        self.cg = None
        self.bpffs = f"/sys/fs/bpf/{self.tag}" if args.vip else None
        self.namespaces, self.links = [], []
        self.procs = {}            # name -> Popen (only ours)
        self.killed = set()        # names we killed and have not restarted
        self.started_at = {}
        self.partition = None      # (side a, side b) of the active partition
        self.events = []           # heap of (time, seq, what, arg)
        self.seq = 0
        self.expected = {}         # registration id -> (node, ip)   (2xx PUT, no 2xx DELETE)
        self.deleted = {}          # id -> node                      (2xx DELETE)
        self.unknown = set()       # ids whose last write has an unknown outcome
        self.k = 0
        self.c = dict(kills=0, restarts=0, partitions=0, heals=0, master_kills=0,
                      master_restarts=0, puts=0, puts_2xx=0, puts_unknown=0, puts_refused=0,
                      deletes=0, deletes_2xx=0, deletes_unknown=0, deletes_refused=0,
                      dns_checks=0, dns_failures=0, ryw_checks=0, ryw_failures=0,
                      leader_checks=0, leader_failures=0, convergence_checks=0,
                      convergence_failures=0, crashes=0, vip_requests=0, vip_failures=0)
        self.violations = {k: [] for k in ("acknowledged writes", "read-your-write",
                                            "convergence", "master names", "VIP", "no crash")}
        self.pending_convergence = False
        self.vip_addr = None
        self.vip_start = None

    # ---------------------------------------------------------------- processes

    def spawn(self, name, argv, netns=None, cgroup=None):
        out = open(os.path.join(self.tmp, f"{name}.log"), "a")
        out.write(f"\n==== start {time.strftime('%H:%M:%S')} {' '.join(argv)}\n")
        out.flush()
        if netns:
            argv = ["nsenter", f"--net=/run/netns/{netns}", "--"] + argv
        pre = None
        if cgroup:
            procs = os.path.join(cgroup, "cgroup.procs")

            def pre():
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=pre, start_new_session=True)
        self.procs[name] = p
        self.started_at[name] = time.monotonic()
        return p

    def kill9(self, name):
        p = self.procs.get(name)
        if p and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        self.killed.add(name)

    # ---------------------------------------------------------------- setup

    def setup(self):
        if os.geteuid() != 0:
            sys.exit("chaos.py needs root (network namespaces, cgroups, bpffs)")
        if not os.path.exists(self.bin):
            sys.exit(f"no beacon binary at {self.bin} (cargo build --release, or BEACON_BIN=)")
        existing = sh("ip", "netns", "list").stdout
        if "bchaos-" in existing or sh("ip", "link", "show", "bchaos-br", check=False).returncode == 0:
            sys.exit("bchaos-* namespaces or bridge exist already (another run?); remove them first")
        log(f"seed {self.args.seed}, {self.args.seconds} s, binary {self.bin}, files in {self.tmp}")
        sh("ip", "link", "add", "bchaos-br", "type", "bridge")
        self.links.append("bchaos-br")
        sh("ip", "addr", "add", f"{NET}.254/24", "dev", "bchaos-br")
        sh("ip", "link", "set", "bchaos-br", "up")
        for i in list(range(1, N + 1)) + [100]:
            name = ns(i) if i != 100 else "bchaos-m"
            sh("ip", "netns", "add", name)
            self.namespaces.append(name)
            host = f"bchaos-h{i}"
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", name)
            self.links.append(host)
            sh("ip", "link", "set", host, "master", "bchaos-br")
            sh("ip", "link", "set", host, "up")
            sh("ip", "-n", name, "addr", "add", f"{NET}.{i}/24", "dev", "eth0")
            if i != 100:
                sh("ip", "-n", name, "addr", "add", f"{SVC}.{i}/24", "dev", "eth0")
            sh("ip", "-n", name, "link", "set", "eth0", "up")
            sh("ip", "-n", name, "link", "set", "lo", "up")
        # TLS
        tls = os.path.join(self.tmp, "tls")
        sh(self.bin, "tls", "ca", "--dir", tls)
        for i in range(1, N + 1):
            sh(self.bin, "tls", "node", "--name", f"n{i}", "--role", "master-poller", "--dir", tls)
        # The fake master.
        self.write_master_state()
        self.start_master()
        # cgroup and bpffs for n1's data plane.
        if self.args.vip:
            for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
                if os.path.exists(os.path.join(root, "cgroup.procs")) and \
                        sh("stat", "-f", "-c", "%T", root).stdout.strip() == "cgroup2fs":
                    self.cg = os.path.join(root, self.tag)
                    os.mkdir(self.cg)
                    break
            if not self.cg:
                log("no cgroup v2 mount: VIP part left out")
                self.args.vip = False
        for i in range(1, N + 1):
            self.write_config(i, tls)
        for i in range(1, N + 1):
            self.start_agent(i)
        for i in range(1, N + 1):
            if not self.wait_ready(i, 60):
                raise RuntimeError(f"n{i} not ready in 60 s; see {self.tmp}/n{i}.log")
        deadline = time.monotonic() + 60
        while not self.all_up():
            if time.monotonic() > deadline:
                raise RuntimeError("the five agents do not all see each other up in 60 s")
            time.sleep(0.5)
        log("5 agents ready and all up")
        if self.args.vip:
            self.setup_vip()

    def write_master_state(self):
        slaves = [{"id": f"S{i}", "hostname": f"{SVC}.{i}", "pid": f"slave(1)@{SVC}.{i}:5051",
                   "active": True, "resources": {"ports": "[31000-32000]"}} for i in (1, 2)]
        tasks = [{"id": f"mtask.{j}", "name": "mtask", "framework_id": "F0", "executor_id": "",
                  "slave_id": f"S{j}", "state": "TASK_RUNNING",
                  "resources": {"ports": f"[3100{j}-3100{j}]"},
                  "statuses": [{"state": "TASK_RUNNING", "timestamp": 1700000000.0}]}
                 for j in (1, 2)]
        state = {"version": "1.11.0", "id": "chaos-master", "pid": f"master@{MASTER}:{MASTER_PORT}",
                 "hostname": MASTER, "leader": f"master@{MASTER}:{MASTER_PORT}",
                 "activated_slaves": 2, "slaves": slaves,
                 "frameworks": [{"id": "F0", "name": "marathon", "active": True,
                                 "tasks": tasks, "completed_tasks": []}]}
        with open(os.path.join(self.tmp, "master.json"), "w") as f:
            json.dump(state, f)

    def start_master(self):
        self.spawn("master", [self.bin, "fake-master", "--state", os.path.join(self.tmp, "master.json"),
                              "--listen", f"{MASTER}:{MASTER_PORT}"], netns="bchaos-m")
        self.killed.discard("master")

    def write_config(self, i, tls):
        seeds = ", ".join(f'"n{j}@{ip(j)}:{GOSSIP_PORT}"' for j in range(1, N + 1) if j != i)
        if i == 1 and self.args.vip:
            vip = f'[vip]\ndata_plane = "on"\ncgroup = "{self.cg}"\nbpffs_dir = "{self.bpffs}"\n'
        else:
            vip = '[vip]\ndata_plane = "off"\n'
        toml = f"""[mesos_dns]
masters = ["{MASTER}:{MASTER_PORT}"]
refresh_seconds = 2
listener = "{ip(i)}"
port = 53
http_listener = "{ip(i)}"
http_port = {HTTP_PORT}
resolvers = ["{NET}.254:9"]
external_on = false
[node]
name = "n{i}"
state_dir = "{os.path.join(self.tmp, f'state-n{i}')}"
[cluster]
listen = "{ip(i)}:{GOSSIP_PORT}"
seeds = [{seeds}]
tls_dir = "{tls}"
withdraw_after_secs = 30
{vip}{TOKENS}"""
        with open(os.path.join(self.tmp, f"n{i}.toml"), "w") as f:
            f.write(toml)

    def start_agent(self, i):
        self.spawn(f"n{i}", [self.bin, "agent", "--config", os.path.join(self.tmp, f"n{i}.toml"),
                             "--log", LOG_FILTER], netns=ns(i))
        self.killed.discard(f"n{i}")

    def running(self, i):
        p = self.procs.get(f"n{i}")
        return p is not None and p.poll() is None

    def ready(self, i):
        return self.running(i) and http(ip(i), "/readyz", timeout=1.0)[0] == 200

    def wait_ready(self, i, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready(i):
                return True
            if not self.running(i):
                return False
            time.sleep(0.1)
        return False

    def all_up(self):
        for i in range(1, N + 1):
            st, body = http(ip(i), "/v1/nodes", timeout=2.0)
            if st != 200:
                return False
            try:
                if sum(1 for m in json.loads(body) if m.get("state") == "up") < N:
                    return False
            except ValueError:
                return False
        return True

    def setup_vip(self):
        www = os.path.join(self.tmp, "www")
        for i in range(2, N + 1):
            d = os.path.join(www, f"n{i}")
            os.makedirs(d)
            with open(os.path.join(d, "index.html"), "w") as f:
                f.write(f"backend-n{i}\n")
            self.spawn(f"backend-n{i}", [sys.executable, "-m", "http.server", str(BACKEND_PORT),
                                         "--bind", f"{SVC}.{i}", "--directory", d], netns=ns(i))
            body = {"name": "web", "framework": "chaos", "ips": [f"{SVC}.{i}"],
                    "ports": [{"number": BACKEND_PORT, "protocol": "tcp", "name": "http",
                               "labels": {"VIP_0": "/web:80"}}]}
            st, text = http(ip(i), f"/v1/registrations/web-n{i}", "PUT", json.dumps(body).encode())
            if st // 100 != 2:
                raise RuntimeError(f"VIP registration on n{i}: {st} {text[:200]!r}")
        vip_name = "web.chaos.l4lb.thisdcos.directory"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = dns_query(ip(1), vip_name)
            if r and r[0] == 0 and r[1]:
                self.vip_addr = r[1][0]
                break
            time.sleep(0.2)
        if not self.vip_addr:
            raise RuntimeError(f"{vip_name} not answered by n1 in 30 s")
        with open(os.path.join(self.tmp, "vip_client.py"), "w") as f:
            f.write(VIP_CLIENT)
        self.vip_log = os.path.join(self.tmp, "vip.txt")
        self.spawn("vip-client", [sys.executable, os.path.join(self.tmp, "vip_client.py"),
                                  self.vip_addr, "80", self.vip_log], netns=ns(1), cgroup=self.cg)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(self.vip_log) and " ok " in open(self.vip_log).read():
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"no VIP request succeeded in 20 s: {self.vip_log}")
        self.vip_start = time.time()
        log(f"VIP {vip_name} = {self.vip_addr}:80 -> 4 backends; client in n1's netns and cgroup")

    # ---------------------------------------------------------------- events

    def at(self, delay, what, arg=None):
        self.seq += 1
        heapq.heappush(self.events, (time.monotonic() + delay, self.seq, what, arg))

    def run_due(self, force=False):
        while self.events and (force or self.events[0][0] <= time.monotonic()):
            _, _, what, arg = heapq.heappop(self.events)
            if what == "restart":
                self.start_agent(arg)
                self.c["restarts"] += 1
                log(f"restart n{arg} (pid {self.procs[f'n{arg}'].pid})")
                self.pending_convergence = True
            elif what == "heal":
                self.heal()
            elif what == "master":
                self.start_master()
                self.c["master_restarts"] += 1
                log(f"restart fake master (pid {self.procs['master'].pid})")
                self.pending_convergence = True

    def faults_active(self):
        return bool(self.partition) or any(f"n{i}" in self.killed for i in range(1, N + 1)) \
            or "master" in self.killed

    # ---------------------------------------------------------------- actions

    def act(self):
        down = [i for i in range(1, N + 1) if f"n{i}" in self.killed]
        choices = ["churn"] * 3
        if len(down) < 2:
            choices += ["kill"] * 2
        if not self.partition:
            choices += ["partition"] * 2
        if "master" not in self.killed:
            choices.append("master")
        what = self.rng.choice(choices)
        if what == "kill":
            # n1 (the data-plane node) twice as likely: its kill -9 is the VIP test.
            i = self.rng.choice([i for i in [1] + list(range(1, N + 1)) if i not in down])
            self.kill9(f"n{i}")
            self.c["kills"] += 1
            delay = self.rng.uniform(1, 3)
            log(f"kill -9 n{i}; restart in {delay:.1f} s")
            self.at(delay, "restart", i)
        elif what == "partition":
            k = self.rng.choice([1, 2])
            a = sorted(self.rng.sample(range(1, N + 1), k))
            b = [i for i in range(1, N + 1) if i not in a]
            for x in a:
                for y in b:
                    sh("ip", "-n", ns(x), "route", "add", "blackhole", f"{ip(y)}/32")
                    sh("ip", "-n", ns(y), "route", "add", "blackhole", f"{ip(x)}/32")
            self.partition = (a, b)
            self.c["partitions"] += 1
            delay = self.rng.uniform(3, 10)
            log(f"partition {a} | {b}; heal in {delay:.1f} s")
            self.at(delay, "heal")
        elif what == "master":
            self.kill9("master")
            self.c["master_kills"] += 1
            delay = self.rng.uniform(3, 8)
            log(f"kill -9 fake master; restart in {delay:.1f} s")
            self.at(delay, "master", None)
        else:
            self.churn()

    def heal(self):
        if not self.partition:
            return
        a, b = self.partition
        for x in a:
            for y in b:
                sh("ip", "-n", ns(x), "route", "del", "blackhole", f"{ip(y)}/32", check=False)
                sh("ip", "-n", ns(y), "route", "del", "blackhole", f"{ip(x)}/32", check=False)
        self.partition = None
        self.c["heals"] += 1
        log(f"heal {a} | {b}")
        self.pending_convergence = True

    def churn(self):
        up = [i for i in range(1, N + 1) if self.running(i)]
        if not up:
            return
        done = []
        for _ in range(self.rng.randint(1, 3)):
            i = self.rng.choice(up)
            rid = f"c{self.k}"
            self.k += 1
            addr = f"{DATA}.{self.k % 250 + 1}"
            body = json.dumps({"name": rid, "framework": "chaos", "ips": [addr]}).encode()
            st, text = http(ip(i), f"/v1/registrations/{rid}", "PUT", body)
            self.c["puts"] += 1
            if st // 100 == 2:
                self.c["puts_2xx"] += 1
                self.expected[rid] = (i, addr)
                self.unknown.discard(rid)
                done.append(f"PUT {rid}@n{i}={st}")
                # Read-your-write: the node that acknowledged answers at once.
                self.c["ryw_checks"] += 1
                self.c["dns_checks"] += 1
                r = dns_query(ip(i), f"{rid}.chaos.mesos")
                if not r or r[0] != 0 or addr not in r[1]:
                    self.c["ryw_failures"] += 1
                    self.c["dns_failures"] += 1
                    self.violations["read-your-write"].append(
                        f"+{self.now():.1f}s n{i} acknowledged PUT {rid} then answered {r}")
            elif st == 0:  # timeout or reset: it may or may not have been applied
                self.c["puts_unknown"] += 1
                self.unknown.add(rid)
                done.append(f"PUT {rid}@n{i}=unknown")
            else:
                self.c["puts_refused"] += 1  # a 4xx/5xx, or no connection: not applied
                done.append(f"PUT {rid}@n{i}={st if st > 0 else 'conn-refused'}")
        if self.expected and self.rng.random() < 0.6:
            rid = self.rng.choice(sorted(self.expected))
            i = self.expected[rid][0]
            if self.running(i):
                st, _ = http(ip(i), f"/v1/registrations/{rid}", "DELETE")
                self.c["deletes"] += 1
                if st // 100 == 2:
                    self.c["deletes_2xx"] += 1
                    del self.expected[rid]
                    self.deleted[rid] = i
                elif st == 0:
                    self.c["deletes_unknown"] += 1
                    self.unknown.add(rid)
                else:
                    self.c["deletes_refused"] += 1
                done.append(f"DELETE {rid}@n{i}={st if st > 0 else 'unknown' if st == 0 else 'conn-refused'}")
        log("churn: " + ", ".join(done))

    def now(self):
        return time.monotonic() - T0

    # ---------------------------------------------------------------- checks

    def check_crashes(self):
        for name, p in list(self.procs.items()):
            if name in self.killed or p.poll() is None:
                continue
            self.c["crashes"] += 1
            tail = open(os.path.join(self.tmp, f"{name}.log")).read()[-1500:]
            self.violations["no crash"].append(
                f"+{self.now():.1f}s {name} (pid {p.pid}) exited with {p.returncode}; log tail:\n{tail}")
            log(f"CRASH: {name} exited with {p.returncode}; restarting it")
            self.killed.add(name)
            if name.startswith("n") and name[1:].isdigit():
                self.at(0.5, "restart", int(name[1:]))
            elif name == "master":
                self.at(0.5, "master")
            else:
                del self.procs[name]

    def check_leader(self):
        up = [i for i in range(1, N + 1) if self.running(i)
              and time.monotonic() - self.started_at[f"n{i}"] > 0.5]
        if not up:
            return
        i = self.rng.choice(up)
        if not self.ready(i):
            return  # restarted, not ready yet: DNS is allowed to wait
        self.c["leader_checks"] += 1
        self.c["dns_checks"] += 1
        r = dns_query(ip(i), "leader.mesos")
        if not r or r[0] != 0 or r[1] != [MASTER]:
            self.c["leader_failures"] += 1
            self.c["dns_failures"] += 1
            self.violations["master names"].append(
                f"+{self.now():.1f}s n{i} (ready) answered leader.mesos with {r} "
                f"(master {'down' if 'master' in self.killed else 'up'})")

    def catalog(self, i):
        st, body = http(ip(i), "/v1/axfr", timeout=5.0)
        if st != 200:
            return None
        records = (json.loads(body).get("Records") or {}).get("As") or {}
        out = {}
        for name, addrs in records.items():
            name = name.rstrip(".").lower()
            if name.endswith(".chaos.mesos") and name.startswith("c") and name[1:].split(".")[0].isdigit():
                out[name.split(".")[0]] = sorted(addrs)
        return out

    def convergence(self, final=False):
        """Waits up to --settle s for every node's chaos names to equal the acknowledged set."""
        self.c["convergence_checks"] += 1
        want = {rid: [a] for rid, (_, a) in self.expected.items() if rid not in self.unknown}
        settle = self.args.settle * (2 if final else 1)
        start = time.monotonic()
        while True:
            cats = {i: self.catalog(i) for i in range(1, N + 1)}
            diffs = {}
            for i, cat in cats.items():
                if cat is None:
                    diffs[i] = "no /v1/axfr"
                    continue
                cat = {k: v for k, v in cat.items() if k not in self.unknown}
                missing = sorted(set(want) - set(cat))
                extra = sorted(set(cat) - set(want))
                wrong = sorted(k for k in set(want) & set(cat) if cat[k] != want[k])
                if missing or extra or wrong:
                    diffs[i] = f"missing {missing[:10]}{'…' if len(missing) > 10 else ''} " \
                               f"({len(missing)}), extra {extra[:10]} ({len(extra)}), wrong {wrong[:5]}"
            if not diffs:
                took = time.monotonic() - start
                break
            if time.monotonic() - start > settle:
                self.c["convergence_failures"] += 1
                msg = f"+{self.now():.1f}s not converged {settle:.0f} s after the last heal/restart: " + \
                      "; ".join(f"n{i}: {d}" for i, d in sorted(diffs.items()))
                self.violations["convergence"].append(msg)
                log("VIOLATION " + msg)
                took = None
                break
            time.sleep(0.3)
        # DNS on every node: acknowledged names answered with their address, deleted ones gone.
        dns_bad = 0
        gone = [rid for rid in self.deleted if rid not in self.unknown and rid not in self.expected]
        if not final:
            gone = self.rng.sample(gone, min(len(gone), 20))
        for i in range(1, N + 1):
            for rid, addrs in want.items():
                self.c["dns_checks"] += 1
                r = dns_query(ip(i), f"{rid}.chaos.mesos")
                if not r or r[0] != 0 or sorted(r[1]) != addrs:
                    dns_bad += 1
                    self.violations["acknowledged writes"].append(
                        f"+{self.now():.1f}s n{i}: {rid}.chaos.mesos (PUT 2xx on n{self.expected[rid][0]}) "
                        f"answered {r}, want {addrs}")
            for rid in gone:
                self.c["dns_checks"] += 1
                r = dns_query(ip(i), f"{rid}.chaos.mesos")
                if not r or r[0] != 3:
                    dns_bad += 1
                    self.violations["acknowledged writes"].append(
                        f"+{self.now():.1f}s n{i}: {rid}.chaos.mesos (DELETE 2xx on n{self.deleted[rid]}) "
                        f"answered {r}, want NXDOMAIN")
        self.c["dns_failures"] += dns_bad
        log(f"convergence check: {len(want)} names on 5 nodes "
            f"{'in %.1f s' % took if took is not None else 'NOT converged'}; "
            f"DNS {len(want) * N + len(gone) * N} queries, {dns_bad} wrong")

    def vip_figures(self):
        if not self.args.vip or not os.path.exists(getattr(self, "vip_log", "")):
            return []
        fails = []
        for line in open(self.vip_log):
            parts = line.split(" ", 2)
            if len(parts) < 2 or float(parts[0]) < self.vip_start:
                continue
            self.c["vip_requests"] += 1
            if parts[1] != "ok":
                self.c["vip_failures"] += 1
                fails.append(line.strip())
        return fails

    # ---------------------------------------------------------------- main loop

    def run(self):
        self.setup()
        end = time.monotonic() + self.args.seconds
        next_act = time.monotonic() + self.rng.uniform(2, 5)
        next_probe = time.monotonic()
        log("chaos starts")
        while time.monotonic() < end:
            self.run_due()
            self.check_crashes()
            if time.monotonic() >= next_probe:
                self.check_leader()
                if self.rng.random() < 0.5:
                    self.churn()  # a steady trickle of writes besides the churn actions
                next_probe = time.monotonic() + 1.0
            if self.pending_convergence and not self.faults_active() and \
                    all(self.wait_ready(i, 15) for i in range(1, N + 1)):
                self.pending_convergence = False
                self.convergence()
            if time.monotonic() >= next_act:
                self.act()
                next_act = time.monotonic() + self.rng.uniform(2, 5)
            time.sleep(0.05)
        log("chaos ends: final heal, restarts and settle")
        self.run_due(force=True)
        self.heal()
        for i in range(1, N + 1):
            if not self.wait_ready(i, 30):
                self.violations["no crash"].append(f"n{i} not ready 30 s after the end")
        self.check_crashes()
        self.convergence(final=True)
        for _ in range(5):
            self.check_leader()
        self.check_crashes()
        return self.report()

    def report(self):
        fails = self.vip_figures()
        if self.args.vip and self.c["vip_failures"]:
            self.violations["VIP"].append(f"{self.c['vip_failures']} of {self.c['vip_requests']} "
                                          f"requests failed; first ones:\n  " + "\n  ".join(fails[:15]))
        c = self.c
        print()
        print(f"== chaos soak summary (seed {self.args.seed}, {self.args.seconds} s, 5 agents)")
        print(f"kills -9: {c['kills']}, restarts: {c['restarts']}, partitions: {c['partitions']}, "
              f"heals: {c['heals']}, master kills/restarts: {c['master_kills']}/{c['master_restarts']}")
        print(f"registrations PUT: {c['puts']} (2xx {c['puts_2xx']}, refused {c['puts_refused']}, "
              f"unknown {c['puts_unknown']}), DELETE: {c['deletes']} (2xx {c['deletes_2xx']}, "
              f"refused {c['deletes_refused']}, unknown {c['deletes_unknown']}); "
              f"held at the end: {len(self.expected)}")
        print(f"DNS checks: {c['dns_checks']}, failures: {c['dns_failures']} "
              f"(read-your-write {c['ryw_checks']}/{c['ryw_failures']} failed, "
              f"leader.mesos {c['leader_checks']}/{c['leader_failures']} failed)")
        print(f"convergence checks: {c['convergence_checks']}, not converged: {c['convergence_failures']}")
        if self.args.vip:
            print(f"VIP requests: {c['vip_requests']}, failures: {c['vip_failures']}")
        else:
            print("VIP: left out (--no-vip)")
        print(f"crashes: {c['crashes']}")
        bad = False
        for name, v in self.violations.items():
            if name == "VIP" and not self.args.vip:
                print(f"  {name:22s} SKIPPED")
                continue
            print(f"  {name:22s} {'PASS' if not v else 'FAIL (%d)' % len(v)}")
            bad |= bool(v)
        for name, v in self.violations.items():
            for msg in v[:10]:
                print(f"  ! {name}: {msg}")
        if bad:
            self.args.keep = True
        return 1 if bad else 0

    # ---------------------------------------------------------------- cleanup

    def cleanup(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.bpffs and os.path.exists(self.bpffs):
            sh(self.bin, "dataplane", "remove", "--config", os.path.join(self.tmp, "n1.toml"), check=False)
            shutil.rmtree(self.bpffs, ignore_errors=True)
        if self.cg and os.path.isdir(self.cg):
            try:
                os.rmdir(self.cg)
            except OSError as e:
                print(f"cleanup: cgroup {self.cg}: {e}", file=sys.stderr)
        for name in self.namespaces:
            sh("ip", "netns", "del", name, check=False)
        for link in self.links:
            sh("ip", "link", "del", link, check=False)
        if self.args.keep:
            print(f"logs and state kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--settle", type=float, default=15, help="seconds allowed to converge after a heal")
    ap.add_argument("--no-vip", dest="vip", action="store_false", help="leave the VIP data plane out")
    ap.add_argument("--keep", action="store_true", help="keep logs and state (kept on a violation)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)

    def term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, term)
    soak = Soak(args)
    code = 2
    try:
        code = soak.run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # noqa: BLE001
        print(f"setup or run failed: {e}", file=sys.stderr)
        args.keep = True
        code = 2
    finally:
        soak.cleanup()
    sys.exit(code)


if __name__ == "__main__":
    main()
