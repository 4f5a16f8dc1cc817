#!/usr/bin/env node
// Runs a .tflite model once in an official TFLite runtime compiled to WebAssembly:
//   --runtime litert : LiteRT.js (@litertjs/core), CPU (XNNPack) on wasm
//   --runtime tfjs   : @tensorflow/tfjs-tflite (TFLite Web API), CPU on wasm
//
// node --experimental-wasm-relaxed-simd run_tflite.mjs --model M.tflite --runtime litert|tfjs \
//      --input in0.bin [--input in1.bin ...] --out-dir DIR
// node --experimental-wasm-relaxed-simd run_tflite.mjs --model M.tflite --runtime R --describe
//
// Inputs and outputs are raw little-endian tensors in the model's own dtype and order; outputs go
// to DIR/out<i>.bin. One JSON line on stdout:
//   {"runtime","inputs":[{name,dtype,shape}],"outputs":[{name,dtype,shape,file}]}
// Exit status is non-zero when the model does not load, an input's byte size is wrong, or the
// runtime printed "ERROR:" anywhere (LiteRT logs "ERROR:" and hands back zeros when a kernel
// fails). Everything the runtimes print goes to stderr. Both wasm builds are read from
// node_modules; nothing is fetched.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  NODE_MODULES, blockNetwork, captureConsole, emit, finish, parseArgs, readInputs, readModel,
  sinceStart, writeOutputs,
} from './common.mjs';

const require = createRequire(import.meta.url);

// LiteRT element types (LiteRtElementType, same numbering as TfLiteType) -> dtype names.
const LITERT_DTYPES = {
  1: 'float32', 2: 'int32', 3: 'uint8', 4: 'int64', 5: 'string', 6: 'bool', 7: 'int16',
  8: 'complex64', 9: 'int8', 10: 'float16', 11: 'float64', 12: 'complex128', 13: 'uint64',
  16: 'uint32', 17: 'uint16', 18: 'int4', 19: 'bfloat16',
};

// Runs an Emscripten loader script the way a browser <script>/importScripts would, with the
// CommonJS names its Node branch uses, and returns the factory it declares.
function evalLoaderScript(file, factoryName) {
  const src = fs.readFileSync(file, 'utf8');
  // eslint-disable-next-line no-new-func
  const fn = new Function('require', '__filename', '__dirname', `${src}\n;return ${factoryName};`);
  return fn(require, file, path.dirname(file));
}

// ---------------------------------------------------------------- LiteRT.js
class LiteRtRunner {
  static async create() {
    const wasmDir = path.join(NODE_MODULES, '@litertjs/core/wasm');
    // @litertjs/wasm-utils loads the module factory with importScripts() when it exists (web
    // workers), reading self.ModuleFactory afterwards. Node has neither, so provide both; the
    // loader script's own Node branch then reads the .wasm beside it with fs.
    globalThis.self = globalThis;
    globalThis.importScripts = (url) => {
      const file = String(url).startsWith('file:') ? new URL(String(url)).pathname : String(url);
      globalThis.ModuleFactory = evalLoaderScript(file, 'ModuleFactory');
    };
    const litert = await import('@litertjs/core');
    // A directory: LiteRT.js picks the relaxed-SIMD build when the engine has relaxed SIMD
    // (Node 20: --experimental-wasm-relaxed-simd) and the compat build otherwise.
    const liteRt = await litert.loadLiteRt(wasmDir + '/');
    return new LiteRtRunner(liteRt);
  }

  constructor(liteRt) {
    this.liteRt = liteRt;
    this.wasm = liteRt.liteRtWasm;
    this.env = liteRt.getDefaultEnvironment();
  }

  // The public CompiledModel wrapper only knows float32/int32/uint8 tensors (it throws on int8
  // models), so this drives the same wasm bindings it uses, with the model's own tensor types.
  async load(modelBytes) {
    const wasm = this.wasm;
    this.modelPtr = wasm._malloc(modelBytes.byteLength);
    wasm.HEAPU8.set(modelBytes, this.modelPtr);
    this.model = wasm.loadModel(this.env.liteRtEnvironment, this.modelPtr, modelBytes.byteLength);
    if (!this.model) throw new Error('LiteRT could not load the model');
    this.compiled = await wasm.compileModel(this.env.liteRtEnvironment, this.model, {
      environment: this.env,
      accelerator: 'wasm',
      cpuOptions: { numThreads: wasm.getThreadCount() },
      gpuOptions: {},
      webNNOptions: {},
    });
    if (!this.compiled) throw new Error('LiteRT could not compile the model');
    const sig = this.model.getSignature(0);
    const names = (v) => {
      const out = [];
      for (let i = 0; i < v.size(); i++) out.push(v.get(i));
      v.delete();
      return out;
    };
    this.inputs = names(sig.inputNames()).map((name, i) =>
      this.describe(name, this.model.getInputTensorType(0, i)));
    this.outputs = names(sig.outputNames()).map((name, i) =>
      this.describe(name, this.model.getOutputTensorType(0, i)));
    sig.delete();
  }

  describe(name, tensorType) {
    const layout = tensorType.layout();
    const dimsVec = layout.dimensions();
    const shape = [];
    for (let i = 0; i < dimsVec.size(); i++) shape.push(dimsVec.get(i));
    dimsVec.delete();
    layout.delete();
    const et = tensorType.elementType().value;
    const dtype = LITERT_DTYPES[et] ?? `element_type_${et}`;
    return { name, dtype, shape, tensorType };
  }

