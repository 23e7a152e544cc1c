// Dockless dashboard: one page, no framework, no build step. Talks to the JSON API
// of the daemon that serves it (see docs: GET /v1/services, /v1/events?follow=1 as
// NDJSON, /v1/services/{name}/logs?follow=1 as a chunked text stream). Every call
// carries the API key (asked once, kept in localStorage) as a Bearer header, so
// the streams are fetch() streams: EventSource cannot send headers, and a key in
// a URL would end up in logs and history.
'use strict';

const $ = (id) => document.getElementById(id);
const EVENTS_MAX = 200;       // event rows kept in the history list
const REFRESH_EVERY_MS = 5000; // CPU/memory drift without events; a cheap poll keeps them fresh
const DEBOUNCE_MS = 120;      // a restart emits a burst of events: one GET per service per burst

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, error, detail) {
    super(error);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

// ------------------------------------------------------------------ API key

const KEY_STORE = 'dockless.apiKey';
let apiKey = '';
try { apiKey = localStorage.getItem(KEY_STORE) || ''; } catch { /* storage disabled */ }
let keyPrompt = null;  // the open dialog's promise: many 401s, one question

function withKey(headers) {
  return apiKey ? { ...headers, Authorization: `Bearer ${apiKey}` } : { ...headers };
}

async function errorOf(res) {
  try { const j = await res.clone().json(); return j.error || `HTTP ${res.status}`; } catch { return `HTTP ${res.status}`; }
}

// Shows the key form until a key the daemon accepts is entered; resolves then.
function askForKey(why) {
  if (keyPrompt) return keyPrompt;
  const dialog = $('key-dialog'), input = $('key-input'), msg = $('key-msg'), form = $('key-form');
  setText(msg, why || 'This daemon needs an API key.');
  dialog.hidden = false;
  input.value = '';
  input.focus();
  keyPrompt = new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const candidate = input.value.trim();
      if (!candidate) return;
      let res;
      try {
        res = await fetch('/v1/services', { headers: { Accept: 'application/json', Authorization: `Bearer ${candidate}` } });
      } catch (err) {
        setText(msg, `Daemon unreachable: ${err.message || err}`);
        return;
      }
      if (res.status === 401) {
        msg.dataset.state = 'error';
        setText(msg, `Key refused: ${await errorOf(res)}`);
        input.select();
        return;
      }
      apiKey = candidate;
      try { localStorage.setItem(KEY_STORE, candidate); } catch { /* kept for this page only */ }
      dialog.hidden = true;
      delete msg.dataset.state;
      form.onsubmit = null;
      keyPrompt = null;
      resolve();
    };
  });
  return keyPrompt;
}

// fetch with the key; a 401 asks for the key and tries again with the new one.
async function authFetch(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, { ...init, headers: withKey(init.headers || {}) });
    if (res.status !== 401 || attempt >= 5) return res;
    await askForKey(apiKey ? `Key refused: ${await errorOf(res)}` : 'This daemon needs an API key.');
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await authFetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'daemon unreachable', String(e.message || e));
  }
  const text = await res.text();
  let data = null;
  if ((res.headers.get('Content-Type') || '').includes('json') && text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' && 'error' in data ? data.error : `HTTP ${res.status}`;
    throw new ApiError(res.status, err, data && typeof data === 'object' ? data.detail : text.slice(0, 300));
  }
  return data;
}

function detailText(detail) {
  if (detail === null || detail === undefined || detail === '') return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && typeof d === 'object')
      ? (d.field ? d.field + ': ' : '') + (d.message || d.text || JSON.stringify(d))
      : String(d)).join('\n');
  }
  if (typeof detail === 'object') {
    if (detail.message) return detail.message;
    return Object.entries(detail).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  }
  return String(detail);
}

const svcPath = (name) => '/v1/services/' + encodeURIComponent(name);

// ------------------------------------------------------------------ formatting

function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return '—';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
  const p2 = (n) => String(n).padStart(2, '0');
  if (d) return `${d}d ${p2(h)}h`;
  if (h) return `${h}h ${p2(m)}m`;
  if (m) return `${m}m ${p2(sec)}s`;
  return `${sec}s`;
}

