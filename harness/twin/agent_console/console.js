// The twin world's web agent console: joins the support backend's HTTP agent API as an agent
// (Authorization: Bearer <the run's token>), answers the tablet's WebRTC offer with the browser's
// own stack (camera + microphone out, the screen share + the tablet's microphone in) and speaks
// the same data-channel messages as the harness's AiortcAgentBot (harness/session/agent.py):
// stroke, clear_strokes, tap, request_control, request_access.
//
// The token comes from the form or the URL fragment (#token=...&name=...&device=...&codec=VP8
// &screen=1280x800&zoom=1&autojoin=1); a fragment never reaches a server and is removed from the
// address bar once read. Every request is bounded; no ICE server is configured.
"use strict";

const POLL_WAIT_S = 10;
const HTTP_TIMEOUT_MS = 5000;
const POLL_RETRIES = 3;
const ICE_GATHER_TIMEOUT_MS = 5000;
const LOG_KEEP = 200;

const $ = (id) => document.getElementById(id);

const agentConsole = {
  state: "idle", // idle, joining, joined, session, connected, ended, error
  agent: null, // the backend's ID of this agent
  rid: null, // the current session
  pc: null,
  channel: null,
  local: null, // camera + microphone (MediaStream)
  sent: [], // {t: performance.now() ms, msg}: every data-channel message sent
  replies: [], // {t, msg}: every data-channel message received from the tablet
  consent: { control: "none", apps: {} },
  error: null,
  strokeId: 0,
  tapId: 0,
};
window.agentConsole = agentConsole;

let token = null;
let screenW = 1280;
let screenH = 800;
let zoom = 0.5;

function log(text) {
  const li = document.createElement("li");
  li.textContent = `${(performance.now() / 1000).toFixed(3)} ${text}`;
  const list = $("log");
  list.appendChild(li);
  while (list.children.length > LOG_KEEP) list.removeChild(list.firstChild);
  list.scrollTop = list.scrollHeight;
}

function setState(state, text) {
  agentConsole.state = state;
  $("status").dataset.state = state;
  $("status").textContent = text || state;
}

function fail(err) {
  agentConsole.error = String(err && err.message ? err.message : err);
  setState("error", `error: ${agentConsole.error}`);
  log(`error: ${agentConsole.error}`);
}

