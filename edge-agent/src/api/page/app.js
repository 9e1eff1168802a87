// Installer page logic: token kept in sessionStorage, API polled with it, and a zone/line editor
// whose output is the camera's [[cameras.zones]] / [[cameras.lines]] TOML (config/rules.rs).
'use strict';

const TOKEN_KEY = 'edge-agent-token';
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  cameras: [],
  camera: null,       // selected camera id
  frame: null,        // {width, height} of the snapshot in frame pixels
  drawn: { zones: [], lines: [] },
  current: [],        // points of the item being drawn
  snapUrl: null,
  timers: [],
};

const $ = (id) => document.getElementById(id);

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers['Authorization'] = 'Bearer ' + state.token;
  const r = await fetch(path, Object.assign({}, opts, { headers, cache: 'no-store' }));
  if (r.status === 401) {
    showLogin(state.token ? 'The agent refused the token.' : '');
    throw new Error('unauthorised');
  }
  return r;
}

function setConn(ok, text) {
  const c = $('conn');
  c.textContent = text;
  c.className = 'pill ' + (ok ? 'ok' : 'bad');
}

function showLogin(msg) {
  state.timers.forEach(clearInterval);
  state.timers = [];
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = msg || '';
  setConn(false, 'not connected');
}

async function start() {
  try {
    const r = await api('config');
    if (!r.ok) throw new Error('config: HTTP ' + r.status);
    const cfg = await r.json();
    $('device').textContent = cfg.device.site_id + ' / ' + cfg.device.device_id;
  } catch (e) {
    if (e.message !== 'unauthorised') showLogin('Cannot reach the agent: ' + e.message);
    return;
  }
  $('login').hidden = true;
  $('app').hidden = false;
  setConn(true, 'connected');
  await refreshCameras();
  await refreshSnapshot();
  await refreshEvents();
  state.timers.push(setInterval(refreshSnapshot, 1000));
  state.timers.push(setInterval(refreshCameras, 2000));
  state.timers.push(setInterval(refreshEvents, 3000));
}

function fmtAge(s) {
  if (s == null) return '—';
  return s < 1 ? 'now' : s.toFixed(1) + ' s ago';
}

async function refreshCameras() {
  let data;
  try {
    const r = await api('cameras');
    data = await r.json();
    setConn(true, 'connected');
  } catch (e) {
    if (e.message !== 'unauthorised') setConn(false, 'agent unreachable');
    return;
  }
  state.cameras = data.cameras;
  const body = $('cameras').querySelector('tbody');
  body.replaceChildren(...data.cameras.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.camera = c.id;
    const cells = [
      c.name ? c.id + ' (' + c.name + ')' : c.id,
      c.state,
      c.fps.toFixed(1) + ' / ' + c.target_fps,
      c.decoded, c.processed, c.dropped, c.decode_errors,
      fmtAge(c.frame ? c.frame.age_s : null),
    ];
    cells.forEach((v, i) => {
      const td = document.createElement('td');
      td.textContent = v;
      if (i === 1) {
        td.className = 'state-' + c.state;
        td.title = c.state_detail || '';
      }
      tr.appendChild(td);
    });
    return tr;
  }));
  const sel = $('camera-select');
  const ids = data.cameras.map((c) => c.id);
  if (sel.options.length !== ids.length || [...sel.options].some((o, i) => o.value !== ids[i])) {
    sel.replaceChildren(...ids.map((id) => new Option(id, id)));
  }
  if (!state.camera || !ids.includes(state.camera)) {
    state.camera = ids[0] || null;
    sel.value = state.camera || '';
    renderToml();
  }
}

async function refreshSnapshot() {
  if (!state.camera) return;
  let r;
  try {
    r = await api('cameras/' + encodeURIComponent(state.camera) + '/snapshot.jpg');
  } catch (e) {
    return;
  }
  if (!r.ok) {
    $('snap-info').textContent = 'no frame yet';
    return;
  }
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const img = $('snapshot');
  img.onload = () => {
    if (state.snapUrl) URL.revokeObjectURL(state.snapUrl);
    state.snapUrl = url;
    state.frame = { width: img.naturalWidth, height: img.naturalHeight };
    $('snap-info').textContent = img.naturalWidth + '×' + img.naturalHeight + ', ' + new Date().toLocaleTimeString();
    const cv = $('editor');
    if (cv.width !== img.naturalWidth || cv.height !== img.naturalHeight) {
      cv.width = img.naturalWidth;
      cv.height = img.naturalHeight;
    }
    drawEditor();
  };
  img.src = url;
}

