// End-to-end test of the dashboard: the real `dockless serve` (DOCKLESS_BIN) with two
// services, driven in the system's headless Chromium through playwright-core.
// Exit 0 pass, 1 fail, 77 skip (no chromium, no node modules and no way to install them).
'use strict';

const assert = require('node:assert/strict');
const cp = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const SKIP = 77;
const CHROMIUM = '/usr/bin/chromium';
const HERE = __dirname;
const SHOTS = process.env.DASHBOARD_SHOTS_DIR || process.cwd();
const OVERALL_MS = 240_000;
// The daemon's API key (DOCKLESS_API_KEYS): the page must ask for it.
const API_KEY = 'dockless-dash-key-0123456789abcdef';

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(SKIP);
}

// ------------------------------------------------------------------ prerequisites

const bin = process.env.DOCKLESS_BIN;
if (!bin || !fs.existsSync(bin)) skip(`DOCKLESS_BIN not set or missing: ${bin}`);
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not installed (tools/deps.sh --test installs it)`);

// playwright-core is pinned in package.json/package-lock.json and installed next to this
// file on first use. It never downloads a browser: the system's Chromium is used.
function loadPlaywright() {
  const modules = path.join(HERE, 'node_modules', 'playwright-core');
  if (!fs.existsSync(modules)) {
    console.log('installing playwright-core into tests/dashboard/node_modules (npm)…');
    const r = cp.spawnSync('npm', ['install', '--no-audit', '--no-fund'], {
      cwd: HERE, stdio: 'inherit', timeout: 120_000,
      env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
    });
    if (r.error || r.status !== 0) skip(`npm install failed (${r.error ? r.error.message : 'exit ' + r.status}); no playwright-core`);
  }
  return require(modules);
}
const { chromium } = loadPlaywright();

// ------------------------------------------------------------------ daemon

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 10_000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await sleep(intervalMs);
  }
}

const tq = (s) => JSON.stringify(s);  // a TOML basic string

class Daemon {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dockless-dash-'));
    this.proc = null;
  }

  async start() {
    this.port = await freePort();
    this.webPort = await freePort();
    const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const config = [
      '[services.ticker]',
      `command = ["sh", "-c", ${tq('i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done')}]`,
      'restart = "always"',
      '',
      '[services.web]',
      `command = [${tq(python)}, "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]`,
      `port = ${this.webPort}`,
      '',
      // Limits: shown next to the usage whether or not this host can enforce them (where it
      // cannot, the service does not start and the row says why).
      '[services.capped]',
      'command = ["sleep", "100000"]',
      'restart = "no"',
      'memory_max = "64M"',
      'cpu_max = "50%"',
      'pids_max = 32',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(this.dir, 'config.toml'), config);
    this.out = fs.openSync(path.join(this.dir, 'daemon.log'), 'a');
    this.proc = cp.spawn(bin, ['serve', '--config', path.join(this.dir, 'config.toml'),
      '--data-dir', path.join(this.dir, 'data'), '--listen', `127.0.0.1:${this.port}`,
      '--socket', path.join(this.dir, 'dockless.sock')], {
      cwd: this.dir, stdio: ['ignore', this.out, this.out], detached: true,
      // A history point a second (not 10 s): the sparklines fill while the test runs.
      env: { ...process.env, DOCKLESS_API_KEYS: API_KEY, DOCKLESS_HISTORY_INTERVAL: '1' },
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, sig) => resolve({ code, sig })));
    this.base = `http://127.0.0.1:${this.port}`;
    await waitFor('the daemon to answer /readyz', async () => {
      if (this.proc.exitCode !== null) throw new Error(`daemon exited with ${this.proc.exitCode}\n${this.log()}`);
      const r = await fetch(this.base + '/readyz').catch(() => null);
      return r && r.status === 200;
    }, 15_000);
    return this;
  }

  log() {
    try { return fs.readFileSync(path.join(this.dir, 'daemon.log'), 'utf8').split('\n').slice(-60).join('\n'); } catch { return ''; }
  }

  // Returns a complaint about the daemon's end (exit status, sanitizer report), or ''.
  async stop() {
    let problem = '';
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const done = await Promise.race([this.exited, sleep(20_000).then(() => null)]);
      // The daemon runs in its own process group: whatever it left behind goes with it.
      if (!done) {
        try { process.kill(-this.proc.pid, 'SIGKILL'); } catch { /* gone */ }
        problem = 'the daemon did not exit within 20 s of SIGTERM';
      } else if (done.code !== 0) {
        problem = `the daemon exited with ${done.code ?? done.sig}`;
      }
    }
    const log = this.log();
    if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(log)) problem += '\nsanitizer report in the daemon log';
    if (problem) problem += '\n--- daemon log (tail) ---\n' + log;
    if (this.out !== undefined) fs.closeSync(this.out);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return problem;
  }
}