  async run(inputBytes) {
    const wasm = this.wasm;
    const buffers = inputBytes.map((bytes, i) => {
      const tt = this.inputs[i].tensorType;
      const buf = wasm.LiteRtTensorBuffer.createManaged(
        this.env.liteRtEnvironment, wasm.LiteRtTensorBufferType.HOST_MEMORY, tt, bytes.byteLength);
      const ptr = buf.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
      try {
        wasm.HEAPU8.set(bytes, ptr);
      } finally {
        buf.unlock();
      }
      return buf;
    });
    const outBuffers = await this.compiled.run(0, buffers);
    const outputs = outBuffers.map((buf, i) => {
      const ptr = buf.lock(wasm.LiteRtTensorBufferLockMode.READ);
      let bytes;
      try {
        bytes = wasm.HEAPU8.slice(ptr, ptr + buf.packedSize());
      } finally {
        buf.unlock();
      }
      buf.delete();
      const o = this.outputs[i];
      return { name: o.name, dtype: o.dtype, shape: o.shape, bytes };
    });
    buffers.forEach((b) => b.delete());
    return outputs;
  }
}

// ---------------------------------------------------------------- tfjs-tflite
class TfjsRunner {
  static async create() {
    const wasmDir = path.join(NODE_MODULES, '@tensorflow/tfjs-tflite/wasm');
    // tfjs-tflite believes it is in a web worker when there is no `window`: it importScripts()
    // "<path>tflite_web_api_cc[_simd][_threaded].js" and calls self.tflite_web_api_ModuleFactory.
    // Serve the single-threaded build (the threaded one needs web Workers) from node_modules and
    // hand it the .wasm bytes, so its fetch() is never used.
    globalThis.self = globalThis;
    globalThis.location ??= new URL('file:///');
    globalThis.importScripts = (url) => {
      const base = path.basename(new URL(String(url), 'file:///').pathname).replace('_threaded', '');
      const file = path.join(wasmDir, base);
      const factory = evalLoaderScript(file, 'tflite_web_api_ModuleFactory');
      const wasmBinary = fs.readFileSync(file.replace(/\.js$/, '.wasm'));
      globalThis.tflite_web_api_ModuleFactory = (moduleArg = {}) => factory({ ...moduleArg, wasmBinary });
    };
    const tflite = require('@tensorflow/tfjs-tflite');
    return new TfjsRunner(tflite);
  }

  constructor(tflite) {
    this.tflite = tflite;
  }

  async load(modelBytes) {
    // TFLiteModel.predict converts through tfjs tensors (no uint8/int8 there); its modelRunner
    // (TFLite Web API) exposes each tensor's own typed view into wasm memory, used as is.
    this.model = await this.tflite.loadTFLiteModel(modelBytes.slice().buffer, { numThreads: 1 });
    this.runner = this.model.modelRunner;
    const info = (t) => ({
      name: t.name,
      dtype: t.dataType,
      shape: t.shape === '' ? [] : t.shape.split(',').map(Number),
    });
    this.inputs = this.runner.getInputs().map(info);
    this.outputs = this.runner.getOutputs().map(info);
  }

  async run(inputBytes) {
    const ins = this.runner.getInputs();
    ins.forEach((t, i) => {
      const view = t.data();
      new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(inputBytes[i]);
    });
    if (!this.runner.infer()) throw new Error('tfjs-tflite: inference failed');
    return this.runner.getOutputs().map((t, i) => {
      const view = t.data();
      const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
      return { ...this.outputs[i], bytes };
    });
  }
}

// ---------------------------------------------------------------- main
async function main() {
  // LiteRT.js always looks for WebGPU and NPU accelerators first; Node has neither, and the
  // wasm (CPU) path is the one we want, so those two notices are dropped.
  const log = captureConsole({
    ignore: [/^Failed to create default WebGPU device/, /NPU accelerator could not be loaded/],
  });
  const args = parseArgs(process.argv.slice(2), { runtimes: ['litert', 'tfjs'] });
  const failOnError = (stage) => {
    if (/ERROR:/.test(log.text())) {
      throw new Error(`${args.runtime} printed ERROR: during ${stage} (see stderr)`);
    }
  };
  blockNetwork();
  const modelBytes = readModel(args.model);
  const runner = args.runtime === 'litert' ? await LiteRtRunner.create() : await TfjsRunner.create();
  const timing = { runtime_ready: sinceStart() };
  try {
    await runner.load(modelBytes);
  } catch (e) {
    throw new Error(`${args.runtime} failed to load ${args.model}: ${e?.message ?? e}`);
  }
  failOnError('model load');
  timing.model_loaded = sinceStart();
  const specs = (list) => list.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  const result = { runtime: args.runtime, inputs: specs(runner.inputs) };
  if (args.describe) {
    emit({ ...result, outputs: specs(runner.outputs) });
    return;
  }
  const inputs = readInputs(args.inputs, result.inputs).map((x) => x.bytes);
  const t0 = performance.now();
  const outputs = await runner.run(inputs);
  timing.inference = Math.round((performance.now() - t0) * 10) / 10;
  failOnError('inference');
  emit({ ...result, outputs: writeOutputs(args.outDir, outputs), timing_ms: timing });
}

await finish(main());
