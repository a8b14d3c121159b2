// tracker/web/app.js — the dashboard: reads the JSON API (the documents of
// `trackerctl --json`), follows /api/v1/events/stream, and pings a peer with
// the page's token. No framework, no build step.
"use strict";

// The token a ping must show; a restarted tracker has a new one (refreshToken).
let token = document.querySelector('meta[name="peershare-token"]').content;
const $ = (id) => document.getElementById(id);
const pings = new Map();          // peer name -> {live, rtt_ms}
const maxEvents = 100;
// Rows drawn per table: the API's documents hold up to 2,000 peers or names,
// and a table that long costs the browser a full layout at every change of
// the page (measured: Chromium took more CPU than the tracker under load).
// Search narrows the index; the count says how many there are.
const maxRows = 100;
let lastSeq = 0;
let searchText = "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function humanSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit + 1 < units.length) { value /= 1024; unit++; }
  return unit === 0 ? bytes + " B" : value.toFixed(1) + " " + units[unit];
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

function ago(epochSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
  return Math.floor(s / 86400) + " d ago";
}

function duration(seconds) {
  if (seconds < 60) return seconds + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h";
}

// ---- status ----------------------------------------------------------------

function setStatus(state, text) {
  $("status").className = "status " + state;
  $("status-text").textContent = text;
}

// ---- peers -----------------------------------------------------------------

function reachableCell(name) {
  const p = pings.get(name);
  if (!p) return el("span", { class: "pill" }, "not pinged");
  if (p.pending) return el("span", { class: "pill" }, "pinging…");
  if (p.problem) return el("span", { class: "pill no" }, p.problem);
  return p.live ? el("span", { class: "pill yes" }, "yes · " + p.rtt_ms.toFixed(2) + " ms")
                : el("span", { class: "pill no" }, "no answer");
}

// Reads the page's token again; true if it changed (the tracker restarted).
async function refreshToken() {
  const doc = await getJSON("/api/v1/token");
  const changed = doc.token !== token;
  token = doc.token;
  return changed;
}

function postPing(name) {
  return fetch("/api/v1/peers/" + encodeURIComponent(name) + "/ping", {
    method: "POST", headers: { "X-Peershare-Token": token }, cache: "no-store",
  });
}

async function ping(name, button) {
  button.disabled = true;
  pings.set(name, { pending: true });
  renderReachable(name);
  try {
    let response = await postPing(name);
    // 403: a token from before a restart the stream has not noticed yet; once more with a fresh one.
    if (response.status === 403 && await refreshToken()) response = await postPing(name);
    if (response.status === 403) {
      pings.set(name, { problem: "tracker restarted: reload the page" });
      setStatus("down", "tracker restarted: reload the page");
      return;
    }
    const result = await response.json();
    if (!response.ok) throw new Error(result.error || ("HTTP " + response.status));
    pings.set(name, { live: result.live, rtt_ms: result.rtt_ms || 0 });
  } catch (e) {
    pings.set(name, { live: false, rtt_ms: 0 });
  } finally {
    button.disabled = false;
    renderReachable(name);
  }
}

function renderReachable(name) {
  for (const row of $("peers").tBodies[0].rows) {
    if (row.dataset.peer === name) row.cells[4].replaceChildren(reachableCell(name));
  }
}

async function refreshPeers() {
  const doc = await getJSON("/api/v1/peers");
  const rows = doc.peers.slice(0, maxRows).map((p) => {
    const button = el("button", { type: "button", "aria-label": "ping " + p.name }, "Ping");
    button.addEventListener("click", () => ping(p.name, button));
    const since = el("span", { title: new Date(p.since * 1000).toLocaleString() }, ago(p.since));
    const row = el("tr", {},
      el("td", { class: "name" }, p.name),
      // The tracker's dial-back (p.reachable): false means fetchers cannot connect there.
      el("td", { class: "mono hide-narrow", title: p.reach_reason || "" },
        p.address + ":" + p.port + (p.reachable === false ? " (port closed to others)" : "")),
      el("td", { class: "num" }, p.files),
      el("td", { class: "hide-narrow" }, since),
      el("td", {}, reachableCell(p.name)),
      el("td", {}, button));
    row.dataset.peer = p.name;
    return row;
  });
  $("peers").tBodies[0].replaceChildren(...rows);
  $("peers-empty").hidden = rows.length > 0;
  $("peers-count").textContent = shownOf(rows.length, doc.peers.length, doc.truncated);
}

