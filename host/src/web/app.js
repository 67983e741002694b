// Kiln's web page: a client of the public HTTP API, nothing more. No framework, no build step.
'use strict';

const KEY_STORAGE = 'kiln.apiKey';
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const LIST_EVERY_MS = 5000;
// Each watched job holds one HTTP connection open; browsers allow about six per host.
const MAX_STREAMS = 3;

const $ = (id) => document.getElementById(id);

/// What each job error code means, for people.
const ERROR_WORDS = {
  'invalid-params': 'The parameters do not fit this kind of job.',
  'invalid-input': 'The input file could not be used.',
  'internal': 'The job hit an internal error.',
  'memory-limit': 'The job needed more memory than it may use.',
  'timeout': 'The job took longer than it may and was stopped.',
  'output-too-large': 'The result was larger than allowed.',
  'invalid-output': 'The job produced something that is not a valid result.',
  'trap': 'The job crashed.',
  'host-error': 'Kiln could not run the job.',
  'lost-worker': 'The worker running the job stopped answering.',
};

// ---------------------------------------------------------------- API

function apiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ''; } catch { return ''; }
}

function authHeaders(extra) {
  const headers = new Headers(extra || {});
  const key = apiKey();
  if (key) headers.set('Authorization', 'Bearer ' + key);
  return headers;
}

class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

/// Turns a non-2xx answer into an ApiError carrying the problem's `detail`.
async function problem(response) {
  let body = null;
  let detail = `${response.status} ${response.statusText}`;
  try {
    body = await response.json();
    if (body && body.detail) detail = body.detail;
  } catch { /* not JSON */ }
  if (response.status === 401) {
    detail = apiKey()
      ? `Kiln refused the API key: ${detail}`
      : 'This Kiln needs an API key: enter yours under “API key” at the top.';
    showKeyPanel();
  }
  return new ApiError(response.status, detail, body);
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  } catch (e) {
    throw new ApiError(0, 'Kiln cannot be reached (' + e.message + ').', null);
  }
  if (!response.ok) throw await problem(response);
  return response;
}

// ---------------------------------------------------------------- helpers

/// Builds an element: h('li', {class: 'x', onclick: f}, child, 'text', ...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

function show(el, visible) { el.hidden = !visible; }

function setText(el, text) {
  el.textContent = text || '';
  show(el, Boolean(text));
}

function banner(text) { setText($('banner'), text); }

function intField(id) {
  const raw = $(id).value.trim();
  if (raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`“${$(id).closest('label').firstChild.textContent.trim()}” must be a whole number.`);
  return n;
}

function numberField(id) {
  const raw = $(id).value.trim();
  if (raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error('“' + raw + '” is not a number.');
  return n;
}

function ago(iso) {
  if (!iso) return '';
  const secs = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (secs < 60) return `${secs}s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ago`;
  return new Date(iso).toLocaleString();
}

/// A failed job's error: what it means in words, then Kiln's message and the code.
function showJobError(error) {
  const el = $('job-error');
  el.replaceChildren(
    h('strong', {}, (error && ERROR_WORDS[error.code]) || 'The job failed.'),
    ' ',
    error ? `Details: ${error.message} (${error.code})` : '',
  );
  show(el, true);
}

// ---------------------------------------------------------------- API key

function showKeyPanel() {
  if ($('key-panel').open) return;
  $('key-panel').open = true;
  $('api-key').focus();
}

function keySummary() {
  $('key-summary').textContent = apiKey() ? 'API key ✓' : 'API key';
}

function initKey() {
  $('api-key').value = apiKey();
  keySummary();
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('api-key').value.trim();
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
    } catch { /* storage off: the key lasts until the page closes */ }
    keySummary();
    $('key-panel').open = false;
    banner('');
    needKey = false;
    refreshJobs();
  });
  $('forget-key').addEventListener('click', () => {
    try { localStorage.removeItem(KEY_STORAGE); } catch { /* ignore */ }
    $('api-key').value = '';
    keySummary();
    for (const controller of streams.values()) controller.abort();
    jobs.clear();
    order = [];
    selected = null;
    renderJobs();
    renderDetail();
    refreshJobs();
  });
}

// ---------------------------------------------------------------- kind choice

function kind() {
  return document.querySelector('input[name="kind"]:checked').value;
}

function initKind() {
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener('change', () => {
      show($('crop-panel'), kind() === 'crop');
      show($('plot-panel'), kind() === 'plot');
      setText($('form-error'), '');
    });
  }
}

