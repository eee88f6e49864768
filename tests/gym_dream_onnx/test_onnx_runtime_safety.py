"""The torch-free runtime's refusals: graphs whose tensors live in external files, and dream names two packages claim."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'gym-dream[onnx]'")
onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install 'gym-dream[onnx]'")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.external_data_helper import set_external_data  # noqa: E402

import gym_dream_onnx  # noqa: E402
from gym_dream_onnx import DreamFormatError, OnnxDream, OnnxDreamEnv  # noqa: E402
from gym_dream_onnx.onnx_proto import ProtoError, external_tensors  # noqa: E402
from gym_dream_onnx.registry import dream_conflicts, register_onnx_envs  # noqa: E402


def _graph(nodes, inputs, outputs, initializers=()):
    def info(name, elem, shape):
        return helper.make_tensor_value_info(name, elem, shape)

    graph = helper.make_graph(nodes, "g", [info(*i) for i in inputs], [info(*o) for o in outputs], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def dream_dir(tmp_path):
    """A dream written by hand (no exporter, no torch): h' = h + a, reward sum(h'), never ends; start states from a bank."""
    F, I = TensorProto.FLOAT, TensorProto.INT64  # noqa: N806
    bank = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "bank")
    graphs = {
        "initial_state": _graph([helper.make_node("Gather", ["bank", "index"], ["h"], axis=0), helper.make_node("Identity", ["h"], ["features"])],
                                [("index", I, ["B"])], [("h", F, ["B", 2]), ("features", F, ["B", 2])], [bank]),
        "imagine": _graph([helper.make_node("Add", ["h", "action"], ["next_h"]), helper.make_node("Identity", ["next_h"], ["features"]),
                           helper.make_node("ReduceSum", ["next_h", "axis"], ["reward"], keepdims=0),
                           helper.make_node("Sub", ["reward", "reward"], ["termination_prob"])],
                          [("h", F, ["B", 2]), ("action", F, ["B", 1]), ("tau", F, ["B"])],
                          [("next_h", F, ["B", 2]), ("reward", F, ["B"]), ("termination_prob", F, ["B"]), ("features", F, ["B", 2])],
                          [numpy_helper.from_array(np.array([1], np.int64), "axis")]),
        "decode": _graph([helper.make_node("Identity", ["h"], ["obs"])], [("h", F, ["B", 2])], [("obs", F, ["B", 2])]),
    }
    folder = tmp_path / "hand-written"
    folder.mkdir()
    for name, model in graphs.items():
        (folder / f"{name}.onnx").write_bytes(model.SerializeToString())
    manifest = {"format_version": 1, "family": "hand-written", "bank_size": 4, "state": {"h": [2]}, "noise": {},
                "action_space": {"type": "Box", "shape": [1], "low": -1.0, "high": 1.0}, "feature_dim": 2,
                "observation": {"pixels": False, "shape": [2]}, "dream_env": {"id": "Dream-HandWritten-v0"}}
    (folder / "dream.json").write_text(json.dumps(manifest))
    return folder


def _external(tensor, location: str) -> None:
    set_external_data(tensor, location=location, offset=0, length=len(tensor.raw_data) or 4)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL


def test_a_self_contained_dream_loads_and_steps(dream_dir):
    for g in ("initial_state", "imagine", "decode"):
        assert external_tensors((dream_dir / f"{g}.onnx").read_bytes()) == []
    env = OnnxDreamEnv(model=dream_dir)
    obs, _ = env.reset(seed=0)
    obs2, reward, terminated, truncated, _ = env.step(np.array([0.5], np.float32))
    assert np.allclose(obs2, obs + 0.5) and reward == pytest.approx(float(obs2.sum())) and not terminated


@pytest.mark.parametrize("location", ["weights.bin", "/etc/hostname", "../../../../etc/passwd"])
def test_a_graph_with_external_data_is_refused_at_load(dream_dir, tmp_path, location):
    copy = tmp_path / "dream"
    shutil.copytree(dream_dir, copy)
    model = onnx.load(str(copy / "initial_state.onnx"))
    big = model.graph.initializer[0]
    if location == "weights.bin":
        (copy / location).write_bytes(big.raw_data)  # the data is even there: still refused
    _external(big, location)
    (copy / "initial_state.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(DreamFormatError, match="external data files .*refused.*export the model again"):
        OnnxDream(copy)
    with pytest.raises(DreamFormatError, match="external data"):
        OnnxDreamEnv(model=copy)


def _constant(name: str, value: float, location: str | None = None):
    t = numpy_helper.from_array(np.full((2,), value, np.float32), name)
    if location is not None:
        _external(t, location)
    return helper.make_node("Constant", [], [name], value=t)


def _if_model(location: str | None):
    """A model whose only tensors are an initializer and the Constants inside an If's two branches."""
    def branch(name, value, where):
        return helper.make_graph([_constant(name, value, where)], name, [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])])

    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("then_value", 1.0, location), else_branch=branch("else_value", 2.0, None))
    init = numpy_helper.from_array(np.ones((2,), np.float32), "w")
    return helper.make_model(helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [init]))


