// Checks a .glb for the Python tests: the Khronos glTF validator's report, and what three.js's
// GLTFLoader makes of the file (morph targets by name, animation tracks and their keyframes).
// Usage: node check_glb.mjs FILE.glb   → one JSON object on stdout.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const validator = require('gltf-validator');

// GLTFLoader touches the DOM only for textures and images, which facewire's takes have none of,
// so it parses in plain Node (checked with three 0.187) and no browser stand-ins are needed.
const { GLTFLoader } = await import('three/examples/jsm/loaders/GLTFLoader.js');

const path = process.argv[2];
const bytes = readFileSync(path);
const report = await validator.validateBytes(new Uint8Array(bytes), { maxIssues: 100 });

const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
const gltf = await new Promise((resolve, reject) => new GLTFLoader().parse(buffer, '', resolve, reject));

const meshes = [];
gltf.scene.traverse((o) => {
  if (o.isMesh) {
    meshes.push({
      name: o.name,
      targets: (o.geometry.morphAttributes.position || []).length,
      dictionary: o.morphTargetDictionary || {},
      influences: (o.morphTargetInfluences || []).length,
    });
  }
});
const clips = gltf.animations.map((clip) => ({
  name: clip.name,
  duration: clip.duration,
  tracks: clip.tracks.map((t) => ({ name: t.name, type: t.ValueTypeName, times: t.times.length, values: t.values.length })),
}));

console.log(JSON.stringify({
  validator: {
    version: report.validatorVersion,
    errors: report.issues.numErrors,
    warnings: report.issues.numWarnings,
    infos: report.issues.numInfos,
    hints: report.issues.numHints,
    messages: report.issues.messages.map((m) => `${m.severity} ${m.code} ${m.pointer ?? ''}: ${m.message}`),
    info: report.info,
  },
  three: { meshes, clips },
}));
