"""The denoising loss, and the denoiser trained on it by the package's engine.

Each optimiser step draws a batch of clean states x, steps t uniformly in
1..T and noise eps, forms ``z = sqrt(alpha_bar[t]) x + sigma[t] eps`` and
regresses the network output on the target of the parameterisation. The
loop itself (Adam, schedule, stopping, divergence, progress) is
:func:`skdiffusion.engine.train`, shared with every torch estimator.
"""

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..engine import train
from .parameterization import check_parameterization, loss_target, noised

__all__ = [
    "T_SAMPLINGS",
    "denoising_batch_loss",
    "denoising_loss",
    "fast_autocast_dtype",
    "step_probabilities",
    "train_denoiser",
    "validation_score",
]

T_SAMPLINGS = ("uniform", "low")


def fast_autocast_dtype(device):
    """``torch.bfloat16`` if bfloat16 matrix products are fast on `device`, else None.

    That is a CUDA GPU supporting bfloat16, or a CPU with AVX512-BF16 or AMX.
    Pass the result as `autocast_dtype` to `train_denoiser`.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        if any(getattr(torch.cpu, name, lambda: False)() for name in checks):
            return torch.bfloat16
    return None


def _generator_device(generator, device):
    return device if generator is None else generator.device


def _randn(shape, generator, device, dtype):
    noise = torch.randn(
        shape,
        generator=generator,
        device=_generator_device(generator, device),
        dtype=dtype,
    )
    return noise.to(device)


def _randint(high, shape, generator, device):
    steps = torch.randint(
        1,
        high + 1,
        shape,
        generator=generator,
        device=_generator_device(generator, device),
    )
    return steps.to(device)


def step_probabilities(t_sampling, n_steps):
    """Probability of drawing each step ``1..n_steps`` in training, float64.

    "uniform" is the paper's; "low" is proportional to ``1 / sqrt(t)``, so
    about a third of the steps fall in the lowest tenth of ``1..n_steps``
    (against a tenth when uniform): more training where the features are
    read, near the clean state.
    """
    if t_sampling not in T_SAMPLINGS:
        raise ValueError(
            f"Unknown t_sampling {t_sampling!r}; expected one of "
            f"{list(T_SAMPLINGS)}."
        )
    steps = torch.arange(1, n_steps + 1, dtype=torch.float64)
    weights = torch.ones_like(steps) if t_sampling == "uniform" else steps**-0.5
    return weights / weights.sum()


def _draw_steps(n_steps, probabilities, n, generator, device):
    """n steps in 1..n_steps; None draws uniformly (the paper's randint)."""
    if probabilities is None:
        return _randint(n_steps, (n,), generator, device)
    steps = torch.multinomial(
        probabilities.to(_generator_device(generator, device), torch.float32),
        n,
        replacement=True,
        generator=generator,
    )
    return (steps + 1).to(device)


def _loss(
    model, x, t, eps, alpha_bar, parameterization, params=None, autocast_dtype=None
):
    ab = alpha_bar[t].unsqueeze(1)
    z = noised(x, ab, eps)
    with torch.autocast(
        x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
    ):
        if params is None:
            prediction = model(z, t)
        else:
            prediction = functional_call(model, params, (z, t))
    target = loss_target(parameterization, x, eps, ab)
    return F.mse_loss(prediction.to(x.dtype), target)


@torch.no_grad()
def denoising_loss(
    model,
    X,
    *,
    schedule,
    parameterization="velocity",
    t=None,
    eps=None,
    generator=None,
    batch_size=16384,
    params=None,
):
    """Mean squared error of the network's prediction on noised copies of X.

    Parameters
    ----------
    model : Denoiser
    X : torch.Tensor of shape (n_samples, n_features)
        Clean states, on the model's device.
    schedule : Schedule
    parameterization : {"velocity", "noise", "state"}, default="velocity"
    t : torch.Tensor of shape (n_samples,), default=None
        Steps; drawn uniformly from 1..T with `generator` when None.
    eps : torch.Tensor like X, default=None
        Noise; drawn from `generator` when None.
    generator : torch.Generator, default=None
    batch_size : int, default=16384
        Rows evaluated at once.
    params : dict of str to torch.Tensor, default=None
        Weights to use instead of the model's own (e.g. an EMA).

    Returns
    -------
    float
        The loss, averaged over samples and features.
    """
    check_parameterization(parameterization)
    alpha_bar = schedule.alpha_bar.to(device=X.device, dtype=X.dtype)
    if t is None:
        t = _randint(schedule.n_steps, (X.shape[0],), generator, X.device)
    if eps is None:
        eps = _randn(X.shape, generator, X.device, X.dtype)
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        loss = _loss(
            model, X[rows], t[rows], eps[rows], alpha_bar, parameterization, params
        )
        total += loss.item() * X[rows].shape[0]
    return total / X.shape[0]


def denoising_batch_loss(
    model,
    X,
    *,
    schedule,
    parameterization="velocity",
    t_sampling="uniform",
    autocast_dtype=None,
    generator=None,
):
    """The engine's ``batch_loss(rows)``: the denoising loss of ``X[rows]``.

    Each call draws the rows' steps (`t_sampling`) and noise from `generator`;
    ``batch_loss(rows, share=share)`` draws them for all the rows and returns
    the loss of the batch positions `share` (data-parallel training).
    `autocast_dtype` (``torch.bfloat16`` or None) runs the network under
    ``torch.autocast``: matrix products in bfloat16; weights, optimiser,
    residual stream and loss in float32.
    """
    check_parameterization(parameterization)
    if autocast_dtype not in (None, torch.bfloat16, torch.float16):
        raise ValueError(
            "autocast_dtype must be None, torch.bfloat16 or torch.float16, got "
            f"{autocast_dtype!r}."
        )
    alpha_bar = schedule.alpha_bar.to(device=X.device, dtype=X.dtype)
    probabilities = step_probabilities(t_sampling, schedule.n_steps)
    if t_sampling == "uniform":
        probabilities = None  # keep the paper's draws exactly

    def batch_loss(rows, share=slice(None)):
        x = X if rows is None else X[rows]
        t = _draw_steps(schedule.n_steps, probabilities, len(x), generator, X.device)
        eps = _randn(x.shape, generator, X.device, X.dtype)
        # the whole batch's draws first: data-parallel shares see one run's noise
        x, t, eps = x[share], t[share], eps[share]
        return _loss(
            model, x, t, eps, alpha_bar, parameterization, autocast_dtype=autocast_dtype
        )

    return batch_loss


def validation_score(model, X_val, *, schedule, parameterization, generator):
    """Minus the denoising loss on `X_val`, with steps and noise drawn once.

    Every evaluation of a run scores the same noised states, so its scores
    are comparable.
    """
    t = _randint(schedule.n_steps, (X_val.shape[0],), generator, X_val.device)
    eps = _randn(X_val.shape, generator, X_val.device, X_val.dtype)

    def score():
        return -denoising_loss(
            model,
            X_val,
            schedule=schedule,
            parameterization=parameterization,
            t=t,
            eps=eps,
        )

    return score


def train_denoiser(
    model,
    X,
    *,
    schedule,
    parameterization="velocity",
    t_sampling="uniform",
    autocast_dtype=None,
    X_val=None,
    generator=None,
    **options,
):
    """Train `model` in place with Adam on the denoising loss.

    Parameters
    ----------
    model : Denoiser
        Trained in place; must be on the device of X.
    X : torch.Tensor of shape (n_samples, n_features)
        Clean (standardised) training states, float32.
    schedule : Schedule
    parameterization : {"velocity", "noise", "state"}, default="velocity"
        What the network predicts.
    t_sampling : {"uniform", "low"}, default="uniform"
        How the training steps are drawn: uniformly in ``1..T`` (the paper)
        or with probability proportional to ``1 / sqrt(t)``; see
        `step_probabilities`. Validation always draws uniformly.
    autocast_dtype : torch.dtype, default=None
        None trains in the dtype of X; ``torch.bfloat16`` runs the network
        under ``torch.autocast`` (about 1.5-2x faster on CPUs with
        AVX512-BF16/AMX and on recent GPUs, slower elsewhere); see
        `fast_autocast_dtype`.
    X_val : torch.Tensor of shape (n_val, n_features), default=None
        Validation states: minus their denoising loss (steps and noise drawn
        once per call) is the early-stopping score, and the weights of its
        best evaluation are kept.
    generator : torch.Generator, default=None
        Source of all randomness (batches, steps, noise); on X's device.
    **options
        Passed to :func:`skdiffusion.engine.train`: ``max_iter`` (optimiser
        steps, required), ``batch_size`` (default 16384), ``learning_rate``
        (default 3e-4), ``lr_schedule``, ``warmup_iter``, ``ema_decay``,
        ``eval_every``, ``n_iter_no_change``, ``tol``, ``optimizer_state``,
        ``ema_state``, ``history``, ``callback``, ``verbose``.

    Returns
    -------
    TrainingHistory
        The history, holding the optimiser state and the EMA weights.

    Raises
    ------
    TrainingDivergedError
        If the loss becomes non-finite or exceeds 1e4 times the larger of
        the call's first loss and 1, also after the last step.
    """
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"X must be a non-empty 2-D tensor, got shape {tuple(X.shape)}."
        )
    batch_loss = denoising_batch_loss(
        model,
        X,
        schedule=schedule,
        parameterization=parameterization,
        t_sampling=t_sampling,
        autocast_dtype=autocast_dtype,
        generator=generator,
    )
    score = None
    if X_val is not None:
        score = validation_score(
            model,
            X_val,
            schedule=schedule,
            parameterization=parameterization,
            generator=generator,
        )
    options = {"batch_size": 16384, "learning_rate": 3e-4, **options}
    return train(
        model,
        batch_loss,
        X.shape[0],
        validation_score=score,
        generator=generator,
        device=X.device,
        desc=options.pop("desc", "denoiser"),
        **options,
    )