// ---------------------------------------------------------------- crop

/// `ref`: the id of the job whose result the file is; the submit then names that job instead of
/// uploading the bytes again.
const crop = { file: null, ref: null, url: null, natural: null, drag: null };

function setFile(file, ref = null) {
  if (!file) return;
  crop.file = file;
  crop.ref = ref;
  $('file-info').textContent = ref
    ? `the result of job ${ref} (${Math.ceil(file.size / 1024)} KiB), used by reference`
    : `${file.name} (${Math.ceil(file.size / 1024)} KiB)`;
  if (crop.url) URL.revokeObjectURL(crop.url);
  crop.url = URL.createObjectURL(file);
  crop.natural = null;
  $('preview-note').textContent = '';
  clearCrop();
  $('preview').src = crop.url;
  show($('preview-wrap'), true);
  setText($('form-error'), '');
}

function clearCrop() {
  for (const id of ['crop-x', 'crop-y', 'crop-w', 'crop-h']) $(id).value = '';
  drawCrop();
}

/// The crop fields as numbers, or null when they are not all set.
function cropRect() {
  const values = ['crop-x', 'crop-y', 'crop-w', 'crop-h'].map((id) => $(id).value.trim());
  if (values.some((v) => v === '')) return null;
  const [x, y, width, height] = values.map(Number);
  return { x, y, width, height };
}

/// Places the overlay over the selected rectangle, in display pixels.
function drawCrop() {
  const rect = cropRect();
  const img = $('preview');
  const overlay = $('crop-rect');
  if (!rect || !crop.natural || !img.clientWidth) { overlay.hidden = true; return; }
  const scale = img.clientWidth / crop.natural.width;
  overlay.style.left = rect.x * scale + 'px';
  overlay.style.top = rect.y * scale + 'px';
  overlay.style.width = rect.width * scale + 'px';
  overlay.style.height = rect.height * scale + 'px';
  overlay.hidden = false;
}

/// A pointer position as image pixel coordinates (clamped to the image).
function imagePoint(event) {
  const box = $('preview').getBoundingClientRect();
  const sx = crop.natural.width / box.width;
  const sy = crop.natural.height / box.height;
  const clamp = (v, max) => Math.min(Math.max(v, 0), max);
  return {
    x: clamp(Math.round((event.clientX - box.left) * sx), crop.natural.width),
    y: clamp(Math.round((event.clientY - box.top) * sy), crop.natural.height),
  };
}

function initCrop() {
  const zone = $('drop-zone');
  $('crop-file').addEventListener('change', (e) => setFile(e.target.files[0]));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) setFile(file);
  });
  // Dropping a file anywhere else must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  const img = $('preview');
  img.addEventListener('load', () => {
    crop.natural = { width: img.naturalWidth, height: img.naturalHeight };
    $('preview-note').textContent = `${img.naturalWidth} × ${img.naturalHeight} pixels`;
    drawCrop();
  });
  img.addEventListener('error', () => {
    if (!crop.file) return;
    crop.natural = null;
    $('preview-note').textContent = 'This browser cannot show this format; type the crop in pixels below.';
  });
  img.addEventListener('dragstart', (e) => e.preventDefault());

  const stage = $('preview-stage');
  stage.addEventListener('pointerdown', (e) => {
    if (!crop.natural || e.button !== 0) return;
    e.preventDefault();
    stage.setPointerCapture(e.pointerId);
    crop.drag = imagePoint(e);
  });
  stage.addEventListener('pointermove', (e) => {
    if (!crop.drag) return;
    const p = imagePoint(e);
    const a = crop.drag;
    const x = Math.min(a.x, p.x);
    const y = Math.min(a.y, p.y);
    const width = Math.abs(p.x - a.x);
    const height = Math.abs(p.y - a.y);
    if (width < 1 || height < 1) return;
    $('crop-x').value = x;
    $('crop-y').value = y;
    $('crop-w').value = width;
    $('crop-h').value = height;
    drawCrop();
  });
  const end = (e) => {
    if (!crop.drag) return;
    const p = imagePoint(e);
    if (Math.abs(p.x - crop.drag.x) < 1 || Math.abs(p.y - crop.drag.y) < 1) clearCrop();
    crop.drag = null;
  };
  stage.addEventListener('pointerup', end);
  stage.addEventListener('pointercancel', () => { crop.drag = null; });

  for (const id of ['crop-x', 'crop-y', 'crop-w', 'crop-h']) $(id).addEventListener('input', drawCrop);
  $('crop-clear').addEventListener('click', clearCrop);
  window.addEventListener('resize', drawCrop);
}