function fmtCpuSeconds(s) {
  if (s === null || s === undefined) return '';
  return s < 60 ? s.toFixed(2) + 's total' : fmtDuration(s) + ' total';
}

function fmtTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso || '');
  const sameDay = d.toDateString() === new Date().toDateString();
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return sameDay ? t : d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + t;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// Sets text only when it changed: fewer style recalcs on a Pi.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// ------------------------------------------------------------------ toasts

function toast(title, detail, kind) {
  const t = el('div', { class: 'toast' + (kind === 'ok' ? ' ok' : ''), role: kind === 'ok' ? 'status' : 'alert' },
    el('strong', { text: title }));
  const close = el('button', { type: 'button', 'aria-label': 'Dismiss', text: '×' });
  close.onclick = () => t.remove();
  t.append(close);
  if (detail) t.append(el('span', { class: 'detail', text: detail }));
  const box = $('toasts');
  box.append(t);
  while (box.childElementCount > 4) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'ok' ? 3500 : 8000);
}

function toastError(what, e) {
  toast(`${what}: ${e.error || e.message}`, detailText(e.detail));
}

// ------------------------------------------------------------------ services

const services = new Map();  // name -> { svc, row, cells, at (performance.now of the data), cpu }
let inFlight = new Set();    // names with an action request outstanding

const STATES_RUNNING = new Set(['running', 'starting']);
const STATES_DOWN = new Set(['stopped', 'exited', 'failed']);

// A bar under a usage that has a limit: how much of the limit is used.
function meterEl() {
  return el('span', { class: 'meter', hidden: '', 'aria-hidden': 'true' }, el('span', { class: 'meter-fill' }));
}

function setMeter(meter, { fraction, level }) {
  meter.hidden = fraction === null;
  if (fraction === null) return;
  meter.dataset.level = level;
  meter.firstChild.style.width = (fraction * 100).toFixed(1) + '%';
}

function makeRow(name) {
  const c = {};
  const cell = (cls, label, ...kids) => el('div', Object.assign({ class: cls, role: 'cell' }, label ? { 'data-label': label } : {}), ...kids);
  c.name = el('span', { class: 'svc-name', text: name, title: name });
  c.sub = el('span', { class: 'svc-cmd' });
  c.badge = el('span', { class: 'badge' });
  c.attached = el('span', { class: 'badge plain attached', text: 'attached', hidden: '',
    title: 'someone else\'s process, watched through a pidfd (attach = { ... })' });
  c.stateSub = el('span', { class: 'cell-sub' });
  c.health = el('span', { class: 'badge' });
  c.healthSub = el('span', { class: 'cell-sub' });
  c.uptime = el('span');
  c.restarts = el('span');
  c.cpu = el('span');
  c.cpuSub = el('span', { class: 'cell-sub' });
  c.cpuMeter = meterEl();
  c.mem = el('span');
  c.memSub = el('span', { class: 'cell-sub' });
  c.tasks = el('span', { class: 'cell-sub tasks', hidden: '' });
  c.memMeter = meterEl();
  c.ports = el('span', { class: 'ports' });
  const btn = (label, cls, action) => {
    const b = el('button', { type: 'button', class: 'btn small ' + cls, text: label, 'data-action': action,
      'aria-label': `${label} ${name}` });
    b.addEventListener('click', () => action === 'logs' ? openLogs(name, b) : act(name, action));
    return b;
  };
  c.start = btn('Start', '', 'start');
  c.stop = btn('Stop', 'danger', 'stop');
  c.restart = btn('Restart', '', 'restart');
  c.logs = btn('Logs', 'ghost', 'logs');
  const row = el('div', { class: 'svc-row', role: 'row', 'data-name': name },
    cell('c-name', null, c.name, c.sub),
    cell('c-state', 'State', c.badge, c.attached, c.stateSub),
    cell('c-health', 'Health', c.health, c.healthSub),
    cell('c-uptime', 'Uptime', c.uptime),
    cell('c-restarts', 'Restarts', c.restarts),
    cell('c-cpu', 'CPU', c.cpu, c.cpuMeter, c.cpuSub),
    cell('c-mem', 'Memory', c.mem, c.memMeter, c.memSub, c.tasks),
    cell('c-ports', 'Ports', c.ports),
    cell('c-actions actions', null, c.start, c.stop, c.restart, c.logs));
  return { row, cells: c };
}