def test_external_tensors_are_found_wherever_the_schema_puts_them():
    """Initializers, sparse initializers, Constant values inside an If's subgraph, functions' nodes."""
    assert external_tensors(_if_model(None).SerializeToString()) == []
    model = _if_model("/etc/hostname")
    assert external_tensors(model.SerializeToString()) == ["then_value"]
    _external(model.graph.initializer[0], "w.bin")
    assert sorted(external_tensors(model.SerializeToString())) == ["then_value", "w"]
    values = numpy_helper.from_array(np.ones((1,), np.float32), "sparse")
    _external(values, "s.bin")
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.zeros((1,), np.int64), "idx"), [4])
    plain = helper.make_model(helper.make_graph([], "s", [], [], sparse_initializer=[sparse]))
    assert external_tensors(plain.SerializeToString()) == ["sparse"]
    function = helper.make_function("local", "f", [], ["in_function"], [_constant("in_function", 3.0, "f.bin")], [helper.make_opsetid("", 17)])
    with_fn = helper.make_model(helper.make_graph([], "f", [], []), functions=[function])
    assert external_tensors(with_fn.SerializeToString()) == ["in_function"]


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x3a\x10abc", b"\x0b"])
def test_bytes_that_are_not_a_protobuf_message_are_refused(data):
    with pytest.raises(ProtoError):
        external_tensors(data)


def _package(site: Path, dream_dir: Path, module: str, name: str, env_id: str) -> None:
    """An installed distribution ``module`` declaring the exported dream ``name`` with the env id ``env_id``."""
    target = site / module / "dream"
    shutil.copytree(dream_dir, target)
    manifest = json.loads((target / "dream.json").read_text())
    (target / "dream.json").write_text(json.dumps({**manifest, "dream_env": {"id": env_id, "max_episode_steps": 20}}))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gym_dream_onnx.models]\n{name} = {module}\n")
    files = [p.relative_to(site).as_posix() for p in (site / module).rglob("*") if p.is_file()]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files) + f"{info.name}/RECORD,,\n")


IDS = ("Dream-OnnxOne-v0", "Dream-OnnxTwo-v0", "Dream-OnnxThree-v0")


@pytest.fixture
def clean_ids():
    yield
    for env_id in IDS:
        gym.envs.registry.pop(env_id, None)


def test_two_packages_declaring_one_dream_name_conflict_on_that_name_only(dream_dir, tmp_path, monkeypatch, clean_ids):
    site = tmp_path / "site"
    site.mkdir()
    _package(site, dream_dir, "dream_one", "same", IDS[0])
    _package(site, dream_dir, "dream_two", "same", IDS[1])
    _package(site, dream_dir, "dream_three", "three", IDS[2])
    monkeypatch.syspath_prepend(str(site))
    registered = register_onnx_envs()
    assert "same" not in gym_dream_onnx.available_dreams() and "three" in gym_dream_onnx.available_dreams()
    assert set(dream_conflicts()) == {"same"}
    for make in (lambda: OnnxDreamEnv(model="same"), lambda: gym.make(IDS[0]), lambda: gym.make(IDS[1]),
                 lambda: gym.make_vec(IDS[0], num_envs=2, vectorization_mode="vector_entry_point")):
        with pytest.raises(gym.error.Error, match="'same'.*dream_one.*dream_two.*pip uninstall dream_one or pip uninstall dream_two"):
            make()
    env = gym.make(IDS[2])  # every other name works
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert registered[IDS[2]] == "three"
