// The last hour at a glance: CPU and memory sparklines in each service row, its starts,
// exits and restarts as a timeline strip, and the node's load, memory and disk. One
// GET /v1/history per refresh (every service and the node in one answer), only while the
// page is visible: the daemon keeps the points anyway, nothing is lost by not looking.
// The drawing is pure functions (inline SVG path data, no library), checked with node by
// tests/dashboard/history_test.js; the DOM part runs only in a browser. Loaded after app.js.
'use strict';

const SPARK_W = 96, SPARK_H = 22, STRIP_H = 10;

// SVG path data for a series with gaps (null): one "M…L…" run per stretch of numbers,
// x spread over `w`, y scaled to `max` (the series' own maximum unless given), 1 px inset so
// a flat line at 0 or at the top stays visible. A lone point becomes a short dash.
function sparkPath(values, w = SPARK_W, h = SPARK_H, max = null) {
  const nums = values.filter((v) => typeof v === 'number' && isFinite(v));
  if (!nums.length) return '';
  const top = max !== null && max > 0 ? max : Math.max(...nums) || 1;
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  const y = (v) => (h - 1 - (Math.min(v, top) / top) * (h - 2)).toFixed(1);
  let d = '', run = 0;
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !isFinite(v)) { run = 0; return; }
    const x = (i * step).toFixed(1);
    d += (run === 0 ? `M${x},${y(v)}` : `L${x},${y(v)}`);
    run++;
    const next = values[i + 1];
    if (run === 1 && (typeof next !== 'number' || !isFinite(next))) d += `h${Math.max(1.5, step).toFixed(1)}`;
  });
  return d;
}

// A series as the daemon sends it starts at its first point; drawn on the hour's axis (the
// ring's 360 ticks) it is padded with gaps on the left, so that a spike lines up with the exit
// under it on the timeline strip, and a service up for five minutes shows five minutes.
const WINDOW_POINTS = 360;
function inWindow(values, points = WINDOW_POINTS) {
  return values.length >= points ? values.slice(-points) : Array(points - values.length).fill(null).concat(values);
}

// The latest figure of a series (its last number), or null.
function latest(values) {
  for (let i = values.length - 1; i >= 0; i--) if (typeof values[i] === 'number') return values[i];
  return null;
}

// Where each timeline event sits on a strip of width `w` covering [startMs, endMs], and how
// it reads: starts green, exits amber (red when killed by a signal or failed), restarts blue.
function timelineMarks(events, startMs, endMs, w = SPARK_W) {
  const span = Math.max(1, endMs - startMs);
  return (events || []).map((e) => {
    const t = Date.parse(e.time);
    const x = Math.max(0, Math.min(w, ((t - startMs) / span) * w));
    let cls = 'tl-start', what = 'started';
    if (e.kind === 'exited') {
      cls = e.signal ? 'tl-bad' : (e.code === 0 ? 'tl-exit' : 'tl-warn');
      what = e.signal ? `killed by ${e.signal}` : e.code === null || e.code === undefined ? 'exited' : `exited ${e.code}`;
    } else if (e.kind === 'backoff') { cls = 'tl-restart'; what = 'restart scheduled'; }
    else if (e.kind === 'failed' || e.kind === 'spawn_failed' || e.kind === 'oom_killed') { cls = 'tl-bad'; what = e.kind.replace('_', ' '); }
    else if (e.kind === 'attached') what = 'attached';
    return { x: +x.toFixed(1), cls, title: `${what} · ${new Date(t).toLocaleTimeString()}` };
  }).filter((m) => !isNaN(m.x));
}

// The node card's figures: { load, loadFraction, memory, memoryFraction, disk, diskFraction }.
// A fraction is how full (load over the CPU count, memory and disk used over total).
function nodeFigures(node) {
  const used = (part) => part && typeof part.total_bytes === 'number' && typeof part.available_bytes === 'number' && part.total_bytes > 0
    ? { used: part.total_bytes - part.available_bytes, total: part.total_bytes } : null;
  const fmt = typeof fmtBytes === 'function' ? fmtBytes : (b) => `${b} B`;
  const out = { load: '—', loadFraction: null, memory: '—', memoryFraction: null, disk: '—', diskFraction: null };
  if (!node) return out;
  if (Array.isArray(node.load)) {
    out.load = node.load.map((l) => l.toFixed(2)).join(' ');
    if (node.cpus > 0) out.loadFraction = Math.min(1, node.load[0] / node.cpus);
  }
  const m = used(node.memory), d = used(node.disk);
  if (m) { out.memory = `${fmt(m.used)} of ${fmt(m.total)}`; out.memoryFraction = m.used / m.total; }
  if (d) { out.disk = `${fmt(d.used)} of ${fmt(d.total)}`; out.diskFraction = d.used / d.total; }
  return out;
}

