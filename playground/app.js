// The playground's page: controls, drawing, and the address (#…) that holds the whole state.
// Training runs in Web Workers (worker.js); the height map's optimisers, a few 2-D steps a
// frame, run here. Both call downhill's engine compiled to WebAssembly (pkg/downhill.js).
import init, { HillsSession, default_lr } from './pkg/downhill.js';

const $ = (id) => document.getElementById(id);
const pg = (window.pg = { net: {}, hills: {}, digits: {}, errors: [] });

function showError(msg) {
  pg.errors.push(msg);
  const e = $('error');
  e.textContent = msg;
  e.hidden = false;
}
function clearError() { $('error').hidden = true; }

// ---------- colours ----------
const ORANGE = [232, 131, 58], BLUE = [58, 123, 213], WHITE = [255, 255, 255];
function mix(a, b, t) { return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t)); }
// v in [-1, 1]: blue … white … orange.
function diverging(v) {
  v = Math.max(-1, Math.min(1, v));
  return v >= 0 ? mix(WHITE, ORANGE, v) : mix(WHITE, BLUE, -v);
}
const css = (c, a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;
const METHOD_COLOURS = { gd: '#d62728', momentum: '#2ca02c', nesterov: '#17becf', adam: '#9467bd',
  rmsprop: '#ff7f0e', adagrad: '#8c564b' };

// Paints a res × res picture of values (already in [-1, 1]) into a canvas region.
function paintGrid(ctx, values, res, x, y, w, h, offset = 0, soft = 0) {
  const img = ctx.createImageData(res, res);
  for (let i = 0; i < res * res; i++) {
    const c = mix(diverging(values[offset + i]), WHITE, soft);
    img.data.set([c[0], c[1], c[2], 255], i * 4);
  }
  const off = new OffscreenCanvas(res, res);
  off.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, x, y, w, h);
}

// ---------- the optimiser panel (network and digits) ----------
const OPTIMISERS = {
  sgd: { label: 'SGD', fields: ['lr', 'weight_decay'], base: { name: 'sgd', momentum: 0, nesterov: false } },
  momentum: { label: 'SGD + momentum', fields: ['lr', 'momentum', 'weight_decay'], base: { name: 'sgd', nesterov: false } },
  nesterov: { label: 'Nesterov', fields: ['lr', 'momentum', 'weight_decay'], base: { name: 'sgd', nesterov: true } },
  adam: { label: 'Adam', fields: ['lr', 'beta1', 'beta2', 'eps', 'weight_decay'], base: { name: 'adam' } },
  adamw: { label: 'AdamW', fields: ['lr', 'beta1', 'beta2', 'eps', 'weight_decay'], base: { name: 'adamw' } },
  rmsprop: { label: 'RMSprop', fields: ['lr', 'alpha', 'momentum', 'eps', 'weight_decay'], base: { name: 'rmsprop' } },
  adagrad: { label: 'Adagrad', fields: ['lr', 'lr_decay', 'eps', 'weight_decay'], base: { name: 'adagrad' } },
};
const FIELD_DEFAULTS = { lr: 0.03, momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0,
  alpha: 0.99, lr_decay: 0 };
const FIELD_LABELS = { lr: 'learning rate η', momentum: 'momentum μ', beta1: 'β₁', beta2: 'β₂', eps: 'ε',
  weight_decay: 'weight decay', alpha: 'α', lr_decay: 'lr decay' };

function optimiserPanel(prefix, method, lr) {
  const box = $(`${prefix}-opt-box`);
  let html = `<label>Optimiser <select id="${prefix}-opt">` +
    Object.entries(OPTIMISERS).map(([k, o]) => `<option value="${k}"${k === method ? ' selected' : ''}>${o.label}</option>`).join('') +
    '</select></label>';
  for (const f of Object.keys(FIELD_DEFAULTS)) {
    const v = f === 'lr' ? lr : (f === 'weight_decay' && method === 'adamw' ? 0.01 : FIELD_DEFAULTS[f]);
    html += `<label data-field="${f}">${FIELD_LABELS[f]} <input id="${prefix}-opt-${f}" type="number" step="any" min="0" value="${v}"></label>`;
  }
  box.innerHTML = html;
  const sync = () => {
    const m = $(`${prefix}-opt`).value;
    for (const el of box.querySelectorAll('[data-field]')) el.hidden = !OPTIMISERS[m].fields.includes(el.dataset.field);
  };
  $(`${prefix}-opt`).addEventListener('change', sync);
  sync();
}

function optimiserConfig(prefix) {
  const m = $(`${prefix}-opt`).value;
  const o = OPTIMISERS[m];
  const cfg = { ...o.base };
  for (const f of o.fields) cfg[f] = Number($(`${prefix}-opt-${f}`).value);
  if (m === 'sgd') cfg.momentum = 0;
  return cfg;
}

// ---------- the address holds the whole state ----------
let defaults = {};
function controls() { return [...document.querySelectorAll('main input[id]:not([type=file]), main select[id]')]; }
function valueOf(el) { return el.type === 'checkbox' ? (el.checked ? '1' : '0') : el.value; }
function saveState() {
  const p = new URLSearchParams();
  p.set('view', currentView);
  for (const el of controls()) {
    const v = valueOf(el);
    if (defaults[el.id] !== v) p.set(el.id, v);
  }
  history.replaceState(null, '', '#' + p.toString());
}
function loadState() {
  const p = new URLSearchParams(location.hash.slice(1));
  // Optimiser choices first: they rebuild their panels.
  for (const prefix of ['net', 'dig']) {
    const m = p.get(`${prefix}-opt`);
    if (m && OPTIMISERS[m]) { $(`${prefix}-opt`).value = m; $(`${prefix}-opt`).dispatchEvent(new Event('change')); }
  }
  for (const [k, v] of p) {
    const el = $(k);
    if (!el || !(el instanceof HTMLInputElement || el instanceof HTMLSelectElement)) continue;
    if (el.type === 'checkbox') el.checked = v === '1'; else el.value = v;
  }
  return p.get('view') || 'net';
}

