// The chat page: joins with a name kept in localStorage, renders the room's
// JSON events, reconnects with backoff, and keeps messages typed while
// offline until the server confirms them.
'use strict';

const $ = (id) => document.getElementById(id);
const messages = $('messages');
const statusLine = $('status');
const input = $('input');
const nameDialog = $('name-dialog');
const nameInput = $('name-input');
const nameError = $('name-error');
const toast = $('toast');

const NAME_KEY = 'wsproto-chat.name';
const CLIENT_KEY = 'wsproto-chat.client';
// Give up on a message the server has not confirmed within this long: 10 s,
// unless the address says otherwise (`/?confirm_ms=1500`, for tests).
const CONFIRM_MS = (() => {
  const asked = Number(new URLSearchParams(location.search).get('confirm_ms'));
  return Number.isFinite(asked) && asked >= 100 && asked <= 600000 ? asked : 10000;
})();

function randomId(prefix) {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}

let myName = localStorage.getItem(NAME_KEY) || '';
let myClient = localStorage.getItem(CLIENT_KEY);
if (!myClient) {
  myClient = randomId('c');
  localStorage.setItem(CLIENT_KEY, myClient);
}

// The current socket (a global, so tests can read `ws.extensions`).
var ws = null;
let joined = false;
let attempt = 0;
let countdown = null;
let maxText = 4000;
let labelCounter = 0;
const seen = new Set(); // message ids already shown
const pending = new Map(); // label -> {text, li, sentAt, timer}

// ---- rendering --------------------------------------------------------------------------------

function colorFor(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 45% 42%)`;
}

function avatar(name) {
  const a = document.createElement('span');
  a.className = 'avatar';
  a.textContent = Array.from(name.trim())[0] || '?';
  a.style.background = colorFor(name);
  return a;
}

function clock(ms) {
  const d = new Date(ms);
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const today = new Date().toDateString() === d.toDateString();
  return today ? t : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${t}`;
}

function nearBottom() {
  return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
}

function append(li, stick) {
  const follow = stick || nearBottom();
  messages.appendChild(li);
  while (messages.children.length > 500) messages.firstChild.remove();
  if (follow) messages.scrollTop = messages.scrollHeight;
}

function messageItem(m, own) {
  const li = document.createElement('li');
  li.className = own ? 'msg own' : 'msg';
  if (m.id) li.dataset.id = m.id;
  li.appendChild(avatar(m.name || myName));
  const bubble = document.createElement('div');
  bubble.className = 'bubble';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = m.name || myName;
  const time = document.createElement('time');
  time.className = 'time';
  if (m.time) {
    time.dateTime = new Date(m.time).toISOString();
    time.textContent = clock(m.time);
    time.title = new Date(m.time).toLocaleString();
  }
  meta.append(name, time);
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = m.text;
  bubble.append(meta, text);
  if (own) {
    const delivery = document.createElement('span');
    delivery.className = 'delivery';
    meta.appendChild(delivery);
  }
  li.appendChild(bubble);
  return li;
}

function showMessage(m, stick) {
  if (m.id && seen.has(m.id)) return;
  if (m.id) seen.add(m.id);
  const own = m.client === myClient;
  const waiting = own && m.label ? pending.get(m.label) : null;
  const li = messageItem(m, own);
  if (waiting) {
    // Confirmed: the server's copy (with its time) replaces the local one.
    clearTimeout(waiting.timer);
    pending.delete(m.label);
    waiting.li.replaceWith(li);
    setDelivery(li, 'sent', '✓');
    return;
  }
  if (own) setDelivery(li, 'sent', '✓');
  append(li, own);
}

function showNotice(text, time) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.textContent = time ? `${text} · ${clock(time)}` : text;
  append(li, false);
}

function setDelivery(li, state, text) {
  li.classList.remove('pending', 'queued', 'failed');
  if (state !== 'sent') li.classList.add(state);
  const d = li.querySelector('.delivery');
  if (d) d.textContent = text;
  li.dataset.delivery = state;
}

function showOnline(o) {
  $('count').textContent = `${o.count} online`;
  $('online-count').textContent = String(o.count);
  const list = $('members');
  list.replaceChildren();
  for (const m of o.members) {
    const li = document.createElement('li');
    if (m.client === myClient) li.className = 'me';
    const name = document.createElement('span');
    name.textContent = m.name;
    li.append(avatar(m.name), name);
    list.appendChild(li);
  }
  if (o.count > o.members.length) {
    const more = document.createElement('li');
    more.className = 'more';
    more.textContent = `and ${o.count - o.members.length} more`;
    list.appendChild(more);
  }
}

let toastTimer = null;
function showError(text) {
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 6000);
}

function setStatus(state, text) {
  $('app').classList.toggle('offline', state !== 'connected');
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

// ---- connection -------------------------------------------------------------------------------

function socketUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

function connect() {
  clearInterval(countdown);
  setStatus('connecting', 'connecting…');
  const socket = new WebSocket(socketUrl());
  ws = socket;
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: 'join', name: myName, client: myClient }));
  };
  socket.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    handle(m);
  };
  socket.onclose = (e) => {
    if (ws !== socket) return;
    joined = false;
    for (const p of pending.values()) {
      if (p.sentAt) markQueued(p);
    }
    scheduleReconnect(e.code === 1001 || e.code === 1012 ? 'server restarting' : '');
  };
}

