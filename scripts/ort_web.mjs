// Runs an ONNX model in ONNX Runtime Web (npm `onnxruntime-web`, its wasm SIMD build, one
// thread) under Node, on the input `scripts/profile.py` and the engine's `profile` example feed
// tract: the pattern (i * 37 % 256) / 255, element by element, in float32.
//
//   node scripts/ort_web.mjs DIST MODEL INPUT=D1,D2,... [--runs N] [--profile]
//
// DIST is the package's `dist` folder (profile.py installs the pinned version into
// target/ort-web). Prints one JSON line: {"ort_web": {"micros": [...], "version": ...}}, the
// time of each run after one warm-up run. With --profile, a second session runs with
// ONNX Runtime's profiler on, which prints its trace events (one JSON object per node per run,
// `"cat" : "Node"`) to standard output after the timed line; profile.py reads them.

import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [dist, model, input, ...rest] = process.argv.slice(2);
if (!dist || !model || !input?.includes('=')) {
  console.error('usage: node scripts/ort_web.mjs DIST MODEL INPUT=D1,D2,... [--runs N] [--profile]');
  process.exit(2);
}
let runs = 20;
let profile = false;
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--runs') runs = Number(rest[++i]);
  else if (rest[i] === '--profile') profile = true;
  else {
    console.error(`unknown argument ${rest[i]}`);
    process.exit(2);
  }
}

const ort = await import(pathToFileURL(path.join(dist, 'ort.node.min.mjs')).href);
ort.env.wasm.numThreads = 1;

const [name, dims] = input.split('=');
const shape = dims.split(',').map(Number);
const length = shape.reduce((a, b) => a * b, 1);
const data = new Float32Array(length);
for (let i = 0; i < length; i++) data[i] = ((i * 37) % 256) / 255;
const feed = { [name]: new ort.Tensor('float32', data, shape) };

async function timed(options) {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], ...options });
  await session.run(feed);
  const micros = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await session.run(feed);
    micros.push((performance.now() - started) * 1000);
  }
  return { session, micros };
}

const { session, micros } = await timed({});
await session.release();
console.log(JSON.stringify({ ort_web: { micros, version: ort.env.versions.web } }));
if (profile) {
  const { session: profiled } = await timed({ enableProfiling: true });
  profiled.endProfiling();
  await profiled.release();
}
