"""Train a linear controller with CMA-ES (pycma) entirely inside a dream, or on the real env for comparison.

Each dream generation evaluates the whole population x rollouts as ONE batched ``DreamVectorEnv``
(``popsize * rollouts`` envs), so a generation is a few hundred batched model steps. Both trainers run
one ask / evaluate / tell / log / save loop (:class:`Search`); its resume state is data (pycma's state as
arrays + JSON, :mod:`trainers.agents.cma_state`), never pickle, and the log is cut back to the state on resume,
so a run killed at any moment continues the same search without repeating a generation.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

import gym_dream  # noqa: F401  (registers the Dream-* ids)
from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.error import DataFormatError
from trainers.agents.cma_state import es_state, restore_es
from trainers.agents.controller import LinearController
from trainers.data.real_envs import dream_id_for
from trainers.infra.folder_lock import held
from trainers.fit.presets import check_ranges
from trainers.infra.progress import progress
from trainers.evaluation.rollout import dream_rollout, make_dream_vec, real_episodes
from trainers.infra.training_log import TrainingLog

logger = logging.getLogger(__name__)

STATE = "cmaes_state.safetensors"

#: the valid range of each numeric option (trainers.fit.presets.check_ranges): a CMA-ES generation needs 2 candidates
CMAES_RANGES: dict[str, str] = {"generations": "integer >= 1", "popsize": "integer >= 2", "rollouts": "integer >= 1",
                                "max_episode_steps": "integer >= 1", "shards": "integer >= 1", "sigma0": "number > 0",
                                "max_seconds": "number >= 0"}  # 0: one generation per call


@dataclass
class CMAESConfig:
    env_id: str | None = None
    """the Dream-* id to train in (default: the model's own: the registered id of its real env, else Dream-Model-v0, the
    dream of any model; with no --model either, Dream-CartPole-v0)"""
    model: str | None = None
    """model directory or name (default: the id's default model)"""
    out: str = "runs/cmaes-cartpole"
    """run folder: controller (best and mean), per-generation checkpoint, log"""
    tau: float | tuple[float, float] | None = None
    """dream temperature (default: the model's, its card's dream_env.tau, else 1.0), or a range LOW:HIGH from which
    each dream episode draws its own (uniformly)"""
    generations: int = 40
    """CMA-ES generations"""
    popsize: int = 64
    """candidates per generation"""
    rollouts: int = 16
    """dream episodes per candidate (averaged)"""
    sigma0: float = 0.1
    """initial step size"""
    init: str | None = None
    """a controller (a directory, or the name of one shipped with the model) whose parameters are the search's starting
    mean: search on from a shipped controller, with a smaller sigma0 (default: all zeros)"""
    max_episode_steps: int | None = None
    """dream horizon (default: the id's)"""
    seed: int = 0
    """seed of CMA-ES and of the dreams"""
    device: str = "cpu"
    """torch device of the dream"""
    termination: str | None = None
    """dream episode ends: threshold | sample (default: the model card's choice)"""
    dream_kwargs: dict[str, Any] = field(default_factory=dict)
    """more arguments of the dream it trains in, e.g. {"uncertainty_penalty": 1.0, "uncertainty_limit": "q99"}"""
    max_seconds: float | None = None
    """stop after the generation that passes this wall time (checkpointed: re-running continues)"""
    shards: int = 1
    """the population as this many batched dreams of popsize/shards candidates x rollouts, shard j of generation g reset
    with a seed of (seed, g, j): 1 (default) is one batch; > 1 is what --backend ray spreads over actors. The search depends
    on shards, never on the backend"""
    backend: str = "local"
    """where the shards run: local (one after another, here) | ray (one Ray actor each: pip install "gym-dream[ray]")"""
    ray_address: str | None = None
    """the Ray cluster of --backend ray: auto, host:6379 or ray://host:10001 (default: $RAY_ADDRESS, else a Ray on this machine)"""

    def __post_init__(self) -> None:
        """Refuse an out-of-range budget or count now, before any folder is made (CMAES_RANGES)."""
        check_ranges(self, CMAES_RANGES, "train cmaes")


def dream_returns(venv, params: np.ndarray, feature_dim: int, horizon: int) -> np.ndarray:
    """Undiscounted return of each env's first episode; env i acts with ``params[i]``."""
    space = venv.single_action_space
    act = lambda obs, t: LinearController.batch_actions(params, obs, space, feature_dim)
    return dream_rollout(venv, act, int(venv.np_random.integers(2**31)), horizon).returns


def shard_seed(seed: int, generation: int, shard: int) -> int:
    """The dream seed of population shard ``shard`` in generation ``generation`` (0-based): a function of these only, so
    a shard gives the same returns wherever it runs and a resumed run continues the same search."""
    return int(np.random.SeedSequence([int(seed), int(generation), int(shard), 1]).generate_state(1)[0]) % (2**31)


class DreamShard:
    """One shard of a CMA-ES generation: ``popsize / shards`` candidates x ``rollouts`` as ONE batched ``DreamVectorEnv``
    (a Ray actor with ``--backend ray``, see :mod:`trainers.infra.ray_backend`)."""

    def __init__(self, cfg: CMAESConfig) -> None:
        self.rollouts = cfg.rollouts
        self.venv = make_dream_vec(cfg.env_id, cfg.popsize // cfg.shards * cfg.rollouts, cfg.model, cfg.tau, cfg.device,
                                   max_episode_steps=cfg.max_episode_steps, termination=cfg.termination, **cfg.dream_kwargs)
        self.horizon = self.venv.unwrapped.max_episode_steps or 1000
        self.feature_dim = self.venv.single_observation_space.shape[0]

    def returns(self, candidates: np.ndarray, seed: int) -> np.ndarray:
        """Each candidate's mean return over its ``rollouts`` dream episodes, the dream reset with ``seed``."""
        params = np.repeat(np.asarray(candidates, np.float32), self.rollouts, axis=0)
        space = self.venv.single_action_space
        act = lambda obs, t: LinearController.batch_actions(params, obs, space, self.feature_dim)
        return dream_rollout(self.venv, act, int(seed), self.horizon).returns.reshape(len(candidates), self.rollouts).mean(1)


# -- the one CMA-ES loop -----------------------------------------------------------------------------
def _write_state(path: Path, es, record: dict[str, Any], best_params: np.ndarray | None) -> None:
    arrays, values = es_state(es)
    arrays = {f"es.{k}": v for k, v in arrays.items()}
    if best_params is not None:
        arrays["best.params"] = np.asarray(best_params, np.float32)
    atomic_write_bytes(path, save(arrays, metadata={"es": json.dumps(values), "record": json.dumps(record)}))


def _read_state(path: Path, es) -> tuple[dict[str, Any], np.ndarray | None]:
    try:
        with safe_open(str(path), "np") as f:
            meta = f.metadata()
        arrays = load_file(str(path))
        restore_es(es, {k[3:]: v for k, v in arrays.items() if k.startswith("es.")}, json.loads(meta["es"]))
        return json.loads(meta["record"]), arrays.get("best.params")
    except (SafetensorError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise DataFormatError(f"{path} is not a whole CMA-ES state ({type(e).__name__}: {e}); delete {path.parent} to start "
                              "the search over, or pass another out.") from None


def _log_up_to(log_path: Path, generations: int) -> None:
    """Keep the log's first ``generations`` entries (those the state has): a kill after the log append but
    before the state write leaves one more, and a kill mid-append a partial line."""
    lines = log_path.read_text().splitlines(keepends=True) if log_path.is_file() else []
    kept = []
    for line in lines[:generations]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        if not line.endswith("\n") or entry.get("generation") != len(kept) + 1:
            break
        kept.append(line)
    if len(kept) < generations:
        raise ValueError(f"{log_path} has {len(kept)} whole generations but the CMA-ES state has {generations}; "
                         f"delete {log_path.parent} to start over.")
    if kept != lines:
        atomic_write_bytes(log_path, "".join(kept).encode())


class Search:
    """One CMA-ES run in ``out``: opened fresh or resumed (optimizer state, record and log made consistent), then
    :meth:`run`'s ask / evaluate / tell / log / save loop. ``record`` (generation, best fitness, seconds and the
    caller's own fields, e.g. real steps) is saved with the optimizer state after every generation."""

    def __init__(self, out: Path, num_params: int, sigma0: float, popsize: int, seed: int, record: dict[str, Any] | None = None,
                 x0: np.ndarray | None = None):
        import cma

        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.state_path, self.log_path = out / STATE, out / "log.jsonl"
        if (out / "cmaes_state.pkl").is_file() and not self.state_path.is_file():
            raise ValueError(f"{out / 'cmaes_state.pkl'} is a pickled CMA-ES state from an older gym-dream; it is not loaded (a pickle "
                             f"can run code). Delete it to restart the search in {out}, or pass another out.")
        self.es = cma.CMAEvolutionStrategy(np.zeros(num_params) if x0 is None else np.asarray(x0, np.float64), sigma0, {"popsize": popsize, "seed": seed + 1, "verbose": -9})
        self.best_params: np.ndarray | None = None
        if self.state_path.is_file():
            self.record, self.best_params = _read_state(self.state_path, self.es)
            logger.info(f"resuming CMA-ES after generation {self.record['generation']}")
        else:
            self.record = {"generation": 0, "best_fitness": -np.inf, "best_generation": 0, "seconds": 0.0, **(record or {})}
        _log_up_to(self.log_path, self.record["generation"])

    def run(self, fitness: Callable[[np.ndarray, dict], tuple[np.ndarray, dict]], more: Callable[[dict], bool],
            after: Callable[[Any, dict, dict], None]) -> dict[str, Any]:
        """Generations until ``more(record)`` is False. ``fitness(candidates, record)`` -> (fitness per candidate,
        extra log fields); ``after(es, record, entry)`` saves controllers and reports (``record["best_params"]``)."""
        record = self.record
        start, before = time.time(), record["seconds"]
        with TrainingLog(self.out, "cmaes", resume_from=record["generation"]) as log:  # <out>/cmaes_log.csv, tb/cmaes
            self._generations(fitness, more, after, log, start, before)
        return record

    def _generations(self, fitness, more, after, log, start: float, before: float) -> None:
        es, record = self.es, self.record
        while more(record):
            asked = es.ask()
            candidates = np.asarray(asked, np.float32)
            fit, extra = fitness(candidates, record)
            es.tell(asked, list(-fit))
            record["generation"] += 1
            i = int(np.argmax(fit))
            if fit[i] > record["best_fitness"]:
                record["best_fitness"], record["best_generation"], self.best_params = float(fit[i]), record["generation"], candidates[i].copy()
            record["seconds"] = round(before + time.time() - start, 2)  # training time summed over resumed invocations
            entry = {"generation": record["generation"], **extra, "mean_fitness": float(fit.mean()), "max_fitness": float(fit.max()),
                     "best_fitness": record["best_fitness"], "sigma": float(es.sigma), "seconds": record["seconds"]}
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            log.write(record["generation"], **{k: v for k, v in entry.items() if k != "generation" and isinstance(v, (int, float))})
            after(es, {**record, "best_params": self.best_params}, entry)
            _write_state(self.state_path, es, record, self.best_params)


# -- in the dream ------------------------------------------------------------------------------------
def _initial_mean(cfg: CMAESConfig, feature_dim: int, space) -> np.ndarray | None:
    """The parameters of ``cfg.init`` (a controller that reads this model's features and acts in this action space)."""
    if cfg.init is None:
        return None
    from gym_dream.agents import agent_path
    from trainers.agents.controller import is_controller_dir

    path = agent_path(cfg.init, cfg.model, cfg.env_id)
    if not is_controller_dir(path):
        raise ValueError(f"--init {cfg.init}: {path} is not a linear controller (no controller.json); pass a CMA-ES controller "
                         "directory (<run>/mean or <run>/best) or the name of one shipped with the model.")
    start = LinearController.load(path)
    if start.feature_dim != feature_dim or start.action_space != space:
        raise ValueError(f"--init {cfg.init}: that controller reads {start.feature_dim} features and acts in {start.action_space}; "
                         f"this dream gives {feature_dim} features and acts in {space}. Pass a controller trained on this model.")
    return start.params


def train_cmaes(cfg: CMAESConfig) -> dict[str, Any]:
    cfg = replace(cfg, env_id=dream_id_for(cfg.env_id, cfg.model))
    out = Path(cfg.out)
    if isinstance(cfg.shards, bool) or not isinstance(cfg.shards, int) or cfg.shards < 1 or cfg.popsize % cfg.shards:
        raise ValueError(f"--shards must be an integer >= 1 that divides --popsize {cfg.popsize}, got {cfg.shards!r}.")
    if cfg.backend not in ("local", "ray"):
        raise ValueError(f"--backend must be local or ray, got {cfg.backend!r}.")
    if cfg.backend == "ray" and cfg.shards == 1:
        raise ValueError("--backend ray runs each population shard on its own actor: pass --shards N (N > 1, dividing --popsize); "
                         "the search depends on --shards only, so --backend local with the same --shards gives the same one.")
    shard = DreamShard(cfg) if cfg.shards > 1 and cfg.backend == "local" else None  # the shards one after another, here
    venv = shard.venv if shard is not None else make_dream_vec(
        cfg.env_id, cfg.popsize * cfg.rollouts if cfg.shards == 1 else 1, cfg.model, cfg.tau, cfg.device,
        max_episode_steps=cfg.max_episode_steps, termination=cfg.termination, **cfg.dream_kwargs)
    cfg = replace(cfg, tau=venv.unwrapped.tau)  # the temperature in effect (the model's default when none was given)
    horizon = venv.unwrapped.max_episode_steps or 1000
    feature_dim, space = venv.single_observation_space.shape[0], venv.single_action_space
    venv.reset(seed=cfg.seed * 100_003)
    meta = {"env_id": cfg.env_id, "model": cfg.model, "tau": cfg.tau, "config": asdict(cfg)}
    with held(out, "train cmaes"):  # one process per run: a second copy would interleave its checkpoints
        run = Search(out, LinearController(feature_dim, space).num_params, cfg.sigma0, cfg.popsize, cfg.seed, x0=_initial_mean(cfg, feature_dim, space))
        first, start = run.record["generation"], time.time()
        venv.reset(seed=cfg.seed * 100_003)
        if "dream_rng" in run.record:  # where the dream seeds stood: a resumed run continues the same search
            venv.np_random.bit_generator.state = run.record["dream_rng"]
        bar = progress(total=cfg.generations, initial=first, desc=f"CMA-ES {cfg.env_id}", unit="gen")

        def fitness(candidates: np.ndarray, record: dict) -> tuple[np.ndarray, dict]:
            if cfg.shards > 1:
                parts = np.split(candidates, cfg.shards)
                seeds = [shard_seed(cfg.seed, record["generation"], j) for j in range(cfg.shards)]
                scores = remote.returns(parts, seeds) if remote is not None else [shard.returns(c, s) for c, s in zip(parts, seeds)]
                return np.concatenate(scores), {}
            params = np.repeat(candidates, cfg.rollouts, axis=0)
            returns = dream_returns(venv, params, feature_dim, horizon).reshape(cfg.popsize, cfg.rollouts)
            record["dream_rng"] = venv.np_random.bit_generator.state  # the next generation's dream seeds come from here
            return returns.mean(1), {}

        def more(record: dict) -> bool:
            # at least one generation per invocation, so a resumed run always makes progress
            if cfg.max_seconds is not None and record["generation"] > first and time.time() - start > cfg.max_seconds:
                logger.info(f"CMA-ES stopped at generation {record['generation']} of {cfg.generations} after max_seconds={cfg.max_seconds}; re-run to continue")
                return False
            return record["generation"] < cfg.generations

        def after(es, record: dict, entry: dict) -> None:
            m = {**meta, "generation": record["generation"]}
            LinearController(feature_dim, space, es.mean).save(out / "mean", {**m, "kind": "cma-mean"})
            LinearController(feature_dim, space, record["best_params"]).save(out / "best", {**m, "kind": "best-candidate", "dream_fitness": record["best_fitness"]})
            bar.update(1)
            bar.set_postfix(mean=f"{entry['mean_fitness']:.1f}", best=f"{record['best_fitness']:.1f}")

        if cfg.backend == "ray":
            from trainers.infra.ray_backend import DreamShards

            remote = DreamShards(cfg, DreamShard)
        else:
            remote = None
        try:
            record = run.run(fitness, more, after)
        finally:
            if remote is not None:
                remote.close()
        bar.close()
        venv.close()
        return {"generations": record["generation"], "best_fitness": record["best_fitness"], "out": str(out), "seconds": time.time() - start}


# -- on the real env ---------------------------------------------------------------------------------
def train_cmaes_real(real_env_id: str, model: str, out: str | Path, budget_steps: int, popsize: int = 16, sigma0: float = 0.1,
                     seed: int = 0, workers: int = 2, backend: str = "local", ray_address: str | None = None) -> dict[str, Any]:
    """The comparison row: the same linear controller on the same model features, trained with CMA-ES
    on the REAL env (one real episode per candidate) until ``budget_steps`` real steps are spent.
    Resumable like :func:`train_cmaes`; the log records the real steps spent per generation. ``backend="ray"``
    runs the candidates' episodes as ``workers`` Ray tasks (same episodes, same search)."""
    import contextlib
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    out = Path(out)
    m = gym_dream.resolve_model(model)
    feature_dim, space = m.feature_dim, m.action_space

    def fitness(candidates: np.ndarray, record: dict) -> tuple[np.ndarray, dict]:
        seeds = [seed * 1_000_003 + record["generation"] * popsize + i for i in range(len(candidates))]
        agents = [LinearController(feature_dim, space, x) for x in candidates]
        eps = real_episodes(agents, real_env_id, str(model), seeds, workers=workers, desc="candidates", pool=pool)
        record["real_steps"] += sum(e.length for e in eps)
        return np.array([e.ret for e in eps]), {"real_steps": record["real_steps"]}

    def after(es, record: dict, entry: dict) -> None:
        meta = {"real_env_id": real_env_id, "model": str(model), "generation": record["generation"], "real_steps": record["real_steps"]}
        LinearController(feature_dim, space, es.mean).save(out / "mean", {**meta, "kind": "cma-mean"})
        logger.info(f"real CMA-ES generation {record['generation']}: mean {entry['mean_fitness']:.1f}, max {entry['max_fitness']:.1f}, "
                    f"{record['real_steps']} real steps")

    if backend == "ray":
        from trainers.infra.ray_backend import TaskPool

        pools = TaskPool(ray_address)
    else:
        pools = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) if workers > 1 else contextlib.nullcontext()
    with pools as pool:
        run = Search(out, LinearController(feature_dim, space).num_params, sigma0, popsize, seed, {"real_steps": 0})
        record = run.run(fitness, lambda r: r["real_steps"] < budget_steps, after)
    return {"generations": record["generation"], "real_steps": record["real_steps"], "best_fitness": record["best_fitness"], "out": str(out)}