function scheduleReconnect(why) {
  // 1 s, 2 s, 4 s … up to 30 s, with jitter so a restarted server is not hit by all pages at once.
  const base = Math.min(30, 2 ** Math.min(attempt, 5));
  const delay = Math.max(1, Math.round(base * (0.6 + Math.random() * 0.4)));
  attempt += 1;
  let left = delay;
  const tick = () => {
    setStatus('reconnecting', `reconnecting in ${left} s${why ? ` (${why})` : ''}`);
    if (left <= 0) {
      clearInterval(countdown);
      connect();
    }
    left -= 1;
  };
  clearInterval(countdown);
  tick();
  countdown = setInterval(tick, 1000);
}

function handle(m) {
  switch (m.type) {
    case 'welcome':
      joined = true;
      attempt = 0;
      myName = m.name;
      localStorage.setItem(NAME_KEY, myName);
      $('me').textContent = myName;
      maxText = m.max_text || maxText;
      setStatus('connected', 'connected');
      if (m.history.length && !m.history.every((h) => seen.has(h.id))) {
        const divider = document.createElement('li');
        divider.className = 'divider';
        divider.textContent = 'recent messages';
        if (!messages.children.length) append(divider, true);
      }
      for (const h of m.history) if (h.type === 'message') showMessage(h, true);
      flushPending();
      break;
    case 'message':
      showMessage(m, false);
      break;
    case 'join':
      showNotice(`${m.name} joined`, m.time);
      break;
    case 'leave':
      showNotice(`${m.name} left`, m.time);
      break;
    case 'online':
      showOnline(m);
      break;
    case 'error':
      if (!joined && (m.code === 'name_taken' || m.code === 'bad_name' || m.code === 'bad_message')) {
        refusedName(m.error);
      } else {
        showError(m.error || 'the server refused that');
      }
      break;
    default:
      break;
  }
}

// ---- sending ----------------------------------------------------------------------------------

function markQueued(p) {
  p.sentAt = 0;
  clearTimeout(p.timer);
  setDelivery(p.li, 'queued', 'waiting for connection…');
}

function transmit(label, p) {
  ws.send(JSON.stringify({ type: 'message', text: p.text, id: label }));
  p.sentAt = Date.now();
  setDelivery(p.li, 'pending', 'sending…');
  clearTimeout(p.timer);
  p.timer = setTimeout(() => {
    if (pending.get(label) === p) {
      pending.delete(label);
      setDelivery(p.li, 'failed', 'not sent');
    }
  }, CONFIRM_MS);
}

function flushPending() {
  for (const [label, p] of pending) {
    if (!p.sentAt) transmit(label, p);
  }
}

function sendMessage() {
  const text = input.value;
  if (!text.trim()) return;
  if (Array.from(text).length > maxText) {
    showError(`a message holds at most ${maxText} characters`);
    return;
  }
  input.value = '';
  autosize();
  labelCounter += 1;
  const label = `${myClient.slice(0, 12)}-${Date.now().toString(36)}-${labelCounter}`;
  const li = messageItem({ name: myName, text, time: Date.now() }, true);
  append(li, true);
  const p = { text, li, sentAt: 0, timer: null };
  pending.set(label, p);
  if (joined && ws && ws.readyState === WebSocket.OPEN) {
    transmit(label, p);
  } else {
    markQueued(p);
  }
}

function autosize() {
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  sendMessage();
  input.focus();
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendMessage();
  }
});
input.addEventListener('input', autosize);

// ---- name -------------------------------------------------------------------------------------

// The server refused the name (taken by someone else, or invalid): hang up
// and stay offline until the person picks another one.
function refusedName(error) {
  if (ws) {
    const old = ws;
    ws = null;
    old.close(1000, 'choosing another name');
  }
  clearInterval(countdown);
  for (const p of pending.values()) {
    if (p.sentAt) markQueued(p);
  }
  setStatus('offline', 'choose another name to join');
  askName(error);
}

function askName(error) {
  nameInput.value = myName;
  nameError.hidden = !error;
  nameError.textContent = error || '';
  if (!nameDialog.open) nameDialog.showModal();
  nameInput.focus();
}

$('name-form').addEventListener('submit', (e) => {
  const name = nameInput.value.trim();
  if (!name) {
    e.preventDefault();
    return;
  }
  const changed = name !== myName;
  // Shown and remembered (in localStorage) once the server has accepted it.
  myName = name;
  if (!ws || !joined || changed) {
    // A new name means joining again under it.
    if (ws) {
      const old = ws;
      ws = null;
      old.close(1000, 'renaming');
    }
    attempt = 0;
    connect();
  }
});
nameDialog.addEventListener('cancel', (e) => {
  // Without a name the server accepted, there is nothing to go back to.
  if (!myName || !ws) e.preventDefault();
});
$('rename').addEventListener('click', () => askName(''));
$('count').addEventListener('click', () => {
  const panel = $('online');
  const open = panel.classList.toggle('open');
  $('count').setAttribute('aria-expanded', String(open));
});

if (myName) {
  $('me').textContent = myName;
  connect();
} else {
  setStatus('connecting', 'choose a name to join');
  askName('');
}
