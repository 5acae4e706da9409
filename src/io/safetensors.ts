/**
 * @module safetensors — read and write the safetensors format (huggingface/safetensors).
 *
 * Layout, readable with numpy alone:
 *   bytes 0..8      u64 little-endian N = length of the JSON header
 *   bytes 8..8+N    JSON: { "<name>": { "dtype": "F32"|"I32"|…, "shape": [..], "data_offsets": [begin, end] }, …,
 *                           "__metadata__": { "<k>": "<string>" } }   (offsets relative to the byte after the header)
 *   then            the raw little-endian tensor bytes, back to back.
 * Tensors are written in sorted name order and the header is padded with spaces to a multiple of 8 bytes, as the
 * reference implementation does, so the same tensors always give the same bytes (content addressing relies on it).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.ts';

export type Dtype = 'F32' | 'F64' | 'I32' | 'I64' | 'U8' | 'I8' | 'I16' | 'U16' | 'U32' | 'BOOL';

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array;

export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TypedArray;
}

const BYTES: Record<Dtype, number> = { F32: 4, F64: 8, I32: 4, I64: 8, U8: 1, I8: 1, I16: 2, U16: 2, U32: 4, BOOL: 1 };

function view(dtype: Dtype, buf: ArrayBuffer, byteOffset: number, length: number): TypedArray {
  switch (dtype) {
    case 'F32': return new Float32Array(buf, byteOffset, length);
    case 'F64': return new Float64Array(buf, byteOffset, length);
    case 'I32': return new Int32Array(buf, byteOffset, length);
    case 'I64': return new BigInt64Array(buf, byteOffset, length);
    case 'U8': case 'BOOL': return new Uint8Array(buf, byteOffset, length);
    case 'I8': return new Int8Array(buf, byteOffset, length);
    case 'I16': return new Int16Array(buf, byteOffset, length);
    case 'U16': return new Uint16Array(buf, byteOffset, length);
    case 'U32': return new Uint32Array(buf, byteOffset, length);
  }
}

/** Convenience constructors that check the element count against the shape. */
export function f32(shape: number[], data: Float32Array | number[]): Tensor {
  return checked({ dtype: 'F32', shape, data: data instanceof Float32Array ? data : Float32Array.from(data) });
}
export function i32(shape: number[], data: Int32Array | number[]): Tensor {
  return checked({ dtype: 'I32', shape, data: data instanceof Int32Array ? data : Int32Array.from(data) });
}

function checked(t: Tensor): Tensor {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) throw new Error(`safetensors: shape [${t.shape}] needs ${n} elements, got ${t.data.length}`);
  return t;
}

/** Serialise tensors (+ string metadata) to bytes. Deterministic: sorted names, fixed padding. */
export function encode(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Buffer {
  if (!new Uint8Array(new Uint16Array([1]).buffer)[0]) throw new Error('safetensors: big-endian hosts are not supported');
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    header.__metadata__ = Object.fromEntries(Object.keys(metadata).sort().map((k) => [k, metadata[k]]));
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" is reserved and cannot name a tensor');
    const t = checked(tensors[name]!);
    const nbytes = t.data.length * BYTES[t.dtype];
    if (t.data.BYTES_PER_ELEMENT !== BYTES[t.dtype]) {
      throw new Error(`safetensors: tensor "${name}" has dtype ${t.dtype} but a ${t.data.constructor.name}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const hlen = Buffer.byteLength(json);
  const out = Buffer.alloc(8 + hlen + offset);
  out.writeBigUInt64LE(BigInt(hlen), 0);
  out.write(json, 8, 'utf8');
  let pos = 8 + hlen;
  for (const name of names) {
    const t = tensors[name]!;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

export interface Decoded {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** Parse safetensors bytes. Tensor data is copied into aligned typed arrays. */
export function decode(bytes: Uint8Array, source = '<buffer>'): Decoded {
  if (bytes.length < 8) throw new Error(`${source}: not a safetensors file (only ${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (8 + hlen > bytes.length) throw new Error(`${source}: header length ${hlen} exceeds file size ${bytes.length}`);
  let header: Record<string, { dtype: Dtype; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, hlen).toString('utf8'));
  } catch (e) {
    throw new Error(`${source}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  const base = 8 + hlen;
  const tensors: Record<string, Tensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = entry as Record<string, string>; continue; }
    const { dtype, shape, data_offsets } = entry as { dtype: Dtype; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) throw new Error(`${source}: tensor "${name}" has unsupported dtype ${dtype}`);
    const [b, e] = data_offsets;
    const n = shape.reduce((a, c) => a * c, 1);
    if (e - b !== n * BYTES[dtype] || base + e > bytes.length) {
      throw new Error(`${source}: tensor "${name}" offsets [${b}, ${e}] do not fit shape [${shape}] of ${dtype}`);
    }
    const copy = new ArrayBuffer(e - b);
    new Uint8Array(copy).set(bytes.subarray(base + b, base + e));
    tensors[name] = { dtype, shape, data: view(dtype, copy, 0, n) };
  }
  return { tensors, metadata };
}

export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encode(tensors, metadata));
}

export function readSafetensors(path: string): Decoded {
  return decode(readFileSync(path), path);
}