// "12", or "100 of 2000+" when only the first rows are drawn.
function shownOf(shown, total, truncated) {
  const all = total + (truncated ? "+" : "");
  return shown < total ? shown + " of " + all : all;
}

// ---- index -----------------------------------------------------------------

async function refreshIndex() {
  const text = searchText;
  const doc = await getJSON("/api/v1/files" + (text ? "?text=" + encodeURIComponent(text) : ""));
  if (text !== searchText) return;   // a newer search is on its way
  const rows = doc.files.slice(0, maxRows).map((f) => el("tr", {},
    el("td", { class: "name" }, f.name),
    el("td", { class: "num" }, humanSize(f.size)),
    el("td", { class: "mono hide-narrow", title: f.id }, f.id.slice(0, 12)),
    el("td", {}, f.holders.join(", ") + (f.holder_count > f.holders.length ? " +" + (f.holder_count - f.holders.length) : ""))));
  $("index").tBodies[0].replaceChildren(...rows);
  $("index-empty").hidden = rows.length > 0;
  $("index-empty").textContent = text ? "No name contains “" + text + "”." : "Nothing published.";
  $("index-count").textContent = shownOf(rows.length, doc.files.length, doc.truncated);
}

// ---- events ----------------------------------------------------------------

function describe(e) {
  let what = e.peer;
  if (e.file) what += " · “" + e.file + "”";
  if (e.detail) what += " (" + e.detail + ")";
  return what;
}

// New events are drawn newest first in the next animation frame, and at most
// every drawIntervalMs while they keep coming: under a flood (the stream's 25
// events every 250 ms) the list is laid out twice a second, not four times.
// A busy tracker's flood is drawn without the highlight, which would repaint
// the whole list many times a second. Only the newest maxEvents wait to be
// drawn (a hidden tab runs no animation frames, and the stream goes on).
const drawIntervalMs = 500;
let pending = [];
let drawTimer = null, lastDraw = -Infinity;
function addEvent(e, fresh) {
  if (e.seq <= lastSeq) return;
  lastSeq = e.seq;
  pending.push({ e, fresh });
  if (pending.length > maxEvents) pending.shift();
  if (drawTimer !== null) return;
  drawTimer = setTimeout(() => requestAnimationFrame(() => {
    drawTimer = null;
    lastDraw = performance.now();
    drawEvents();
  }), Math.max(0, lastDraw + drawIntervalMs - performance.now()));
}

function drawEvents() {
  const batch = pending;
  pending = [];
  const calm = batch.length <= 3;
  const items = batch.reverse().map(({ e, fresh }) => el("li", { class: fresh && calm ? "fresh" : "" },
    el("time", { datetime: new Date(e.time * 1000).toISOString() }, clock(e.time)),
    el("span", { class: "kind " + e.kind }, e.kind.replace("_", " ")),
    el("span", { class: "what" }, describe(e))));
  const list = $("events");
  list.prepend(...items);
  while (list.children.length > maxEvents) list.lastElementChild.remove();
}

// Coalesces the refreshes that many events in a row would each ask for: one
// run `delay` ms after the first call, then at most one every `interval` ms
// while calls keep coming (a flood of joins refreshes once a second, not at
// every batch of the stream).
function throttle(fn, delay, interval) {
  let timer = null, last = -Infinity;
  return () => {
    if (timer !== null) return;
    const wait = Math.max(delay, last + interval - performance.now());
    timer = setTimeout(() => {
      timer = null;
      last = performance.now();
      fn().catch(() => {});
    }, wait);
  };
}
const peersSoon = throttle(refreshPeers, 100, 1000);
const indexSoon = throttle(refreshIndex, 150, 1000);
// Typing: the index for the text typed last, 150 ms after the last key.
let searchTimer = null;
function searchSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => refreshIndex().catch(() => {}), 150);
}

