"""Issue 21: model packages cannot take over other envs, inject text into wheels or run code; broken
models are refused at load; export deletes nothing; files follow the umask. Every case uses a crafted
package or file in a temporary directory."""

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file, save_file

import gym_dream
from gym_dream.checkpoint import load_model, read_json, save_model
from gym_dream.error import DataFormatError, DeviceNotAvailable, GymDreamError, ModelFormatError, UnsafeId
from trainers.export.package import ExportConfig, builtin_id_note, export

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_dir(vector_model, tmp_path):
    return save_model(vector_model, tmp_path / "model", {"env": {"id": "CartPole-v1", "max_episode_steps": 500}})


def _export(model_dir, out, env_id="Dream-TinyPole-v0", name="dream-tinypole", **kw):
    return export(ExportConfig(model_dir=str(model_dir), env_id=env_id, name=name, out=str(out), **kw))


def _edit_card(directory: Path, **fields) -> None:
    card = json.loads((directory / "model.json").read_text())
    card.update(fields)
    (directory / "model.json").write_text(json.dumps(card))


def _wheel_text(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(suffix))).decode()


# -- 1. only Dream-* ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Dream-CartPole", "dream-MyGame-v0", "ns/Dream-X-v0", "Dream-X-v0\nRequires-Dist: evil", "Dream-A B-v0"])
def test_export_refuses_ids_that_are_not_dream_ids(model_dir, tmp_path, env_id):
    with pytest.raises(UnsafeId, match=r"must start with 'Dream-'.*Gymnasium's id grammar"):
        _export(model_dir, tmp_path / "out", env_id=env_id)
    assert not (tmp_path / "out").exists()


# -- 2. nothing from a card reaches generated files unescaped ------------------------------------------


