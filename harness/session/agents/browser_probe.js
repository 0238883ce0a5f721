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
  // the tablet's microphone: the remote audio track of the console's media element, read with
  // MediaStreamTrackProcessor (decoded AudioData, as the track delivers it; Web Audio hears
  // silence from a remote track in headless Chromium); a block is timed by its last chunk
  const el = document.querySelector(cfg.audio);
  let timer = null;
  const start = () => {
    const stream = el.srcObject;
    if (!stream || !stream.getAudioTracks().length) return;
    clearInterval(timer);
    // a deep buffer: a busy main thread reads late (the timestamps keep the times) but loses nothing
    const track = stream.getAudioTracks()[0];
    const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 500 }).readable.getReader();
    let parts = [];
    let count = 0;
    const pump = async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        // AudioData.timestamp is on the page's clock (us): when the chunk reached the track, not
        // when this loop got to it (the main thread may be busy drawing share frames)
        const t = value.timestamp / 1000;
        const n = value.numberOfFrames;
        const buf = new Float32Array(n);
        value.copyTo(buf, { planeIndex: 0, format: "f32-planar" });
        const rate = value.sampleRate;
        value.close();
        parts.push(buf);
        count += n;
        // never drop audio (the chirp search needs it contiguous): while the sink is behind, the
        // next post carries more
        if (count >= cfg.audio_block && !probe.inFlight["/audio"]) { // one at a time: in order
          const out = new Float32Array(count);
          let at = 0;
          for (const p of parts) {
            out.set(p, at);
            at += p.length;
          }
          post("/audio", { t, rate }, out);
          state.audio += 1;
          parts = [];
          count = 0;
        }
      }
    };
    pump().catch((e) => {
      state.errors += 1;
      state.last = `audio: ${e}`;
    });
  };
  timer = setInterval(start, 100);
}

if (cfg.share) watchShare();
if (cfg.camera) watchCamera();
if (cfg.audio) watchAudio();
return state;
