// The status page: one live stream of the status document (server-sent events over fetch, so the admin
// token can be sent as a header), rendered with plain DOM calls (text only: nothing from the server is
// parsed as HTML). Actions go through the admin API after a confirmation; their result stays on the card.
'use strict';

const TOKEN_KEY = 'stz-admin-token';
const TYPES = ['listener', 'route', 'cluster', 'endpoint', 'extensionConfig'];
const PHASE_TEXT = { scaled_to_zero: 'scaled to zero', waking: 'waking', ready: 'ready', draining: 'draining', failed: 'wake failed' };

let status = null;
/** host → { text, good } of the last action, kept across re-renders. */
const results = new Map();
const busy = new Set();

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

function ago(iso) {
  if (!iso) return '—';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 1) return 'just now';
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function time(iso) {
  return h('time', { datetime: iso, 'data-ago': iso, title: iso ? new Date(iso).toLocaleString() : '' }, ago(iso));
}

function ms(n) {
  if (n === undefined) return '—';
  return n < 10000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;
}

function setConnection(state, text) {
  const el = document.getElementById('connection');
  el.dataset.state = state;
  el.textContent = text;
}

// ---- live stream

let backoffMs = 500;
async function connect() {
  let res;
  try {
    res = await fetch('/v1/status/events', { headers: { accept: 'text/event-stream', ...authHeaders() }, cache: 'no-store' });
  } catch (err) {
    return retry(`Disconnected (${err.message}); retrying…`);
  }
  if (res.status === 401) {
    setConnection('error', 'Admin token needed');
    showTokenForm(sessionStorage.getItem(TOKEN_KEY) ? 'That token was refused. Enter the admin token.' : 'This control plane needs its admin token.');
    return;
  }
  if (!res.ok || !res.body) return retry(`The status stream answered ${res.status}; retrying…`);
  setConnection('live', 'Live');
  backoffMs = 500;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        handleEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (err) {
    return retry(`Disconnected (${err.message}); retrying…`);
  }
  retry('The control plane closed the stream; reconnecting…');
}

function retry(text) {
  setConnection('error', text);
  setTimeout(connect, backoffMs);
  backoffMs = Math.min(backoffMs * 2, 10000);
}

function handleEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (event !== 'status' || data.length === 0) return;
  status = JSON.parse(data.join('\n'));
  render();
}

function showTokenForm(why) {
  const form = document.getElementById('token-form');
  document.getElementById('token-why').textContent = why;
  form.hidden = false;
  document.getElementById('token').focus();
}

document.getElementById('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value);
  e.target.hidden = true;
  connect();
});

// ---- rendering

function render() {
  const focused = document.activeElement && document.activeElement.id;
  renderHosts();
  renderNodes();
  if (focused) document.getElementById(focused)?.focus();
}

function renderHosts() {
  const root = document.getElementById('hosts');
  if (status.hosts.length === 0) return root.replaceChildren(h('p', {}, 'No scalable hosts are configured.'));
  root.replaceChildren(...status.hosts.map(hostCard));
}

