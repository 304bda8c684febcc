// The facewire studio page: webcam + microphone → server (WebSocket) → FaceFrames → three.js avatar.
// Protocol: see facewire/server/session.py. State is exposed on window.facewire for tests and debugging.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

const KIND_JPEG = 1, KIND_PCM = 2;
const CAPTURE_WIDTH = 320, MIN_FRAME_MS = 30, FRAME_SLACK_MS = 5, MAX_BUFFERED_BYTES = 256 * 1024, KEEP = 2000;
const $ = (id) => document.getElementById(id);

const fw = window.facewire = {
  running: false, connected: false, session: null, names: [], hello: null,
  marks: {}, frames: 0, sent: { camera: 0, video: 0, audio: 0 }, arrivals: [], latencies: [], stats: { fps: 0, latency_ms: null, server: null },
  received: [], applied: [], errors: [], take: null, calibration: null, speech: null,
  avatar: { url: null, ready: false, meshes: 0, missing: [] },
  morphWeights,
};

// -- rendering ----------------------------------------------------------------------------------------
const canvas = $('avatar-canvas');
function softwareGl() {
  // Multisampling on a software rasteriser (SwiftShader, llvmpipe) costs more than the rest of the page.
  const gl = document.createElement('canvas').getContext('webgl2');
  const info = gl && gl.getExtension('WEBGL_debug_renderer_info');
  const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
  return /swiftshader|llvmpipe|software/i.test(name);
}
fw.softwareGl = softwareGl();
const renderer = new THREE.WebGLRenderer({ canvas, antialias: !fw.softwareGl, preserveDrawingBuffer: true });
renderer.setPixelRatio(1);
renderer.setSize(canvas.width, canvas.height, false);
renderer.outputColorSpace = THREE.SRGBColorSpace;
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x2a2f39);
const camera = new THREE.PerspectiveCamera(28, 1, 0.01, 100);
scene.add(new THREE.HemisphereLight(0xffffff, 0x404050, 1.6));
const key = new THREE.DirectionalLight(0xffffff, 2.2);
key.position.set(0.6, 0.8, 1.5);
scene.add(key);
const fill = new THREE.DirectionalLight(0xaaccff, 0.6);
fill.position.set(-1, 0.2, 0.8);
scene.add(fill);

let pivot = null, headBone = null, headRest = null, morphMeshes = [];
const euler = new THREE.Euler(0, 0, 0, 'YXZ'), headQ = new THREE.Quaternion();

async function loadAvatar(url) {
  fw.avatar = { url, ready: false, meshes: 0, missing: [] };
  const gltf = await new GLTFLoader().loadAsync(url);
  if (pivot) scene.remove(pivot);
  const root = gltf.scene;
  morphMeshes = [];
  headBone = null;
  root.traverse((o) => {
    if (o.isMesh && o.morphTargetDictionary) morphMeshes.push(o);
    if (o.isBone && !headBone && /^(j_bip_c_)?head$/i.test(o.name)) headBone = o;
  });
  headRest = headBone ? headBone.quaternion.clone() : null;
  const box = new THREE.Box3().setFromObject(root);
  const size = box.getSize(new THREE.Vector3()), centre = box.getCenter(new THREE.Vector3());
  const own = gltf.parser.json.meshes && gltf.parser.json.meshes[0] && gltf.parser.json.meshes[0].extras;
  const at = own && own.facewire && own.facewire.headPivot ? new THREE.Vector3(...own.facewire.headPivot) : centre;
  pivot = new THREE.Group();
  pivot.position.copy(at);
  root.position.sub(at);
  pivot.add(root);
  scene.add(pivot);
  sceneChanged = true;
  const height = Math.max(size.y, size.x);
  camera.position.set(centre.x, centre.y + height * 0.05, centre.z + height * 2.4 + size.z / 2);
  camera.lookAt(centre.x, centre.y, centre.z);
  const dict = morphMeshes.length ? morphMeshes[0].morphTargetDictionary : {};
  fw.marks.avatar = performance.now();
  fw.avatar = { url, ready: true, meshes: morphMeshes.length,
                missing: fw.names.filter((n) => !(n in dict)) };
  if (fw.names.length && fw.avatar.missing.length) {
    $('avatar-note').textContent = `${fw.avatar.missing.length} of 52 ARKit shapes missing on this avatar`;
  } else {
    $('avatar-note').textContent = '';
  }
}

