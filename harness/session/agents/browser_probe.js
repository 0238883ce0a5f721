// The browser agent's probe, injected into any agent console (selectors from its page-object):
// it reads the media elements with requestVideoFrameCallback and hands what it reads to the
// harness's loopback sink (harness/session/agents/browser_media.py), timed on the page's clock
// (performance.now(), ms); the harness maps that clock to its own with the ping exchange below.
//   share:  every decoded share frame, read in a worker from the remote track
//           (MediaStreamTrackProcessor): the time the worker got it (page clock), RGBA pixels;
//           without MediaStreamTrackProcessor or workers, every presented frame
//           (requestVideoFrameCallback: presentationTime, receiveTime)
//   camera: every presented frame of the local camera preview: captureTime, the code block's pixels
//   audio:  the tablet's microphone, 20 ms blocks of float32 samples, timed when they reach the page
// Runs as the body of a function: arguments[0] is the configuration; returns the probe's state.
const cfg = arguments[0];
if (window.__hilProbe) return window.__hilProbe.state;
const state = {
  share: 0, camera: 0, audio: 0, dropped: 0, errors: 0, noCaptureTime: 0, last: "",
  shareReader: "", shareDropped: 0, shareErrors: 0,
};
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

// The share reader's worker: reads the decoded frames off the main thread (a busy page then
// delays nothing: the worker stamps each frame when it gets it), copies them out as RGBA and
// posts them to the sink. Its clock is mapped to the page's by the two time origins.
const SHARE_WORKER = `
onmessage = async (e) => {
  const { readable, sink, maxInFlight, maxQueued, origin } = e.data;
  const delta = performance.timeOrigin - origin;
  const st = { share: 0, shareDropped: 0, shareErrors: 0, shareLast: "" };
  const queue = []; // frames read and copied out, waiting for a post slot
  let inFlight = 0;
  const pump = () => {
    while (inFlight < maxInFlight && queue.length) {
      const q = queue.shift();
      inFlight += 1;
      fetch(sink + "/share?t=" + q.t + "&rt=&w=" + q.w + "&h=" + q.h + "&n=" + q.n + "&rtp=" + q.rtp, {
        method: "POST", mode: "no-cors", body: q.px, headers: { "Content-Type": "text/plain" },
      }).catch((err) => {
        st.shareErrors += 1;
        st.shareLast = String(err);
      }).finally(() => {
        inFlight -= 1;
        pump();
      });
    }
  };
  const reader = readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const t = performance.now() + delta;
    const r = value.visibleRect;
    const w = r ? r.width : value.displayWidth;
    const h = r ? r.height : value.displayHeight;
    if (queue.length >= maxQueued || !w || !h) { // the sink is far behind: dropped, counted
      st.shareDropped += 1;
      value.close();
      postMessage(st);
      continue;
    }
    const px = new Uint8Array(w * h * 4);
    try {
      await value.copyTo(px, { format: "RGBA" });
    } catch (err) {
      st.shareErrors += 1;
      st.shareLast = String(err);
      value.close();
      postMessage(st);
      continue;
    }
    const md = value.metadata ? value.metadata() : {};
    const rtp = md.rtpTimestamp === undefined ? "" : md.rtpTimestamp;
    value.close();
    queue.push({ t, w, h, n: st.share, px, rtp });
    st.share += 1;
    pump();
    postMessage(st);
  }
};
`;

function watchShare() {
  const v = document.querySelector(cfg.share);
  if (typeof MediaStreamTrackProcessor === "undefined" || typeof Worker === "undefined") {
    state.shareReader = "presented";
    watchSharePresented();
    return;
  }
  let timer = null;
  const start = () => {
    const stream = v.srcObject;
    if (!stream || !stream.getVideoTracks().length) return;
    clearInterval(timer);
    let worker;
    try {
      const url = URL.createObjectURL(new Blob([SHARE_WORKER], { type: "text/javascript" }));
      worker = new Worker(url);
    } catch (e) { // e.g. a console whose policy refuses blob workers: presented frames then
      state.shareReader = "presented";
      state.last = `share worker: ${e}`;
      watchSharePresented();
      return;
    }
    state.shareReader = "decoded";
    watchPresentations();
    let heard = false;
    worker.onmessage = (m) => {
      heard = true;
      state.share = m.data.share;
      state.shareDropped = m.data.shareDropped;
      state.shareErrors = m.data.shareErrors;
      if (m.data.shareLast) state.last = m.data.shareLast;
    };
    worker.onerror = (e) => {
      state.errors += 1;
      state.last = `share worker: ${e.message || "did not start (a worker-src policy?)"}`;
      if (!heard) { // it never ran (e.g. the console's policy refuses blob: workers)
        state.shareReader = "presented";
        watchSharePresented();
      }
    };
    // a deep buffer: frames wait (not dropped) while the worker copies one out
    const track = stream.getVideoTracks()[0];
    const readable = new MediaStreamTrackProcessor({ track, maxBufferSize: cfg.share_buffer }).readable;
    worker.postMessage(
      {
        readable,
        sink: cfg.share_sink,
        maxInFlight: cfg.max_in_flight,
        maxQueued: cfg.share_queue,
        origin: performance.timeOrigin,
      },
      [readable],
    );
  };
  timer = setInterval(start, 100);
}

// With the decoded-frame reader: the presentation time of each frame the page composites, by RTP
// timestamp, posted in batches; the harness keeps the earlier of it and the worker's stamp
function watchPresentations() {
  const v = document.querySelector(cfg.share);
  let batch = [];
  const onFrame = (now, md) => {
    if (md.rtpTimestamp !== undefined) batch.push([md.rtpTimestamp, md.presentationTime]);
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  setInterval(() => {
    if (!batch.length || (probe.inFlight["/shown"] || 0) > 0) return;
    const body = JSON.stringify(batch);
    batch = [];
    post("/shown", {}, body);
  }, 250);
}

function watchSharePresented() {
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