function hostCard(host) {
  const result = results.get(host.name);
  const heldBy = host.held.byEnvoy.map((n) => `${n.envoy}: ${n.count}`).join(', ');
  return h('article', { class: 'card host', id: `host-${host.name}`, 'data-host': host.name, 'data-phase': host.phase, 'aria-labelledby': `host-${host.name}-name` },
    h('div', { class: 'card-head' },
      h('h3', { id: `host-${host.name}-name` }, host.name),
      h('span', { class: `badge phase-${host.phase}`, 'data-field': 'phase' }, PHASE_TEXT[host.phase] || host.phase)),
    h('dl', {},
      h('dt', {}, 'Since'), h('dd', {}, time(host.since)),
      h('dt', {}, 'Domains'), h('dd', {}, host.domains.join(', ') || '—'),
      h('dt', {}, 'Scaler'), h('dd', {}, `${host.scaler} (${host.protocol})`),
      h('dt', {}, 'Held now'), h('dd', { class: host.held.total > 0 ? 'held-now' : '', 'data-field': 'held' }, String(host.held.total), heldBy ? ` (${heldBy})` : ''),
      h('dt', {}, 'In progress'), h('dd', { 'data-field': 'in-progress' }, String(host.inProgress)),
      h('dt', {}, 'Wakes'), h('dd', { 'data-field': 'wakes' }, String(host.wakeCount)),
      host.lastError ? [h('dt', {}, 'Last error'), h('dd', { class: 'error', 'data-field': 'last-error' }, host.lastError, ' (', time(host.lastErrorAt), ')')] : []),
    coldStartTable(host),
    h('div', { class: 'actions' },
      actionButton(host, 'wake', 'Wake', host.phase === 'ready'),
      actionButton(host, 'scale-to-zero', 'Scale to zero', host.phase === 'scaled_to_zero')),
    h('p', { class: `result ${result ? (result.good ? 'good' : 'bad') : ''}`, role: 'status', 'aria-live': 'polite', 'data-field': 'result' }, result ? result.text : ''));
}

const PHASE_LABELS = {
  spawned: 'started',
  ready: 'ready',
  release_pushed: 'release pushed',
  release_acked: 'ACKed',
  first_traffic_reported: 'traffic reported',
};

/** "started +3 ms → ready (signalled) +40 ms → release pushed +2 ms → ACKed +5 ms", up to the last phase reached. */
function phaseText(c) {
  const phases = (c.phases || []).filter((p) => p.phase !== 'start_requested' && p.phase !== 'first_traffic_reported');
  if (phases.length === 0) return `scale-up to ready ${ms(c.wakeToReadyMs)}, ready to release ACKed ${ms(c.readyToReleaseAckedMs)}`;
  return phases.map((p) => `${PHASE_LABELS[p.phase]}${p.phase === 'ready' && c.readyBy ? (c.readyBy === 'signal' ? ' (signalled)' : ' (probed)') : ''} +${ms(p.sincePreviousMs)}`).join(' → ');
}

function coldStartTable(host) {
  if (host.coldStarts.length === 0) return h('p', { class: 'sub', 'data-field': 'cold-starts' }, 'No cold start since the control plane started.');
  return [
    h('p', { class: 'sub', id: `host-${host.name}-cs` }, 'Last cold starts, newest first'),
    h('ol', { class: 'cold-starts', 'data-field': 'cold-starts', 'aria-labelledby': `host-${host.name}-cs` }, host.coldStarts.map((c) => {
      const by = c.source === 'filter' ? 'a held request' : 'the admin API';
      let what;
      if (c.outcome === 'failed') what = [h('span', { class: 'error', 'data-field': 'total' }, `failed (${c.failure ? c.failure.reason : ''})`), `: ${c.failure ? c.failure.message : ''}`];
      else if (c.outcome === 'waking') what = [h('strong', { 'data-field': 'total' }, 'waking…'), c.readyAt ? ` ready after ${ms(c.wakeToReadyMs)}, releasing` : ''];
      else {
        what = [h('strong', { 'data-field': 'total' }, ms(c.totalMs)),
          `: ${phaseText(c)}`,
          c.notApplied ? ` (${c.notApplied} client(s) had not applied it)` : '',
          c.firstTrafficReportedAt ? `; first traffic in a load report ${ms(Date.parse(c.firstTrafficReportedAt) - Date.parse(c.releaseAckedAt))} after the release` : ''];
      }
      return h('li', { class: 'cold-start', 'data-outcome': c.outcome }, time(c.startedAt), ', woken by ', by, ' — ', what);
    })),
  ];
}

function actionButton(host, action, label, pointless) {
  const id = `act-${action}-${host.name}`;
  const pending = busy.has(host.name);
  return h('button', {
    type: 'button', id, 'data-action': action, disabled: pending,
    'aria-describedby': `host-${host.name}-name`,
    title: pointless ? `${host.name} is already ${PHASE_TEXT[host.phase]}` : undefined,
    onclick: () => confirmAction(host.name, action, label),
  }, label);
}