function follow() {
  const source = new EventSource("/api/v1/events/stream");
  let dropped = false;
  source.onopen = () => {
    if (!dropped) return setStatus("live", "live");
    // Back after a drop: the tracker may have restarted, with a new token, its
    // events numbered from 1 again and peers joined meanwhile. "live" once the
    // token is fresh, so a ping from now on shows it.
    dropped = false;
    refreshToken().then((restarted) => {
      if (restarted) {
        lastSeq = 0;
        peersSoon();
        indexSoon();
      }
      setStatus("live", "live");
    }).catch(() => setStatus("down", "tracker restarted: reload the page"));
  };
  source.onerror = () => {
    dropped = true;
    setStatus("down", "reconnecting…");
  };
  source.addEventListener("event", (message) => {
    const e = JSON.parse(message.data);
    addEvent(e, true);
    if (e.kind === "joined" || e.kind === "left" || e.kind === "published" || e.kind === "unpublished") peersSoon();
    if (e.kind === "published" || e.kind === "unpublished" || e.kind === "left") indexSoon();
  });
  source.addEventListener("skipped", (message) => {
    const n = JSON.parse(message.data).skipped;
    addEvent({ seq: lastSeq + 0.5, time: Date.now() / 1000, kind: "busy", peer: n + " events not shown" }, false);
  });
}

// ---- totals and charts -----------------------------------------------------

async function refreshStats() {
  const s = await getJSON("/api/v1/stats");
  $("t-peers").textContent = s.peers;
  $("t-files").textContent = s.files;
  $("t-names").textContent = s.names;
  $("t-uptime").textContent = duration(s.uptime_s);
}

const SVG = "http://www.w3.org/2000/svg";

function drawChart(svg, values, stroke, fill) {
  const width = 300, height = 80, top = 4;
  const max = Math.max(1, ...values);
  const n = Math.max(values.length, 2);
  const points = values.map((v, i) => [(i / (n - 1)) * width, height - (v / max) * (height - top)]);
  const line = points.map(([x, y], i) => (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1)).join(" ");
  const nodes = [];
  for (const f of [0.25, 0.5, 0.75]) {
    const grid = document.createElementNS(SVG, "line");
    grid.setAttribute("x1", "0"); grid.setAttribute("x2", String(width));
    grid.setAttribute("y1", String(height * f)); grid.setAttribute("y2", String(height * f));
    grid.setAttribute("stroke", "currentColor"); grid.setAttribute("stroke-opacity", "0.08");
    grid.setAttribute("vector-effect", "non-scaling-stroke");
    nodes.push(grid);
  }
  if (points.length > 1) {
    const area = document.createElementNS(SVG, "path");
    area.setAttribute("d", line + " L" + points[points.length - 1][0].toFixed(1) + " " + height + " L0 " + height + " Z");
    area.setAttribute("fill", fill);
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", line);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", stroke);
    path.setAttribute("stroke-width", "2");
    path.setAttribute("vector-effect", "non-scaling-stroke");
    nodes.push(area, path);
  }
  svg.replaceChildren(...nodes);
  return max;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

async function refreshHistory() {
  const h = await getJSON("/api/v1/history");
  const samples = h.samples.slice(1);   // the first has no rate yet
  const rates = samples.map((s) => s.request_rate);
  const peers = h.samples.map((s) => s.peers);
  const rateMax = drawChart($("chart-rate"), rates, cssVar("--accent"), cssVar("--accent-soft"));
  const peersMax = drawChart($("chart-peers"), peers, cssVar("--peers"), cssVar("--peers-soft"));
  $("chart-rate-max").textContent = "max " + (rateMax < 10 ? rateMax.toFixed(1) : Math.round(rateMax)) + "/s";
  $("chart-peers-max").textContent = "max " + peersMax;
  const last = rates.length ? rates[rates.length - 1] : 0;
  $("t-rate").textContent = last < 10 ? last.toFixed(1) : Math.round(last);
}

// ---- start -----------------------------------------------------------------

async function start() {
  $("search").addEventListener("input", (event) => {
    searchText = event.target.value.trim();
    searchSoon();
  });
  const history = await getJSON("/api/v1/events");
  for (const e of history.events) addEvent(e, false);
  follow();   // after the history: an event in both shows once (by seq)
  await Promise.all([refreshPeers(), refreshIndex(), refreshStats(), refreshHistory()]);
  setInterval(() => refreshStats().catch(() => {}), 2000);
  setInterval(() => refreshHistory().catch(() => {}), 2000);
  setInterval(() => refreshPeers().catch(() => {}), 30000);   // "since" ages; joins come by the stream
}

start().catch((e) => setStatus("down", "cannot reach the tracker: " + e.message));
