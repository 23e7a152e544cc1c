// The dashboard's history drawing (http/dashboard/assets/history.js) on GET /v1/history
// shapes as the daemon sends them: sparkline path data with gaps, the timeline strip's
// marks, and the node card's figures. The browser test (dashboard_test.js) checks that the
// lines appear on a real page at desktop and phone width.
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const h = require(path.join(__dirname, '..', '..', 'http', 'dashboard', 'assets', 'history.js'));

let checks = 0;
const check = (name, fn) => { fn(); checks++; console.log(`ok  ${name}`); };

check('no numbers: no path', () => {
  assert.equal(h.sparkPath([]), '');
  assert.equal(h.sparkPath([null, null]), '');
});

check('a full series is one run from left to right, scaled to its maximum', () => {
  const d = h.sparkPath([0, 50, 100], 100, 22);
  assert.equal(d, 'M0.0,21.0L50.0,11.0L100.0,1.0');
});

check('a given maximum clamps values above it', () => {
  assert.equal(h.sparkPath([200, 0], 10, 12, 100), 'M0.0,1.0L10.0,11.0');
});

check('gaps split the line; a lone point is a short dash', () => {
  const d = h.sparkPath([1, 1, null, 1, null], 40, 12);
  assert.equal((d.match(/M/g) || []).length, 2);
  assert.match(d, /^M0\.0,1\.0L10\.0,1\.0M30\.0,1\.0h10\.0$/);
});

check('a flat zero line stays visible inside the box', () => {
  assert.equal(h.sparkPath([0, 0], 10, 12), 'M0.0,11.0L10.0,11.0');
});

check('a series is drawn on the hour\'s axis: padded on the left, cut to the window', () => {
  assert.deepEqual(h.inWindow([1, 2], 4), [null, null, 1, 2]);
  assert.deepEqual(h.inWindow([1, 2, 3, 4, 5], 4), [2, 3, 4, 5]);
  assert.equal(h.inWindow([7]).length, 360);
});

check('latest is the newest number', () => {
  assert.equal(h.latest([1, 2, null]), 2);
  assert.equal(h.latest([null]), null);
});

check('timeline marks: where and how each event reads', () => {
  const start = Date.parse('2026-12-07T12:00:00Z'), end = start + 3600_000;
  const m = h.timelineMarks([
    { time: '2026-12-07T12:00:00.000Z', kind: 'started' },
    { time: '2026-12-07T12:30:00.000Z', kind: 'exited', code: 3, signal: null },
    { time: '2026-12-07T12:30:00.100Z', kind: 'backoff' },
    { time: '2026-12-07T12:45:00.000Z', kind: 'exited', code: null, signal: 'SIGKILL' },
    { time: '2026-12-07T13:00:00.000Z', kind: 'exited', code: 0, signal: null },
    { time: '2026-12-07T11:00:00.000Z', kind: 'failed' },
  ], start, end, 96);
  assert.deepEqual(m.map((x) => x.x), [0, 48, 48, 72, 96, 0]);
  assert.deepEqual(m.map((x) => x.cls), ['tl-start', 'tl-warn', 'tl-restart', 'tl-bad', 'tl-exit', 'tl-bad']);
  assert.match(m[1].title, /^exited 3 · /);
  assert.match(m[3].title, /^killed by SIGKILL · /);
});

check('node figures: load over CPUs, memory and disk used of total', () => {
  global.fmtBytes = require(path.join(__dirname, '..', '..', 'http', 'dashboard', 'assets', 'usage.js')).fmtBytes;
  const GiB = 1 << 30;
  const n = h.nodeFigures({ cpus: 4, load: [2, 1.5, 0.25],
    memory: { total_bytes: 8 * GiB, available_bytes: 6 * GiB }, disk: { total_bytes: 100 * GiB, available_bytes: 10 * GiB } });
  assert.equal(n.load, '2.00 1.50 0.25');
  assert.equal(n.loadFraction, 0.5);
  assert.equal(n.memory, '2.0 GiB of 8.0 GiB');
  assert.equal(n.memoryFraction, 0.25);
  assert.equal(n.diskFraction, 0.9);
  const none = h.nodeFigures({ cpus: 1, load: null, memory: { total_bytes: null, available_bytes: null }, disk: {} });
  assert.deepEqual([none.load, none.memory, none.disk, none.memoryFraction], ['—', '—', '—', null]);
});

console.log(`${checks} checks passed`);
