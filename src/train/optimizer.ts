/**
 * @module optimizer — AdamW with decoupled weight decay, as torch.optim.AdamW (paper-setup.md §4: β 0.9/0.999,
 * ε 1e-8, weight decay 0 by default). tf.train.adam has no decoupled decay and hides its moments; this one keeps
 * m and v as named tensors so a resumable checkpoint can save and restore them exactly.
 *
 * One step, for every parameter p with gradient g (t = step count after this update, 1-based):
 *   p ← p − lr·wd·p
 *   m ← β1·m + (1−β1)·g            v ← β2·v + (1−β2)·g²
 *   p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
 */
import { tf, type Tensor } from '../models/tf.ts';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface AdamWState {
  step: number;
  m: Map<string, Tensor>;
  v: Map<string, Tensor>;
}

export class AdamW {
  readonly cfg: AdamWConfig;
  state: AdamWState = { step: 0, m: new Map(), v: new Map() };

  constructor(cfg: Partial<AdamWConfig> = {}) {
    this.cfg = { ...ADAMW_DEFAULTS, ...cfg };
  }

  /**
   * Apply one update with learning rate `lr`. `vars` maps a stable name (the state-dict name; moments are kept under
   * it) to the variable; `grads` is keyed by `variable.name`, as tf.variableGrads returns it.
   */
  apply(vars: Map<string, tf.Variable>, grads: Record<string, Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.cfg;
    const t = ++this.state.step;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    for (const [name, p] of vars) {
      const g = grads[p.name];
      if (!g) continue; // parameter unused by this loss: torch leaves it (and its moments) untouched
      const m0 = this.state.m.get(name);
      const v0 = this.state.v.get(name);
      const [m, v] = tf.tidy(() => [
        m0 ? tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1)) : tf.mul(g, 1 - beta1),
        v0 ? tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2)) : tf.mul(tf.square(g), 1 - beta2),
      ]);
      tf.keep(m!);
      tf.keep(v!);
      m0?.dispose();
      v0?.dispose();
      this.state.m.set(name, m!);
      this.state.v.set(name, v!);
      const next = tf.tidy(() => {
        const decayed = weightDecay !== 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const update = tf.div(tf.div(m!, bc1), tf.add(tf.sqrt(tf.div(v!, bc2)), eps));
        return tf.sub(decayed, tf.mul(update, lr));
      });
      p.assign(next);
      next.dispose();
    }
  }

  dispose(): void {
    for (const t of [...this.state.m.values(), ...this.state.v.values()]) t.dispose();
    this.state = { step: 0, m: new Map(), v: new Map() };
  }
}
