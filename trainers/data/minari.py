"""Minari datasets in and out: a dataset folder of gym-dream shards from a local Minari dataset (what
``gym-dream fit --minari ID`` fits on), and a Minari dataset from a dataset folder (``gym-dream collect --minari ID``),
so data collected here is read by every offline-RL library that reads Minari, and theirs is fitted here.

Minari's episode of length L holds L+1 observations and L actions, rewards, ``terminations`` and
``truncations``, exactly the layout of a gym-dream episode, so the conversion copies arrays. The two endings
stay apart: ``terminations`` become the termination head's targets (the dream ends there), ``truncations``
(a time limit, a budget cut) never do; a step flagged both is a termination; an episode that ends with
neither flag (a buffer cut off) is stored as truncated.

The real env comes from the dataset's recorded env spec (``MinariDataset.env_spec``): its id, kwargs and time
limit go into ``dataset.json`` and so into the model card, so the catalogue's ``Dream-*`` id, DreamObservation
and the card know it. A dataset whose env cannot be recreated here (no env spec recorded, an id not registered, a
missing package) is still converted and fitted; the card's ``env.missing`` says what is missing, and
DreamObservation repeats it. Requires ``pip install "gym-dream[minari]"``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gym_dream.error import DataFormatError, DependencyNotInstalled
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict, space_to_dict
from trainers.data.dataset import Episode, EpisodeDataset, read_meta, shard_paths, write_meta, write_shard

logger = logging.getLogger(__name__)

#: the key under which a dataset written by gym-dream keeps its own description (env, preprocessing, policies)
META_KEY = "gym_dream"
#: steps per shard of a converted dataset
SHARD_STEPS = 20_000


def import_minari():
    """``minari``, or :class:`DependencyNotInstalled` naming the extra."""
    try:
        import minari
    except ImportError as e:
        raise DependencyNotInstalled(f'Minari datasets need minari: pip install "gym-dream[minari]" ({e})') from e
    return minari


def _datasets_root() -> str:
    from minari.storage.datasets_root_dir import get_dataset_path

    return str(get_dataset_path())


def load_minari(dataset_id: str):
    """The local Minari dataset ``dataset_id`` (never downloaded), with errors that name the fix."""
    minari = import_minari()
    if not isinstance(dataset_id, str) or not dataset_id:
        raise ValueError(f"--minari must be a Minari dataset id such as 'D4RL/door/human-v2', got {dataset_id!r}.")
    try:
        return minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError:
        local = sorted(minari.list_local_datasets())
        raise FileNotFoundError(
            f"No local Minari dataset {dataset_id!r} under {_datasets_root()} (MINARI_DATASETS_PATH). Local datasets: "
            f"{', '.join(local) or '(none)'}. Download it first with `minari download {dataset_id}`, or point "
            "MINARI_DATASETS_PATH at the folder that holds it.") from None
    except (KeyError, OSError, ValueError) as e:
        raise DataFormatError(f"The Minari dataset {dataset_id!r} cannot be read ({type(e).__name__}: {e}); re-download or "
                              f"re-create it (`minari delete {dataset_id}` removes the local copy).") from None


# -- the real env of a dataset -------------------------------------------------------------------------
def recover_env(dataset) -> dict[str, Any]:
    """What the dataset says about its real env: ``env_id``, ``env_kwargs``, ``max_episode_steps`` and, when it
    cannot be made here, ``missing`` (why). A recorded env whose spaces differ from the dataset's is refused: the
    spec is wrong, and a dream of it would check real observations against the wrong spaces.

    The env is made by its id from THIS process's registry, with the recorded kwargs: never from the entry point or
    the wrappers the dataset file records (``gym.make(spec)`` would import those modules, running code a downloaded
    dataset names). An id that is not a plain registered id (``module:Name-v0``) is refused."""
    from gym_dream.naming import check_real_env_id

    spec = dataset.env_spec
    if spec is None:
        return {"env_id": None, "env_kwargs": {}, "max_episode_steps": None,
                "missing": f"the Minari dataset {dataset.id!r} records no env spec (it was created with env=None), so its real env is unknown"}
    check_real_env_id(spec.id, f"the real env id recorded by the Minari dataset {dataset.id!r}", DataFormatError)
    kwargs = dict(spec.kwargs or {})
    out: dict[str, Any] = {"env_id": spec.id, "env_kwargs": _plain(kwargs), "max_episode_steps": spec.max_episode_steps}
    if spec.additional_wrappers:
        out["wrappers"] = [w.name for w in spec.additional_wrappers]
    if spec.id not in gym.registry:
        out["missing"] = (f"the real env {spec.id!r} recorded by the Minari dataset {dataset.id!r} is not registered here; install "
                          f"and import the package that registers it (gym-dream never imports the entry point a dataset records)")
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(spec.id, **kwargs)
    except Exception as e:  # noqa: BLE001  (an unregistered id, a missing package, a broken entry point: all "cannot be made")
        out["missing"] = (f"the real env {spec.id!r} recorded by the Minari dataset {dataset.id!r} cannot be made here "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); install the package that registers it")
        return out
    try:
        for what, have, want in (("observation", env.observation_space, dataset.observation_space),
                                 ("action", env.action_space, dataset.action_space)):
            if have != want:
                raise DataFormatError(
                    f"The Minari dataset {dataset.id!r} records the env {spec.id!r}, whose {what} space {have} differs from the "
                    f"dataset's {want}: the recorded env spec is wrong. Re-create the dataset with the env that collected it "
                    f"(minari.create_dataset_from_buffers(..., env=<that env>)), or with env=None to fit without a real env.")
    finally:
        env.close()
    return out


def _plain(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able part of an env's kwargs (a card is data)."""
    try:
        json.dumps(kwargs)
        return kwargs
    except TypeError:
        return {k: v for k, v in kwargs.items() if _jsonable(v)}


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


