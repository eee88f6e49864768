// The play page: the keyboard drives the dream, one step at a time, at the chosen speed.
// URL parameters (optional): fps=<n>|max, paused=1, seed=<n>, tau=<x>, autoreset=1 (an ended episode starts the next
// seed's at once, as the step-rate benchmark runs it).
import { Dream, Rng } from "./dream.js";
import { PixelView, VectorView } from "./view.js";

const $ = (id) => document.getElementById(id);
const MODEL = new URL("model/", location.href);
const PARAMS = new URLSearchParams(location.search);
const KEY_NAMES = { ArrowLeft: "←", ArrowRight: "→", ArrowUp: "↑", ArrowDown: "↓", Space: "Space", Period: "." };
const RATE_WINDOW_MS = 2000;
const AUTORESET = PARAMS.get("autoreset") === "1";

const game = {
  config: null, dream: null, view: null, rng: null, state: null,
  seed: 0, index: 0, t: 0, ret: 0, ended: null, running: true, fps: "30",
  tau: 1.0, lastTau: null, lastAction: null, steps: 0, stamps: [], modelMs: [],
};
const held = new Map(); // KeyboardEvent.code -> the order it was pressed in
let pressCount = 0;

// -- one thing at a time: steps and resets never overlap ------------------------------------------------------------
let chain = Promise.resolve();
function exclusive(fn) {
  chain = chain.then(fn).catch(fail);
  return chain;
}
let wake = null;
function wakeLoop() {
  if (wake) wake();
}

const channel = new MessageChannel();
const queued = [];
channel.port1.onmessage = () => queued.shift()();
// yield to the browser without setTimeout's 4 ms clamp (so "max" speed measures the dream, not the timer)
const yieldNow = () => new Promise((resolve) => { queued.push(resolve); channel.port2.postMessage(0); });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(error) {
  game.running = false;
  const status = $("status");
  status.className = "error";
  status.textContent = `Error: ${error && error.message ? error.message : error}` +
    (location.protocol === "file:" ? "\nOpen the page through a web server: gym-dream play serves it, or run " +
      "`python -m http.server` in the built folder." : "");
  window.play.error = String(error && error.message ? error.message : error);
  console.error(error);
}

// -- the action from the held keys ----------------------------------------------------------------------------------
function currentAction() {
  const c = game.config.controls;
  const pressed = (b) => Math.max(-1, ...b.keys.map((k) => (held.has(k) ? held.get(k) : -1)));
  if (c.type === "discrete") {
    let best = null;
    let order = -1;
    for (const b of c.bindings) {
      const o = pressed(b);
      if (o > order) [best, order] = [b.action, o];
    }
    if (best !== null) return best;
    return c.idle === "alternate" ? c.bindings[game.t % 2].action : c.idle;
  }
  const action = c.idle.slice();
  const order = action.map(() => -1);
  for (const b of c.bindings) {
    const o = pressed(b);
    if (o > order[b.dim]) [action[b.dim], order[b.dim]] = [b.value, o];
  }
  return action;
}

function describeAction(a) {
  if (Array.isArray(a)) return `[${a.map((v) => v.toFixed(2)).join(", ")}]`;
  const c = game.config.controls;
  const binding = c.bindings.find((b) => b.action === a && !b.keys.some((k) => k.startsWith("Digit")));
  const label = binding ? binding.label : c.idle === a ? c.idle_label : null;
  return label && label !== `action ${a}` ? `${a} (${label})` : String(a);
}

// -- stepping -------------------------------------------------------------------------------------------------------
async function reset(seed) {
  const { dream, config } = game;
  game.seed = seed >>> 0;
  $("seed").value = game.seed;
  game.rng = new Rng(game.seed);
  game.index = game.rng.integer(dream.bankSize);
  game.state = (await dream.initialState(game.index)).state;
  Object.assign(game, { t: 0, ret: 0, ended: null, lastAction: null });
  game.view.reset();
  game.view.draw(await dream.decode(game.state));
  $("status").className = "";
  $("status").textContent = `Start state ${game.index} of ${dream.bankSize} (drawn with seed ${game.seed}).`;
  showStats({ reward: null, terminationProb: 0 });
  if (config.max_episode_steps) $("t").textContent = `0 / ${config.max_episode_steps}`;
}

