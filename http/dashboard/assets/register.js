// The register form: a service from name/command/restart/port/env, errors next to their
// fields. Loaded after app.js, whose api(), toast() and upsert() it uses.
'use strict';

const form = $('register-form');
const FORM_FIELDS = ['name', 'command', 'restart', 'port', 'env'];
// API field paths that belong to a form field ("ports" is what a bad "port" may be reported as).
const FIELD_ALIASES = { ports: 'port', env_file: 'env' };

function clearErrors() {
  for (const f of FORM_FIELDS) {
    setText($('err-' + f), '');
    form.elements[f].removeAttribute('aria-invalid');
  }
  $('form-error').hidden = true;
  $('form-error').textContent = '';
}

function fieldError(field, message) {
  const p = $('err-' + field);
  p.textContent = p.textContent ? p.textContent + ' ' + message : message;
  form.elements[field].setAttribute('aria-invalid', 'true');
}

function generalError(message) {
  const box = $('form-error');
  box.textContent = box.textContent ? box.textContent + '\n' + message : message;
  box.hidden = false;
}

function formField(apiField) {
  const root = String(apiField || '').split(/[.[]/)[0];
  const f = FIELD_ALIASES[root] || root;
  return FORM_FIELDS.includes(f) ? f : null;
}

function readForm() {
  const body = {
    name: form.elements.name.value.trim(),
    command: form.elements.command.value.trim(),
    restart: form.elements.restart.value,
    autostart: form.elements.autostart.checked,
  };
  const port = form.elements.port.value.trim();
  if (port) body.port = /^\d+$/.test(port) ? Number(port) : port;
  const env = {};
  let bad = null;
  form.elements.env.value.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const eq = t.indexOf('=');
    if (eq <= 0) { bad = bad || `line ${i + 1}: expected KEY=VALUE`; return; }
    env[t.slice(0, eq).trim()] = t.slice(eq + 1);
  });
  if (Object.keys(env).length) body.env = env;
  return { body, bad };
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  const { body, bad } = readForm();
  // Only what the API cannot judge is checked here; everything else is the daemon's word.
  if (bad) { fieldError('env', bad); form.elements.env.focus(); return; }
  const submit = $('register-submit');
  submit.disabled = true;
  submit.classList.add('busy');
  const t0 = performance.now();
  try {
    const svc = await api('POST', '/v1/services', body);
    toast(`Registered ${svc && svc.name ? svc.name : body.name}`, '', 'ok');
    form.reset();
    if (svc && svc.name) {
      upsert(svc, t0);
      const entry = services.get(svc.name);
      entry.row.classList.remove('flash');
      void entry.row.offsetWidth;  // restart the animation
      entry.row.classList.add('flash');
    }
    scheduleRefresh(body.name);
  } catch (err) {
    showSubmitError(err);
  } finally {
    submit.disabled = false;
    submit.classList.remove('busy');
  }
});

function showSubmitError(err) {
  let first = null;
  if (err.status === 422 && Array.isArray(err.detail)) {
    for (const d of err.detail) {
      const msg = (d && (d.message || d.text)) || String(d);
      // The daemon reports a bad name as not tied to a key (field ""): it is the table's name.
      const f = d && (formField(d.field) || (!d.field && /service name/.test(msg) ? 'name' : null));
      // Next to its field, the key path ("services.web.port: ") says nothing new.
      if (f) { fieldError(f, msg.replace(/^services\..*?: /, '')); first = first || f; }
      else generalError(d && d.field ? `${d.field}: ${msg}` : msg);
    }
    if (!$('form-error').hidden) $('form-error').prepend(`${err.error}: `);
  } else if (err.status === 409) {
    fieldError('name', err.error || 'name taken');
    first = 'name';
  } else {
    generalError(`${err.error}${detailText(err.detail) ? ' — ' + detailText(err.detail) : ''}`);
  }
  if (first) form.elements[first].focus();
}
