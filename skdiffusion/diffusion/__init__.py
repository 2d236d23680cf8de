"""Denoising diffusion in plain torch: schedules, denoiser, loss, samplers.

Nothing here knows scikit-learn; `skdiffusion.DiffusionFeaturizer` wraps it.
"""

from .network import ACTIVATIONS, Denoiser, ResidualBlock, timestep_embedding
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
    LR_SCHEDULES,
    T_SAMPLINGS,
    TrainingDivergedError,
    TrainingHistory,
    denoising_loss,
    fast_autocast_dtype,
    learning_rate_at,
    step_probabilities,
    train_denoiser,
)

__all__ = [
    "ACTIVATIONS",
    "LR_SCHEDULES",
    "PARAMETERIZATIONS",
    "SAMPLERS",
    "SCHEDULES",
    "T_SAMPLINGS",
    "Denoiser",
    "ResidualBlock",
    "Schedule",
    "TrainingDivergedError",
    "TrainingHistory",
    "check_parameterization",
    "cosine_schedule",
    "denoising_loss",
    "ensemble",
    "ensemble_steps",
    "fast_autocast_dtype",
    "generate",
    "get_schedule",
    "learning_rate_at",
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