def preprocessing_for(env_id: str | None, env_kwargs: dict[str, Any], observation_space: gym.Space) -> Preprocessing:
    """The recipe's preprocessing for a known env, else one read off the observation space: a 1-D Box is a vector,
    an (H, W, 3) uint8 Box a frame (resized to 64x64)."""
    from trainers.data.real_envs import REAL_ENVS, recipe

    if env_id is not None and (env_id in REAL_ENVS or env_id.startswith("dm_control/")):
        return recipe(env_id, env_kwargs).preprocessing
    space = observation_space
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return Preprocessing("vector")
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.shape[-1] == 3 and space.dtype == np.uint8:
        return Preprocessing("image", size=(64, 64))
    raise DataFormatError(
        f"The Minari dataset's observation space {space} is neither a vector (a 1-D Box) nor an image (an (H, W, 3) uint8 Box); "
        "world models here read one of the two. Flatten the observations (gymnasium.wrappers.FlattenObservation) or keep one "
        "image entry when creating the dataset.")


# -- Minari -> shards -------------------------------------------------------------------------------------
def _endings(ep, i: int) -> tuple[np.ndarray, np.ndarray]:
    term = np.asarray(ep.terminations, dtype=bool).copy()
    trunc = np.asarray(ep.truncations, dtype=bool).copy()
    if len(term) != len(ep.rewards) or len(trunc) != len(ep.rewards):
        raise DataFormatError(f"Episode {i} of the Minari dataset has {len(ep.rewards)} rewards but {len(term)} terminations and "
                              f"{len(trunc)} truncations; the dataset is damaged.")
    trunc &= ~term  # both flags: the episode really ended (terminated), it was not cut by a limit
    if len(term) and not (term[-1] or trunc[-1]):
        trunc[-1] = True  # neither flag: a buffer cut off mid-episode, stored as cut short
    return term, trunc


