"""Real environments and their data: collection, episode datasets on disk, Minari in and out, collecting policies.

:mod:`trainers.data.dataset` is the dataset itself; its names are handed on here, so ``from trainers.data import
EpisodeDataset`` (the module's path before the grouping) keeps working.
"""

from trainers.data.dataset import (FIELDS, META_FILE, Episode, EpisodeDataset, StoredFile, check_observation_count,
    count_episodes, dataset_index, episode_paths, load_file, observations_header, read_meta, shard_paths,
    write_episode, write_meta, write_shard)

__all__ = [
    "FIELDS", "META_FILE", "Episode", "EpisodeDataset", "StoredFile", "check_observation_count", "count_episodes",
    "dataset_index", "episode_paths", "load_file", "observations_header", "read_meta", "shard_paths", "write_episode",
    "write_meta", "write_shard",
]
