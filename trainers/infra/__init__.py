"""What every long job stands on: checkpoints without pickle, one writer per folder, progress, training logs,
provenance and the Ray backend."""
