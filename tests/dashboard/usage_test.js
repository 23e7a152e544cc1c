// The dashboard's usage-next-to-limit arithmetic (http/dashboard/assets/usage.js) on
// GET /v1/services entries shaped as the daemon sends them: what the browser test cannot
// reach on a host whose cgroup2 has no memory or pids controller (a limited service does not
// start there, so it never has usage beside its limit).
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const u = require(path.join(__dirname, '..', '..', 'http', 'dashboard', 'assets', 'usage.js'));

const MiB = 1 << 20;
const base = { name: 'web', state: 'running', pid: 42, cpu_seconds: 1.5, rss_bytes: 3 * MiB, cgroup_stats: null, limits: null };
const svc = (over) => Object.assign({}, base, over);
let checks = 0;
const check = (name, fn) => { fn(); checks++; console.log(`ok  ${name}`); };

check('no limits: usage only, no bound, no meter', () => {
  const m = u.memoryCell(svc({}));
  assert.deepEqual([m.text, m.sub, m.tasks, m.fraction, m.level], ['3.0 MiB', '', '', null, '']);
  assert.equal(m.title, '3.0 MiB (main process)');
  assert.deepEqual(u.cpuCap(svc({})), { pct: null, text: '' });
  assert.deepEqual(u.cpuLevel(12, u.cpuCap(svc({}))), { fraction: null, level: '' });
});

check('the cgroup\'s memory.current wins over the main process\'s RSS (children count)', () => {
  const m = u.memoryCell(svc({ cgroup_stats: { memory_current: 48 * MiB, cpu_usage_usec: 2_500_000 }, limits: { memory_max: 64 * MiB } }));
  assert.deepEqual([m.text, m.sub, m.fraction, m.level], ['48 MiB', 'of 64 MiB', 0.75, 'ok']);
  assert.match(m.title, /^48 MiB \(cgroup\), memory_max 64 MiB$/);
  assert.equal(u.cpuSecondsOf(svc({ cgroup_stats: { cpu_usage_usec: 2_500_000 } })), 2.5);
  assert.equal(u.cpuSecondsOf(svc({ cgroup_stats: {} })), 1.5, 'cpu.stat absent: the main process');
});

check('levels: warn from 80 %, full from 95 %, capped at 1', () => {
  const at = (used) => u.memoryCell(svc({ cgroup_stats: { memory_current: used }, limits: { memory_max: 100 * MiB } }));
  assert.equal(at(79 * MiB).level, 'ok');
  assert.equal(at(80 * MiB).level, 'warn');
  assert.equal(at(95 * MiB).level, 'full');
  assert.equal(at(120 * MiB).fraction, 1);
});

check('memory_high is the bound when there is no memory_max', () => {
  const m = u.memoryCell(svc({ limits: { memory_high: 4 * MiB, memory_swap_max: 'max' } }));
  assert.deepEqual([m.sub, m.fraction, m.level], ['of 4.0 MiB (high)', 0.75, 'ok']);
  const unbounded = u.memoryCell(svc({ limits: { memory_max: 'max' } }));
  assert.deepEqual([unbounded.sub, unbounded.fraction], ['', null], '"max" is no bound');
});

check('pids: the count against pids_max, and the worse of the two sets the level', () => {
  const m = u.memoryCell(svc({ cgroup_stats: { memory_current: 10 * MiB, pids_current: 31 }, limits: { memory_max: 100 * MiB, pids_max: 32 } }));
  assert.deepEqual([m.sub, m.tasks, m.fraction, m.level], ['of 100 MiB', '31/32 tasks', 0.1, 'full']);
});

check('not running: the bound alone ("max 64 MiB"), no meter', () => {
  const m = u.memoryCell(svc({ state: 'failed', pid: null, rss_bytes: null, cpu_seconds: null, limits: { memory_max: 64 * MiB, pids_max: 32 } }));
  assert.deepEqual([m.text, m.sub, m.tasks, m.fraction, m.level], ['—', 'max 64 MiB', 'max 32 tasks', null, '']);
});

check('cpu_max in percent of one CPU, as the CPU column', () => {
  assert.deepEqual(u.cpuCap(svc({ limits: { cpu_max: 0.5 } })), { pct: 50, text: 'max 50%' });
  assert.equal(u.cpuCap(svc({ limits: { cpu_max: 1.5 } })).text, 'max 150%');
  assert.equal(u.cpuCap(svc({ limits: { cpu_max: 0.025 } })).text, 'max 2.5%');
  assert.equal(u.cpuCap(svc({ limits: { cpu_max: 'max' } })).text, '');
  assert.deepEqual(u.cpuLevel(45, u.cpuCap(svc({ limits: { cpu_max: 0.5 } }))), { fraction: 0.9, level: 'warn' });
  assert.deepEqual(u.cpuLevel(null, u.cpuCap(svc({ limits: { cpu_max: 0.5 } }))), { fraction: null, level: '' });
});

assert.equal(checks, 7);
console.log(`${checks} checks passed`);
