/**
 * @module params — the model's parameters, keyed by their PyTorch state-dict names (state-dict.md), with seeded
 * initialisers. Each parameter draws from a stream derived from (model seed, parameter name), so adding a parameter
 * never changes the initial values of the others.
 */
import { tf, type Tensor } from './tf.ts';

export type Init =
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'constant'; value: number }
  | { kind: 'values'; values: Float32Array }; // computed in JS (A_log = log 1..S, dt bias, shift taps, …)

/** PyTorch's default init for nn.Linear / nn.Conv1d weights and biases: U(±1/√fan_in). */
export function torchDefault(fanIn: number): Init {
  const bound = 1 / Math.sqrt(fanIn);
  return { kind: 'uniform', low: -bound, high: bound };
}

/** FNV-1a over the name, mixed with the seed: a stable 31-bit seed per parameter. */
export function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 2147483647;
}

export interface ParamScope {
  readonly prefix: string;
  /** Create `prefix + name`. Shapes follow PyTorch (Linear [out, in], depthwise Conv1d [C, 1, K]). */
  param(name: string, shape: number[], init: Init): tf.Variable;
  scope(sub: string): ParamScope;
}

let stores = 0;

/**
 * Parameters keyed by state-dict name. tfjs variable names are process-global, so each variable is registered as
 * `<state-dict name>#<store id>` (two models may live in one process); gradients from tf.variableGrads are keyed by
 * that `variable.name`, the maps here by the state-dict name.
 */
export class ParamStore {
  readonly vars = new Map<string, tf.Variable>();
  readonly id = ++stores;
  constructor(readonly seed: number) {}

  create(name: string, shape: number[], init: Init): tf.Variable {
    if (this.vars.has(name)) throw new Error(`parameter '${name}' is created twice`);
    const n = shape.reduce((a, b) => a * b, 1);
    const s = streamSeed(this.seed, name);
    let value: Tensor;
    switch (init.kind) {
      case 'normal': value = tf.randomNormal(shape, init.mean ?? 0, init.std, 'float32', s); break;
      case 'uniform': value = tf.randomUniform(shape, init.low, init.high, 'float32', s); break;
      case 'constant': value = tf.fill(shape, init.value); break;
      case 'values':
        if (init.values.length !== n) throw new Error(`parameter '${name}': ${init.values.length} values for shape [${shape}]`);
        value = tf.tensor(init.values, shape, 'float32');
        break;
    }
    const v = tf.variable(value, true, `${name}#${this.id}`);
    value.dispose();
    this.vars.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter '${name}'`);
    return v;
  }

  scope(prefix: string): ParamScope {
    return {
      prefix,
      param: (name, shape, init) => this.create(prefix + name, shape, init),
      scope: (sub) => this.scope(prefix + sub),
    };
  }

  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
