// Reload as a plan (issue #16): "Preview reload" asks the daemon what a reload would do
// (POST /v1/reload?dry_run=1, nothing changes) and shows the plan; "Reload now" runs the real
// reload and shows the plan it applied, which is the same object. Uses app.js's api(), el(),
// toast() and toastError() (loaded first). Every value goes in as text, never as HTML.
'use strict';

const planUi = (() => {
  const title = el('h2', { id: 'plan-title', text: 'Reload config' });
  const preview = el('button', { type: 'button', class: 'btn small', id: 'plan-preview', text: 'Preview reload' });
  const confirm = el('button', { type: 'button', class: 'btn small primary', id: 'plan-confirm', text: 'Reload now' });
  const cancel = el('button', { type: 'button', class: 'btn small ghost', id: 'plan-cancel', text: 'Cancel' });
  const status = el('p', { class: 'muted small', id: 'plan-status', role: 'status' });
  const body = el('div', { class: 'mono', id: 'plan-body', 'aria-live': 'polite' });
  // The card's own layout, kept here so that app.css stays the main page's.
  status.style.padding = '10px 16px 0';
  status.style.margin = '0';
  body.style.padding = '6px 16px 12px';
  body.style.whiteSpace = 'pre-wrap';
  body.style.overflowWrap = 'anywhere';
  const tools = el('div', {}, preview, confirm, cancel);
  Object.assign(tools.style, { display: 'flex', flexWrap: 'wrap', gap: '6px', justifyContent: 'flex-end' });
  const card = el('section', { class: 'card', id: 'reload-plan', 'aria-labelledby': 'plan-title' },
    el('div', { class: 'card-head' }, title, tools), status, body);
  confirm.hidden = true;
  cancel.hidden = true;
  const services = document.querySelector('main > section.card');
  if (services) services.after(card);
  else document.querySelector('main').append(card);
  return { card, preview, confirm, cancel, status, body };
})();

function planValue(v) {
  if (v === null || v === undefined) return '(unset)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// The plan as lines, in the CLI's words (tools/cli/cli_plan.cpp): one per service, trigger
// and setting, each changed key below its service.
function planLines(plan) {
  const out = [];
  const changes = (list) => {
    for (const c of list || []) {
      out.push({ cls: 'key', text: `    ${c.key}: ${planValue(c.from)} → ${planValue(c.to)}${c.masked ? ' (secret, masked)' : ''}` });
    }
  };
  const names = (list, mark, what, kind) => {
    for (const n of list || []) out.push({ cls: kind, name: n, text: `  ${mark} ${n}: ${what}` });
  };
  const planned = (list, key, what, kind) => {
    for (const p of list || []) {
      out.push({ cls: kind, name: p[key], text: `  ~ ${p[key]}: ${what}${p.reason ? ` (${p.reason})` : ''}` });
      changes(p.changes);
    }
  };
  const s = plan.services || {};
  const t = plan.triggers || {};
  const section = (heading, fill) => {
    const at = out.length;
    fill();
    if (out.length > at) out.splice(at, 0, { cls: 'heading', text: heading });
  };
  section('services:', () => {
    names(s.added, '+', 'add', 'added');
    names(s.removed, '-', 'remove (stop)', 'removed');
    planned(s.restarted, 'name', 'restart', 'restarted');
    planned(s.in_place, 'name', 'change in place, no restart', 'in-place');
  });
  section('triggers:', () => {
    names(t.added, '+', 'add', 'trigger-added');
    names(t.removed, '-', 'remove', 'trigger-removed');
    planned(t.changed, 'id', 'new version', 'trigger-changed');
  });
  section('settings (applied by the reload):', () => changes(plan.settings));
  section('needs a daemon restart (the running values stay until then):', () => changes(plan.daemon_restart));
  return out;
}

function showPlan(plan, heading) {
  const { body, status } = planUi;
  body.replaceChildren();
  const lines = plan && !plan.empty ? planLines(plan) : [];
  status.textContent = lines.length ? heading : `${heading} no changes.`;
  for (const l of lines) {
    const div = el('div', { class: 'plan-line ' + l.cls, text: l.text });
    if (l.name) div.dataset.name = l.name;
    body.append(div);
  }
  body.dataset.empty = lines.length ? 'false' : 'true';
}

function planIdle() {
  planUi.confirm.hidden = true;
  planUi.cancel.hidden = true;
  planUi.preview.disabled = false;
}

async function previewReload() {
  const { preview, confirm, cancel, status, card } = planUi;
  preview.disabled = true;
  status.textContent = 'Planning…';
  card.dataset.state = 'planning';
  try {
    const r = await api('POST', '/v1/reload?dry_run=1');
    showPlan(r.plan, 'Dry run, nothing changed yet; a reload would do:');
    card.dataset.state = 'previewed';
    confirm.hidden = false;
    cancel.hidden = false;
    confirm.focus();
  } catch (e) {
    card.dataset.state = 'error';
    status.textContent = `The config does not load: ${e.error || e.message}`;
    planUi.body.replaceChildren(el('div', { class: 'plan-line error', text: detailText(e.detail) }));
    planIdle();
    return;
  }
  preview.disabled = false;
}

async function confirmReload() {
  const { confirm, card, status } = planUi;
  confirm.disabled = true;
  status.textContent = 'Reloading…';
  try {
    const r = await api('POST', '/v1/reload');
    showPlan(r.plan, 'Reloaded; applied:');
    card.dataset.state = 'applied';
    toast('Config reloaded', '', 'ok');
  } catch (e) {
    card.dataset.state = 'error';
    status.textContent = `Reload failed; the running config stays: ${e.error || e.message}`;
    toastError('Reload failed', e);
  }
  confirm.disabled = false;
  planIdle();
}

planUi.preview.addEventListener('click', previewReload);
planUi.confirm.addEventListener('click', confirmReload);
planUi.cancel.addEventListener('click', () => {
  planUi.body.replaceChildren();
  planUi.status.textContent = '';
  planUi.card.dataset.state = '';
  planIdle();
});
