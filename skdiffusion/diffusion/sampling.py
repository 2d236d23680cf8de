"""Samplers as functions: ancestral DDPM, deterministic DDIM, partial diffusion.

Every sampler walks a decreasing grid of steps ``timesteps = [t_1 > ... > t_K]``
(each in 1..T), evaluating the network at each grid step and moving to the
next one; after ``t_K`` it moves to step 0, the clean state. A grid may skip
steps: the transitions use alpha_bar of the two grid steps only.
"""

import math

import torch

from .._progress import progress, row_chunks
from .._validation import check_memory
from .network import _check_int
from .parameterization import check_parameterization, noised, to_noise, to_state
from .training import _randn

__all__ = [
    "ensemble",
    "ensemble_steps",
    "generate",
    "partial_diffusion",
    "sample_ddim",
    "sample_ddpm",
    "timestep_grid",
]


def timestep_grid(t_start, n_steps):
    """Decreasing grid of `n_steps` steps evenly spaced from `t_start` to 1.

    The steps are ``round(t_start * (1 - k / n_steps))`` for k = 0..n_steps-1,
    so the sampler's final move from the last grid step to 0 is of the same
    size as the others. `n_steps` is capped at `t_start`.

    Parameters
    ----------
    t_start : int
        First (noisiest) step, >= 1.
    n_steps : int
        Number of network evaluations, >= 1.

    Returns
    -------
    torch.Tensor of shape (min(n_steps, t_start),), int64
    """
    _check_int("t_start", t_start, 1)
    _check_int("n_steps", n_steps, 1)
    n_steps = min(int(n_steps), int(t_start))
    grid = torch.linspace(t_start, 0, n_steps + 1, dtype=torch.float64)[:-1]
    return grid.round().long()


def ensemble_steps(tau, n_diffusion_steps, grid_size=100):
    """Denoising steps from `tau` on an even `grid_size`-step grid over 0..T.

    ``max(1, ceil(grid_size * tau / n_diffusion_steps))``: 13 for the paper's
    tau = 130 of T = 1000, so the step size, not the number of steps, stays
    fixed as tau is tuned.
    """
    return max(1, math.ceil(grid_size * tau / n_diffusion_steps))


def _check_grid(timesteps, schedule):
    timesteps = [int(t) for t in torch.as_tensor(timesteps).reshape(-1)]
    if not timesteps:
        raise ValueError("timesteps must not be empty.")
    if any(a <= b for a, b in zip(timesteps, timesteps[1:], strict=False)):
        raise ValueError("timesteps must be strictly decreasing.")
    if timesteps[-1] < 1 or timesteps[0] > schedule.n_steps:
        raise ValueError(
            f"timesteps must lie in 1..{schedule.n_steps}, got "
            f"{timesteps[0]}..{timesteps[-1]}."
        )
    return timesteps


def _denoise(model, z, t, ab, parameterization):
    prediction = model(z, t)
    return (
        to_state(parameterization, prediction, z, ab),
        to_noise(parameterization, prediction, z, ab),
    )


def _walk(model, z, schedule, timesteps, parameterization, move, callback, disable):
    """The loop every sampler shares: denoise at each grid step, then `move`.

    ``move(z, x_hat, eps_hat, ab_t, ab_s)`` returns the state at the next
    grid step s (x_hat itself at s = 0, handled here).
    """
    check_parameterization(parameterization)
    timesteps = _check_grid(timesteps, schedule)
    alpha_bar = schedule.alpha_bar.tolist()
    with progress(
        len(timesteps), desc="sampling", verbose=not disable, unit="step"
    ) as bar:
        for i, t in enumerate(timesteps):
            s = timesteps[i + 1] if i + 1 < len(timesteps) else 0
            ab_t, ab_s = alpha_bar[t], alpha_bar[s]
            x_hat, eps_hat = _denoise(model, z, t, ab_t, parameterization)
            z = x_hat if s == 0 else move(z, x_hat, eps_hat, ab_t, ab_s)
            if callback is not None:
                callback({"i": i, "t": t, "z": z, "x_hat": x_hat})
            bar.update(1)
    return z


@torch.no_grad()
def sample_ddpm(
    model,
    z,
    schedule,
    timesteps,
    parameterization="velocity",
    generator=None,
    callback=None,
    disable=True,
):
    """Ancestral sampling of DDPM (Ho et al., 2020) on a grid of steps.

    Between consecutive grid steps t > s it samples the Gaussian posterior
    q(z_s | z_t, x = x_hat), with alpha = alpha_bar[t] / alpha_bar[s], mean
    ``sqrt(alpha_bar[s]) (1 - alpha) / (1 - alpha_bar[t]) x_hat
    + sqrt(alpha) (1 - alpha_bar[s]) / (1 - alpha_bar[t]) z_t`` and variance
    ``(1 - alpha_bar[s]) / (1 - alpha_bar[t]) (1 - alpha)``; the last move,
    to s = 0, returns x_hat.

    Parameters
    ----------
    model : Denoiser
    z : torch.Tensor of shape (batch, n_features)
        Noised states at step ``timesteps[0]`` (pure noise at step T).
    schedule : Schedule
    timesteps : sequence of int
        Strictly decreasing steps in 1..T, e.g. from `timestep_grid`.
    parameterization : {"velocity", "noise", "state"}, default="velocity"
    generator : torch.Generator, default=None
        Source of the sampling noise.
    callback : callable, default=None
        Called as ``callback({"i", "t", "z", "x_hat"})`` after each step.
    disable : bool, default=True
        Hide the progress.

    Returns
    -------
    torch.Tensor like z
        The generated clean states.
    """

    def move(z, x_hat, eps_hat, ab_t, ab_s):
        alpha = ab_t / ab_s
        mean = ((ab_s**0.5) * (1 - alpha) / (1 - ab_t)) * x_hat + (
            (alpha**0.5) * (1 - ab_s) / (1 - ab_t)
        ) * z
        std = ((1 - ab_s) / (1 - ab_t) * (1 - alpha)) ** 0.5
        return mean + std * _randn(z.shape, generator, z.device, z.dtype)

    return _walk(
        model, z, schedule, timesteps, parameterization, move, callback, disable
    )