function uptimeOf(entry) {
  const s = entry.svc;
  if (s.uptime_seconds === null || s.uptime_seconds === undefined) return null;
  if (!STATES_RUNNING.has(s.state) && s.state !== 'stopping') return s.uptime_seconds;
  return s.uptime_seconds + (performance.now() - entry.at) / 1000;
}

// CPU %: the CPU-seconds delta over the wall-clock delta of two samples of the
// same pid at least 2 s apart (closer samples, as in an event burst, are noise).
function sampleCpu(entry, svc, now) {
  const prev = entry.cpuPrev;
  const cpu = cpuSecondsOf(svc);
  if (cpu === null || svc.pid === null) {
    entry.cpuPrev = null; entry.cpuPct = null; return;
  }
  if (!prev || prev.pid !== svc.pid) {
    // First sample of this process: its average since start, until a delta exists.
    entry.cpuPrev = { cpu, t: now, pid: svc.pid };
    entry.cpuPct = svc.uptime_seconds > 0.5 ? Math.min(100 * 64, cpu / svc.uptime_seconds * 100) : null;
    return;
  }
  const dt = (now - prev.t) / 1000;
  if (dt >= 2) {
    entry.cpuPct = Math.max(0, (cpu - prev.cpu) / dt * 100);
    entry.cpuPrev = { cpu, t: now, pid: svc.pid };
  }
}

function render(entry) {
  const s = entry.svc, c = entry.cells, row = entry.row;
  row.dataset.state = s.state;
  row.dataset.pid = s.pid === null || s.pid === undefined ? '' : String(s.pid);
  row.dataset.restarts = String(s.restarts ?? 0);

  const err = s.last_error && !STATES_RUNNING.has(s.state) ? s.last_error : '';
  const cmd = Array.isArray(s.command) ? s.command.join(' ') : '';
  c.sub.className = err ? 'svc-error' : 'svc-cmd';
  setText(c.sub, err || cmd);
  c.sub.title = err || cmd;

  // start_on = "connection": down, but its sockets are watched; the next connection starts it.
  const shown = s.waiting_for_connection ? 'listening' : s.state;
  c.badge.className = 'badge s-' + shown;
  setText(c.badge, shown);
  c.attached.hidden = !s.attached;
  let sub = '';
  if (s.state === 'backoff' && s.next_restart_in_ms !== null && s.next_restart_in_ms !== undefined) {
    sub = `retry in ${fmtDuration(Math.ceil(s.next_restart_in_ms / 1000))}`;
  } else if (s.pid) {
    sub = `pid ${s.pid}`;
  } else if (s.exit_signal) {
    sub = `killed by ${s.exit_signal}`;
  } else if (s.exit_code !== null && s.exit_code !== undefined) {
    sub = `exit ${s.exit_code}`;
  }
  setText(c.stateSub, sub);

  const h = s.health || 'none';
  c.health.className = 'badge h-' + h;
  setText(c.health, h === 'none' ? '—' : h);
  setText(c.healthSub, h === 'none' ? '' : (s.health_reason || ''));
  c.healthSub.title = s.health_reason || '';

  setText(c.uptime, fmtDuration(uptimeOf(entry)));
  setText(c.restarts, String(s.restarts ?? 0));
  setText(c.cpu, entry.cpuPct === null || entry.cpuPct === undefined
    ? '—'
    : entry.cpuPct.toFixed(entry.cpuPct < 10 ? 1 : 0) + '%');
  const cap = cpuCap(s);
  setText(c.cpuSub, [fmtCpuSeconds(cpuSecondsOf(s)), cap.text].filter(Boolean).join(' · '));
  setMeter(c.cpuMeter, cpuLevel(entry.cpuPct, cap));
  const mem = memoryCell(s);
  setText(c.mem, mem.text);
  setText(c.memSub, mem.sub);
  setText(c.tasks, mem.tasks);
  c.tasks.hidden = !mem.tasks;
  c.mem.parentNode.title = mem.title;
  setMeter(c.memMeter, mem);

  const ports = (s.ports || []).join(',');
  if (c.ports.dataset.ports !== ports) {
    c.ports.dataset.ports = ports;
    c.ports.replaceChildren();
    if (!s.ports || !s.ports.length) c.ports.textContent = '—';
    (s.ports || []).forEach((p, i) => {
      if (i) c.ports.append(', ');
      c.ports.append(el('a', { href: `${location.protocol}//${location.hostname}:${p}/`, target: '_blank',
        rel: 'noopener', text: String(p) }));
    });
  }

  const busy = inFlight.has(s.name);
  c.start.disabled = busy || STATES_RUNNING.has(s.state);
  c.stop.disabled = busy || (STATES_DOWN.has(s.state) && !s.waiting_for_connection);
  c.restart.disabled = busy;
  // Attached: Dockless cannot launch it (no restart); stop only with attach.control.
  if (s.attached) {
    c.restart.disabled = true;
    if (!s.control) c.stop.disabled = true;
    c.restart.title = 'attached: Dockless cannot restart a process it did not start';
    c.stop.title = s.control ? '' : 'attached read-only (attach.control = false)';
  }
}