def minari_to_shards(dataset_id: str, out: str | os.PathLike, max_episodes: int | None = None) -> Path:
    """Write the local Minari dataset ``dataset_id`` as a gym-dream dataset folder ``out`` (shards + dataset.json).

    A folder already converted from the same dataset (same id, episodes and steps) is reused as it is; one holding
    anything else is refused. Returns ``out``."""
    dataset = load_minari(dataset_id)
    out = Path(out)
    n_eps, n_steps = int(dataset.total_episodes), int(dataset.total_steps)
    if n_eps == 0 or n_steps == 0:
        raise DataFormatError(f"The Minari dataset {dataset_id!r} holds no steps ({n_eps} episodes); add episodes to it or pick "
                              "another dataset.")
    source = {"minari": dataset_id, "minari_version": str(dataset.minari_version), "episodes": n_eps, "steps": n_steps}
    existing = read_meta(out) if out.is_dir() else None
    if existing is not None:
        if existing.get("source") == source and shard_paths(out):
            return out
        raise ValueError(f"{out} already holds a dataset ({existing.get('source') or existing['env_id']}) that is not this conversion "
                         f"of {dataset_id!r}; delete it or pass another folder.")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not a gym-dream dataset folder; pass an empty or new folder for the converted data.")

    own = _own_meta(dataset)
    if own is not None:  # written by gym-dream: its env, preprocessing and policies, exactly
        env = {k: own.get(k) for k in ("env_id", "env_kwargs", "max_episode_steps")}
        env["action_repeat"] = own.get("action_repeat", 1)
        prep = Preprocessing.from_dict(own["preprocessing"])
        obs_space, policies = space_from_dict(own["observation_space"]), list(own.get("policies", []))
        missing = _cannot_make(env["env_id"], dataset.id)
        if missing:
            env["missing"] = missing
    else:
        env = recover_env(dataset)
        obs_space = dataset.observation_space
        prep = preprocessing_for(env["env_id"], env["env_kwargs"], obs_space)
        algorithm = dataset.storage.metadata.get("algorithm_name")
        policies = [f"minari:{algorithm}" if algorithm else "minari"]
    if env.get("missing"):
        logger.warning(f"note: {env['missing']}; fitting anyway (the card records what is missing)")

    tmp = out.with_name(out.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    batch: list[Episode] = []
    first, steps, written, max_len = 0, 0, 0, 0
    for i, ep in enumerate(dataset.iterate_episodes()):
        if max_episodes is not None and i >= max_episodes:
            break
        obs, actions = ep.observations, ep.actions
        if isinstance(obs, (dict, tuple)) or isinstance(actions, (dict, tuple)):
            raise DataFormatError(f"Episode {i} of the Minari dataset {dataset_id!r} has Dict/Tuple observations or actions; "
                                  "world models here read a vector or an image and Discrete or Box actions.")
        obs = np.asarray(obs)
        if len(obs) != len(ep.rewards) + 1 or len(actions) != len(ep.rewards):
            raise DataFormatError(f"Episode {i} of the Minari dataset {dataset_id!r} has {len(obs)} observations and {len(actions)} "
                                  f"actions for {len(ep.rewards)} steps (Minari stores L+1 observations); the dataset is damaged.")
        if len(ep.rewards) == 0:
            continue
        term, trunc = _endings(ep, i)
        x = prep(obs, batched=True) if prep.kind == "image" else np.asarray(obs, dtype=np.float32)
        batch.append(Episode(np.ascontiguousarray(x), _actions(np.asarray(actions), dataset.action_space),
                             np.asarray(ep.rewards, dtype=np.float32), term, trunc))
        steps += len(ep.rewards)
        max_len = max(max_len, len(ep.rewards))
        if steps >= SHARD_STEPS:
            write_shard(tmp, first, batch)
            first, steps, written = first + len(batch), 0, written + len(batch)
            batch = []
    if batch:
        write_shard(tmp, first, batch)
        written += len(batch)
    if written == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataFormatError(f"The Minari dataset {dataset_id!r} holds no episode with a step; add episodes to it or pick another dataset.")
    meta = {
        "env_id": env["env_id"],
        "env_kwargs": env.get("env_kwargs") or {},
        "max_episode_steps": env.get("max_episode_steps") or max_len,
        "preprocessing": prep.to_dict(),
        "action_repeat": env.get("action_repeat", 1),
        "observation_space": space_to_dict(obs_space),
        "action_space": space_to_dict(dataset.action_space),
        "policies": policies,
        "source": source,
        **({"env_missing": env["missing"]} if env.get("missing") else {}),
    }
    write_meta(tmp, meta)
    if out.exists():
        out.rmdir()  # empty (checked above)
    os.replace(tmp, out)
    return out


def _cannot_make(env_id: str | None, dataset_id: str) -> str | None:
    """Why the env ``env_id`` of a gym-dream-written dataset cannot be made here (None: it can)."""
    if env_id is None:
        return f"the Minari dataset {dataset_id!r} records no env"
    from trainers.data.real_envs import make_real_env

    try:
        make_real_env(env_id).close()
    except Exception as e:  # noqa: BLE001
        return f"the real env {env_id!r} of the Minari dataset {dataset_id!r} cannot be made here ({type(e).__name__}: {e})"
    return None


def _actions(actions: np.ndarray, space: gym.Space) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        if actions.ndim > 1:
            actions = actions.reshape(len(actions))
        return actions.astype(np.int64)
    if isinstance(space, gym.spaces.Box):
        return actions.astype(np.float32).reshape(len(actions), *space.shape)
    raise DataFormatError(f"The Minari dataset's action space {space} is neither Discrete nor Box; world models here take one of the two.")


def _own_meta(dataset) -> dict[str, Any] | None:
    raw = dataset.storage.metadata.get(META_KEY)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) and "preprocessing" in meta else None