function cropSubmission() {
  if (!crop.file) throw new Error('Choose an image to crop first (or drop one on the box).');
  const params = {};
  const rect = ['crop-x', 'crop-y', 'crop-w', 'crop-h'].map(intField);
  if (rect.some((v) => v !== undefined)) {
    if (rect.some((v) => v === undefined)) throw new Error('Give all four crop numbers, or none.');
    const [x, y, width, height] = rect;
    if (crop.natural && (x + width > crop.natural.width || y + height > crop.natural.height)) {
      throw new Error(`The crop must lie inside the image (${crop.natural.width} × ${crop.natural.height}).`);
    }
    params.crop = { x, y, width, height };
  }
  const width = intField('resize-w');
  const height = intField('resize-h');
  if (width !== undefined || height !== undefined) {
    params.resize = {};
    if (width !== undefined) params.resize.width = width;
    if (height !== undefined) params.resize.height = height;
    if (width !== undefined && height !== undefined) params.resize.fit = $('resize-fit').value;
    params.filter = $('resize-filter').value;
  }
  const format = $('out-format').value;
  if (format !== 'png') params.format = format;
  if (format === 'jpeg' || format === 'auto') {
    const quality = intField('out-quality');
    if (quality !== undefined) params.quality = quality;
  }
  return { params, input: crop.file, name: crop.file.name || 'image', ref: crop.ref };
}

/// The step after the crop, when "then run" is ticked: { kind, params }.
function thenStep() {
  if (!$('then-on').checked) return null;
  const name = $('then-kind').value;
  if (!name) throw new Error('Choose the kind to run after the crop.');
  let params;
  try { params = JSON.parse($('then-params').value || '{}'); } catch (err) {
    throw new Error(`The next step's params are not JSON: ${err.message}`);
  }
  return { kind: name, params };
}

/// Fills the "then run" choice with the kinds that take an input, once.
async function loadThenKinds() {
  const select = $('then-kind');
  if (select.options.length) return;
  try {
    const list = await (await api('/v1/kinds')).json();
    for (const k of list.kinds.filter((k) => k.input !== 'none')) select.append(h('option', { value: k.name }, k.name));
  } catch (err) { setText($('form-error'), 'Could not list the kinds: ' + err.message); }
}

async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/// The request a submission makes: a pipeline when a next step is set, the input by reference when it
/// is another job's result, else the usual multipart upload.
async function submitRequest(chosen, submission, next) {
  const json = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const input = submission.ref ? { input: { job: submission.ref } } : null;
  if (next) {
    const steps = [{ kind: chosen, params: submission.params }, next];
    return ['/v1/pipelines', json({ steps, ...(input || { input_base64: await base64Of(submission.input) }) })];
  }
  if (input) return ['/v1/jobs/' + chosen, json({ params: submission.params, ...input })];
  const form = new FormData();
  form.append('params', JSON.stringify(submission.params));
  form.append('input', submission.input, submission.name);
  return ['/v1/jobs/' + chosen, { method: 'POST', body: form }];
}

// ---------------------------------------------------------------- plot

const EXAMPLE_CSV = 'year,a,b\n2000,1,2\n2005,3,1\n2010,4,4\n2015,6,5\n2020,7,9\n2025,9,8\n';

/// The CSV's header names (first line, split on commas, quotes stripped).
function csvHeaders(text) {
  const first = text.split(/\r?\n/).find((line) => line.trim() !== '');
  if (!first) return [];
  return first.split(',').map((s) => s.trim().replace(/^"(.*)"$/, '$1')).filter((s) => s !== '');
}

/// Fills the column pickers from the CSV's header row: x is the first column, y the rest by default.
function syncColumns() {
  const headers = csvHeaders($('plot-csv').value);
  const select = $('plot-x');
  const previous = select.value;
  select.replaceChildren(h('option', { value: '' }, '(row number)'), ...headers.map((name) => h('option', { value: name }, name)));
  if (headers.includes(previous)) select.value = previous;
  else if (headers.length > 1) select.value = headers[0];
  const y = $('plot-y');
  const wanted = y.value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!wanted.length || wanted.some((name) => !headers.includes(name))) {
    y.value = headers.filter((name) => name !== select.value).join(', ');
  }
}