function eventLine(e) {
  const parts = [];
  if (e.object) {
    parts.push(e.object.class + (e.object.track_id != null ? ' #' + e.object.track_id : ''));
    if (e.object.plate) parts.push('plate ' + (e.object.plate.display || e.object.plate.text));
  }
  if (e.rule) parts.push('rule ' + e.rule.id);
  return parts.join(', ');
}

async function refreshEvents() {
  let data;
  try {
    const r = await api('events/recent?limit=30');
    data = await r.json();
  } catch (e) {
    return;
  }
  const list = $('events');
  list.replaceChildren(...data.events.map((e) => {
    const li = document.createElement('li');
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = e.kind + ' ' + e.phase;
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = ' ' + e.camera_id + ' ' + new Date(e.capture_time).toLocaleTimeString() + ' ';
    const what = document.createElement('span');
    what.textContent = eventLine(e);
    li.append(kind, time, what);
    return li;
  }));
  if (!data.events.length) {
    const li = document.createElement('li');
    li.textContent = 'no events yet';
    list.appendChild(li);
  }
}

// ---- editor --------------------------------------------------------------------------------------

function mode() {
  return document.querySelector('input[name=mode]:checked').value;
}

function framePoint(ev) {
  const cv = $('editor');
  const rect = cv.getBoundingClientRect();
  const x = Math.round((ev.clientX - rect.left) / rect.width * cv.width);
  const y = Math.round((ev.clientY - rect.top) / rect.height * cv.height);
  return [Math.max(0, Math.min(cv.width, x)), Math.max(0, Math.min(cv.height, y))];
}

function nextId(kind) {
  const taken = new Set(allItems()[kind].map((z) => z.id));
  const prefix = kind === 'zones' ? 'zone-' : 'line-';
  let n = 1;
  while (taken.has(prefix + n)) n += 1;
  return prefix + n;
}

function finishItem() {
  const id = $('item-id').value.trim() || nextId(mode() === 'zone' ? 'zones' : 'lines');
  if (mode() === 'zone') {
    if (state.current.length < 3) return;
    state.drawn.zones.push({ id, polygon: state.current });
  } else {
    if (state.current.length < 2) return;
    state.drawn.lines.push({ id, points: state.current.slice(0, 2) });
  }
  state.current = [];
  $('item-id').value = nextId(mode() === 'zone' ? 'zones' : 'lines');
  drawEditor();
  renderToml();
}

function onCanvasClick(ev) {
  state.current.push(framePoint(ev));
  if (mode() === 'line' && state.current.length === 2) finishItem();
  drawEditor();
  renderToml();
}

function drawEditor() {
  const cv = $('editor');
  const g = cv.getContext('2d');
  g.clearRect(0, 0, cv.width, cv.height);
  const lw = Math.max(2, cv.width / 400);
  g.lineWidth = lw;
  g.font = Math.round(lw * 7) + 'px sans-serif';
  for (const z of state.drawn.zones) {
    g.strokeStyle = '#00e5ff';
    g.fillStyle = 'rgba(0, 229, 255, 0.25)';
    g.beginPath();
    z.polygon.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.closePath();
    g.fill();
    g.stroke();
    g.fillStyle = '#00e5ff';
    g.fillText(z.id, z.polygon[0][0] + 4, z.polygon[0][1] - 4);
  }
  for (const l of state.drawn.lines) {
    g.strokeStyle = '#ff3df5';
    g.beginPath();
    g.moveTo(...l.points[0]);
    g.lineTo(...l.points[1]);
    g.stroke();
    g.fillStyle = '#ff3df5';
    g.fillText(l.id, l.points[0][0] + 4, l.points[0][1] - 4);
  }
  if (state.current.length) {
    g.strokeStyle = '#ffeb3b';
    g.fillStyle = '#ffeb3b';
    g.beginPath();
    state.current.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.stroke();
    for (const [x, y] of state.current) {
      g.beginPath();
      g.arc(x, y, lw * 2, 0, 2 * Math.PI);
      g.fill();
    }
  }
}

