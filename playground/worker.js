// The playground's training worker: owns one NetSession (the Rust engine compiled to
// WebAssembly) and trains it in slices of ~40 ms, posting a frame after each so the page stays
// responsive. Messages in: init, play, pause, step, predict, model, explain. Out: ready, frame,
// error, prediction, model, explain (a training point's `downhill explain` trace).
import init, { NetSession } from './pkg/downhill.js';

let session = null;
let playing = false;
let view = 'net';
let planar = true;          // 2-D data: the page draws surfaces and neuron pictures           // 'net' (2-D: surface and neurons) or 'digits' (confusion matrix)
let stepsPerSlice = 1;
let speed = 0;              // steps per frame (about 30 frames a second); 0: as fast as possible
let trainSteps = 0, trainSeconds = 0;
const ready = init();

function frame() {
  const progress = JSON.parse(session.progress());
  const msg = { type: 'frame', progress, params: session.params(),
                stepsPerSecond: trainSeconds > 0 ? trainSteps / trainSeconds : 0, playing };
  if (view === 'net' && planar) {
    msg.surface = session.surface(60);
    msg.neurons = session.neurons(24);
  } else {
    msg.confusion = session.confusion();
  }
  postMessage(msg);
}

function fail(e) {
  playing = false;
  postMessage({ type: 'error', message: String(e && e.message || e) });
}

function slice() {
  if (!playing || !session) return;
  const start = performance.now();
  try {
    const n = speed > 0 ? speed : stepsPerSlice;
    const t0 = performance.now();
    session.run(n);
    const dt = (performance.now() - t0) / 1000;
    trainSteps += n; trainSeconds += dt;
    // As fast as possible: aim at ~40 ms of training per frame.
    if (dt < 0.03) stepsPerSlice = Math.min(stepsPerSlice * 2, 100000);
    else if (dt > 0.06 && stepsPerSlice > 1) stepsPerSlice = Math.max(1, Math.floor(stepsPerSlice / 2));
    frame();
  } catch (e) { fail(e); return; }
  const wait = speed > 0 ? Math.max(0, 33 - (performance.now() - start)) : 0;
  setTimeout(slice, wait);
}

onmessage = async (ev) => {
  await ready;
  const m = ev.data;
  try {
    switch (m.type) {
      case 'init':
        playing = false;
        if (session) session.free();
        session = null;
        view = m.view || 'net';
        session = m.csv
          ? NetSession.from_csv(JSON.stringify(m.spec), m.csv.name, m.csv.bytes)
          : new NetSession(JSON.stringify(m.spec));
        planar = session.points().length > 0;
        stepsPerSlice = 1; trainSteps = 0; trainSeconds = 0;
        postMessage({ type: 'ready', widths: Array.from(session.widths()),
                      points: session.points(), targets: session.targets(),
                      trainLen: session.train_len(), loss: session.loss(),
                      tableReport: JSON.parse(session.table_report()) });
        frame();
        break;
      case 'speed': speed = m.steps; trainSteps = 0; trainSeconds = 0; break;
      case 'play': if (session && !playing) { playing = true; slice(); } break;
      case 'pause': playing = false; if (session) frame(); break;
      case 'step':
        playing = false;
        if (session) { session.run(m.steps || 1); frame(); }
        break;
      case 'explain':
        postMessage({ type: 'explain', index: m.index, trace: session.explain(m.index) });
        break;
      case 'predict':
        postMessage({ type: 'prediction', id: m.id, values: session.predict(m.rows) });
        break;
      case 'model':
        postMessage({ type: 'model', bytes: session.model_bytes(), csv: session.test_csv(),
                      pytorch: session.pytorch() });
        break;
    }
  } catch (e) { fail(e); }
};
