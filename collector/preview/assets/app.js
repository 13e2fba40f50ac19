// otel2dd preview: the one page's script. Plain JavaScript, no library, no network beyond
// this server's own /api. Everything shown comes from senders: it goes into the DOM through
// textContent and attributes set by the DOM API only, never through innerHTML or a template
// string (so a span named "<img src=x onerror=alert(1)>" shows as those characters).
'use strict';

const main = document.getElementById('main');
let timer = null; // the live list's refresh
let route = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function link(href, text) {
  return el('a', { href, 'data-nav': '' }, text);
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = { error: 'not JSON' }; }
  if (!r.ok) throw new Error((body && body.error) || ('HTTP ' + r.status));
  return body;
}

function fmtDur(ns) {
  ns = Number(ns);
  if (ns >= 1e9) return (ns / 1e9).toFixed(2) + ' s';
  if (ns >= 1e6) return (ns / 1e6).toFixed(1) + ' ms';
  if (ns >= 1e3) return (ns / 1e3).toFixed(0) + ' µs';
  return ns + ' ns';
}

function fmtTime(ns) {
  const d = new Date(Number(BigInt(ns) / 1000000n));
  return isNaN(d) ? '' : d.toLocaleTimeString();
}

function showError(msg) {
  clear(main);
  main.append(el('p', { class: 'err', role: 'alert', text: msg }));
}

// ---- navigation: every trace and span has its URL; back and forward work ----

function go(href, replace) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render();
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-nav]');
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', render);

function parseRoute() {
  const p = location.pathname;
  let m;
  if (p === '/' || p === '') return { page: 'list' };
  if (p === '/status') return { page: 'status' };
  if (p === '/lints') return { page: 'lints' };
  if ((m = /^\/traces\/([0-9a-f]{32})$/.exec(p))) return { page: 'trace', tid: m[1] };
  if ((m = /^\/traces\/([0-9a-f]{32})\/llm$/.exec(p))) return { page: 'llm', tid: m[1] };
  if ((m = /^\/traces\/([0-9a-f]{32})\/spans\/([0-9a-f]{16})$/.exec(p)))
    return { page: 'span', tid: m[1], sid: m[2] };
  return { page: 'bad' };
}

async function render() {
  if (timer) { clearTimeout(timer); timer = null; }
  route = parseRoute();
  // nothing of the previous page stays up while this one loads
  clear(main);
  main.append(el('p', { class: 'muted', text: 'Loading…' }));
  try {
    switch (route.page) {
      case 'list': return await renderList();
      case 'trace': return await renderTrace(route.tid, null);
      case 'span': return await renderTrace(route.tid, route.sid);
      case 'llm': return await renderLlm(route.tid);
      case 'status': return await renderStatus();
      case 'lints': return await renderLints();
      default: return showError('No such page: a trace is /traces/<32 hex digits>, a span '
                                + '/traces/<trace id>/spans/<16 hex digits>.');
    }
  } catch (e) {
    showError(e.message);
  }
}

// ---- the trace list ----