function selectedCamera() {
  return state.cameras.find((c) => c.id === state.camera) || null;
}

/** Existing (kept) plus drawn zones and lines. */
function allItems() {
  const cam = selectedCamera();
  const keep = $('keep-existing').checked && cam;
  return {
    zones: (keep ? cam.zones : []).concat(state.drawn.zones),
    lines: (keep ? cam.lines : []).concat(state.drawn.lines),
  };
}

function tomlString(s) {
  return '"' + String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}
function tomlNum(n) {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}
function tomlPoints(pts) {
  return '[' + pts.map(([x, y]) => '[' + tomlNum(x) + ', ' + tomlNum(y) + ']').join(', ') + ']';
}

/** The TOML exactly as `[[cameras]]` takes it (config/rules.rs ZoneConfig, LineConfig). */
function toToml(items, cameraId) {
  const out = ['# Zones and lines of camera ' + tomlString(cameraId) + ': put them after its [[cameras]] keys,',
    '# replacing its current [[cameras.zones]] and [[cameras.lines]]. Points are frame pixels.'];
  for (const z of items.zones) {
    out.push('', '[[cameras.zones]]', 'id = ' + tomlString(z.id), 'polygon = ' + tomlPoints(z.polygon));
    if (z.classes && z.classes.length) out.push('classes = [' + z.classes.map(tomlString).join(', ') + ']');
    if (z.inertia != null && z.inertia !== 3) out.push('inertia = ' + z.inertia);
    if (z.direction) out.push('direction = ' + tomlPoints(z.direction));
  }
  for (const l of items.lines) {
    out.push('', '[[cameras.lines]]', 'id = ' + tomlString(l.id), 'points = ' + tomlPoints(l.points));
    if (l.direction) out.push('direction = ' + tomlPoints(l.direction));
    if (l.hysteresis_px != null && l.hysteresis_px !== 6) out.push('hysteresis_px = ' + tomlNum(l.hysteresis_px));
  }
  return out.join('\n') + '\n';
}

function renderToml() {
  if (!state.camera) return;
  $('toml').value = toToml(allItems(), state.camera);
}

async function validate() {
  const res = $('validate-result');
  res.textContent = 'checking…';
  res.className = '';
  try {
    const r = await api('config/validate?camera=' + encodeURIComponent(state.camera), {
      method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: $('toml').value,
    });
    const rep = await r.json();
    if (rep.ok) {
      res.textContent = 'OK: ' + rep.zones + ' zones, ' + rep.lines + ' lines';
      res.className = 'ok-text';
    } else {
      res.textContent = (rep.problems || []).map((p) =>
        (p.line ? 'line ' + p.line + ': ' : '') + (p.at ? p.at + ': ' : '') + p.message).join('; ')
        || rep.error || 'refused';
      res.className = 'error';
    }
  } catch (e) {
    res.textContent = e.message;
    res.className = 'error';
  }
}

function wire() {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  });
  $('editor').addEventListener('click', onCanvasClick);
  $('finish').addEventListener('click', finishItem);
  $('undo').addEventListener('click', () => { state.current.pop(); drawEditor(); });
  $('clear').addEventListener('click', () => {
    state.drawn = { zones: [], lines: [] };
    state.current = [];
    drawEditor();
    renderToml();
  });
  $('keep-existing').addEventListener('change', renderToml);
  $('validate').addEventListener('click', validate);
  $('copy').addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText($('toml').value));
  $('camera-select').addEventListener('change', (ev) => {
    state.camera = ev.target.value;
    state.drawn = { zones: [], lines: [] };
    state.current = [];
    renderToml();
    refreshSnapshot();
  });
  document.querySelectorAll('input[name=mode]').forEach((r) => r.addEventListener('change', () => {
    state.current = [];
    $('finish').textContent = mode() === 'zone' ? 'Finish zone' : 'Finish line';
    $('item-id').value = nextId(mode() === 'zone' ? 'zones' : 'lines');
    drawEditor();
  }));
}

wire();
// Without a token the agent answers /config only when it runs without one (loopback).
start();
