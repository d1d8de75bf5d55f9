// blpopq dashboard: polls /api/state every second and draws it. Every text from Redis goes
// in through textContent, never as HTML: task ids, clients and reasons are anyone's bytes.
"use strict";

const TIERS = ["vip", "alto", "comun"];
const COLOURS = { vip: "#c0392b", alto: "#e08e0b", comun: "#2e86c1" };
const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;

function $(id) { return document.getElementById(id); }

function colour(tier) { return COLOURS[tier] || "#7f8c8d"; }

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(seconds);
  if (s < 60) return sign + s.toFixed(1) + " s";
  s = Math.floor(s);
  if (s < 3600) return sign + Math.floor(s / 60) + " m " + String(s % 60).padStart(2, "0") + " s";
  return sign + Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " m";
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function replaceRows(body, rows) {
  body.replaceChildren(...rows);
}

function svgNode(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function drawQueues(status) {
  for (const tier of TIERS) {
    const t = status.tiers[tier] || { length: 0, oldest_age_s: null };
    $("depth-" + tier).textContent = String(t.length);
    $("oldest-" + tier).textContent = t.length ? duration(t.oldest_age_s) : "-";
  }
  $("depth-total").textContent = String(status.queued);
  $("totals").textContent = `results ${status.results} · dead letters ${status.dead_letters}` +
    ` · served ${status.served} · open tasks ${status.open_tasks}`;
  const r = status.recent;
  const atLeast = r.capped ? "at least " : "";
  $("rate").textContent = `recent rate: ${atLeast}${r.per_s.toFixed(2)}/s ` +
    `(${atLeast}${r.results} results in the last ${r.window_s} s)`;
}

function drawInFlight(status) {
  $("inflight-count").textContent = String(status.in_flight.length);
  replaceRows($("inflight"), status.in_flight.map((c) => {
    const row = document.createElement("tr");
    cell(row, c.id);
    cell(row, c.tier).style.color = colour(c.tier);
    cell(row, c.worker);
    cell(row, duration(c.age_s));
    return row;
  }));
}

function drawHosts(state) {
  const status = state.status;
  $("workers-count").textContent = `${status.workers_alive} alive of ${status.workers.length}`;
  $("hosts").replaceChildren(...state.hosts.map((h) => {
    const box = document.createElement("div");
    box.className = "host";
    const title = document.createElement("h3");
    title.textContent = `${h.host} (${h.workers.length})`;
    const table = document.createElement("table");
    for (const w of h.workers) {
      const row = document.createElement("tr");
      if (!w.alive) row.className = "dead-worker";
      cell(row, w.worker);
      cell(row, w.alive ? `lease ${duration(w.lease_expires_in_s)}` :
        `lease ran out ${duration(-w.lease_expires_in_s)} ago`);
      cell(row, w.kernel || "-");
      cell(row, w.tasks.join(", ") || "idle");
      table.appendChild(row);
    }
    box.append(title, table);
    return box;
  }));
}

const LANE = 26, LEFT = 120, WIDTH = 1000;

function drawTimeline(batch) {
  const svg = $("timeline"), waiting = $("waiting");
  if (!batch) {
    $("batch-id").textContent = "none yet";
    $("timeline-count").textContent = "0 results";
    svg.dataset.tasks = "0";
    svg.replaceChildren();
    waiting.replaceChildren();
    return;
  }
  const tl = batch.timeline;
  $("batch-id").textContent = batch.id;
  $("timeline-count").textContent = `${batch.results} results` + (tl.aggregated ?
    " (too many to draw one by one: each pixel shows the tier that kept the worker busiest)" : "") +
    `, over ${tl.span.toFixed(3)} s`;
  svg.dataset.tasks = String(tl.tasks);
  const height = Math.max(1, tl.lanes.length) * LANE + 20;
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
  const span = Math.max(tl.span, 1e-3);
  const x = (t) => LEFT + (t / span) * (WIDTH - LEFT - 10);
  const nodes = [];
  let lastHost = null;
  tl.lanes.forEach((lane, i) => {
    const label = svgNode("text", { x: 4, y: i * LANE + 16, "font-size": 11 });
    label.textContent = (lane.host !== lastHost ? lane.host + " " : "") + lane.label;
    if (lane.host !== lastHost && i > 0) {
      nodes.push(svgNode("line", { x1: 0, x2: WIDTH, y1: i * LANE, y2: i * LANE, stroke: "#ccc" }));
    }
    lastHost = lane.host;
    nodes.push(label);
  });
  for (const [lane, enq, start, end, tier, slot] of tl.bars) {
    const y = lane * LANE;
    nodes.push(svgNode("line", { x1: x(enq), x2: x(start), y1: y + 15 + slot * 9,
      y2: y + 15 + slot * 9, stroke: colour(tier), "stroke-width": 0.6, opacity: 0.6 }));
    nodes.push(svgNode("rect", { x: x(start), y: y + 3, height: 11, class: "bar",
      width: Math.max(1, x(end) - x(start)), fill: colour(tier) }));
  }
  for (const [lane, start, end, tier] of tl.segments) {
    nodes.push(svgNode("rect", { x: x(start), y: lane * LANE + 3, height: 18, class: "segment",
      width: Math.max(1, x(end) - x(start)), fill: colour(tier) }));
  }
  const axis = svgNode("text", { x: WIDTH - 10, y: height - 4, "font-size": 10, "text-anchor": "end" });
  axis.textContent = `${tl.span.toFixed(3)} s since the first enqueue`;
  nodes.push(axis);
  svg.replaceChildren(...nodes);
  drawWaiting(waiting, tl, x);
}

function drawWaiting(svg, tl, x) {
  let peak = 1;
  for (const steps of Object.values(tl.waiting)) for (const [, n] of steps) peak = Math.max(peak, n);
  const y = (n) => 110 - (n / peak) * 100;
  const nodes = [];
  for (const [tier, steps] of Object.entries(tl.waiting)) {
    if (steps.length < 2) continue;
    let points = "";
    steps.forEach(([at, n], k) => {
      if (k > 0) points += `${x(at)},${y(steps[k - 1][1])} `;
      points += `${x(at)},${y(n)} `;
    });
    points += `${x(tl.span)},${y(steps[steps.length - 1][1])}`;
    nodes.push(svgNode("polyline", { points, fill: "none", stroke: colour(tier), "stroke-width": 1.5 }));
  }
  const label = svgNode("text", { x: 4, y: 14, "font-size": 10 });
  label.textContent = `peak ${peak} waiting (rebuilt from the batch's results: other batches not shown)`;
  nodes.push(label);
  svg.replaceChildren(...nodes);
}

function drawDead(state) {
  $("dead-count").textContent = String(state.dead.count);
  replaceRows($("dead-letters"), state.dead.letters.map((d) => {
    const row = document.createElement("tr");
    cell(row, d.handle);
    cell(row, d.tier || "-");
    cell(row, d.batch || "-");
    cell(row, d.reason);
    const actions = cell(row, "");
    if (state.actions) {
      for (const action of ["requeue", "purge"]) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = action;
        button.dataset.action = action;
        button.dataset.handle = d.handle;
        button.addEventListener("click", () => act(`/api/dead/${action}`, { ids: [d.handle] }));
        actions.appendChild(button);
      }
    }
    return row;
  }));
}

