// The browser agent's probe, injected into any agent console (selectors from its page-object):
// it reads the media elements with requestVideoFrameCallback and hands what it reads to the
// harness's loopback sink (harness/session/agents/browser_media.py), timed on the page's clock
// (performance.now(), ms); the harness maps that clock to its own with the ping exchange below.
//   share:  every presented share frame: presentationTime, receiveTime, RGBA pixels
//   camera: every presented frame of the local camera preview: captureTime, the code block's pixels
//   audio:  the tablet's microphone, 20 ms blocks of float32 samples, timed when they reach the page
// Runs as the body of a function: arguments[0] is the configuration; returns the probe's state.
const cfg = arguments[0];
if (window.__hilProbe) return window.__hilProbe.state;
const state = { share: 0, camera: 0, audio: 0, dropped: 0, errors: 0, noCaptureTime: 0, last: "" };
const probe = { state, inFlight: {} };
window.__hilProbe = probe;

function post(path, query, body) {
  const busy = probe.inFlight[path] || 0;
  if (busy >= cfg.max_in_flight) { // the sink is behind: drop this one, counted
    state.dropped += 1;
    return;
  }
  probe.inFlight[path] = busy + 1;
  const qs = Object.entries(query).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  fetch(`${cfg.sink}${path}?${qs}`, {
    method: "POST", mode: "no-cors", body, headers: { "Content-Type": "text/plain" },
  }).catch((e) => {
    state.errors += 1;
    state.last = String(e);
  }).finally(() => {
    probe.inFlight[path] -= 1;
  });
}

function canvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return [c, c.getContext("2d", { willReadFrequently: true })];
}

function watchShare() {
  const v = document.querySelector(cfg.share);
  let c = null;
  let ctx = null;
  const onFrame = (now, md) => {
    const w = md.width;
    const h = md.height;
    if (w && h) {
      if (!c || c.width !== w || c.height !== h) [c, ctx] = canvas(w, h);
      ctx.drawImage(v, 0, 0, w, h);
      const px = ctx.getImageData(0, 0, w, h).data;
      post("/share", { t: md.presentationTime, rt: md.receiveTime || "", w, h, n: md.presentedFrames }, px);
      state.share += 1;
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
}

function watchCamera() {
  const v = document.querySelector(cfg.camera);
  const code = cfg.code; // the code block in the camera frame (source px) and the size read
  const [, ctx] = canvas(code.w, code.h);
  const onFrame = (now, md) => {
    if (md.width && md.height) {
      if (md.captureTime === undefined) state.noCaptureTime += 1;
      else {
        const sx = code.sx * md.width;
        const sy = code.sy * md.height;
        ctx.drawImage(v, sx, sy, code.sw * md.width, code.sh * md.height, 0, 0, code.w, code.h);
        const px = ctx.getImageData(0, 0, code.w, code.h).data;
        post("/camera", { t: md.captureTime, w: code.w, h: code.h }, px);
        state.camera += 1;
      }
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
}

function watchAudio() {
  // the tablet's microphone: the remote track of the console's audio element, through Web Audio
  const el = document.querySelector(cfg.audio);
  let started = false;
  let timer = null;
  const start = () => {
    const stream = el.srcObject;
    if (started || !stream || !stream.getAudioTracks().length) return;
    started = true;
    clearInterval(timer);
    const ac = new AudioContext({ sampleRate: cfg.audio_rate });
    const src = ac.createMediaStreamSource(stream);
    const node = ac.createScriptProcessor(cfg.audio_block, 1, 1);
    node.onaudioprocess = (e) => {
      const t = performance.now();
      const samples = new Float32Array(e.inputBuffer.getChannelData(0));
      post("/audio", { t, rate: ac.sampleRate }, samples);
      state.audio += 1;
    };
    src.connect(node);
    node.connect(ac.destination);
    ac.resume();
  };
  timer = setInterval(start, 100);
}

if (cfg.share) watchShare();
if (cfg.camera) watchCamera();
if (cfg.audio) watchAudio();
return state;
