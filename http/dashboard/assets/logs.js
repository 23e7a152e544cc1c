// The log panel: one service's output streamed with fetch() (a chunked text stream;
// EventSource cannot send the key), follow/pause, search, stream choice. Loaded after app.js,
// whose api helpers, $() and el() it uses.
'use strict';

const LOG_LINES_MAX = 5000;   // DOM lines kept in the log panel (and lines buffered while paused)

const logs = {
  name: null, ctrl: null, follow: true, buffer: [], search: '', stream: '', opener: null,
  retry: 0, gen: 0,
};

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

function paintLine(div) {
  const t = div.t, q = logs.search;
  if (!q) {
    div.classList.remove('hide');
    if (div.marked) { div.textContent = t; div.marked = false; }
    return;
  }
  const lower = t.toLowerCase(), ql = q.toLowerCase();
  let i = lower.indexOf(ql);
  if (i < 0) { div.classList.add('hide'); return; }
  div.classList.remove('hide');
  let html = '', from = 0;
  while (i >= 0) {
    html += escapeHtml(t.slice(from, i)) + '<mark>' + escapeHtml(t.slice(i, i + q.length)) + '</mark>';
    from = i + q.length;
    i = lower.indexOf(ql, from);
  }
  div.innerHTML = html + escapeHtml(t.slice(from));
  div.marked = true;
}

function appendLines(lines) {
  const body = $('logs-body');
  const frag = document.createDocumentFragment();
  for (const t of lines.slice(-LOG_LINES_MAX)) {
    const div = document.createElement('div');
    div.className = 'ln';
    div.t = t;
    div.textContent = t;
    if (logs.search) paintLine(div);
    frag.append(div);
  }
  body.append(frag);
  let extra = body.childElementCount - LOG_LINES_MAX;
  while (extra-- > 0) body.firstElementChild.remove();
  if (logs.follow) body.scrollTop = body.scrollHeight;
}

function note(text) {
  const body = $('logs-body');
  body.append(el('div', { class: 'ln note', text }));
  if (logs.follow) body.scrollTop = body.scrollHeight;
}

function pushLines(lines) {
  if (!lines.length) return;
  if (logs.follow) { appendLines(lines); return; }
  logs.buffer.push(...lines);
  if (logs.buffer.length > LOG_LINES_MAX) logs.buffer.splice(0, logs.buffer.length - LOG_LINES_MAX);
  setText($('logs-follow'), `Resume (${logs.buffer.length})`);
}

function setLogsStatus(text) { setText($('logs-status'), text); }

async function streamLogs(tail) {
  const gen = ++logs.gen;
  if (logs.ctrl) logs.ctrl.abort();
  const ctrl = new AbortController();
  logs.ctrl = ctrl;
  const q = new URLSearchParams({ follow: '1', tail: String(tail) });
  if (logs.stream) q.set('stream', logs.stream);
  setLogsStatus('connecting…');
  let partial = '';
  try {
    const res = await authFetch(`${svcPath(logs.name)}/logs?${q}`, { signal: ctrl.signal, headers: { Accept: 'text/plain' } });
    if (!res.ok) {
      let err = `HTTP ${res.status}`, detail = null;
      try { const j = await res.json(); err = j.error || err; detail = j.detail; } catch { /* not JSON */ }
      throw new ApiError(res.status, err, detail);
    }
    setLogsStatus(logs.follow ? 'following' : 'paused');
    logs.retry = 0;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = partial + decoder.decode(value, { stream: true });
      const lines = text.split('\n');
      partial = lines.pop();
      pushLines(lines);
    }
    partial += decoder.decode();
    if (partial) pushLines([partial]);
    partial = '';
    if (gen !== logs.gen) return;
    setLogsStatus('stream ended; reconnecting…');
  } catch (e) {
    if (ctrl.signal.aborted || gen !== logs.gen) return;  // closed or replaced: nothing to report
    if (partial) pushLines([partial]);
    if (e.status === 404) { setLogsStatus('no such service'); note('— the service is gone —'); return; }
    setLogsStatus(`disconnected (${e.error || e.message}); retrying…`);
  }
  // The daemon went away or closed the stream: reconnect with only new output.
  logs.retry = Math.min(logs.retry + 1, 5);
  setTimeout(() => { if (gen === logs.gen && logs.name) streamLogs(0); }, 1000 * logs.retry);
}

function openLogs(name, opener) {
  closeLogs(false);
  logs.name = name;
  logs.opener = opener || null;
  logs.follow = true;
  logs.buffer = [];
  $('logs-follow').setAttribute('aria-pressed', 'true');
  setText($('logs-follow'), 'Pause');
  setText($('logs-title'), name);
  $('logs-body').replaceChildren();
  $('logs').hidden = false;
  document.body.classList.add('logs-open');
  streamLogs(200);
  $('logs-body').focus({ preventScroll: true });
}

function closeLogs(restoreFocus = true) {
  if (!logs.name) return;
  logs.gen++;
  // Aborting the fetch closes the connection: the daemon's follower ends there.
  if (logs.ctrl) logs.ctrl.abort();
  logs.ctrl = null;
  logs.name = null;
  logs.buffer = [];
  $('logs').hidden = true;
  $('logs-body').replaceChildren();
  document.body.classList.remove('logs-open');
  if (restoreFocus && logs.opener && logs.opener.isConnected) logs.opener.focus();
}

$('logs-close').addEventListener('click', () => closeLogs());
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && logs.name) closeLogs(); });
$('logs-follow').addEventListener('click', () => {
  logs.follow = !logs.follow;
  $('logs-follow').setAttribute('aria-pressed', String(logs.follow));
  setText($('logs-follow'), logs.follow ? 'Pause' : 'Resume');
  if (logs.follow) {
    const buffered = logs.buffer;
    logs.buffer = [];
    appendLines(buffered);
    $('logs-body').scrollTop = $('logs-body').scrollHeight;
  }
  if (logs.ctrl) setLogsStatus(logs.follow ? 'following' : 'paused');
});
$('logs-stream').addEventListener('change', (e) => {
  logs.stream = e.target.value;
  if (!logs.name) return;
  logs.buffer = [];
  $('logs-body').replaceChildren();
  streamLogs(200);
});
let searchTimer = 0;
$('logs-search').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    logs.search = e.target.value;
    for (const div of $('logs-body').children) if (div.t !== undefined) paintLine(div);
    if (logs.follow) $('logs-body').scrollTop = $('logs-body').scrollHeight;
  }, 120);
});
