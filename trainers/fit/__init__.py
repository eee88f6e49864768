"""Fitting world models: one module per family (:mod:`~trainers.fit.mdnrnn`, :mod:`~trainers.fit.rssm`,
:mod:`~trainers.fit.dreamer`) and the dispatch by family (:mod:`~trainers.fit.dispatch`), whose names are handed on
here: ``from trainers.fit import FitConfig, fit``."""

from trainers.fit.dispatch import FITTERS, PRESETS, Fitter, FitConfig, fit, register_fitter

__all__ = ["FITTERS", "PRESETS", "FitConfig", "Fitter", "fit", "register_fitter"]
