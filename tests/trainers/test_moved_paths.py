"""The module paths of trainers/ from before it was grouped by what each module does (issue 48) keep working."""

import importlib
import re
import sys
from pathlib import Path

import pytest

import trainers
from trainers._moved import MOVED

ROOT = Path(__file__).resolve().parents[2]

# the public names each old module whose name is now a folder had, by the module that holds each now
FACES = {
    "trainers.fit": {"trainers.fit.dispatch": ["FITTERS", "PRESETS", "FitConfig", "Fitter", "fit", "register_fitter"]},
    "trainers.cli": {"trainers.cli.commands": ["main", "user_error"], "trainers.cli.parser": ["EXAMPLES", "build_parser"]},
    "trainers.export": {"trainers.export.package": ["EXPORT_RECORD", "MANAGED_FIELDS", "RUNTIMES", "ExportConfig", "build_wheel",
                                                    "builtin_id_note", "card_readme", "export", "module_name", "record_scores",
                                                    "stage_model_dir"]},
    "trainers.data": {"trainers.data.dataset": ["FIELDS", "META_FILE", "Episode", "EpisodeDataset", "StoredFile",
                                                "check_observation_count", "count_episodes", "dataset_index", "episode_paths",
                                                "load_file", "observations_header", "read_meta", "shard_paths", "write_episode",
                                                "write_meta", "write_shard"]},
}


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_an_old_path_is_the_new_module_and_warns_with_the_new_path(old, new, monkeypatch):
    module = importlib.import_module(new)
    monkeypatch.delitem(sys.modules, old, raising=False)
    monkeypatch.delattr(trainers, old.rpartition(".")[2], raising=False)
    with pytest.warns(DeprecationWarning, match=rf"^{re.escape(old)} has moved: import {re.escape(new)} instead$"):
        old_module = importlib.import_module(old)
    assert old_module is module
    assert module.__name__ == new and module.__spec__.name == new  # the alias leaves the module as it was


def test_a_from_import_through_an_old_path_gives_the_same_objects(monkeypatch):
    monkeypatch.delitem(sys.modules, "trainers.planner", raising=False)
    with pytest.warns(DeprecationWarning, match="trainers.planning.cem"):
        from trainers.planner import CEMPlanner
    from trainers.planning.cem import CEMPlanner as new

    assert CEMPlanner is new


@pytest.mark.parametrize("face", sorted(FACES))
def test_an_old_module_whose_name_is_now_a_folder_hands_on_its_names(face):
    folder = importlib.import_module(face)
    for home, names in FACES[face].items():
        module = importlib.import_module(home)
        for name in names:
            assert getattr(folder, name) is getattr(module, name), f"{face}.{name}"


def test_no_file_of_the_repository_imports_an_old_path():
    """The old paths are for users' code: the repository's own code, tests, benchmarks, examples and docs import (and
    name, as ``trainers.x.y`` in a docstring or a mkdocstrings reference) the new ones. A file path of the past
    (``trainers/planner.py at commit ...``) is history, not an import."""
    leaves = "|".join(re.escape(old.rpartition(".")[2]) for old in MOVED)
    old_path = re.compile(rf"\btrainers\.({leaves})\b")
    here, generated = Path(__file__).resolve(), ROOT / "docs" / "envs"  # the env pages, written by docs/gen_env_pages.py
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for folder in ("trainers", "tests", "benchmarks", "examples", "docs", "gym_dream")
             for path in sorted((ROOT / folder).rglob("*"))
             if path.suffix in (".py", ".md", ".toml") and path.is_file() and path != here and path.name != "_moved.py"
             and generated not in path.parents
             for n, line in enumerate(path.read_text().splitlines(), 1) if old_path.search(line)]
    assert not found, "old module paths (see trainers/_moved.py for the new ones):\n" + "\n".join(found)