function morphWeights() {
  // The influences the avatar shows now, read back from three.js by ARKit name (null: no such target).
  if (!morphMeshes.length) return null;
  const m = morphMeshes[0];
  return fw.names.map((n) => (n in m.morphTargetDictionary ? m.morphTargetInfluences[m.morphTargetDictionary[n]] : null));
}

function applyFrame(msg) {
  const w = msg.weights;
  for (const m of morphMeshes) {
    const dict = m.morphTargetDictionary, inf = m.morphTargetInfluences;
    for (let i = 0; i < fw.names.length; i++) {
      const k = dict[fw.names[i]];
      if (k !== undefined) inf[k] = w[i];
    }
  }
  const h = msg.head;
  const d = Math.PI / 180;
  euler.set(-h.pitch_deg * d, h.yaw_deg * d, h.roll_deg * d, 'YXZ');  // R = Ry(yaw)·Rx(−pitch)·Rz(roll)
  headQ.setFromEuler(euler);
  if (headBone) headBone.quaternion.copy(headRest).multiply(headQ);
  else if (pivot) pivot.quaternion.copy(headQ);
  lastApplied = msg;
  if (morphMeshes.length) {
    fw.applied.push({ seq: msg.seq, t_ns: msg.t_ns, source: msg.source, weights: morphWeights() });
    if (fw.applied.length > KEEP) fw.applied.splice(0, fw.applied.length - KEEP);
  }
}

// -- coefficient bars ---------------------------------------------------------------------------------
let barEls = [];
function makeBars(names) {
  const box = $('bars');
  box.textContent = '';
  barEls = names.map((n) => {
    const row = document.createElement('div');
    row.className = 'bar';
    const label = document.createElement('span');
    label.textContent = n;
    const track = document.createElement('div');
    const bar = document.createElement('i');
    track.append(bar);
    row.append(label, track);
    box.append(row);
    return bar;
  });
}

let lastApplied = null, lastDrawn = null, sceneChanged = true;
function tick() {
  requestAnimationFrame(tick);
  if (fw.speech) playSpeechFrame();
  if (lastApplied && lastApplied !== lastDrawn) {
    lastDrawn = lastApplied;
    sceneChanged = true;
    const w = lastApplied.weights;
    for (let i = 0; i < barEls.length; i++) barEls[i].style.width = `${(w[i] * 100).toFixed(1)}%`;
    $('source').textContent = lastApplied.tracked === false ? `${lastApplied.source} (no face)` : lastApplied.source;
  }
  // Draw only what changed: software WebGL on a small machine has no frames to spare.
  if (sceneChanged) {
    renderer.render(scene, camera);
    sceneChanged = false;
  }
}

function updateReadout() {
  const now = performance.now();
  fw.arrivals = fw.arrivals.filter((t) => now - t <= 1000);
  fw.latencies = fw.latencies.filter((l) => now - l[0] <= 1000);
  fw.stats.fps = fw.arrivals.length;
  const lat = fw.latencies.map((l) => l[1]).sort((a, b) => a - b);
  fw.stats.latency_ms = lat.length ? lat[Math.floor(lat.length / 2)] : null;
  $('fps').textContent = fw.running ? String(fw.stats.fps) : '–';
  $('latency').textContent = fw.stats.latency_ms === null ? '–' : fw.stats.latency_ms.toFixed(0);
}
setInterval(updateReadout, 250);

// -- the connection -----------------------------------------------------------------------------------
let ws = null, stream = null, micCtx = null, playCtx = null, pingTimer = null;

function setStatus(text) { $('status').textContent = text; }
function showError(text) {
  fw.errors.push(text);
  if (fw.errors.length > 50) fw.errors.shift();
  $('errors').textContent = text;
}

function sendBinary(kind, captureMs, payload) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const bytes = new Uint8Array(9 + payload.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, kind);
  view.setFloat64(1, captureMs, true);
  bytes.set(new Uint8Array(payload), 9);
  ws.send(bytes.buffer);
  if (kind === KIND_JPEG) fw.sent.video += 1; else fw.sent.audio += 1;
  if (!fw.marks[kind === KIND_JPEG ? 'video' : 'audio']) fw.marks[kind === KIND_JPEG ? 'video' : 'audio'] = performance.now();
}
function sendJson(obj) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ v: 1, ...obj }));
}