function initPlot() {
  $('plot-csv').addEventListener('change', syncColumns);
  $('plot-csv').addEventListener('paste', () => setTimeout(syncColumns, 0));
  $('plot-x').addEventListener('change', () => {
    const y = $('plot-y');
    y.value = y.value.split(',').map((s) => s.trim()).filter((s) => s && s !== $('plot-x').value).join(', ');
  });
  $('csv-example').addEventListener('click', () => {
    $('plot-csv').value = EXAMPLE_CSV;
    $('plot-y').value = '';
    syncColumns();
  });
  $('csv-file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    $('plot-csv').value = await file.text();
    $('plot-y').value = '';
    syncColumns();
  });
  $('plot-type').addEventListener('change', () => show($('plot-bins-label'), $('plot-type').value === 'histogram'));
}

function plotSubmission() {
  const csv = $('plot-csv').value;
  if (!csv.trim()) throw new Error('Enter or paste the data (CSV with a header row), or open a CSV file.');
  const y = $('plot-y').value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!y.length) throw new Error('Name at least one y column.');
  const params = { type: $('plot-type').value, csv: { y } };
  if ($('plot-x').value) params.csv.x = $('plot-x').value;
  for (const [field, id] of [['title', 'plot-title'], ['x_label', 'plot-xlabel'], ['y_label', 'plot-ylabel']]) {
    const value = $(id).value.trim();
    if (value) params[field] = value;
  }
  for (const [field, id] of [['width', 'plot-width'], ['height', 'plot-height']]) {
    const value = intField(id);
    if (value !== undefined) params[field] = value;
  }
  if (params.type === 'histogram') {
    const bins = intField('plot-bins');
    if (bins !== undefined) params.bins = bins;
  }
  for (const [field, id] of [['start', 'plot-start'], ['end', 'plot-end']]) {
    const value = numberField(id);
    if (value !== undefined) params[field] = value;
  }
  return { params, input: new Blob([csv], { type: 'text/csv' }), name: 'data.csv' };
}

// ---------------------------------------------------------------- submit

function initSubmit() {
  $('job-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    setText($('form-error'), '');
    const chosen = kind();
    let submission;
    let next = null;
    try {
      submission = chosen === 'crop' ? cropSubmission() : plotSubmission();
      if (chosen === 'crop') next = thenStep();
    } catch (err) {
      setText($('form-error'), err.message);
      return;
    }
    const button = $('submit');
    button.disabled = true;
    button.textContent = 'Submitting…';
    try {
      const [path, options] = await submitRequest(chosen, submission, next);
      const response = await api(path, options);
      const job = await response.json();
      banner('');
      update(job);
      select(job.id);
    } catch (err) {
      setText($('form-error'), err.message);
    } finally {
      button.disabled = false;
      button.textContent = 'Submit';
    }
  });
}

// ---------------------------------------------------------------- jobs

/// Every job the page knows, by id (newest documents win).
const jobs = new Map();
/// Jobs whose event stream is open: id → AbortController.
const streams = new Map();
let selected = null;
/// The result currently shown: { id, url } (an object URL to revoke when replaced).
let shown = null;

function update(job) {
  jobs.set(job.id, job);
  renderJobs();
  if (job.id === selected) renderDetail();
}

/// Follows a job's events (`GET /v1/jobs/{id}/events`) through fetch, so the API key header can be
/// sent (EventSource cannot send headers). Reconnects while the job is not final. A job the user
/// submitted or opened (`mine`) takes the place of the oldest other stream when all are in use; the
/// rest are kept current by the periodic list.
async function watch(id, mine = false) {
  if (streams.has(id)) return;
  if (streams.size >= MAX_STREAMS) {
    const oldest = [...streams.keys()].find((other) => other !== selected);
    if (!mine || oldest === undefined) return;
    streams.get(oldest).abort();
    streams.delete(oldest);
  }
  const job = jobs.get(id);
  if (job && FINAL.has(job.status)) return;
  const controller = new AbortController();
  streams.set(id, controller);
  let failures = 0;
  try {
    while (!controller.signal.aborted) {
      try {
        const response = await api(`/v1/jobs/${id}/events`, {
          headers: { Accept: 'text/event-stream' },
          signal: controller.signal,
        });
        await readEvents(response.body, (event, data) => {
          if (event === 'job') {
            failures = 0;
            update(JSON.parse(data));
          }
        });
      } catch (err) {
        if (controller.signal.aborted) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          if (id === selected) setText($('job-error'), err.message);
          return;
        }
        failures += 1;
      }
      const latest = jobs.get(id);
      if (latest && FINAL.has(latest.status)) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** failures, 15000)));
    }
  } finally {
    if (streams.get(id) === controller) streams.delete(id);
  }
}