async function stepOnce() {
  if (game.ended) return;
  const { dream, config } = game;
  const action = currentAction();
  const tau = game.tau;
  const noise = dream.drawNoise(game.rng);
  const t0 = performance.now();
  const out = await dream.imagine(game.state, action, tau, noise);
  game.state = out.state;
  const obs = await dream.decode(game.state);
  const t1 = performance.now();
  const terminated = config.termination === "sample" ? game.rng.uniform() < out.terminationProb : out.terminationProb > 0.5;
  game.t += 1;
  game.ret += out.reward;
  game.steps += 1;
  game.lastTau = tau;
  game.lastAction = action;
  game.view.draw(obs);
  game.modelMs.push(t1 - t0);
  if (game.modelMs.length > 50) game.modelMs.shift();
  game.stamps.push(t1);
  while (game.stamps.length > 2 && t1 - game.stamps[0] > RATE_WINDOW_MS) game.stamps.shift();
  if (terminated) end("terminated", `the model's end probability ${out.terminationProb.toFixed(2)}` +
    (config.termination === "sample" ? " came up" : " > 0.5"));
  else if (config.max_episode_steps && game.t >= config.max_episode_steps) end("truncated", "the time limit");
  showStats(out);
}

function end(kind, why) {
  game.ended = kind;
  $("status").className = "ended";
  $("status").textContent = `Episode over (${kind}: ${why}) after ${game.t} steps, return ${game.ret.toFixed(2)}. ` +
    "Press R to play again.";
}

function stepRate() {
  const s = game.stamps;
  if (s.length < 2 || performance.now() - s[s.length - 1] > 1000) return null;
  return ((s.length - 1) * 1000) / (s[s.length - 1] - s[0]);
}

function showRate() {
  const rate = stepRate();
  const target = game.fps === "max" ? "as fast as it runs" : `target ${game.fps}`;
  $("rate").textContent = rate === null ? `- (${target})` : `${rate.toFixed(1)} steps/s (${target})`;
}

function showStats(out) {
  showRate();
  const ms = game.modelMs.length ? game.modelMs.reduce((a, b) => a + b, 0) / game.modelMs.length : null;
  $("model-ms").textContent = ms === null ? "-" : `${ms.toFixed(2)} ms per step (imagine + decode): up to ${(1000 / ms).toFixed(0)} steps/s`;
  $("t").textContent = game.config.max_episode_steps ? `${game.t} / ${game.config.max_episode_steps}` : String(game.t);
  $("reward").textContent = out.reward === null ? "-" : out.reward.toFixed(3);
  $("return").textContent = game.ret.toFixed(2);
  $("p-end").value = out.terminationProb;
  $("p-end-value").textContent = out.terminationProb.toFixed(3);
  $("action").textContent = game.lastAction === null ? "-" : describeAction(game.lastAction);
}

async function loop() {
  for (;;) {
    if (game.running && game.ended && AUTORESET) await exclusive(() => reset(game.seed + 1));
    if (!game.running || game.ended || !game.state) {
      await new Promise((resolve) => { wake = resolve; });
      wake = null;
      continue;
    }
    const t0 = performance.now();
    await exclusive(stepOnce);
    const wait = game.fps === "max" ? 0 : 1000 / Number(game.fps) - (performance.now() - t0);
    await (wait > 1 ? sleep(wait) : yieldNow());
  }
}

// -- the controls -----------------------------------------------------------------------------------------------------
function setRunning(running) {
  game.running = running;
  $("run").textContent = running ? "Pause (Space)" : "Run (Space)";
  wakeLoop();
}

function keyLabel(code) {
  return KEY_NAMES[code] || code.replace(/^Key|^Digit/, "");
}

function keyTable(controls) {
  const rows = controls.bindings.map((b) => [b.keys, b.label]);
  const idle = controls.type === "box" ? `action ${describeAction(controls.idle)}` : (controls.idle_label || `action ${controls.idle}`);
  rows.push([[], `no key: ${idle}`], [["KeyR"], "reset (the seed's start state)"], [["Space"], "pause / run"],
    [["Period"], "one step (when paused)"]);
  $("keys").innerHTML = rows.map(([keys, label]) =>
    `<tr><td>${keys.map((k) => `<kbd>${keyLabel(k)}</kbd>`).join(" / ")}</td><td>${label}</td></tr>`).join("");
}