async function api(method, path, body, timeoutMs) {
  const limit = timeoutMs || HTTP_TIMEOUT_MS;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), limit);
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: "no-store",
    });
    const text = await r.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${(data && data.error) || text}`);
    return data;
  } catch (e) {
    if (e.name === "AbortError") throw new Error(`${method} ${path}: no answer within ${limit} ms`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function layoutStage() {
  const m = /^(\d+)x(\d+)$/.exec($("screen").value.trim());
  if (m) [screenW, screenH] = [Number(m[1]), Number(m[2])];
  const z = Number($("zoom").value);
  if (z > 0) zoom = z;
  agentConsole.screen = [screenW, screenH];
  const stage = $("stage");
  stage.style.width = `${Math.round(screenW * zoom)}px`;
  stage.style.height = `${Math.round(screenH * zoom)}px`;
  const ink = $("ink");
  ink.width = Math.round(screenW * zoom);
  ink.height = Math.round(screenH * zoom);
}

// --- joining and the event poll
async function join() {
  token = $("token").value;
  layoutStage();
  setState("joining", "joining...");
  try {
    agentConsole.local = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    $("camera").srcObject = agentConsole.local;
    const device = $("device").value.trim() || null;
    const reply = await api("POST", "/agents", { name: $("name").value.trim(), device });
    agentConsole.agent = reply.agent;
  } catch (e) {
    fail(e);
    return;
  }
  $("btn-join").disabled = true;
  $("btn-leave").disabled = false;
  setState("joined", `joined as ${agentConsole.agent}: waiting for a session`);
  log(`joined as ${agentConsole.agent}`);
  poll();
}

async function poll() {
  let failures = 0;
  while (agentConsole.agent) {
    const path = `/agents/${agentConsole.agent}/events?wait=${POLL_WAIT_S}`;
    try {
      const events = await api("GET", path, undefined, (POLL_WAIT_S * 1000) + HTTP_TIMEOUT_MS);
      failures = 0;
      for (const ev of events || []) await onEvent(ev);
    } catch (e) {
      if (!agentConsole.agent) return;
      failures += 1;
      log(`poll: ${e.message}`);
      if (failures >= POLL_RETRIES || / HTTP 404/.test(e.message)) {
        fail(e);
        agentConsole.agent = null;
        return;
      }
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }
}

async function onEvent(ev) {
  if (ev.event === "session") {
    agentConsole.rid = ev.rid;
    setState("session", `session ${ev.rid} with ${ev.device}: connecting`);
    log(`session ${ev.rid} from ${ev.device}`);
  } else if (ev.event === "signal" && ev.data && ev.data.type === "offer") {
    try {
      await answer(ev.data.sdp);
    } catch (e) {
      fail(e);
    }
  } else if (ev.event === "ended") {
    log(`session ${ev.rid} ended`);
    closePeer();
    agentConsole.rid = null;
    setState("joined", "session ended: waiting for the next");
  }
}

// --- WebRTC: the tablet offers, the console answers
function codecPreferences(kind, wanted) {
  const caps = RTCRtpReceiver.getCapabilities(kind).codecs;
  return caps.filter((c) => c.mimeType.toLowerCase() === `${kind}/${wanted.toLowerCase()}`);
}

async function answer(sdp) {
  closePeer();
  const pc = new RTCPeerConnection({ iceServers: [] });
  agentConsole.pc = pc;
  pc.ondatachannel = (e) => {
    const channel = e.channel;
    agentConsole.channel = channel;
    channel.onmessage = (m) => onReply(m.data);
    channel.onopen = () => log(`channel ${channel.label} open`);
  };
  pc.ontrack = (e) => {
    const stream = new MediaStream([e.track]);
    if (e.track.kind === "video") $("share").srcObject = stream;
    else $("voice").srcObject = stream;
  };
  pc.onconnectionstatechange = () => {
    log(`peer ${pc.connectionState}`);
    if (pc.connectionState === "connected") {
      setState("connected", `session ${agentConsole.rid}: connected`);
      showCodec();
    } else if (pc.connectionState === "failed") {
      fail(new Error("media connection failed"));
    }
  };
  await pc.setRemoteDescription({ type: "offer", sdp });
  const wanted = $("codec-pref").value;
  for (const t of pc.getTransceivers()) {
    const kind = t.receiver.track.kind;
    const track = agentConsole.local && agentConsole.local.getTracks().find((x) => x.kind === kind);
    if (track) {
      await t.sender.replaceTrack(track);
      t.direction = "sendrecv";
    }
    if (kind === "video" && wanted) {
      const prefs = codecPreferences("video", wanted);
      if (!prefs.length) throw new Error(`this browser cannot send ${wanted}`);
      t.setCodecPreferences(prefs);
    }
  }
  await pc.setLocalDescription(await pc.createAnswer());
  if (wanted) await pinSendCodec(pc, wanted);
  await iceGathered(pc);
  await api("POST", `/agents/${agentConsole.agent}/signal`, {
    rid: agentConsole.rid,
    data: { type: "answer", sdp: pc.localDescription.sdp },
  });
  log("answer sent");
}

// setCodecPreferences shapes what this end receives (the answer's list); what it sends follows
// the offer's order (VP8 first from the tablet's peer), so the sender's codec is pinned too.
async function pinSendCodec(pc, wanted) {
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind !== "video") continue;
    const params = t.sender.getParameters();
    const codec = (params.codecs || []).find((c) => c.mimeType.toLowerCase() === `video/${wanted.toLowerCase()}`);
    if (!codec) throw new Error(`${wanted} was not negotiated for sending`);
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    params.encodings[0].codec = codec;
    await t.sender.setParameters(params);
  }
}

function iceGathered(pc) {
  // the tablet's peer takes no trickled candidates: they go in the answer
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((ok, bad) => {
    const timer = setTimeout(
      () => bad(new Error(`ICE gathering not complete within ${ICE_GATHER_TIMEOUT_MS} ms`)),
      ICE_GATHER_TIMEOUT_MS,
    );
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        ok();
      }
    });
  });
}

// The codecs really used, from the statistics: {send, receive} video mime types and the
// selected candidate pair's addresses.
agentConsole.mediaInfo = async function mediaInfo() {
  const out = { send: null, receive: null, local: null, remote: null };
  if (!agentConsole.pc) return out;
  const stats = await agentConsole.pc.getStats();
  const byId = new Map();
  stats.forEach((s) => byId.set(s.id, s));
  stats.forEach((s) => {
    if (s.kind !== "video" || !s.codecId || !byId.get(s.codecId)) return;
    if (s.type === "outbound-rtp") out.send = byId.get(s.codecId).mimeType;
    if (s.type === "inbound-rtp") out.receive = byId.get(s.codecId).mimeType;
  });
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = byId.get(s.selectedCandidatePairId);
      const l = pair && byId.get(pair.localCandidateId);
      const r = pair && byId.get(pair.remoteCandidateId);
      if (l) out.local = `${l.address}:${l.port}`;
      if (r) out.remote = `${r.address}:${r.port}`;
    }
  });
  return out;
};

async function showCodec() {
  try {
    const info = await agentConsole.mediaInfo();
    $("codec").dataset.codec = info.receive || "";
    $("codec").textContent = `video: send ${info.send || "?"}, receive ${info.receive || "?"}`;
  } catch (e) {
    log(`stats: ${e.message}`);
  }
}

function closePeer() {
  if (agentConsole.pc) {
    try {
      agentConsole.pc.close();
    } catch (e) {
      log(`close: ${e.message}`);
    }
  }
  agentConsole.pc = null;
  agentConsole.channel = null;
}

// --- the data channel
function send(msg) {
  const channel = agentConsole.channel;
  if (!channel || channel.readyState !== "open") {
    log(`not sent (no open channel): ${msg.type}`);
    return null;
  }
  const t = performance.now();
  channel.send(JSON.stringify(msg));
  agentConsole.sent.push({ t, msg });
  log(`sent ${msg.type}${msg.id !== undefined ? ` ${msg.id}` : ""}`);
  return t;
}

function onReply(data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch (e) {
    return;
  }
  agentConsole.replies.push({ t: performance.now(), msg });
  log(`tablet: ${msg.type}${msg.id !== undefined ? ` ${msg.id}` : ""}`);
  if (msg.type === "control_granted" || msg.type === "control_denied") {
    agentConsole.consent.control = msg.type === "control_granted" ? "granted" : "denied";
    showConsent();
  } else if (msg.type === "access_granted" || msg.type === "access_denied") {
    agentConsole.consent.apps[msg.package] = msg.type === "access_granted" ? "granted" : "denied";
    showConsent();
  }
}

function showConsent() {
  const c = $("consent-control");
  const state = agentConsole.consent.control;
  c.dataset.state = state;
  c.textContent = { none: "not requested", requested: "asked: waiting for the customer" }[state] || state;
  const list = $("consent-apps");
  list.textContent = "";
  for (const [pkg, st] of Object.entries(agentConsole.consent.apps)) {
    const li = document.createElement("li");
    li.dataset.package = pkg;
    li.dataset.state = st;
    li.textContent = `${pkg}: ${st}`;
    list.appendChild(li);
  }
}

// --- drawing and tapping on the share (canvas pixels -> tablet screen pixels)
function screenPoint(e) {
  const r = $("ink").getBoundingClientRect();
  return [(e.clientX - r.left) * (screenW / r.width), (e.clientY - r.top) * (screenH / r.height)];
}

function hexColor(value) {
  const n = parseInt(value.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

let stroke = null;

function inkDown(e) {
  if (!document.querySelector("#mode-draw").checked) return;
  e.preventDefault();
  $("ink").setPointerCapture(e.pointerId);
  stroke = [screenPoint(e)];
}

function inkMove(e) {
  if (!stroke) return;
  const ctx = $("ink").getContext("2d");
  ctx.strokeStyle = $("pen-color").value;
  ctx.lineWidth = Math.max(1, Number($("pen-width").value) * zoom);
  ctx.lineCap = "round";
  // moves within one frame arrive as one event: every point is in its coalesced events
  const moves = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const m of moves.length ? moves : [e]) {
    const p = screenPoint(m);
    const last = stroke[stroke.length - 1];
    ctx.beginPath();
    ctx.moveTo(last[0] * zoom, last[1] * zoom);
    ctx.lineTo(p[0] * zoom, p[1] * zoom);
    ctx.stroke();
    stroke.push(p);
  }
}

function inkUp(e) {
  if (!stroke) return;
  const points = stroke;
  stroke = null;
  const p = screenPoint(e);
  const last = points[points.length - 1];
  if (p[0] !== last[0] || p[1] !== last[1]) points.push(p);
  send({
    type: "stroke",
    id: agentConsole.strokeId++,
    points,
    color: hexColor($("pen-color").value),
    width: Number($("pen-width").value),
  });
}

function inkClick(e) {
  if (!document.querySelector("#mode-tap").checked) return;
  const [x, y] = screenPoint(e);
  agentConsole.tapId += 1;
  send({ type: "tap", id: agentConsole.tapId, x, y });
}

function clearStrokes() {
  const ink = $("ink");
  ink.getContext("2d").clearRect(0, 0, ink.width, ink.height);
  send({ type: "clear_strokes" });
}

function requestControl() {
  if (send({ type: "request_control" }) !== null) {
    agentConsole.consent.control = "requested";
    showConsent();
  }
}

function requestAccess() {
  const pkg = $("access-package").value.trim();
  if (!pkg) return;
  if (send({ type: "request_access", package: pkg }) !== null) {
    agentConsole.consent.apps[pkg] = "requested";
    showConsent();
  }
}

async function hangUp() {
  if (!agentConsole.agent || agentConsole.rid === null) return;
  try {
    await api("POST", `/agents/${agentConsole.agent}/end`, { rid: agentConsole.rid });
  } catch (e) {
    log(`hang up: ${e.message}`);
  }
}

async function leave() {
  const id = agentConsole.agent;
  agentConsole.agent = null;
  closePeer();
  if (agentConsole.local) agentConsole.local.getTracks().forEach((t) => t.stop());
  $("btn-join").disabled = false;
  $("btn-leave").disabled = true;
  if (id) {
    try {
      await api("DELETE", `/agents/${id}`);
    } catch (e) {
      log(`leave: ${e.message}`);
    }
  }
  setState("idle", "left");
}

// --- wiring
function init() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, id] of [["name", "name"], ["device", "device"], ["token", "token"],
    ["codec", "codec-pref"], ["screen", "screen"], ["zoom", "zoom"]]) {
    if (params.has(key)) $(id).value = params.get(key);
  }
  if (location.hash) history.replaceState(null, "", location.pathname); // the token leaves the URL
  layoutStage();
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    join();
  });
  $("btn-leave").addEventListener("click", leave);
  $("btn-clear").addEventListener("click", clearStrokes);
  $("btn-control").addEventListener("click", requestControl);
  $("btn-access").addEventListener("click", requestAccess);
  $("btn-hangup").addEventListener("click", hangUp);
  const ink = $("ink");
  ink.addEventListener("pointerdown", inkDown);
  ink.addEventListener("pointermove", inkMove);
  ink.addEventListener("pointerup", inkUp);
  ink.addEventListener("click", inkClick);
  window.addEventListener("pagehide", () => {
    if (agentConsole.agent) {
      fetch(`/agents/${agentConsole.agent}`, {
        method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true,
      });
    }
  });
  if (params.get("autojoin") === "1") join();
}

init();
