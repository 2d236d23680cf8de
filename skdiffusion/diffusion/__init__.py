"""Denoising diffusion in plain torch: schedules, denoiser, loss, samplers.

Nothing here knows scikit-learn; `skdiffusion.DiffusionFeaturizer` wraps it.
"""

from .network import (
    ACTIVATIONS,
    ARCHITECTURES,
    ConvDenoiser,
    ConvResidualBlock,
    Denoiser,
    ResidualBlock,
    build_denoiser,
    timestep_embedding,
)
from .parameterization import (
    PARAMETERIZATIONS,
    check_parameterization,
    loss_target,
    noised,
    to_noise,
    to_state,
)
from .sampling import (
    SAMPLERS,
    ensemble,
    ensemble_steps,
    generate,
    partial_diffusion,
    sample_ddim,
    sample_ddpm,
    timestep_grid,
)
from .schedules import (
    SCHEDULES,
    Schedule,
    cosine_schedule,
    get_schedule,
    linear_schedule,
)
from .training import (
    T_SAMPLINGS,
    denoising_loss,
    fast_autocast_dtype,
    step_probabilities,
    train_denoiser,
)

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "PARAMETERIZATIONS",
    "SAMPLERS",
    "SCHEDULES",
    "T_SAMPLINGS",
    "ConvDenoiser",
    "ConvResidualBlock",
    "Denoiser",
    "ResidualBlock",
    "Schedule",
    "build_denoiser",
    "check_parameterization",
    "cosine_schedule",
    "denoising_loss",
    "ensemble",
    "ensemble_steps",
    "fast_autocast_dtype",
    "generate",
    "get_schedule",
    "linear_schedule",
    "loss_target",
    "noised",
    "partial_diffusion",
    "sample_ddim",
    "sample_ddpm",
    "step_probabilities",
    "timestep_embedding",
    "timestep_grid",
    "to_noise",
    "to_state",
    "train_denoiser",
]