function onMessage(event) {
  let msg;
  try { msg = JSON.parse(event.data); } catch (e) { showError(`bad message from the server: ${e}`); return; }
  switch (msg.type) {
    case 'hello':
      fw.hello = msg; fw.names = msg.names; fw.session = msg.session;
      $('session').textContent = msg.session;
      makeBars(msg.names);
      if (fw.avatar.ready && morphMeshes.length) {
        const dict = morphMeshes[0].morphTargetDictionary;
        fw.avatar.missing = fw.names.filter((n) => !(n in dict));
      }
      break;
    case 'frame': {
      const now = performance.now();
      if (!fw.marks.frame) fw.marks.frame = now;
      fw.frames += 1;
      fw.arrivals.push(now);
      if (msg.capture_ns) fw.latencies.push([now, now - msg.capture_ns / 1e6]);
      fw.received.push({ at: now, seq: msg.seq, t_ns: msg.t_ns, source: msg.source, tracked: msg.tracked, weights: msg.weights });
      if (fw.received.length > KEEP) fw.received.splice(0, fw.received.length - KEEP);
      if (!fw.speech) applyFrame(msg);
      if (photoWs) forwardToPhoto(event.data);
      break;
    }
    case 'speech': startSpeech(msg); break;
    case 'take': onTake(msg); break;
    case 'calibration':
      fw.calibration = msg.state;
      setStatus(msg.state === 'learning' ? `hold a neutral face (${msg.window_s} s)…` : 'calibrated');
      break;
    case 'stats': fw.stats.server = msg; break;
    case 'error': showError(msg.message); break;
    case 'pong': break;
    default: showError(`unknown message type ${msg.type}`);
  }
}

