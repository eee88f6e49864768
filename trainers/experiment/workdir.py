"""The typed work directory of an experiment: where every stage reads and writes, in one place.

    <work>/data/                          real episodes (shards written by `gym-dream collect`)
    <work>/model/                         the current world model (model.json + model.safetensors)
    <work>/cmaes/tau<tau>-seed<k>/        one CMA-ES run: best/, mean/ (controllers), log.jsonl, its state
                                          (<tau>: 1.15, or 1.0-1.5 for a range of temperatures)
    <work>/sb3/<algo>-tau<tau>/           one stable-baselines3 agent trained in the dream
    <work>/cmaes-real/                    the controller trained by CMA-ES on the REAL env (the comparison row)
    <work>/eval/*.json                    evaluation rows: cmaes-tau<tau>[-noise], <algo>-tau<tau>, random,
                                          real-cmaes, select (the validation state), selected (the chosen agent)
    <work>/round-<K>/                     a finished collection round: the same layout (model, cmaes, eval, ...)
                                          plus round.json (its controller and the real steps it drove)
    <work>/adopted.json                   what `adopt` carried over from a shipped model's earlier rounds

A controller is named by a :class:`Controller` (tau, seed, kind), never by a string to parse. A tau is one temperature
or a range ``(low, high)`` (each dream episode draws its own): :data:`Tau`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.envs.core import check_tau, tau_name

CONTROLLER_KINDS = ("best", "mean")

Tau = float | tuple[float, float]
"""one dream temperature, or a range (low, high) of them"""


def tau_part(tau: Tau) -> str:
    """A tau as it appears in a file or folder name: ``1.15``, or ``1.0-1.5`` for a range."""
    return tau_name(tau).replace(":", "-")


@dataclass(frozen=True)
class Controller:
    """One CMA-ES output: the run at ``tau`` with ``seed``, its ``kind`` ('best': the best candidate seen; 'mean':
    CMA-ES's mean)."""

    tau: Tau
    seed: int
    kind: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", check_tau(self.tau))  # JSON gives a range back as a list
        if self.kind not in CONTROLLER_KINDS:
            raise ValueError(f"A controller's kind is one of {CONTROLLER_KINDS}, got {self.kind!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Controller":
        return cls(d["tau"], int(d["seed"]), str(d["kind"]))

    def __str__(self) -> str:
        return f"tau {tau_name(self.tau)}, seed {self.seed} {self.kind}"


def round_driver(info: dict[str, Any]) -> str:
    """Who drove a collection round, from its round.json (rounds adopted from older cards name a controller as a
    string): ``tau 1.15 controller (CMA-ES mean of seed 1)``, ``tau 0.8:1.2 PPO agent``."""
    tau = tau_name(info["tau"])
    if info.get("agent", "cmaes") != "cmaes":
        return f"tau {tau} {info['agent'].upper()} agent"
    c = info["controller"]
    name = c if isinstance(c, str) else c["kind"] + (f" of seed {c['seed']}" if c["seed"] else "")
    return f"tau {tau} controller (CMA-ES {name})"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


class WorkDir:
    """The work directory of one experiment (or of one finished round inside it: same layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"WorkDir({str(self.root)!r})"

    # -- data and model
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    def has_model(self) -> bool:
        return (self.model / "model.json").is_file()

    # -- agents
    def cmaes_run(self, tau: Tau, seed: int) -> Path:
        return self.root / "cmaes" / f"tau{tau_part(tau)}-seed{seed}"

    def controller(self, c: Controller) -> Path:
        return self.cmaes_run(c.tau, c.seed) / c.kind

    def cmaes_log(self, tau: Tau, seed: int) -> Path:
        return self.cmaes_run(tau, seed) / "log.jsonl"

    def sb3_run(self, algo: str, tau: Tau) -> Path:
        return self.root / "sb3" / f"{algo}-tau{tau_part(tau)}"

    @property
    def real_cmaes(self) -> Path:
        return self.root / "cmaes-real"

    # -- evaluation rows
    @property
    def eval(self) -> Path:
        return self.root / "eval"

    def row(self, tau: Tau, noise: bool = False) -> Path:
        return self.eval / f"cmaes-tau{tau_part(tau)}{'-noise' if noise else ''}.json"

    def sb3_row(self, algo: str, tau: Tau) -> Path:
        return self.eval / f"{algo}-tau{tau_part(tau)}.json"

    @property
    def random_row(self) -> Path:
        return self.eval / "random.json"

    @property
    def real_cmaes_row(self) -> Path:
        return self.eval / "real-cmaes.json"

    @property
    def select_state(self) -> Path:
        return self.eval / "select.json"

    @property
    def selected_row(self) -> Path:
        return self.eval / "selected.json"

    def read_row(self, path: Path) -> dict[str, Any] | None:
        return read_json(path) if path.is_file() else None

    def row_controller(self, tau: Tau) -> Controller | None:
        """The controller the evaluate stage scored at ``tau`` (None before it ran)."""
        row = self.read_row(self.row(tau))
        return Controller.from_dict(row["controller"]) if row else None

    # -- collection rounds
    def rounds(self) -> list["Round"]:
        return sorted((Round(p) for p in self.root.glob("round-*") if (p / "round.json").is_file()), key=lambda r: r.number)

    def round_path(self, number: int) -> Path:
        return self.root / f"round-{number}"

    def outputs(self) -> list[Path]:
        """What a new collection round moves into its folder: everything made from the current model (the random
        policy's row and the real-env baseline do not depend on it and stay)."""
        stay = {self.random_row, self.real_cmaes_row}
        rows = [p for p in sorted(self.eval.glob("*.json")) if p not in stay]
        return [self.model, self.root / "model.checkpoints", self.root / "cmaes", self.root / "sb3", *rows]

    @property
    def adopted_file(self) -> Path:
        return self.root / "adopted.json"

    def adopted(self) -> dict[str, Any]:
        """What ``adopt`` recorded about a shipped model's earlier rounds ({} when this folder holds them all)."""
        return read_json(self.adopted_file) if self.adopted_file.is_file() else {}

    def all_rounds(self) -> list[dict[str, Any]]:
        """Every collection round behind the current model: the adopted model's (from its card), then this folder's."""
        return [*self.adopted().get("collection_rounds", []), *[r.info() for r in self.rounds()]]

    def real_steps(self, card: dict[str, Any]) -> int:
        """Real steps behind the current model: its dataset's, plus those of an adopted model's dataset."""
        return int(card["data"]["steps"]) + int(self.adopted().get("real_steps", 0))

    def fits_seconds(self, card: dict[str, Any]) -> list[float]:
        """The wall time of every fit behind the current model (adopted ones, each round's, the current one)."""
        from gym_dream.checkpoint import read_card

        own = [read_card(r.work.model)["training"]["seconds"] for r in self.rounds() if not r.info().get("adopted")]
        return [*self.adopted().get("fits_seconds", []), *own, card["training"]["seconds"]]


class Round:
    """A finished collection round: ``round-<K>/`` holds the model and agents that drove it, and ``round.json``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.number = int(self.path.name.split("-", 1)[1])
        self.work = WorkDir(self.path)

    def info(self) -> dict[str, Any]:
        return read_json(self.path / "round.json")

    def write_info(self, info: dict[str, Any]) -> None:
        write_json(self.path / "round.json", info)

    def controller(self) -> Controller:
        return Controller.from_dict(self.info()["controller"])

    def agent(self) -> Path:
        """The directory of the agent that drove this round."""
        info = self.info()
        if info.get("agent", "cmaes") == "cmaes":
            return self.work.controller(self.controller())
        return self.work.sb3_run(info["agent"], info["tau"]) / "best"

    def agent_name(self) -> str:
        return round_driver(self.info())

    def dream_return(self) -> float:
        info = self.info()
        if "dream_return" in info:
            return float(info["dream_return"])
        return next(s["dream"] for s in info["selection_dream_returns"] if Controller.from_dict(s) == self.controller())
