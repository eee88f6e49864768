"""`gym-dream play`: the page's files, its server and keys, and the page itself in a real headless Chromium (slow)."""

import hashlib
import json
import os
import stat
import urllib.request

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'gym-dream[onnx]'")
pytest.importorskip("onnxscript", reason="the onnx extra: pip install 'gym-dream[onnx]'")

from gym_dream.checkpoint import save_model  # noqa: E402
from gym_dream.models import MDNRNN  # noqa: E402
from gym_dream.preprocessing import Preprocessing  # noqa: E402
from gym_dream.spaces import space_from_dict  # noqa: E402
from gym_dream_onnx import OnnxDream  # noqa: E402
from trainers.play import browser  # noqa: E402
from trainers.play.controls import control_scheme, scheme_actions  # noqa: E402
from trainers.play.server import serve_in_thread  # noqa: E402
from trainers.play.site import COMPARE_PNG, build_site  # noqa: E402
from trainers.play.vendor import FILES, VENDOR_DIR, VERSION, vendored  # noqa: E402


def _tiny_model_dir(path, kind: str):
    """A tiny seeded MDN-RNN saved as a model directory: CartPole's spaces (vector) or CarRacing's (pixels); its
    episodes never end (the termination head's bias is -20)."""
    g = torch.Generator().manual_seed(3)
    if kind == "vector":
        env = gym.make("CartPole-v1")
        m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=16, mixtures=3, head_hidden=8, bank_size=8)
        card = {"env": {"id": "CartPole-v1"}, "dream_env": {"id": "Dream-TinyPlay-v0", "tau": 1.1, "max_episode_steps": 40}}
    else:
        obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
        act = space_from_dict({"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0, 0.0, 0.0], "high": 1.0})
        m = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), z_dim=8, hidden=16, mixtures=2, head_hidden=8,
                   vae_channels=(4, 8, 8, 16), bank_size=4)
        card = {"env": {"id": "CarRacing-v3"}, "dream_env": {"id": "Dream-TinyPlayPixels-v0", "max_episode_steps": 60}}
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        m.start_z.copy_(torch.randn(m.start_z.shape, generator=g))
        m.termination_head[2].bias.fill_(-20.0)  # episodes that do not end by chance while the test steps
    return save_model(m.eval(), path / f"tiny-{kind}", card)


