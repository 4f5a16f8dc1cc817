// ONNX Runtime (npm onnxruntime-node, installed under tools/oracle) latency of one model,
// batch 1, for the side-by-side anchors (bench/anchors/anchors.py). Bench only.
//   node bench/anchors/ort_latency.mjs MODEL.onnx THREADS RUNS
// Prints one JSON line: {"median_ms": .., "min_ms": .., "runs": ..}.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tools/oracle/package.json', import.meta.url));
const ort = require('onnxruntime-node');

const [, , path, threadsArg = '1', runsArg = '50'] = process.argv;
if (!path) {
  console.error('usage: node bench/anchors/ort_latency.mjs MODEL.onnx THREADS RUNS');
  process.exit(2);
}
const session = await ort.InferenceSession.create(path, {
  intraOpNumThreads: Number(threadsArg),
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const name = session.inputNames[0];
const meta = session.inputMetadata?.[0];
const dims = (meta?.shape ?? [1, 3, 224, 224]).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
const size = dims.reduce((a, b) => a * b, 1);
let seed = 1;
const data = Float32Array.from({ length: size }, () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return (seed / 2147483648) * 2 - 1;
});
const feeds = { [name]: new ort.Tensor('float32', data, dims) };
for (let i = 0; i < 10; ++i) await session.run(feeds);
const times = [];
for (let i = 0; i < Number(runsArg); ++i) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ median_ms: times[times.length >> 1], min_ms: times[0], runs: times.length }));