/// Reads a Server-Sent Events body, calling onEvent(eventName, data) per event.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) onEvent(event, data.join('\n'));
    }
  }
}

async function refreshJobs() {
  try {
    const response = await api('/v1/jobs?limit=20');
    const list = await response.json();
    $('jobs-empty').textContent = 'No jobs yet.';
    for (const job of list.jobs) {
      const known = jobs.get(job.id);
      // A live stream may be ahead of the list; keep the more advanced document.
      if (!known || !streams.has(job.id)) jobs.set(job.id, job);
    }
    order = list.jobs.map((job) => job.id);
    renderJobs();
    if (selected && jobs.has(selected)) renderDetail();
    for (const job of list.jobs) if (!FINAL.has(job.status)) watch(job.id);
    if ($('banner').textContent.startsWith('Recent jobs')) banner('');
  } catch (err) {
    if (err.status === 401) needKey = true;
    if (err.status === 403) {
      // The admin key has no jobs of its own: the console shows every tenant's.
      needKey = true;
      $('jobs-empty').textContent = 'This is the admin key: every tenant\'s jobs are in the console below.';
      show($('jobs-empty'), true);
      return;
    }
    banner('Recent jobs: ' + err.message);
  }
}

/// Set on a 401 (or the admin key's 403): the periodic refresh waits for a key instead of asking again
/// every few seconds.
let needKey = false;

/// The list's order: the server's newest-first page, then jobs submitted since.
let order = [];

function renderJobs() {
  const ids = [...jobs.keys()].filter((id) => !order.includes(id)).reverse().concat(order);
  const shownIds = [...new Set(ids)].slice(0, 20);
  const list = $('jobs');
  list.replaceChildren(...shownIds.map((id) => jobRow(jobs.get(id))));
  show($('jobs-empty'), shownIds.length === 0);
}

function jobRow(job) {
  const percent = Math.round((job.progress || 0) * 100);
  const fill = h('div', { class: 'bar-fill' });
  fill.style.width = (FINAL.has(job.status) ? 100 : percent) + '%';
  if (job.status === 'failed' || job.status === 'cancelled') fill.classList.add(job.status);
  return h('li', { class: 'job-row' + (job.id === selected ? ' selected' : ''), 'data-testid': 'job-row', 'data-job-id': job.id, 'data-status': job.status },
    h('button', { type: 'button', onclick: () => select(job.id), 'aria-label': `${job.kind} job ${job.id}, ${job.status}` },
      h('span', { class: 'status ' + job.status }, job.status),
      h('span', { class: 'job-kind' }, job.kind),
      h('code', { class: 'job-short' }, job.id.slice(-8)),
      h('span', { class: 'hint job-when' }, ago(job.created_at)),
      h('div', { class: 'bar small' }, fill)));
}

