// An exported dream (gym-dream export --runtime onnx: dream.json + three ONNX graphs) stepped by onnxruntime-web,
// and the seeded generator that draws its random numbers. The browser's counterpart of gym_dream_onnx/dream.py:
// the same graphs, inputs and kinds of noise (uniforms on [0, 1), standard normals), drawn in the manifest's order.
// The stream of numbers is this file's own (xoshiro128** seeded by splitmix32, Gaussians by Box-Muller), so a seed
// gives the same dream every time in the page, but not the dream numpy draws for that seed.
import * as ort from "./vendor/ort.wasm.bundle.min.mjs";

// One thread: no worker and no cross-origin isolation needed, so the page runs from any static host.
ort.env.wasm.numThreads = 1;
// The bundle holds its Emscripten loader and finds ort-wasm-simd-threaded.wasm beside itself (vendor/): wasmPaths is
// left unset, since a path prefix would make it fetch the separate loader file that is not vendored.

const TWO_PI = 2 * Math.PI;

/** A seeded generator of 32-bit integers (xoshiro128**), uniforms on [0, 1) and standard normals. */
export class Rng {
  constructor(seed) {
    let x = (Number(seed) >>> 0) ^ 0x9e3779b9;
    const splitmix = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.of(splitmix(), splitmix(), splitmix(), splitmix());
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
    this.spare = null;
  }

  nextU32() {
    const s = this.s;
    const r = s[1] * 5;
    const result = Math.imul(((r << 7) | (r >>> 25)) >>> 0, 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >>> 21);
    return result;
  }

  /** Uniform on [0, 1) with 24 random bits: exactly a float32, never 1. */
  uniform() {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Standard normal (Box-Muller: two uniforms give two normals; the second is kept for the next call). */
  normal() {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(TWO_PI * u2);
    return r * Math.cos(TWO_PI * u2);
  }

  /** An integer in [0, n). */
  integer(n) {
    return Math.floor(this.uniform() * n);
  }
}

const GRAPHS = ["initial_state", "imagine", "decode"];

function size(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/** The three graphs of an exported dream, one env at a time (batch 1). */
export class Dream {
  static async load(base) {
    const response = await fetch(new URL("dream.json", base));
    if (!response.ok) throw new Error(`no dream.json at ${base}: ${response.status}`);
    const manifest = await response.json();
    if (manifest.format_version !== 1) throw new Error(`dream.json format ${manifest.format_version}; this page reads 1`);
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const sessions = {};
    for (const g of GRAPHS) {
      const bytes = await (await fetch(new URL(manifest.graphs[g], base))).arrayBuffer();
      sessions[g] = await ort.InferenceSession.create(new Uint8Array(bytes), options);
    }
    return new Dream(manifest, sessions);
  }

  constructor(manifest, sessions) {
    this.manifest = manifest;
    this.sessions = sessions;
    this.stateNames = Object.keys(manifest.state);
    this.noise = Object.entries(manifest.noise).map(([name, v]) => [name, v.kind, v.shape]);
    this.discrete = manifest.action_space.type === "Discrete";
    this.actionDim = this.discrete ? 1 : size(manifest.action_space.shape);
    this.bankSize = manifest.bank_size;
    this.pixels = manifest.observation.pixels;
    this.observationShape = manifest.observation.shape;
  }

  /** One step's random numbers, each as the graph input of that name (kinds and order of the manifest). */
  drawNoise(rng) {
    const out = {};
    for (const [name, kind, shape] of this.noise) {
      const data = new Float32Array(size(shape));
      for (let i = 0; i < data.length; i++) data[i] = kind === "uniform" ? rng.uniform() : rng.normal();
      out[name] = data;
    }
    return out;
  }

  /** The bank row ``index`` as a start state: {state, features}. */
  async initialState(index) {
    const feed = { index: new ort.Tensor("int64", BigInt64Array.of(BigInt(index)), [1]) };
    const outs = await this.sessions.initial_state.run(feed);
    const state = {};
    for (const k of this.stateNames) state[k] = outs[k];
    return { state, features: outs.features.data };
  }

  /** One dream step: action (an integer, or an array for Box spaces), tau, and the step's noise (drawNoise). */
  async imagine(state, action, tau, noise) {
    const feed = { ...state };
    feed.action = this.discrete
      ? new ort.Tensor("int64", BigInt64Array.of(BigInt(action)), [1])
      : new ort.Tensor("float32", Float32Array.from(action), [1, this.actionDim]);
    feed.tau = new ort.Tensor("float32", Float32Array.of(tau), [1]);
    for (const [name, , shape] of this.noise) feed[name] = new ort.Tensor("float32", noise[name], [1, ...shape]);
    const outs = await this.sessions.imagine.run(feed);
    const next = {};
    for (const k of this.stateNames) next[k] = outs[`next_${k}`];
    return {
      state: next,
      reward: outs.reward.data[0],
      terminationProb: outs.termination_prob.data[0],
      features: outs.features.data,
    };
  }

  /** The predicted observation: (H*W*3) uint8 for pixel models, the vector otherwise. */
  async decode(state) {
    const outs = await this.sessions.decode.run(state);
    return outs.observation.data;
  }
}
