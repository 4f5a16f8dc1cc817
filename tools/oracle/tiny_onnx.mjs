// Builds a tiny ONNX model in memory (hand-encoded protobuf) so the ONNX oracle can be checked
// without any model file: y = Relu(x + c), x float32[N,3], c = [1, -2, 0.5]. Tests only.
const varint = (n) => {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};
const bytes = (x) => (typeof x === 'string' ? [...Buffer.from(x, 'utf8')] : [...x]);
const field = (num, payload) => [...varint((num << 3) | 2), ...varint(payload.length), ...payload];
const int = (num, v) => [...varint(num << 3), ...varint(v)];

const dim = (d) => field(1, typeof d === 'number' ? int(1, d) : field(2, bytes(d)));
const valueInfo = (name, elemType, dims) =>
  field(1, bytes(name)).concat(field(2, field(1, [...int(1, elemType), ...field(2, dims.flatMap(dim))])));
const node = (op, ins, outs) => [...ins.flatMap((i) => field(1, bytes(i))), ...outs.flatMap((o) => field(2, bytes(o))), ...field(4, bytes(op))];

export function tinyOnnxModel() {
  const c = new Float32Array([1, -2, 0.5]);
  const init = [...int(1, 3), ...int(2, 1), ...field(8, bytes('c')), ...field(9, bytes(new Uint8Array(c.buffer)))];
  const graph = [
    ...field(1, node('Add', ['x', 'c'], ['s'])),
    ...field(1, node('Relu', ['s'], ['y'])),
    ...field(2, bytes('tiny')),
    ...field(5, init),
    ...field(11, valueInfo('x', 1, ['N', 3])),
    ...field(12, valueInfo('y', 1, ['N', 3])),
  ];
  const model = [...int(1, 8), ...field(2, bytes('pocketcv-oracle-selftest')), ...field(7, graph), ...field(8, [...field(1, []), ...int(2, 13)])];
  return new Uint8Array(model);
}