function bindControls() {
  const bound = new Set(game.config.controls.bindings.flatMap((b) => b.keys));
  window.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type === "number") return; // typing a seed
    if (bound.has(e.code) || ["Space", "KeyR", "Period"].includes(e.code)) e.preventDefault();
    if (e.repeat) return;
    if (e.code === "Space") setRunning(!game.running);
    else if (e.code === "KeyR") exclusive(() => reset(Number($("seed").value))).then(wakeLoop);
    else if (e.code === "Period") exclusive(stepOnce);
    else if (bound.has(e.code)) held.set(e.code, ++pressCount);
  }, { capture: true });
  window.addEventListener("keyup", (e) => held.delete(e.code), { capture: true });
  window.addEventListener("blur", () => held.clear());
  const tau = $("tau");
  tau.addEventListener("input", () => {
    game.tau = Number(tau.value);
    $("tau-value").textContent = game.tau.toFixed(2);
  });
  tau.addEventListener("change", () => tau.blur()); // the arrow keys drive the dream, not the slider
  const click = (id, fn) => $(id).addEventListener("click", (e) => { e.currentTarget.blur(); fn(); });
  click("reset", () => exclusive(() => reset(Number($("seed").value))).then(wakeLoop));
  click("new-seed", () => exclusive(() => reset(Math.floor(Math.random() * 2 ** 32))).then(wakeLoop));
  click("run", () => setRunning(!game.running));
  click("step", () => exclusive(stepOnce));
  $("fps").addEventListener("change", (e) => { game.fps = e.target.value; e.target.blur(); });
}

async function main() {
  const response = await fetch(new URL("play.json", MODEL));
  if (!response.ok) throw new Error(`no model/play.json (${response.status}): build the page with gym-dream play`);
  const config = await response.json();
  game.config = config;
  $("title").textContent = `gym-dream play: ${config.title}`;
  $("subtitle").textContent = `${config.dream_id || "a dream"} of ${config.real_env_id || "an env"} ` +
    `(${config.family} world model). Drive it with the keys below.`;
  $("ort-version").textContent = config.onnxruntime_web;
  game.dream = await Dream.load(MODEL);
  game.view = game.dream.pixels ? new PixelView($("view"), game.dream.observationShape)
    : new VectorView($("view"), config.observation);
  const tau = $("tau");
  Object.assign(tau, { min: config.tau.min, max: config.tau.max, step: config.tau.step });
  tau.value = PARAMS.get("tau") ?? config.tau.value;
  game.tau = Number(tau.value);
  $("tau-value").textContent = game.tau.toFixed(2);
  game.fps = PARAMS.get("fps") ?? String(config.fps);
  const fps = $("fps");
  if (![...fps.options].some((o) => o.value === game.fps)) fps.add(new Option(`${game.fps} steps/s`, game.fps));
  fps.value = game.fps;
  if (config.compare) {
    $("compare").src = new URL(config.compare.image, MODEL).href;
    $("compare-caption").textContent = config.compare.caption;
    $("compare-figure").hidden = false;
  }
  keyTable(config.controls);
  bindControls();
  setRunning(PARAMS.get("paused") !== "1");
  await exclusive(() => reset(Number(PARAMS.get("seed") ?? config.seed)));
  setInterval(showRate, 500); // paused or ended: the rate goes back to "-"
  document.body.dataset.ready = "1";
  loop();
}

// for tests and benchmarks: the page's state, and the same controls the buttons use
window.play = {
  get ready() { return document.body.dataset.ready === "1"; },
  get steps() { return game.steps; },
  get t() { return game.t; },
  get tau() { return game.tau; },
  get lastTau() { return game.lastTau; },
  get lastAction() { return game.lastAction; },
  get rate() { return stepRate(); },
  get ended() { return game.ended; },
  get seed() { return game.seed; },
  get index() { return game.index; },
  get running() { return game.running; },
  get dream() { return game.dream; },
  Rng,
  error: null,
  reset: (seed) => exclusive(() => reset(seed)).then(wakeLoop),
  step: () => exclusive(stepOnce),
  pause: () => setRunning(false),
  run: () => setRunning(true),
};

main().catch(fail);