async function renderList() {
  const params = new URLSearchParams(location.search);
  const q = new URLSearchParams();
  for (const k of ['service', 'env', 'error', 'q']) {
    if (params.get(k)) q.set(k, params.get(k));
  }
  const data = await api('/api/traces' + (q.toString() ? '?' + q : ''));
  if (parseRoute().page !== 'list') return;
  const keep = document.activeElement && document.activeElement.name;
  clear(main);
  const form = el('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); applyFilters(form); } });
  const field = (name, ph) => el('input', { name, placeholder: ph, value: params.get(name) || '',
                                            'aria-label': ph });
  const err = el('select', { name: 'error', 'aria-label': 'errors' },
    el('option', { value: '' }, 'errors: any'),
    el('option', { value: 'true' }, 'errors only'),
    el('option', { value: 'false' }, 'no errors'));
  err.value = params.get('error') || '';
  err.addEventListener('change', () => applyFilters(form));
  form.append(field('service', 'service'), field('env', 'env'), err, field('q', 'search'),
              el('button', { type: 'submit' }, 'Filter'),
              el('span', { class: 'muted', text: `${data.matched} of ${data.held} traces held, ` +
                 `${(data.bytes / 1048576).toFixed(1)} of ${(data.max_bytes / 1048576).toFixed(0)} MiB` }));
  main.append(el('h1', { text: 'Recent traces' }), form);
  const tbody = el('tbody');
  for (const t of data.traces) {
    const href = '/traces/' + t.trace_id;
    const tr = el('tr', { class: 'clickable', 'data-trace': t.trace_id,
                          onclick: (ev) => { if (!ev.target.closest('a')) go(href); } },
      el('td', {}, fmtTime(t.start_ns)),
      el('td', {}, t.service),
      el('td', {}, t.env),
      el('td', {}, link(href, t.root || '(no name)')),
      el('td', {}, fmtDur(t.duration_ns)),
      el('td', {}, String(t.spans)),
      el('td', {}, t.error ? el('span', { class: 'badge err', text: 'error' }) : ''),
      el('td', {}, t.llmobs ? el('span', { class: 'badge llm', text: 'LLM Obs' }) : ''),
      el('td', {}, t.export + (t.llmobs_export ? ' · LLM Obs: ' + t.llmobs_export : '')));
    tbody.append(tr);
  }
  main.append(el('table', { id: 'traces' },
    el('thead', {}, el('tr', {}, ...['time', 'service', 'env', 'root', 'duration', 'spans',
                                      'error', 'LLM Obs', 'export'].map((h) => el('th', {}, h)))),
    tbody));
  if (data.traces.length === 0) main.append(el('p', { class: 'muted', text: 'No trace yet: send OTLP to this collector.' }));
  if (keep) { const f = form.elements[keep]; if (f) f.focus(); }
  timer = setTimeout(() => { if (!form.contains(document.activeElement)) renderList().catch(() => {}); else timer = setTimeout(render, 2000); }, 2000);
}

function applyFilters(form) {
  const q = new URLSearchParams();
  for (const k of ['service', 'env', 'error', 'q']) {
    const v = form.elements[k].value.trim();
    if (v) q.set(k, v);
  }
  go('/' + (q.toString() ? '?' + q : ''));
}

// ---- a trace: waterfall, and the selected span's three columns ----

async function renderTrace(tid, sid) {
  const t = await api('/api/traces/' + tid);
  const span = sid ? await api(`/api/traces/${tid}/spans/${sid}`) : null;
  clear(main);
  main.append(el('h1', {}, 'Trace ', el('code', { text: tid })));
  const meta = el('p', { class: 'muted' },
    `${t.service} · ${t.env || 'no env'} · ${t.spans.length} spans · ${fmtDur(t.duration_ns)} · APM export: ${t.export.state}${t.llmobs_export ? ' · LLM Obs export: ' + t.llmobs_export : ''}`);
  if (t.llmobs) meta.append(' · ', link(`/traces/${tid}/llm`, 'LLM view'));
  main.append(meta);
  const start = t.spans.reduce((m, s) => (BigInt(s.start_ns) < m ? BigInt(s.start_ns) : m),
                               t.spans.length ? BigInt(t.spans[0].start_ns) : 0n);
  let end = start;
  for (const s of t.spans) {
    const e = BigInt(s.start_ns) + BigInt(s.duration_ns);
    if (e > end) end = e;
  }
  const total = Number(end - start) || 1;
  const tbody = el('tbody');
  for (const s of t.spans) {
    const href = `/traces/${tid}/spans/${s.span_id}`;
    const off = Number(BigInt(s.start_ns) - start) / total * 100;
    const w = Math.max(Number(s.duration_ns) / total * 100, 0.2);
    const bar = el('div', { class: 'wf-bar' + (s.error ? ' error' : s.llmobs_kind ? ' llm' : '') });
    bar.style.left = off + '%';
    bar.style.width = w + '%';
    const name = el('td', { class: 'wf-name' }, link(href, s.name || '(no name)'));
    name.style.paddingLeft = (0.5 + 1.2 * Math.min(s.depth, 30)) + 'em';
    const tr = el('tr', { class: 'clickable' + (s.span_id === sid ? ' selected' : ''),
                          'data-span': s.span_id,
                          onclick: (ev) => { if (!ev.target.closest('a')) go(href); } },
      name,
      el('td', {}, s.service),
      el('td', {}, s.llmobs_kind ? el('span', { class: 'badge llm', text: s.llmobs_kind }) : '',
                   s.error ? el('span', { class: 'badge err', text: 'error' }) : '',
                   s.orphan ? el('span', { class: 'badge', text: 'parent missing' }) : ''),
      el('td', {}, fmtDur(s.duration_ns)),
      el('td', { class: 'wf-bar-cell' }, el('div', { class: 'wf-track' }, bar)));
    tbody.append(tr);
  }
  main.append(el('table', { id: 'waterfall' },
    el('thead', {}, el('tr', {}, ...['span', 'service', '', 'duration', 'timeline'].map((h) => el('th', {}, h)))),
    tbody));
  if (span) renderSpan(tid, sid, span);
}

// OTLP ids are bytes, which protobuf's JSON writes in base64: shown in hex, as in every URL.
function hexIds(v) {
  if (Array.isArray(v)) return v.map(hexIds);
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (/^(trace_id|span_id|parent_span_id)$/.test(k) && typeof x === 'string') {
      try {
        out[k] = Array.from(atob(x), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
      } catch (e) { out[k] = x; }
    } else out[k] = hexIds(x);
  }
  return out;
}

function jsonBlock(v) {
  return el('pre', { text: v === null || v === undefined ? '—' : JSON.stringify(v, null, 2) });
}

async function copyText(text, note) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    // no clipboard permission (plain http, headless): select a textarea and copy
    const ta = el('textarea', { class: 'copy' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try { document.execCommand('copy'); } catch (e2) { /* shown below anyway */ }
    ta.remove();
  }
  note.textContent = 'copied';
  note.dataset.bytes = String(text.length);
  window.__lastCopied = text; // for tests and for the curious: exactly what was copied
}

function copyButton(url) {
  const note = el('span', { class: 'copied' });
  const b = el('button', { type: 'button', onclick: async () => {
    const r = await fetch(url);
    copyText(await r.text(), note);
  } }, 'Copy as JSON');
  return el('span', {}, b, note);
}

function renderSpan(tid, sid, d) {
  main.append(el('h2', { id: 'span-title' }, 'Span ', el('code', { text: sid }), ' ', d.span.name));
  const otlp = el('div', { class: 'col', id: 'col-otlp' }, el('h3', {}, 'OTLP input'),
    el('div', { class: 'muted', text: 'span (ids in hex)' }), jsonBlock(hexIds(d.otlp.span)),
    el('div', { class: 'muted', text: 'resource' }), jsonBlock(d.otlp.resource),
    el('div', { class: 'muted', text: 'scope' }), jsonBlock(d.otlp.scope));
  if (d.otlp.log_records.length) {
    otlp.append(el('div', { class: 'muted', text: `log records joined (${d.otlp.log_records.length})` }),
                jsonBlock(hexIds(d.otlp.log_records)));
  }
  const apm = el('div', { class: 'col', id: 'col-apm' },
    el('h3', {}, 'Datadog APM span', d.apm ? copyButton(`/api/traces/${tid}/spans/${sid}/apm.json`) : ''),
    el('div', { class: 'muted', text: 'export: ' + d.export.apm.state +
       (d.export.apm.retries ? `, ${d.export.apm.retries} retries` : '') +
       (d.export.apm.drop_reason ? `, dropped: ${d.export.apm.drop_reason}` : '') }),
    jsonBlock(d.apm));
  const llm = el('div', { class: 'col', id: 'col-llmobs' },
    el('h3', {}, 'LLM Obs event', d.llmobs ? copyButton(`/api/traces/${tid}/spans/${sid}/llmobs.json`) : ''));
  if (d.llmobs) {
    const lx = d.export.llmobs;
    llm.append(el('div', { class: 'muted' }, 'export: ',
                  el('span', { id: 'llmobs-export', text: lx.state +
                     (lx.retries ? `, ${lx.retries} retries` : '') +
                     (lx.drop_reason ? `, dropped: ${lx.drop_reason}` : '') }), ' · ',
                  link(`/traces/${tid}/llm`, 'LLM view')));
    llm.append(jsonBlock(d.llmobs));
  } else {
    llm.append(el('p', { class: 'muted', text: 'Not an LLM Obs span: no gen_ai convention matched; it stays APM-only.' }));
  }
  main.append(el('div', { class: 'cols' }, otlp, apm, llm));
  main.append(el('h2', { text: 'What happened to each attribute' }));
  const tbody = el('tbody');
  for (const a of d.attributes) {
    const what = el('td');
    if (a.apm.length === 0) what.append(el('span', { class: 'muted', text: 'not used by the APM mapping' }));
    for (const n of a.apm) {
      const line = el('div', {}, el('span', { class: 'badge', text: n.what }), ' ');
      if (n.target) line.append(el('code', { text: n.target }), ' ');
      if (n.detail) line.append(el('span', { class: 'muted', text: n.detail }), ' ');
      if (n.outcome) line.append(el('span', { class: 'warn', text: n.outcome }));
      what.append(line);
    }
    if (a.used_in) what.append(el('div', { class: 'muted', text: 'its value shows in the ' + a.used_in }));
    tbody.append(el('tr', {},
      el('td', {}, a.source),
      el('td', {}, el('code', { text: a.attribute || '—' })),
      what,
      el('td', {}, a.llmobs ? el('code', { text: a.llmobs }) : el('span', { class: 'muted', text: '—' }))));
  }
  main.append(el('table', { id: 'attributes' },
    el('thead', {}, el('tr', {}, ...['from', 'attribute', 'Datadog APM', 'LLM Obs (value found at)'].map((h) => el('th', {}, h)))),
    tbody));
}

// ---- the LLM Obs tree ----

function messageList(title, msgs) {
  const box = el('div', {}, el('div', { class: 'muted', text: title }));
  for (const m of msgs) {
    const d = el('div', { class: 'msg', 'data-role': m.role || '' },
                 el('span', { class: 'role', text: m.role || '(no role)' }));
    if (m.content !== undefined) d.append(el('span', { class: 'content', text: typeof m.content === 'string' ? m.content : JSON.stringify(m.content) }));
    for (const tc of m.tool_calls || []) {
      d.append(el('div', {}, el('span', { class: 'badge', text: 'tool call' }), ' ',
                 el('code', { text: (tc.name || '') + ' ' + JSON.stringify(tc.arguments || {}) }),
                 tc.tool_id ? el('span', { class: 'muted', text: ' id ' + tc.tool_id }) : ''));
    }
    for (const tr of m.tool_results || []) {
      d.append(el('div', {}, el('span', { class: 'badge', text: 'tool result' }), ' ',
                 el('code', { text: typeof tr.result === 'string' ? tr.result : JSON.stringify(tr.result) }),
                 tr.tool_id ? el('span', { class: 'muted', text: ' id ' + tr.tool_id }) : ''));
    }
    box.append(d);
  }
  return box;
}

function llmNode(tid, e, kids) {
  const ev = e.event;
  const meta = ev.meta || {};
  const kind = (meta.span && meta.span.kind) || '';
  const m = ev.metrics || {};
  const node = el('div', { class: 'llm-node', 'data-span': e.span_id });
  node.append(el('div', { class: 'llm-head' },
    el('span', { class: 'badge llm', text: kind }), ' ',
    link(`/traces/${tid}/spans/${e.span_id}`, ev.name || '(no name)'), ' ',
    el('span', { class: 'muted', text: fmtDur(ev.duration || 0) }),
    ev.status === 'error' ? el('span', { class: 'badge err', text: 'error' }) : ''));
  const kv = el('div', { class: 'kv' });
  const add = (k, v) => { if (v !== undefined && v !== null && v !== '') kv.append(el('span', { class: 'muted', text: k }), el('span', { text: String(v) })); };
  add('model', meta.model_name);
  add('provider', meta.model_provider);
  add('input tokens', m.input_tokens);
  add('output tokens', m.output_tokens);
  add('total tokens', m.total_tokens);
  add('session', ev.session_id);
  node.append(kv);
  const inp = meta.input || {}, out = meta.output || {};
  const hasContent = (inp.messages && inp.messages.length) || inp.value || (out.messages && out.messages.length) || out.value || inp.documents || out.documents;
  if ((kind === 'llm' || kind === 'embedding') && !hasContent) {
    node.append(el('div', { class: 'warning', role: 'note', text:
      'No message content was captured. GenAI instrumentations ship with content capture off: set ' +
      'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true (OpenTelemetry) or ' +
      'TRACELOOP_TRACE_CONTENT=true (OpenLLMetry) in the app.' }));
  }
  if (inp.messages) node.append(messageList('input', inp.messages));
  else if (inp.value !== undefined) node.append(messageList('input', [{ role: 'input', content: inp.value }]));
  if (out.messages) node.append(messageList('output', out.messages));
  else if (out.value !== undefined) node.append(messageList('output', [{ role: 'output', content: out.value }]));
  for (const k of kids.get(e.span_id) || []) node.append(llmNode(tid, k, kids));
  return node;
}

async function renderLlm(tid) {
  const d = await api(`/api/traces/${tid}/llm`);
  clear(main);
  main.append(el('h1', {}, 'LLM Obs view of trace ', el('code', { text: tid })),
              el('p', {}, link('/traces/' + tid, 'back to the trace waterfall')));
  const ids = new Set(d.events.map((e) => e.span_id));
  const kids = new Map();
  const roots = [];
  for (const e of d.events) {
    if (e.llmobs_parent_id !== '0000000000000000' && ids.has(e.llmobs_parent_id)) {
      if (!kids.has(e.llmobs_parent_id)) kids.set(e.llmobs_parent_id, []);
      kids.get(e.llmobs_parent_id).push(e);
    } else roots.push(e);
  }
  const tree = el('div', { id: 'llm-tree' });
  for (const r of roots) tree.append(llmNode(tid, r, kids));
  if (!d.events.length) tree.append(el('p', { class: 'muted', text: 'No span of this trace is an LLM Obs span.' }));
  main.append(tree);
}

// ---- status and lints ----

async function renderStatus() {
  const s = await api('/api/status');
  clear(main);
  main.append(el('h1', { text: 'Status' }));
  main.append(el('p', {}, s.dry_run ? el('span', { class: 'warn', text: 'Dry run: nothing is sent to Datadog (no API key, no Agent).' })
                                    : 'Sending to ' + s.destination + '.'));
  const p = s.preview;
  main.append(el('p', { class: 'muted', text: `Preview: ${p.traces} traces, ${(p.bytes / 1048576).toFixed(1)} of ${(p.max_bytes / 1048576).toFixed(0)} MiB; ` +
    `${p.spans_captured} spans captured, ${p.evicted_traces} traces evicted, ${p.skipped_busy} requests skipped (store busy).` }));
  const tbody = el('tbody');
  for (const o of s.exporters || []) {
    const dropped = Object.entries(o.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${r}: ${n}`).join(', ');
    const le = o.last_error;
    tbody.append(el('tr', { 'data-output': o.output },
      el('td', {}, o.output),
      el('td', {}, o.has_queue ? `${o.queue_items} items, ${o.queue_bytes} of ${o.queue_capacity_bytes} bytes` : '—'),
      el('td', {}, String(o.sent_items)),
      el('td', {}, String(o.retried_items)),
      el('td', {}, dropped || '0'),
      el('td', {}, le ? el('div', {},
          el('div', { class: 'err', text: `${le.what}: ${le.http_status ? 'HTTP ' + le.http_status : le.transport}` }),
          el('div', { class: 'muted', text: new Date(le.at_ms).toLocaleString() }),
          el('pre', { text: le.body_excerpt })) : el('span', { class: 'muted', text: 'none' }))));
  }
  main.append(el('table', { id: 'outputs' },
    el('thead', {}, el('tr', {}, ...['output', 'queue', 'sent', 'retried', 'dropped', 'last intake error'].map((h) => el('th', {}, h)))),
    tbody));
  if (!(s.exporters || []).length) main.append(el('p', { class: 'muted', text: 'No Datadog exporter runs.' }));
}

const lintHelp = {
  no_service_name: 'The resource has no service.name: set OTEL_SERVICE_NAME.',
  no_env: 'No deployment.environment.name and no DD_ENV: set OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=…',
  no_version: 'No service.version and no DD_VERSION.',
  content_not_captured: 'LLM spans without message content: content capture is off in the instrumentation.',
  genai_unmatched: 'gen_ai attributes, but no LLM Obs kind matched: the span stays APM-only.',
  clock_skew: 'A child starts before its parent or ends after it: the hosts\' clocks disagree.',
  parent_missing: 'The parent span never arrived (another collector, or not exported).',
};

async function renderLints() {
  const d = await api('/api/lints');
  clear(main);
  main.append(el('h1', { text: 'Lints per service' }),
              el('p', { class: 'muted', text: `Read the newest ${d.traces_read} of ${d.traces_held} traces held.` }));
  const tbody = el('tbody');
  for (const s of d.services) {
    if (!s.lints.length) {
      tbody.append(el('tr', {}, el('td', {}, s.service), el('td', { class: 'ok', text: 'nothing to say' }), el('td'), el('td')));
    }
    for (const l of s.lints) {
      tbody.append(el('tr', { 'data-lint': l.lint },
        el('td', {}, s.service),
        el('td', {}, el('code', { text: l.lint }), ' ', el('span', { class: 'muted', text: lintHelp[l.lint] || '' })),
        el('td', {}, `${l.spans} of ${s.spans} spans`),
        el('td', {}, link(`/traces/${l.trace_id}/spans/${l.span_id}`, 'example'))));
    }
  }
  main.append(el('table', { id: 'lints' },
    el('thead', {}, el('tr', {}, ...['service', 'lint', 'spans', ''].map((h) => el('th', {}, h)))), tbody));
}

render();