async function act(path, body) {
  const message = $("message");
  message.className = "";
  message.textContent = "sending…";
  try {
    const reply = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Blpopq-Token": $("token").value },
      body: JSON.stringify(body),
    });
    const answer = await reply.json();
    message.className = answer.ok ? "done" : "refused";
    message.textContent = (answer.ok ? "" : `refused (${reply.status}): `) + answer.lines.join("\n");
  } catch (error) {
    message.className = "refused";
    message.textContent = `failed: ${error}`;
  }
  poll();
}

function draw(state) {
  const status = state.status;
  $("namespace").textContent = status.namespace;
  const line = $("status-line");
  line.className = "";
  line.textContent = `namespace ${status.namespace} · Redis time ` +
    new Date(status.time * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC · " +
    (state.actions ? "actions need the token" : "read-only");
  drawQueues(status);
  drawInFlight(status);
  drawHosts(state);
  drawTimeline(state.batch);
  drawDead(state);
  for (const id of ["token-box", "dead-actions", "batch-actions"]) $(id).hidden = !state.actions;
  $("batch-actions").hidden = !state.actions || !state.batch;
}

let timer = null;

async function poll() {
  clearTimeout(timer);
  try {
    const reply = await fetch("/api/state", { cache: "no-store" });
    const state = await reply.json();
    if (!reply.ok) throw new Error(state.error || reply.status);
    draw(state);
  } catch (error) {
    const line = $("status-line");
    line.className = "error";
    line.textContent = `cannot read the queue: ${error.message || error}`;
  }
  timer = setTimeout(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("cancel-last").addEventListener("click", () => {
    act("/api/cancel", { batch: $("batch-id").textContent });
  });
  $("requeue-all").addEventListener("click", () => act("/api/dead/requeue", { all: true }));
  $("purge-all").addEventListener("click", () => act("/api/dead/purge", { all: true }));
  poll();
});
