// Shared plumbing for the oracle runners (run_tflite.mjs, run_onnx.mjs): argument parsing,
// console capture, raw tensor I/O and the JSON line on stdout. Tests only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ORACLE_DIR = path.dirname(fileURLToPath(import.meta.url));
export const NODE_MODULES = path.join(ORACLE_DIR, 'node_modules');

// Bytes per element for the dtype names the runners report (lower-case TFLite/ONNX names).
export const DTYPE_BYTES = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int8: 1, uint8: 1, int16: 2, uint16: 2,
  int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1,
};

export class UsageError extends Error {}

export function parseArgs(argv, { runtimes }) {
  const args = { model: null, runtime: null, inputs: [], outDir: null, describe: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') args.model = value();
    else if (a === '--runtime') args.runtime = value();
    else if (a === '--input') args.inputs.push(value());
    else if (a === '--out-dir') args.outDir = value();
    else if (a === '--describe') args.describe = true;
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!args.model) throw new UsageError('--model is required');
  if (runtimes) {
    args.runtime ??= runtimes[0];
    if (!runtimes.includes(args.runtime)) {
      throw new UsageError(`--runtime must be one of ${runtimes.join(', ')}`);
    }
  }
  if (!args.describe && !args.outDir) throw new UsageError('--out-dir is required (or --describe)');
  return args;
}

// Routes every console.* call (the wasm modules print through console) to stderr and keeps the
// text, so a runner can fail when a runtime reported an error but carried on. Our own result
// goes to stdout through process.stdout.write only.
// `ignore` drops known-harmless messages (e.g. LiteRT.js looking for a WebGPU device) entirely.
export function captureConsole({ ignore = [] } = {}) {
  const lines = [];
  const sink = (...parts) => {
    const text = parts.map((p) => (typeof p === 'string' ? p : p instanceof Error ? p.stack : safeString(p))).join(' ');
    if (ignore.some((re) => re.test(text))) return;
    lines.push(text);
    process.stderr.write(text.endsWith('\n') ? text : text + '\n');
  };
  for (const m of ['log', 'info', 'warn', 'error', 'debug', 'trace']) console[m] = sink;
  return { text: () => lines.join('\n'), lines };
}

function safeString(v) {
  try {
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  } catch {
    return String(v);
  }
}

export function readModel(file) {
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new Error(`cannot read model ${file}: ${e.message}`);
  }
}

const isFixedDim = (d) => typeof d === 'number' && d >= 0;

export function elementCount(shape) {
  return shape.reduce((n, d) => n * d, 1);
}

// Reads the --input files and checks each one's byte size against the model's input spec. A
// single dynamic dimension (-1 or a symbolic name) is solved from the file size; the resolved
// shape is returned with the bytes.
export function readInputs(files, specs) {
  if (files.length !== specs.length) {
    throw new Error(`model has ${specs.length} input(s), got ${files.length} --input file(s)`);
  }
  return files.map((file, i) => {
    const spec = specs[i];
    const what = `input ${i} (${spec.name}, ${spec.dtype}[${spec.shape.join(',')}])`;
    const width = DTYPE_BYTES[spec.dtype];
    if (!width) throw new Error(`${what}: dtype ${spec.dtype} is not supported by the oracle`);
    let bytes;
    try {
      bytes = new Uint8Array(fs.readFileSync(file));
    } catch (e) {
      throw new Error(`${what}: cannot read ${file}: ${e.message}`);
    }
    const dynamic = spec.shape.filter((d) => !isFixedDim(d)).length;
    const fixed = elementCount(spec.shape.filter(isFixedDim)) * width;
    let shape = spec.shape;
    if (dynamic === 1 && fixed > 0 && bytes.byteLength % fixed === 0 && bytes.byteLength > 0) {
      shape = spec.shape.map((d) => (isFixedDim(d) ? d : bytes.byteLength / fixed));
    } else if (dynamic > 0) {
      throw new Error(`${what}: cannot solve its dynamic dimensions from ${bytes.byteLength} bytes`);
    } else if (bytes.byteLength !== fixed) {
      throw new Error(`${what} needs ${fixed} bytes, ${file} has ${bytes.byteLength}`);
    }
    return { bytes, shape };
  });
}

export function writeOutputs(outDir, outputs) {
  fs.mkdirSync(outDir, { recursive: true });
  return outputs.map((o, i) => {
    const file = path.join(outDir, `out${i}.bin`);
    fs.writeFileSync(file, o.bytes);
    return { name: o.name, dtype: o.dtype, shape: o.shape, file };
  });
}

// The oracles run offline: every wasm file and model comes from disk. Any attempt to fetch is a
// bug in a loader shim, so make it fail loudly instead of reaching for the network.
export function blockNetwork() {
  globalThis.fetch = async (url) => {
    throw new Error(`oracle: network access blocked (tried to fetch ${url})`);
  };
}

// Milliseconds since process start (node startup included), for the "timing_ms" field.
export const sinceStart = () => Math.round(performance.now());

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Node keeps running while wasm runtimes hold handles (message ports, timers); the runners end
// explicitly once their result is written.
export async function finish(promise) {
  let code = 0;
  try {
    await promise;
  } catch (e) {
    process.stderr.write(`oracle: ${e instanceof UsageError ? 'usage: ' : ''}${e?.message ?? e}\n`);
    code = e instanceof UsageError ? 64 : 1;
  }
  process.stdout.write('', () => process.exit(code));
}