@torch.no_grad()
def sample_ddim(
    model,
    z,
    schedule,
    timesteps,
    parameterization="velocity",
    callback=None,
    disable=True,
):
    """Deterministic DDIM sampling (Song et al., 2021, eta = 0) on a grid of steps.

    Between grid steps t > s: ``z_s = sqrt(alpha_bar[s]) x_hat
    + sqrt(1 - alpha_bar[s]) eps_hat``; the last move, to s = 0, returns x_hat.
    Parameters are those of `sample_ddpm`, without a generator.

    Returns
    -------
    torch.Tensor like z
        The generated clean states.
    """

    def move(z, x_hat, eps_hat, ab_t, ab_s):
        return noised(x_hat, ab_s, eps_hat)

    return _walk(
        model, z, schedule, timesteps, parameterization, move, callback, disable
    )


SAMPLERS = {"ddpm": sample_ddpm, "ddim": sample_ddim}


@torch.no_grad()
def partial_diffusion(
    model,
    x,
    tau,
    schedule,
    n_steps,
    method="ddpm",
    parameterization="velocity",
    generator=None,
    disable=True,
):
    """Noise states to pseudo-time tau, then denoise them back (Finn et al., 2024).

    ``z_tau = sqrt(alpha_bar[tau]) x + sigma[tau] eps``, then `method` on
    ``timestep_grid(tau, n_steps)``. Repeated with fresh noise, this samples
    the attractor near x; the spread grows with tau. With ``tau = 0`` nothing
    is noised and a copy of x is returned.

    Parameters
    ----------
    model : Denoiser
    x : torch.Tensor of shape (batch, n_features)
        Clean (standardised) states.
    tau : int
        Pseudo-time in 0..T to noise to.
    schedule : Schedule
    n_steps : int
        Number of denoising steps from tau to 0 (capped at tau).
    method : {"ddpm", "ddim"}, default="ddpm"
    parameterization : {"velocity", "noise", "state"}, default="velocity"
    generator : torch.Generator, default=None
        Source of the noise (the initial noising and DDPM's steps).
    disable : bool, default=True
        Hide the progress line.

    Returns
    -------
    torch.Tensor like x
    """
    if method not in SAMPLERS:
        raise ValueError(
            f"Unknown method {method!r}; expected one of {sorted(SAMPLERS)}."
        )
    check_parameterization(parameterization)
    if not 0 <= tau <= schedule.n_steps:
        raise ValueError(f"tau must be in 0..{schedule.n_steps}, got {tau!r}.")
    if tau == 0:
        return x.clone()
    eps = _randn(x.shape, generator, x.device, x.dtype)
    z = noised(x, float(schedule.alpha_bar[tau]), eps)
    grid = timestep_grid(tau, n_steps)
    if method == "ddim":
        return sample_ddim(model, z, schedule, grid, parameterization, disable=disable)
    return sample_ddpm(
        model, z, schedule, grid, parameterization, generator, disable=disable
    )


def generate(
    model,
    n_samples,
    n_features,
    schedule,
    *,
    n_steps=100,
    method="ddpm",
    parameterization="velocity",
    generator=None,
    chunk_size=65536,
    disable=True,
):
    """`n_samples` clean states denoised from pure noise, in chunks of rows.

    The noise is drawn on the generator's device (the CPU by default) chunk by
    chunk, then moved to the model's device. Returns a float32 CPU tensor of
    shape (n_samples, n_features); memory beyond it is one chunk.
    """
    device = next(model.parameters()).device
    grid = timestep_grid(schedule.n_steps, n_steps)
    check_memory(
        4 * n_samples * n_features, f"n_samples={n_samples} states of {n_features}"
    )
    out = torch.empty(n_samples, n_features)
    for rows in row_chunks(n_samples, chunk_size):
        z = _randn((rows.stop - rows.start, n_features), generator, device, out.dtype)
        if method == "ddim":
            x = sample_ddim(model, z, schedule, grid, parameterization, disable=disable)
        else:
            x = sample_ddpm(
                model, z, schedule, grid, parameterization, generator, disable=disable
            )
        out[rows] = x.cpu()
    return out


def ensemble(
    model,
    x,
    tau,
    n_members,
    schedule,
    *,
    n_steps,
    method="ddpm",
    parameterization="velocity",
    generator=None,
    chunk_size=65536,
    disable=True,
):
    """`n_members` partial-diffusion members around each row of `x`, in chunks.

    `x` holds clean (standardised) states on any device; about `chunk_size`
    members are denoised at once on the model's device. Returns a float32 CPU
    tensor of shape (n_samples, n_members, n_features).
    """
    device = next(model.parameters()).device
    check_memory(
        4 * x.shape[0] * n_members * x.shape[1],
        f"n_members={n_members} members of {tuple(x.shape)}",
    )
    out = torch.empty(x.shape[0], n_members, x.shape[1])
    for rows in row_chunks(x.shape[0], max(1, chunk_size // n_members)):
        members = partial_diffusion(
            model,
            x[rows].to(device).repeat_interleave(n_members, dim=0),
            tau,
            schedule,
            n_steps,
            method=method,
            parameterization=parameterization,
            generator=generator,
            disable=disable,
        )
        out[rows] = members.cpu().reshape(-1, n_members, x.shape[1])
    return out