async function start() {
  fw.marks.start = performance.now();
  fw.running = true;
  $('start').textContent = 'Stop';
  setStatus('asking for the camera and microphone…');
  // Created inside the click: browsers let audio start only after a user gesture.
  playCtx = new AudioContext();
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    showError(`camera/microphone unavailable (${e.name}: ${e.message}); the avatar can still speak text`);
    stream = null;
  }
  fw.marks.media = performance.now();
  // the avatar this session drives, named for the server's audit log
  const picked = ($('avatar').value || '').match(/\/avatar\/([A-Za-z0-9_-]{1,64})\.glb$/);
  const name = fw.photo || (picked ? picked[1] : 'default');
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?avatar=${name}`;
  ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    fw.marks.open = performance.now();
    fw.connected = true;
    setStatus('connected');
    for (const id of ['calibrate', 'record', 'say']) $(id).disabled = false;
    pingTimer = setInterval(() => sendJson({ type: 'ping' }), 5000);
    if (stream) { startVideo(); startAudio().catch((e) => showError(`microphone: ${e.message}`)); }
  };
  ws.onmessage = onMessage;
  ws.onclose = (e) => {
    fw.connected = false;
    setStatus(`disconnected (${e.code}${e.reason ? ': ' + e.reason : ''})`);
    if (e.code !== 1000 && e.code !== 1005 && e.reason) showError(`the server closed the session: ${e.reason}`);
    for (const id of ['calibrate', 'record', 'say']) $(id).disabled = true;
  };
}

function stop() {
  fw.running = false;
  $('start').textContent = 'Start';
  clearInterval(pingTimer);
  if (ws) ws.close(1000, 'stopped');
  if (stream) for (const track of stream.getTracks()) track.stop();
  if (micCtx) micCtx.close();
  if (playCtx) playCtx.close();
  ws = stream = micCtx = playCtx = null;
  fw.speech = null;
  setStatus('stopped');
}

// -- camera -------------------------------------------------------------------------------------------
// Every camera frame exactly once: Chrome's MediaStreamTrackProcessor where it exists, else the
// video element's frame callbacks, else a timer.
function startVideo() {
  const track = stream.getVideoTracks()[0];
  if (!track) return;
  const video = $('self-view');
  video.srcObject = stream;
  video.play().catch(() => {});
  const grabs = [document.createElement('canvas'), document.createElement('canvas')];
  let inFlight = 0, lastMs = -1e9, nextDueMs = 0;
  const send = (source, width, height) => {
    const now = performance.now();
    fw.sent.camera += 1;
    // Two encodes may overlap (JPEG encoding is asynchronous and slow on a busy machine); one that
    // never called back (a stalled tab) must not stop the camera for good. Sending is paced to
    // MIN_FRAME_MS on average, not frame to frame: a 25 fps camera's jitter (frames 20 ms, then 60 ms
    // apart) must not drop every early frame.
    if ((inFlight >= 2 && now - lastMs < 1000) || !width || now < nextDueMs - FRAME_SLACK_MS) return;
    nextDueMs = Math.max(nextDueMs + MIN_FRAME_MS, now);
    if (!ws || ws.bufferedAmount > MAX_BUFFERED_BYTES) return;  // the network is behind: skip, never queue
    const scale = Math.min(1, CAPTURE_WIDTH / width);
    const canvas = grabs[inFlight % 2];
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext('2d').drawImage(source, 0, 0, canvas.width, canvas.height);
    lastMs = now;
    inFlight += 1;
    canvas.toBlob(async (blob) => {
      inFlight = Math.max(0, inFlight - 1);
      if (blob) sendBinary(KIND_JPEG, now, await blob.arrayBuffer());
    }, 'image/jpeg', 0.8);
  };
  if (window.MediaStreamTrackProcessor) {
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    (async () => {
      while (fw.running) {
        const { value, done } = await reader.read();
        if (done) break;
        try { send(value, value.displayWidth, value.displayHeight); } finally { value.close(); }
      }
      reader.cancel().catch(() => {});
    })().catch((e) => showError(`camera: ${e.message}`));
    return;
  }
  const next = () => {
    if (!fw.running) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(frame); else setTimeout(frame, MIN_FRAME_MS);
  };
  const frame = () => {
    next();
    send(video, video.videoWidth, video.videoHeight);
  };
  next();
}

// -- microphone ---------------------------------------------------------------------------------------
async function startAudio() {
  if (!stream.getAudioTracks().length) return;
  micCtx = new AudioContext({ sampleRate: 16000 });
  await micCtx.audioWorklet.addModule('/static/pcm-worklet.js');
  const source = micCtx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(micCtx, 'facewire-pcm', { processorOptions: { block: 320 } });
  const blockMs = 320 / micCtx.sampleRate * 1000;
  node.port.onmessage = (e) => sendBinary(KIND_PCM, Math.max(0, performance.now() - blockMs), e.data.buffer);
  const silent = micCtx.createGain();
  silent.gain.value = 0;  // keeps the graph pulled without playing the microphone back
  source.connect(node).connect(silent).connect(micCtx.destination);
  if (micCtx.state === 'suspended') await micCtx.resume();
}

// -- speech -------------------------------------------------------------------------------------------
async function startSpeech(msg) {
  $('emotion').textContent = `${msg.emotion.emotion}${msg.emotion.intensity ? ' ' + msg.emotion.intensity.toFixed(2) : ''}`
    + ` · ${msg.duration_s.toFixed(1)} s`;
  const bytes = Uint8Array.from(atob(msg.wav), (c) => c.charCodeAt(0));
  let startAt = 0;
  try {
    const buffer = await playCtx.decodeAudioData(bytes.buffer);
    const src = playCtx.createBufferSource();
    src.buffer = buffer;
    src.connect(playCtx.destination);
    startAt = playCtx.currentTime + 0.05;
    src.start(startAt);
  } catch (e) {
    showError(`cannot play the speech (${e.message})`);
    return;
  }
  // The audio clock drives the frames: the mouth stays in sync whatever the network did.
  fw.speech = { id: msg.id, frames: msg.frames, fps: msg.fps, startAt, shown: -1, played: 0 };
}

function playSpeechFrame() {
  const s = fw.speech;
  const k = Math.floor((playCtx.currentTime - s.startAt) * s.fps);
  if (k < 0 || k === s.shown) return;
  if (k >= s.frames.length) { fw.speech = null; fw.lastSpeech = { id: s.id, played: s.played }; return; }
  s.shown = k;
  s.played += 1;
  applyFrame(s.frames[k]);
}

// -- takes --------------------------------------------------------------------------------------------
function onTake(msg) {
  fw.take = msg;
  const button = $('record');
  button.classList.toggle('on', msg.recording);
  button.textContent = msg.recording ? 'Stop recording' : 'Record';
  if (msg.files) {
    const box = $('downloads');
    box.textContent = `${msg.frames} frames: `;
    for (const [fmt, href] of Object.entries(msg.files)) {
      const a = document.createElement('a');
      a.id = `download-${fmt}`;
      a.href = href;
      a.download = `take.${fmt}`;
      a.textContent = fmt.toUpperCase();
      box.append(a);
    }
  }
}

// -- avatars ------------------------------------------------------------------------------------------
async function refreshAvatars(select) {
  const response = await fetch('/avatars');
  const { avatars } = await response.json();
  const box = $('avatar');
  box.textContent = '';
  for (const a of avatars) {
    const option = document.createElement('option');
    option.value = a.url;
    option.textContent = a.name;
    box.append(option);
  }
  if (select) box.value = select;
}

async function upload(file) {
  const stem = file.name.replace(/\.(glb|vrm)$/i, '').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'avatar';
  const response = await fetch(`/avatar/${stem}.glb`, { method: 'PUT', body: file });
  const body = await response.json();
  if (!response.ok) { showError(body.error); return; }
  await refreshAvatars(body.url);
  await loadAvatar(body.url);
  if (body.missing.length) $('avatar-note').textContent = `missing (no target, no fallback): ${body.missing.join(', ')}`;
}

// -- photo avatars -------------------------------------------------------------------------------------
// A photo is admitted by the server only with consent (a grant or attestation token for the studio's
// context) and rendered there (the page cannot warp a photo): the page forwards its frame messages and
// shows the JPEGs that come back.
let photoWs = null, photoUrl = null;

function forwardToPhoto(text) {
  if (photoWs.readyState === WebSocket.OPEN && photoWs.bufferedAmount < 65536) photoWs.send(text);
}

function openPhoto(name) {
  if (photoWs) photoWs.close(1000);
  photoWs = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/photo/${name}/ws`);
  photoWs.binaryType = 'blob';
  photoWs.onmessage = (e) => {
    if (typeof e.data === 'string') { showError(`photo avatar: ${JSON.parse(e.data).message}`); return; }
    const url = URL.createObjectURL(e.data);
    const img = $('photo-view');
    img.src = url;
    img.hidden = false;
    if (photoUrl) URL.revokeObjectURL(photoUrl);
    photoUrl = url;
  };
  photoWs.onclose = (e) => { if (e.code !== 1000 && e.reason) showError(`photo avatar: ${e.reason}`); };
}

