/**
 * @module wasm-kernels — two tfjs-backend-wasm 4.22 kernels replaced by equivalent ones that skip a needless copy.
 * Both return the same values bit for bit (tests/models/wasm-kernels.test.ts, with the originals as control).
 *
 *  - Identity. tfjs saves every tensor a gradient needs by cloning it (`Engine.clone` runs Identity), and the wasm
 *    Identity copies the buffer where the cpu backend shares it. A training step at the default study's size runs
 *    160–280 such clones. tfjs never writes into a kernel's input and the wasm backend reference-counts buffers (its
 *    Reshape shares), so Identity can share too. Measured (attention d 64 L 11 B 32, interleaved A/B on a shared
 *    2-core machine): one training step 70 → 53 ms.
 *  - Slice (also under SplitV and every tf.split). The wasm Slice is JS and first copies its *whole input* out of
 *    the heap (`readSync`), then copies the slice row by row with a new subarray per row. Slicing 3 column blocks
 *    out of a (352, 192) tensor took 650 µs, as long as 30 small kernels; this one, which copies each contiguous run
 *    inside the heap with copyWithin, 190 µs (3 row blocks of (352, 64): 184 → 37 µs). SplitV calls the module's
 *    own slice function, so it is replaced too, by the same loop over heapSlice.
 *  - GatherV2 (tf.gather: the token embedding, logitsAt's cells). The wasm kernel computes every element's source
 *    through generic strides: gathering 352 rows of 64 from the (35, 64) embedding took 1.2 ms, as long as the rest
 *    of the embedding's forward and backward together. This one copies each gathered row inside the heap with
 *    copyWithin: 20–40 µs.
 *
 * And two gradients, not kernels, on every backend (the switch is the same): tfjs's gradients of Sum and Mean
 * broadcast dy by multiplying it with `tf.ones(x.shape)`, an array filled in JS and then copied into the backend
 * (352 × 256 floats: 330 µs). Here the ones come from a Fill kernel (50 µs). Multiplying by one is exact, so the
 * gradients are the same bit for bit.
 */
import * as tf from '@tensorflow/tfjs';

interface WasmBackend {
  incRef(id: tf.DataId): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

const originals = new Map<string, tf.KernelFunc>();
const originalGrads = new Map<string, tf.GradConfig>();

/** Install (true) or remove (false: the backend's own kernels again) the kernels of this module. */
export function useFastWasmKernels(on: boolean): void {
  for (const [name, config] of [['Sum', sumGrad], ['Mean', meanGrad]] as const) {
    const current = tf.getGradient(name);
    if (current && current !== config) originalGrads.set(name, current);
    const want = on ? config : originalGrads.get(name);
    if (want && current !== want) tf.registerGradient(want);
  }
  for (const [name, fast] of [['Identity', shareIdentity], ['Slice', heapSlice], ['SplitV', heapSplitV], ['GatherV2', heapGather]] as const) {
    const config = tf.getKernel(name, 'wasm');
    if (!config) continue;
    if (config.kernelFunc !== fast) originals.set(name, config.kernelFunc);
    const kernelFunc = on ? fast : originals.get(name)!;
    if (config.kernelFunc === kernelFunc) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config, kernelFunc });
  }
}

const shareIdentity: tf.KernelFunc = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return originals.get('Identity')!(args); // strings live outside the heap
  (args.backend as unknown as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

const heapSlice: tf.KernelFunc = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
  if (x.dtype === 'string' || x.dtype === 'complex64' || x.shape.length === 0) return originals.get('Slice')!(args);
  const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size) as [number[], number[]];
  const backend = args.backend as unknown as WasmBackend;
  const out = backend.makeOutput(s, x.dtype);
  const n = s.reduce((a, v) => a * v, 1);
  if (n === 0) return out;
  // After makeOutput: its malloc may grow the heap and replace the buffer.
  const heap = x.dtype === 'bool' ? backend.wasm.HEAPU8 : new Int32Array(backend.wasm.HEAPU8.buffer);
  const unit = x.dtype === 'bool' ? 1 : 4;
  const src = backend.dataIdMap.get(x.dataId).memoryOffset / unit;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset / unit;
  const shape = x.shape, r = shape.length;
  // Runs: the innermost axes the slice takes whole, plus the first one it cuts, are contiguous in both.
  let j = r - 1;
  while (j > 0 && s[j] === shape[j]) j--;
  const strides = new Array<number>(r).fill(1);
  for (let k = r - 2; k >= 0; k--) strides[k] = strides[k + 1]! * shape[k + 1]!;
  const run = s[j]! * strides[j]!;
  const idx = new Array<number>(j).fill(0);
  for (let o = 0; o < n; o += run) {
    let from = src + b[j]! * strides[j]!;
    for (let k = 0; k < j; k++) from += (b[k]! + idx[k]!) * strides[k]!;
    heap.copyWithin(dst + o, from, from + run);
    for (let k = j - 1; k >= 0; k--) { if (++idx[k]! < s[k]!) break; idx[k] = 0; }
  }
  return out;
};

