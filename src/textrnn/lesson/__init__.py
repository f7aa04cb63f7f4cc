"""The lesson: its four models as presets (presets.py), and a runner that reproduces its experiments
(runner.py, imported on its own: it brings in the estimator and torch)."""

from .presets import PRESETS, Preset, get_preset

__all__ = ["PRESETS", "Preset", "get_preset"]
