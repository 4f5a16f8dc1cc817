// Self-test of the oracle harness: node --test tools/oracle/
// Runs the runners as the C++ tests do (a child node process each) on a real uint8 MobileNet
// from ../shared/data (skipped when that folder is absent) and on a tiny ONNX model built here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createRequire } from 'node:module';
import { ORACLE_DIR } from './common.mjs';
import { tinyOnnxModel } from './tiny_onnx.mjs';

const require = createRequire(import.meta.url);
// ../shared/data beside the checkout, or $PCV_SHARED_DATA (as tests/support/paths.cc does).
const SHARED = process.env.PCV_SHARED_DATA || path.resolve(ORACLE_DIR, '../../../shared/data');
const CORAL = path.join(SHARED, 'pretrained/mobilenet-tflite-coral');
const MOBILENET = path.join(CORAL, 'mobilenet_v1_0.25_128_quant.tflite');
const HEAD = path.join(CORAL, 'mobilenet_quant_v1_224_head_layers.tflite');
const noCoral = fs.existsSync(MOBILENET) ? false : `needs ${CORAL} (../shared/data absent)`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcv_oracle_selftest_'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function runner(script, args) {
  const r = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', path.join(ORACLE_DIR, script), ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  return { status: r.status, stderr: r.stderr, result: line ? JSON.parse(line) : null };
}

// A smooth deterministic "image": a random pattern drives the softmax to a near-one-hot output.
function testImage(h, w) {
  const b = Buffer.alloc(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        b[(y * w + x) * 3 + c] = Math.round(127.5 + 127.5 * Math.sin(x * (c + 1) * 0.07 + y * 0.05 * (3 - c) + c));
      }
    }
  }
  return b;
}