function upsert(svc, requestedAt) {
  let entry = services.get(svc.name);
  // Answers can overtake each other (an event's GET and the periodic list):
  // only data requested after what is shown replaces it.
  if (entry && requestedAt < entry.requestedAt) return;
  const now = performance.now();
  if (!entry) {
    const { row, cells } = makeRow(svc.name);
    entry = { row, cells, cpuPrev: null, cpuPct: null };
    services.set(svc.name, entry);
    const table = $('services');
    const after = [...services.keys()].sort().filter((n) => n > svc.name)[0];
    table.insertBefore(row, after ? services.get(after).row : null);
  }
  entry.svc = svc;
  entry.at = now;
  entry.requestedAt = requestedAt;
  sampleCpu(entry, svc, now);
  render(entry);
  updateSummary();
}

function removeService(name) {
  const entry = services.get(name);
  if (!entry) return;
  entry.row.remove();
  services.delete(name);
  updateSummary();
}

function updateSummary() {
  const all = [...services.values()].map((e) => e.svc);
  const running = all.filter((s) => s.state === 'running').length;
  const failed = all.filter((s) => s.state === 'failed' || s.state === 'backoff').length;
  let text = `${all.length} service${all.length === 1 ? '' : 's'} · ${running} running`;
  if (failed) text += ` · ${failed} failing`;
  setText($('summary'), text);
  $('services-empty').hidden = all.length > 0 || !loadedOnce;
}

let loadedOnce = false;

async function refreshAll() {
  const t0 = performance.now();
  try {
    const list = await api('GET', '/v1/services');
    const names = new Set();
    for (const svc of list || []) { names.add(svc.name); upsert(svc, t0); }
    for (const name of [...services.keys()]) {
      if (!names.has(name) && services.get(name).requestedAt < t0) removeService(name);
    }
    loadedOnce = true;
    updateSummary();
  } catch (e) {
    if (!refreshAll.failed) toastError('Cannot list services', e);
    refreshAll.failed = true;
    return;
  }
  refreshAll.failed = false;
}

async function refreshOne(name) {
  const t0 = performance.now();
  try {
    upsert(await api('GET', svcPath(name)), t0);
  } catch (e) {
    if (e.status === 404) removeService(name);
  }
}

const pending = new Set();
let pendingAll = false, pendingTimer = 0;
function scheduleRefresh(name) {
  if (name) pending.add(name); else pendingAll = true;
  if (pendingTimer) return;
  pendingTimer = setTimeout(() => {
    pendingTimer = 0;
    if (pendingAll) { pendingAll = false; pending.clear(); refreshAll(); return; }
    const names = [...pending];
    pending.clear();
    names.forEach(refreshOne);
  }, DEBOUNCE_MS);
}