async function uploadPhoto() {
  const file = $('photo-file').files[0];
  const token = $('photo-token').files[0];
  if (!file) { showError('photo: choose a portrait photo first'); return; }
  const form = new FormData();
  form.append('photo', file);
  form.append('name', file.name.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'photo');
  if (token) form.append('token', await token.text());
  const response = await fetch('/photo', { method: 'POST', body: form });
  const body = await response.json();
  if (!response.ok) { showError(body.error); return; }
  fw.photo = body.name;
  $('avatar-note').textContent = `photo ${body.name}: ${body.likeness}, context ${body.context} (rendered on the server)`;
  openPhoto(body.name);
}

// -- wiring -------------------------------------------------------------------------------------------
$('start').addEventListener('click', () => (fw.running ? stop() : start()));
$('calibrate').addEventListener('click', () => sendJson({ type: 'calibrate' }));
$('record').addEventListener('click', () => sendJson({ type: 'record', on: !(fw.take && fw.take.recording) }));
$('say-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('say-text').value.trim();
  if (text) sendJson({ type: 'say', text });
});
$('avatar').addEventListener('change', (e) => loadAvatar(e.target.value).catch((err) => showError(`avatar: ${err.message}`)));
$('photo-form').addEventListener('submit', (e) => {
  e.preventDefault();
  uploadPhoto().catch((err) => showError(`photo: ${err.message}`));
});
$('avatar-file').addEventListener('change', (e) => e.target.files[0] && upload(e.target.files[0]).catch((err) => showError(err.message)));

refreshAvatars().catch(() => {});
loadAvatar('/avatar/default.glb').catch((e) => showError(`avatar: ${e.message}`));
requestAnimationFrame(tick);
