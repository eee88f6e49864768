"""Everything that produces models and agents, grouped by what it does: ``data`` (real envs, collection, datasets),
``fit`` (one fitter per world-model family and the dispatch), ``agents`` (CMA-ES, SB3 in dreams, stored agents),
``planning`` (CEM, the PlaNet loop), ``evaluation`` (scores, calibration, videos), ``export`` (packages, ONNX),
``infra`` (checkpoints, locks, progress, provenance, Ray), ``experiment`` (recipes) and ``cli`` (``gym-dream``).

Needs the ``train`` extra (``pip install "gym-dream[train]"``). ``gym_dream`` never imports this package. The module
paths from before this grouping still import, with a warning naming the new one (:mod:`trainers._moved`).
"""

from trainers._moved import install as _install_moved_paths

_install_moved_paths()