class _Sites(dict):
    """A built play site per kind ("vector", "pixels"), built on first use, once per module (one export cache)."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.tmp = tmp_path_factory.mktemp("play")
        self.cache = self.tmp / "cache"
        self.models = {}

    def __missing__(self, kind):
        self.models[kind] = _tiny_model_dir(self.tmp, kind)
        self[kind] = build_site(self.models[kind], self.tmp / f"site-{kind}", cache=self.cache, fps="max", seed=5)
        return self[kind]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    return _Sites(tmp_path_factory)


# -- the page's files (no browser) ------------------------------------------------------------------------------------
SHIPPED_SPACES = {  # the action spaces of the shipped models, with their real env ids
    "CarRacing-v3": space_from_dict({"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0, 0.0, 0.0], "high": 1.0}),
    "CartPole-v1": gym.spaces.Discrete(2),
    "VizdoomTakeCover-v1": gym.spaces.Discrete(3),
    "dm_control/cartpole-swingup-v0": gym.spaces.Box(-1.0, 1.0, (1,), np.float64),
    "LunarLander-v3": gym.spaces.Discrete(4),
    "Pendulum-v1": gym.spaces.Box(-2.0, 2.0, (1,), np.float32),
    "dm_control/walker-walk-v0": gym.spaces.Box(-1.0, 1.0, (6,), np.float64),
}


@pytest.mark.parametrize("env_id", sorted(SHIPPED_SPACES))
def test_every_key_sends_an_action_inside_the_space(env_id):
    space = SHIPPED_SPACES[env_id]
    scheme = control_scheme(space, env_id)
    actions = scheme_actions(scheme)
    assert len({json.dumps(a) for a in actions}) >= 2  # the keys can do something
    keys = [k for b in scheme["bindings"] for k in b["keys"]]
    assert {"ArrowLeft", "KeyA", "ArrowRight", "KeyD"} <= set(keys)


def test_carracing_keys_are_steer_gas_brake():
    scheme = control_scheme(SHIPPED_SPACES["CarRacing-v3"], "CarRacing-v3")
    by_key = {k: (b["dim"], b["value"]) for b in scheme["bindings"] for k in b["keys"]}
    assert by_key["ArrowLeft"] == (0, -1.0) and by_key["KeyD"] == (0, 1.0)
    assert by_key["ArrowUp"][0] == 1 and by_key["KeyS"][0] == 2 and scheme["idle"] == [0.0, 0.0, 0.0]


def test_control_scheme_refuses_what_keys_cannot_drive():
    with pytest.raises(ValueError, match="unbounded"):
        control_scheme(gym.spaces.Box(-np.inf, np.inf, (2,), np.float32))
    with pytest.raises(ValueError, match="Discrete and Box"):
        control_scheme(gym.spaces.MultiDiscrete([2, 3]))


def test_vendored_runtime_is_the_pinned_release():
    record = vendored()
    assert record["version"] == VERSION and set(record["files"]) == set(FILES)
    for name in FILES:
        assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == record["files"][name]
    assert "MIT License" in (VENDOR_DIR / "LICENSE").read_text()


def test_build_writes_the_page_and_reuses_the_cached_export(sites, tmp_path, monkeypatch):
    site = sites["vector"]
    for name in ("index.html", "play.js", "dream.js", "view.js", "style.css", "vendor/ort.wasm.bundle.min.mjs",
                 "vendor/ort-wasm-simd-threaded.wasm", "model/dream.json", "model/imagine.onnx", "model/play.json"):
        assert (site / name).is_file(), name
    config = json.loads((site / "model" / "play.json").read_text())
    assert config["seed"] == 5 and config["tau"]["value"] == 1.1 and config["max_episode_steps"] == 40
    assert config["controls"]["idle"] == "alternate" and config["observation"]["sketch"] == "cartpole"
    assert len(config["observation"]["scale"]) == 4 and min(config["observation"]["scale"]) > 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((site / "model").stat().st_mode) == 0o777 & ~umask  # a web server of another user may read it
    # another build of the same model exports nothing: the cached graphs are used
    import trainers.export.onnx as onnx_export

    monkeypatch.setattr(onnx_export, "export_dream", lambda *a, **k: pytest.fail("exported again despite the cache"))
    again = build_site(sites.models["vector"], tmp_path / "site", cache=sites.cache, tau=0.7)
    assert json.loads((again / "model" / "play.json").read_text())["tau"]["value"] == 0.7
    assert (again / "model" / "imagine.onnx").read_bytes() == (site / "model" / "imagine.onnx").read_bytes()
    assert len([p for p in sites.cache.iterdir() if not p.name.startswith(".")]) == len(sites.models)


def test_compare_that_cannot_make_the_real_env_leaves_no_page(sites, tmp_path, monkeypatch):
    import trainers.play.compare as compare
    from gym_dream.error import DependencyNotInstalled

    def missing(*args, **kwargs):
        raise DependencyNotInstalled('VizdoomTakeCover-v1 needs extra packages: pip install "gym-dream[doom]"')

    sites["vector"]  # noqa: B018  (the model and its cached export)
    monkeypatch.setattr(compare, "real_first_frame", missing)
    with pytest.raises(DependencyNotInstalled, match="gym-dream\\[doom\\]"):
        build_site(sites.models["vector"], tmp_path / "site", cache=sites.cache, compare=True)
    assert not (tmp_path / "site").exists()


def test_cli_play_builds_the_page(sites, tmp_path, capsys):
    from trainers.cli.commands import main

    sites["vector"]  # noqa: B018  (the model and its cached export)
    out = tmp_path / "built"
    assert main(["play", str(sites.models["vector"]), "--build", str(out), "--cache-dir", str(sites.cache), "--seed", "9",
                 "--fps", "max"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    config = json.loads((out / "model" / "play.json").read_text())
    assert config["seed"] == 9 and config["fps"] == "max"
    assert main(["play", "no-such-model", "--build", str(tmp_path / "x")]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_build_never_writes_into_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        build_site("cartpole", tmp_path / "mine", cache=tmp_path / "cache")
    with pytest.raises(ValueError, match="--fps"):
        build_site("cartpole", tmp_path / "new", fps="fast")


def test_server_serves_the_site_on_localhost_with_browser_types(tmp_path):
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "ort-wasm-simd-threaded.wasm").write_bytes((VENDOR_DIR / "ort-wasm-simd-threaded.wasm").read_bytes()[:64])
    (tmp_path / "play.js").write_text("export {};")
    (tmp_path / "play.json").write_text('{"real_env_id": "CartPole-v1"}')
    server, url = serve_in_thread(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "vendor/ort-wasm-simd-threaded.wasm") as r:
            assert r.headers["Content-Type"] == "application/wasm" and r.read(4) == b"\0asm"
        with urllib.request.urlopen(url + "play.js") as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
        with urllib.request.urlopen(url + "play.json") as r:
            assert json.loads(r.read())["real_env_id"] == "CartPole-v1"
    finally:
        server.shutdown()
        server.server_close()


def test_compare_writes_the_real_envs_first_frame(tmp_path):
    pytest.importorskip("pygame", reason="CartPole renders with pygame: pip install 'gym-dream[box2d]'")
    import imageio.v2 as imageio

    from trainers.play.compare import real_first_frame

    caption = real_first_frame({"env": {"id": "CartPole-v1"}}, 3, tmp_path / COMPARE_PNG)
    frame = imageio.imread(tmp_path / COMPARE_PNG)
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=3)
    assert np.array_equal(frame, env.render()) and "reset(seed=3)" in caption


# -- the page in a headless Chromium ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page():
    reason = browser.missing()
    if reason is not None:
        pytest.skip(f"no headless browser: {reason}")
    with browser.headless_page() as p:
        yield p


SNAP = """(name) => {
  const c = document.getElementById('view');
  window.snaps = window.snaps || {};
  window.snaps[name] = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
}"""
DIFF = """([a, b]) => {
  const x = window.snaps[a], y = window.snaps[b];
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}"""


def _episode(page, name: str, steps: int, seed: int = 0, key: str | None = None):
    """Reset to ``seed``, take ``steps`` steps with the '.' key (holding ``key``), and keep the canvas as ``name``."""
    page.evaluate(f"play.reset({seed})")
    if key:
        page.keyboard.down(key)
    start = page.evaluate("play.steps")
    for _ in range(steps):
        page.keyboard.press("Period")
    page.wait_for_function(f"play.steps >= {start + steps}")
    if key:
        page.keyboard.up(key)
    page.evaluate(SNAP, name)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vector", "pixels"])
def test_page_plays_the_dream_in_chromium(sites, page, kind, tmp_path):
    server, url = serve_in_thread(sites[kind])
    try:
        browser.open_play_page(page, url + "?paused=1")
        steps = 6
        _episode(page, "idle", steps)
        _episode(page, "idle-again", steps)
        assert page.evaluate(DIFF, ["idle", "idle-again"]) == 0  # same seed, same keys: the same dream
        key = "ArrowLeft" if kind == "vector" else "ArrowUp"  # push left / gas
        _episode(page, "key", steps, key=key)
        assert page.evaluate(DIFF, ["idle", "key"]) > 0  # the key changed the frames
        assert page.evaluate("play.lastAction") == (0 if kind == "vector" else [0, 1, 0])
        page.locator("#tau").fill("0.3")
        assert page.inner_text("#tau-value") == "0.30"
        _episode(page, "cold", steps)
        assert page.evaluate("play.lastTau") == pytest.approx(0.3)
        assert page.evaluate(DIFF, ["idle", "cold"]) > 0  # the new tau reached the dream
        page.click("#run")
        page.wait_for_function("play.rate !== null && play.rate > 0", timeout=30000)
        rate = page.inner_text("#rate")
        assert "steps/s" in rate and float(rate.split()[0]) > 0
        page.screenshot(path=str(tmp_path / f"play-{kind}.png"), full_page=True)
        assert page.console_errors == []
    finally:
        page.evaluate("play.pause()")
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_page_dream_is_the_numpy_dream_for_the_same_noise(sites, page):
    """dream.js feeds the graphs as gym_dream_onnx does: with the same start row, actions, tau and noise, the page's
    observations equal the numpy runtime's (onnxruntime-web's WebAssembly kernels against onnxruntime's, float tolerance)."""
    site = sites["vector"]
    server, url = serve_in_thread(site)
    try:
        browser.open_play_page(page, url + "?paused=1")
        dream = OnnxDream(site / "model")
        rng = np.random.default_rng(0)
        actions = [int(a) for a in rng.integers(0, 2, 12)]
        noises = [dream.draw_noise(rng, 1) for _ in actions]
        state, _ = dream.initial_state(np.array([3]))
        want = []
        for a, noise in zip(actions, noises):
            out = dream.imagine(state, np.array([a]), np.array([0.8], np.float32), noise)
            state = out["state"]
            want.append([*dream.decode(state)[0].tolist(), float(out["reward"][0]), float(out["termination_prob"][0])])
        got = page.evaluate("""async ([actions, noises]) => {
            const d = play.dream;
            let { state } = await d.initialState(3);
            const rows = [];
            for (let i = 0; i < actions.length; i++) {
                const noise = Object.fromEntries(Object.entries(noises[i]).map(([k, v]) => [k, Float32Array.from(v)]));
                const out = await d.imagine(state, actions[i], 0.8, noise);
                state = out.state;
                rows.push([...Array.from(await d.decode(state)), out.reward, out.terminationProb]);
            }
            return rows;
        }""", [actions, [{k: v[0].tolist() for k, v in n.items()} for n in noises]])
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-4)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_page_noise_draws_numpys_kinds_of_noise(sites, page):
    """The page's generator: uniforms on [0, 1) and standard normals (Box-Muller), the same stream for the same seed."""
    server, url = serve_in_thread(sites["vector"])
    try:
        browser.open_play_page(page, url + "?paused=1")
        stats = page.evaluate("""() => {
            const n = 200000, r = new play.Rng(7), again = new play.Rng(7), other = new play.Rng(8);
            let umin = 1, umax = 0, usum = 0, usq = 0, nsum = 0, nsq = 0, n4 = 0, same = true, differs = false;
            for (let i = 0; i < n; i++) {
                const u = r.uniform();
                umin = Math.min(umin, u); umax = Math.max(umax, u); usum += u; usq += u * u;
                const z = r.normal();
                nsum += z; nsq += z * z; n4 += z ** 4;
                if (again.uniform() !== u || again.normal() !== z) same = false;
                if (other.uniform() !== u) differs = true;
            }
            return { umin, umax, umean: usum / n, uvar: usq / n - (usum / n) ** 2,
                     nmean: nsum / n, nvar: nsq / n - (nsum / n) ** 2, nkurt: n4 / n, same, differs,
                     f32: Math.fround(umax) < 1 };
        }""")
    finally:
        server.shutdown()
        server.server_close()
    assert 0 <= stats["umin"] and stats["umax"] < 1 and stats["f32"]
    assert stats["umean"] == pytest.approx(0.5, abs=0.005) and stats["uvar"] == pytest.approx(1 / 12, abs=0.002)
    assert stats["nmean"] == pytest.approx(0.0, abs=0.01) and stats["nvar"] == pytest.approx(1.0, abs=0.015)
    assert stats["nkurt"] == pytest.approx(3.0, abs=0.1)  # Gaussian tails, not just the first two moments
    assert stats["same"] and stats["differs"]