const heapSplitV: tf.KernelFunc = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
  if (x.dtype === 'string' || x.dtype === 'complex64') return originals.get('SplitV')!(args);
  const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((n) => {
    const size = [...x.shape];
    size[ax] = n;
    const out = heapSlice({ ...args, inputs: { x }, attrs: { begin: [...begin], size } }) as tf.TensorInfo;
    begin[ax]! += n;
    return out;
  });
};

const heapGather: tf.KernelFunc = (args) => {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
  if (batchDims !== 0 || x.dtype === 'string' || x.dtype === 'complex64' || indices.dtype !== 'int32' || tf.util.sizeFromShape(x.shape) === 0) {
    return originals.get('GatherV2')!(args); // an empty x included: the original returns it in its flattened shape
  }
  const backend = args.backend as unknown as WasmBackend;
  const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const dim = x.shape[ax]!;
  const n = tf.util.sizeFromShape(indices.shape);
  const outer = tf.util.sizeFromShape(x.shape.slice(0, ax)), inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
  const idxAt = () => new Int32Array(backend.wasm.HEAPU8.buffer, backend.dataIdMap.get(indices.dataId).memoryOffset, n);
  let idx = idxAt();
  for (let i = 0; i < n; i++) {
    const v = idx[i]!;
    if (!(v >= 0 && v <= dim - 1)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${dim - 1}]`); // as the original
  }
  const out = backend.makeOutput([...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)], x.dtype);
  if (outer * n * inner === 0) return out;
  // After makeOutput: its malloc may grow the heap and replace the buffer.
  idx = idxAt();
  const heap = x.dtype === 'bool' ? backend.wasm.HEAPU8 : new Int32Array(backend.wasm.HEAPU8.buffer); // bits, not values
  const unit = x.dtype === 'bool' ? 1 : 4;
  const src = backend.dataIdMap.get(x.dataId).memoryOffset / unit;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset / unit;
  for (let o = 0, d = dst; o < outer; o++) {
    const base = src + o * dim * inner;
    for (let i = 0; i < n; i++, d += inner) {
      const from = base + idx[i]! * inner;
      if (inner >= 16) heap.copyWithin(d, from, from + inner);
      else for (let c = 0; c < inner; c++) heap[d + c] = heap[from + c]!;
    }
  }
  return out;
};

/** (…) with the reduced axes kept as size 1: how dy of a reduction over `axis` broadcasts back onto x. */
function expandedShape(x: tf.Tensor, axis: number | number[]): number[] {
  const shape = x.shape.slice();
  for (const a of tf.util.parseAxisParam(axis, x.shape)) shape[a] = 1;
  return shape;
}

/** tfjs-core's Sum gradient with the ones from a Fill kernel: dx = reshape(dy) · 1. */
const sumGrad: tf.GradConfig = {
  kernelName: 'Sum',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const { axis } = attrs as unknown as { axis: number | number[] };
    const derX = tf.mul(tf.reshape(dy as tf.Tensor, expandedShape(x, axis)), tf.fill(x.shape, 1));
    return { x: () => derX };
  },
};

/** tfjs-core's Mean gradient with the ones from a Fill kernel: dx = (reshape(dy) · 1) / n, in that order. */
const meanGrad: tf.GradConfig = {
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const { axis } = attrs as unknown as { axis: number | number[] };
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const reduceSize = axes.reduce((a, ax) => a * x.shape[ax]!, 1);
    return { x: () => tf.div(tf.mul(tf.reshape(dy as tf.Tensor, expandedShape(x, axis)), tf.fill(x.shape, 1)), reduceSize) };
  },
};
