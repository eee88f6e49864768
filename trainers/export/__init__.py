"""A trained model as a pip-installable environment package (:mod:`~trainers.export.package`), its dream optionally as
ONNX graphs (:mod:`~trainers.export.onnx`). The package's names are handed on here: ``from trainers.export import
ExportConfig, export``."""

from trainers.export.package import (EXPORT_RECORD, MANAGED_FIELDS, RUNTIMES, ExportConfig, build_wheel,
    builtin_id_note, card_readme, export, module_name, record_scores, stage_model_dir)

__all__ = [
    "EXPORT_RECORD", "MANAGED_FIELDS", "RUNTIMES", "ExportConfig", "build_wheel", "builtin_id_note", "card_readme",
    "export", "module_name", "record_scores", "stage_model_dir",
]
