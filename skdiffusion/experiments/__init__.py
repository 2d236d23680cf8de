"""The paper's experiments: functions with presets "quick" and "paper", DataFrames out.

``"quick"`` runs in minutes on two CPU cores, ``"paper"`` has the sizes of
Finn et al. (2024), for a GPU; a preset object (``SurrogatePreset(n_seeds=5)``)
sets every size. ``python -m skdiffusion.experiments`` runs the quick
surrogate comparison, ``python -m skdiffusion.experiments --experiment
spatial`` the Lorenz 96 one (:func:`spatial_surrogate_comparison`), and
``--experiment assimilation96`` the Lorenz 96 data assimilation
(:func:`lorenz96_anchors`, :func:`lorenz96_assimilation`). Imports
are lazy, so that running it can configure OpenMP before torch is imported.
"""

import importlib

_EXPORTS = {
    "surrogate": [
        "SurrogatePreset",
        "surrogate_comparison",
        "summarize_surrogates",
        "format_summary",
        "transfer_vs_scratch",
        "plot_surrogate_comparison",
    ],
    "generation": ["GenerationPreset", "generation_quality"],
    "scaling": ["ScalingPreset", "scaling_studies"],
    "selection": ["SelectionPreset", "model_selection", "make_search"],
    "assimilation": ["AssimilationPreset", "run_assimilation_experiment"],
    "_plan_others": ["experiment_plan"],
    "assimilation_lorenz96": [
        "Lorenz96AssimilationPreset",
        "lorenz96_anchors",
        "lorenz96_assimilation",
    ],
    "spatial": [
        "SpatialPreset",
        "spatial_surrogate_comparison",
        "summarize_spatial",
    ],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
