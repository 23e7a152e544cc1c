// The dashboard's "Reload config" card (http/dashboard/assets/plan.js, issue #16) in the
// system's headless Chromium: "Preview reload" shows the daemon's dry-run plan and changes
// nothing; "Reload now" applies it and shows the plan the reload returned, the same lines; a
// config that does not load shows its error. Exit 0 pass, 1 fail, 77 skip (as
// dashboard_test.js: no chromium, no playwright-core).
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
const API_KEY = 'dockless-plan-key-0123456789abcdef';
const skip = (why) => { console.log(`SKIP: ${why}`); process.exit(SKIP); };

const bin = process.env.DOCKLESS_BIN;
if (!bin || !fs.existsSync(bin)) skip(`DOCKLESS_BIN not set or missing: ${bin}`);
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not installed (tools/deps.sh --test installs it)`);
const modules = path.join(HERE, 'node_modules', 'playwright-core');
if (!fs.existsSync(modules)) {
  const r = cp.spawnSync('npm', ['install', '--no-audit', '--no-fund'], {
    cwd: HERE, stdio: 'inherit', timeout: 120_000, env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
  });
  if (r.error || r.status !== 0) skip('npm install failed; no playwright-core');
}
const { chromium } = require(modules);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

const svc = (name, seconds, extra = '') => `[services.${name}]\ncommand = ["sleep", "${seconds}"]\n${extra}`;
const BEFORE = svc('a', 300, 'env = { TOKEN = "abc" }\n') + svc('b', 301);
const AFTER = svc('a', 305, 'env = { TOKEN = "xyz" }\n') + svc('c', 302, 'pids_max = 64\n') +
  '[[triggers]]\nid = "deploy"\nkind = "webhook"\nprovider = "hmac"\nsecret = "s3cret"\naction = { restart = "a" }\n';

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dockless-plan-'));
  const cfg = path.join(dir, 'config.toml');
  fs.writeFileSync(cfg, BEFORE);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const out = fs.openSync(path.join(dir, 'daemon.log'), 'a');
  const daemon = cp.spawn(bin, ['serve', '--config', cfg, '--data-dir', path.join(dir, 'data'),
    '--listen', `127.0.0.1:${port}`, '--socket', path.join(dir, 'dockless.sock')],
  { cwd: dir, stdio: ['ignore', out, out], detached: true, env: { ...process.env, DOCKLESS_API_KEYS: API_KEY } });
  const api = async (method, p) => {
    const r = await fetch(base + p, { method, headers: { Authorization: `Bearer ${API_KEY}` } });
    return { status: r.status, body: await r.json() };
  };
  const pids = async () => Object.fromEntries((await api('GET', '/v1/services')).body.map((s) => [s.name, s.pid]));
  let browser = null;
  const errors = [];
  let failed = false;
  try {
    await waitFor('the daemon', async () => (await fetch(base + '/readyz')).status === 200, 15_000);
    await waitFor('a and b running', async () => { const p = await pids(); return p.a && p.b; });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 60_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !/status of (401|422)/.test(m.text())) errors.push(`console: ${m.text()}`); });
    await page.goto(base + '/');
    await page.waitForSelector('#key-dialog:not([hidden])', { timeout: 10_000 });
    await page.fill('#key-input', API_KEY);
    await page.click('#key-submit');
    await page.waitForSelector('.svc-row[data-name="b"]', { timeout: 10_000 });
    assert.ok(await page.isVisible('#plan-preview'), 'the Preview reload button');
    assert.ok(!(await page.isVisible('#plan-confirm')), 'no confirm before a preview');

    fs.writeFileSync(cfg, AFTER);
    const before = await pids();
    await page.click('#plan-preview');
    await page.waitForSelector('#reload-plan[data-state="previewed"]', { timeout: 10_000 });
    const shown = await page.$$eval('#plan-body .plan-line', (ls) => ls.map((l) => l.textContent));
    console.log(shown.join('\n'));
    assert.ok(shown.includes('  + c: add'), 'c added');
    assert.ok(shown.includes('  - b: remove (stop)'), 'b removed');
    assert.ok(shown.includes('  ~ a: restart'), 'a restarted');
    assert.ok(shown.includes('    command: ["sleep","300"] → ["sleep","305"]'), 'the command diff');
    assert.ok(shown.includes('    env.TOKEN: *** → *** (secret, masked)'), 'the env value masked');
    assert.ok(shown.includes('  + deploy: add'), 'the trigger added');
    assert.ok(!shown.join('\n').includes('xyz') && !shown.join('\n').includes('s3cret'), 'no secret shown');
    assert.deepEqual(await pids(), before, 'the preview changed nothing');
    const dry = (await api('POST', '/v1/reload?dry_run=1')).body.plan;
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-plan-preview.png'), fullPage: true });

    await page.click('#plan-confirm');
    await page.waitForSelector('#reload-plan[data-state="applied"]', { timeout: 15_000 });
    const applied = await page.$$eval('#plan-body .plan-line', (ls) => ls.map((l) => l.textContent));
    assert.deepEqual(applied, shown, 'the reload applied the plan the preview showed');
    assert.ok(!(await page.isVisible('#plan-confirm')), 'confirm hidden after the reload');
    const ev = await waitFor('reload_succeeded', async () => {
      const r = await fetch(base + '/v1/events', { headers: { Authorization: `Bearer ${API_KEY}` } });
      return (await r.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l))
        .find((e) => e.kind === 'reload_succeeded');
    });
    assert.deepEqual(ev.plan, dry, 'the recorded plan is the dry run\'s');
    await waitFor('c listed and b gone', async () => { const p = await pids(); return 'c' in p && !('b' in p); });

    fs.writeFileSync(cfg, AFTER + 'bogus = 1\n');
    await page.click('#plan-preview');
    await page.waitForSelector('#reload-plan[data-state="error"]', { timeout: 10_000 });
    assert.match(await page.textContent('#plan-status'), /does not load: config invalid/);
    assert.match(await page.textContent('#plan-body'), /bogus/);
    assert.ok(!(await page.isVisible('#plan-confirm')), 'no confirm for a config that does not load');
    assert.deepEqual(errors, [], 'errors in the page');
    console.log('ok  dashboard reload plan: preview, confirm, error');
  } catch (e) {
    failed = true;
    console.error(`FAIL: ${e.stack || e}`);
    if (errors.length) console.error(errors.join('\n'));
    try { console.error(fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8').split('\n').slice(-40).join('\n')); } catch { /* none */ }
  } finally {
    if (browser) await browser.close().catch(() => {});
    try { process.kill(-daemon.pid, 'SIGTERM'); } catch { /* gone */ }
    await sleep(500);
    try { process.kill(-daemon.pid, 'SIGKILL'); } catch { /* gone */ }
    fs.closeSync(out);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

main();
