"""Noise schedules: the signal level alpha_bar(t) on the integer steps 0..T.

Step 0 is the clean state (alpha_bar = 1), step T the (almost) pure noise.
A noised state is ``z_t = sqrt(alpha_bar[t]) * x + sigma[t] * eps`` with
``sigma = sqrt(1 - alpha_bar)``.
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real

import torch

__all__ = [
    "SCHEDULES",
    "Schedule",
    "cosine_schedule",
    "get_schedule",
    "linear_schedule",
]


@dataclass(frozen=True, eq=False)
class Schedule:
    """Discrete noise schedule.

    Parameters
    ----------
    alpha_bar : torch.Tensor of shape (n_steps + 1,)
        Cumulative signal level for each step, float64 (or float32), with
        ``alpha_bar[0] == 1`` (the clean state) and decreasing afterwards.
    """

    alpha_bar: torch.Tensor

    @property
    def n_steps(self):
        """Number of diffusion steps T (steps run from 1 to T)."""
        return self.alpha_bar.shape[0] - 1

    @property
    def sigma(self):
        """Noise level ``sqrt(1 - alpha_bar)`` for each step 0..T."""
        return torch.sqrt(1.0 - self.alpha_bar)

    @property
    def beta(self):
        """Per-step noise ``1 - alpha_bar[t] / alpha_bar[t-1]``; ``beta[0] = 0``."""
        ratio = self.alpha_bar[1:] / self.alpha_bar[:-1]
        return torch.cat([self.alpha_bar.new_zeros(1), 1.0 - ratio])


def _check_n_steps(n_steps):
    # numpy integers are integers; bools are not, though Python says they are
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _from_betas(betas):
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)
    return Schedule(torch.cat([alpha_bar.new_ones(1), alpha_bar]))


def cosine_schedule(n_steps=1000, s=0.008, max_beta=0.9):
    """Cosine schedule of Nichol & Dhariwal (2021), as used by Finn et al. (2024).

    ``alpha_bar(t) = f(t) / f(0)`` with ``f(t) = cos^2(pi/2 (t/T + s)/(1 + s))``;
    the implied per-step betas are clipped at `max_beta` (which only bites at
    the very last steps) and alpha_bar is recomputed as their cumulative product.

    Parameters
    ----------
    n_steps : int, default=1000
        Number of diffusion steps T.
    s : float, default=0.008
        Offset that keeps the first steps from being too small.
    max_beta : float, default=0.9
        Upper bound of each per-step beta, in (0, 1].

    Returns
    -------
    Schedule
        The schedule, float64.
    """
    _check_n_steps(n_steps)
    if not (_is_real(max_beta) and 0.0 < max_beta <= 1.0):
        raise ValueError(f"max_beta must be in (0, 1], got {max_beta!r}.")
    if not (_is_real(s) and 0.0 <= s < math.inf):
        raise ValueError(f"s must be a finite number >= 0, got {s!r}.")
    n_steps = int(n_steps)
    time = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    f = torch.cos(0.5 * math.pi * (time + s) / (1.0 + s)) ** 2
    betas = (1.0 - f[1:] / f[:-1]).clamp(max=max_beta)
    return _from_betas(betas)


def linear_schedule(n_steps=1000, beta_start=1e-4, beta_end=0.03):
    """Linear schedule of Ho et al. (2020): betas evenly spaced in T steps.

    Parameters
    ----------
    n_steps : int, default=1000
        Number of diffusion steps T.
    beta_start, beta_end : float, default=1e-4, 0.03
        Beta of the first and of the last step, in (0, 1).

    Returns
    -------
    Schedule
        The schedule, float64.
    """
    _check_n_steps(n_steps)
    if not (
        _is_real(beta_start) and _is_real(beta_end)
        and 0.0 < beta_start <= beta_end < 1.0
    ):
        raise ValueError(
            "Need 0 < beta_start <= beta_end < 1, got "
            f"beta_start={beta_start!r}, beta_end={beta_end!r}."
        )
    betas = torch.linspace(
        float(beta_start), float(beta_end), int(n_steps), dtype=torch.float64
    )
    return _from_betas(betas)


SCHEDULES = {"cosine": cosine_schedule, "linear": linear_schedule}


def get_schedule(name, n_steps=1000):
    """The schedule called `name` ("cosine" or "linear") with its paper defaults.

    Raises
    ------
    ValueError
        If `name` is not a known schedule.
    """
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(
            f"Unknown schedule {name!r}; expected one of {sorted(SCHEDULES)}."
        )
    return SCHEDULES[name](n_steps)