// ------------------------------------------------------------------ browser helpers

const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const row = (name) => `.svc-row[data-name="${name}"]`;

async function rowData(page, name) {
  return page.$eval(row(name), (r) => ({ state: r.dataset.state, pid: r.dataset.pid, restarts: Number(r.dataset.restarts) }));
}

async function waitState(page, name, state, timeout = 15_000) {
  await page.waitForSelector(`${row(name)}[data-state="${state}"]`, { timeout });
}

function lastTick(lines) {
  let n = -1;
  for (const l of lines) { const m = /tick (\d+)/.exec(l); if (m) n = Math.max(n, Number(m[1])); }
  return n;
}

const logLines = (page) => page.$$eval('#logs-body .ln:not(.note)', (ds) => ds.map((d) => d.textContent));

async function noHorizontalOverflow(page, what) {
  const [sw, iw] = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth]);
  assert.ok(sw <= iw, `${what}: horizontal overflow, scrollWidth ${sw} > innerWidth ${iw}`);
}

// ------------------------------------------------------------------ the test

// history.js's lines in the ticker's row: CPU and memory sparklines drawn from at least two
// points each, and its restart (an exit and a start) on the timeline strip, each visible.
async function sparklinesShown(page, where) {
  await waitFor(`sparklines and a timeline in the ticker row (${where})`, async () => page.evaluate((sel) => {
    const r = document.querySelector(sel);
    const drawn = (cls) => {
      const s = r && r.querySelector('svg.' + cls);
      return s && +s.dataset.points >= 2 && /^M/.test(s.querySelector('path').getAttribute('d')) &&
        s.getBoundingClientRect().width > 20;
    };
    const tl = r && r.querySelector('svg.timeline');
    return drawn('spark-cpu') && drawn('spark-mem') && tl && +tl.dataset.events >= 2 && tl.querySelectorAll('rect').length >= 2;
  }, row('ticker')), 20_000);
}

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok  ${name} (${Date.now() - t0} ms)`);
}

async function run(daemon, browser, errors) {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await desktop.newPage();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of (401|404|409|422)/.test(m.text())) errors.push(`console: ${m.text()}`); });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));

  await step('first load asks for the key; a wrong key is refused with a message; the right one works', async () => {
    assert.equal((await fetch(daemon.base + '/v1/services')).status, 401, 'the API needs the key');
    await page.goto(daemon.base + '/');
    await page.waitForSelector('#key-dialog:not([hidden])', { timeout: 10_000 });
    await page.fill('#key-input', 'wrong-key-0123456789abcdef');
    await page.click('#key-submit');
    await page.waitForSelector('#key-msg[data-state="error"]', { timeout: 10_000 });
    const msg = await page.$eval('#key-msg', (e) => e.textContent);
    assert.match(msg, /refused: unknown API key/, msg);
    assert.ok(await page.isVisible('#key-dialog'), 'the dialog stays after a wrong key');
    assert.equal(await page.$$eval('.svc-row[data-name]', (r) => r.length), 0, 'no services shown without the key');
    await page.fill('#key-input', API_KEY);
    await page.click('#key-submit');
    await page.waitForSelector('#key-dialog[hidden]', { state: 'attached', timeout: 10_000 });
    await waitState(page, 'ticker', 'running');
    assert.equal(await page.evaluate(() => localStorage.getItem('dockless.apiKey')), API_KEY);
  });

  await step('the key persists across a reload: no question asked again', async () => {
    await page.reload();
    await waitState(page, 'ticker', 'running');
    assert.ok(await page.$eval('#key-dialog', (e) => e.hidden), 'no key dialog after reload');
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
  });

  await step('page and assets are served with ETag; If-None-Match gives 304', async () => {
    for (const [p, type] of [['/', 'text/html'], ['/assets/app.js', 'text/javascript'], ['/assets/app.css', 'text/css']]) {
      const r = await fetch(daemon.base + p);
      assert.equal(r.status, 200, p);
      assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
      assert.equal(r.headers.get('cache-control'), 'no-cache', p);
      const etag = r.headers.get('etag');
      assert.match(etag || '', /^"[0-9a-f]+"$/, p);
      const again = await fetch(daemon.base + p, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, `${p} revalidated`);
    }
    assert.equal((await fetch(daemon.base + '/assets/nope.js')).status, 404);
  });

  await step('both services are listed running; the live indicator turns on', async () => {
    await page.goto(daemon.base + '/');
    await waitState(page, 'ticker', 'running');
    await waitState(page, 'web', 'running');
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    const ports = await page.$eval(`${row('web')} .ports`, (e) => e.textContent);
    assert.ok(ports.includes(String(daemon.webPort)), `web's ports column: ${ports}`);
    await page.waitForSelector('#events li[data-seq]', { timeout: 10_000 });
  });

  await step('limits are shown next to the usage; a service without limits shows no bound', async () => {
    const sub = (name, cls) => page.$eval(`${row(name)} .${cls} .cell-sub`, (e) => e.textContent);
    await waitFor('capped\'s row with its limits', async () => /64 MiB/.test(await sub('capped', 'c-mem')), 10_000);
    assert.match(await sub('capped', 'c-mem'), /^(max|of) 64 MiB$/);
    assert.match(await page.$eval(`${row('capped')} .c-mem .tasks`, (e) => e.textContent), /^(max |\d+\/)32 tasks$/);
    assert.ok(await page.isVisible(`${row('capped')} .c-mem .tasks`), 'the task bound is visible');
    assert.ok(await page.$eval(`${row('web')} .c-mem .tasks`, (e) => e.hidden), 'no task line without pids_max');
    assert.match(await sub('capped', 'c-cpu'), /max 50%$/);
    const title = await page.$eval(`${row('capped')} .c-mem`, (e) => e.title);
    assert.match(title, /memory_max 64 MiB/);
    assert.match(title, /pids_max 32/);
    const capped = await page.$eval(row('capped'), (r) => r.dataset.state);
    if (capped !== 'running') {
      // Not enforceable here: the row names the key that kept it from starting.
      await waitFor('the refusal on capped\'s row', async () =>
        /memory_max|cpu_max|pids_max/.test(await page.$eval(`${row('capped')} .c-name`, (e) => e.textContent)), 10_000);
    }
    assert.equal(await sub('web', 'c-mem'), '', 'no bound for a service without limits');
    assert.ok(await page.$eval(`${row('web')} .c-mem .meter`, (m) => m.hidden), 'no meter without a limit');
    assert.match(await page.$eval(`${row('web')} .c-mem > span`, (e) => e.textContent), /\d (B|KiB|MiB|GiB)$/, 'web\'s memory is shown');
  });

  await step('restart: a new pid and one more restart, pushed live', async () => {
    const before = await rowData(page, 'ticker');
    assert.ok(before.pid, 'ticker has a pid');
    await page.click(`${row('ticker')} [data-action="restart"]`);
    const after = await waitFor('ticker running with a new pid', async () => {
      const d = await rowData(page, 'ticker');
      return d.state === 'running' && d.pid && d.pid !== before.pid ? d : null;
    }, 15_000);
    assert.ok(after.restarts >= before.restarts, `restarts ${before.restarts} -> ${after.restarts}`);
    // The event list is fed by the event stream: a restart shows up there without a reload.
    await waitFor('a ticker event after the restart', () => page.$$eval('#events li',
      (lis) => lis.some((li) => /ticker/.test(li.textContent) && /restart|start|exit/.test(li.textContent))), 10_000);
  });

  await step('logs: the panel streams new "tick" lines; pause buffers; search filters', async () => {
    await page.click(`${row('ticker')} [data-action="logs"]`);
    await page.waitForSelector('#logs:not([hidden])');
    // The restart began a new count at "tick 0": a new line is judged by position, not number.
    const n0 = await waitFor('tick lines in the log panel', async () => {
      const lines = await logLines(page);
      return lastTick(lines) >= 0 ? lines.length : 0;
    }, 10_000);
    await waitFor('a new "tick" line streamed in', async () => lastTick((await logLines(page)).slice(n0)) >= 0, 10_000);

    await page.click('#logs-follow');  // pause
    assert.equal(await page.getAttribute('#logs-follow', 'aria-pressed'), 'false');
    const shown = (await logLines(page)).length;
    await waitFor('buffered lines while paused', async () => /Resume \(\d+\)/.test(await page.textContent('#logs-follow')), 5_000);
    assert.equal((await logLines(page)).length, shown, 'no lines appended while paused');
    await page.click('#logs-follow');  // resume: the buffer is appended
    assert.ok((await logLines(page)).length > shown, 'buffered lines appended on resume');

    await page.fill('#logs-search', 'tick 1');
    await waitFor('the search filter', () => page.$$eval('#logs-body .ln:not(.note)', (ds) => {
      const visible = ds.filter((d) => !d.classList.contains('hide'));
      return visible.length > 0 && visible.every((d) => d.textContent.includes('tick 1') && d.querySelector('mark'));
    }), 5_000);
    await page.fill('#logs-search', '');
    await page.click('#logs-close');
    await page.waitForSelector('#logs', { state: 'hidden' });
  });

  await step('register with a bad name and port: each error is shown next to its field', async () => {
    await page.fill('#f-name', 'Bad Name');
    await page.fill('#f-command', 'sleep 100000');
    await page.fill('#f-port', '99999');
    await page.click('#register-submit');
    await page.waitForSelector('#f-port[aria-invalid="true"]', { timeout: 10_000 });
    const portMsg = await page.textContent('#err-port');
    assert.match(portMsg, /99999/, 'the port message under the port field');
    assert.match(await page.textContent('#err-name'), /name/, 'the name message under the name field');
    assert.equal(await page.textContent('#err-command'), '', 'no message under a good field');
    await (await page.$('#register')).screenshot({ path: path.join(SHOTS, 'dashboard-form-errors.png') });
    await page.fill('#f-name', 'added');
    await page.click('#register-submit');
    await waitFor('only the port error left', async () =>
      (await page.textContent('#err-name')) === '' && (await page.textContent('#err-port')) !== '', 10_000);
    assert.equal(await page.$(row('added')), null, 'nothing registered');
  });

  await step('register a good service: it appears running', async () => {
    await page.fill('#f-port', '');
    await page.click('#register-submit');
    await waitState(page, 'added', 'running');
    assert.equal(await page.textContent('#err-port'), '', 'the old error is cleared');
    assert.equal(await page.inputValue('#f-name'), '', 'the form is reset');
  });

  await step('history: CPU and memory sparklines per running row, the restart on the timeline, the node card', async () => {
    await sparklinesShown(page, 'desktop');
    assert.match(await page.textContent('#node-load'), /^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/);
    assert.match(await page.textContent('#node-memory'), / of /);
    assert.match(await page.textContent('#node-disk'), / of /);
    await (await page.$('#services')).screenshot({ path: path.join(SHOTS, 'dashboard-history.png') });
  });

  await step('desktop screenshot', async () => {
    await page.waitForTimeout(1200);  // a CPU sample and an uptime tick
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-desktop.png'), fullPage: true });
    await noHorizontalOverflow(page, 'desktop');
  });

  await step('phone viewport 390x844: no horizontal overflow; screenshots', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const p = await phone.newPage();
    p.on('pageerror', (e) => errors.push(`pageerror (phone): ${e.message}`));
    await p.goto(daemon.base + '/');
    await p.waitForSelector('#key-dialog:not([hidden])', { timeout: 10_000 });
    await p.fill('#key-input', API_KEY);
    await p.click('#key-submit');
    await waitState(p, 'added', 'running');
    await p.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await p.waitForTimeout(1200);
    await sparklinesShown(p, 'phone');
    await noHorizontalOverflow(p, 'phone');
    await p.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: true });
    await p.click(`${row('ticker')} [data-action="logs"]`);
    await waitFor('log lines on the phone', async () => lastTick(await logLines(p)) >= 0, 10_000);
    await noHorizontalOverflow(p, 'phone with logs open');
    await p.screenshot({ path: path.join(SHOTS, 'dashboard-phone-logs.png') });
    await phone.close();
  });

  await step('the key never appears in a URL', async () => {
    const leaked = requests.filter((u) => u.includes(API_KEY));
    assert.deepEqual(leaked, [], 'URLs carrying the key');
  });

  await desktop.close();
}

async function main() {
  const watchdog = setTimeout(() => { console.error('FAIL: the test took longer than 240 s'); process.exit(1); }, OVERALL_MS);
  const daemon = new Daemon();
  let browser = null;
  const errors = [];
  let failed = false;
  try {
    await daemon.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS, timeout: 60_000,
    });
    await run(daemon, browser, errors);
    assert.deepEqual(errors, [], 'errors in the page');
    console.log(`screenshots in ${SHOTS}: dashboard-desktop.png, dashboard-history.png, dashboard-phone.png, dashboard-phone-logs.png`);
  } catch (e) {
    failed = true;
    console.error(`FAIL: ${e.stack || e}`);
    if (errors.length) console.error(errors.join('\n'));
    console.error('--- daemon log (tail) ---\n' + daemon.log());
  } finally {
    if (browser) await browser.close().catch(() => {});
    const problem = await daemon.stop();
    if (problem && !failed) { failed = true; console.error(`FAIL: ${problem}`); }
    clearTimeout(watchdog);
  }
  process.exit(failed ? 1 : 0);
}

main();