test('LiteRT.js and tfjs-tflite agree on a uint8 MobileNet', { skip: noCoral }, () => {
  const input = path.join(tmp, 'img128.bin');
  fs.writeFileSync(input, testImage(128, 128));
  const outs = {};
  for (const rt of ['litert', 'tfjs']) {
    const outDir = path.join(tmp, rt);
    const r = runner('run_tflite.mjs', ['--model', MOBILENET, '--runtime', rt, '--input', input, '--out-dir', outDir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.result.runtime, rt);
    assert.deepEqual(r.result.inputs, [{ name: 'input', dtype: 'uint8', shape: [1, 128, 128, 3] }]);
    assert.equal(r.result.outputs.length, 1);
    const o = r.result.outputs[0];
    assert.equal(o.dtype, 'uint8');
    assert.deepEqual(o.shape, [1, 1001]);
    assert.equal(o.file, path.join(outDir, 'out0.bin'));
    outs[rt] = fs.readFileSync(o.file);
  }
  assert.equal(outs.litert.length, 1001);
  assert.ok(outs.litert.some((v) => v !== 0), 'LiteRT output is all zero');
  const maxDiff = Math.max(...[...outs.litert].map((v, i) => Math.abs(v - outs.tfjs[i])));
  assert.ok(maxDiff <= 1, `runtimes differ by ${maxDiff} steps`);
});

test('--describe lists inputs and outputs without running', { skip: noCoral }, () => {
  const r = runner('run_tflite.mjs', ['--model', MOBILENET, '--runtime', 'litert', '--describe']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.result.outputs, [{ name: 'MobilenetV1/Predictions/Reshape_1', dtype: 'uint8', shape: [1, 1001] }]);
});

test('an input of the wrong byte size fails', { skip: noCoral }, () => {
  const input = path.join(tmp, 'short.bin');
  fs.writeFileSync(input, Buffer.alloc(100));
  for (const rt of ['litert', 'tfjs']) {
    const r = runner('run_tflite.mjs', ['--model', MOBILENET, '--runtime', rt, '--input', input, '--out-dir', tmp]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /needs 49152 bytes/);
  }
});

test('a model that does not load fails', () => {
  const junk = path.join(tmp, 'junk.tflite');
  fs.writeFileSync(junk, Buffer.from('not a flatbuffer at all'));
  for (const rt of ['litert', 'tfjs']) {
    const r = runner('run_tflite.mjs', ['--model', junk, '--runtime', rt, '--describe']);
    assert.notEqual(r.status, 0, `${rt} accepted junk`);
    assert.equal(r.result, null);
  }
});

// The trap this harness exists for: when a kernel fails to prepare, LiteRT.js logs "ERROR:" and
// still returns (zeroed) outputs. Break the classifier head's input depth (1024 -> 1000) so its
// CONV_2D cannot prepare, and expect a failure from both runtimes.
test('a kernel failure (runtime prints ERROR:) fails', { skip: noCoral }, () => {
  const bytes = fs.readFileSync(HEAD);
  const shape = Buffer.alloc(20);
  [4, 1, 1, 1, 1024].forEach((v, i) => shape.writeInt32LE(v, i * 4));
  const at = bytes.indexOf(shape);
  assert.ok(at >= 0 && bytes.indexOf(shape, at + 1) < 0, 'expected one [1,1,1,1024] shape vector');
  bytes.writeInt32LE(1000, at + 16);
  const broken = path.join(tmp, 'broken_head.tflite');
  fs.writeFileSync(broken, bytes);
  const input = path.join(tmp, 'in1000.bin');
  fs.writeFileSync(input, Buffer.alloc(1000, 7));
  for (const rt of ['litert', 'tfjs']) {
    const r = runner('run_tflite.mjs', ['--model', broken, '--runtime', rt, '--input', input, '--out-dir', path.join(tmp, 'broken')]);
    assert.notEqual(r.status, 0, `${rt} accepted a model whose CONV_2D cannot prepare`);
    assert.match(r.stderr, /ERROR:/);
    assert.equal(r.result, null);
  }
});

test('onnxruntime-node runs a tiny ONNX model', () => {
  const model = path.join(tmp, 'tiny.onnx');
  fs.writeFileSync(model, tinyOnnxModel());
  const input = path.join(tmp, 'x.bin');
  fs.writeFileSync(input, Buffer.from(new Float32Array([0, 0, 0, 1, 3, -1]).buffer));
  const r = runner('run_onnx.mjs', ['--model', model, '--input', input, '--out-dir', path.join(tmp, 'onnx')]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.result.inputs, [{ name: 'x', dtype: 'float32', shape: [2, 3] }]);
  const o = r.result.outputs[0];
  assert.deepEqual([o.name, o.dtype, o.shape], ['y', 'float32', [2, 3]]);
  const y = new Float32Array(new Uint8Array(fs.readFileSync(o.file)).buffer);
  assert.deepEqual([...y], [1, 0, 0.5, 2, 1, 0]); // relu(x + [1, -2, 0.5])
});

test('report tooling: chart.js and playwright-core drive Debian chromium offline', async (t) => {
  const chartJs = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');
  assert.ok(fs.existsSync(chartJs));
  const { chromium } = require('playwright-core');
  const exe = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  if (!exe) return t.skip('no Debian chromium (apt-get install chromium)');
  const page = path.join(tmp, 'chart.html');
  fs.writeFileSync(page, `<!doctype html><canvas id=c width=200 height=100></canvas>
<script src="${new URL(`file://${chartJs}`)}"></script><script>
new Chart(document.getElementById('c'), {type: 'bar', data: {labels: ['a', 'b'],
  datasets: [{label: 'x', data: [1, 2]}]}, options: {animation: false, responsive: false}});
</script>`);
  const browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox'] });
  try {
    const tab = await browser.newPage();
    await tab.goto(`file://${page}`);
    assert.equal(await tab.evaluate(() => globalThis.Chart?.version), '4.6.1');
    const inked = await tab.evaluate(() => {
      const c = document.getElementById('c');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) n += d[i] > 0 ? 1 : 0;
      return n;
    });
    assert.ok(inked > 500, `chart drew only ${inked} pixels`);
  } finally {
    await browser.close();
  }
});
