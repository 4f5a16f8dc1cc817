#!/usr/bin/env node
// Runs an .onnx model once in ONNX Runtime (onnxruntime-node, native CPU execution provider).
//
// node run_onnx.mjs --model M.onnx --input in0.bin [--input in1.bin ...] --out-dir DIR
// node run_onnx.mjs --model M.onnx --describe
//
// Same contract as run_tflite.mjs: raw little-endian tensors in the model's dtypes and input
// order; outputs to DIR/out<i>.bin; one JSON line on stdout
//   {"runtime":"onnxruntime","inputs":[{name,dtype,shape}],"outputs":[{name,dtype,shape,file}]}
// A single dynamic input dimension is solved from the input's byte size. Non-zero exit when the
// model fails to load or run, an input's size is wrong, or the runtime printed "ERROR:".
import { createRequire } from 'node:module';
import {
  blockNetwork, captureConsole, emit, finish, parseArgs, readInputs, readModel, sinceStart,
  writeOutputs,
} from './common.mjs';

const require = createRequire(import.meta.url);

const TYPED_ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array,
  uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
  uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

function metadataSpec(meta) {
  if (!meta.isTensor) throw new Error(`${meta.name}: only tensor inputs/outputs are supported`);
  return { name: meta.name, dtype: meta.type, shape: [...meta.shape].map((d) => (typeof d === 'number' ? d : String(d))) };
}

async function main() {
  const log = captureConsole();
  const args = parseArgs(process.argv.slice(2), { runtimes: ['onnxruntime'] });
  blockNetwork();
  const ort = require('onnxruntime-node');
  const timing = { runtime_ready: sinceStart() };
  const modelBytes = readModel(args.model);
  let session;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: ['cpu'],
      logSeverityLevel: 2,
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
  } catch (e) {
    throw new Error(`onnxruntime failed to load ${args.model}: ${e?.message ?? e}`);
  }
  timing.model_loaded = sinceStart();
  const inputSpecs = session.inputMetadata.map(metadataSpec);
  const outputSpecs = session.outputMetadata.map(metadataSpec);
  const result = { runtime: 'onnxruntime', inputs: inputSpecs };
  if (args.describe) {
    emit({ ...result, outputs: outputSpecs });
    return;
  }
  const inputs = readInputs(args.inputs, inputSpecs);
  const feeds = {};
  inputs.forEach(({ bytes, shape }, i) => {
    const { name, dtype } = inputSpecs[i];
    const Typed = TYPED_ARRAYS[dtype];
    if (!Typed) throw new Error(`input ${name}: dtype ${dtype} is not supported by the oracle`);
    const aligned = bytes.slice().buffer; // own, offset-0 buffer for the typed view
    feeds[name] = new ort.Tensor(dtype, new Typed(aligned), shape);
  });
  result.inputs = inputSpecs.map((s, i) => ({ ...s, shape: inputs[i].shape }));
  const t0 = performance.now();
  const results = await session.run(feeds);
  timing.inference = Math.round((performance.now() - t0) * 10) / 10;
  if (/ERROR:/.test(log.text())) throw new Error('onnxruntime printed ERROR: during inference');
  const outputs = session.outputNames.map((name) => {
    const t = results[name];
    if (!t || !TYPED_ARRAYS[t.type]) throw new Error(`output ${name}: unsupported value ${t?.type}`);
    const d = t.data;
    return { name, dtype: t.type, shape: [...t.dims], bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
  });
  emit({ ...result, outputs: writeOutputs(args.outDir, outputs), timing_ms: timing });
  await session.release();
}

await finish(main());