# -- shards -> Minari -------------------------------------------------------------------------------------
def _check_id(dataset_id: str) -> None:
    """Refuse an id Minari cannot parse before Minari creates its folder (a folder of a bad id breaks listing)."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise ValueError(f"--minari {dataset_id!r} is not a Minari dataset id: it must read (namespace/)name-v<version> with letters, "
                         "digits, '-' and '_' only (no dots), e.g. 'gym-dream/cartpole-random-v0'.") from None


def shards_to_minari(data: str | os.PathLike, dataset_id: str, *, author: str | None = None, description: str | None = None,
                     overwrite: bool = False) -> Any:
    """Write the gym-dream dataset folder ``data`` as the local Minari dataset ``dataset_id``; returns it.

    Observations are stored as the folder holds them: vectors as they came, frames after the recipe's
    preprocessing (e.g. 64x64), losslessly (no JPEG); the dataset's observation space is then that of the stored
    frames, and the folder's own description (env, preprocessing, policies) is kept under the metadata key
    ``gym_dream``. The env spec is the real env's (``gym.spec``), or None when it is not registered here. An existing
    dataset of that id is replaced only if gym-dream wrote it from this same folder (or ``overwrite``)."""
    minari = import_minari()
    from minari.data_collector import EpisodeBuffer

    _check_id(dataset_id)
    ds = EpisodeDataset(data)
    meta = dict(ds.meta)
    meta["source_folder"] = str(Path(data).resolve())
    try:
        existing = minari.load_dataset(dataset_id)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        theirs = _own_meta(existing)
        if overwrite or (theirs is not None and theirs.get("source_folder") == meta["source_folder"]):
            minari.delete_dataset(dataset_id)
        else:
            raise FileExistsError(f"A Minari dataset {dataset_id!r} already exists under {_datasets_root()} and was not written from "
                                  f"{data}; pick another id (e.g. a new version, -v1) or delete it with `minari delete {dataset_id}`.")
    prep = Preprocessing.from_dict(meta["preprocessing"])
    action_space = space_from_dict(meta["action_space"])
    sample = ds.obs[0]
    if prep.kind == "image":
        obs_space = gym.spaces.Box(0, 255, sample.shape, np.uint8)
    else:
        obs_space = space_from_dict(meta["observation_space"])
        if not (isinstance(obs_space, gym.spaces.Box) and obs_space.shape == sample.shape and obs_space.dtype == sample.dtype):
            obs_space = gym.spaces.Box(-np.inf, np.inf, sample.shape, np.float32)
    try:
        env_spec = gym.spec(meta["env_id"])
        if meta.get("env_kwargs") or meta.get("max_episode_steps") != env_spec.max_episode_steps:
            from dataclasses import replace

            env_spec = replace(env_spec, kwargs={**env_spec.kwargs, **(meta.get("env_kwargs") or {})},
                               max_episode_steps=meta.get("max_episode_steps") or env_spec.max_episode_steps)
    except gym.error.Error:
        env_spec = None  # an env registered only when its package is imported (ViZDoom, shimmy): recorded in gym_dream
    buffers = []
    for i in range(len(ds)):
        e = ds.episode(i)
        buffers.append(EpisodeBuffer(id=i, observations=e.obs, actions=e.actions, rewards=e.rewards.astype(np.float64),
                                     terminations=e.terminated, truncations=e.truncated))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari's reminders to name an author, a code link, an eval env
        out = minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env_spec, observation_space=obs_space, action_space=action_space,
            algorithm_name="gym-dream collect: " + ", ".join(meta.get("policies") or ["?"]), author=author,
            description=description or f"{meta['env_id']} episodes collected by gym-dream ({', '.join(meta.get('policies') or [])})",
            jpeg_encoding=False)
    out.storage.update_metadata({META_KEY: json.dumps(meta)})
    return out