function select(id) {
  selected = id;
  renderJobs();
  renderDetail();
  const job = jobs.get(id);
  if (job && !FINAL.has(job.status)) watch(id, true);
  $('job-detail').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function renderDetail() {
  const job = jobs.get(selected);
  show($('job-detail'), Boolean(job));
  if (!job) return;
  $('job-kind').textContent = job.kind;
  $('job-id').textContent = job.id;
  const status = $('job-status');
  status.textContent = job.status + (job.status === 'running' ? ` ${Math.round(job.progress * 100)}%` : '');
  status.className = 'status ' + job.status;
  $('job-times').textContent = job.finished_at ? `finished ${ago(job.finished_at)}` : `submitted ${ago(job.created_at)}`
    + (job.attempts > 1 ? `, attempt ${job.attempts}` : '');
  const percent = FINAL.has(job.status) ? 100 : Math.round((job.progress || 0) * 100);
  const bar = $('job-progress');
  bar.style.width = percent + '%';
  bar.setAttribute('aria-valuenow', String(percent));
  bar.classList.toggle('failed', job.status === 'failed');
  bar.classList.toggle('cancelled', job.status === 'cancelled');
  if (job.status === 'failed') showJobError(job.error);
  else if (job.status === 'cancelled') setText($('job-error'), 'The job was cancelled.');
  else setText($('job-error'), '');
  show($('cancel'), !FINAL.has(job.status));
  show($('use-result'), job.status === 'succeeded');
  renderSteps(job);
  if (job.status === 'failed') showLog(job.id); else show($('job-log'), false);
  if (job.status === 'succeeded') showResult(job);
  else clearResult();
}

/// A pipeline's steps, in order: kind (and named output), status, time taken.
function renderSteps(job) {
  const list = $('job-steps');
  list.replaceChildren(...(job.steps || []).map((step) => {
    const took = step.started_at && step.finished_at
      ? ` in ${((Date.parse(step.finished_at) - Date.parse(step.started_at)) / 1000).toFixed(1)} s` : '';
    const name = step.output ? `${step.kind} → ${step.output}` : step.kind;
    return h('li', { 'data-status': step.status }, `${name}: ${step.status}${took}`);
  }));
  show(list, Boolean(job.steps && job.steps.length));
}

/// Takes the selected job's result as the crop's input, by reference (nothing is uploaded again).
async function useResult() {
  const job = jobs.get(selected);
  if (!job || job.status !== 'succeeded') return;
  try {
    const blob = await (await api(job.result_url || `/v1/jobs/${job.id}/result`)).blob();
    $('kind-crop').checked = true;
    $('kind-crop').dispatchEvent(new Event('change'));
    setFile(new File([blob], `${job.id}.png`, { type: blob.type || 'image/png' }), job.id);
    $('job-form').scrollIntoView({ behavior: 'smooth' });
  } catch (err) { setText($('job-error'), 'Could not load the result: ' + err.message); }
}

async function showLog(id) {
  if ($('job-log').dataset.id === id) { show($('job-log'), $('job-log-text').textContent !== ''); return; }
  $('job-log').dataset.id = id;
  $('job-log-text').textContent = '';
  try {
    const text = await (await api(`/v1/jobs/${id}/log`)).text();
    if (id !== selected) return;
    $('job-log-text').textContent = text;
    show($('job-log'), text.trim() !== '');
  } catch { show($('job-log'), false); }
}

function clearResult() {
  if (shown) URL.revokeObjectURL(shown.url);
  shown = null;
  show($('result'), false);
  show($('download'), false);
  $('result-image').removeAttribute('src');
}

/// Fetches the result with the key header and shows it through an object URL (an <img src> could not
/// send the header).
async function showResult(job) {
  if (shown && shown.id === job.id) return;
  clearResult();
  shown = { id: job.id, url: null };
  try {
    const blob = await (await api(job.result_url || `/v1/jobs/${job.id}/result`)).blob();
    if (!shown || shown.id !== job.id) return;
    shown.url = URL.createObjectURL(blob);
    const img = $('result-image');
    img.onload = () => {
      $('result-size').textContent = `${img.naturalWidth} × ${img.naturalHeight} pixels, ${Math.ceil(blob.size / 1024)} KiB`;
    };
    img.src = shown.url;
    const link = $('download');
    link.href = shown.url;
    link.download = `${job.kind}-${job.id}.png`;
    show($('result'), true);
    show(link, true);
  } catch (err) {
    shown = null;
    setText($('job-error'), 'Could not load the result: ' + err.message);
  }
}

function initJobs() {
  $('refresh').addEventListener('click', refreshJobs);
  $('use-result').addEventListener('click', useResult);
  $('then-on').addEventListener('change', () => { if ($('then-on').checked) loadThenKinds(); });
  $('cancel').addEventListener('click', async () => {
    const id = selected;
    try {
      update(await (await api(`/v1/jobs/${id}`, { method: 'DELETE' })).json());
    } catch (err) {
      setText($('job-error'), err.message);
    }
  });
  refreshJobs();
  setInterval(() => { if (!document.hidden && !needKey) refreshJobs(); }, LIST_EVERY_MS);
}

/// The deployment dashboard: `GET /v1/stats` needs the admin key (or dev mode), so it stays hidden
/// for tenant keys, which get 403.
async function refreshStats() {
  try {
    const stats = await (await api('/v1/stats')).json();
    $('stat-queued').textContent = stats.queued;
    $('stat-running').textContent = stats.running;
    $('stat-retrying').textContent = stats.retrying;
    $('stat-throughput').textContent = stats.finished_per_minute.reduce((a, b) => a + b, 0);
    $('workers').replaceChildren(...stats.workers.map((w) => h('tr', {},
      h('td', {}, h('code', {}, w.id.slice(-8))),
      h('td', {}, w.host),
      h('td', {}, String(w.pid)),
      h('td', {}, `${w.running.length} / ${w.concurrency}`),
      h('td', { class: 'hint' }, ago(new Date(w.last_seen).toISOString())))));
    // Stats count by tenant id (`<name>.<hex>`); people and the pause routes use the name.
    const byName = (counts) => Object.fromEntries(Object.entries(counts).map(([id, n]) => [id.split('.')[0], n]));
    const queuedBy = byName(stats.queued_by_tenant);
    const bytesBy = byName(stats.bytes_by_tenant);
    const pausedTenants = new Set(stats.paused.tenants);
    const tenants = new Set([...Object.keys(queuedBy), ...Object.keys(bytesBy), ...pausedTenants]);
    $('tenant-queues').replaceChildren(...[...tenants].sort().map((name) => h('tr', {},
      h('td', {}, name),
      h('td', {}, String(queuedBy[name] || 0)),
      h('td', {}, String(bytesBy[name] || 0)),
      h('td', {}, pauseButton('tenants', name, pausedTenants.has(name))))));
    const pausedKinds = new Set(stats.paused.kinds);
    let kinds = [];
    try { kinds = (await (await api('/v1/kinds')).json()).kinds.map((k) => k.name); } catch { /* shown without */ }
    kinds = [...new Set([...kinds, ...Object.keys(stats.queued_by_kind), ...pausedKinds])].sort();
    $('kind-queues').replaceChildren(...kinds.map((name) => h('tr', {},
      h('td', {}, name),
      h('td', {}, String(stats.queued_by_kind[name] || 0)),
      h('td', {}, pauseButton('kinds', name, pausedKinds.has(name))))));
    show($('dashboard'), true);
    if ($('console').hidden) {
      show($('console'), true);
      refreshConsole();
    }
  } catch (err) {
    show($('dashboard'), false);
    show($('console'), false);
  }
}

/// A pause or resume button for a kind or tenant (`what` is `kinds` or `tenants`).
function pauseButton(what, name, paused) {
  const action = paused ? 'resume' : 'pause';
  return h('button', {
    type: 'button',
    class: 'secondary',
    'data-testid': `${action}-${what}-${name}`,
    onclick: async () => {
      try {
        await api(`/v1/${what}/${encodeURIComponent(name)}/${action}`, { method: 'POST' });
        setText($('console-message'), `${name}: ${paused ? 'resumed' : 'paused'}.`);
      } catch (err) {
        setText($('console-message'), err.message);
      }
      refreshStats();
    },
  }, paused ? 'Resume' : 'Pause');
}

function initDashboard() {
  refreshStats();
  setInterval(() => { if (!document.hidden) refreshStats(); }, LIST_EVERY_MS);
}

// ---------------------------------------------------------------- operator console (admin)

/// The jobs the console shows, as `{tenant, job}`; the next page's cursor.
let consoleJobs = [];
let consoleCursor = null;

function consoleQuery(cursor) {
  const query = new URLSearchParams();
  for (const [name, id] of [['tenant', 'console-tenant'], ['kind', 'console-kind'],
    ['status', 'console-status'], ['error', 'console-error']]) {
    const value = $(id).value.trim();
    if (value) query.set(name, value);
  }
  for (const [name, id] of [['since', 'console-since'], ['until', 'console-until']]) {
    if ($(id).value) query.set(name, new Date($(id).value).toISOString());
  }
  if (cursor) query.set('cursor', cursor);
  query.set('limit', '50');
  return query;
}

async function refreshConsole(more) {
  try {
    const page = await (await api('/v1/admin/jobs?' + consoleQuery(more ? consoleCursor : null))).json();
    consoleJobs = more ? consoleJobs.concat(page.jobs) : page.jobs;
    consoleCursor = page.next_cursor;
    show($('console-more'), Boolean(consoleCursor));
    $('console-all').checked = false;
    $('console-jobs').replaceChildren(...consoleJobs.map((job) => h('tr', { 'data-id': job.id },
      h('td', {}, h('input', { type: 'checkbox', class: 'console-pick', 'data-tenant': job.tenant, 'data-id': job.id,
        'aria-label': `select job ${job.id}` })),
      h('td', {}, job.tenant),
      h('td', {}, job.kind),
      h('td', {}, h('a', { href: '#', onclick: (e) => { e.preventDefault(); showConsoleJob(job); } },
        h('code', {}, job.id.slice(-12)))),
      h('td', {}, h('span', { class: `status ${job.status}` }, job.status)),
      h('td', {}, job.error ? job.error.code : ''),
      h('td', { class: 'hint' }, ago(job.created_at)))));
  } catch (err) {
    setText($('console-message'), err.message);
  }
}

function picked() {
  return [...document.querySelectorAll('.console-pick:checked')]
    .map((box) => ({ tenant: box.dataset.tenant, id: box.dataset.id }));
}

/// Cancels or retries the selection (`action`: `cancel` or `retry`) and says what became of it.
async function actOnSelection(action) {
  const jobs = picked();
  if (!jobs.length) {
    setText($('console-message'), 'Select jobs first.');
    return;
  }
  try {
    const done = await (await api(`/v1/admin/jobs/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jobs }),
    })).json();
    const ok = done.results.filter((r) => r.ok).length;
    const refused = done.results.filter((r) => !r.ok).map((r) => r.detail);
    const verb = action === 'cancel' ? 'cancelled' : 'retried';
    setText($('console-message'), `${ok} ${verb}` + (refused.length ? `; ${refused.length} not: ${refused[0]}` : '.'));
  } catch (err) {
    setText($('console-message'), err.message);
  }
  refreshConsole();
}

async function retryFailedOfKind() {
  const kind = $('console-kind').value.trim();
  if (!kind) {
    setText($('console-message'), 'Name a kind in the filter first.');
    return;
  }
  const tenant = $('console-tenant').value.trim();
  const query = tenant ? '?tenant=' + encodeURIComponent(tenant) : '';
  try {
    const done = await (await api(`/v1/kinds/${encodeURIComponent(kind)}/retry-failed${query}`, { method: 'POST' })).json();
    setText($('console-message'), `${done.retried} failed ${kind} jobs retried` +
      (done.refused.length ? `; ${done.refused.length} not: ${done.refused[0].detail}` : '') +
      (done.more ? '; more remain, press again.' : '.'));
  } catch (err) {
    setText($('console-message'), err.message);
  }
  refreshConsole();
}

/// Shows one job's params, log, attempts and webhook deliveries.
async function showConsoleJob(job) {
  const of = `?tenant=${encodeURIComponent(job.tenant)}`;
  $('console-job-id').textContent = job.id;
  $('console-job-meta').textContent = `${job.tenant} · ${job.kind} · ${job.status} · attempts ${job.attempts}` +
    (job.error ? ` · ${job.error.code}: ${job.error.message}` : '') +
    (job.retry_of ? ` · retry of ${job.retry_of}` : '') + (job.retried_as ? ` · retried as ${job.retried_as}` : '');
  $('console-job-retry').onclick = () => retryOne(job);
  const text = async (path) => {
    try { return await (await api(path)).text(); } catch (err) { return err.message; }
  };
  $('console-job-params').textContent = await text(`/v1/jobs/${job.id}/params${of}`);
  $('console-job-log').textContent = (await text(`/v1/jobs/${job.id}/log${of}`)) || '(nothing logged)';
  try {
    const deliveries = await (await api(`/v1/jobs/${job.id}/deliveries${of}`)).json();
    $('console-job-deliveries').textContent = JSON.stringify(deliveries, null, 2);
    show($('console-job-deliveries-box'), true);
  } catch {
    show($('console-job-deliveries-box'), false);
  }
  show($('console-job'), true);
}

async function retryOne(job) {
  try {
    const retry = await (await api(`/v1/jobs/${job.id}/retry?tenant=${encodeURIComponent(job.tenant)}`,
      { method: 'POST' })).json();
    setText($('console-message'), `Retried as ${retry.id}.`);
  } catch (err) {
    setText($('console-message'), err.message);
  }
  refreshConsole();
}

function initConsole() {
  $('console-error').append(...Object.keys(ERROR_WORDS).map((code) => h('option', {}, code)));
  $('console-filters').addEventListener('submit', (e) => { e.preventDefault(); refreshConsole(); });
  $('console-more').addEventListener('click', () => refreshConsole(true));
  $('console-retry').addEventListener('click', () => actOnSelection('retry'));
  $('console-cancel').addEventListener('click', () => actOnSelection('cancel'));
  $('console-retry-failed').addEventListener('click', retryFailedOfKind);
  $('console-all').addEventListener('change', () => {
    for (const box of document.querySelectorAll('.console-pick')) box.checked = $('console-all').checked;
  });
  // Not while jobs are picked: a refresh would drop the selection.
  setInterval(() => {
    if (!document.hidden && !$('console').hidden && !picked().length) refreshConsole();
  }, LIST_EVERY_MS * 2);
}

initKey();
initKind();
initCrop();
initPlot();
initSubmit();
initJobs();
initDashboard();
initConsole();
