// hostpatrol dashboard: reads /ws (subprotocol hostpatrol.dashboard.v1) and renders what the
// server sends. Every field comes from resource authors or probed hosts: it is only ever set
// with textContent, never parsed as HTML.
'use strict';

(function () {
  const PROTOCOL = 'hostpatrol.dashboard.v1';
  const TOKEN_KEY = 'hostpatrol.token';
  const ORDER = { CRIT: 0, WARN: 1, UNKNOWN: 2, OK: 3 };
  const RETRY_MS = 3000;

  const inspections = new Map(); // "ns/name" -> inspection message
  const runs = new Map(); // "ns/name" -> latest committed run {namespace, name, results}
  let ws = null;
  let retry = null;

  const $ = (id) => document.getElementById(id);

  function setConn(state, text) {
    $('conn').dataset.state = state;
    $('conn').textContent = text;
  }

  function forgetData() {
    inspections.clear();
    runs.clear();
    $('standby').hidden = true;
    render();
  }

  function showLogin(msg) {
    forgetData();
    $('main').hidden = true;
    $('login').hidden = false;
    $('login-msg').textContent = msg || '';
    $('forget').hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  function showMain() {
    $('login').hidden = true;
    $('main').hidden = false;
    $('forget').hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  function disconnect() {
    clearTimeout(retry);
    retry = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
      ws = null;
    }
  }

  function connect() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const url = new URL('ws', location.href);
    let synced = false;

    disconnect();
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.hash = '';
    setConn('connecting', 'connecting…');
    const sock = new WebSocket(url.href, [PROTOCOL]);
    ws = sock;
    // a browser cannot set an Authorization header on a websocket: the token is the first
    // message (an empty one says "none": refused at once where the server needs a token)
    sock.onopen = () => sock.send('Bearer ' + (token || ''));
    sock.onmessage = (ev) => {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (m.type === 'synced') {
        synced = true;
        setConn('live', 'live');
        showMain();
        render();
        return;
      }
      if (m.dropped) {
        // this tab fell behind: start again from the server's state
        sock.close();
        return;
      }
      apply(m);
      if (synced) render();
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      if (!synced) {
        // refused (401/403) or unreachable before any data: show nothing but the prompt
        const why = ev.reason ? ' (' + ev.reason + ')' : '';
        setConn('refused', token ? 'token refused' : 'token needed');
        showLogin(token
          ? 'The token was refused, or the server cannot be reached' + why + '.'
          : 'This server needs a bearer token' + why + '.');
        return;
      }
      setConn('reconnecting', 'disconnected, reconnecting…');
      retry = setTimeout(connect, RETRY_MS);
    };
  }

  function apply(m) {
    if (m.type === 'replica') {
      $('standby').hidden = m.leading !== false;
      return;
    }
    if (typeof m.namespace !== 'string' || typeof m.name !== 'string') return;
    const key = m.namespace + '/' + m.name;
    if (m.type === 'inspection') {
      inspections.set(key, m);
    } else if (m.type === 'deleted') {
      inspections.delete(key);
      runs.delete(key);
    } else if (Array.isArray(m.results)) {
      runs.set(key, m);
    }
  }

  function matches(ns, name) {
    const fns = $('f-ns').value.trim().toLowerCase();
    const fname = $('f-name').value.trim().toLowerCase();
    return (!fns || ns.toLowerCase().includes(fns)) && (!fname || name.toLowerCase().includes(fname));
  }

  function statusOk(st) {
    const f = $('f-status').value;
    return !f || (f === 'bad' ? st !== 'OK' : st === f);
  }

  function str(v) {
    return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
  }

  function age(ms) {
    if (typeof ms !== 'number') return '';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 120) return s + 's';
    if (s < 7200) return Math.round(s / 60) + 'm';
    return Math.round(s / 3600) + 'h';
  }

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function badge(td, text, attr, value) {
    const span = document.createElement('span');
    span.className = 'badge';
    span.dataset[attr] = value;
    span.textContent = text;
    td.textContent = '';
    td.appendChild(span);
  }

  function render() {
    const rows = [];
    const counts = { CRIT: 0, WARN: 0, UNKNOWN: 0, OK: 0 };

    runs.forEach((run) => {
      if (!matches(run.namespace, run.name)) return;
      run.results.forEach((r) => {
        if (!r || typeof r !== 'object') return;
        const st = ORDER[r.status] === undefined ? 'UNKNOWN' : r.status;
        counts[st]++;
        if (statusOk(st)) rows.push({ ns: run.namespace, name: run.name, st: st, r: r });
      });
    });
    rows.sort((a, b) => ORDER[a.st] - ORDER[b.st] || a.ns.localeCompare(b.ns) ||
      a.name.localeCompare(b.name) || str(a.r.check).localeCompare(str(b.r.check)) ||
      str(a.r.target).localeCompare(str(b.r.target)));
    Object.keys(counts).forEach((k) => { $('n-' + k).textContent = String(counts[k]); });

    const tbody = document.createElement('tbody');
    rows.forEach((row) => {
      const tr = document.createElement('tr');
      const r = row.r;
      tr.dataset.status = row.st;
      tr.dataset.key = [row.ns, row.name, str(r.check), str(r.target)].join('/');
      badge(cell(tr, ''), row.st, 'status', row.st);
      cell(tr, row.ns);
      cell(tr, row.name);
      cell(tr, str(r.check));
      cell(tr, str(r.target));
      cell(tr, str(r.reason), 'reason');
      const values = r.values && typeof r.values === 'object' ? r.values : {};
      cell(tr, Object.keys(values).map((k) => k + '=' + str(values[k])).join('  '), 'values');
      cell(tr, age(r.observed_ms));
      tbody.appendChild(tr);
    });
    $('results').replaceChild(tbody, $('results').tBodies[0]);
    $('no-results').hidden = rows.length > 0;

    const list = [];
    inspections.forEach((i) => { if (matches(i.namespace, i.name)) list.push(i); });
    list.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const ibody = document.createElement('tbody');
    list.forEach((i) => {
      const tr = document.createElement('tr');
      const conds = Array.isArray(i.conditions) ? i.conditions : [];
      const cond = (type) => conds.find((c) => c && c.type === type) || {};
      const ready = cond('Ready');
      const degraded = cond('Degraded');
      // the reason shown: the first condition that is not healthy, else Ready's
      const bad = [['Ready', 'False'], ['InvalidSpec', 'True'], ['Degraded', 'True']]
        .map(([t, v]) => (cond(t).status === v ? cond(t) : null)).find((c) => c) || ready;
      const s = i.summary || {};
      tr.dataset.key = i.namespace + '/' + i.name;
      tr.dataset.ready = str(ready.status);
      tr.dataset.degraded = str(degraded.status);
      cell(tr, i.namespace);
      cell(tr, i.name);
      const readyText = i.suspend ? 'Suspended' : str(ready.status) || 'pending';
      badge(cell(tr, ''), readyText, 'ready', str(ready.status));
      // Degraded True is bad: shown with the colours of Ready False
      const d = str(degraded.status);
      badge(cell(tr, ''), d || '-', 'ready', d === 'True' ? 'False' : d === 'False' ? 'True' : d);
      cell(tr, str(bad.reason));
      cell(tr, str(bad.message), 'message');
      cell(tr, ['ok', 'warn', 'crit', 'unknown']
        .filter((k) => typeof s[k] === 'number').map((k) => k + ' ' + s[k]).join(', '));
      cell(tr, str(i.lastRunTime));
      ibody.appendChild(tr);
    });
    $('inspections').replaceChild(ibody, $('inspections').tBodies[0]);
    $('no-inspections').hidden = list.length > 0;
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      $('token').value = '';
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      connect();
    });
    $('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      disconnect();
      setConn('idle', 'not connected');
      showLogin('');
    });
    ['f-ns', 'f-name', 'f-status'].forEach((id) => $(id).addEventListener('input', render));
    setInterval(() => { if (!$('main').hidden) render(); }, 5000);
    connect();
  });
}());
