"""Data assimilation with ensembles from a diffusion model, and its baselines.

- Ensemble samplers (states in, ensembles around them out):
  :class:`DiffusionEnsemble`, :class:`StaticCovarianceEnsemble`,
  :class:`ClimatologyEnsemble`.
- Analysis steps, batched over independent experiments:
  :func:`enoi_analysis`, :func:`var3d_analysis`, :func:`etkf_analysis`.
- Methods to cycle: :class:`EnOI`, :class:`ThreeDVar`, :class:`ETKF`.
- Twin experiments and their tuning: :func:`run_twin_experiment`,
  :func:`tune_twin_experiment`.

Finn et al. (2024) turn a deterministic Lorenz 1963 forecast into an ensemble
by partial diffusion and use it in ensemble optimal interpolation (EnOI).
"""

from ._analysis import (
    enoi_analysis,
    ensemble_transform,
    etkf_analysis,
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
from ._methods import ETKF, EnOI, ThreeDVar
from ._twin import run_twin_experiment, tune_twin_experiment

__all__ = [
    "ETKF",
    "LORENZ63_B_DIAGONAL",
    "LORENZ63_B_FULL",
    "ClimatologyEnsemble",
    "DiffusionEnsemble",
    "EnOI",
    "StaticCovarianceEnsemble",
    "ThreeDVar",
    "enoi_analysis",
    "ensemble_transform",
    "etkf_analysis",
    "observation_matrix",
    "run_twin_experiment",
    "tune_twin_experiment",
    "var3d_analysis",
]