// ---------- views ----------
let currentView = 'net';
function showView(v) {
  currentView = v;
  for (const name of ['net', 'hills', 'digits']) {
    $(`view-${name}`).hidden = name !== v;
    $(`tab-${name}`).classList.toggle('active', name === v);
  }
  if (v === 'digits' && !digits.started) digits.reset();
  if (v === 'hills') hills.draw();
  saveState();
}

// ---------- the network view ----------
const BATCHES = [1, 2, 3, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 64, 100, 128, 200, 250, 500, 1000, Infinity];
const net = {
  worker: null, widths: [], points: [], targets: [], trainLen: 0, loss: '', history: [], playing: false,
  frame: null,
  // The Backprop panel: a training point's `downhill explain` trace, and what the graph shows of
  // it: 'all' (a, δ, ∂ℓ/∂w), or a phase of "step once": 'forward', 'backward', 'update'.
  bp: null, bpIndex: null, bpPhase: 'all', bpTimer: null,

  spec() {
    const features = [...$('net-features').querySelectorAll('input')].filter((c) => c.checked).map((c) => c.value);
    const hidden = $('net-hidden').value.split(',').map((s) => s.trim()).filter((s) => s).map(Number);
    const b = BATCHES[Number($('net-batch').value)] ?? 10;
    return {
      data: $('net-data').value, points: Number($('net-points').value), noise: Number($('net-noise').value),
      test_fraction: Number($('net-test').value), features, hidden, activation: $('net-activation').value,
      loss: $('net-loss').value || null, l1: Number($('net-l1').value), l2: Number($('net-l2').value),
      optimizer: optimiserConfig('net'), schedule: $('net-schedule').value, epochs: Number($('net-epochs').value),
      batch_size: b === Infinity ? 1e9 : b, seed: Number($('net-seed').value),
    };
  },

  reset() {
    clearError();
    this.history = [];
    this.frame = null;
    this.clearBackprop();
    this.setPlaying(false);
    pg.net.ready = false;
    const table = $('net-data').value === 'table';
    $('net-csv-box').hidden = !table;
    for (const id of ['net-points', 'net-noise']) $(id).disabled = table;
    for (const c of $('net-features').querySelectorAll('input')) c.disabled = table;
    if (table && !this.csv) { showError('Choose a CSV file: its last column is the target, as for downhill train.'); return; }
    this.worker.postMessage({ type: 'init', view: 'net', spec: this.spec(), csv: table ? this.csv : undefined });
    saveState();
  },

  setPlaying(p) {
    this.playing = p;
    $('net-play').textContent = p ? '❚❚ Pause' : '▶ Play';
  },

  onMessage(m) {
    if (m.type === 'error') { this.setPlaying(false); showError(m.message); return; }
    if (m.type === 'ready') {
      Object.assign(this, { widths: m.widths, points: m.points, targets: m.targets, trainLen: m.trainLen, loss: m.loss });
      const report = $('net-table-report');
      report.hidden = !m.tableReport.length;
      report.textContent = m.tableReport.join('\n');
      $('net-output').hidden = m.tableReport.length > 0;
      pg.net.tableReport = m.tableReport;
      pg.net.ready = true;
      pg.net.widths = m.widths;
      pg.net.points = m.points;
      pg.net.trainLen = m.trainLen;
      return;
    }
    if (m.type === 'model') { this.onModel(m); return; }
    if (m.type === 'explain') {
      this.bp = JSON.parse(m.trace);
      this.bpIndex = m.index;
      pg.net.backprop = { index: m.index, trace: this.bp, phase: this.bpPhase };
      this.drawBackprop();
      this.drawGraph();
      if (this.frame && this.frame.surface) this.drawOutput();
      return;
    }
    if (m.type === 'frame') {
      this.frame = m;
      const p = m.progress;
      if (!this.history.length || this.history[this.history.length - 1].step !== p.step) this.history.push(p);
      pg.net.progress = p;
      pg.net.stepsPerSecond = m.stepsPerSecond;
      pg.net.frames = (pg.net.frames || 0) + 1;
      this.draw();
      if (this.bpIndex != null && !m.playing) this.explain(this.bpIndex);
    }
  },

  draw() {
    const m = this.frame;
    if (!m) return;
    const p = m.progress;
    const fmt = (v) => (v == null ? '–' : v.toFixed(4));
    $('net-train-loss').textContent = fmt(p.train_loss);
    $('net-test-loss').textContent = fmt(p.test_loss);
    $('net-test-acc').textContent = p.test_accuracy == null ? 'n/a (regression)' : (100 * p.test_accuracy).toFixed(1) + '%';
    $('net-sps').textContent = m.stepsPerSecond ? Math.round(m.stepsPerSecond).toLocaleString('en') : '–';
    $('net-stats').textContent = `step ${p.step} · epoch ${p.epoch} · η ${p.lr.toPrecision(3)}`;
    if (m.surface) this.drawOutput();
    this.drawGraph();
    drawCurves($('net-loss-chart'), [
      { values: this.history.map((h) => [h.step, h.train_loss]), colour: '#888', label: 'train' },
      { values: this.history.map((h) => [h.step, h.test_loss]), colour: '#222', label: 'test' },
    ], false);
  },

  drawOutput() {
    const m = this.frame, c = $('net-output'), ctx = c.getContext('2d');
    const regression = this.loss === 'mse' && $('net-data').value.startsWith('reg-');
    const res = Math.round(Math.sqrt(m.surface.length));
    const vals = Array.from(m.surface, (v) => (regression ? v : 2 * v - 1));
    paintGrid(ctx, vals, res, 0, 0, c.width, c.height, 0, 0.35);
    const toPx = (x, y) => [(x + 6) / 12 * c.width, (6 - y) / 12 * c.height];
    const showTest = $('net-show-test').checked;
    const n = this.targets.length;
    for (let i = 0; i < n; i++) {
      const test = i >= this.trainLen;
      if (test && !showTest) continue;
      const [px, py] = toPx(this.points[2 * i], this.points[2 * i + 1]);
      const t = this.targets[i];
      const col = regression ? diverging(t) : (t >= 0.5 ? ORANGE : BLUE);
      ctx.beginPath();
      ctx.arc(px, py, 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = css(col);
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = test ? '#000' : '#fff';
      ctx.stroke();
    }
    if (this.bpIndex != null && 2 * this.bpIndex < this.points.length) {
      // The Backprop panel's point.
      const [px, py] = toPx(this.points[2 * this.bpIndex], this.points[2 * this.bpIndex + 1]);
      ctx.beginPath();
      ctx.arc(px, py, 7, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#000';
      ctx.stroke();
    }
  },

  drawGraph() {
    const m = this.frame, c = $('net-graph'), ctx = c.getContext('2d');
    ctx.clearRect(0, 0, c.width, c.height);
    const widths = this.widths, L = widths.length;
    const size = 34, res = 24;
    const colX = (l) => 30 + l * (c.width - 60 - size) / Math.max(1, L - 1);
    const rowY = (l, i) => {
      const gap = Math.min(48, (c.height - 20) / widths[l]);
      const total = gap * (widths[l] - 1) + size;
      return (c.height - total) / 2 + i * gap;
    };
    // Backprop panel: gradients on the edges (backward, all), or the weights after the step.
    const bp = this.bp && this.bp.sizes.length === L ? this.bp : null;
    const ex = bp && bp.examples[0];
    const grads = bp && (this.bpPhase === 'all' || this.bpPhase === 'backward') ? ex.grads : null;
    const after = bp && this.bpPhase === 'update' ? bp.step.params : null;
    const gmax = grads ? grads.map((t) => Math.max(1e-12, ...t.weight.flat().map(Math.abs))) : null;
    // Weights: dense layer l maps widths[l] → widths[l+1]; weight [out, in] then bias.
    let off = 0;
    for (let l = 0; l + 1 < L; l++) {
      const nin = widths[l], nout = widths[l + 1];
      for (let j = 0; j < nout; j++) {
        for (let i = 0; i < nin; i++) {
          const w = m.params[off + j * nin + i];
          ctx.beginPath();
          ctx.moveTo(colX(l) + size, rowY(l, i) + size / 2);
          ctx.lineTo(colX(l + 1), rowY(l + 1, j) + size / 2);
          const g = grads && grads[l].weight[j][i];
          if (grads) {
            // δ flowing back: the gradient δⱼ·aᵢ of this weight, scaled by its layer's largest.
            const r = Math.abs(g) / gmax[l];
            ctx.lineWidth = 0.4 + 5.6 * r;
            ctx.strokeStyle = css(g >= 0 ? ORANGE : BLUE, 0.15 + 0.8 * r);
          } else {
            const v = after ? after[l].weight[j][i] : w;
            ctx.lineWidth = Math.min(6, 0.3 + Math.abs(v) * 1.5);
            ctx.strokeStyle = css(v >= 0 ? ORANGE : BLUE, Math.min(0.9, 0.2 + Math.abs(v)));
          }
          ctx.stroke();
        }
      }
      off += nin * nout + nout;
    }
    // Thumbnails: inputs, hidden units, outputs, each over the plane, scaled by its own range.
    let k = 0;
    const featureNames = this.frame && [...$('net-features').querySelectorAll('input')].filter((x) => x.checked).map((x) => x.parentElement.textContent.trim());
    for (let l = 0; l < L; l++) {
      for (let i = 0; i < widths[l]; i++) {
        if (m.neurons) {
          const start = k * res * res;
          let mx = 1e-9;
          for (let q = 0; q < res * res; q++) mx = Math.max(mx, Math.abs(m.neurons[start + q]));
          const scaled = new Float32Array(res * res);
          for (let q = 0; q < res * res; q++) scaled[q] = m.neurons[start + q] / mx;
          paintGrid(ctx, scaled, res, colX(l), rowY(l, i), size, size);
        } else {
          ctx.fillStyle = '#eef';
          ctx.fillRect(colX(l), rowY(l, i), size, size);
        }
        ctx.strokeStyle = '#999';
        ctx.lineWidth = 1;
        ctx.strokeRect(colX(l), rowY(l, i), size, size);
        if (l === 0 && m.neurons && featureNames[i]) {
          ctx.fillStyle = '#333';
          ctx.font = '11px system-ui';
          ctx.textAlign = 'right';
          ctx.fillText(featureNames[i], colX(l) - 3, rowY(l, i) + size / 2 + 4);
        }
        k++;
      }
    }
    if (bp) {
      // Each neuron: its a (forward) on top, its δ = ∂ℓ/∂z (backward) below.
      ctx.font = '9px system-ui';
      ctx.textAlign = 'center';
      const label = (text, x, y, colour) => {
        ctx.fillStyle = 'rgba(255,255,255,0.85)';
        ctx.fillRect(x - size / 2, y - 8, size, 10);
        ctx.fillStyle = colour;
        ctx.fillText(text, x, y);
      };
      const f = (v) => (Math.abs(v) < 0.0005 && v !== 0 ? v.toExponential(0) : v.toFixed(3));
      for (let l = 0; l < L; l++) {
        for (let i = 0; i < widths[l]; i++) {
          const cx = colX(l) + size / 2, top = rowY(l, i) + 9, bottom = rowY(l, i) + size - 2;
          const a = l === 0 ? ex.x[i] : ex.layers[l - 1].a[i];
          if (this.bpPhase !== 'backward') label(f(a), cx, top, '#222');
          if (l > 0 && this.bpPhase !== 'forward') {
            const d = ex.layers[l - 1].delta[i];
            label(f(d), cx, bottom, css(d >= 0 ? ORANGE : BLUE));
          }
        }
      }
    }
    ctx.textAlign = 'center';
    ctx.fillStyle = '#667';
    ctx.font = '11px system-ui';
    for (let l = 0; l < L; l++) {
      const name = l === 0 ? 'inputs' : l === L - 1 ? 'outputs' : `hidden ${l}`;
      ctx.fillText(`${name} (${widths[l]})`, colX(l) + size / 2, 12);
    }
  },

  explain(index) {
    this.worker.postMessage({ type: 'explain', index });
  },

  // A click on Output picks the nearest training point (within 12 pixels).
  pickPoint(ev) {
    const c = $('net-output'), r = c.getBoundingClientRect();
    const x = (ev.clientX - r.left) * c.width / r.width, y = (ev.clientY - r.top) * c.height / r.height;
    let best = -1, bestD = 144;
    for (let i = 0; i < this.trainLen && 2 * i < this.points.length; i++) {
      const px = (this.points[2 * i] + 6) / 12 * c.width, py = (6 - this.points[2 * i + 1]) / 12 * c.height;
      const d = (px - x) ** 2 + (py - y) ** 2;
      if (d < bestD) { best = i; bestD = d; }
    }
    if (best >= 0) { this.bpPhase = 'all'; this.explain(best); }
  },

  clearBackprop() {
    clearTimeout(this.bpTimer);
    Object.assign(this, { bp: null, bpIndex: null, bpPhase: 'all' });
    pg.net.backprop = null;
    $('net-bp-table').textContent = '';
    $('net-bp-phase').textContent = '';
    $('net-bp-step').disabled = $('net-bp-clear').disabled = true;
  },

  // "Step once": forward (a on the neurons) → backward (δ and ∂ℓ/∂w) → update (w after).
  stepOnce() {
    if (!this.bp) return;
    clearTimeout(this.bpTimer);
    const phases = ['forward', 'backward', 'update'];
    const show = (k) => {
      this.bpPhase = phases[k];
      if (pg.net.backprop) pg.net.backprop.phase = k + 1 < phases.length ? phases[k] : 'done';
      $('net-bp-phase').textContent = ['1. forward: z = W·a + b, a = σ(z)', '2. backward: δ = (Wᵀδ) ⊙ σ′(z), ∂ℓ/∂w = δ·a', '3. update: w ← w − η∇ℓ'][k];
      this.drawGraph();
      if (k + 1 < phases.length) this.bpTimer = setTimeout(() => show(k + 1), 900);
    };
    show(0);
  },

  // The panel's numbers: per layer a and δ of the chosen point, its loss, and the step.
  drawBackprop() {
    const t = this.bp, ex = t.examples[0], box = $('net-bp-table');
    box.textContent = '';
    const row = (label, values, cls, layer) => {
      const div = document.createElement('div');
      div.className = 'bp-layer';
      const b = document.createElement('b');
      b.textContent = label;
      div.appendChild(b);
      values.forEach((v, j) => {
        const span = document.createElement('span');
        span.className = cls;
        span.dataset.layer = layer;
        span.dataset.unit = j;
        span.textContent = v.toFixed(6);
        div.appendChild(span);
      });
      box.appendChild(div);
    };
    const sup = (l) => String(l).replace(/\d/g, (d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[d]);
    row('x = a⁰', ex.x, 'bp-a', 0);
    ex.layers.forEach((lt, l) => row(`a${sup(l + 1)}`, lt.a, 'bp-a', l + 1));
    for (let l = ex.layers.length - 1; l >= 0; l--) row(`δ${sup(l + 1)}`, ex.layers[l].delta, 'bp-delta', l + 1);
    const p = document.createElement('div');
    p.className = 'bp-layer';
    const target = typeof ex.target === 'number' ? `class ${ex.target}` : ex.target.map((v) => v.toFixed(3)).join(', ');
    p.textContent = `point ${this.bpIndex}, target ${target}: ℓ = ${ex.loss.toFixed(6)}; one ${t.optimizer.name} step (η = ${t.step.lr}) from it alone: ℓ → ${t.step.loss.toFixed(6)}; largest |backprop − central difference| ${t.batch.max_abs_error.toExponential(1)}`;
    box.appendChild(p);
    $('net-bp-step').disabled = $('net-bp-clear').disabled = false;
  },

  onModel(m) {
    pg.net.model = m;
    if (this.pending === 'model') download(m.bytes, 'playground.safetensors', 'application/octet-stream');
    if (this.pending === 'csv') download(new TextEncoder().encode(m.csv), 'playground-test.csv', 'text/csv');
    if (this.pending === 'pytorch') showPytorch('net-pytorch-code', m.pytorch);
    this.pending = null;
  },
};

function download(bytes, name, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes], { type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function showPytorch(id, code) {
  const pre = $(id);
  pre.textContent = code;
  pre.hidden = false;
  if (navigator.clipboard) navigator.clipboard.writeText(code).catch(() => {});
}

// Line chart of several series [[x, y], …]; `unit` true for a fixed [0, 1] axis.
function drawCurves(c, series, unit, logY = false) {
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const pad = 28;
  const tr = (v) => (logY ? Math.log10(Math.max(v, 1e-12)) : v);
  let xmax = 1, ymin = unit ? 0 : Infinity, ymax = unit ? 1 : -Infinity;
  for (const s of series) for (const [x, y] of s.values) {
    if (!Number.isFinite(y)) continue;
    xmax = Math.max(xmax, x);
    if (!unit) { ymin = Math.min(ymin, tr(y)); ymax = Math.max(ymax, tr(y)); }
  }
  if (!Number.isFinite(ymin)) { ymin = 0; ymax = 1; }
  if (!logY && !unit) ymin = Math.min(0, ymin);
  if (ymax - ymin < 1e-9) ymax = ymin + 1;
  const X = (x) => pad + (x / xmax) * (c.width - pad - 6);
  const Y = (y) => c.height - 16 - ((tr(y) - ymin) / (ymax - ymin)) * (c.height - 24);
  ctx.strokeStyle = '#bbb';
  ctx.lineWidth = 1;
  ctx.strokeRect(pad, 8, c.width - pad - 6, c.height - 24);
  ctx.fillStyle = '#667';
  ctx.font = '10px system-ui';
  ctx.textAlign = 'right';
  const lab = (v) => (logY ? '1e' + v.toFixed(0) : v.toPrecision(2));
  ctx.fillText(lab(ymax), pad - 2, 14);
  ctx.fillText(lab(ymin), pad - 2, c.height - 16);
  ctx.textAlign = 'center';
  ctx.fillText(`step ${Math.round(xmax)}`, c.width / 2, c.height - 3);
  let ly = 20;
  for (const s of series) {
    ctx.beginPath();
    let started = false;
    for (const [x, y] of s.values) {
      if (!Number.isFinite(y)) continue;
      if (!started) { ctx.moveTo(X(x), Y(y)); started = true; } else ctx.lineTo(X(x), Y(y));
    }
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 2;
    ctx.stroke();
    if (s.label) {
      ctx.fillStyle = s.colour;
      ctx.textAlign = 'right';
      ctx.fillText(s.label, c.width - 10, ly);
      ly += 12;
    }
  }
}

// ---------- the height map ----------
const METHODS = ['gd', 'momentum', 'nesterov', 'adam', 'rmsprop', 'adagrad'];
const hills = {
  session: null, playing: false, start: null, heights: null, res: 130,

  methods() {
    const surface = $('hills-surface').value, kappa = Number($('hills-condition').value);
    const mult = Math.pow(10, Number($('hills-lr').value));
    return METHODS.filter((m) => $(`hills-m-${m}`).checked).map((m) => [m, default_lr(m, surface, kappa) * mult]);
  },

  reset(keepStart = false) {
    clearError();
    const surface = $('hills-surface').value, kappa = Number($('hills-condition').value);
    try {
      const probe = new HillsSession(surface, kappa, '[]', 0, 0, 0, 0n);
      const frame = probe.frame();
      this.frame = frame;
      this.logScale = probe.log_scale();
      this.heights = probe.heights(this.res);
      probe.free();
      // The start: dragged (kept in the address), or the surface's own.
      if (!keepStart) $('hills-start').value = '';
      const saved = $('hills-start').value.split(',').map(Number);
      this.start = $('hills-start').value && saved.length === 2 && saved.every(Number.isFinite) ? saved : [frame[4], frame[5]];
      if (this.session) this.session.free();
      this.session = new HillsSession(surface, kappa, JSON.stringify(this.methods()), this.start[0], this.start[1],
        Number($('hills-noise').value), 1n);
      pg.hills.session = this.session;
      pg.hills.methods = this.methods().map((m) => m[0]);
    } catch (e) { showError(String(e.message || e)); this.session = null; }
    $('hills-lr-out').textContent = Math.pow(10, Number($('hills-lr').value)).toPrecision(2);
    $('hills-noise-out').textContent = $('hills-noise').value;
    this.draw();
    saveState();
  },

  tick() {
    if (!this.playing || !this.session) return;
    this.session.run(Math.max(1, Number($('hills-speed').value) | 0));
    this.draw();
    requestAnimationFrame(() => this.tick());
  },

  toPx(x, y) {
    const [x0, x1, y0, y1] = this.frame, c = $('hills-map');
    return [(x - x0) / (x1 - x0) * c.width, (y1 - y) / (y1 - y0) * c.height];
  },

  draw() {
    if (!this.heights) return;
    const c = $('hills-map'), ctx = c.getContext('2d');
    // Height map: low = dark blue, high = yellow (log colours where the surface is steep).
    let lo = Infinity, hi = -Infinity;
    for (const h of this.heights) { lo = Math.min(lo, h); hi = Math.max(hi, h); }
    const t = (h) => (this.logScale ? Math.log10(h - lo + 1e-3) : h);
    const tlo = t(lo), thi = t(hi);
    const img = ctx.createImageData(this.res, this.res);
    const stops = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]];
    this.heights.forEach((h, i) => {
      const u = Math.max(0, Math.min(1, (t(h) - tlo) / (thi - tlo || 1))) * (stops.length - 1);
      const k = Math.min(stops.length - 2, Math.floor(u));
      const col = mix(stops[k], stops[k + 1], u - k);
      img.data.set([col[0], col[1], col[2], 255], i * 4);
    });
    const off = new OffscreenCanvas(this.res, this.res);
    off.getContext('2d').putImageData(img, 0, 0);
    ctx.drawImage(off, 0, 0, c.width, c.height);
    // Minima.
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 2;
    for (let i = 6; i + 1 < this.frame.length; i += 2) {
      const [px, py] = this.toPx(this.frame[i], this.frame[i + 1]);
      ctx.beginPath(); ctx.moveTo(px - 5, py - 5); ctx.lineTo(px + 5, py + 5); ctx.moveTo(px + 5, py - 5); ctx.lineTo(px - 5, py + 5); ctx.stroke();
    }
    if (!this.session) return;
    const n = this.session.count();
    const methods = pg.hills.methods;
    const series = [];
    const rows = ['<tr><th>optimiser</th><th>η</th><th>steps</th><th>now at</th><th>f</th></tr>'];
    const lrs = this.methods();
    for (let i = 0; i < n; i++) {
      const path = this.session.path(i), losses = this.session.losses(i);
      const colour = METHOD_COLOURS[methods[i]];
      ctx.beginPath();
      for (let j = 0; j < path.length; j += 2) {
        const [px, py] = this.toPx(path[j], path[j + 1]);
        if (j === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.stroke();
      const [fx, fy] = this.toPx(path[path.length - 2], path[path.length - 1]);
      ctx.beginPath(); ctx.arc(fx, fy, 5, 0, 2 * Math.PI); ctx.fillStyle = colour; ctx.fill();
      ctx.strokeStyle = '#fff'; ctx.lineWidth = 1.5; ctx.stroke();
      series.push({ values: Array.from(losses, (f, s) => [s, f - (this.fmin ?? 0)]), colour, label: methods[i] });
      const dv = this.session.diverged(i) ? ' (diverged)' : '';
      rows.push(`<tr style="color:${colour}" id="hills-row-${methods[i]}"><td>${methods[i]}${dv}</td><td>${lrs[i][1].toPrecision(2)}</td><td>${losses.length - 1}</td>` +
        `<td class="final">(${path[path.length - 2].toFixed(3)}, ${path[path.length - 1].toFixed(3)})</td><td>${fmtF(losses[losses.length - 1])}</td></tr>`);
    }
    // Start point.
    const [sx, sy] = this.toPx(this.start[0], this.start[1]);
    ctx.beginPath(); ctx.arc(sx, sy, 6, 0, 2 * Math.PI); ctx.strokeStyle = '#fff'; ctx.lineWidth = 2; ctx.stroke();
    $('hills-table').innerHTML = rows.join('');
    this.fmin = Math.min(...this.heights);
    const logLoss = this.logScale || $('hills-surface').value === 'quadratic';
    drawCurves($('hills-loss'), series.map((s) => ({ ...s, values: s.values.map(([x, y]) => [x, logLoss ? Math.max(y, 1e-8) : y]) })), false, logLoss);
    $('hills-stats').textContent = `start (${this.start[0].toFixed(2)}, ${this.start[1].toFixed(2)})`;
  },
};

function fmtF(f) { return Math.abs(f) < 1e-3 && f !== 0 ? f.toExponential(1) : f.toPrecision(3); }

// ---------- digits ----------
const digits = {
  worker: null, history: [], started: false, playing: false, frame: null, drawn: false,

  spec() {
    const hidden = $('dig-hidden').value.split(',').map((s) => s.trim()).filter((s) => s).map(Number);
    return {
      data: 'digits', points: Number($('dig-points').value), test_fraction: Number($('dig-test').value),
      features: [], hidden, activation: $('dig-activation').value, loss: 'cross-entropy', l1: 0,
      layers: $('dig-net').value || null,
      l2: Number($('dig-l2').value), optimizer: optimiserConfig('dig'), schedule: 'constant', epochs: 100,
      batch_size: Number($('dig-batch').value), seed: Number($('dig-seed').value),
    };
  },

  reset() {
    clearError();
    this.started = true;
    this.history = [];
    this.setPlaying(false);
    pg.digits.ready = false;
    $('dig-hidden').disabled = !!$('dig-net').value;
    $('dig-activation').disabled = !!$('dig-net').value;
    this.worker.postMessage({ type: 'init', view: 'digits', spec: this.spec() });
    saveState();
  },

  setPlaying(p) { this.playing = p; $('dig-play').textContent = p ? '❚❚ Pause' : '▶ Play'; },

  onMessage(m) {
    if (m.type === 'error') { this.setPlaying(false); showError(m.message); return; }
    if (m.type === 'ready') { pg.digits.ready = true; return; }
    if (m.type === 'prediction') { this.showPrediction(m.values); return; }
    if (m.type === 'model') {
      pg.digits.model = m;
      if (this.pending === 'model') download(m.bytes, 'digits.safetensors', 'application/octet-stream');
      if (this.pending === 'pytorch') showPytorch('dig-pytorch-code', m.pytorch);
      pg.digits.pytorch = m.pytorch;
      this.pending = null;
      return;
    }
    if (m.type === 'frame') {
      this.frame = m;
      const p = m.progress;
      if (!this.history.length || this.history[this.history.length - 1].step !== p.step) this.history.push(p);
      pg.digits.progress = p;
      pg.digits.history = this.history.map((h) => h.test_accuracy);
      pg.digits.stepsPerSecond = m.stepsPerSecond;
      pg.digits.confusion = Array.from(m.confusion);
      $('dig-test-acc').textContent = (100 * p.test_accuracy).toFixed(1) + '%';
      $('dig-train-loss').textContent = p.train_loss.toFixed(4);
      $('dig-sps').textContent = m.stepsPerSecond ? Math.round(m.stepsPerSecond).toLocaleString('en') : '–';
      $('dig-stats').textContent = `step ${p.step} · epoch ${p.epoch}`;
      drawCurves($('dig-acc'), [{ values: this.history.map((h) => [h.step, h.test_accuracy]), colour: '#e8833a', label: 'test accuracy' }], true);
      this.drawConfusion(m.confusion);
      if (this.drawn) this.predict();
    }
  },

  drawConfusion(cm) {
    const c = $('dig-confusion'), ctx = c.getContext('2d');
    const k = 10, pad = 20, cell = (c.width - pad) / k;
    ctx.clearRect(0, 0, c.width, c.height);
    let rowMax = [];
    for (let i = 0; i < k; i++) rowMax.push(Math.max(1, ...cm.slice(i * k, i * k + k)));
    ctx.font = '10px system-ui';
    ctx.textAlign = 'center';
    for (let i = 0; i < k; i++) {
      ctx.fillStyle = '#667';
      ctx.fillText(String(i), pad + i * cell + cell / 2, 12);
      ctx.fillText(String(i), 8, pad + i * cell + cell / 2 + 3);
      for (let j = 0; j < k; j++) {
        const v = cm[i * k + j], f = v / rowMax[i];
        ctx.fillStyle = css(i === j ? mix(WHITE, ORANGE, f) : mix(WHITE, BLUE, Math.min(1, 3 * f)));
        ctx.fillRect(pad + j * cell, pad + i * cell, cell - 1, cell - 1);
        if (v) { ctx.fillStyle = '#222'; ctx.fillText(String(v), pad + j * cell + cell / 2, pad + i * cell + cell / 2 + 3); }
      }
    }
  },

  // The drawing → a 28 × 28 MNIST-like image: the strokes' bounding box scaled into 20 × 20,
  // centred by its centre of mass in 28 × 28, grey values 0 … 255.
  image() {
    const c = $('dig-draw'), ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
    for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
      if (d[(y * c.width + x) * 4] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    }
    if (x1 < 0) return null;
    const w = x1 - x0 + 1, h = y1 - y0 + 1, s = 20 / Math.max(w, h);
    const small = new OffscreenCanvas(28, 28), sctx = small.getContext('2d');
    sctx.fillStyle = '#000';
    sctx.fillRect(0, 0, 28, 28);
    sctx.imageSmoothingEnabled = true;
    sctx.imageSmoothingQuality = 'high';
    sctx.drawImage(c, x0, y0, w, h, 14 - (w * s) / 2, 14 - (h * s) / 2, w * s, h * s);
    let px = sctx.getImageData(0, 0, 28, 28).data;
    let m = 0, mx = 0, my = 0;
    for (let i = 0; i < 784; i++) { const v = px[i * 4]; m += v; mx += v * (i % 28); my += v * Math.floor(i / 28); }
    const dx = Math.round(14 - mx / m - 0.5), dy = Math.round(14 - my / m - 0.5);
    const out = new Float32Array(784);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      const sx = x - dx, sy = y - dy;
      out[y * 28 + x] = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? px[(sy * 28 + sx) * 4] : 0;
    }
    return out;
  },

  predict() {
    const img = this.image();
    if (!img || !pg.digits.ready) return;
    pg.digits.image = Array.from(img);
    this.worker.postMessage({ type: 'predict', rows: img, id: Date.now() });
  },

  showPrediction(p) {
    let best = 0;
    for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
    pg.digits.prediction = best;
    pg.digits.probabilities = Array.from(p);
    $('dig-prediction').textContent = `${best}  (${(100 * p[best]).toFixed(0)}%)`;
    const c = $('dig-bars'), ctx = c.getContext('2d');
    ctx.clearRect(0, 0, c.width, c.height);
    const bw = c.width / 10;
    ctx.font = '11px system-ui';
    ctx.textAlign = 'center';
    for (let i = 0; i < 10; i++) {
      const h = p[i] * (c.height - 18);
      ctx.fillStyle = i === best ? '#e8833a' : '#9ab';
      ctx.fillRect(i * bw + 3, c.height - 14 - h, bw - 6, h);
      ctx.fillStyle = '#333';
      ctx.fillText(String(i), i * bw + bw / 2, c.height - 2);
    }
  },
};

function setupDrawing() {
  const c = $('dig-draw'), ctx = c.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, c.width, c.height);
  let down = false, last = null;
  const pos = (e) => { const r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; };
  c.addEventListener('pointerdown', (e) => { down = true; last = pos(e); c.setPointerCapture(e.pointerId); });
  c.addEventListener('pointermove', (e) => {
    if (!down) return;
    const p = pos(e);
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 20; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    last = p;
    digits.drawn = true;
  });
  const up = () => { if (down) { down = false; digits.predict(); } };
  c.addEventListener('pointerup', up);
  c.addEventListener('pointerleave', up);
  $('dig-clear').addEventListener('click', () => {
    ctx.fillStyle = '#000'; ctx.fillRect(0, 0, c.width, c.height);
    digits.drawn = false; $('dig-prediction').textContent = '';
    $('dig-bars').getContext('2d').clearRect(0, 0, 280, 120);
  });
  // For tests and for the curious: draw strokes given as lists of points.
  pg.digits.drawStrokes = (strokes) => {
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 20; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    for (const s of strokes) { ctx.beginPath(); s.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.stroke(); }
    digits.drawn = true;
    digits.predict();
  };
}

function setupHillsDrag() {
  const c = $('hills-map');
  let down = false;
  const move = (e) => {
    const r = c.getBoundingClientRect(), [x0, x1, y0, y1] = hills.frame;
    const x = x0 + (e.clientX - r.left) / r.width * (x1 - x0), y = y1 - (e.clientY - r.top) / r.height * (y1 - y0);
    $('hills-start').value = `${+x.toFixed(4)},${+y.toFixed(4)}`;
    hills.reset(true);
  };
  c.addEventListener('pointerdown', (e) => { down = true; c.setPointerCapture(e.pointerId); move(e); });
  c.addEventListener('pointermove', (e) => { if (down) move(e); });
  c.addEventListener('pointerup', () => { down = false; });
  pg.hills.setStart = (x, y) => { $('hills-start').value = `${x},${y}`; hills.reset(true); };
}

// ---------- wiring ----------
async function main() {
  await init();
  optimiserPanel('net', 'adam', 0.03);
  optimiserPanel('dig', 'adam', 0.001);
  for (const input of $('net-features').querySelectorAll('input')) input.id = `net-f-${input.value}`;
  $('hills-methods').innerHTML = METHODS.map((m) =>
    `<label style="color:${METHOD_COLOURS[m]}"><input type="checkbox" id="hills-m-${m}" checked> ${m}</label>`).join('');
  for (const el of controls()) defaults[el.id] = valueOf(el);
  const view = loadState();

  const outputs = () => {
    $('net-noise-out').textContent = $('net-noise').value;
    $('net-test-out').textContent = $('net-test').value;
    const b = BATCHES[Number($('net-batch').value)];
    $('net-batch-out').textContent = b === Infinity ? 'full' : String(b);
  };
  outputs();

  net.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  net.worker.onmessage = (e) => net.onMessage(e.data);
  digits.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  digits.worker.onmessage = (e) => digits.onMessage(e.data);

  // Network view.
  for (const el of controls().filter((e) => e.id.startsWith('net-'))) {
    if (el.id === 'net-speed') continue;
    el.addEventListener('change', () => { outputs(); if (el.id !== 'net-show-test') net.reset(); else net.draw(); });
    if (el.type === 'range') el.addEventListener('input', outputs);
  }
  $('net-opt').addEventListener('change', () => {
    const m = $('net-opt').value;
    $('net-opt-weight_decay').value = m === 'adamw' ? 0.01 : 0;
    net.reset();
  });
  const netSpeed = () => net.worker.postMessage({ type: 'speed', steps: Number($('net-speed').value) });
  $('net-speed').addEventListener('change', netSpeed);
  netSpeed();
  $('net-reset').addEventListener('click', () => net.reset());
  $('net-csv-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    net.csv = { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) };
    net.reset();
  });
  pg.net.uploadCsv = (name, text) => { net.csv = { name, bytes: new TextEncoder().encode(text) }; $('net-data').value = 'table'; net.reset(); };
  $('net-play').addEventListener('click', () => { net.setPlaying(!net.playing); net.worker.postMessage({ type: net.playing ? 'play' : 'pause' }); });
  $('net-step').addEventListener('click', () => { net.setPlaying(false); net.worker.postMessage({ type: 'step' }); });
  for (const [id, what] of [['net-download', 'model'], ['net-download-csv', 'csv'], ['net-pytorch', 'pytorch']]) {
    $(id).addEventListener('click', () => { net.pending = what; net.worker.postMessage({ type: 'model' }); });
  }
  $('net-output').addEventListener('click', (e) => net.pickPoint(e));
  $('net-bp-step').addEventListener('click', () => net.stepOnce());
  $('net-bp-clear').addEventListener('click', () => { net.clearBackprop(); net.drawGraph(); });
  pg.net.explain = (i) => { net.bpPhase = 'all'; net.explain(i); };
  pg.net.play = () => { net.setPlaying(true); net.worker.postMessage({ type: 'play' }); };
  pg.net.pause = () => { net.setPlaying(false); net.worker.postMessage({ type: 'pause' }); };

  // Height map.
  for (const el of controls().filter((e) => e.id.startsWith('hills-'))) {
    el.addEventListener(el.type === 'range' ? 'input' : 'change', () => hills.reset(el.id !== 'hills-surface'));
  }
  $('hills-reset').addEventListener('click', () => hills.reset(true));
  $('hills-play').addEventListener('click', () => {
    hills.playing = !hills.playing;
    $('hills-play').textContent = hills.playing ? '❚❚ Pause' : '▶ Play';
    if (hills.playing) hills.tick();
  });
  $('hills-step').addEventListener('click', () => { if (hills.session) { hills.session.run(1); hills.draw(); } });
  setupHillsDrag();

  // Digits.
  for (const el of controls().filter((e) => e.id.startsWith('dig-') && e.id !== 'dig-speed')) el.addEventListener('change', () => digits.reset());
  const digSpeed = () => digits.worker.postMessage({ type: 'speed', steps: Number($('dig-speed').value) });
  $('dig-speed').addEventListener('change', digSpeed);
  digSpeed();
  $('dig-reset').addEventListener('click', () => digits.reset());
  $('dig-play').addEventListener('click', () => { digits.setPlaying(!digits.playing); digits.worker.postMessage({ type: digits.playing ? 'play' : 'pause' }); });
  $('dig-step').addEventListener('click', () => { digits.setPlaying(false); digits.worker.postMessage({ type: 'step' }); });
  $('dig-download').addEventListener('click', () => { digits.pending = 'model'; digits.worker.postMessage({ type: 'model' }); });
  $('dig-pytorch').addEventListener('click', () => { digits.pending = 'pytorch'; digits.worker.postMessage({ type: 'model' }); });
  pg.digits.play = () => { digits.setPlaying(true); digits.worker.postMessage({ type: 'play' }); };
  pg.digits.pause = () => { digits.setPlaying(false); digits.worker.postMessage({ type: 'pause' }); };
  setupDrawing();

  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => showView(b.dataset.view));
  $('copy-link').addEventListener('click', () => { saveState(); if (navigator.clipboard) navigator.clipboard.writeText(location.href).catch(() => {}); });

  net.reset();
  hills.reset(true);
  showView(view);
  pg.loaded = true;
}

main().catch((e) => showError(String(e && e.message || e)));