async function act(name, action) {
  const entry = services.get(name);
  const button = entry && entry.cells[action];
  inFlight.add(name);
  if (entry) render(entry);
  if (button) button.classList.add('busy');
  const t0 = performance.now();
  try {
    const svc = await api('POST', `${svcPath(name)}/${action}`);
    inFlight.delete(name);
    if (svc && svc.name) upsert(svc, t0);
  } catch (e) {
    toastError(`${action[0].toUpperCase() + action.slice(1)} ${name} failed`, e);
  } finally {
    inFlight.delete(name);
    if (button) button.classList.remove('busy');
    const current = services.get(name);
    if (current) render(current);
    scheduleRefresh(name);
  }
}

// Uptime ticks locally between refreshes.
setInterval(() => {
  for (const entry of services.values()) setText(entry.cells.uptime, fmtDuration(uptimeOf(entry)));
}, 1000);
setInterval(() => { if (document.visibilityState === 'visible') refreshAll(); }, REFRESH_EVERY_MS);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refreshAll(); });

// ------------------------------------------------------------------ events

let lastSeq = 0;
let eventsShown = 0;
const BAD = /fail|unhealthy|error|dropped|killed|timeout|unavailable/;
const GOOD = /^started$|^healthy$|registered|succeeded|ready|resumed/;
const HIDDEN_KEYS = new Set(['seq', 'time', 'service', 'kind']);

function addEvent(ev, live) {
  if (typeof ev.seq === 'number') {
    if (ev.seq <= lastSeq) return false;  // replayed on reconnect: already shown
    lastSeq = ev.seq;
  }
  const details = Object.entries(ev).filter(([k]) => !HIDDEN_KEYS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`).join('  ');
  const kind = String(ev.kind || 'event');
  const li = el('li', { class: live ? 'new' : '', 'data-seq': String(ev.seq ?? '') },
    el('time', { class: 'ev-time', datetime: ev.time || '', title: ev.time || '', text: fmtTime(ev.time) }),
    el('div', { class: 'ev-head' },
      el('span', { class: 'ev-kind' + (BAD.test(kind) ? ' bad' : GOOD.test(kind) ? ' good' : ''), text: kind.replace(/_/g, ' ') }),
      el('span', { class: 'ev-svc', text: ev.service || 'daemon' })),
    el('div', { class: 'ev-detail', text: details }));
  const list = $('events');
  const empty = list.querySelector('.empty');
  if (empty) empty.remove();
  list.prepend(li);
  while (list.childElementCount > EVENTS_MAX) list.lastElementChild.remove();
  eventsShown = list.childElementCount;
  setText($('events-count'), `latest ${eventsShown}`);
  return true;
}

async function loadEventHistory() {
  try {
    const res = await authFetch('/v1/events', { headers: { Accept: 'application/x-ndjson' } });
    if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`, null);
    const text = await res.text();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try { addEvent(JSON.parse(line), false); } catch { /* a torn line: skip */ }
    }
  } catch (e) {
    toastError('Cannot load events', e);
  }
  if (!$('events').childElementCount) $('events').append(el('li', { class: 'empty', text: 'No events yet.' }));
}

let eventsCtrl = null;
function setConn(stateName, text) {
  $('conn').dataset.state = stateName;
  setText($('conn-text'), text || stateName);
}

async function connectEvents() {
  if (eventsCtrl) eventsCtrl.abort();
  const ctrl = new AbortController();
  eventsCtrl = ctrl;
  // since= skips what the history already showed; addEvent drops any replayed seq.
  const q = new URLSearchParams({ follow: '1' });
  if (lastSeq) q.set('since', String(lastSeq));
  try {
    const res = await authFetch(`/v1/events?${q}`, { signal: ctrl.signal, headers: { Accept: 'application/x-ndjson' } });
    if (!res.ok) throw new ApiError(res.status, await errorOf(res), null);
    setConn('live');
    scheduleRefresh(null);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let partial = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines = (partial + decoder.decode(value, { stream: true })).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        if (!line.trim()) continue;
        let ev;
        try { ev = JSON.parse(line); } catch { continue; }
        if (addEvent(ev, true)) scheduleRefresh(ev.service || null);
      }
    }
  } catch {
    if (ctrl.signal.aborted) return;
  }
  if (eventsCtrl !== ctrl) return;
  setConn('disconnected');
  setTimeout(() => { if (eventsCtrl === ctrl) connectEvents(); }, 3000);
}