def test_card_text_cannot_add_requirements_or_entry_points(model_dir, tmp_path):
    evil = "CartPole-v1\nRequires-Dist: evil-backdoor-pkg>=0\n\n[gym_dream.models]\nx = os"  # (as env.id it is refused at load:
    # test_a_card_real_env_id_is_checked_at_load_registration_and_export)
    _edit_card(model_dir, env={"id": "CartPole-v1", "max_episode_steps": 500, "note": evil}, description=f"nice\nRequires-Dist: evil2\n<script>x</script>",
               data={"steps\nRequires-Dist: evil3": "1\n2"}, reproduce="a`b\nc")
    paths = _export(model_dir, tmp_path / "out")
    meta = email.parser.Parser().parsestr(_wheel_text(paths["wheel"], ".dist-info/METADATA"))
    assert meta.get_all("Requires-Dist") == ["gym-dream>=0.1,<0.2"]
    assert "\n" not in meta["Summary"] and "evil" not in "".join(meta.keys())
    assert _wheel_text(paths["wheel"], "entry_points.txt") == "[gym_dream.models]\ndream-tinypole = dream_tinypole\n"
    pyproject = tomllib.loads((paths["project"] / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == ["gym-dream>=0.1,<0.2"]
    assert list(pyproject["project"]["entry-points"]["gym_dream.models"]) == ["dream-tinypole"]
    readme = (paths["project"] / "README.md").read_text()
    assert "<script>" not in readme and "\nRequires-Dist" not in readme


@pytest.mark.parametrize("kw", [{"name": "dream-x\nRequires-Dist: evil"}, {"version": "0.1\nRequires-Dist: evil"},
                                {"requires": ">=0.1\nRequires-Dist: evil"}, {"requires": ">=0.1; os_name=='nt'"}])
def test_export_arguments_are_validated(model_dir, tmp_path, kw):
    with pytest.raises(UnsafeId):
        _export(model_dir, tmp_path / "out", **kw)


# -- 3. locating a packaged model runs none of its code -----------------------------------------------


def _crafted_package(site: Path, model_dir: Path, record: bool, env_id: str = "Dream-Evil-v0") -> Path:
    """An installed 'evilpkg' whose __init__.py writes a marker; its model lies in evilpkg/models."""
    marker = site / "MARKER"
    pkg = site / "evilpkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (pkg / "models" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    for f in ("model.json", "model.safetensors"):
        shutil.copy(model_dir / f, pkg / "models" / f)
    _edit_card(pkg / "models", dream_env={"id": env_id, "max_episode_steps": 50})
    info = site / "evilpkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evilpkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gym_dream.models]\nevil = evilpkg.models\n")
    if record:
        files = [p.relative_to(site).as_posix() for p in pkg.rglob("*") if p.is_file()]
        (info / "RECORD").write_text("".join(f"{f},,\n" for f in files) + "evilpkg-0.1.dist-info/RECORD,,\n")
    return marker


def _python_with(site, code: str, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that sees the packages installed under ``site`` (and this checkout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("record", [True, False], ids=["wheel-record", "no-record"])
def test_import_gym_dream_does_not_import_a_model_package(model_dir, tmp_path, record):
    site = tmp_path / "site"
    marker = _crafted_package(site, model_dir, record)
    code = (
        "import gymnasium as gym, gym_dream, sys\n"
        "assert 'evil' in gym_dream.available_models(), gym_dream.available_models()\n"
        "env = gym.make('Dream-Evil-v0'); env.reset(seed=0)\n"
        "assert 'evilpkg' not in sys.modules\n"
        "print('ok')\n"
    )
    r = _python_with(site, code, tmp_path)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    assert not marker.exists(), "importing gym_dream ran the model package's __init__.py"


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Dream-Taken-v0", "Dream-X-v0\nRequires-Dist: evil"])
def test_a_package_cannot_register_or_replace_an_id_it_does_not_own(model_dir, tmp_path, env_id):
    """Item 1: before, a package declaring CartPole-v1 made gym.make('CartPole-v1') a dream."""
    site = tmp_path / "site"
    marker = _crafted_package(site, model_dir, True, env_id=env_id)
    code = (
        "import gymnasium as gym, warnings\n"
        "gym.register('Dream-Taken-v0', entry_point='gymnasium.envs.classic_control.cartpole:CartPoleEnv')  # another library's\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import gym_dream\n"
        "from gym_dream.error import RefusedIdWarning\n"
        "msgs = [str(x.message) for x in w if issubclass(x.category, RefusedIdWarning)]\n"
        "assert len(msgs) == 1 and 'evilpkg' in msgs[0] and 'not registered' in msgs[0], msgs\n"
        f"env_id = {env_id!r}\n"
        "if env_id in gym.registry:\n"
        "    env = gym.make(env_id)\n"
        "    assert not type(env.unwrapped).__module__.startswith('gym_dream'), env\n"
        "from gym_dream.envs.registry import CLAIMS\n"
        "assert [(c.dream_id.env_id, c.status) for c in CLAIMS if c.dream_id.source == 'evilpkg'] == [(env_id, 'refused')]\n"
        "from trainers.cli.commands import main\n"
        "main(['list'])\n"
    )
    r = _python_with(site, code, tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{env_id!r}"[:12] in r.stdout and "REFUSED" in r.stdout and "evilpkg" in r.stdout, r.stdout  # gym-dream list shows the claim
    assert not marker.exists()


def test_cli_export_to_a_non_dream_id_is_one_clear_line(model_dir, tmp_path, capsys):
    from trainers.cli.commands import main

    assert main(["export", str(model_dir), "--env-id", "CartPole-v1", "--name", "dream-x", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must start with 'Dream-'" in err and "Traceback" not in err


# -- 5. broken weights are refused at load --------------------------------------------------------------


def _rewrite_weights(directory: Path, change) -> None:
    tensors = load_file(str(directory / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(directory / "model.safetensors"))


@pytest.mark.parametrize("how", ["all-nan", "one-nan", "one-inf"])
def test_nan_or_inf_weights_are_refused_naming_the_tensor(model_dir, tmp_path, how):
    def change(t):
        name = sorted(k for k in t if t[k].is_floating_point())[3]
        for k in t:
            if how == "all-nan" and t[k].is_floating_point():
                t[k] = torch.full_like(t[k], float("nan"))
        if how == "one-nan":
            t[name].view(-1)[0] = float("nan")
        if how == "one-inf":
            t[name].view(-1)[-1] = float("inf")
        change.name = name

    _rewrite_weights(model_dir, change)
    pattern = "tensor '.*' holds .* NaN or infinite" if how == "all-nan" else f"tensor '{change.name}' holds 1 NaN or infinite"
    with pytest.raises(ModelFormatError, match=pattern):
        load_model(model_dir)
    with pytest.raises(ModelFormatError, match=pattern):
        gym.make("Dream-CartPole-v0", model=str(model_dir))
    with pytest.raises(ModelFormatError, match=pattern):
        _export(model_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_integer_weights_are_refused_not_cast(model_dir):
    name = []

    def change(t):
        k = sorted(k for k in t if t[k].is_floating_point())[0]
        t[k] = t[k].to(torch.int32)
        name.append(k)

    _rewrite_weights(model_dir, change)
    with pytest.raises(ModelFormatError, match=f"tensor '{name[0]}' is stored as torch.int32.*not cast"):
        load_model(model_dir)


def test_a_model_with_an_empty_start_state_bank_is_refused(model_dir):
    card = json.loads((model_dir / "model.json").read_text())
    card["params"]["bank_size"] = 0
    (model_dir / "model.json").write_text(json.dumps(card))
    _rewrite_weights(model_dir, lambda t: t.update(start_z=t["start_z"][:0].contiguous()))
    with pytest.raises(ModelFormatError, match="start-state bank is empty.*--bank-size"):
        load_model(model_dir)


@pytest.mark.parametrize("field, drop", [("observation_space", "shape"), ("action_space", "n"), ("action_space", "type")])
def test_cards_with_incomplete_spaces_fail_clearly(model_dir, field, drop):
    card = json.loads((model_dir / "model.json").read_text())
    del card[field][drop]
    (model_dir / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelFormatError, match=field):
        load_model(model_dir)


# -- 6. export deletes nothing ---------------------------------------------------------------------------


def test_export_run_on_its_own_package_directory_keeps_the_model(model_dir, tmp_path):
    paths = _export(model_dir, tmp_path / "out")
    pkg = paths["project"] / "src" / "dream_tinypole"
    (pkg / "notes.txt").write_text("mine")
    again = _export(pkg, tmp_path / "out")  # the source model IS the package directory being regenerated
    assert (pkg / "notes.txt").read_text() == "mine"
    load_model(pkg)
    assert again["wheel"].is_file()
    # an --out that puts the project over the model directory itself
    _export(model_dir, model_dir.parent, name="model", name_ok=True)
    load_model(model_dir)


def test_reexport_keeps_a_readme_the_user_edited(model_dir, tmp_path):
    paths = _export(model_dir, tmp_path / "out")
    readme = paths["project"] / "README.md"
    assert paths["kept"] == []
    again = _export(model_dir, tmp_path / "out", version="0.1.1")  # an untouched README is regenerated
    assert again["kept"] == []
    readme.write_text("# my own words\n")
    third = _export(model_dir, tmp_path / "out", version="0.1.2")
    assert readme.read_text() == "# my own words\n" and third["kept"] == [readme]
    assert _wheel_text(third["wheel"], ".dist-info/METADATA").endswith("# my own words\n")


# -- 13. file modes, the export note ---------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_model_files_follow_the_umask(vector_model, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        d = save_model(vector_model, tmp_path / "m")
    finally:
        os.umask(old)
    assert {f: oct((d / f).stat().st_mode & 0o777) for f in ("model.json", "model.safetensors")} == {
        "model.json": oct(mode), "model.safetensors": oct(mode)}


def test_export_note_for_ids_already_taken():
    note = builtin_id_note("Dream-CartPole-v0", "dream-mine")
    assert "gym-dream" in note and "raises an error naming both" in note and "makes it the model behind" not in note
    pendulum = builtin_id_note("Dream-Pendulum-v0", "dream-mine")  # an id of gym-dream's that ships no model
    assert "makes it the model behind" in pendulum
    assert builtin_id_note("Dream-Brandnew-v0", "dream-mine") is None


# -- 11. clear errors in the runtime ------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(model_dir):
    with pytest.raises(DeviceNotAvailable, match="device='cuda'.*Pass device='cpu'"):
        load_model(model_dir, device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        load_model(model_dir, device="gpu")


def test_truncated_json_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "controller.json"
    path.write_text('{"params": [1, 2')
    with pytest.raises(DataFormatError, match="controller.json.*truncated or corrupted.*move it aside"):
        read_json(path, "controller card")
    path.write_text("")
    with pytest.raises(DataFormatError, match="is empty"):
        read_json(path, "controller card")
    assert issubclass(DataFormatError, GymDreamError) and issubclass(DataFormatError, ValueError)


# -- 4. nothing in the runtime, export or collection loads pickle ---------------------------------------------

UNPICKLING = {"pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal", "_pickle"}


def _unpickling_calls(path: Path) -> list[str]:
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in UNPICKLING]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = getattr(node.func.value, "id", "")
            if (owner, node.func.attr) in {("torch", "load"), ("np", "load"), ("numpy", "load")}:
                kw = {k.arg: k.value for k in node.keywords}
                safe = (owner != "torch" and isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False) or (
                    owner == "torch" and isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True)
                if not safe:
                    found.append(f"{path.name}:{node.lineno} {owner}.{node.func.attr} without allow_pickle=False / weights_only=True")
    return found


def test_no_unpickling_in_the_runtime_export_or_collection():
    files = sorted((ROOT / "gym_dream").rglob("*.py")) + [ROOT / "trainers" / f for f in ("export/package.py", "data/collect.py", "data/dataset.py", "cli/commands.py", "cli/parser.py")]
    assert [f for p in files for f in _unpickling_calls(p)] == []


def test_a_shard_holding_a_pickled_object_is_refused_not_run(tmp_path):
    import numpy as np

    from trainers.data.collect import CollectConfig, collect
    from trainers.data.dataset import EpisodeDataset, shard_paths

    out = tmp_path / "d"
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=100, workers=1))
    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    shard = shard_paths(out)[0]
    with np.load(shard) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["obs"] = np.array([Payload()], dtype=object)
    np.savez(shard, **arrays)
    with pytest.raises(DataFormatError, match=shard.name):
        EpisodeDataset(out)
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=200, workers=1))  # reads only ids and lengths of old shards
    with pytest.raises(DataFormatError, match=shard.name):
        EpisodeDataset(out)
    assert not marker.exists()


# -- issue 47, items 1-4: no code runs from an agent or a model package; one package cannot break the others ----------


def _model_package(site: Path, model_dir: Path, dist: str = "evilpkg", model: str = "evil", env_id: str | None = "Dream-Evil-v0",
                   **card_fields) -> Path:
    """An installed distribution ``dist`` (import name the same) declaring the model ``model`` in ``<dist>/models``,
    with a RECORD. Its __init__.py and its ``payload`` module write a marker (``site/MARKER``) if they are ever run."""
    marker = site / "MARKER"
    pkg = site / dist
    (pkg / "models").mkdir(parents=True)
    for code in ("__init__.py", "payload.py"):
        (pkg / code).write_text(f"open({str(marker)!r}, 'w').write('ran {dist}')\n")
    for f in ("model.json", "model.safetensors"):
        shutil.copy(model_dir / f, pkg / "models" / f)
    _edit_card(pkg / "models", **({"dream_env": {"id": env_id, "max_episode_steps": 50}} if env_id else {}), **card_fields)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gym_dream.models]\n{model} = {dist}.models\n")
    files = [p.relative_to(site).as_posix() for p in pkg.rglob("*") if p.is_file()]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files) + f"{info.name}/RECORD,,\n")
    return marker


def _sb3_zip_with_payload(path: Path, marker: Path) -> Path:
    """An SB3 .zip whose "data" entry holds a pickled object that, when unpickled, creates ``marker``."""
    import base64
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = {"policy_class": {":type:": "<class 'type'>", ":serialized:": base64.b64encode(pickle.dumps(Payload())).decode()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data", json.dumps(data))
        zf.writestr("_stable_baselines3_version", "2.3.0")
    return path


def _zip_ensemble(folder: Path, marker: Path, member: str = "members/0/ppo.zip") -> Path:
    _sb3_zip_with_payload(folder / member, marker)
    (folder / "ensemble.json").write_text(json.dumps({"format": "gym-dream-agent-ensemble", "format_version": 1, "members": [member]}))
    return folder


@pytest.mark.parametrize("how", ["folder", "nested-folder", "shipped-name"])
def test_an_ensemble_member_that_is_an_sb3_zip_is_refused_before_anything_is_unpickled(model_dir, tmp_path, how):
    """Issue 47 item 1: `gym-dream evaluate ENS` unpickled a .zip member (the payload ran)."""
    site = tmp_path / "site"
    site.mkdir()
    marker = site / "MARKER"
    if how == "shipped-name":  # an agent *name* shipped in an installed model package
        _model_package(site, model_dir, agents={"vote": {"kind": "ensemble-sb3-ppo", "tau": 1.0}})
        _zip_ensemble(site / "evilpkg" / "models" / "agents" / "vote", marker)
        argv = ["evaluate", "vote", "--env-id", "Dream-Evil-v0"]
    else:
        ens = tmp_path / "ens"
        if how == "nested-folder":  # an ensemble member that is itself an ensemble holding a .zip
            _zip_ensemble(ens / "members" / "0", marker)
            (ens / "ensemble.json").write_text(json.dumps({"format": "gym-dream-agent-ensemble", "format_version": 1, "members": ["members/0"]}))
        else:
            _zip_ensemble(ens, marker)
        argv = ["evaluate", str(ens), "--env-id", "Dream-CartPole-v0"]
    code = (
        "import sys, warnings\n"
        "from trainers.cli.commands import main\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    rc = main({argv + ['--taus', '1.0', '--episodes', '1', '--dream-episodes', '1']!r})\n"
        "from trainers.agents.stored_agent import PickleFormatWarning\n"
        "assert not [x for x in w if issubclass(x.category, PickleFormatWarning)], 'an SB3 zip was opened'\n"
        "print('rc', rc)\n"
    )
    r = _python_with(site, code, tmp_path)
    assert not marker.exists(), "an ensemble member's SB3 zip was unpickled"
    assert r.returncode == 0 and "rc 1" in r.stdout, (r.stdout, r.stderr)
    assert "not a directory" in r.stderr and "never an SB3 .zip" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_zip_named_as_a_shipped_agent_or_an_ensemble_member_is_never_loaded(model_dir, tmp_path):
    """Issue 47 item 1: the loaders that take agents from others read data only."""
    from gym_dream.agents import find_agent
    from gym_dream.error import ModelNotFound
    from trainers.agents.ensemble import AgentEnsemble
    from trainers.agents.stored_agent import load_agent, load_stored_agent

    marker = tmp_path / "MARKER"
    zipped = _sb3_zip_with_payload(model_dir / "agents" / "ppo.zip", marker)  # a file where an agent directory belongs
    _edit_card(model_dir, agents={"ppo.zip": {"kind": "sb3-ppo"}})
    with pytest.raises(ModelNotFound, match="missing"):
        find_agent("ppo.zip", model_dir)
    with pytest.raises(ValueError, match="not an agent stored as data"):
        load_stored_agent(zipped)
    for member in ("members/0/ppo.zip", "../ppo.zip", "/tmp/ppo.zip", 7):
        ens = tmp_path / f"ens-{abs(hash(str(member)))}"
        _zip_ensemble(ens, marker, "members/0/ppo.zip")
        (ens / "ensemble.json").write_text(json.dumps({"format": "gym-dream-agent-ensemble", "format_version": 1, "members": [member]}))
        with pytest.raises(ValueError, match="not a directory|outside its folder"):
            load_agent(ens)
        with pytest.raises(ValueError, match="not a directory|outside its folder"):
            AgentEnsemble.load(ens, load_member=load_agent)  # even with the loader that opens a .zip named by the user
    assert not marker.exists()


_MODULE_IDS = ["evilpkg.payload:CartPole-v1", "evilpkg.payload:Dream-CartPole-v0", "CartPole-v1\n", "CartPole", "a/b/CartPole-v1"]


def test_a_card_real_env_id_with_a_module_prefix_runs_no_code(model_dir, tmp_path):
    """Issue 47 item 2: a package whose card says env.id 'evilpkg.payload:CartPole-v1' ran its own code on
    `gym-dream evaluate AGENT --env-id Dream-Evil-v0` or `gym-dream calibrate evil` (gym.make imports the module)."""
    site = tmp_path / "site"
    marker = _model_package(site, model_dir, env={"id": "evilpkg.payload:CartPole-v1", "max_episode_steps": 50})
    code = (
        "import warnings, gymnasium as gym\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import gym_dream\n"
        "from trainers.cli.commands import main\n"
        "assert main(['calibrate', 'evil', '--taus', '1.0', '--episodes', '1', '--dream-episodes', '1']) == 1\n"
        "from gym_dream.error import ModelFormatError, RefusedIdWarning, UnsafeId\n"
        "msgs = [str(x.message) for x in w if issubclass(x.category, RefusedIdWarning)]\n"
        "assert len(msgs) == 1 and 'evilpkg' in msgs[0] and 'env.id' in msgs[0] and 'not registered' in msgs[0], msgs\n"
        "assert 'Dream-Evil-v0' not in gym.registry\n"
        "try:\n"
        "    gym_dream.resolve_model('evil')\n"
        "    raise SystemExit('loaded')\n"
        "except ModelFormatError as e:\n"
        "    assert 'env.id' in str(e) and 'module' in str(e), e\n"
        "assert main(['evaluate', 'cmaes', '--env-id', 'Dream-Evil-v0', '--taus', '1.0', '--episodes', '1']) != 0\n"
        "from trainers.data.real_envs import make_real_env\n"
        "try:\n"
        "    make_real_env('evilpkg.payload:CartPole-v1')\n"
        "    raise SystemExit('made')\n"
        "except UnsafeId as e:\n"
        "    assert \"a 'module:' prefix is never accepted\" in str(e), e\n"
        "main(['list'])\n"
        "print('ok')\n"
    )
    r = _python_with(site, code, tmp_path)
    assert not marker.exists(), "gym.make imported the module named in a card's env.id"
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout, r.stderr)
    assert "'Dream-Evil-v0'" in r.stdout and "REFUSED" in r.stdout and "env.id" in r.stdout, r.stdout


@pytest.mark.parametrize("real_id", _MODULE_IDS + [5])
def test_a_card_real_env_id_is_checked_at_load_registration_and_export(model_dir, tmp_path, real_id):
    """Issue 47 item 2: one check (gym_dream.naming.check_real_env_id) at load, registration, export and make_real_env."""
    from gym_dream.envs.registry import DreamId, _refusal
    from trainers.data.real_envs import make_real_env

    _edit_card(model_dir, env={"id": real_id, "max_episode_steps": 50})
    with pytest.raises(ModelFormatError, match="env.id .* is not a plain registered env id"):
        load_model(model_dir)
    with pytest.raises(ModelFormatError, match="env.id"):
        _export(model_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert "env.id" in _refusal(DreamId("Dream-Evil-v0", "evil", real_id if isinstance(real_id, str) else repr(real_id), 50, "evilpkg"))
    with pytest.raises(UnsafeId, match="not a plain registered env id"):
        make_real_env(real_id)


@pytest.mark.parametrize("real_id", ["CartPole-v1", "dm_control/cheetah-run-v0", "ALE/Pong-v5", "MiniGrid-Empty-5x5-v0", None])
def test_plain_real_env_ids_load(model_dir, real_id):
    _edit_card(model_dir, env={"id": real_id} if real_id else {})
    load_model(model_dir)


@pytest.mark.parametrize("evil_id", ["Dream-Evil-v0", "Dream-CartPole-v0"])
def test_a_package_taking_a_shipped_model_name_breaks_only_that_name(model_dir, tmp_path, evil_id):
    """Issue 47 item 3: a package declaring a model named 'cartpole' made every dream and `gym-dream list` fail, and the
    message said `pip uninstall gym-dream`."""
    site = tmp_path / "site"
    site.mkdir()
    marker = _model_package(site, model_dir, "evilpkg", "cartpole", evil_id)
    _model_package(site, model_dir, "dream_other", "other", "Dream-Other-v0")
    code = (
        "import warnings\n"
        "from pathlib import Path\n"
        "import gymnasium as gym\n"
        "with warnings.catch_warnings(record=True):\n"
        "    warnings.simplefilter('always')\n"
        "    import gym_dream\n"
        "from gym_dream.error import ModelMismatch\n"
        "from gym_dream.store import BUNDLED_DIR\n"
        "shipped = (BUNDLED_DIR / 'cartpole').resolve()\n"
        "assert gym_dream.available_models()['cartpole'].resolve() == shipped\n"
        "env = gym.make('Dream-CartPole-v0'); env.reset(seed=0); env.step(env.action_space.sample())\n"
        "assert Path(env.unwrapped.model.source).resolve() == shipped, env.unwrapped.model.source  # the shipped model wins\n"
        "env = gym.make('Dream-Other-v0'); env.reset(seed=0); env.step(env.action_space.sample())  # other names work\n"
        "assert gym_dream.resolve_model('other') is not None\n"
        f"if {evil_id!r} != 'Dream-CartPole-v0':\n"
        "    try:\n"
        f"        gym.make({evil_id!r})\n"
        "        raise SystemExit('the package model ran under a shipped name')\n"
        "    except ModelMismatch as e:\n"
        "        assert 'pip uninstall evilpkg' in str(e) and 'pip uninstall gym-dream' not in str(e), e\n"
        "from trainers.cli.commands import main\n"
        "main(['list'])\n"
        "print('ok')\n"
    )
    r = _python_with(site, code, tmp_path)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout, r.stderr)
    listed = r.stdout
    assert "model names declared by several installed packages" in listed and "CONFLICT" in listed, listed
    assert "pip uninstall evilpkg" in listed and "pip uninstall gym-dream" not in listed, listed
    assert f"{evil_id!r}" in listed and "NOT REGISTERED (its model's name is gym-dream's)" in listed, listed
    assert not marker.exists()


def test_two_packages_declaring_one_model_name_conflict_on_that_name_only(model_dir, tmp_path):
    """Issue 47 item 3: between two packages (neither gym-dream), the name resolves to neither; every other name works."""
    site = tmp_path / "site"
    site.mkdir()
    _model_package(site, model_dir, "dream_one", "same", "Dream-One-v0")
    _model_package(site, model_dir, "dream_two", "same", "Dream-Two-v0")
    _model_package(site, model_dir, "dream_three", "three", "Dream-Three-v0")
    code = (
        "import gymnasium as gym, gym_dream\n"
        "from gym_dream.error import ModelMismatch\n"
        "for make in (lambda: gym_dream.resolve_model('same'), lambda: gym.make('Dream-One-v0')):\n"
        "    try:\n"
        "        make()\n"
        "        raise SystemExit('resolved')\n"
        "    except ModelMismatch as e:\n"
        "        assert 'dream_one' in str(e) and 'dream_two' in str(e) and 'pip uninstall dream_one or pip uninstall dream_two' in str(e), e\n"
        "gym.make('Dream-Three-v0').reset(seed=0)\n"
        "gym.make('Dream-CartPole-v0').reset(seed=0)\n"
        "assert 'same' not in gym_dream.available_models() and 'three' in gym_dream.available_models()\n"
        "from trainers.cli.commands import main\n"
        "main(['list'])\n"
        "print('ok')\n"
    )
    r = _python_with(site, code, tmp_path)
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout, r.stderr)
    assert "same" in r.stdout and "CONFLICT" in r.stdout, r.stdout


@pytest.mark.parametrize("name", ["numpy", "torch", "Torch", "gymnasium", "safetensors", "gym-dream", "gym_dream", "trainers", "pytest",
                                  "xdist", "json", "os", "dream-installed", "someproject", "some_import", "Some.Import"])
def test_export_never_takes_the_name_of_an_installed_project_or_a_runtime_dependency(model_dir, tmp_path, name, monkeypatch):
    """Issue 47 item 4: `gym-dream export --name tqdm` built a wheel that installs over tqdm. Installed distributions
    (their names and import names), the runtime's dependencies and the standard library are refused, --name-ok or not."""
    site = tmp_path / "site"
    site.mkdir()
    for dist, top in (("dream-installed", "dream_installed"), ("someproject", "some_import")):  # crafted installed projects
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "top_level.txt").write_text(top + "\n")
        (info / "RECORD").write_text(f"{top}/__init__.py,,\n{info.name}/RECORD,,\n")
        (site / top).mkdir()
        (site / top / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    for name_ok in (False, True):
        with pytest.raises(UnsafeId, match="would shadow"):
            _export(model_dir, tmp_path / "out", name=name, name_ok=name_ok)
    assert not (tmp_path / "out").exists()


def test_export_wants_a_dream_prefixed_name_unless_name_ok(model_dir, tmp_path, capsys):
    """Issue 47 item 4: a name without the dream- prefix needs --name-ok."""
    from trainers.cli.commands import main

    with pytest.raises(UnsafeId, match="does not start with 'dream-'.*--name-ok"):
        _export(model_dir, tmp_path / "out", name="mygame")
    assert not (tmp_path / "out").exists()
    assert _export(model_dir, tmp_path / "out", name="mygame", name_ok=True)["wheel"].name == "mygame-0.1.0-py3-none-any.whl"
    assert _export(model_dir, tmp_path / "out", name="Dream_MyGame")["wheel"].is_file()
    argv = ["export", str(model_dir), "--env-id", "Dream-TinyPole-v0", "--out", str(tmp_path / "cli")]
    assert main(argv + ["--name", "numpy", "--name-ok"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "would shadow" in err and "numpy" in err and "Traceback" not in err
    assert main(argv + ["--name", "othergame"]) == 2 and "--name-ok" in capsys.readouterr().err
    assert main(argv + ["--name", "othergame", "--name-ok"]) == 0


def test_reexport_over_an_installed_model_package_of_the_same_name_is_allowed(model_dir, tmp_path, monkeypatch):
    """Issue 47 item 4: updating one's own package (installed from an earlier export) is not 'taking another's name'."""
    site = tmp_path / "site"
    wheel = _export(model_dir, tmp_path / "out")["wheel"]
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    monkeypatch.syspath_prepend(str(site))
    from importlib import metadata

    assert metadata.distribution("dream-tinypole").version == "0.1.0"
    assert _export(model_dir, tmp_path / "out", version="0.1.1")["wheel"].name == "dream_tinypole-0.1.1-py3-none-any.whl"