if (typeof module !== 'undefined') module.exports = { sparkPath, inWindow, latest, timelineMarks, nodeFigures };

if (typeof document !== 'undefined') (() => {
  const SVG = 'http://www.w3.org/2000/svg';
  let last = null;      // the last GET /v1/history answer
  let timer = null;

  const svgEl = (cls, label) => {
    const s = document.createElementNS(SVG, 'svg');
    s.setAttribute('class', cls);
    s.setAttribute('viewBox', `0 0 ${SPARK_W} ${cls === 'timeline' ? STRIP_H : SPARK_H}`);
    s.setAttribute('preserveAspectRatio', 'none');
    s.setAttribute('role', 'img');
    s.setAttribute('aria-label', label);
    return s;
  };

  function spark(cell, cls, values, label) {
    let s = cell.querySelector('svg.' + cls.split(' ').join('.'));
    if (!s) { s = svgEl('spark ' + cls, label); cell.append(s); }
    let p = s.firstChild;
    if (!p) { p = document.createElementNS(SVG, 'path'); s.append(p); }
    p.setAttribute('d', sparkPath(inWindow(values)));
    s.dataset.points = String(values.filter((v) => v !== null).length);
  }

  function strip(cell, h, endMs) {
    let s = cell.querySelector('svg.timeline');
    if (!s) { s = svgEl('timeline', 'starts, exits and restarts in the last hour'); cell.append(s); }
    const span = (h.interval_seconds || 10) * WINDOW_POINTS * 1000;
    s.replaceChildren(...timelineMarks(h.events, endMs - span, endMs).map((m) => {
      const r = document.createElementNS(SVG, 'rect');
      r.setAttribute('x', String(Math.min(m.x, SPARK_W - 2)));
      r.setAttribute('y', '0'); r.setAttribute('width', '2'); r.setAttribute('height', String(STRIP_H));
      r.setAttribute('class', m.cls);
      const t = document.createElementNS(SVG, 'title');
      t.textContent = m.title;
      r.append(t);
      return r;
    }));
    s.dataset.events = String((h.events || []).length);
  }

  function decorate() {
    if (!last) return;
    const endMs = Date.now();
    for (const h of last.services) {
      const row = document.querySelector(`#services .svc-row[data-name="${CSS.escape(h.name)}"]`);
      if (!row) continue;
      const cpu = row.querySelector('.c-cpu'), mem = row.querySelector('.c-mem'), rs = row.querySelector('.c-restarts');
      if (cpu) spark(cpu, 'spark-cpu', h.cpu_percent, `CPU over the last hour, now ${latest(h.cpu_percent) ?? '—'}%`);
      if (mem) spark(mem, 'spark-mem', h.memory_bytes, 'memory over the last hour');
      if (rs) strip(rs, h, endMs);
    }
    const n = nodeFigures(last.node);
    for (const [key, fraction] of [['load', n.loadFraction], ['memory', n.memoryFraction], ['disk', n.diskFraction]]) {
      const v = document.getElementById('node-' + key);
      if (!v) continue;
      v.textContent = n[key];
      const meter = document.getElementById('node-' + key + '-meter');
      if (meter) setMeter(meter, { fraction, level: usageLevel(fraction) });
    }
  }

  async function refresh() {
    clearTimeout(timer);
    timer = null;
    if (document.visibilityState !== 'visible') return;  // resumed by visibilitychange
    try {
      last = await api('GET', '/v1/history');
      decorate();
    } catch { /* the service list shows the daemon's state; the sparklines wait for the next try */ }
    const every = Math.max(1, (last && last.services[0] && last.services[0].interval_seconds) || 10) * 1000;
    timer = setTimeout(refresh, every);
  }

  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible' && !timer) refresh(); });
  // Rows are made by app.js as services appear: they get the last answer's lines at once.
  new MutationObserver(decorate).observe(document.getElementById('services'), { childList: true });
  refresh();
})();
