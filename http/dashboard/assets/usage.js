// Usage next to its limit, for the service rows. Pure functions of one GET /v1/services
// entry (no DOM), so tests/dashboard/usage_test.js can check them with node on the shapes the
// daemon sends. Loaded before app.js.
'use strict';

function fmtBytes(b) {
  if (b === null || b === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return (i === 0 ? b : b.toFixed(b < 10 ? 1 : 0)) + ' ' + units[i];
}

const isCount = (v) => typeof v === 'number' && isFinite(v);

// How full a bound is: 'ok' below 80 %, 'warn' from there, 'full' from 95 % (memory.max is
// where the kernel reclaims and then OOM-kills; pids.max where fork fails).
function usageLevel(fraction) {
  if (fraction === null) return '';
  return fraction >= 0.95 ? 'full' : fraction >= 0.8 ? 'warn' : 'ok';
}

const share = (used, bound) => (isCount(used) && isCount(bound) && bound > 0 ? Math.min(1, used / bound) : null);

// The cgroup's memory.current covers the service's children; without the memory controller
// the main process's RSS is what there is.
function memoryUsed(svc) {
  const c = svc.cgroup_stats;
  if (c && isCount(c.memory_current)) return { bytes: c.memory_current, scope: 'cgroup' };
  if (isCount(svc.rss_bytes)) return { bytes: svc.rss_bytes, scope: 'main process' };
  return null;
}

// { text, sub, tasks, fraction, level, title } for the memory cell: the usage, the bound it
// is measured against (memory_max, else memory_high) and, when pids_max is set, the task
// count against it (a line of its own: the column is narrow).
function memoryCell(svc) {
  const limits = svc.limits || {};
  const used = memoryUsed(svc);
  const bound = isCount(limits.memory_max) ? { bytes: limits.memory_max, word: 'max' }
    : isCount(limits.memory_high) ? { bytes: limits.memory_high, word: 'high' } : null;
  let sub = '';
  if (bound) sub = used ? `of ${fmtBytes(bound.bytes)}${bound.word === 'high' ? ' (high)' : ''}` : `${bound.word} ${fmtBytes(bound.bytes)}`;
  const pids = svc.cgroup_stats && isCount(svc.cgroup_stats.pids_current) ? svc.cgroup_stats.pids_current : null;
  let tasks = '';
  if (isCount(limits.pids_max)) tasks = pids === null ? `max ${limits.pids_max} tasks` : `${pids}/${limits.pids_max} tasks`;
  const fraction = used && bound ? share(used.bytes, bound.bytes) : null;
  const pidsFraction = isCount(limits.pids_max) ? share(pids, limits.pids_max) : null;
  const worst = [fraction, pidsFraction].filter((f) => f !== null);
  const titles = [];
  if (used) titles.push(`${fmtBytes(used.bytes)} (${used.scope})`);
  if (isCount(limits.memory_max)) titles.push(`memory_max ${fmtBytes(limits.memory_max)}`);
  if (isCount(limits.memory_high)) titles.push(`memory_high ${fmtBytes(limits.memory_high)}`);
  if (isCount(limits.pids_max)) titles.push(`pids_max ${limits.pids_max}`);
  return {
    text: used ? fmtBytes(used.bytes) : '—',
    sub,
    tasks,
    fraction,
    level: usageLevel(worst.length ? Math.max(...worst) : null),
    title: titles.join(', '),
  };
}

// The cgroup's cpu.stat covers the children; the main process's CPU time otherwise.
function cpuSecondsOf(svc) {
  const c = svc.cgroup_stats;
  if (c && isCount(c.cpu_usage_usec)) return c.cpu_usage_usec / 1e6;
  return isCount(svc.cpu_seconds) ? svc.cpu_seconds : null;
}

// cpu_max as the same unit the CPU column shows: percent of one CPU ("150%" is 1.5 CPUs).
function cpuCap(svc) {
  const cpus = svc.limits && isCount(svc.limits.cpu_max) ? svc.limits.cpu_max : null;
  if (cpus === null) return { pct: null, text: '' };
  const pct = cpus * 100;
  return { pct, text: `max ${pct.toFixed(pct < 10 && pct % 1 ? 1 : 0)}%` };
}

function cpuLevel(pct, cap) {
  return cap.pct === null || pct === null || pct === undefined ? { fraction: null, level: '' }
    : { fraction: share(pct, cap.pct), level: usageLevel(share(pct, cap.pct)) };
}

if (typeof module !== 'undefined') module.exports = { fmtBytes, memoryCell, cpuSecondsOf, cpuCap, cpuLevel, usageLevel };
