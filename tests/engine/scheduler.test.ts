import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Slots, schedule } from '../../src/engine/scheduler.ts';

const never = new AbortController().signal;

test('slots never exceed jobs, cpus or gpus, and hand out distinct GPU indices', async () => {
  const slots = new Slots({ jobs: 3, cpus: 4, gpus: 2 });
  let cpu = 0;
  let gpu = 0;
  let jobs = 0;
  let peak = { cpu: 0, gpu: 0, jobs: 0 };
  const held = new Set<number>();
  const work = async (res: { cpu: number; gpu: number }) => {
    const g = await slots.acquire(res, never);
    cpu += res.cpu;
    gpu += g.gpus.length;
    jobs++;
    for (const i of g.gpus) {
      assert.ok(!held.has(i), `gpu ${i} handed out twice`);
      held.add(i);
    }
    peak = { cpu: Math.max(peak.cpu, cpu), gpu: Math.max(peak.gpu, gpu), jobs: Math.max(peak.jobs, jobs) };
    await new Promise((r) => setImmediate(r));
    for (const i of g.gpus) held.delete(i);
    cpu -= res.cpu;
    gpu -= g.gpus.length;
    jobs--;
    g.release();
  };
  await Promise.all([...Array(20)].map((_, i) => work({ cpu: 1 + (i % 3), gpu: i % 2 })));
  assert.ok(peak.cpu <= 4 && peak.gpu <= 2 && peak.jobs <= 3, JSON.stringify(peak));
  assert.ok(peak.jobs >= 2, 'some parallelism happened');
});

test('an aborted waiter leaves the queue', async () => {
  const slots = new Slots({ jobs: 1, cpus: 1, gpus: 0 });
  const g = await slots.acquire({ cpu: 1, gpu: 0 }, never);
  const ac = new AbortController();
  const p = slots.acquire({ cpu: 1, gpu: 0 }, ac.signal);
  ac.abort(new Error('stop'));
  await assert.rejects(p, /stop/);
  g.release();
  (await slots.acquire({ cpu: 1, gpu: 0 }, never)).release();
});

const dag: Record<string, string[]> = { a: [], b: ['a'], c: ['a'], d: ['b', 'c'], x: [], y: ['x'] };
const order = ['a', 'x', 'b', 'c', 'y', 'd'];

test('dependencies finish before dependents start', async () => {
  const done = new Set<string>();
  const res = await schedule(order, (id) => dag[id]!, async (id) => {
    for (const d of dag[id]!) assert.ok(done.has(d), `${id} started before ${d}`);
    await new Promise((r) => setTimeout(r, 1));
    done.add(id);
    return 'ok';
  }, { keepGoing: false });
  assert.deepEqual([...res.values()].filter((r) => r !== 'ok'), []);
  assert.equal(done.size, 6);
});

test('first failure stops everything; --keep-going only skips dependents', async () => {
  const run = (keepGoing: boolean) =>
    schedule(order, (id) => dag[id]!, async (id, signal) => {
      if (id === 'b') return 'failed';
      if (id === 'x') {
        // long-running unrelated stage: must be cancelled without keep-going
        await new Promise((r) => setTimeout(r, 50));
        return signal.aborted ? 'cancelled' : 'ok';
      }
      return 'ok';
    }, { keepGoing });
  const stop = await run(false);
  assert.equal(stop.get('b'), 'failed');
  assert.equal(stop.get('d'), 'cancelled');
  assert.equal(stop.get('x'), 'cancelled');
  assert.equal(stop.get('y'), 'cancelled');
  const go = await run(true);
  assert.equal(go.get('b'), 'failed');
  assert.equal(go.get('d'), 'cancelled');
  assert.equal(go.get('c'), 'ok');
  assert.equal(go.get('y'), 'ok');
});
