import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, canonicalJson } from '../../src/data/dataset.ts';
import { POSITIONS } from '../../src/data/examples.ts';
import type { DatasetParams } from '../../src/data/params.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';

const AR: DatasetParams = { task: { kind: 'ar', pairs: 3, numKeys: 16, numValues: 16, heldOutFraction: 0.2 }, sizes: { train: 256, dev: 32, test: 32, gen: 32 }, seed: 42 };
const ATR: DatasetParams = { task: { kind: 'atr', numTerminals: 20, maxRhsLen: 5 }, sizes: { train: 256, dev: 32, test: 32 }, seed: 42 };

const tmp = (): string => mkdtempSync(join(tmpdir(), 'mecheval-data-'));
const digests = (dir: string): Record<string, string> =>
  Object.fromEntries(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));

function withBuilt<T>(params: DatasetParams, f: (dir: string) => T): T {
  const dir = tmp();
  try { buildDataset(params, dir); return f(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('every split file holds the int32 tensors of issue 3 with consistent shapes, padding and counterfactuals', () => {
  for (const params of [AR, ATR]) {
    withBuilt(params, (dir) => {
      const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
      const splits = params.task.kind === 'ar' ? ['dev', 'gen', 'test', 'train'] : ['dev', 'test', 'train'];
      assert.deepEqual(Object.keys(meta.splits).sort(), splits);
      for (const split of splits) {
        const { tensors: t, metadata } = readSafetensors(join(dir, `${split}.safetensors`));
        assert.equal(metadata.split, split);
        const N = params.sizes[split as 'train']!;
        const W = meta.width as number;
        const names = ['answers', 'lengths', 'tokens', 'tokens_key_corrupted', 'tokens_value_corrupted', ...POSITIONS.map((p) => `pos_${p}`)];
        assert.deepEqual(Object.keys(t).sort(), names.sort());
        for (const name of names) {
          assert.equal(t[name]!.dtype, 'I32', name);
          assert.deepEqual(t[name]!.shape, name.startsWith('tokens') ? [N, W] : [N], name);
        }
        for (let i = 0; i < N; i++) {
          const len = t.lengths!.data[i] as number;
          for (let j = 0; j < W; j++) {
            const tok = t.tokens!.data[i * W + j] as number;
            if (j >= len) assert.equal(tok, 0, `${split} ${i}: padding at ${j} is ${tok}`);
            else assert.notEqual(tok, 0, `${split} ${i}: PAD inside the document at ${j}`);
            const k = t.tokens_key_corrupted!.data[i * W + j];
            const v = t.tokens_value_corrupted!.data[i * W + j];
            assert.equal(k !== tok, j === t.pos_key!.data[i], `${split} ${i}: key counterfactual differs at ${j}`);
            assert.equal(v !== tok, j === t.pos_value!.data[i], `${split} ${i}: value counterfactual differs at ${j}`);
          }
          assert.equal(t.answers!.data[i], t.tokens!.data[i * W + (t.pos_answer!.data[i] as number)]);
          assert.equal(t.pos_query!.data[i], len - 3);
        }
      }
    });
  }
});

test('the files read with nothing but a JSON parser and little-endian int32 (what numpy does)', () => {
  withBuilt(AR, (dir) => {
    const bytes = readFileSync(join(dir, 'dev.safetensors'));
    const hlen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString('utf8'));
    const { dtype, shape, data_offsets: [b, e] } = header.tokens;
    assert.equal(dtype, 'I32');
    assert.deepEqual(shape, [32, 11]);
    const first = bytes.readInt32LE(8 + hlen + b);
    assert.equal(first, 1, 'the first token of the first document is <bos>');
    assert.equal(e - b, 32 * 11 * 4);
  });
});

test('same params ⇒ byte-identical files; meta.json is canonical (sorted keys)', () => {
  for (const params of [AR, ATR]) {
    const a = withBuilt(params, digests);
    const b = withBuilt(params, digests);
    assert.deepEqual(a, b);
  }
  withBuilt(ATR, (dir) => {
    const text = readFileSync(join(dir, 'meta.json'), 'utf8');
    assert.equal(text, canonicalJson(JSON.parse(text)) + '\n');
  });
});

test('splits draw from independent streams: a bigger train set leaves dev and test unchanged', () => {
  const small = withBuilt(AR, digests);
  const big = withBuilt({ ...AR, sizes: { ...AR.sizes, train: 300 } }, digests);
  for (const f of ['dev.safetensors', 'test.safetensors', 'gen.safetensors']) assert.equal(big[f], small[f], f);
  assert.notEqual(big['train.safetensors'], small['train.safetensors']);
  const otherSeed = withBuilt({ ...AR, seed: 43 }, digests);
  assert.notEqual(otherSeed['dev.safetensors'], small['dev.safetensors']);
});

// Golden digests: any change to the generators' draws or the file layout shows up here. If a change is intended,
// bump DATASET_FORMAT when the layout changed, and update these with the printed values.
const GOLDEN: Record<string, Record<string, string>> = {
  ar: {
    'dev.safetensors': '91b4d30c380c0c2ab759485fa7a968010d06c34b7f25272e1df6e07714aa2e17',
    'gen.safetensors': '80de90051d9081a5017e0d23ba05747b73559de180c13b37073a7ebefb066c98',
    'meta.json': '768bf04a885efc85529fa293a01304644239a52b87be1fca9690aa1bd75a007f',
    'test.safetensors': '1bf2a13bda69ed0e81c2ef2e17020d7ca16a0d7d3f62d744bfbc1a72ed54aaa9',
    'train.safetensors': 'd220a684bfbe583dc5c08fdf6e5cad415170997c4904279198a7e6bc7baf5245',
  },
  atr: {
    'dev.safetensors': '4b43cb39f01c52bdb4af84963639027d74b615a31d4cd889a6c516068943322a',
    'grammar.safetensors': '001472ea957c5bcb0565d6390f2272bec66a755ce5573c75b9cea77273068912',
    'meta.json': '2c357c0cb442c850c64ddb879bc6144518d6919844973632c2b415b4997dfa05',
    'test.safetensors': '7c60390c50e394c1469fd0b5444a193395653af0fe6cb1960efb68a43af91adb',
    'train.safetensors': '6feb0a3b1d599874b658ec5cbfa27fe865431dd78c9ad48bbf6c2542cfa037af',
  },
};

test('golden SHA-256 digests of small AR and ATR datasets', () => {
  for (const [name, params] of [['ar', AR], ['atr', ATR]] as const) {
    const got = withBuilt(params, digests);
    assert.deepEqual(got, GOLDEN[name], `${name} digests changed; got ${JSON.stringify(got, null, 2)}`);
  }
});

test('progress reports documents over all splits, ending at the total', () => {
  const calls: [number, number][] = [];
  const dir = tmp();
  try {
    buildDataset({ ...AR, sizes: { train: 3000, dev: 10, test: 10, gen: 10 } }, dir, (s, t) => calls.push([s, t]));
  } finally { rmSync(dir, { recursive: true, force: true }); }
  assert.ok(calls.length >= 4);
  assert.deepEqual(calls.at(-1), [3030, 3030]);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i]![0] >= calls[i - 1]![0], 'progress went backwards');
});

test('invalid params fail before anything is written', () => {
  const dir = join(tmp(), 'out');
  assert.throws(() => buildDataset({ ...AR, task: { kind: 'ar', pairs: 20, numKeys: 16, numValues: 16 } }, dir), /\/task\/pairs: 20 pairs need 20 distinct keys, but numKeys is 16/);
  assert.equal(existsSync(dir), false);
});
