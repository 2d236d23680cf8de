"""Data assimilation with ensembles from a diffusion model, and its baselines.

- Ensemble samplers (states in, ensembles around them out):
  :class:`DiffusionEnsemble`, :class:`StaticCovarianceEnsemble`,
  :class:`ClimatologyEnsemble`.
- Analysis steps, batched over independent experiments:
  :func:`enoi_analysis`, :func:`var3d_analysis`, :func:`etkf_analysis`,
  :func:`letkf_analysis`.
- Localisation on a periodic ring of sites (Lorenz 96): :func:`gaspari_cohn`,
  :func:`ring_distances`.
- Methods to cycle: :class:`EnOI`, :class:`ThreeDVar`,
  :class:`OptimalInterpolation`, :class:`ETKF`, :class:`LETKF`.
- Twin experiments, their tuning and diagnostics:
  :func:`run_twin_experiment`, :func:`tune_twin_experiment`,
  :func:`rank_histogram`.

Finn et al. (2024) turn a deterministic Lorenz 1963 forecast into an ensemble
by partial diffusion and use it in ensemble optimal interpolation (EnOI).
"""

from ._analysis import (
    enoi_analysis,
    ensemble_transform,
    etkf_analysis,
    letkf_analysis,
    observation_matrix,
    var3d_analysis,
)
from ._ensembles import (
    LORENZ63_B_DIAGONAL,
    LORENZ63_B_FULL,
    ClimatologyEnsemble,
    DiffusionEnsemble,
    StaticCovarianceEnsemble,
)
from ._localization import gaspari_cohn, ring_distances
from ._methods import ETKF, LETKF, EnOI, OptimalInterpolation, ThreeDVar
from ._twin import rank_histogram, run_twin_experiment, tune_twin_experiment

__all__ = [
    "ETKF",
    "LETKF",
    "LORENZ63_B_DIAGONAL",
    "LORENZ63_B_FULL",
    "ClimatologyEnsemble",
    "DiffusionEnsemble",
    "EnOI",
    "OptimalInterpolation",
    "StaticCovarianceEnsemble",
    "ThreeDVar",
    "enoi_analysis",
    "ensemble_transform",
    "etkf_analysis",
    "gaspari_cohn",
    "letkf_analysis",
    "observation_matrix",
    "rank_histogram",
    "ring_distances",
    "run_twin_experiment",
    "tune_twin_experiment",
    "var3d_analysis",
]