function nodeCard(node) {
  const standing = TYPES.map((t) => [t, node.types[t]]).filter(([, s]) => s && s.nack);
  const nack = node.lastNack;
  return h('article', { class: 'card node', 'data-node': node.nodeId, 'aria-labelledby': `node-${node.streamId}-name` },
    h('div', { class: 'card-head' },
      h('h3', { id: `node-${node.streamId}-name` }, node.nodeId),
      h('span', { class: `badge ${standing.length ? 'phase-failed' : 'phase-ready'}` }, standing.length ? 'config rejected' : 'in sync')),
    h('dl', {},
      h('dt', {}, 'Client'), h('dd', {}, `${node.clientKind}${node.userAgent ? ` (${node.userAgent})` : ''}`),
      h('dt', {}, 'Connected'), h('dd', {}, time(node.connectedAt)),
      h('dt', {}, 'Load reports'), h('dd', { 'data-field': 'load-reports' },
        node.loadReports.streams === 0 ? 'none (no LRS stream)' : [node.loadReports.fresh ? 'fresh, ' : 'stale, ', 'last ', time(node.loadReports.lastReportAt)])),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', {}, 'Versions per type'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'ACKed version'), h('th', { scope: 'col' }, 'State'))),
      h('tbody', {}, TYPES.filter((t) => node.types[t]).map((t) => {
        const s = node.types[t];
        const state = s.nack ? `rejected ${s.nack.version}` : !s.sentVersion ? 'nothing sent' : s.ackedVersion === s.sentVersion ? 'in sync' : `waiting for ACK of ${s.sentVersion}`;
        return h('tr', {}, h('th', { scope: 'row' }, t), h('td', {}, h('code', {}, s.ackedVersion || '—')), h('td', { class: s.nack ? 'error' : '' }, state));
      })))),
    nack ? h('div', { class: 'nack', 'data-field': 'nack', role: 'note' },
      h('strong', {}, standing.length ? 'NACK (standing): ' : 'Last NACK (since accepted): '), `${nack.type} version ${nack.version}, `, time(nack.at), h('br', {}), nack.message) : null);
}

function renderNodes() {
  const root = document.getElementById('nodes');
  if (status.nodes.length === 0) return root.replaceChildren(h('p', {}, 'No Envoy is connected.'));
  root.replaceChildren(...status.nodes.map(nodeCard));
}

// ---- actions

function confirmAction(host, action, label) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = `${label}: ${host}?`;
  document.getElementById('confirm-text').textContent = action === 'wake'
    ? `Start ${host}, wait until it is healthy, and release the requests Envoy holds for it.`
    : `Hold new requests for ${host}, let requests in progress finish, then stop it. Its next request wakes it again.`;
  document.getElementById('confirm-ok').textContent = label;
  dialog.returnValue = '';
  dialog.onclose = () => {
    if (dialog.returnValue === 'ok') run(host, action, label);
    else document.getElementById(`act-${action}-${host}`)?.focus();
  };
  dialog.showModal();
  document.getElementById('confirm-cancel').focus();
}

async function run(host, action, label) {
  busy.add(host);
  results.set(host, { text: `${label}: in progress…`, good: true });
  if (status) render();
  let text;
  let good = false;
  try {
    const res = await fetch(`/v1/hosts/${encodeURIComponent(host)}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify({ reason: 'status page' }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      good = true;
      const notApplied = (body.notApplied || []).length;
      text = `${label}: done${body.changed ? '' : ' (it already was)'}${notApplied ? `; ${notApplied} client(s) did not apply it` : ''}.`;
    } else {
      text = `${label} failed (${res.status} ${body.error || ''}): ${body.message || res.statusText}`;
    }
  } catch (err) {
    text = `${label} failed: ${err.message}`;
  }
  busy.delete(host);
  results.set(host, { text, good });
  if (status) render();
  document.getElementById(`act-${action}-${host}`)?.focus();
}

setInterval(() => {
  for (const el of document.querySelectorAll('time[data-ago]')) el.textContent = ago(el.dataset.ago);
}, 1000);

connect();
