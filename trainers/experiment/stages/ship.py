"""Stage ``ship``: the work directory's model becomes a model package directory (e.g. the shipped default of its
Dream-* id), staged exactly like an exported package, with its scores, the data and compute of every round in its
card, and the agents trained in its dream as package data under ``agents/`` (declared in the card's ``agents``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gym_dream.agents import AGENTS_DIR
from gym_dream.checkpoint import atomic_write_bytes
from trainers.agents.controller import LinearController
from trainers.experiment.recipe import Recipe
from trainers.experiment.stages.rounds import DERIVED
from trainers.experiment.workdir import Controller, Tau, WorkDir, tau_part
from trainers.export.package import record_scores, stage_model_dir

#: the shipped name of the agent chosen on real validation episodes (``select``); each tau's dream pick is cmaes-tau<tau>
SELECTED_AGENT = "cmaes-selected"


def tau_agent(tau: Tau) -> str:
    return f"cmaes-tau{tau_part(tau)}"


def portable_paths(value: Any, base: Path | None = None) -> Any:
    """``value`` (a card: dicts, lists, strings) with every absolute path inside ``base`` (default: the current
    directory) written relative to it, so a shipped card says ``runs/doom/model`` where it was trained, not a path that
    exists on one machine only; other values are returned as they are."""
    base = Path.cwd() if base is None else Path(base)
    if isinstance(value, dict):
        return {k: portable_paths(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [portable_paths(v, base) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return value


def _save_agent(work: WorkDir, c: Controller, dest: Path, model_name: str, extra: dict[str, Any]) -> dict[str, Any]:
    agent = LinearController.load(work.controller(c))
    card = portable_paths({**{k: v for k, v in agent.card.items() if k not in DERIVED}, "model": model_name,
                           "trained_with": str(work.model), "tau": c.tau, **extra})
    agent.save(dest, card)
    return {"kind": "linear-controller", "tau": c.tau, "controller": c.to_dict(), **extra}


def _agents(recipe: Recipe, work: WorkDir, staging: Path) -> dict[str, dict[str, Any]]:
    """Each evaluated tau's controller (the main tau's even before it is evaluated) and the validation-chosen one."""
    declared = {}
    for tau in recipe.taus:
        row = work.read_row(work.row(tau))
        c = Controller.from_dict(row["controller"]) if row else Controller(tau, recipe.cmaes_seeds[0], "best")
        if (row or tau == recipe.main_tau) and work.controller(c).is_dir():
            scores = {"dream": row["dream"], "real": row["real"], "real_seeds": row.get("real_seeds")} if row else {}
            declared[tau_agent(tau)] = _save_agent(work, c, staging / tau_agent(tau), recipe.model_name, scores)
    selected = work.read_row(work.selected_row)
    if selected:  # with the noise it ran with (gym-dream evaluate --action-noise)
        win = selected["selection"]["chosen"]
        c = Controller.from_dict(win["controller"])
        declared[SELECTED_AGENT] = _save_agent(work, c, staging / SELECTED_AGENT, recipe.model_name, {
            "run_with_action_noise": dict(recipe.noise_row) if win["noise"] else None, "test": selected["real"],
            "test_seeds": selected.get("real_seeds"), "selection": selected["selection"]})
    return declared


def _swap_in(staging: Path, target: Path, card_path: Path, card: dict[str, Any]) -> None:
    """Put the staged folder where ``target`` is (the old one moved aside first), then write the card that declares
    it, atomically, and only then delete the old folder: an interruption leaves either the old agents or the new."""
    aside = target.with_name(f".{target.name}-old-{staging.name}")
    if target.exists():
        target.rename(aside)
    staging.rename(target)
    atomic_write_bytes(card_path, (json.dumps(card, indent=2) + "\n").encode())
    for stale in target.parent.glob(f".{target.name}-old-*"):
        shutil.rmtree(stale)


def ship(recipe: Recipe, work: WorkDir, dest: Path, source: str) -> None:
    """Stage ``work.model`` into the package directory ``dest`` (fp16) with the rows' scores (``source``: where they are
    reported), every round's data and fits, and its agents. The agents of an earlier model in ``dest`` are replaced:
    they were trained in another model's dream."""
    dest = Path(dest)
    stage_model_dir(work.model, dest, recipe.dream_id, half=True)
    init = dest / "__init__.py"
    if not init.is_file():  # a package directory, so setuptools ships its data files
        init.write_text(f'"""The shipped default model of {recipe.dream_id} (data only: model.json + model.safetensors + agents/)."""\n')
    rows = [r for r in (work.read_row(work.row(t)) for t in recipe.taus) if r]
    selected = work.read_row(work.selected_row)
    if rows:
        record_scores(dest, rows + ([selected] if selected else []), source)
    path = dest / "model.json"
    card = json.loads(path.read_text())
    rounds = work.all_rounds()
    if rounds:  # the card states all the data and compute behind the model, not only its last refit
        adopted = work.adopted()
        card["data"]["collection_rounds"] = rounds
        if adopted:
            card["data"]["adopted"] = {k: adopted[k] for k in ("from", "commit", "real_steps", "episodes", "policies")}
            card["data"]["real_steps_in_all"] = work.real_steps(card)
        fits = work.fits_seconds(card)
        card["training"]["fits_seconds"] = fits
        card["training"]["note"] = (f"{len(fits)} fits, each after a collection round and from the previous model "
                                    f"({sum(fits) / 60:.0f} min in all); 'seconds' is the last one")
    staging = Path(tempfile.mkdtemp(prefix=".agents-", dir=dest))
    card["agents"] = _agents(recipe, work, staging)
    old = dest / AGENTS_DIR
    _swap_in(staging, old, path, card)
    for name, a in card["agents"].items():
        print(f"shipped the agent {name} ({Controller.from_dict(a['controller'])}) in {old / name}")
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 2**20
    print(f"shipped {dest} ({size:.1f} MB); a new package directory must be declared in pyproject.toml "
          '[project.entry-points."gym_dream.models"]')


def add_agent(dest: Path, name: str, source: Path, info: dict[str, Any]) -> Path:
    """Ship one more agent next to the model in the package directory ``dest``: the agent folder ``source`` (a stored
    SB3 policy, a controller, or an ensemble of those with its members) is copied to ``dest/agents/<name>`` and declared
    in the card's ``agents`` with ``info`` (its kind, tau, scores and how it was made). An agent of that name is replaced;
    the copy is staged and renamed into place, and the card is written atomically after it."""
    dest, source = Path(dest), Path(source)
    if not (dest / "model.json").is_file():
        raise FileNotFoundError(f"{dest} is not a model directory (no model.json)")
    from trainers.agents.ensemble import is_ensemble_dir
    from trainers.agents.controller import is_controller_dir
    from trainers.agents.sb3_policy import is_policy_dir

    if not (is_policy_dir(source) or is_controller_dir(source) or is_ensemble_dir(source)):
        raise FileNotFoundError(f"{source} is not a stored agent (no policy.json, controller.json or ensemble.json)")
    agents = dest / AGENTS_DIR
    agents.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=agents))
    # the agent's files, and an ensemble's members/<k>/ folders (SB3's pickled .zip files are never shipped)
    shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.zip", "__pycache__", ".*"))
    for card_file in staging.rglob("*.json"):  # their cards, without this machine's paths
        card_file.write_text(json.dumps(portable_paths(json.loads(card_file.read_text())), indent=2) + "\n")
    path = dest / "model.json"
    card = json.loads(path.read_text())
    card.setdefault("agents", {})[name] = portable_paths(info)
    _swap_in(staging, agents / name, path, card)
    return agents / name
