// Beacon's web view. Polls the agent's own read-only endpoints every POLL_MS, keeps the previous
// answers to turn counters into rates and to list what changed, and redraws. Text from the agent
// only ever goes into textContent: a record name is data, never markup.
"use strict";

const POLL_MS = 2000;
const HISTORY = 150; // graph points: five minutes at one poll every 2 s
const MAX_ROWS = 600; // record names drawn at once; the search narrows the rest
const MAX_CHANGES = 60;

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function row(cells, attrs) {
  return el("tr", attrs, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))));
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---- Prometheus text format ------------------------------------------------------------------

/** name -> [{labels, value}] from the exposition format. */
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value: parseFloat(m[3]) });
  }
  return out;
}

/** The sum of `name`'s samples whose labels match `want`; null when the metric is absent. */
function metric(metrics, name, want) {
  const samples = metrics.get(name);
  if (!samples) return null;
  let sum = 0;
  for (const s of samples) {
    if (Object.entries(want || {}).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

// ---- formatting --------------------------------------------------------------------------------

function num(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return v.toFixed(digits === undefined ? (Number.isInteger(v) ? 0 : 1) : digits);
}

function ago(secs) {
  if (secs === null || secs === undefined) return "–";
  if (secs < 1) return "just now";
  if (secs < 120) return secs.toFixed(secs < 10 ? 1 : 0) + " s ago";
  if (secs < 7200) return (secs / 60).toFixed(0) + " min ago";
  return (secs / 3600).toFixed(1) + " h ago";
}

function ms(secs) {
  if (secs === null || secs === undefined) return "–";
  return secs < 1 ? (secs * 1000).toFixed(0) + " ms" : secs.toFixed(2) + " s";
}

function clock(date) {
  return date.toTimeString().slice(0, 8);
}

function span(cls, text) {
  return el("span", { class: cls }, text);
}

// ---- state between polls -----------------------------------------------------------------------

const state = {
  prev: null, // the previous poll: {at, metrics, nodes, vips, records}
  series: { qps: [], lag: [], flows: [] },
  changes: [],
  recordsKey: "",
  groups: [],
};

/** One rate per second of a counter between the previous poll and this one (0 after a reset). */
function rate(cur, prev, dt) {
  if (cur === null || prev === null || prev === undefined || dt <= 0) return null;
  return Math.max(0, (cur - prev) / dt);
}

// ---- fetching ----------------------------------------------------------------------------------

async function get(path, kind) {
  const r = await fetch(path, { cache: "no-store" });
  const body = kind === "json" ? (r.ok ? await r.json() : null) : await r.text();
  return { ok: r.ok, status: r.status, date: r.headers.get("Date"), body };
}

async function poll() {
  const at = performance.now();
  try {
    const [nodes, vips, records, metrics, ready] = await Promise.all([
      get("/v1/nodes", "json"),
      get("/v1/vips", "json"),
      get("/v1/records", "json"),
      get("/metrics", "text"),
      get("/readyz", "text"),
    ]);
    const serverNow = metrics.date ? Date.parse(metrics.date) / 1000 : Date.now() / 1000;
    const cur = {
      at,
      serverNow,
      metrics: parseMetrics(metrics.body || ""),
      nodes: nodes.body || [],
      vips: vips.body || [],
      records: records.body || [],
      ready: ready.ok,
      readyText: (ready.body || "").trim(),
    };
    render(cur, state.prev);
    state.prev = cur;
  } catch (error) {
    const r = $("ready");
    r.className = "pill bad";
    r.textContent = "agent unreachable";
    $("updated").textContent = "last try " + clock(new Date()) + ": " + error;
  }
  setTimeout(poll, POLL_MS);
}

// ---- rendering ---------------------------------------------------------------------------------

function render(cur, prev) {
  const dt = prev ? (cur.at - prev.at) / 1000 : 0;
  const me = cur.nodes[0];
  $("node").textContent = me ? "node " + me.name + (me.address ? " · gossip " + me.address : "") : "";
  const r = $("ready");
  r.className = "pill " + (cur.ready ? "ok" : "bad");
  r.textContent = cur.ready ? "ready" : cur.readyText || "not ready";
  $("updated").textContent = "updated " + clock(new Date());
  const rates = ratesOf(cur, prev, dt);
  renderTiles(cur, rates);
  renderMembers(cur);
  renderSources(cur);
  renderGossip(cur, rates);
  renderVips(cur, prev, dt);
  renderRecords(cur);
  renderGraphs(rates);
  if (prev) diff(cur, prev);
  else note("chg", `loaded: ${cur.nodes.length} members, ${cur.records.length} records, ${cur.vips.length} VIPs`);
  renderChanges();
}

/** The per-second figures the tiles and graphs share. */
function ratesOf(cur, prev, dt) {
  const m = cur.metrics;
  const p = prev ? prev.metrics : new Map();
  const lagSum = metric(m, "beacon_gossip_convergence_lag_seconds_sum");
  const lagCount = metric(m, "beacon_gossip_convergence_lag_seconds_count");
  const dCount = prev ? lagCount - metric(p, "beacon_gossip_convergence_lag_seconds_count") : 0;
  const dSum = prev ? lagSum - metric(p, "beacon_gossip_convergence_lag_seconds_sum") : 0;
  const flows = (v) => v.reduce((s, x) => s + (x.new_flows || 0), 0);
  return {
    qps: rate(metric(m, "beacon_dns_queries_total"), metric(p, "beacon_dns_queries_total"), dt),
    // The mean lag of the changes served since the last poll; none when nothing changed.
    lag: dCount > 0 ? dSum / dCount : null,
    lagMean: lagCount > 0 ? lagSum / lagCount : null,
    lagCount,
    flows: prev ? rate(flows(cur.vips), flows(prev.vips), dt) : null,
    datagrams: rate(metric(m, "beacon_gossip_datagrams_total"), metric(p, "beacon_gossip_datagrams_total"), dt),
    bytes: rate(metric(m, "beacon_gossip_bytes_total"), metric(p, "beacon_gossip_bytes_total"), dt),
  };
}

function tile(value, label) {
  return el("div", { class: "tile" }, el("b", {}, value), el("span", {}, label));
}

function renderTiles(cur, rates) {
  const up = cur.nodes.filter((n) => n.state === "up").length;
  const services = new Set(cur.records.filter((x) => x.rtype === "SRV").map((x) => x.name)).size;
  const names = new Set(cur.records.map((x) => x.name)).size;
  const backends = cur.vips.reduce((s, v) => s + v.backend.length, 0);
  const refused = metric(cur.metrics, "beacon_gossip_rejected_total");
  $("tiles").replaceChildren(
    tile(`${up} / ${cur.nodes.length}`, "members up"),
    tile(num(services), "SRV services"),
    tile(num(names), `names, ${num(cur.records.length)} records`),
    tile(num(cur.vips.length), `VIPs, ${backends} backends`),
    tile(num(rates.qps, 1), "DNS queries/s"),
    tile(ms(rates.lagMean), `mean lag, ${num(rates.lagCount || 0)} changes`),
    tile(num(metric(cur.metrics, "beacon_gossip_syncs_total", { result: "started" })), `syncs, ${num(metric(cur.metrics, "beacon_gossip_syncs_total", { result: "failed" }))} failed`),
    tile(num(refused), "versions refused"),
  );
}

function renderMembers(cur) {
  fill($("members").tBodies[0], cur.nodes.map((n, i) => row([
    n.name,
    n.address || "–",
    span("st-" + n.state, n.state),
    String(n.incarnation),
    i === 0 ? "this node" : n.last_seen_secs_ago === null || n.last_seen_secs_ago === undefined ? "never" : ago(n.last_seen_secs_ago),
  ])));
}

const SOURCES = [
  ["beacon_catalog", "Mesos master"],
  ["beacon_mesos_agent", "Mesos agent"],
];

function renderSources(cur) {
  const m = cur.metrics;
  const rows = [];
  for (const [prefix, what] of SOURCES) {
    const polls = metric(m, prefix + "_refreshes_total");
    if (polls === null) continue;
    const last = metric(m, prefix + "_last_success_timestamp_seconds");
    const age = last > 0 ? Math.max(0, cur.serverNow - last) : null;
    const cls = age === null ? "st-never" : age < 30 ? "st-fresh" : "st-stale";
    rows.push(row([what, span(cls, age === null ? "never" : ago(age)), num(polls), num(metric(m, prefix + "_refresh_failures_total")), num(metric(m, prefix + "_tasks"))]));
  }
  // Other nodes' records come by gossip: as fresh as the last datagram from a peer.
  const seen = cur.nodes.slice(1).map((n) => n.last_seen_secs_ago).filter((s) => s !== null && s !== undefined);
  if (cur.nodes.length > 1) {
    const age = seen.length ? Math.min(...seen) : null;
    const cls = age === null ? "st-never" : age < 10 ? "st-fresh" : "st-stale";
    rows.push(row([`gossip (${cur.nodes.length - 1} peers)`, span(cls, age === null ? "never" : ago(age)), "–", "–", "–"]));
  }
  if (!rows.length) rows.push(row([el("td", { colspan: "5", class: "muted" }, "no poller on this node")]));
  fill($("sources").tBodies[0], rows);
}

function renderGossip(cur, rates) {
  const m = cur.metrics;
  const by = (s) => num(metric(m, "beacon_gossip_members", { state: s }));
  if (metric(m, "beacon_gossip_members") === null) {
    fill($("gossip").tBodies[0], [row(["gossip", "off: a single node"])]);
    return;
  }
  const reasons = (m.get("beacon_gossip_rejected_total") || []).filter((s) => s.value > 0).map((s) => `${s.labels.reason} ${s.value}`);
  fill($("gossip").tBodies[0], [
    row(["members up / suspect / down / left", `${by("up")} / ${by("suspect")} / ${by("down")} / ${by("left")}`]),
    row(["convergence lag, last changes", rates.lag === null ? "no change since last poll" : ms(rates.lag)]),
    row(["convergence lag, mean", `${ms(rates.lagMean)} over ${num(rates.lagCount || 0)} changes`]),
    row(["syncs started / failed", `${num(metric(m, "beacon_gossip_syncs_total", { result: "started" }))} / ${num(metric(m, "beacon_gossip_syncs_total", { result: "failed" }))}`]),
    row(["datagrams/s, bytes/s", `${num(rates.datagrams, 1)}, ${num(rates.bytes, 0)}`]),
    row(["versions refused", reasons.length ? reasons.join(", ") : "none"]),
  ]);
}

function vipKey(v) {
  return `${v.protocol} ${v.vip}`;
}

function renderVips(cur, prev, dt) {
  const before = new Map((prev ? prev.vips : []).map((v) => [vipKey(v), v]));
  const rows = [];
  for (const v of cur.vips) {
    const p = before.get(vipKey(v));
    const addrs = [v.address, v.address6].filter(Boolean).join(", ");
    const name = el("td", { colspan: "3" }, v.vip + " ", span("sub", `${v.protocol}${addrs ? " · " + addrs : ""}`));
    rows.push(row([name, span(v.programmed ? "st-yes" : "st-no", v.programmed ? "programmed" : "not programmed"), num(rate(v.packets, p && p.packets, dt), 1), num(rate(v.new_flows, p && p.new_flows, dt), 1)], { class: "vip" }));
    const pb = new Map(((p && p.backend) || []).map((b) => [`${b.ip}:${b.port}`, b]));
    for (const b of v.backend) {
      const q = pb.get(`${b.ip}:${b.port}`);
      const st = b.weight === 0 ? ["st-stale", "draining"] : b.reachable ? ["st-up", "reachable"] : ["st-withdrawn", "withdrawn"];
      rows.push(row([`${b.ip}:${b.port}`, String(b.weight), b.node || "–", span(st[0], st[1]), num(rate(b.packets, q && q.packets, dt), 1), num(rate(b.new_flows, q && q.new_flows, dt), 1)], { class: "backend" }));
    }
  }
  if (!rows.length) rows.push(row([el("td", { colspan: "6", class: "muted" }, "no VIP declared")]));
  fill($("vips").tBodies[0], rows);
}

// ---- records: grouped by name, searchable ------------------------------------------------------

function renderRecords(cur) {
  const key = cur.records.length + "|" + cur.records.map((x) => x.name + x.host).join(",");
  if (key !== state.recordsKey) {
    state.recordsKey = key;
    const groups = new Map();
    for (const rec of cur.records) {
      const k = rec.name + " " + rec.rtype;
      if (!groups.has(k)) groups.set(k, { name: rec.name, rtype: rec.rtype, hosts: [] });
      groups.get(k).hosts.push(rec.host);
    }
    state.groups = [...groups.values()].sort((a, b) => a.name.localeCompare(b.name) || a.rtype.localeCompare(b.rtype));
    drawRecords();
  }
}

function drawRecords() {
  const q = $("search").value.trim().toLowerCase();
  const words = q ? q.split(/\s+/) : [];
  const hit = (g) => words.every((w) => g.name.includes(w) || g.rtype.toLowerCase() === w || g.hosts.some((h) => h.includes(w)));
  const shown = state.groups.filter(hit);
  fill($("records").tBodies[0], shown.slice(0, MAX_ROWS).map((g) => row([g.name, g.rtype, g.hosts.join("  ")])));
  const more = shown.length > MAX_ROWS ? ` (first ${MAX_ROWS} drawn)` : "";
  $("count").textContent = `${shown.length} of ${state.groups.length} name/type pairs${more}`;
}

// ---- recent changes: the difference between two polls -----------------------------------------

function note(cls, text) {
  state.changes.unshift({ at: new Date(), cls, text });
  state.changes.length = Math.min(state.changes.length, MAX_CHANGES);
}

/** Notes what is in `a` and not in `b`, up to a few one by one and then a count. */
function noteMissing(a, b, cls, sign, what) {
  const missing = [...a].filter((x) => !b.has(x));
  for (const x of missing.slice(0, 6)) note(cls, `${sign} ${what} ${x}`);
  if (missing.length > 6) note(cls, `${sign} ${missing.length - 6} more ${what}s`);
}

function diff(cur, prev) {
  const was = new Map(prev.nodes.map((n) => [n.name, n]));
  for (const n of cur.nodes) {
    const p = was.get(n.name);
    if (!p) note("add", `+ member ${n.name} (${n.state})`);
    else if (p.state !== n.state) note("chg", `member ${n.name}: ${p.state} → ${n.state}`);
    else if (p.incarnation !== n.incarnation) note("chg", `member ${n.name}: incarnation ${p.incarnation} → ${n.incarnation}`);
    was.delete(n.name);
  }
  for (const name of was.keys()) note("del", `− member ${name}`);
  const recs = (list) => new Set(list.map((x) => `${x.name} ${x.rtype} ${x.host}`));
  const [rc, rp] = [recs(cur.records), recs(prev.records)];
  noteMissing(rc, rp, "add", "+", "record");
  noteMissing(rp, rc, "del", "−", "record");
  const backs = (list) => new Set(list.flatMap((v) => v.backend.map((b) => `${v.vip} → ${b.ip}:${b.port}${b.reachable ? "" : " (withdrawn)"} w${b.weight}`)));
  noteMissing(backs(cur.vips), backs(prev.vips), "add", "+", "backend");
  noteMissing(backs(prev.vips), backs(cur.vips), "del", "−", "backend");
  const prog = (list) => new Set(list.map((v) => `${vipKey(v)} ${v.programmed ? "programmed" : "not programmed"}`));
  noteMissing(prog(cur.vips), prog(prev.vips), "chg", "", "VIP");
  if (cur.ready !== prev.ready) note(cur.ready ? "add" : "del", cur.ready ? "ready" : "not ready: " + cur.readyText);
}

function renderChanges() {
  $("changes").replaceChildren(...state.changes.map((c) => el("li", { class: c.cls }, el("time", {}, clock(c.at)), c.text)));
}

// ---- graphs ------------------------------------------------------------------------------------

function push(series, v) {
  series.push(v);
  if (series.length > HISTORY) series.shift();
}

function renderGraphs(rates) {
  push(state.series.qps, rates.qps);
  push(state.series.lag, rates.lag === null ? null : rates.lag * 1000);
  push(state.series.flows, rates.flows);
  $("qps-now").textContent = "now " + num(rates.qps, 1);
  $("lag-now").textContent = rates.lag === null ? "no change in the last poll" : "last " + ms(rates.lag);
  $("flows-now").textContent = "now " + num(rates.flows, 1);
  draw($("g-qps"), state.series.qps, "#2f5fb3", "");
  draw($("g-lag"), state.series.lag, "#a15c00", " ms");
  draw($("g-flows"), state.series.flows, "#16794c", "");
}

/** A line over the last HISTORY polls, gaps where a value is null, the top of the scale labelled. */
function draw(canvas, series, colour, unit) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const values = series.filter((v) => v !== null);
  const top = niceMax(Math.max(1, ...values));
  const pad = { l: 4, r: 4, t: 14, b: 4 };
  // A young page spreads its few points over a minute's width, not the whole five minutes.
  const span = Math.min(HISTORY, Math.max(30, series.length));
  const x = (i) => pad.l + ((w - pad.l - pad.r) * (i + span - series.length)) / (span - 1);
  const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / top;
  g.strokeStyle = "#e3e6ec";
  g.beginPath();
  g.moveTo(pad.l, y(top));
  g.lineTo(w - pad.r, y(top));
  g.moveTo(pad.l, y(top / 2));
  g.lineTo(w - pad.r, y(top / 2));
  g.stroke();
  g.fillStyle = "#667085";
  g.font = "11px system-ui, sans-serif";
  g.fillText(num(top) + unit, pad.l + 2, pad.t - 3);
  g.strokeStyle = colour;
  g.fillStyle = colour;
  g.lineWidth = 1.5;
  g.beginPath();
  let drawing = false;
  series.forEach((v, i) => {
    if (v === null) {
      drawing = false;
      return;
    }
    if (drawing) g.lineTo(x(i), y(v));
    else g.moveTo(x(i), y(v));
    drawing = true;
    g.fillRect(x(i) - 1, y(v) - 1, 2, 2);
  });
  g.stroke();
  if (!values.length) {
    g.fillStyle = "#667085";
    g.fillText("no data yet", w / 2 - 30, h / 2);
  }
}

/** 1, 2 or 5 times a power of ten, at least `v`. */
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5, 10].map((k) => k * p).find((k) => k >= v);
}

$("search").addEventListener("input", drawRecords);
poll();
